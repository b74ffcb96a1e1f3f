//! DPoP proofs (RFC 9449): the one place that decides whether a `DPoP` header proves
//! possession of a key for this request. The token endpoint and resource servers (the
//! guard, the proxy) call [`verify_proof`] and keep the jti of what it accepted in a
//! [`ReplayCache`].
//!
//! The proof carries its own public key (`jwk` header member), so unlike our access tokens
//! the key here comes from the token: what makes that safe is that the key only proves
//! possession — what it is worth is decided by the thumbprint it must match (the token's
//! `cnf.jkt`, a refresh token's bound key) or, at the token endpoint, by what it binds.

use std::collections::HashSet;
use std::sync::Mutex;

use aws_lc_rs::{constant_time, digest, hmac};

use crate::jws::{parse_unique_object, split_compact};
use crate::{Jwk, VerifyingKey, b64, b64_decode, thumbprint};

/// Proofs larger than this are refused unread: an RSA-4096 key and signature and a
/// bounded jti fit in under 3 KB.
pub const MAX_PROOF_BYTES: usize = 4 * 1024;
/// A jti is a random identifier (RFC 9449 §4.2: at least 96 bits); longer ones would only
/// make the replay cache a place to store data.
pub const MAX_JTI_BYTES: usize = 256;
/// How old a proof may be. A client makes a proof just before its request, so only
/// transit time and modest clock skew need room; every accepted jti is remembered this
/// long, so the window also bounds the replay cache.
pub const MAX_PROOF_AGE: i64 = 60;
/// How far ahead of our clock a proof's `iat` may be: clocks of browsers and phones run
/// a little fast. Small, because a proof from the future stays usable longer.
pub const PROOF_FUTURE_LEEWAY: i64 = 10;
/// The algorithms a proof may be signed with (discovery's
/// `dpop_signing_alg_values_supported`): asymmetric only, as §4.2 requires.
pub const DPOP_ALGORITHMS: [&str; 3] = ["ES256", "RS256", "EdDSA"];

/// Private-key members a `jwk` must not carry (RFC 7518 §6.2.2, §6.3.2; `k` of
/// symmetric keys): a proof that leaks its key proves nothing.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What the request the proof came with looks like, as the server received it.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// The HTTP method, compared case-sensitively with `htm` (§4.3 check 8).
    pub method: &'a str,
    /// The request's absolute URI; query and fragment are ignored (§4.3 check 9).
    pub uri: &'a str,
    /// At a resource server: the access token, whose hash `ath` must be (§4.3 check 11).
    pub access_token: Option<&'a str>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// A proof that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key: what `cnf.jkt` binds.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    /// The `nonce` claim, when the client sent one.
    pub nonce: Option<String>,
}

/// Why a proof was refused. Messages name the failed check, never the proof's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("the DPoP proof is too large")]
    TooLarge,
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(&'static str),
    #[error("the DPoP proof's typ must be dpop+jwt")]
    WrongType,
    #[error("the DPoP proof's algorithm is not supported")]
    Algorithm,
    #[error("the DPoP proof's jwk must be a public key")]
    PrivateKey,
    #[error("the DPoP proof's jwk is not a usable public key")]
    BadKey,
    #[error("the DPoP proof's signature is invalid")]
    BadSignature,
    #[error("the DPoP proof's htm does not match the request method")]
    Method,
    #[error("the DPoP proof's htu does not match the request URI")]
    Uri,
    #[error("the DPoP proof is not fresh (iat)")]
    Stale,
    #[error("the DPoP proof's ath does not match the access token")]
    AccessTokenHash,
    #[error("the DPoP proof was used before")]
    Replayed,
    #[error("too many DPoP proofs in flight; retry")]
    Busy,
}

/// `ath`: base64url of the SHA-256 of the access token (§4.2).
pub fn access_token_hash(access_token: &str) -> String {
    b64(digest::digest(&digest::SHA256, access_token.as_bytes()).as_ref())
}

