//! Secrets absent from logs, URLs, error messages and files.
//!
//! The real `tessera serve` runs (through `common::Env`) on a tenant the CLI set up, once
//! with `RUST_LOG=trace` and once at the default level, while the test drives every flow
//! that carries a secret: passwords at login (right and wrong), sign-up, password reset
//! (its mailed code, through an SMTP receiver), an email verification ticket (its link
//! opened and its page posted) and the Management API; authorization
//! codes and PKCE verifiers; access, ID and refresh tokens (code flow, refresh, client
//! credentials, a token in a query string); client secrets (created, rotated by the CLI
//! and by the Management API, sent by client_secret_basic and _post); the session cookie;
//! the master key; an SMTP password (configured, and an email provider's); Management API
//! tokens.
//!
//! Then every secret is looked for — as is, in base64 at any alignment (standard and
//! URL-safe), percent-encoded — in the server's output, the URLs it redirected to (an
//! authorization code may travel in its own authorization response, nowhere else), the
//! CLI's error messages and listings, and the raw bytes of every file of the data
//! directory (the SQLite database and its WAL, read while the server runs and after it
//! stopped), where codes, tokens, secrets and passwords may only be hashes and signing keys
//! only sealed. Each secret × place is one case.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tessera_jose::MasterKey;
use tessera_store::Store;
use tessera_testkit::process::{Env, Running, terminate};
use tessera_testkit::smtp::SmtpReceiver;
use tessera_testkit::{hidden_field, params_of, pkce};

use crate::TESSERA;
use crate::harness::Tally;

const CALLBACK: &str = "http://localhost:3000/callback";
const ORIGIN: &str = "http://localhost:3000";
const API: &str = "https://secrets/api";
const USER: &str = "holder@example.com";

/// A secret the flows handled.
struct Secret {
    what: String,
    value: String,
    /// Further byte strings that are this secret (e.g. a key's raw bytes).
    raw: Vec<Vec<u8>>,
    /// Redirects that carry it by design (an authorization code's own response).
    carried_by: Vec<String>,
    /// A file that is this secret by design (the master key's).
    kept_in: Option<&'static str>,
}

#[derive(Default)]
struct Secrets(Vec<Secret>);

impl Secrets {
    fn add(&mut self, what: impl Into<String>, value: impl Into<String>) -> &mut Secret {
        let value = value.into();
        let what = what.into();
        // Shorter strings could turn up by chance.
        assert!(
            value.len() >= 7,
            "{what} is too short to look for: {value:?}"
        );
        self.0.push(Secret {
            what,
            value,
            raw: Vec::new(),
            carried_by: Vec::new(),
            kept_in: None,
        });
        self.0.last_mut().expect("just added")
    }
}

