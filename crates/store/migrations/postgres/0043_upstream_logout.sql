-- Back-channel logout from upstream OpenID Connect providers. A session signed in through
-- a provider keeps the provider's session id (its ID token's `sid`), which the provider's
-- logout token names when that session ends there. NULL: signed in otherwise, or the
-- provider sent no `sid`. Partial: only such sessions are in the index.
ALTER TABLE sessions ADD COLUMN upstream_sid TEXT;
CREATE INDEX sessions_upstream_sid ON sessions (tenant_id, connection, upstream_sid)
    WHERE upstream_sid IS NOT NULL;
-- The `jti` of every logout token accepted from a provider, kept until it could no
-- longer be accepted: a logout token works once, on any node.
CREATE TABLE upstream_logout_jtis (
    tenant_id      TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    jti            TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, jti)
);
CREATE INDEX upstream_logout_jtis_expiry ON upstream_logout_jtis (expires_at);
