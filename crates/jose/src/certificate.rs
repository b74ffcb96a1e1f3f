//! The self-signed certificate published beside an RSA signing key, as Auth0 publishes one
//! in every key's `x5c` (with its SHA-1 thumbprint in `x5t`): some verifiers read the key
//! from the certificate rather than from `n` and `e`.
//!
//! The certificate is derived from the key and its creation time alone — subject, serial
//! (rcgen's: a hash of the public key), validity and signature (RSASSA-PKCS1-v1_5 is
//! deterministic) — so every node, and every restart, publishes the same bytes without
//! storing them.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{JoseError, Jwk, b64};

/// How long the certificate is valid from the key's creation: ten years. Verifiers that
/// use `x5c` read the key from it and do not check dates; the key's own life is decided by
/// rotation, not by this.
const VALIDITY_SECONDS: i64 = 10 * 365 * 24 * 60 * 60;

/// The subject of every key's certificate.
const COMMON_NAME: &str = "Tessera token signing";

/// A self-signed X.509 certificate (DER) for the RSA key in `pkcs8`, valid from `created_at`
/// (Unix seconds).
pub fn self_signed_rsa(pkcs8: &[u8], created_at: i64) -> Result<Vec<u8>, JoseError> {
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.into(), &rcgen::PKCS_RSA_SHA256)
        .map_err(|_| JoseError::KeyRejected)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, COMMON_NAME);
    let at = |seconds: i64| {
        time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| JoseError::Signing)
    };
    params.not_before = at(created_at)?;
    params.not_after = at(created_at.saturating_add(VALIDITY_SECONDS))?;
    let certificate = params.self_signed(&key).map_err(|_| JoseError::Signing)?;
    Ok(certificate.der().to_vec())
}

impl Jwk {
    /// This JWK with its certificate: `x5c` (standard base64 of the DER, RFC 7517 §4.7) and
    /// `x5t` (base64url of its SHA-1 digest, §4.8).
    pub fn with_certificate(mut self, der: &[u8]) -> Jwk {
        self.x5c = Some(vec![STANDARD.encode(der)]);
        self.x5t = Some(b64(
            digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()
        ));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, SigningKey};

    #[test]
    fn the_certificate_is_the_keys_and_the_same_every_time() {
        let (key, pkcs8) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let der = self_signed_rsa(&pkcs8, 1_700_000_000).unwrap();
        assert_eq!(der, self_signed_rsa(&pkcs8, 1_700_000_000).unwrap());
        assert_ne!(der, self_signed_rsa(&pkcs8, 1_700_000_001).unwrap());

        // The certificate carries the JWK's modulus: its DER contains the key's n.
        let jwk = key.public_jwk().clone().with_certificate(&der);
        let n = crate::b64_decode(jwk.n.as_deref().unwrap()).unwrap();
        assert!(der.windows(n.len()).any(|w| w == n.as_slice()));
        let x5c = STANDARD.decode(&jwk.x5c.as_ref().unwrap()[0]).unwrap();
        assert_eq!(x5c, der);
        assert_eq!(
            crate::b64_decode(jwk.x5t.as_deref().unwrap())
                .unwrap()
                .len(),
            20
        );
    }

    #[test]
    fn only_rsa_keys_get_one() {
        let (_, pkcs8) = SigningKey::generate(Algorithm::Es256).unwrap();
        assert_eq!(
            self_signed_rsa(&pkcs8, 1_700_000_000),
            Err(JoseError::KeyRejected)
        );
    }
}
