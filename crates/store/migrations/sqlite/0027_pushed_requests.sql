-- Pushed authorization requests (RFC 9126, issue 17): an application's authorization
-- request, sent to /oauth/par over the back channel and named at /authorize by a
-- request_uri that works once and briefly. `uri_hash` is the SHA-256 of the request_uri's
-- random part; `params` the request as form-encoded text.
CREATE TABLE pushed_requests (
    tenant_id   TEXT NOT NULL,
    uri_hash    BLOB NOT NULL,
    client_id   TEXT NOT NULL,
    params      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, uri_hash)
);
CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at);
