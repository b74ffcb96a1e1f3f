//! Redirect actions attacked (`api.redirect`, `/continue`): an action sending the user to a
//! hostile URL (`javascript:`, `data:`, protocol-relative, header injection, 10 kB) or
//! slipping its own `state` into the URL (refused); `/continue` reached with no state, a made-up
//! one, another browser's, a plain login transaction's, a replayed one, from a session
//! that ended or was replaced; forged answers (`alg: none`, HS512, another secret, another
//! state, user or login's token, expired, missing); a redirect where no browser waits
//! (`prompt=none`). Each fails closed: no code, never a redirect to the hostile URL, and
//! the secret never in an answer.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tessera_testkit::*;

use crate::harness::Tally;

const SECRET: &str = "a secret the action and its site share";

/// Actions' names are unique: each bound here gets the next number.
static NAMES: AtomicUsize = AtomicUsize::new(0);

/// Makes `code` post-login's only action, with `event.secrets.SHARED`.
async fn bind(server: &TestServer, code: &str) {
    let token = server
        .management_token(&["read:actions", "create:actions", "update:actions"])
        .await;
    let name = format!("redirect-{}", NAMES.fetch_add(1, Ordering::Relaxed));
    let id = server
        .deploy_action(&token, ("post-login", &name), code, &[("SHARED", SECRET)])
        .await;
    server.bind_actions(&token, "post-login", &[id]).await;
}

/// Sends every user to the site and resumes with the site's signed answer.
const TO_THE_SITE: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  api.redirect.sendUserTo('https://site.example/step', {
    query: { session_token: api.redirect.encodeToken({ secret: event.secrets.SHARED, payload: {} }) },
  });
};
exports.onContinuePostLogin = async (event, api) => {
  const answer = api.redirect.validateToken({ secret: event.secrets.SHARED });
  api.idToken.setCustomClaim('https://example.com/answer', answer.ok);
};
"#;

fn code_request(server: &TestServer, extra: &[(&str, &str)]) -> String {
    let pkce = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "app-state"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    server.authorize_url(&params)
}

/// Signs in with a fresh browser; returns it and the `state` the site was given.
async fn away(server: &TestServer) -> (reqwest::Client, String) {
    let browser = browser();
    let to = server.sign_in(&browser, &code_request(server, &[])).await;
    assert!(to.starts_with("https://site.example/step?"), "{to}");
    (browser, params_of(&to)["state"].clone())
}

fn hs(algorithm: jsonwebtoken::Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// HS256 under an empty key, which jsonwebtoken refuses to sign with.
fn hs256_empty_key(claims: &Value) -> String {
    use base64::Engine;
    let signing_input = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "typ": "JWT"})),
        b64(claims)
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"");
    let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    )
}

