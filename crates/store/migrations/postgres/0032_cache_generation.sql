-- Cluster cache invalidation (issue 18). Nodes keep configuration rows in memory (the
-- client-credentials cache, the signing keys, the Actions and Rules programs, upstream
-- providers). Every write to a table those caches read, by any writer (a node's
-- Management API, the CLI, a newer release), runs `tessera_invalidate` in its own
-- transaction: it bumps the one `cache_generation` row and NOTIFYs the channel
-- `tessera_invalidate` with `{"kind": TABLE, "id": KEY, "generation": N}`. PostgreSQL
-- delivers the notification at COMMIT only (a rolled-back write says nothing). Each node
-- LISTENs and drops what the row touched; it reads `cache_generation` every few seconds
-- as a backstop and flushes everything when it moved without its having heard why.
-- Only these rarely written tables have the trigger: never the token or login tables
-- (a commit with NOTIFY takes a global lock). The key is cut to 256 characters: a
-- payload is limited to 8000 bytes, and a longer id only makes a node forget more.
CREATE TABLE cache_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO cache_generation (id, generation) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

CREATE FUNCTION tessera_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed  JSONB;
    bumped   BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    UPDATE cache_generation SET generation = generation + 1 WHERE id = 1
        RETURNING generation INTO bumped;
    PERFORM pg_notify('tessera_invalidate', json_build_object(
        'kind', TG_TABLE_NAME,
        'id', left(changed ->> TG_ARGV[0], 256),
        'generation', bumped)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER clients_invalidate AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('client_id');
CREATE TRIGGER client_grants_invalidate AFTER INSERT OR UPDATE OR DELETE ON client_grants
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('client_id');
CREATE TRIGGER client_credentials_invalidate AFTER INSERT OR UPDATE OR DELETE ON client_credentials
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('client_id');
CREATE TRIGGER resource_servers_invalidate AFTER INSERT OR UPDATE OR DELETE ON resource_servers
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('identifier');
CREATE TRIGGER signing_keys_invalidate AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('kid');
CREATE TRIGGER connections_invalidate AFTER INSERT OR UPDATE OR DELETE ON connections
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('id');
CREATE TRIGGER connection_clients_invalidate AFTER INSERT OR UPDATE OR DELETE ON connection_clients
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('connection_id');
CREATE TRIGGER actions_invalidate AFTER INSERT OR UPDATE OR DELETE ON actions
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('id');
CREATE TRIGGER action_versions_invalidate AFTER INSERT OR UPDATE OR DELETE ON action_versions
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('action_id');
CREATE TRIGGER action_secrets_invalidate AFTER INSERT OR UPDATE OR DELETE ON action_secrets
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('action_id');
CREATE TRIGGER action_version_secrets_invalidate AFTER INSERT OR UPDATE OR DELETE ON action_version_secrets
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('version_id');
CREATE TRIGGER trigger_bindings_invalidate AFTER INSERT OR UPDATE OR DELETE ON trigger_bindings
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('trigger_id');
CREATE TRIGGER rules_invalidate AFTER INSERT OR UPDATE OR DELETE ON rules
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('id');
CREATE TRIGGER rules_configs_invalidate AFTER INSERT OR UPDATE OR DELETE ON rules_configs
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('key');
