//! A DPoP client (RFC 9449): a key pair and the proofs it signs, as a browser SDK makes
//! them, plus the knobs an attacker would turn.

use serde_json::{Value, json};
use tessera_jose::dpop::access_token_hash;
use tessera_jose::{Algorithm, SigningKey, thumbprint};

use crate::now;

pub struct DpopKey {
    pub key: SigningKey,
}

impl DpopKey {
    pub fn new(alg: Algorithm) -> Self {
        DpopKey {
            key: SigningKey::generate(alg).unwrap().0,
        }
    }

    /// The RFC 7638 thumbprint a bound token's `cnf.jkt` names.
    pub fn jkt(&self) -> String {
        thumbprint(self.key.public_jwk())
    }

    /// The standard proof header: `typ`, `alg`, the public `jwk`.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.key.alg().as_str(), "jwk": self.key.public_jwk()})
    }

    /// The claims of a fresh proof for `method` `uri` (with `ath` for `access_token`).
    pub fn claims(&self, method: &str, uri: &str, access_token: Option<&str>) -> Value {
        let mut claims = json!({
            "jti": tessera_core::ids::alphanumeric(22),
            "htm": method,
            "htu": uri,
            "iat": now(),
        });
        if let Some(token) = access_token {
            claims["ath"] = json!(access_token_hash(token));
        }
        claims
    }

    /// A fresh, valid proof.
    pub fn proof(&self, method: &str, uri: &str, access_token: Option<&str>) -> String {
        self.sign(&self.header(), &self.claims(method, uri, access_token))
    }

    /// Signs whatever header and claims the test chose.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.key.sign_with_header(header, claims).unwrap()
    }
}