/// Verifies a DPoP proof for a request (RFC 9449 §4.3 checks 1–11; the nonce and the
/// jti's single use are the caller's, with [`ReplayCache`]).
pub fn verify_proof(proof: &str, context: &ProofContext<'_>) -> Result<VerifiedProof, DpopError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(DpopError::TooLarge);
    }
    let parts = split_compact(proof).map_err(|_| DpopError::Malformed("not a compact JWS"))?;
    let header_bytes = b64_decode(parts.header).map_err(|_| DpopError::Malformed("header"))?;
    let header = parse_unique_object(&header_bytes).map_err(|_| DpopError::Malformed("header"))?;
    if header.get("typ").and_then(|t| t.as_str()) != Some("dpop+jwt") {
        return Err(DpopError::WrongType);
    }
    let alg = header
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or(DpopError::Algorithm)?;
    if !DPOP_ALGORITHMS.contains(&alg) {
        return Err(DpopError::Algorithm);
    }
    let jwk_value = header
        .get("jwk")
        .and_then(|j| j.as_object())
        .ok_or(DpopError::Malformed("jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk_value.contains_key(*m)) {
        return Err(DpopError::PrivateKey);
    }
    let jwk: Jwk = serde_json::from_value(serde_json::Value::Object(jwk_value.clone()))
        .map_err(|_| DpopError::BadKey)?;
    // The key decides the algorithm; `verify` refuses a header naming another one (an RSA
    // key never verifies an EC signature, whatever `alg` says).
    let key = VerifyingKey::from_jwk(&jwk).map_err(|_| DpopError::BadKey)?;
    if key.alg().as_str() != alg {
        return Err(DpopError::Algorithm);
    }
    let verified = key.verify(proof).map_err(|error| match error {
        crate::JoseError::BadSignature => DpopError::BadSignature,
        _ => DpopError::Malformed("JWS"),
    })?;
    let claims = verified.claims;
    let text = |name: &'static str| {
        claims
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or(DpopError::Malformed(name))
    };
    let jti = text("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(DpopError::Malformed("jti"));
    }
    if text("htm")? != context.method {
        return Err(DpopError::Method);
    }
    if !same_target(text("htu")?, context.uri) {
        return Err(DpopError::Uri);
    }
    let iat = claims
        .get("iat")
        .and_then(|v| v.as_i64())
        .ok_or(DpopError::Malformed("iat"))?;
    if iat < context.now - MAX_PROOF_AGE || iat > context.now + PROOF_FUTURE_LEEWAY {
        return Err(DpopError::Stale);
    }
    if let Some(token) = context.access_token {
        let ath = claims.get("ath").and_then(|v| v.as_str());
        // Compared as hashes of equal length; the token itself is not secret to its holder.
        if ath != Some(access_token_hash(token).as_str()) {
            return Err(DpopError::AccessTokenHash);
        }
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(serde_json::Value::String(n)) if n.len() <= MAX_JTI_BYTES => Some(n.clone()),
        Some(_) => return Err(DpopError::Malformed("nonce")),
    };
    Ok(VerifiedProof {
        jkt: thumbprint(&jwk),
        jti: jti.to_string(),
        iat,
        nonce,
    })
}