/// Every spelling of a secret that would give it away: as is, percent-encoded, and in
/// base64 wherever it starts in the encoded bytes (the characters that also encode a
/// neighbour are left out, so that any alignment matches).
fn spellings(secret: &Secret) -> Vec<(&'static str, Vec<u8>)> {
    let value = secret.value.as_bytes();
    let mut forms: Vec<(&'static str, Vec<u8>)> = vec![("as is", value.to_vec())];
    let encoded: String = url::form_urlencoded::byte_serialize(value).collect();
    if encoded.as_bytes() != value {
        forms.push(("percent-encoded", encoded.clone().into_bytes()));
        forms.push(("percent-encoded", encoded.replace('+', "%20").into_bytes()));
    }
    for (name, engine) in [
        ("base64", &STANDARD_NO_PAD),
        ("base64url", &URL_SAFE_NO_PAD),
    ] {
        for offset in 0..3 {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(value);
            let text = engine.encode(&shifted);
            let skip = [0, 2, 3][offset];
            if text.len() > skip + 2 {
                forms.push((name, text.as_bytes()[skip..text.len() - 2].to_vec()));
            }
        }
    }
    for raw in &secret.raw {
        forms.push(("raw bytes", raw.clone()));
    }
    forms
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Where secrets must not be: each place a name and its bytes.
#[derive(Default)]
struct Places {
    output: Vec<u8>,
    redirects: Vec<String>,
    cli_errors: Vec<u8>,
    cli_listings: Vec<u8>,
    files: BTreeMap<String, Vec<u8>>,
}

impl Places {
    fn check(&self, tally: &mut Tally, run: &str, secrets: &Secrets) {
        for secret in &secrets.0 {
            let forms = spellings(secret);
            let found = |bytes: &[u8]| {
                forms
                    .iter()
                    .find(|(_, form)| find(bytes, form))
                    .map(|(how, _)| *how)
            };
            let place = |tally: &mut Tally, where_: &str, bytes: &[u8]| {
                let how = found(bytes);
                tally.case(
                    format_args!("{run}: {} is absent from {where_}", secret.what),
                    how.is_none(),
                    format_args!("found {}", how.unwrap_or("")),
                );
            };
            place(tally, "the server's output", &self.output);
            let redirects: Vec<&str> = self
                .redirects
                .iter()
                .filter(|url| !secret.carried_by.contains(url))
                .map(String::as_str)
                .collect();
            place(
                tally,
                "the URLs the server redirected to",
                redirects.join("\n").as_bytes(),
            );
            place(tally, "the CLI's error messages", &self.cli_errors);
            place(tally, "the CLI's listings", &self.cli_listings);
            for (name, bytes) in &self.files {
                let file = name.split(" (").next().unwrap_or(name);
                if secret.kept_in == Some(file) {
                    // The search itself is checked here: the secret is where it belongs.
                    tally.case(
                        format_args!(
                            "{run}: {} is found in {name}, where it belongs",
                            secret.what
                        ),
                        found(bytes).is_some(),
                        "not found: the search misses what it looks for",
                    );
                    continue;
                }
                place(tally, &format!("the data directory's {name}"), bytes);
            }
            for url in &secret.carried_by {
                tally.case(
                    format_args!(
                        "{run}: {} is found in the redirect that carries it",
                        secret.what
                    ),
                    found(url.as_bytes()).is_some(),
                    format_args!("not found in {url}"),
                );
            }
        }
    }
}

/// Every file under `dir`, by path relative to it; `suffix` marks when it was read.
fn read_files(dir: &Path, suffix: &str, into: &mut BTreeMap<String, Vec<u8>>) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("the data directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                into.insert(format!("{name}{suffix}"), bytes);
            }
        }
    }
}

/// A browser: keeps cookies, follows no redirect, and remembers every `Location`.
struct Browser {
    http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    base: String,
    redirects: Arc<Mutex<Vec<String>>>,
}

impl Browser {
    fn new(base: &str, redirects: &Arc<Mutex<Vec<String>>>) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            http,
            jar,
            base: base.to_string(),
            redirects: redirects.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn record(&self, response: reqwest::Response) -> (u16, Option<String>, String) {
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        if let Some(location) = &location {
            self.redirects.lock().unwrap().push(location.clone());
        }
        (status, location, response.text().await.unwrap_or_default())
    }

    async fn get(&self, path: &str) -> (u16, Option<String>, String) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        self.record(response).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let response = self
            .http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap();
        self.record(response).await
    }

    /// The session cookie's value, once signed in.
    fn session(&self) -> Option<String> {
        let url: url::Url = self.base.parse().unwrap();
        let cookies = reqwest::cookie::CookieStore::cookies(&*self.jar, &url)?;
        cookies
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix("tessera_session="))
            .map(str::to_string)
    }
}

/// The login page of a new authorization request: (its path, its HTML).
/// `/authorize` for the SPA, code + PKCE, for the API or (`None`) for userinfo only.
fn authorize_path(spa: &str, challenge: &str, audience: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", spa)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email offline_access read:messages")
        .append_pair("state", "st")
        .append_pair("nonce", "n0nce")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    if let Some(audience) = audience {
        query.append_pair("audience", audience);
    }
    format!("/authorize?{}", query.finish())
}

async fn login_page(browser: &Browser, spa: &str, challenge: &str) -> (String, String) {
    let (status, location, _) = browser
        .get(&authorize_path(spa, challenge, Some(API)))
        .await;
    assert_eq!(status, 302, "authorize sends to the login page");
    let login = location.unwrap();
    let (_, _, page) = browser.get(&login).await;
    (login, page)
}

