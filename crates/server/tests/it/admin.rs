//! The dashboard over HTTP, as a browser without JavaScript uses it: signing in through
//! the hosted login page, forms with their CSRF token, the same operations and refusals
//! as the Management API. (Chromium runs the same path in tests/node/dashboard.test.mjs.)

use reqwest::StatusCode;
use serde_json::Value;
use tessera_core::system::MANAGEMENT_SCOPES;
use tessera_core::{AppType, RefreshPolicy};
use tessera_testkit::{
    PASSWORD, TestServer, browser, create_user, hidden_field, location, now, sign_in_at, spawn,
};

const DASHBOARD: &str = "tessera_dashboard";

/// Registers the dashboard's application as the server does at start (until then: as
/// the system registration will).
async fn dashboard_client(server: &TestServer) {
    if server.store.find_client(DASHBOARD).await.unwrap().is_some() {
        return;
    }
    let client = tessera_core::Client {
        client_id: DASHBOARD.into(),
        name: "Tessera Dashboard".into(),
        app_type: AppType::RegularWeb,
        secret_hash: None,
        token_endpoint_auth_method: "none".into(),
        callbacks: vec![format!("{}admin/callback", server.issuer)],
        web_origins: vec![],
        allowed_logout_urls: vec![format!("{}admin/signed-out", server.issuer)],
        grant_types: vec!["authorization_code".into()],
        is_first_party: true,
        allowed_apis: None,
        refresh: RefreshPolicy::default(),
        profile: Default::default(),
        created_at: now(),
        updated_at: now(),
    };
    server.store.create_client(&client).await.unwrap();
}

/// A user holding `scopes` of the Management API.
async fn administrator(server: &TestServer, email: &str, scopes: &[&str]) -> String {
    let user_id = create_user(&server.store, email, PASSWORD).await;
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    if !scopes.is_empty() {
        server
            .store
            .add_user_permissions(&user_id, &server.management_audience(), &scopes)
            .await
            .unwrap();
    }
    user_id
}

fn every_scope() -> Vec<&'static str> {
    MANAGEMENT_SCOPES.iter().map(|(s, _)| *s).collect()
}

/// Signs `email` in to the dashboard the way a browser does; returns the browser.
async fn signed_in(server: &TestServer, email: &str) -> reqwest::Client {
    dashboard_client(server).await;
    let browser = browser();
    let response = browser.get(server.url("/admin/")).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let login = location(&response);
    assert!(login.starts_with("/admin/login?"), "{login}");
    let response = browser.get(server.url(&login)).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let authorize = location(&response);
    assert!(authorize.starts_with("/authorize?"), "{authorize}");
    let response = browser.get(server.url(&authorize)).send().await.unwrap();
    let login_page = location(&response);
    let callback = sign_in_at(&browser, &server.base, &login_page, email, PASSWORD).await;
    assert!(callback.contains("/admin/callback?"), "{callback}");
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    assert_eq!(location(&response), "/admin/");
    browser
}

