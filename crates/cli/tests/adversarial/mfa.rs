//! The second factor against a hostile user who has the password (and not the device),
//! a hostile browser, and a hostile administrator's tool: skipping the step, answering it
//! from another browser or without its CSRF token, enrolling a new device over an enrolled
//! one, replaying a code (one by one and thirty at once), malformed codes, a recovery code
//! of someone else, a spent step answered again, and Management API calls with bad bodies,
//! unknown factors and methods, or too little scope. Each is refused, and the user's
//! factors read back as they were.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::totp;
use tessera_testkit::*;

use crate::harness::Tally;

const SCOPES: &[&str] = &[
    "read:guardian_factors",
    "update:guardian_factors",
    "read:mfa_policies",
    "update:mfa_policies",
    "read:authentication_methods",
    "delete:authentication_methods",
    "delete:guardian_enrollments",
    "update:users",
    "create:users",
];

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
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

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn code_text(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("<code id=\"{id}\">"))?;
    let rest = &html[start..];
    let open = rest.find('>')? + 1;
    Some(rest[open..rest.find("</code>")?].to_string())
}

/// Password accepted, the second-factor page of a fresh browser: (browser, its path, html).
async fn at_second_factor(
    server: &TestServer,
    email: &str,
    password: &str,
) -> (reqwest::Client, String, String) {
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let response = server.submit_login(&browser, &url, email, password).await;
    let path = location(&response);
    assert!(path.starts_with("/u/mfa?state="), "{path}");
    let html = browser
        .get(server.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (browser, path, html)
}

async fn post_form(
    server: &TestServer,
    browser: &reqwest::Client,
    form: &[(&str, String)],
) -> reqwest::Response {
    browser
        .post(server.url("/u/mfa"))
        .form(form)
        .send()
        .await
        .unwrap()
}

fn form_of(html: &str, fields: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("state", hidden_field(html, "state")),
        ("csrf", hidden_field(html, "csrf")),
        ("action", hidden_field(html, "action")),
    ];
    form.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
    form
}

/// Enrolls the test user's authenticator app; returns its seed and recovery code.
async fn enroll(server: &TestServer) -> (Vec<u8>, String) {
    let (browser, _, html) = at_second_factor(server, &server.user_email, PASSWORD).await;
    let seed = totp::seed_from_text(&code_text(&html, "secret").unwrap()).unwrap();
    let code = totp::code_for_step(&seed, totp::step_at(now()));
    let response = post_form(server, &browser, &form_of(&html, &[("code", &code)])).await;
    assert_eq!(response.status(), 200);
    let recovery = code_text(&response.text().await.unwrap(), "recovery-code").unwrap();
    (seed, recovery)
}