/// Signs in (after one wrong password); returns (code, the redirect carrying it).
async fn sign_in(
    browser: &Browser,
    spa: &str,
    challenge: &str,
    password: &str,
    wrong: &str,
) -> (String, String) {
    let (_, page) = login_page(browser, spa, challenge).await;
    let state = hidden_field(&page, "state");
    let csrf = hidden_field(&page, "csrf");
    let form = |password| {
        [
            ("state", state.clone()),
            ("csrf", csrf.clone()),
            ("username", USER.to_string()),
            ("password", password),
        ]
    };
    let wrong_form = form(wrong.to_string());
    let fields: Vec<(&str, &str)> = wrong_form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, _) = browser.post("/u/login", &fields).await;
    assert_eq!(status, 401, "a wrong password is refused");
    let right_form = form(password.to_string());
    let fields: Vec<(&str, &str)> = right_form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location, _) = browser.post("/u/login", &fields).await;
    assert_eq!(status, 303, "the right password signs in");
    let (status, location, _) = browser.get(&location.unwrap()).await;
    assert_eq!(status, 302, "resume answers the application");
    let back = location.unwrap();
    (params_of(&back)["code"].clone(), back)
}

async fn token(base: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_string()
}

/// A password nobody else uses in this run, with characters that encodings change.
fn passphrase(label: &str) -> String {
    format!("{label} {} +/&=%?", tessera_core::ids::alphanumeric(12))
}

/// Runs a command that must fail (within 30 s; one that serves instead is stopped and
/// fails the test) and returns what it printed.
fn refused(command: std::process::Command) -> Vec<u8> {
    let shown = format!("{command:?}");
    let mut running = Running::spawn(command);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = running.child.try_wait().expect("the CLI runs") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Everything it printed: the readers stop when its pipes close.
    let mut output = Vec::new();
    while let Ok(line) = running.lines.recv_timeout(Duration::from_secs(10)) {
        keep(&mut output, vec![line]);
    }
    assert!(
        status.is_some_and(|s| !s.success()),
        "{shown} should have been refused: {status:?}\n{}",
        String::from_utf8_lossy(&output)
    );
    output
}

/// What the CLI set up before the server started.
struct Tenant {
    /// The password of the user `users create` made.
    password: String,
    spa: String,
    web: String,
    web_secret: String,
    /// The web application's secret before `apps rotate-secret`.
    replaced_web_secret: String,
    m2m: String,
    m2m_secret: String,
    automation: String,
    automation_secret: String,
    smtp_password: String,
}

