-- Sessions by when they were signed in: a tenant's absolute session lifetime applies to
-- sessions already open, so when it is lowered, sessions signed in before the new limit
-- are over though their stored end is later. The purge finds them through this index
-- (and tells their applications, as for any expired session). On `auth_time` alone, as
-- `sessions_expiry` is on `expires_at`: with `tenant_id` first, SQLite took it over
-- `sessions_sid` for one session by its id (whose read also bounds `auth_time`).
CREATE INDEX sessions_signed_in ON sessions (auth_time);
