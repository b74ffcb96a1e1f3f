-- Pushed authorization requests (RFC 9126, issue 17): an application's authorization
-- request, sent to /oauth/par over the back channel and named at /authorize by a
-- request_uri that works once and briefly. `uri_hash` is the SHA-256 of the request_uri's
-- random part; `params` the request as form-encoded text.
CREATE TABLE pushed_requests (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    uri_hash    BYTEA NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL,
    params      TEXT COLLATE "C" NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, uri_hash)
);
CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at);
