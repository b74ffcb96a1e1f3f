//! XSS in the hosted pages: every HTML page the server renders, with classic payloads in
//! every parameter, form field and administrator-supplied name that reaches it. A case
//! holds when the page, read by a tokenizer as a browser would (`html.rs`), carries no
//! markup its template does not (no new element, event handler, attribute, script or
//! active URL), shows the payload as text where it shows the value, and has the strict
//! headers: a CSP with `script-src 'self'` only, `frame-ancestors 'none'` (the web_message
//! page: its application's origin only), `nosniff`, `text/html; charset=utf-8`.
//! Markup in stored email addresses is another category's (`management`).

use reqwest::header::HeaderMap;
use serde_json::Value;
use tempfile::TempDir;
use tessera_core::{AppType, ResourceServer, Scope};
use tessera_server::MailConfig;
use tessera_testkit::{
    CALLBACK, SPA_ORIGIN, TestServer, api, browser, client, hidden_field, params_of, pkce,
    spawn_with,
};

use crate::harness::Tally;
use crate::html::{Document, markup_problems};

/// Classic payloads. None starts or ends with whitespace: forms trim what they echo.
const PAYLOADS: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg onload=alert(1)>",
    "' onmouseover='alert(1)",
    "\" autofocus onfocus=\"alert(1)",
    "javascript:alert(1)",
    "</textarea><script>alert(1)</script>",
    "</title><script>alert(1)</script>",
    "--><script>alert(1)</script><!--",
    "{{7*7}}${7*7}<%= 7*7 %>",
    "${alert(1)}`${alert(1)}`",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "&#x3C;script&#x3E;alert(1)&#x3C;/script&#x3E;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "a\u{0}<script>alert(1)</script>",
    "x\u{2028}</script><script>alert(1)</script>",
    "＜script＞alert(1)＜/script＞",
];

/// The origin the SPA's callback is on: the only one that may frame web_message pages.
const APP_ORIGIN: &str = SPA_ORIGIN;

/// A server with mail (so the reset pages exist) and throttles out of the way: XSS cases
/// post many forms from one address.
async fn server() -> (TestServer, TempDir) {
    let outbox = tempfile::tempdir().expect("a temporary outbox");
    let dir = outbox.path().to_path_buf();
    let server = spawn_with(move |config| {
        config.login_attempts_per_minute = 1_000_000;
        config.mail = Some(MailConfig::outbox(dir, "Tessera <no-reply@example.com>").unwrap());
    })
    .await;
    (server, outbox)
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

/// Where a request ended: a page of ours, or a redirect away from the server.
enum Outcome {
    Page(Page),
    Away(String),
}

async fn read(response: reqwest::Response) -> Outcome {
    if response.status().is_redirection() {
        let to = tessera_testkit::location(&response);
        return Outcome::Away(to);
    }
    Outcome::Page(Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("a page body"),
    })
}

/// Sends `request`, following at most two redirects within the server (to the login page,
/// the consent page).
async fn visit(
    server: &TestServer,
    browser: &reqwest::Client,
    request: reqwest::RequestBuilder,
) -> Outcome {
    let mut outcome = read(request.send().await.expect("the server answers")).await;
    for _ in 0..2 {
        match &outcome {
            Outcome::Away(to) if to.starts_with('/') && !to.starts_with("//") => {
                let response = browser.get(server.url(to)).send().await.expect("answers");
                outcome = read(response).await;
            }
            _ => break,
        }
    }
    outcome
}

/// What a case expects of the page besides the absence of injected markup.
#[derive(Default)]
struct Expect<'a> {
    /// Values the page must show as text (attribute values and text nodes, decoded).
    shown: Vec<&'a str>,
    /// A form action off the server that is legitimate here (the form_post page's).
    form_target: Option<&'a str>,
    /// The field values of a form_post page, by name.
    fields: Vec<(&'a str, &'a str)>,
    /// The state a web_message page must deliver.
    message_state: Option<&'a str>,
}

impl<'a> Expect<'a> {
    fn showing(shown: Vec<&'a str>) -> Self {
        Expect {
            shown,
            ..Expect::default()
        }
    }
}

