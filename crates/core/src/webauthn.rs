//! WebAuthn relying-party checks (W3C WebAuthn Level 2 §7.1 registration, §7.2 assertion):
//! client data, authenticator data, COSE public keys and signatures. No IO: callers hand in
//! what the browser posted, the challenge they issued and the stored credential.
//!
//! Written by hand rather than with `webauthn-rs`: that crate verifies with OpenSSL, a
//! second crypto stack and a C library every build machine would need, while the checks
//! a relying party makes are short. Signatures use the project's backend, `aws-lc-rs`
//! (ES256, RS256, EdDSA); CBOR is read with `ciborium`.
//!
//! Attestation: Tessera asks for `attestation: "none"` and trusts no authenticator maker,
//! so it accepts `fmt` `none`, and `packed` — self attestation is verified with the
//! credential's own key; a certificate chain (`x5c`) is accepted without verifying it,
//! since nothing would be decided from it. Other formats are refused.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value;
use serde::Deserialize;

/// COSE algorithm numbers accepted, in the order offered to browsers.
pub const ES256: i64 = -7;
pub const EDDSA: i64 = -8;
pub const RS256: i64 = -257;
pub const ALGORITHMS: [i64; 3] = [ES256, EDDSA, RS256];

/// Credential ids are at most 1023 bytes (§7.1 step 16 in Level 3; Level 2 sets no bound).
pub const MAX_CREDENTIAL_ID: usize = 1023;
/// Deepest CBOR nesting read: WebAuthn's structures are two or three levels deep.
const CBOR_DEPTH: usize = 8;

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

/// Why a response was refused. Messages name the check, never the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebauthnError {
    #[error("malformed client data")]
    ClientData,
    #[error("wrong ceremony type")]
    Type,
    #[error("challenge does not match")]
    Challenge,
    #[error("origin does not match")]
    Origin,
    #[error("malformed authenticator data")]
    AuthenticatorData,
    #[error("relying party id hash does not match")]
    RpIdHash,
    #[error("user not present")]
    UserPresence,
    #[error("user not verified")]
    UserVerification,
    #[error("malformed attestation object")]
    Attestation,
    #[error("attestation format not accepted")]
    AttestationFormat,
    #[error("unsupported or malformed public key")]
    PublicKey,
    #[error("signature does not verify")]
    Signature,
}

/// What the relying party expects of a response.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The relying party id: the issuer's host.
    pub rp_id: &'a str,
    /// The issuer's origin (`scheme://host[:port]`).
    pub origin: &'a str,
    /// The challenge issued for this ceremony (raw bytes).
    pub challenge: &'a [u8],
    /// Whether the UV flag is required.
    pub user_verification: bool,
}

/// A verified registration: what to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub credential_id: Vec<u8>,
    /// The COSE_Key as the authenticator sent it (checked to be one we can verify with).
    pub public_key: Vec<u8>,
    pub sign_count: u32,
    pub user_verified: bool,
}

/// A verified assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assertion {
    pub sign_count: u32,
    pub user_verified: bool,
}

/// base64url without padding, as WebAuthn's JSON and Tessera's forms carry bytes.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url (padding tolerated); `None` when it is not.
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// Whether a signature counter may follow the stored one: a counter that does not
/// increase means a cloned authenticator, unless both are zero (authenticators that
/// keep no counter always send zero).
pub fn counter_advances(stored: u32, received: u32) -> bool {
    (stored == 0 && received == 0) || received > stored
}

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default, rename = "crossOrigin")]
    cross_origin: bool,
}

/// §7.1 steps 7–10 / §7.2 steps 11–14: the client data's type, challenge and origin.
fn check_client_data(
    json: &[u8],
    kind: &str,
    expected: &Expected<'_>,
) -> Result<(), WebauthnError> {
    let data: ClientData = serde_json::from_slice(json).map_err(|_| WebauthnError::ClientData)?;
    if data.kind != kind {
        return Err(WebauthnError::Type);
    }
    let challenge = unb64(&data.challenge).ok_or(WebauthnError::Challenge)?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(&challenge, expected.challenge).is_err()
        || expected.challenge.is_empty()
    {
        return Err(WebauthnError::Challenge);
    }
    // An embedding page on another origin is not a login on ours.
    if data.origin != expected.origin || data.cross_origin {
        return Err(WebauthnError::Origin);
    }
    Ok(())
}

