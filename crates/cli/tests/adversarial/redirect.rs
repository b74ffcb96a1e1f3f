//! Redirects under attack: a hostile link, application or user tries to make Tessera send a
//! code or a token somewhere the application did not register (redirect_uri spellings,
//! unknown clients, logout return URLs), to put a token where it leaks (a query string), to
//! register a callback that runs code, to finish someone else's login from another browser
//! (login CSRF), or to inject markup or headers through `state` and `nonce`.
//!
//! Each case states the hostile input and the answer that holds it off: an error page with
//! no `Location`, an error at the registered callback, a refusal that changed nothing, or
//! the value echoed byte for byte. The matcher itself is also checked by properties over
//! generated spellings (proptest), each property one case.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use tessera_core::validate::{self, UrlKind};
use tessera_core::{AppType, ids, redirect};
use tessera_testkit::{
    CALLBACK, PASSWORD, SPA_ORIGIN, TestServer, browser, client, create_user, location, params_of,
    pkce, spawn,
};
use url::form_urlencoded;

use crate::harness::Tally;

const NATIVE_SCHEME: &str = "com.example.app:/callback";
const NATIVE_LOOPBACK: &str = "http://127.0.0.1/callback";
const NATIVE_LOOPBACK_V6: &str = "http://[::1]/callback";
const NATIVE_LOCALHOST: &str = "http://localhost:7000/callback";
const WEB_CALLBACK: &str = "https://app.example/cb?tenant=1";
const WEB_LOGOUT: &str = "https://app.example/bye";

/// An answer, kept for the checks.
struct Answer {
    status: u16,
    location: Option<String>,
    html: bool,
    csp: String,
    body: String,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap_or("<not text>").to_string())
        };
        let location = header("location");
        let html = header("content-type").is_some_and(|t| t.starts_with("text/html"));
        let csp = header("content-security-policy").unwrap_or_default();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Answer {
            status,
            location,
            html,
            csp,
            body,
        }
    }

    /// An error page: this status, HTML, no redirect, and no hostile markup echoed.
    fn is_page(&self, status: u16) -> bool {
        self.status == status
            && self.location.is_none()
            && self.html
            && !self.body.contains("<script>alert")
    }

    /// A redirect to the application at `prefix` (its callback and the separator).
    fn redirects_to(&self, prefix: &str) -> bool {
        self.status == 302
            && self
                .location
                .as_deref()
                .is_some_and(|l| l.starts_with(prefix))
    }

    /// A redirect to the hosted login page: the request was accepted.
    fn goes_to_login(&self) -> bool {
        self.redirects_to("/u/login?state=")
    }

    fn param(&self, name: &str) -> Option<String> {
        self.location
            .as_deref()
            .and_then(|l| params_of(l).get(name).cloned())
    }

    fn describe(&self) -> String {
        let start: String = self.body.chars().take(160).collect();
        format!(
            "{} location={:?} html={} body={start:?}",
            self.status, self.location, self.html
        )
    }
}

async fn get(http: &reqwest::Client, url: &str) -> Answer {
    Answer::of(http.get(url).send().await.expect("the server answers")).await
}

/// The tenant under attack: the quickstart (its SPA: callbacks `CALLBACK` and `SPA_ORIGIN`,
/// web origin and logout URLs on `SPA_ORIGIN`), a native app and a regular web app.
struct Tenant {
    server: TestServer,
    native: String,
    web: String,
}

async fn tenant() -> Tenant {
    let server = spawn().await;
    let mut native = client("Native", AppType::Native, None);
    native.callbacks = [
        NATIVE_SCHEME,
        NATIVE_LOOPBACK,
        NATIVE_LOOPBACK_V6,
        NATIVE_LOCALHOST,
    ]
    .map(String::from)
    .to_vec();
    native.web_origins = Vec::new();
    native.allowed_logout_urls = Vec::new();
    server.store.create_client(&native).await.unwrap();
    let mut web = client("Web", AppType::RegularWeb, Some(&ids::client_secret()));
    web.callbacks = vec![WEB_CALLBACK.into()];
    web.web_origins = Vec::new();
    web.allowed_logout_urls = vec![WEB_LOGOUT.into()];
    server.store.create_client(&web).await.unwrap();
    Tenant {
        server,
        native: native.client_id,
        web: web.client_id,
    }
}

