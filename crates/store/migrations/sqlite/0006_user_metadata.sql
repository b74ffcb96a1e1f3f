-- user_metadata and app_metadata, as Auth0 keeps them: JSON objects, '{}' when unset.
ALTER TABLE users ADD COLUMN user_metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN app_metadata TEXT NOT NULL DEFAULT '{}';
