-- The links a blocked-account mail carries (brute-force protection's `user_notification`
-- shield): a ticket lifts one block — the account's count from one network, or over every
-- network (`counted_at` ''). Only the ticket's SHA-256 is kept; the user's deletion takes it.
CREATE TABLE unblock_tickets (
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    ticket_hash  BYTEA NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    email        TEXT COLLATE "C" NOT NULL,
    counted_at   TEXT COLLATE "C" NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, ticket_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX unblock_tickets_expiry ON unblock_tickets (expires_at);
-- Deleting a user finds its tickets through this index.
CREATE INDEX unblock_tickets_user ON unblock_tickets (tenant_id, user_id);
