//! RFC 6750 answers at the HTTP level, as express-oauth2-jwt-bearer gives them.

use axum::http::{HeaderValue, StatusCode, header};
use serde_json::json;
use tessera_guard::{Guard, TokenError};

use crate::common::*;

#[tokio::test]
async fn missing_token_gets_401_with_a_bare_challenge() {
    let app = TestApp::new(&fixed_guard());
    for path in ["/api/private", "/api/private-scoped", "/api/rbac"] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.challenge.as_deref(), Some(r#"Bearer realm="api""#));
        assert_eq!(reply.body["error"], "unauthorized");
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn another_scheme_is_treated_as_a_missing_token() {
    let app = TestApp::new(&fixed_guard());
    for value in [
        "Basic dXNlcjpwYXNzd29yZA==",
        "Digest username=\"a\"",
        "Bearertoken",
        "Token abc",
    ] {
        let reply = app.get("/api/private", Some(value)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(reply.challenge.as_deref(), Some(r#"Bearer realm="api""#));
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn malformed_authorization_header_gets_400_invalid_request() {
    let app = TestApp::new(&fixed_guard());
    let good = good_token();
    for value in [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {good} extra"),
        format!("Bearer {good},x"),
    ] {
        let reply = app.get("/api/private", Some(&value)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{value:.40}");
        let challenge = reply.challenge.unwrap();
        assert!(
            challenge
                .starts_with(r#"Bearer realm="api", error="invalid_request", error_description=""#),
            "{challenge}"
        );
        assert_eq!(reply.body["error"], "invalid_request");
    }
    // Two Authorization headers, even if both are valid.
    let twice = vec![
        (
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {good}")).unwrap(),
        ),
        (
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {good}")).unwrap(),
        ),
    ];
    let reply = app.get_with("/api/private", twice).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // Bytes that are not visible ASCII.
    let binary = vec![(
        header::AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer \xc3\xa9t\xc3\xa9").unwrap(),
    )];
    assert_eq!(
        app.get_with("/api/private", binary).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let app = TestApp::new(&fixed_guard());
    let good = good_token();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let reply = app
            .get("/api/private", Some(&format!("{scheme} {good}")))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}");
    }
    assert_eq!(app.calls(), 4);
}

#[tokio::test]
async fn valid_token_reaches_the_handler_with_its_claims() {
    let guard = fixed_guard();
    let app = TestApp::new(&guard);
    let token = mint(&EC, &claims_with(json!({"permissions": ["read:messages"]})));
    let reply = app
        .get("/api/private", Some(&format!("Bearer {token}")))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.challenge, None);
    assert_eq!(reply.body["sub"], "auth0|5f7c8ec7c33c6c004bbafe82");
    assert_eq!(
        reply.body["scopes"],
        json!(["openid", "profile", "read:messages"])
    );
    assert_eq!(reply.body["permissions"], json!(["read:messages"]));
    assert_eq!(app.calls(), 1);

    let claims = guard.verify(&token).await.unwrap();
    assert_eq!(claims.client_id(), Some(CLIENT_ID));
    assert_eq!(
        claims.audiences(),
        [AUDIENCE.to_owned(), format!("{ISSUER}userinfo")]
    );
    assert!(claims.has_scope("read:messages") && !claims.has_scope("read"));
    assert!(claims.has_permission("read:messages"));
    assert_eq!(claims.get("iss"), Some(&json!(ISSUER)));
    assert!(claims.expires_at() > now() as f64);
    assert_eq!(claims.raw()["azp"], CLIENT_ID);
}

/// `client_id()` (the proxy's `X-Auth-Client-Id`) is `azp`, else RFC 9068's `client_id`; a
/// member that is not a string counts as absent and does not make the token invalid.
#[tokio::test]
async fn client_id_is_azp_else_client_id_and_only_a_string() {
    let guard = fixed_guard();
    // `null` in `claims_with` removes the member.
    let cases = [
        (json!({}), Some(CLIENT_ID)),
        (json!({"client_id": "other"}), Some(CLIENT_ID)),
        (
            json!({"azp": null, "client_id": "rfc9068"}),
            Some("rfc9068"),
        ),
        (json!({"azp": null}), None),
        (json!({"azp": 42, "client_id": "rfc9068"}), Some("rfc9068")),
        (
            json!({"azp": ["a"], "client_id": "rfc9068"}),
            Some("rfc9068"),
        ),
        (json!({"azp": {"id": "a"}}), None),
        (json!({"azp": true, "client_id": 7}), None),
        (json!({"azp": "", "client_id": "rfc9068"}), Some("")),
    ];
    for (changes, expected) in cases {
        let token = mint(&RSA, &claims_with(changes.clone()));
        let claims = guard.verify(&token).await.unwrap();
        assert_eq!(claims.client_id(), expected, "{changes}");
    }

    // A JSON null is not a string either.
    let body = claims_with(json!({"azp": null, "client_id": "rfc9068"})).to_string();
    let inner = body.trim_start_matches('{');
    let null_azp = format!(r#"{{"azp":null,{inner}"#);
    let claims = guard
        .verify(&RSA.sign_raw(&RSA.header(""), &null_azp))
        .await
        .unwrap();
    assert_eq!(claims.client_id(), Some("rfc9068"));

    // An escaped name and value mean what they decode to.
    let body = claims_with(json!({"azp": null})).to_string();
    let inner = body.trim_start_matches('{');
    let escaped = format!(r#"{{"a\u007ap":"c\u0069d\/1",{inner}"#);
    let claims = guard
        .verify(&RSA.sign_raw(&RSA.header(""), &escaped))
        .await
        .unwrap();
    assert_eq!(claims.client_id(), Some("cid/1"));
    assert_eq!(claims.raw()["azp"], "cid/1");

    // Twice the same member is refused, as for every other member.
    let body = access_claims().to_string();
    let inner = body.trim_start_matches('{');
    for payload in [
        format!(r#"{{"azp":"attacker",{inner}"#),
        format!(r#"{{"client_id":"a","client_id":"b",{inner}"#),
    ] {
        assert_rejected(
            &RSA.sign_raw(&RSA.header(""), &payload),
            TokenError::Malformed,
        )
        .await;
    }
}

#[tokio::test]
async fn machine_to_machine_token_without_scope_is_accepted_with_no_scopes() {
    let guard = fixed_guard();
    let token = mint(
        &RSA,
        &claims_with(
            json!({"sub": format!("{CLIENT_ID}@clients"), "gty": "client-credentials", "scope": null}),
        ),
    );
    let claims = assert_accepted(&guard, &token).await;
    assert_eq!(claims.scopes().count(), 0);
    assert_eq!(claims.sub(), format!("{CLIENT_ID}@clients"));
}

#[tokio::test]
async fn invalid_token_gets_401_invalid_token_with_a_json_body() {
    let app = TestApp::new(&fixed_guard());
    let expired = mint(&RSA, &claims_with(json!({"exp": now() - 3600})));
    let reply = app
        .get("/api/private", Some(&format!("Bearer {expired}")))
        .await;
    reply.assert_invalid_token();
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
        )
    );
    assert_eq!(
        reply.body,
        json!({"error": "invalid_token", "error_description": "the token has expired"})
    );
}

#[tokio::test]
async fn configured_realm_is_used_in_every_challenge() {
    let guard = Guard::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks(jwks(&[&RSA]))
        .realm("messages-api")
        .build()
        .unwrap();
    let app = TestApp::new(&guard);
    let missing = app.get("/api/private", None).await;
    assert_eq!(
        missing.challenge.as_deref(),
        Some(r#"Bearer realm="messages-api""#)
    );
    let bad = app.get("/api/private", Some("Bearer a.b.c")).await;
    assert!(
        bad.challenge
            .unwrap()
            .starts_with(r#"Bearer realm="messages-api", error="invalid_token""#)
    );
}

#[tokio::test]
async fn claims_extractor_without_a_guard_layer_fails_closed() {
    let app = TestApp::new(&fixed_guard());
    let reply = app
        .get(
            "/api/unguarded-claims",
            Some(&format!("Bearer {}", good_token())),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.calls(), 0);
    // `Option<Claims>` is simply `None` there.
    let optional = app.get("/api/optional", None).await;
    assert_eq!(optional.status, StatusCode::OK);
    assert_eq!(optional.body, json!({"sub": null}));
}
