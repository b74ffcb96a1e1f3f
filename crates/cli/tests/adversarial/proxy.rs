//! `tessera proxy` under attack: a hostile client tries to reach an upstream route its token
//! does not open, to make the upstream act on something other than what the proxy judged,
//! or to forge the identity the proxy vouches for.
//!
//! The proxy is the real one (`tessera_proxy::Proxy` on a loopback port) in front of an
//! upstream that records every request it handles, so each case asserts the answer *and*
//! what reached the upstream: nothing, or exactly this method and target. Requests are
//! written as raw bytes over TCP, since HTTP clients normalise methods, paths and framing.
//! Tokens are signed here with a key the proxy's guard trusts, so expired, foreign and
//! forged ones can be made too.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};
use tessera_guard::Guard;
use tessera_jose::{Algorithm, Jwks, SigningKey, b64};
use tessera_proxy::{
    DEFAULT_UPSTREAM_TIMEOUT, Proxy, ProxyConfig, RouteRules, TrustedProxies, Upstream,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::Tally;

const ISSUER: &str = "https://issuer.adversarial.test/";
const AUDIENCE: &str = "https://adversarial.test/api";

/// A request the upstream handled.
#[derive(Debug, Clone)]
struct Seen {
    /// `METHOD /path?query`, as the upstream read it.
    line: String,
    headers: HeaderMap,
    body_len: usize,
}

/// The upstream: answers 200 `{"upstream": true}` and records every request it handles
/// (a request whose body never arrived whole is not handled).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn since(&self, mark: usize) -> Vec<Seen> {
        self.0.lock().unwrap()[mark..].to_vec()
    }
}

async fn record(
    State(recorder): State<Recorder>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    recorder.0.lock().unwrap().push(Seen {
        line: format!("{method} {uri}"),
        headers,
        body_len: body.len(),
    });
    axum::Json(json!({ "upstream": true }))
}

/// Tokens the proxy's guard verifies: signed by `key` for `ISSUER` and `AUDIENCE` unless
/// a case says otherwise.
struct Tokens {
    key: SigningKey,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Tokens {
    /// A token with these claims over the defaults (`iss`, `aud`, `sub`, `iat`, `exp`).
    fn with(&self, extra: Value) -> String {
        let mut claims = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "auth0|alice",
            "azp": "client-a",
            "iat": now(),
            "exp": now() + 600,
        });
        for (name, value) in extra.as_object().unwrap() {
            claims[name] = value.clone();
        }
        self.key.sign_jwt("at+jwt", &claims).unwrap()
    }

    /// `read:messages` only: no `write:messages`, no `admin` permission.
    fn reader(&self) -> String {
        self.with(json!({ "scope": "read:messages" }))
    }

    /// Everything the rules ask for.
    fn admin(&self) -> String {
        self.with(json!({
            "sub": "auth0|root",
            "scope": "read:messages write:messages",
            "permissions": ["admin"],
        }))
    }
}

/// The proxy under attack, its upstream and tokens for it.
struct Target {
    proxy: SocketAddr,
    upstream: Recorder,
    tokens: Tokens,
}

/// A proxy with the README's rules: `/api/public` public, `/api/messages` needs
/// `read:messages` (`write:messages` to POST), `/api/admin` the `admin` permission,
/// anything else a valid token. It is the edge: it trusts no proxy in front.
async fn target() -> Target {
    target_behind(TrustedProxies::default()).await
}

