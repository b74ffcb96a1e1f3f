//! A bounded, seeded random-request fuzzer against every route of the real server (in
//! process), and malformed HTTP over raw TCP.
//!
//! Each request is built from its route's real parameter names with hostile values (empty,
//! huge, NUL, invalid UTF-8 percent-encodings, Unicode, numbers and arrays where strings go,
//! duplicates, CRLF, markup), in query strings, form and JSON bodies under right and wrong
//! content types, with garbage and oversize bodies, random cookies and `Authorization`
//! headers. What must hold for every answer: no 5xx; no 2xx from the Management API
//! without a valid token (and no change in what it manages); every error in its endpoint's
//! shape (OAuth JSON for `/oauth/*`, `/userinfo` and `/dbconnections/*`, Auth0's
//! `{statusCode, error, message}` for `/api/v2`, an HTML page elsewhere); no HTML page that
//! repeats a hostile value unescaped; no header injected. The server answers `/healthz` at
//! the end.
//!
//! The generator is a xorshift64* seeded with `DEFAULT_SEED` (printed; override with
//! `TESSERA_FUZZ_SEED`, and the count with `TESSERA_FUZZ_REQUESTS`). Requests are generated
//! in order from the seed and sent by a few concurrent workers, so a failing case names its
//! index and reproduces with the same seed.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tessera_core::{AppType, ClientGrant, Role, ids};
use tessera_testkit::smtp::SmtpReceiver;
use tessera_testkit::{
    API, CALLBACK, PASSWORD, SPA_ORIGIN, TestServer, browser, client, hidden_field, location, now,
    spawn_with_mail,
};

use crate::harness::Tally;
use generate::{Baseline, INJECTED, JsonBaseline, Planned, Pools, ROUTES, Rng, Shape, plan};

mod generate;
mod raw_tcp;

const DEFAULT_SEED: u64 = 0x7E55_E2A5_F022_0010;
/// Requests against every route without a Management API token, then requests against
/// the Management API with one (default counts; `TESSERA_FUZZ_REQUESTS` scales both).
const DEFAULT_REQUESTS: usize = 4000;
const WORKERS: usize = 6;
/// Hostile values carry this marker; an HTML page must never contain it right after a
/// character that would have to be escaped.
const MARKERS: [&str; 3] = ["<tz9", "\"tz9", "'tz9"];
/// A value that is valid where the server echoes it (state, login_hint) and carries
/// every marker.
const MARKED: &str = "x\"tz9'tz9<tz9>@example.com";

/// What came back.
struct Answer {
    status: u16,
    content_type: String,
    injected_header: bool,
    body: Vec<u8>,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(300).collect();
        write!(f, "{} ({:?}) {:?}", self.status, self.content_type, body)
    }
}

fn seed() -> u64 {
    std::env::var("TESSERA_FUZZ_SEED")
        .ok()
        .and_then(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        })
        .unwrap_or(DEFAULT_SEED)
}

fn request_count() -> usize {
    std::env::var("TESSERA_FUZZ_REQUESTS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_REQUESTS)
}

/// Why a request has no answer to judge.
enum Failure {
    /// The server closed the connection while an oversize body was still being sent:
    /// it refused to read on, which is a refusal (TCP then resets the connection, and
    /// the client may see that before the 413).
    Closed,
    /// Anything else: the request could not be made, or the server did not answer.
    NoAnswer(String),
}

/// Whether the connection broke under the request (a write into a closed connection).
fn closed_under_us(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            )
        {
            return true;
        }
        source = error.source();
    }
    false
}

async fn send(http: &reqwest::Client, base: &str, planned: &Planned) -> Result<Answer, Failure> {
    let mut url = format!("{base}{}", planned.path);
    if let Some(query) = &planned.query {
        url.push('?');
        url.push_str(query);
    }
    let unsendable = |what: String| Failure::NoAnswer(format!("cannot send it: {what}"));
    let method = reqwest::Method::from_bytes(planned.method.as_bytes())
        .map_err(|e| unsendable(e.to_string()))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &planned.headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| unsendable(e.to_string()))?;
        let value =
            HeaderValue::from_bytes(value).map_err(|e| unsendable(format!("{name}: {e}")))?;
        headers.append(name, value);
    }
    let mut request = http.request(method, &url).headers(headers);
    if let Some(body) = &planned.body {
        request = request.body(body.clone());
    }
    let response = request.send().await.map_err(|error| {
        if planned.body_kind == "oversize" && closed_under_us(&error) {
            Failure::Closed
        } else {
            Failure::NoAnswer(format!("{error:?}"))
        }
    })?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let injected_header = response.headers().contains_key(INJECTED);
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::NoAnswer(format!("body cut short: {e:?}")))?
        .to_vec();
    Ok(Answer {
        status,
        content_type,
        injected_header,
        body,
    })
}

