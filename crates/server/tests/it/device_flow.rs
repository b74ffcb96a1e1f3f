//! The device authorization grant (RFC 8628) as a TV or a CLI uses it: a device code from
//! `/oauth/device/code`, a person at `/activate` (plain forms, no script: type the code,
//! sign in, confirm), and the device polling the token endpoint — `authorization_pending`,
//! `slow_down`, the tokens once, then `invalid_grant`; `access_denied` after Cancel,
//! `expired_token` after the code's life, another application's code refused.

use serde_json::Value;
use tessera_core::{AppType, DEVICE_CODE_GRANT, ids};
use tessera_store::NewDeviceCode;
use tessera_testkit::*;

/// A native application (a public client) that enabled the device flow.
async fn device_app(server: &TestServer, name: &str) -> String {
    let mut app = client(name, AppType::Native, None);
    app.grant_types.push(DEVICE_CODE_GRANT.to_string());
    server.store.create_client(&app).await.unwrap();
    app.client_id
}

async fn device_code(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/device/code"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn poll(server: &TestServer, client_id: &str, device_code: &str) -> (u16, Value) {
    server
        .token(&[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ])
        .await
}

fn error_of(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["error"].as_str())
}

/// The activation page at `path` in `browser`: (status, body).
async fn get(browser: &reqwest::Client, server: &TestServer, path: &str) -> reqwest::Response {
    browser.get(server.url(path)).send().await.unwrap()
}

/// Opens `verification_uri_complete`, types nothing (it is prefilled), signs in and
/// arrives at the confirm page: its HTML.
async fn activate_and_sign_in(
    browser: &reqwest::Client,
    server: &TestServer,
    complete: &str,
    user_code: &str,
) -> String {
    let page = browser.get(complete).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("value=\"{user_code}\"")), "{html}");
    assert!(!html.contains("<script"), "a page without script");
    let submitted = browser
        .post(server.url("/activate"))
        .form(&[
            ("csrf", hidden_field(&html, "csrf")),
            ("user_code", user_code.to_lowercase()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 303);
    let login_path = location(&submitted);
    assert!(login_path.starts_with("/u/login?state="), "{login_path}");
    let login = submit_login_form(
        browser,
        &server.base,
        &login_path,
        &server.user_email,
        PASSWORD,
    )
    .await;
    assert_eq!(login.status(), 303);
    let resume = get(browser, server, &location(&login)).await;
    assert_eq!(resume.status(), 303, "back to the activation page");
    let back = location(&resume);
    assert_eq!(back, format!("/activate?user_code={user_code}"));
    let confirm = get(browser, server, &back).await;
    assert_eq!(confirm.status(), 200);
    confirm.text().await.unwrap()
}

async fn answer(
    browser: &reqwest::Client,
    server: &TestServer,
    html: &str,
    action: &str,
) -> (u16, String) {
    let response = browser
        .post(server.url("/activate/confirm"))
        .form(&[
            ("csrf", hidden_field(html, "csrf")),
            ("user_code", hidden_field(html, "user_code")),
            ("action", action.to_string()),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_device_is_authorized_through_the_activation_page_and_gets_tokens_once() {
    let server = spawn().await;
    let app = device_app(&server, "Living room TV").await;

    let discovery: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["device_authorization_endpoint"],
        format!("{}oauth/device/code", server.issuer)
    );
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from(DEVICE_CODE_GRANT))
    );

    let (status, started) = device_code(
        &server,
        &[
            ("client_id", &app),
            ("scope", "openid profile offline_access read:messages"),
            ("audience", API),
        ],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let user_code = started["user_code"].as_str().unwrap().to_string();
    let shape = user_code.len() == 9
        && user_code.chars().enumerate().all(|(i, c)| {
            if i == 4 {
                c == '-'
            } else {
                "BCDFGHJKLMNPQRSTVWXZ".contains(c)
            }
        });
    assert!(shape, "{user_code}");
    assert_eq!(
        started["verification_uri"],
        format!("{}activate", server.issuer)
    );
    let complete = started["verification_uri_complete"].as_str().unwrap();
    assert_eq!(
        complete,
        format!("{}activate?user_code={user_code}", server.issuer)
    );
    assert_eq!(
        (started["expires_in"].as_i64(), started["interval"].as_i64()),
        (Some(900), Some(5))
    );
    let code = started["device_code"].as_str().unwrap().to_string();

    // Before anyone answers: pending, and too early a poll slows the device down.
    let first = poll(&server, &app, &code).await;
    assert_eq!(
        error_of(&first),
        (400, Some("authorization_pending")),
        "{}",
        first.1
    );
    let second = poll(&server, &app, &code).await;
    assert_eq!(error_of(&second), (400, Some("slow_down")), "{}", second.1);

    let browser = browser();
    let html = activate_and_sign_in(&browser, &server, complete, &user_code).await;
    assert!(
        html.contains("Living room TV"),
        "the application's name: {html}"
    );
    assert!(html.contains(&user_code), "the code again");
    assert!(html.contains("read:messages"), "what it will be able to do");
    let (status, done) = answer(&browser, &server, &html, "confirm").await;
    assert_eq!(status, 200, "{done}");

    let (status, tokens) = poll(&server, &app, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(access["sub"], server.user_id);
    assert_eq!(access["azp"], app);
    assert!(
        access["scope"].as_str().unwrap().contains("read:messages"),
        "{access}"
    );
    let id_token = server
        .verify(tokens["id_token"].as_str().unwrap(), &app)
        .await;
    assert_eq!(id_token["sub"], server.user_id);
    let refresh_token = tokens["refresh_token"].as_str().expect("offline_access");

    // Once: the same code again, by its own application, is refused.
    let again = poll(&server, &app, &code).await;
    assert_eq!(
        error_of(&again),
        (400, Some("invalid_grant")),
        "{}",
        again.1
    );
    // The refresh token works like any other.
    let (status, refreshed) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &app),
            ("refresh_token", refresh_token),
        ])
        .await;
    assert_eq!(status, 200, "{refreshed}");

    // The user code is used up: the page refuses it, nothing is approved twice.
    let reopened = get(
        &browser,
        &server,
        &format!("/activate?user_code={user_code}"),
    )
    .await;
    assert_eq!(reopened.status(), 400);
}

