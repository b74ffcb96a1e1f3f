-- Request throttles that every node of a cluster counts together (issue 18): one fixed
-- window of attempts per (kind, key) — `login` by client network — which a new window
-- replaces when the last one has ended (`expires_at`, seconds); the purge takes the ended.
CREATE TABLE throttle_windows (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    attempts    BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, key)
);
CREATE INDEX throttle_windows_expiry ON throttle_windows (expires_at);