/// Whether the answer is what the endpoint may give to this request; `Err` says why not.
fn judge(planned: &Planned, answer: &Answer) -> Result<(), &'static str> {
    if answer.status >= 500 {
        return Err("a server error");
    }
    if planned.unauthenticated && answer.status < 300 {
        return Err("the Management API answered without a valid token");
    }
    if answer.injected_header {
        return Err("a header was injected");
    }
    let html = answer.content_type.starts_with("text/html");
    if html && MARKERS.iter().any(|marker| contains(&answer.body, marker)) {
        return Err("the page repeats hostile input unescaped");
    }
    if answer.status < 400 || planned.method == "HEAD" {
        // A HEAD answer has no body to judge.
        return Ok(());
    }
    let json = || serde_json::from_slice::<Value>(&answer.body).ok();
    let shaped = match planned.shape {
        Shape::OAuth => json().is_some_and(|body| {
            body["error"].as_str().is_some_and(|e| !e.is_empty())
                && body["error_description"].is_string()
        }),
        Shape::Management => json().is_some_and(|body| {
            body["statusCode"] == answer.status
                && body["error"].is_string()
                && body["message"].is_string()
        }),
        Shape::Signup => json().is_some_and(|body| {
            body["statusCode"] == answer.status
                && body["name"].is_string()
                && body["code"].is_string()
                && !body["description"].is_null()
        }),
        Shape::Page => html && contains(&answer.body, "<html"),
    };
    if shaped {
        Ok(())
    } else {
        Err(match planned.shape {
            Shape::OAuth => "the error is not OAuth's {error, error_description} JSON",
            Shape::Management => "the error is not Auth0's {statusCode, error, message} JSON",
            Shape::Signup => "the error is not Auth0's {name, code, description, statusCode} JSON",
            Shape::Page => "the error is not an HTML page",
        })
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Sends every planned request, `WORKERS` at a time; answers come back in plan order.
async fn run_all(base: &str, planned: Arc<Vec<Planned>>) -> Vec<Result<Answer, Failure>> {
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (base, planned) = (base.to_string(), planned.clone());
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                // One connection per request: a refused oversize body closes its connection,
                // which a pooled client could pick again and fail on.
                .pool_max_idle_per_host(0)
                .build()
                .expect("an HTTP client");
            let mut answers = Vec::new();
            for planned in planned.iter().skip(worker).step_by(WORKERS) {
                answers.push((planned.index, send(&http, &base, planned).await));
            }
            answers
        }));
    }
    let mut all: Vec<(usize, Result<Answer, Failure>)> = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("a fuzzing worker finishes"));
    }
    all.sort_by_key(|(index, _)| *index);
    all.into_iter().map(|(_, answer)| answer).collect()
}

fn record(tally: &mut Tally, planned: &[Planned], answers: Vec<Result<Answer, Failure>>) {
    for (planned, answer) in planned.iter().zip(answers) {
        match answer {
            Ok(answer) => {
                let verdict = judge(planned, &answer);
                tally.case(
                    planned,
                    verdict.is_ok(),
                    format_args!("{}: {answer}", verdict.err().unwrap_or("")),
                );
            }
            Err(Failure::Closed) => tally.case(planned, true, ""),
            Err(Failure::NoAnswer(error)) => tally.case(planned, false, error),
        }
    }
}

/// The server with the quickstart tenant, mail going to a receiver, throttles loose enough
/// that thousands of requests from one address reach the handlers.
async fn fuzz_server() -> (TestServer, SmtpReceiver) {
    spawn_with_mail(|config| {
        config.login_attempts_per_minute = 1_000_000;
        config.max_login_failures = 1_000_000;
    })
    .await
}

