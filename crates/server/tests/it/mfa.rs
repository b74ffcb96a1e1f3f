//! A second factor at the hosted login, end to end over HTTP: the tenant's policy turns it
//! on, a user enrolls an authenticator app (the key read from the page, codes computed as
//! an app does), the ID token says `amr`, a code is accepted once, a recovery code once,
//! wrong codes lock the user out for a while, an application asks for one (`acr_values`)
//! without the policy, and the Management API lists and resets a user's factors.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::totp;
use tessera_testkit::*;

use crate::actions::payload;

const MFA_ACR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

pub(crate) async fn api(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let token = server
        .management_token(&[
            "read:guardian_factors",
            "update:guardian_factors",
            "read:mfa_policies",
            "update:mfa_policies",
            "read:authentication_methods",
            "delete:authentication_methods",
            "delete:guardian_enrollments",
            "update:users",
        ])
        .await;
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

/// Turns the authenticator-app factor on and, with `policy`, requires it of every login.
pub(crate) async fn require_mfa(server: &TestServer, policy: bool) {
    let (status, body) = api(
        server,
        Method::PUT,
        "/guardian/factors/otp",
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!((status, &body), (200, &json!({"enabled": true})));
    let policies = if policy {
        json!(["all-applications"])
    } else {
        json!([])
    };
    let (status, body) = api(
        server,
        Method::PUT,
        "/guardian/policies",
        Some(policies.clone()),
    )
    .await;
    assert_eq!((status, &body), (200, &policies));
}

/// A login of the test user up to the second-factor page: (its path, the PKCE verifier).
pub(crate) async fn password_then_mfa(
    server: &TestServer,
    browser: &reqwest::Client,
    extra: &[(&str, &str)],
) -> (String, String) {
    let pkce = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("nonce", "n-1"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let url = server.authorize_url(&params);
    let response = server
        .submit_login(browser, &url, &server.user_email.clone(), PASSWORD)
        .await;
    assert_eq!(response.status(), 303);
    let to = location(&response);
    assert!(to.starts_with("/u/mfa?state="), "{to}");
    (to, pkce.verifier)
}

/// Posts the page's form with `fields`.
pub(crate) async fn answer(
    server: &TestServer,
    browser: &reqwest::Client,
    page: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("state".to_string(), hidden_field(page, "state")),
        ("csrf".to_string(), hidden_field(page, "csrf")),
        ("action".to_string(), hidden_field(page, "action")),
    ];
    form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    browser
        .post(server.url("/u/mfa"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn html(server: &TestServer, browser: &reqwest::Client, path: &str) -> String {
    let response = browser.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

/// The text between `<code id="ID">` and `</code>`.
pub(crate) fn code_text(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("<code id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no {id}: {html}"));
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find("</code>").unwrap();
    rest[open..close].to_string()
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// From the resume link to the application's callback: the code redeemed, the tokens.
pub(crate) async fn finish(
    server: &TestServer,
    browser: &reqwest::Client,
    resume: &str,
    verifier: &str,
) -> Value {
    let response = browser.get(server.url(resume)).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let to = location(&response);
    assert!(to.starts_with(CALLBACK), "{to}");
    let (status, tokens) = server.redeem(&params_of(&to)["code"], verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn an_authenticator_app_is_enrolled_and_asked_at_every_login() {
    let server = spawn().await;
    require_mfa(&server, true).await;

    // Enrollment: a QR code and the key as text; a wrong code refused, the right one
    // turns it on and shows a recovery code once.
    let browser = browser();
    let (mfa_path, verifier) = password_then_mfa(&server, &browser, &[]).await;
    let page = html(&server, &browser, &mfa_path).await;
    assert!(
        page.contains("<svg") && page.contains("Secure your account"),
        "{page}"
    );
    let seed = totp::seed_from_text(&code_text(&page, "secret")).unwrap();
    let step = totp::step_at(now());
    let wrong = format!(
        "{:06}",
        (totp::code_for_step(&seed, step).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let refused = answer(&server, &browser, &page, &[("code", &wrong)]).await;
    assert_eq!(refused.status(), 401);
    let again = refused.text().await.unwrap();
    assert_eq!(
        totp::seed_from_text(&code_text(&again, "secret")).unwrap(),
        seed,
        "the same key"
    );
    let code = totp::code_for_step(&seed, step);
    let enrolled = answer(&server, &browser, &again, &[("code", &code)]).await;
    assert_eq!(enrolled.status(), 200);
    let saved = enrolled.text().await.unwrap();
    let recovery = code_text(&saved, "recovery-code");
    assert_eq!(recovery.len(), 24);
    let resume = format!("/authorize/resume?state={}", hidden_field_or_link(&saved));
    let tokens = finish(&server, &browser, &resume, &verifier).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "mfa", "otp"]), "{claims}");
    assert!(claims.get("acr").is_none(), "not asked for");

    // The session has its second factor: the next request is answered without asking.
    let to = server
        .sign_in(
            &browser,
            &server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", pkce().challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]),
        )
        .await;
    assert!(to.starts_with(CALLBACK), "{to}");

    // Another browser: the code is asked (no enrollment). The code just used is refused
    // (its step was used); the recovery code works once and a new one is shown.
    let other = tessera_testkit::browser();
    let (mfa_path, verifier) = password_then_mfa(&server, &other, &[]).await;
    let page = html(&server, &other, &mfa_path).await;
    assert!(
        !page.contains("<svg") && page.contains("Verify your identity"),
        "{page}"
    );
    let replayed = answer(&server, &other, &page, &[("code", &code)]).await;
    assert_eq!(replayed.status(), 401, "a code is accepted once");
    let recovery_page = html(&server, &other, &format!("{mfa_path}&recovery=1")).await;
    let used = answer(
        &server,
        &other,
        &recovery_page,
        &[("recovery_code", &recovery.to_lowercase())],
    )
    .await;
    assert_eq!(used.status(), 200);
    let saved = used.text().await.unwrap();
    let next_recovery = code_text(&saved, "recovery-code");
    assert_ne!(next_recovery, recovery);
    let resume = format!("/authorize/resume?state={}", hidden_field_or_link(&saved));
    let tokens = finish(&server, &other, &resume, &verifier).await;
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );

    // The old recovery code is spent.
    let third = tessera_testkit::browser();
    let (mfa_path, _) = password_then_mfa(&server, &third, &[]).await;
    let recovery_page = html(&server, &third, &format!("{mfa_path}&recovery=1")).await;
    let spent = answer(
        &server,
        &third,
        &recovery_page,
        &[("recovery_code", &recovery)],
    )
    .await;
    assert_eq!(spent.status(), 401);

    // Each outcome is Auth0's event, naming the factor and nothing typed.
    let count = |events: &[Value], authenticator: &str| {
        events
            .iter()
            .filter(|e| {
                e["user_id"] == server.user_id.as_str()
                    && e["client_id"] == server.spa_client_id.as_str()
                    && e["details"]["authenticator"] == authenticator
            })
            .count()
    };
    let mut kept = Vec::new();
    for (log_type, authenticator, times) in [
        ("gd_auth_failed", "otp", 2),
        ("gd_enrollment_complete", "otp", 1),
        ("gd_recovery_succeed", "recovery-code", 1),
        ("gd_recovery_failed", "recovery-code", 1),
    ] {
        let events = crate::audit_log::events_of(&server, log_type).await;
        assert_eq!(events.len(), times, "{log_type}: {events:#?}");
        assert_eq!(count(&events, authenticator), times, "{events:#?}");
        kept.extend(
            events
                .iter()
                .map(|e| format!("{} {}", e["description"], e["details"])),
        );
    }
    assert!(
        crate::audit_log::events_of(&server, "gd_auth_succeed")
            .await
            .is_empty()
    );
    let kept = kept.join("\n");
    for typed in [&wrong, &code, &recovery, &next_recovery] {
        assert!(!kept.contains(typed.as_str()), "{typed} is in the log");
    }

    // The Management API: the user's methods; a reset leaves none and enrollment again.
    let user = urlencode(&server.user_id);
    let (status, methods) = api(
        &server,
        Method::GET,
        &format!("/users/{user}/authentication-methods"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let mut kinds: Vec<&str> = methods
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["recovery-code", "totp"], "{methods}");
    let app = methods
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == "totp")
        .unwrap();
    let path = format!(
        "/users/{user}/authentication-methods/{}",
        urlencode(app["id"].as_str().unwrap())
    );
    let (status, one) = api(&server, Method::GET, &path, None).await;
    assert_eq!((status, &one), (200, app));
    let (status, regenerated) = api(
        &server,
        Method::POST,
        &format!("/users/{user}/recovery-code-regeneration"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(regenerated["recovery_code"].as_str().unwrap().len(), 24);
    let (status, _) = api(
        &server,
        Method::DELETE,
        &format!("/users/{user}/authenticators"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, methods) = api(
        &server,
        Method::GET,
        &format!("/users/{user}/authentication-methods"),
        None,
    )
    .await;
    assert_eq!(methods, json!([]));
    let fourth = tessera_testkit::browser();
    let (mfa_path, _) = password_then_mfa(&server, &fourth, &[]).await;
    assert!(
        html(&server, &fourth, &mfa_path).await.contains("<svg"),
        "enrolls again"
    );
}

/// The transaction id in a page's "continue" link.
pub(crate) fn hidden_field_or_link(html: &str) -> String {
    let start = html
        .find("/authorize/resume?state=")
        .expect("a continue link")
        + "/authorize/resume?state=".len();
    html[start..].split('"').next().unwrap().to_string()
}

pub(crate) fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn wrong_codes_lock_the_second_factor_for_a_while() {
    let server = spawn().await;
    require_mfa(&server, true).await;
    let browser = browser();
    let (mfa_path, _) = password_then_mfa(&server, &browser, &[]).await;
    let page = html(&server, &browser, &mfa_path).await;
    let seed = totp::seed_from_text(&code_text(&page, "secret")).unwrap();
    for _ in 0..5 {
        let refused = answer(&server, &browser, &page, &[("code", "000000")]).await;
        // (One in a million that 000000 is right: then the enrollment is done and the
        // next answer is not 401 either way.)
        assert_eq!(refused.status(), 401);
    }
    let right = totp::code_for_step(&seed, totp::step_at(now()));
    let locked = answer(&server, &browser, &page, &[("code", &right)]).await;
    assert_eq!(locked.status(), 429, "even the right code waits");
    let limited = crate::audit_log::events_of(&server, "gd_otp_rate_limit_exceed").await;
    assert_eq!(limited.len(), 1, "{limited:#?}");
    assert_eq!(limited[0]["user_id"], server.user_id.as_str());
    let kept = format!("{} {}", limited[0]["description"], limited[0]["details"]);
    assert!(!kept.contains(&right), "{kept}");
    assert_eq!(
        crate::audit_log::events_of(&server, "gd_auth_failed")
            .await
            .len(),
        5
    );
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("Too many wrong codes")
    );
}

#[tokio::test]
async fn an_application_asks_for_a_second_factor_with_acr_values() {
    let server = spawn().await;
    require_mfa(&server, false).await;

    // Without the policy and without asking: no second factor, `amr` says the password.
    let browser = browser();
    let tokens = server.code_flow(&browser, "openid", None).await;
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );

    // Step-up: the same browser's session has no second factor, so the user signs in
    // again and passes one; the ID token states the policy met.
    let (mfa_path, verifier) =
        password_then_mfa(&server, &browser, &[("acr_values", MFA_ACR)]).await;
    let page = html(&server, &browser, &mfa_path).await;
    let seed = totp::seed_from_text(&code_text(&page, "secret")).unwrap();
    let code = totp::code_for_step(&seed, totp::step_at(now()));
    let enrolled = answer(&server, &browser, &page, &[("code", &code)]).await;
    let saved = enrolled.text().await.unwrap();
    let resume = format!("/authorize/resume?state={}", hidden_field_or_link(&saved));
    let tokens = finish(&server, &browser, &resume, &verifier).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], MFA_ACR);
    assert_eq!(claims["amr"], json!(["pwd", "mfa", "otp"]));
}

/// A post-login action asks for a second factor (`api.multifactor.enable`), without the
/// tenant's policy: the signed-in user passes one before the application hears back; the
/// action runs again then and sees `mfa` among `event.authentication.methods`. Where no
/// one can be asked (`prompt=none`), the application hears `interaction_required`; an
/// action asking for Duo, which Tessera does not offer, refuses the login.
#[tokio::test]
async fn an_action_asks_for_a_second_factor() {
    let server = spawn().await;
    require_mfa(&server, false).await;
    // Signed in before the action exists: a session with the password alone.
    let earlier = browser();
    let tokens = server.code_flow(&earlier, "openid", None).await;
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );

    crate::actions::bind(
        &server,
        "post-login",
        "mfa",
        r#"exports.onExecutePostLogin = async (event, api) => {
            api.multifactor.enable('any', { allowRememberBrowser: false });
            api.idToken.setCustomClaim('https://example.com/methods',
                event.authentication.methods.map((m) => m.name));
        };"#,
    )
    .await;

    let silent = server
        .sign_in(
            &earlier,
            &server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid"),
                ("prompt", "none"),
                ("code_challenge", pkce().challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]),
        )
        .await;
    assert!(silent.starts_with(CALLBACK), "{silent}");
    assert_eq!(params_of(&silent)["error"], "interaction_required");

    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let to = server.sign_in(&browser, &url).await;
    assert!(
        to.starts_with("/u/mfa?state="),
        "the action's second factor: {to}"
    );
    let page = html(&server, &browser, &to).await;
    let seed = totp::seed_from_text(&code_text(&page, "secret")).unwrap();
    let code = totp::code_for_step(&seed, totp::step_at(now()));
    let enrolled = answer(&server, &browser, &page, &[("code", &code)]).await;
    assert_eq!(enrolled.status(), 200);
    let saved = enrolled.text().await.unwrap();
    let resume = format!("/authorize/resume?state={}", hidden_field_or_link(&saved));
    let tokens = finish(&server, &browser, &resume, &pkce.verifier).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "mfa", "otp"]), "{claims}");
    assert_eq!(
        claims["https://example.com/methods"],
        json!(["pwd", "mfa", "otp"]),
        "the action ran again, after the second factor"
    );

    // Duo is not offered: asking for it refuses rather than letting the login through.
    crate::actions::bind(
        &server,
        "post-login",
        "duo",
        "exports.onExecutePostLogin = async (event, api) => { api.multifactor.enable('duo'); };",
    )
    .await;
    let refused = server.sign_in(&tessera_testkit::browser(), &url).await;
    assert!(refused.starts_with(CALLBACK), "{refused}");
    assert_eq!(params_of(&refused)["error"], "access_denied");
}

/// Step-up asked where no factor is enabled (and the user has none): the application hears
/// `unmet_authentication_requirements`, with its state, instead of the user a dead end.
#[tokio::test]
async fn step_up_without_any_factor_is_unmet_for_the_application() {
    let server = spawn().await;
    let browser = browser();
    let (mfa_path, _) = password_then_mfa(
        &server,
        &browser,
        &[("acr_values", MFA_ACR), ("state", "st-9")],
    )
    .await;
    let response = browser.get(server.url(&mfa_path)).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let resume = location(&response);
    assert!(resume.starts_with("/authorize/resume?state="), "{resume}");
    let response = browser.get(server.url(&resume)).send().await.unwrap();
    let to = location(&response);
    assert!(to.starts_with(CALLBACK), "{to}");
    let params = params_of(&to);
    assert_eq!(params["error"], "unmet_authentication_requirements");
    assert_eq!(params["state"], "st-9");
    assert!(!params.contains_key("code"));
    // The transaction is spent: the page does not come back.
    let again = browser.get(server.url(&mfa_path)).send().await.unwrap();
    assert_eq!(again.status(), 400);
}
