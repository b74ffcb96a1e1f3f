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

async fn client_json(server: &TestServer, token: &str, client_id: &str) -> Value {
    reqwest::Client::new()
        .get(server.url(&format!("/api/v2/clients/{client_id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn patch_client(server: &TestServer, token: &str, client_id: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/clients/{client_id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_application_requiring_par_is_not_reached_around_it() {
    let mut tally = Tally::new("oauth/par/required");
    let server = spawn().await;
    let token = server
        .management_token(&["read:clients", "update:clients"])
        .await;
    let spa = server.spa_client_id.clone();
    let pkce = pkce();

    // Hostile values for the member: refused, nothing changed.
    for (case, body) in [
        (
            "require_pushed_authorization_requests as a string",
            serde_json::json!({"require_pushed_authorization_requests": "true"}),
        ),
        (
            "require_pushed_authorization_requests as a number",
            serde_json::json!({"require_pushed_authorization_requests": 1}),
        ),
        (
            "require_pushed_authorization_requests as null",
            serde_json::json!({"require_pushed_authorization_requests": null}),
        ),
    ] {
        let status = patch_client(&server, &token, &spa, body).await;
        let after = client_json(&server, &token, &spa).await;
        tally.case(
            case,
            status == 400 && after["require_pushed_authorization_requests"] == false,
            format_args!("status {status}, {after}"),
        );
    }
    let reader = server.management_token(&["read:clients"]).await;
    let status = patch_client(
        &server,
        &reader,
        &spa,
        serde_json::json!({"require_pushed_authorization_requests": true}),
    )
    .await;
    let after = client_json(&server, &token, &spa).await;
    tally.case(
        "turned on without update:clients",
        status == 403 && after["require_pushed_authorization_requests"] == false,
        format_args!("status {status}, {after}"),
    );

    let status = patch_client(
        &server,
        &token,
        &spa,
        serde_json::json!({"require_pushed_authorization_requests": true}),
    )
    .await;
    assert_eq!(status, 200);
    let front = [
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let refused = |response: reqwest::Response| {
        let status = response.status().as_u16();
        let to = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .to_string();
        let held = status == 302
            && to.starts_with(CALLBACK)
            && params_of(&to).get("error").map(String::as_str) == Some("invalid_request")
            && !params_of(&to).contains_key("code");
        (held, format!("status {status}, location {to}"))
    };
    let (held, got) = refused(
        browser()
            .get(server.authorize_url(&front))
            .send()
            .await
            .unwrap(),
    );
    tally.case("a front-channel GET /authorize", held, got);
    let mut form: Vec<(&str, &str)> = front.to_vec();
    form.push(("client_id", spa.as_str()));
    form.push(("redirect_uri", CALLBACK));
    let (held, got) = refused(
        browser()
            .post(server.url("/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    );
    tally.case("a front-channel POST /authorize", held, got);
    let mut fetched = front.to_vec();
    fetched.push(("request_uri", "https://evil.example/request.jwt"));
    let response = browser()
        .get(server.authorize_url(&fetched))
        .send()
        .await
        .unwrap();
    let to = location(&response);
    tally.case(
        "a request_uri that is a URL to fetch",
        response.status() == 302 && !params_of(&to).contains_key("code"),
        format_args!("{} {to}", response.status()),
    );
    let status = browser()
        .get(format!(
            "{}/authorize?client_id={spa}&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2F",
            server.base
        ))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status(
        "an unregistered redirect_uri (a page, never a redirect)",
        status,
        400,
    );
    // Another application's pushed request does not open this one's door.
    let m2m = server.m2m_client_id.clone();
    let m2m_secret = server.m2m_secret.clone();
    let (status, _) = push(
        &server,
        &[
            ("client_id", m2m.as_str()),
            ("client_secret", m2m_secret.as_str()),
            ("response_type", "code"),
            ("redirect_uri", CALLBACK),
        ],
    )
    .await;
    tally.case(
        "a machine-to-machine application's push (no code grant)",
        status == 400,
        format_args!("status {status}"),
    );
    let mut other = good_request(&spa, &pkce.challenge);
    other.retain(|(name, _)| *name != "client_id");
    let (_, pushed) = push(&server, &{
        let mut form = other.clone();
        form.push(("client_id", spa.as_str()));
        form
    })
    .await;
    let uri = pushed["request_uri"].as_str().unwrap_or("").to_string();
    tally.status(
        "the application's own request_uri under another client_id",
        browser()
            .get(authorize_url(&server, &m2m, &uri))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        400,
    );
    tally.finish();
}

fn good_request<'a>(client_id: &'a str, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}
