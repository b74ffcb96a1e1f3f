-- A user signed in through an upstream that shares no email address has none (as on
-- Auth0). UNIQUE (tenant_id, connection, email) stays: NULLs are distinct, so a
-- connection may have any number of users without an email.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;

-- Sorted by email, users without one come first ascending (SQLite's rule for NULL, as
-- for last_login): the index is built in that order so it still serves the sort.
DROP INDEX users_email;
CREATE INDEX users_email ON users (tenant_id, email NULLS FIRST, user_id);
