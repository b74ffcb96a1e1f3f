-- Log streams (issue 18): the audit log pushed to an HTTP receiver, in checkpoint order.
-- `sink` is Auth0's sink object without its authorization, which is sealed with the
-- master key in `sealed_authorization`; `filters` Auth0's filter array (JSON). `cursor_log_id`
-- is the last `log_id` delivered (or skipped by the filters); `failures` the consecutive
-- failed deliveries, `last_error` a short status line without secrets, `next_attempt_at`
-- (milliseconds) when a failed stream is tried again. One node delivers a stream at a
-- time: it claims a lease (`lease_owner` until `lease_until`, milliseconds).
CREATE TABLE log_streams (
    tenant_id             TEXT COLLATE "C" NOT NULL,
    id                    TEXT COLLATE "C" NOT NULL,
    name                  TEXT NOT NULL,
    type                  TEXT COLLATE "C" NOT NULL,
    status                TEXT COLLATE "C" NOT NULL,
    sink                  TEXT NOT NULL,
    sealed_authorization  BYTEA,
    filters               TEXT NOT NULL,
    is_priority           BOOLEAN NOT NULL,
    cursor_log_id         BIGINT NOT NULL,
    failures              BIGINT NOT NULL DEFAULT 0,
    last_error            TEXT,
    next_attempt_at       BIGINT NOT NULL DEFAULT 0,
    lease_owner           TEXT,
    lease_until           BIGINT NOT NULL DEFAULT 0,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