impl Tenant {
    /// `/authorize` with these parameters, each encoded once, in this order.
    fn url(&self, params: &[(&str, &str)]) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in params {
            query.append_pair(name, value);
        }
        format!("{}/authorize?{}", self.server.base, query.finish())
    }

    /// A valid code + PKCE request of `client_id` to `redirect_uri`, plus `extra`.
    fn code_request(&self, client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
        let challenge = pkce().challenge;
        let mut params = vec![
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("state", "st"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        self.url(&params)
    }
}

/// redirect_uri spellings against the registered callbacks: only the registered string
/// (and, for a native app's loopback IP callback, any port) is accepted; every other
/// spelling is an error page, never a redirect.
#[tokio::test]
async fn redirect_uri_spellings_never_redirect() {
    let t = tenant().await;
    let spa = t.server.spa_client_id.clone();
    let mut tally = Tally::new("redirect/spellings");
    let long = format!("{CALLBACK}{}", "a".repeat(3000));
    let spa_spellings = [
        "HTTP://localhost:3000/callback",
        "http://LOCALHOST:3000/callback",
        "http://localhost:3000/Callback",
        "http://localhost:3000/CALLBACK",
        "http://localhost:3000/callback/",
        "http://localhost:3000/callback/extra",
        "http://localhost:3000/callbackx",
        "http://localhost:3000/callback/.",
        "http://localhost:3000/callback/..",
        "http://localhost:3000/x/../callback",
        "http://localhost:3000/./callback",
        "http://localhost:3000//callback",
        "http://localhost:3000/%63allback",
        "http://localhost:3000/callback%2F",
        "http://localhost:3000/callback%2f..%2fevil",
        "http://localhost:3000/callback%00",
        "http://localhost:3000/callback%20",
        "http://localhost:3000/callback;jsessionid=x",
        "http://localhost:3000/callback?",
        "http://localhost:3000/callback?next=https://evil.test",
        "http://localhost:3000/callback#",
        "http://localhost:3000/callback#@evil.test",
        "http://localhost:3000/callback\\",
        "http://localhost:3000\\callback",
        "http://localhost:3000\\@evil.test/callback",
        "http://localhost:3000@evil.test/callback",
        "http://cb@localhost:3000/callback",
        "http://localhost:3000:@evil.test/callback",
        "http://evil.test@localhost:3000/callback",
        "http://localhost:3000%40evil.test/callback",
        "https://localhost:3000/callback",
        "http://localhost:3001/callback",
        "http://localhost:03000/callback",
        "http://localhost/callback",
        "http://localhost:3000./callback",
        "http://localhost.:3000/callback",
        "http://localhost:3000.evil.test/callback",
        "http://127.0.0.1:3000/callback",
        "http://[::1]:3000/callback",
        "http://l\u{043e}calhost:3000/callback",
        "http://localhost\u{ff1a}3000/callback",
        "http://localhost:3000/callback ",
        " http://localhost:3000/callback",
        "http://localhost:3000/callback\t",
        "http://localhost:3000/callback\r\nSet-Cookie: x=1",
        "//localhost:3000/callback",
        "/callback",
        "localhost:3000/callback",
        "http:localhost:3000/callback",
        "http:/localhost:3000/callback",
        "javascript:alert(1)//http://localhost:3000/callback",
        "data:text/html,<script>alert(1)</script>",
        "http://localhost:3000/callback\"><script>alert(1)</script>",
        "https://evil.test/callback",
        long.as_str(),
    ];
    for spelling in spa_spellings {
        let answer = get(&browser(), &t.code_request(&spa, spelling, &[])).await;
        tally.case(
            format_args!("SPA redirect_uri {spelling:?}: 400 page"),
            answer.is_page(400),
            answer.describe(),
        );
    }
    let native_spellings = [
        "com.example.app:/callback/",
        "com.example.app:/Callback",
        "COM.EXAMPLE.APP:/callback",
        "com.example.app://callback",
        "com.example.app:callback",
        "com.example.app:/callback?x=1",
        "com.example.app:/callback#x",
        "com.example.evil:/callback",
        "com.example.app.evil:/callback",
        "http://127.0.0.1:51004/callback/",
        "http://127.0.0.1:51004/Callback",
        "http://127.0.0.1:51004/callback?x",
        "http://127.0.0.1:51004/x/../callback",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:080/callback",
        "http://127.0.0.1:65536/callback",
        "http://127.0.0.1:/callback",
        "http://127.0.0.1:5000@evil.test/callback",
        "http://127.0.0.1.evil.test:5000/callback",
        "https://127.0.0.1:51004/callback",
        "HTTP://127.0.0.1:51004/callback",
        "http://127.1:51004/callback",
        "http://2130706433:51004/callback",
        "http://0x7f.0.0.1:51004/callback",
        "http://[::ffff:127.0.0.1]:51004/callback",
        "http://[0:0:0:0:0:0:0:1]:51004/callback",
        "http://localhost:51004/callback",
        "http://localhost:7001/callback",
    ];
    for spelling in native_spellings {
        let answer = get(&browser(), &t.code_request(&t.native, spelling, &[])).await;
        tally.case(
            format_args!("native redirect_uri {spelling:?}: 400 page"),
            answer.is_page(400),
            answer.describe(),
        );
    }
    let web_spellings = [
        "https://app.example/cb",
        "https://app.example/cb?tenant=2",
        "https://app.example/cb?tenant=1&x=2",
        "https://app.example/cb?x=2&tenant=1",
        "https://app.example/cb?TENANT=1",
        "https://app.example/cb?tenant=%31",
        "https://app.example/cb?tenant=1#",
        "https://app.example:443/cb?tenant=1",
        "https://app.example./cb?tenant=1",
        "https://APP.EXAMPLE/cb?tenant=1",
        "http://app.example/cb?tenant=1",
        "https://\u{0430}pp.example/cb?tenant=1",
        "https://xn--pp-8cd.example/cb?tenant=1",
        "https://app.example%2F@evil.test/cb?tenant=1",
        "https://evil.test/cb?tenant=1&u=https://app.example/cb?tenant=1",
        // Another application's callback.
        CALLBACK,
    ];
    for spelling in web_spellings {
        let answer = get(&browser(), &t.code_request(&t.web, spelling, &[])).await;
        tally.case(
            format_args!("web app redirect_uri {spelling:?}: 400 page"),
            answer.is_page(400),
            answer.describe(),
        );
    }
    // Controls: the registered spellings are accepted (a loopback IP on any port).
    for (client_id, accepted) in [
        (spa.as_str(), CALLBACK),
        (spa.as_str(), SPA_ORIGIN),
        (t.web.as_str(), WEB_CALLBACK),
        (t.native.as_str(), NATIVE_SCHEME),
        (t.native.as_str(), NATIVE_LOOPBACK),
        (t.native.as_str(), "http://127.0.0.1:51004/callback"),
        (t.native.as_str(), "http://127.0.0.1:65535/callback"),
        (t.native.as_str(), "http://[::1]:61023/callback"),
        (t.native.as_str(), NATIVE_LOCALHOST),
    ] {
        let answer = get(&browser(), &t.code_request(client_id, accepted, &[])).await;
        tally.case(
            format_args!("control: registered {accepted:?} goes on to the login page"),
            answer.goes_to_login(),
            answer.describe(),
        );
    }
    tally.finish();
}

/// An unknown, missing, duplicated or deleted client, or a missing or duplicated
/// redirect_uri, and the later steps with an unknown transaction: always a page.
#[tokio::test]
async fn unknown_clients_and_transactions_get_a_page() {
    let t = tenant().await;
    let spa = t.server.spa_client_id.clone();
    let mut tally = Tally::new("redirect/unknown");
    let mut deleted = client("Deleted", AppType::Spa, None);
    deleted.callbacks = vec![CALLBACK.into()];
    t.server.store.create_client(&deleted).await.unwrap();
    t.server
        .store
        .delete_client(&deleted.client_id)
        .await
        .unwrap();
    let long_id = "x".repeat(1000);
    let code = [("response_type", "code")];
    let with = |params: &[(&'static str, &str)]| {
        let mut all = params.to_vec();
        all.extend_from_slice(&code);
        t.url(&all)
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "unknown client_id",
            with(&[("client_id", "nobody"), ("redirect_uri", CALLBACK)]),
        ),
        (
            "unknown client_id, hostile redirect_uri",
            with(&[
                ("client_id", "nobody"),
                ("redirect_uri", "https://evil.test/cb"),
            ]),
        ),
        ("no client_id", with(&[("redirect_uri", CALLBACK)])),
        (
            "empty client_id",
            with(&[("client_id", ""), ("redirect_uri", CALLBACK)]),
        ),
        (
            "client_id twice",
            with(&[
                ("client_id", &spa),
                ("client_id", &spa),
                ("redirect_uri", CALLBACK),
            ]),
        ),
        (
            "client_id twice, the second unknown",
            with(&[
                ("client_id", &spa),
                ("client_id", "nobody"),
                ("redirect_uri", CALLBACK),
            ]),
        ),
        (
            "client_id with SQL",
            with(&[("client_id", "' OR '1'='1"), ("redirect_uri", CALLBACK)]),
        ),
        (
            "client_id of 1000 characters",
            with(&[("client_id", &long_id), ("redirect_uri", CALLBACK)]),
        ),
        (
            "client_id of a deleted application",
            with(&[
                ("client_id", &deleted.client_id),
                ("redirect_uri", CALLBACK),
            ]),
        ),
        (
            "client_id in another case",
            with(&[
                ("client_id", &spa.to_ascii_uppercase()),
                ("redirect_uri", CALLBACK),
            ]),
        ),
        ("no redirect_uri", with(&[("client_id", &spa)])),
        (
            "empty redirect_uri",
            with(&[("client_id", &spa), ("redirect_uri", "")]),
        ),
        (
            "redirect_uri twice (registered, hostile)",
            with(&[
                ("client_id", &spa),
                ("redirect_uri", CALLBACK),
                ("redirect_uri", "https://evil.test/cb"),
            ]),
        ),
        (
            "redirect_uri twice (registered twice)",
            with(&[
                ("client_id", &spa),
                ("redirect_uri", CALLBACK),
                ("redirect_uri", CALLBACK),
            ]),
        ),
        (
            "resume of an unknown transaction",
            t.server.url("/authorize/resume?state=unknown"),
        ),
        (
            "resume without a transaction",
            t.server.url("/authorize/resume"),
        ),
        (
            "login page of an unknown transaction",
            t.server.url("/u/login?state=unknown"),
        ),
        (
            "consent page of an unknown transaction",
            t.server.url("/u/consent?state=unknown"),
        ),
    ];
    for (case, url) in cases {
        let answer = get(&browser(), &url).await;
        tally.case(
            format_args!("{case}: 400 page"),
            answer.is_page(400),
            answer.describe(),
        );
    }
    // The same through POST /authorize.
    for (case, form) in [
        (
            "POST: unknown client_id",
            vec![
                ("client_id", "nobody"),
                ("redirect_uri", CALLBACK),
                ("response_type", "code"),
            ],
        ),
        (
            "POST: hostile redirect_uri",
            vec![
                ("client_id", spa.as_str()),
                ("redirect_uri", "https://evil.test/cb"),
                ("response_type", "code"),
            ],
        ),
    ] {
        let response = browser()
            .post(t.server.url("/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let answer = Answer::of(response).await;
        tally.case(
            format_args!("{case}: 400 page"),
            answer.is_page(400),
            answer.describe(),
        );
    }
    // A machine-to-machine application has callbacks but no code grant: the error goes to
    // its trusted callback, with no code.
    let answer = get(
        &browser(),
        &t.code_request(&t.server.m2m_client_id, CALLBACK, &[]),
    )
    .await;
    tally.case(
        "m2m application asking for a code: unauthorized_client at its callback, no code",
        answer.redirects_to(&format!("{CALLBACK}?"))
            && answer.param("error").as_deref() == Some("unauthorized_client")
            && answer.param("code").is_none(),
        answer.describe(),
    );
    tally.finish();
}

/// Every response_type × response_mode, from a signed-in browser: no token ever in a
/// query; a token-bearing type asking for `query` gets its error in the fragment; and
/// form_post / web_message need an http(s) origin (web_message an allowed one).
#[tokio::test]
async fn response_modes_never_put_a_token_in_a_query() {
    let t = tenant().await;
    let spa = t.server.spa_client_id.clone();
    let signed_in = browser();
    t.server.code_flow(&signed_in, "openid", None).await;
    let mut tally = Tally::new("redirect/modes");
    let challenge = pkce().challenge;
    let response_types = [
        "code",
        "token",
        "id_token",
        "token id_token",
        "id_token token",
        "code id_token",
        "code token",
        "code id_token token",
        "none",
    ];
    let modes = [
        None,
        Some("query"),
        Some("fragment"),
        Some("form_post"),
        Some("web_message"),
        Some("QUERY"),
    ];
    for response_type in response_types {
        let words: Vec<&str> = response_type.split(' ').collect();
        let carries_tokens = words.iter().any(|w| *w == "token" || *w == "id_token");
        let supported = response_type != "none";
        for mode in modes {
            let mut params = vec![
                ("client_id", spa.as_str()),
                ("redirect_uri", SPA_ORIGIN),
                ("response_type", response_type),
                ("scope", "openid"),
                ("nonce", "n"),
                ("state", "st"),
            ];
            if words.contains(&"code") {
                params.push(("code_challenge", &challenge));
                params.push(("code_challenge_method", "S256"));
            }
            if let Some(mode) = mode {
                params.push(("response_mode", mode));
            }
            let answer = get(&signed_in, &t.url(&params)).await;
            let query_part = answer
                .location
                .as_deref()
                .map(|l| l.split('#').next().unwrap_or_default().to_string())
                .unwrap_or_default();
            // A redirect goes in the fragment for a token-bearing type (whatever was
            // asked) or when the fragment was asked; else in the query.
            let separator = if carries_tokens || mode == Some("fragment") {
                '#'
            } else {
                '?'
            };
            let at_callback = format!("{SPA_ORIGIN}{separator}");
            let error = answer.param("error");
            let (expected, held) = match mode {
                Some("form_post" | "web_message") => (
                    "200 page with the response",
                    answer.status == 200 && answer.location.is_none(),
                ),
                Some("query" | "QUERY") if carries_tokens || mode == Some("QUERY") => (
                    "invalid_request (mode refused) at the callback",
                    answer.redirects_to(&at_callback)
                        && error.as_deref() == Some("invalid_request"),
                ),
                _ if !supported => (
                    "unsupported_response_type at the callback",
                    answer.redirects_to(&at_callback)
                        && error.as_deref() == Some("unsupported_response_type"),
                ),
                _ => (
                    "the response at the callback",
                    answer.redirects_to(&at_callback) && error.is_none(),
                ),
            };
            tally.case(
                format_args!("response_type={response_type:?} response_mode={mode:?}: {expected}, no token in a query"),
                held && !query_part.contains("token="),
                answer.describe(),
            );
        }
    }

    // form_post and web_message: where the page may post or be framed.
    let answer = get(
        &signed_in,
        &t.code_request(&spa, CALLBACK, &[("response_mode", "web_message")]),
    )
    .await;
    tally.case(
        "web_message to an allowed origin: framed by that origin only",
        answer.status == 200
            && answer
                .csp
                .contains(&format!("frame-ancestors {SPA_ORIGIN};")),
        format_args!("{} {}", answer.describe(), answer.csp),
    );
    let answer = get(
        &signed_in,
        &t.code_request(&t.web, WEB_CALLBACK, &[("response_mode", "web_message")]),
    )
    .await;
    tally.case(
        "web_message to an origin not among the app's web origins: 400 page",
        answer.is_page(400) && answer.body.contains("Origin not allowed"),
        answer.describe(),
    );
    for mode in ["form_post", "web_message"] {
        let answer = get(
            &signed_in,
            &t.code_request(&t.native, NATIVE_SCHEME, &[("response_mode", mode)]),
        )
        .await;
        tally.case(
            format_args!("{mode} to a private-use scheme (no origin): 400 page"),
            answer.is_page(400) && answer.body.contains("http(s) redirect_uri"),
            answer.describe(),
        );
    }
    let loopback = "http://127.0.0.1:51004/callback";
    let answer = get(
        &signed_in,
        &t.code_request(&t.native, loopback, &[("response_mode", "form_post")]),
    )
    .await;
    tally.case(
        "form_post to a native loopback port: the form posts there only",
        answer.status == 200
            && answer.body.contains(&format!("action=\"{loopback}\""))
            && answer.csp.contains("form-action http://127.0.0.1:51004;"),
        format_args!("{} {}", answer.describe(), answer.csp),
    );
    let answer = get(&signed_in, &t.code_request(&t.native, NATIVE_SCHEME, &[])).await;
    tally.case(
        "code to a private-use scheme: in its query",
        answer.redirects_to(&format!("{NATIVE_SCHEME}?code=")),
        answer.describe(),
    );
    for (case, params) in [
        (
            "token to a private-use scheme with response_mode=query: error in the fragment",
            vec![
                ("client_id", t.native.as_str()),
                ("redirect_uri", NATIVE_SCHEME),
                ("response_type", "token"),
                ("response_mode", "query"),
            ],
        ),
        (
            "response_mode twice: a page",
            vec![
                ("client_id", spa.as_str()),
                ("redirect_uri", CALLBACK),
                ("response_type", "token"),
                ("response_mode", "fragment"),
                ("response_mode", "query"),
            ],
        ),
    ] {
        let answer = get(&signed_in, &t.url(&params)).await;
        let held = if case.ends_with("a page") {
            answer.is_page(400)
        } else {
            answer.redirects_to(&format!("{NATIVE_SCHEME}#error=invalid_request"))
        };
        tally.case(case, held, answer.describe());
    }
    tally.finish();
}

/// The hybrid flow (`code id_token`, `code token`, `code id_token token`) under attack: a
/// query asked for, no nonce, an application without the implicit grant, misspelled
/// response types, a replayed code, and codes swapped between two responses — which each ID
/// token's `c_hash` (computed here) exposes, and PKCE refuses at the token endpoint.
#[tokio::test]
async fn hybrid_responses_hold() {
    let t = tenant().await;
    let server = &t.server;
    let spa = server.spa_client_id.clone();
    let signed_in = browser();
    server.code_flow(&signed_in, "openid", None).await;
    let mut tally = Tally::new("redirect/hybrid");
    // A hybrid request of `client_id`, plus `extra`; its PKCE verifier.
    let request = |client_id: &str, response_type: &str, extra: &[(&str, &str)]| {
        let pkce = pkce();
        let mut params = vec![
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("response_type", response_type),
            ("scope", "openid offline_access"),
            ("audience", tessera_testkit::API),
            ("state", "st"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        (t.url(&params), pkce.verifier)
    };
    let in_fragment = format!("{CALLBACK}#");
    let no_code = |answer: &Answer| {
        answer
            .location
            .as_deref()
            .is_some_and(|l| !l.contains("code=") && !l.contains("token="))
    };
    const HYBRID: [&str; 3] = ["code id_token", "code token", "code id_token token"];

    for response_type in HYBRID {
        let (url, _) = request(
            &spa,
            response_type,
            &[("nonce", "n"), ("response_mode", "query")],
        );
        let answer = get(&signed_in, &url).await;
        tally.case(
            format_args!("{response_type} with response_mode=query: invalid_request in the fragment, nothing issued"),
            answer.redirects_to(&in_fragment)
                && answer.param("error").as_deref() == Some("invalid_request")
                && no_code(&answer),
            answer.describe(),
        );
    }
    for response_type in ["code id_token", "code id_token token"] {
        for (how, extra) in [
            ("no nonce", vec![]),
            ("an empty nonce", vec![("nonce", "")]),
        ] {
            let (url, _) = request(&spa, response_type, &extra);
            let answer = get(&signed_in, &url).await;
            tally.case(
                format_args!(
                    "{response_type} with {how}: invalid_request in the fragment, nothing issued"
                ),
                answer.redirects_to(&in_fragment)
                    && answer.param("error").as_deref() == Some("invalid_request")
                    && no_code(&answer),
                answer.describe(),
            );
        }
    }

    let mut code_only = client(
        "Code only",
        AppType::RegularWeb,
        Some(&ids::client_secret()),
    );
    code_only.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    server.store.create_client(&code_only).await.unwrap();
    let mut implicit_only = client("Implicit only", AppType::Spa, None);
    implicit_only.grant_types = vec!["implicit".into()];
    server.store.create_client(&implicit_only).await.unwrap();
    for (app, lacking) in [
        (&code_only, "implicit"),
        (&implicit_only, "authorization_code"),
    ] {
        for response_type in HYBRID {
            let (url, _) = request(&app.client_id, response_type, &[("nonce", "n")]);
            let answer = get(&signed_in, &url).await;
            tally.case(
                format_args!("{response_type} for an application without the {lacking} grant: unauthorized_client, nothing issued"),
                answer.redirects_to(&in_fragment)
                    && answer.param("error").as_deref() == Some("unauthorized_client")
                    && no_code(&answer),
                answer.describe(),
            );
        }
    }

    for response_type in [
        "code code",
        "id_token id_token",
        "code id_token id_token",
        "token code token",
        "code id_token foo",
        "code id_token none",
        "code,id_token",
        "code+id_token",
        "CODE id_token",
        "code\u{b}id_token",
    ] {
        let (url, _) = request(&spa, response_type, &[("nonce", "n")]);
        let answer = get(&signed_in, &url).await;
        tally.case(
            format_args!("response_type={response_type:?}: unsupported_response_type at the callback, nothing issued"),
            answer.redirects_to(&format!("{CALLBACK}?"))
                && answer.param("error").as_deref() == Some("unsupported_response_type")
                && no_code(&answer),
            answer.describe(),
        );
    }

    // Two hybrid responses for the same user.
    let respond = |response_type: &'static str| {
        let (url, verifier) = request(&spa, response_type, &[("nonce", "n")]);
        let signed_in = signed_in.clone();
        async move {
            let answer = get(&signed_in, &url).await;
            let param = |name: &str| answer.param(name).unwrap_or_default();
            (param("code"), param("id_token"), verifier)
        }
    };
    let (code_a, id_token_a, verifier_a) = respond("code id_token").await;
    let (code_b, id_token_b, verifier_b) = respond("code id_token").await;
    let mut c_hashes = Vec::new();
    for id_token in [&id_token_a, &id_token_b] {
        let claims = server.verify(id_token, &spa).await;
        c_hashes.push(claims["c_hash"].as_str().unwrap_or_default().to_string());
    }
    let [c_hash_a, c_hash_b] = [&c_hashes[0], &c_hashes[1]];
    let hash = tessera_testkit::left_half_hash;
    tally.case(
        "control: each ID token's c_hash is its own code's",
        *c_hash_a == hash(&id_token_a, &code_a) && *c_hash_b == hash(&id_token_b, &code_b),
        format_args!("{c_hash_a} {c_hash_b}"),
    );
    tally.case(
        "response A's ID token with B's code swapped in: c_hash does not match (the client refuses)",
        !code_b.is_empty() && *c_hash_a != hash(&id_token_a, &code_b),
        c_hash_a,
    );
    tally.case(
        "response B's ID token with A's code swapped in: c_hash does not match (the client refuses)",
        !code_a.is_empty() && *c_hash_b != hash(&id_token_b, &code_a),
        c_hash_b,
    );
    let (status, body) = server.redeem(&code_b, &verifier_a).await;
    tally.case(
        "B's code redeemed with A's PKCE verifier: invalid_grant",
        status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );

    let (status, first) = server.redeem(&code_a, &verifier_a).await;
    let refresh_token = first["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    tally.case(
        "control: a hybrid code redeems once, with a refresh token",
        status == 200 && !refresh_token.is_empty(),
        format_args!("{status} {first}"),
    );
    let (status, body) = server.redeem(&code_a, &verifier_a).await;
    tally.case(
        "the hybrid code replayed: invalid_grant",
        status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );
    let (status, body) = server.refresh(&refresh_token).await;
    tally.case(
        "after the replay, the first redemption's refresh token: invalid_grant (revoked)",
        status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );
    let (status, body) = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &spa),
            ("code", &code_b),
            ("redirect_uri", SPA_ORIGIN),
            ("code_verifier", &verifier_b),
        ])
        .await;
    tally.case(
        "a hybrid code redeemed with another redirect_uri: invalid_grant",
        status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );
    let status = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(&id_token_b)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    tally.status(
        "the front-channel ID token as a bearer token at /userinfo: 401",
        status,
        401,
    );
    tally.finish();
}

/// Logout return URLs: only an application's registered logout URL, exactly, with the
/// client named; everything else is a page (the session still ends).
#[tokio::test]
async fn logout_return_urls_are_no_open_redirect() {
    let t = tenant().await;
    let spa = t.server.spa_client_id.clone();
    let mut tally = Tally::new("redirect/logout");
    let hostile = [
        "https://evil.test",
        "https://evil.test/",
        "//evil.test",
        "/\\evil.test",
        "http://localhost:3000.evil.test",
        "http://localhost:3000@evil.test",
        "http://localhost:3000\\@evil.test",
        "http://localhost:3000/",
        "http://localhost:3000/logged-out/",
        "http://localhost:3000/logged-out/../../evil",
        "http://localhost:3000/logged-out?next=https://evil.test",
        "http://localhost:3000/logged-out#@evil.test",
        "HTTP://localhost:3000",
        "http://LOCALHOST:3000",
        " http://localhost:3000",
        "http://localhost:3000 ",
        "http:evil.test",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        WEB_LOGOUT,
    ];
    for return_to in hostile {
        let url = format!(
            "{}/v2/logout?{}",
            t.server.base,
            form_urlencoded::Serializer::new(String::new())
                .append_pair("client_id", &spa)
                .append_pair("returnTo", return_to)
                .finish()
        );
        let answer = get(&browser(), &url).await;
        tally.case(
            format_args!("/v2/logout returnTo={return_to:?}: 400 page"),
            answer.is_page(400),
            answer.describe(),
        );
        let url = format!(
            "{}/oidc/logout?{}",
            t.server.base,
            form_urlencoded::Serializer::new(String::new())
                .append_pair("client_id", &spa)
                .append_pair("post_logout_redirect_uri", return_to)
                .finish()
        );
        let answer = get(&browser(), &url).await;
        tally.case(
            format_args!("/oidc/logout post_logout_redirect_uri={return_to:?}: 400 page"),
            answer.is_page(400),
            answer.describe(),
        );
    }
    let unnamed = [
        (
            "/v2/logout returnTo without client_id",
            format!("/v2/logout?returnTo={SPA_ORIGIN}"),
        ),
        (
            "/v2/logout returnTo with an unknown client",
            format!("/v2/logout?client_id=nobody&returnTo={SPA_ORIGIN}"),
        ),
        (
            "/oidc/logout post_logout_redirect_uri without client_id or hint",
            format!("/oidc/logout?post_logout_redirect_uri={SPA_ORIGIN}"),
        ),
        (
            "/oidc/logout with a forged id_token_hint",
            format!(
                "/oidc/logout?id_token_hint=eyJhbGciOiJub25lIn0.e30.&post_logout_redirect_uri={SPA_ORIGIN}"
            ),
        ),
    ];
    for (case, path) in unnamed {
        let answer = get(&browser(), &t.server.url(&path)).await;
        tally.case(
            format_args!("{case}: 400 page"),
            answer.is_page(400),
            answer.describe(),
        );
    }
    // An ID token of the SPA names the SPA: it cannot carry another app's logout URL.
    let tokens = t.server.code_flow(&browser(), "openid", None).await;
    let hint = tokens["id_token"].as_str().unwrap_or_default().to_string();
    let url = format!(
        "{}/oidc/logout?{}",
        t.server.base,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &hint)
            .append_pair("client_id", &t.web)
            .append_pair("post_logout_redirect_uri", WEB_LOGOUT)
            .finish()
    );
    let answer = get(&browser(), &url).await;
    tally.case(
        "/oidc/logout: the SPA's id_token_hint with the web app's client_id: 400 page",
        answer.is_page(400),
        answer.describe(),
    );
    // Controls, with a hostile state echoed byte for byte.
    let state = "x&returnTo=https://evil.test#\"<script>";
    let url = format!(
        "{}/oidc/logout?{}",
        t.server.base,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &hint)
            .append_pair("post_logout_redirect_uri", SPA_ORIGIN)
            .append_pair("state", state)
            .finish()
    );
    let answer = get(&browser(), &url).await;
    tally.case(
        "control: /oidc/logout to the registered URL, hostile state echoed exactly",
        answer.redirects_to(&format!("{SPA_ORIGIN}?state="))
            && answer.param("state").as_deref() == Some(state),
        answer.describe(),
    );
    let answer = get(
        &browser(),
        &t.server.url(&format!(
            "/v2/logout?client_id={spa}&returnTo={SPA_ORIGIN}/logged-out"
        )),
    )
    .await;
    tally.case(
        "control: /v2/logout to the registered URL, exactly",
        answer.location.as_deref() == Some(&format!("{SPA_ORIGIN}/logged-out")),
        answer.describe(),
    );
    tally.finish();
}

