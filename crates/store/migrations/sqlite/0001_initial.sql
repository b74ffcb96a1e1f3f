-- Tessera's first schema (SQLite). Every row belongs to a tenant; only 'default'
-- exists until tenants are served by host name. Times are Unix seconds.
-- Secrets (client secrets, codes, session ids, opaque tokens) are stored as SHA-256.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);
INSERT INTO tenants (id, created_at) VALUES ('default', CAST(strftime('%s', 'now') AS INTEGER));

CREATE TABLE signing_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    kid           TEXT NOT NULL,
    alg           TEXT NOT NULL,
    -- next -> current -> previous -> retired
    state         TEXT NOT NULL CHECK (state IN ('next', 'current', 'previous', 'retired')),
    private_key   BLOB NOT NULL,   -- PKCS#8, sealed with the master key (AAD = kid)
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kid)
);
CREATE INDEX signing_keys_state ON signing_keys (tenant_id, alg, state);

CREATE TABLE resource_servers (
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    id                    TEXT NOT NULL,
    name                  TEXT NOT NULL,
    identifier            TEXT NOT NULL,
    signing_alg           TEXT NOT NULL,
    token_lifetime        INTEGER NOT NULL,
    allow_offline_access  INTEGER NOT NULL,
    token_dialect         TEXT NOT NULL,
    enforce_policies      INTEGER NOT NULL,
    scopes                TEXT NOT NULL,   -- JSON [{value, description}]
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, identifier)
);

CREATE TABLE clients (
    tenant_id                   TEXT NOT NULL REFERENCES tenants(id),
    client_id                   TEXT NOT NULL,
    name                        TEXT NOT NULL,
    app_type                    TEXT NOT NULL,
    secret_hash                 BLOB,
    token_endpoint_auth_method  TEXT NOT NULL,
    callbacks                   TEXT NOT NULL,   -- JSON arrays of strings
    web_origins                 TEXT NOT NULL,
    allowed_logout_urls         TEXT NOT NULL,
    grant_types                 TEXT NOT NULL,
    is_first_party              INTEGER NOT NULL,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE client_grants (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    audience    TEXT NOT NULL,
    scope       TEXT NOT NULL,   -- JSON array
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, client_id, audience),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, audience) REFERENCES resource_servers(tenant_id, identifier) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE users (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    user_id         TEXT NOT NULL,
    connection      TEXT NOT NULL,
    email           TEXT NOT NULL,   -- normalized (trimmed, lower-case)
    email_verified  INTEGER NOT NULL,
    password_hash   TEXT,            -- PHC string (Argon2id)
    name            TEXT NOT NULL,
    nickname        TEXT NOT NULL,
    picture         TEXT NOT NULL,
    blocked         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_login      INTEGER,
    logins_count    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, connection, email)
);

-- Browser sessions at the hosted login page. id_hash = SHA-256 of the cookie value.
CREATE TABLE sessions (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id_hash     BLOB NOT NULL,
    sid         TEXT NOT NULL,   -- public session id, the `sid` claim
    user_id     TEXT NOT NULL,
    auth_time   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

-- An /authorize request waiting for the user to sign in.
CREATE TABLE login_transactions (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    csrf_hash   BLOB NOT NULL,
    request     TEXT NOT NULL,   -- JSON of the validated authorization request
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX login_transactions_expiry ON login_transactions (expires_at);

CREATE TABLE authorization_codes (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    code_hash    BLOB NOT NULL,
    client_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    grant        TEXT NOT NULL,   -- JSON: scopes, audience, nonce, PKCE challenge, sid, auth_time
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    consumed_at  INTEGER,
    PRIMARY KEY (tenant_id, code_hash)
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- Access tokens issued without an audience: random strings good only at /userinfo.
CREATE TABLE opaque_tokens (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    token_hash  BLOB NOT NULL,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, token_hash)
);
CREATE INDEX opaque_tokens_expiry ON opaque_tokens (expires_at);

-- Consecutive failed logins per (account, IP), for brute-force protection.
CREATE TABLE login_failures (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    email       TEXT NOT NULL,
    ip          TEXT NOT NULL,
    failures    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, email, ip)
);