/// `htu` names the request's URI without query and fragment (§4.3 check 9), compared
/// after RFC 3986 syntax-based normalisation (scheme and host case, default port, dot
/// segments, percent-encoding case) — what `url` parsing does.
fn same_target(htu: &str, request: &str) -> bool {
    fn normalise(uri: &str) -> Option<url::Url> {
        let mut url = url::Url::parse(uri).ok()?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return None;
        }
        url.set_query(None);
        url.set_fragment(None);
        Some(url)
    }
    match (normalise(htu), normalise(request)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The jtis of accepted proofs, per process, each kept until its proof can no longer be
/// fresh. Bounded: when full of live entries it refuses new proofs ([`DpopError::Busy`])
/// rather than forget one that could still be replayed.
///
/// Entries sit in buckets by when they expire, [`BUCKET_SECONDS`] wide, and a bucket is
/// dropped whole once everything in it is stale: no check ever scans the cache, even when
/// it is full (a scan under the lock at every request would be the cost of a flood).
/// An entry is 128 bits of a hash of key and jti, about 20 bytes with the set's overhead.
pub struct ReplayCache {
    buckets: Mutex<Buckets>,
    capacity: usize,
}

/// How wide an expiry bucket is: entries are kept up to this much longer than needed, and
/// a check looks into at most (`MAX_PROOF_AGE` + `PROOF_FUTURE_LEEWAY`) / this + 2 sets.
pub const BUCKET_SECONDS: i64 = 8;

#[derive(Default)]
struct Buckets {
    /// (the second after which every entry is stale, the entries), in expiry order.
    by_expiry: std::collections::VecDeque<(i64, HashSet<u128>)>,
    len: usize,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            buckets: Mutex::new(Buckets::default()),
            capacity: capacity.max(1),
        }
    }

    /// Records the proof's jti (per key: two clients may pick the same jti); refuses one
    /// seen before.
    pub fn check(&self, proof: &VerifiedProof, now: i64) -> Result<(), DpopError> {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(proof.jkt.as_bytes());
        context.update(b".");
        context.update(proof.jti.as_bytes());
        let id = u128::from_be_bytes(
            context.finish().as_ref()[..16]
                .try_into()
                .expect("SHA-256 has 16 bytes to spare"),
        );
        // A proof is fresh until iat + MAX_PROOF_AGE; after that `verify_proof` refuses it.
        let until = proof.iat.max(now) + MAX_PROOF_AGE;
        let bucket = until.div_euclid(BUCKET_SECONDS) * BUCKET_SECONDS + BUCKET_SECONDS;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((expiry, _)) = buckets.by_expiry.front()
            && *expiry < now
        {
            let (_, stale) = buckets.by_expiry.pop_front().expect("a front bucket");
            buckets.len -= stale.len();
        }
        if buckets.by_expiry.iter().any(|(_, ids)| ids.contains(&id)) {
            return Err(DpopError::Replayed);
        }
        if buckets.len >= self.capacity {
            return Err(DpopError::Busy);
        }
        let position = buckets
            .by_expiry
            .iter()
            .rposition(|(expiry, _)| *expiry <= bucket);
        let index = match position {
            Some(i) if buckets.by_expiry[i].0 == bucket => i,
            Some(i) => {
                buckets.by_expiry.insert(i + 1, (bucket, HashSet::new()));
                i + 1
            }
            None => {
                buckets.by_expiry.push_front((bucket, HashSet::new()));
                0
            }
        };
        buckets.by_expiry[index].1.insert(id);
        buckets.len += 1;
        Ok(())
    }
}

/// How long one nonce is current: a server-provided nonce (RFC 9449 §8) issued in one
/// window is accepted in it and the next, so a nonce lives one to two windows.
pub const NONCE_WINDOW: i64 = 60;
/// Bytes of the nonce's MAC kept: 128 bits cannot be guessed within a window.
const NONCE_MAC_BYTES: usize = 16;

/// Server-provided DPoP nonces (RFC 9449 §8, §9), stateless: a nonce is the current time
/// window and a MAC of it, so any node holding the same secret accepts what another
/// issued, and nothing is stored per client. What it adds to `iat`: a proof must have been
/// made after the client heard from us recently, not pre-computed for later use.
pub struct NonceSource {
    key: hmac::Key,
}

impl std::fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceSource(redacted)")
    }
}