async fn page(server: &TestServer, browser: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let response = browser.get(server.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Posts a dashboard form with the page's CSRF token.
async fn post(
    server: &TestServer,
    browser: &reqwest::Client,
    from_page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (_, html) = page(server, browser, from_page).await;
    let csrf = hidden_field(&html, "csrf");
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    browser
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_administrator_creates_an_api_adds_a_permission_and_tests_it() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let (status, home) = page(&server, &browser, "/admin/").await;
    assert_eq!(status, 200);
    assert!(home.contains("Getting started"), "{home}");

    // Create API: name, identifier, RS256.
    let response = post(
        &server,
        &browser,
        "/admin/apis/new",
        "/admin/apis",
        &[
            ("name", "Messages"),
            ("identifier", "https://messages.example.com/"),
            ("signing_alg", "RS256"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    let api_page = location(&response);
    assert!(api_page.ends_with("?notice=api_created"), "{api_page}");
    let api_path = api_page.split('?').next().unwrap().to_string();
    let (_, quickstart) = page(&server, &browser, &api_page).await;
    assert!(quickstart.contains("The API was created."));
    assert!(quickstart.contains("https://messages.example.com/"));

    // The same identifier again: the Management API's conflict, shown on the form.
    let again = post(
        &server,
        &browser,
        "/admin/apis/new",
        "/admin/apis",
        &[
            ("name", "Messages 2"),
            ("identifier", "https://messages.example.com/"),
            ("signing_alg", "RS256"),
        ],
    )
    .await;
    assert_eq!(again.status(), 400);
    let html = again.text().await.unwrap();
    assert!(html.contains("A resource server with the same identifier already exists"));
    assert!(html.contains("identifier-error"), "shown next to the field");

    // Permissions: add read:messages with a description.
    let permissions = format!("{api_path}/permissions");
    let response = post(
        &server,
        &browser,
        &permissions,
        &permissions,
        &[("value", "read:messages"), ("description", "Read messages")],
    )
    .await;
    assert_eq!(response.status(), 302);
    let (_, html) = page(&server, &browser, &permissions).await;
    assert!(html.contains("read:messages") && html.contains("Read messages"));

    // Machine to Machine: authorize an application for read:messages.
    let (m2m_id, m2m_name) = {
        let mut client = tessera_testkit::client("Worker", AppType::NonInteractive, Some("s3cret"));
        client.name = "Worker".into();
        server.store.create_client(&client).await.unwrap();
        (client.client_id, client.name)
    };
    let machines = format!("{api_path}/m2m");
    let (_, html) = page(&server, &browser, &machines).await;
    assert!(html.contains(&m2m_name));
    let response = post(
        &server,
        &browser,
        &machines,
        &machines,
        &[
            ("client_id", &m2m_id),
            ("authorized", "on"),
            ("scope:read:messages", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());

    // Test: a client-credentials token with the right audience and scope.
    let test = format!("{api_path}/test");
    let response = post(&server, &browser, &test, &test, &[("client_id", &m2m_id)]).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    let token = html
        .split("<textarea id=\"token\" readonly>")
        .nth(1)
        .and_then(|rest| rest.split("</textarea>").next())
        .expect("the token is shown");
    let claims = server.verify(token, "https://messages.example.com/").await;
    assert_eq!(claims["scope"], "read:messages");
    assert_eq!(claims["sub"], format!("{m2m_id}@clients"));

    // The Management API sees the same API.
    let admin_token = server.management_token(&["read:resource_servers"]).await;
    let listed: Value = reqwest::Client::new()
        .get(server.url("/api/v2/resource-servers"))
        .bearer_auth(admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["identifier"] == "https://messages.example.com/")
        .expect("listed");
    assert_eq!(api["name"], "Messages");
    assert_eq!(api["scopes"][0]["value"], "read:messages");
    assert_eq!(api["scopes"][0]["description"], "Read messages");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_or_from_another_site_changes_nothing() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let fields = [
        ("name", "Forged"),
        ("identifier", "https://forged.example.com/"),
        ("signing_alg", "RS256"),
    ];
    let response = browser
        .post(server.url("/admin/apis"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = browser
        .post(server.url("/admin/apis"))
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // The right token, but the browser says another site sent it.
    let (_, html) = page(&server, &browser, "/admin/apis/new").await;
    let csrf = hidden_field(&html, "csrf");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(&fields);
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let response = browser
            .post(server.url("/admin/apis"))
            .header(header, value)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}");
    }
    assert!(
        server
            .store
            .find_resource_server("https://forged.example.com/")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_viewer_sees_pages_but_changes_nothing_and_a_user_without_roles_gets_403() {
    let server = spawn().await;
    let read_only: Vec<&str> = every_scope()
        .into_iter()
        .filter(|s| s.starts_with("read:"))
        .collect();
    administrator(&server, "viewer@example.com", &read_only).await;
    let viewer = signed_in(&server, "viewer@example.com").await;
    let (status, html) = page(&server, &viewer, "/admin/apis").await;
    assert_eq!(status, 200);
    assert!(!html.contains("Create API</a>"), "no create button");
    let response = post(
        &server,
        &viewer,
        "/admin/apis",
        "/admin/apis",
        &[
            ("name", "Nope"),
            ("identifier", "https://nope.example.com/"),
            ("signing_alg", "RS256"),
        ],
    )
    .await;
    assert_eq!(response.status(), 403);
    let html = response.text().await.unwrap();
    assert!(html.contains("Insufficient scope"), "{html}");
    assert!(
        server
            .store
            .find_resource_server("https://nope.example.com/")
            .await
            .unwrap()
            .is_none()
    );

    administrator(&server, "nobody@example.com", &[]).await;
    let nobody = signed_in_expecting_403(&server, "nobody@example.com").await;
    for path in ["/admin/", "/admin/apis", "/admin/apis/new"] {
        let (status, html) = page(&server, &nobody, path).await;
        assert_eq!(status, 403, "{path}");
        assert!(!html.contains("Auth0 Management API"), "no data on {path}");
    }
}

/// Like `signed_in`, for a user the dashboard refuses once signed in.
async fn signed_in_expecting_403(server: &TestServer, email: &str) -> reqwest::Client {
    dashboard_client(server).await;
    let browser = browser();
    let response = browser
        .get(server.url("/admin/login?return_to=/admin/"))
        .send()
        .await
        .unwrap();
    let authorize = location(&response);
    let response = browser.get(server.url(&authorize)).send().await.unwrap();
    let login_page = location(&response);
    let callback = sign_in_at(&browser, &server.base, &login_page, email, PASSWORD).await;
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 302);
    browser
}

#[tokio::test]
async fn a_callback_from_another_browser_or_with_a_replayed_code_signs_nobody_in() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    dashboard_client(&server).await;
    let victim = browser();
    let response = victim
        .get(server.url("/admin/login?return_to=/admin/"))
        .send()
        .await
        .unwrap();
    let authorize = location(&response);
    let response = victim.get(server.url(&authorize)).send().await.unwrap();
    let login_page = location(&response);
    let callback = sign_in_at(
        &victim,
        &server.base,
        &login_page,
        "admin@example.com",
        PASSWORD,
    )
    .await;
    // Another browser (no login cookie) cannot use the callback URL.
    let attacker = browser();
    let response = attacker.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let (status, _) = page(&server, &attacker, "/admin/apis").await;
    assert_eq!(status, 302, "still signed out");
    // The right browser can, once.
    let response = victim.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let response = victim.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 400, "the login cookie is spent");
}

#[tokio::test]
async fn deleting_an_api_asks_for_a_fresh_login_and_the_typed_identifier() {
    let server = spawn().await;
    let user_id = administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let api = tessera_testkit::api("https://doomed.example.com/", &[]);
    server.store.create_resource_server(&api).await.unwrap();
    let confirm = format!("/admin/apis/{}/delete", api.id);
    let (status, html) = page(&server, &browser, &confirm).await;
    assert_eq!(status, 200, "just signed in: fresh");
    let response = post(
        &server,
        &browser,
        &confirm,
        &confirm,
        &[("confirm", "wrong")],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(html.contains("Type"));
    // A fresh login is asked of the authorization server with max_age (the SSO session
    // older than that means the password again): see the login redirect.
    let response = browser
        .get(server.url(&format!("/admin/login?fresh=1&return_to={confirm}")))
        .send()
        .await
        .unwrap();
    let authorize = location(&response);
    assert!(authorize.contains("max_age=300"), "{authorize}");
    let response = post(
        &server,
        &browser,
        &confirm,
        &confirm,
        &[("confirm", "https://doomed.example.com/")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/admin/apis?notice=api_deleted");
    assert!(
        server
            .store
            .find_resource_server(&api.id)
            .await
            .unwrap()
            .is_none()
    );
    let _ = user_id;
}
