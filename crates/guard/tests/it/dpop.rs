//! DPoP at the resource server (RFC 9449 §7): `Authorization: DPoP <token>` with a proof
//! for this request, signed by the key the token's `cnf.jkt` names; a bound token is never
//! a bearer token; a guard may require DPoP.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tessera_guard::Guard;
use tessera_jose::dpop::access_token_hash;
use tessera_jose::{Algorithm, SigningKey, thumbprint};

use crate::common::*;

struct Client {
    key: SigningKey,
}

impl Client {
    fn new() -> Client {
        Client {
            key: SigningKey::generate(Algorithm::Es256).unwrap().0,
        }
    }

    fn jkt(&self) -> String {
        thumbprint(self.key.public_jwk())
    }

    fn proof_with(&self, claims: Value) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.public_jwk()});
        self.key.sign_with_header(&header, &claims).unwrap()
    }

    fn proof(&self, method: &str, htu: &str, token: &str) -> String {
        self.proof_with(json!({
            "jti": format!("{:x}", rand_u64()),
            "htm": method,
            "htu": htu,
            "iat": now(),
            "ath": access_token_hash(token),
        }))
    }
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

fn bound_token(jkt: &str) -> String {
    mint(&RSA, &claims_with(json!({"cnf": {"jkt": jkt}})))
}

const HTU: &str = "http://api.test/api/private";

fn headers(scheme: &str, token: &str, proofs: &[&str]) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (header::HOST, HeaderValue::from_static("api.test")),
        (
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("{scheme} {token}")).unwrap(),
        ),
    ];
    for proof in proofs {
        headers.push((
            HeaderName::from_static("dpop"),
            HeaderValue::from_str(proof).unwrap(),
        ));
    }
    headers
}

fn assert_dpop_refused(reply: &Reply, error: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    assert_eq!(reply.body["error"], error, "{:?}", reply.body);
    let challenge = reply.challenge.as_deref().unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains("algs=\"ES256 RS256 EdDSA\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_bound_token_with_its_proof_is_admitted_once() {
    let app = TestApp::new(&fixed_guard());
    let client = Client::new();
    let token = bound_token(&client.jkt());
    let proof = client.proof("GET", HTU, &token);
    let reply = app
        .get_with("/api/private", headers("DPoP", &token, &[&proof]))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let again = app
        .get_with("/api/private", headers("DPoP", &token, &[&proof]))
        .await;
    assert_dpop_refused(&again, "invalid_dpop_proof");
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn hostile_dpop_requests_never_reach_the_handler() {
    let app = TestApp::new(&fixed_guard());
    let client = Client::new();
    let thief = Client::new();
    let token = bound_token(&client.jkt());
    let other_token = bound_token("bm90LXRoZS1rZXk");

    // The bound token as a bearer token.
    let reply = app
        .get_with("/api/private", headers("Bearer", &token, &[]))
        .await;
    reply.assert_invalid_token();
    // No proof, two proofs.
    assert_dpop_refused(
        &app.get_with("/api/private", headers("DPoP", &token, &[]))
            .await,
        "invalid_dpop_proof",
    );
    let (a, b) = (
        client.proof("GET", HTU, &token),
        client.proof("GET", HTU, &token),
    );
    assert_dpop_refused(
        &app.get_with("/api/private", headers("DPoP", &token, &[&a, &b]))
            .await,
        "invalid_dpop_proof",
    );
    // Another method, another URL, a proof for another token, a stale one.
    for proof in [
        client.proof("POST", HTU, &token),
        client.proof("GET", "http://api.test/api/other", &token),
        client.proof("GET", "http://evil.test/api/private", &token),
        client.proof("GET", HTU, "another-token"),
        client.proof_with(json!({"jti": "stale", "htm": "GET", "htu": HTU, "iat": now() - 600, "ath": access_token_hash(&token)})),
    ] {
        assert_dpop_refused(
            &app.get_with("/api/private", headers("DPoP", &token, &[&proof])).await,
            "invalid_dpop_proof",
        );
    }
    // A valid proof by another key than the token's.
    let reply = app
        .get_with(
            "/api/private",
            headers("DPoP", &token, &[&thief.proof("GET", HTU, &token)]),
        )
        .await;
    assert_dpop_refused(&reply, "invalid_token");
    let reply = app
        .get_with(
            "/api/private",
            headers(
                "DPoP",
                &other_token,
                &[&client.proof("GET", HTU, &other_token)],
            ),
        )
        .await;
    assert_dpop_refused(&reply, "invalid_token");
    // An unbound token under the DPoP scheme.
    let plain = good_token();
    let reply = app
        .get_with(
            "/api/private",
            headers("DPoP", &plain, &[&client.proof("GET", HTU, &plain)]),
        )
        .await;
    assert_dpop_refused(&reply, "invalid_token");
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn a_guard_may_require_dpop_and_name_its_public_origin() {
    let guard = Guard::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&RSA, &EC]))
        .dpop_required(true)
        .public_origin("https://api.example.com/")
        .build()
        .unwrap();
    let app = TestApp::new(&guard);
    let plain = good_token();
    let reply = app
        .get_with("/api/private", headers("Bearer", &plain, &[]))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.challenge.as_deref().unwrap().starts_with("DPoP "));
    let client = Client::new();
    let token = bound_token(&client.jkt());
    // The Host header says api.test; the public origin decides.
    let local = client.proof("GET", HTU, &token);
    assert_dpop_refused(
        &app.get_with("/api/private", headers("DPoP", &token, &[&local]))
            .await,
        "invalid_dpop_proof",
    );
    let public = client.proof("GET", "https://api.example.com/api/private", &token);
    let reply = app
        .get_with("/api/private?page=2", headers("dpop", &token, &[&public]))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(app.calls(), 1);
    assert!(
        Guard::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .jwks(jwks(&[&RSA]))
            .public_origin("https://api.example.com/v1")
            .build()
            .is_err()
    );
}

