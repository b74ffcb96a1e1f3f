//! The server on PostgreSQL (a throwaway server, `tessera_testkit::pg`).
//! SECURITY.md, reliability: while the database restarts, requests get a fast 503 with
//! `Retry-After` — no hung request, no panic — and everything works again within seconds.

mod common;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tessera_testkit::pg::PgServer;

async fn token(server: &TestServer, http: &reqwest::Client) -> reqwest::Response {
    http.post(format!("{}/oauth/token", server.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", server.m2m_client_id.as_str()),
            ("client_secret", server.m2m_secret.as_str()),
            ("audience", API),
        ])
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("an answer, never a hung request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_answers_503_with_retry_after_while_postgres_restarts() {
    let mut database = PgServer::start();
    let server = spawn_on(&database.database()).await;
    let http = reqwest::Client::new();
    let response = token(&server, &http).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["aud"], API);

    database.stop();
    // What client credentials read is cached for half a second: the first answers after
    // the stop may still be 200. Then 503, each within the pool's acquire timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    let unavailable = loop {
        let started = Instant::now();
        let response = token(&server, &http).await;
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        if response.status() == 503 {
            break response;
        }
        assert_eq!(response.status(), 200, "only 200 (cached) or 503");
        assert!(Instant::now() < deadline, "never answered 503");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        unavailable.headers()["retry-after"],
        "2",
        "{:?}",
        unavailable.headers()
    );
    let body: Value = unavailable.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    assert!(health.headers().contains_key("retry-after"));

    database.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = token(&server, &http).await;
        if response.status() == 200 {
            let body: Value = response.json().await.unwrap();
            server
                .verify(body["access_token"].as_str().unwrap(), API)
                .await;
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
