-- Second factors (issue 16). `kind`: `totp` (`secret` is the seed sealed with the master
-- key), `recovery-code` (`secret` is the SHA-256 of the code, which is shown once). A TOTP
-- authenticator is unconfirmed until its first code is checked; `last_step` is the time
-- step of the last code accepted, so a code is never accepted twice.
CREATE TABLE authenticators (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    secret        BLOB NOT NULL,
    confirmed     INTEGER NOT NULL,
    last_step     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_auth_at  INTEGER,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX authenticators_user ON authenticators (tenant_id, user_id, created_at);

-- Consecutive wrong second-factor codes per user, for throttling.
CREATE TABLE mfa_failures (
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    failures    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);

-- How a session was authenticated (the ID token's `amr`): a JSON array such as
-- ["pwd","mfa","otp"]; NULL for sessions from before, which had a password or a provider.
ALTER TABLE sessions ADD COLUMN amr TEXT;

-- The tenant's multi-factor policy and factors (`/api/v2/guardian/…`), a JSON object kept
-- apart from the tenant settings that `/api/v2/tenants/settings` shows whole.
ALTER TABLE tenants ADD COLUMN guardian TEXT NOT NULL DEFAULT '{}';
