-- WebAuthn credentials (issue 16): security keys and platform authenticators as second
-- factors, passkeys as a first. `id` is Tessera's authentication-method id
-- (`webauthn-roaming|dev_…`); `credential_id` is the authenticator's, unique per tenant
-- (an assertion names it). `public_key` is the COSE_Key as registered; `sign_count` the last
-- signature counter accepted (a counter that does not rise is a cloned authenticator).
-- `kind`: `webauthn-roaming`, `webauthn-platform` or `passkey`. `transports`: a JSON array.
CREATE TABLE webauthn_credentials (
    tenant_id      TEXT COLLATE "C" NOT NULL,
    id             TEXT COLLATE "C" NOT NULL,
    user_id        TEXT COLLATE "C" NOT NULL,
    credential_id  BYTEA NOT NULL,
    public_key     BYTEA NOT NULL,
    sign_count     BIGINT NOT NULL,
    transports     TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    kind           TEXT COLLATE "C" NOT NULL,
    name           TEXT COLLATE "C" NOT NULL,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, credential_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (tenant_id, user_id, created_at);
