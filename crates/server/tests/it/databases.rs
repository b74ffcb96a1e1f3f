//! More than one database connection: an application signs users in and up with the one
//! enabled for it, each connection keeps its own users (one address may be in both), and
//! the options `disable_signup` / `disable_self_service_change_password` are obeyed at
//! every entrance.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::{DATABASE_CONNECTION, DATABASE_CONNECTION_ID};
use tessera_testkit::*;

const STAFF_PASSWORD: &str = "a staff passphrase 42";

async fn api(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let token = server
        .management_token(&[
            "create:connections",
            "update:connections",
            "delete:connections",
            "read:connections",
            "create:users",
            "read:users",
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

/// A `staff` database connection enabled for the SPA in place of the default one.
async fn staff_only(server: &TestServer) -> String {
    let (status, made) = api(
        server,
        Method::POST,
        "/connections",
        Some(json!({"name": "staff", "strategy": "auth0", "enabled_clients": [server.spa_client_id]})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let (status, body) = api(
        server,
        Method::PATCH,
        &format!("/connections/{DATABASE_CONNECTION_ID}/clients"),
        Some(json!([{"client_id": server.spa_client_id, "status": false}])),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    made["id"].as_str().unwrap().to_string()
}

/// The hosted page /authorize sends the browser to, and its HTML.
async fn login_page(
    server: &TestServer,
    browser: &reqwest::Client,
    extra: &[(&str, &str)],
) -> (String, String) {
    let pkce = pkce();
    let mut params = vec![
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let response = browser
        .get(server.authorize_url(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let path = location(&response);
    let html = browser
        .get(server.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (path, html)
}

async fn sign_up_on_page(
    server: &TestServer,
    browser: &reqwest::Client,
    login_path: &str,
    email: &str,
) -> reqwest::Response {
    let signup_path = login_path.replace("/u/login", "/u/signup");
    let page = browser.get(server.url(&signup_path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    browser
        .post(server.url("/u/signup"))
        .form(&[
            ("state", hidden_field(&html, "state")),
            ("csrf", hidden_field(&html, "csrf")),
            ("email", email.to_string()),
            ("password", STAFF_PASSWORD.to_string()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_application_signs_users_in_and_up_with_its_own_database_connection() {
    let server = spawn().await;
    staff_only(&server).await;

    // The default connection's user is not a user of the SPA's connection any more.
    let browser = browser();
    let (login_path, html) = login_page(&server, &browser, &[]).await;
    assert!(
        html.contains("name=\"password\""),
        "the password form is there"
    );
    let refused = submit_login_form(
        &browser,
        &server.base,
        &login_path,
        &server.user_email,
        PASSWORD,
    )
    .await;
    assert_eq!(refused.status(), 401, "a user of another connection");

    // Signing up on the page makes a user of `staff`, even with an address the default
    // connection has; that user signs in.
    let response = sign_up_on_page(&server, &browser, &login_path, &server.user_email).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let staff_user = server
        .store
        .find_user_by_email_in("staff", &server.user_email)
        .await
        .unwrap()
        .expect("the account is in staff");
    assert_ne!(staff_user.user_id, server.user_id);
    assert_eq!(staff_user.connection, "staff");
    assert!(staff_user.user_id.starts_with("auth0|"));

    let fresh = tessera_testkit::browser();
    let (login_path, _) = login_page(&server, &fresh, &[]).await;
    let back = sign_in_at(
        &fresh,
        &server.base,
        &login_path,
        &server.user_email,
        STAFF_PASSWORD,
    )
    .await;
    assert!(params_of(&back).contains_key("code"), "{back}");

    // The Management API shows each user in its connection; by-email finds both.
    let (_, user) = api(
        &server,
        Method::GET,
        &format!("/users/{}", staff_user.user_id),
        None,
    )
    .await;
    assert_eq!(user["identities"][0]["connection"], "staff", "{user}");
    assert_eq!(user["identities"][0]["provider"], "auth0", "{user}");
    let (_, found) = api(
        &server,
        Method::GET,
        &format!("/users-by-email?email={}", server.user_email),
        None,
    )
    .await;
    let connections: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["identities"][0]["connection"].as_str().unwrap())
        .collect();
    assert_eq!(connections.len(), 2, "{found}");
    assert!(connections.contains(&"staff") && connections.contains(&DATABASE_CONNECTION));

    // An administrator creates users in either database connection, never in an
    // upstream or unknown one.
    let (status, made) = api(
        &server,
        Method::POST,
        "/users",
        Some(
            json!({"connection": "staff", "email": "made@example.com", "password": STAFF_PASSWORD}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["identities"][0]["connection"], "staff");
    let (status, body) = api(
        &server,
        Method::POST,
        "/users",
        Some(
            json!({"connection": "staff", "email": "MADE@example.com", "password": STAFF_PASSWORD}),
        ),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = api(
        &server,
        Method::POST,
        "/users",
        Some(json!({"connection": "nobody", "email": "x@example.com", "password": STAFF_PASSWORD})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("does not exist"),
        "{body}"
    );

    // /dbconnections/signup takes the connection the application may use, not another.
    let signup = |connection: &str, email: &str| {
        json!({
            "client_id": server.spa_client_id,
            "connection": connection,
            "email": email,
            "password": STAFF_PASSWORD,
        })
    };
    let post_signup = |body: Value| {
        let url = server.url("/dbconnections/signup");
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = post_signup(signup("staff", "api@example.com")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_signup(signup(DATABASE_CONNECTION, "other@example.com")).await;
    assert_eq!(status, 400, "not enabled for the SPA any more: {body}");
    assert!(
        server
            .store
            .find_user_by_email("other@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // /authorize?connection= names a database connection the application may use.
    let browser = tessera_testkit::browser();
    let (path, _) = login_page(&server, &browser, &[("connection", "staff")]).await;
    assert!(path.starts_with("/u/login?state="), "{path}");
    let response = browser
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s1"),
            ("code_challenge", pkce().challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("connection", DATABASE_CONNECTION),
        ]))
        .send()
        .await
        .unwrap();
    let to = location(&response);
    assert!(to.starts_with(CALLBACK), "{to}");
    assert_eq!(params_of(&to)["error"], "invalid_request", "{to}");
}

#[tokio::test]
async fn a_connection_that_disables_sign_up_and_reset_is_obeyed_everywhere() {
    let (server, _mail) = spawn_with_mail(|_| {}).await;
    let id = staff_only(&server).await;
    let (status, body) = api(
        &server,
        Method::PATCH,
        &format!("/connections/{id}"),
        Some(json!({"options": {"disable_signup": true, "disable_self_service_change_password": true}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let browser = browser();
    let (login_path, html) = login_page(&server, &browser, &[]).await;
    assert!(html.contains("name=\"password\""), "signing in still works");
    assert!(!html.contains("/u/signup"), "no sign-up link");
    assert!(!html.contains("Forgot password"), "no reset link");
    let response = sign_up_on_page_refused(&server, &browser, &login_path).await;
    assert_eq!(response, 403);
    let (status, body) = {
        let response = reqwest::Client::new()
            .post(server.url("/dbconnections/signup"))
            .json(&json!({
                "client_id": server.spa_client_id,
                "connection": "staff",
                "email": "nope@example.com",
                "password": STAFF_PASSWORD,
            }))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "operation_not_allowed", "{body}");
    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/change_password"))
        .json(&json!({
            "client_id": server.spa_client_id,
            "connection": "staff",
            "email": "someone@example.com",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let reset = browser
        .get(server.url(&login_path.replace("/u/login", "/u/reset-password")))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 400);
    assert!(
        server
            .store
            .find_user_by_email_in("staff", "nope@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // An administrator still creates users there.
    let (status, made) = api(
        &server,
        Method::POST,
        "/users",
        Some(
            json!({"connection": "staff", "email": "made@example.com", "password": STAFF_PASSWORD}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{made}");
}

/// The sign-up page's status for a transaction whose connection refuses sign-ups.
async fn sign_up_on_page_refused(
    server: &TestServer,
    browser: &reqwest::Client,
    login_path: &str,
) -> u16 {
    let signup_path = login_path.replace("/u/login", "/u/signup");
    browser
        .get(server.url(&signup_path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_application_without_a_database_connection_has_no_password_form() {
    let server = spawn().await;
    let (status, body) = api(
        &server,
        Method::PATCH,
        &format!("/connections/{DATABASE_CONNECTION_ID}/clients"),
        Some(json!([{"client_id": server.spa_client_id, "status": false}])),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let browser = browser();
    let (login_path, html) = login_page(&server, &browser, &[]).await;
    assert!(!html.contains("name=\"password\""), "{html}");
    assert!(html.contains("no way to log in"), "{html}");
    // No form, no token: a hand-made post signs nobody in.
    let state = params_of(&server.url(&login_path))["state"].clone();
    let response = browser
        .post(server.url("/u/login"))
        .form(&[
            ("state", state.as_str()),
            ("csrf", ""),
            ("username", server.user_email.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    assert_eq!(
        sign_up_on_page_refused(&server, &browser, &login_path).await,
        403
    );
}

/// `/authorize?connection=NAME` for the SPA: the hosted login page's path, or the error
/// sent back to the application.
async fn authorize_with(server: &TestServer, connection: &str) -> String {
    let response = browser()
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s1"),
            ("code_challenge", pkce().challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("connection", connection),
        ]))
        .send()
        .await
        .unwrap();
    location(&response)
}

#[tokio::test]
async fn a_third_party_application_signs_in_through_domain_connections_only() {
    let server = spawn().await;
    let (status, staff) = api(
        &server,
        Method::POST,
        "/connections",
        Some(json!({"name": "staff", "strategy": "auth0", "enabled_clients": [server.spa_client_id]})),
    )
    .await;
    assert_eq!(status, 201, "{staff}");
    assert_eq!(staff["is_domain_connection"], false, "Auth0's default");
    let (status, body) = api(
        &server,
        Method::GET,
        &format!("/connections/{DATABASE_CONNECTION_ID}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["is_domain_connection"], true,
        "the default starts open"
    );

    let token = server.management_token(&["update:clients"]).await;
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/clients/{}", server.spa_client_id)))
        .bearer_auth(token)
        .json(&json!({"is_first_party": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Enabled for the application is not enough for a third party: staff is no domain
    // connection; the default database connection is one.
    let to = authorize_with(&server, "staff").await;
    assert!(to.starts_with(CALLBACK), "{to}");
    assert_eq!(params_of(&to)["error"], "invalid_request", "{to}");
    let (_, html) = login_page(&server, &browser(), &[]).await;
    assert!(html.contains("name=\"password\""), "the default's form");

    // Promoted, staff serves every third-party application, enabled for it or not.
    let staff_id = staff["id"].as_str().unwrap();
    for change in [
        json!({"is_domain_connection": true}),
        json!({"enabled_clients": []}),
    ] {
        let path = format!("/connections/{staff_id}");
        let (status, body) = api(&server, Method::PATCH, &path, Some(change)).await;
        assert_eq!(status, 200, "{body}");
    }
    let to = authorize_with(&server, "staff").await;
    assert!(to.starts_with("/u/login?state="), "{to}");

    // The default closed to third parties: the application signs in with staff only, and
    // first-party applications keep the default.
    let path = format!("/connections/{DATABASE_CONNECTION_ID}");
    let change = json!({"is_domain_connection": false});
    let (status, body) = api(&server, Method::PATCH, &path, Some(change)).await;
    assert_eq!(status, 200, "{body}");
    let to = authorize_with(&server, DATABASE_CONNECTION).await;
    assert_eq!(params_of(&to)["error"], "invalid_request", "{to}");
    let connections = server
        .store
        .connections_for_sign_in(&server.spa_client_id)
        .await
        .unwrap();
    let names: Vec<&str> = connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["staff"]);
    let token = server.management_token(&["update:clients"]).await;
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/clients/{}", server.spa_client_id)))
        .bearer_auth(token)
        .json(&json!({"is_first_party": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let to = authorize_with(&server, DATABASE_CONNECTION).await;
    assert!(to.starts_with("/u/login?state="), "first party again: {to}");
}

/// A sign-up the connection refuses before any account is made is still Auth0's `fs`:
/// through `/dbconnections/signup`, and on the hosted page when sign-up was disabled
/// after the page was served. The password is in neither event.
#[tokio::test]
async fn a_sign_up_refused_by_the_connection_is_a_failed_signup_event() {
    let server = spawn().await;
    let id = staff_only(&server).await;
    let browser = browser();
    let (login_path, _) = login_page(&server, &browser, &[]).await;
    let signup_path = login_path.replace("/u/login", "/u/signup");
    let page = browser.get(server.url(&signup_path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let (status, body) = api(
        &server,
        Method::PATCH,
        &format!("/connections/{id}"),
        Some(json!({"options": {"disable_signup": true}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refused = browser
        .post(server.url("/u/signup"))
        .form(&[
            ("state", hidden_field(&html, "state")),
            ("csrf", hidden_field(&html, "csrf")),
            ("email", "late@example.com".to_string()),
            ("password", STAFF_PASSWORD.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let response = reqwest::Client::new()
        .post(server.url("/dbconnections/signup"))
        .json(&json!({
            "client_id": server.spa_client_id,
            "connection": "staff",
            "email": "api@example.com",
            "password": STAFF_PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let failed = crate::audit_log::events_of(&server, "fs").await;
    let mut names: Vec<&str> = failed
        .iter()
        .map(|event| event["user_name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["api@example.com", "late@example.com"],
        "{failed:#?}"
    );
    assert!(failed.iter().all(|event| {
        event["description"] == "Public signup is disabled"
            && event["connection"] == "staff"
            && event["client_id"] == server.spa_client_id.as_str()
    }));
    assert!(
        !crate::audit_log::whole_log(&server)
            .await
            .contains(STAFF_PASSWORD)
    );
    for email in ["late@example.com", "api@example.com"] {
        assert!(
            server
                .store
                .find_user_by_email_in("staff", email)
                .await
                .unwrap()
                .is_none()
        );
    }
}
