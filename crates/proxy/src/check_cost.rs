//! A fixed workload for counting, with callgrind, what the token check adds to a proxied
//! request, in RSA verifications — the unit of BENCHMARKS.md's proxy row, without its
//! noise. As a test it runs a few rounds (and checks the token passes); for counting, ask
//! for more:
//!
//! ```sh
//! cargo test --release -p tessera-proxy --lib --no-run   # prints the test binary's path
//! TESSERA_CHECK_COST_ROUNDS=2000 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!   target/release/deps/tessera_proxy-HASH --exact check_cost::workload
//! callgrind_annotate --inclusive=yes --threshold=100 /tmp/cg.out | grep check_cost::
//! ```
//!
//! (`with_token` − `without_token`) / `one_verification`, each divided by the rounds, is the
//! check's cost in verifications. What it leaves out: hyper reading the longer request
//! (the `Authorization` header) and writing the identity headers to the upstream.

use std::hint::black_box;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey, RsaKeyPair};
use axum::http::header::{self, HeaderMap, HeaderValue};
use serde_json::json;
use tessera_guard::{Guard, Requirement};
use tessera_jose::{Algorithm, Jwks, SigningKey};

use crate::forward;
use crate::forwarded::{Origin, TrustedProxies};

/// Rounds when `TESSERA_CHECK_COST_ROUNDS` is not set: enough to run every path.
const TEST_ROUNDS: usize = 3;
const ISSUER: &str = "https://tessera.test/";
const AUDIENCE: &str = "https://bench/api";

#[test]
fn workload() {
    let rounds = std::env::var("TESSERA_CHECK_COST_ROUNDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(TEST_ROUNDS);
    let (signing, pkcs8) = SigningKey::generate(Algorithm::Rs256).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A client-credentials token as Tessera issues it (Auth0 dialect).
    let client_id = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0";
    let token = signing
        .sign_jwt(
            "JWT",
            &json!({
                "iss": ISSUER,
                "sub": format!("{client_id}@clients"),
                "aud": AUDIENCE,
                "iat": now,
                "exp": now + 3600,
                "scope": "read:messages write:messages",
                "gty": "client-credentials",
                "azp": client_id,
            }),
        )
        .unwrap();
    let guard = Guard::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks(Jwks {
            keys: vec![signing.public_jwk().clone()],
        })
        .build()
        .unwrap();
    // `--require /api/public=`: a valid token, no scope.
    let requirements: Vec<Requirement> = Vec::new();
    let mut request = HeaderMap::new();
    request.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8081"));
    request.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let mut with_authorization = request.clone();
    with_authorization.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let origin = Origin {
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        https: false,
        host: Some(HeaderValue::from_static("127.0.0.1:8081")),
        trusted_proxies: &TrustedProxies::default(),
    };

    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = tessera_jose::b64_decode(signature).unwrap();
    let pair = RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
    let public = ParsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        pair.public_key().as_ref(),
    )
    .unwrap();

    for _ in 0..rounds {
        assert!(with_token(
            &guard,
            &requirements,
            with_authorization.clone(),
            &origin
        ));
        without_token(request.clone(), &origin);
        one_verification(&public, input.as_bytes(), &signature);
    }
}

/// What a request needing a token costs in the proxy's check and header preparation.
#[inline(never)]
fn with_token(
    guard: &Guard,
    requirements: &[Requirement],
    mut headers: HeaderMap,
    origin: &Origin,
) -> bool {
    // A fixed key set never waits: the future is ready on its first poll.
    let Poll::Ready(Ok(claims)) =
        pin!(guard.authenticate(&headers)).poll(&mut Context::from_waker(Waker::noop()))
    else {
        return false;
    };
    if requirements.iter().any(|r| r.check(&claims).is_err()) {
        return false;
    }
    let ok = forward::upstream_headers(&mut headers, origin, Some(&claims), false).is_ok();
    black_box(headers);
    ok
}

/// The same for a public route: the baseline `with_token` is compared with.
#[inline(never)]
fn without_token(mut headers: HeaderMap, origin: &Origin) {
    forward::upstream_headers(&mut headers, origin, None, false).unwrap();
    black_box(headers);
}

/// One raw RSA-2048 verification with a parsed key, as `openssl speed` counts them.
#[inline(never)]
fn one_verification(key: &ParsedPublicKey, input: &[u8], signature: &[u8]) {
    key.verify_sig(black_box(input), black_box(signature))
        .unwrap();
}
