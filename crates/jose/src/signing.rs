//! Private signing keys, parsed once and held for the life of the process.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde::Serialize;

use crate::jws::VerifyingKey;
use crate::{Algorithm, JoseError, Jwk, b64, thumbprint};

enum Inner {
    Rsa(signature::RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private key ready to sign JWTs. Its `kid` is the RFC 7638 thumbprint of its public half.
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    jwk: Jwk,
    inner: Inner,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    /// Creates a fresh key. Returns the key and its PKCS#8 DER, which the caller stores
    /// (encrypted) so the same key can be loaded again.
    pub fn generate(alg: Algorithm) -> Result<(Self, Vec<u8>), JoseError> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            Algorithm::Rs256 => {
                let pair = signature::RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| JoseError::KeyGeneration)?;
                let der = pair.as_der().map_err(|_| JoseError::KeyGeneration)?;
                der.as_ref().to_vec()
            }
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| JoseError::KeyGeneration)?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| JoseError::KeyGeneration)?
                .as_ref()
                .to_vec(),
        };
        let key = Self::from_pkcs8(alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Loads a key from its PKCS#8 DER.
    pub fn from_pkcs8(alg: Algorithm, pkcs8: &[u8]) -> Result<Self, JoseError> {
        let (inner, mut jwk) = match alg {
            Algorithm::Rs256 => {
                let pair =
                    signature::RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| JoseError::KeyRejected)?;
                let public = pair.public_key();
                let jwk = Jwk {
                    kty: "RSA".into(),
                    use_: None,
                    alg: None,
                    kid: None,
                    n: Some(b64(public.modulus().big_endian_without_leading_zero())),
                    e: Some(b64(public.exponent().big_endian_without_leading_zero())),
                    crv: None,
                    x: None,
                    y: None,
                    x5c: None,
                    x5t: None,
                };
                (Inner::Rsa(pair), jwk)
            }
            Algorithm::Es256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                        .map_err(|_| JoseError::KeyRejected)?;
                // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                if point.len() != 65 {
                    return Err(JoseError::KeyRejected);
                }
                let jwk = Jwk {
                    kty: "EC".into(),
                    use_: None,
                    alg: None,
                    kid: None,
                    n: None,
                    e: None,
                    crv: Some("P-256".into()),
                    x: Some(b64(&point[1..33])),
                    y: Some(b64(&point[33..65])),
                    x5c: None,
                    x5t: None,
                };
                (Inner::Ec(pair), jwk)
            }
            Algorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| JoseError::KeyRejected)?;
                let jwk = Jwk {
                    kty: "OKP".into(),
                    use_: None,
                    alg: None,
                    kid: None,
                    n: None,
                    e: None,
                    crv: Some("Ed25519".into()),
                    x: Some(b64(pair.public_key().as_ref())),
                    y: None,
                    x5c: None,
                    x5t: None,
                };
                (Inner::Ed(pair), jwk)
            }
        };
        let kid = thumbprint(&jwk);
        jwk.kid = Some(kid.clone());
        jwk.alg = Some(alg.as_str().into());
        jwk.use_ = Some("sig".into());
        Ok(SigningKey {
            alg,
            kid,
            jwk,
            inner,
            rng: SystemRandom::new(),
        })
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as published in the JWKS.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// A verifier for tokens this key signed.
    pub fn verifying_key(&self) -> Result<VerifyingKey, JoseError> {
        VerifyingKey::from_jwk(&self.jwk)
    }

    /// Signs `claims` as a compact JWS with header `{alg, typ, kid}`.
    pub fn sign_jwt<C: Serialize + ?Sized>(
        &self,
        typ: &str,
        claims: &C,
    ) -> Result<String, JoseError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: self.alg.as_str(),
            typ,
            kid: &self.kid,
        })
        .map_err(|_| JoseError::Signing)?;
        let payload = serde_json::to_vec(claims).map_err(|_| JoseError::Signing)?;
        let mut token = String::with_capacity(header.len() * 2 + payload.len() * 2 + 400);
        token.push_str(&b64(&header));
        token.push('.');
        token.push_str(&b64(&payload));
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&b64(&signature));
        Ok(token)
    }

    /// Signs `claims` under a header the caller chose (a client's DPoP proof carries its
    /// public `jwk` and no `kid`). The header's `alg` is the caller's to get right.
    pub fn sign_with_header<H: Serialize + ?Sized, C: Serialize + ?Sized>(
        &self,
        header: &H,
        claims: &C,
    ) -> Result<String, JoseError> {
        let header = serde_json::to_vec(header).map_err(|_| JoseError::Signing)?;
        let payload = serde_json::to_vec(claims).map_err(|_| JoseError::Signing)?;
        let mut token = b64(&header);
        token.push('.');
        token.push_str(&b64(&payload));
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&b64(&signature));
        Ok(token)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.inner {
            Inner::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| JoseError::Signing)?;
                Ok(sig)
            }
            Inner::Ec(pair) => pair
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JoseError::Signing),
            Inner::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{VerifyingKey, b64_decode};

    #[test]
    fn every_algorithm_signs_what_its_jwk_verifies_and_reloads_from_pkcs8() {
        for alg in Algorithm::ALL {
            let (key, pkcs8) = SigningKey::generate(alg).unwrap();
            let token = key
                .sign_jwt("JWT", &serde_json::json!({"sub": "x"}))
                .unwrap();
            let verifier = VerifyingKey::from_jwk(key.public_jwk()).unwrap();
            let verified = verifier.verify(&token).unwrap();
            assert_eq!(verified.claims["sub"], "x");
            assert_eq!(verified.header.kid.as_deref(), Some(key.kid()));

            let reloaded = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
            assert_eq!(reloaded.kid(), key.kid());
            assert_eq!(reloaded.public_jwk(), key.public_jwk());
        }
    }

    #[test]
    fn independent_verifier_accepts_our_rs256_tokens() {
        let (key, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let token = key
            .sign_jwt(
                "JWT",
                &serde_json::json!({"sub": "abc", "exp": 4102444800u64}),
            )
            .unwrap();
        let jwk = key.public_jwk();
        let n = b64_decode(jwk.n.as_ref().unwrap()).unwrap();
        let e = b64_decode(jwk.e.as_ref().unwrap()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e);
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "abc");
    }

    #[test]
    fn debug_output_has_no_key_material() {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains("kid") && !printed.contains(key.public_jwk().x.as_ref().unwrap()));
    }
}
