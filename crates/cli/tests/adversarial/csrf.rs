//! CSRF on every hosted form: login, sign-up, consent (accept and decline), the password
//! reset request and code forms. Each form carries a per-browser token, double-submitted
//! (hidden field = cookie) and, with a login transaction, bound to it. A case submits a
//! form with the token missing, empty, wrong, another browser's, another transaction's,
//! from a cookie-less (cross-site) request, or replays it after use, and expects the
//! refusal (403 "Request could not be verified", or 400 for a transaction that is not
//! this browser's) — and re-reads the store or the next request to see that nothing
//! changed: no session, account, consent, mail or password.
//!
//! The server does not read `Origin` or `Sec-Fetch-Site`: a cross-site form post arrives
//! without the `SameSite=Lax` CSRF cookie, which the double submit refuses; the cases
//! send those headers along with what a browser would send cross-site. Also here: the
//! login CSRF and session fixation cases (an attacker's form, session or CSRF cookie
//! planted in the victim's browser), and `/authorize` POST (the OAuth endpoint, which
//! carries no token by design, cannot complete a hosted form). The Management API is
//! token-based; logout has no hosted form.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use tessera_core::AppType;
use tessera_testkit::{
    API, CALLBACK, PASSWORD, TestServer, client, create_user, hidden_field, location, params_of,
    pkce, spawn_with, spawn_with_mail,
};

use crate::harness::Tally;

const CSRF_REFUSED: &str = "Request could not be verified";
const LOGIN_EXPIRED: &str = "Login session expired";
const CONSENT_EXPIRED: &str = "Authorization request expired";
/// What a browser sends along with a form posted from another site.
const CROSS_SITE: &[(&str, &str)] = &[
    ("origin", "https://evil.example"),
    ("referer", "https://evil.example/"),
    ("sec-fetch-site", "cross-site"),
    ("sec-fetch-mode", "navigate"),
];

/// A browser whose cookies the test can read and plant (as an attacker controlling a
/// sibling host could).
struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
    origin: url::Url,
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        let jar = Arc::new(Jar::default());
        Browser {
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(Policy::none())
                .build()
                .expect("a client"),
            jar,
            origin: server.url("/").parse().expect("the server's URL"),
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.origin)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    }

    fn plant(&self, name: &str, value: &str) {
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &self.origin);
    }
}

/// A form as submitted: fields, and headers beside the browser's cookies.
struct Submission<'a> {
    fields: Vec<(&'a str, &'a str)>,
    headers: &'a [(&'a str, &'a str)],
}

async fn submit(
    server: &TestServer,
    browser: &Browser,
    path: &str,
    submission: &Submission<'_>,
) -> reqwest::Response {
    let mut request = browser.http.post(server.url(path)).form(&submission.fields);
    for (name, value) in submission.headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the server answers")
}

/// The problems of a response that should be the refusal page `title` with `status`:
/// no redirect, no session started.
async fn refusal_problems(response: reqwest::Response, status: u16, title: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if response.status().as_u16() != status {
        problems.push(format!("status {}", response.status()));
    }
    if let Some(to) = response.headers().get("location") {
        problems.push(format!("redirected to {to:?}"));
    }
    let starts_session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|cookie| {
            cookie
                .to_str()
                .is_ok_and(|c| c.contains("tessera_session="))
        });
    if starts_session {
        problems.push("a session cookie was set".into());
    }
    let body = response.text().await.unwrap_or_default();
    if !body.contains(&format!("<h1>{title}</h1>")) {
        problems.push(format!("not the {title:?} page"));
    }
    problems
}

fn record(tally: &mut Tally, case: String, problems: Vec<String>) {
    tally.case(case, problems.is_empty(), problems.join("; "));
}

