//! Pushed authorization requests against a hostile browser and client: guessed and
//! oversize request_uris, one request_uri raced from ten tabs, another application's
//! client_id, a pushed request naming another request, JSON and oversize bodies. Each is
//! refused with the right status, and a request_uri signs in at most once.

use serde_json::Value;
use tessera_testkit::*;

use crate::harness::Tally;

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

async fn push(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/par"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn authorize_url(server: &TestServer, client_id: &str, uri: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", uri)
        .finish();
    format!("{}/authorize?{query}", server.base)
}

#[tokio::test]
async fn pushed_requests_are_not_guessed_borrowed_or_replayed() {
    let mut tally = Tally::new("oauth/par");
    let server = spawn().await;
    let spa = server.spa_client_id.clone();
    let pkce = pkce();
    let good = [
        ("client_id", spa.as_str()),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let status_of =
        |url: String| async move { browser().get(url).send().await.unwrap().status().as_u16() };

    let guessed = format!("{PREFIX}{}", "A".repeat(43));
    tally.status(
        "a guessed request_uri",
        status_of(authorize_url(&server, &spa, &guessed)).await,
        400,
    );
    let long = format!("{PREFIX}{}", "A".repeat(5000));
    tally.status(
        "an oversize request_uri",
        status_of(authorize_url(&server, &spa, &long)).await,
        400,
    );
    let (_, pushed) = push(&server, &good).await;
    let uri = pushed["request_uri"].as_str().unwrap().to_string();
    let without = format!(
        "{}/authorize?request_uri={}",
        server.base,
        uri.replace(':', "%3A")
    );
    tally.status(
        "a request_uri without its client_id",
        status_of(without).await,
        400,
    );
    let m2m = server.m2m_client_id.clone();
    tally.status(
        "another application's client_id",
        status_of(authorize_url(&server, &m2m, &uri)).await,
        400,
    );

    // Ten tabs race the same request_uri: one gets the login page.
    let mut tabs = Vec::new();
    for _ in 0..10 {
        tabs.push(tokio::spawn(status_of(authorize_url(&server, &spa, &uri))));
    }
    let mut statuses = Vec::new();
    for tab in tabs {
        statuses.push(tab.await.unwrap());
    }
    let logins = statuses.iter().filter(|s| **s == 302).count();
    let refused = statuses.iter().filter(|s| **s == 400).count();
    tally.case(
        "one request_uri raced from ten tabs",
        logins == 1 && refused == 9,
        format_args!("{statuses:?}"),
    );

    // What may not be pushed.
    let mut nested = good.to_vec();
    nested.push(("request_uri", uri.as_str()));
    tally.status(
        "a pushed request naming a request_uri",
        push(&server, &nested).await.0,
        400,
    );
    let mut object = good.to_vec();
    object.push(("request", "eyJhbGciOiJub25lIn0.e30."));
    tally.status(
        "a pushed request object",
        push(&server, &object).await.0,
        400,
    );
    let json = reqwest::Client::new()
        .post(server.url("/oauth/par"))
        .json(&serde_json::json!({"client_id": spa, "response_type": "code"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("a JSON body", json, 400);
    let huge = format!("client_id={spa}&scope={}", "a".repeat(3 * 1024 * 1024));
    let status = reqwest::Client::new()
        .post(server.url("/oauth/par"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status("a 3 MiB body", status, 413);
    tally.finish();
}
