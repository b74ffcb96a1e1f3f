-- An API's proof-of-possession setting (RFC 9449 DPoP, issue 17), Auth0's
-- `proof_of_possession` member: `{"mechanism":"dpop","required":true}` as JSON text, NULL
-- when the API has none. With `required`, the token endpoint issues tokens for the API
-- only to requests that carry a DPoP proof.
ALTER TABLE resource_servers ADD COLUMN proof_of_possession TEXT;