/// Starts the SPA's login in `browser`: (transaction id, the page's CSRF token). With
/// `screen_hint`, the sign-up page.
async fn start_login(
    server: &TestServer,
    browser: &Browser,
    screen_hint: Option<&str>,
) -> (String, String) {
    let pkce = pkce();
    let mut extra = vec![
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if let Some(hint) = screen_hint {
        extra.push(("screen_hint", hint));
    }
    let response = browser
        .http
        .get(server.authorize_url(&extra))
        .send()
        .await
        .expect("the server answers");
    page_fields(server, browser, &location(&response)).await
}

/// The state (empty when none) and CSRF token of the form on the page at `path`.
async fn page_fields(server: &TestServer, browser: &Browser, path: &str) -> (String, String) {
    let page = browser
        .http
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

/// Whether `browser` has a session: silent authentication (`prompt=none`) gets a code.
async fn signed_in(server: &TestServer, browser: &Browser) -> bool {
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("prompt", "none"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser
        .http
        .get(url)
        .send()
        .await
        .expect("the server answers");
    response
        .headers()
        .get("location")
        .and_then(|to| to.to_str().ok())
        .is_some_and(|to| params_of(to).contains_key("code"))
}

/// `/authorize/resume` of a transaction: where it sends the browser.
async fn resume(server: &TestServer, browser: &Browser, transaction: &str) -> String {
    let response = browser
        .http
        .get(server.url(&format!("/authorize/resume?state={transaction}")))
        .send()
        .await
        .expect("the server answers");
    response
        .headers()
        .get("location")
        .and_then(|to| to.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Whether `/authorize/resume` delivered a code to the application.
fn delivered_code(back: &str) -> bool {
    back.starts_with(CALLBACK) && params_of(back).contains_key("code")
}

/// An attack on a form: (label, submitting browser, state, csrf, extra headers).
type TokenAttack<'a> = (
    &'static str,
    &'a Browser,
    &'a str,
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
);

/// The form attacks every hosted form must refuse with 403, given the victim's and another
/// browser's transaction and token. `victim` is the browser submitting, `bare` a browser
/// with no cookie at all.
fn token_attacks<'a>(
    victim: &'a Browser,
    bare: &'a Browser,
    (transaction, token): (&'a str, &'a str),
    (other_transaction, other_token): (&'a str, &'a str),
) -> Vec<TokenAttack<'a>> {
    vec![
        ("no csrf field", victim, transaction, None, &[]),
        ("an empty csrf", victim, transaction, Some(""), &[]),
        ("a wrong csrf", victim, transaction, Some(WRONG_TOKEN), &[]),
        (
            "another browser's csrf",
            victim,
            transaction,
            Some(other_token),
            &[],
        ),
        (
            "another browser's transaction",
            victim,
            other_transaction,
            Some(token),
            &[],
        ),
        (
            "another browser's whole form, posted cross-site",
            victim,
            other_transaction,
            Some(other_token),
            CROSS_SITE,
        ),
        (
            "the right token without its cookie",
            bare,
            transaction,
            Some(token),
            &[],
        ),
        (
            "the right token cross-site (no SameSite=Lax cookie)",
            bare,
            transaction,
            Some(token),
            CROSS_SITE,
        ),
    ]
}

const WRONG_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

async fn spawn() -> TestServer {
    spawn_with(|config| config.login_attempts_per_minute = 1_000).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_form() {
    let mut tally = Tally::new("csrf/login");
    let server = spawn().await;
    let (victim, attacker, bare) = (
        Browser::new(&server),
        Browser::new(&server),
        Browser::new(&server),
    );
    let (transaction, token) = start_login(&server, &victim, None).await;
    let (attacker_transaction, attacker_token) = start_login(&server, &attacker, None).await;
    let logins_before = server
        .store
        .find_user(&server.user_id)
        .await
        .unwrap()
        .unwrap()
        .logins_count;

    let attacks = token_attacks(
        &victim,
        &bare,
        (&transaction, &token),
        (&attacker_transaction, &attacker_token),
    );
    for (label, browser, state, csrf, headers) in attacks {
        let mut fields = vec![
            ("state", state),
            ("username", server.user_email.as_str()),
            ("password", PASSWORD),
        ];
        fields.extend(csrf.map(|csrf| ("csrf", csrf)));
        let response = submit(
            &server,
            browser,
            "/u/login",
            &Submission { fields, headers },
        )
        .await;
        record(
            &mut tally,
            format!("POST /u/login with {label}: 403"),
            refusal_problems(response, 403, CSRF_REFUSED).await,
        );
    }
    // Cookie tossing: the attacker's token planted as the victim's CSRF cookie does not
    // fit the victim's transaction.
    victim.plant("tessera_csrf", &attacker_token);
    let fields = vec![
        ("state", transaction.as_str()),
        ("csrf", attacker_token.as_str()),
        ("username", server.user_email.as_str()),
        ("password", PASSWORD),
    ];
    let response = submit(
        &server,
        &victim,
        "/u/login",
        &Submission {
            fields,
            headers: &[],
        },
    )
    .await;
    record(
        &mut tally,
        "POST /u/login with the attacker's token planted as the victim's cookie: 403".into(),
        refusal_problems(response, 403, CSRF_REFUSED).await,
    );
    victim.plant("tessera_csrf", &token);
    for (label, state) in [
        ("no transaction", ""),
        ("an unknown transaction", WRONG_TOKEN),
    ] {
        let fields = vec![
            ("state", state),
            ("csrf", token.as_str()),
            ("username", server.user_email.as_str()),
            ("password", PASSWORD),
        ];
        let response = submit(
            &server,
            &victim,
            "/u/login",
            &Submission {
                fields,
                headers: &[],
            },
        )
        .await;
        record(
            &mut tally,
            format!("POST /u/login with {label}: 400"),
            refusal_problems(response, 400, LOGIN_EXPIRED).await,
        );
    }

    // Nothing happened: nobody is signed in, no login was counted.
    for (who, browser) in [("victim", &victim), ("attacker", &attacker)] {
        let signed = signed_in(&server, browser).await;
        tally.case(
            format_args!("after the refusals the {who} is not signed in"),
            !signed,
            "signed in",
        );
    }
    let logins = server
        .store
        .find_user(&server.user_id)
        .await
        .unwrap()
        .unwrap()
        .logins_count;
    tally.case(
        "the refusals counted no login",
        logins == logins_before,
        format_args!("{logins_before} → {logins}"),
    );

    // The genuine form still works; replayed once the login is complete, it is refused.
    let fields = vec![
        ("state", transaction.as_str()),
        ("csrf", token.as_str()),
        ("username", server.user_email.as_str()),
        ("password", PASSWORD),
    ];
    let genuine = Submission {
        fields,
        headers: &[],
    };
    let response = submit(&server, &victim, "/u/login", &genuine).await;
    tally.status(
        "the genuine login form after the refusals",
        response.status().as_u16(),
        303,
    );
    let back = resume(&server, &victim, &transaction).await;
    tally.case(
        "the genuine login completes with a code",
        delivered_code(&back),
        &back,
    );
    let response = submit(&server, &victim, "/u/login", &genuine).await;
    record(
        &mut tally,
        "POST /u/login replayed after the login completed: 400".into(),
        refusal_problems(response, 400, LOGIN_EXPIRED).await,
    );
    tally.finish();
}

/// A session of `email`'s in a new browser; returns the browser and its session cookie.
async fn signed_in_browser(server: &TestServer, email: &str, password: &str) -> (Browser, String) {
    let browser = Browser::new(server);
    let (transaction, token) = start_login(server, &browser, None).await;
    let fields = vec![
        ("state", transaction.as_str()),
        ("csrf", token.as_str()),
        ("username", email),
        ("password", password),
    ];
    let response = submit(
        server,
        &browser,
        "/u/login",
        &Submission {
            fields,
            headers: &[],
        },
    )
    .await;
    assert_eq!(response.status(), 303, "{email} signs in");
    let session = browser.cookie("tessera_session").expect("a session cookie");
    (browser, session)
}

/// The `sub` of the ID token the SPA gets from `browser`'s session (no login page).
async fn subject_of_session(server: &TestServer, browser: &Browser) -> Option<String> {
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("prompt", "none"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser
        .http
        .get(url)
        .send()
        .await
        .expect("the server answers");
    let code = params_of(&location(&response)).get("code")?.clone();
    let (_, tokens) = server.redeem(&code, &pkce.verifier).await;
    let claims = server
        .verify(tokens["id_token"].as_str()?, &server.spa_client_id)
        .await;
    claims["sub"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_csrf_and_planted_sessions() {
    let mut tally = Tally::new("csrf/login_csrf");
    let server = spawn().await;
    let attacker_email = "attacker@example.com";
    let attacker_id = create_user(&server.store, attacker_email, PASSWORD).await;
    let (attacker, attacker_session) = signed_in_browser(&server, attacker_email, PASSWORD).await;

    // The victim starts a login; the attacker's session is planted in their browser before
    // they submit it. The login must start a new session, for the victim.
    let victim = Browser::new(&server);
    let (transaction, token) = start_login(&server, &victim, None).await;
    victim.plant("tessera_session", &attacker_session);
    let fields = vec![
        ("state", transaction.as_str()),
        ("csrf", token.as_str()),
        ("username", server.user_email.as_str()),
        ("password", PASSWORD),
    ];
    let response = submit(
        &server,
        &victim,
        "/u/login",
        &Submission {
            fields,
            headers: &[],
        },
    )
    .await;
    tally.status(
        "the victim's login with a planted session",
        response.status().as_u16(),
        303,
    );
    let session = victim.cookie("tessera_session");
    tally.case(
        "the login replaces the planted session id",
        session.as_deref().is_some_and(|s| s != attacker_session),
        format_args!("{session:?}"),
    );
    let back = resume(&server, &victim, &transaction).await;
    tally.case(
        "the victim's flow completes with a code",
        delivered_code(&back),
        &back,
    );
    let victim_subject = subject_of_session(&server, &victim).await;
    tally.case(
        "the victim's browser is signed in as the victim",
        victim_subject.as_deref() == Some(server.user_id.as_str()),
        format_args!("{victim_subject:?}"),
    );
    let attacker_subject = subject_of_session(&server, &attacker).await;
    tally.case(
        "the planted session is still the attacker's, not upgraded to the victim",
        attacker_subject.as_deref() == Some(attacker_id.as_str()),
        format_args!("{attacker_subject:?}"),
    );

    // The attacker's own login form (their transaction, token and credentials, from a
    // browser of theirs without a session) posted from the victim's browser, which holds
    // its own CSRF cookie: refused.
    let (attacker_transaction, attacker_token) =
        start_login(&server, &Browser::new(&server), None).await;
    let fresh_victim = Browser::new(&server);
    start_login(&server, &fresh_victim, None).await;
    let fields = vec![
        ("state", attacker_transaction.as_str()),
        ("csrf", attacker_token.as_str()),
        ("username", attacker_email),
        ("password", PASSWORD),
    ];
    let response = submit(
        &server,
        &fresh_victim,
        "/u/login",
        &Submission {
            fields,
            headers: CROSS_SITE,
        },
    )
    .await;
    record(
        &mut tally,
        "the attacker's login form auto-submitted from the victim's browser: 403".into(),
        refusal_problems(response, 403, CSRF_REFUSED).await,
    );
    let signed = signed_in(&server, &fresh_victim).await;
    tally.case(
        "the victim is not signed in as the attacker",
        !signed,
        "signed in",
    );
    tally.finish();
}

/// Over HTTPS the CSRF cookie is `__Host-` prefixed: a sibling host can toss a cookie
/// named `tessera_csrf` into the victim's browser, never a `__Host-` one. The server
/// serves HTTPS here (a self-signed certificate the client trusts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tossed_cookies_over_https() {
    let mut tally = Tally::new("csrf/cookie_tossing");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("a certificate");
    let tls = tessera_server::tls::server_config(
        certified.cert.pem().as_bytes(),
        certified.signing_key.serialize_pem().as_bytes(),
    )
    .expect("a TLS configuration");
    let server = spawn_with(move |config| config.tls = Some(tls)).await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    // Cookies by hand: what the attacker's browser holds, what the victim's is tossed.
    let https = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes())
                .expect("the certificate"),
        ])
        .redirect(Policy::none())
        .build()
        .expect("a client");
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    // The attacker's own login: their transaction, their cookie and its token.
    let response = https.get(&url).send().await.expect("answers");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .unwrap_or("")
        .to_string();
    let transaction = params_of(&location(&response))["state"].clone();
    tally.case(
        "the CSRF cookie is __Host-, Secure, HttpOnly, Path=/, without Domain",
        cookie.starts_with("__Host-tessera_csrf=")
            && cookie.contains("; Secure")
            && cookie.contains("; HttpOnly")
            && cookie.contains("; Path=/")
            && !cookie.to_ascii_lowercase().contains("domain="),
        &cookie,
    );
    let token = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map_or(String::new(), |(_, value)| value.to_string());
    let form = [
        ("state", transaction.as_str()),
        ("csrf", token.as_str()),
        ("username", server.user_email.as_str()),
        ("password", PASSWORD),
    ];
    for (label, tossed) in [
        ("tessera_csrf", format!("tessera_csrf={token}")),
        (
            "__host-tessera_csrf",
            format!("__host-tessera_csrf={token}"),
        ),
        (
            "__Secure-tessera_csrf",
            format!("__Secure-tessera_csrf={token}"),
        ),
    ] {
        let response = https
            .post(server.url("/u/login"))
            .header("cookie", tossed)
            .form(&form)
            .send()
            .await
            .expect("answers");
        record(
            &mut tally,
            format!("the attacker's login form, their token tossed as {label}: 403"),
            refusal_problems(response, 403, CSRF_REFUSED).await,
        );
    }
    // The control: the genuine cookie name passes the same form.
    let response = https
        .post(server.url("/u/login"))
        .header("cookie", format!("__Host-tessera_csrf={token}"))
        .form(&form)
        .send()
        .await
        .expect("answers");
    tally.status(
        "the same form with the __Host- cookie (the attacker's own browser)",
        response.status().as_u16(),
        303,
    );
    tally.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_form() {
    let mut tally = Tally::new("csrf/signup");
    let server = spawn().await;
    let (victim, other, bare) = (
        Browser::new(&server),
        Browser::new(&server),
        Browser::new(&server),
    );
    let (transaction, token) = start_login(&server, &victim, Some("signup")).await;
    let (other_transaction, other_token) = start_login(&server, &other, Some("signup")).await;
    let attacks = token_attacks(
        &victim,
        &bare,
        (&transaction, &token),
        (&other_transaction, &other_token),
    );
    for (index, (label, browser, state, csrf, headers)) in attacks.into_iter().enumerate() {
        let email = format!("csrf{index}@example.com");
        let mut fields = vec![
            ("state", state),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ];
        fields.extend(csrf.map(|csrf| ("csrf", csrf)));
        let response = submit(
            &server,
            browser,
            "/u/signup",
            &Submission { fields, headers },
        )
        .await;
        record(
            &mut tally,
            format!("POST /u/signup with {label}: 403"),
            refusal_problems(response, 403, CSRF_REFUSED).await,
        );
        let created = server
            .store
            .find_user_by_email(&email)
            .await
            .expect("the store reads");
        tally.case(
            format_args!("POST /u/signup with {label} created no account"),
            created.is_none(),
            format_args!("{created:?}"),
        );
    }
    let signed = signed_in(&server, &victim).await;
    tally.case(
        "after the refusals the victim is not signed in",
        !signed,
        "signed in",
    );
    // The genuine form creates the account; replayed after completion, it is refused.
    let fields = vec![
        ("state", transaction.as_str()),
        ("csrf", token.as_str()),
        ("email", "genuine@example.com"),
        ("password", PASSWORD),
    ];
    let genuine = Submission {
        fields,
        headers: &[],
    };
    let response = submit(&server, &victim, "/u/signup", &genuine).await;
    tally.status(
        "the genuine sign-up form after the refusals",
        response.status().as_u16(),
        303,
    );
    let back = resume(&server, &victim, &transaction).await;
    tally.case(
        "the genuine sign-up completes with a code",
        delivered_code(&back),
        &back,
    );
    let response = submit(&server, &victim, "/u/signup", &genuine).await;
    record(
        &mut tally,
        "POST /u/signup replayed after the sign-up completed: 400".into(),
        refusal_problems(response, 400, LOGIN_EXPIRED).await,
    );
    tally.finish();
}

/// A third-party application (consent required) on the quickstart API.
async fn third_party(server: &TestServer) -> String {
    let mut app = client("Third party", AppType::Spa, None);
    app.is_first_party = false;
    server.store.create_client(&app).await.expect("stored");
    app.client_id
}

/// The consent page `browser` reaches for `client_id`: (consent transaction, token).
async fn consent_page(server: &TestServer, browser: &Browser, client_id: &str) -> (String, String) {
    let pkce = pkce();
    let query = [
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid read:messages"),
        ("audience", API),
        ("state", "s"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let response = browser
        .http
        .get(server.url("/authorize"))
        .query(&query)
        .send()
        .await
        .expect("the server answers");
    let to = location(&response);
    assert!(to.starts_with("/u/consent?"), "{to}");
    page_fields(server, browser, &to).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_form() {
    let mut tally = Tally::new("csrf/consent");
    let server = spawn().await;
    let app = third_party(&server).await;
    let other_email = "other@example.com";
    create_user(&server.store, other_email, PASSWORD).await;
    // The victim, the same user in another browser, another user.
    let (victim, victim_session) = signed_in_browser(&server, &server.user_email, PASSWORD).await;
    let (second, _) = signed_in_browser(&server, &server.user_email, PASSWORD).await;
    let (stranger, _) = signed_in_browser(&server, other_email, PASSWORD).await;
    let (transaction, token) = consent_page(&server, &victim, &app).await;
    let (second_transaction, second_token) = consent_page(&server, &second, &app).await;
    let (_, stranger_token) = consent_page(&server, &stranger, &app).await;

    // The victim's session cookie alone (SameSite=None over HTTPS, for silent
    // authentication, so a cross-site post carries it), without the Lax CSRF cookie.
    let session_only = Browser::new(&server);
    session_only.plant("tessera_session", &victim_session);
    let mut attacks = token_attacks(
        &victim,
        &session_only,
        (&transaction, &token),
        (&second_transaction, &second_token),
    );
    attacks.retain(|(label, ..)| !label.contains("whole form"));
    for action in ["accept", "deny"] {
        for (label, browser, state, csrf, headers) in &attacks {
            let mut fields = vec![("state", *state), ("action", action)];
            fields.extend(csrf.map(|csrf| ("csrf", csrf)));
            let response = submit(
                &server,
                browser,
                "/u/consent",
                &Submission { fields, headers },
            )
            .await;
            record(
                &mut tally,
                format!("POST /u/consent action={action} with {label}: 403"),
                refusal_problems(response, 403, CSRF_REFUSED).await,
            );
        }
        // Another user's browser, with its own valid token, answering the victim's page;
        // a browser with the victim's CSRF cookie and no session.
        let no_session = Browser::new(&server);
        no_session.plant("tessera_csrf", &token);
        // The stranger's browser is not the one the transaction is bound to (403); the
        // browser holding the victim's CSRF cookie passes that binding but has no session.
        for (label, browser, csrf, status, page) in [
            (
                "another user's session",
                &stranger,
                stranger_token.as_str(),
                403,
                CSRF_REFUSED,
            ),
            (
                "no session",
                &no_session,
                token.as_str(),
                400,
                CONSENT_EXPIRED,
            ),
        ] {
            let fields = vec![
                ("state", transaction.as_str()),
                ("csrf", csrf),
                ("action", action),
            ];
            let response = submit(
                &server,
                browser,
                "/u/consent",
                &Submission {
                    fields,
                    headers: &[],
                },
            )
            .await;
            record(
                &mut tally,
                format!(
                    "POST /u/consent action={action} of the victim's page from {label}: {status}"
                ),
                refusal_problems(response, status, page).await,
            );
        }
    }
    let remembered = server
        .store
        .list_consents(&server.user_id)
        .await
        .expect("reads");
    tally.case(
        "the refusals stored no consent",
        remembered.is_empty(),
        format_args!("{remembered:?}"),
    );

    // The genuine answer works once; its replay (accept or decline) is refused.
    let fields = vec![
        ("state", transaction.as_str()),
        ("csrf", token.as_str()),
        ("action", "accept"),
    ];
    let response = submit(
        &server,
        &victim,
        "/u/consent",
        &Submission {
            fields,
            headers: &[],
        },
    )
    .await;
    // The page hands the answer back to /authorize/resume, which answers the application.
    let location = |response: &reqwest::Response| {
        response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let resume = location(&response);
    tally.case(
        "the genuine Accept hands back to /authorize/resume",
        response.status() == 303 && resume.starts_with("/authorize/resume?state="),
        format_args!("{} {resume}", response.status()),
    );
    let response = victim
        .http
        .get(server.url(&resume))
        .send()
        .await
        .expect("the server answers");
    let back = location(&response);
    tally.case(
        "the genuine Accept after the refusals reaches the application with a code",
        back.starts_with(CALLBACK) && params_of(&back).contains_key("code"),
        &back,
    );
    let remembered = server
        .store
        .list_consents(&server.user_id)
        .await
        .expect("reads");
    tally.case(
        "the genuine Accept is remembered",
        remembered.len() == 1,
        format_args!("{remembered:?}"),
    );
    for action in ["accept", "deny"] {
        let fields = vec![
            ("state", transaction.as_str()),
            ("csrf", token.as_str()),
            ("action", action),
        ];
        let response = submit(
            &server,
            &victim,
            "/u/consent",
            &Submission {
                fields,
                headers: &[],
            },
        )
        .await;
        record(
            &mut tally,
            format!("POST /u/consent action={action} replayed after the answer: 400"),
            refusal_problems(response, 400, CONSENT_EXPIRED).await,
        );
    }
    tally.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_forms() {
    let mut tally = Tally::new("csrf/password_reset");
    let (server, mut smtp) =
        spawn_with_mail(|config| config.login_attempts_per_minute = 1_000).await;
    let target = "target@example.com";
    create_user(&server.store, target, PASSWORD).await;
    let (victim, other, bare) = (
        Browser::new(&server),
        Browser::new(&server),
        Browser::new(&server),
    );
    // The victim's and another browser's login transactions, for the reset forms bound
    // to one; and the victim's reset page reached from a mail (no transaction).
    let (transaction, token) = start_login(&server, &victim, None).await;
    let (other_transaction, other_token) = start_login(&server, &other, None).await;
    let (_, unbound_token) = page_fields(&server, &victim, "/u/reset-password").await;
    assert_eq!(unbound_token, token, "one token per browser");

    let attacks = token_attacks(
        &victim,
        &bare,
        (&transaction, &token),
        (&other_transaction, &other_token),
    );
    for (label, browser, state, csrf, headers) in &attacks {
        for bound in [true, false] {
            if !bound && *state != transaction {
                continue;
            }
            let mut fields = vec![("email", target)];
            if bound {
                fields.push(("state", *state));
            }
            fields.extend(csrf.map(|csrf| ("csrf", csrf)));
            let response = submit(
                &server,
                browser,
                "/u/reset-password",
                &Submission { fields, headers },
            )
            .await;
            let form = if bound { "from a login" } else { "from a mail" };
            record(
                &mut tally,
                format!("POST /u/reset-password ({form}) with {label}: 403"),
                refusal_problems(response, 403, CSRF_REFUSED).await,
            );
        }
    }
    // No mail went out: the worker sends in order, so the next mail is the genuine one's.
    let fields = vec![
        ("state", transaction.as_str()),
        ("csrf", token.as_str()),
        ("email", target),
    ];
    let response = submit(
        &server,
        &victim,
        "/u/reset-password",
        &Submission {
            fields,
            headers: &[],
        },
    )
    .await;
    tally.status(
        "the genuine reset request after the refusals",
        response.status().as_u16(),
        200,
    );
    let mail = smtp.next().await;
    let code = mail.code();
    tally.case(
        "the refused requests sent no mail",
        smtp.try_next().is_none(),
        "more mail",
    );

    // The code form, with the right code, refused without the right token.
    let before = server.password_hash(target).await;
    let new_password = "a brand new passphrase 42";
    for (label, browser, state, csrf, headers) in &attacks {
        for bound in [true, false] {
            if !bound && *state != transaction {
                continue;
            }
            let mut fields = vec![
                ("email", target),
                ("code", code.as_str()),
                ("password", new_password),
            ];
            if bound {
                fields.push(("state", *state));
            }
            fields.extend(csrf.map(|csrf| ("csrf", csrf)));
            let response = submit(
                &server,
                browser,
                "/u/reset-password/code",
                &Submission { fields, headers },
            )
            .await;
            let form = if bound { "from a login" } else { "from a mail" };
            record(
                &mut tally,
                format!("POST /u/reset-password/code ({form}, the right code) with {label}: 403"),
                refusal_problems(response, 403, CSRF_REFUSED).await,
            );
        }
    }
    let after = server.password_hash(target).await;
    tally.case(
        "the refusals changed no password",
        after == before,
        "the hash changed",
    );
    // The genuine form, with the code the refusals did not use up; then its replay.
    let fields = vec![
        ("state", transaction.as_str()),
        ("csrf", token.as_str()),
        ("email", target),
        ("code", code.as_str()),
        ("password", new_password),
    ];
    let genuine = Submission {
        fields,
        headers: &[],
    };
    let response = submit(&server, &victim, "/u/reset-password/code", &genuine).await;
    tally.status(
        "the genuine code form after the refusals",
        response.status().as_u16(),
        303,
    );
    let changed = server.password_hash(target).await;
    tally.case(
        "the genuine code form changes the password",
        changed != before,
        "unchanged",
    );
    let response = submit(&server, &victim, "/u/reset-password/code", &genuine).await;
    tally.status(
        "POST /u/reset-password/code replayed after use",
        response.status().as_u16(),
        400,
    );
    let last = server.password_hash(target).await;
    tally.case(
        "the replay changed nothing",
        last == changed,
        "the hash changed",
    );
    tally.finish();
}

/// `/authorize` takes POST as the OAuth endpoint (no token, like its GET): it starts a
/// new login, never completes a hosted form posted to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_post_completes_no_form() {
    let mut tally = Tally::new("csrf/authorize_post");
    let server = spawn().await;
    let victim = Browser::new(&server);
    let (transaction, token) = start_login(&server, &victim, None).await;
    let login_fields = [
        ("state", transaction.as_str()),
        ("csrf", token.as_str()),
        ("username", server.user_email.as_str()),
        ("password", PASSWORD),
    ];
    let response = submit(
        &server,
        &victim,
        "/authorize",
        &Submission {
            fields: login_fields.to_vec(),
            headers: CROSS_SITE,
        },
    )
    .await;
    record(
        &mut tally,
        "the login form posted to /authorize (no client_id): 400".into(),
        refusal_problems(response, 400, "Invalid request").await,
    );
    let pkce = pkce();
    let mut fields = login_fields.to_vec();
    fields.extend([
        ("client_id", server.spa_client_id.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let response = submit(
        &server,
        &victim,
        "/authorize",
        &Submission {
            fields,
            headers: CROSS_SITE,
        },
    )
    .await;
    let to = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or("")
        .to_string();
    tally.case(
        "a valid /authorize POST carrying login fields goes to a new login page",
        response.status() == 302 && to.starts_with("/u/login?state=") && !to.contains(&transaction),
        format_args!("{} {to}", response.status()),
    );
    let signed = signed_in(&server, &victim).await;
    tally.case("the browser is not signed in", !signed, "signed in");
    tally.finish();
}

/// `POST /dbconnections/signup` carries no CSRF token (Auth0's endpoint, called by auth0-js
/// from the application's origin): what stops another site is that it takes JSON only, so a
/// cross-site form or `text/plain` post — which a browser sends without asking — is refused,
/// and a JSON post needs a CORS preflight only registered origins pass. Hostile members are
/// refused too; each case creates nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_api_takes_json_only() {
    let mut tally = Tally::new("csrf/dbconnections-signup");
    let server = spawn().await;
    let http = reqwest::Client::new();
    let victim = "csrf-signup@example.com";
    let json_body = serde_json::json!({
        "client_id": server.spa_client_id,
        "connection": "Username-Password-Authentication",
        "email": victim,
        "password": PASSWORD,
    })
    .to_string();
    let form_body = format!(
        "client_id={}&connection=Username-Password-Authentication&email={}&password=x{}",
        server.spa_client_id,
        victim.replace('@', "%40"),
        PASSWORD.replace(' ', "+"),
    );
    let simple_requests: [(&str, String); 5] = [
        ("text/plain", json_body.clone()),
        ("text/plain;charset=UTF-8", json_body.clone()),
        ("application/x-www-form-urlencoded", form_body.clone()),
        ("multipart/form-data; boundary=x", json_body.clone()),
        ("", json_body.clone()),
    ];
    for (content_type, body) in simple_requests {
        let mut request = http.post(server.url("/dbconnections/signup")).body(body);
        for (name, value) in CROSS_SITE {
            request = request.header(*name, *value);
        }
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let allowed = response
            .headers()
            .get("access-control-allow-origin")
            .cloned();
        tally.case(
            format_args!("a cross-site {content_type:?} post: 400, no CORS grant"),
            status == 400 && allowed.is_none(),
            format_args!("{status} {allowed:?}"),
        );
    }
    let preflight = http
        .request(
            reqwest::Method::OPTIONS,
            server.url("/dbconnections/signup"),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("the server answers");
    tally.case(
        "a JSON post's preflight from another site: no CORS grant",
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        preflight.status(),
    );
    let hostile: [(&str, serde_json::Value); 9] = [
        (
            "email",
            serde_json::json!("<script>alert(1)</script>@example.com"),
        ),
        ("email", serde_json::json!(["a@example.com"])),
        ("name", serde_json::json!("<img src=x onerror=alert(1)>")),
        ("nickname", serde_json::json!("a\u{0}b")),
        (
            "picture",
            serde_json::json!("data:text/html,<script>alert(1)</script>"),
        ),
        ("user_metadata", serde_json::json!({"$where": "1"})),
        ("user_metadata", serde_json::json!({"a.b": 1})),
        ("app_metadata", serde_json::json!({"admin": true})),
        ("email_verified", serde_json::json!(true)),
    ];
    for (member, value) in hostile {
        let mut body: serde_json::Value = serde_json::from_str(&json_body).unwrap();
        body[member] = value.clone();
        let response = http
            .post(server.url("/dbconnections/signup"))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        tally.status(
            format_args!("{member}: {value} is refused"),
            response.status().as_u16(),
            400,
        );
    }
    let created = server
        .store
        .find_user_by_email(victim)
        .await
        .expect("the store answers");
    tally.case(
        "no case created the account",
        created.is_none(),
        format_args!("{created:?}"),
    );
    tally.finish();
}
