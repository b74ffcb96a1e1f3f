-- Tessera's first schema (PostgreSQL), the same tables as migrations/sqlite/0001. Every row
-- belongs to a tenant; only 'default' exists until tenants are served by host name. Times
-- are Unix seconds (BIGINT). Secrets (client secrets, codes, session ids, opaque tokens)
-- are stored as SHA-256. Text is COLLATE "C": byte order, as SQLite sorts, whatever the
-- database's locale.

CREATE TABLE tenants (
    id          TEXT COLLATE "C" PRIMARY KEY,
    created_at  BIGINT NOT NULL
);
INSERT INTO tenants (id, created_at) VALUES ('default', EXTRACT(EPOCH FROM now())::BIGINT);

CREATE TABLE signing_keys (
    tenant_id     TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    kid           TEXT COLLATE "C" NOT NULL,
    alg           TEXT COLLATE "C" NOT NULL,
    -- next -> current -> previous -> retired
    state         TEXT COLLATE "C" NOT NULL CHECK (state IN ('next', 'current', 'previous', 'retired')),
    private_key   BYTEA NOT NULL,   -- PKCS#8, sealed with the master key (AAD = kid)
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kid)
);
CREATE INDEX signing_keys_state ON signing_keys (tenant_id, alg, state);

CREATE TABLE resource_servers (
    tenant_id             TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id                    TEXT COLLATE "C" NOT NULL,
    name                  TEXT COLLATE "C" NOT NULL,
    identifier            TEXT COLLATE "C" NOT NULL,
    signing_alg           TEXT COLLATE "C" NOT NULL,
    token_lifetime        BIGINT NOT NULL,
    allow_offline_access  BOOLEAN NOT NULL,
    token_dialect         TEXT COLLATE "C" NOT NULL,
    enforce_policies      BOOLEAN NOT NULL,
    scopes                TEXT NOT NULL,   -- JSON [{value, description}]
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, identifier)
);

CREATE TABLE clients (
    tenant_id                   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    client_id                   TEXT COLLATE "C" NOT NULL,
    name                        TEXT COLLATE "C" NOT NULL,
    app_type                    TEXT COLLATE "C" NOT NULL,
    secret_hash                 BYTEA,
    token_endpoint_auth_method  TEXT COLLATE "C" NOT NULL,
    callbacks                   TEXT NOT NULL,   -- JSON arrays of strings
    web_origins                 TEXT NOT NULL,
    allowed_logout_urls         TEXT NOT NULL,
    grant_types                 TEXT NOT NULL,
    is_first_party              BOOLEAN NOT NULL,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE client_grants (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id          TEXT COLLATE "C" NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL,
    audience    TEXT COLLATE "C" NOT NULL,
    scope       TEXT NOT NULL,   -- JSON array
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, client_id, audience),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, audience) REFERENCES resource_servers(tenant_id, identifier) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE users (
    tenant_id       TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    user_id         TEXT COLLATE "C" NOT NULL,
    connection      TEXT COLLATE "C" NOT NULL,
    email           TEXT COLLATE "C" NOT NULL,   -- normalized (trimmed, lower-case)
    email_verified  BOOLEAN NOT NULL,
    password_hash   TEXT,            -- PHC string (Argon2id)
    name            TEXT COLLATE "C" NOT NULL,
    nickname        TEXT COLLATE "C" NOT NULL,
    picture         TEXT NOT NULL,
    blocked         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_login      BIGINT,
    logins_count    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, connection, email)
);

-- Browser sessions at the hosted login page. id_hash = SHA-256 of the cookie value.
CREATE TABLE sessions (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id_hash     BYTEA NOT NULL,
    sid         TEXT COLLATE "C" NOT NULL,   -- public session id, the `sid` claim
    user_id     TEXT COLLATE "C" NOT NULL,
    auth_time   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

-- An /authorize request waiting for the user to sign in.
CREATE TABLE login_transactions (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id          TEXT COLLATE "C" NOT NULL,
    csrf_hash   BYTEA NOT NULL,
    request     TEXT NOT NULL,   -- JSON of the validated authorization request
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX login_transactions_expiry ON login_transactions (expires_at);

-- "grant" is a reserved word in PostgreSQL: the statements quote it (SQLite accepts that).
CREATE TABLE authorization_codes (
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    code_hash    BYTEA NOT NULL,
    client_id    TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    redirect_uri TEXT NOT NULL,
    "grant"      TEXT NOT NULL,   -- JSON: scopes, audience, nonce, PKCE challenge, sid, auth_time
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    consumed_at  BIGINT,
    PRIMARY KEY (tenant_id, code_hash)
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- Access tokens issued without an audience: random strings good only at /userinfo.
CREATE TABLE opaque_tokens (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    token_hash  BYTEA NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL,
    user_id     TEXT COLLATE "C" NOT NULL,
    scope       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, token_hash)
);
CREATE INDEX opaque_tokens_expiry ON opaque_tokens (expires_at);

-- Consecutive failed logins per (account, IP), for brute-force protection.
CREATE TABLE login_failures (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    email       TEXT COLLATE "C" NOT NULL,
    ip          TEXT COLLATE "C" NOT NULL,
    failures    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, email, ip)
);
