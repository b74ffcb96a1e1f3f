//! `POST /dbconnections/signup`, Auth0's sign-up endpoint (auth0-js `signup()`, the SDKs'
//! `database.signUp`): the account it creates, the refusals in Auth0's shapes, CORS.

use serde_json::{Value, json};
use tessera_testkit::*;

const CONNECTION: &str = "Username-Password-Authentication";

async fn sign_up(server: &TestServer, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/signup"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_sign_up_creates_the_account_with_its_profile_and_the_user_can_sign_in() {
    let server = spawn().await;
    let (status, body) = sign_up(
        &server,
        &json!({
            "client_id": server.spa_client_id,
            "connection": CONNECTION,
            "email": "New.Person@Example.com",
            "password": "a long new passphrase 4",
            "name": "New Person",
            "nickname": "newbie",
            "user_metadata": {"plan": "free"},
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["_id"].as_str().unwrap();
    assert_eq!(id.len(), 24, "{body}");
    assert_eq!(body["email"], "new.person@example.com");
    assert_eq!(body["email_verified"], false);
    assert_eq!(body["name"], "New Person");
    assert_eq!(body["nickname"], "newbie");
    assert_eq!(body["user_metadata"], json!({"plan": "free"}));
    assert!(body.get("password").is_none() && !body.to_string().contains("passphrase"));

    let user = server
        .store
        .find_user_by_email("new.person@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.user_id, format!("auth0|{id}"));
    assert_eq!(user.name, "New Person");
    assert_eq!(user.user_metadata["plan"], "free");

    // Signed up, not signed in: the hosted login takes the new password.
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let login = server
        .submit_login(
            &browser,
            &url,
            "new.person@example.com",
            "a long new passphrase 4",
        )
        .await;
    assert_eq!(login.status(), 303, "the new account signs in");

    // The sign-up is Auth0's `ss` event, the password nowhere in the log.
    let signed_up = crate::audit_log::events_of(&server, "ss").await;
    assert_eq!(signed_up.len(), 1, "{signed_up:#?}");
    assert_eq!(signed_up[0]["user_id"], user.user_id.as_str());
    assert_eq!(signed_up[0]["user_name"], "New.Person@Example.com");
    assert_eq!(signed_up[0]["client_id"], server.spa_client_id.as_str());
    assert_eq!(signed_up[0]["connection"], CONNECTION);
    assert!(signed_up[0]["ip"].as_str().unwrap().starts_with("127."));
    assert!(
        !crate::audit_log::whole_log(&server)
            .await
            .contains("passphrase")
    );
}

#[tokio::test]
async fn refusals_come_in_auth0s_shapes_and_create_nobody() {
    let server = spawn().await;
    let base = json!({
        "client_id": server.spa_client_id,
        "connection": CONNECTION,
        "email": "someone@example.com",
        "password": "a long new passphrase 4",
    });
    let with = |changes: Value| {
        let mut body = base.clone();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    let cases = [
        (json!({"email": server.user_email}), "user_exists"),
        (json!({"email": "DEMO@example.com"}), "user_exists"),
        (json!({"password": "short"}), "invalid_password"),
        (json!({"password": "password123"}), "invalid_password"),
        (json!({"email": "<b>x</b>@example.com"}), "invalid_signup"),
        (json!({"email": null}), "invalid_signup"),
        (json!({"password": null}), "invalid_signup"),
        (json!({"client_id": "no-such-client"}), "invalid_signup"),
        (json!({"client_id": null}), "invalid_signup"),
        (json!({"connection": "google-oauth2"}), "invalid_signup"),
        (json!({"connection": null}), "invalid_signup"),
        (json!({"given_name": "Given"}), "invalid_signup"),
        (json!({"username": "someone"}), "invalid_signup"),
        (
            json!({"name": "<script>alert(1)</script>"}),
            "invalid_signup",
        ),
        (json!({"picture": "javascript:alert(1)"}), "invalid_signup"),
        (json!({"user_metadata": "not an object"}), "invalid_signup"),
        (json!({"email": 42}), "invalid_signup"),
    ];
    for (changes, code) in cases {
        let body = with(changes.clone());
        let (status, answer) = sign_up(&server, &body).await;
        assert_eq!(status, 400, "{changes}: {answer}");
        assert_eq!(answer["code"], code, "{changes}: {answer}");
        assert_eq!(answer["statusCode"], 400, "{changes}: {answer}");
        assert!(
            answer["name"].as_str().unwrap().ends_with("Error"),
            "{answer}"
        );
    }
    let (_, weak) = sign_up(&server, &with(json!({"password": "short"}))).await;
    assert_eq!(weak["name"], "PasswordStrengthError");
    assert_eq!(weak["description"]["rules"][0]["code"], "lengthAtLeast");
    assert_eq!(weak["description"]["rules"][0]["verified"], false);
    let (_, common) = sign_up(&server, &with(json!({"password": "password123"}))).await;
    assert_eq!(common["name"], "PasswordDictionaryError");

    // Not JSON, a member twice, not an object: refused before anything is read.
    let http = reqwest::Client::new();
    for (content_type, raw) in [
        (
            "application/x-www-form-urlencoded",
            "client_id=x&email=a%40b.c&password=p",
        ),
        ("text/plain", &base.to_string()[..]),
        (
            "application/json",
            r#"{"email":"a@example.com","email":"b@example.com"}"#,
        ),
        ("application/json", "[1]"),
        ("application/json", "{"),
    ] {
        let response = http
            .post(server.url("/dbconnections/signup"))
            .header("content-type", content_type)
            .body(raw.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{content_type} {raw}");
    }
    assert!(
        server
            .store
            .find_user_by_email("someone@example.com")
            .await
            .unwrap()
            .is_none(),
        "no refused sign-up created the account"
    );

    // Each refusal of the account itself (taken address, weak password, invalid address)
    // is Auth0's `fs`, with its reason; a malformed request is no sign-up.
    let failed = crate::audit_log::events_of(&server, "fs").await;
    let reasons: Vec<&str> = failed
        .iter()
        .map(|event| event["description"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 7, "{reasons:#?}");
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("Password is too weak"))
            .count(),
        4
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == "The user already exists")
            .count(),
        2
    );
    assert!(
        failed
            .iter()
            .all(|event| event["client_id"] == server.spa_client_id.as_str()
                && event["connection"] == CONNECTION
                && event.get("user_id").is_none())
    );
    assert!(crate::audit_log::events_of(&server, "ss").await.is_empty());
    let log = crate::audit_log::whole_log(&server).await;
    for secret in ["a long new passphrase 4", "password123"] {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
}

/// auth0-js calls it from the application's page: CORS for registered origins only.
#[tokio::test]
async fn cors_answers_the_applications_registered_origins_only() {
    let server = spawn().await;
    let http = reqwest::Client::new();
    for (origin, allowed) in [(SPA_ORIGIN, true), ("https://evil.example", false)] {
        let preflight = http
            .request(
                reqwest::Method::OPTIONS,
                server.url("/dbconnections/signup"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(
            preflight
                .headers()
                .get("access-control-allow-origin")
                .is_some(),
            allowed,
            "{origin}"
        );
        let response = http
            .post(server.url("/dbconnections/signup"))
            .header("origin", origin)
            .json(&json!({"client_id": server.spa_client_id, "connection": CONNECTION,
                "email": format!("cors-{allowed}@example.com"), "password": "a long new passphrase 4"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_string()),
            allowed.then(|| origin.to_string()),
            "{origin}"
        );
    }
}
