//! OIDC Back-Channel Logout end to end: an application with an `oidc_logout` URL that was
//! used with a login session gets a logout token — signed with the published keys, for
//! it, naming the session — when the session ends, as its initiators ask; applications
//! not used with the session, or without a URL, get nothing; a failing receiver is tried
//! again, then given up, and both outcomes are in the audit log.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};
use tessera_server::LogoutDelivery;
use tessera_testkit::*;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    content_type: Option<String>,
    form: Vec<(String, String)>,
    answered: u16,
}

impl Seen {
    fn logout_token(&self) -> &str {
        let tokens: Vec<&str> = self
            .form
            .iter()
            .filter(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tokens.len(), 1, "one logout_token in {:?}", self.form);
        tokens[0]
    }
}

/// A receiver on loopback, at any path: answers 503 to the next `fail` requests (every
/// one while `fail` is negative), 200 otherwise.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    fail: Arc<AtomicI64>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn until(&self, what: &str, done: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        for _ in 0..1000 {
            let seen = self.seen();
            if done(&seen) {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the receiver never saw {what}: {:?}", self.seen());
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let fail = receiver.fail.load(Ordering::SeqCst);
    let status = if fail != 0 {
        if fail > 0 {
            receiver.fail.fetch_sub(1, Ordering::SeqCst);
        }
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    receiver.seen.lock().unwrap().push(Seen {
        path,
        content_type: headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string()),
        form: form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect(),
        answered: status.as_u16(),
    });
    status
}

async fn start_receiver() -> (String, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/{*path}", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, receiver)
}

/// Looks for notices every 50 ms, retries after 1 s (doubling), gives a notice up after
/// three posts.
fn fast(config: &mut tessera_server::ServerConfig) {
    config.backchannel_logout = LogoutDelivery {
        poll_interval: Duration::from_millis(50),
        retry_base: Duration::from_secs(1),
        max_attempts: 3,
    };
}

async fn server() -> TestServer {
    spawn_with(fast).await
}

async fn set_oidc_logout(server: &TestServer, client_id: &str, oidc_logout: Value) -> Value {
    let token = server.management_token(&["update:clients"]).await;
    server
        .management_call(
            &token,
            Method::PATCH,
            &format!("/clients/{client_id}"),
            json!({ "oidc_logout": oidc_logout }),
        )
        .await
}

/// Signs in with a new browser; the browser and the session's id (the ID token's `sid`).
async fn signed_in(server: &TestServer) -> (reqwest::Client, String) {
    let browser = browser();
    let tokens = server.code_flow(&browser, "openid", None).await;
    let id_token = server
        .verify(tokens["id_token"].as_str().unwrap(), &server.spa_client_id)
        .await;
    (browser, id_token["sid"].as_str().unwrap().to_string())
}

/// Whether the audit log holds an event of type `kind` (among its last 100).
async fn logged(server: &TestServer, kind: &str) -> bool {
    let token = server.management_token(&["read:logs"]).await;
    let logs = server
        .management_call(&token, Method::GET, "/logs?per_page=100", Value::Null)
        .await;
    logs.as_array()
        .unwrap()
        .iter()
        .any(|log| log["type"] == kind)
}

#[tokio::test]
async fn a_logout_posts_the_application_a_logout_token_naming_the_session() {
    let server = server().await;
    let (base, receiver) = start_receiver().await;
    let shown = set_oidc_logout(
        &server,
        &server.spa_client_id,
        json!({ "backchannel_logout_urls": [format!("{base}/spa")] }),
    )
    .await;
    // Auth0's default initiators are filled in and shown.
    assert_eq!(
        shown["oidc_logout"],
        json!({
            "backchannel_logout_urls": [format!("{base}/spa")],
            "backchannel_logout_initiators": {
                "mode": "custom", "selected_initiators": ["rp-logout", "idp-logout"]
            }
        })
    );
    // Another application wants logout tokens too, but is never used with the session.
    let token = server.management_token(&["create:clients"]).await;
    server
        .management_call(
            &token,
            Method::POST,
            "/clients",
            json!({
                "name": "Bystander", "app_type": "regular_web",
                "callbacks": ["https://bystander.example/cb"],
                "oidc_logout": { "backchannel_logout_urls": [format!("{base}/bystander")] }
            }),
        )
        .await;

    let (browser, sid) = signed_in(&server).await;
    let logout = browser
        .get(server.url(&format!("/v2/logout?client_id={}", server.spa_client_id)))
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_redirection() || logout.status().is_success());
    receiver
        .until("a logout token", |seen| !seen.is_empty())
        .await;
    assert!(
        server.logout_notices_settled().await,
        "notices never settled"
    );
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1, "one post, to the application used: {seen:?}");
    let post = &seen[0];
    assert_eq!(post.path, "spa");
    assert_eq!(
        post.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let token = post.logout_token();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    // Signed with a published key, for this application, by this issuer.
    let claims = server.verify(token, &server.spa_client_id).await;
    assert_eq!(claims["sub"], server.user_id.as_str());
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["events"], json!({ EVENT: {} }));
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!((iat - now()).abs() <= 5 && exp - iat == 120, "{claims}");
    // The session did end.
    assert!(!server.signs_in_silently(&browser).await);
    assert!(logged(&server, "oidc_backchannel_logout_succeeded").await);
}

