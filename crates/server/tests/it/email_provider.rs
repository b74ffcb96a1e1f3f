//! `/api/v2/emails/provider`: Auth0's shape, the password sealed and never shown, and the
//! provider carrying the mail instead of `--smtp-url` while it is enabled (real SMTP to two
//! in-test receivers).

use serde_json::{Value, json};
use tessera_testkit::smtp::SmtpReceiver;
use tessera_testkit::*;

const PASSWORD_SECRET: &str = "hunter2-provider-secret";
const SCOPES: &[&str] = &[
    "read:email_provider",
    "create:email_provider",
    "update:email_provider",
    "delete:email_provider",
];

async fn api(
    server: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Asks for a reset code for the seeded user: (status of the answer).
async fn ask_for_code(server: &TestServer) -> u16 {
    reqwest::Client::new()
        .post(server.url("/dbconnections/change_password"))
        .json(&json!({
            "client_id": server.spa_client_id,
            "connection": "Username-Password-Authentication",
            "email": server.user_email,
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn provider(port: u16) -> Value {
    json!({
        "name": "smtp",
        "enabled": true,
        "default_from_address": "Provider <provider@acme.example>",
        "credentials": {"smtp_host": "127.0.0.1", "smtp_port": port},
    })
}

#[tokio::test]
async fn the_provider_is_kept_in_auth0s_shape_without_ever_showing_its_password() {
    let server = spawn().await;
    let mut relay = SmtpReceiver::start().await;
    let admin = server.management_token(SCOPES).await;
    let (status, body) = api(
        &server,
        &admin,
        reqwest::Method::GET,
        "/emails/provider",
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        json_of(&body),
        json!({"statusCode": 404, "error": "Not Found",
               "message": "There is no configured email provider",
               "errorCode": "inexistent_email_provider"})
    );
    // No mail configured: no reset.
    assert_eq!(ask_for_code(&server).await, 400);

    let (status, body) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/emails/provider",
        Some(provider(relay.port)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(json_of(&body), provider(relay.port));
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/emails/provider",
        Some(provider(relay.port)),
    )
    .await;
    assert_eq!(status, 409);

    // Enabled: the provider carries the mail, from its address.
    assert_eq!(ask_for_code(&server).await, 200);
    let mail = relay.next().await;
    assert!(
        mail.header("From")
            .unwrap()
            .contains("<provider@acme.example>")
    );
    mail.code();

    // GET: name and enabled; other fields when asked, never the password.
    let (status, body) = api(
        &server,
        &admin,
        reqwest::Method::PATCH,
        "/emails/provider",
        Some(
            json!({"credentials": {"smtp_host": "127.0.0.1", "smtp_port": relay.port,
                                    "smtp_user": "mailer", "smtp_pass": PASSWORD_SECRET}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(PASSWORD_SECRET), "{body}");
    assert!(!body.contains("smtp_pass"), "{body}");
    let (_, brief) = api(
        &server,
        &admin,
        reqwest::Method::GET,
        "/emails/provider",
        None,
    )
    .await;
    assert_eq!(json_of(&brief), json!({"name": "smtp", "enabled": true}));
    let (_, full) = api(
        &server,
        &admin,
        reqwest::Method::GET,
        "/emails/provider?fields=credentials,default_from_address&include_fields=true",
        None,
    )
    .await;
    assert_eq!(
        json_of(&full),
        json!({"default_from_address": "Provider <provider@acme.example>",
               "credentials": {"smtp_host": "127.0.0.1", "smtp_port": relay.port,
                               "smtp_user": "mailer"}})
    );
    // Stored sealed: the row holds no password in clear.
    let stored = server.store.email_provider().await.unwrap().unwrap();
    assert!(
        !serde_json::to_string(&stored.document)
            .unwrap()
            .contains(PASSWORD_SECRET)
    );
    let sealed = stored.sealed_password.expect("a sealed password");
    assert!(
        !sealed
            .windows(PASSWORD_SECRET.len())
            .any(|window| window == PASSWORD_SECRET.as_bytes())
    );

    // Refusals say what is wrong without quoting the password, and change nothing.
    for (body, expected) in [
        (json!({"name": "sendgrid"}), 400),
        (
            json!({"credentials": {"smtp_host": "a b", "smtp_pass": PASSWORD_SECRET}}),
            400,
        ),
        (
            json!({"credentials": {"smtp_port": 0, "smtp_pass": PASSWORD_SECRET}}),
            400,
        ),
        (
            json!({"credentials": {"smtp_host": "mail.example.com", "smtp_port": 25,
                                "smtp_pass": format!("{PASSWORD_SECRET}\r\nQUIT")}}),
            400,
        ),
        (json!({"credentials": {"smtp_port": 25}}), 400),
        (
            json!({"default_from_address": "x@example.com\r\nBcc: y@example.com"}),
            400,
        ),
        (json!({"api_key": PASSWORD_SECRET}), 400),
    ] {
        let (status, answer) = api(
            &server,
            &admin,
            reqwest::Method::PATCH,
            "/emails/provider",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(!answer.contains(PASSWORD_SECRET), "{answer}");
    }
    assert_eq!(
        server
            .store
            .email_provider()
            .await
            .unwrap()
            .unwrap()
            .document,
        stored.document
    );

    // Disabled: nothing carries mail any more. Deleted: 404 again.
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::PATCH,
        "/emails/provider",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ask_for_code(&server).await, 400);
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::DELETE,
        "/emails/provider",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::DELETE,
        "/emails/provider",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::GET,
        "/emails/provider",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Scopes.
    let reader = server.management_token(&["read:email_provider"]).await;
    let (status, _) = api(
        &server,
        &reader,
        reqwest::Method::POST,
        "/emails/provider",
        Some(provider(relay.port)),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_enabled_provider_replaces_the_configured_smtp_server() {
    let (server, mut configured) = spawn_with_mail(|_| {}).await;
    let mut relay = SmtpReceiver::start().await;
    let admin = server.management_token(SCOPES).await;
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/emails/provider",
        Some(provider(relay.port)),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(ask_for_code(&server).await, 200);
    relay.next().await.code();
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::PATCH,
        "/emails/provider",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ask_for_code(&server).await, 200);
    configured.next().await.code();
    assert!(relay.try_next().is_none(), "the disabled provider got mail");
}
