//! PKCE (RFC 7636), S256 only: `plain` offers nothing over no PKCE against an attacker
//! who can read the authorization request.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a PKCE parameter was refused; the text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    #[error("code_challenge must be 43 base64url characters (S256)")]
    BadChallenge,
    #[error("code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")]
    BadVerifier,
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Validates the challenge sent to /authorize. A missing method means `plain` per the
/// RFC, which we refuse.
pub fn check_challenge(challenge: &str, method: Option<&str>) -> Result<(), PkceError> {
    if method != Some("S256") {
        return Err(PkceError::UnsupportedMethod);
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PkceError::BadChallenge);
    }
    Ok(())
}

/// The S256 challenge of a verifier: what Tessera sends an upstream provider.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Checks a verifier presented at the token endpoint against the stored challenge.
pub fn verify(verifier: &str, challenge: &str) -> Result<(), PkceError> {
    if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(is_unreserved) {
        return Err(PkceError::BadVerifier);
    }
    if crate::ids::constant_time_eq(&challenge_of(verifier), challenge) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(check_challenge(challenge, Some("S256")), Ok(()));
        assert_eq!(verify(verifier, challenge), Ok(()));
        assert_eq!(
            verify(&verifier.replace('d', "e"), challenge),
            Err(PkceError::Mismatch)
        );
    }

    #[test]
    fn refuses_plain_short_long_and_odd_verifiers() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(
            check_challenge(challenge, Some("plain")),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            check_challenge(challenge, None),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            check_challenge("short", Some("S256")),
            Err(PkceError::BadChallenge)
        );
        assert_eq!(
            verify("a".repeat(42).as_str(), challenge),
            Err(PkceError::BadVerifier)
        );
        assert_eq!(
            verify("a".repeat(129).as_str(), challenge),
            Err(PkceError::BadVerifier)
        );
        assert_eq!(
            verify(&format!("{}!", "a".repeat(43)), challenge),
            Err(PkceError::BadVerifier)
        );
    }
}