fn set_up(env: &Env, secrets: &mut Secrets, places: &mut Places) -> Tenant {
    // The master key and the signing keys, sealed with it, before anything else.
    env.json(&["keys", "list"]);
    env.json(&[
        "apis",
        "create",
        "--name",
        "Secrets API",
        "--identifier",
        API,
        "--scopes",
        "read:messages",
        "--allow-offline-access",
    ]);
    let spa = env.json(&[
        "apps",
        "create",
        "--name",
        "SPA",
        "--type",
        "spa",
        "--callbacks",
        CALLBACK,
        "--origins",
        ORIGIN,
        "--logout-urls",
        ORIGIN,
    ]);
    let web = env.json(&["apps", "create", "--name", "Web", "--type", "regular"]);
    let m2m = env.json(&["apps", "create", "--name", "Backend", "--type", "m2m"]);
    let automation = env.json(&["apps", "create", "--name", "Automation", "--type", "m2m"]);
    let m2m_id = text(&m2m["client_id"]);
    env.json(&[
        "grants",
        "create",
        "--app",
        &m2m_id,
        "--api",
        API,
        "--scopes",
        "read:messages",
    ]);
    let web_id = text(&web["client_id"]);
    secrets.add(
        "a client secret replaced since",
        text(&web["client_secret"]),
    );
    let rotated = env.json(&["apps", "rotate-secret", &web_id]);
    let web_secret = text(&rotated["client_secret"]);
    secrets.add("a client secret rotated by the CLI", &web_secret);
    secrets.add(
        "a machine-to-machine client secret",
        text(&m2m["client_secret"]),
    );
    secrets.add(
        "the Management API client's secret",
        text(&automation["client_secret"]),
    );

    let password = passphrase("holder");
    secrets.add("the password given to `users create`", &password);
    env.ok_with_stdin(
        &["users", "create", "--email", USER, "--password-stdin"],
        &format!("{password}\n"),
    );

    // Commands that fail with a secret in hand: their messages must not repeat it.
    let short = format!("s{}", tessera_core::ids::alphanumeric(6));
    secrets.add("a password too short for the policy", &short);
    let long = format!("{}{}", tessera_core::ids::alphanumeric(16), "L".repeat(184));
    for (args, stdin) in [
        (
            vec![
                "users",
                "create",
                "--email",
                "x@example.com",
                "--password-stdin",
            ],
            &short,
        ),
        (
            vec![
                "users",
                "create",
                "--email",
                "y@example.com",
                "--password-stdin",
            ],
            &long,
        ),
        (
            vec![
                "users",
                "set-password",
                "nobody@example.com",
                "--password-stdin",
            ],
            &password,
        ),
    ] {
        let (_, stderr) = env.fails_with_stdin(&args, Some(&format!("{stdin}\n")));
        places.cli_errors.extend(stderr.into_bytes());
    }
    secrets.add("a password too long for the policy", &long);
    let other_key = MasterKey::generate().to_text();
    secrets.add("a master key that does not open the keys", &other_key);
    let malformed = format!("not-a-master-key-{}", tessera_core::ids::alphanumeric(16));
    secrets.add("a malformed master key", &malformed);
    for key in [&other_key, &malformed] {
        let mut serve = env.command();
        serve
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TESSERA_MASTER_KEY", key);
        places.cli_errors.extend(refused(serve));
    }
    let smtp_password = format!("smtp-{}", tessera_core::ids::alphanumeric(16));
    secrets.add("an SMTP password", &smtp_password);
    for url in [
        format!("smtp://mailer:{smtp_password}@mail.example.com:25/inbox"),
        format!("smtp://mailer:{smtp_password}%FF@mail.example.com"),
        format!("smtps://mailer:{smtp_password}@[::1"),
        format!("ftp://mailer:{smtp_password}@127.0.0.1:25"),
    ] {
        let mut serve = env.command();
        serve
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TESSERA_SMTP_URL", &url)
            .env("TESSERA_EMAIL_FROM", "Tessera <no-reply@example.com>");
        places.cli_errors.extend(refused(serve));
    }
    for args in [
        vec!["apps", "list"],
        vec!["apps", "list", "--json"],
        vec!["apps", "show", &web_id],
        vec!["apps", "show", &web_id, "--json"],
        vec!["users", "show", USER, "--json"],
        vec!["keys", "list", "--json"],
    ] {
        places.cli_listings.extend(env.ok(&args).into_bytes());
    }

    Tenant {
        password,
        spa: text(&spa["client_id"]),
        web: web_id,
        web_secret,
        replaced_web_secret: text(&web["client_secret"]),
        m2m: m2m_id,
        m2m_secret: text(&m2m["client_secret"]),
        automation: text(&automation["client_id"]),
        automation_secret: text(&automation["client_secret"]),
        smtp_password,
    }
}

