-- A session's metadata (`api.session.setMetadata`, `PATCH /api/v2/sessions/{id}`): a JSON
-- object of at most 25 strings, keys and values of at most 255 characters, checked where
-- it is written. NULL: none.
ALTER TABLE sessions ADD COLUMN metadata TEXT;
