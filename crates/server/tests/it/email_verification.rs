//! Email verification end to end: the tenant's `verify_email` template, the mail a sign-up
//! or `POST /api/v2/users` sends (real SMTP to `tessera_testkit::smtp`), the hosted page
//! the link opens (a GET shows a button, only the POST verifies), Auth0's ticket endpoint,
//! and `email_verified` in the Management API and in a fresh ID token.

use serde_json::{Value, json};
use tessera_testkit::smtp::{Mail, SmtpReceiver};
use tessera_testkit::*;

const CONNECTION: &str = "Username-Password-Authentication";
const LINK: &str = "/u/email-verification?ticket=";
const SCOPES: &[&str] = &[
    "create:email_templates",
    "read:email_templates",
    "update:email_templates",
    "create:users",
    "read:users",
    "update:users",
    "delete:users",
    "create:user_tickets",
];

async fn api(
    server: &TestServer,
    token: &str,
    method: reqwest::Method,
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

fn verify_template(enabled: bool) -> Value {
    json!({
        "template": "verify_email",
        "from": "Acme Accounts <accounts@acme.example>",
        "subject": "Confirm {{ user.email }} for {{ application.name }}",
        "body": "<p>Hello {{ user.name }},</p><p><a href=\"{{ url }}\">Verify {{ user.email }}</a></p>",
        "syntax": "liquid",
        "resultUrl": "https://app.example/verified",
        "urlLifetimeInSeconds": 3600,
        "enabled": enabled,
    })
}

/// Asks for a password reset code for the seeded user: the mail worker sends in order, so
/// when this code arrives next, nothing was sent before it.
async fn nothing_else_was_sent(server: &TestServer, smtp: &mut SmtpReceiver) {
    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/change_password"))
        .json(&json!({
            "client_id": server.spa_client_id,
            "connection": CONNECTION,
            "email": server.user_email,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mail = smtp.next().await;
    assert!(
        mail.data.contains("Your code: "),
        "a mail was sent before the marker: {}",
        mail.data
    );
}

/// Opens the link as a browser does: (the page's status, its HTML).
async fn open(browser: &reqwest::Client, link: &str) -> (u16, String) {
    let response = browser.get(link).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Presses the page's button.
async fn press(server: &TestServer, browser: &reqwest::Client, page: &str) -> (u16, String) {
    let response = browser
        .post(server.url("/u/email-verification"))
        .form(&[
            ("ticket", hidden_field(page, "ticket")),
            ("csrf", hidden_field(page, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn verified(server: &TestServer, user_id: &str) -> bool {
    server
        .store
        .find_user(user_id)
        .await
        .unwrap()
        .unwrap()
        .email_verified
}

fn link_of(server: &TestServer, mail: &Mail) -> String {
    let link = mail.link(LINK);
    assert!(
        link.starts_with(&format!("{}u/email-verification?ticket=", server.issuer)),
        "{link}"
    );
    link
}

#[tokio::test]
async fn a_hosted_sign_up_is_mailed_a_link_that_verifies_only_when_the_page_is_posted() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let admin = server.management_token(SCOPES).await;
    let (status, created) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/email-templates",
        Some(verify_template(true)),
    )
    .await;
    assert_eq!(status, 200, "{created}");

    // Sign up on the hosted page; the ID token says the address is not verified.
    let browser = browser();
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid email"),
        ("screen_hint", "signup"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = browser.get(&url).send().await.unwrap();
    let page = browser
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .post(server.url("/u/signup"))
        .form(&[
            ("state", hidden_field(&page, "state")),
            ("csrf", hidden_field(&page, "csrf")),
            ("email", "fresh@example.com".into()),
            ("password", "a long and unusual passphrase".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let response = browser
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap();
    let code = params_of(&location(&response))["code"].clone();
    let (status, tokens) = server.redeem(&code, &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id = server
        .verify(tokens["id_token"].as_str().unwrap(), &server.spa_client_id)
        .await;
    assert_eq!(id["email_verified"], false);
    let user_id = id["sub"].as_str().unwrap().to_string();

    // The mail: the template's sender, subject and HTML body, the link inside.
    let mail = smtp.next().await;
    assert_eq!(mail.to, vec!["fresh@example.com".to_string()]);
    assert!(
        mail.header("From")
            .unwrap()
            .contains("<accounts@acme.example>"),
        "{}",
        mail.data
    );
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Confirm fresh@example.com for Quickstart SPA"
    );
    assert!(mail.header("Content-Type").unwrap().contains("text/html"));
    let link = link_of(&server, &mail);
    assert!(mail.body().contains("Verify fresh@example.com</a>"));

    // A mail scanner fetching the link uses nothing up.
    let scanner = reqwest::Client::new();
    for _ in 0..3 {
        let (status, _) = open(&scanner, &link).await;
        assert_eq!(status, 200);
    }
    assert!(!verified(&server, &user_id).await);

    // The page is as locked down as the other hosted pages, and sends no Referer on.
    let response = scanner.get(&link).send().await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(response.headers()["cache-control"], "no-store");

    // The person presses the button.
    let mail_client = tessera_testkit::browser();
    let (status, page) = open(&mail_client, &link).await;
    assert_eq!(status, 200);
    assert!(page.contains("Verify my email address"), "{page}");
    let (status, done) = press(&server, &mail_client, &page).await;
    assert_eq!(status, 200, "{done}");
    assert!(
        done.contains("fresh@example.com</strong> is verified"),
        "{done}"
    );
    assert!(
        done.contains("href=\"https://app.example/verified\""),
        "{done}"
    );

    // The Management API and a fresh ID token say so.
    let (status, user) = api(
        &server,
        &admin,
        reqwest::Method::GET,
        &format!("/users/{user_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(user["email_verified"], true, "{user}");
    let tokens = server.code_flow(&browser, "openid email", None).await;
    let id = server
        .verify(tokens["id_token"].as_str().unwrap(), &server.spa_client_id)
        .await;
    assert_eq!(id["sub"], user_id.as_str());
    assert_eq!(id["email_verified"], true);

    // Used: the link and its form are dead.
    let (status, page_again) = open(&mail_client, &link).await;
    assert_eq!(status, 400);
    assert!(page_again.contains("This link is not valid"));
    let (status, _) = press(&server, &mail_client, &page).await;
    assert_eq!(status, 400);

    // The audit log: the hosted sign-up (`ss`), the verification (`sv`) and the used
    // link pressed again (`fv`); neither the ticket nor the password.
    let signed_up = crate::audit_log::events_of(&server, "ss").await;
    assert_eq!(signed_up.len(), 1, "{signed_up:#?}");
    assert_eq!(signed_up[0]["user_id"], user_id.as_str());
    assert_eq!(signed_up[0]["client_id"], server.spa_client_id.as_str());
    let verified_events = crate::audit_log::events_of(&server, "sv").await;
    assert_eq!(verified_events.len(), 1, "{verified_events:#?}");
    assert_eq!(verified_events[0]["user_id"], user_id.as_str());
    assert_eq!(verified_events[0]["user_name"], "fresh@example.com");
    let refused = crate::audit_log::events_of(&server, "fv").await;
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(refused[0].get("user_id").is_none());
    let ticket = link.split("ticket=").nth(1).unwrap();
    let log = crate::audit_log::whole_log(&server).await;
    assert!(!log.contains(ticket), "the ticket is in the log");
    assert!(!log.contains("a long and unusual passphrase"));
}

#[tokio::test]
async fn whether_new_accounts_are_mailed_follows_the_template_and_verify_email() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let admin = server.management_token(SCOPES).await;
    let create = |email: &str, extra: Value| {
        let mut body = json!({
            "connection": CONNECTION,
            "email": email,
            "password": "a long new passphrase 4",
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    // No template: the tenant wants no mail, whatever the entrance.
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/users",
        Some(create("one@example.com", json!({"verify_email": true}))),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = api(
        &server,
        &admin,
        reqwest::Method::GET,
        "/email-templates/verify_email",
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"statusCode": 404, "error": "Not Found",
               "message": "The email template does not exist",
               "errorCode": "inexistent_email_template"})
    );
    // A disabled template: none either.
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::PUT,
        "/email-templates/verify_email",
        Some(verify_template(false)),
    )
    .await;
    assert_eq!(status, 200);
    let signup = reqwest::Client::new()
        .post(server.url("/dbconnections/signup"))
        .json(&json!({
            "client_id": server.spa_client_id,
            "connection": CONNECTION,
            "email": "two@example.com",
            "password": "a long new passphrase 4",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200);
    nothing_else_was_sent(&server, &mut smtp).await;

    // Enabled: declined (verify_email false) or already verified sends none.
    let (status, patched) = api(
        &server,
        &admin,
        reqwest::Method::PATCH,
        "/email-templates/verify_email",
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(patched["enabled"], true);
    assert_eq!(patched["subject"], verify_template(true)["subject"]);
    for extra in [
        json!({"verify_email": false}),
        json!({"email_verified": true}),
    ] {
        let email = format!("quiet{}@example.com", extra.to_string().len());
        let (status, _) = api(
            &server,
            &admin,
            reqwest::Method::POST,
            "/users",
            Some(create(&email, extra)),
        )
        .await;
        assert_eq!(status, 201);
    }
    nothing_else_was_sent(&server, &mut smtp).await;

    // Enabled, by default: the mail, through /dbconnections/signup and POST /users.
    let signup = reqwest::Client::new()
        .post(server.url("/dbconnections/signup"))
        .json(&json!({
            "client_id": server.spa_client_id,
            "connection": CONNECTION,
            "email": "three@example.com",
            "password": "a long new passphrase 4",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 200);
    assert_eq!(smtp.next().await.to, vec!["three@example.com".to_string()]);
    let (status, user) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/users",
        Some(create("four@example.com", json!({"name": "Four & \"Co\""}))),
    )
    .await;
    assert_eq!(status, 201);
    let mail = smtp.next().await;
    assert_eq!(mail.to, vec!["four@example.com".to_string()]);
    // Values are escaped in the HTML body.
    assert!(
        mail.body().contains("Hello Four &amp; &quot;Co&quot;,"),
        "{}",
        mail.body()
    );
    let link = link_of(&server, &mail);
    let browser = browser();
    let (_, page) = open(&browser, &link).await;
    let (status, _) = press(&server, &browser, &page).await;
    assert_eq!(status, 200);
    assert!(verified(&server, user["user_id"].as_str().unwrap()).await);
}

#[tokio::test]
async fn without_a_template_the_mail_is_plain_text_with_the_link() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let admin = server.management_token(SCOPES).await;
    // Enabled but with an empty subject: the built-in subject; the template's body.
    let mut template = verify_template(true);
    template["subject"] = json!("");
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/email-templates",
        Some(template),
    )
    .await;
    assert_eq!(status, 200);
    let (status, conflict) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/email-templates",
        Some(verify_template(true)),
    )
    .await;
    assert_eq!(status, 409, "{conflict}");
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/users",
        Some(
            json!({"connection": CONNECTION, "email": "five@example.com",
                    "password": "a long new passphrase 4"}),
        ),
    )
    .await;
    assert_eq!(status, 201);
    let mail = smtp.next().await;
    assert_eq!(mail.header("Subject").unwrap(), "Verify your email address");
    link_of(&server, &mail);
}

#[tokio::test]
async fn the_ticket_endpoint_returns_a_link_in_auth0s_shape() {
    let server = spawn().await;
    let admin = server.management_token(SCOPES).await;
    let (status, body) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/tickets/email-verification",
        Some(
            json!({"user_id": server.user_id, "result_url": "https://app.example/done",
                    "ttl_sec": 600}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let ticket = body["ticket"].as_str().unwrap();
    assert!(
        ticket.starts_with(&format!("{}u/email-verification?ticket=", server.issuer)),
        "{ticket}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1);
    let browser = browser();
    let (status, page) = open(&browser, ticket).await;
    assert_eq!(status, 200);
    let (status, done) = press(&server, &browser, &page).await;
    assert_eq!(status, 200);
    assert!(done.contains("https://app.example/done"));
    assert!(verified(&server, &server.user_id).await);

    // Refusals: unknown user, bad URL and lifetime, organizations, missing scope.
    for (body, expected) in [
        (json!({"user_id": "auth0|nobody"}), 404),
        (json!({}), 400),
        (
            json!({"user_id": server.user_id, "result_url": "javascript:alert(1)"}),
            400,
        ),
        (json!({"user_id": server.user_id, "ttl_sec": -5}), 400),
        (
            json!({"user_id": server.user_id, "organization_id": "org_1"}),
            400,
        ),
        (json!({"user_id": server.user_id, "client_id": "nope"}), 400),
    ] {
        let (status, answer) = api(
            &server,
            &admin,
            reqwest::Method::POST,
            "/tickets/email-verification",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, expected, "{body}: {answer}");
    }
    let reader = server.management_token(&["read:users"]).await;
    let (status, _) = api(
        &server,
        &reader,
        reqwest::Method::POST,
        "/tickets/email-verification",
        Some(json!({"user_id": server.user_id})),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn email_templates_are_read_replaced_and_patched_in_auth0s_shape() {
    let server = spawn().await;
    let admin = server.management_token(SCOPES).await;
    let (status, put) = api(
        &server,
        &admin,
        reqwest::Method::PUT,
        "/email-templates/reset_email",
        Some(
            json!({"body": "<p>{{ url }}</p>", "subject": "Reset", "syntax": "liquid",
                    "enabled": false, "from": null}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["template"], "reset_email");
    let (status, got) = api(
        &server,
        &admin,
        reqwest::Method::GET,
        "/email-templates/reset_email",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got, put);
    for (method, path, body, expected) in [
        // Unknown name; another template's name in the body; never created.
        (reqwest::Method::GET, "/email-templates/bogus", None, 400),
        (
            reqwest::Method::PATCH,
            "/email-templates/reset_email",
            Some(json!({"template": "verify_email"})),
            400,
        ),
        (
            reqwest::Method::PATCH,
            "/email-templates/welcome_email",
            Some(json!({"enabled": true})),
            404,
        ),
        // Missing members on create.
        (
            reqwest::Method::POST,
            "/email-templates",
            Some(json!({"template": "welcome_email"})),
            400,
        ),
    ] {
        let (status, answer) = api(&server, &admin, method.clone(), path, body.clone()).await;
        assert_eq!(status, expected, "{method} {path} {body:?}: {answer}");
    }
    let reader = server.management_token(&["read:email_templates"]).await;
    let (status, _) = api(
        &server,
        &reader,
        reqwest::Method::PATCH,
        "/email-templates/reset_email",
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_new_address_set_through_the_api_is_mailed_a_link_unless_declined() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let admin = server.management_token(SCOPES).await;
    let (status, _) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/email-templates",
        Some(verify_template(true)),
    )
    .await;
    assert_eq!(status, 200);
    let (status, user) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/users",
        Some(json!({"connection": CONNECTION, "email": "old@example.com",
                    "password": "a long new passphrase 4", "email_verified": true})),
    )
    .await;
    assert_eq!(status, 201);
    let path = format!("/users/{}", user["user_id"].as_str().unwrap());
    // Declined, or another member changed: nothing.
    for body in [
        json!({"email": "declined@example.com", "verify_email": false}),
        json!({"name": "Just A Name"}),
    ] {
        let (status, _) = api(&server, &admin, reqwest::Method::PATCH, &path, Some(body)).await;
        assert_eq!(status, 200);
    }
    nothing_else_was_sent(&server, &mut smtp).await;
    let (status, changed) = api(
        &server,
        &admin,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"email": "new@example.com"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(changed["email_verified"], false);
    let mail = smtp.next().await;
    assert_eq!(mail.to, vec!["new@example.com".to_string()]);
    let link = link_of(&server, &mail);
    let browser = browser();
    let (_, page) = open(&browser, &link).await;
    let (status, done) = press(&server, &browser, &page).await;
    assert_eq!(status, 200);
    assert!(done.contains("new@example.com</strong> is verified"));
}

#[tokio::test]
async fn a_verification_email_job_mails_a_link_and_is_recorded_as_auth0s_job() {
    let (server, mut smtp) = spawn_with_mail(|_| {}).await;
    let admin = server.management_token(SCOPES).await;
    // No template: sign-ups send nothing, but an administrator's job does.
    let (status, user) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/users",
        Some(json!({"connection": CONNECTION, "email": "job@example.com",
                    "password": "a long new passphrase 9"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let user_id = user["user_id"].as_str().unwrap().to_string();
    nothing_else_was_sent(&server, &mut smtp).await;

    let (status, job) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/jobs/verification-email",
        Some(json!({"user_id": user_id, "client_id": server.spa_client_id,
                    "identity": {"user_id": user_id.trim_start_matches("auth0|"), "provider": "auth0"}})),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["type"], "verification_email");
    assert_eq!(job["status"], "completed");
    let mail = smtp.next().await;
    assert_eq!(mail.to, vec!["job@example.com".to_string()]);
    let link = link_of(&server, &mail);
    let browser = browser();
    let (_, page) = open(&browser, &link).await;
    let (status, _) = press(&server, &browser, &page).await;
    assert_eq!(status, 200);
    assert!(verified(&server, &user_id).await);
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());
    let (status, read) = api(&server, &admin, reqwest::Method::GET, &path, None).await;
    assert_eq!((status, &read["type"]), (200, &json!("verification_email")));

    // Refusals: nobody, another identity, organizations, unknown members, no scope.
    for (body, expected) in [
        (json!({"user_id": "auth0|000000000000000000000000"}), 404),
        (json!({"user_id": user_id, "client_id": "nope"}), 404),
        (
            json!({"user_id": user_id, "identity": {"user_id": "x", "provider": "google-oauth2"}}),
            400,
        ),
        (json!({"user_id": user_id, "organization_id": "org_1"}), 400),
        (json!({"user_id": user_id, "template": "x"}), 400),
        (json!({}), 400),
    ] {
        let (status, answer) = api(
            &server,
            &admin,
            reqwest::Method::POST,
            "/jobs/verification-email",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, expected, "{body} → {answer}");
    }
    let reader = server.management_token(&["read:users"]).await;
    let (status, _) = api(
        &server,
        &reader,
        reqwest::Method::POST,
        "/jobs/verification-email",
        Some(json!({"user_id": user_id})),
    )
    .await;
    assert_eq!(status, 403);
    nothing_else_was_sent(&server, &mut smtp).await;
}
