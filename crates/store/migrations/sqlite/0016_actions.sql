-- Actions (Auth0's programmable policy): the draft an administrator edits, its secrets
-- (sealed by the server with the master key, bound to the action's id and the secret's
-- name), the versions each deploy snapshots, and the ordered bindings of each trigger.
-- An action supports exactly one trigger (trigger_id, trigger_version).
CREATE TABLE actions (
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    id                    TEXT NOT NULL,
    name                  TEXT NOT NULL,
    trigger_id            TEXT NOT NULL,
    trigger_version       TEXT NOT NULL,
    code                  TEXT NOT NULL,
    dependencies          TEXT NOT NULL,
    runtime               TEXT NOT NULL,
    deployed_version_id   TEXT,
    all_changes_deployed  INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
-- Lists: oldest first, optionally of one trigger.
CREATE INDEX actions_created ON actions (tenant_id, created_at, id);
CREATE INDEX actions_trigger ON actions (tenant_id, trigger_id, created_at, id);

CREATE TABLE action_secrets (
    tenant_id   TEXT NOT NULL,
    action_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, action_id, name),
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions(tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE action_versions (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    action_id     TEXT NOT NULL,
    number        INTEGER NOT NULL,
    code          TEXT NOT NULL,
    dependencies  TEXT NOT NULL,
    runtime       TEXT NOT NULL,
    deployed      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, action_id, number),
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions(tenant_id, id) ON DELETE CASCADE
);

-- The secrets as they were when the version was deployed (still sealed to the action's
-- id and the secret's name).
CREATE TABLE action_version_secrets (
    tenant_id   TEXT NOT NULL,
    version_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, version_id, name),
    FOREIGN KEY (tenant_id, version_id) REFERENCES action_versions(tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE trigger_bindings (
    tenant_id     TEXT NOT NULL,
    trigger_id    TEXT NOT NULL,
    position      INTEGER NOT NULL,
    id            TEXT NOT NULL,
    action_id     TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, trigger_id, position),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions(tenant_id, id)
);
-- Whether an action is bound (deleting one asks).
CREATE INDEX trigger_bindings_action ON trigger_bindings (tenant_id, action_id);

-- Legacy Rules: run in "order" before the post-login actions.
CREATE TABLE rules (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    script      TEXT NOT NULL,
    ord         INTEGER NOT NULL,
    enabled     INTEGER NOT NULL,
    stage       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, ord)
);
CREATE INDEX rules_enabled ON rules (tenant_id, enabled, ord, id);

-- The `configuration` Rules see; values sealed, bound to their key.
CREATE TABLE rules_configs (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    key         TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
