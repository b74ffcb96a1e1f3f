//! Compact JWS verification. The algorithm is a property of the key: a token whose
//! header names another algorithm is rejected before any cryptography runs.

use std::fmt;

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use crate::{Algorithm, JoseError, Jwk, rsa_public_key_der};

/// Tokens larger than this are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decoding: no padding, no characters outside the URL-safe alphabet.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JoseError::Malformed("bad base64url"))
}

/// The header members we read. Unknown members (`jwk`, `jku`, `x5u`, `x5c`, …) are
/// ignored: keys come only from our own key set. Duplicate members are an error.
#[derive(Debug, Clone, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
}

/// A token whose signature checked out. Claims are not yet validated (iss, aud, exp):
/// that is the caller's policy.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    pub header: JwsHeader,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// A public key parsed once, used for many verifications.
pub struct VerifyingKey {
    alg: Algorithm,
    kid: Option<String>,
    key: ParsedPublicKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish()
    }
}

impl VerifyingKey {
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        let (alg, verification, bytes): (Algorithm, &'static dyn VerificationAlgorithm, Vec<u8>) =
            match (jwk.kty.as_str(), jwk.crv.as_deref()) {
                ("RSA", _) => {
                    let n = b64_decode(jwk.n.as_deref().ok_or(JoseError::KeyRejected)?)?;
                    let e = b64_decode(jwk.e.as_deref().ok_or(JoseError::KeyRejected)?)?;
                    (
                        Algorithm::Rs256,
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        rsa_public_key_der(&n, &e),
                    )
                }
                ("EC", Some("P-256")) => {
                    let x = b64_decode(jwk.x.as_deref().ok_or(JoseError::KeyRejected)?)?;
                    let y = b64_decode(jwk.y.as_deref().ok_or(JoseError::KeyRejected)?)?;
                    if x.len() != 32 || y.len() != 32 {
                        return Err(JoseError::KeyRejected);
                    }
                    let mut point = vec![0x04];
                    point.extend(x);
                    point.extend(y);
                    (Algorithm::Es256, &signature::ECDSA_P256_SHA256_FIXED, point)
                }
                ("OKP", Some("Ed25519")) => {
                    let x = b64_decode(jwk.x.as_deref().ok_or(JoseError::KeyRejected)?)?;
                    (Algorithm::EdDsa, &signature::ED25519, x)
                }
                _ => {
                    return Err(JoseError::UnsupportedAlgorithm(
                        jwk.kty.chars().take(16).collect(),
                    ));
                }
            };
        if let Some(declared) = jwk.alg.as_deref()
            && declared != alg.as_str()
        {
            return Err(JoseError::UnsupportedAlgorithm(
                declared.chars().take(32).collect(),
            ));
        }
        let key = ParsedPublicKey::new(verification, bytes).map_err(|_| JoseError::KeyRejected)?;
        Ok(VerifyingKey {
            alg,
            kid: jwk.kid.clone(),
            key,
        })
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Checks structure and signature of a compact JWS.
    pub fn verify(&self, token: &str) -> Result<VerifiedJws, JoseError> {
        let parts = split_compact(token)?;
        let header = parse_header(parts.header)?;
        if header.alg != self.alg.as_str() {
            return Err(JoseError::AlgorithmMismatch);
        }
        self.verify_parts(&parts, header)
    }

    fn verify_parts(
        &self,
        parts: &CompactParts<'_>,
        header: JwsHeader,
    ) -> Result<VerifiedJws, JoseError> {
        if header.crit.is_some() {
            return Err(JoseError::UnsupportedCritical);
        }
        let signature = b64_decode(parts.signature)?;
        if signature.is_empty() || signature.iter().all(|b| *b == 0) {
            return Err(JoseError::BadSignature);
        }
        self.key
            .verify_sig(parts.signing_input.as_bytes(), &signature)
            .map_err(|_| JoseError::BadSignature)?;
        let claims = parse_claims(parts.payload)?;
        Ok(VerifiedJws { header, claims })
    }
}

/// Reads the header of a token without verifying anything, e.g. to find its `kid`.
pub fn peek_header(token: &str) -> Result<JwsHeader, JoseError> {
    parse_header(split_compact(token)?.header)
}

pub(crate) struct CompactParts<'a> {
    pub(crate) signing_input: &'a str,
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

pub(crate) fn split_compact(token: &str) -> Result<CompactParts<'_>, JoseError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JoseError::TooLarge);
    }
    let mut pieces = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(JoseError::Malformed("a JWS has three parts"));
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(JoseError::Malformed("empty part"));
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(CompactParts {
        signing_input,
        header,
        payload,
        signature,
    })
}

fn parse_header(encoded: &str) -> Result<JwsHeader, JoseError> {
    let bytes = b64_decode(encoded)?;
    serde_json::from_slice(&bytes).map_err(|_| JoseError::Malformed("bad header"))
}

fn parse_claims(encoded: &str) -> Result<serde_json::Map<String, serde_json::Value>, JoseError> {
    parse_unique_object(&b64_decode(encoded)?)
}