/// Callback, web-origin and logout URLs that run code, read local files or mean something
/// else to a browser than to a parser: refused at registration through the Management API
/// (nothing written) and by `tessera_core::validate` (which the CLI uses too).
#[tokio::test]
async fn dangerous_urls_are_refused_at_registration() {
    let t = tenant().await;
    let token = t
        .server
        .management_token(&["read:clients", "create:clients", "update:clients"])
        .await;
    let http = reqwest::Client::new();
    let mut tally = Tally::new("redirect/registration");
    let dangerous = [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)//",
        "javascript://app.example/%0aalert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "file:///etc/passwd",
        "blob:https://app.example/5f1c",
        "filesystem:https://app.example/temporary/x",
        "about:blank",
        "view-source:https://app.example/",
        "chrome://settings",
        "chrome-extension://abcdef/page.html",
        "intent://scan/#Intent;scheme=zxing;end",
        "http:evil.test",
        "https:/evil.test/cb",
        "https:\\\\evil.test\\cb",
        "https://app.example\\@evil.test/",
        "https://user@evil.test/cb",
        "https://@evil.test/cb",
        "https://app.example:@evil.test/cb",
        "https://\u{0430}pp.example/cb",
        "myapp:/callback",
    ];
    let before = t
        .server
        .store
        .list_clients(
            &tessera_store::ClientFilter::default(),
            tessera_store::Slice::first(1000),
        )
        .await
        .unwrap()
        .items
        .len();
    // RFC 6749 §3.1.2: no fragment in a callback (logout URLs may keep one, as on Auth0).
    for url in dangerous
        .into_iter()
        .chain(["https://app.example/cb#fragment"])
    {
        let response = http
            .post(t.server.url("/api/v2/clients"))
            .bearer_auth(&token)
            .json(&json!({"name": "Hostile", "app_type": "native", "callbacks": [url]}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let count = t
            .server
            .store
            .list_clients(
                &tessera_store::ClientFilter::default(),
                tessera_store::Slice::first(1000),
            )
            .await
            .unwrap()
            .items
            .len();
        tally.case(
            format_args!("Management API: native app with callback {url:?}: 400, nothing created"),
            status == 400 && body["statusCode"] == 400 && count == before,
            format_args!("{status} {body}, {count} clients (was {before})"),
        );
    }
    // Updates of an existing application: 400, the lists unchanged.
    let spa = t.server.spa_client_id.clone();
    let original = t.server.store.find_client(&spa).await.unwrap().unwrap();
    for (field, url) in [
        ("callbacks", "javascript:alert(1)"),
        ("callbacks", "http:evil.test"),
        ("callbacks", "https://user@evil.test/"),
        ("web_origins", "null"),
        ("web_origins", "data:text/html,x"),
        ("web_origins", "http:evil.test"),
        ("allowed_logout_urls", "javascript:alert(1)"),
        ("allowed_logout_urls", "//evil.test"),
        ("allowed_logout_urls", "https://@evil.test/"),
    ] {
        let response = http
            .patch(t.server.url(&format!("/api/v2/clients/{spa}")))
            .bearer_auth(&token)
            .json(&json!({ field: [url] }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let now = t.server.store.find_client(&spa).await.unwrap().unwrap();
        let unchanged = now.callbacks == original.callbacks
            && now.web_origins == original.web_origins
            && now.allowed_logout_urls == original.allowed_logout_urls;
        tally.case(
            format_args!("Management API: PATCH {field} [{url:?}]: 400, unchanged"),
            status == 400 && unchanged,
            format_args!("{status}, unchanged={unchanged}"),
        );
    }
    // The shared rules, for every list and application type.
    for url in dangerous {
        let refused_everywhere = [UrlKind::Callback, UrlKind::WebOrigin, UrlKind::LogoutUrl]
            .into_iter()
            .all(|kind| {
                [AppType::Native, AppType::Spa, AppType::RegularWeb]
                    .into_iter()
                    .all(|app_type| validate::urls(&[url.to_string()], kind, app_type).is_err())
            });
        tally.case(
            format_args!("validate::urls refuses {url:?} for every list and app type"),
            refused_everywhere,
            "accepted somewhere",
        );
    }
    // Control: a native app with a reverse-domain scheme and a loopback callback.
    let response = http
        .post(t.server.url("/api/v2/clients"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "Good native",
            "app_type": "native",
            "callbacks": ["com.example.good:/callback", "http://127.0.0.1/callback"],
        }))
        .send()
        .await
        .unwrap();
    tally.status(
        "control: native app with com.example.good:/callback and a loopback callback",
        response.status().as_u16(),
        201,
    );
    tally.finish();
}

/// Login CSRF: a transaction started in the victim's browser cannot be continued or
/// finished by another browser (the attacker's, signed in as the attacker), at any step.
/// A refusal is a 403 page, never a redirect with a code, and the victim's transaction
/// still works afterwards.
#[tokio::test]
async fn login_transactions_are_bound_to_their_browser() {
    let t = tenant().await;
    let server = &t.server;
    let mut tally = Tally::new("redirect/binding");
    let attacker_email = "attacker@example.com";
    create_user(&server.store, attacker_email, PASSWORD).await;
    let attacker = browser();
    let response = server
        .submit_login(
            &attacker,
            &t.code_request(&server.spa_client_id, CALLBACK, &[]),
            attacker_email,
            PASSWORD,
        )
        .await;
    assert_eq!(response.status(), 303, "the attacker signs in");

    let victim = browser();
    let victim_pkce = pkce();
    let victim_url = t.url(&[
        ("client_id", &server.spa_client_id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "victims-state"),
        ("code_challenge", &victim_pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let login = location(&victim.get(&victim_url).send().await.unwrap());
    let transaction = login.split_once("state=").unwrap().1.to_string();
    let forged_cookie = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (who, http, forged) in [
        ("the attacker's signed-in browser", &attacker, false),
        ("a browser without cookies", &browser(), false),
        ("a browser with a forged CSRF cookie", &forged_cookie, true),
    ] {
        for path in [
            format!("/authorize/resume?state={transaction}"),
            format!("/u/login?state={transaction}"),
            format!("/u/signup?state={transaction}"),
        ] {
            let mut request = http.get(server.url(&path));
            if forged {
                request = request.header("cookie", format!("tessera_csrf={}", "A".repeat(43)));
            }
            let answer = Answer::of(request.send().await.unwrap()).await;
            tally.case(
                format_args!("{who}: GET {}: 403 page", path.split('?').next().unwrap()),
                answer.is_page(403),
                answer.describe(),
            );
        }
    }
    let answer = Answer::of(
        attacker
            .post(server.url("/u/login"))
            .form(&[
                ("state", transaction.as_str()),
                ("csrf", "A".repeat(43).as_str()),
                ("username", attacker_email),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    tally.case(
        "the attacker's browser: POST /u/login of the victim's transaction: 403 page",
        answer.is_page(403),
        answer.describe(),
    );
    // The victim's transaction is intact: the code is the victim's, with the victim's state.
    let response = server
        .submit_login(&victim, &victim_url, &server.user_email, PASSWORD)
        .await;
    let resume = server.url(&location(&response));
    let answer = get(&victim, &resume).await;
    let code = answer.param("code").unwrap_or_default();
    let (_, tokens) = server.redeem(&code, &victim_pkce.verifier).await;
    let subject = match tokens["id_token"].as_str() {
        Some(id_token) => server.verify(id_token, &server.spa_client_id).await["sub"].clone(),
        None => Value::Null,
    };
    tally.case(
        "control: the victim finishes their own login: their state, a code for them",
        answer.param("state").as_deref() == Some("victims-state")
            && subject.as_str() == Some(server.user_id.as_str()),
        format_args!("{} sub={subject}", answer.describe()),
    );
    let answer = get(&attacker, &resume).await;
    tally.case(
        "the attacker replays the used resume link: a page",
        answer.location.is_none() && answer.html && (answer.status == 400 || answer.status == 403),
        answer.describe(),
    );

    // A third-party application's consent page: another browser of the same user cannot
    // open or answer it.
    let mut partner = client("Partner", AppType::Spa, None);
    partner.is_first_party = false;
    server.store.create_client(&partner).await.unwrap();
    let partner_url = t.code_request(&partner.client_id, CALLBACK, &[("scope", "openid profile")]);
    let consent = location(&victim.get(&partner_url).send().await.unwrap());
    let consent_transaction = consent
        .split_once("state=")
        .map(|(_, id)| id.to_string())
        .unwrap_or_default();
    let same_user_elsewhere = browser();
    server
        .sign_in(
            &same_user_elsewhere,
            &t.code_request(&server.spa_client_id, CALLBACK, &[]),
        )
        .await;
    let answer = get(&same_user_elsewhere, &server.url(&consent)).await;
    tally.case(
        "the same user's other browser: GET /u/consent of this browser's transaction: 403 page",
        answer.is_page(403),
        answer.describe(),
    );
    let answer = Answer::of(
        same_user_elsewhere
            .post(server.url("/u/consent"))
            .form(&[
                ("state", consent_transaction.as_str()),
                ("csrf", "A".repeat(43).as_str()),
                ("action", "accept"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    tally.case(
        "the same user's other browser: POST /u/consent Accept: 403 page",
        answer.is_page(403),
        answer.describe(),
    );
    let answer = get(&victim, &server.url(&consent)).await;
    tally.case(
        "control: the consent page still opens in the browser that started it",
        answer.status == 200,
        answer.describe(),
    );
    tally.finish();
}

/// Decodes the HTML escapes askama writes (`&amp;`, `&lt;`, `&gt;`, `&#34;`, `&#39;`,
/// numeric ones in general).
fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The raw value of `attribute="…"` after `marker` in a page.
fn attribute_after(html: &str, marker: &str, attribute: &str) -> Option<String> {
    let from = html.find(marker)?;
    let start = html[from..].find(&format!("{attribute}=\""))? + from + attribute.len() + 2;
    let end = html[start..].find('"')? + start;
    Some(html_unescape(&html[start..end]))
}

/// Hostile `state` and `nonce` values come back byte for byte in every response mode, in
/// errors too, and never as markup or headers.
#[tokio::test]
async fn state_and_nonce_are_echoed_byte_for_byte() {
    let t = tenant().await;
    let spa = t.server.spa_client_id.clone();
    let signed_in = browser();
    t.server.code_flow(&signed_in, "openid", None).await;
    let mut tally = Tally::new("redirect/echo");
    let long = "s".repeat(4000);
    let hostile = [
        "\"'><script>alert(1)</script>",
        "a\r\nSet-Cookie: pwned=1",
        "&code=attacker&state=x",
        "#access_token=forged",
        "%00%0d%0a%3Cscript%3E",
        "+/=?&# ;,",
        "\u{fc}n\u{ef}c\u{f6}d\u{e9} \u{2603} \u{1d54a} \u{202e}",
        "  leading and trailing  ",
        "tab\tand\u{7f}delete",
        "</div><img src=x onerror=alert(1)>",
        long.as_str(),
    ];
    for value in hostile {
        let shown: String = value.chars().take(40).collect();
        let challenge = pkce().challenge;
        let code_params = |mode: &'static str| {
            vec![
                ("client_id", spa.as_str()),
                ("redirect_uri", CALLBACK),
                ("response_type", "code"),
                ("response_mode", mode),
                ("state", value),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]
        };
        // query (code) and fragment (code).
        for mode in ["query", "fragment"] {
            let answer = get(&signed_in, &t.url(&code_params(mode))).await;
            tally.case(
                format_args!("state {shown:?} in the {mode}: echoed exactly"),
                answer.status == 302 && answer.param("state").as_deref() == Some(value),
                answer.describe(),
            );
        }
        // form_post: a hidden field, escaped, decoding to the value.
        let answer = get(&signed_in, &t.url(&code_params("form_post"))).await;
        let echoed = attribute_after(&answer.body, "name=\"state\"", "value");
        tally.case(
            format_args!("state {shown:?} in form_post: escaped, decodes exactly"),
            answer.status == 200
                && echoed.as_deref() == Some(value)
                && !answer.body.contains("<script>alert")
                && !answer.body.contains("<img src=x"),
            answer.describe(),
        );
        // web_message: JSON in an attribute, decoding to the value.
        let answer = get(&signed_in, &t.url(&code_params("web_message"))).await;
        let echoed = attribute_after(&answer.body, "authorization-response", "data-response")
            .and_then(|json| serde_json::from_str::<Value>(&json).ok())
            .and_then(|response| response["state"].as_str().map(str::to_string));
        tally.case(
            format_args!("state {shown:?} in web_message: escaped, decodes exactly"),
            answer.status == 200
                && echoed.as_deref() == Some(value)
                && !answer.body.contains("<script>alert"),
            answer.describe(),
        );
        // An error (prompt=none without a session) carries it back too.
        let mut params = code_params("query");
        params.push(("prompt", "none"));
        let answer = get(&browser(), &t.url(&params)).await;
        tally.case(
            format_args!("state {shown:?} with login_required: echoed exactly"),
            answer.param("error").as_deref() == Some("login_required")
                && answer.param("state").as_deref() == Some(value),
            answer.describe(),
        );
        // The nonce comes back in the ID token (implicit, from /authorize).
        let answer = get(
            &signed_in,
            &t.url(&[
                ("client_id", spa.as_str()),
                ("redirect_uri", CALLBACK),
                ("response_type", "id_token"),
                ("scope", "openid"),
                ("nonce", value),
            ]),
        )
        .await;
        let nonce = match answer.param("id_token") {
            Some(id_token) => t.server.verify(&id_token, &spa).await["nonce"].clone(),
            None => Value::Null,
        };
        tally.case(
            format_args!("nonce {shown:?} in the ID token: exactly"),
            nonce.as_str() == Some(value),
            format_args!("{} nonce={nonce}", answer.describe()),
        );
    }
    tally.finish();
}

/// The matcher's properties over generated spellings: a URI is allowed iff it is one of
/// the registered strings, byte for byte, or — for a native app only — a registered
/// loopback IP callback with another valid port. Also: what registration accepts is
/// deliverable, and a dangerous scheme is never accepted.
#[test]
fn the_redirect_matcher_has_no_near_misses() {
    let mut tally = Tally::new("redirect/properties");
    let registered: Vec<String> = [
        CALLBACK,
        SPA_ORIGIN,
        WEB_CALLBACK,
        NATIVE_SCHEME,
        NATIVE_LOOPBACK,
        NATIVE_LOOPBACK_V6,
        NATIVE_LOCALHOST,
        "http://127.0.0.1:8080/cb?x=1",
    ]
    .map(String::from)
    .to_vec();
    let app_types = prop_oneof![
        Just(AppType::Spa),
        Just(AppType::RegularWeb),
        Just(AppType::Native)
    ];
    let runner = || {
        TestRunner::new(Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        })
    };

    // 1. Random edits of a registered callback (insert, delete, replace a character,
    //    change its case) never match, except a native app's loopback port.
    let edits = (
        0..registered.len(),
        0usize..200,
        0u8..4,
        prop_oneof![
            proptest::char::range('!', '~'),
            Just('\u{0430}'),
            Just('\u{ff0f}'),
            Just(' ')
        ],
        app_types.clone(),
    );
    let result = runner().run(&edits, |(which, at, edit, c, app_type)| {
        let original = &registered[which];
        let mut chars: Vec<char> = original.chars().collect();
        let at = at % (chars.len() + 1);
        match edit {
            0 => chars.insert(at, c),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            2 if at < chars.len() => chars[at] = c,
            3 if at < chars.len() => {
                let flipped = if chars[at].is_ascii_lowercase() {
                    chars[at].to_ascii_uppercase()
                } else {
                    chars[at].to_ascii_lowercase()
                };
                chars[at] = flipped;
            }
            _ => chars.push(c),
        }
        let mutated: String = chars.into_iter().collect();
        let allowed = redirect::redirect_uri_allowed(&mutated, &registered, app_type);
        let expected = registered.contains(&mutated)
            || (app_type == AppType::Native
                && registered
                    .iter()
                    .any(|r| loopback_port_variant(&mutated, r)));
        prop_assert_eq!(allowed, expected, "{:?} as {:?}", mutated, app_type);
        Ok(())
    });
    let (held, got) = outcome(result);
    tally.case(
        "property: an edited callback matches only when it is registered (or a native loopback port)",
        held,
        got,
    );

    // 2. Any port on a native app's loopback IP callback; no other app type's.
    let ports = (0u32..70_000, app_types.clone(), prop::bool::ANY);
    let result = runner().run(&ports, |(port, app_type, v6)| {
        let host = if v6 { "[::1]" } else { "127.0.0.1" };
        let uri = format!("http://{host}:{port}/callback");
        let allowed = redirect::redirect_uri_allowed(&uri, &registered, app_type);
        let expected = app_type == AppType::Native && (1..=65_535).contains(&port);
        prop_assert_eq!(allowed, expected, "{} as {:?}", uri, app_type);
        Ok(())
    });
    let (held, got) = outcome(result);
    tally.case(
        "property: a loopback IP callback matches on every valid port, for native apps only",
        held,
        got,
    );

    // 3. Arbitrary strings, and registered ones with anything appended, never match.
    let strings = (
        prop_oneof![
            "\\PC{0,60}",
            "(https?|com\\.example\\.app)://[a-z0-9.:@\\[\\]]{0,30}/[ -~]{0,20}"
        ],
        0..registered.len(),
        "[ -~]{1,12}",
        app_types.clone(),
    );
    let result = runner().run(&strings, |(random, which, suffix, app_type)| {
        let appended = format!("{}{suffix}", registered[which]);
        for candidate in [random, appended] {
            let allowed = redirect::redirect_uri_allowed(&candidate, &registered, app_type);
            let expected = registered.contains(&candidate)
                || (app_type == AppType::Native
                    && registered
                        .iter()
                        .any(|r| loopback_port_variant(&candidate, r)));
            prop_assert_eq!(allowed, expected, "{:?} as {:?}", candidate, app_type);
        }
        Ok(())
    });
    let (held, got) = outcome(result);
    tally.case(
        "property: random strings and registered callbacks with a suffix never match",
        held,
        got,
    );

    // 4. Registration and delivery agree: every callback validate accepts is deliverable;
    //    a dangerous scheme with anything after it is never accepted.
    let callbacks = (
        prop_oneof![
            "https://[a-z]{1,10}\\.example(:[1-9][0-9]{0,3})?/[a-z/]{0,10}",
            "[a-z]{2,5}\\.[a-z]{2,8}\\.[a-z]{2,6}:/[a-z]{0,10}",
            "http://127\\.0\\.0\\.1(:[1-9][0-9]{0,3})?/[a-z]{0,8}"
        ],
        prop_oneof![
            Just("javascript"),
            Just("JavaScript"),
            Just("vbscript"),
            Just("data"),
            Just("file"),
            Just("blob"),
            Just("about")
        ],
        "[ -~]{0,30}",
        app_types,
    );
    let result = runner().run(&callbacks, |(callback, scheme, rest, app_type)| {
        if validate::urls(std::slice::from_ref(&callback), UrlKind::Callback, app_type).is_ok() {
            prop_assert!(redirect::deliverable(&callback, app_type), "{:?}", callback);
        }
        let hostile = format!("{scheme}:{rest}");
        for kind in [UrlKind::Callback, UrlKind::WebOrigin, UrlKind::LogoutUrl] {
            prop_assert!(
                validate::urls(std::slice::from_ref(&hostile), kind, app_type).is_err(),
                "{:?} accepted as {:?} of {:?}",
                hostile,
                kind,
                app_type
            );
        }
        Ok(())
    });
    let (held, got) = outcome(result);
    tally.case(
        "property: accepted callbacks are deliverable; dangerous schemes never accepted",
        held,
        got,
    );
    tally.finish();
}

/// A property's run as a tally case: held, or proptest's (shrunk) counterexample.
fn outcome<T: std::fmt::Debug>(
    result: Result<(), proptest::test_runner::TestError<T>>,
) -> (bool, String) {
    match result {
        Ok(()) => (true, String::new()),
        Err(error) => (false, format!("{error:?}")),
    }
}

/// The test's own statement of RFC 8252 §7.3 for `candidate` against `registered`: both
/// are `http://127.0.0.1` or `http://[::1]`, optionally `:PORT` (1–65535, no leading
/// zero), then the same rest, byte for byte.
fn loopback_port_variant(candidate: &str, registered: &str) -> bool {
    fn split(uri: &str) -> Option<(&str, &str)> {
        let host = ["http://127.0.0.1", "http://[::1]"]
            .into_iter()
            .find(|host| uri.starts_with(host))?;
        let rest = &uri[host.len()..];
        let rest = match rest.strip_prefix(':') {
            Some(after) => {
                let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
                let port: u32 = digits.parse().ok()?;
                if digits.starts_with('0') || !(1..=65_535).contains(&port) {
                    return None;
                }
                &after[digits.len()..]
            }
            None => rest,
        };
        (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some((host, rest))
    }
    matches!((split(candidate), split(registered)), (Some(a), Some(b)) if a == b)
}
