-- The tenant's email provider joins the tables whose every write notifies the nodes
-- (migration 0032): nodes keep it in memory, since the login page asks on every view
-- whether it may offer "Forgot password?". The row's key is the tenant's id.
CREATE TRIGGER email_providers_invalidate AFTER INSERT OR UPDATE OR DELETE ON email_providers
    FOR EACH ROW EXECUTE FUNCTION tessera_invalidate('tenant_id');
