-- Lists are paged in SQL: one index per order a Management API list (and the CLI) reads,
-- and per filter it searches, so a page costs the same with a thousand rows or a million.
-- Each ends with the row's id, the tie-break of every order, so the index alone gives
-- the page in order and a keyset (`from`) resumes exactly where the last page ended.

-- Users: the default order (created_at), the other sortable columns, and the searchable
-- ones (email is stored lower-case; name is searched case-insensitively through lower()).
CREATE INDEX users_created ON users (tenant_id, created_at, user_id);
CREATE INDEX users_updated ON users (tenant_id, updated_at, user_id);
CREATE INDEX users_last_login ON users (tenant_id, last_login, user_id);
CREATE INDEX users_email ON users (tenant_id, email, user_id);
CREATE INDEX users_name ON users (tenant_id, lower(name), user_id);

CREATE INDEX clients_created ON clients (tenant_id, created_at, client_id);
CREATE INDEX resource_servers_created ON resource_servers (tenant_id, created_at, id);
-- Client grants by page (created_at) and by checkpoint (id), all of them or one
-- application's or one API's.
CREATE INDEX client_grants_created ON client_grants (tenant_id, created_at, id);
CREATE INDEX client_grants_client_created ON client_grants (tenant_id, client_id, created_at, id);
CREATE INDEX client_grants_client_id ON client_grants (tenant_id, client_id, id);
CREATE INDEX client_grants_audience_created ON client_grants (tenant_id, audience, created_at, id);
CREATE INDEX client_grants_audience_id ON client_grants (tenant_id, audience, id);

-- A role's members in user_id order (pages and checkpoints); replaces (tenant_id, role_id).
DROP INDEX user_roles_role;
CREATE INDEX user_roles_role ON user_roles (tenant_id, role_id, user_id);
