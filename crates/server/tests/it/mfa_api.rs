//! Auth0's MFA API behind the password grant, as an application's backend uses it: the
//! grant answers `mfa_required` with an `mfa_token`; with it the application lists the
//! user's authenticators, enrolls an authenticator app for a user without one, asks for a
//! code, and finishes the sign-in with the app's code or a recovery code. The token finishes
//! one sign-in, belongs to one application, and codes are checked as on the hosted page.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::{AppType, MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT, PASSWORD_GRANT, totp};
use tessera_testkit::*;

use crate::actions::payload;
use crate::mfa::{now, require_mfa};

/// A regular web application allowed the password grant and, when `mfa`, the MFA grants.
async fn backend(server: &TestServer, mfa: bool) -> (String, String) {
    let secret = tessera_core::ids::client_secret();
    let mut web = client("Backend", AppType::RegularWeb, Some(&secret));
    web.grant_types.push(PASSWORD_GRANT.to_string());
    if mfa {
        web.grant_types.extend([
            MFA_OTP_GRANT.to_string(),
            MFA_RECOVERY_CODE_GRANT.to_string(),
        ]);
    }
    server.store.create_client(&web).await.unwrap();
    (web.client_id, secret)
}

/// The password grant for the test user; its `mfa_required` answer.
async fn mfa_token(server: &TestServer, (client_id, secret): (&str, &str)) -> String {
    let email = server.user_email.clone();
    let (status, body) = server
        .token(&[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", client_id),
            ("client_secret", secret),
            ("username", &email),
            ("password", PASSWORD),
            ("scope", "openid offline_access"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("mfa_required")),
        "{body}"
    );
    assert_eq!(
        body["error_description"], "Multifactor authentication required",
        "Auth0's words"
    );
    body["mfa_token"]
        .as_str()
        .expect("an mfa_token")
        .to_string()
}

/// A request to the MFA API with the token as bearer.
async fn bearer(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn challenge(
    server: &TestServer,
    (client_id, secret): (&str, &str),
    token: &str,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/mfa/challenge"))
        .json(&json!({
            "client_id": client_id,
            "client_secret": secret,
            "mfa_token": token,
            "challenge_type": "otp oob",
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn finish(
    server: &TestServer,
    (client_id, secret): (&str, &str),
    token: &str,
    (grant_type, name, code): (&str, &str, &str),
) -> (u16, Value) {
    server
        .token(&[
            ("grant_type", grant_type),
            ("client_id", client_id),
            ("client_secret", secret),
            ("mfa_token", token),
            (name, code),
        ])
        .await
}

fn other_code(seed: &[u8], step: i64) -> String {
    format!(
        "{:06}",
        (totp::code_for_step(seed, step).parse::<u32>().unwrap() + 1) % 1_000_000
    )
}

#[tokio::test]
async fn a_password_sign_in_passes_its_second_factor_through_the_mfa_api() {
    let server = spawn().await;
    require_mfa(&server, true).await;
    let (client_id, secret) = backend(&server, true).await;
    let app = (client_id.as_str(), secret.as_str());

    // An application without the MFA grants hears that a second factor is needed, no more.
    let (plain_id, plain_secret) = backend(&server, false).await;
    let email = server.user_email.clone();
    let (status, body) = server
        .token(&[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", &plain_id),
            ("client_secret", &plain_secret),
            ("username", &email),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("mfa_required"))
    );
    assert!(body.get("mfa_token").is_none(), "{body}");

    // A user without a second factor: nothing listed, nothing to challenge; enrolls an app.
    let token = mfa_token(&server, app).await;
    let (status, listed) = bearer(&server, Method::GET, "/mfa/authenticators", &token, None).await;
    assert_eq!((status, &listed), (200, &json!([])));
    let (status, body) = challenge(&server, app, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("association_required")),
        "{body}"
    );
    let (status, enrollment) = bearer(
        &server,
        Method::POST,
        "/mfa/associate",
        &token,
        Some(json!({"authenticator_types": ["otp"]})),
    )
    .await;
    assert_eq!(status, 200, "{enrollment}");
    assert_eq!(enrollment["authenticator_type"], "otp");
    let seed = totp::seed_from_text(enrollment["secret"].as_str().unwrap()).unwrap();
    let uri = enrollment["barcode_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains("secret="),
        "{uri}"
    );
    let recovery = enrollment["recovery_codes"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(recovery.len(), 24);
    let (_, listed) = bearer(&server, Method::GET, "/mfa/authenticators", &token, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        (&listed[0]["authenticator_type"], &listed[0]["active"]),
        (&json!("otp"), &json!(false)),
        "not confirmed yet"
    );

    // A wrong code is refused; the app's code confirms the enrollment and signs in.
    let step = totp::step_at(now());
    let (status, body) = finish(
        &server,
        app,
        &token,
        (MFA_OTP_GRANT, "otp", &other_code(&seed, step)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "{body}"
    );
    let code = totp::code_for_step(&seed, step);
    let (status, tokens) = finish(&server, app, &token, (MFA_OTP_GRANT, "otp", &code)).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "mfa", "otp"]), "{claims}");
    assert!(
        tokens["refresh_token"].is_string(),
        "the password grant's request kept"
    );
    assert!(tokens.get("recovery_code").is_none());
    // The token finished its sign-in.
    let (status, body) = finish(&server, app, &token, (MFA_OTP_GRANT, "otp", &code)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "{body}"
    );
    let (status, _) = bearer(&server, Method::GET, "/mfa/authenticators", &token, None).await;
    assert_eq!(status, 401);

    // Enrolled: the next sign-in is challenged, cannot enroll another app, and the code
    // used before is not taken twice.
    let token = mfa_token(&server, app).await;
    let (status, listed) = bearer(&server, Method::GET, "/mfa/authenticators", &token, None).await;
    assert_eq!(status, 200);
    let kinds: Vec<(&str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["authenticator_type"].as_str().unwrap(),
                a["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("otp", true)) && kinds.contains(&("recovery-code", true)),
        "{listed}"
    );
    let (status, body) = challenge(&server, app, &token).await;
    assert_eq!((status, &body), (200, &json!({"challenge_type": "otp"})));
    let (status, body) = bearer(
        &server,
        Method::POST,
        "/mfa/associate",
        &token,
        Some(json!({"authenticator_types": ["otp"]})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );
    let (status, body) = finish(&server, app, &token, (MFA_OTP_GRANT, "otp", &code)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "replayed: {body}"
    );
    let next = totp::code_for_step(&seed, step + 1);
    let (status, tokens) = finish(&server, app, &token, (MFA_OTP_GRANT, "otp", &next)).await;
    assert_eq!(status, 200, "{tokens}");

    // Another application's token is not this one's.
    let (other_id, other_secret) = backend(&server, true).await;
    let token = mfa_token(&server, app).await;
    let (status, body) = finish(
        &server,
        (&other_id, &other_secret),
        &token,
        (MFA_RECOVERY_CODE_GRANT, "recovery_code", &recovery),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "{body}"
    );

    // The recovery code from the enrollment signs in once and is replaced by a new one.
    let (status, tokens) = finish(
        &server,
        app,
        &token,
        (MFA_RECOVERY_CODE_GRANT, "recovery_code", &recovery),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let fresh = tokens["recovery_code"]
        .as_str()
        .expect("the next recovery code");
    assert_ne!(fresh, recovery);
    let token = mfa_token(&server, app).await;
    let (status, body) = finish(
        &server,
        app,
        &token,
        (MFA_RECOVERY_CODE_GRANT, "recovery_code", &recovery),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "used: {body}"
    );
    let (status, _) = finish(
        &server,
        app,
        &token,
        (MFA_RECOVERY_CODE_GRANT, "recovery_code", fresh),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_action_asking_for_a_second_factor_gets_one_through_the_mfa_api() {
    let server = spawn().await;
    // The factor is enabled, the policy is not: only the action asks.
    require_mfa(&server, false).await;
    crate::actions::bind(
        &server,
        "post-login",
        "step-up",
        "exports.onExecutePostLogin = async (event, api) => { \
             const passed = (event.authentication?.methods || []).some(m => m.name === 'mfa'); \
             if (!passed) api.multifactor.enable('any'); \
             api.idToken.setCustomClaim('https://example.com/mfa', passed); };",
    )
    .await;
    let (client_id, secret) = backend(&server, true).await;
    let app = (client_id.as_str(), secret.as_str());
    let token = mfa_token(&server, app).await;
    let (status, enrollment) = bearer(
        &server,
        Method::POST,
        "/mfa/associate",
        &token,
        Some(json!({"authenticator_types": ["otp"]})),
    )
    .await;
    assert_eq!(status, 200, "{enrollment}");
    let seed = totp::seed_from_text(enrollment["secret"].as_str().unwrap()).unwrap();
    let code = totp::code_for_step(&seed, totp::step_at(now()));
    let (status, tokens) = finish(&server, app, &token, (MFA_OTP_GRANT, "otp", &code)).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        claims["https://example.com/mfa"], true,
        "the action saw the second factor: {claims}"
    );
}
