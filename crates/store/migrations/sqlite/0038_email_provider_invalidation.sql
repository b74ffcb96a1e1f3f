-- The tenant's email provider joins the cached tables (migration 0037): every write to it
-- bumps `cache_generation`, so a server keeping it (the login page asks on every view
-- whether it may offer "Forgot password?") forgets it when the CLI or another process
-- changes it. The same table as PostgreSQL's trigger (0038).
CREATE TRIGGER email_providers_invalidate_insert AFTER INSERT ON email_providers
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER email_providers_invalidate_update AFTER UPDATE ON email_providers
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER email_providers_invalidate_delete AFTER DELETE ON email_providers
    BEGIN UPDATE cache_generation SET generation = generation + 1 WHERE id = 1; END;
