-- Sessions of the administration dashboard (/admin/), apart from the login page's SSO
-- sessions: their own cookie, idle and absolute limits. id_hash = SHA-256 of the cookie
-- value (256 random bits); the value itself is never stored. csrf_token is the token every
-- form of the session must carry. auth_time is when the administrator last entered a
-- password (a fresh login renews it); expires_at is the earlier of the idle end (moved by
-- use) and absolute_expires_at.
CREATE TABLE admin_sessions (
    tenant_id            TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id_hash              BYTEA NOT NULL,
    user_id              TEXT COLLATE "C" NOT NULL,
    csrf_token           TEXT COLLATE "C" NOT NULL,
    auth_time            BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    absolute_expires_at  BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
-- Deleting a user finds their sessions through this index.
CREATE INDEX admin_sessions_user ON admin_sessions (tenant_id, user_id);

-- The first sign-in through each application (the dashboard's "log in with the sample"
-- step): written once per application, never updated.
CREATE TABLE client_logins (
    tenant_id       TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    client_id       TEXT COLLATE "C" NOT NULL,
    first_login_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, client_id) ON DELETE CASCADE
);