/// The fixed part of authenticator data, and what follows it.
struct AuthData<'a> {
    rp_id_hash: &'a [u8],
    flags: u8,
    sign_count: u32,
    rest: &'a [u8],
}

fn parse_auth_data(bytes: &[u8]) -> Result<AuthData<'_>, WebauthnError> {
    if bytes.len() < 37 {
        return Err(WebauthnError::AuthenticatorData);
    }
    Ok(AuthData {
        rp_id_hash: &bytes[..32],
        flags: bytes[32],
        sign_count: u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]),
        rest: &bytes[37..],
    })
}

/// The checks common to both ceremonies on authenticator data: rpIdHash, UP, UV.
fn check_auth_data(data: &AuthData<'_>, expected: &Expected<'_>) -> Result<(), WebauthnError> {
    let rp_id_hash = digest::digest(&digest::SHA256, expected.rp_id.as_bytes());
    if data.rp_id_hash != rp_id_hash.as_ref() {
        return Err(WebauthnError::RpIdHash);
    }
    if data.flags & FLAG_UP == 0 {
        return Err(WebauthnError::UserPresence);
    }
    if expected.user_verification && data.flags & FLAG_UV == 0 {
        return Err(WebauthnError::UserVerification);
    }
    Ok(())
}

/// Reads one CBOR item from the front of `bytes`; the item and how many bytes it took.
fn cbor_item(bytes: &[u8]) -> Option<(Value, usize)> {
    let mut rest = bytes;
    let value: Value =
        ciborium::de::from_reader_with_recursion_limit(&mut rest, CBOR_DEPTH).ok()?;
    Some((value, bytes.len() - rest.len()))
}

/// One CBOR document, nothing after it.
fn cbor_whole(bytes: &[u8]) -> Option<Value> {
    match cbor_item(bytes)? {
        (value, used) if used == bytes.len() => Some(value),
        _ => None,
    }
}

fn map_get<'v>(map: &'v [(Value, Value)], key: &Value) -> Option<&'v Value> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn int(value: &Value) -> Option<i128> {
    value.as_integer().map(i128::from)
}