#[tokio::test]
async fn a_logout_token_carries_the_sessions_metadata_when_the_application_asks() {
    let server = server().await;
    let (base, receiver) = start_receiver().await;
    let asked = json!({
        "backchannel_logout_urls": [format!("{base}/spa")],
        "backchannel_logout_session_metadata": { "include": true },
    });
    let shown = set_oidc_logout(&server, &server.spa_client_id, asked).await;
    assert_eq!(
        shown["oidc_logout"]["backchannel_logout_session_metadata"],
        json!({ "include": true })
    );
    let sessions = server.management_token(&["update:sessions"]).await;
    let ends_with_metadata = |metadata: Value| {
        let (server, sessions) = (&server, sessions.clone());
        async move {
            let (browser, sid) = signed_in(server).await;
            server
                .management_call(
                    &sessions,
                    Method::PATCH,
                    &format!("/sessions/{sid}"),
                    json!({ "session_metadata": metadata }),
                )
                .await;
            browser
                .get(server.url(&format!("/v2/logout?client_id={}", server.spa_client_id)))
                .send()
                .await
                .unwrap();
            sid
        }
    };
    let sid = ends_with_metadata(json!({"device": "laptop", "org": "acme"})).await;
    let seen = receiver
        .until("a logout token", |seen| !seen.is_empty())
        .await;
    let claims = server
        .verify(seen[0].logout_token(), &server.spa_client_id)
        .await;
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(
        claims["session_metadata"],
        json!({"device": "laptop", "org": "acme"}),
        "{claims}"
    );
    // Not asked (any more): the token names the session only.
    let plain = json!({
        "backchannel_logout_urls": [format!("{base}/spa")],
        "backchannel_logout_session_metadata": { "include": false },
    });
    set_oidc_logout(&server, &server.spa_client_id, plain).await;
    ends_with_metadata(json!({"device": "phone"})).await;
    let seen = receiver
        .until("a second logout token", |seen| seen.len() >= 2)
        .await;
    let claims = server
        .verify(seen[1].logout_token(), &server.spa_client_id)
        .await;
    assert!(claims.get("session_metadata").is_none(), "{claims}");

    // What Auth0 refuses there is refused, and changes nothing.
    let token = server.management_token(&["update:clients"]).await;
    for bad in [
        json!({"include": "yes"}),
        json!({"include": true, "claim": "x"}),
        json!({}),
        json!(true),
    ] {
        let response = reqwest::Client::new()
            .patch(server.url(&format!("/api/v2/clients/{}", server.spa_client_id)))
            .bearer_auth(&token)
            .json(&json!({ "oidc_logout": {
                "backchannel_logout_urls": [format!("{base}/spa")],
                "backchannel_logout_session_metadata": bad,
            }}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    let reader = server.management_token(&["read:clients"]).await;
    let (_, client) = server
        .management_request(
            &reader,
            "GET",
            &format!("/clients/{}", server.spa_client_id),
        )
        .await;
    assert_eq!(
        client["oidc_logout"]["backchannel_logout_session_metadata"],
        json!({ "include": false })
    );
}

#[tokio::test]
async fn an_administrators_revocation_notifies_only_applications_that_asked() {
    let server = server().await;
    let (base, receiver) = start_receiver().await;
    let url = format!("{base}/spa");
    set_oidc_logout(
        &server,
        &server.spa_client_id,
        json!({ "backchannel_logout_urls": [url] }),
    )
    .await;
    let admin = server
        .management_token(&["delete:sessions", "delete:users"])
        .await;

    // Default initiators: an administrator's revocation is not one of them.
    let (_, first) = signed_in(&server).await;
    server
        .management_call(
            &admin,
            Method::POST,
            &format!("/sessions/{first}/revoke"),
            Value::Null,
        )
        .await;
    assert!(
        server.logout_notices_settled().await,
        "notices never settled"
    );
    assert!(receiver.seen().is_empty(), "{:?}", receiver.seen());

    // Asked for: `session-revoked` notifies, with the revoked session's id.
    set_oidc_logout(
        &server,
        &server.spa_client_id,
        json!({
            "backchannel_logout_urls": [url],
            "backchannel_logout_initiators": {
                "mode": "custom", "selected_initiators": ["session-revoked"]
            }
        }),
    )
    .await;
    let (_, second) = signed_in(&server).await;
    server
        .management_call(
            &admin,
            Method::DELETE,
            &format!("/sessions/{second}"),
            Value::Null,
        )
        .await;
    let seen = receiver
        .until("a logout token", |seen| !seen.is_empty())
        .await;
    let claims = server
        .verify(seen[0].logout_token(), &server.spa_client_id)
        .await;
    assert_eq!(claims["sid"], second.as_str());

    // `all`: the user's deletion notifies too, for each of their sessions.
    set_oidc_logout(
        &server,
        &server.spa_client_id,
        json!({
            "backchannel_logout_urls": [url],
            "backchannel_logout_initiators": { "mode": "all" }
        }),
    )
    .await;
    let (_, third) = signed_in(&server).await;
    let (_, fourth) = signed_in(&server).await;
    server
        .management_call(
            &admin,
            Method::DELETE,
            &format!("/users/{}", server.user_id),
            Value::Null,
        )
        .await;
    let seen = receiver
        .until("two more logout tokens", |seen| seen.len() == 3)
        .await;
    let mut sids = Vec::new();
    for post in &seen[1..] {
        let claims = server
            .verify(post.logout_token(), &server.spa_client_id)
            .await;
        assert_eq!(claims["sub"], server.user_id.as_str());
        sids.push(claims["sid"].as_str().unwrap().to_string());
    }
    sids.sort();
    let mut expected = vec![third, fourth];
    expected.sort();
    assert_eq!(sids, expected);
}

#[tokio::test]
async fn a_failing_receiver_is_tried_again_then_given_up() {
    let server = server().await;
    let (base, receiver) = start_receiver().await;
    set_oidc_logout(
        &server,
        &server.spa_client_id,
        json!({ "backchannel_logout_urls": [format!("{base}/spa")] }),
    )
    .await;

    // One failure: the second post, a second later, delivers it.
    receiver.fail.store(1, Ordering::SeqCst);
    let (browser, sid) = signed_in(&server).await;
    browser.get(server.url("/v2/logout")).send().await.unwrap();
    let seen = receiver
        .until("a delivered token", |seen| {
            seen.iter().any(|s| s.answered == 200)
        })
        .await;
    assert_eq!(
        seen.iter().map(|s| s.answered).collect::<Vec<_>>(),
        [503, 200]
    );
    let claims = server
        .verify(seen[1].logout_token(), &server.spa_client_id)
        .await;
    assert_eq!(claims["sid"], sid.as_str());

    // Always failing: three posts (1 s, then 2 s apart), then it is given up and logged.
    receiver.fail.store(-1, Ordering::SeqCst);
    let (browser, _) = signed_in(&server).await;
    browser.get(server.url("/v2/logout")).send().await.unwrap();
    receiver
        .until("three more posts", |seen| seen.len() == 5)
        .await;
    assert!(
        server.logout_notices_settled().await,
        "notices never settled"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.seen().len(), 5, "no fourth post");
    assert!(logged(&server, "oidc_backchannel_logout_failed").await);
}

#[tokio::test]
async fn a_redirecting_receiver_is_not_followed() {
    let server = server().await;
    let (target, receiver) = start_receiver().await;
    // A receiver that redirects every post to the real one.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector = format!("http://{}/in", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/in",
        post(move || {
            let target = format!("{target}/stolen");
            async move { (StatusCode::TEMPORARY_REDIRECT, [("location", target)]) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    set_oidc_logout(
        &server,
        &server.spa_client_id,
        json!({ "backchannel_logout_urls": [redirector] }),
    )
    .await;
    let (browser, _) = signed_in(&server).await;
    browser.get(server.url("/v2/logout")).send().await.unwrap();
    assert!(
        server.logout_notices_settled().await,
        "notices never settled"
    );
    assert!(receiver.seen().is_empty(), "{:?}", receiver.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_postgres_post_each_notice_once() {
    let database = tessera_testkit::pg::PgServer::start();
    let url = database.database();
    let (base, receiver) = start_receiver().await;
    let server = spawn_on_with(Some(&url), fast).await;
    let (_, other) = another_node(&server, &url, fast).await;
    set_oidc_logout(
        &server,
        &server.spa_client_id,
        json!({
            "backchannel_logout_urls": [format!("{base}/spa")],
            "backchannel_logout_initiators": { "mode": "all" }
        }),
    )
    .await;
    let mut sids = Vec::new();
    for _ in 0..12 {
        sids.push(signed_in(&server).await.1);
    }
    // Both nodes poll every 50 ms: each notice is claimed, and posted, by one of them.
    let admin = server.management_token(&["delete:sessions"]).await;
    server
        .management_call(
            &admin,
            Method::DELETE,
            &format!("/users/{}/sessions", server.user_id),
            Value::Null,
        )
        .await;
    receiver
        .until("twelve tokens", |seen| seen.len() >= 12)
        .await;
    assert!(
        server.logout_notices_settled().await,
        "notices never settled"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Each node signs as its own issuer here (their URLs differ); the keys are shared.
    let jwks = server.jwks().await;
    let mut posted: Vec<String> = receiver
        .seen()
        .iter()
        .map(|post| {
            let token = post.logout_token();
            let header = jsonwebtoken::decode_header(token).unwrap();
            let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap())
                .unwrap();
            let mut validation = jsonwebtoken::Validation::new(header.alg);
            validation.set_audience(&[&server.spa_client_id]);
            let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
                .unwrap()
                .claims;
            claims["sid"].as_str().unwrap().to_string()
        })
        .collect();
    posted.sort();
    sids.sort();
    assert_eq!(posted, sids, "each session's notice posted once");
    other.stop().await;
}

/// A server purging every 200 ms whose SPA is told of expired sessions at a receiver.
async fn told_of_expiry() -> (TestServer, Receiver) {
    let server = spawn_with(|config| {
        fast(config);
        config.purge_interval = Duration::from_millis(200);
    })
    .await;
    let (base, receiver) = start_receiver().await;
    set_oidc_logout(
        &server,
        &server.spa_client_id,
        json!({
            "backchannel_logout_urls": [format!("{base}/spa")],
            "backchannel_logout_initiators": {
                "mode": "custom", "selected_initiators": ["session-expired"]
            }
        }),
    )
    .await;
    (server, receiver)
}

/// Sets the tenant's absolute session lifetime (`session_lifetime`, in hours).
async fn set_session_lifetime(server: &TestServer, hours: f64) {
    let settings = server.management_token(&["update:tenant_settings"]).await;
    server
        .management_call(
            &settings,
            Method::PATCH,
            "/tenants/settings",
            json!({ "session_lifetime": hours }),
        )
        .await;
}

/// The SPA's first logout token, verified: it names the session `sid`.
async fn told_of(server: &TestServer, receiver: &Receiver, sid: &str) {
    let seen = receiver
        .until("a logout token", |seen| !seen.is_empty())
        .await;
    let claims = server
        .verify(seen[0].logout_token(), &server.spa_client_id)
        .await;
    assert_eq!(claims["sid"], sid);
}

#[tokio::test]
async fn an_expired_session_is_told_when_the_purge_takes_it() {
    let (server, receiver) = told_of_expiry().await;
    // 0.001 h: the session ends 3.6 s after the sign-in.
    set_session_lifetime(&server, 0.001).await;
    let (_, sid) = signed_in(&server).await;
    told_of(&server, &receiver, &sid).await;
    assert!(logged(&server, "oidc_backchannel_logout_succeeded").await);
}

/// Lowering the tenant's absolute lifetime ends sessions already open (they sign in no
/// more); the purge ends them in the store too, and their applications are told then —
/// not at the end the sessions were stored with.
#[tokio::test]
async fn a_session_past_a_lowered_lifetime_is_told_when_the_purge_ends_it() {
    let (server, receiver) = told_of_expiry().await;
    // Signed in under the default lifetime (days): its stored end is days away.
    let (_, sid) = signed_in(&server).await;
    // 0.001 h: sessions signed in more than 3.6 s ago are over.
    set_session_lifetime(&server, 0.001).await;
    told_of(&server, &receiver, &sid).await;
}
