-- no-transaction
-- A user signed in through an upstream that shares no email address has none (as on
-- Auth0). SQLite cannot drop a NOT NULL, so `users` is rebuilt as its documentation
-- prescribes ("Making Other Kinds Of Table Schema Changes"): foreign keys off outside a
-- transaction (the pragma is a no-op inside one), so dropping the old table cascades to
-- none of the many tables referencing users(tenant_id, user_id); the new table takes the
-- old name, and those references resolve to it again. UNIQUE (tenant_id, connection,
-- email) stays: NULLs are distinct, so a connection may have any number of users
-- without an email. The columns are 0001's and 0006's, in their order.
PRAGMA foreign_keys = OFF;

BEGIN;

CREATE TABLE users_new (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    user_id         TEXT NOT NULL,
    connection      TEXT NOT NULL,
    email           TEXT,            -- normalized (trimmed, lower-case); NULL: none shared
    email_verified  INTEGER NOT NULL,
    password_hash   TEXT,            -- PHC string (Argon2id)
    name            TEXT NOT NULL,
    nickname        TEXT NOT NULL,
    picture         TEXT NOT NULL,
    blocked         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_login      INTEGER,
    logins_count    INTEGER NOT NULL DEFAULT 0,
    user_metadata   TEXT NOT NULL DEFAULT '{}',
    app_metadata    TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, connection, email)
);

INSERT INTO users_new (tenant_id, user_id, connection, email, email_verified, password_hash,
    name, nickname, picture, blocked, created_at, updated_at, last_login, logins_count,
    user_metadata, app_metadata)
SELECT tenant_id, user_id, connection, email, email_verified, password_hash,
    name, nickname, picture, blocked, created_at, updated_at, last_login, logins_count,
    user_metadata, app_metadata
FROM users;

DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- 0008's indexes, which went with the old table.
CREATE INDEX users_created ON users (tenant_id, created_at, user_id);
CREATE INDEX users_updated ON users (tenant_id, updated_at, user_id);
CREATE INDEX users_last_login ON users (tenant_id, last_login, user_id);
CREATE INDEX users_email ON users (tenant_id, email, user_id);
CREATE INDEX users_name ON users (tenant_id, lower(name), user_id);

-- PRAGMA foreign_key_check only reports; a violation fails this insert (and with it the
-- migration, before anything is committed).
CREATE TEMP TABLE users_rebuild_check (violations INTEGER NOT NULL CHECK (violations = 0));
INSERT INTO users_rebuild_check SELECT COUNT(*) FROM pragma_foreign_key_check;
DROP TABLE users_rebuild_check;

COMMIT;

PRAGMA foreign_keys = ON;