/// Every flow that carries a secret, against the running server at `base`.
async fn drive(
    base: &str,
    tenant: &Tenant,
    smtp: &mut SmtpReceiver,
    secrets: &mut Secrets,
    redirects: &Arc<Mutex<Vec<String>>>,
) {
    // Sign in (a wrong password first), redeem the code, refresh, call userinfo.
    let browser = Browser::new(base, redirects);
    let proof = pkce();
    let wrong = passphrase("wrong");
    secrets.add("a wrong password", &wrong);
    let (code, back) = sign_in(
        &browser,
        &tenant.spa,
        &proof.challenge,
        &tenant.password,
        &wrong,
    )
    .await;
    secrets.add("an authorization code", &code).carried_by = vec![back];
    secrets.add("a PKCE verifier", &proof.verifier);
    secrets.add(
        "a session cookie",
        browser.session().expect("a session cookie"),
    );
    let tokens = token(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &tenant.spa),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &proof.verifier),
        ],
        None,
    )
    .await;
    let access = text(&tokens["access_token"]);
    let id_token = text(&tokens["id_token"]);
    let refresh = text(&tokens["refresh_token"]);
    secrets.add("an access token", &access);
    secrets.add("an ID token", &id_token);
    secrets.add("a refresh token", &refresh);
    let refreshed = token(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &tenant.spa),
            ("refresh_token", &refresh),
        ],
        None,
    )
    .await;
    let access2 = text(&refreshed["access_token"]);
    let refresh2 = text(&refreshed["refresh_token"]);
    secrets.add("an access token from a refresh", &access2);
    secrets.add("a rotated refresh token", &refresh2);

    // Signed in already, without an audience: the access token is opaque, and the server
    // keeps it (hashed) to answer userinfo.
    let opaque_pkce = pkce();
    let (status, back, _) = browser
        .get(&authorize_path(&tenant.spa, &opaque_pkce.challenge, None))
        .await;
    assert_eq!(status, 302, "the session answers at once");
    let back = back.unwrap();
    let opaque_code = params_of(&back)["code"].clone();
    secrets
        .add("a second authorization code", &opaque_code)
        .carried_by = vec![back];
    secrets.add("a second PKCE verifier", &opaque_pkce.verifier);
    let opaque = token(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &tenant.spa),
            ("code", &opaque_code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &opaque_pkce.verifier),
        ],
        None,
    )
    .await;
    let opaque = text(&opaque["access_token"]);
    assert_eq!(opaque.matches('.').count(), 0, "an opaque token: {opaque}");
    secrets.add("an opaque access token", &opaque);

    let http = reqwest::Client::new();
    let status = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(&opaque)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "userinfo with the opaque token");
    let status = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "userinfo with the bearer header");
    let in_query = http
        .get(format!("{base}/userinfo?access_token={access2}"))
        .send()
        .await
        .unwrap()
        .status();
    // RFC 6750 §2.3, as passport-auth0 sends it: read, and never logged.
    assert_eq!(in_query, 200, "userinfo with the token in the query string");
    let status = http
        .post(format!("{base}/userinfo"))
        .form(&[("access_token", access2.as_str())])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "userinfo with the token in a form");
    let status = http
        .post(format!("{base}/oauth/revoke"))
        .form(&[
            ("client_id", tenant.spa.as_str()),
            ("token", refresh2.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "revocation");
    let logout = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", ORIGIN)
        .append_pair("state", "bye")
        .finish();
    let (status, _, _) = browser.get(&format!("/oidc/logout?{logout}")).await;
    assert_eq!(status, 302, "logout returns to the application");

    // Client credentials, by client_secret_post and client_secret_basic.
    let form = [("grant_type", "client_credentials"), ("audience", API)];
    let mut post = form.to_vec();
    post.extend([
        ("client_id", tenant.m2m.as_str()),
        ("client_secret", tenant.m2m_secret.as_str()),
    ]);
    let machine = token(base, &post, None).await;
    secrets.add("a client-credentials token", text(&machine["access_token"]));
    let machine = token(base, &form, Some((&tenant.m2m, &tenant.m2m_secret))).await;
    secrets.add(
        "a client-credentials token (client_secret_basic)",
        text(&machine["access_token"]),
    );
    // The regular application's new secret works, the replaced one does not.
    for (secret, expected) in [
        (&tenant.web_secret, 200),
        (&tenant.replaced_web_secret, 401),
    ] {
        let status = http
            .post(format!("{base}/oauth/revoke"))
            .basic_auth(&tenant.web, Some(secret))
            .form(&[("token", "not-a-refresh-token")])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, expected, "revocation authenticated by the web app");
    }

    // Sign-up.
    let newcomer = Browser::new(base, redirects);
    let (login, _) = login_page(&newcomer, &tenant.spa, &proof.challenge).await;
    let state = params_of(&login)["state"].clone();
    let (_, _, page) = newcomer.get(&format!("/u/signup?state={state}")).await;
    let signup_password = passphrase("newcomer");
    secrets.add("a password at sign-up", &signup_password);
    let (status, _, _) = newcomer
        .post(
            "/u/signup",
            &[
                ("state", &state),
                ("csrf", &hidden_field(&page, "csrf")),
                ("email", "newcomer@example.com"),
                ("password", &signup_password),
            ],
        )
        .await;
    assert_eq!(status, 303, "sign-up succeeds");

    // Password reset: the mailed code, a wrong one first, and the new password.
    let forgetful = Browser::new(base, redirects);
    let (login, _) = login_page(&forgetful, &tenant.spa, &proof.challenge).await;
    let state = params_of(&login)["state"].clone();
    let (_, _, page) = forgetful
        .get(&format!("/u/reset-password?state={state}"))
        .await;
    let (status, _, code_page) = forgetful
        .post(
            "/u/reset-password",
            &[
                ("state", &state),
                ("csrf", &hidden_field(&page, "csrf")),
                ("email", USER),
            ],
        )
        .await;
    assert_eq!(status, 200, "the reset mail is asked for");
    let reset_code = smtp.next().await.code();
    secrets.add("a password reset code", &reset_code);
    let new_password = passphrase("renewed");
    secrets.add("a password set by reset", &new_password);
    let wrong_code = if reset_code == "12345678" {
        "87654321"
    } else {
        "12345678"
    };
    for code in [wrong_code, reset_code.as_str()] {
        let (status, _, _) = forgetful
            .post(
                "/u/reset-password/code",
                &[
                    ("state", &hidden_field(&code_page, "state")),
                    ("csrf", &hidden_field(&code_page, "csrf")),
                    ("email", USER),
                    ("code", code),
                    ("password", &new_password),
                ],
            )
            .await;
        if code == reset_code {
            assert!(status < 400, "the right code is taken: {status}");
        }
    }

    // The Management API: its token, a secret it rotates, a password it sets.
    let audience = format!("{base}/api/v2/");
    let management = token(
        base,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &tenant.automation),
            ("client_secret", &tenant.automation_secret),
            ("audience", &audience),
        ],
        None,
    )
    .await;
    let management = text(&management["access_token"]);
    secrets.add("a Management API token", &management);
    let rotated: Value = http
        .post(format!(
            "{base}/api/v2/clients/{}/rotate-secret",
            tenant.web
        ))
        .bearer_auth(&management)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.add(
        "a client secret rotated by the Management API",
        text(&rotated["client_secret"]),
    );
    let managed_password = passphrase("managed");
    secrets.add(
        "a password set through the Management API",
        &managed_password,
    );
    let response = http
        .post(format!("{base}/api/v2/users"))
        .bearer_auth(&management)
        .json(&json!({
            "connection": "Username-Password-Authentication",
            "email": "managed@example.com",
            "password": managed_password,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "the Management API creates a user");
    let managed: Value = response.json().await.unwrap();
    // An email verification ticket: its link opened (a GET, with the ticket in the query)
    // and the page's form posted.
    let ticket: Value = http
        .post(format!("{base}/api/v2/tickets/email-verification"))
        .bearer_auth(&management)
        .json(&json!({"user_id": managed["user_id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = text(&ticket["ticket"]);
    let (_, value) = link
        .split_once("ticket=")
        .expect("the link carries the ticket");
    secrets.add("an email verification ticket", value);
    let path = link.trim_start_matches(base);
    let (status, _, page) = browser.get(path).await;
    assert_eq!(status, 200, "the verification page opens");
    let (status, _, _) = browser
        .post(
            "/u/email-verification",
            &[
                ("ticket", hidden_field(&page, "ticket").as_str()),
                ("csrf", hidden_field(&page, "csrf").as_str()),
            ],
        )
        .await;
    assert_eq!(status, 200, "the ticket verifies");

    // An email provider's SMTP password (disabled, so the flows' mail keeps its way).
    let provider_password = passphrase("provider");
    secrets.add("an email provider's SMTP password", &provider_password);
    let status = http
        .post(format!("{base}/api/v2/emails/provider"))
        .bearer_auth(&management)
        .json(&json!({
            "name": "smtp", "enabled": false,
            "default_from_address": "no-reply@example.com",
            "credentials": {"smtp_host": "mail.example.com", "smtp_port": 587,
                            "smtp_user": "mailer", "smtp_pass": provider_password},
        }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201, "the provider is configured");
    let shown = http
        .get(format!(
            "{base}/api/v2/emails/provider?fields=credentials&include_fields=true"
        ))
        .bearer_auth(&management)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("mailer"), "{shown}");
    assert!(
        !shown.contains(&provider_password),
        "GET shows the SMTP password"
    );
}

/// The signing keys' private halves, unsealed with the master key: they must appear in no
/// file in clear.
async fn private_keys(env: &Env, master: &MasterKey) -> Vec<Vec<u8>> {
    let store = Store::connect(&env.database_url()).await.unwrap();
    store
        .all_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|record| {
            master
                .open(&record.sealed_private_key, record.kid.as_bytes())
                .expect("the master key opens the keys")
        })
        .collect()
}

fn keep(output: &mut Vec<u8>, lines: Vec<String>) {
    for line in lines {
        output.extend(line.into_bytes());
        output.push(b'\n');
    }
}

/// The lines the server printed and nobody read yet.
fn drain(server: &Running, output: &mut Vec<u8>) {
    keep(output, server.lines.try_iter().collect());
}

/// One run: set up with the CLI, serve with `rust_log` (None: the default level), drive the
/// flows, stop, and look for every secret everywhere.
fn run(tally: &mut Tally, label: &str, rust_log: Option<&str>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = Env::new(TESSERA);
    let mut secrets = Secrets::default();
    let mut places = Places::default();
    let tenant = set_up(&env, &mut secrets, &mut places);

    let mut smtp = runtime.block_on(SmtpReceiver::start());
    let mut command = env.command();
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--smtp-url",
            &smtp.url(),
        ])
        .args(["--email-from", "Tessera <no-reply@example.com>"]);
    if let Some(level) = rust_log {
        command.env("RUST_LOG", level);
    }
    let mut server = Running::spawn(command);
    let started = server.wait_for("listening on http://", Duration::from_secs(20));
    let base = server.base_url_in(started.last().expect("the line"));
    keep(&mut places.output, started);
    let issuer = format!("{base}/");
    // The Management API is registered at start: now the automation may be granted it.
    env.json(&[
        "grants",
        "create",
        "--app",
        &tenant.automation,
        "--api",
        &format!("{issuer}api/v2/"),
        "--scopes",
        "read:clients,update:client_keys,create:users,create:user_tickets,\
         create:email_provider,read:email_provider",
    ]);
    let redirects = Arc::new(Mutex::new(Vec::new()));
    runtime.block_on(drive(&base, &tenant, &mut smtp, &mut secrets, &redirects));
    read_files(env.path(), " (while serving)", &mut places.files);
    terminate(&server.child);
    let stopped = server.wait_for("tessera stopped", Duration::from_secs(20));
    keep(&mut places.output, stopped);
    let _ = server.child.wait();
    drain(&server, &mut places.output);

    // A server whose SMTP URL carries a password says where mail goes, not the password.
    let smtp_password = &tenant.smtp_password;
    let mut command = env.command();
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "TESSERA_SMTP_URL",
            format!("smtp://mailer:{smtp_password}@127.0.0.1:1"),
        )
        .env("TESSERA_EMAIL_FROM", "Tessera <no-reply@example.com>");
    if let Some(level) = rust_log {
        command.env("RUST_LOG", level);
    }
    let mut with_credentials = Running::spawn(command);
    let started = with_credentials.wait_for("password reset by email", Duration::from_secs(20));
    keep(&mut places.output, started);
    terminate(&with_credentials.child);
    let stopped = with_credentials.wait_for("tessera stopped", Duration::from_secs(20));
    keep(&mut places.output, stopped);
    let _ = with_credentials.child.wait();
    drain(&with_credentials, &mut places.output);

    read_files(env.path(), "", &mut places.files);
    let master_text = std::fs::read_to_string(env.path().join("master.key")).unwrap();
    let master = MasterKey::parse(master_text.trim()).unwrap();
    let master_secret = secrets.add("the master key", master_text.trim());
    master_secret.kept_in = Some("master.key");
    if let Ok(bytes) = URL_SAFE_NO_PAD.decode(master_text.trim()) {
        master_secret.raw.push(bytes);
    }
    for (at, key) in runtime
        .block_on(private_keys(&env, &master))
        .into_iter()
        .enumerate()
    {
        let secret = secrets.add(
            format!("signing key {at}'s private key"),
            STANDARD.encode(&key),
        );
        secret.raw.push(key);
    }
    places.redirects = redirects.lock().unwrap().clone();
    tally.case(
        format_args!("{label}: the server's output was captured"),
        find(&places.output, b"tessera stopped"),
        "no output",
    );
    places.check(tally, label, &secrets);
}

#[test]
fn secrets_stay_out_of_logs_urls_messages_and_files_at_trace_level() {
    let mut tally = Tally::new("secrets/trace");
    run(&mut tally, "RUST_LOG=trace", Some("trace"));
    tally.finish();
}

#[test]
fn secrets_stay_out_of_logs_urls_messages_and_files_at_the_default_level() {
    let mut tally = Tally::new("secrets/default");
    run(&mut tally, "default log level", None);
    tally.finish();
}