/// The problems of one page: injected markup, weak headers, a value not shown as text.
fn page_problems(page: &Page, expect: &Expect) -> Vec<String> {
    let document = Document::parse(&page.body);
    let mut problems = markup_problems(&document, expect.form_target);
    let web_message = document
        .all("div")
        .find(|div| div.attribute("id") == Some("authorization-response"));
    problems.extend(header_problems(&page.headers, web_message.is_some()));
    for value in &expect.shown {
        if !document.shows(value) {
            problems.push(format!("{value:?} is not shown as text"));
        }
    }
    if let Some(form) = document
        .all("form")
        .find(|f| f.attribute("id") == Some("form-post"))
    {
        for (name, value) in &expect.fields {
            let field = document
                .input(name)
                .and_then(|input| input.attribute("value"));
            if field != Some(*value) {
                problems.push(format!("form_post field {name} is {field:?}"));
            }
        }
        let fields = ["code", "state", "iss", "error", "error_description"];
        for input in document.all("input") {
            let name = input.attribute("name").unwrap_or("");
            if !fields.contains(&name) || input.attribute("type") != Some("hidden") {
                problems.push(format!("form_post input {:?}", input.attributes));
            }
        }
        if form.attribute("action") != expect.form_target {
            problems.push(format!("form_post action {:?}", form.attribute("action")));
        }
    }
    if let Some(div) = web_message {
        let origin = div.attribute("data-origin");
        let response: Option<Value> = div
            .attribute("data-response")
            .and_then(|json| serde_json::from_str(json).ok());
        if origin != Some(APP_ORIGIN) {
            problems.push(format!("web_message origin {origin:?}"));
        }
        match (&response, expect.message_state) {
            (None, _) => problems.push("web_message response is not JSON".into()),
            (Some(response), Some(state)) if response["state"] != state => {
                problems.push(format!("web_message state {}", response["state"]));
            }
            _ => {}
        }
    }
    problems
}

/// The headers every HTML page needs; `framed_by_app` for the web_message page, which
/// its application's origin (only) may frame.
fn header_problems(headers: &HeaderMap, framed_by_app: bool) -> Vec<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut problems = Vec::new();
    if header("content-type") != Some("text/html; charset=utf-8") {
        problems.push(format!("content-type {:?}", header("content-type")));
    }
    if header("x-content-type-options") != Some("nosniff") {
        problems.push("no nosniff".into());
    }
    if header("referrer-policy") != Some("no-referrer") {
        problems.push(format!("referrer-policy {:?}", header("referrer-policy")));
    }
    if header("cache-control") != Some("no-store") {
        problems.push(format!("cache-control {:?}", header("cache-control")));
    }
    let Some(csp) = header("content-security-policy") else {
        problems.push("no content-security-policy".into());
        return problems;
    };
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix(name).filter(|v| v.starts_with(' ')))
            .map(str::trim)
    };
    let frame_ancestors = if framed_by_app {
        APP_ORIGIN
    } else {
        if header("x-frame-options") != Some("DENY") {
            problems.push(format!("x-frame-options {:?}", header("x-frame-options")));
        }
        "'none'"
    };
    for (name, expected) in [
        ("default-src", "'none'"),
        ("script-src", "'self'"),
        ("base-uri", "'none'"),
        ("frame-ancestors", frame_ancestors),
    ] {
        if directive(name) != Some(expected) {
            problems.push(format!("CSP {name} {:?} in {csp:?}", directive(name)));
        }
    }
    if csp.contains("unsafe-") || csp.contains('*') {
        problems.push(format!("CSP {csp:?}"));
    }
    problems
}

/// A redirect away from the server: to the application's callback only, its parameters
/// encoded (no raw markup characters), the state given back byte for byte.
fn redirect_problems(to: &str, target: &str, state: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !to.starts_with(&format!("{target}?")) && !to.starts_with(&format!("{target}#")) {
        problems.push(format!("redirected to {to:?}"));
    }
    if to.contains(['<', '>', '"', '\'', '`', ' ', '\0']) {
        problems.push(format!("raw markup characters in {to:?}"));
    }
    let params = params_of(to);
    if params.get("state").map(String::as_str) != Some(state) {
        problems.push(format!("state {:?}", params.get("state")));
    }
    problems
}

