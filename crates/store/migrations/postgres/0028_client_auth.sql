-- Per-application "require PAR" and private_key_jwt client authentication (issue 17).
-- `require_pushed_authorization_requests`: /authorize takes this application's requests
-- only through a request_uri from /oauth/par (Auth0's member of the same name).
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT FALSE;
-- Auth0's `client_authentication_methods.private_key_jwt.credentials`: a JSON array of the
-- ids of the credentials that authenticate the application. NULL: it authenticates by its
-- token_endpoint_auth_method (a secret, or none); set: by a signed assertion only.
ALTER TABLE clients ADD COLUMN private_key_jwt_credentials TEXT COLLATE "C";

-- An application's public keys (Auth0's client credentials, `credential_type` public_key).
-- `public_key` is the SubjectPublicKeyInfo DER; `kid` its RFC 7638 thumbprint; `alg` the
-- one algorithm assertions signed with it may use. A handful per application (the server
-- bounds the count), gone with their application.
CREATE TABLE client_credentials (
    tenant_id    TEXT COLLATE "C" NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    client_id    TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    kid          TEXT COLLATE "C" NOT NULL,
    alg          TEXT COLLATE "C" NOT NULL,
    public_key   BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients(tenant_id, client_id) ON DELETE CASCADE
);
CREATE INDEX client_credentials_client ON client_credentials (tenant_id, client_id, created_at, id);

-- The `jti` of every client assertion accepted, kept until the assertion expires: an
-- assertion works once, on any node.
CREATE TABLE client_assertion_jtis (
    tenant_id   TEXT COLLATE "C" NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL,
    jti         TEXT COLLATE "C" NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, jti)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);
