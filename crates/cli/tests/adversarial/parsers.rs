//! Property tests of the parsers that read what a client sends, with proptest (its default
//! configuration, a bounded number of cases; each property is one case of the tally, its
//! name saying how many inputs it saw; a failure shows proptest's smallest input):
//!
//! - compact JWS verification (`tessera_jose`: `verify`, `verify_with`, `verify_payload`,
//!   `verify_payload_with`, `peek_header`): random text and segments, every single-bit flip
//!   of valid tokens, `alg` variants, duplicate members, `crit`, sizes around the limit —
//!   never a panic, never a token the key did not sign exactly as presented;
//! - the `Authorization` header: the API guard's bearer parser (`tessera_guard`), and the
//!   server's own — `/userinfo`'s and the Management API's bearer parsing, the token
//!   endpoint's `client_secret_basic` — through HTTP, since they are private to the server.
//!
//! The server's request-parameter parser (`params.rs`) is private to its crate; its
//! properties are unit tests there (`crates/server/src/params/proptests.rs`).

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tessera_guard::bearer_token;
use tessera_jose::{
    Algorithm, MAX_TOKEN_BYTES, SigningKey, VerifyingKey, b64, b64_decode, peek_header,
    verify_payload_with, verify_with,
};
use tessera_testkit::{API, browser, spawn};

use crate::harness::Tally;

/// Runs one property over `cases` generated inputs and records it as one case.
fn check<S: Strategy>(
    tally: &mut Tally,
    property: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        // Nothing written next to the sources: a failure is in the tally's report.
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, test);
    tally.case(
        format_args!("{property} ({cases} inputs)"),
        result.is_ok(),
        result.err().map(|e| e.to_string()).unwrap_or_default(),
    );
}

/// A signing key, the PKCS#8 it came from (to sign headers of our making), its verifier.
struct Key {
    alg: Algorithm,
    signing: SigningKey,
    pkcs8: Vec<u8>,
    verifying: VerifyingKey,
}

impl Key {
    fn generate(alg: Algorithm) -> Key {
        let (signing, pkcs8) = SigningKey::generate(alg).expect("a key");
        let verifying = signing.verifying_key().expect("its verifier");
        Key {
            alg,
            signing,
            pkcs8,
            verifying,
        }
    }

    fn kid(&self) -> &str {
        self.signing.kid()
    }

    /// A compact JWS of exactly these header and payload bytes, signed by this key.
    fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let rng = SystemRandom::new();
        let signature = match self.alg {
            Algorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&self.pkcs8).unwrap();
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut signature,
                )
                .unwrap();
                signature
            }
            Algorithm::Es256 => {
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8)
                    .unwrap()
                    .sign(&rng, input.as_bytes())
                    .unwrap()
                    .as_ref()
                    .to_vec()
            }
            Algorithm::EdDsa => Ed25519KeyPair::from_pkcs8(&self.pkcs8)
                .unwrap()
                .sign(input.as_bytes())
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }

    /// A token as the server signs them.
    fn token(&self) -> String {
        let claims =
            json!({"iss": "https://issuer/", "sub": "auth0|a", "aud": "api", "exp": 2_000_000_000});
        self.signing.sign_jwt("JWT", &claims).unwrap()
    }

    /// Which of the four verifiers accept `token`, this key being the only one.
    fn accepted_by(&self, token: &str) -> Vec<&'static str> {
        let find = |kid: &str| (Some(kid) == self.verifying.kid()).then_some(&self.verifying);
        let verdicts = [
            ("verify", self.verifying.verify(token).is_ok()),
            ("verify_with", verify_with(token, find).is_ok()),
            (
                "verify_payload",
                self.verifying.verify_payload(token).is_ok(),
            ),
            (
                "verify_payload_with",
                verify_payload_with(token, find).is_ok(),
            ),
        ];
        // Reading a header unverified must not panic either.
        let _ = peek_header(token);
        verdicts
            .into_iter()
            .filter_map(|(name, ok)| ok.then_some(name))
            .collect()
    }
}

fn keys() -> Vec<Key> {
    Algorithm::ALL.into_iter().map(Key::generate).collect()
}

fn refused(key: &Key, token: &str) -> Result<(), TestCaseError> {
    let accepted = key.accepted_by(token);
    prop_assert!(
        accepted.is_empty(),
        "{} accepted by {accepted:?}: {token:?}",
        key.alg
    );
    Ok(())
}

