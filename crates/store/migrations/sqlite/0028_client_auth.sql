-- Per-application "require PAR" and private_key_jwt client authentication (issue 17).
-- `require_pushed_authorization_requests`: /authorize takes this application's requests
-- only through a request_uri from /oauth/par (Auth0's member of the same name).
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests INTEGER NOT NULL DEFAULT 0;
-- Auth0's `client_authentication_methods.private_key_jwt.credentials`: a JSON array of the
-- ids of the credentials that authenticate the application. NULL: it authenticates by its
-- token_endpoint_auth_method (a secret, or none); set: by a signed assertion only.
ALTER TABLE clients ADD COLUMN private_key_jwt_credentials TEXT;

-- An application's public keys (Auth0's client credentials, `credential_type` public_key).
-- `public_key` is the SubjectPublicKeyInfo DER; `kid` its RFC 7638 thumbprint; `alg` the
-- one algorithm assertions signed with it may use. A handful per application (the server
-- bounds the count), gone with their application.
CREATE TABLE client_credentials (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    kid          TEXT NOT NULL,
    alg          TEXT NOT NULL,
    public_key   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, client_id) ON DELETE CASCADE
);
CREATE INDEX client_credentials_client ON client_credentials (tenant_id, client_id, created_at, id);

-- The `jti` of every client assertion accepted, kept until the assertion expires: an
-- assertion works once, on any node.
CREATE TABLE client_assertion_jtis (
    tenant_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, client_id, jti)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);