fn b64(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

fn claims(server: &TestServer, state: &str) -> Value {
    json!({"iss": "site.example", "sub": server.user_id, "state": state, "iat": now(), "exp": now() + 60, "ok": true})
}

/// What `/continue` answered: its status and where it sends the browser.
async fn come_back(
    browser: &reqwest::Client,
    server: &TestServer,
    form: &[(&str, &str)],
) -> (u16, String) {
    let response = browser
        .post(server.url("/continue"))
        .form(form)
        .send()
        .await
        .unwrap();
    let to = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (response.status().as_u16(), to)
}

fn no_code(to: &str) -> bool {
    !params_of(to).contains_key("code") && !to.contains(SECRET)
}

#[tokio::test]
async fn an_action_cannot_send_users_to_a_hostile_url() {
    let mut tally = Tally::new("action_redirects/urls");
    let server = spawn().await;
    let long = format!("https://site.example/{}", "a".repeat(10_000));
    let hostile: [(&str, String); 6] = [
        ("javascript:", "javascript:alert(document.cookie)".into()),
        ("data:", "data:text/html,<script>alert(1)</script>".into()),
        ("protocol-relative", "//evil.example/steal".into()),
        ("a relative path", "/u/login".into()),
        (
            "a header injection",
            "https://site.example/\r\nSet-Cookie: pwned=1".into(),
        ),
        ("10 kB", long),
    ];
    for (what, url) in hostile {
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.redirect.sendUserTo({}); }};",
            serde_json::to_string(&url).unwrap()
        );
        bind(&server, &code).await;
        let to = server
            .sign_in(&browser(), &code_request(&server, &[]))
            .await;
        tally.case(
            format!("sendUserTo({what}): the login fails closed at the application"),
            to.starts_with(CALLBACK) && params_of(&to)["error"] == "access_denied" && no_code(&to),
            &to,
        );
    }

    // A `state` of the action's own would hand the site a value that is not the login's:
    // the action fails, and the site is never reached.
    for planted in [
        "api.redirect.sendUserTo('https://site.example/step?state=planted');",
        "api.redirect.sendUserTo('https://site.example/step', { query: { state: 'planted' } });",
        "api.redirect.sendUserTo('https://site.example/step?%73tate=planted');",
    ] {
        bind(
            &server,
            &format!("exports.onExecutePostLogin = async (event, api) => {{ {planted} }};"),
        )
        .await;
        let to = server
            .sign_in(&browser(), &code_request(&server, &[]))
            .await;
        tally.case(
            format!("{planted}: the login fails closed, the site is not reached"),
            to.starts_with(CALLBACK) && params_of(&to)["error"] == "access_denied" && no_code(&to),
            &to,
        );
    }

    // prompt=none: no browser waits for a page, so no redirect.
    bind(&server, TO_THE_SITE).await;
    let browser = browser();
    let (_, _) = (
        server.sign_in(&browser, &code_request(&server, &[])).await,
        (),
    );
    let silent = browser
        .get(code_request(&server, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    let to = location(&silent);
    tally.case(
        "prompt=none: the action's redirect fails the request, no page is shown",
        to.starts_with(CALLBACK) && params_of(&to).contains_key("error") && no_code(&to),
        &to,
    );
    tally.finish();
}

#[tokio::test]
async fn the_way_back_is_closed_to_everyone_but_the_login_that_left() {
    let mut tally = Tally::new("action_redirects/continue");
    let server = spawn().await;
    bind(&server, TO_THE_SITE).await;

    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (browser_a, state_a) = away(&server).await;
    let token_a = hs(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        &claims(&server, &state_a),
    );

    let (status, to) = come_back(&browser_a, &server, &[("session_token", &token_a)]).await;
    tally.case(
        "no state: refused",
        status == 400 && to.is_empty(),
        format!("{status} {to}"),
    );
    let (status, to) = come_back(
        &browser_a,
        &server,
        &[
            ("state", "made-up-state-0123456789"),
            ("session_token", &token_a),
        ],
    )
    .await;
    tally.case(
        "a made-up state: refused",
        status == 400 && to.is_empty(),
        format!("{status} {to}"),
    );
    let (status, to) = come_back(
        &stranger,
        &server,
        &[("state", &state_a), ("session_token", &token_a)],
    )
    .await;
    tally.case(
        "another browser with the state and a good answer: refused",
        status == 403 && to.is_empty(),
        format!("{status} {to}"),
    );
    let (browser_b, state_b) = away(&server).await;
    let (status, to) = come_back(
        &browser_b,
        &server,
        &[("state", &state_a), ("session_token", &token_a)],
    )
    .await;
    tally.case(
        "another login's state from a browser that is away too: refused",
        status == 403 && to.is_empty(),
        format!("{status} {to}"),
    );

    // A login transaction that is not suspended (the login page's) does not continue.
    let fresh = browser();
    let start = fresh.get(code_request(&server, &[])).send().await.unwrap();
    let login_page = location(&start);
    let login_state = params_of(&server.url(&login_page))["state"].clone();
    let (status, to) = come_back(&fresh, &server, &[("state", &login_state)]).await;
    tally.case(
        "a login page's transaction: not a way back",
        status == 400 && to.is_empty(),
        format!("{status} {to}"),
    );

    // The right browser comes back once.
    let (_, to) = come_back(
        &browser_a,
        &server,
        &[("state", &state_a), ("session_token", &token_a)],
    )
    .await;
    tally.case(
        "the login that left comes back with its code",
        params_of(&to).contains_key("code"),
        &to,
    );
    let (status, to) = come_back(
        &browser_a,
        &server,
        &[("state", &state_a), ("session_token", &token_a)],
    )
    .await;
    tally.case(
        "the same state again: refused",
        status == 400 && to.is_empty(),
        format!("{status} {to}"),
    );

    // B's own way back still works after all that.
    let token_b = hs(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        &claims(&server, &state_b),
    );
    let (_, to) = come_back(
        &browser_b,
        &server,
        &[("state", &state_b), ("session_token", &token_b)],
    )
    .await;
    tally.case(
        "the other login was not spent by the attempts on it",
        params_of(&to).contains_key("code"),
        &to,
    );

    // A session that ended, or was replaced by a new sign-in, does not come back.
    let (browser_c, state_c) = away(&server).await;
    browser_c
        .get(server.url("/v2/logout"))
        .send()
        .await
        .unwrap();
    let token_c = hs(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        &claims(&server, &state_c),
    );
    let (_, to) = come_back(
        &browser_c,
        &server,
        &[("state", &state_c), ("session_token", &token_c)],
    )
    .await;
    tally.case(
        "signed out while away: login_required, no code",
        params_of(&to).get("error").map(String::as_str) == Some("login_required") && no_code(&to),
        &to,
    );
    let (browser_d, state_d) = away(&server).await;
    // A new sign-in in the same browser (prompt=login) replaces the session.
    let again = server
        .sign_in(&browser_d, &code_request(&server, &[("prompt", "login")]))
        .await;
    assert!(again.starts_with("https://site.example/step?"), "{again}");
    let token_d = hs(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        &claims(&server, &state_d),
    );
    let (status, to) = come_back(
        &browser_d,
        &server,
        &[("state", &state_d), ("session_token", &token_d)],
    )
    .await;
    tally.case(
        "a session replaced while away: no code",
        no_code(&to) && (status == 302 || status == 303 || status == 400),
        format!("{status} {to}"),
    );
    tally.finish();
}

#[tokio::test]
async fn forged_answers_from_the_site_fail_the_login_closed() {
    let mut tally = Tally::new("action_redirects/answers");
    let server = spawn().await;
    bind(&server, TO_THE_SITE).await;
    let (_, other_state) = away(&server).await;
    type Forge = Box<dyn Fn(&TestServer, &str) -> Option<String>>;
    let forgeries: Vec<(&str, Forge)> = vec![
        ("no token", Box::new(|_, _| None)),
        (
            "alg none",
            Box::new(|server, state| {
                Some(format!(
                    "{}.{}.",
                    b64(&json!({"alg": "none", "typ": "JWT"})),
                    b64(&claims(server, state))
                ))
            }),
        ),
        (
            "HS512 under the secret",
            Box::new(|server, state| {
                Some(hs(
                    jsonwebtoken::Algorithm::HS512,
                    SECRET,
                    &claims(server, state),
                ))
            }),
        ),
        (
            "another secret",
            Box::new(|server, state| {
                Some(hs(
                    jsonwebtoken::Algorithm::HS256,
                    "guessed",
                    &claims(server, state),
                ))
            }),
        ),
        (
            "an empty secret",
            Box::new(|server, state| Some(hs256_empty_key(&claims(server, state)))),
        ),
        ("another login's state", {
            let other_state = other_state.clone();
            Box::new(move |server, _| {
                Some(hs(
                    jsonwebtoken::Algorithm::HS256,
                    SECRET,
                    &claims(server, &other_state),
                ))
            })
        }),
        (
            "another user",
            Box::new(|server, state| {
                let mut forged = claims(server, state);
                forged["sub"] = json!("auth0|somebody-else");
                Some(hs(jsonwebtoken::Algorithm::HS256, SECRET, &forged))
            }),
        ),
        (
            "expired",
            Box::new(|server, state| {
                let mut forged = claims(server, state);
                forged["exp"] = json!(now() - 10);
                Some(hs(jsonwebtoken::Algorithm::HS256, SECRET, &forged))
            }),
        ),
        (
            "no iss",
            Box::new(|server, state| {
                let mut forged = claims(server, state);
                forged.as_object_mut().unwrap().remove("iss");
                Some(hs(jsonwebtoken::Algorithm::HS256, SECRET, &forged))
            }),
        ),
        (
            "a tampered payload",
            Box::new(|server, state| {
                let good = hs(
                    jsonwebtoken::Algorithm::HS256,
                    SECRET,
                    &claims(server, state),
                );
                let mut forged = claims(server, state);
                forged["sub"] = json!("auth0|somebody-else");
                let parts: Vec<&str> = good.split('.').collect();
                Some(format!("{}.{}.{}", parts[0], b64(&forged), parts[2]))
            }),
        ),
        (
            "not a JWT",
            Box::new(|_, _| Some("not.a.jwt-at-all".into())),
        ),
    ];
    for (what, forge) in forgeries {
        let (browser, state) = away(&server).await;
        let mut form = vec![("state", state.clone())];
        if let Some(token) = forge(&server, &state) {
            form.push(("session_token", token));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (_, to) = come_back(&browser, &server, &form).await;
        tally.case(
            format!("{what}: access_denied at the application, no code"),
            to.starts_with(CALLBACK) && params_of(&to)["error"] == "access_denied" && no_code(&to),
            &to,
        );
    }
    tally.finish();
}