const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Text made of what tokens are made of, and a little else.
fn token_like() -> impl Strategy<Value = String> {
    let alphabet: Vec<char> = format!("{B64URL}.=+/ %\0é").chars().collect();
    proptest::collection::vec(proptest::sample::select(alphabet), 0..3000)
        .prop_map(|chars| chars.into_iter().collect())
}

fn random_text_is_refused(tally: &mut Tally, keys: &[Key]) {
    check(
        tally,
        "JWS: arbitrary text is refused by every verifier",
        256,
        any::<String>(),
        |text| keys.iter().try_for_each(|key| refused(key, &text)),
    );
    check(
        tally,
        "JWS: text of base64url characters and dots is refused by every verifier",
        256,
        token_like(),
        |text| keys.iter().try_for_each(|key| refused(key, &text)),
    );
}

/// Three or more segments of random bytes, sometimes under a real header.
fn random_segments_are_refused(tally: &mut Tally, keys: &[Key]) {
    let segments = (
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(any::<u8>(), 0..600),
        0usize..3,
    );
    check(
        tally,
        "JWS: random base64url segments are refused by every verifier",
        256,
        segments,
        |(real_header, header, payload, signature, extra)| {
            for key in keys {
                let header = if real_header {
                    json!({"alg": key.alg.as_str(), "kid": key.kid()})
                        .to_string()
                        .into_bytes()
                } else {
                    header.clone()
                };
                let mut token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
                for _ in 0..extra {
                    token.push_str(".AAAA");
                }
                refused(key, &token)?;
            }
            Ok(())
        },
    );
}

/// Every single-bit flip of a valid token: of its characters (bits 0–6, so the text stays
/// ASCII) and of the bytes each segment decodes to (re-encoded). Exhaustive, not sampled.
fn every_bit_flip_is_refused(tally: &mut Tally, keys: &[Key]) {
    for key in keys {
        let token = key.token();
        let valid = key.accepted_by(&token);
        tally.case(
            format_args!(
                "JWS {}: the unaltered token is accepted by every verifier",
                key.alg
            ),
            valid.len() == 4,
            format_args!("accepted by {valid:?} only"),
        );

        let mut flips = 0;
        let mut accepted = Vec::new();
        let bytes = token.as_bytes();
        for at in 0..bytes.len() {
            for bit in 0..7 {
                let mut flipped = bytes.to_vec();
                flipped[at] ^= 1 << bit;
                let flipped = String::from_utf8(flipped).expect("ASCII stays ASCII");
                flips += 1;
                let by = key.accepted_by(&flipped);
                if !by.is_empty() {
                    accepted.push(format!("char {at} bit {bit}: {by:?}"));
                }
            }
        }
        tally.case(
            format_args!(
                "JWS {}: all {flips} single-bit flips of the token's characters are refused",
                key.alg
            ),
            accepted.is_empty(),
            accepted.join("; "),
        );

        let parts: Vec<Vec<u8>> = token.split('.').map(|p| b64_decode(p).unwrap()).collect();
        let mut flips = 0;
        let mut accepted = Vec::new();
        for (part, name) in ["header", "payload", "signature"].iter().enumerate() {
            for at in 0..parts[part].len() {
                for bit in 0..8 {
                    let mut altered = parts.clone();
                    altered[part][at] ^= 1 << bit;
                    let flipped = altered.iter().map(|p| b64(p)).collect::<Vec<_>>().join(".");
                    flips += 1;
                    let by = key.accepted_by(&flipped);
                    if !by.is_empty() {
                        accepted.push(format!("{name} byte {at} bit {bit}: {by:?}"));
                    }
                }
            }
        }
        tally.case(
            format_args!(
                "JWS {}: all {flips} single-bit flips of the decoded header, payload and signature are refused",
                key.alg
            ),
            accepted.is_empty(),
            accepted.join("; "),
        );
    }
}

