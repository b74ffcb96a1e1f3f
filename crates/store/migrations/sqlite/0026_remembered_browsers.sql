-- Browsers a user chose to remember after passing a second factor (issue 16): such a
-- browser skips the second factor the tenant's policy asks, for the tenant's
-- `mfa_session_overall_timeout` from `created_at` and `mfa_session_inactivity_timeout`
-- from `last_used_at` (both read at each use, so shortening them applies at once).
-- `token_hash` is the SHA-256 of the browser's cookie, never the cookie; `expires_at` is
-- the longest a row can matter, for the purge.
CREATE TABLE remembered_browsers (
    tenant_id     TEXT NOT NULL,
    token_hash    BLOB NOT NULL,
    user_id       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX remembered_browsers_user ON remembered_browsers (tenant_id, user_id, created_at);
CREATE INDEX remembered_browsers_expiry ON remembered_browsers (expires_at);
