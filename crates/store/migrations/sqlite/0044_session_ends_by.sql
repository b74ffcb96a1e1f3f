-- The latest end a post-login action allowed a session (`api.session.setExpiresAt`, in
-- seconds): a use extends the session by the idle lifetime, never past this. NULL: only
-- the tenant's lifetimes bound it.
ALTER TABLE sessions ADD COLUMN ends_by INTEGER;