/// Signed by the key, but the header names another algorithm: refused before any
/// cryptography, whatever the spelling.
fn other_algs_are_refused(tally: &mut Tally, keys: &[Key]) {
    let spellings = [
        "none", "None", "NONE", "nOnE", "HS256", "HS512", "RS256", "RS384", "RS512", "PS256",
        "ES256", "ES384", "ES256K", "EdDSA", "Ed25519", "eddsa", "rs256", "RS256 ", " RS256",
        "RS256\0", "", "RSA-OAEP",
    ];
    let alg = prop_oneof![
        proptest::sample::select(spellings.to_vec()).prop_map(str::to_string),
        any::<String>(),
    ];
    check(
        tally,
        "JWS: a correctly signed token whose alg is not the key's is refused",
        256,
        alg,
        |alg| {
            for key in keys {
                let header = json!({"alg": alg, "kid": key.kid()}).to_string();
                let token = key.sign_raw(header.as_bytes(), br#"{"sub":"a"}"#);
                let accepted = key.accepted_by(&token);
                if alg == key.alg.as_str() {
                    prop_assert_eq!(accepted.len(), 4, "{} refused its own alg", key.alg);
                } else {
                    prop_assert!(accepted.is_empty(), "{} accepted alg {alg:?}", key.alg);
                }
            }
            Ok(())
        },
    );
    // The alg as another JSON type.
    for key in keys {
        for alg in [
            json!(null),
            json!(256),
            json!([key.alg.as_str()]),
            json!({"name": key.alg.as_str()}),
        ] {
            let header = json!({"alg": alg, "kid": key.kid()}).to_string();
            let token = key.sign_raw(header.as_bytes(), br#"{"sub":"a"}"#);
            let accepted = key.accepted_by(&token);
            tally.case(
                format_args!("JWS {}: alg {alg} is refused", key.alg),
                accepted.is_empty(),
                format_args!("accepted by {accepted:?}"),
            );
        }
    }
}

/// One header or payload member: a name from what verifiers read (and some they do not),
/// and a value of any JSON type.
fn member() -> impl Strategy<Value = (String, Value)> {
    let names = prop_oneof![
        4 => proptest::sample::select(vec!["alg", "kid", "typ", "crit", "jwk", "jku", "x5u", "b64", "zip", "sub"])
            .prop_map(str::to_string),
        1 => "[a-z]{1,6}",
    ];
    let values = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        proptest::collection::vec(".{0,6}".prop_map(Value::from), 0..3).prop_map(Value::from),
    ];
    (names, values)
}

/// A JSON object written member by member, so that a name may repeat.
fn object(members: &[(String, Value)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::String(name.clone())))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// What the verifiers must decide for a header and payload the key signed: `(single key,
/// key set)` for `verify`/`verify_with`, and the same pair for the `_payload` variants.
fn expected(key: &Key, header: &[(String, Value)], payload: &[(String, Value)]) -> [bool; 4] {
    let count = |name: &str| header.iter().filter(|(n, _)| n == name).count();
    let value = |name: &str| header.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let string_or_null =
        |name: &str| matches!(value(name), None | Some(Value::Null | Value::String(_)));
    let header_ok = ["alg", "kid", "typ", "crit"].iter().all(|n| count(n) <= 1)
        && value("alg") == Some(&Value::String(key.alg.as_str().into()))
        && string_or_null("kid")
        && string_or_null("typ")
        && matches!(value("crit"), None | Some(Value::Null));
    let kid_ok = value("kid") == Some(&Value::String(key.kid().into()));
    let mut names: Vec<&String> = payload.iter().map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    let claims_ok = names.len() == payload.len();
    [
        header_ok && claims_ok,
        header_ok && kid_ok && claims_ok,
        header_ok,
        header_ok && kid_ok,
    ]
}

/// Signed headers and payloads of random members: duplicate `alg`/`kid`/`typ`/`crit`, any
/// `crit`, a non-string `kid` or `typ`, duplicate claims (for the verifiers that parse
/// them) are refused; members nobody reads are ignored.
fn signed_members_follow_the_rules(tally: &mut Tally, keys: &[Key]) {
    let members = (
        proptest::collection::vec(member(), 0..5),
        proptest::collection::vec(member(), 0..5),
        any::<bool>(),
    );
    let valid = std::cell::Cell::new(0);
    check(
        tally,
        "JWS: signed headers with random members are accepted exactly when alg is the key's, kid and typ are strings, nothing is duplicated and there is no crit",
        256,
        members,
        |(mut header, payload, real)| {
            for key in keys {
                if real {
                    // Mostly a real alg and kid, so that acceptance is possible.
                    header.insert(0, ("alg".into(), Value::from(key.alg.as_str())));
                    header.insert(1, ("kid".into(), Value::from(key.kid())));
                }
                let token = key.sign_raw(object(&header).as_bytes(), object(&payload).as_bytes());
                let accepted = key.accepted_by(&token);
                if accepted.len() == 4 {
                    valid.set(valid.get() + 1);
                }
                let names = [
                    "verify",
                    "verify_with",
                    "verify_payload",
                    "verify_payload_with",
                ];
                for (name, expect) in names.iter().zip(expected(key, &header, &payload)) {
                    prop_assert_eq!(
                        accepted.contains(name),
                        expect,
                        "{} {}: header {} payload {}",
                        key.alg,
                        name,
                        object(&header),
                        object(&payload)
                    );
                }
                if real {
                    header.drain(..2);
                }
            }
            Ok(())
        },
    );
    tally.case(
        "JWS: some of the random signed headers were valid ones, and accepted",
        valid.get() > 0,
        "none was",
    );
}

/// Tokens just under and over the size limit, correctly signed: accepted only under it.
fn the_size_limit_holds(tally: &mut Tally, keys: &[Key]) {
    check(
        tally,
        "JWS: a correctly signed token is accepted only up to MAX_TOKEN_BYTES",
        64,
        5600usize..6400,
        |padding| {
            for key in keys {
                let header = json!({"alg": key.alg.as_str(), "kid": key.kid()}).to_string();
                let payload = json!({"sub": "a", "pad": "x".repeat(padding)}).to_string();
                let token = key.sign_raw(header.as_bytes(), payload.as_bytes());
                let accepted = key.accepted_by(&token);
                let fits = token.len() <= MAX_TOKEN_BYTES;
                prop_assert_eq!(accepted.len() == 4, fits, "{} bytes", token.len());
                prop_assert!(fits || accepted.is_empty());
            }
            Ok(())
        },
    );
    let huge = format!(
        "{}.{}.{}",
        "e".repeat(1 << 20),
        "e".repeat(1 << 20),
        "e".repeat(1 << 20)
    );
    for key in keys {
        let accepted = key.accepted_by(&huge);
        tally.case(
            format_args!("JWS {}: a 3 MiB token is refused", key.alg),
            accepted.is_empty(),
            format_args!("accepted by {accepted:?}"),
        );
    }
}

#[test]
fn jws_verification() {
    let mut tally = Tally::new("parsers/jws");
    let keys = keys();
    random_text_is_refused(&mut tally, &keys);
    random_segments_are_refused(&mut tally, &keys);
    every_bit_flip_is_refused(&mut tally, &keys);
    other_algs_are_refused(&mut tally, &keys);
    signed_members_follow_the_rules(&mut tally, &keys);
    the_size_limit_holds(&mut tally, &keys);
    tally.finish();
}

/// `Authorization` values as they may arrive: any bytes a header value can hold.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => 0x20u8..0x7f,
        1 => Just(b'\t'),
        1 => 0x80u8..=0xff,
    ];
    let prefix = proptest::sample::select(vec![
        "", "Bearer ", "bearer  ", "BEARER", "Basic ", "Bearer\t",
    ]);
    (prefix, proptest::collection::vec(byte, 0..300)).prop_map(|(prefix, rest)| {
        let mut value = prefix.as_bytes().to_vec();
        value.extend(rest);
        value
    })
}

fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[test]
fn the_guards_bearer_parser() {
    let mut tally = Tally::new("parsers/guard-bearer");
    let schemes = "[bB][eE][aA][rR][eE][rR]";
    let token = "[A-Za-z0-9._~+/-]{1,200}={0,3}";
    check(
        &mut tally,
        "guard: Bearer, any spaces and any b64token give back the token",
        512,
        (schemes, 1usize..5, token),
        |(scheme, spaces, token)| {
            let value = format!("{scheme}{}{token}", " ".repeat(spaces));
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&value).unwrap(),
            );
            prop_assert_eq!(bearer_token(&headers).ok(), Some(token.as_str()));
            Ok(())
        },
    );
    check(
        &mut tally,
        "guard: from any header value, a token is read only after Bearer and spaces, and it is a b64token",
        1024,
        header_value(),
        |value| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(&value).unwrap(),
            );
            if let Ok(token) = bearer_token(&headers) {
                prop_assert!(is_b64token(token), "{token:?}");
                let text = std::str::from_utf8(&value).unwrap();
                let (scheme, rest) = text.split_once(' ').unwrap();
                prop_assert!(scheme.eq_ignore_ascii_case("bearer"));
                prop_assert_eq!(rest.trim_start_matches(' '), token);
            }
            Ok(())
        },
    );
    check(
        &mut tally,
        "guard: two Authorization headers are refused, whatever they hold",
        256,
        (token, token),
        |(first, second)| {
            let mut headers = HeaderMap::new();
            for token in [first, second] {
                let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
                headers.append(header::AUTHORIZATION, value);
            }
            prop_assert!(bearer_token(&headers).is_err());
            Ok(())
        },
    );
    tally.finish();
}