fn record(tally: &mut Tally, case: String, problems: Vec<String>) {
    tally.case(case, problems.is_empty(), problems.join("; "));
}

/// The SPA's authorization request (code + PKCE) with `changes` applied.
fn authorize_query(server: &TestServer, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let pkce = pkce();
    let mut query: Vec<(String, String)> = [
        ("client_id", server.spa_client_id.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("state", "s"),
        ("nonce", "n"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, value) in changes {
        match query.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => query.push((name.to_string(), value.to_string())),
        }
    }
    query
}

/// Which page a request should end on; a case also fails when it ends elsewhere, so that
/// no case holds by accident on a page the payload never reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Login,
    Signup,
    Consent,
    ResetRequest,
    ResetCode,
    /// The authorization response page of the requested mode (form_post, web_message).
    Response,
    /// A page with a message (an error, "logged out", 404).
    Message,
    /// A redirect to the application.
    Redirect,
}

fn kind_of(document: &Document) -> Kind {
    let web_message = document
        .all("div")
        .any(|div| div.attribute("id") == Some("authorization-response"));
    if web_message {
        return Kind::Response;
    }
    let Some(form) = document.all("form").next() else {
        return Kind::Message;
    };
    match form.attribute("action").unwrap_or("") {
        "/u/login" => Kind::Login,
        "/u/signup" => Kind::Signup,
        "/u/consent" => Kind::Consent,
        "/u/reset-password" => Kind::ResetRequest,
        "/u/reset-password/code" => Kind::ResetCode,
        _ if form.attribute("id") == Some("form-post") => Kind::Response,
        _ => Kind::Message,
    }
}

/// The /authorize parameters attacked: (label, parameter, other changes to the request,
/// the page a browser without a session ends on, the page a signed-in browser ends on).
type AuthorizeParameter = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Kind,
    Kind,
);
const AUTHORIZE_PARAMETERS: &[AuthorizeParameter] = &[
    ("state", "state", &[], Kind::Login, Kind::Response),
    ("login_hint", "login_hint", &[], Kind::Login, Kind::Response),
    (
        "login_hint (sign-up)",
        "login_hint",
        &[("screen_hint", "signup")],
        Kind::Signup,
        Kind::Response,
    ),
    (
        "screen_hint",
        "screen_hint",
        &[],
        Kind::Login,
        Kind::Response,
    ),
    ("ui_locales", "ui_locales", &[], Kind::Login, Kind::Response),
    // A connection the application does not have is refused to the application, its
    // name never on a page.
    (
        "connection",
        "connection",
        &[],
        Kind::Redirect,
        Kind::Response,
    ),
    ("error", "error", &[], Kind::Login, Kind::Response),
    (
        "error_description",
        "error_description",
        &[],
        Kind::Login,
        Kind::Response,
    ),
    ("nonce", "nonce", &[], Kind::Login, Kind::Response),
    ("scope", "scope", &[], Kind::Login, Kind::Response),
    (
        "redirect_uri",
        "redirect_uri",
        &[],
        Kind::Message,
        Kind::Message,
    ),
    ("client_id", "client_id", &[], Kind::Message, Kind::Message),
    ("audience", "audience", &[], Kind::Redirect, Kind::Response),
    (
        "response_mode",
        "response_mode",
        &[],
        Kind::Redirect,
        Kind::Redirect,
    ),
    (
        "response_type",
        "response_type",
        &[],
        Kind::Redirect,
        Kind::Response,
    ),
    ("prompt", "prompt", &[], Kind::Redirect, Kind::Response),
    ("max_age", "max_age", &[], Kind::Redirect, Kind::Response),
    (
        "id_token_hint",
        "id_token_hint",
        &[],
        Kind::Redirect,
        Kind::Response,
    ),
    (
        "code_challenge",
        "code_challenge",
        &[],
        Kind::Redirect,
        Kind::Response,
    ),
];

