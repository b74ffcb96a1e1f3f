-- PostgreSQL's migration 0036 notifies the nodes of writes to `tenants`. SQLite has one
-- node and nothing to notify: this keeps both backends' migrations numbered alike.
SELECT 1;
