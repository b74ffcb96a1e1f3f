//! Auth0's MFA API against a hostile application or someone who knows only a password:
//! forged, oversize and borrowed `mfa_token`s, an access token passed off as one and the
//! other way round, a second authenticator enrolled over a security key or an app, bodies
//! the API does not take, guessed codes (the lockout holds even for the right code), and a
//! user blocked meanwhile. Each is refused with the right status and nothing is issued.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::{AppType, MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT, PASSWORD_GRANT, totp};
use tessera_store::{WEBAUTHN_ROAMING, WebauthnCredential};
use tessera_testkit::*;

use crate::harness::Tally;

const SCOPES: &[&str] = &[
    "update:guardian_factors",
    "update:mfa_policies",
    "update:users",
];

async fn api(server: &TestServer, method: Method, path: &str, body: Value) -> u16 {
    let token = server.management_token(SCOPES).await;
    reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An application allowed the password grant, and the MFA grants when `mfa`.
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

async fn password(server: &TestServer, (id, secret): (&str, &str)) -> (u16, Value) {
    let email = server.user_email.clone();
    server
        .token(&[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", id),
            ("client_secret", secret),
            ("username", &email),
            ("password", PASSWORD),
            ("scope", "openid"),
        ])
        .await
}

async fn mfa_token(server: &TestServer, app: (&str, &str)) -> String {
    let (status, body) = password(server, app).await;
    assert_eq!(status, 403, "{body}");
    body["mfa_token"]
        .as_str()
        .expect("an mfa_token")
        .to_string()
}

/// `GET /mfa/authenticators` with this `Authorization` header value.
async fn listed(server: &TestServer, authorization: &str) -> u16 {
    reqwest::Client::new()
        .get(server.url("/mfa/authenticators"))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn associate(
    server: &TestServer,
    token: &str,
    body: reqwest::Body,
    json: bool,
) -> (u16, Value) {
    let content_type = if json {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let response = reqwest::Client::new()
        .post(server.url("/mfa/associate"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn otp(
    server: &TestServer,
    (id, secret): (&str, &str),
    token: &str,
    code: &str,
) -> (u16, Value) {
    server
        .token(&[
            ("grant_type", MFA_OTP_GRANT),
            ("client_id", id),
            ("client_secret", secret),
            ("mfa_token", token),
            ("otp", code),
        ])
        .await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn the_mfa_api_is_not_entered_without_its_token_nor_used_to_skip_a_factor() {
    let mut tally = Tally::new("mfa/api");
    let server = spawn().await;
    for (path, body) in [
        ("/guardian/factors/otp", json!({"enabled": true})),
        ("/guardian/policies", json!(["all-applications"])),
    ] {
        assert_eq!(api(&server, Method::PUT, path, body).await, 200);
    }
    let (id, secret) = backend(&server, true).await;
    let app = (id.as_str(), secret.as_str());
    let token = mfa_token(&server, app).await;

    // Tokens that are not a live mfa_token.
    for (case, header) in [
        ("no scheme", token.clone()),
        ("Basic scheme", format!("Basic {token}")),
        ("a guessed token", format!("Bearer {}", "A".repeat(43))),
        ("an oversize token", format!("Bearer {}", "A".repeat(8000))),
        ("a truncated token", format!("Bearer {}", &token[..20])),
    ] {
        tally.status(case, listed(&server, &header).await, 401);
    }
    let no_header = reqwest::get(server.url("/mfa/authenticators"))
        .await
        .unwrap();
    tally.status("no Authorization header", no_header.status().as_u16(), 401);
    let twice = reqwest::Client::new()
        .get(server.url("/mfa/authenticators"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    tally.status("two Authorization headers", twice.status().as_u16(), 401);

    // An mfa_token is not an access token, and an access token is not an mfa_token.
    let userinfo = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    tally.status(
        "the mfa_token at /userinfo",
        userinfo.status().as_u16(),
        401,
    );
    let access = server.management_token(&["read:users"]).await;
    tally.status(
        "an access token as mfa_token",
        listed(&server, &format!("Bearer {access}")).await,
        401,
    );
    let (status, body) = otp(&server, app, &access, "123456").await;
    tally.case(
        "an access token at the mfa-otp grant",
        status == 403 && body["error"] == "invalid_grant",
        format!("{status} {body}"),
    );

    // Another application's credentials, or one not allowed the MFA grants.
    let (other, other_secret) = backend(&server, true).await;
    let (status, body) = otp(&server, (&other, &other_secret), &token, "123456").await;
    tally.case(
        "another application's mfa_token",
        status == 403 && body["error"] == "invalid_grant",
        format!("{status} {body}"),
    );
    let (plain, plain_secret) = backend(&server, false).await;
    let (status, body) = otp(&server, (&plain, &plain_secret), &token, "123456").await;
    tally.case(
        "an application without the MFA grant",
        status == 403 && body["error"] == "unauthorized_client",
        format!("{status} {body}"),
    );
    let (status, body) = otp(&server, (&id, "wrong secret"), &token, "123456").await;
    tally.case(
        "a wrong client secret",
        status == 401 && body["error"] == "invalid_client",
        format!("{status} {body}"),
    );

    // Bodies /mfa/associate does not take: nothing enrolled.
    for (case, body, json) in [
        ("a form body", "authenticator_types=otp".to_string(), false),
        ("not JSON", "{authenticator_types".to_string(), true),
        (
            "a string, not a list",
            r#"{"authenticator_types":"otp"}"#.to_string(),
            true,
        ),
        (
            "an oob factor",
            r#"{"authenticator_types":["oob"]}"#.to_string(),
            true,
        ),
        (
            "two factors",
            r#"{"authenticator_types":["otp","otp"]}"#.to_string(),
            true,
        ),
        (
            "a number",
            r#"{"authenticator_types":[1]}"#.to_string(),
            true,
        ),
        (
            "an oversize body",
            format!(
                r#"{{"authenticator_types":["otp"],"x":"{}"}}"#,
                "a".repeat(10_000)
            ),
            true,
        ),
    ] {
        let (status, _) = associate(&server, &token, body.into(), json).await;
        tally.status(case, status, 400);
    }
    let enrolled = server
        .store
        .authenticators_of(&server.user_id)
        .await
        .unwrap();
    tally.case(
        "nothing enrolled by refused bodies",
        enrolled.is_empty(),
        enrolled.len(),
    );

    // A user with a security key: a password alone does not add an app beside it.
    server
        .store
        .add_webauthn_credential(&WebauthnCredential {
            id: "wr_mfa_api".into(),
            user_id: server.user_id.clone(),
            credential_id: vec![7; 32],
            public_key: vec![1, 2, 3],
            sign_count: 0,
            transports: "[]".into(),
            kind: WEBAUTHN_ROAMING.into(),
            name: "Security key".into(),
            created_at: 1,
            last_used_at: None,
        })
        .await
        .unwrap();
    let (status, body) = associate(
        &server,
        &token,
        r#"{"authenticator_types":["otp"]}"#.into(),
        true,
    )
    .await;
    tally.case(
        "an app enrolled over a security key",
        status == 403 && body.get("secret").is_none(),
        format!("{status} {body}"),
    );
    server
        .store
        .delete_authenticator(&server.user_id, "wr_mfa_api")
        .await
        .unwrap();

    // Enrolled with an app: a second enrollment is refused and the app stays.
    let (status, enrollment) = associate(
        &server,
        &token,
        r#"{"authenticator_types":["otp"]}"#.into(),
        true,
    )
    .await;
    assert_eq!(status, 200, "{enrollment}");
    let seed = totp::seed_from_text(enrollment["secret"].as_str().unwrap()).unwrap();
    let step = totp::step_at(now());
    let (status, _) = otp(&server, app, &token, &totp::code_for_step(&seed, step)).await;
    assert_eq!(status, 200);
    let token = mfa_token(&server, app).await;
    let (status, body) = associate(
        &server,
        &token,
        r#"{"authenticator_types":["otp"]}"#.into(),
        true,
    )
    .await;
    tally.case(
        "a second app enrolled with a password alone",
        status == 403 && body.get("secret").is_none(),
        format!("{status} {body}"),
    );

    // Guessing codes: the lockout holds, even for the right code afterwards.
    let right = totp::code_for_step(&seed, step + 1);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    for attempt in 0..5 {
        let (status, _) = otp(&server, app, &token, &wrong).await;
        tally.status(format!("wrong code {attempt}"), status, 403);
    }
    let (status, body) = otp(&server, app, &token, &right).await;
    tally.case(
        "the right code while locked",
        status == 429 && body.get("access_token").is_none(),
        format!("{status} {body}"),
    );
    let (status, body) = server
        .token(&[
            ("grant_type", MFA_RECOVERY_CODE_GRANT),
            ("client_id", &id),
            ("client_secret", &secret),
            ("mfa_token", &token),
            ("recovery_code", "AAAAAAAAAAAAAAAAAAAAAAAA"),
        ])
        .await;
    tally.case(
        "a recovery code while locked",
        status == 429 && body.get("access_token").is_none(),
        format!("{status} {body}"),
    );

    // A user blocked after the password: the token signs nobody in.
    let token = mfa_token(&server, app).await;
    let path = format!("/users/{}", server.user_id);
    assert_eq!(
        api(&server, Method::PATCH, &path, json!({"blocked": true})).await,
        200
    );
    tally.status(
        "a blocked user's mfa_token",
        listed(&server, &format!("Bearer {token}")).await,
        401,
    );
    tally.finish();
}