/// A form posted: (label starting with its path, fields, the page it ends on, expectations).
type FormCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Kind, &'a Expect<'a>);
/// A page reached through /authorize: (label, browser, changes to the request, the page it
/// ends on, expectations).
type PageCase<'a> = (
    &'a str,
    &'a reqwest::Client,
    Vec<(&'a str, &'a str)>,
    Kind,
    Expect<'a>,
);

/// Judges where a request ended against where it should have.
fn judge(outcome: Outcome, kind: Kind, state: &str, expect: &Expect) -> Vec<String> {
    match (outcome, kind) {
        (Outcome::Away(to), Kind::Redirect) => redirect_problems(&to, CALLBACK, state),
        (Outcome::Away(to), _) => vec![format!("redirected to {to:?}, expected the {kind:?} page")],
        (Outcome::Page(page), Kind::Redirect) => {
            vec![format!("a page ({}) instead of a redirect", page.status)]
        }
        (Outcome::Page(page), _) => {
            let mut problems = page_problems(&page, expect);
            let reached = kind_of(&Document::parse(&page.body));
            if reached != kind {
                problems.push(format!(
                    "the {reached:?} page ({}), expected {kind:?}",
                    page.status
                ));
            }
            problems
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_parameters_on_every_page_they_reach() {
    let mut tally = Tally::new("hosted_xss/authorize");
    let (server, _outbox) = server().await;
    let anonymous = browser();
    let signed_in = browser();
    server.authorization_code(&signed_in, "openid", None).await;
    for (label, name, extra, anonymous_page, signed_in_page) in AUTHORIZE_PARAMETERS {
        for payload in PAYLOADS {
            let mut changes = extra.to_vec();
            changes.push((name, payload));
            let state = if *name == "state" { *payload } else { "s" };
            // What a browser without a session sees, by GET and by POST.
            let query = authorize_query(&server, &changes);
            let expect = Expect {
                shown: if *name == "login_hint" {
                    vec![*payload]
                } else {
                    vec![]
                },
                ..Expect::default()
            };
            for method in ["GET", "POST"] {
                let request = match method {
                    "GET" => anonymous.get(server.url("/authorize")).query(&query),
                    _ => anonymous.post(server.url("/authorize")).form(&query),
                };
                let outcome = visit(&server, &anonymous, request).await;
                record(
                    &mut tally,
                    format!("{method} /authorize {label}={payload:?}, no session"),
                    judge(outcome, *anonymous_page, state, &expect),
                );
            }
            // What a signed-in browser gets: the form_post and web_message pages.
            for mode in ["form_post", "web_message"] {
                let mut changes = changes.clone();
                match *name {
                    // The attacked parameter is the mode: one request is enough.
                    "response_mode" if mode == "web_message" => continue,
                    "response_mode" => {}
                    _ => changes.push(("response_mode", mode)),
                }
                let query = authorize_query(&server, &changes);
                let request = signed_in.get(server.url("/authorize")).query(&query);
                let outcome = visit(&server, &signed_in, request).await;
                let expect = Expect {
                    form_target: (mode == "form_post").then_some(CALLBACK),
                    fields: vec![("state", state)],
                    message_state: Some(state),
                    ..Expect::default()
                };
                record(
                    &mut tally,
                    format!("/authorize {label}={payload:?}, signed in, {mode}"),
                    judge(outcome, *signed_in_page, state, &expect),
                );
            }
        }
    }
    tally.finish();
}

/// The hidden fields of the first form on the page at `path` (a GET by `browser`).
async fn form_fields(
    server: &TestServer,
    browser: &reqwest::Client,
    path: &str,
) -> (String, String) {
    let page = browser
        .get(server.url(path))
        .send()
        .await
        .expect("the server answers")
        .text()
        .await
        .expect("a page");
    let state = if page.contains("name=\"state\"") {
        hidden_field(&page, "state")
    } else {
        String::new()
    };
    (state, hidden_field(&page, "csrf"))
}

/// A new login transaction of `browser`: its id and the browser's CSRF token.
async fn login_transaction(server: &TestServer, browser: &reqwest::Client) -> (String, String) {
    let query = authorize_query(server, &[]);
    let response = browser
        .get(server.url("/authorize"))
        .query(&query)
        .send()
        .await
        .expect("the server answers");
    form_fields(server, browser, &tessera_testkit::location(&response)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_fields_echoed_on_errors() {
    let mut tally = Tally::new("hosted_xss/forms");
    let (server, _outbox) = server().await;
    let browser = browser();
    let (transaction, csrf) = login_transaction(&server, &browser).await;
    let post = |path: &str, form: Vec<(&str, &str)>| browser.post(server.url(path)).form(&form);
    for payload in PAYLOADS {
        let shown = Expect::showing(vec![*payload]);
        let nothing = Expect::default();
        let forms: [FormCase; 9] = [
            (
                "/u/login username, no password",
                vec![
                    ("state", &transaction),
                    ("csrf", &csrf),
                    ("username", payload),
                    ("password", ""),
                ],
                Kind::Login,
                &shown,
            ),
            (
                "/u/login username, wrong password",
                vec![
                    ("state", &transaction),
                    ("csrf", &csrf),
                    ("username", payload),
                    ("password", "not the password"),
                ],
                Kind::Login,
                &shown,
            ),
            (
                "/u/signup email, short password",
                vec![
                    ("state", &transaction),
                    ("csrf", &csrf),
                    ("email", payload),
                    ("password", "short"),
                ],
                Kind::Signup,
                &shown,
            ),
            (
                "/u/reset-password email",
                vec![("state", &transaction), ("csrf", &csrf), ("email", payload)],
                Kind::ResetRequest,
                &shown,
            ),
            (
                "/u/reset-password/code email, no code",
                vec![
                    ("state", &transaction),
                    ("csrf", &csrf),
                    ("email", payload),
                    ("code", ""),
                ],
                Kind::ResetCode,
                &shown,
            ),
            (
                "/u/reset-password/code email, wrong code",
                vec![
                    ("state", &transaction),
                    ("csrf", &csrf),
                    ("email", payload),
                    ("code", "12345678"),
                    ("password", "a long enough passphrase"),
                ],
                Kind::ResetCode,
                &shown,
            ),
            (
                "/u/login state",
                vec![
                    ("state", payload),
                    ("csrf", &csrf),
                    ("username", "a@example.com"),
                    ("password", "x"),
                ],
                Kind::Message,
                &nothing,
            ),
            (
                "/u/login csrf",
                vec![
                    ("state", &transaction),
                    ("csrf", payload),
                    ("username", "a@example.com"),
                    ("password", "x"),
                ],
                Kind::Message,
                &nothing,
            ),
            (
                "/u/consent state",
                vec![("state", payload), ("csrf", &csrf), ("action", "accept")],
                Kind::Message,
                &nothing,
            ),
        ];
        for (label, form, kind, expect) in forms {
            let path = label.split(' ').next().expect("a path");
            let outcome = read(post(path, form).send().await.expect("the server answers")).await;
            record(
                &mut tally,
                format!("POST {label}={payload:?}"),
                judge(outcome, kind, "s", expect),
            );
        }
        // The refused sign-up created nobody.
        let created = server
            .store
            .find_user_by_email(payload)
            .await
            .expect("the store reads");
        tally.case(
            format_args!("POST /u/signup email={payload:?} creates no account"),
            created.is_none(),
            format_args!("{created:?}"),
        );
        // Pages reached with the payload as their transaction.
        let query = |name: &str| {
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair(name, payload)
                .finish()
        };
        for path in [
            "/u/login",
            "/u/signup",
            "/u/consent",
            "/u/reset-password",
            "/u/reset-password/code",
            "/authorize/resume",
        ] {
            let url = server.url(&format!("{path}?{}", query("state")));
            let outcome = read(browser.get(url).send().await.expect("answers")).await;
            record(
                &mut tally,
                format!("GET {path}?state={payload:?}"),
                judge(outcome, Kind::Message, "s", &nothing),
            );
        }
        let url = server.url(&format!(
            "/u/login?state={transaction}&{}",
            query("password_changed")
        ));
        let outcome = read(browser.get(url).send().await.expect("answers")).await;
        record(
            &mut tally,
            format!("GET /u/login?password_changed={payload:?}"),
            judge(outcome, Kind::Login, "s", &nothing),
        );
    }
    tally.finish();
}

/// `payload` without whitespace: usable as one scope value.
fn one_word(payload: &str) -> String {
    payload.chars().filter(|c| !c.is_whitespace()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_an_administrator_registered() {
    let mut tally = Tally::new("hosted_xss/registered_names");
    let (server, _outbox) = server().await;
    let signed_in = browser();
    server.authorization_code(&signed_in, "openid", None).await;
    for (index, payload) in PAYLOADS.iter().enumerate() {
        // A third-party application and an API named by the payload, its scopes described
        // by it, one scope named by it.
        let scope_value = one_word(payload);
        let mut messages = api(&format!("https://xss{index}.example/api"), &[]);
        messages.name = payload.to_string();
        messages.scopes = vec![
            Scope {
                value: "read:xss".into(),
                description: payload.to_string(),
            },
            Scope {
                value: scope_value.clone(),
                description: String::new(),
            },
        ];
        server
            .store
            .create_resource_server(&messages)
            .await
            .expect("stored");
        let mut app = client(payload, AppType::Spa, None);
        app.is_first_party = false;
        server.store.create_client(&app).await.expect("stored");
        // An application that may use no API, which the error description quotes.
        let mut restricted_api: ResourceServer = api(payload, &[]);
        restricted_api.name = format!("Restricted {index}");
        server
            .store
            .create_resource_server(&restricted_api)
            .await
            .expect("stored");
        let mut restricted = client(&format!("Restricted {index}"), AppType::Spa, None);
        restricted.allowed_apis = Some(Vec::new());
        server
            .store
            .create_client(&restricted)
            .await
            .expect("stored");

        let name_shown = Expect::showing(vec![*payload]);
        let anonymous = browser();
        let scope = format!("openid read:xss {scope_value}");
        let audience = messages.identifier.as_str();
        let pages: [PageCase; 4] = [
            (
                "login page",
                &anonymous,
                vec![],
                Kind::Login,
                Expect::showing(vec![*payload]),
            ),
            (
                "sign-up page",
                &anonymous,
                vec![("screen_hint", "signup")],
                Kind::Signup,
                Expect::showing(vec![*payload]),
            ),
            (
                "callback mismatch page",
                &anonymous,
                vec![("redirect_uri", "http://localhost:3000/elsewhere")],
                Kind::Message,
                Expect::showing(vec![*payload]),
            ),
            (
                "consent page",
                &signed_in,
                vec![("audience", audience), ("scope", &scope)],
                Kind::Consent,
                Expect::showing(vec![*payload, &scope_value]),
            ),
        ];
        for (label, browser, mut changes, kind, expect) in pages {
            changes.push(("client_id", &app.client_id));
            let query = authorize_query(&server, &changes);
            let outcome = visit(
                &server,
                browser,
                browser.get(server.url("/authorize")).query(&query),
            )
            .await;
            record(
                &mut tally,
                format!("{label}: names and descriptions {payload:?}"),
                judge(outcome, kind, "s", &expect),
            );
        }
        // The reset page of a login transaction names its application.
        let query = authorize_query(&server, &[("client_id", &app.client_id)]);
        let response = anonymous
            .get(server.url("/authorize"))
            .query(&query)
            .send()
            .await
            .expect("answers");
        let transaction = params_of(&tessera_testkit::location(&response))["state"].clone();
        let outcome = read(
            anonymous
                .get(server.url(&format!("/u/reset-password?state={transaction}")))
                .send()
                .await
                .expect("answers"),
        )
        .await;
        record(
            &mut tally,
            format!("reset page: application name {payload:?}"),
            judge(outcome, Kind::ResetRequest, "s", &name_shown),
        );
        // The access_denied description quotes the API identifier, in both page modes.
        let description = format!("Client is not authorized to access \"{payload}\".");
        for mode in ["form_post", "web_message"] {
            let query = authorize_query(
                &server,
                &[
                    ("client_id", &restricted.client_id),
                    ("audience", payload),
                    ("response_mode", mode),
                ],
            );
            let outcome = visit(
                &server,
                &signed_in,
                signed_in.get(server.url("/authorize")).query(&query),
            )
            .await;
            let expect = Expect {
                form_target: Some(CALLBACK),
                fields: vec![
                    ("state", "s"),
                    ("error", "access_denied"),
                    ("error_description", &description),
                ],
                message_state: Some("s"),
                ..Expect::default()
            };
            record(
                &mut tally,
                format!("{mode} page: error_description quoting the API {payload:?}"),
                judge(outcome, Kind::Response, "s", &expect),
            );
        }
    }
    tally.finish();
}

/// Registered callbacks (straight into the store, past the registration rules) that carry
/// markup, or an active scheme.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_with_markup_or_active_schemes() {
    let mut tally = Tally::new("hosted_xss/callbacks");
    let (server, _outbox) = server().await;
    let signed_in = browser();
    server.authorization_code(&signed_in, "openid", None).await;
    let anonymous = browser();
    let markup = "http://localhost:3000/callback?next=\"><script>alert(1)</script>&x='><img src=x onerror=alert(1)>";
    let active = [
        "javascript:alert(document.domain)//",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
    ];
    let mut app = client("Callbacks", AppType::Spa, None);
    app.callbacks = std::iter::once(markup)
        .chain(active)
        .map(str::to_string)
        .collect();
    server.store.create_client(&app).await.expect("stored");
    for callback in std::iter::once(markup).chain(active) {
        let is_markup = callback == markup;
        for (mode, browser) in [
            ("no session", &anonymous),
            ("form_post", &signed_in),
            ("web_message", &signed_in),
            ("query", &signed_in),
            ("fragment", &signed_in),
        ] {
            let mut changes = vec![
                ("client_id", app.client_id.as_str()),
                ("redirect_uri", callback),
            ];
            if mode != "no session" {
                changes.push(("response_mode", mode));
            }
            let query = authorize_query(&server, &changes);
            let outcome = visit(
                &server,
                browser,
                browser.get(server.url("/authorize")).query(&query),
            )
            .await;
            let case = format!("callback {callback:?}, {mode}");
            let problems = match (is_markup, mode) {
                // A redirect's Location is not rendered: only where it leads matters.
                (true, "query" | "fragment") => match outcome {
                    Outcome::Away(to) if to.starts_with(markup) => vec![],
                    Outcome::Away(to) => vec![format!("redirected to {to:?}")],
                    Outcome::Page(page) => vec![format!("a page ({})", page.status)],
                },
                (true, "no session") => judge(outcome, Kind::Login, "s", &Expect::default()),
                (true, _) => {
                    let expect = Expect {
                        form_target: Some(markup),
                        fields: vec![("state", "s")],
                        message_state: Some("s"),
                        ..Expect::default()
                    };
                    judge(outcome, Kind::Response, "s", &expect)
                }
                // An active scheme has no origin: an error page, never a form or redirect to it.
                (false, _) => judge(outcome, Kind::Message, "s", &Expect::default()),
            };
            record(&mut tally, case, problems);
        }
    }
    tally.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_error_and_not_found_pages() {
    let mut tally = Tally::new("hosted_xss/other_pages");
    let (server, _outbox) = server().await;
    let browser = browser();
    let spa = server.spa_client_id.as_str();
    let logged_out = format!("{SPA_ORIGIN}/logged-out");
    for payload in PAYLOADS {
        let nothing = Expect::default();
        // Logout: unknown applications, return URLs that are not allowed, bad hints.
        let logouts: [(&str, Vec<(&str, &str)>); 8] = [
            ("/v2/logout", vec![("client_id", payload)]),
            (
                "/v2/logout",
                vec![("client_id", spa), ("returnTo", payload)],
            ),
            ("/v2/logout", vec![("returnTo", payload)]),
            ("/oidc/logout", vec![("client_id", payload)]),
            (
                "/oidc/logout",
                vec![("client_id", spa), ("post_logout_redirect_uri", payload)],
            ),
            ("/oidc/logout", vec![("post_logout_redirect_uri", payload)]),
            ("/oidc/logout", vec![("id_token_hint", payload)]),
            ("/oidc/logout", vec![("client_id", spa), ("state", payload)]),
        ];
        for (path, params) in logouts {
            let label = params.iter().map(|(k, _)| *k).collect::<Vec<_>>().join("+");
            let mut methods = vec!["GET"];
            if path == "/oidc/logout" {
                methods.push("POST");
            }
            for method in methods {
                let request = match method {
                    "GET" => browser.get(server.url(path)).query(&params),
                    _ => browser.post(server.url(path)).form(&params),
                };
                let outcome = read(request.send().await.expect("answers")).await;
                record(
                    &mut tally,
                    format!("{method} {path} {label} with {payload:?}"),
                    judge(outcome, Kind::Message, "s", &nothing),
                );
            }
        }
        // An allowed return URL: the state goes back encoded, byte for byte.
        let params = [
            ("client_id", spa),
            ("post_logout_redirect_uri", &logged_out),
            ("state", payload),
        ];
        let outcome = read(
            browser
                .get(server.url("/oidc/logout"))
                .query(&params)
                .send()
                .await
                .expect("answers"),
        )
        .await;
        let problems = match outcome {
            Outcome::Away(to) => redirect_problems(&to, &logged_out, payload),
            Outcome::Page(page) => vec![format!("a page ({}) instead of a redirect", page.status)],
        };
        record(
            &mut tally,
            format!("GET /oidc/logout back to the application, state={payload:?}"),
            problems,
        );

        // 404s: the payload as a path segment.
        let segment: String = url::form_urlencoded::byte_serialize(payload.as_bytes()).collect();
        for prefix in ["/", "/u/", "/static/", "/authorize/", "/.well-known/"] {
            let outcome = read(
                browser
                    .get(server.url(&format!("{prefix}{segment}")))
                    .send()
                    .await
                    .expect("answers"),
            )
            .await;
            record(
                &mut tally,
                format!("GET {prefix}{payload:?} (not found)"),
                judge(outcome, Kind::Message, "s", &nothing),
            );
        }
        // A parameter named by the payload, twice: the error page names it.
        let name: String = payload
            .chars()
            .filter(|c| !c.is_control())
            .take(40)
            .collect();
        let twice = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(payload, "1")
            .append_pair(payload, "2")
            .finish();
        for path in [
            "/authorize",
            "/u/login",
            "/u/signup",
            "/u/reset-password",
            "/u/consent",
            "/v2/logout",
            "/oidc/logout",
        ] {
            let outcome = read(
                browser
                    .get(server.url(&format!("{path}?{twice}")))
                    .send()
                    .await
                    .expect("answers"),
            )
            .await;
            record(
                &mut tally,
                format!("GET {path} with the parameter {payload:?} twice"),
                judge(outcome, Kind::Message, "s", &Expect::showing(vec![&name])),
            );
        }
    }
    // The plain pages, once each.
    let outcome = read(
        browser
            .get(server.url("/v2/logout"))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    record(
        &mut tally,
        "GET /v2/logout (logged out page)".into(),
        judge(outcome, Kind::Message, "s", &Expect::default()),
    );
    for path in ["/u/reset-password", "/u/reset-password/code"] {
        let outcome = read(browser.get(server.url(path)).send().await.expect("answers")).await;
        let kind = if path.ends_with("code") {
            Kind::ResetCode
        } else {
            Kind::ResetRequest
        };
        record(
            &mut tally,
            format!("GET {path}"),
            judge(outcome, kind, "s", &Expect::default()),
        );
    }
    tally.finish();
}
