-- The tenant's settings as the Management API's /tenants/settings holds them: one JSON
-- object, '{}' until something is set.
ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
