//! Login sessions last as the tenant's settings say: `session_lifetime` (hours after the
//! sign-in) and `idle_session_lifetime` (hours after the last use), read when a session is
//! used, so a change applies to sessions already open. Lifetimes of a few seconds, set
//! through the Management API, keep the waits short.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tessera_testkit::{TestServer, browser, location, params_of, pkce, spawn};

async fn set_settings(server: &TestServer, settings: serde_json::Value) {
    let token = server.management_token(&["update:tenant_settings"]).await;
    let response = reqwest::Client::new()
        .request(Method::PATCH, server.url("/api/v2/tenants/settings"))
        .bearer_auth(token)
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// `prompt=none` with `browser`'s cookies: true when the session still signs it in.
async fn silent_login_works(server: &TestServer, browser: &reqwest::Client) -> bool {
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("prompt", "none"),
        ("state", "s"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(&url).send().await.unwrap();
    let params = params_of(&location(&response));
    match (params.get("code"), params.get("error")) {
        (Some(_), None) => true,
        (None, Some(error)) if error == "login_required" => false,
        other => panic!("unexpected answer {other:?}"),
    }
}

async fn sign_in(server: &TestServer) -> reqwest::Client {
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let back = server.sign_in(&browser, &url).await;
    assert!(params_of(&back).contains_key("code"), "{back}");
    browser
}

#[tokio::test]
async fn a_session_ends_at_the_tenants_absolute_lifetime_even_when_used() {
    let server = spawn().await;
    // 0.001 h = 3.6 s after the sign-in, however often the session is used.
    set_settings(&server, json!({"session_lifetime": 0.001})).await;
    let browser = sign_in(&server).await;
    assert!(silent_login_works(&server, &browser).await);
    let mut alive_after_end = false;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        alive_after_end = silent_login_works(&server, &browser).await;
        if !alive_after_end {
            break;
        }
    }
    assert!(!alive_after_end, "the session outlived 3.6 s of use");
}

#[tokio::test]
async fn an_idle_session_ends_and_a_used_one_lives_on() {
    let server = spawn().await;
    // Idle: 0.002 h = 7.2 s; absolute: an hour.
    set_settings(
        &server,
        json!({"session_lifetime": 1, "idle_session_lifetime": 0.002}),
    )
    .await;
    let used = sign_in(&server).await;
    let idle = sign_in(&server).await;
    // Used every second for 10 s (past the idle lifetime), the session stays alive.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            silent_login_works(&server, &used).await,
            "used within its idle lifetime"
        );
    }
    // The other, left alone as long, has ended.
    assert!(
        !silent_login_works(&server, &idle).await,
        "idle past its lifetime"
    );
}

#[tokio::test]
async fn lowering_the_lifetime_ends_sessions_already_open() {
    let server = spawn().await;
    let browser = sign_in(&server).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(silent_login_works(&server, &browser).await);
    // An hour's session, then the tenant allows only about a second.
    set_settings(&server, json!({"session_lifetime": 0.0003})).await;
    assert!(!silent_login_works(&server, &browser).await);
}