/// A header value built around a valid token: the scheme in any case or another one, any
/// spaces or a tab, the token whole or altered, something after it.
fn around(valid: String) -> impl Strategy<Value = String> {
    let scheme = proptest::sample::select(vec![
        "Bearer", "bearer", "BeArEr", "Basic", "Token", "", "Bearer:",
    ]);
    let gap = proptest::sample::select(vec![" ", "  ", "   ", "\t", "", " \t"]);
    let alteration = 0usize..8;
    let after = proptest::sample::select(vec!["", "", "", "=", "==", " x", ",", "\t", "x"]);
    let at = any::<prop::sample::Index>();
    (scheme, gap, alteration, after, at).prop_map(move |(scheme, gap, alteration, after, at)| {
        let mut token = valid.clone();
        let index = at.index(token.len());
        match alteration {
            0 => {
                // One character replaced by another of the alphabet.
                let replaced = if token.as_bytes()[index] == b'A' {
                    "B"
                } else {
                    "A"
                };
                token.replace_range(index..=index, replaced);
            }
            1 => token.truncate(index),
            2 => token = token.to_uppercase(),
            _ => {}
        }
        format!("{scheme}{gap}{token}{after}")
    })
}

/// What the guard's parser reads from `value` once it crossed the wire (HTTP trims the
/// whitespace around a header value).
fn guard_reads(value: &str) -> Option<String> {
    let wire = value.trim_matches([' ', '\t']);
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(wire).ok()?);
    bearer_token(&headers).ok().map(str::to_string)
}

/// Whether `value` is the Bearer scheme (any case) and `token`, with nothing else but
/// whitespace around the token.
fn carries_only(value: &str, token: &str) -> bool {
    let value = value.trim_matches([' ', '\t']);
    value.len() > 6
        && value.is_char_boundary(6)
        && value[..6].eq_ignore_ascii_case("bearer")
        && value[6..].starts_with([' ', '\t'])
        && value[6..].trim_matches([' ', '\t']) == token
}

