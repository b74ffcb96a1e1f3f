-- Password reset by an emailed one-time code. One live code per user: a new request
-- replaces the old one. code_hash = SHA-256 of "user_id:code"; `attempts` counts wrong
-- tries, and the code dies at the limit the server sets.
CREATE TABLE password_reset_codes (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    user_id     TEXT COLLATE "C" NOT NULL,
    code_hash   BYTEA NOT NULL,
    attempts    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX password_reset_codes_expiry ON password_reset_codes (expires_at);
