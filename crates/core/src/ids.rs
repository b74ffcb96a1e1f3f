//! Identifiers and secrets: random values, and the hashes we store instead of secrets.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes
}

/// A bearer secret (code, session id, opaque token, CSRF token): 256 random bits, base64url.
pub fn secret_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A client secret in Auth0's format: 64 URL-safe characters (384 random bits).
pub fn client_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<48>())
}

/// Random alphanumeric identifier of `len` characters (e.g. 32 for a client_id).
pub fn alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in random_bytes::<64>() {
            // 248 = 4 * 62: reject the tail so every character is equally likely.
            if byte < 248 && out.len() < len {
                out.push(ALPHABET[(byte % 62) as usize] as char);
            }
        }
    }
    out
}

/// An RFC 8628 user code as Auth0 makes them: 8 letters from 20 consonants (no vowels, so
/// no words; no look-alike digits), about 34.6 bits — guessing is for the throttle to stop.
pub fn user_code() -> String {
    let alphabet = crate::device::USER_CODE_ALPHABET;
    let n = alphabet.len() as u8;
    let mut out = String::with_capacity(crate::device::USER_CODE_LEN);
    while out.len() < crate::device::USER_CODE_LEN {
        for byte in random_bytes::<16>() {
            // 240 = 12 * 20: reject the tail so every letter is equally likely.
            if byte < 240 && out.len() < crate::device::USER_CODE_LEN {
                out.push(alphabet[(byte % n) as usize] as char);
            }
        }
    }
    out
}

/// Lower-case hex id of `bytes` random bytes (user ids, grant ids, session ids).
pub fn hex_id(bytes: usize) -> String {
    let raw = random_bytes::<32>();
    raw[..bytes.min(32)]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of a high-entropy secret. We store this, never the secret.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// Constant-time check of a presented secret against a stored hash.
pub fn secret_matches(presented: &str, stored_hash: &[u8]) -> bool {
    verify_slices_are_equal(&secret_hash(presented), stored_hash).is_ok()
}

/// Constant-time equality of two strings (CSRF tokens).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_promised_shapes() {
        let id = alphanumeric(32);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(alphanumeric(32), id);
        assert_eq!(client_secret().len(), 64);
        assert_eq!(secret_token().len(), 43);
        assert_eq!(hex_id(12).len(), 24);
    }

    #[test]
    fn secret_hash_round_trip() {
        let secret = client_secret();
        let hash = secret_hash(&secret);
        assert!(secret_matches(&secret, &hash));
        assert!(!secret_matches("wrong", &hash));
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd"));
    }
}
