//! `tessera proxy` in front of a small axum upstream, with tokens from a real
//! `tessera serve` (client credentials of an m2m application made with the CLI).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{any, get};
use serde_json::{Value, json};
use tessera_testkit::client_credentials;
use tessera_testkit::process::{Env, Running};

use crate::TESSERA;

const AUDIENCE: &str = "https://proxy-test/api";

/// Counts the requests the upstream saw, and keeps each one's `METHOD /path?query`.
#[derive(Clone, Default)]
struct Seen(Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>);

impl Seen {
    fn requests(&self) -> Vec<String> {
        self.1.lock().unwrap().clone()
    }
}

async fn echo(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    seen.0.fetch_add(1, Ordering::SeqCst);
    seen.1.lock().unwrap().push(format!("{method} {uri}"));
    let header = |name: &str| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        if values.is_empty() {
            Value::Null
        } else {
            Value::String(values.join("|"))
        }
    };
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "subject": header("x-auth-subject"),
        "scope": header("x-auth-scope"),
        "permissions": header("x-auth-permissions"),
        "client_id": header("x-auth-client-id"),
        "authorization": headers.contains_key("authorization"),
        "forwarded_for": header("x-forwarded-for"),
        "forwarded_proto": header("x-forwarded-proto"),
        "forwarded_host": header("x-forwarded-host"),
        "forwarded": header("forwarded"),
        "real_ip": header("x-real-ip"),
        "connection_named": header("x-hop"),
        "override": header("x-http-method-override"),
        "body_len": body.len(),
        "body_sum": body.iter().map(|b| u64::from(*b)).sum::<u64>(),
    }))
}

/// `/ws`: a WebSocket-style handshake answers 101, then the connection says who the proxy
/// said the user is and echoes what it receives. Anything else: which upgrade headers
/// arrived.
async fn ws_echo(mut request: axum::extract::Request) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (upgrade, connection, subject) = (
        header("upgrade"),
        header("connection"),
        header("x-auth-subject"),
    );
    if !upgrade
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
    {
        return axum::Json(json!({ "upgrade": upgrade, "connection": connection })).into_response();
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let hello = format!("sub={}\n", subject.unwrap_or_default());
        if io.write_all(hello.as_bytes()).await.is_err() {
            return;
        }
        let mut buf = [0u8; 1024];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    axum::response::Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", "test")
        .body(axum::body::Body::empty())
        .unwrap()
}

async fn upstream() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/ws", any(ws_echo))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route("/download", get(|| async { vec![7u8; 8 * 1024 * 1024] }))
        .route(
            "/hop-by-hop",
            get(|| async {
                (
                    [
                        ("connection", "x-upstream-hop"),
                        ("x-upstream-hop", "1"),
                        ("x-upstream-kept", "1"),
                    ],
                    "ok",
                )
            }),
        )
        .fallback(any(echo))
        .layer(DefaultBodyLimit::disable())
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, seen)
}

/// A running `tessera serve` with the test API, and a token for an m2m app granted `scopes`.
async fn issuer_and_token(env: &Env, scopes: &str) -> (Running, String, String) {
    let mut command = env.command();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(command);
    let base = server.wait_listening();
    env.json(&[
        "apis",
        "create",
        "--name",
        "Proxy test API",
        "--identifier",
        AUDIENCE,
        "--scopes",
        "read:messages,write:messages,admin",
    ]);
    let app = env.json(&["apps", "create", "--name", "Backend", "--type", "m2m"]);
    let client_id = app["client_id"].as_str().unwrap().to_string();
    let secret = app["client_secret"].as_str().unwrap().to_string();
    env.json(&[
        "grants", "create", "--app", &client_id, "--api", AUDIENCE, "--scopes", scopes,
    ]);
    let http = client();
    let discovery: Value = http
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = discovery["issuer"].as_str().unwrap().to_string();
    let response = http
        .post(format!("{base}/oauth/token"))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "audience": AUDIENCE,
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    (
        server,
        issuer,
        body["access_token"].as_str().unwrap().to_string(),
    )
}

