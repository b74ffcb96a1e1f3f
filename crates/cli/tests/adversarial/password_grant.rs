//! The password grants attacked: a single-page application given the grant, an
//! application that never enabled it, a public client posing with a secret, the
//! `auth0-forwarded-for` header sent by someone other than a trusted proxy's confidential
//! backend (to spread guesses over made-up addresses), guesses past the lockout, a blocked
//! user, and malformed or oversized fields. Each is refused, no token is issued, and the
//! lockout counts every guess where it belongs.

use serde_json::{Value, json};
use tessera_core::{AppType, PASSWORD_GRANT, PASSWORD_REALM_GRANT};
use tessera_testkit::*;

use crate::harness::Tally;

async fn grant(server: &TestServer, form: &[(&str, &str)], header: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(server.url("/oauth/token"));
    if let Some(address) = header {
        request = request.header("auth0-forwarded-for", address);
    }
    let response = request.form(form).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn issued(body: &Value) -> bool {
    body.get("access_token").is_some() || body.get("id_token").is_some()
}

async fn app_with_grants(server: &TestServer, app_type: AppType, secret: Option<&str>) -> String {
    let mut app = client("Password app", app_type, secret);
    app.grant_types
        .extend([PASSWORD_GRANT.to_string(), PASSWORD_REALM_GRANT.to_string()]);
    server.store.create_client(&app).await.unwrap();
    app.client_id
}

#[tokio::test]
async fn password_grants_refuse_what_they_should() {
    let mut tally = Tally::new("password_grant/refusals");
    let server = spawn_with(|config| {
        config.max_login_failures = 3;
        // The per-network throttle is the brute-force suite's; here the lockout is.
        config.login_attempts_per_minute = 1_000;
    })
    .await;
    let email = server.user_email.clone();
    let token = server
        .management_token(&["update:clients", "update:users"])
        .await;

    // A single-page application cannot be given the grant.
    let spa: String =
        url::form_urlencoded::byte_serialize(server.spa_client_id.as_bytes()).collect();
    for grant_type in [PASSWORD_GRANT, PASSWORD_REALM_GRANT] {
        let response = reqwest::Client::new()
            .patch(server.url(&format!("/api/v2/clients/{spa}")))
            .bearer_auth(&token)
            .json(&json!({"grant_types": ["authorization_code", grant_type]}))
            .send()
            .await
            .unwrap();
        tally.status(
            format!("a SPA given {grant_type}"),
            response.status().as_u16(),
            400,
        );
    }
    let (status, body) = grant(
        &server,
        &[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", &server.spa_client_id),
            ("username", &email),
            ("password", PASSWORD),
        ],
        None,
    )
    .await;
    tally.case(
        "the SPA's password grant is unauthorized_client, nothing issued",
        status == 403 && body["error"] == "unauthorized_client" && !issued(&body),
        format_args!("{status} {body}"),
    );

    // A public (native) client that enabled it may not present a secret it does not have.
    let native = app_with_grants(&server, AppType::Native, None).await;
    let (status, body) = grant(
        &server,
        &[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", &native),
            ("client_secret", "made-up"),
            ("username", &email),
            ("password", PASSWORD),
        ],
        None,
    )
    .await;
    tally.case(
        "a public client posing with a secret: invalid_client",
        status == 401 && body["error"] == "invalid_client" && !issued(&body),
        format_args!("{status} {body}"),
    );
    // A confidential one without its secret.
    let secret = tessera_core::ids::client_secret();
    let web = app_with_grants(&server, AppType::RegularWeb, Some(&secret)).await;
    let (status, body) = grant(
        &server,
        &[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", &web),
            ("username", &email),
            ("password", PASSWORD),
        ],
        None,
    )
    .await;
    tally.case(
        "a confidential client without its secret: invalid_client",
        status == 401 && !issued(&body),
        format_args!("{status} {body}"),
    );

    // Malformed and oversized fields: a clear 4xx, nothing issued, no server error.
    let long = "x".repeat(100_000);
    for (case, username, password) in [
        ("no username", "", PASSWORD),
        ("no password", email.as_str(), ""),
        ("a 100 kB username", long.as_str(), PASSWORD),
        ("a 100 kB password", email.as_str(), long.as_str()),
        ("a username with NUL", "demo\0@example.com", PASSWORD),
    ] {
        let (status, body) = grant(
            &server,
            &[
                ("grant_type", PASSWORD_GRANT),
                ("client_id", &web),
                ("client_secret", &secret),
                ("username", username),
                ("password", password),
            ],
            None,
        )
        .await;
        tally.case(
            format!("{case}: a 4xx and nothing issued"),
            (400..500).contains(&status) && !issued(&body),
            format_args!("{status} {body}"),
        );
    }
    let (status, body) = grant(
        &server,
        &[
            ("grant_type", PASSWORD_REALM_GRANT),
            ("client_id", &web),
            ("client_secret", &secret),
            ("username", &email),
            ("password", PASSWORD),
        ],
        None,
    )
    .await;
    tally.case(
        "password-realm without a realm: invalid_request",
        status == 400 && body["error"] == "invalid_request" && !issued(&body),
        format_args!("{status} {body}"),
    );

    // Without a trusted proxy, auth0-forwarded-for is the sender's own words: guesses
    // made to look as if from many addresses all count against the sender's.
    for (index, made_up) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .iter()
        .enumerate()
    {
        let (status, _) = grant(
            &server,
            &[
                ("grant_type", PASSWORD_GRANT),
                ("client_id", &web),
                ("client_secret", &secret),
                ("username", &email),
                ("password", "a guess"),
            ],
            Some(made_up),
        )
        .await;
        tally.status(format!("guess {index} from a made-up address"), status, 403);
    }
    let (status, body) = grant(
        &server,
        &[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", &web),
            ("client_secret", &secret),
            ("username", &email),
            ("password", PASSWORD),
        ],
        Some("198.51.100.200"),
    )
    .await;
    tally.case(
        "after three guesses the right password from yet another made-up address is locked out",
        status == 429 && body["error"] == "too_many_attempts" && !issued(&body),
        format_args!("{status} {body}"),
    );

    // A blocked user: the right password says so, a wrong one says only that it is wrong.
    let blocked_email = "blocked@example.com";
    let blocked = create_user(&server.store, blocked_email, PASSWORD).await;
    let id: String = url::form_urlencoded::byte_serialize(blocked.as_bytes()).collect();
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/users/{id}")))
        .bearer_auth(&token)
        .json(&json!({"blocked": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for (case, password, expected) in [
        ("the right password", PASSWORD, 401),
        ("a wrong password", "wrong", 403),
    ] {
        let (status, body) = grant(
            &server,
            &[
                ("grant_type", PASSWORD_GRANT),
                ("client_id", &native),
                ("username", blocked_email),
                ("password", password),
            ],
            None,
        )
        .await;
        tally.case(
            format!("a blocked user with {case}: {expected}, nothing issued"),
            status == expected && !issued(&body),
            format_args!("{status} {body}"),
        );
    }
    tally.finish();
}
