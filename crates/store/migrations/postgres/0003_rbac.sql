-- Role-based access control: roles hold an API's permissions (its scopes); users get roles
-- and direct permissions. Deleting an API, role or user removes what referred to it.

CREATE TABLE roles (
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id           TEXT COLLATE "C" NOT NULL,   -- rol_…
    name         TEXT COLLATE "C" NOT NULL,
    description  TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE role_permissions (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    role_id     TEXT COLLATE "C" NOT NULL,
    audience    TEXT COLLATE "C" NOT NULL,   -- the API identifier
    permission  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, role_id, audience, permission),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles(tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, audience) REFERENCES resource_servers(tenant_id, identifier) ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE TABLE user_roles (
    tenant_id  TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    role_id    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, user_id, role_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles(tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_roles_role ON user_roles (tenant_id, role_id);

CREATE TABLE user_permissions (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    user_id     TEXT COLLATE "C" NOT NULL,
    audience    TEXT COLLATE "C" NOT NULL,
    permission  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, user_id, audience, permission),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, audience) REFERENCES resource_servers(tenant_id, identifier) ON DELETE CASCADE ON UPDATE CASCADE
);