/// A COSE_Key (RFC 9053) Tessera can verify signatures with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKey {
    /// An uncompressed P-256 point.
    Es256(Vec<u8>),
    /// An Ed25519 public key.
    EdDsa(Vec<u8>),
    Rs256 {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

fn parse_cose_key(value: &Value) -> Result<PublicKey, WebauthnError> {
    let map = value.as_map().ok_or(WebauthnError::PublicKey)?;
    let field = |label: i64| map_get(map, &Value::Integer(label.into()));
    let bytes = |label: i64| {
        field(label)
            .and_then(Value::as_bytes)
            .cloned()
            .ok_or(WebauthnError::PublicKey)
    };
    let kty = field(1).and_then(int).ok_or(WebauthnError::PublicKey)?;
    let alg = field(3).and_then(int).ok_or(WebauthnError::PublicKey)?;
    let crv = field(-1).and_then(int);
    match (kty, alg) {
        // EC2, ES256, P-256.
        (2, -7) if crv == Some(1) => {
            let (x, y) = (bytes(-2)?, bytes(-3)?);
            if x.len() != 32 || y.len() != 32 {
                return Err(WebauthnError::PublicKey);
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(PublicKey::Es256(point))
        }
        // OKP, EdDSA, Ed25519.
        (1, -8) if crv == Some(6) => {
            let x = bytes(-2)?;
            if x.len() != 32 {
                return Err(WebauthnError::PublicKey);
            }
            Ok(PublicKey::EdDsa(x))
        }
        // RSA, RS256.
        (3, -257) => {
            let (n, e) = (bytes(-1)?, bytes(-2)?);
            // At least 2048 bits, as the verification algorithm requires anyway.
            if n.len() < 256 || n.len() > 1024 || e.is_empty() || e.len() > 8 {
                return Err(WebauthnError::PublicKey);
            }
            Ok(PublicKey::Rs256 { n, e })
        }
        _ => Err(WebauthnError::PublicKey),
    }
}

impl PublicKey {
    fn alg(&self) -> i64 {
        match self {
            PublicKey::Es256(_) => ES256,
            PublicKey::EdDsa(_) => EDDSA,
            PublicKey::Rs256 { .. } => RS256,
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), WebauthnError> {
        let verified = match self {
            PublicKey::Es256(point) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point).verify(message, signature)
            }
            PublicKey::EdDsa(x) => UnparsedPublicKey::new(&ED25519, x).verify(message, signature),
            PublicKey::Rs256 { n, e } => RsaPublicKeyComponents { n, e }.verify(
                &RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            ),
        };
        verified.map_err(|_| WebauthnError::Signature)
    }
}

/// Verifies a signature over `authenticatorData ‖ SHA-256(clientDataJSON)` with a stored
/// COSE key.
fn verify_signed(
    cose_key: &[u8],
    auth_data: &[u8],
    client_data_json: &[u8],
    signature: &[u8],
) -> Result<(), WebauthnError> {
    let key = parse_cose_key(&cbor_whole(cose_key).ok_or(WebauthnError::PublicKey)?)?;
    let mut message = auth_data.to_vec();
    message.extend_from_slice(digest::digest(&digest::SHA256, client_data_json).as_ref());
    key.verify(&message, signature)
}

/// §7.1: verifies a registration (`navigator.credentials.create`) response.
pub fn verify_registration(
    client_data_json: &[u8],
    attestation_object: &[u8],
    expected: &Expected<'_>,
) -> Result<Registration, WebauthnError> {
    check_client_data(client_data_json, "webauthn.create", expected)?;
    let object = cbor_whole(attestation_object).ok_or(WebauthnError::Attestation)?;
    let map = object.as_map().ok_or(WebauthnError::Attestation)?;
    let text = |name: &str| map_get(map, &Value::Text(name.into()));
    let fmt = text("fmt")
        .and_then(Value::as_text)
        .ok_or(WebauthnError::Attestation)?;
    let statement = text("attStmt")
        .and_then(Value::as_map)
        .ok_or(WebauthnError::Attestation)?;
    let auth_data_bytes = text("authData")
        .and_then(Value::as_bytes)
        .ok_or(WebauthnError::Attestation)?;
    let auth_data = parse_auth_data(auth_data_bytes)?;
    check_auth_data(&auth_data, expected)?;
    if auth_data.flags & FLAG_AT == 0 {
        return Err(WebauthnError::AuthenticatorData);
    }
    // Attested credential data: AAGUID (16), id length (2), id, COSE key, then extensions.
    let rest = auth_data.rest;
    if rest.len() < 18 {
        return Err(WebauthnError::AuthenticatorData);
    }
    let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
    if id_len == 0 || id_len > MAX_CREDENTIAL_ID || rest.len() < 18 + id_len {
        return Err(WebauthnError::AuthenticatorData);
    }
    let credential_id = rest[18..18 + id_len].to_vec();
    let key_bytes = &rest[18 + id_len..];
    let (key_value, key_len) = cbor_item(key_bytes).ok_or(WebauthnError::PublicKey)?;
    let extensions = &key_bytes[key_len..];
    let extensions_flagged = auth_data.flags & FLAG_ED != 0;
    match (extensions_flagged, extensions.is_empty()) {
        (false, true) => {}
        (true, false) if cbor_whole(extensions).is_some() => {}
        _ => return Err(WebauthnError::AuthenticatorData),
    }
    let key = parse_cose_key(&key_value)?;
    match fmt {
        "none" if statement.is_empty() => {}
        "packed" => {
            let field = |name: &str| map_get(statement, &Value::Text(name.into()));
            let alg = field("alg")
                .and_then(int)
                .ok_or(WebauthnError::Attestation)?;
            let sig = field("sig")
                .and_then(Value::as_bytes)
                .ok_or(WebauthnError::Attestation)?;
            if field("x5c").is_none() {
                // Self attestation: signed by the credential itself.
                if alg != i128::from(key.alg()) {
                    return Err(WebauthnError::Attestation);
                }
                let mut message = auth_data_bytes.to_vec();
                message
                    .extend_from_slice(digest::digest(&digest::SHA256, client_data_json).as_ref());
                key.verify(&message, sig)?;
            }
            // With x5c: a maker's chain, not verified (see the module's comment).
        }
        _ => return Err(WebauthnError::AttestationFormat),
    }
    Ok(Registration {
        credential_id,
        public_key: key_bytes[..key_len].to_vec(),
        sign_count: auth_data.sign_count,
        user_verified: auth_data.flags & FLAG_UV != 0,
    })
}

/// §7.2: verifies an assertion (`navigator.credentials.get`) against the stored COSE key.
/// The caller has matched the credential id to the user, and then checks the counter
/// against the stored one with [`counter_advances`] (in the store, atomically).
pub fn verify_assertion(
    client_data_json: &[u8],
    authenticator_data: &[u8],
    signature: &[u8],
    cose_key: &[u8],
    expected: &Expected<'_>,
) -> Result<Assertion, WebauthnError> {
    check_client_data(client_data_json, "webauthn.get", expected)?;
    let auth_data = parse_auth_data(authenticator_data)?;
    check_auth_data(&auth_data, expected)?;
    verify_signed(cose_key, authenticator_data, client_data_json, signature)?;
    Ok(Assertion {
        sign_count: auth_data.sign_count,
        user_verified: auth_data.flags & FLAG_UV != 0,
    })
}

/// Test helpers: an authenticator built from an aws-lc-rs P-256 key pair, for this
/// module's tests and the server's.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    use ciborium::Value;

    use super::*;

    /// A software authenticator with one ES256 credential.
    pub struct SoftKey {
        pair: EcdsaKeyPair,
        pub credential_id: Vec<u8>,
    }

    fn cbor(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(value, &mut out).expect("CBOR into a Vec");
        out
    }

    impl Default for SoftKey {
        fn default() -> Self {
            Self::new()
        }
    }

    impl SoftKey {
        pub fn new() -> SoftKey {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .expect("P-256 key");
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                .expect("P-256 key");
            let credential_id = crate::ids::alphanumeric(24).into_bytes();
            SoftKey {
                pair,
                credential_id,
            }
        }

        /// The credential's COSE_Key.
        pub fn cose_key(&self) -> Vec<u8> {
            let point = self.pair.public_key().as_ref();
            let int = |i: i64| Value::Integer(i.into());
            cbor(&Value::Map(vec![
                (int(1), int(2)),
                (int(3), int(-7)),
                (int(-1), int(1)),
                (int(-2), Value::Bytes(point[1..33].to_vec())),
                (int(-3), Value::Bytes(point[33..65].to_vec())),
            ]))
        }

        pub fn client_data(kind: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
            serde_json::json!({"type": kind, "challenge": b64(challenge), "origin": origin, "crossOrigin": false})
                .to_string()
                .into_bytes()
        }

        pub fn auth_data(rp_id: &str, flags: u8, count: u32) -> Vec<u8> {
            let mut data = digest::digest(&digest::SHA256, rp_id.as_bytes())
                .as_ref()
                .to_vec();
            data.push(flags);
            data.extend_from_slice(&count.to_be_bytes());
            data
        }

        /// An attestation object (`fmt: none`) for `auth_data` flags and counter.
        pub fn attestation(&self, rp_id: &str, flags: u8, count: u32) -> Vec<u8> {
            let mut data = Self::auth_data(rp_id, flags | FLAG_AT, count);
            data.extend_from_slice(&[0; 16]);
            data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
            data.extend_from_slice(&self.credential_id);
            data.extend_from_slice(&self.cose_key());
            cbor(&Value::Map(vec![
                (Value::Text("fmt".into()), Value::Text("none".into())),
                (Value::Text("attStmt".into()), Value::Map(vec![])),
                (Value::Text("authData".into()), Value::Bytes(data)),
            ]))
        }

        /// A signature over `auth_data ‖ SHA-256(client_data)`.
        pub fn sign(&self, auth_data: &[u8], client_data: &[u8]) -> Vec<u8> {
            let mut message = auth_data.to_vec();
            message.extend_from_slice(digest::digest(&digest::SHA256, client_data).as_ref());
            self.pair
                .sign(&SystemRandom::new(), &message)
                .expect("signing")
                .as_ref()
                .to_vec()
        }
    }

    /// UP, and UV: the flags a good authenticator sets.
    pub const UP_UV: u8 = FLAG_UP | FLAG_UV;
    pub const UP: u8 = FLAG_UP;
}

