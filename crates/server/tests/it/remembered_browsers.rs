//! "Remember this browser" over HTTP: a user who ticks it after an authenticator code skips
//! the second factor the tenant's policy asks at the next login in that browser — not in
//! another browser, not as another user, not for a step-up, not after an administrator
//! forgets the browser or resets the factors; an action decides with
//! `allowRememberBrowser`; and the tenant's `/guardian/settings` hide the checkbox or turn
//! it on by default.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::totp;
use tessera_testkit::*;

use crate::actions::payload;
use crate::mfa::{
    answer, api, code_text, finish, hidden_field_or_link, html, now, require_mfa, urlencode,
};

const MFA_ACR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
const REMEMBERED: &str = "tessera_mfa_remembered";

/// A login of the test user with `extra` parameters, a fresh one (`prompt=login`) even
/// in a browser with a session: where the password leads (its Location) and the verifier.
async fn password(
    server: &TestServer,
    browser: &reqwest::Client,
    extra: &[(&str, &str)],
) -> (String, String) {
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
    let email = server.user_email.clone();
    let response = server.submit_login(browser, &url, &email, PASSWORD).await;
    assert_eq!(response.status(), 303);
    (location(&response), pkce.verifier)
}

fn sets_remembered(response: &reqwest::Response) -> bool {
    response.headers().get_all("set-cookie").iter().any(|c| {
        c.to_str()
            .unwrap_or("")
            .starts_with(&format!("{REMEMBERED}="))
    })
}

/// The code of the step after `last` (never a step used before), and that step.
fn next_code(seed: &[u8], last: i64) -> (String, i64) {
    let step = totp::step_at(now()).max(last + 1);
    (totp::code_for_step(seed, step), step)
}

#[tokio::test]
async fn a_remembered_browser_skips_the_policys_second_factor() {
    let server = spawn().await;
    require_mfa(&server, true).await;
    let (status, settings) = api(&server, Method::GET, "/guardian/settings", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        settings,
        json!({"display_remember_me_checkbox": true, "remember_me_default_value": false,
               "mfa_session_inactivity_timeout": 604800, "mfa_session_overall_timeout": 2592000})
    );

    // Enrollment with the box ticked: the browser gets the cookie.
    let first = browser();
    let (to, verifier) = password(&server, &first, &[]).await;
    assert!(to.starts_with("/u/mfa"), "{to}");
    let page = html(&server, &first, &to).await;
    assert!(page.contains("Remember this browser for 30 days"), "{page}");
    let seed = totp::seed_from_text(&code_text(&page, "secret")).unwrap();
    let (code, step) = next_code(&seed, 0);
    let enrolled = answer(
        &server,
        &first,
        &page,
        &[("code", &code), ("remember_browser", "1")],
    )
    .await;
    assert_eq!(enrolled.status(), 200);
    assert!(sets_remembered(&enrolled));
    let saved = enrolled.text().await.unwrap();
    let recovery = code_text(&saved, "recovery-code");
    let resume = format!("/authorize/resume?state={}", hidden_field_or_link(&saved));
    finish(&server, &first, &resume, &verifier).await;

    // The next login in that browser: the password, then straight back.
    let (to, verifier) = password(&server, &first, &[]).await;
    assert!(to.starts_with("/authorize/resume"), "skipped: {to}");
    let tokens = finish(&server, &first, &to, &verifier).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "mfa"]), "{claims}");

    // Another browser is asked; so is a step-up in the remembered one, without the box.
    let (to, _) = password(&server, &browser(), &[]).await;
    assert!(to.starts_with("/u/mfa"), "another browser: {to}");
    let (to, _) = password(&server, &first, &[("acr_values", MFA_ACR)]).await;
    assert!(to.starts_with("/u/mfa"), "a step-up: {to}");
    let page = html(&server, &first, &to).await;
    assert!(!page.contains("Remember this browser"), "{page}");

    // A code without the box ticked remembers nothing.
    let second = browser();
    let (to, _) = password(&server, &second, &[]).await;
    let page = html(&server, &second, &to).await;
    let (code, _) = next_code(&seed, step);
    let passed = answer(&server, &second, &page, &[("code", &code)]).await;
    assert_eq!(passed.status(), 303);
    assert!(!sets_remembered(&passed));

    // Forgotten by an administrator: asked again.
    let user = urlencode(&server.user_id);
    let path = format!("/users/{user}/multifactor/actions/invalidate-remember-browser");
    let (status, _) = api(&server, Method::POST, &path, None).await;
    assert_eq!(status, 204);
    let (to, _) = password(&server, &first, &[]).await;
    assert!(to.starts_with("/u/mfa"), "forgotten: {to}");
    let (status, _) = api(
        &server,
        Method::POST,
        "/users/auth0%7Cnobody/multifactor/actions/invalidate-remember-browser",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Remembered again (with the recovery code: the next time step may not have come),
    // then the factors reset: forgotten with them.
    let page = html(&server, &first, &format!("{to}&recovery=1")).await;
    let passed = answer(
        &server,
        &first,
        &page,
        &[("recovery_code", &recovery), ("remember_browser", "1")],
    )
    .await;
    assert!(sets_remembered(&passed));
    let (to, _) = password(&server, &first, &[]).await;
    assert!(to.starts_with("/authorize/resume"), "{to}");
    let path = format!("/users/{user}/authenticators");
    assert_eq!(api(&server, Method::DELETE, &path, None).await.0, 204);
    let (to, _) = password(&server, &first, &[]).await;
    assert!(to.starts_with("/u/mfa"), "reset: {to}");
}

