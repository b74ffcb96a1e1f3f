//! JOSE for Tessera: signing keys, compact JWS signing and verification, JWK/JWKS,
//! RFC 7638 key ids, DPoP proofs (RFC 9449), and the envelope that keeps private keys encrypted at rest.
//!
//! One crypto backend (aws-lc-rs) for the whole workspace. Keys are parsed once and
//! held; signing never re-parses a private key.

mod certificate;
pub mod dpop;
mod jwk;
mod jws;
mod master_key;
mod public_key;
mod signing;

pub use certificate::self_signed_rsa;
pub use jwk::{Jwk, Jwks, rsa_public_key_der, thumbprint};
pub use jws::{
    JwsHeader, MAX_TOKEN_BYTES, Text, VerifiedJws, VerifiedPayload, VerifyingKey, b64, b64_decode,
    peek_header, verify_payload_with, verify_with,
};
pub use master_key::MasterKey;
pub use public_key::{MAX_PEM_BYTES, MIN_RSA_BITS, PublicKey};
pub use signing::SigningKey;

use std::fmt;

/// JWS algorithms Tessera signs with. The algorithm always comes from the key, never
/// from a token header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Result<Self, JoseError> {
        match name {
            "RS256" => Ok(Algorithm::Rs256),
            "ES256" => Ok(Algorithm::Es256),
            "EdDSA" => Ok(Algorithm::EdDsa),
            other => Err(JoseError::UnsupportedAlgorithm(
                other.chars().take(32).collect(),
            )),
        }
    }

    pub const ALL: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in this crate. Messages never contain key material or
/// token contents.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("key generation failed")]
    KeyGeneration,
    #[error("the key could not be parsed")]
    KeyRejected,
    #[error("signing failed")]
    Signing,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token is too large")]
    TooLarge,
    #[error("the token's algorithm does not match the key")]
    AlgorithmMismatch,
    #[error("the token has an unsupported critical header")]
    UnsupportedCritical,
    #[error("signature verification failed")]
    BadSignature,
    #[error("no key with this key id")]
    UnknownKey,
    #[error("decryption failed (wrong master key or corrupted data)")]
    Decrypt,
    #[error("master key must be 32 bytes of base64url or hex")]
    BadMasterKey,
}
