-- Request throttles that every node of a cluster counts together (issue 18): one fixed
-- window of attempts per (kind, key) — `login` by client network — which a new window
-- replaces when the last one has ended (`expires_at`, seconds); the purge takes the ended.
-- (SQLite has one node: the server counts in memory, the table stays empty.)
CREATE TABLE throttle_windows (
    tenant_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, key)
);
CREATE INDEX throttle_windows_expiry ON throttle_windows (expires_at);
