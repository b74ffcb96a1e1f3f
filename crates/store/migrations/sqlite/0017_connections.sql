-- Connections (Auth0's model): the database connection, seeded here with its fixed id,
-- and upstream identity providers. `options` is the JSON object the Management API shows;
-- the client secret is never in it but sealed by the server with the master key (bound to
-- the connection's id) in `sealed_secret`.
CREATE TABLE connections (
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    id                    TEXT NOT NULL,
    name                  TEXT NOT NULL,
    display_name          TEXT NOT NULL,
    strategy              TEXT NOT NULL,
    options               TEXT NOT NULL,
    sealed_secret         BLOB,
    show_as_button        INTEGER NOT NULL,
    is_domain_connection  INTEGER NOT NULL,
    metadata              TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
-- Lists are in id order, optionally of some strategies.
CREATE INDEX connections_strategy ON connections (tenant_id, strategy, id);

INSERT INTO connections (tenant_id, id, name, display_name, strategy, options, sealed_secret,
    show_as_button, is_domain_connection, metadata, created_at, updated_at)
SELECT id, 'con_TesseraDatabase1', 'Username-Password-Authentication',
    'Username-Password-Authentication', 'auth0', '{}', NULL, 0, 0, '{}', created_at, created_at
FROM tenants;

-- The applications an upstream connection is enabled for (the database connection is
-- enabled for every application and keeps no rows here).
CREATE TABLE connection_clients (
    tenant_id      TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, client_id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections(tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, client_id) ON DELETE CASCADE
);
-- The login page asks which connections an application may use.
CREATE INDEX connection_clients_client ON connection_clients (tenant_id, client_id, connection_id);