/// A JSON object whose member names are unique.
pub(crate) fn parse_unique_object(
    bytes: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, JoseError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let claims = serde::Deserializer::deserialize_map(&mut deserializer, UniqueKeys)
        .map_err(|_| JoseError::Malformed("bad claims"))?;
    deserializer
        .end()
        .map_err(|_| JoseError::Malformed("bad claims"))?;
    Ok(claims)
}

/// Deserializes a JSON object, refusing duplicate member names (RFC 7519 §4 lets us).
struct UniqueKeys;

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = serde_json::Map<String, serde_json::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object without duplicate members")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = serde_json::Map::new();
        while let Some((key, value)) = access.next_entry::<String, serde_json::Value>()? {
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom("duplicate member"));
            }
            map.insert(key, value);
        }
        Ok(map)
    }
}

/// A token whose signature checked out, with its claims still undecoded JSON: for callers
/// that parse the claims into their own types (the API guard's hot path) instead of a
/// `serde_json::Map`.
#[derive(Debug, Clone)]
pub struct VerifiedPayload {
    /// The header's `typ`, if any.
    pub typ: Option<String>,
    /// The decoded payload: JSON bytes, not yet parsed. Duplicate members are the caller's
    /// to refuse.
    pub payload: Vec<u8>,
}

/// Like [`verify_with`], but leaves the claims unparsed and allocates only the payload
/// (and `typ`): the header and signature are decoded into stack buffers.
pub fn verify_payload_with<'k>(
    token: &str,
    find: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
) -> Result<VerifiedPayload, JoseError> {
    let parts = split_compact(token)?;
    let mut buffer = [0u8; HEADER_BUFFER];
    let mut spill = Vec::new();
    let header = HeaderView::parse(decode_small(parts.header, &mut buffer, &mut spill)?)?;
    let kid = header.kid.as_ref().ok_or(JoseError::UnknownKey)?;
    let key = find(&kid.0).ok_or(JoseError::UnknownKey)?;
    key.verify_view(&parts, &header)
}

impl VerifyingKey {
    /// Like [`VerifyingKey::verify`], leaving the claims unparsed (see
    /// [`verify_payload_with`]).
    pub fn verify_payload(&self, token: &str) -> Result<VerifiedPayload, JoseError> {
        let parts = split_compact(token)?;
        let mut buffer = [0u8; HEADER_BUFFER];
        let mut spill = Vec::new();
        let header = HeaderView::parse(decode_small(parts.header, &mut buffer, &mut spill)?)?;
        self.verify_view(&parts, &header)
    }

    fn verify_view(
        &self,
        parts: &CompactParts<'_>,
        header: &HeaderView<'_>,
    ) -> Result<VerifiedPayload, JoseError> {
        if header.alg.0 != self.alg.as_str() {
            return Err(JoseError::AlgorithmMismatch);
        }
        if header.crit.is_some() {
            return Err(JoseError::UnsupportedCritical);
        }
        let mut buffer = [0u8; SIGNATURE_BUFFER];
        let mut spill = Vec::new();
        let signature = decode_small(parts.signature, &mut buffer, &mut spill)?;
        if signature.is_empty() || signature.iter().all(|b| *b == 0) {
            return Err(JoseError::BadSignature);
        }
        self.key
            .verify_sig(parts.signing_input.as_bytes(), signature)
            .map_err(|_| JoseError::BadSignature)?;
        Ok(VerifiedPayload {
            typ: header.typ.as_ref().map(|typ| typ.0.clone().into_owned()),
            payload: b64_decode(parts.payload)?,
        })
    }
}

/// Headers and signatures up to these sizes are decoded on the stack (signatures of RSA
/// keys up to 4096 bits; headers without certificate chains); larger ones on the heap.
const HEADER_BUFFER: usize = 256;
const SIGNATURE_BUFFER: usize = 512;

/// Decodes base64url into `buffer` when it fits, else into `spill`.
fn decode_small<'b>(
    text: &str,
    buffer: &'b mut [u8],
    spill: &'b mut Vec<u8>,
) -> Result<&'b [u8], JoseError> {
    if text.len() / 4 * 3 + 3 <= buffer.len() {
        let len = URL_SAFE_NO_PAD
            .decode_slice(text, buffer)
            .map_err(|_| JoseError::Malformed("bad base64url"))?;
        Ok(&buffer[..len])
    } else {
        *spill = b64_decode(text)?;
        Ok(spill)
    }
}

/// The header members we read, borrowed from the decoded header where JSON allows it.
/// Unknown members are ignored; a duplicate `alg`, `typ`, `kid` or `crit` is an error.
#[derive(Deserialize)]
struct HeaderView<'a> {
    #[serde(borrow)]
    alg: Text<'a>,
    #[serde(borrow, default)]
    typ: Option<Text<'a>>,
    #[serde(borrow, default)]
    kid: Option<Text<'a>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

impl<'a> HeaderView<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, JoseError> {
        serde_json::from_slice(bytes).map_err(|_| JoseError::Malformed("bad header"))
    }
}