#[tokio::test]
async fn cancel_other_applications_expiry_and_refusals() {
    let server = spawn().await;
    let app = device_app(&server, "Kitchen TV").await;
    let other = device_app(&server, "Another device").await;

    // Applications that did not enable the grant, and unknown ones.
    let (status, body) = device_code(&server, &[("client_id", &server.spa_client_id)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("unauthorized_client")),
        "{body}"
    );
    let (status, body) = device_code(&server, &[("client_id", "nobody")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    let (status, body) = device_code(
        &server,
        &[("client_id", &app), ("audience", "https://nowhere")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );

    // A session first: the completed URL goes straight to the confirm page.
    let browser = browser();
    let pkce = pkce();
    let signed_in = server
        .sign_in(
            &browser,
            &server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", pkce.challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]),
        )
        .await;
    assert!(signed_in.starts_with(CALLBACK), "{signed_in}");
    let (_, started) = device_code(&server, &[("client_id", &app), ("scope", "openid")]).await;
    let code = started["device_code"].as_str().unwrap().to_string();
    let user_code = started["user_code"].as_str().unwrap().to_string();

    // Another application polling with this code learns nothing and takes nothing.
    let stolen = poll(&server, &other, &code).await;
    assert_eq!(
        error_of(&stolen),
        (400, Some("invalid_grant")),
        "{}",
        stolen.1
    );

    let confirm = get(
        &browser,
        &server,
        started["verification_uri_complete"]
            .as_str()
            .unwrap()
            .trim_start_matches(&server.base),
    )
    .await;
    assert_eq!(confirm.status(), 200);
    let html = confirm.text().await.unwrap();
    assert!(html.contains("Kitchen TV"), "{html}");

    // Without the page's token the answer is refused and nothing changes.
    let forged = browser
        .post(server.url("/activate/confirm"))
        .form(&[("user_code", user_code.as_str()), ("action", "confirm")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        error_of(&poll(&server, &app, &code).await),
        (400, Some("authorization_pending"))
    );

    let (status, _) = answer(&browser, &server, &html, "cancel").await;
    assert_eq!(status, 200);
    let denied = poll(&server, &app, &code).await;
    assert_eq!(
        error_of(&denied),
        (403, Some("access_denied")),
        "{}",
        denied.1
    );
    // Answered once: confirming afterwards changes nothing.
    let (status, _) = answer(&browser, &server, &html, "confirm").await;
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&poll(&server, &app, &code).await),
        (403, Some("access_denied"))
    );

    // A code past its life.
    let expired = ids::secret_token();
    let now = now();
    assert!(
        server
            .store
            .create_device_code(&NewDeviceCode {
                device_code_hash: ids::secret_hash(&expired),
                user_code: "BBBBCCCC".into(),
                client_id: app.clone(),
                scope: "[]".into(),
                audience: None,
                poll_interval: 5,
                created_at: now - 1000,
                expires_at: now - 100,
            })
            .await
            .unwrap()
    );
    assert_eq!(
        error_of(&poll(&server, &app, &expired).await),
        (400, Some("expired_token"))
    );
    let page = get(&browser, &server, "/activate?user_code=BBBB-CCCC").await;
    assert_eq!(
        page.status(),
        400,
        "an expired code is not offered for approval"
    );

    // A forged device code, none at all, garbage user codes.
    assert_eq!(
        error_of(&poll(&server, &app, "forged").await),
        (400, Some("invalid_grant"))
    );
    let (status, body) = server
        .token(&[("grant_type", DEVICE_CODE_GRANT), ("client_id", &app)])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let page = get(&browser, &server, "/activate")
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf");
    for garbage in ["AAAA-AAAA", "<script>", &"B".repeat(5000)] {
        let response = browser
            .post(server.url("/activate"))
            .form(&[("csrf", csrf.as_str()), ("user_code", garbage)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("<script>") && !text.contains("BBBBBBBBB"),
            "not echoed"
        );
    }
}

#[tokio::test]
async fn post_login_actions_run_at_the_confirm_page_with_the_device_protocol() {
    let server = spawn().await;
    let app = device_app(&server, "Actions TV").await;
    crate::actions::bind(
        &server,
        "post-login",
        "protocol",
        "exports.onExecutePostLogin = async (event, api) => { \
             api.idToken.setCustomClaim('https://example.com/protocol', event.transaction.protocol); };",
    )
    .await;
    let (status, started) = device_code(&server, &[("client_id", &app), ("scope", "openid")]).await;
    assert_eq!(status, 200, "{started}");
    let browser = browser();
    let html = activate_and_sign_in(
        &browser,
        &server,
        started["verification_uri_complete"].as_str().unwrap(),
        started["user_code"].as_str().unwrap(),
    )
    .await;
    let (status, _) = answer(&browser, &server, &html, "confirm").await;
    assert_eq!(status, 200);
    let (status, tokens) = poll(&server, &app, started["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = server
        .verify(tokens["id_token"].as_str().unwrap(), &app)
        .await;
    assert_eq!(
        id_token["https://example.com/protocol"],
        "oauth2-device-code"
    );
}

/// An action asks for a second factor at the confirm page: the person passes one (here by
/// enrolling an authenticator app) and confirms again; the device, polling meanwhile, gets
/// tokens of a login with the second factor.
#[tokio::test]
async fn an_action_asking_for_a_second_factor_sends_the_person_through_one() {
    use crate::mfa::{
        answer as mfa_answer, code_text, hidden_field_or_link, html, now, require_mfa,
    };
    use tessera_core::totp;

    let server = spawn().await;
    require_mfa(&server, false).await;
    let app = device_app(&server, "Step-up TV").await;
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
    let (status, started) = device_code(&server, &[("client_id", &app), ("scope", "openid")]).await;
    assert_eq!(status, 200, "{started}");
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    let browser = browser();
    let html_page = activate_and_sign_in(
        &browser,
        &server,
        started["verification_uri_complete"].as_str().unwrap(),
        user_code,
    )
    .await;
    let response = browser
        .post(server.url("/activate/confirm"))
        .form(&[
            ("csrf", hidden_field(&html_page, "csrf")),
            ("user_code", hidden_field(&html_page, "user_code")),
            ("action", "confirm".to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let to = location(&response);
    assert!(
        to.starts_with("/u/mfa?state="),
        "the action's second factor: {to}"
    );
    assert_eq!(
        error_of(&poll(&server, &app, device_code).await),
        (400, Some("authorization_pending")),
        "the device waits, it is not refused"
    );
    // Confirming again without the second factor asks for it again; nothing is approved.
    let again = browser
        .post(server.url("/activate/confirm"))
        .form(&[
            ("csrf", hidden_field(&html_page, "csrf")),
            ("user_code", hidden_field(&html_page, "user_code")),
            ("action", "confirm".to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert!(location(&again).starts_with("/u/mfa?state="));
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    assert_eq!(
        error_of(&poll(&server, &app, device_code).await),
        (400, Some("authorization_pending")),
        "not approved by confirming twice"
    );

    let page = html(&server, &browser, &to).await;
    let seed = totp::seed_from_text(&code_text(&page, "secret")).unwrap();
    let code = totp::code_for_step(&seed, totp::step_at(now()));
    let enrolled = mfa_answer(&server, &browser, &page, &[("code", &code)]).await;
    assert_eq!(enrolled.status(), 200);
    let saved = enrolled.text().await.unwrap();
    let resume = format!("/authorize/resume?state={}", hidden_field_or_link(&saved));
    let back = get(&browser, &server, &resume).await;
    assert_eq!(back.status(), 303);
    assert_eq!(location(&back), format!("/activate?user_code={user_code}"));
    let confirm = get(&browser, &server, &location(&back)).await;
    assert_eq!(confirm.status(), 200);
    let (status, _) = answer(&browser, &server, &confirm.text().await.unwrap(), "confirm").await;
    assert_eq!(status, 200);

    // Polled after its interval (a poll sooner is slow_down).
    let mut tokens = Value::Null;
    for _ in 0..30 {
        let answered = poll(&server, &app, device_code).await;
        if answered.0 == 200 {
            tokens = answered.1;
            break;
        }
        assert_eq!(
            error_of(&answered),
            (400, Some("slow_down")),
            "{}",
            answered.1
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let id_token = server
        .verify(tokens["id_token"].as_str().expect("tokens"), &app)
        .await;
    assert_eq!(
        id_token["https://example.com/methods"],
        serde_json::json!(["pwd", "mfa", "otp"]),
        "the action ran again, after the second factor"
    );
}
