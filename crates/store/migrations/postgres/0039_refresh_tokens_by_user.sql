-- A user's refresh tokens, listed by id (the Management API's `/users/{id}/refresh-tokens`,
-- paged by checkpoint): the index ends in the family's id, so a page is read in order
-- without sorting the user's families. The older `(tenant_id, user_id)` index stays for
-- now: migrations within a release only add (it is dropped a release later).
CREATE INDEX refresh_token_families_user_id ON refresh_token_families (tenant_id, user_id, family_id);
