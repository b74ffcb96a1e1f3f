-- OIDC Back-Channel Logout. An application's settings, Auth0's `oidc_logout` as JSON
-- (NULL: the application is not told when a session ends).
ALTER TABLE clients ADD COLUMN oidc_logout TEXT;
-- The applications with a back-channel URL that a login session was used with (an
-- /authorize answered with it), written with the code. `expires_at` is the session's
-- absolute end as the tenant's lifetime was then; the purge takes what is left after.
CREATE TABLE session_clients (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    sid         TEXT COLLATE "C" NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sid, client_id)
);
CREATE INDEX session_clients_expiry ON session_clients (expires_at);
-- Logout tokens to post: one row per application of an ended session, written in the
-- transaction that ends it, deleted once delivered or given up. A node claims a row
-- (`claimed_until`) before posting, so two nodes never post one notice at once.
CREATE TABLE logout_notices (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       TEXT COLLATE "C" NOT NULL,
    client_id       TEXT COLLATE "C" NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL,
    sid             TEXT COLLATE "C" NOT NULL,
    initiator       TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX logout_notices_due ON logout_notices (tenant_id, next_attempt_at, id);
