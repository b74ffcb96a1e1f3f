-- Email verification tickets: the link a verification mail carries. ticket_hash = SHA-256
-- of the ticket (256 random bits); the ticket itself is never stored. A ticket verifies
-- the address it was issued for (`email`): after a change of address it verifies nothing.
-- Single use (deleted when redeemed); several may be live for one user.
CREATE TABLE email_verification_tickets (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    ticket_hash  BLOB NOT NULL,
    user_id      TEXT NOT NULL,
    email        TEXT NOT NULL,
    result_url   TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, ticket_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX email_verification_tickets_expiry ON email_verification_tickets (expires_at);
-- Deleting a user finds its tickets through this index.
CREATE INDEX email_verification_tickets_user ON email_verification_tickets (tenant_id, user_id);

-- The tenant's email templates (/api/v2/email-templates/{name}): one JSON document per
-- template name, in the Management API's shape. A name never created has no row.
CREATE TABLE email_templates (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    template   TEXT NOT NULL,
    document   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, template)
);

-- The tenant's email provider (/api/v2/emails/provider), at most one: its members as the
-- Management API shows them (JSON, never the SMTP password) and the password sealed with
-- the master key (AES-256-GCM, bound to the tenant).
CREATE TABLE email_providers (
    tenant_id        TEXT NOT NULL PRIMARY KEY REFERENCES tenants(id),
    document         TEXT NOT NULL,
    sealed_password  BLOB
);
