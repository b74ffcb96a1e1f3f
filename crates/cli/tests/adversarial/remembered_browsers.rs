//! "Remember this browser" against a hostile browser and a hostile tool: a forged or
//! oversize cookie, another user's remembered cookie, a cookie the administrator has since
//! invalidated, a remembered browser asking for a step-up, and settings calls with bad
//! bodies or too little scope. Each still asks the second factor (or is refused), never
//! a server error, and the settings read back as they were.

use std::sync::Arc;

use reqwest::Method;
use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use tessera_core::totp;
use tessera_testkit::*;

use crate::harness::Tally;

const COOKIE: &str = "tessera_mfa_remembered";
const MFA_ACR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
const OTHER: &str = "remembered-other@example.com";

async fn call(
    server: &TestServer,
    scopes: &[&str],
    (method, path): (Method, &str),
    body: Option<Value>,
) -> (u16, Value) {
    let token = server.management_token(scopes).await;
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A browser whose cookies the test can plant.
fn browser_with_jar() -> (reqwest::Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .unwrap();
    (client, jar)
}

/// The password of `email` in `browser` (a fresh login): where it leads.
async fn password(
    server: &TestServer,
    browser: &reqwest::Client,
    email: &str,
    extra: &[(&str, &str)],
) -> String {
    let pkce = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("scope", "openid"),
        ("prompt", "login"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let url = server.authorize_url(&params);
    let response = server.submit_login(browser, &url, email, PASSWORD).await;
    location(&response)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Enrolls an authenticator app for `email` in `browser` with the box ticked: the value of
/// the cookie that remembers the browser.
async fn enroll_remembered(server: &TestServer, browser: &reqwest::Client, email: &str) -> String {
    let to = password(server, browser, email, &[]).await;
    assert!(to.starts_with("/u/mfa"), "{to}");
    let page = browser
        .get(server.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = page.find("<code id=\"secret\">").unwrap() + "<code id=\"secret\">".len();
    let secret = &page[start..start + page[start..].find("</code>").unwrap()];
    let seed = totp::seed_from_text(secret).unwrap();
    let form = [
        ("state", hidden_field(&page, "state")),
        ("csrf", hidden_field(&page, "csrf")),
        ("action", "code".into()),
        ("code", totp::code_for_step(&seed, totp::step_at(now()))),
        ("remember_browser", "1".into()),
    ];
    let response = browser
        .post(server.url("/u/mfa"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{COOKIE}=")))
        .expect("the browser is remembered")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn remembered_browsers_are_not_forged_or_borrowed() {
    let mut tally = Tally::new("mfa/remembered-browsers");
    let server = spawn().await;
    let admin = [
        "update:guardian_factors",
        "update:mfa_policies",
        "read:mfa_policies",
        "create:users",
        "update:users",
    ];
    for (path, body) in [
        ("/guardian/factors/otp", json!({"enabled": true})),
        ("/guardian/policies", json!(["all-applications"])),
    ] {
        assert_eq!(
            call(&server, &admin, (Method::PUT, path), Some(body))
                .await
                .0,
            200
        );
    }
    let body = json!({"connection": "Username-Password-Authentication", "email": OTHER, "password": PASSWORD});
    assert_eq!(
        call(&server, &admin, (Method::POST, "/users"), Some(body))
            .await
            .0,
        201
    );
    let me = server.user_email.clone();
    let (mine, _) = browser_with_jar();
    let cookie = enroll_remembered(&server, &mine, &me).await;
    tally.case(
        "the holder's remembered browser skips the second factor",
        password(&server, &mine, &me, &[])
            .await
            .starts_with("/authorize/resume"),
        "asked",
    );
    let origin: url::Url = server.base.parse().unwrap();
    let planted = |value: &str| {
        let (client, jar) = browser_with_jar();
        jar.add_cookie_str(&format!("{COOKIE}={value}; Path=/"), &origin);
        client
    };

    let asked = |to: &str| to.starts_with("/u/mfa");
    let forged = planted(&"A".repeat(43));
    let to = password(&server, &forged, &me, &[]).await;
    tally.case("a forged cookie", asked(&to), &to);
    let oversize = planted(&"A".repeat(4000));
    let to = password(&server, &oversize, &me, &[]).await;
    tally.case("an oversize cookie", asked(&to), &to);
    let copied = planted(&cookie);
    let to = password(&server, &copied, OTHER, &[]).await;
    tally.case("my cookie presented for another user", asked(&to), &to);
    let to = password(&server, &mine, &me, &[("acr_values", MFA_ACR)]).await;
    tally.case("a step-up from the remembered browser", asked(&to), &to);

    // Settings: too little scope, and bodies out of bounds, change nothing.
    let (_, before) = call(&server, &admin, (Method::GET, "/guardian/settings"), None).await;
    let good = json!({"display_remember_me_checkbox": true, "remember_me_default_value": true,
                      "mfa_session_inactivity_timeout": 3600, "mfa_session_overall_timeout": 3600});
    let (status, _) = call(
        &server,
        &["read:mfa_policies"],
        (Method::PUT, "/guardian/settings"),
        Some(good.clone()),
    )
    .await;
    tally.status("settings: without update:mfa_policies", status, 403);
    for (case, bad) in [
        (
            "a timeout of a year",
            json!({"mfa_session_overall_timeout": 31_536_000}),
        ),
        (
            "a negative timeout",
            json!({"mfa_session_inactivity_timeout": -1}),
        ),
        (
            "a timeout as text",
            json!({"mfa_session_overall_timeout": "3600"}),
        ),
        ("an unknown member", json!({"remember_forever": true})),
    ] {
        let mut body = good.clone();
        body.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let (status, _) = call(
            &server,
            &admin,
            (Method::PUT, "/guardian/settings"),
            Some(body),
        )
        .await;
        tally.status(format_args!("settings: {case}"), status, 400);
    }
    let (status, _) = call(
        &server,
        &admin,
        (Method::PUT, "/guardian/settings"),
        Some(json!([])),
    )
    .await;
    tally.status("settings: not an object", status, 400);
    let (_, after) = call(&server, &admin, (Method::GET, "/guardian/settings"), None).await;
    tally.case("settings unchanged", after == before, &after);

    // Forgetting: too little scope refused; then the cookie no longer counts.
    let user: String = url::form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect();
    let path = format!("/users/{user}/multifactor/actions/invalidate-remember-browser");
    let (status, _) = call(&server, &["read:users"], (Method::POST, &path), None).await;
    tally.status("invalidate: without update:users", status, 403);
    assert_eq!(
        call(&server, &admin, (Method::POST, &path), None).await.0,
        204
    );
    let replayed = planted(&cookie);
    let to = password(&server, &replayed, &me, &[]).await;
    tally.case(
        "a cookie after the administrator forgot it",
        asked(&to),
        &to,
    );
    tally.finish();
}
