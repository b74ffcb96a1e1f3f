-- Connections (Auth0's model): the database connection, seeded here with its fixed id,
-- and upstream identity providers. `options` is the JSON object the Management API shows;
-- the client secret is never in it but sealed by the server with the master key (bound to
-- the connection's id) in `sealed_secret`.
CREATE TABLE connections (
    tenant_id             TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id                    TEXT COLLATE "C" NOT NULL,
    name                  TEXT COLLATE "C" NOT NULL,
    display_name          TEXT COLLATE "C" NOT NULL,
    strategy              TEXT COLLATE "C" NOT NULL,
    options               TEXT COLLATE "C" NOT NULL,
    sealed_secret         BYTEA,
    show_as_button        BOOLEAN NOT NULL,
    is_domain_connection  BOOLEAN NOT NULL,
    metadata              TEXT COLLATE "C" NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
-- Lists are in id order, optionally of some strategies.
CREATE INDEX connections_strategy ON connections (tenant_id, strategy, id);

INSERT INTO connections (tenant_id, id, name, display_name, strategy, options, sealed_secret,
    show_as_button, is_domain_connection, metadata, created_at, updated_at)
SELECT id, 'con_TesseraDatabase1', 'Username-Password-Authentication',
    'Username-Password-Authentication', 'auth0', '{}', NULL, FALSE, FALSE, '{}', created_at, created_at
FROM tenants;

-- The applications an upstream connection is enabled for (the database connection is
-- enabled for every application and keeps no rows here).
CREATE TABLE connection_clients (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    connection_id  TEXT COLLATE "C" NOT NULL,
    client_id      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, client_id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections(tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, client_id) ON DELETE CASCADE
);
-- The login page asks which connections an application may use.
CREATE INDEX connection_clients_client ON connection_clients (tenant_id, client_id, connection_id);
