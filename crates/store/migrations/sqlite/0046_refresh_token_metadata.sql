-- A refresh token's metadata (`api.refreshToken.setMetadata`, `PATCH
-- /api/v2/refresh-tokens/{id}`), kept on its family — every token rotated out of one
-- sign-in: a JSON object of at most 25 strings, checked where it is written. NULL: none.
ALTER TABLE refresh_token_families ADD COLUMN metadata TEXT;
