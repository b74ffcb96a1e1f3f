-- Identities linked to a user (Auth0's account linking): the secondary account's own row
-- in `users` is gone; signing in through this identity signs its primary user in.
-- `profile` is the upstream's last profile of it (JSON: email, email_verified, name,
-- nickname, picture), shown as Auth0's `profileData` and restored on unlinking.
CREATE TABLE linked_identities (
    tenant_id        TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    primary_user_id  TEXT NOT NULL,
    connection       TEXT NOT NULL,
    profile          TEXT NOT NULL,
    linked_at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, primary_user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
-- A user's identities, and a page of users' identities, are read by primary.
CREATE INDEX linked_identities_primary ON linked_identities (tenant_id, primary_user_id, user_id);
-- A connection is deleted only when no user nor identity of it is left.
CREATE INDEX linked_identities_connection ON linked_identities (tenant_id, connection);
