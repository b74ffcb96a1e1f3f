-- Actions (Auth0's programmable policy): the draft an administrator edits, its secrets
-- (sealed by the server with the master key, bound to the action's id and the secret's
-- name), the versions each deploy snapshots, and the ordered bindings of each trigger.
-- An action supports exactly one trigger (trigger_id, trigger_version).
CREATE TABLE actions (
    tenant_id             TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id                    TEXT COLLATE "C" NOT NULL,
    name                  TEXT COLLATE "C" NOT NULL,
    trigger_id            TEXT COLLATE "C" NOT NULL,
    trigger_version       TEXT COLLATE "C" NOT NULL,
    code                  TEXT COLLATE "C" NOT NULL,
    dependencies          TEXT COLLATE "C" NOT NULL,
    runtime               TEXT COLLATE "C" NOT NULL,
    deployed_version_id   TEXT COLLATE "C",
    all_changes_deployed  BOOLEAN NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
-- Lists: oldest first, optionally of one trigger.
CREATE INDEX actions_created ON actions (tenant_id, created_at, id);
CREATE INDEX actions_trigger ON actions (tenant_id, trigger_id, created_at, id);

CREATE TABLE action_secrets (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    action_id   TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    sealed      BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, action_id, name),
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions(tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE action_versions (
    tenant_id     TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    action_id     TEXT COLLATE "C" NOT NULL,
    number        BIGINT NOT NULL,
    code          TEXT COLLATE "C" NOT NULL,
    dependencies  TEXT COLLATE "C" NOT NULL,
    runtime       TEXT COLLATE "C" NOT NULL,
    deployed      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, action_id, number),
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions(tenant_id, id) ON DELETE CASCADE
);

-- The secrets as they were when the version was deployed (still sealed to the action's
-- id and the secret's name).
CREATE TABLE action_version_secrets (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    version_id  TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    sealed      BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, version_id, name),
    FOREIGN KEY (tenant_id, version_id) REFERENCES action_versions(tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE trigger_bindings (
    tenant_id     TEXT COLLATE "C" NOT NULL,
    trigger_id    TEXT COLLATE "C" NOT NULL,
    position      BIGINT NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    action_id     TEXT COLLATE "C" NOT NULL,
    display_name  TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, trigger_id, position),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, action_id) REFERENCES actions(tenant_id, id)
);
-- Whether an action is bound (deleting one asks).
CREATE INDEX trigger_bindings_action ON trigger_bindings (tenant_id, action_id);

-- Legacy Rules: run in "order" before the post-login actions.
CREATE TABLE rules (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    id          TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    script      TEXT COLLATE "C" NOT NULL,
    ord         BIGINT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    stage       TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, ord)
);
CREATE INDEX rules_enabled ON rules (tenant_id, enabled, ord, id);

-- The `configuration` Rules see; values sealed, bound to their key.
CREATE TABLE rules_configs (
    tenant_id   TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    key         TEXT COLLATE "C" NOT NULL,
    sealed      BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
