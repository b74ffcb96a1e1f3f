-- The lifetime of an API's access tokens handed over in the browser (implicit and hybrid
-- responses), as Auth0's token_lifetime_for_web. Existing APIs keep what their browser
-- tokens had: token_lifetime.
ALTER TABLE resource_servers ADD COLUMN token_lifetime_for_web BIGINT NOT NULL DEFAULT 0;
UPDATE resource_servers SET token_lifetime_for_web = token_lifetime;
