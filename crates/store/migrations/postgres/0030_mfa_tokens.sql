-- Auth0's MFA API (issue 17): a password grant that needs a second factor answers
-- `mfa_required` with an `mfa_token`; the token names this half-finished sign-in while the
-- application asks for and checks the second factor. `token_hash` is the SHA-256 of the
-- token; `grant` what the password grant asked (JSON); `recovery_hash` the recovery code
-- handed out by /mfa/associate, kept until the enrollment is confirmed.
CREATE TABLE mfa_tokens (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    token_hash     BYTEA NOT NULL,
    client_id      TEXT COLLATE "C" NOT NULL,
    user_id        TEXT COLLATE "C" NOT NULL,
    "grant"        TEXT COLLATE "C" NOT NULL,
    recovery_hash  BYTEA,
    expires_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, token_hash)
);
CREATE INDEX mfa_tokens_expiry ON mfa_tokens (expires_at);