/// One request with this `Authorization` value (any bytes a header may hold).
fn call(
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    url: &str,
    authorization: &[u8],
) -> (u16, Value) {
    let value = reqwest::header::HeaderValue::from_bytes(authorization).expect("a header value");
    runtime.block_on(async {
        let request = http.get(url).header(reqwest::header::AUTHORIZATION, value);
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

#[test]
fn the_servers_authorization_parsers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut tally = Tally::new("parsers/server-authorization");
    let server = Arc::new(runtime.block_on(spawn()));
    let user_token = runtime.block_on(async {
        let tokens = server
            .code_flow(&browser(), "openid profile", Some(API))
            .await;
        tokens["access_token"].as_str().unwrap().to_string()
    });
    let management = runtime.block_on(server.management_token(&["read:clients"]));
    let http = reqwest::Client::new();

    let endpoints = [
        ("/userinfo", user_token, "error"),
        ("/api/v2/clients", management, "statusCode"),
    ];
    for (path, valid, error_member) in endpoints {
        let url = server.url(path);
        let accepted = std::cell::Cell::new(0);
        check(
            &mut tally,
            &format!(
                "{path}: every header the API guard reads the valid token from gets 200, and only the valid token does"
            ),
            128,
            around(valid.clone()),
            |value| {
                let (status, body) = call(&runtime, &http, &url, value.as_bytes());
                if guard_reads(&value).as_deref() == Some(valid.as_str()) {
                    prop_assert_eq!(status, 200, "{:?}: {}", value, body);
                }
                if status == 200 {
                    accepted.set(accepted.get() + 1);
                    prop_assert!(carries_only(&value, &valid), "{value:?}");
                } else {
                    prop_assert!(matches!(status, 400 | 401), "{value:?}: {status}");
                    prop_assert!(!body[error_member].is_null(), "{value:?}: {body}");
                }
                Ok(())
            },
        );
        // Not vacuous: some of the generated headers were the valid token's.
        tally.case(
            format_args!("{path}: the valid token was among the headers tried"),
            accepted.get() > 0,
            "no header carried it",
        );
        check(
            &mut tally,
            &format!("{path}: any header value is refused in the endpoint's shape"),
            128,
            header_value(),
            |value| {
                let (status, body) = call(&runtime, &http, &url, &value);
                let shown = String::from_utf8_lossy(&value);
                prop_assert!(matches!(status, 400 | 401), "{shown:?}: {status}");
                prop_assert!(!body[error_member].is_null(), "{shown:?}: {body}");
                Ok(())
            },
        );
    }

    // client_secret_basic: base64(urlencode(id) ":" urlencode(secret)), RFC 6749 §2.3.1.
    let url = server.url("/oauth/token");
    let (id, secret) = (server.m2m_client_id.clone(), server.m2m_secret.clone());
    let encodings = 0usize..4;
    let authenticated = std::cell::Cell::new(0);
    let variant = 0usize..4;
    check(
        &mut tally,
        "/oauth/token: client_secret_basic succeeds exactly for the client's own id and secret, however percent-encoded",
        128,
        (
            variant.clone(),
            variant,
            encodings.clone(),
            encodings,
            any::<String>(),
        ),
        |(id_variant, secret_variant, id_encoding, secret_encoding, noise)| {
            let pick = |real: &str, variant: usize| match variant {
                0 | 1 => real.to_string(),
                2 => format!("{real}{noise}"),
                _ => noise.clone(),
            };
            let (sent_id, sent_secret) = (pick(&id, id_variant), pick(&secret, secret_variant));
            let credentials = format!(
                "{}:{}",
                percent(&sent_id, id_encoding),
                percent(&sent_secret, secret_encoding)
            );
            let value = format!("Basic {}", STANDARD.encode(credentials));
            let (status, body) = runtime.block_on(async {
                let response = http
                    .post(&url)
                    .header(header::AUTHORIZATION.as_str(), &value)
                    .form(&[("grant_type", "client_credentials"), ("audience", API)])
                    .send()
                    .await
                    .expect("an answer");
                let status = response.status().as_u16();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            });
            let own = sent_id == id && sent_secret == secret;
            if own {
                authenticated.set(authenticated.get() + 1);
            }
            prop_assert_eq!(
                status == 200,
                own,
                "{:?} / {:?}: {} {}",
                sent_id,
                sent_secret,
                status,
                body
            );
            if !own {
                prop_assert!(matches!(status, 400 | 401), "{status}");
                prop_assert!(body["error"].is_string(), "{body}");
            }
            Ok(())
        },
    );
    tally.case(
        "/oauth/token: the client's own credentials were among those tried",
        authenticated.get() > 0,
        "they never were",
    );
    tally.finish();
}

/// `text` percent-encoded: not at all, form-style, every byte (upper or lower case hex).
fn percent(text: &str, how: usize) -> String {
    match how {
        0 => text.to_string(),
        1 => url::form_urlencoded::byte_serialize(text.as_bytes()).collect(),
        2 => text.bytes().map(|b| format!("%{b:02X}")).collect(),
        _ => text.bytes().map(|b| format!("%{b:02x}")).collect(),
    }
}

/// One request, two identities: every endpoint that reads `Authorization` refuses a second
/// header (whichever comes first), and credentials that are not one token68 after single
/// spaces. Reading the first header while a proxy in front reads the last would let one
/// request carry two callers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_and_loose_authorization_headers_are_refused() {
    let mut tally = Tally::new("parsers/repeated-authorization");
    let server = spawn().await;
    let user_token = server
        .code_flow(&browser(), "openid profile", Some(API))
        .await["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    let management = server.management_token(&["read:clients"]).await;
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", server.m2m_client_id, server.m2m_secret))
    );
    let http = reqwest::Client::new();
    let send = |path: &str, values: Vec<String>| {
        let url = server.url(path);
        let http = http.clone();
        async move {
            let mut headers = reqwest::header::HeaderMap::new();
            for value in values {
                headers.append(
                    reqwest::header::AUTHORIZATION,
                    reqwest::header::HeaderValue::from_str(&value).expect("a header value"),
                );
            }
            let request = if url.ends_with("/oauth/token") {
                http.post(&url)
                    .form(&[("grant_type", "client_credentials"), ("audience", API)])
            } else {
                http.get(&url)
            };
            let response = request.headers(headers).send().await.expect("an answer");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let endpoints = [
        (
            "/userinfo",
            format!("Bearer {user_token}"),
            "Bearer garbage",
        ),
        (
            "/api/v2/clients",
            format!("Bearer {management}"),
            "Bearer garbage",
        ),
        ("/oauth/token", basic.clone(), "Basic Z2FyYmFnZTpnYXJiYWdl"),
    ];
    for (path, valid, garbage) in &endpoints {
        // The control: the valid header alone opens the endpoint.
        let (status, body) = send(path, vec![valid.clone()]).await;
        tally.case(
            format_args!("{path}: the valid header alone is accepted (control)"),
            status == 200,
            format_args!("{status} {body}"),
        );
        let (scheme, credentials) = valid.split_once(' ').expect("scheme and credentials");
        for (label, values) in [
            (
                "valid then garbage",
                vec![valid.clone(), garbage.to_string()],
            ),
            (
                "garbage then valid",
                vec![garbage.to_string(), valid.clone()],
            ),
            ("the valid header twice", vec![valid.clone(), valid.clone()]),
            (
                "a tab after the scheme",
                vec![format!("{scheme}\t{credentials}")],
            ),
            (
                "a space and a tab",
                vec![format!("{scheme} \t{credentials}")],
            ),
            ("a second word", vec![format!("{valid} extra")]),
            ("a trailing comma", vec![format!("{valid},")]),
        ] {
            let (status, body) = send(path, values).await;
            let shaped = !body["error"].is_null() || !body["statusCode"].is_null();
            tally.case(
                format_args!("{path}: {label}: 400 in the endpoint's shape"),
                status == 400 && shaped,
                format_args!("{status} {body}"),
            );
        }
    }
    // /userinfo also reads the token from a form body and the `access_token` query
    // parameter (RFC 6750 §2.2, §2.3): one source per request, else one caller could ride
    // on another's token. Each mix is a 400 that does not echo a token.
    let garbage = "garbage-token-0123456789";
    let with_query = |token: &str| server.url(&format!("/userinfo?access_token={token}"));
    let mixes = [
        (
            "query and header",
            http.get(with_query(&user_token)).bearer_auth(garbage),
        ),
        (
            "header and query",
            http.get(with_query(garbage)).bearer_auth(&user_token),
        ),
        (
            "query and form",
            http.post(with_query(garbage))
                .form(&[("access_token", user_token.as_str())]),
        ),
        (
            "form and header",
            http.post(server.url("/userinfo"))
                .bearer_auth(garbage)
                .form(&[("access_token", user_token.as_str())]),
        ),
        (
            "the query parameter twice",
            http.get(server.url(&format!(
                "/userinfo?access_token={user_token}&access_token={garbage}"
            ))),
        ),
        (
            "the query parameter twice, same token",
            http.get(server.url(&format!(
                "/userinfo?access_token={user_token}&access_token={user_token}"
            ))),
        ),
    ];
    for (label, request) in mixes {
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        tally.case(
            format_args!("/userinfo: {label}: 400, no token echoed"),
            status == 400 && !text.contains(&user_token) && !text.contains(garbage),
            format_args!("{status} {text}"),
        );
    }
    for (label, url) in [
        (
            "an empty query token",
            server.url("/userinfo?access_token="),
        ),
        ("a garbage query token", with_query(garbage)),
        ("a huge query token", with_query(&"A".repeat(5000))),
    ] {
        let response = http.get(url).send().await.expect("an answer");
        let status = response.status().as_u16();
        tally.status_in(format_args!("/userinfo: {label}"), status, &[400, 401]);
    }
    tally.finish();
}
