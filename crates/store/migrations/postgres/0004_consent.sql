-- Consent (Auth0's user grants) and the APIs an application may be authorized for.

-- What a user allowed a third-party application to do with one API. `audience` is the API
-- identifier, or `<issuer>userinfo` for requests without an audience (identity only). No
-- foreign key to resource_servers for that reason; deleting an API deletes its rows in code.
CREATE TABLE consents (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id          TEXT COLLATE "C" NOT NULL,
    user_id     TEXT COLLATE "C" NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL,
    audience    TEXT COLLATE "C" NOT NULL,
    scopes      TEXT NOT NULL,   -- JSON array of the allowed scopes
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_id, client_id, audience),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, client_id) ON DELETE CASCADE
);
CREATE INDEX consents_client ON consents (tenant_id, client_id);
CREATE INDEX consents_audience ON consents (tenant_id, audience);

-- JSON array of API identifiers users may authorize the application for; NULL: every API.
ALTER TABLE clients ADD COLUMN allowed_apis TEXT;
