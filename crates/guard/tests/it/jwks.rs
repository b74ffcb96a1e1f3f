//! The remote key source against a local identity provider that counts its hits.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use tessera_guard::{ConfigError, JwksError, TokenError};
use tessera_jose::Jwk;

use crate::common::*;

#[tokio::test]
async fn discovers_jwks_uri_from_the_issuer_and_caches_the_keys() {
    let idp = TestIdp::start(&[&RSA, &EC]).await;
    let guard = idp.guard().build().unwrap();
    assert_eq!(
        (idp.discovery_hits(), idp.jwks_hits()),
        (0, 0),
        "build does no IO"
    );
    let app = TestApp::new(&guard);
    for key in [&*RSA, &*EC, &*RSA, &*EC, &*RSA] {
        let token = idp.token(key, json!({}));
        let reply = app
            .get("/api/private", Some(&format!("Bearer {token}")))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!((idp.discovery_hits(), idp.jwks_hits()), (1, 1));
    // A token of another issuer signed by the same key is still refused.
    let foreign = mint(&RSA, &access_claims());
    assert_rejected_by(&guard, &foreign, Some(TokenError::WrongIssuer)).await;
}

#[tokio::test]
async fn requirements_hold_on_the_request_that_waits_for_the_first_fetch() {
    // The first request of each guard finds no keys, so its layer waits for the fetch
    // (the slow path) before deciding; the route's requirement must still apply.
    let idp = TestIdp::start(&[&RSA]).await;
    let app = TestApp::new(&idp.guard().build().unwrap());
    let token = idp.token(&RSA, json!({"scope": "openid"}));
    let reply = app
        .get("/api/private-scoped", Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.challenge.unwrap().contains("insufficient_scope"));

    let app = TestApp::new(&idp.guard().build().unwrap());
    let token = idp.token(&RSA, json!({"scope": "read:messages"}));
    let reply = app
        .get("/api/private-scoped", Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn bare_origin_issuer_is_matched_with_its_trailing_slash() {
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp
        .guard()
        .issuer(idp.issuer.trim_end_matches('/'))
        .build()
        .unwrap();
    assert_eq!(guard.issuer(), idp.issuer);
    assert_accepted(&guard, &idp.token(&RSA, json!({}))).await;
}

#[tokio::test]
async fn configured_jwks_uri_skips_discovery() {
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp
        .guard()
        .jwks_uri(format!("{}.well-known/jwks.json", idp.issuer))
        .build()
        .unwrap();
    assert_accepted(&guard, &idp.token(&RSA, json!({}))).await;
    assert_eq!((idp.discovery_hits(), idp.jwks_hits()), (0, 1));
}

#[tokio::test]
async fn discovery_document_naming_another_issuer_is_refused() {
    let idp = TestIdp::start(&[&RSA]).await;
    idp.set_discovery_issuer("https://evil.test/");
    let guard = idp.guard().build().unwrap();
    assert_eq!(guard.refresh_keys().await, Err(JwksError::IssuerMismatch));
    assert_rejected_by(
        &guard,
        &idp.token(&RSA, json!({})),
        Some(TokenError::UnknownKey),
    )
    .await;
    assert_eq!(
        idp.jwks_hits(),
        0,
        "no keys are taken from a mismatched discovery"
    );
}

#[tokio::test]
async fn jwks_endpoint_down_keeps_verifying_with_the_last_good_keys() {
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp
        .guard()
        .refetch_cooldown(Duration::ZERO)
        .refresh_interval(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(guard.refresh_keys().await, Ok(1));
    let token = idp.token(&RSA, json!({}));
    for mode in [Mode::Fail500, Mode::Huge] {
        idp.set_mode(mode);
        let hits = idp.jwks_hits();
        // Every request now also tries a background refresh (refresh interval zero), which
        // fails; the keys stay.
        for _ in 0..3 {
            assert_accepted(&guard, &token).await;
        }
        assert!(eventually(|| idp.jwks_hits() > hits).await);
        assert!(guard.refresh_keys().await.is_err());
        assert_accepted(&guard, &token).await;
        // An unknown kid is a 401, never a 5xx.
        assert_rejected_by(
            &guard,
            &idp.token(&EC, json!({})),
            Some(TokenError::UnknownKey),
        )
        .await;
    }
    assert_eq!(guard.refresh_keys().await, Err(JwksError::TooLarge));
}

#[tokio::test]
async fn jwks_unreachable_from_the_start_gives_401_not_500() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let guard = tessera_guard::Guard::builder()
        .issuer(&issuer)
        .audience(AUDIENCE)
        .http_client(reqwest::Client::builder().no_proxy().build().unwrap())
        .build()
        .unwrap();
    assert!(matches!(
        guard.refresh_keys().await,
        Err(JwksError::Http(_))
    ));
    let token = mint(&RSA, &claims_with(json!({"iss": issuer})));
    assert_rejected_by(&guard, &token, Some(TokenError::UnknownKey)).await;
}

#[tokio::test]
async fn hanging_jwks_endpoint_is_bounded_by_the_http_timeout() {
    let idp = TestIdp::start(&[&RSA]).await;
    idp.set_mode(Mode::Hang);
    let guard = idp
        .guard()
        .http_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    assert_rejected_by(
        &guard,
        &idp.token(&RSA, json!({})),
        Some(TokenError::UnknownKey),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unknown_kid_refetches_at_most_once_per_cooldown() {
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp.guard().build().unwrap(); // default cooldown: 10 s
    assert_accepted(&guard, &idp.token(&RSA, json!({}))).await;
    assert_eq!(idp.jwks_hits(), 1);
    let app = TestApp::new(&guard);
    for _ in 0..20 {
        let token = idp.token(&ATTACKER, json!({}));
        app.get("/api/private", Some(&format!("Bearer {token}")))
            .await
            .assert_invalid_token();
    }
    assert_eq!(idp.jwks_hits(), 2);
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn unknown_kid_may_refetch_again_once_the_cooldown_has_passed() {
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp
        .guard()
        .refetch_cooldown(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_accepted(&guard, &idp.token(&RSA, json!({}))).await;
    let unknown = idp.token(&ATTACKER, json!({}));
    tokio::time::sleep(Duration::from_millis(250)).await;
    for _ in 0..5 {
        assert!(guard.verify(&unknown).await.is_err());
    }
    assert_eq!(idp.jwks_hits(), 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    for _ in 0..5 {
        assert!(guard.verify(&unknown).await.is_err());
    }
    assert_eq!(idp.jwks_hits(), 3);
}

#[tokio::test]
async fn key_rotation_in_flight_is_accepted_after_one_refetch() {
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp.guard().build().unwrap();
    assert_accepted(&guard, &idp.token(&RSA, json!({}))).await;
    assert_eq!(idp.jwks_hits(), 1);
    // The issuer publishes its next key and starts signing with it.
    idp.set_keys(&[&NEXT, &RSA]);
    let rotated = idp.token(&NEXT, json!({}));
    let claims = guard.verify(&rotated).await.unwrap();
    assert_eq!(claims.sub(), "auth0|5f7c8ec7c33c6c004bbafe82");
    assert_eq!(idp.jwks_hits(), 2);
    // Tokens of both keys keep working, with no further fetches.
    assert_accepted(&guard, &rotated).await;
    assert_accepted(&guard, &idp.token(&RSA, json!({}))).await;
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn concurrent_requests_with_a_new_kid_share_one_fetch() {
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp.guard().build().unwrap();
    assert_eq!(guard.refresh_keys().await, Ok(1));
    idp.set_keys(&[&RSA, &NEXT]);
    idp.set_mode(Mode::Slow);
    let app = TestApp::new(&guard);
    let token = idp.token(&NEXT, json!({}));
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let router = app.router.clone();
        let token = token.clone();
        requests.spawn(async move {
            use tower::ServiceExt;
            let request = axum::http::Request::get("/api/private")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            router.oneshot(request).await.unwrap().status()
        });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    assert_eq!(idp.jwks_hits(), 2, "one initial fetch, one shared refetch");
    assert_eq!(app.calls(), 16);
}

#[tokio::test]
async fn old_keys_are_refreshed_in_the_background() {
    let idp = TestIdp::start(&[&RSA, &EC]).await;
    let guard = idp
        .guard()
        .refresh_interval(Duration::from_millis(200))
        .refetch_cooldown(Duration::from_millis(100))
        .build()
        .unwrap();
    let token = idp.token(&EC, json!({}));
    assert_accepted(&guard, &token).await;
    assert_eq!(idp.jwks_hits(), 1);
    // The issuer retires the EC key; once our copy is older than the refresh interval,
    // the next request triggers a refresh (without waiting for it)…
    idp.set_keys(&[&RSA]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(guard.verify(&token).await.is_ok());
    assert!(eventually(|| idp.jwks_hits() == 2).await);
    // …after which the retired key is no longer accepted.
    assert!(
        eventually_async(|| async { guard.verify(&token).await.is_err() }).await,
        "retired key still accepted"
    );
    assert_rejected_by(&guard, &token, Some(TokenError::UnknownKey)).await;
}

#[tokio::test]
async fn keys_older_than_max_stale_are_not_used_and_service_recovers() {
    let idp = TestIdp::start(&[&RSA]).await;
    let guard = idp
        .guard()
        .max_stale(Duration::from_millis(600))
        .refetch_cooldown(Duration::from_millis(50))
        .build()
        .unwrap();
    let token = idp.token(&RSA, json!({}));
    assert_accepted(&guard, &token).await;
    idp.set_mode(Mode::Fail500);
    assert!(
        guard.verify(&token).await.is_ok(),
        "stale but within max-stale"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_rejected_by(&guard, &token, Some(TokenError::UnknownKey)).await;
    // The endpoint comes back: the next request refetches and is accepted.
    idp.set_mode(Mode::Serve);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_accepted(&guard, &token).await;
}

#[tokio::test]
async fn symmetric_keys_in_the_jwks_never_verify_anything() {
    use aws_lc_rs::hmac;
    let idp = TestIdp::start(&[&RSA]).await;
    let secret = b"shared-secret-published-by-mistake";
    let mut keys = vec![RSA.jwk()];
    let oct: Jwk =
        serde_json::from_value(json!({"kty": "oct", "kid": "hmac-key", "alg": "HS256"})).unwrap();
    keys.push(oct);
    idp.set_raw_keys(keys);
    let guard = idp.guard().build().unwrap();
    assert_eq!(guard.refresh_keys().await, Ok(1));
    let header = r#"{"alg":"HS256","typ":"JWT","kid":"hmac-key"}"#;
    let payload = claims_with(json!({"iss": idp.issuer})).to_string();
    let input = format!(
        "{}.{}",
        tessera_jose::b64(header.as_bytes()),
        tessera_jose::b64(payload.as_bytes())
    );
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    let token = format!("{input}.{}", tessera_jose::b64(tag.as_ref()));
    assert_rejected_by(&guard, &token, Some(TokenError::UnknownKey)).await;
}

#[tokio::test]
async fn invalid_remote_configuration_is_refused_at_build() {
    let idp = TestIdp::start(&[&RSA]).await;
    assert_eq!(
        idp.guard()
            .jwks_uri("ftp://example.test/jwks")
            .build()
            .unwrap_err(),
        ConfigError::InvalidJwksUri
    );
    assert_eq!(
        idp.guard().issuer("issuer.test").build().unwrap_err(),
        ConfigError::InvalidIssuer
    );
}

/// Polls an async condition every 10 ms for up to one second.
async fn eventually_async<F, Fut>(mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