#[tokio::test]
async fn a_guard_may_require_nonces_and_hands_out_the_one_to_use() {
    let secret = [9u8; 32];
    let guard = Guard::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&RSA, &EC]))
        .dpop_nonces(secret)
        .build()
        .unwrap();
    let app = TestApp::new(&guard);
    let client = Client::new();
    let token = bound_token(&client.jkt());
    let with_nonce = |nonce: &str| {
        client.proof_with(json!({
            "jti": format!("{:x}", rand_u64()),
            "htm": "GET",
            "htu": HTU,
            "iat": now(),
            "ath": access_token_hash(&token),
            "nonce": nonce,
        }))
    };

    // No nonce: 401 use_dpop_nonce, a DPoP challenge, and the nonce to use.
    let proof = client.proof("GET", HTU, &token);
    let reply = app
        .get_with("/api/private", headers("DPoP", &token, &[&proof]))
        .await;
    assert_dpop_refused(&reply, "use_dpop_nonce");
    assert!(
        reply
            .challenge
            .as_deref()
            .unwrap()
            .contains(r#"error="use_dpop_nonce""#),
        "{:?}",
        reply.challenge
    );
    let nonce = reply.dpop_nonce.clone().expect("a DPoP-Nonce header");

    // Another guard's nonce (another secret), or one made up: refused alike.
    let foreign = tessera_jose::dpop::NonceSource::new(&[8u8; 32]).current(now());
    for bad in [foreign.as_str(), "made-up"] {
        let reply = app
            .get_with("/api/private", headers("DPoP", &token, &[&with_nonce(bad)]))
            .await;
        assert_dpop_refused(&reply, "use_dpop_nonce");
    }
    assert_eq!(app.calls(), 0);

    // With the nonce: admitted; a guard with the same secret accepts it too.
    let reply = app
        .get_with(
            "/api/private",
            headers("DPoP", &token, &[&with_nonce(&nonce)]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let twin = Guard::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&RSA, &EC]))
        .dpop_nonces(secret)
        .build()
        .unwrap();
    let reply = TestApp::new(&twin)
        .get_with(
            "/api/private",
            headers("DPoP", &token, &[&with_nonce(&nonce)]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    // Bearer tokens are not asked for nonces.
    let reply = app
        .get("/api/private", Some(&format!("Bearer {}", good_token())))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(reply.dpop_nonce.is_none());
}
