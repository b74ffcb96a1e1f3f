-- WebAuthn credentials (issue 16): security keys and platform authenticators as second
-- factors, passkeys as a first. `id` is Tessera's authentication-method id
-- (`webauthn-roaming|dev_…`); `credential_id` is the authenticator's, unique per tenant
-- (an assertion names it). `public_key` is the COSE_Key as registered; `sign_count` the last
-- signature counter accepted (a counter that does not rise is a cloned authenticator).
-- `kind`: `webauthn-roaming`, `webauthn-platform` or `passkey`. `transports`: a JSON array.
CREATE TABLE webauthn_credentials (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    credential_id  BLOB NOT NULL,
    public_key     BLOB NOT NULL,
    sign_count     INTEGER NOT NULL,
    transports     TEXT NOT NULL DEFAULT '[]',
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, credential_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (tenant_id, user_id, created_at);