/// The same proxy, keeping the forwarding headers of `trusted_proxies`.
async fn target_behind(trusted_proxies: TrustedProxies) -> Target {
    let upstream = Recorder::default();
    let app = Router::new().fallback(record).with_state(upstream.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (key, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
    let guard = Guard::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .jwks(Jwks {
            keys: vec![key.public_jwk().clone()],
        })
        .build()
        .unwrap();
    let mut rules = RouteRules::new();
    rules.add_public("/api/public").unwrap();
    rules
        .add_required_scopes("/api/messages=read:messages")
        .unwrap();
    rules
        .add_required_scopes("POST /api/messages=write:messages")
        .unwrap();
    rules.add_required_permissions("/api/admin=admin").unwrap();
    let config = ProxyConfig {
        guard,
        upstream: Upstream::parse(&format!("http://{upstream_addr}")).unwrap(),
        rules,
        upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
        strip_authorization: false,
        trusted_proxies,
        tls: None,
    };
    let proxy = Proxy::bind(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let proxy_addr = proxy.local_addr();
    tokio::spawn(proxy.run_until_stopped(std::future::pending()));
    Target {
        proxy: proxy_addr,
        upstream,
        tokens: Tokens { key },
    }
}

/// Writes `bytes` and reads until the proxy closes the connection (at most 10 s: a proxy
/// that keeps it open fails the case through the statuses it left unanswered).
async fn exchange(proxy: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    // The proxy may answer and close before reading everything (a refused request line).
    let _ = stream.write_all(bytes).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// The status of every response in `text`, in order: each head, then a body framed by
/// its `Content-Length` or chunked (a `HEAD` answer's body is absent, which ends the text).
fn statuses(text: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    let mut rest = text;
    while let Some((head, after)) = rest.split_once("\r\n\r\n") {
        let Some(status) = head.get(9..12).and_then(|code| code.parse().ok()) else {
            break;
        };
        statuses.push(status);
        let header = |name: &str| {
            head.lines().find_map(|line| {
                let (field, value) = line.split_once(':')?;
                field.eq_ignore_ascii_case(name).then(|| value.trim())
            })
        };
        rest = match (header("content-length"), header("transfer-encoding")) {
            (Some(length), _) => after.get(length.parse().unwrap_or(0)..).unwrap_or(""),
            (None, Some(_)) => after
                .split_once("\r\n0\r\n\r\n")
                .map_or("", |(_, next)| next),
            (None, None) => "",
        };
    }
    statuses
}

/// One request, closing the connection: `METHOD target HTTP/1.1`, `Host`, the token if
/// any, then `headers` (each `Name: value`).
fn request(method: &str, target: &str, token: Option<&str>, headers: &[&str]) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: proxy.test\r\n");
    if let Some(token) = token {
        write!(text, "Authorization: Bearer {token}\r\n").unwrap();
    }
    for header in headers {
        write!(text, "{header}\r\n").unwrap();
    }
    text.push_str("Connection: close\r\n\r\n");
    text.into_bytes()
}

impl Target {
    /// Sends `bytes`; the case holds when the answers are `expected` and the upstream
    /// handled exactly `reached` (`METHOD target` each). Returns what it handled.
    async fn attack(
        &self,
        tally: &mut Tally,
        case: &str,
        bytes: &[u8],
        expected: &[u16],
        reached: &[&str],
    ) -> Vec<Seen> {
        let mark = self.upstream.count();
        let response = exchange(self.proxy, bytes).await;
        let got = statuses(&response);
        let seen = self.upstream.since(mark);
        let lines: Vec<&str> = seen.iter().map(|seen| seen.line.as_str()).collect();
        tally.case(
            case,
            got == expected && lines == reached,
            format_args!(
                "statuses {got:?} (expected {expected:?}), upstream handled {lines:?} (expected {reached:?}); answer: {}",
                response.chars().take(300).collect::<String>()
            ),
        );
        seen
    }
}

/// Spellings of `/api/admin` (and of paths around it) that some upstream reads as
/// `/api/admin`: each gets `/api/admin`'s rule (403 for a token without `admin`) or is
/// refused (400), and none reaches the upstream. A few that must pass are checked to
/// reach it exactly as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_spellings() {
    let target = target().await;
    let mut tally = Tally::new("proxy/paths");
    let reader = target.tokens.reader();
    let token = Some(reader.as_str());
    let long_protected = format!("/api/admin/{}", "a/".repeat(3000));

    let judged_as_admin = [
        ("/api/admin", "the path itself"),
        ("/API/ADMIN", "upper case (Express ignores case)"),
        ("/Api/Admin/users", "mixed case below the prefix"),
        ("/api/adm%69n", "an encoded letter"),
        ("/api/%61dmin/users", "an encoded first letter"),
        ("/api/%41DMIN", "an encoded upper-case letter"),
        ("/api/admin/", "a trailing slash"),
        ("/api/admin.json", "a format suffix (Rails, Spring <= 5.2)"),
        ("/api/admin.tar.gz", "a double suffix"),
        ("/API/Admin.JSON/", "a suffix in upper case with a slash"),
        ("/api/admin%2ejson", "an encoded suffix dot"),
        (
            "/api/admin#/../public",
            "a fragment (cut before judging and forwarding)",
        ),
        (long_protected.as_str(), "a 6 KB path below the prefix"),
    ];
    for (path, why) in judged_as_admin {
        let case = format!("GET {} ({why}) is judged as /api/admin", truncated(path));
        let bytes = request("GET", path, token, &[]);
        target.attack(&mut tally, &case, &bytes, &[403], &[]).await;
    }

    let refused = [
        ("/api/admin.", "a trailing dot (IIS drops it)"),
        ("/api/admin..", "two trailing dots"),
        ("/api/admin%2e", "an encoded trailing dot"),
        ("/api/admin%2E/users", "an encoded trailing dot mid-path"),
        ("/api/admin%20", "an encoded trailing space (IIS drops it)"),
        ("/api/%20admin", "an encoded leading space"),
        ("/api/admin%09", "an encoded tab"),
        ("/api/admin%C2%A0", "a trailing no-break space"),
        (
            "/api/admin%23",
            "an encoded # (stacks that re-parse cut there)",
        ),
        ("/api/admin%23/x", "an encoded # mid-path"),
        ("/api/admin%3f", "an encoded ?"),
        (
            "/api/admin%3Fformat=json",
            "an encoded ? with a query after it",
        ),
        ("/api/admin%00", "an encoded NUL"),
        ("/api/admin%00.json", "a NUL before a suffix"),
        ("/api/admin%0d%0aX-Injected:%201", "encoded CR LF"),
        ("/api/admin%C2%85", "an encoded C1 control (NEL)"),
        (
            "/api/admin;jsessionid=1",
            "a ; parameter (servlet containers cut it)",
        ),
        ("/api/admin%3b.json", "an encoded ;"),
        ("/api/public/../admin", "a .. segment"),
        ("/api/public/./../admin", "a . then a .. segment"),
        ("/api/public/%2e%2e/admin", "an encoded .. segment"),
        (
            "/api/public/%2E%2e/admin",
            "an encoded .. segment in mixed case",
        ),
        ("/api/public/.%2e/admin", "a half-encoded .. segment"),
        ("/api/public/..;/admin", "..; (Tomcat reads it as ..)"),
        ("/api/public%2f..%2fadmin", "encoded slashes"),
        ("/api/public%2F..%2Fadmin", "encoded slashes in upper case"),
        ("/api/public%5c..%5cadmin", "encoded backslashes"),
        (
            "/api/public\\..\\admin",
            "raw backslashes (Windows separators)",
        ),
        ("/api/public/%252e%252e/admin", "double-encoded dots"),
        (
            "/api/public/%25%32%65%25%32%65/admin",
            "an encoded % spelling dots",
        ),
        ("//api/admin", "a leading //"),
        ("/api//admin", "an empty segment"),
        ("/api/%C0%AE%C0%AE/admin", "overlong UTF-8 dots"),
        ("/api/public%C0%AF..%C0%AFadmin", "overlong UTF-8 slashes"),
        ("/api/admin%ff", "a byte that is not UTF-8"),
        ("/api/admin%zz", "a malformed escape"),
        ("/api/admin%2", "a truncated escape"),
        ("/api/adm%C4%B1n", "a dotless ı (Java and Go fold it to i)"),
        ("/api/adm%C4%B0n", "a dotted İ (Java folds it to i)"),
        ("/api/%E2%84%AAeys", "a Kelvin sign (folds to k)"),
        ("/api/%C5%BFecret", "a long ſ (folds to s)"),
    ];
    for (path, why) in refused {
        let case = format!("GET {path} ({why}) is refused");
        let bytes = request("GET", path, token, &[]);
        target.attack(&mut tally, &case, &bytes, &[400], &[]).await;
    }

    // Longer than hyper's URI limit: refused before anything is judged.
    let huge = format!("/api/public/{}", "a".repeat(70 * 1024));
    let bytes = request("GET", &huge, None, &[]);
    target
        .attack(
            &mut tally,
            "a 70 KB path is refused (414)",
            &bytes,
            &[414],
            &[],
        )
        .await;

    // What passes reaches the upstream exactly as written (no fragment).
    let passes = [
        ("/api/public/x", None, "GET /api/public/x"),
        ("/api/Public/a%20b.txt", None, "GET /api/Public/a%20b.txt"),
        ("/api/public#/../admin", None, "GET /api/public"),
        ("/api/public/x.json", None, "GET /api/public/x.json"),
        ("/api/administrators", token, "GET /api/administrators"),
        ("/api/admins.json", token, "GET /api/admins.json"),
        ("/api/.well-known/x", token, "GET /api/.well-known/x"),
        (
            "/api/public?next=/api/admin",
            None,
            "GET /api/public?next=/api/admin",
        ),
    ];
    for (path, token, reached) in passes {
        let case = format!("GET {path} passes and reaches the upstream as {reached:?}");
        let bytes = request("GET", path, token, &[]);
        target
            .attack(&mut tally, &case, &bytes, &[200], &[reached])
            .await;
    }
    let bytes = request("GET", "/api/public.json", None, &[]);
    target
        .attack(
            &mut tally,
            "/api/public.json is not under the public prefix: it needs a token",
            &bytes,
            &[401],
            &[],
        )
        .await;
    tally.finish();
}

fn truncated(text: &str) -> String {
    if text.len() > 40 {
        format!("{}…", &text[..40])
    } else {
        text.to_owned()
    }
}

/// Methods are case-sensitive tokens: a lower-case spelling is refused, never judged as an
/// unknown method and run as the upper-case one; method overrides are judged by the rules
/// of the methods they name too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_and_overrides() {
    let target = target().await;
    let mut tally = Tally::new("proxy/methods");
    let reader = target.tokens.reader();
    let admin = target.tokens.admin();

    for method in [
        "post", "Post", "pOST", "get", "delete", "Delete", "options", "head", "trace",
    ] {
        let case = format!("{method} /api/messages is refused");
        let bytes = request(method, "/api/messages", Some(&reader), &[]);
        target.attack(&mut tally, &case, &bytes, &[400], &[]).await;
    }
    let bytes = request("get", "/api/public", None, &[]);
    target
        .attack(
            &mut tally,
            "get /api/public is refused even though the path is public",
            &bytes,
            &[400],
            &[],
        )
        .await;

    let bytes = request("POST", "/api/messages", Some(&reader), &[]);
    target
        .attack(
            &mut tally,
            "POST without write:messages: 403",
            &bytes,
            &[403],
            &[],
        )
        .await;
    let bytes = request("FOO", "/api/admin", Some(&reader), &[]);
    target
        .attack(
            &mut tally,
            "an unknown method gets the path's rule (403)",
            &bytes,
            &[403],
            &[],
        )
        .await;
    let bytes = request("PROPFIND", "/api/messages", Some(&reader), &[]);
    target
        .attack(
            &mut tally,
            "an unknown upper-case method passes under the path rule, as sent",
            &bytes,
            &[200],
            &["PROPFIND /api/messages"],
        )
        .await;
    let bytes = request("HEAD", "/api/messages", Some(&reader), &[]);
    target
        .attack(
            &mut tally,
            "HEAD gets GET's rule and reaches the upstream as HEAD",
            &bytes,
            &[200],
            &["HEAD /api/messages"],
        )
        .await;

    let overrides = [
        ("/api/messages", "X-HTTP-Method-Override: POST"),
        ("/api/messages", "X-HTTP-Method-Override: post"),
        ("/api/messages", "x-http-method-override: Post"),
        ("/api/messages", "X-HTTP-Method: POST"),
        ("/api/messages", "X-Method-Override: POST"),
        ("/api/messages", "X-HTTP-Method-Override: GET, POST"),
        ("/api/messages", "X-HTTP-Method-Override: POST, GET"),
        ("/api/messages?_method=POST", ""),
        ("/api/messages?_method=post", ""),
        ("/api/messages?_METHOD=POST", ""),
        ("/api/messages?%5Fmethod=%50OST", ""),
        ("/api/messages?_method[]=POST", ""),
        ("/api/messages?.method=POST", ""),
        ("/api/messages?+_method=POST", ""),
        ("/api/messages?a=1;_method=POST", ""),
        ("/api/messages?_method=GET&_method=POST", ""),
    ];
    for (target_path, header) in overrides {
        let headers: Vec<&str> = [header].into_iter().filter(|h| !h.is_empty()).collect();
        let case = format!("GET {target_path} {header} is judged as POST too (403)");
        let bytes = request("GET", target_path, Some(&reader), &headers);
        target.attack(&mut tally, &case, &bytes, &[403], &[]).await;
    }
    let bytes = request(
        "GET",
        "/api/messages",
        Some(&reader),
        &[
            "X-HTTP-Method-Override: POST",
            "X-HTTP-Method-Override: GET",
        ],
    );
    target
        .attack(
            &mut tally,
            "two override header lines: each is judged (403)",
            &bytes,
            &[403],
            &[],
        )
        .await;

    for (target_path, header, why) in [
        ("/api/messages", "X-HTTP-Method-Override: PO ST", "a space"),
        (
            "/api/messages",
            "X-HTTP-Method-Override: po\u{17f}t",
            "a long ſ, which upper-cases to S",
        ),
        ("/api/messages", "X-HTTP-Method: \"POST\"", "quotes"),
        ("/api/messages?_method=PO+ST", "", "a + (space)"),
        ("/api/messages?_method=po%C5%BFt", "", "an encoded ſ"),
        ("/api/messages?_method=%00", "", "a NUL"),
    ] {
        let headers: Vec<&str> = [header].into_iter().filter(|h| !h.is_empty()).collect();
        let case = format!("an override with {why} is refused");
        let bytes = request("GET", target_path, Some(&reader), &headers);
        target.attack(&mut tally, &case, &bytes, &[400], &[]).await;
    }

    let seen = target
        .attack(
            &mut tally,
            "an override the token meets is forwarded as sent",
            &request(
                "GET",
                "/api/messages?_method=POST",
                Some(&admin),
                &["X-HTTP-Method-Override: DELETE"],
            ),
            &[200],
            &["GET /api/messages?_method=POST"],
        )
        .await;
    tally.case(
        "the upstream gets the override header unchanged",
        seen.first()
            .is_some_and(|seen| seen.headers["x-http-method-override"] == "DELETE"),
        format_args!("{seen:?}"),
    );
    let seen = target
        .attack(
            &mut tally,
            "an underscored override header is dropped, not judged",
            &request(
                "GET",
                "/api/messages",
                Some(&reader),
                &["X_HTTP_Method_Override: POST"],
            ),
            &[200],
            &["GET /api/messages"],
        )
        .await;
    tally.case(
        "the upstream never sees X_HTTP_Method_Override (WSGI would read it as the dashed one)",
        seen.first()
            .is_some_and(|seen| !seen.headers.keys().any(|name| name.as_str().contains('_'))),
        format_args!("{seen:?}"),
    );

    let preflight = request(
        "OPTIONS",
        "/api/admin",
        None,
        &[
            "Origin: http://app.test",
            "Access-Control-Request-Method: DELETE",
        ],
    );
    target
        .attack(
            &mut tally,
            "a CORS preflight passes without a token",
            &preflight,
            &[200],
            &["OPTIONS /api/admin"],
        )
        .await;
    let overridden = request(
        "OPTIONS",
        "/api/admin",
        None,
        &[
            "Access-Control-Request-Method: DELETE",
            "X-HTTP-Method-Override: DELETE",
        ],
    );
    target
        .attack(
            &mut tally,
            "a preflight with an override is no preflight: it needs a token",
            &overridden,
            &[401],
            &[],
        )
        .await;
    let bytes = request("OPTIONS", "*", Some(&admin), &[]);
    target
        .attack(&mut tally, "OPTIONS * is refused", &bytes, &[400], &[])
        .await;

    // TRACE echoes the request (Authorization and cookies included) back to a script;
    // CONNECT asks for a tunnel. Refused (405) before any rule, even where no token is
    // needed, and even when the token meets every rule.
    for (method, target_path, token, why) in [
        ("TRACE", "/api/public", None, "on a public route"),
        (
            "TRACE",
            "/api/messages",
            Some(&admin),
            "with a token that meets every rule",
        ),
        ("TRACK", "/api/public", None, "(IIS's TRACE)"),
        (
            "CONNECT",
            "upstream.test:443",
            Some(&admin),
            "to another host",
        ),
        ("CONNECT", "/api/public", None, "with a path"),
    ] {
        let case = format!("{method} {target_path} {why} is refused (405)");
        let bytes = request(method, target_path, token.map(String::as_str), &[]);
        target.attack(&mut tally, &case, &bytes, &[405], &[]).await;
    }
    for (target_path, header) in [
        ("/api/public", "X-HTTP-Method-Override: TRACE"),
        ("/api/public", "X-HTTP-Method: track"),
        ("/api/public", "X-Method-Override: GET, CONNECT"),
        ("/api/public?_method=trace", ""),
        ("/api/public?%5Fmethod=CONNECT", ""),
    ] {
        let headers: Vec<&str> = [header].into_iter().filter(|h| !h.is_empty()).collect();
        let case = format!("POST {target_path} {header} names a refused method (405)");
        let bytes = request("POST", target_path, Some(&admin), &headers);
        target.attack(&mut tally, &case, &bytes, &[405], &[]).await;
    }
    tally.finish();
}

/// Framing a client could make the proxy and the upstream read differently (request
/// smuggling), and malformed messages: refused, or forwarded as exactly one request the
/// proxy judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_and_smuggling() {
    let target = target().await;
    let mut tally = Tally::new("proxy/framing");
    let reader = target.tokens.reader();
    let admin_smuggled = "GET /api/admin HTTP/1.1\r\nHost: proxy.test\r\n\r\n";

    let cl_te = format!(
        "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{admin_smuggled}",
        5 + admin_smuggled.len()
    );
    target
        .attack(
            &mut tally,
            "CL.TE: the chunked reading wins and the connection closes: no second request",
            cl_te.as_bytes(),
            &[200],
            &["POST /api/public"],
        )
        .await;

    let hidden = admin_smuggled.len() + 1;
    let te_cl = format!(
        "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{hidden:x}\r\n{admin_smuggled}x\r\n0\r\n\r\n"
    );
    let seen = target
        .attack(
            &mut tally,
            "TE.CL: the smuggled request stays body",
            te_cl.as_bytes(),
            &[200],
            &["POST /api/public"],
        )
        .await;
    tally.case(
        "TE.CL: the upstream gets the whole decoded body",
        seen.first().is_some_and(|seen| seen.body_len == hidden),
        format_args!("{seen:?}"),
    );

    for (coding, status) in [
        ("chunked, identity", 400),
        ("identity", 400),
        ("xchunked", 400),
        ("gzip, chunked", 501),
        ("chunked, chunked", 501),
    ] {
        let bytes = format!(
            "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nTransfer-Encoding: {coding}\r\nConnection: close\r\n\r\n0\r\n\r\n"
        );
        let case = format!("Transfer-Encoding: {coding} is refused ({status})");
        target
            .attack(&mut tally, &case, bytes.as_bytes(), &[status], &[])
            .await;
    }
    let two_te = "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n";
    target
        .attack(
            &mut tally,
            "Transfer-Encoding twice is refused",
            two_te.as_bytes(),
            &[501],
            &[],
        )
        .await;
    let te_10 = "POST /api/public HTTP/1.0\r\nHost: proxy.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    target
        .attack(
            &mut tally,
            "Transfer-Encoding in HTTP/1.0 is refused",
            te_10.as_bytes(),
            &[400],
            &[],
        )
        .await;
    let te_space = "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n";
    target
        .attack(
            &mut tally,
            "a space before the colon is refused",
            te_space.as_bytes(),
            &[400],
            &[],
        )
        .await;
    let folded_te = "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n";
    target
        .attack(
            &mut tally,
            "an obs-folded Transfer-Encoding is refused",
            folded_te.as_bytes(),
            &[400],
            &[],
        )
        .await;
    let folded = "GET /api/public HTTP/1.1\r\nHost: proxy.test\r\nX-Note: a\r\n b\r\n\r\n";
    target
        .attack(
            &mut tally,
            "an obs-folded header is refused",
            folded.as_bytes(),
            &[400],
            &[],
        )
        .await;

    let two_lengths = "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    target
        .attack(
            &mut tally,
            "two different Content-Lengths are refused",
            two_lengths.as_bytes(),
            &[400],
            &[],
        )
        .await;
    let same_lengths = "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let seen = target
        .attack(
            &mut tally,
            "two equal Content-Lengths: one request",
            same_lengths.as_bytes(),
            &[200],
            &["POST /api/public"],
        )
        .await;
    tally.case(
        "two equal Content-Lengths: the upstream gets one, and the 5 bytes",
        seen.first().is_some_and(|seen| {
            seen.body_len == 5 && seen.headers.get_all("content-length").iter().count() == 1
        }),
        format_args!("{seen:?}"),
    );
    for length in ["+5", "-1", "5 5", "0x5", "5.0"] {
        let bytes = format!(
            "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: {length}\r\n\r\nhello"
        );
        let case = format!("Content-Length: {length} is refused");
        target
            .attack(&mut tally, &case, bytes.as_bytes(), &[400], &[])
            .await;
    }

    let malformed_chunk = "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n\r\n";
    target
        .attack(
            &mut tally,
            "a malformed chunk size is the client's fault (400), not the upstream's",
            malformed_chunk.as_bytes(),
            &[400],
            &[],
        )
        .await;
    let huge_chunk = "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nx\r\n0\r\n\r\n";
    target
        .attack(
            &mut tally,
            "a chunk size that overflows is refused (400)",
            huge_chunk.as_bytes(),
            &[400],
            &[],
        )
        .await;
    let short_body =
        "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 50\r\n\r\nonly this";
    let mut stream = tokio::net::TcpStream::connect(target.proxy).await.unwrap();
    let mark = target.upstream.count();
    stream.write_all(short_body.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let handled = target.upstream.since(mark).len();
    tally.case(
        "a body cut short never reaches the upstream as a request",
        handled == 0,
        format_args!("{handled} handled"),
    );

    let pipelined = [
        request("GET", "/api/public", None, &[]),
        request("GET", "/api/admin", Some(&reader), &[]),
    ]
    .map(|bytes| {
        String::from_utf8(bytes)
            .unwrap()
            .replace("Connection: close\r\n", "")
    })
    .concat()
        + &String::from_utf8(request("GET", "/api/public/last", None, &[])).unwrap();
    target
        .attack(
            &mut tally,
            "pipelined: each request is judged on its own",
            pipelined.as_bytes(),
            &[200, 403, 200],
            &["GET /api/public", "GET /api/public/last"],
        )
        .await;
    let pipelined = format!(
        "POST /api/public HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 5\r\n\r\nhellopost /api/messages HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: Bearer {reader}\r\nConnection: close\r\n\r\n"
    );
    target
        .attack(
            &mut tally,
            "pipelined after a body: the lower-case POST is refused",
            pipelined.as_bytes(),
            &[200, 400],
            &["POST /api/public"],
        )
        .await;

    let expect = format!(
        "POST /api/admin HTTP/1.1\r\nHost: proxy.test\r\nAuthorization: Bearer {reader}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    let answer = exchange(target.proxy, expect.as_bytes()).await;
    tally.case(
        "Expect: 100-continue on a refused request: 403 without a 100 Continue",
        statuses(&answer) == [403],
        &answer,
    );

    for (bytes, case) in [
        (
            "GET /api/public HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned(),
            "HTTP/1.1 without Host is refused",
        ),
        (
            "GET /api/public HTTP/1.1\r\nHost: proxy.test\r\nHost: other.test\r\nConnection: close\r\n\r\n".to_owned(),
            "two Host headers are refused",
        ),
        (
            "GET /api/public HTTP/1.1\r\nHost: user@proxy.test\r\nConnection: close\r\n\r\n".to_owned(),
            "a Host with user information is refused",
        ),
        (
            "GET /api/public HTTP/1.1\r\nHost: proxy.test/api/admin\r\nConnection: close\r\n\r\n".to_owned(),
            "a Host with a path is refused",
        ),
        (
            "GET http://other.test/api/public HTTP/1.1\r\nHost: proxy.test\r\nConnection: close\r\n\r\n".to_owned(),
            "an absolute-form target naming another host than Host is refused",
        ),
        (
            "GET /api/public HTTP/1.1 extra\r\nHost: proxy.test\r\n\r\n".to_owned(),
            "a malformed request line is refused",
        ),
        (
            "GET /api/public HTTP/1.1\r\nHost: proxy.test\r\nX-Bad\0: 1\r\n\r\n".to_owned(),
            "a NUL in a header name is refused",
        ),
        (
            "GET /api/public HTTP/1.1\r\nHost: proxy.test\r\nX-Bad: a\0b\r\n\r\n".to_owned(),
            "a NUL in a header value is refused",
        ),
        (
            "GET /api/pub lic HTTP/1.1\r\nHost: proxy.test\r\n\r\n".to_owned(),
            "a raw space in the target is refused",
        ),
    ] {
        target
            .attack(&mut tally, case, bytes.as_bytes(), &[400], &[])
            .await;
    }
    let absolute = format!(
        "GET http://{}/api/admin HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {reader}\r\nConnection: close\r\n\r\n",
        target.proxy, target.proxy
    );
    target
        .attack(
            &mut tally,
            "an absolute-form target is judged by its path",
            absolute.as_bytes(),
            &[403],
            &[],
        )
        .await;
    let absolute = format!(
        "GET http://{}/api/public?x=1 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.proxy, target.proxy
    );
    target
        .attack(
            &mut tally,
            "an absolute-form target reaches the upstream in origin form",
            absolute.as_bytes(),
            &[200],
            &["GET /api/public?x=1"],
        )
        .await;
    let seen = target
        .attack(
            &mut tally,
            "HTTP/1.0 without Host is judged by its path and forwarded",
            b"GET /api/public HTTP/1.0\r\n\r\n",
            &[200],
            &["GET /api/public"],
        )
        .await;
    tally.case(
        "HTTP/1.0 without Host: no X-Forwarded-Host is made up",
        seen.first()
            .is_some_and(|seen| !seen.headers.contains_key("x-forwarded-host")),
        format_args!("{seen:?}"),
    );
    let bare_lf = format!(
        "GET /api/admin HTTP/1.1\nHost: proxy.test\nAuthorization: Bearer {reader}\nConnection: close\n\n"
    );
    target
        .attack(
            &mut tally,
            "bare LF line ends are read as one request and judged (403)",
            bare_lf.as_bytes(),
            &[403],
            &[],
        )
        .await;
    let mark = target.upstream.count();
    let answer = exchange(target.proxy, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let reached = target.upstream.since(mark).len();
    tally.case(
        "an HTTP/2 preface reaches nothing",
        reached == 0,
        format_args!("upstream handled {reached}; answer: {answer}"),
    );
    let seen = target
        .attack(
            &mut tally,
            "an h2c upgrade is forwarded as a plain request",
            &request(
                "GET",
                "/api/public",
                None,
                &[
                    "Connection: Upgrade, HTTP2-Settings",
                    "Upgrade: h2c",
                    "HTTP2-Settings: AAMAAABkAAQAAP__",
                ],
            ),
            &[200],
            &["GET /api/public"],
        )
        .await;
    tally.case(
        "h2c: the upstream is offered no upgrade",
        seen.first().is_some_and(|seen| {
            !seen.headers.contains_key("upgrade") && !seen.headers.contains_key("http2-settings")
        }),
        format_args!("{seen:?}"),
    );
    tally.finish();
}

/// The identity headers the proxy vouches for (`X-Auth-*`) and the forwarding headers
/// cannot be forged by the client, in any spelling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers() {
    let target = target().await;
    let mut tally = Tally::new("proxy/identity");
    let reader = target.tokens.reader();
    let identity = [
        "x-auth-subject",
        "x-auth-scope",
        "x-auth-permissions",
        "x-auth-client-id",
    ];

    for header in [
        "X-Auth-Subject: auth0|root",
        "x-auth-subject: auth0|root",
        "X-AUTH-SUBJECT: auth0|root",
        "X-Auth-Scope: write:messages",
        "X-Auth-Permissions: admin",
        "X-Auth-Client-Id: client-root",
        "X_Auth_Subject: auth0|root",
        "X-Auth_Subject: auth0|root",
        "X_AUTH_PERMISSIONS: admin",
    ] {
        let seen = target
            .attack(
                &mut tally,
                &format!("{header} on a public route is forwarded without it"),
                &request("GET", "/api/public", None, &[header]),
                &[200],
                &["GET /api/public"],
            )
            .await;
        let forged = header.split(':').next().unwrap().to_ascii_lowercase();
        tally.case(
            format_args!("{header}: the upstream sees no identity header"),
            seen.first().is_some_and(|seen| {
                identity
                    .iter()
                    .all(|name| !seen.headers.contains_key(*name))
                    && !seen.headers.contains_key(forged.as_str())
            }),
            format_args!("{seen:?}"),
        );
    }

    let seen = target
        .attack(
            &mut tally,
            "forged identity with a valid token is forwarded",
            &request(
                "GET",
                "/api/messages",
                Some(&reader),
                &[
                    "X-Auth-Subject: auth0|root",
                    "X-Auth-Subject: auth0|second",
                    "X-Auth-Permissions: admin",
                    "X-Auth-Scope: write:messages",
                    "X-Auth-Client-Id: client-root",
                    "X_Auth_Subject: auth0|root",
                ],
            ),
            &[200],
            &["GET /api/messages"],
        )
        .await;
    let values = |seen: &Seen, name: &str| -> Vec<String> {
        seen.headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().unwrap_or("?").to_owned())
            .collect()
    };
    for (name, expected) in [
        ("x-auth-subject", vec!["auth0|alice"]),
        ("x-auth-scope", vec!["read:messages"]),
        ("x-auth-permissions", vec![""]),
        ("x-auth-client-id", vec!["client-a"]),
    ] {
        tally.case(
            format_args!("with a token, {name} is the token's alone"),
            seen.first()
                .is_some_and(|seen| values(seen, name) == expected),
            format_args!("{:?}", seen.first().map(|seen| values(seen, name))),
        );
    }

    // The proxy is the edge: what a client says about its address, scheme or host never
    // reaches the app (Express, Rack, Spring, request-ip … would believe it); the
    // proxy describes the connection it received.
    let forged_forwarding = [
        "X-Forwarded-For: 10.9.9.9",
        "X-Forwarded-For: 10.9.9.8",
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: evil.test",
        "X-Forwarded-Port: 443",
        "X-Forwarded-Prefix: /evil",
        "X-Forwarded-Ssl: on",
        "X-Forwarded-Scheme: https",
        "X-Forwarded-Server: evil.test",
        "X_Forwarded_For: 10.8.8.8",
        "Forwarded: for=10.9.9.9;proto=https;host=evil.test",
        "Forwarded: for=\"[2001:db8::9]\"",
        "X-Real-IP: 10.9.9.9",
        "X-Client-IP: 10.9.9.9",
        "True-Client-IP: 10.9.9.9",
        "CF-Connecting-IP: 10.9.9.9",
        "Fastly-Client-IP: 10.9.9.9",
        "X-Cluster-Client-IP: 10.9.9.9",
        "X-Forwarded: for=10.9.9.9",
        "Forwarded-For: 10.9.9.9",
    ];
    let seen = target
        .attack(
            &mut tally,
            "forged forwarding headers are forwarded",
            &request("GET", "/api/public", None, &forged_forwarding),
            &[200],
            &["GET /api/public"],
        )
        .await;
    for (name, expected) in [
        ("x-forwarded-for", "127.0.0.1"),
        ("x-real-ip", "127.0.0.1"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "proxy.test"),
        ("forwarded", "for=127.0.0.1;proto=http;host=proxy.test"),
    ] {
        tally.case(
            format_args!("{name} describes the connection: {expected}"),
            seen.first()
                .is_some_and(|seen| values(seen, name) == [expected]),
            format_args!("{:?}", seen.first().map(|seen| values(seen, name))),
        );
    }
    for forged in forged_forwarding {
        let name = forged.split(':').next().unwrap().to_ascii_lowercase();
        let set_by_the_proxy = [
            "x-forwarded-for",
            "x-real-ip",
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded",
        ];
        if set_by_the_proxy.contains(&name.as_str()) {
            continue;
        }
        tally.case(
            format_args!("{forged}: the app never sees {name}"),
            seen.first()
                .is_some_and(|seen| !seen.headers.contains_key(name.as_str())),
            format_args!("{:?}", seen.first().map(|seen| values(seen, &name))),
        );
    }
    let seen = target
        .attack(
            &mut tally,
            "a Connection header naming the identity headers",
            &request(
                "GET",
                "/api/messages",
                Some(&reader),
                &["Connection: X-Auth-Subject, X-Forwarded-For"],
            ),
            &[200],
            &["GET /api/messages"],
        )
        .await;
    tally.case(
        "Connection cannot remove the identity the proxy sets",
        seen.first().is_some_and(|seen| {
            values(seen, "x-auth-subject") == ["auth0|alice"]
                && values(seen, "x-forwarded-for") == ["127.0.0.1"]
        }),
        format_args!("{seen:?}"),
    );
    for header in ["X-Original-URL: /api/admin", "X-Rewrite-URL: /api/admin"] {
        let seen = target
            .attack(
                &mut tally,
                &format!("{header} on a public route is forwarded without it"),
                &request("GET", "/api/public", None, &[header]),
                &[200],
                &["GET /api/public"],
            )
            .await;
        tally.case(
            format_args!("{header}: the upstream (IIS, old Symfony) cannot route by it"),
            seen.first().is_some_and(|seen| {
                !seen.headers.contains_key("x-original-url")
                    && !seen.headers.contains_key("x-rewrite-url")
            }),
            format_args!("{seen:?}"),
        );
    }
    let control = target
        .tokens
        .with(json!({ "sub": "auth0|a\r\nX-Auth-Permissions: admin" }));
    target
        .attack(
            &mut tally,
            "a sub with CR LF cannot inject a header: the token is refused",
            &request("GET", "/api/other", Some(&control), &[]),
            &[401],
            &[],
        )
        .await;

    // `--trusted-proxy` ranges that do not hold the peer change nothing: still the edge.
    let elsewhere = TrustedProxies::parse(["10.0.0.0/8", "::1"]).unwrap();
    let behind_others = target_behind(elsewhere).await;
    let seen = behind_others
        .attack(
            &mut tally,
            "forged forwarding headers from a peer that is not a trusted proxy",
            &request("GET", "/api/public", None, &forged_forwarding),
            &[200],
            &["GET /api/public"],
        )
        .await;
    tally.case(
        "a peer outside --trusted-proxy is described alone, its chain dropped",
        seen.first().is_some_and(|seen| {
            values(seen, "x-forwarded-for") == ["127.0.0.1"]
                && values(seen, "x-real-ip") == ["127.0.0.1"]
                && values(seen, "x-forwarded-proto") == ["http"]
                && !seen.headers.contains_key("x-forwarded-prefix")
                && !seen.headers.contains_key("cf-connecting-ip")
        }),
        format_args!("{seen:?}"),
    );

    // A trusted proxy in front: its chain is kept and continued, but the client's own
    // leftmost entry never becomes X-Real-IP, nor does any address claim the proxy in
    // front passed on.
    let loopback = TrustedProxies::parse(["127.0.0.0/8"]).unwrap();
    let behind_loopback = target_behind(loopback).await;
    let seen = behind_loopback
        .attack(
            &mut tally,
            "a trusted proxy's chain with a client-forged first entry",
            &request(
                "GET",
                "/api/public",
                None,
                &[
                    "X-Forwarded-For: 6.6.6.6, 203.0.113.5",
                    "X-Forwarded-Proto: https",
                    "X-Real-IP: 6.6.6.6",
                    "CF-Connecting-IP: 6.6.6.6",
                    "True-Client-IP: 6.6.6.6",
                ],
            ),
            &[200],
            &["GET /api/public"],
        )
        .await;
    for (name, expected) in [
        ("x-forwarded-for", vec!["6.6.6.6, 203.0.113.5, 127.0.0.1"]),
        ("x-real-ip", vec!["203.0.113.5"]),
        ("x-forwarded-proto", vec!["https"]),
        ("cf-connecting-ip", vec![]),
        ("true-client-ip", vec![]),
        ("forwarded", vec![]),
    ] {
        tally.case(
            format_args!("behind a trusted proxy, {name} is {expected:?}"),
            seen.first()
                .is_some_and(|seen| values(seen, name) == expected),
            format_args!("{:?}", seen.first().map(|seen| values(seen, name))),
        );
    }
    tally.finish();
}

/// Tokens that must not open anything: missing, malformed, expired, for another audience
/// or issuer, unsigned, signed by another key, or delivered somewhere other than the
/// `Authorization` header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens() {
    let target = target().await;
    let mut tally = Tally::new("proxy/tokens");
    let tokens = &target.tokens;
    let reader = tokens.reader();
    let (other_key, _) = SigningKey::generate(Algorithm::Rs256).unwrap();
    let foreign = other_key
        .sign_jwt(
            "at+jwt",
            &json!({
                "iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|alice",
                "iat": now(), "exp": now() + 600, "scope": "read:messages",
            }),
        )
        .unwrap();
    let unsigned = |alg: &str| {
        let header = b64(json!({ "alg": alg, "typ": "JWT" }).to_string().as_bytes());
        let payload = b64(json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|root",
            "exp": now() + 600, "permissions": ["admin"],
        })
        .to_string()
        .as_bytes());
        format!("{header}.{payload}.")
    };
    let tampered = {
        let mut parts: Vec<String> = reader.split('.').map(str::to_owned).collect();
        parts[1] = b64(json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|alice",
            "exp": now() + 600, "scope": "read:messages", "permissions": ["admin"],
        })
        .to_string()
        .as_bytes());
        parts.join(".")
    };
    let hs256 = {
        use aws_lc_rs::hmac;
        let secret = serde_json::to_vec(tokens.key.public_jwk()).unwrap();
        let header = b64(
            json!({ "alg": "HS256", "typ": "JWT", "kid": tokens.key.kid() })
                .to_string()
                .as_bytes(),
        );
        let payload = b64(json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|root",
            "exp": now() + 600, "permissions": ["admin"],
        })
        .to_string()
        .as_bytes());
        let signing_input = format!("{header}.{payload}");
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let tag = hmac::sign(&key, signing_input.as_bytes());
        format!("{signing_input}.{}", b64(tag.as_ref()))
    };

    let bearer = |token: &str| vec![format!("Authorization: Bearer {token}")];
    let with = |claims: Value| bearer(&tokens.with(claims));
    // The guard's answers: 401 with a bare challenge without a bearer token, 400 for a
    // malformed Authorization header, 401 invalid_token for any token that fails.
    let refused: Vec<(&str, Vec<String>, u16)> = vec![
        ("no token", vec![], 401),
        (
            "an empty bearer",
            vec!["Authorization: Bearer ".into()],
            400,
        ),
        ("a bearer with a space", bearer("a b"), 400),
        ("a non-JWT", bearer("not-a-jwt"), 401),
        (
            "Basic credentials",
            vec!["Authorization: Basic YWRtaW46YWRtaW4=".into()],
            401,
        ),
        (
            "two Authorization headers",
            [bearer(&reader), bearer(&reader)].concat(),
            400,
        ),
        (
            "the token without the Bearer scheme",
            vec![format!("Authorization: {reader}")],
            401,
        ),
        (
            "the token in a cookie",
            vec![format!("Cookie: access_token={reader}")],
            401,
        ),
        (
            "an expired token",
            with(json!({ "exp": now() - 3600, "scope": "read:messages" })),
            401,
        ),
        (
            "a token valid from next hour",
            with(json!({ "nbf": now() + 3600, "scope": "read:messages" })),
            401,
        ),
        (
            "a token for another audience",
            with(json!({ "aud": "https://other.test/api", "scope": "read:messages" })),
            401,
        ),
        (
            "a token without an audience",
            with(json!({ "aud": null, "scope": "read:messages" })),
            401,
        ),
        (
            "a token from another issuer",
            with(json!({ "iss": "https://evil.test/", "scope": "read:messages" })),
            401,
        ),
        ("a token signed by another key", bearer(&foreign), 401),
        ("alg none", bearer(&unsigned("none")), 401),
        ("alg None", bearer(&unsigned("None")), 401),
        ("alg NONE", bearer(&unsigned("NONE")), 401),
        ("tampered claims", bearer(&tampered), 401),
        ("HS256 keyed with the public key", bearer(&hs256), 401),
    ];
    for (why, headers, expected) in refused {
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let bytes = request("GET", "/api/messages", None, &headers);
        let case = format!("{why}: {expected}, the upstream never reached");
        target
            .attack(&mut tally, &case, &bytes, &[expected], &[])
            .await;
    }
    let bytes = request(
        "GET",
        &format!("/api/messages?access_token={reader}"),
        None,
        &[],
    );
    target
        .attack(
            &mut tally,
            "the token in the query string is not read",
            &bytes,
            &[401],
            &[],
        )
        .await;
    let bytes = request("GET", "/api/admin", Some(&reader), &[]);
    target
        .attack(
            &mut tally,
            "a valid token without the permission: 403",
            &bytes,
            &[403],
            &[],
        )
        .await;
    let bytes = request("GET", "/api/messages", Some(&reader), &[]);
    target
        .attack(
            &mut tally,
            "a valid token with the scope passes",
            &bytes,
            &[200],
            &["GET /api/messages"],
        )
        .await;
    let admin = tokens.admin();
    let bytes = request(
        "POST",
        "/api/admin/users",
        Some(&admin),
        &["Content-Length: 0"],
    );
    target
        .attack(
            &mut tally,
            "a token with every requirement passes",
            &bytes,
            &[200],
            &["POST /api/admin/users"],
        )
        .await;
    tally.finish();
}