fn proxy(env: &Env, issuer: &str, upstream: &str, extra: &[&str]) -> (Running, String) {
    let mut command = env.command();
    command.args([
        "proxy",
        "--issuer",
        issuer,
        "--audience",
        AUDIENCE,
        "--upstream",
        upstream,
        "--listen",
        "127.0.0.1:0",
        "--upstream-timeout",
        "1",
    ]);
    command.args(extra);
    let mut running = Running::spawn(command);
    let lines = running.wait_for("tessera proxy ready:", Duration::from_secs(10));
    let line = lines.last().unwrap();
    assert!(line.contains(&format!("upstream={upstream}")), "{line}");
    let base = running.base_url_in(line);
    (running, base)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Sends a raw HTTP/1.1 request (reqwest would normalize the path) and returns the status.
async fn raw_status(base: &str, path: &str, token: &str) -> u16 {
    raw_request(base, "GET", path, token, "").await
}

/// Sends `METHOD target` with a token and `extra` header lines (each ending in CRLF) over
/// raw TCP — reqwest would normalize the method and path — and returns the status.
async fn raw_request(base: &str, method: &str, target: &str, token: &str, extra: &str) -> u16 {
    let address = base.trim_start_matches("http://");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n{extra}Connection: close\r\n\r\n"
    );
    let response = raw_exchange(base, request.as_bytes()).await;
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Writes `bytes` to the proxy and reads everything it answers until it closes.
async fn raw_exchange(base: &str, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the proxy answers and closes in time")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_admits_valid_tokens_only_and_forwards_faithfully() {
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    let (upstream_addr, seen) = upstream().await;
    let upstream_url = format!("http://{upstream_addr}");
    let (_proxy, base) = proxy(
        &env,
        &issuer,
        &upstream_url,
        &[
            "--public",
            "/api/public",
            "--require",
            "/api/admin=admin",
            "--require",
            "/api/messages=read:messages",
        ],
    );
    let http = client();
    let calls = || seen.0.load(Ordering::SeqCst);

    // No token: the guard's bare challenge; the upstream is not called.
    let response = http
        .get(format!("{base}/api/private"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\""
    );
    assert_eq!(calls(), 0);

    // A malformed header: 400 invalid_request.
    let response = http
        .get(format!("{base}/api/private"))
        .header("authorization", "Bearer a b")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // A bad token: 401 invalid_token.
    let response = http
        .get(format!("{base}/api/private"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");

    // A valid token without the scope a prefix requires: 403.
    let response = http
        .get(format!("{base}/api/admin/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("scope=\"admin\""),
        "{challenge}"
    );
    assert_eq!(calls(), 0, "no failure reached the upstream");

    // A good token: forwarded, with the X-Auth-* headers from the claims (spoofed ones
    // replaced), the query intact and Authorization kept.
    let response = http
        .get(format!("{base}/api/messages/7?a=1&b=x%20y&a=2"))
        .bearer_auth(&token)
        .header("x-auth-subject", "admin|spoofed")
        .header("x-auth-scope", "admin")
        .header("x-auth-permissions", "everything")
        .header("x-auth-client-id", "someone-else")
        .header("x-forwarded-for", "10.0.0.9")
        .header("x-real-ip", "10.0.0.9")
        .header("forwarded", "for=10.0.0.9;proto=https")
        .header("connection", "x-hop")
        .header("x-hop", "dropped")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/api/messages/7");
    assert_eq!(echo["query"], "a=1&b=x%20y&a=2");
    assert!(
        echo["subject"].as_str().unwrap().ends_with("@clients"),
        "{echo}"
    );
    let client_id = echo["client_id"].as_str().unwrap();
    assert_eq!(echo["subject"], format!("{client_id}@clients"));
    assert_eq!(echo["scope"], "read:messages");
    assert_eq!(echo["permissions"], "");
    assert_eq!(echo["authorization"], true);
    // The proxy is the edge: the forwarding headers describe its peer, whatever the
    // client wrote.
    let host = base.trim_start_matches("http://");
    assert_eq!(echo["forwarded_for"], "127.0.0.1");
    assert_eq!(echo["real_ip"], "127.0.0.1");
    assert_eq!(echo["forwarded_proto"], "http");
    assert_eq!(echo["forwarded_host"], host);
    assert_eq!(
        echo["forwarded"],
        format!("for=127.0.0.1;proto=http;host=\"{host}\"")
    );
    assert_eq!(echo["connection_named"], Value::Null);
    assert_eq!(calls(), 1);

    // Every path needs a token by default; a valid one is enough without a rule.
    let response = http
        .get(format!("{base}/other"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A public prefix needs no token, and spoofed X-Auth-* headers are still removed.
    let response = http
        .get(format!("{base}/api/public/info"))
        .header("x-auth-subject", "admin|spoofed")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["subject"], Value::Null);
    // Segment boundaries: /api/publicity is not under /api/public.
    let response = http
        .get(format!("{base}/api/publicity"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Paths that could mean another path are refused before any rule.
    let before = calls();
    for path in [
        "/api/public/../private",
        "/api/public/%2e%2e/private",
        "/api/public/%2E%2E/private",
        "/api/public/%2fprivate",
        "/api/public//private",
        "/api/public/./x",
        "/api/public\\..\\private",
    ] {
        assert_eq!(raw_status(&base, path, &token).await, 400, "{path}");
    }
    assert_eq!(calls(), before);

    // A 3 MB body arrives intact (streamed both ways).
    let body: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
    let response = http
        .post(format!("{base}/api/upload?name=big"))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["query"], "name=big");
    assert_eq!(echo["body_len"], 3 * 1024 * 1024);
    assert_eq!(echo["body_sum"], sum);

    // A CORS preflight is forwarded without a token.
    let response = http
        .request(Method::OPTIONS, format!("{base}/api/admin/users"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["method"], "OPTIONS");
    assert_eq!(echo["subject"], Value::Null);
    // A plain OPTIONS is not a preflight.
    let response = http
        .request(Method::OPTIONS, format!("{base}/api/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Slower than --upstream-timeout: 504.
    let response = http
        .get(format!("{base}/slow"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_a_502() {
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    // A port that was free a moment ago.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (_proxy, base) = proxy(&env, &issuer, &format!("http://{closed}"), &[]);
    let response = client()
        .get(format!("{base}/anything"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad_gateway");
}

/// `--require-dpop` turns bearer tokens away with a DPoP challenge before the upstream;
/// a `--public-origin` with a path is refused at startup.
#[tokio::test]
async fn require_dpop_and_public_origin_flags() {
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    let (upstream, seen) = upstream().await;
    let (_proxy, base) = proxy(
        &env,
        &issuer,
        &format!("http://{upstream}"),
        &[
            "--require-dpop",
            "--public-origin",
            "https://api.example.test",
        ],
    );
    let response = client()
        .get(format!("{base}/anything"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(seen.requests().is_empty(), "nothing reached the upstream");

    let (code, stderr) = env.fails(&[
        "proxy",
        "--issuer",
        "http://127.0.0.1:1/",
        "--audience",
        AUDIENCE,
        "--upstream",
        "http://127.0.0.1:2",
        "--public-origin",
        "https://api.example.test/v1",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--public-origin"), "{stderr}");
}

#[test]
fn bad_rules_are_refused_at_startup() {
    let env = Env::new(TESSERA);
    let (code, stderr) = env.fails(&[
        "proxy",
        "--issuer",
        "http://127.0.0.1:1/",
        "--audience",
        AUDIENCE,
        "--upstream",
        "http://127.0.0.1:2",
        "--require",
        "/api",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("expected PREFIX=VALUE,VALUE"), "{stderr}");
}

/// Each of these paths is `/api/admin` to some upstream: Express and most routers decode
/// `%XX` before routing, Express ignores case, servlet containers cut `;…` off a segment,
/// some frameworks decode twice. None may be judged by a weaker rule than `/api/admin`'s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spelling_of_a_path_slips_past_its_rule() {
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    let (upstream_addr, seen) = upstream().await;
    let (_proxy, base) = proxy(
        &env,
        &issuer,
        &format!("http://{upstream_addr}"),
        &["--public", "/api/public", "--require", "/api/admin=admin"],
    );
    for path in [
        "/api/adm%69n",
        "/api/%61dmin/users",
        "/API/ADMIN",
        "/Api/Admin/users",
        "/api/admin;jsessionid=1",
        "/api/public/%252e%252e/admin",
        "/api/public%2f..%2fadmin",
        "/api/public/..%5cadmin",
    ] {
        let status = raw_status(&base, path, &token).await;
        assert!(status == 400 || status == 403, "{path}: {status}");
    }
    assert_eq!(
        seen.0.load(Ordering::SeqCst),
        0,
        "none reached the upstream"
    );
}

/// Issue 10, defect 1: methods are case-sensitive, but Werkzeug and Django upper-case them,
/// so `post` must not be judged by the path rule and run as `POST`; method overrides are
/// judged by the rules of the methods they name as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_case_methods_and_overrides_cannot_dodge_a_method_rule() {
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    let (upstream_addr, seen) = upstream().await;
    let (_proxy, base) = proxy(
        &env,
        &issuer,
        &format!("http://{upstream_addr}"),
        &[
            "--require",
            "/api/messages=read:messages",
            "--require",
            "POST /api/messages=write:messages",
        ],
    );
    for method in ["post", "Post", "pOST", "get", "delete"] {
        let status = raw_request(&base, method, "/api/messages", &token, "").await;
        assert_eq!(status, 400, "{method}");
    }
    let status = raw_request(&base, "POST", "/api/messages", &token, "").await;
    assert_eq!(status, 403);
    for (target, header) in [
        ("/api/messages", "X-HTTP-Method-Override: POST\r\n"),
        ("/api/messages", "X-HTTP-Method-Override: post\r\n"),
        ("/api/messages", "X-HTTP-Method: POST\r\n"),
        ("/api/messages", "x-method-override: Post\r\n"),
        ("/api/messages", "X-HTTP-Method-Override: GET, POST\r\n"),
        ("/api/messages?_method=POST", ""),
        ("/api/messages?_method=post", ""),
        ("/api/messages?%5Fmethod=%50OST", ""),
    ] {
        let status = raw_request(&base, "GET", target, &token, header).await;
        assert_eq!(status, 403, "{target} {header}");
    }
    let status = raw_request(
        &base,
        "POST",
        "/api/messages",
        &token,
        "X-HTTP-Method-Override: po\u{17f}t\r\n",
    )
    .await;
    assert_eq!(status, 400, "an override that is not a method name");
    assert_eq!(seen.requests(), Vec::<String>::new(), "none was forwarded");

    // What passes is forwarded as judged.
    let status = raw_request(&base, "GET", "/api/messages?_method=GET", &token, "").await;
    assert_eq!(status, 200);
    let status = raw_request(
        &base,
        "GET",
        "/api/messages",
        &token,
        "X-HTTP-Method-Override: GET\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        seen.requests(),
        ["GET /api/messages?_method=GET", "GET /api/messages"]
    );
}

/// Issue 10, defect 2: spellings that Rails (format suffix), Spring up to 5.2 (suffix
/// match), IIS (trailing dot and space) and stacks that re-parse `%23` / `%3F` read as
/// `/api/admin` are judged by `/api/admin`'s rule or refused; a malformed chunked body is
/// the client's fault (400), not the upstream's (502).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suffixed_spellings_of_a_protected_path_are_refused() {
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    let (upstream_addr, seen) = upstream().await;
    let (_proxy, base) = proxy(
        &env,
        &issuer,
        &format!("http://{upstream_addr}"),
        &[
            "--public",
            "/api",
            "--require-permission",
            "/api/admin=admin",
        ],
    );
    for (path, expected) in [
        ("/api/admin", 403),
        ("/api/admin.json", 403),
        ("/api/Admin.JSON/", 403),
        ("/api/admin.tar.gz", 403),
        ("/api/admin.", 400),
        ("/api/admin%2e", 400),
        ("/api/admin%20", 400),
        ("/api/admin%23", 400),
        ("/api/admin%3f", 400),
        ("/api/admin%3F.json", 400),
        ("/api/adm%C4%B1n", 400),
    ] {
        let status = raw_status(&base, path, &token).await;
        assert_eq!(status, expected, "{path}");
    }
    assert_eq!(seen.requests(), Vec::<String>::new(), "none was forwarded");
    assert_eq!(raw_status(&base, "/api/administrators", &token).await, 200);
    assert_eq!(raw_status(&base, "/api/x.json", &token).await, 200);
    assert_eq!(
        seen.requests(),
        ["GET /api/administrators", "GET /api/x.json"]
    );

    let address = base.trim_start_matches("http://");
    let malformed = format!(
        "POST /api/upload HTTP/1.1\r\nHost: {address}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n\r\n"
    );
    let response = raw_exchange(&base, malformed.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
}

/// A client-credentials token for `audience`, from an application granted `scopes` there.
async fn token_for(env: &Env, base: &str, audience: &str, scopes: &str) -> String {
    let (client_id, secret) = env.m2m_app("Backend", audience, scopes, &[]);
    let (status, body) = client_credentials(&client(), base, &client_id, &secret, audience).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// RBAC permissions, method-specific rules, a settings file, --strip-authorization, and
/// tokens for another API or signed by another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_method_rules_and_a_config_file() {
    let env = Env::new(TESSERA);
    let mut command = env.command();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(command);
    let base = server.wait_listening();
    // The access_token_authz dialect puts the granted scopes into `permissions`.
    for (identifier, name) in [(AUDIENCE, "Proxied"), ("https://other/api", "Other")] {
        env.json(&[
            "apis",
            "create",
            "--name",
            name,
            "--identifier",
            identifier,
            "--scopes",
            "read:messages,write:messages,admin",
            "--token-dialect",
            "access_token_authz",
        ]);
    }
    let token = token_for(&env, &base, AUDIENCE, "read:messages").await;
    let other_audience = token_for(&env, &base, "https://other/api", "admin").await;
    let issuer = format!("{base}/");
    let (upstream_addr, seen) = upstream().await;
    std::fs::write(
        env.path().join("proxy.toml"),
        format!(
            r#"
issuer = "{issuer}"
audience = ["{AUDIENCE}"]
upstream = "http://{upstream_addr}"
listen = "127.0.0.1:0"
strip_authorization = true
trusted_proxies = ["127.0.0.1"]
public = ["GET /api/docs"]
require = ["POST /api/messages=write:messages"]
require_permission = ["/api/messages=read:messages", "/api/admin=admin"]
"#
        ),
    )
    .unwrap();
    let mut command = env.command();
    command.args(["proxy", "--config", "proxy.toml"]);
    let mut running = Running::spawn(command);
    let lines = running.wait_for("tessera proxy ready:", Duration::from_secs(10));
    let proxy_base = running.base_url_in(lines.last().unwrap());
    let http = client();
    let get = |path: &str| http.get(format!("{proxy_base}{path}"));
    let calls = || seen.0.load(Ordering::SeqCst);

    let response = get("/api/messages")
        .bearer_auth(&token)
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["permissions"], "read:messages");
    assert_eq!(echo["authorization"], false, "--strip-authorization");
    // trusted_proxies: the chain of the proxy in front (here, the test) is continued.
    assert_eq!(echo["forwarded_for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(echo["real_ip"], "203.0.113.9");
    assert_eq!(echo["forwarded_proto"], "https");

    let response = http
        .post(format!("{proxy_base}/api/messages"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "POST needs write:messages");
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("scope=\"write:messages\""),
        "{challenge}"
    );

    let response = get("/api/admin/x")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "the admin permission is missing");

    assert_eq!(get("/api/docs").send().await.unwrap().status(), 200);
    assert_eq!(
        http.head(format!("{proxy_base}/api/docs"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "a GET rule covers HEAD"
    );
    let response = http
        .post(format!("{proxy_base}/api/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "only GET is public");
    let before = calls();

    // A token of the same issuer for another API.
    let response = get("/api/messages")
        .bearer_auth(&other_audience)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "unexpected aud value");

    // A well-formed token signed by a key the issuer never published.
    let (key, _) = tessera_jose::SigningKey::generate(tessera_jose::Algorithm::Es256).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let forged = key
        .sign_jwt(
            "at+jwt",
            &json!({"iss": issuer, "aud": AUDIENCE, "sub": "forged", "iat": now,
                    "exp": now + 60, "permissions": ["read:messages", "admin"]}),
        )
        .unwrap();
    let response = get("/api/admin").bearer_auth(&forged).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(calls(), before, "refused tokens never reach the upstream");

    // Hop-by-hop headers of the upstream's response are dropped too.
    let response = get("/hop-by-hop").bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-upstream-hop").is_none());
    assert_eq!(response.headers()["x-upstream-kept"], "1");

    // A large response comes back whole.
    let response = get("/download").bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), 8 * 1024 * 1024);
    assert!(body.iter().all(|b| *b == 7));

    // SIGTERM: graceful shutdown, exit 0.
    let status = running.stop_with_sigterm(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[test]
fn conflicting_rules_and_missing_settings_are_refused_at_startup() {
    let env = Env::new(TESSERA);
    let base = [
        "proxy",
        "--issuer",
        "http://127.0.0.1:1/",
        "--audience",
        AUDIENCE,
        "--upstream",
        "http://127.0.0.1:2",
    ];
    let (code, stderr) =
        env.fails(&[&base[..], &["--public", "/api", "--require", "/API/=x"]].concat());
    assert_eq!(code, 1);
    assert!(stderr.contains("two rules for /api"), "{stderr}");
    let (code, stderr) = env.fails(&[&base[..], &["--public", "/a/../b"]].concat());
    assert_eq!(code, 1);
    assert!(stderr.contains("ambiguous"), "{stderr}");
    let (code, stderr) = env.fails(&["proxy", "--issuer", "http://127.0.0.1:1/"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--audience is required"), "{stderr}");
    assert!(stderr.contains("TESSERA_PROXY_AUDIENCE"), "{stderr}");
    let (code, stderr) =
        env.fails(&[&base[..5], &["--upstream", "http://127.0.0.1:2/v1"]].concat());
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid upstream URL"), "{stderr}");
    for bad in ["10.0.0.0/33", "proxy.internal"] {
        let (code, stderr) = env.fails(&[&base[..], &["--trusted-proxy", bad]].concat());
        assert_eq!(code, 1);
        assert!(
            stderr.contains("--trusted-proxy") && stderr.contains(bad),
            "{stderr}"
        );
    }
}

/// An https upstream is verified against the system's roots, here a CA given through
/// SSL_CERT_FILE; trusting another CA, the same upstream is refused (502).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_verified() {
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    let tls = tessera::dev_tls::ensure(&env.path().join("upstream-tls")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(any(|| async { "over https" }));
    tokio::spawn(tessera_http::serve(
        listener,
        app,
        tessera_http::ServeOptions::with_tls(Some(tls.server_config.clone())),
        std::future::pending(),
    ));
    let upstream = format!("https://localhost:{port}");
    let other_ca = tessera::dev_tls::ensure(&env.path().join("other-tls"))
        .unwrap()
        .ca_cert_path;

    for (roots, expected) in [(&tls.ca_cert_path, 200), (&other_ca, 502)] {
        let mut command = env.command();
        command
            .env("SSL_CERT_FILE", roots)
            .env_remove("SSL_CERT_DIR");
        command.args([
            "proxy",
            "--issuer",
            &issuer,
            "--audience",
            AUDIENCE,
            "--upstream",
            &upstream,
            "--listen",
            "127.0.0.1:0",
        ]);
        let mut running = Running::spawn(command);
        let lines = running.wait_for("tessera proxy ready:", Duration::from_secs(10));
        let base = running.base_url_in(lines.last().unwrap());
        let response = client()
            .get(format!("{base}/x"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "roots {}", roots.display());
        if expected == 200 {
            assert_eq!(response.text().await.unwrap(), "over https");
        }
    }
}

/// Every setting but the rules can come from TESSERA_PROXY_* variables (containers); a flag
/// still wins over its variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_from_the_environment() {
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    let (upstream_addr, seen) = upstream().await;
    let mut command = env.command();
    command
        .env("TESSERA_PROXY_ISSUER", &issuer)
        .env(
            "TESSERA_PROXY_AUDIENCE",
            format!("https://another/api,{AUDIENCE}"),
        )
        // Nothing listens there: the --upstream flag below must win.
        .env("TESSERA_PROXY_UPSTREAM", "http://127.0.0.1:1")
        .env("TESSERA_PROXY_LISTEN", "127.0.0.1:0")
        .env("TESSERA_PROXY_UPSTREAM_TIMEOUT", "5")
        .env("TESSERA_PROXY_STRIP_AUTHORIZATION", "yes")
        .env("TESSERA_PROXY_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
        .args(["proxy", "--upstream", &format!("http://{upstream_addr}")]);
    let mut running = Running::spawn(command);
    let lines = running.wait_for("tessera proxy ready:", Duration::from_secs(10));
    let base = running.base_url_in(lines.last().unwrap());
    let http = client();

    let response = http.get(format!("{base}/api/x")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(seen.0.load(Ordering::SeqCst), 0);

    let response = http
        .get(format!("{base}/api/x"))
        .bearer_auth(&token)
        .header("x-forwarded-for", "203.0.113.9, 10.1.1.1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "the token's audience is the second one listed"
    );
    let echo: Value = response.json().await.unwrap();
    assert_eq!(
        echo["authorization"], false,
        "TESSERA_PROXY_STRIP_AUTHORIZATION=yes"
    );
    assert_eq!(
        (&echo["forwarded_for"], &echo["real_ip"]),
        (
            &json!("203.0.113.9, 10.1.1.1, 127.0.0.1"),
            &json!("203.0.113.9")
        ),
        "TESSERA_PROXY_TRUSTED_PROXIES: both ranges are trusted"
    );
    assert_eq!(seen.0.load(Ordering::SeqCst), 1);
}

#[test]
fn a_bad_value_in_the_environment_is_named() {
    let env = Env::new(TESSERA);
    let mut command = env.command();
    command.env("TESSERA_PROXY_UPSTREAM_TIMEOUT", "soon").args([
        "proxy",
        "--issuer",
        "http://127.0.0.1:1/",
    ]);
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--upstream-timeout"), "{stderr}");
    assert!(stderr.contains("soon"), "{stderr}");
}

/// Sends a handshake to the proxy over raw TCP; returns the response head and the stream.
async fn handshake(
    base: &str,
    upgrade: &str,
    token: Option<&str>,
) -> (String, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let authorization = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {address}\r\nConnection: keep-alive, Upgrade\r\nUpgrade: {upgrade}\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{authorization}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
    })
    .await
    .expect("an answer to the handshake");
    (String::from_utf8(head).unwrap(), stream)
}

/// WebSocket handshakes pass the same rules as any request; an admitted one is tunnelled
/// to the upstream, which gets the identity headers. `h2c` (which would let later requests
/// skip the rules) is never offered to the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handshakes_are_judged_then_tunnelled() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    let (upstream_addr, _) = upstream().await;
    let (_proxy, base) = proxy(
        &env,
        &issuer,
        &format!("http://{upstream_addr}"),
        &["--require", "/ws=read:messages"],
    );

    let (head, _) = handshake(&base, "websocket", None).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    let (head, mut stream) = handshake(&base, "websocket", Some(&token)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket"), "{head}");
    assert!(lower.contains("sec-websocket-accept: test"), "{head}");
    let mut hello = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !hello.ends_with(b"\n") {
            stream.read_exact(&mut byte).await.unwrap();
            hello.push(byte[0]);
        }
    })
    .await
    .expect("the upstream's first message");
    let hello = String::from_utf8(hello).unwrap();
    assert!(
        hello.starts_with("sub=") && hello.trim().ends_with("@clients"),
        "{hello}"
    );
    stream.write_all(b"ping through the tunnel").await.unwrap();
    let mut echoed = [0u8; 23];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut echoed))
        .await
        .expect("the echo")
        .unwrap();
    assert_eq!(&echoed, b"ping through the tunnel");

    // h2c: forwarded as a plain request, without the upgrade.
    let (head, mut stream) = handshake(&base, "h2c", Some(&token)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a content-length");
    let mut body = vec![0u8; length];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut body))
        .await
        .expect("the whole body")
        .unwrap();
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("\"upgrade\":null"), "{body}");
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as cert.pem and key.pem
/// into the test's directory; returns the certificate's PEM.
fn tls_files(env: &Env) -> String {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    std::fs::write(env.path().join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        env.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    certified.cert.pem()
}

/// `--tls-cert`/`--tls-key`: the proxy serves HTTPS and judges as over http; the upstream
/// hears `X-Forwarded-Proto: https`. The files come here from the environment (the
/// certificate, beating the file's missing one) and the --config file (the key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_serves_https_with_a_certificate_and_key() {
    let env = Env::new(TESSERA);
    let (_server, issuer, token) = issuer_and_token(&env, "read:messages").await;
    let (upstream_addr, seen) = upstream().await;
    let cert_pem = tls_files(&env);
    std::fs::write(
        env.path().join("proxy.toml"),
        "tls_cert = \"missing.pem\"\ntls_key = \"key.pem\"\npublic = [\"/api/public\"]\n",
    )
    .unwrap();
    let mut command = env.command();
    command
        .env("TESSERA_PROXY_TLS_CERT", "cert.pem")
        .args(["proxy", "--config", "proxy.toml"])
        .args(["--issuer", &issuer, "--audience", AUDIENCE])
        .args(["--upstream", &format!("http://{upstream_addr}")])
        .args(["--listen", "127.0.0.1:0"]);
    let mut running = Running::spawn(command);
    let lines = running.wait_for("tessera proxy ready:", Duration::from_secs(10));
    let line = lines.last().unwrap();
    let base = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("listen="))
        .unwrap()
        .to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "{line}");

    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = https
        .get(format!("{base}/api/public"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["forwarded_proto"], "https");
    let forwarded = echo["forwarded"].as_str().unwrap();
    assert!(forwarded.contains(";proto=https;"), "{forwarded}");
    assert_eq!(echo["subject"], Value::Null);

    let response = https.get(format!("{base}/api/x")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        seen.0.load(Ordering::SeqCst),
        1,
        "the 401 never reached the app"
    );

    let response = https
        .get(format!("{base}/api/x"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().await.unwrap();
    assert!(
        echo["subject"].as_str().unwrap().ends_with("@clients"),
        "{echo}"
    );
    assert_eq!(echo["forwarded_proto"], "https");
    assert_eq!(echo["scope"], "read:messages");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = client()
        .get(base.replace("https://", "http://") + "/api/public")
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

/// One of the two settings alone, an unreadable file or PEM that is not a certificate or
/// a key: refused at startup, naming the setting and the file, never quoting the key.
#[test]
fn bad_tls_settings_are_refused_at_startup() {
    let env = Env::new(TESSERA);
    tls_files(&env);
    let key = std::fs::read_to_string(env.path().join("key.pem")).unwrap();
    let key_bytes = &key[28..60];
    std::fs::write(
        env.path().join("leaky.pem"),
        format!("-----BEGIN PRIVATE KEY----- {key_bytes}\n"),
    )
    .unwrap();
    std::fs::write(env.path().join("garbage.pem"), "not a certificate").unwrap();
    let base = [
        "proxy",
        "--issuer",
        "http://127.0.0.1:1/",
        "--audience",
        AUDIENCE,
        "--upstream",
        "http://127.0.0.1:2",
        "--listen",
        "127.0.0.1:0",
    ];
    let fails = |extra: &[&str], env_vars: &[(&str, &str)]| {
        let mut command = env.command();
        command.args(base).args(extra);
        for (name, value) in env_vars {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{extra:?} {env_vars:?}");
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(!stderr.contains(key_bytes), "{stderr}");
        (output.status.code().unwrap(), stderr)
    };

    for (extra, env_vars) in [
        (&["--tls-cert", "cert.pem"][..], &[][..]),
        (&[], &[("TESSERA_PROXY_TLS_KEY", "key.pem")][..]),
    ] {
        let (code, stderr) = fails(extra, env_vars);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("--tls-cert and --tls-key go together"),
            "{stderr}"
        );
    }

    // The flag beats the variable: the garbage named on the command line is reported.
    let (code, stderr) = fails(
        &["--tls-cert", "garbage.pem", "--tls-key", "key.pem"],
        &[("TESSERA_PROXY_TLS_CERT", "cert.pem")],
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--tls-cert garbage.pem: no certificate in the PEM file"),
        "{stderr}"
    );

    let (code, stderr) = fails(&["--tls-cert", "cert.pem", "--tls-key", "leaky.pem"], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--tls-key leaky.pem: a malformed -----BEGIN line"),
        "{stderr}"
    );

    let (code, stderr) = fails(&["--tls-cert", "key.pem", "--tls-key", "cert.pem"], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--tls-cert key.pem: no certificate"),
        "{stderr}"
    );

    let (code, stderr) = fails(&["--tls-cert", "missing.pem", "--tls-key", "key.pem"], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot read the TLS certificate (--tls-cert) missing.pem"),
        "{stderr}"
    );

    // A key that is not the certificate's.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(
        env.path().join("other.pem"),
        other.signing_key.serialize_pem(),
    )
    .unwrap();
    let (code, stderr) = fails(&["--tls-cert", "cert.pem", "--tls-key", "other.pem"], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the private key is not the certificate's"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_nonce_key_file_makes_the_proxy_ask_for_dpop_nonces() {
    use tessera_testkit::dpop::DpopKey;
    let env = Env::new(TESSERA);
    let (_server, issuer, _) = issuer_and_token(&env, "read:messages").await;
    let app = env.json(&["apps", "create", "--name", "Bound", "--type", "m2m"]);
    let client_id = app["client_id"].as_str().unwrap();
    let secret = app["client_secret"].as_str().unwrap();
    env.json(&[
        "grants",
        "create",
        "--app",
        client_id,
        "--api",
        AUDIENCE,
        "--scopes",
        "read:messages",
    ]);
    let key = DpopKey::new(tessera_jose::Algorithm::Es256);
    let token: Value = client()
        .post(format!("{issuer}oauth/token"))
        .header(
            "DPoP",
            key.proof("POST", &format!("{issuer}oauth/token"), None),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("audience", AUDIENCE),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["token_type"], "DPoP", "{token}");
    let token = token["access_token"].as_str().unwrap().to_string();

    let key_file = env.path().join("nonce.key");
    std::fs::write(&key_file, "ab".repeat(32)).unwrap();
    let (upstream, seen) = upstream().await;
    let (_proxy, base) = proxy(
        &env,
        &issuer,
        &format!("http://{upstream}"),
        &["--dpop-nonce-key-file", key_file.to_str().unwrap()],
    );
    let url = format!("{base}/anything");
    let response = client()
        .get(&url)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", key.proof("GET", &url, Some(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="use_dpop_nonce""#),
        "{challenge}"
    );
    let nonce = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(seen.requests().is_empty(), "nothing reached the upstream");
    let mut claims = key.claims("GET", &url, Some(&token));
    claims["nonce"] = nonce.into();
    let response = client()
        .get(&url)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", key.sign(&key.header(), &claims))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(seen.requests().len(), 1);

    // A file that holds no key: refused at startup, its content not repeated.
    std::fs::write(&key_file, "not-a-key-but-a-secret").unwrap();
    let (code, stderr) = env.fails(&[
        "proxy",
        "--issuer",
        &issuer,
        "--audience",
        AUDIENCE,
        "--upstream",
        "http://127.0.0.1:2",
        "--dpop-nonce-key-file",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--dpop-nonce-key-file"), "{stderr}");
    assert!(!stderr.contains("not-a-key-but-a-secret"), "{stderr}");
}
