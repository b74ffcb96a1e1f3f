-- The audit log (issue 18): one row per event in Auth0's shape — `type` is Auth0's code
-- (`s`, `fp`, `seacft`, `sapi`, …), `logged_at` the time in milliseconds, `details` a JSON
-- object without secrets. `log_id` grows with every row written, never reused (hence
-- AUTOINCREMENT: a purge that empties the table must not restart it), so a reader resumes
-- by checkpoint (`log_id > from`) and `GET /api/v2/logs` shows it as a sortable string.
-- Indexes: the checkpoint order, and the search's filters each ending in the date order.
CREATE TABLE logs (
    log_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL,
    logged_at    INTEGER NOT NULL,
    type         TEXT NOT NULL,
    description  TEXT,
    client_id    TEXT,
    client_name  TEXT,
    user_id      TEXT,
    user_name    TEXT,
    connection   TEXT,
    ip           TEXT,
    user_agent   TEXT,
    audience     TEXT,
    scope        TEXT,
    details      TEXT NOT NULL
);
CREATE INDEX logs_checkpoint ON logs (tenant_id, log_id);
CREATE INDEX logs_date ON logs (tenant_id, logged_at, log_id);
CREATE INDEX logs_type ON logs (tenant_id, type, logged_at, log_id);
CREATE INDEX logs_user ON logs (tenant_id, user_id, logged_at, log_id);
CREATE INDEX logs_client ON logs (tenant_id, client_id, logged_at, log_id);
