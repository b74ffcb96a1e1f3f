//! The tenant's settings and email provider on two nodes sharing one PostgreSQL database:
//! each node keeps them in memory, and a change through one node's Management API holds on
//! the other within a second (the database's notification) and on the writing node at once.

use std::time::{Duration, Instant};

use serde_json::json;
use tessera_testkit::pg::PgServer;
use tessera_testkit::*;

/// A client-credentials request that names no audience: the status.
async fn without_audience(base: &str, server: &TestServer) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", server.m2m_client_id.as_str()),
            ("client_secret", server.m2m_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_setting_changed_on_one_node_holds_on_the_other_within_a_second() {
    let database = PgServer::start();
    let url = database.database();
    let first = spawn_on(&url).await;
    let (second_base, second) = another_node(&first, &url, |_| {}).await;
    // Both nodes read (and keep) the settings: no default audience yet.
    assert_ne!(without_audience(&first.base, &first).await, 200);
    assert_ne!(without_audience(&second_base, &first).await, 200);

    let token = first.management_token(&["update:tenant_settings"]).await;
    let patched = reqwest::Client::new()
        .patch(first.url("/api/v2/tenants/settings"))
        .bearer_auth(&token)
        .json(&json!({ "default_audience": API }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(
        without_audience(&first.base, &first).await,
        200,
        "the writing node at once"
    );
    let started = Instant::now();
    while without_audience(&second_base, &first).await != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the other node still had the old settings after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.stop().await;
}

/// Whether the hosted login page at `base` offers "Forgot password?".
async fn reset_offered(base: &str, server: &TestServer) -> bool {
    let browser = browser();
    let authorize = server
        .authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", &pkce().challenge),
            ("code_challenge_method", "S256"),
        ])
        .replacen(&server.base, base, 1);
    let response = browser.get(&authorize).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let page = browser
        .get(format!("{base}{}", location(&response)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap().contains("Forgot password?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_provider_set_on_one_node_offers_resets_on_the_other_within_a_second() {
    let database = PgServer::start();
    let url = database.database();
    let first = spawn_on(&url).await;
    let (second_base, second) = another_node(&first, &url, |_| {}).await;
    // Neither node has mail: both keep that there is no provider.
    assert!(!reset_offered(&first.base, &first).await);
    assert!(!reset_offered(&second_base, &first).await);

    let token = first.management_token(&["create:email_provider"]).await;
    let created = reqwest::Client::new()
        .post(first.url("/api/v2/emails/provider"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "smtp",
            "enabled": true,
            "default_from_address": "Provider <provider@acme.example>",
            "credentials": {"smtp_host": "127.0.0.1", "smtp_port": 2525},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert!(
        reset_offered(&first.base, &first).await,
        "the writing node at once"
    );
    let started = Instant::now();
    while !reset_offered(&second_base, &first).await {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the other node still offered no reset after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.stop().await;
}
