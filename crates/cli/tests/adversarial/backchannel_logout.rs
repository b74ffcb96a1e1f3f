//! OIDC Back-Channel Logout attacked. An application's `oidc_logout` that is not an object,
//! holds two URLs or one that is not https (plain http off the machine, `javascript:`,
//! `file:`, `data:`, `ftp:`, `gopher:`), carries credentials, a fragment, 5 kB, control
//! characters or nothing, a misspelt member, initiators of an unknown mode or name,
//! `custom` without a list, extra members, 5,000 or 10,000 entries, a 100 kB body — refused
//! with a 400 (or 413) on create and on change, nothing created or changed, no password
//! echoed; without `update:clients` or `create:clients`, 403. Receivers that never answer —
//! one, or sixty at once — hold up no other application's logout tokens, and one answering
//! 10 MB is not read. An application gets tokens only for sessions it was used with (an
//! attacker's, with `mode: all`, nothing of the victim's; failed `/authorize` attempts
//! record nothing), each with its own `client_id` as `aud`. A notice for an application
//! deleted, or whose URL or initiator was withdrawn, is dropped unposted. A logout token is
//! no ID token (`id_token_hint` at `/oidc/logout` and `/authorize`, `link_with`) and no
//! access token (`/userinfo`, the Management API, `tessera-guard`, introspection).
//! A session used without pause across a lowered lifetime still ends, and is told once.
//!
//! "Not held up" is told by order, not time: the other application's token arrives while
//! the hanging receiver's connection is still open (the server gives up only after its
//! 5 s timeout).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use tessera_server::LogoutDelivery;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use tessera_testkit::*;

use crate::harness::Tally;

const CLIENT_SCOPES: &[&str] = &["read:clients", "create:clients", "update:clients"];
/// Where an application's logout tokens would go when nothing listens there.
const NOWHERE: &str = "https://127.0.0.1:9/backchannel";
/// The password in a hostile URL's credentials: never in an answer.
const URL_PASSWORD: &str = "s3cr3t-pw";
/// The 10 MB a flooding receiver answers with.
const FLOOD: usize = 10 * 1024 * 1024;

/// A server that looks for notices every 20 ms and gives a failing one up after two posts.
async fn server() -> TestServer {
    spawn_with(|config| {
        config.backchannel_logout = LogoutDelivery {
            poll_interval: Duration::from_millis(20),
            retry_base: Duration::from_secs(1),
            max_attempts: 2,
        };
    })
    .await
}

