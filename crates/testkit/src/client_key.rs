//! An application's own key pair for private_key_jwt: its public half as PEM (to register
//! as a credential) and client assertions signed with the private half — well formed, or
//! with whatever header and claims an attack needs.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tessera_core::ids;
use tessera_jose::{Algorithm, PublicKey, SigningKey};

use crate::now;

/// `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub struct ClientKey {
    alg: Algorithm,
    pkcs8: Vec<u8>,
    /// `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo).
    pub public_pem: String,
    /// The RFC 7638 thumbprint: the `kid` Tessera gives the credential.
    pub kid: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl ClientKey {
    /// A new RSA 2048 key.
    pub fn rsa() -> ClientKey {
        Self::generate(Algorithm::Rs256)
    }

    /// A new P-256 key.
    pub fn es256() -> ClientKey {
        Self::generate(Algorithm::Es256)
    }

    fn generate(alg: Algorithm) -> ClientKey {
        let (key, pkcs8) = SigningKey::generate(alg).unwrap();
        let spki = match alg {
            Algorithm::Rs256 => {
                let cert = tessera_jose::self_signed_rsa(&pkcs8, now()).unwrap();
                PublicKey::from_pem(&pem("CERTIFICATE", &cert))
                    .unwrap()
                    .spki
            }
            _ => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                        .unwrap();
                use aws_lc_rs::encoding::AsDer;
                use aws_lc_rs::signature::KeyPair;
                pair.public_key().as_der().unwrap().as_ref().to_vec()
            }
        };
        ClientKey {
            alg,
            pkcs8,
            public_pem: pem("PUBLIC KEY", &spki),
            kid: key.kid().to_string(),
        }
    }

    /// The key's self-signed certificate as PEM (RSA keys only).
    pub fn certificate_pem(&self) -> String {
        pem(
            "CERTIFICATE",
            &tessera_jose::self_signed_rsa(&self.pkcs8, now()).unwrap(),
        )
    }

    /// Claims of a good assertion of `client_id` for `aud`: five minutes, a fresh `jti`.
    pub fn claims(client_id: &str, aud: &str) -> Value {
        json!({
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "iat": now(),
            "exp": now() + 120,
            "jti": ids::alphanumeric(24),
        })
    }

    /// A good assertion of `client_id` for `aud`, header `{alg, kid}`.
    pub fn assertion(&self, client_id: &str, aud: &str) -> String {
        self.sign(
            &json!({"alg": self.alg.as_str(), "kid": self.kid}),
            &Self::claims(client_id, aud),
        )
    }

    /// Signs any header and claims with this key's algorithm.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
        );
        let rng = SystemRandom::new();
        let signature = match self.alg {
            Algorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&self.pkcs8).unwrap();
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
            _ => EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8)
                .unwrap()
                .sign(&rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The private key as PKCS#8 PEM (for a client library to sign with).
    pub fn private_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }
}

/// An assertion signed with HMAC-SHA256 keyed by `secret` (a key-confusion attack).
pub fn hs256_assertion(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Scopes the helpers below need of the Management API.
pub const CREDENTIAL_SCOPES: &[&str] = &[
    "read:clients",
    "update:clients",
    "read:client_credentials",
    "create:client_credentials",
    "update:client_credentials",
    "delete:client_credentials",
];

/// `POST /api/v2/clients/{client_id}/credentials` with `body`: (status, answer).
pub async fn post_credential(
    server: &crate::TestServer,
    token: &str,
    client_id: &str,
    body: &Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/api/v2/clients/{client_id}/credentials")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `PATCH /api/v2/clients/{client_id}` with `body`: (status, answer).
pub async fn patch_client(
    server: &crate::TestServer,
    token: &str,
    client_id: &str,
    body: &Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/clients/{client_id}")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Registers `key` for the application and makes private_key_jwt its only way to
/// authenticate; returns the credential's id.
pub async fn enable_private_key_jwt(
    server: &crate::TestServer,
    token: &str,
    client_id: &str,
    key: &ClientKey,
) -> String {
    let (status, created) = post_credential(
        server,
        token,
        client_id,
        &json!({"credential_type": "public_key", "name": "test key", "pem": key.public_pem}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (status, client) = patch_client(
        server,
        token,
        client_id,
        &json!({"client_authentication_methods": {"private_key_jwt": {"credentials": [{"id": id}]}}}),
    )
    .await;
    assert_eq!(status, 200, "{client}");
    id
}
