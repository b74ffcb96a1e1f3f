//! Per-route scope and permission requirements.

use axum::http::StatusCode;
use serde_json::json;
use tessera_guard::{GuardError, Requirement};

use crate::common::*;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn missing_scope_gets_403_insufficient_scope_naming_the_scope() {
    let app = TestApp::new(&fixed_guard());
    let token = mint(&RSA, &claims_with(json!({"scope": "openid profile"})));
    let reply = app.get("/api/private-scoped", Some(&bearer(&token))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge.as_deref(),
        Some(
            r#"Bearer realm="api", error="insufficient_scope", error_description="Insufficient Scope", scope="read:messages""#
        )
    );
    assert_eq!(reply.body["error"], "insufficient_scope");
    assert_eq!(app.calls(), 0);
    // The same token is fine where no scope is required.
    assert_eq!(
        app.get("/api/private", Some(&bearer(&token))).await.status,
        StatusCode::OK
    );
    // And a token with the scope passes.
    assert_eq!(
        app.get("/api/private-scoped", Some(&bearer(&good_token())))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn scope_route_checks_the_token_before_the_scope() {
    let app = TestApp::new(&fixed_guard());
    assert_eq!(
        app.get("/api/private-scoped", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let expired = mint(&RSA, &claims_with(json!({"exp": now() - 3600})));
    app.get("/api/private-scoped", Some(&bearer(&expired)))
        .await
        .assert_invalid_token();
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn scope_matching_is_exact_per_space_separated_value() {
    let app = TestApp::new(&fixed_guard());
    for scope in [
        "read:messages:all",
        "read",
        "READ:MESSAGES",
        "openid,read:messages",
        "",
    ] {
        let token = mint(&RSA, &claims_with(json!({"scope": scope})));
        let reply = app.get("/api/private-scoped", Some(&bearer(&token))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{scope:?}");
    }
    let token = mint(
        &RSA,
        &claims_with(json!({"scope": "  read:messages  openid "})),
    );
    let reply = app.get("/api/private-scoped", Some(&bearer(&token))).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn any_of_and_all_of_scopes() {
    let app = TestApp::new(&fixed_guard());
    let with = |scope: &str| bearer(&mint(&RSA, &claims_with(json!({"scope": scope}))));

    assert_eq!(
        app.get("/api/any-scope", Some(&with("read:all")))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/any-scope", Some(&with("read:messages")))
            .await
            .status,
        StatusCode::OK
    );
    let none = app
        .get("/api/any-scope", Some(&with("write:messages")))
        .await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    assert!(
        none.challenge
            .unwrap()
            .ends_with(r#"scope="read:messages read:all""#)
    );

    let both = with("write:messages read:messages");
    assert_eq!(
        app.get("/api/all-scopes", Some(&both)).await.status,
        StatusCode::OK
    );
    let one = app
        .get("/api/all-scopes", Some(&with("read:messages")))
        .await;
    assert_eq!(one.status, StatusCode::FORBIDDEN);
    assert!(
        one.challenge
            .unwrap()
            .ends_with(r#"scope="read:messages write:messages""#)
    );
    assert_eq!(app.calls(), 3);
}

#[tokio::test]
async fn permissions_claim_drives_rbac_requirements() {
    let app = TestApp::new(&fixed_guard());
    let with = |permissions: serde_json::Value| {
        bearer(&mint(
            &RSA,
            &claims_with(json!({"permissions": permissions})),
        ))
    };
    // The scope claim does not count for a permission requirement, nor the reverse.
    let scope_only = bearer(&mint(
        &RSA,
        &claims_with(json!({"scope": "delete:messages"})),
    ));
    let denied = app.get("/api/rbac", Some(&scope_only)).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(
        denied
            .challenge
            .unwrap()
            .ends_with(r#"scope="delete:messages""#)
    );
    let permission_only = bearer(&mint(
        &RSA,
        &claims_with(json!({"scope": "openid", "permissions": ["read:messages"]})),
    ));
    assert_eq!(
        app.get("/api/private-scoped", Some(&permission_only))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        app.get("/api/rbac", Some(&with(json!(["delete:messages"]))))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/rbac-any", Some(&with(json!(["read:users"]))))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/rbac-any", Some(&with(json!([]))))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(
            "/api/rbac-all",
            Some(&with(json!(["write:users", "read:users"])))
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/rbac-all", Some(&with(json!(["read:users"]))))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.calls(), 3);
}

#[tokio::test]
async fn router_wide_layer_and_route_requirement_compose() {
    let guard = fixed_guard();
    let app = TestApp::new(&guard).layered(guard.layer());
    assert_eq!(
        app.get("/api/private-scoped", Some(&bearer(&good_token())))
            .await
            .status,
        StatusCode::OK
    );
    let no_scope = bearer(&mint(&RSA, &claims_with(json!({"scope": "openid"}))));
    assert_eq!(
        app.get("/api/private-scoped", Some(&no_scope)).await.status,
        StatusCode::FORBIDDEN
    );
    // The router-wide layer now also guards the route that had none.
    assert_eq!(
        app.get("/api/optional", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let reply = app.get("/api/optional", Some(&bearer(&good_token()))).await;
    assert_eq!(reply.body["sub"], "auth0|5f7c8ec7c33c6c004bbafe82");
}

#[tokio::test]
async fn requirement_check_is_usable_without_the_layer() {
    let claims = fixed_guard().verify(&good_token()).await.unwrap();
    assert!(Requirement::scope("read:messages").is_met_by(&claims));
    assert!(Requirement::all_scopes(Vec::<String>::new()).is_met_by(&claims));
    assert!(!Requirement::any_scope(Vec::<String>::new()).is_met_by(&claims));
    assert_eq!(
        Requirement::all_scopes(["read:messages", "write:messages"]).check(&claims),
        Err(GuardError::InsufficientScope {
            required: vec!["read:messages".into(), "write:messages".into()]
        })
    );
}