#[cfg(test)]
mod tests {
    use super::testing::{SoftKey, UP, UP_UV};
    use super::*;

    const ORIGIN: &str = "http://localhost:3000";
    const CHALLENGE: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn expected(uv: bool) -> Expected<'static> {
        Expected {
            rp_id: "localhost",
            origin: ORIGIN,
            challenge: CHALLENGE,
            user_verification: uv,
        }
    }

    fn registered(key: &SoftKey) -> Registration {
        let client = SoftKey::client_data("webauthn.create", CHALLENGE, ORIGIN);
        verify_registration(
            &client,
            &key.attestation("localhost", UP_UV, 0),
            &expected(true),
        )
        .expect("registration")
    }

    #[test]
    fn a_registration_gives_the_credential_and_its_key() {
        let key = SoftKey::new();
        let registration = registered(&key);
        assert_eq!(registration.credential_id, key.credential_id);
        assert_eq!(registration.public_key, key.cose_key());
        assert!(registration.user_verified);
    }

    #[test]
    fn a_registration_is_refused_for_each_wrong_part() {
        let key = SoftKey::new();
        let good_client = SoftKey::client_data("webauthn.create", CHALLENGE, ORIGIN);
        let good = key.attestation("localhost", UP_UV, 0);
        let check = |client: &[u8], object: &[u8], uv: bool| {
            verify_registration(client, object, &expected(uv)).unwrap_err()
        };
        let other_origin = SoftKey::client_data("webauthn.create", CHALLENGE, "http://evil");
        assert_eq!(check(&other_origin, &good, true), WebauthnError::Origin);
        let other_challenge = SoftKey::client_data("webauthn.create", b"other", ORIGIN);
        assert_eq!(
            check(&other_challenge, &good, true),
            WebauthnError::Challenge
        );
        let get = SoftKey::client_data("webauthn.get", CHALLENGE, ORIGIN);
        assert_eq!(check(&get, &good, true), WebauthnError::Type);
        let other_rp = key.attestation("evil.example", UP_UV, 0);
        assert_eq!(
            check(&good_client, &other_rp, true),
            WebauthnError::RpIdHash
        );
        let absent = key.attestation("localhost", 0, 0);
        assert_eq!(
            check(&good_client, &absent, true),
            WebauthnError::UserPresence
        );
        let unverified = key.attestation("localhost", UP, 0);
        assert_eq!(
            check(&good_client, &unverified, true),
            WebauthnError::UserVerification
        );
        assert!(verify_registration(&good_client, &unverified, &expected(false)).is_ok());
        assert_eq!(
            check(&good_client, &good[..good.len() - 3], true),
            WebauthnError::Attestation
        );
        assert_eq!(check(b"{", &good, true), WebauthnError::ClientData);
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            check(&good_client, &trailing, true),
            WebauthnError::Attestation
        );
    }

    #[test]
    fn an_assertion_verifies_with_the_stored_key_only() {
        let key = SoftKey::new();
        let stored = registered(&key).public_key;
        let client = SoftKey::client_data("webauthn.get", CHALLENGE, ORIGIN);
        let data = SoftKey::auth_data("localhost", UP_UV, 7);
        let signature = key.sign(&data, &client);
        let assertion = verify_assertion(&client, &data, &signature, &stored, &expected(true))
            .expect("assertion");
        assert_eq!(assertion.sign_count, 7);
        let other = SoftKey::new();
        assert_eq!(
            verify_assertion(
                &client,
                &data,
                &signature,
                &other.cose_key(),
                &expected(true)
            ),
            Err(WebauthnError::Signature)
        );
        let mut tampered = data.clone();
        tampered[36] = 8;
        assert_eq!(
            verify_assertion(&client, &tampered, &signature, &stored, &expected(true)),
            Err(WebauthnError::Signature)
        );
        let absent = SoftKey::auth_data("localhost", UP_UV & !UP, 8);
        let signature = key.sign(&absent, &client);
        assert_eq!(
            verify_assertion(&client, &absent, &signature, &stored, &expected(false)),
            Err(WebauthnError::UserPresence)
        );
        assert_eq!(
            verify_assertion(&client, b"short", &signature, &stored, &expected(false)),
            Err(WebauthnError::AuthenticatorData)
        );
    }

    #[test]
    fn counters_must_rise_unless_both_are_zero() {
        assert!(counter_advances(0, 0));
        assert!(counter_advances(0, 1));
        assert!(counter_advances(4, 5));
        assert!(!counter_advances(5, 5));
        assert!(!counter_advances(5, 4));
        assert!(!counter_advances(5, 0));
    }

    #[test]
    fn malformed_cbor_is_refused_not_panicked_on() {
        for bytes in [
            &[][..],
            &[0xff],
            &[0xa1],
            &[0x9f, 0x9f, 0x9f],
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(cbor_whole(bytes).is_none());
        }
        let deep: Vec<u8> = std::iter::repeat_n(0x81, 64).chain([0x00]).collect();
        assert!(cbor_whole(&deep).is_none());
        assert_eq!(
            parse_cose_key(&Value::Map(vec![])),
            Err(WebauthnError::PublicKey)
        );
    }
}