#[tokio::test]
async fn the_second_factor_is_not_skipped_forged_or_replayed() {
    let mut tally = Tally::new("mfa/hosted");
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let (status, _) = call(
        &server,
        &token,
        Method::PUT,
        "/guardian/factors/otp",
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &server,
        &token,
        Method::PUT,
        "/guardian/policies",
        Some(json!(["all-applications"])),
    )
    .await;
    assert_eq!(status, 200);
    let (seed, recovery) = enroll(&server).await;
    let before = server
        .store
        .authenticators_of(&server.user_id)
        .await
        .unwrap();

    // Skipping the step: the resume answers no code without the second factor.
    let (browser, mfa_path, html) = at_second_factor(&server, &server.user_email, PASSWORD).await;
    let transaction = mfa_path.trim_start_matches("/u/mfa?state=");
    let resumed = browser
        .get(server.url(&format!("/authorize/resume?state={transaction}")))
        .send()
        .await
        .unwrap();
    let to = resumed
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    tally.case(
        "the resume before the second factor issues no code",
        !to.contains("code="),
        &to,
    );
    tally.case(
        "an enrolled user is asked a code, never shown a new key",
        code_text(&html, "secret").is_none() && !html.contains("<svg"),
        "a key was shown",
    );

    // Another browser, no CSRF token, a wrong one.
    let code = totp::code_for_step(&seed, totp::step_at(now()) + 1);
    let stranger = tessera_testkit::browser();
    let response = post_form(&server, &stranger, &form_of(&html, &[("code", &code)])).await;
    tally.status(
        "the step answered from another browser",
        response.status().as_u16(),
        403,
    );
    let response = stranger.get(server.url(&mfa_path)).send().await.unwrap();
    tally.status(
        "the step's page opened in another browser",
        response.status().as_u16(),
        403,
    );
    let mut form = form_of(&html, &[("code", &code)]);
    form.retain(|(k, _)| *k != "csrf");
    tally.status(
        "without its CSRF token",
        post_form(&server, &browser, &form).await.status().as_u16(),
        403,
    );
    let mut form = form_of(&html, &[("code", &code)]);
    form[1].1 = "forged".into();
    tally.status(
        "with a forged CSRF token",
        post_form(&server, &browser, &form).await.status().as_u16(),
        403,
    );

    // Malformed codes are wrong codes (each counted: four of the five allowed).
    for (case, bad) in [
        ("an empty code", String::new()),
        ("seven digits", "1234567".to_string()),
        ("full-width digits", "１２３４５６".to_string()),
        ("10 KB", "1".repeat(10_000)),
    ] {
        let response = post_form(&server, &browser, &form_of(&html, &[("code", &bad)])).await;
        // The form reader refuses an oversized field before the code is looked at.
        tally.status_in(case, response.status().as_u16(), &[400, 401]);
    }
    server
        .store
        .clear_mfa_failures(&server.user_id)
        .await
        .unwrap();

    // The code of the enrollment (its step was used) is refused.
    let enrolled_step_code = totp::code_for_step(&seed, server_step_used(&server).await);
    let response = post_form(
        &server,
        &browser,
        &form_of(&html, &[("code", &enrolled_step_code)]),
    )
    .await;
    tally.status(
        "the code used at enrollment, replayed",
        response.status().as_u16(),
        401,
    );

    // Thirty browsers at the step at once with one fresh code: one is let in.
    let fresh = totp::code_for_step(&seed, server_step_used(&server).await + 1);
    let mut pages = Vec::new();
    for _ in 0..30 {
        pages.push(at_second_factor(&server, &server.user_email, PASSWORD).await);
    }
    let answers = futures_util::future::join_all(pages.iter().map(|(browser, _, html)| {
        let form = form_of(html, &[("code", &fresh)]);
        let server = &server;
        async move { post_form(server, browser, &form).await.status().as_u16() }
    }))
    .await;
    let accepted = answers.iter().filter(|s| **s == 303).count();
    tally.case(
        "one code, thirty browsers at once: one accepted",
        accepted == 1,
        format_args!("{answers:?}"),
    );
    server
        .store
        .clear_mfa_failures(&server.user_id)
        .await
        .unwrap();

    // A spent step answered again: the winner's transaction has no step any more.
    if let Some(winner) = answers.iter().position(|s| *s == 303) {
        let (browser, _, html) = &pages[winner];
        let again = totp::code_for_step(&seed, server_step_used(&server).await + 1);
        let response = post_form(&server, browser, &form_of(html, &[("code", &again)])).await;
        tally.status(
            "a step passed once, answered again",
            response.status().as_u16(),
            400,
        );
    }
    server
        .store
        .clear_mfa_failures(&server.user_id)
        .await
        .unwrap();

    // Someone else's recovery code.
    let other_token = server.management_token(&["create:users"]).await;
    let (status, other) = call(&server, &other_token, Method::POST, "/users", Some(json!({"connection": "Username-Password-Authentication", "email": "other@example.com", "password": PASSWORD}))).await;
    assert_eq!(status, 201, "{other}");
    let (other_browser, _, other_html) =
        at_second_factor(&server, "other@example.com", PASSWORD).await;
    tally.case(
        "another user enrolls: shown a key of their own",
        code_text(&other_html, "secret").is_some(),
        "no key",
    );
    let recovery_page = other_browser
        .get(server.url(&format!(
            "/u/mfa?state={}&recovery=1",
            hidden_field(&other_html, "state")
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = post_form(
        &server,
        &other_browser,
        &form_of(&recovery_page, &[("recovery_code", &recovery)]),
    )
    .await;
    tally.status_in(
        "another user's recovery code",
        response.status().as_u16(),
        &[401, 400],
    );

    let after = server
        .store
        .authenticators_of(&server.user_id)
        .await
        .unwrap();
    let totp_of = |list: &[tessera_store::Authenticator]| {
        list.iter()
            .find(|a| a.kind == "totp")
            .map(|a| (a.id.clone(), a.secret.clone()))
    };
    let recovery_of = |list: &[tessera_store::Authenticator]| {
        list.iter()
            .find(|a| a.kind == "recovery-code")
            .map(|a| a.secret.clone())
    };
    tally.case(
        "the user's authenticator is the enrolled one",
        totp_of(&after) == totp_of(&before),
        "changed",
    );
    tally.case(
        "the user's recovery code is unchanged",
        recovery_of(&after) == recovery_of(&before),
        "changed",
    );
    tally.finish();
}

/// The last step the user's authenticator accepted.
async fn server_step_used(server: &TestServer) -> i64 {
    server
        .store
        .authenticators_of(&server.user_id)
        .await
        .unwrap()
        .iter()
        .find(|a| a.kind == "totp")
        .unwrap()
        .last_step
}

#[tokio::test]
async fn the_guardian_api_refuses_bad_calls_and_changes_nothing() {
    let mut tally = Tally::new("mfa/management");
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let read_only = server
        .management_token(&[
            "read:guardian_factors",
            "read:mfa_policies",
            "read:authentication_methods",
        ])
        .await;
    let (status, _) = call(
        &server,
        &token,
        Method::PUT,
        "/guardian/factors/otp",
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (_seed, _recovery) = {
        let (status, _) = call(
            &server,
            &token,
            Method::PUT,
            "/guardian/policies",
            Some(json!(["all-applications"])),
        )
        .await;
        assert_eq!(status, 200);
        enroll(&server).await
    };
    let before = server
        .store
        .authenticators_of(&server.user_id)
        .await
        .unwrap();
    let settings_before = server.store.guardian_settings().await.unwrap();

    for (case, body) in [
        (
            "a policy Tessera does not have",
            json!(["confidence-score"]),
        ),
        (
            "a policy twice",
            json!(["all-applications", "all-applications"]),
        ),
        ("an object", json!({"policies": ["all-applications"]})),
        ("a string", json!("all-applications")),
        ("a number in the list", json!([1])),
    ] {
        let (status, _) = call(
            &server,
            &token,
            Method::PUT,
            "/guardian/policies",
            Some(body),
        )
        .await;
        tally.status(format_args!("policies: {case}"), status, 400);
    }
    for (case, path, body, expected) in [
        (
            "a factor Tessera does not offer, on",
            "/guardian/factors/sms",
            json!({"enabled": true}),
            403,
        ),
        (
            "webauthn-roaming with an unknown user_verification",
            "/guardian/factors/webauthn-roaming",
            json!({"enabled": true, "user_verification": "sometimes"}),
            400,
        ),
        (
            "user_verification on another factor",
            "/guardian/factors/otp",
            json!({"enabled": true, "user_verification": "required"}),
            400,
        ),
        (
            "an unknown factor",
            "/guardian/factors/telepathy",
            json!({"enabled": false}),
            404,
        ),
        (
            "enabled as a string",
            "/guardian/factors/otp",
            json!({"enabled": "no"}),
            400,
        ),
        (
            "an extra member",
            "/guardian/factors/otp",
            json!({"enabled": false, "provider": "x"}),
            400,
        ),
        ("no body member", "/guardian/factors/otp", json!({}), 400),
    ] {
        let (status, _) = call(&server, &token, Method::PUT, path, Some(body)).await;
        tally.status(format_args!("factors: {case}"), status, expected);
    }
    let (status, _) = call(
        &server,
        &read_only,
        Method::PUT,
        "/guardian/policies",
        Some(json!([])),
    )
    .await;
    tally.status("policies changed with a read-only token", status, 403);
    let (status, _) = call(
        &server,
        &read_only,
        Method::PUT,
        "/guardian/factors/otp",
        Some(json!({"enabled": false})),
    )
    .await;
    tally.status("a factor changed with a read-only token", status, 403);

    let user = form_urlencoded::byte_serialize(server.user_id.as_bytes()).collect::<String>();
    for (case, method, path, who, expected) in [
        (
            "reset with a read-only token",
            Method::DELETE,
            format!("/users/{user}/authenticators"),
            &read_only,
            403,
        ),
        (
            "methods deleted with a read-only token",
            Method::DELETE,
            format!("/users/{user}/authentication-methods"),
            &read_only,
            403,
        ),
        (
            "a new recovery code with a read-only token",
            Method::POST,
            format!("/users/{user}/recovery-code-regeneration"),
            &read_only,
            403,
        ),
        (
            "an unknown method deleted",
            Method::DELETE,
            format!("/users/{user}/authentication-methods/totp%7Cdev_nothing"),
            &token,
            404,
        ),
        (
            "an unknown user's methods",
            Method::GET,
            "/users/auth0%7Cnobody/authentication-methods".to_string(),
            &token,
            404,
        ),
        (
            "an unknown user reset",
            Method::DELETE,
            "/users/auth0%7Cnobody/authenticators".to_string(),
            &token,
            404,
        ),
        (
            "an unknown user's recovery code",
            Method::POST,
            "/users/auth0%7Cnobody/recovery-code-regeneration".to_string(),
            &token,
            404,
        ),
    ] {
        let (status, _) = call(&server, who, method, &path, None).await;
        tally.status(case, status, expected);
    }
    // A method id of this user, asked of another user.
    let (status, other) = call(&server, &token, Method::POST, "/users", Some(json!({"connection": "Username-Password-Authentication", "email": "other@example.com", "password": PASSWORD}))).await;
    assert_eq!(status, 201, "{other}");
    let other_id = form_urlencoded::byte_serialize(other["user_id"].as_str().unwrap().as_bytes())
        .collect::<String>();
    let mine = form_urlencoded::byte_serialize(before[0].id.as_bytes()).collect::<String>();
    let (status, _) = call(
        &server,
        &token,
        Method::DELETE,
        &format!("/users/{other_id}/authentication-methods/{mine}"),
        None,
    )
    .await;
    tally.status("a method deleted through another user", status, 404);
    let (status, _) = call(
        &server,
        &token,
        Method::POST,
        &format!("/users/{other_id}/recovery-code-regeneration"),
        None,
    )
    .await;
    tally.status(
        "a recovery code for a user without an authenticator",
        status,
        400,
    );

    tally.case(
        "the user's factors are unchanged",
        server
            .store
            .authenticators_of(&server.user_id)
            .await
            .unwrap()
            == before,
        "changed",
    );
    tally.case(
        "the settings are unchanged",
        server.store.guardian_settings().await.unwrap() == settings_before,
        "changed",
    );
    tally.finish();
}

/// Step-up asked where no factor exists to pass or enroll: answering the step anyway (a
/// made-up code, a recovery code, a key) never signs the user in; the application hears
/// `unmet_authentication_requirements` and the spent step answers nothing more.
#[tokio::test]
async fn a_step_up_nobody_can_meet_is_not_answered_with_a_code() {
    let mut tally = Tally::new("mfa/unmet");
    let server = spawn().await;
    for (case, action, field) in [
        ("a made-up code", "code", ("code", "000000")),
        (
            "a made-up recovery code",
            "recovery",
            ("recovery_code", "AAAABBBBCCCCDDDDEEEEFFFF"),
        ),
        ("a made-up key", "key", ("credential", "AAAA")),
    ] {
        let browser = browser();
        let url = server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            (
                "acr_values",
                "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
            ),
            ("code_challenge", pkce().challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let login_path = location(&browser.get(&url).send().await.unwrap());
        let page = browser
            .get(server.url(&login_path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (state, csrf) = (hidden_field(&page, "state"), hidden_field(&page, "csrf"));
        let login = submit_login_form(
            &browser,
            &server.base,
            &login_path,
            &server.user_email,
            PASSWORD,
        )
        .await;
        tally.case(
            format!("{case}: the password leads to the second factor"),
            location(&login).starts_with("/u/mfa?state="),
            location(&login),
        );
        let form = [
            ("state", state.clone()),
            ("csrf", csrf.clone()),
            ("action", action.to_string()),
            (field.0, field.1.to_string()),
        ];
        let answered = post_form(&server, &browser, &form).await;
        let to = location(&answered);
        tally.case(
            format!("{case}: answered with the way back to the application, no session"),
            answered.status() == 303 && to.starts_with("/authorize/resume?state="),
            format_args!("{} {to}", answered.status()),
        );
        let back = location(&browser.get(server.url(&to)).send().await.unwrap());
        let params = params_of(&back);
        tally.case(
            format!("{case}: the application hears unmet_authentication_requirements, no code"),
            params.get("error").map(String::as_str) == Some("unmet_authentication_requirements")
                && !params.contains_key("code"),
            &back,
        );
        let again = post_form(&server, &browser, &form).await;
        tally.status(
            format!("{case}: the spent step answers nothing more"),
            again.status().as_u16(),
            400,
        );
    }
    tally.finish();
}
