-- The server keeps configuration rows in memory on SQLite too (applications, APIs, the
-- tenant's settings, read several times a sign-in; each read is a round trip to an SQLite
-- connection's thread). What else may write the file while it runs — the CLI, a second
-- process — says nothing, so every write to a cached table bumps the `cache_generation`
-- counter of migration 0032 in the writing transaction; the server reads the counter
-- twice a second and forgets everything it keeps when it moved. The same tables as
-- PostgreSQL's triggers (0032, 0036); never the token or login tables.

CREATE TRIGGER clients_invalidate_insert AFTER INSERT ON clients
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER clients_invalidate_update AFTER UPDATE ON clients
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER clients_invalidate_delete AFTER DELETE ON clients
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_grants_invalidate_insert AFTER INSERT ON client_grants
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_grants_invalidate_update AFTER UPDATE ON client_grants
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_grants_invalidate_delete AFTER DELETE ON client_grants
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_credentials_invalidate_insert AFTER INSERT ON client_credentials
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_credentials_invalidate_update AFTER UPDATE ON client_credentials
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER client_credentials_invalidate_delete AFTER DELETE ON client_credentials
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER resource_servers_invalidate_insert AFTER INSERT ON resource_servers
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER resource_servers_invalidate_update AFTER UPDATE ON resource_servers
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER resource_servers_invalidate_delete AFTER DELETE ON resource_servers
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER signing_keys_invalidate_insert AFTER INSERT ON signing_keys
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER signing_keys_invalidate_update AFTER UPDATE ON signing_keys
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER signing_keys_invalidate_delete AFTER DELETE ON signing_keys
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER connections_invalidate_insert AFTER INSERT ON connections
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER connections_invalidate_update AFTER UPDATE ON connections
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER connections_invalidate_delete AFTER DELETE ON connections
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER connection_clients_invalidate_insert AFTER INSERT ON connection_clients
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER connection_clients_invalidate_update AFTER UPDATE ON connection_clients
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER connection_clients_invalidate_delete AFTER DELETE ON connection_clients
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER actions_invalidate_insert AFTER INSERT ON actions
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER actions_invalidate_update AFTER UPDATE ON actions
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER actions_invalidate_delete AFTER DELETE ON actions
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER action_versions_invalidate_insert AFTER INSERT ON action_versions
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER action_versions_invalidate_update AFTER UPDATE ON action_versions
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER action_versions_invalidate_delete AFTER DELETE ON action_versions
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER action_secrets_invalidate_insert AFTER INSERT ON action_secrets
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER action_secrets_invalidate_update AFTER UPDATE ON action_secrets
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER action_secrets_invalidate_delete AFTER DELETE ON action_secrets
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER action_version_secrets_invalidate_insert AFTER INSERT ON action_version_secrets
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER action_version_secrets_invalidate_update AFTER UPDATE ON action_version_secrets
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER action_version_secrets_invalidate_delete AFTER DELETE ON action_version_secrets
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER trigger_bindings_invalidate_insert AFTER INSERT ON trigger_bindings
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER trigger_bindings_invalidate_update AFTER UPDATE ON trigger_bindings
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER trigger_bindings_invalidate_delete AFTER DELETE ON trigger_bindings
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER rules_invalidate_insert AFTER INSERT ON rules
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER rules_invalidate_update AFTER UPDATE ON rules
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER rules_invalidate_delete AFTER DELETE ON rules
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER rules_configs_invalidate_insert AFTER INSERT ON rules_configs
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER rules_configs_invalidate_update AFTER UPDATE ON rules_configs
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER rules_configs_invalidate_delete AFTER DELETE ON rules_configs
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_invalidate_insert AFTER INSERT ON tenants
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_invalidate_update AFTER UPDATE ON tenants
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_invalidate_delete AFTER DELETE ON tenants
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
