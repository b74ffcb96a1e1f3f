-- Jobs of the Management API (/api/v2/jobs/…): bulk user imports and exports today,
-- verification emails later. `type` is an open string so a new kind needs no migration;
-- `details` holds what one type needs (an export's format and fields, the hash of its
-- download token) as a JSON object. A job lives until `expires_at`, then is purged with
-- its errors.
CREATE TABLE jobs (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    id             TEXT NOT NULL,
    type           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    connection_id  TEXT,
    external_id    TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    summary        TEXT,            -- JSON {failed, updated, inserted, total} once known
    details        TEXT NOT NULL,   -- JSON object, '{}' when the type needs nothing
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX jobs_expiry ON jobs (expires_at);

-- One row per failed item of a job, in input order; GET /jobs/{id}/errors pages them.
CREATE TABLE job_errors (
    tenant_id  TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    position   INTEGER NOT NULL,
    error      TEXT NOT NULL,       -- JSON {user, errors: [{code, message, path}]}
    PRIMARY KEY (tenant_id, job_id, position),
    FOREIGN KEY (tenant_id, job_id) REFERENCES jobs(tenant_id, id) ON DELETE CASCADE
);
