-- The tenant's settings and Guardian row join the tables whose every write notifies the
-- nodes (migration 0032): nodes keep them in memory, read several times a sign-in.
CREATE TRIGGER tenants_invalidate AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('id');
