//! The master key that encrypts signing keys at rest (AES-256-GCM).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::{JoseError, b64, b64_decode};

/// 32 secret bytes. Never printed; `Debug` shows only that it is redacted.
pub struct MasterKey {
    key: LessSafeKey,
    bytes: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl Clone for MasterKey {
    fn clone(&self) -> Self {
        Self::from_bytes(self.bytes)
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system random source works");
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).expect("32 bytes is an AES-256 key");
        MasterKey {
            key: LessSafeKey::new(unbound),
            bytes,
        }
    }

    /// Parses the textual form: 43 base64url characters or 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, JoseError> {
        let text = text.trim();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| JoseError::BadMasterKey)?
        } else {
            b64_decode(text.trim_end_matches('=')).map_err(|_| JoseError::BadMasterKey)?
        };
        let bytes: [u8; 32] = decoded.try_into().map_err(|_| JoseError::BadMasterKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The textual form written to a key file (base64url).
    pub fn to_text(&self) -> String {
        b64(&self.bytes)
    }

    /// A secret for one purpose (`label`), derived from this key with HMAC-SHA256, so every
    /// node configured with the same master key derives the same one and nothing else
    /// needs sharing; knowing a derived secret tells nothing about the master key.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.bytes);
        let mut derived = [0u8; 32];
        derived.copy_from_slice(hmac::sign(&key, label.as_bytes()).as_ref());
        derived
    }

    /// Encrypts `plaintext`; `context` (e.g. the key id) is authenticated but not stored,
    /// so a ciphertext cannot be moved to another row.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system random source works");
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buffer,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend(buffer);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, JoseError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(JoseError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| JoseError::Decrypt)?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context), &mut buffer)
            .map_err(|_| JoseError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"secret pkcs8", b"kid-1");
        assert_eq!(key.open(&sealed, b"kid-1").unwrap(), b"secret pkcs8");
        assert_eq!(key.open(&sealed, b"kid-2"), Err(JoseError::Decrypt));
        assert_eq!(
            MasterKey::generate().open(&sealed, b"kid-1"),
            Err(JoseError::Decrypt)
        );
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn text_forms_parse() {
        let key = MasterKey::generate();
        let again = MasterKey::parse(&key.to_text()).unwrap();
        let sealed = key.seal(b"x", b"");
        assert_eq!(again.open(&sealed, b"").unwrap(), b"x");
        assert!(MasterKey::parse(&"ab".repeat(32)).is_ok());
        assert_eq!(
            MasterKey::parse("short").unwrap_err(),
            JoseError::BadMasterKey
        );
        assert_eq!(format!("{key:?}"), "MasterKey(redacted)");
    }
}
