-- Refresh tokens (rotating, with reuse detection) and per-application refresh settings.

ALTER TABLE clients ADD COLUMN refresh_token_lifetime BIGINT NOT NULL DEFAULT 2592000;       -- absolute, 30 days
ALTER TABLE clients ADD COLUMN refresh_idle_token_lifetime BIGINT NOT NULL DEFAULT 1296000;  -- idle, 15 days
ALTER TABLE clients ADD COLUMN refresh_reuse_interval BIGINT NOT NULL DEFAULT 0;             -- seconds an old token may still be retried

-- One family per original grant (code redemption); every rotation adds a token to it.
-- Reuse of a rotated token revokes the whole family.
CREATE TABLE refresh_token_families (
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    family_id    TEXT COLLATE "C" NOT NULL,
    client_id    TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    "grant"      TEXT NOT NULL,   -- JSON: scopes, audience, sid, auth_time
    code_hash    BYTEA,           -- the code that started the family (a replay revokes it)
    sid          TEXT COLLATE "C",           -- the login session (logout revokes the family)
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL, -- absolute lifetime
    revoked_at   BIGINT,
    PRIMARY KEY (tenant_id, family_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX refresh_token_families_expiry ON refresh_token_families (expires_at);
CREATE INDEX refresh_token_families_user ON refresh_token_families (tenant_id, user_id);
CREATE INDEX refresh_token_families_code ON refresh_token_families (tenant_id, code_hash);
CREATE INDEX refresh_token_families_sid ON refresh_token_families (tenant_id, sid);

CREATE TABLE refresh_tokens (
    tenant_id        TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    token_hash       BYTEA NOT NULL,
    family_id        TEXT COLLATE "C" NOT NULL,
    created_at       BIGINT NOT NULL,
    idle_expires_at  BIGINT NOT NULL,
    rotated_at       BIGINT,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, family_id) REFERENCES refresh_token_families(tenant_id, family_id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (idle_expires_at);
