-- What an administrator sees of a user's login sessions (the Management API's
-- `/users/{id}/sessions`, `/sessions/{id}`): where the session started (address, user
-- agent) and where and when it was last used. A use is written at most once a minute
-- (with the session's extension, when it has one), so `last_interacted_at` is exact to
-- the minute. NULL for sessions from before.
ALTER TABLE sessions ADD COLUMN initial_ip TEXT;
ALTER TABLE sessions ADD COLUMN initial_user_agent TEXT;
ALTER TABLE sessions ADD COLUMN last_ip TEXT;
ALTER TABLE sessions ADD COLUMN last_user_agent TEXT;
ALTER TABLE sessions ADD COLUMN last_interacted_at INTEGER;
-- A user's sessions, listed by id (paged by checkpoint), and one session by its id (the
-- `sid` claim). The older `(tenant_id, user_id)` index stays for now: migrations within
-- a release only add.
CREATE INDEX sessions_user_sid ON sessions (tenant_id, user_id, sid);
CREATE INDEX sessions_sid ON sessions (tenant_id, sid);
