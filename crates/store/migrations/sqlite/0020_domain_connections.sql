-- A third-party application now signs users in only through domain connections, as on
-- Auth0. Tessera's default database connection starts as one (third-party applications
-- keep signing users in with passwords; an administrator may close it to them), and so
-- does every connection already enabled for a third-party application, which keeps
-- signing users in after the upgrade.
UPDATE connections SET is_domain_connection = TRUE
WHERE id = 'con_TesseraDatabase1' OR EXISTS (
    SELECT 1 FROM connection_clients cc JOIN clients k
        ON k.tenant_id = cc.tenant_id AND k.client_id = cc.client_id
    WHERE cc.tenant_id = connections.tenant_id AND cc.connection_id = connections.id
        AND k.is_first_party = FALSE
);