/// A JSON string, borrowed unless it contains escapes.
pub struct Text<'a>(pub std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(std::borrow::Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Verifies against a key set: the `kid` picks the key (a plain map lookup), the key
/// decides the algorithm.
pub fn verify_with<'k>(
    token: &str,
    find: impl FnOnce(&str) -> Option<&'k VerifyingKey>,
) -> Result<VerifiedJws, JoseError> {
    let parts = split_compact(token)?;
    let header = parse_header(parts.header)?;
    let kid = header.kid.as_deref().ok_or(JoseError::UnknownKey)?;
    let key = find(kid).ok_or(JoseError::UnknownKey)?;
    if header.alg != key.alg.as_str() {
        return Err(JoseError::AlgorithmMismatch);
    }
    key.verify_parts(&parts, header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    fn forge(header: &str, payload: &str, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(payload.as_bytes()),
            b64(signature)
        )
    }

    #[test]
    fn rejects_forgeries() {
        let (key, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let verifier = key.verifying_key().unwrap();
        let good = key
            .sign_jwt("JWT", &serde_json::json!({"sub": "a"}))
            .unwrap();
        assert!(verifier.verify(&good).is_ok());

        for alg in ["none", "None", "NONE", "nOnE", "HS256"] {
            let forged = forge(
                &format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, key.kid()),
                r#"{"sub":"a"}"#,
                b"x",
            );
            assert_eq!(
                verifier.verify(&forged).unwrap_err(),
                JoseError::AlgorithmMismatch,
                "{alg}"
            );
        }
        // Tampered payload with the original signature.
        let mut parts: Vec<&str> = good.split('.').collect();
        let evil = b64(br#"{"sub":"admin"}"#);
        parts[1] = &evil;
        assert_eq!(
            verifier.verify(&parts.join(".")).unwrap_err(),
            JoseError::BadSignature
        );
        // Empty / truncated signatures and wrong shapes.
        let stripped = good.rsplit_once('.').unwrap().0;
        assert!(verifier.verify(&format!("{stripped}.")).is_err());
        assert!(verifier.verify(stripped).is_err());
        assert!(verifier.verify(&format!("{good}.x.y")).is_err());
        assert_eq!(
            verifier
                .verify(&"a".repeat(MAX_TOKEN_BYTES + 1))
                .unwrap_err(),
            JoseError::TooLarge
        );
        // Critical headers we do not understand.
        let crit = forge(r#"{"alg":"RS256","crit":["exp"]}"#, r#"{"sub":"a"}"#, b"x");
        assert_eq!(
            verifier.verify(&crit).unwrap_err(),
            JoseError::UnsupportedCritical
        );
        // Duplicate header member.
        let dup = forge(r#"{"alg":"RS256","alg":"RS256"}"#, r#"{}"#, b"x");
        assert!(matches!(
            verifier.verify(&dup).unwrap_err(),
            JoseError::Malformed(_)
        ));
    }

    #[test]
    fn duplicate_claims_are_rejected_even_when_signed() {
        let (key, _) = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let verifier = key.verifying_key().unwrap();
        let header = b64(format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, key.kid()).as_bytes());
        let payload = b64(br#"{"sub":"a","sub":"b"}"#);
        let input = format!("{header}.{payload}");
        // Sign the raw input with the real key through a second token to reuse its signer.
        let pkcs8 = SigningKey::generate(Algorithm::EdDsa).unwrap().1;
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let other = SigningKey::from_pkcs8(Algorithm::EdDsa, &pkcs8).unwrap();
        let token = format!("{input}.{}", b64(pair.sign(input.as_bytes()).as_ref()));
        let other_verifier = other.verifying_key().unwrap();
        assert!(matches!(
            other_verifier.verify(&token).unwrap_err(),
            JoseError::Malformed(_)
        ));
        // And the first key does not accept the second key's signature at all.
        assert_eq!(
            verifier.verify(&token).unwrap_err(),
            JoseError::BadSignature
        );
    }

    #[test]
    fn psychic_ecdsa_signature_is_rejected() {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let verifier = key.verifying_key().unwrap();
        let forged = forge(r#"{"alg":"ES256"}"#, r#"{"sub":"a"}"#, &[0u8; 64]);
        assert_eq!(
            verifier.verify(&forged).unwrap_err(),
            JoseError::BadSignature
        );
    }

    #[test]
    fn key_set_lookup_uses_kid_as_a_plain_key() {
        let (key, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let verifier = key.verifying_key().unwrap();
        let token = key.sign_jwt("JWT", &serde_json::json!({})).unwrap();
        let found = verify_with(&token, |kid| (kid == key.kid()).then_some(&verifier));
        assert!(found.is_ok());
        let hostile = forge(
            r#"{"alg":"RS256","kid":"../../etc/passwd' OR 1=1"}"#,
            "{}",
            b"x",
        );
        assert_eq!(
            verify_with(&hostile, |_| None).unwrap_err(),
            JoseError::UnknownKey
        );
    }
}