/// Tokens, codes, transactions and objects of the tenant, to mix into the requests.
async fn pools(server: &TestServer) -> Pools {
    let store = &server.store;
    let management_audience = server.management_audience();
    let all_scopes: Vec<&str> = tessera_core::system::MANAGEMENT_SCOPES
        .iter()
        .map(|(scope, _)| *scope)
        .collect();
    let management_token = server.management_token(&all_scopes).await;
    let (_, m2m) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", &server.m2m_secret),
            ("audience", API),
        ])
        .await;
    let api_token = m2m["access_token"].as_str().unwrap().to_string();

    // A signed-in browser: its cookies, tokens and a few fresh codes.
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let signed_in = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let scope = "openid profile email offline_access read:messages";
    let tokens = server.code_flow(&signed_in, scope, Some(API)).await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(
            server
                .authorization_code(&signed_in, scope, Some(API))
                .await,
        );
    }
    let base_url: url::Url = server.base.parse().unwrap();
    let session_cookie = reqwest::cookie::CookieStore::cookies(&*jar, &base_url)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();

    // Login transactions of one browser, its CSRF token and cookie, as the pages see them.
    let fresh = browser();
    let challenge = tessera_testkit::pkce().challenge;
    let mut transactions = Vec::new();
    for at in 0..8 {
        // Half of them with a hint the login page shows: escaped, or a finding.
        let hint = if at % 2 == 0 { "" } else { MARKED };
        let response = fresh
            .get(server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid profile"),
                ("state", MARKED),
                ("login_hint", hint),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ]))
            .send()
            .await
            .unwrap();
        transactions.push(tessera_testkit::params_of(&location(&response))["state"].clone());
    }
    let page = fresh
        .get(server.url(&format!("/u/login?state={}", transactions[0])))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf");
    let csrf_cookie = format!("tessera_csrf={csrf}");

    // Objects the authenticated Management API requests may change or delete.
    let victim_secret = ids::client_secret();
    let victim = client("Fuzz victim", AppType::RegularWeb, Some(&victim_secret));
    store.create_client(&victim).await.unwrap();
    let victim_grant = grant(&victim.client_id, API, vec!["read:messages".into()]);
    store.create_client_grant(&victim_grant).await.unwrap();
    let victim_user = tessera_testkit::create_user(store, "victim@example.com", PASSWORD).await;
    let victim_api = tessera_testkit::api("https://fuzz/victim", &["read:things"]);
    store.create_resource_server(&victim_api).await.unwrap();
    let victim_role = Role {
        id: format!("rol_{}", ids::alphanumeric(16)),
        name: "Fuzz victim".into(),
        description: "A role the fuzzer may change".into(),
        created_at: now(),
        updated_at: now(),
    };
    store.create_role(&victim_role).await.unwrap();

    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let access_token = text(&tokens["access_token"]);
    let id_token = text(&tokens["id_token"]);
    let refresh_token = text(&tokens["refresh_token"]);
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    };

    let spa = server.spa_client_id.clone();
    let mut baselines = Vec::new();
    let mut add = |route: &'static str, params: &[(&'static str, &str)], cookie: Option<&str>| {
        baselines.push(Baseline {
            route,
            params: params.iter().map(|(n, v)| (*n, v.to_string())).collect(),
            cookie: cookie.map(str::to_string),
        });
    };
    let authorize = [
        ("client_id", spa.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid profile offline_access"),
        ("audience", API),
        ("state", MARKED),
        ("nonce", "n0nce"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    add("/authorize", &authorize, None);
    add("/authorize", &authorize, Some(&session_cookie));
    let implicit = [
        ("client_id", spa.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "token id_token"),
        ("response_mode", "form_post"),
        ("scope", "openid"),
        ("nonce", "n0nce"),
        ("state", MARKED),
    ];
    add("/authorize", &implicit, Some(&session_cookie));
    let silent = [
        ("client_id", spa.as_str()),
        ("redirect_uri", SPA_ORIGIN),
        ("response_type", "code"),
        ("response_mode", "web_message"),
        ("prompt", "none"),
        ("scope", "openid"),
        ("state", MARKED),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    add("/authorize", &silent, Some(&session_cookie));
    for transaction in &transactions {
        let state = transaction.as_str();
        let login = [
            ("state", state),
            ("csrf", csrf.as_str()),
            ("username", server.user_email.as_str()),
            ("password", PASSWORD),
        ];
        add("/u/login", &login, Some(&csrf_cookie));
        let signup = [
            ("state", state),
            ("csrf", csrf.as_str()),
            ("email", "fuzz@example.com"),
            ("password", PASSWORD),
        ];
        add("/u/signup", &signup, Some(&csrf_cookie));
        let reset = [
            ("state", state),
            ("csrf", csrf.as_str()),
            ("email", server.user_email.as_str()),
        ];
        add("/u/reset-password", &reset, Some(&csrf_cookie));
        let code = [
            ("state", state),
            ("csrf", csrf.as_str()),
            ("email", server.user_email.as_str()),
            ("code", "12345678"),
            ("password", PASSWORD),
        ];
        add("/u/reset-password/code", &code, Some(&csrf_cookie));
        let consent = [
            ("state", state),
            ("csrf", csrf.as_str()),
            ("action", "accept"),
        ];
        add("/u/consent", &consent, Some(&csrf_cookie));
        // The browser that started the transaction (its CSRF cookie binds it).
        add("/authorize/resume", &[("state", state)], Some(&csrf_cookie));
    }
    add(
        "/dbconnections/change_password",
        &[
            ("client_id", spa.as_str()),
            ("connection", "Username-Password-Authentication"),
            ("email", server.user_email.as_str()),
        ],
        None,
    );
    add(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", server.m2m_client_id.as_str()),
            ("client_secret", server.m2m_secret.as_str()),
            ("audience", API),
            ("scope", "read:messages"),
        ],
        None,
    );
    for (code, verifier) in &codes {
        add(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", spa.as_str()),
                ("code", code.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier.as_str()),
            ],
            None,
        );
    }
    let refresh = [
        ("grant_type", "refresh_token"),
        ("client_id", spa.as_str()),
        ("refresh_token", refresh_token.as_str()),
    ];
    add("/oauth/token", &refresh, None);
    let revoke = [
        ("client_id", spa.as_str()),
        ("token", refresh_token.as_str()),
    ];
    add("/oauth/revoke", &revoke, None);
    add(
        "/userinfo",
        &[("access_token", access_token.as_str())],
        None,
    );
    let logout = [("client_id", spa.as_str()), ("returnTo", SPA_ORIGIN)];
    add("/v2/logout", &logout, Some(&session_cookie));
    let oidc_logout = [
        ("id_token_hint", id_token.as_str()),
        ("post_logout_redirect_uri", SPA_ORIGIN),
        ("state", MARKED),
    ];
    add("/oidc/logout", &oidc_logout, Some(&session_cookie));

    let permissions = json!({"permissions": [
        {"resource_server_identifier": API, "permission_name": "read:messages"}
    ]});
    let json_baselines = [
        (
            "/api/v2/tenants/settings",
            "PATCH",
            json!({"friendly_name": "Fuzz", "support_email": "help@fuzz.example",
                "session_lifetime": 168, "enabled_locales": ["en"], "flags": {"a": true},
                "default_audience": API}),
        ),
        (
            "/dbconnections/signup",
            "POST",
            json!({"client_id": spa, "connection": "Username-Password-Authentication",
                "email": "fuzz-signup@example.com", "password": PASSWORD, "name": "Fuzz",
                "user_metadata": {"plan": "free"}}),
        ),
        (
            "/api/v2/clients",
            "POST",
            json!({"name": "Fuzz app", "app_type": "spa", "callbacks": [CALLBACK],
                "web_origins": [SPA_ORIGIN], "grant_types": ["authorization_code"]}),
        ),
        (
            "/api/v2/clients/{id}",
            "PATCH",
            json!({"name": "Renamed", "callbacks": [CALLBACK], "is_first_party": true,
                "refresh_token": {"rotation_type": "rotating", "expiration_type": "expiring",
                "token_lifetime": 3600}}),
        ),
        (
            "/api/v2/resource-servers",
            "POST",
            json!({"name": "Fuzz API", "identifier": "https://fuzz/api",
                "scopes": [{"value": "read:x", "description": "Read x"}],
                "token_lifetime": 3600, "signing_alg": "RS256"}),
        ),
        (
            "/api/v2/resource-servers/{id}",
            "PATCH",
            json!({"name": "Renamed API", "token_lifetime": 7200, "allow_offline_access": true}),
        ),
        (
            "/api/v2/actions/actions",
            "POST",
            json!({"name": "Fuzz action", "supported_triggers": [{"id": "post-login", "version": "v3"}],
                "code": "exports.onExecutePostLogin = async () => {};", "runtime": "node22",
                "dependencies": [], "secrets": [{"name": "K", "value": "fuzz-secret"}]}),
        ),
        (
            "/api/v2/actions/actions/{id}",
            "PATCH",
            json!({"code": "exports.onExecutePostLogin = async () => {};", "secrets": [{"name": "K"}]}),
        ),
        (
            "/api/v2/actions/actions/{id}/test",
            "POST",
            json!({"payload": {"user": {"user_id": "auth0|x"}}}),
        ),
        (
            "/api/v2/actions/triggers/{trigger_id}/bindings",
            "PATCH",
            json!({"bindings": [{"ref": {"type": "action_name", "value": "Fuzz action"}, "display_name": "Fuzz"}]}),
        ),
        (
            "/api/v2/rules",
            "POST",
            json!({"name": "Fuzz rule", "script": "function (user, context, callback) { callback(null, user, context); }", "order": 3, "enabled": true}),
        ),
        (
            "/api/v2/rules/{id}",
            "PATCH",
            json!({"enabled": false, "order": 4}),
        ),
        (
            "/api/v2/rules-configs/{key}",
            "PUT",
            json!({"value": "fuzz-config"}),
        ),
        (
            "/api/v2/client-grants",
            "POST",
            json!({"client_id": victim.client_id, "audience": victim_api.identifier,
                "scope": ["read:things"]}),
        ),
        (
            "/api/v2/client-grants/{id}",
            "PATCH",
            json!({"scope": ["read:messages"]}),
        ),
        (
            "/api/v2/users",
            "POST",
            json!({"connection": "Username-Password-Authentication",
                "email": "fuzz-user@example.com", "password": PASSWORD,
                "user_metadata": {"a": 1}}),
        ),
        (
            "/api/v2/users/{id}",
            "PATCH",
            json!({"name": "Renamed", "blocked": false, "app_metadata": {"plan": "x"}}),
        ),
        (
            "/api/v2/roles",
            "POST",
            json!({"name": "Fuzz role", "description": "d"}),
        ),
        ("/api/v2/roles/{id}", "PATCH", json!({"description": "d2"})),
        (
            "/api/v2/roles/{id}/permissions",
            "POST",
            permissions.clone(),
        ),
        (
            "/api/v2/roles/{id}/permissions",
            "DELETE",
            permissions.clone(),
        ),
        (
            "/api/v2/users/{id}/permissions",
            "POST",
            permissions.clone(),
        ),
        ("/api/v2/users/{id}/permissions", "DELETE", permissions),
        (
            "/api/v2/roles/{id}/users",
            "POST",
            json!({"users": [victim_user]}),
        ),
        (
            "/api/v2/users/{id}/roles",
            "POST",
            json!({"roles": [victim_role.id]}),
        ),
        (
            "/api/v2/users/{id}/roles",
            "DELETE",
            json!({"roles": [victim_role.id]}),
        ),
    ]
    .into_iter()
    .map(|(route, method, body)| JsonBaseline {
        route,
        method,
        body,
    })
    .collect();

    let (code, verifier) = codes[0].clone();
    Pools {
        real: vec![
            spa.clone(),
            server.m2m_client_id.clone(),
            server.m2m_secret.clone(),
            victim.client_id.clone(),
            victim_secret.clone(),
            CALLBACK.to_string(),
            SPA_ORIGIN.to_string(),
            format!("{SPA_ORIGIN}/logged-out"),
            API.to_string(),
            management_audience,
            server.user_email.clone(),
            server.user_id.clone(),
            victim_user.clone(),
            code,
            verifier,
            challenge,
            transactions[0].clone(),
            csrf.clone(),
            access_token.clone(),
            id_token.clone(),
            refresh_token.clone(),
            api_token.clone(),
        ],
        ids: vec![
            victim.client_id.clone(),
            victim_user,
            victim_api.id.clone(),
            victim_api.identifier.clone(),
            victim_grant.id.clone(),
            victim_role.id.clone(),
            "auth0|nobody".into(),
            "rol_0000000000000000".into(),
            "cgr_0000000000000000".into(),
            "0".into(),
            "<tz9>".into(),
            "a\u{0}b".into(),
            "x".repeat(300),
            "é".into(),
        ],
        authorizations: vec![
            format!("Bearer {access_token}"),
            format!("Bearer {id_token}"),
            format!("Bearer {api_token}"),
            format!("Bearer {refresh_token}"),
            format!("bearer    {access_token}"),
            format!("Bearer {access_token}x"),
            format!("Bearer {}", "A".repeat(9000)),
            format!("Basic {}", basic(&server.m2m_client_id, &server.m2m_secret)),
            format!("Basic {}", basic(&victim.client_id, &victim_secret)),
            format!("Basic {}", basic(&victim.client_id, "wrong")),
            "Basic !!!".into(),
            "Basic".into(),
            "Bearer".into(),
            "Bearer a b".into(),
            "Bearer a.b.c".into(),
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".into(),
            "Negotiate abc".into(),
        ],
        management_token,
        cookies: vec![
            session_cookie,
            csrf_cookie.clone(),
            format!("{csrf_cookie}; tessera_csrf=other"),
            "tessera_session=<tz9>".into(),
            format!("tessera_session={}", "s".repeat(5000)),
            "=; ;;; =x".into(),
        ],
        baselines,
        json_baselines,
    }
}

fn grant(client_id: &str, audience: &str, scope: Vec<String>) -> ClientGrant {
    ClientGrant {
        id: format!("cgr_{}", ids::alphanumeric(16)),
        client_id: client_id.into(),
        audience: audience.into(),
        scope,
        created_at: now(),
    }
}

/// What the Management API manages, one object a line: compared before and after the
/// requests without a token. (Users that sign in change; the victim user does not.)
async fn managed_state(server: &TestServer, user: &str) -> Vec<String> {
    let store = &server.store;
    let mut lines: Vec<String> = Vec::new();
    lines.extend(
        store
            .list_clients(
                &tessera_store::ClientFilter::default(),
                tessera_store::Slice::first(1000),
            )
            .await
            .unwrap()
            .items
            .iter()
            .map(|c| format!("{c:?}")),
    );
    let apis = store
        .list_resource_servers(None, tessera_store::Slice::first(1000))
        .await
        .unwrap()
        .items;
    lines.extend(apis.iter().map(|a| format!("{a:?}")));
    let grants = store
        .list_client_grants(
            tessera_store::ClientGrantFilter::default(),
            tessera_store::Slice::first(1000),
        )
        .await
        .unwrap()
        .items;
    lines.extend(grants.iter().map(|g| format!("{g:?}")));
    lines.extend(
        store
            .list_roles(None, tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| format!("{r:?}")),
    );
    lines.push(format!("{:?}", store.find_user(user).await.unwrap()));
    lines
}

/// The lines only one of two states has.
fn difference(before: &[String], after: &[String]) -> String {
    let gone = before.iter().filter(|line| !after.contains(line));
    let new = after.iter().filter(|line| !before.contains(line));
    let mut text: Vec<String> = gone.map(|line| format!("- {line}")).collect();
    text.extend(new.map(|line| format!("+ {line}")));
    text.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_to_every_route() {
    let seed = seed();
    let count = request_count();
    println!("fuzz: seed {seed:#x}, {count} requests (TESSERA_FUZZ_SEED / TESSERA_FUZZ_REQUESTS)");
    let mut tally = Tally::new("fuzz/requests");
    let (server, _smtp) = fuzz_server().await;
    let pools = pools(&server).await;
    let victim_user = pools.ids[1].clone();
    let mut rng = Rng::new(seed);

    // Every route, the Management API without a valid token: it must change nothing.
    let before = managed_state(&server, &victim_user).await;
    let unauthenticated = count * 2 / 3;
    let first: Vec<Planned> = (0..unauthenticated)
        .map(|index| plan(&mut rng, &pools, index, false))
        .collect();
    let first = Arc::new(first);
    let answers = run_all(&server.base, first.clone()).await;
    record(&mut tally, &first, answers);
    let after = managed_state(&server, &victim_user).await;
    tally.case(
        format_args!(
            "{unauthenticated} requests without a Management API token change nothing it manages"
        ),
        before == after,
        difference(&before, &after),
    );

    // The Management API with a valid token, mostly.
    let second: Vec<Planned> = (unauthenticated..count)
        .map(|index| plan(&mut rng, &pools, index, true))
        .collect();
    let second = Arc::new(second);
    let answers = run_all(&server.base, second.clone()).await;
    record(&mut tally, &second, answers);

    let health = reqwest::get(server.url("/healthz")).await;
    let status = health.map(|r| r.status().as_u16()).unwrap_or(0);
    tally.status(
        "the server still answers /healthz after the fuzzing",
        status,
        200,
    );
    tally.finish();
}

#[test]
fn every_route_is_fuzzed() {
    let mut tally = Tally::new("fuzz/routes");
    let routes: BTreeSet<String> = tessera_server::route_templates().collect();
    let fuzzed: BTreeSet<String> = ROUTES.iter().map(|r| r.path.to_string()).collect();
    for route in &routes {
        tally.case(
            format_args!("the fuzzer sends requests to {route}"),
            fuzzed.contains(route),
            "missing from ROUTES",
        );
    }
    tally.case(
        "the fuzzer's routes all exist",
        fuzzed.is_subset(&routes),
        format_args!("{:?}", fuzzed.difference(&routes).collect::<Vec<_>>()),
    );
    tally.finish();
}
