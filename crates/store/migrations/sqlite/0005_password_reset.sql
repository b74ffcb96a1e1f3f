-- Password reset by an emailed one-time code. One live code per user: a new request
-- replaces the old one. code_hash = SHA-256 of "user_id:code"; `attempts` counts wrong
-- tries, and the code dies at the limit the server sets.
CREATE TABLE password_reset_codes (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    user_id     TEXT NOT NULL,
    code_hash   BLOB NOT NULL,
    attempts    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX password_reset_codes_expiry ON password_reset_codes (expires_at);
