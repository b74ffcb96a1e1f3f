-- RFC 8628 device authorization (issue 17). `device_code_hash` is the SHA-256 of the device
-- code, a bearer secret the device polls with; `user_code` is what the person types at
-- /activate (8 letters, stored without the dash), unique so one code names one device.
-- `status`: pending, approved (by `user_id`, with `grant` — what was decided at the confirm
-- page), denied, redeemed (tokens issued, once). `poll_interval` grows by `slow_down`;
-- `last_polled_at` is when the device last asked. Rows go with the purge past `expires_at`.
CREATE TABLE device_codes (
    tenant_id         TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    device_code_hash  BYTEA NOT NULL,
    user_code         TEXT COLLATE "C" NOT NULL,
    client_id         TEXT COLLATE "C" NOT NULL,
    scope             TEXT NOT NULL,
    audience          TEXT,
    status            TEXT NOT NULL DEFAULT 'pending',
    user_id           TEXT,
    "grant"           TEXT,
    poll_interval     BIGINT NOT NULL,
    last_polled_at    BIGINT,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_code_hash),
    UNIQUE (tenant_id, user_code)
);
CREATE INDEX device_codes_expiry ON device_codes (expires_at);
