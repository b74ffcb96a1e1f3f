-- SQLite's migration 0037 gives its cached tables the triggers PostgreSQL's have had
-- since 0032 (bumping `cache_generation`). Nothing to do here: this keeps both backends'
-- migrations numbered alike.
SELECT 1;
