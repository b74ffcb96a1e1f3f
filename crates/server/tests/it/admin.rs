//! The dashboard over HTTP, as a browser without JavaScript uses it: signing in through
//! the hosted login page, forms with their CSRF token, the same operations and refusals
//! as the Management API. (Chromium runs the same path in tests/node/dashboard.test.mjs.)

use reqwest::StatusCode;
use serde_json::Value;
use tessera_core::AppType;
use tessera_core::system::MANAGEMENT_SCOPES;
use tessera_testkit::{
    API, PASSWORD, TestServer, browser, client_credentials, create_user, hidden_field, location,
    sign_in_at, spawn, spawn_with,
};

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

/// The dashboard's URL for `path` (`/admin/…`), on whichever listener serves it.
fn at(server: &TestServer, path: &str) -> String {
    format!("{}{path}", server.dashboard_base)
}

/// Signs `email` in to the dashboard the way a browser does; returns the browser.
async fn signed_in(server: &TestServer, email: &str) -> reqwest::Client {
    let browser = browser();
    let response = browser.get(at(server, "/admin/")).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let login = location(&response);
    assert!(login.starts_with("/admin/login?"), "{login}");
    let response = browser.get(at(server, &login)).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let authorize = location(&response);
    assert!(
        authorize.starts_with(&format!("{}authorize?", server.issuer)),
        "{authorize}"
    );
    let response = browser.get(&authorize).send().await.unwrap();
    let login_page = location(&response);
    let callback = sign_in_at(&browser, &server.base, &login_page, email, PASSWORD).await;
    assert!(
        callback.starts_with(&at(server, "/admin/callback?")),
        "{callback}"
    );
    let response = browser.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    assert_eq!(location(&response), "/admin/");
    browser
}