#[tokio::test]
async fn the_tenant_hides_the_box_or_ticks_it_and_bad_settings_change_nothing() {
    let server = spawn().await;
    require_mfa(&server, true).await;
    let put = |body: Value| {
        let server = &server;
        async move { api(server, Method::PUT, "/guardian/settings", Some(body)).await }
    };
    let good = json!({"display_remember_me_checkbox": false, "remember_me_default_value": false,
                      "mfa_session_inactivity_timeout": 3600, "mfa_session_overall_timeout": 86400});
    for bad in [
        json!({"display_remember_me_checkbox": false}),
        json!({"display_remember_me_checkbox": "no", "remember_me_default_value": false,
               "mfa_session_inactivity_timeout": 3600, "mfa_session_overall_timeout": 86400}),
        json!({"display_remember_me_checkbox": false, "remember_me_default_value": false,
               "mfa_session_inactivity_timeout": 60, "mfa_session_overall_timeout": 86400}),
        json!({"display_remember_me_checkbox": false, "remember_me_default_value": false,
               "mfa_session_inactivity_timeout": 7200, "mfa_session_overall_timeout": 3600}),
        json!({"display_remember_me_checkbox": false, "remember_me_default_value": false,
               "mfa_session_inactivity_timeout": 3600, "mfa_session_overall_timeout": 8_000_000}),
        json!({"display_remember_me_checkbox": false, "remember_me_default_value": false,
               "mfa_session_inactivity_timeout": 3600, "mfa_session_overall_timeout": 86400,
               "remember_forever": true}),
    ] {
        let (status, body) = put(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, unchanged) = api(&server, Method::GET, "/guardian/settings", None).await;
    assert_eq!(
        unchanged["display_remember_me_checkbox"], true,
        "nothing changed"
    );

    // Hidden and off: no box, and a code remembers nothing.
    assert_eq!(put(good.clone()).await, (200, good));
    let first = browser();
    let (to, _) = password(&server, &first, &[]).await;
    let page = html(&server, &first, &to).await;
    assert!(!page.contains("Remember this browser"), "{page}");
    let seed = totp::seed_from_text(&code_text(&page, "secret")).unwrap();
    let (code, step) = next_code(&seed, 0);
    let passed = answer(
        &server,
        &first,
        &page,
        &[("code", &code), ("remember_browser", "1")],
    )
    .await;
    assert_eq!(passed.status(), 200);
    assert!(!sets_remembered(&passed), "the box is not offered");

    // Hidden and on: every second factor remembers the browser, for a day.
    let on = json!({"display_remember_me_checkbox": false, "remember_me_default_value": true,
                    "mfa_session_inactivity_timeout": 3600, "mfa_session_overall_timeout": 86400});
    assert_eq!(put(on.clone()).await, (200, on));
    let (to, _) = password(&server, &first, &[]).await;
    let page = html(&server, &first, &to).await;
    let (code, _) = next_code(&seed, step);
    let passed = answer(&server, &first, &page, &[("code", &code)]).await;
    assert_eq!(passed.status(), 303);
    let cookie = passed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with(&format!("{REMEMBERED}=")))
        .map(str::to_string)
        .expect("remembered by default");
    assert!(
        cookie.contains("Max-Age=86400") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let (to, _) = password(&server, &first, &[]).await;
    assert!(to.starts_with("/authorize/resume"), "{to}");
}

#[tokio::test]
async fn an_action_decides_whether_a_remembered_browser_counts() {
    let server = spawn().await;
    require_mfa(&server, true).await;
    // Remembered under the tenant's policy.
    let first = browser();
    let (to, verifier) = password(&server, &first, &[]).await;
    let page = html(&server, &first, &to).await;
    let seed = totp::seed_from_text(&code_text(&page, "secret")).unwrap();
    let (code, _) = next_code(&seed, 0);
    let enrolled = answer(
        &server,
        &first,
        &page,
        &[("code", &code), ("remember_browser", "1")],
    )
    .await;
    let saved = enrolled.text().await.unwrap();
    let resume = format!("/authorize/resume?state={}", hidden_field_or_link(&saved));
    finish(&server, &first, &resume, &verifier).await;

    // The policy off, an action asks: with allowRememberBrowser the remembered browser
    // passes; without it, the second factor is asked.
    require_mfa(&server, false).await;
    let action = |allow: bool| {
        format!(
            "exports.onExecutePostLogin = async (event, api) => {{
                api.multifactor.enable('any', {{ allowRememberBrowser: {allow} }});
            }};"
        )
    };
    crate::actions::bind(&server, "post-login", "remember", &action(true)).await;
    let (to, verifier) = password(&server, &first, &[]).await;
    assert!(to.starts_with("/authorize/resume"), "{to}");
    let response = first.get(server.url(&to)).send().await.unwrap();
    let to = location(&response);
    assert!(to.starts_with("/authorize/resume"), "remembered: {to}");
    let tokens = finish(&server, &first, &to, &verifier).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "mfa"]), "{claims}");

    crate::actions::bind(&server, "post-login", "strict", &action(false)).await;
    let (to, _) = password(&server, &first, &[]).await;
    let response = first.get(server.url(&to)).send().await.unwrap();
    let to = location(&response);
    assert!(to.starts_with("/u/mfa"), "asked: {to}");
}