/// One request to `/api/v2{path}`: (status, the answer as text).
async fn call(
    server: &TestServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let mut request = reqwest::Client::new().request(method, server.url(&format!("/api/v2{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A regular web application registered through the Management API with `oidc_logout`
/// and the `extra` members; its client_id.
async fn create_app(
    server: &TestServer,
    token: &str,
    name: &str,
    oidc_logout: Value,
    extra: Value,
) -> String {
    let mut body = json!({
        "name": name,
        "app_type": "regular_web",
        "callbacks": [CALLBACK],
        "allowed_logout_urls": [SPA_ORIGIN],
        "oidc_logout": oidc_logout,
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let created = server
        .management_call(token, Method::POST, "/clients", body)
        .await;
    created["client_id"].as_str().unwrap().to_string()
}

/// `oidc_logout` posting to `url` on every session end (`mode: all`).
fn every_initiator(url: &str) -> Value {
    json!({
        "backchannel_logout_urls": [url],
        "backchannel_logout_initiators": { "mode": "all" }
    })
}

async fn set_oidc_logout(server: &TestServer, token: &str, client_id: &str, value: Value) {
    server
        .management_call(
            token,
            Method::PATCH,
            &format!("/clients/{client_id}"),
            json!({ "oidc_logout": value }),
        )
        .await;
}

/// `/authorize` with `params` in `browser`: the status, and the parameters of where it
/// sends the browser (empty without a redirect).
async fn authorize(
    server: &TestServer,
    browser: &reqwest::Client,
    params: &[(&str, &str)],
) -> (u16, HashMap<String, String>) {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let response = browser
        .get(server.url(&format!("/authorize?{}", query.finish())))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let to = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(params_of)
        .unwrap_or_default();
    (status, to)
}

/// `browser`'s session used with `client_id` (`prompt=none`, its callback, PKCE; `extra`
/// adds parameters or replaces them): the answer's parameters (a code, or an error).
async fn use_with(
    server: &TestServer,
    browser: &reqwest::Client,
    client_id: &str,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let pkce = pkce();
    let mut params = vec![
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
        ("prompt", "none"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for &(name, value) in extra {
        params.retain(|(given, _)| *given != name);
        params.push((name, value));
    }
    authorize(server, browser, &params).await.1
}

/// Signs the seeded user in with a new browser (the SPA, which has no back-channel URL
/// unless a test gives it one): the browser, the session's id and the token answer.
async fn signed_in(
    server: &TestServer,
    audience: Option<&str>,
) -> (reqwest::Client, String, Value) {
    let browser = browser();
    let tokens = server.code_flow(&browser, "openid", audience).await;
    let sid = claims(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    (browser, sid, tokens)
}

/// A JWT's claims, unverified (to tell which session a token names).
fn claims(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// A JWT's header, unverified.
fn header(token: &str) -> Value {
    token
        .split('.')
        .next()
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// Verifies `token` apart from the server (jsonwebtoken, the published keys): our issuer,
/// `audience`, unexpired. Its claims, or why not.
async fn verified(server: &TestServer, token: &str, audience: &str) -> Result<Value, String> {
    let head = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let jwks = server.jwks().await;
    let jwk = head
        .kid
        .as_deref()
        .and_then(|kid| jwks.find(kid))
        .ok_or("its kid is not published")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(head.alg);
    validation.set_issuer(&[&server.issuer]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// One post a receiver saw: its path and the `logout_token`s in its form.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    tokens: Vec<String>,
}

impl Post {
    fn token(&self) -> &str {
        self.tokens.first().map_or("", String::as_str)
    }

    fn sid(&self) -> String {
        claims(self.token())["sid"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A receiver on loopback that records every post, at any path, and answers 200.
#[derive(Clone, Default)]
struct Receiver {
    base: String,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            base: format!("http://{}", listener.local_addr().unwrap()),
            posts: Arc::default(),
        };
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    /// Waits (at most 30 s) until the posts satisfy `done`; whether they did.
    async fn until(&self, done: impl Fn(&[Post]) -> bool) -> bool {
        for _ in 0..3000 {
            if done(&self.posts()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    Path(path): Path<String>,
    body: String,
) -> StatusCode {
    let tokens = form_urlencoded::parse(body.as_bytes())
        .filter(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned())
        .collect();
    receiver.posts.lock().unwrap().push(Post { path, tokens });
    StatusCode::OK
}

/// A receiver that accepts connections and never answers: how many it accepted, and how
/// many the server has since closed (given up waiting).
#[derive(Clone)]
struct Silent {
    url: String,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = Silent {
            url: format!("http://{}/backchannel", listener.local_addr().unwrap()),
            accepted: Arc::default(),
            closed: Arc::default(),
        };
        let (accepted, closed) = (silent.accepted.clone(), silent.closed.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let closed = closed.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        silent
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

async fn healthy(server: &TestServer) -> u16 {
    reqwest::get(server.url("/healthz"))
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test]
async fn hostile_oidc_logout_settings_are_refused_and_change_nothing() {
    let mut tally = Tally::new("backchannel_logout/settings");
    let server = spawn().await;
    let admin = server.management_token(CLIENT_SCOPES).await;
    let t = Some(admin.as_str());
    let good = json!({
        "backchannel_logout_urls": ["https://127.0.0.1:9/kept"],
        "backchannel_logout_initiators": {
            "mode": "custom", "selected_initiators": ["rp-logout", "session-revoked"]
        }
    });
    let (status, created) = call(
        &server,
        t,
        Method::POST,
        "/clients",
        Some(&json!({"name": "Kept", "app_type": "regular_web", "oidc_logout": good})),
    )
    .await;
    tally.status("POST an application with a good oidc_logout", status, 201);
    let created = parsed(&created);
    tally.case(
        "its oidc_logout is shown as given",
        created["oidc_logout"] == good,
        &created,
    );
    let path = format!(
        "/clients/{}",
        created["client_id"].as_str().unwrap_or("none")
    );
    let (_, before) = call(&server, t, Method::GET, &path, None).await;
    let (_, list_before) = call(&server, t, Method::GET, "/clients", None).await;

    let url = |url: &str| json!({ "backchannel_logout_urls": [url] });
    let initiators = |initiators: Value| json!({ "backchannel_logout_urls": [NOWHERE], "backchannel_logout_initiators": initiators });
    let session_metadata = |asked: Value| json!({ "backchannel_logout_urls": [NOWHERE], "backchannel_logout_session_metadata": asked });
    let hostile: Vec<(&str, Value)> = vec![
        ("a string", json!(NOWHERE)),
        ("an array", json!([NOWHERE])),
        ("a number", json!(443)),
        ("true", json!(true)),
        ("an object without URLs", json!({})),
        (
            "backchannel_logout_urls a string",
            json!({ "backchannel_logout_urls": NOWHERE }),
        ),
        (
            "backchannel_logout_urls an object",
            json!({ "backchannel_logout_urls": { "0": NOWHERE } }),
        ),
        (
            "backchannel_logout_urls null",
            json!({ "backchannel_logout_urls": null }),
        ),
        (
            "two URLs",
            json!({ "backchannel_logout_urls": [NOWHERE, "https://127.0.0.1:9/other"] }),
        ),
        (
            "a URL that is a number",
            json!({ "backchannel_logout_urls": [443] }),
        ),
        (
            "a URL that is null",
            json!({ "backchannel_logout_urls": [null] }),
        ),
        (
            "a URL that is an object",
            json!({ "backchannel_logout_urls": [{ "url": NOWHERE }] }),
        ),
        ("plain http to example.com", url("http://example.com/x")),
        ("plain http to a private address", url("http://10.0.0.1/x")),
        (
            "plain http to the metadata address",
            url("http://169.254.169.254/latest"),
        ),
        (
            "plain http to localhost.evil.example",
            url("http://localhost.evil.example/x"),
        ),
        (
            "plain http to 127.0.0.1.nip.io",
            url("http://127.0.0.1.nip.io/x"),
        ),
        ("plain http to 0.0.0.0", url("http://0.0.0.0/x")),
        ("plain http to [::]", url("http://[::]/x")),
        (
            "plain http to a mapped private IPv6 address",
            url("http://[::ffff:10.0.0.1]/x"),
        ),
        ("plain http in capitals", url("HTTP://EXAMPLE.COM/x")),
        ("javascript:", url("javascript:alert(document.cookie)")),
        ("file:", url("file:///etc/passwd")),
        ("data:", url("data:text/html,<script>alert(1)</script>")),
        ("ftp:", url("ftp://127.0.0.1/x")),
        ("gopher:", url("gopher://127.0.0.1:6379/_FLUSHALL")),
        ("ws:", url("ws://127.0.0.1/x")),
        (
            "credentials",
            url(&format!("https://user:{URL_PASSWORD}@127.0.0.1/x")),
        ),
        ("a user name alone", url("https://admin@127.0.0.1/x")),
        ("a fragment", url("https://127.0.0.1/x#frag")),
        ("an empty fragment", url("https://127.0.0.1/x#")),
        (
            "a URL of 5 kB",
            url(&format!("https://127.0.0.1/{}", "x".repeat(5000))),
        ),
        ("an empty string", url("")),
        ("a relative URL", url("/backchannel")),
        ("a protocol-relative URL", url("//127.0.0.1/backchannel")),
        (
            "CR/LF inside the URL",
            url("https://127.0.0.1/x\r\nX-Injected: 1"),
        ),
        (
            "a terminal escape before the URL",
            url("\u{1b}[2Jhttps://127.0.0.1/x"),
        ),
        (
            "the misspelt backchannel_logout_url",
            json!({ "backchannel_logout_url": NOWHERE }),
        ),
        (
            "the misspelt member beside the real one",
            json!({ "backchannel_logout_urls": [NOWHERE], "backchannel_logout_url": NOWHERE }),
        ),
        (
            "a __proto__ member",
            json!({ "backchannel_logout_urls": [NOWHERE], "__proto__": { "mode": "all" } }),
        ),
        (
            "session metadata asked as a string",
            session_metadata(json!("include")),
        ),
        (
            "session metadata's include as a string",
            session_metadata(json!({ "include": "true" })),
        ),
        (
            "session metadata with a member beside include",
            session_metadata(json!({ "include": true, "claim": "sub" })),
        ),
        (
            "session metadata without include",
            session_metadata(json!({})),
        ),
        (
            "session metadata's __proto__",
            session_metadata(json!({ "__proto__": { "include": true } })),
        ),
        ("initiators as a string", initiators(json!("all"))),
        ("initiators as an array", initiators(json!(["rp-logout"]))),
        (
            "an unknown mode",
            initiators(json!({ "mode": "everything" })),
        ),
        ("a mode in capitals", initiators(json!({ "mode": "ALL" }))),
        (
            "a mode that is a boolean",
            initiators(json!({ "mode": true })),
        ),
        (
            "no mode",
            initiators(json!({ "selected_initiators": ["rp-logout"] })),
        ),
        (
            "an unknown initiator",
            initiators(
                json!({ "mode": "custom", "selected_initiators": ["rp-logout", "everyone"] }),
            ),
        ),
        (
            "an initiator in capitals",
            initiators(json!({ "mode": "custom", "selected_initiators": ["SESSION-REVOKED"] })),
        ),
        (
            "an initiator that is a number",
            initiators(json!({ "mode": "custom", "selected_initiators": [1] })),
        ),
        (
            "custom without selected_initiators",
            initiators(json!({ "mode": "custom" })),
        ),
        (
            "custom with selected_initiators null",
            initiators(json!({ "mode": "custom", "selected_initiators": null })),
        ),
        (
            "selected_initiators a string",
            initiators(json!({ "mode": "custom", "selected_initiators": "rp-logout" })),
        ),
        (
            "an extra member in the initiators",
            initiators(json!({ "mode": "all", "everyone": true })),
        ),
        (
            "5,000 initiators",
            initiators(
                json!({ "mode": "custom", "selected_initiators": vec!["rp-logout"; 5_000] }),
            ),
        ),
    ];
    for (case, value) in &hostile {
        let body = json!({"name": "Hostile", "app_type": "regular_web", "oidc_logout": value});
        let (status, answer) = call(&server, t, Method::POST, "/clients", Some(&body)).await;
        tally.status(format!("POST {case}"), status, 400);
        tally.case(
            format!("POST {case}: Auth0's error shape, no password echoed"),
            parsed(&answer)["statusCode"] == 400 && !answer.contains(URL_PASSWORD),
            answer.chars().take(300).collect::<String>(),
        );
        // Beside a valid change: refused whole.
        let body = json!({"name": "Renamed", "oidc_logout": value});
        let (status, answer) = call(&server, t, Method::PATCH, &path, Some(&body)).await;
        tally.status(format!("PATCH {case}"), status, 400);
        tally.case(
            format!("PATCH {case}: no password echoed"),
            !answer.contains(URL_PASSWORD),
            &answer,
        );
    }
    // Past the body limit: refused before any member is read.
    let oversized = [
        (
            "a body of 100 kB",
            url(&format!("https://127.0.0.1/{}", "x".repeat(100_000))),
        ),
        (
            "10,000 initiators",
            initiators(
                json!({ "mode": "custom", "selected_initiators": vec!["rp-logout"; 10_000] }),
            ),
        ),
    ];
    for (case, value) in &oversized {
        let body = json!({"name": "Hostile", "app_type": "regular_web", "oidc_logout": value});
        let (status, _) = call(&server, t, Method::POST, "/clients", Some(&body)).await;
        tally.status_in(format!("POST {case}"), status, &[400, 413]);
        let body = json!({ "oidc_logout": value });
        let (status, _) = call(&server, t, Method::PATCH, &path, Some(&body)).await;
        tally.status_in(format!("PATCH {case}"), status, &[400, 413]);
    }

    let (_, after) = call(&server, t, Method::GET, &path, None).await;
    tally.case(
        "the application did not change",
        parsed(&after) == parsed(&before) && parsed(&after)["oidc_logout"] == good,
        &after,
    );
    let (_, list_after) = call(&server, t, Method::GET, "/clients", None).await;
    tally.case(
        "no application was created",
        parsed(&list_after) == parsed(&list_before),
        format_args!(
            "{} applications",
            parsed(&list_after).as_array().map_or(0, Vec::len)
        ),
    );

    // Scopes: an application created by one caller, given a URL by a token that may not.
    let creator = server
        .management_token(&["read:clients", "create:clients"])
        .await;
    let (status, owned) = call(
        &server,
        Some(creator.as_str()),
        Method::POST,
        "/clients",
        Some(&json!({"name": "Owned", "app_type": "regular_web"})),
    )
    .await;
    tally.status("POST an application without oidc_logout", status, 201);
    let owned = format!(
        "/clients/{}",
        parsed(&owned)["client_id"].as_str().unwrap_or("none")
    );
    let attack =
        json!({ "oidc_logout": { "backchannel_logout_urls": ["https://127.0.0.1:9/stolen"] } });
    let (status, _) = call(
        &server,
        Some(creator.as_str()),
        Method::PATCH,
        &owned,
        Some(&attack),
    )
    .await;
    tally.status("PATCH a URL without update:clients", status, 403);
    let (status, _) = call(&server, None, Method::PATCH, &owned, Some(&attack)).await;
    tally.status("PATCH a URL without a token", status, 401);
    let reader = server
        .management_token(&["read:clients", "update:clients"])
        .await;
    let mut body = attack.clone();
    body["name"] = json!("Sneaky");
    let (status, _) = call(
        &server,
        Some(reader.as_str()),
        Method::POST,
        "/clients",
        Some(&body),
    )
    .await;
    tally.status("POST with a URL without create:clients", status, 403);
    let (_, shown) = call(&server, t, Method::GET, &owned, None).await;
    tally.case(
        "the other caller's application has no URL",
        parsed(&shown)["oidc_logout"].is_null() && parsed(&shown)["name"] == "Owned",
        &shown,
    );
    let (_, list) = call(&server, t, Method::GET, "/clients", None).await;
    tally.case(
        "no application named Sneaky",
        !list.contains("Sneaky"),
        "one was created",
    );
    tally.finish();
}

#[tokio::test]
async fn a_hanging_receiver_holds_up_no_other_application() {
    let mut tally = Tally::new("backchannel_logout/receivers");
    let server = server().await;
    let admin = server
        .management_token(&[
            "read:clients",
            "create:clients",
            "update:clients",
            "delete:sessions",
        ])
        .await;
    let hanging = Silent::start().await;
    let flooded = Silent::start().await;
    let receiver = Receiver::start().await;
    let a = create_app(
        &server,
        &admin,
        "Hanging",
        every_initiator(&hanging.url),
        json!({}),
    )
    .await;
    let a2 = create_app(
        &server,
        &admin,
        "Flooded",
        every_initiator(&flooded.url),
        json!({}),
    )
    .await;
    let b = create_app(
        &server,
        &admin,
        "Working",
        every_initiator(&receiver.url("b")),
        json!({}),
    )
    .await;

    // Three browsers of the user: the first used with both applications, the others
    // with the working one only.
    let (first, sid1, _) = signed_in(&server, None).await;
    let (second, sid2, _) = signed_in(&server, None).await;
    let (third, sid3, _) = signed_in(&server, None).await;
    for (browser, apps) in [
        (&first, vec![&a, &b]),
        (&second, vec![&b]),
        (&third, vec![&b]),
    ] {
        for app in apps {
            let answer = use_with(&server, browser, app, &[]).await;
            tally.case(
                "a session used with an application",
                answer.contains_key("code"),
                format_args!("{answer:?}"),
            );
        }
    }
    let delivered = |sid: String| move |posts: &[Post]| posts.iter().any(|p| p.sid() == sid);

    // The first logout: the hanging receiver's post and the working one's go out together.
    first.get(server.url("/v2/logout")).send().await.unwrap();
    let arrived = receiver.until(delivered(sid1.clone())).await;
    let closed = hanging.closed();
    tally.case(
        "the working receiver got its token while the hanging one was still waited for",
        arrived && closed == 0,
        format_args!("arrived {arrived}, hanging posts given up first: {closed}"),
    );
    tally.status(
        "healthz answers while a receiver hangs",
        healthy(&server).await,
        200,
    );
    let (status, _) = call(&server, Some(admin.as_str()), Method::GET, "/clients", None).await;
    tally.status(
        "the Management API answers while a receiver hangs",
        status,
        200,
    );

    // A later logout is not queued behind the post that hangs.
    second.get(server.url("/v2/logout")).send().await.unwrap();
    let arrived = receiver.until(delivered(sid2.clone())).await;
    let closed = hanging.closed();
    tally.case(
        "a later logout's token is not held up by the hanging post",
        arrived && closed == 0,
        format_args!("arrived {arrived}, hanging posts given up first: {closed}"),
    );

    // Sixty sessions of another user, all used with the hanging application (as one who
    // controls it would make them), end at once: the flood holds up no one either.
    let mallory = create_user(&server.store, "mallory@example.com", PASSWORD).await;
    for n in 0..60u8 {
        let sid = format!("mallory-session-{n}");
        seed_session(
            &server.store,
            (100 + n, &sid),
            &mallory,
            tessera_store::SessionOrigin::default(),
        )
        .await;
        server
            .store
            .record_session_client(
                &a2,
                &tessera_store::SessionClient {
                    sid,
                    expires_at: now() + 3600,
                },
            )
            .await
            .unwrap();
    }
    let (status, _) = call(
        &server,
        Some(admin.as_str()),
        Method::DELETE,
        &format!("/users/{mallory}/sessions"),
        None,
    )
    .await;
    tally.status("DELETE the other user's sixty sessions", status, 202);
    let mut flooding = false;
    for _ in 0..1500 {
        if flooded.accepted() > 0 {
            flooding = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tally.case(
        "the flood's posts went out",
        flooding,
        "no post reached the flooded receiver",
    );
    third.get(server.url("/v2/logout")).send().await.unwrap();
    let arrived = receiver.until(delivered(sid3.clone())).await;
    let closed = flooded.closed();
    tally.case(
        "a logout's token is not held up by sixty hanging posts",
        arrived && closed == 0,
        format_args!(
            "arrived {arrived}, flood posts accepted {}, given up first: {closed}",
            flooded.accepted()
        ),
    );
    tally.case(
        "the hanging receiver was tried",
        hanging.accepted() > 0,
        "never",
    );
    tally.status(
        "healthz answers during the flood",
        healthy(&server).await,
        200,
    );
    // The working receiver got each token once, for itself.
    let posts = receiver.posts();
    for sid in [&sid1, &sid2, &sid3] {
        let mine: Vec<&Post> = posts.iter().filter(|p| &p.sid() == sid).collect();
        tally.case(
            "one token per ended session, with the working application as aud",
            mine.len() == 1 && claims(mine[0].token())["aud"] == b.as_str(),
            format_args!("{mine:?}"),
        );
    }
    tally.finish();
}

/// A receiver answering 200 with a body of 10 MB, written until the server lets go: how
/// many bytes each connection took before that (`FLOOD` when all).
async fn flooding_receiver() -> (String, Arc<Mutex<Vec<usize>>>) {
    // A small send buffer (inherited by accepted sockets): what the kernel holds for an
    // unread answer stays far below 10 MB whatever the machine's TCP settings.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(64 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(64).unwrap();
    let url = format!("http://{}/backchannel", listener.local_addr().unwrap());
    let taken = Arc::new(Mutex::new(Vec::new()));
    let record = taken.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {FLOOD}\r\n\r\n"
                );
                let mut written = 0;
                if socket.write_all(head.as_bytes()).await.is_ok() {
                    let chunk = vec![b'A'; 64 * 1024];
                    while written < FLOOD && socket.write_all(&chunk).await.is_ok() {
                        written += chunk.len();
                    }
                }
                record.lock().unwrap().push(written);
            });
        }
    });
    (url, taken)
}

#[tokio::test]
async fn a_receiver_answering_10_mb_is_not_read() {
    let mut tally = Tally::new("backchannel_logout/flooding_receiver");
    let server = server().await;
    let admin = server
        .management_token(&["read:clients", "create:clients", "read:logs"])
        .await;
    let (url, taken) = flooding_receiver().await;
    let app = create_app(
        &server,
        &admin,
        "Flooding",
        json!({ "backchannel_logout_urls": [url] }),
        json!({}),
    )
    .await;
    let (browser, _, _) = signed_in(&server, None).await;
    let answer = use_with(&server, &browser, &app, &[]).await;
    tally.case(
        "the session used with the application",
        answer.contains_key("code"),
        format_args!("{answer:?}"),
    );
    browser.get(server.url("/v2/logout")).send().await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..1500 {
        seen = taken.lock().unwrap().clone();
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tally.case(
        "the server let go of the connection",
        !seen.is_empty(),
        "the receiver was still writing after 30 s",
    );
    tally.case(
        "the 10 MB answer was not read to its end",
        seen.iter().all(|&written| written < FLOOD),
        format_args!("bytes taken per connection: {seen:?}"),
    );
    tally.case(
        "every notice settled",
        server.logout_notices_settled().await,
        "a notice was left",
    );
    let mut logs = Value::Null;
    let mut succeeded = false;
    for _ in 0..500 {
        let (_, text) = call(
            &server,
            Some(admin.as_str()),
            Method::GET,
            "/logs?per_page=100",
            None,
        )
        .await;
        logs = parsed(&text);
        succeeded = logs.as_array().is_some_and(|logs| {
            logs.iter().any(|log| {
                log["type"] == "oidc_backchannel_logout_succeeded" && log["client_id"] == app
            })
        });
        if succeeded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tally.case("the delivery succeeded", succeeded, &logs);
    let failed = logs.as_array().is_some_and(|logs| {
        logs.iter()
            .any(|log| log["type"] == "oidc_backchannel_logout_failed")
    });
    tally.case("no failure was recorded", !failed, &logs);
    let connections = taken.lock().unwrap().clone();
    tally.case(
        "posted once, not again",
        connections.len() == 1,
        format_args!("{connections:?}"),
    );
    tally.status("healthz answers after", healthy(&server).await, 200);
    tally.finish();
}

#[tokio::test]
async fn an_application_gets_logout_tokens_only_for_its_own_sessions() {
    let mut tally = Tally::new("backchannel_logout/audience");
    let server = server().await;
    let admin = server
        .management_token(&[
            "read:clients",
            "create:clients",
            "update:clients",
            "delete:sessions",
        ])
        .await;
    let receiver = Receiver::start().await;
    let all = |path: &str| every_initiator(&receiver.url(path));
    let victims_app = create_app(
        &server,
        &admin,
        "Victim's app",
        json!({ "backchannel_logout_urls": [receiver.url("x")] }),
        json!({}),
    )
    .await;
    let attackers_app = create_app(&server, &admin, "Attacker's app", all("y"), json!({})).await;
    let third_party = create_app(
        &server,
        &admin,
        "Attacker's third-party app",
        all("z"),
        json!({ "is_first_party": false }),
    )
    .await;
    let owner = |path: &str| match path {
        "x" => victims_app.clone(),
        "y" => attackers_app.clone(),
        "z" => third_party.clone(),
        _ => String::new(),
    };

    // The victim uses their application; the attacker's attempts to be used with the
    // victim's session fail.
    let (victim, victim_sid, _) = signed_in(&server, None).await;
    let answer = use_with(&server, &victim, &victims_app, &[]).await;
    tally.case(
        "the victim's session used with the victim's application",
        answer.contains_key("code"),
        format_args!("{answer:?}"),
    );
    let stray = pkce();
    let (status, to) = authorize(
        &server,
        &victim,
        &[
            ("client_id", attackers_app.as_str()),
            ("redirect_uri", "https://attacker.example/cb"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
            ("code_challenge", stray.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    tally.case(
        "the attacker's application with an unregistered callback: an error page",
        status == 400 && !to.contains_key("code"),
        format_args!("{status} {to:?}"),
    );
    let answer = use_with(
        &server,
        &victim,
        &third_party,
        &[("scope", "openid profile email")],
    )
    .await;
    tally.case(
        "the third-party application without consent: consent_required",
        answer.get("error").map(String::as_str) == Some("consent_required")
            && !answer.contains_key("code"),
        format_args!("{answer:?}"),
    );
    let answer = use_with(
        &server,
        &victim,
        &attackers_app,
        &[("response_type", "bogus")],
    )
    .await;
    tally.case(
        "the attacker's application with a malformed request: an error",
        !answer.contains_key("code"),
        format_args!("{answer:?}"),
    );

    // The attacker signs in with their own application.
    let mallory_email = "mallory@example.com";
    let mallory = create_user(&server.store, mallory_email, PASSWORD).await;
    let attacker = browser();
    let pkce = pkce();
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("client_id", attackers_app.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ] {
        query.append_pair(name, value);
    }
    let response = attacker
        .get(server.url(&format!("/authorize?{}", query.finish())))
        .send()
        .await
        .unwrap();
    let back = sign_in_at(
        &attacker,
        &server.base,
        &location(&response),
        mallory_email,
        PASSWORD,
    )
    .await;
    tally.case(
        "the attacker signed in with their application",
        params_of(&back).contains_key("code"),
        &back,
    );

    // The victim logs out; another session of theirs is revoked by an administrator (an
    // initiator the attacker's `mode: all` would take); the attacker logs out.
    victim
        .get(server.url(&format!("/v2/logout?client_id={victims_app}")))
        .send()
        .await
        .unwrap();
    let (other, _, _) = signed_in(&server, None).await;
    let answer = use_with(&server, &other, &victims_app, &[]).await;
    tally.case(
        "another session of the victim used with their application",
        answer.contains_key("code"),
        format_args!("{answer:?}"),
    );
    let (status, _) = call(
        &server,
        Some(admin.as_str()),
        Method::DELETE,
        &format!("/users/{}/sessions", server.user_id),
        None,
    )
    .await;
    tally.status("DELETE the victim's sessions", status, 202);
    attacker.get(server.url("/v2/logout")).send().await.unwrap();
    let both = receiver
        .until(|posts| posts.iter().any(|p| p.path == "x") && posts.iter().any(|p| p.path == "y"))
        .await;
    tally.case(
        "both logouts were posted",
        both,
        format_args!("{:?}", receiver.posts()),
    );
    tally.case(
        "every notice settled",
        server.logout_notices_settled().await,
        "a notice was left",
    );

    let posts = receiver.posts();
    let at = |path: &str| posts.iter().filter(|p| p.path == path).count();
    tally.case(
        "the victim's application got one token (its default initiators skip revocations)",
        at("x") == 1,
        format_args!("{posts:?}"),
    );
    tally.case(
        "the attacker's application got one token: the attacker's",
        at("y") == 1,
        format_args!("{posts:?}"),
    );
    tally.case(
        "the third-party application got nothing",
        at("z") == 0,
        format_args!("{posts:?}"),
    );
    for post in &posts {
        let aud = owner(&post.path);
        let head = header(post.token());
        let claims = verified(&server, post.token(), &aud).await;
        tally.case(
            format!(
                "the token at /{} is signed for that application alone",
                post.path
            ),
            post.tokens.len() == 1
                && head["typ"] == "logout+jwt"
                && head["alg"] == "RS256"
                && claims.as_ref().is_ok_and(|c| c["aud"] == aud.as_str()),
            format_args!("{head} {claims:?}"),
        );
        let claims = claims.unwrap_or_default();
        let (sub, sid) = (claims["sub"].as_str(), claims["sid"].as_str());
        let expected = match post.path.as_str() {
            "x" => sub == Some(server.user_id.as_str()) && sid == Some(victim_sid.as_str()),
            _ => sub == Some(mallory.as_str()) && sid != Some(victim_sid.as_str()),
        };
        tally.case(
            format!(
                "the token at /{} names only its own user's session",
                post.path
            ),
            expected,
            &claims,
        );
    }
    tally.finish();
}

#[tokio::test]
async fn a_notice_for_an_application_gone_or_changed_is_dropped() {
    let mut tally = Tally::new("backchannel_logout/dropped");
    let server = server().await;
    let admin = server
        .management_token(&[
            "read:clients",
            "create:clients",
            "update:clients",
            "delete:clients",
            "delete:sessions",
        ])
        .await;
    let receiver = Receiver::start().await;
    let all = |path: &str| every_initiator(&receiver.url(path));
    let mut apps = HashMap::new();
    for name in ["deleted", "nulled", "emptied", "withdrawn", "control"] {
        let id = create_app(&server, &admin, name, all(name), json!({})).await;
        apps.insert(name, id);
    }

    // One session used with four of them; three are deleted or lose their URL.
    let (first, sid1, _) = signed_in(&server, None).await;
    let (second, sid2, _) = signed_in(&server, None).await;
    for (browser, names) in [
        (&first, vec!["deleted", "nulled", "emptied", "control"]),
        (&second, vec!["withdrawn", "control"]),
    ] {
        for name in names {
            let answer = use_with(&server, browser, &apps[name], &[]).await;
            tally.case(
                format!("a session used with {name}"),
                answer.contains_key("code"),
                format_args!("{answer:?}"),
            );
        }
    }
    let (status, _) = call(
        &server,
        Some(admin.as_str()),
        Method::DELETE,
        &format!("/clients/{}", apps["deleted"]),
        None,
    )
    .await;
    tally.status("DELETE an application", status, 204);
    set_oidc_logout(&server, &admin, &apps["nulled"], Value::Null).await;
    set_oidc_logout(
        &server,
        &admin,
        &apps["emptied"],
        json!({ "backchannel_logout_urls": [] }),
    )
    .await;
    let (_, nulled) = call(
        &server,
        Some(admin.as_str()),
        Method::GET,
        &format!("/clients/{}", apps["nulled"]),
        None,
    )
    .await;
    tally.case(
        "null cleared oidc_logout",
        parsed(&nulled)["oidc_logout"].is_null(),
        &nulled,
    );
    first.get(server.url("/v2/logout")).send().await.unwrap();

    // The other session: its application withdraws the revocation initiator, then an
    // administrator revokes the session.
    set_oidc_logout(
        &server,
        &admin,
        &apps["withdrawn"],
        json!({
            "backchannel_logout_urls": [receiver.url("withdrawn")],
            "backchannel_logout_initiators": { "mode": "custom", "selected_initiators": [] }
        }),
    )
    .await;
    let (status, _) = call(
        &server,
        Some(admin.as_str()),
        Method::POST,
        &format!("/sessions/{sid2}/revoke"),
        None,
    )
    .await;
    tally.status("revoke the other session", status, 202);
    tally.case(
        "the other session ended",
        !server.signs_in_silently(&second).await,
        "it still signs in",
    );

    let control = receiver
        .until(|posts| posts.iter().filter(|p| p.path == "control").count() == 2)
        .await;
    tally.case(
        "the control application got both tokens",
        control,
        format_args!("{:?}", receiver.posts()),
    );
    tally.case(
        "every notice settled",
        server.logout_notices_settled().await,
        "a notice was left",
    );
    let posts = receiver.posts();
    for name in ["deleted", "nulled", "emptied", "withdrawn"] {
        tally.case(
            format!("nothing posted for the {name} application"),
            !posts.iter().any(|p| p.path == name),
            format_args!("{posts:?}"),
        );
    }
    let mut sids: Vec<String> = posts.iter().map(Post::sid).collect();
    sids.sort();
    let mut expected = vec![sid1, sid2];
    expected.sort();
    tally.case(
        "only the control's two tokens were posted",
        posts.len() == 2 && sids == expected,
        format_args!("{posts:?}"),
    );
    tally.finish();
}

#[tokio::test]
async fn a_logout_token_is_no_other_token() {
    let mut tally = Tally::new("backchannel_logout/confusion");
    let server = server().await;
    let admin = server
        .management_token(&["update:clients", "update:users", "read:users"])
        .await;
    let receiver = Receiver::start().await;
    set_oidc_logout(
        &server,
        &admin,
        &server.spa_client_id,
        json!({ "backchannel_logout_urls": [receiver.url("spa")] }),
    )
    .await;
    let (browser, sid, tokens) = signed_in(&server, None).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    let opaque = tokens["access_token"].as_str().unwrap().to_string();
    let for_api = server.code_flow(&browser, "openid", Some(API)).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    browser.get(server.url("/v2/logout")).send().await.unwrap();
    let arrived = receiver
        .until(|posts| posts.iter().any(|p| p.sid() == sid))
        .await;
    let logout_token = receiver
        .posts()
        .iter()
        .find(|p| p.sid() == sid)
        .map(|p| p.token().to_string())
        .unwrap_or_default();
    let genuine = verified(&server, &logout_token, &server.spa_client_id).await;
    tally.case(
        "the application got a genuine logout token",
        arrived
            && header(&logout_token)["typ"] == "logout+jwt"
            && genuine
                .as_ref()
                .is_ok_and(|c| c["sub"] == server.user_id.as_str()),
        format_args!("{genuine:?}"),
    );

    // As id_token_hint at /oidc/logout: a real ID token leads back, the logout token not.
    let stranger = browser_without_cookies();
    let logged_out = format!("{SPA_ORIGIN}/logged-out");
    let oidc_logout = |hint: &str, extra: &[(&str, &str)]| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("id_token_hint", hint);
        query.append_pair("post_logout_redirect_uri", &logged_out);
        query.append_pair("state", "s");
        for (name, value) in extra {
            query.append_pair(name, value);
        }
        server.url(&format!("/oidc/logout?{}", query.finish()))
    };
    let redirect_of = |response: &reqwest::Response| {
        response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let response = stranger
        .get(oidc_logout(&id_token, &[]))
        .send()
        .await
        .unwrap();
    tally.case(
        "control: a real ID token as id_token_hint leads back",
        response.status().is_redirection() && redirect_of(&response).starts_with(&logged_out),
        format_args!("{} {}", response.status(), redirect_of(&response)),
    );
    let spa = server.spa_client_id.clone();
    for (case, url) in [
        ("alone", oidc_logout(&logout_token, &[])),
        (
            "with its application's client_id",
            oidc_logout(&logout_token, &[("client_id", spa.as_str())]),
        ),
    ] {
        let response = stranger.get(&url).send().await.unwrap();
        tally.case(
            format!("/oidc/logout with the logout token as id_token_hint, {case}: refused"),
            response.status() == 400 && redirect_of(&response).is_empty(),
            format_args!("{} {}", response.status(), redirect_of(&response)),
        );
    }
    let response = stranger
        .post(server.url("/oidc/logout"))
        .form(&[
            ("id_token_hint", logout_token.as_str()),
            ("post_logout_redirect_uri", logged_out.as_str()),
        ])
        .send()
        .await
        .unwrap();
    tally.case(
        "POST /oidc/logout with the logout token as id_token_hint: refused",
        response.status() == 400 && redirect_of(&response).is_empty(),
        format_args!("{} {}", response.status(), redirect_of(&response)),
    );

    // As id_token_hint at /authorize, in a browser signed in as the user it names.
    let (again, _, _) = signed_in(&server, None).await;
    let answer = use_with(
        &server,
        &again,
        &server.spa_client_id,
        &[("id_token_hint", id_token.as_str())],
    )
    .await;
    tally.case(
        "control: /authorize with a real ID token as id_token_hint answers a code",
        answer.contains_key("code"),
        format_args!("{answer:?}"),
    );
    let answer = use_with(
        &server,
        &again,
        &server.spa_client_id,
        &[("id_token_hint", logout_token.as_str())],
    )
    .await;
    tally.case(
        "/authorize with the logout token as id_token_hint: invalid_request",
        answer.get("error").map(String::as_str) == Some("invalid_request")
            && !answer.contains_key("code"),
        format_args!("{answer:?}"),
    );

    // As link_with: a real ID token gets past the token check (then the password
    // account is refused as a secondary), the logout token does not.
    let other = create_user(&server.store, "other@example.com", PASSWORD).await;
    let identities = format!("/users/{other}/identities");
    let (_, user_before) = call(
        &server,
        Some(admin.as_str()),
        Method::GET,
        &format!("/users/{other}"),
        None,
    )
    .await;
    let (status, answer) = call(
        &server,
        Some(admin.as_str()),
        Method::POST,
        &identities,
        Some(&json!({ "link_with": id_token })),
    )
    .await;
    tally.case(
        "control: a real ID token as link_with passes the token check",
        status == 400 && !answer.contains("property link_with"),
        format_args!("{status} {answer}"),
    );
    let (status, answer) = call(
        &server,
        Some(admin.as_str()),
        Method::POST,
        &identities,
        Some(&json!({ "link_with": logout_token })),
    )
    .await;
    tally.case(
        "the logout token as link_with: refused as no ID token",
        status == 400 && answer.contains("property link_with"),
        format_args!("{status} {answer}"),
    );
    let (_, user_after) = call(
        &server,
        Some(admin.as_str()),
        Method::GET,
        &format!("/users/{other}"),
        None,
    )
    .await;
    tally.case(
        "the other user's identities did not change",
        parsed(&user_after)["identities"] == parsed(&user_before)["identities"],
        &user_after,
    );

    // As an access token.
    let userinfo = |token: &str| {
        let request = reqwest::Client::new()
            .get(server.url("/userinfo"))
            .bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    tally.status(
        "control: /userinfo with the access token",
        userinfo(&opaque).await,
        200,
    );
    tally.status(
        "/userinfo with the logout token",
        userinfo(&logout_token).await,
        401,
    );
    let (status, _) = call(&server, Some(&logout_token), Method::GET, "/clients", None).await;
    tally.status("the Management API with the logout token", status, 401);
    let guard = tessera_guard::Guard::builder()
        .issuer(&server.issuer)
        .audiences([API, server.spa_client_id.as_str()])
        .http_client(reqwest::Client::builder().no_proxy().build().unwrap())
        .build()
        .unwrap();
    let control = guard.verify(&for_api).await;
    tally.case(
        "control: tessera-guard takes the API's access token",
        control.is_ok(),
        format_args!("{:?}", control.err()),
    );
    let taken = guard.verify(&logout_token).await;
    tally.case(
        "tessera-guard, the application's client_id among its audiences: refused",
        taken.is_err(),
        format_args!("{:?}", taken.ok().map(|c| c.raw().clone())),
    );
    let introspect = |token: String| {
        let request = reqwest::Client::new()
            .post(server.url("/oauth/introspect"))
            .form(&[
                ("client_id", server.m2m_client_id.clone()),
                ("client_secret", server.m2m_secret.clone()),
                ("token", token),
            ]);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (_, issued) = client_credentials(
        &reqwest::Client::new(),
        &server.base,
        &server.m2m_client_id,
        &server.m2m_secret,
        API,
    )
    .await;
    let (status, answer) = introspect(issued["access_token"].as_str().unwrap().to_string()).await;
    tally.case(
        "control: introspection of the application's own token: active",
        status == 200 && answer["active"] == true,
        format_args!("{status} {answer}"),
    );
    let (status, answer) = introspect(logout_token.clone()).await;
    tally.case(
        "introspection of the logout token: inactive, no claim",
        status == 200 && answer == json!({ "active": false }),
        format_args!("{status} {answer}"),
    );
    tally.finish();
}

/// A client without cookies that does not follow redirects.
fn browser_without_cookies() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A user whose session a lowered lifetime has ended cannot keep it alive by using it —
/// silent sign-ins every 50 ms across the change — nor keep their application from being
/// told: every use after the end is refused, the session is gone from the Management API,
/// and its application is told once.
#[tokio::test]
async fn a_session_used_without_pause_still_ends_at_a_lowered_lifetime() {
    let mut tally = Tally::new("backchannel_logout/lowered_lifetime");
    let server = spawn_with(|config| {
        config.backchannel_logout = LogoutDelivery {
            poll_interval: Duration::from_millis(20),
            retry_base: Duration::from_secs(1),
            max_attempts: 2,
        };
        config.purge_interval = Duration::from_millis(200);
    })
    .await;
    let admin = server
        .management_token(&[
            "create:clients",
            "update:clients",
            "update:tenant_settings",
            "read:sessions",
        ])
        .await;
    let receiver = Receiver::start().await;
    let app = create_app(
        &server,
        &admin,
        "App",
        every_initiator(&receiver.url("app")),
        json!({}),
    )
    .await;
    let (browser, sid, _) = signed_in(&server, None).await;
    let first = use_with(&server, &browser, &app, &[]).await;
    tally.case(
        "the session used with the application before the change",
        first.contains_key("code"),
        format_args!("{first:?}"),
    );
    // 0.001 h: the session, signed in under the default lifetime, ends 3.6 s after it.
    server
        .management_call(
            &admin,
            Method::PATCH,
            "/tenants/settings",
            json!({"session_lifetime": 0.001}),
        )
        .await;
    // Used every 50 ms until its application is told (at most 15 s), then five times more.
    let mut after_notice = Vec::new();
    let mut told = false;
    for _ in 0..300 {
        let answer = use_with(&server, &browser, &app, &[]).await;
        if told {
            after_notice.push(answer);
            if after_notice.len() == 5 {
                break;
            }
        } else {
            told = !receiver.posts().is_empty();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tally.case(
        "the application told though the session was used without pause",
        told,
        format_args!("{:?}", receiver.posts()),
    );
    tally.case(
        "every use after the notice: login_required, no code",
        after_notice.len() == 5
            && after_notice.iter().all(|answer| {
                answer.get("error").map(String::as_str) == Some("login_required")
                    && !answer.contains_key("code")
            }),
        format_args!("{after_notice:?}"),
    );
    let (status, _) = server
        .management_request(&admin, "GET", &format!("/sessions/{sid}"))
        .await;
    tally.case(
        "the session gone from the Management API",
        status == 404,
        status,
    );
    // Another purge or two: still one notice, naming the session, with its expiry.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let posts = receiver.posts();
    let events = posts
        .first()
        .map(|post| claims(post.token()))
        .unwrap_or(Value::Null);
    tally.case(
        "one logout token, for the session",
        posts.len() == 1 && posts[0].sid() == sid && posts[0].path == "app",
        format_args!("{posts:?}"),
    );
    tally.case(
        "the token's audience is the application",
        events["aud"] == app.as_str(),
        &events,
    );
    tally.finish();
}