async fn page(server: &TestServer, browser: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let response = browser.get(at(server, path)).send().await.unwrap();
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
        .post(at(server, path))
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
        .post(at(&server, "/admin/apis"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = browser
        .post(at(&server, "/admin/apis"))
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
            .post(at(&server, "/admin/apis"))
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
    let browser = browser();
    let response = browser
        .get(at(server, "/admin/login?return_to=/admin/"))
        .send()
        .await
        .unwrap();
    let authorize = location(&response);
    let response = browser.get(&authorize).send().await.unwrap();
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
    let victim = browser();
    let response = victim
        .get(at(&server, "/admin/login?return_to=/admin/"))
        .send()
        .await
        .unwrap();
    let authorize = location(&response);
    let response = victim.get(&authorize).send().await.unwrap();
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
        .get(at(
            &server,
            &format!("/admin/login?fresh=1&return_to={confirm}"),
        ))
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

#[tokio::test]
async fn with_admin_off_there_is_no_dashboard() {
    let server = spawn_with(|config| config.admin = false).await;
    for path in ["/admin/", "/admin/login", "/admin/apis"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn on_a_listener_of_its_own_the_dashboard_signs_in_through_the_issuer() {
    let server = spawn_with(|config| {
        config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    assert_ne!(server.dashboard_base, server.base);
    administrator(&server, "admin@example.com", &every_scope()).await;
    // The public listener no longer serves it.
    for path in ["/admin/", "/admin/login", "/admin/apis"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // Its own listener: the sign-in goes to the issuer's login page and comes back here.
    let browser = signed_in(&server, "admin@example.com").await;
    let response = browser
        .get(format!("{}/", server.dashboard_base))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/admin/");
    let created = post(
        &server,
        &browser,
        "/admin/apis/new",
        "/admin/apis",
        &[
            ("name", "Inside"),
            ("identifier", "https://inside.example.com/"),
            ("signing_alg", "RS256"),
        ],
    )
    .await;
    assert_eq!(created.status(), 302);
    assert!(
        server
            .store
            .find_resource_server("https://inside.example.com/")
            .await
            .unwrap()
            .is_some()
    );
    // The issuer's origin is another site to the dashboard: a form sent from it is refused.
    let (_, html) = page(&server, &browser, "/admin/apis/new").await;
    let csrf = hidden_field(&html, "csrf");
    let refused = browser
        .post(at(&server, "/admin/apis"))
        .header("origin", &server.base)
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Outside"),
            ("identifier", "https://outside.example.com/"),
            ("signing_alg", "RS256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // Signing out ends at the issuer's /v2/logout, which returns to the dashboard.
    let (_, home) = page(&server, &browser, "/admin/").await;
    let csrf = hidden_field(&home, "csrf");
    let response = browser
        .post(at(&server, "/admin/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let logout = location(&response);
    assert!(
        logout.starts_with(&format!("{}v2/logout?", server.issuer)),
        "{logout}"
    );
    let response = browser.get(&logout).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        at(&server, "/admin/signed-out"),
        "the dashboard's listener is an allowed logout URL"
    );
}

#[tokio::test]
async fn every_section_renders_for_an_administrator_and_a_viewer_sees_no_form() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let read_only: Vec<&str> = every_scope()
        .into_iter()
        .filter(|s| s.starts_with("read:"))
        .collect();
    administrator(&server, "viewer@example.com", &read_only).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let viewer = signed_in(&server, "viewer@example.com").await;
    // The user is signed in somewhere: the Sessions tab has rows a viewer must not end.
    server
        .code_flow(&browser(), "openid offline_access read:messages", Some(API))
        .await;
    let user_path = format!("/admin/users/{}", server.user_id.replace('|', "%7C"));
    let app_path = format!("/admin/applications/{}", server.spa_client_id);
    let pages = [
        "/admin/".to_string(),
        "/admin/apis".into(),
        "/admin/applications".into(),
        app_path.clone(),
        format!("{app_path}/apis"),
        "/admin/users".into(),
        "/admin/users?field=email&term=user".into(),
        user_path.clone(),
        format!("{user_path}/roles"),
        format!("{user_path}/permissions"),
        format!("{user_path}/authorized-applications"),
        format!("{user_path}/sessions"),
        format!("{user_path}/json"),
        "/admin/roles".into(),
        "/admin/settings".into(),
    ];
    for path in &pages {
        let (status, html) = page(&server, &admin, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        let (status, html) = page(&server, &viewer, path).await;
        assert_eq!(status, 200, "{path} for the viewer");
        // The only buttons a viewer gets are signing out and searching (a GET): forms
        // show their values in disabled fields, without a button.
        let buttons = html.matches("<button").count();
        let searches = html.matches(">Search</button>").count();
        assert_eq!(
            buttons - searches,
            1,
            "{path}: a viewer sees no button that changes anything"
        );
    }
    let (_, html) = page(&server, &admin, &user_path).await;
    assert!(html.contains(&server.user_email));
    let (_, html) = page(&server, &admin, "/admin/settings").await;
    assert!(html.contains("admin@example.com") || html.contains("Tessera Admin"));
}

#[tokio::test]
async fn users_are_created_searched_edited_and_given_roles_through_the_same_rules() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    // A weak password: the password policy's words, on the form.
    let response = post(
        &server,
        &browser,
        "/admin/users/new",
        "/admin/users",
        &[("email", "new@example.com"), ("password", "short")],
    )
    .await;
    assert_eq!(response.status(), 400);
    let response = post(
        &server,
        &browser,
        "/admin/users/new",
        "/admin/users",
        &[("email", "new@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 302);
    let user_page = location(&response);
    let user_path = user_page.split('?').next().unwrap().to_string();
    let (_, html) = page(&server, &browser, "/admin/users?field=email&term=new%40").await;
    assert!(html.contains("new@example.com"));
    let (_, html) = page(&server, &browser, "/admin/users?field=email&term=nobody").await;
    assert!(!html.contains("new@example.com"));
    // Metadata that is not JSON is refused on its field; valid JSON replaces it.
    let response = post(
        &server,
        &browser,
        &user_path,
        &user_path,
        &[
            ("name", "New"),
            ("nickname", "new"),
            ("user_metadata", "{not json"),
            ("app_metadata", "{}"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    let response = post(
        &server,
        &browser,
        &user_path,
        &user_path,
        &[
            ("name", "New Person"),
            ("nickname", "new"),
            ("user_metadata", r#"{"theme": "dark"}"#),
            ("app_metadata", r#"{"plan": "pro"}"#),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    let user = server
        .store
        .find_user_by_email("new@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "New Person");
    assert_eq!(user.user_metadata["theme"], "dark");
    assert_eq!(user.app_metadata["plan"], "pro");
    // A role with a permission, assigned from the user's Roles tab.
    let response = post(
        &server,
        &browser,
        "/admin/roles/new",
        "/admin/roles",
        &[("name", "Readers"), ("description", "Read messages")],
    )
    .await;
    assert_eq!(response.status(), 302);
    let role_id = location(&response)
        .trim_start_matches("/admin/roles/")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let permissions = format!("/admin/roles/{role_id}/permissions");
    let permission = format!("{} read:messages", tessera_testkit::API);
    let response = post(
        &server,
        &browser,
        &permissions,
        &permissions,
        &[("permission", &permission)],
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let roles = format!("{user_path}/roles");
    let response = post(&server, &browser, &roles, &roles, &[("role", &role_id)]).await;
    assert_eq!(response.status(), 302);
    let held = server
        .store
        .user_permissions(&user.user_id, Some(tessera_testkit::API))
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].permission, "read:messages");
    // Blocked from the dashboard: the store says so.
    let response = post(
        &server,
        &browser,
        &user_path,
        &format!("{user_path}/block"),
        &[("blocked", "true")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert!(
        server
            .store
            .find_user(&user.user_id)
            .await
            .unwrap()
            .unwrap()
            .blocked
    );
}

#[tokio::test]
async fn an_action_is_written_tested_deployed_and_bound_from_the_dashboard() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let read_only: Vec<&str> = every_scope()
        .into_iter()
        .filter(|s| s.starts_with("read:"))
        .collect();
    administrator(&server, "viewer@example.com", &read_only).await;
    let admin = signed_in(&server, "admin@example.com").await;

    let (status, html) = page(&server, &admin, "/admin/actions").await;
    assert_eq!(status, 200);
    assert!(html.contains("No actions yet"), "{html}");
    let response = post(
        &server,
        &admin,
        "/admin/actions/new",
        "/admin/actions",
        &[("name", "greeter"), ("trigger", "post-login")],
    )
    .await;
    assert_eq!(response.status(), 302);
    let action_path = location(&response).split('?').next().unwrap().to_string();
    assert!(
        action_path.starts_with("/admin/actions/act_"),
        "{action_path}"
    );
    let (_, html) = page(&server, &admin, &action_path).await;
    assert!(html.contains("exports.onExecutePostLogin"), "{html}");
    assert!(html.contains("Draft"));

    // Code far past an ordinary form's 4 kB value, and a secret.
    let padding = format!("// {}\n", "p".repeat(40_000));
    let code = format!(
        "{padding}exports.onExecutePostLogin = async (event, api) => {{\n  api.accessToken.setCustomClaim('https://example.com/len', event.secrets.GREETING.length);\n}};\n"
    );
    let response = post(
        &server,
        &admin,
        &action_path,
        &action_path,
        &[
            ("code", code.as_str()),
            ("secret_name", "GREETING"),
            ("secret_value", "hello-secret"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let (_, html) = page(&server, &admin, &action_path).await;
    assert!(html.contains("GREETING") && !html.contains("hello-secret"));
    assert!(html.contains("setCustomClaim"));

    // Refused like the API refuses it, the draft unchanged.
    let too_long = "x".repeat(150_000);
    let response = post(
        &server,
        &admin,
        &action_path,
        &action_path,
        &[("code", too_long.as_str())],
    )
    .await;
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("role=\"alert\""), "{text}");
    let (_, html) = page(&server, &admin, &action_path).await;
    assert!(html.contains("setCustomClaim") && !html.contains(&too_long[..1000]));

    // The Test tab runs the draft with its secrets and writes nothing.
    let test_path = format!("{action_path}/test");
    let (_, html) = page(&server, &admin, &test_path).await;
    assert!(html.contains("logins_count"), "a sample event: {html}");
    let response = post(
        &server,
        &admin,
        &test_path,
        &test_path,
        &[("event", r#"{"user": {"email": "x@example.com"}}"#)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("https://example.com/len&#34;: 12"), "{html}");
    let response = post(
        &server,
        &admin,
        &test_path,
        &test_path,
        &[("event", "{not json")],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("not JSON"));

    // A viewer reads everything and can change nothing.
    let viewer = signed_in(&server, "viewer@example.com").await;
    for path in [
        "/admin/actions".to_string(),
        action_path.clone(),
        test_path.clone(),
        format!("{action_path}/versions"),
        "/admin/triggers".into(),
        "/admin/triggers/post-login".into(),
    ] {
        let (status, html) = page(&server, &viewer, &path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(html.matches("<button").count(), 1, "{path}: only Sign out");
    }
    let response = post(
        &server,
        &viewer,
        &action_path,
        &format!("{action_path}/deploy"),
        &[],
    )
    .await;
    assert_eq!(response.status(), 403);

    // Deploy, bind, and a real login carries the claim.
    let response = post(
        &server,
        &admin,
        &action_path,
        &format!("{action_path}/deploy"),
        &[],
    )
    .await;
    assert_eq!(response.status(), 302);
    let (_, html) = page(&server, &admin, &format!("{action_path}/versions")).await;
    assert!(
        html.contains("<td>1</td>") && html.contains("Deployed"),
        "{html}"
    );
    let action_id = action_path.trim_start_matches("/admin/actions/");
    let response = post(
        &server,
        &admin,
        "/admin/triggers/post-login",
        "/admin/triggers/post-login",
        &[("op", "add"), ("action", action_id)],
    )
    .await;
    assert_eq!(response.status(), 302);
    let (_, html) = page(&server, &admin, "/admin/triggers/post-login").await;
    assert!(html.contains(">greeter</a>"), "{html}");
    let tokens = server
        .code_flow(&browser(), "openid", Some(tessera_testkit::API))
        .await;
    let claims = server
        .verify(
            tokens["access_token"].as_str().unwrap(),
            tessera_testkit::API,
        )
        .await;
    assert_eq!(claims["https://example.com/len"], 12);

    // Removed from the trigger, it no longer runs.
    let response = post(
        &server,
        &admin,
        "/admin/triggers/post-login",
        "/admin/triggers/post-login",
        &[("op", "remove"), ("position", "0")],
    )
    .await;
    assert_eq!(response.status(), 302);
    let tokens = server
        .code_flow(&browser(), "openid", Some(tessera_testkit::API))
        .await;
    let claims = server
        .verify(
            tokens["access_token"].as_str().unwrap(),
            tessera_testkit::API,
        )
        .await;
    assert!(claims.get("https://example.com/len").is_none());
    // A position that is not in the list is refused.
    let response = post(
        &server,
        &admin,
        "/admin/triggers/post-login",
        "/admin/triggers/post-login",
        &[("op", "up"), ("position", "7")],
    )
    .await;
    assert_eq!(response.status(), 400);
}

/// The connection named `name`, as the store keeps it.
async fn stored_connection(
    server: &TestServer,
    name: &str,
) -> Option<tessera_store::ConnectionRecord> {
    server.store.find_connection_by_name(name).await.unwrap()
}

#[tokio::test]
async fn a_connection_is_created_edited_enabled_and_deleted_from_the_dashboard() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let (status, html) = page(&server, &admin, "/admin/connections").await;
    assert_eq!(status, 200);
    assert!(html.contains("Username-Password-Authentication"), "{html}");
    assert!(html.contains("Create Connection</a>"));

    // Bad input: the Management API's text beside the field, nothing created.
    let response = post(
        &server,
        &admin,
        "/admin/connections/new",
        "/admin/connections",
        &[
            ("strategy", "oidc"),
            ("name", "not a name!"),
            ("client_id", "abc"),
            ("client_secret", "s3cret-value-xyz"),
            (
                "discovery_url",
                "https://idp.example.com/.well-known/openid-configuration",
            ),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("the connection name must be"), "{html}");
    assert!(
        !html.contains("s3cret-value-xyz"),
        "the secret is not echoed"
    );
    let response = post(
        &server,
        &admin,
        "/admin/connections/new",
        "/admin/connections",
        &[
            ("strategy", "oauth2"),
            ("name", "corp"),
            ("client_id", "abc"),
            ("client_secret", "s3cret-value-xyz"),
            ("options_json", "{not json"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Expected a JSON object")
    );
    let response = post(
        &server,
        &admin,
        "/admin/connections/new",
        "/admin/connections",
        &[
            ("strategy", "auth0"),
            ("name", "second-db"),
            ("client_id", "abc"),
            ("client_secret", "s3cret-value-xyz"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(stored_connection(&server, "corp").await.is_none());
    assert!(stored_connection(&server, "second-db").await.is_none());

    // Created with a sealed secret, never shown.
    let response = post(
        &server,
        &admin,
        "/admin/connections/new",
        "/admin/connections",
        &[
            ("strategy", "oidc"),
            ("name", "corp"),
            ("display_name", "Corp SSO"),
            ("client_id", "abc"),
            ("client_secret", "s3cret-value-xyz"),
            (
                "discovery_url",
                "https://idp.example.com/.well-known/openid-configuration",
            ),
            ("scopes", "openid, profile email"),
            ("show_as_button", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    let created = stored_connection(&server, "corp").await.expect("created");
    assert_eq!(
        location(&response),
        format!(
            "/admin/connections/{}/applications?notice=connection_created",
            created.id
        )
    );
    assert_eq!(created.display_name, "Corp SSO");
    assert_eq!(created.options["scopes"], "openid profile email");
    let sealed = created.sealed_secret.clone().expect("a sealed secret");
    let settings = format!("/admin/connections/{}", created.id);
    let (status, html) = page(&server, &admin, &settings).await;
    assert_eq!(status, 200);
    assert!(html.contains("Corp SSO") && html.contains("A secret is stored"));
    assert!(!html.contains("s3cret-value-xyz"));
    // What to register at the provider: the callback and the back-channel logout URI.
    for url in ["login/callback", "login/backchannel-logout/corp"] {
        let shown = format!("<code>{}{url}</code>", server.issuer);
        assert!(html.contains(&shown), "{shown} in {html}");
    }

    // Settings: an empty secret field keeps the secret; bad options change nothing.
    let options = serde_json::to_string(&created.options).unwrap();
    let response = post(
        &server,
        &admin,
        &settings,
        &settings,
        &[
            ("display_name", "Corp"),
            ("options_json", options.as_str()),
            ("client_secret", ""),
            ("is_domain_connection", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    let saved = stored_connection(&server, "corp").await.unwrap();
    assert_eq!(saved.display_name, "Corp");
    assert!(!saved.show_as_button, "the unchecked box");
    assert!(saved.is_domain_connection, "the checked box");
    assert_eq!(saved.sealed_secret.as_ref(), Some(&sealed));
    let response = post(
        &server,
        &admin,
        &settings,
        &settings,
        &[
            ("display_name", "Changed"),
            (
                "options_json",
                r#"{"client_id": "abc", "discovery_url": "ftp://x"}"#,
            ),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("options.discovery_url")
    );
    assert_eq!(
        stored_connection(&server, "corp")
            .await
            .unwrap()
            .display_name,
        "Corp"
    );

    // Applications: enabled, then disabled, for the SPA; also from the application's tab.
    let apps = format!("/admin/connections/{}/applications", created.id);
    let enable = [
        ("client_id", server.spa_client_id.as_str()),
        ("status", "enable"),
    ];
    let response = post(&server, &admin, &apps, &apps, &enable).await;
    assert_eq!(response.status(), 302);
    let of_spa = server
        .store
        .connections_of_client(&server.spa_client_id)
        .await
        .unwrap();
    assert!(of_spa.iter().any(|c| c.id == created.id));
    let app_tab = format!("/admin/applications/{}/connections", server.spa_client_id);
    let (status, html) = page(&server, &admin, &app_tab).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Corp") && html.contains("Disable</button>"),
        "{html}"
    );
    let response = post(
        &server,
        &admin,
        &app_tab,
        &app_tab,
        &[
            ("connection_id", created.id.as_str()),
            ("status", "disable"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert!(
        server
            .store
            .connections_of_client(&server.spa_client_id)
            .await
            .unwrap()
            .iter()
            .all(|c| c.id == tessera_core::DATABASE_CONNECTION_ID),
        "only the database connection is enabled"
    );
    let response = post(
        &server,
        &admin,
        &apps,
        &apps,
        &[("client_id", "no-such-app"), ("status", "enable")],
    )
    .await;
    assert_eq!(response.status(), 404);

    // The list filters by strategy, in SQL.
    let (_, html) = page(&server, &admin, "/admin/connections?strategy=oidc").await;
    assert!(html.contains("corp") && !html.contains("Username-Password-Authentication"));

    // The default database connection: its sign-up options change, Tessera's policy does
    // not, and it is never deleted.
    let database = format!(
        "/admin/connections/{}",
        tessera_core::DATABASE_CONNECTION_ID
    );
    let (status, html) = page(&server, &admin, &database).await;
    assert_eq!(status, 200);
    assert!(html.contains("Save</button>") && !html.contains("Danger Zone"));
    let response = post(
        &server,
        &admin,
        &database,
        &database,
        &[
            ("display_name", "Mine"),
            ("options_json", r#"{"requires_username": true}"#),
        ],
    )
    .await;
    assert_eq!(response.status(), 403, "Tessera's policy, not settable");
    let response = post(
        &server,
        &admin,
        &database,
        &database,
        &[
            ("display_name", "Staff"),
            ("options_json", r#"{"disable_signup": true}"#),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    let stored = server
        .store
        .find_connection(tessera_core::DATABASE_CONNECTION_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.options.get("disable_signup"),
        Some(&serde_json::Value::Bool(true))
    );
    assert_eq!(stored.display_name, "Staff");

    // Deleting: refused while a user of it remains, then done.
    let confirm = format!("/admin/connections/{}/delete", created.id);
    let profile = tessera_store::FederatedProfile {
        email: Some("fed@example.com".into()),
        ..Default::default()
    };
    server
        .store
        .upsert_federated_user("oidc|corp|1", "corp", &profile, 1)
        .await
        .unwrap();
    let response = post(&server, &admin, &confirm, &confirm, &[("confirm", "corp")]).await;
    assert_eq!(response.status(), 409);
    assert!(response.text().await.unwrap().contains("still has users"));
    server.store.delete_user("oidc|corp|1", 0).await.unwrap();
    let response = post(&server, &admin, &confirm, &confirm, &[("confirm", "nope")]).await;
    assert_eq!(response.status(), 400);
    let response = post(&server, &admin, &confirm, &confirm, &[("confirm", "corp")]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "/admin/connections?notice=connection_deleted"
    );
    assert!(stored_connection(&server, "corp").await.is_none());
}

#[tokio::test]
async fn a_viewer_sees_the_connections_but_no_form_changes_one() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let read_only: Vec<&str> = every_scope()
        .into_iter()
        .filter(|s| s.starts_with("read:"))
        .collect();
    administrator(&server, "viewer@example.com", &read_only).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let response = post(
        &server,
        &admin,
        "/admin/connections/new",
        "/admin/connections",
        &[
            ("strategy", "github"),
            ("name", "gh"),
            ("client_id", "abc"),
            ("client_secret", "s3cret-value-xyz"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    let gh = stored_connection(&server, "gh").await.unwrap();
    let viewer = signed_in(&server, "viewer@example.com").await;
    let settings = format!("/admin/connections/{}", gh.id);
    let apps = format!("{settings}/applications");
    let app_tab = format!("/admin/applications/{}/connections", server.spa_client_id);
    for path in [
        "/admin/connections",
        settings.as_str(),
        apps.as_str(),
        app_tab.as_str(),
    ] {
        let (status, html) = page(&server, &viewer, path).await;
        assert_eq!(status, 200, "{path}");
        let buttons = html.matches("<button").count();
        let filters = html.matches(">Filter</button>").count();
        assert_eq!(buttons - filters, 1, "{path}: only signing out");
    }
    let refused = [
        (
            "/admin/connections",
            vec![
                ("strategy", "github"),
                ("name", "gh2"),
                ("client_id", "abc"),
                ("client_secret", "x"),
            ],
        ),
        (
            settings.as_str(),
            vec![("display_name", "Hacked"), ("options_json", "{}")],
        ),
        (
            apps.as_str(),
            vec![
                ("client_id", server.spa_client_id.as_str()),
                ("status", "enable"),
            ],
        ),
        (
            app_tab.as_str(),
            vec![("connection_id", gh.id.as_str()), ("status", "enable")],
        ),
    ];
    for (path, fields) in &refused {
        let response = post(&server, &viewer, "/admin/connections", path, fields).await;
        assert_eq!(response.status(), 403, "{path}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Insufficient scope")
        );
    }
    let confirm = format!("{settings}/delete");
    let response = post(
        &server,
        &viewer,
        "/admin/connections",
        &confirm,
        &[("confirm", "gh")],
    )
    .await;
    assert_eq!(response.status(), 403);
    assert!(stored_connection(&server, "gh2").await.is_none());
    let unchanged = stored_connection(&server, "gh").await.unwrap();
    assert_eq!(unchanged.display_name, gh.display_name);
    assert!(
        server
            .store
            .connections_of_client(&server.spa_client_id)
            .await
            .unwrap()
            .iter()
            .all(|c| c.id == tessera_core::DATABASE_CONNECTION_ID),
        "only the database connection is enabled"
    );
}

#[tokio::test]
async fn a_user_page_lists_linked_identities_and_unlinks_one() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let read_only: Vec<&str> = every_scope()
        .into_iter()
        .filter(|s| s.starts_with("read:"))
        .collect();
    administrator(&server, "viewer@example.com", &read_only).await;
    let profile = tessera_store::FederatedProfile {
        email: Some("ada@github.example".into()),
        email_verified: true,
        name: Some("<b>Ada</b>".into()),
        ..Default::default()
    };
    server
        .store
        .upsert_federated_user("github|42", "github", &profile, 1)
        .await
        .unwrap();
    server
        .store
        .link_identity(&server.user_id, "github|42", 2)
        .await
        .unwrap();
    let user_path = format!("/admin/users/{}", server.user_id.replace('|', "%7C"));
    let unlink = format!("{user_path}/identities/unlink");

    // A viewer sees the identity but no form, and a post changes nothing.
    let viewer = signed_in(&server, "viewer@example.com").await;
    let (status, html) = page(&server, &viewer, &user_path).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Linked identities") && html.contains("github|42"),
        "{html}"
    );
    assert!(
        !html.contains("Unlink github|42"),
        "no unlink button for a viewer"
    );
    let response = post(
        &server,
        &viewer,
        &user_path,
        &unlink,
        &[("identity", "github|42")],
    )
    .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        server
            .store
            .linked_identities(&server.user_id)
            .await
            .unwrap()
            .len(),
        1
    );

    let admin = signed_in(&server, "admin@example.com").await;
    let (_, html) = page(&server, &admin, &user_path).await;
    assert!(html.contains("ada@github.example") && html.contains("Unlink github|42"));
    for (bad, status) in [("", 400), ("github|404", 404), ("nonsense", 400)] {
        let response = post(&server, &admin, &user_path, &unlink, &[("identity", bad)]).await;
        assert_eq!(response.status(), status, "{bad}");
    }
    assert_eq!(
        server
            .store
            .linked_identities(&server.user_id)
            .await
            .unwrap()
            .len(),
        1
    );
    let response = post(
        &server,
        &admin,
        &user_path,
        &unlink,
        &[("identity", "github|42")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert!(
        server
            .store
            .linked_identities(&server.user_id)
            .await
            .unwrap()
            .is_empty()
    );
    let back = server.store.find_user("github|42").await.unwrap().unwrap();
    assert_eq!(back.name, "<b>Ada</b>", "an account of its own again");
    let (_, html) = page(&server, &admin, &user_path).await;
    assert!(!html.contains("Linked identities"));
}

#[tokio::test]
async fn a_user_is_created_in_the_database_connection_chosen_and_gets_a_new_password() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let token = server.management_token(&["create:connections"]).await;
    let response = reqwest::Client::new()
        .post(server.url("/api/v2/connections"))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "staff", "strategy": "auth0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (_, html) = page(&server, &browser, "/admin/users/new").await;
    assert!(
        html.contains("<option value=\"staff\"")
            && html.contains("selected>Username-Password-Authentication"),
        "{html}"
    );
    // The default connection has this address; staff gets its own user with it.
    let response = post(
        &server,
        &browser,
        "/admin/users/new",
        "/admin/users",
        &[
            ("email", "admin@example.com"),
            ("password", PASSWORD),
            ("connection", "staff"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    let staff_user = server
        .store
        .find_user_by_email_in("staff", "admin@example.com")
        .await
        .unwrap()
        .expect("created in staff");
    // A connection that is not a database connection is refused on the form.
    let response = post(
        &server,
        &browser,
        "/admin/users/new",
        "/admin/users",
        &[
            ("email", "x@example.com"),
            ("password", PASSWORD),
            ("connection", "nobody"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    // Its new password is set in its own connection; the other user's stays.
    let staff_hash = || async {
        server
            .store
            .find_user_with_password_in("staff", "admin@example.com")
            .await
            .unwrap()
            .unwrap()
            .1
    };
    let staff_before = staff_hash().await;
    let default_before = server.password_hash("admin@example.com").await;
    let path = format!("/admin/users/{}/password", staff_user.user_id);
    let from = format!("/admin/users/{}", staff_user.user_id);
    let response = post(
        &server,
        &browser,
        &from,
        &path,
        &[("password", "a brand new passphrase 7")],
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    assert_ne!(staff_hash().await, staff_before);
    assert_eq!(
        server.password_hash("admin@example.com").await,
        default_before
    );
}

#[tokio::test]
async fn a_user_without_an_email_is_shown_by_id_and_deleted_by_typing_it() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let profile = tessera_store::FederatedProfile {
        nickname: Some("octocat".into()),
        ..Default::default()
    };
    server
        .store
        .upsert_federated_user("github|4242", "github", &profile, 1)
        .await
        .unwrap();
    let browser = signed_in(&server, "admin@example.com").await;
    let (status, html) = page(&server, &browser, "/admin/users").await;
    assert_eq!(status, 200);
    assert!(html.contains("github|4242"), "listed by its id: {html}");
    let user_path = "/admin/users/github%7C4242";
    let (status, html) = page(&server, &browser, user_path).await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>github|4242"), "{html}");
    assert!(html.contains("the provider shared none"), "{html}");

    let confirm = format!("{user_path}/delete");
    let (status, html) = page(&server, &browser, &confirm).await;
    assert_eq!(status, 200);
    assert!(html.contains("Type <strong>github|4242</strong>"), "{html}");
    // Nothing typed (the email it does not have) deletes nobody.
    let response = post(&server, &browser, &confirm, &confirm, &[("confirm", "")]).await;
    assert_eq!(response.status(), 400);
    assert!(
        server
            .store
            .find_user("github|4242")
            .await
            .unwrap()
            .is_some()
    );
    let response = post(
        &server,
        &browser,
        &confirm,
        &confirm,
        &[("confirm", "github|4242")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/admin/users?notice=user_deleted");
    assert!(
        server
            .store
            .find_user("github|4242")
            .await
            .unwrap()
            .is_none()
    );
}

/// Up to where the dashboard's sign-in sends a browser after the password.
async fn after_dashboard_password(server: &TestServer, email: &str) -> (reqwest::Client, String) {
    let browser = browser();
    let response = browser
        .get(at(server, "/admin/login?return_to=/admin/"))
        .send()
        .await
        .unwrap();
    let authorize = location(&response);
    let response = browser.get(&authorize).send().await.unwrap();
    let login_page = location(&response);
    let login =
        tessera_testkit::submit_login_form(&browser, &server.base, &login_page, email, PASSWORD)
            .await;
    assert_eq!(login.status(), 303);
    let next = location(&login);
    if next.starts_with("/u/mfa") {
        return (browser, next);
    }
    let resumed = browser.get(server.url(&next)).send().await.unwrap();
    (browser, location(&resumed))
}

#[tokio::test]
async fn administrators_can_be_required_to_pass_a_second_factor_by_one_setting() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let (_, html) = page(&server, &admin, "/admin/settings").await;
    assert!(html.contains("with a password alone"), "{html}");

    let response = post(
        &server,
        &admin,
        "/admin/settings",
        "/admin/settings/mfa",
        &[("required", "maybe")],
    )
    .await;
    assert_eq!(
        response.status(),
        400,
        "an unreadable answer changes nothing"
    );
    let response = post(
        &server,
        &admin,
        "/admin/settings",
        "/admin/settings/mfa",
        &[("required", "true")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(location(&response), "/admin/settings?notice=admins_mfa_on");
    let (_, html) = page(&server, &admin, "/admin/settings").await;
    assert!(
        html.contains("Administrators pass a second factor"),
        "{html}"
    );

    // The next sign-in to the dashboard asks for a second factor (enrollment first)…
    let (mfa_browser, next) = after_dashboard_password(&server, "admin@example.com").await;
    assert!(next.starts_with("/u/mfa?state="), "{next}");
    let enroll = mfa_browser
        .get(server.url(&next))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        enroll.contains("<svg"),
        "an authenticator app to enroll: {enroll}"
    );
    // …and other applications' logins do not.
    let app_login = server
        .sign_in(
            &browser(),
            &server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", tessera_testkit::pkce().challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]),
        )
        .await;
    assert!(
        app_login.starts_with(tessera_testkit::CALLBACK),
        "{app_login}"
    );

    let response = post(
        &server,
        &admin,
        "/admin/settings",
        "/admin/settings/mfa",
        &[("required", "false")],
    )
    .await;
    assert_eq!(location(&response), "/admin/settings?notice=admins_mfa_off");
    let (_, next) = after_dashboard_password(&server, "admin@example.com").await;
    assert!(
        next.starts_with(&at(&server, "/admin/callback?")),
        "no second factor now: {next}"
    );
}

#[tokio::test]
async fn an_administrator_makes_an_application_require_pushed_requests() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let app_path = format!("/admin/applications/{}", server.spa_client_id);
    let (status, html) = page(&server, &browser, &app_path).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(
            r#"name="require_pushed_authorization_requests" aria-describedby="par-hint">"#
        ),
        "unchecked at first: {html}"
    );
    let spa = server
        .store
        .find_client(&server.spa_client_id)
        .await
        .unwrap()
        .unwrap();
    let callbacks = spa.callbacks.join("\n");
    let origins = spa.web_origins.join("\n");
    let logout = spa.allowed_logout_urls.join("\n");
    let mut form = vec![
        ("name", spa.name.as_str()),
        ("callbacks", callbacks.as_str()),
        ("web_origins", origins.as_str()),
        ("allowed_logout_urls", logout.as_str()),
        ("grant:authorization_code", "on"),
        ("grant:refresh_token", "on"),
        ("is_first_party", "on"),
        ("token_lifetime", "2592000"),
        ("idle_token_lifetime", "1296000"),
        ("leeway", "0"),
        ("require_pushed_authorization_requests", "on"),
    ];
    let response = post(&server, &browser, &app_path, &app_path, &form).await;
    assert_eq!(response.status(), 302);
    let stored = server
        .store
        .find_client(&server.spa_client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.require_pushed_authorization_requests);
    let (_, html) = page(&server, &browser, &app_path).await;
    assert!(
        html.contains(r#"aria-describedby="par-hint" checked>"#),
        "{html}"
    );
    form.pop();
    let response = post(&server, &browser, &app_path, &app_path, &form).await;
    assert_eq!(response.status(), 302);
    let stored = server
        .store
        .find_client(&server.spa_client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.require_pushed_authorization_requests);
}

#[tokio::test]
async fn an_administrator_makes_an_api_require_dpop_bound_tokens() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let api = server
        .store
        .find_resource_server(API)
        .await
        .unwrap()
        .unwrap();
    let settings = format!("/admin/apis/{}/settings", api.id);
    let (status, html) = page(&server, &browser, &settings).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"name="require_dpop" aria-describedby="dpop-hint">"#),
        "unchecked at first: {html}"
    );
    let lifetime = api.token_lifetime.to_string();
    let web_lifetime = api.token_lifetime_for_web.to_string();
    let mut form = vec![
        ("name", api.name.as_str()),
        ("token_lifetime", lifetime.as_str()),
        ("token_lifetime_for_web", web_lifetime.as_str()),
        ("signing_alg", api.signing_alg.as_str()),
        ("token_dialect", api.token_dialect.as_str()),
        ("require_dpop", "on"),
    ];
    let response = post(&server, &browser, &settings, &settings, &form).await;
    assert_eq!(response.status(), 302);
    let stored = server
        .store
        .find_resource_server(API)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.requires_dpop());
    let (_, html) = page(&server, &browser, &settings).await;
    assert!(
        html.contains(r#"aria-describedby="dpop-hint" checked>"#),
        "{html}"
    );
    // The token endpoint now refuses a token for this API without a proof.
    let (status, body) = client_credentials(
        &reqwest::Client::new(),
        &server.base,
        &server.m2m_client_id,
        &server.m2m_secret,
        API,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    form.pop();
    let response = post(&server, &browser, &settings, &settings, &form).await;
    assert_eq!(response.status(), 302);
    let stored = server
        .store
        .find_resource_server(API)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.requires_dpop());
    assert_eq!(stored.proof_of_possession, None);
}

#[tokio::test]
async fn an_administrator_adds_and_deletes_a_key_on_the_credentials_tab() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let m2m = server.m2m_client_id.clone();
    let tab = format!("/admin/applications/{m2m}/credentials");
    let (status, html) = page(&server, &browser, &tab).await;
    assert_eq!(status, 200);
    assert!(html.contains("<strong>Client Secret</strong>"), "{html}");
    let assertion_token = |assertion: String| {
        let server = &server;
        async move {
            let response = reqwest::Client::new()
                .post(server.url("/oauth/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("audience", API),
                    (
                        "client_assertion_type",
                        tessera_testkit::client_key::JWT_BEARER,
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };

    let secret_token = || async {
        let http = reqwest::Client::new();
        client_credentials(&http, &server.base, &m2m, &server.m2m_secret, API)
            .await
            .0
    };

    // A private key pasted by mistake, or no key: refused on the form, nothing added.
    let key = tessera_testkit::client_key::ClientKey::es256();
    for (pem, why) in [
        (key.private_pem(), "a private key"),
        (String::new(), "empty"),
    ] {
        let response = post(
            &server,
            &browser,
            &tab,
            &tab,
            &[("name", "k"), ("pem", &pem)],
        )
        .await;
        assert_eq!(response.status(), 400, "{why}");
        let html = response.text().await.unwrap();
        assert!(html.contains(r#"role="alert""#), "{why}: {html}");
        // A private key pasted by mistake is not sent back, not even into the form.
        assert!(!html.contains("PRIVATE KEY"), "{why}: {html}");
    }
    assert!(
        server
            .store
            .client_credentials_of(&m2m)
            .await
            .unwrap()
            .is_empty(),
        "nothing was added"
    );

    let response = post(
        &server,
        &browser,
        &tab,
        &tab,
        &[("name", "Production key"), ("pem", &key.public_pem)],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        format!("{tab}?notice=credential_added")
    );
    let (_, html) = page(&server, &browser, &tab).await;
    assert!(html.contains("<strong>Private Key JWT</strong>"), "{html}");
    assert!(html.contains(&key.kid), "{html}");
    // The application now authenticates with a signed JWT, and its secret no longer works.
    let audience = format!("{}oauth/token", server.issuer);
    assert_eq!(assertion_token(key.assertion(&m2m, &audience)).await, 200);
    assert_eq!(secret_token().await, 401);

    // Deleting the key brings the secret back.
    let credential = server
        .store
        .client_credentials_of(&m2m)
        .await
        .unwrap()
        .remove(0);
    let delete = format!("{tab}/{}/delete", credential.id);
    let response = post(&server, &browser, &tab, &delete, &[]).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        format!("{tab}?notice=credential_deleted")
    );
    assert!(
        server
            .store
            .client_credentials_of(&m2m)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(assertion_token(key.assertion(&m2m, &audience)).await, 401);
    assert_eq!(secret_token().await, 200);

    // A viewer sees the tab but no form; a single page application has no credentials.
    administrator(
        &server,
        "viewer@example.com",
        &["read:clients", "read:client_credentials"],
    )
    .await;
    let viewer = signed_in(&server, "viewer@example.com").await;
    let (status, html) = page(&server, &viewer, &tab).await;
    assert_eq!(status, 200);
    assert!(!html.contains(r#"name="pem""#), "{html}");
    let (_, html) = page(
        &server,
        &browser,
        &format!("/admin/applications/{}/credentials", server.spa_client_id),
    )
    .await;
    assert!(
        html.contains("This application has no credentials"),
        "{html}"
    );
}

#[tokio::test]
async fn the_logs_page_shows_a_dashboard_change_with_its_administrator() {
    let server = spawn().await;
    let admin_id = administrator(&server, "admin@example.com", &every_scope()).await;
    administrator(&server, "roles-only@example.com", &["read:roles"]).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let response = post(
        &server,
        &browser,
        "/admin/roles/new",
        "/admin/roles",
        &[("name", "Auditors"), ("description", "Read the log")],
    )
    .await;
    assert_eq!(response.status(), 302);

    let (status, html) = page(&server, &browser, "/admin/logs?type=sapi").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("POST /admin/roles"), "{html}");
    assert!(html.contains("admin@example.com"), "{html}");
    assert!(
        !html.contains("Successful login"),
        "filtered by type: {html}"
    );
    let (_, all) = page(&server, &browser, "/admin/logs").await;
    assert!(all.contains("Successful login"), "{all}");
    // The event's page: the administrator as who, the form without its CSRF token.
    let link = html
        .split("href=\"/admin/logs/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the event");
    let (status, detail) = page(&server, &browser, &format!("/admin/logs/{link}")).await;
    assert_eq!(status, 200);
    assert!(
        detail.contains(&admin_id.replace('|', "%7C")) || detail.contains(&admin_id),
        "{detail}"
    );
    assert!(detail.contains("Auditors"), "{detail}");
    // The form's CSRF token is not kept (the frame's sign-out form has its own).
    assert!(!detail.contains("&#34;csrf&#34;"), "{detail}");
    assert!(
        detail.contains("&#34;name&#34;: &#34;Auditors&#34;"),
        "{detail}"
    );
    let (status, _) = page(&server, &browser, "/admin/logs/99999999").await;
    assert_eq!(status, 404);
    let (status, html) = page(&server, &browser, "/admin/logs?type=%3Cscript%3E").await;
    assert_eq!(status, 200);
    assert!(html.contains("An event type is a short code"), "{html}");
    assert!(!html.contains("<script>"), "{html}");

    // Without read:logs, the page is refused.
    let other = signed_in(&server, "roles-only@example.com").await;
    let (status, _) = page(&server, &other, "/admin/logs").await;
    assert_eq!(status, 403);
}

/// The sapi/fapi events recorded so far, as `GET /api/v2/logs` shows them.
async fn management_events(server: &TestServer) -> Vec<Value> {
    let token = server.management_token(&["read:logs"]).await;
    let events: Value = reqwest::Client::new()
        .get(server.url("/api/v2/logs?per_page=100"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "sapi" || e["type"] == "fapi")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_log_stream_is_created_edited_paused_resumed_and_deleted_from_the_dashboard() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let (status, html) = page(&server, &browser, "/admin/log-streams").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("No streams yet"), "{html}");
    let (_, home) = page(&server, &browser, "/admin/").await;
    assert!(
        home.contains("href=\"/admin/log-streams\""),
        "in the navigation"
    );

    let secret = "Bearer sekret-stream-token-1";
    let response = post(
        &server,
        &browser,
        "/admin/log-streams/new",
        "/admin/log-streams",
        &[
            ("name", "SIEM"),
            ("endpoint", "http://127.0.0.1:9/in"),
            ("authorization", secret),
            ("content_type", "application/json"),
            ("format", "JSONARRAY"),
            ("headers", "X-Tenant: acme\r\nX-Api-Key: header-secret-1"),
            ("filter:management.success", "1"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let stream_page = location(&response);
    assert!(
        stream_page.ends_with("?notice=stream_created"),
        "{stream_page}"
    );
    let path = stream_page.split('?').next().unwrap().to_string();
    let id = path.rsplit('/').next().unwrap().to_string();
    let stored = server.store.find_log_stream(&id).await.unwrap().unwrap();
    assert_eq!(stored.name, "SIEM");
    assert_eq!(stored.status, "active");
    assert_eq!(stored.sink["httpEndpoint"], "http://127.0.0.1:9/in");
    assert_eq!(stored.sink["httpContentFormat"], "JSONARRAY");
    assert_eq!(
        stored.sink["httpCustomHeaders"],
        serde_json::json!([
            {"header": "X-Tenant", "value": "acme"},
            {"header": "X-Api-Key", "value": "header-secret-1"}
        ])
    );
    assert_eq!(
        stored.filters,
        serde_json::json!([{"type": "category", "name": "management.success"}])
    );
    let sealed = stored.sealed_authorization.clone().expect("sealed");
    assert!(!String::from_utf8_lossy(&sealed).contains("sekret"));

    let (_, html) = page(&server, &browser, &stream_page).await;
    assert!(html.contains("The stream was created"), "{html}");
    assert!(html.contains("X-Tenant: acme"), "{html}");
    assert!(!html.contains("sekret-stream-token"), "write-only: {html}");
    let (_, list) = page(&server, &browser, "/admin/log-streams").await;
    assert!(list.contains("SIEM") && list.contains("http://127.0.0.1:9/in"));
    assert!(list.contains("active"), "{list}");

    // Refused by the API's own rules, shown by the field, nothing changed, the
    // authorization typed not echoed.
    for (endpoint, why) in [
        ("ftp://127.0.0.1/in", "scheme"),
        ("https://user:pw@127.0.0.1/in", "credentials"),
        ("http://collector.example/in", "plain http off the machine"),
        ("", "empty"),
    ] {
        let response = post(
            &server,
            &browser,
            &path,
            &path,
            &[
                ("name", "Renamed"),
                ("endpoint", endpoint),
                ("authorization", "Bearer another-secret-2"),
                ("content_type", "application/json"),
                ("format", "JSONLINES"),
            ],
        )
        .await;
        assert_eq!(response.status(), 400, "{why}");
        let html = response.text().await.unwrap();
        assert!(html.contains("endpoint-error"), "{why}: {html}");
        assert!(!html.contains("another-secret-2"), "{why}: echoed");
        assert!(!html.contains("sekret-stream-token"), "{why}: echoed");
        assert_eq!(
            server.store.find_log_stream(&id).await.unwrap().unwrap(),
            stored,
            "{why}: changed nothing"
        );
    }
    let response = post(
        &server,
        &browser,
        &path,
        &path,
        &[
            ("name", "SIEM"),
            ("endpoint", "http://127.0.0.1:9/in"),
            ("format", "JSONLINES"),
            ("content_type", "application/json"),
            ("headers", "Host: evil.example"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("headers-error"));

    // Saved with the authorization left empty: kept.
    let response = post(
        &server,
        &browser,
        &path,
        &path,
        &[
            ("name", "SIEM 2"),
            ("endpoint", "http://127.0.0.1:9/other"),
            ("authorization", ""),
            ("content_type", "application/json"),
            ("format", "JSONLINES"),
            ("headers", "X-Tenant: acme"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let saved = server.store.find_log_stream(&id).await.unwrap().unwrap();
    assert_eq!(saved.name, "SIEM 2");
    assert_eq!(saved.sink["httpEndpoint"], "http://127.0.0.1:9/other");
    assert_eq!(saved.sealed_authorization, stored.sealed_authorization);
    assert_eq!(saved.filters, serde_json::json!([]));

    // Pause, then resume; a suspended stream is resumed the same way.
    let status_path = format!("{path}/status");
    let response = post(
        &server,
        &browser,
        &path,
        &status_path,
        &[("status", "paused")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        server
            .store
            .find_log_stream(&id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "paused"
    );
    let (_, html) = page(&server, &browser, &path).await;
    assert!(html.contains(">Resume<"), "{html}");
    server
        .store
        .update_log_stream(
            &id,
            &tessera_store::LogStreamUpdate {
                status: Some("suspended".into()),
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
    let (_, html) = page(&server, &browser, &path).await;
    assert!(
        html.contains("suspended") && html.contains(">Resume<"),
        "{html}"
    );
    let response = post(
        &server,
        &browser,
        &path,
        &status_path,
        &[("status", "active")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        server
            .store
            .find_log_stream(&id)
            .await
            .unwrap()
            .unwrap()
            .status,
        "active"
    );
    let response = post(
        &server,
        &browser,
        &path,
        &status_path,
        &[("status", "deleted")],
    )
    .await;
    assert_eq!(response.status(), 400);

    // Delete: the name typed exactly.
    let delete = format!("{path}/delete");
    let response = post(&server, &browser, &delete, &delete, &[("confirm", "SIEM")]).await;
    assert_eq!(response.status(), 400);
    assert!(server.store.find_log_stream(&id).await.unwrap().is_some());
    let response = post(
        &server,
        &browser,
        &delete,
        &delete,
        &[("confirm", "SIEM 2")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        "/admin/log-streams?notice=stream_deleted"
    );
    assert!(server.store.find_log_stream(&id).await.unwrap().is_none());

    // Each change recorded as sapi with the administrator; no secret in any.
    let events = management_events(&server).await;
    let text = serde_json::to_string(&events).unwrap();
    assert!(text.contains("POST /admin/log-streams"), "{text}");
    assert!(text.contains("admin@example.com"), "{text}");
    for secret in ["sekret-stream-token", "another-secret-2", "header-secret-1"] {
        assert!(!text.contains(secret), "{secret} in the log: {text}");
    }
}

#[tokio::test]
async fn log_stream_forms_without_csrf_or_rights_change_nothing() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    administrator(&server, "reader@example.com", &["read:log_streams"]).await;
    administrator(&server, "nobody@example.com", &[]).await;
    let fields = [
        ("name", "Forged"),
        ("endpoint", "http://127.0.0.1:9/in"),
        ("content_type", "application/json"),
        ("format", "JSONLINES"),
    ];
    let admin = signed_in(&server, "admin@example.com").await;
    let response = admin
        .post(at(&server, "/admin/log-streams"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "no CSRF token");

    let reader = signed_in(&server, "reader@example.com").await;
    let (status, html) = page(&server, &reader, "/admin/log-streams").await;
    assert_eq!(status, 200);
    assert!(!html.contains("Create Stream</a>"), "{html}");
    let response = post(
        &server,
        &reader,
        "/admin/log-streams",
        "/admin/log-streams",
        &fields,
    )
    .await;
    assert_eq!(response.status(), 403);

    let nobody = signed_in_expecting_403(&server, "nobody@example.com").await;
    for path in ["/admin/log-streams", "/admin/log-streams/new"] {
        let (status, _) = page(&server, &nobody, path).await;
        assert_eq!(status, 403, "{path}");
    }
    assert!(server.store.list_log_streams().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_dashboard_edit_records_the_state_before_without_secrets() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let api = server
        .store
        .find_resource_server(API)
        .await
        .unwrap()
        .unwrap();
    let settings = format!("/admin/apis/{}/settings", api.id);
    let lifetime = api.token_lifetime.to_string();
    let web_lifetime = api.token_lifetime_for_web.to_string();
    let form = [
        ("name", "Renamed API"),
        ("token_lifetime", lifetime.as_str()),
        ("token_lifetime_for_web", web_lifetime.as_str()),
        ("signing_alg", api.signing_alg.as_str()),
        ("token_dialect", api.token_dialect.as_str()),
    ];
    let response = post(&server, &browser, &settings, &settings, &form).await;
    assert_eq!(response.status(), 302);

    // An application, whose read holds its secret: kept out.
    let client =
        tessera_testkit::client("Billing", AppType::RegularWeb, Some("dash-before-s3cret"));
    server.store.create_client(&client).await.unwrap();
    let app_path = format!("/admin/applications/{}", client.client_id);
    let response = post(
        &server,
        &browser,
        &app_path,
        &app_path,
        &[
            ("name", "Billing 2"),
            ("callbacks", "https://billing.example.com/cb"),
            ("token_lifetime", "2592000"),
            ("idle_token_lifetime", "1296000"),
            ("leeway", "0"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());

    let events = management_events(&server).await;
    let event = |path: &str| {
        events
            .iter()
            .find(|e| e["details"]["request"]["path"] == path)
            .unwrap_or_else(|| panic!("no event for {path}: {events:?}"))
            .clone()
    };
    let renamed = event(&settings);
    assert_eq!(renamed["type"], "sapi");
    assert_eq!(renamed["details"]["before"]["name"], api.name, "{renamed}");
    assert_eq!(renamed["details"]["before"]["identifier"], API, "{renamed}");
    assert_eq!(renamed["details"]["request"]["body"]["name"], "Renamed API");
    let app = event(&app_path);
    assert_eq!(app["details"]["before"]["name"], "Billing", "{app}");
    assert_eq!(app["details"]["before"]["client_id"], client.client_id);
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("dash-before-s3cret"), "{text}");
    assert!(!text.contains("client_secret"), "{text}");
    // A form that creates has no state before.
    let response = post(
        &server,
        &browser,
        "/admin/roles/new",
        "/admin/roles",
        &[("name", "Fresh"), ("description", "")],
    )
    .await;
    assert_eq!(response.status(), 302);
    let events = management_events(&server).await;
    let created = events
        .iter()
        .find(|e| e["details"]["request"]["path"] == "/admin/roles")
        .unwrap();
    assert!(created["details"].get("before").is_none(), "{created}");
}

/// The users list reads a page and one row more instead of counting every user (a count
/// grows with the tenant): the range says where the page is, "Next" shows only when
/// another row follows.
#[tokio::test]
async fn the_users_list_pages_without_counting_every_user() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    for i in 0..24 {
        create_user(&server.store, &format!("paged{i:02}@example.com"), PASSWORD).await;
    }
    let browser = signed_in(&server, "admin@example.com").await;
    let (status, first) = page(&server, &browser, "/admin/users").await;
    assert_eq!(status, 200);
    assert!(first.contains("1–20<"), "{first}");
    assert!(!first.contains(" of "), "no total is counted: {first}");
    assert!(first.contains("rel=\"next\""), "{first}");
    let (_, second) = page(&server, &browser, "/admin/users?page=1").await;
    // 25 users and the fixture's own: the second page holds the rest.
    assert!(second.contains("<span>21–26</span>"), "{second}");
    assert!(!second.contains("rel=\"next\""), "{second}");
    assert!(second.contains("rel=\"prev\""), "{second}");
    let (_, beyond) = page(&server, &browser, "/admin/users?page=7").await;
    assert!(
        !beyond.contains("paged") && !beyond.contains("rel=\"next\""),
        "{beyond}"
    );
    // Exactly a page of matches: no "Next" to an empty page.
    for i in 24..40 {
        create_user(&server.store, &format!("paged{i:02}@example.com"), PASSWORD).await;
    }
    let (_, search) = page(&server, &browser, "/admin/users?field=email&term=paged0").await;
    assert!(search.contains("1–10<"), "{search}");
    assert!(!search.contains("rel=\"next\""), "{search}");
}

#[tokio::test]
async fn an_administrator_signs_a_user_out_of_one_browser_one_application_or_everywhere() {
    let server = spawn().await;
    let other = administrator(&server, "admin@example.com", &every_scope()).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let sessions_path = format!(
        "/admin/users/{}/sessions",
        server.user_id.replace('|', "%7C")
    );
    let offline = "openid offline_access read:messages";
    let laptop = browser();
    let laptop_refresh = server.code_flow(&laptop, offline, Some(API)).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let phone = browser();
    let phone_refresh = server.code_flow(&phone, offline, Some(API)).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refreshes = |token: String| {
        let server = &server;
        async move {
            let (status, _) = server
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", server.spa_client_id.as_str()),
                    ("refresh_token", token.as_str()),
                ])
                .await;
            status == 200
        }
    };

    let (status, html) = page(&server, &admin, &sessions_path).await;
    assert_eq!(status, 200, "{html}");
    let ids = |html: &str, field: &str| -> Vec<String> {
        html.split(&format!("name=\"{field}\" value=\""))
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(String::from)
            .collect()
    };
    let sessions = ids(&html, "session");
    assert_eq!(sessions.len(), 2, "{html}");
    assert_eq!(ids(&html, "refresh_token").len(), 2, "{html}");
    assert!(html.contains("127.0.0.1"), "the address is shown");
    // A session's metadata is shown, as text.
    let metadata = std::collections::BTreeMap::from([
        ("device".to_string(), "laptop".to_string()),
        ("note".to_string(), "<b>bold</b>".to_string()),
    ]);
    assert!(
        server
            .store
            .set_session_metadata(&sessions[1], &metadata, (tessera_testkit::now(), 0))
            .await
            .unwrap()
    );
    let (_, html) = page(&server, &admin, &sessions_path).await;
    assert!(html.contains("device=laptop"), "{html}");
    assert!(
        html.contains("note=&#60;b&#62;bold&#60;/b&#62;") && !html.contains("<b>bold"),
        "{html}"
    );
    // And a refresh token's.
    let family = ids(&html, "refresh_token")[0].clone();
    let tagged =
        std::collections::BTreeMap::from([("app".to_string(), "<i>mobile</i>".to_string())]);
    assert!(
        server
            .store
            .set_refresh_family_metadata(&family, &tagged, tessera_testkit::now())
            .await
            .unwrap()
    );
    let (_, html) = page(&server, &admin, &sessions_path).await;
    assert!(
        html.contains("app=&#60;i&#62;mobile&#60;/i&#62;") && !html.contains("<i>mobile"),
        "{html}"
    );

    // One browser: the first listed session and the refresh token issued in it end.
    let response = post(
        &server,
        &admin,
        &sessions_path,
        &sessions_path,
        &[("session", &sessions[0])],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        location(&response),
        format!("{sessions_path}?notice=signed_out")
    );
    let signed_in_now = [
        server.signs_in_silently(&laptop).await,
        server.signs_in_silently(&phone).await,
    ];
    assert_eq!(
        signed_in_now.iter().filter(|&&s| s).count(),
        1,
        "{signed_in_now:?}"
    );
    let refreshing = [
        refreshes(laptop_refresh.clone()).await,
        refreshes(phone_refresh.clone()).await,
    ];
    assert_eq!(refreshing, signed_in_now, "the token went with its session");

    // One application's refresh token, by itself: its browser stays signed in.
    let (_, html) = page(&server, &admin, &sessions_path).await;
    let tokens = ids(&html, "refresh_token");
    assert_eq!(tokens.len(), 1, "{html}");
    let response = post(
        &server,
        &admin,
        &sessions_path,
        &sessions_path,
        &[("refresh_token", &tokens[0])],
    )
    .await;
    assert_eq!(response.status(), 302);
    let (_, html) = page(&server, &admin, &sessions_path).await;
    assert!(html.contains("id=\"no-refresh-tokens\""), "{html}");
    assert_eq!(ids(&html, "session").len(), 1, "{html}");

    // Everywhere: a new sign-in's session and refresh token go too.
    let tablet = browser();
    let tablet_refresh = server.code_flow(&tablet, offline, Some(API)).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let response = post(
        &server,
        &admin,
        &sessions_path,
        &sessions_path,
        &[("everywhere", "1")],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert!(!server.signs_in_silently(&tablet).await);
    assert!(!server.signs_in_silently(&laptop).await && !server.signs_in_silently(&phone).await);
    assert!(!refreshes(tablet_refresh).await);
    let (_, html) = page(&server, &admin, &sessions_path).await;
    assert!(html.contains("id=\"no-sessions\""), "{html}");
    // The administrator's own dashboard session is not the user's: still signed in.
    let (status, _) = page(&server, &admin, &sessions_path).await;
    assert_eq!(status, 200);

    // A form naming nothing, an unknown session, or another user's session or refresh
    // token on this user's page, changes nothing.
    let store = &server.store;
    let origin = tessera_store::SessionOrigin::default();
    tessera_testkit::seed_session(store, (9, "others-session"), &other, origin).await;
    let owner = (other.as_str(), server.spa_client_id.as_str());
    let issued_in = Some("others-session");
    tessera_testkit::seed_refresh_family(store, (8, "others-family"), owner, issued_in).await;
    let now = tessera_testkit::now();
    for field in [
        ("session", "others-session"),
        ("refresh_token", "others-family"),
    ] {
        let response = post(&server, &admin, &sessions_path, &sessions_path, &[field]).await;
        assert_eq!(response.status(), 404, "{field:?}");
    }
    assert!(
        server
            .store
            .find_session(&[9; 32], now)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        server
            .store
            .find_refresh_family(&[8; 32], now)
            .await
            .unwrap()
            .is_some()
    );
    let response = post(&server, &admin, &sessions_path, &sessions_path, &[]).await;
    assert_eq!(response.status(), 400);
    let response = post(
        &server,
        &admin,
        &sessions_path,
        &sessions_path,
        &[("session", "not-a-session")],
    )
    .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn an_administrator_sets_an_applications_back_channel_logout() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let browser = signed_in(&server, "admin@example.com").await;
    let app_path = format!("/admin/applications/{}", server.spa_client_id);
    let (_, html) = page(&server, &browser, &app_path).await;
    assert!(
        html.contains("OpenID Connect Back-Channel Logout"),
        "{html}"
    );
    let spa = server
        .store
        .find_client(&server.spa_client_id)
        .await
        .unwrap()
        .unwrap();
    let callbacks = spa.callbacks.join("\n");
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![
            ("name", spa.name.clone()),
            ("callbacks", callbacks.clone()),
            ("grant:authorization_code", "on".into()),
            ("is_first_party", "on".into()),
            ("token_lifetime", "2592000".into()),
            ("idle_token_lifetime", "1296000".into()),
            ("leeway", "0".into()),
        ];
        form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        form
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let (server, browser, app_path) = (&server, &browser, &app_path);
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(server, browser, app_path, app_path, &fields).await
        }
    };
    let stored = || async {
        server
            .store
            .find_client(&server.spa_client_id)
            .await
            .unwrap()
            .unwrap()
            .oidc_logout
    };
    // A URL and two session ends beside the user's own logout.
    let response = send(form(&[
        ("backchannel_logout_url", "https://app.example/backchannel"),
        ("backchannel_logout_mode", "custom"),
        ("initiator:session-revoked", "on"),
        ("initiator:account-deleted", "on"),
    ]))
    .await;
    assert_eq!(response.status(), 302);
    let logout = stored().await.expect("set");
    assert_eq!(logout.url(), Some("https://app.example/backchannel"));
    assert_eq!(
        logout.backchannel_logout_initiators.selected_initiators,
        ["rp-logout", "session-revoked", "account-deleted"]
    );
    let (_, html) = page(&server, &browser, &app_path).await;
    assert!(
        html.contains(r#"name="initiator:session-revoked" checked>"#),
        "{html}"
    );
    // A refused URL: the form again with the message, nothing changed.
    let response = send(form(&[(
        "backchannel_logout_url",
        "http://app.example/backchannel",
    )]))
    .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("http only to localhost"), "{html}");
    assert_eq!(stored().await, Some(logout));
    // Every session end; then none.
    let response = send(form(&[
        ("backchannel_logout_url", "https://app.example/backchannel"),
        ("backchannel_logout_mode", "all"),
    ]))
    .await;
    assert_eq!(response.status(), 302);
    assert!(stored().await.unwrap().notifies("account-deactivated"));
    assert!(!stored().await.unwrap().includes_session_metadata());
    // Logout tokens that carry the session's metadata: kept by the next save that says so.
    let with_metadata = [
        ("backchannel_logout_url", "https://app.example/backchannel"),
        ("backchannel_logout_mode", "all"),
        ("backchannel_logout_session_metadata", "on"),
    ];
    let response = send(form(&with_metadata)).await;
    assert_eq!(response.status(), 302);
    assert!(stored().await.unwrap().includes_session_metadata());
    let (_, html) = page(&server, &browser, &app_path).await;
    assert!(
        html.contains(r#"name="backchannel_logout_session_metadata" checked>"#),
        "{html}"
    );
    let response = send(form(&[("backchannel_logout_url", "")])).await;
    assert_eq!(response.status(), 302);
    assert_eq!(stored().await, None);
}

const BRUTE_FORCE: &str = "/attack-protection/brute-force-protection";

/// The tenant's brute-force protection as the Management API answers it.
async fn brute_force_settings(server: &TestServer) -> Value {
    let token = server.management_token(&["read:attack_protection"]).await;
    let (status, settings) = server.management_request(&token, "GET", BRUTE_FORCE).await;
    assert_eq!(status, 200, "{settings}");
    settings
}

#[tokio::test]
async fn brute_force_protection_is_changed_on_the_settings_page_as_the_api_changes_it() {
    let server = spawn().await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let (_, html) = page(&server, &admin, "/admin/settings").await;
    assert!(html.contains("Brute-force protection"), "{html}");
    assert!(
        html.contains("locked out after 10 failed password attempts from one network"),
        "the server's threshold until the tenant sets one: {html}"
    );

    let save = |fields: Vec<(&'static str, &'static str)>| {
        let (server, admin) = (&server, &admin);
        async move {
            post(
                server,
                admin,
                "/admin/settings",
                "/admin/settings/brute-force",
                &fields,
            )
            .await
        }
    };
    let response = save(vec![
        ("enabled", "on"),
        ("block", "on"),
        ("notify", "on"),
        ("mode", "count_per_identifier"),
        ("max_attempts", "7"),
        ("allowlist", "10.1.2.3/8\r\n192.0.2.7\r\n\r\n"),
    ])
    .await;
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    assert_eq!(
        location(&response),
        "/admin/settings?notice=brute_force_saved"
    );
    let saved = serde_json::json!({
        "enabled": true, "shields": ["block", "user_notification"],
        "allowlist": ["10.0.0.0/8", "192.0.2.7"],
        "mode": "count_per_identifier", "max_attempts": 7,
    });
    assert_eq!(brute_force_settings(&server).await, saved);
    // Audited as every dashboard change, with the settings as they were before.
    let events = management_events(&server).await;
    let saving = events
        .iter()
        .find(|e| e["details"]["request"]["path"] == "/admin/settings/brute-force")
        .unwrap_or_else(|| panic!("no event for the save: {events:?}"));
    assert_eq!(saving["type"], "sapi", "{saving}");
    assert_eq!(saving["details"]["before"]["max_attempts"], 10, "{saving}");
    let (_, html) = page(&server, &admin, "/admin/settings?notice=brute_force_saved").await;
    assert!(
        html.contains("The brute-force protection settings were saved."),
        "{html}"
    );
    assert!(
        html.contains(r#"<option value="count_per_identifier" selected>Per account</option>"#),
        "{html}"
    );
    assert!(html.contains(r#"name="max_attempts" type="number" min="1" max="100" value="7""#));
    assert!(html.contains("10.0.0.0/8\n192.0.2.7</textarea>"), "{html}");
    assert!(
        html.contains(r#"name="notify" aria-describedby="bf-notify-hint" checked>"#),
        "{html}"
    );

    // Refusals: the API's message next to the field, what was typed kept, nothing changed.
    for (max_attempts, allowlist, message, field) in [
        (
            "0",
            "192.0.2.7",
            "max_attempts must be an integer from 1 to 100",
            "bf-max-attempts-error",
        ),
        (
            "seven",
            "192.0.2.7",
            "Expected type integer but found type string",
            "bf-max-attempts-error",
        ),
        (
            "5",
            "192.0.2.7\r\nnot-an-ip",
            "allowlist entries are addresses or networks (CIDR): &#34;not-an-ip&#34; is neither",
            "bf-allowlist-error",
        ),
    ] {
        let response = save(vec![
            ("enabled", "on"),
            ("mode", "count_per_identifier_and_ip"),
            ("max_attempts", max_attempts),
            ("allowlist", allowlist),
        ])
        .await;
        assert_eq!(response.status(), 400, "{max_attempts} {allowlist}");
        let html = response.text().await.unwrap();
        assert!(html.contains(message), "{message}: {html}");
        assert!(html.contains(&format!(r#"id="{field}""#)), "{html}");
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        assert!(
            html.contains(&format!(r#"value="{max_attempts}""#)),
            "what was typed is shown again: {html}"
        );
        assert_eq!(brute_force_settings(&server).await, saved, "{message}");
        assert!(
            html.contains("locked out after 7 failed password attempts from any network"),
            "the summary says what is stored, not what was refused: {html}"
        );
    }
    // Notifying the user of a block there is none of.
    let response = save(vec![
        ("enabled", "on"),
        ("notify", "on"),
        ("mode", "count_per_identifier"),
        ("max_attempts", "7"),
    ])
    .await;
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("it needs the block shield"), "{html}");
    assert!(html.contains(r#"id="bf-shields-error""#), "{html}");
    assert_eq!(brute_force_settings(&server).await, saved);

    // Unchecked boxes turn the protection and its block off.
    let response = save(vec![
        ("mode", "count_per_identifier_and_ip"),
        ("max_attempts", "100"),
        ("allowlist", ""),
    ])
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        brute_force_settings(&server).await,
        serde_json::json!({
            "enabled": false, "shields": [], "allowlist": [],
            "mode": "count_per_identifier_and_ip", "max_attempts": 100,
        })
    );
    let (_, html) = page(&server, &admin, "/admin/settings").await;
    assert!(
        html.contains("Off: failed password attempts are not counted."),
        "{html}"
    );
}

#[tokio::test]
async fn a_viewer_reads_the_brute_force_protection_but_cannot_change_it() {
    let server = spawn().await;
    let read_only: Vec<&str> = every_scope()
        .into_iter()
        .filter(|s| s.starts_with("read:"))
        .collect();
    administrator(&server, "viewer@example.com", &read_only).await;
    let viewer = signed_in(&server, "viewer@example.com").await;
    let before = brute_force_settings(&server).await;
    let (status, html) = page(&server, &viewer, "/admin/settings").await;
    assert_eq!(status, 200);
    assert!(html.contains("locked out after 10 failed password attempts"));
    assert!(
        html.contains(r#"value="10""#),
        "the values, read-only: {html}"
    );
    assert!(!html.contains("Save brute-force protection"), "{html}");
    let response = post(
        &server,
        &viewer,
        "/admin/settings",
        "/admin/settings/brute-force",
        &[
            ("mode", "count_per_identifier"),
            ("max_attempts", "1"),
            ("allowlist", "0.0.0.0/0"),
        ],
    )
    .await;
    assert_eq!(response.status(), 403);
    let html = response.text().await.unwrap();
    assert!(html.contains("Insufficient scope"), "{html}");
    assert_eq!(brute_force_settings(&server).await, before);
}

#[tokio::test]
async fn a_user_locked_out_by_wrong_passwords_is_unblocked_from_their_page() {
    let server = spawn_with(|config| config.max_login_failures = 3).await;
    administrator(&server, "admin@example.com", &every_scope()).await;
    let read_only: Vec<&str> = every_scope()
        .into_iter()
        .filter(|s| s.starts_with("read:"))
        .collect();
    administrator(&server, "viewer@example.com", &read_only).await;
    let admin = signed_in(&server, "admin@example.com").await;
    let viewer = signed_in(&server, "viewer@example.com").await;
    let user_path = format!("/admin/users/{}", server.user_id.replace('|', "%7C"));
    let (_, html) = page(&server, &admin, &user_path).await;
    assert!(html.contains("No brute-force blocks."), "{html}");

    let login = |password: &'static str| {
        let server = &server;
        async move {
            let pkce = tessera_testkit::pkce();
            let url = server.authorize_url(&[
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", pkce.challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]);
            let email = server.user_email.clone();
            server
                .submit_login(&browser(), &url, &email, password)
                .await
                .status()
        }
    };
    for _ in 0..3 {
        assert_eq!(login("not the password").await, 401);
    }
    assert_eq!(login(PASSWORD).await, 429, "locked out");

    let token = server
        .management_token(&["read:users", "update:users"])
        .await;
    let user_blocks = format!("/user-blocks/{}", server.user_id.replace('|', "%7C"));
    let (_, blocks) = server.management_request(&token, "GET", &user_blocks).await;
    let network = blocks["blocked_for"][0]["ip"]
        .as_str()
        .unwrap_or_else(|| panic!("a block from the login page's network: {blocks}"))
        .to_string();

    // The block is on the user's page, apart from the administrator's Block.
    let (_, html) = page(&server, &admin, &user_path).await;
    assert!(html.contains("Brute-force blocks"), "{html}");
    assert!(html.contains(&format!("<li>{network}</li>")), "{html}");
    assert!(!html.contains("No brute-force blocks."), "{html}");
    assert!(html.contains("/brute-force/lift"), "{html}");
    assert!(html.contains("Block user"), "the blocked flag's form stays");
    // A viewer sees it, without the button, and cannot lift it.
    let (_, html) = page(&server, &viewer, &user_path).await;
    assert!(html.contains(&format!("<li>{network}</li>")), "{html}");
    assert!(!html.contains("/brute-force/lift"), "{html}");
    let lift = format!("{user_path}/brute-force/lift");
    let response = post(&server, &viewer, &user_path, &lift, &[]).await;
    assert_eq!(response.status(), 403);
    let (_, still) = server.management_request(&token, "GET", &user_blocks).await;
    assert_eq!(still, blocks);
    // Without the page's CSRF token, nothing is lifted either.
    let response = admin
        .post(at(&server, &lift))
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let (_, still) = server.management_request(&token, "GET", &user_blocks).await;
    assert_eq!(still, blocks);

    let response = post(&server, &admin, &user_path, &lift, &[]).await;
    assert_eq!(response.status(), 302);
    let back = location(&response);
    assert_eq!(back, format!("{user_path}?notice=blocks_lifted"));
    let (_, html) = page(&server, &admin, &back).await;
    assert!(html.contains("Brute-force blocks lifted:"), "{html}");
    assert!(html.contains("No brute-force blocks."), "{html}");
    let (status, lifted) = server.management_request(&token, "GET", &user_blocks).await;
    assert_eq!(
        (status, lifted),
        (200, serde_json::json!({"blocked_for": []}))
    );
    let (_, user) = server
        .management_request(
            &token,
            "GET",
            &format!("/users/{}", server.user_id.replace('|', "%7C")),
        )
        .await;
    assert_eq!(user["blocked"], false, "the blocked flag was never set");
    assert_eq!(login(PASSWORD).await, 303, "the user signs in again");
}
