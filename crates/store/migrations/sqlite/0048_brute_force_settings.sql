-- The tenant's brute-force protection (`/api/v2/attack-protection/brute-force-protection`),
-- a JSON object of the members an administrator set; `{}`: Tessera's defaults.
ALTER TABLE tenants ADD COLUMN brute_force TEXT NOT NULL DEFAULT '{}';
