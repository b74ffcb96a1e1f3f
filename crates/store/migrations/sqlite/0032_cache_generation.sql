-- Cluster cache invalidation (issue 18; see the PostgreSQL migration of the same name).
-- An SQLite database has one node, which needs no word from others: the row is here so
-- both schemas hold the same tables, and nothing moves it.
CREATE TABLE cache_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO cache_generation (id, generation) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
