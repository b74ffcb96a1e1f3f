//! Log streams end to end: a real receiver on loopback gets the audit log in checkpoint
//! order with the stream's authorization and headers; a failing receiver loses nothing
//! (the failed batch comes again); consecutive failures suspend a stream and setting it
//! active resumes from its cursor; a deleted stream stops. And the Management API:
//! Auth0's shape, never the authorization, validation that changes nothing, scopes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};
use tessera_server::StreamSettings;
use tessera_store::LogEvent;
use tessera_testkit::*;

const ALL: &[&str] = &[
    "read:log_streams",
    "create:log_streams",
    "update:log_streams",
    "delete:log_streams",
];

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    answered: u16,
    authorization: Option<String>,
    tenant: Option<String>,
    content_type: Option<String>,
    ids: Vec<String>,
    types: Vec<String>,
}

/// A receiver on loopback: answers 500 to the next `fail` requests (all of them while
/// `fail` is negative), 200 otherwise; keeps what it saw.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    fail: Arc<AtomicI64>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The ids of accepted requests, in the order they came.
    fn delivered(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.answered == 200)
            .flat_map(|s| s.ids)
            .collect()
    }

    /// Waits (bounded) until `done` holds of what was seen.
    async fn until(&self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        for _ in 0..1000 {
            if done(&self.seen()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the receiver never saw {what}: {:?}", self.seen());
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    let mut ids = Vec::new();
    let mut types = Vec::new();
    for line in std::str::from_utf8(&body).unwrap().lines() {
        let item: Value = serde_json::from_str(line).unwrap();
        assert_eq!(item["log_id"], item["data"]["log_id"], "{item}");
        ids.push(item["log_id"].as_str().unwrap().to_string());
        types.push(item["data"]["type"].as_str().unwrap().to_string());
    }
    let fail = receiver.fail.load(Ordering::SeqCst);
    let status = if fail != 0 {
        if fail > 0 {
            receiver.fail.fetch_sub(1, Ordering::SeqCst);
        }
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    receiver.seen.lock().unwrap().push(Seen {
        answered: status.as_u16(),
        authorization: header("authorization"),
        tenant: header("x-tenant"),
        content_type: header("content-type"),
        ids,
        types,
    });
    status
}

async fn start_receiver() -> (String, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/in", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

/// A server that looks for streams every 20 ms and retries after 10 ms, doubling.
async fn server_failing_at(max_failures: u32) -> TestServer {
    spawn_with(|config| {
        config.log_streams = StreamSettings {
            poll_interval: Duration::from_millis(20),
            retry_base: Duration::from_millis(10),
            max_failures,
            ..StreamSettings::default()
        };
    })
    .await
}

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A stream of sign-ins (`auth.login.success`) to `url` with a bearer token.
async fn create_stream(server: &TestServer, token: &str, url: &str) -> String {
    let (status, body) = call(
        server,
        token,
        Method::POST,
        "/log-streams",
        Some(json!({
            "name": "siem",
            "type": "http",
            "sink": {
                "httpEndpoint": url,
                "httpAuthorization": "Bearer stream-s3cret",
                "httpCustomHeaders": [{"header": "X-Tenant", "value": "t1"}],
            },
            "filters": [{"type": "category", "name": "auth.login.success"}],
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains("stream-s3cret"), "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// Appends sign-ins `s` numbered `from..to` (their description), with a failed password
/// between each (filtered out).
async fn sign_ins(server: &TestServer, numbers: std::ops::Range<i64>) {
    // Dated now: the purge takes events past the retention.
    let date = now() * 1000;
    let mut events = Vec::new();
    for n in numbers {
        for log_type in ["s", "fp"] {
            events.push(LogEvent {
                date,
                log_type: log_type.into(),
                description: Some(format!("{log_type} {n}")),
                details: json!({}),
                ..LogEvent::default()
            });
        }
    }
    server.store.append_logs(&events).await.unwrap();
}

/// The ids of the sign-ins the store holds, in checkpoint order.
async fn stored_sign_ins(server: &TestServer) -> Vec<String> {
    server
        .store
        .logs_after(None, 1000, Some("s"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.log_id)
        .collect()
}

#[tokio::test]
async fn events_reach_the_receiver_in_order_with_the_streams_headers() {
    let server = server_failing_at(20).await;
    let token = server.management_token(ALL).await;
    let (url, receiver) = start_receiver().await;
    create_stream(&server, &token, &url).await;
    sign_ins(&server, 0..150).await;

    receiver
        .until("150 sign-ins", |seen| {
            seen.iter().map(|s| s.ids.len()).sum::<usize>() >= 150
        })
        .await;
    let seen = receiver.seen();
    assert_eq!(receiver.delivered(), stored_sign_ins(&server).await);
    assert!(seen.len() >= 2, "batches of at most 100");
    for request in &seen {
        assert_eq!(request.answered, 200);
        assert!(request.ids.len() <= 100);
        assert!(request.types.iter().all(|t| t == "s"), "filtered");
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer stream-s3cret")
        );
        assert_eq!(request.tenant.as_deref(), Some("t1"));
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
    }
}

#[tokio::test]
async fn a_receiver_failing_three_times_loses_nothing() {
    let server = server_failing_at(20).await;
    let token = server.management_token(ALL).await;
    let (url, receiver) = start_receiver().await;
    receiver.fail.store(3, Ordering::SeqCst);
    let id = create_stream(&server, &token, &url).await;
    sign_ins(&server, 0..3).await;
    receiver
        .until("a success after three failures", |seen| {
            seen.iter().any(|s| s.answered == 200)
        })
        .await;
    sign_ins(&server, 3..5).await;
    receiver
        .until("five sign-ins accepted", |seen| {
            seen.iter()
                .filter(|s| s.answered == 200)
                .map(|s| s.ids.len())
                .sum::<usize>()
                >= 5
        })
        .await;

    let seen = receiver.seen();
    let failed: Vec<&Seen> = seen.iter().filter(|s| s.answered != 200).collect();
    assert_eq!(failed.len(), 3);
    // Only the failed batch came again: the accepted ones are every event, once, in order.
    let delivered = receiver.delivered();
    assert_eq!(delivered, stored_sign_ins(&server).await);
    for attempt in &failed {
        assert_eq!(attempt.ids, failed[0].ids, "the same batch each time");
    }
    assert_eq!(&delivered[..failed[0].ids.len()], &failed[0].ids[..]);
    let (_, stream) = call(
        &server,
        &token,
        Method::GET,
        &format!("/log-streams/{id}"),
        None,
    )
    .await;
    assert_eq!(stream["status"], "active", "{stream}");
}

#[tokio::test]
async fn consecutive_failures_suspend_a_stream_until_it_is_set_active() {
    let server = server_failing_at(3).await;
    let token = server.management_token(ALL).await;
    let (url, receiver) = start_receiver().await;
    receiver.fail.store(-1, Ordering::SeqCst);
    let id = create_stream(&server, &token, &url).await;
    let path = format!("/log-streams/{id}");
    sign_ins(&server, 0..1).await;

    let mut status = Value::Null;
    for _ in 0..1000 {
        let (_, stream) = call(&server, &token, Method::GET, &path, None).await;
        status = stream["status"].clone();
        if status == "suspended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, "suspended");
    assert_eq!(receiver.seen().len(), 3, "the third failure suspended it");
    // Suspended, it is not tried again, whatever happens meanwhile.
    sign_ins(&server, 1..2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.seen().len(), 3);

    receiver.fail.store(0, Ordering::SeqCst);
    let (code, stream) = call(
        &server,
        &token,
        Method::PATCH,
        &path,
        Some(json!({"status": "active"})),
    )
    .await;
    assert_eq!(
        (code, &stream["status"]),
        (200, &json!("active")),
        "{stream}"
    );
    receiver
        .until("both sign-ins accepted", |seen| {
            seen.iter()
                .filter(|s| s.answered == 200)
                .map(|s| s.ids.len())
                .sum::<usize>()
                >= 2
        })
        .await;
    assert_eq!(
        receiver.delivered(),
        stored_sign_ins(&server).await,
        "from the cursor"
    );
}

#[tokio::test]
async fn a_deleted_or_paused_stream_delivers_nothing() {
    let server = server_failing_at(20).await;
    let token = server.management_token(ALL).await;
    let (url, receiver) = start_receiver().await;
    let deleted = create_stream(&server, &token, &url).await;
    let paused = create_stream(&server, &token, &url).await;
    let (code, _) = call(
        &server,
        &token,
        Method::DELETE,
        &format!("/log-streams/{deleted}"),
        None,
    )
    .await;
    assert_eq!(code, 204);
    let (code, body) = call(
        &server,
        &token,
        Method::PATCH,
        &format!("/log-streams/{paused}"),
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!((code, &body["status"]), (200, &json!("paused")));
    sign_ins(&server, 0..3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.seen().is_empty(), "{:?}", receiver.seen());
    let (code, body) = call(
        &server,
        &token,
        Method::GET,
        &format!("/log-streams/{deleted}"),
        None,
    )
    .await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["errorCode"], "inexistent_log_stream");
}

#[tokio::test]
async fn the_management_api_shows_streams_in_auth0s_shape_without_the_secret() {
    let server = spawn().await;
    let token = server.management_token(ALL).await;
    let (status, list) = call(&server, &token, Method::GET, "/log-streams", None).await;
    assert_eq!((status, list), (200, json!([])));

    let (status, created) = call(
        &server,
        &token,
        Method::POST,
        "/log-streams",
        Some(json!({
            "name": "siem",
            "sink": {
                "httpEndpoint": "https://127.0.0.1:1/in",
                "httpAuthorization": "Bearer very-s3cret",
                "httpContentFormat": "JSONARRAY",
            },
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("lst_"));
    assert_eq!(
        created,
        json!({
            "id": id,
            "name": "siem",
            "type": "http",
            "status": "active",
            "sink": {
                "httpEndpoint": "https://127.0.0.1:1/in",
                "httpContentType": "application/json",
                "httpContentFormat": "JSONARRAY",
                "httpCustomHeaders": [],
            },
            "filters": [],
            "isPriority": false,
        })
    );
    let path = format!("/log-streams/{id}");
    let (_, got) = call(&server, &token, Method::GET, &path, None).await;
    assert_eq!(got, created);
    let (_, list) = call(&server, &token, Method::GET, "/log-streams", None).await;
    assert_eq!(list, json!([created]));

    // The secret is sealed at rest, and the audit log's record of the change omits it.
    let stored = server.store.find_log_stream(id).await.unwrap().unwrap();
    let sealed = stored.sealed_authorization.unwrap();
    assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
    let (_, logs) = call(
        &server,
        &server.management_token(&["read:logs"]).await,
        Method::GET,
        "/logs?from=0&take=100",
        None,
    )
    .await;
    assert!(logs.to_string().contains("/api/v2/log-streams"), "{logs}");
    assert!(!logs.to_string().contains("very-s3cret"), "{logs}");

    // PATCH: name, format, the endpoint; the authorization replaced and still not shown.
    let (status, patched) = call(
        &server,
        &token,
        Method::PATCH,
        &path,
        Some(json!({
            "name": "renamed",
            "isPriority": true,
            "sink": {"httpEndpoint": "http://127.0.0.1:9/in", "httpAuthorization": "Bearer other"},
            "filters": [{"type": "category", "name": "management.success"}],
        })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], "renamed");
    assert_eq!(patched["isPriority"], true);
    assert_eq!(patched["sink"]["httpEndpoint"], "http://127.0.0.1:9/in");
    assert_eq!(patched["sink"]["httpContentFormat"], "JSONARRAY", "kept");
    assert!(patched["sink"].get("httpAuthorization").is_none());

    // Bad input: 400 in Auth0's shape, and nothing changes.
    let before = call(&server, &token, Method::GET, &path, None).await.1;
    for body in [
        json!({"name": ""}),
        json!({"name": "x".repeat(129)}),
        json!({"status": "deleted"}),
        json!({"sink": {"httpEndpoint": "ftp://logs.example/in"}}),
        json!({"sink": {"httpEndpoint": "http://logs.example/in"}}),
        json!({"sink": {"httpEndpoint": "https://user:pw@logs.example/in"}}),
        json!({"sink": {"httpContentFormat": "XML"}}),
        json!({"sink": {"httpAuthorization": "Bearer a\r\nX-Evil: 1"}}),
        json!({"sink": {"httpCustomHeaders": [{"header": "Host", "value": "x"}]}}),
        json!({"sink": {"httpCustomHeaders": [{"header": "X-A", "value": 1}]}}),
        json!({"sink": {"unknown": 1}}),
        json!({"filters": [{"type": "category", "name": "no.such"}]}),
        json!({"type": "http"}),
    ] {
        let (status, error) = call(&server, &token, Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {error}");
        assert_eq!(error["statusCode"], 400);
        assert!(error["message"].is_string());
    }
    let (_, after) = call(&server, &token, Method::GET, &path, None).await;
    assert_eq!(after, before, "nothing changed");
    for body in [
        json!({"sink": {"httpEndpoint": "https://127.0.0.1:1/in"}}),
        json!({"name": "x", "type": "eventbridge", "sink": {"httpEndpoint": "https://127.0.0.1:1/x"}}),
        json!({"name": "x"}),
        json!({"name": "x", "sink": {}}),
    ] {
        let (status, error) = call(
            &server,
            &token,
            Method::POST,
            "/log-streams",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body} → {error}");
    }
    let (_, list) = call(&server, &token, Method::GET, "/log-streams", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Scopes.
    let reader = server.management_token(&["read:log_streams"]).await;
    let (status, _) = call(&server, &reader, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    let other = server.management_token(&["read:logs"]).await;
    for (method, path, body) in [
        (Method::GET, "/log-streams".to_string(), None),
        (Method::GET, path.clone(), None),
        (
            Method::POST,
            "/log-streams".to_string(),
            Some(json!({"name": "x"})),
        ),
        (Method::PATCH, path.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, path.clone(), None),
    ] {
        let (status, error) = call(&server, &other, method.clone(), &path, body.clone()).await;
        assert_eq!(status, 403, "{method} {path} → {error}");
        assert_eq!(error["errorCode"], "insufficient_scope");
        if method != Method::GET {
            let (status, _) = call(&server, &reader, method.clone(), &path, body).await;
            assert_eq!(status, 403, "{method} {path} with read only");
        }
    }

    // At most ten per tenant.
    for n in 1..10 {
        let (status, _) = call(
            &server,
            &token,
            Method::POST,
            "/log-streams",
            Some(
                json!({"name": format!("s{n}"), "sink": {"httpEndpoint": "https://127.0.0.1:1/x"}}),
            ),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (status, error) = call(
        &server,
        &token,
        Method::POST,
        "/log-streams",
        Some(json!({"name": "eleventh", "sink": {"httpEndpoint": "https://127.0.0.1:1/x"}})),
    )
    .await;
    assert_eq!(status, 403, "{error}");
    let (status, _) = call(&server, &token, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&server, &token, Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
}