impl NonceSource {
    pub fn new(secret: &[u8; 32]) -> Self {
        NonceSource {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The nonce to hand out now (the `DPoP-Nonce` header).
    pub fn current(&self, now: i64) -> String {
        let window = now.div_euclid(NONCE_WINDOW).to_be_bytes();
        let mac = hmac::sign(&self.key, &window);
        let mut nonce = window.to_vec();
        nonce.extend_from_slice(&mac.as_ref()[..NONCE_MAC_BYTES]);
        b64(&nonce)
    }

    /// Whether `nonce` was issued in this window or the previous one by a holder of the
    /// same secret. The MAC is compared in constant time.
    pub fn accepts(&self, nonce: Option<&str>, now: i64) -> bool {
        let Some(bytes) = nonce.and_then(|n| b64_decode(n).ok()) else {
            return false;
        };
        if bytes.len() != 8 + NONCE_MAC_BYTES {
            return false;
        }
        let (window, mac) = bytes.split_at(8);
        let issued = i64::from_be_bytes(window.try_into().expect("eight bytes"));
        let current = now.div_euclid(NONCE_WINDOW);
        if issued != current && issued != current - 1 {
            return false;
        }
        let expected = hmac::sign(&self.key, window);
        constant_time::verify_slices_are_equal(&expected.as_ref()[..NONCE_MAC_BYTES], mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, SigningKey};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn proof(key: &SigningKey, claims: serde_json::Value) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": key.public_jwk()});
        key.sign_with_header(&header, &claims).unwrap()
    }

    fn claims() -> serde_json::Value {
        json!({"jti": "a1b2c3d4e5f6", "htm": "POST", "htu": "https://as.example/oauth/token", "iat": NOW})
    }

    fn context() -> ProofContext<'static> {
        ProofContext {
            method: "POST",
            uri: "https://as.example/oauth/token",
            access_token: None,
            now: NOW,
        }
    }

    #[test]
    fn every_algorithm_proves_its_thumbprint() {
        for alg in Algorithm::ALL {
            let (key, _) = SigningKey::generate(alg).unwrap();
            let verified = verify_proof(&proof(&key, claims()), &context()).unwrap();
            assert_eq!(verified.jkt, thumbprint(key.public_jwk()));
            assert_eq!(verified.jti, "a1b2c3d4e5f6");
        }
    }

    #[test]
    fn request_must_match() {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let good = proof(&key, claims());
        let mut ctx = context();
        ctx.method = "GET";
        assert_eq!(verify_proof(&good, &ctx), Err(DpopError::Method));
        ctx = context();
        ctx.uri = "https://as.example/oauth/revoke";
        assert_eq!(verify_proof(&good, &ctx), Err(DpopError::Uri));
        // Query, fragment, case of scheme and host, default port: the same resource.
        ctx.uri = "HTTPS://AS.example:443/oauth/token?x=1#f";
        assert!(verify_proof(&good, &ctx).is_ok());
        ctx.uri = "http://as.example/oauth/token";
        assert_eq!(verify_proof(&good, &ctx), Err(DpopError::Uri));
        for iat in [NOW - MAX_PROOF_AGE - 1, NOW + PROOF_FUTURE_LEEWAY + 1] {
            let mut c = claims();
            c["iat"] = json!(iat);
            assert_eq!(
                verify_proof(&proof(&key, c), &context()),
                Err(DpopError::Stale)
            );
        }
    }

    #[test]
    fn ath_binds_the_access_token() {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut c = claims();
        c["ath"] = json!(access_token_hash("token-a"));
        let p = proof(&key, c);
        let mut ctx = context();
        ctx.access_token = Some("token-a");
        assert!(verify_proof(&p, &ctx).is_ok());
        ctx.access_token = Some("token-b");
        assert_eq!(verify_proof(&p, &ctx), Err(DpopError::AccessTokenHash));
        assert_eq!(
            verify_proof(&proof(&key, claims()), &ctx),
            Err(DpopError::AccessTokenHash)
        );
    }

    #[test]
    fn hostile_proofs_are_refused() {
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let (other, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let sign = |header: serde_json::Value| key.sign_with_header(&header, &claims()).unwrap();
        let jwk = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(
            verify_proof(
                &sign(json!({"typ": "JWT", "alg": "ES256", "jwk": jwk})),
                &context()
            ),
            Err(DpopError::WrongType)
        );
        for alg in ["none", "HS256", "RS256", "PS256"] {
            let forged = sign(json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk}));
            assert_eq!(
                verify_proof(&forged, &context()),
                Err(DpopError::Algorithm),
                "{alg}"
            );
        }
        let mut private = jwk.clone();
        private["d"] = json!("AAAA");
        assert_eq!(
            verify_proof(
                &sign(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private})),
                &context()
            ),
            Err(DpopError::PrivateKey)
        );
        // Signed by another key than the one it carries.
        let carried = serde_json::to_value(other.public_jwk()).unwrap();
        assert_eq!(
            verify_proof(
                &sign(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": carried})),
                &context()
            ),
            Err(DpopError::BadSignature)
        );
        assert_eq!(
            verify_proof(
                &sign(json!({"typ": "dpop+jwt", "alg": "ES256"})),
                &context()
            ),
            Err(DpopError::Malformed("jwk"))
        );
        let huge = "a".repeat(100 * 1024);
        assert_eq!(verify_proof(&huge, &context()), Err(DpopError::TooLarge));
        let mut c = claims();
        c["jti"] = json!("x".repeat(MAX_JTI_BYTES + 1));
        assert_eq!(
            verify_proof(&proof(&key, c), &context()),
            Err(DpopError::Malformed("jti"))
        );
        // Duplicate header members are refused, not resolved.
        let dup = format!(
            "{}.{}.{}",
            b64(br#"{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256"}"#),
            b64(b"{}"),
            b64(b"sig")
        );
        assert_eq!(
            verify_proof(&dup, &context()),
            Err(DpopError::Malformed("header"))
        );
    }

    #[test]
    fn nonces_live_one_to_two_windows_and_cannot_be_forged() {
        let source = NonceSource::new(&[7u8; 32]);
        let nonce = source.current(NOW);
        assert!(source.accepts(Some(&nonce), NOW));
        // Another node with the same secret accepts it; one with another secret does not.
        assert!(NonceSource::new(&[7u8; 32]).accepts(Some(&nonce), NOW));
        assert!(!NonceSource::new(&[8u8; 32]).accepts(Some(&nonce), NOW));
        let window_end = (NOW.div_euclid(NONCE_WINDOW) + 1) * NONCE_WINDOW;
        assert!(source.accepts(Some(&nonce), window_end + NONCE_WINDOW - 1));
        assert!(!source.accepts(Some(&nonce), window_end + NONCE_WINDOW));
        // A nonce for a future window is not one we issued.
        assert!(!source.accepts(Some(&source.current(NOW + NONCE_WINDOW)), NOW));
        assert!(!source.accepts(None, NOW));
        for forged in ["", "not base64!", "AAAA", &nonce[..nonce.len() - 2]] {
            assert!(!source.accepts(Some(forged), NOW), "{forged}");
        }
        // The window is MAC'd: moving a nonce to a later window breaks it.
        let mut bytes = b64_decode(&nonce).unwrap();
        bytes[7] = bytes[7].wrapping_add(1);
        assert!(!source.accepts(Some(&b64(&bytes)), NOW + NONCE_WINDOW));
    }

    #[test]
    fn replay_cache_refuses_a_second_use_and_stays_bounded() {
        let cache = ReplayCache::new(2);
        let proof = |jti: &str, iat: i64| VerifiedProof {
            jkt: "k".into(),
            jti: jti.into(),
            iat,
            nonce: None,
        };
        assert!(cache.check(&proof("a", NOW), NOW).is_ok());
        assert_eq!(cache.check(&proof("a", NOW), NOW), Err(DpopError::Replayed));
        assert!(cache.check(&proof("b", NOW), NOW).is_ok());
        assert_eq!(cache.check(&proof("c", NOW), NOW), Err(DpopError::Busy));
        // Once the first ones can no longer be fresh (and their bucket is over), their room
        // is reused.
        let later = NOW + MAX_PROOF_AGE + 2 * BUCKET_SECONDS;
        assert!(cache.check(&proof("c", later), later).is_ok());
    }

    #[test]
    fn replay_cache_keeps_every_jti_while_its_proof_can_be_fresh() {
        let cache = ReplayCache::new(100);
        let proof = |jti: &str, iat: i64| VerifiedProof {
            jkt: "k".into(),
            jti: jti.into(),
            iat,
            nonce: None,
        };
        // Expiries out of order: a proof from the future first, then older ones, so new
        // buckets go before and between existing ones.
        let accepted = [
            ("late", NOW + PROOF_FUTURE_LEEWAY),
            ("oldest", NOW - MAX_PROOF_AGE),
            ("now", NOW),
            ("middle", NOW - 30),
        ];
        for (jti, iat) in accepted {
            assert!(cache.check(&proof(jti, iat), NOW).is_ok(), "{jti}");
        }
        // Time only moves forward: at each moment, every proof that could still be fresh
        // is refused.
        let last_fresh = |iat: i64| iat.max(NOW) + MAX_PROOF_AGE;
        for at in NOW..=NOW + MAX_PROOF_AGE + PROOF_FUTURE_LEEWAY {
            for (jti, iat) in accepted.iter().filter(|(_, iat)| last_fresh(*iat) >= at) {
                assert_eq!(
                    cache.check(&proof(jti, *iat), at),
                    Err(DpopError::Replayed),
                    "{jti} at +{}",
                    at - NOW
                );
            }
        }
        // Another key may use the same jti.
        let mut theirs = proof("now", NOW);
        theirs.jkt = "other".into();
        assert!(cache.check(&theirs, NOW).is_ok());
    }
}
