-- What an application says about itself (description, logo_uri, client_metadata,
-- initiate_login_uri, allowed_origins): Auth0 members Tessera stores and shows but does not
-- act on, as one JSON object; '{}' when none is set.
ALTER TABLE clients ADD COLUMN profile TEXT NOT NULL DEFAULT '{}';
