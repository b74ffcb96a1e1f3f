//! Several database connections against a hostile client, user and administrator: signing
//! up, signing in or resetting a password through a database connection the application
//! may not use (or an upstream one), a reset page pointed at another connection, options
//! Tessera enforces or does not know, Tessera's own dashboard disabled for the connection
//! its administrators sign in with, users created in an upstream connection, a connection
//! deleted under its users. Each is refused with a clear 4xx, and the users, passwords and
//! enabled applications read back unchanged.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::DATABASE_CONNECTION_ID;
use tessera_core::system::DASHBOARD_CLIENT_ID;
use tessera_testkit::*;

use crate::harness::Tally;

const STAFF_PASSWORD: &str = "a staff passphrase 42";

/// A Management API token for every call of the test, made once: each token made is an
/// application more, enabled for the default database connection.
async fn token(server: &TestServer) -> String {
    server
        .management_token(&[
            "create:connections",
            "update:connections",
            "delete:connections",
            "read:connections",
            "create:users",
            "update:users",
        ])
        .await
}

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (u16, String) {
    let response = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn post_json(server: &TestServer, path: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// What an attack could have changed: the users with their password hashes, and the
/// applications enabled for each database connection.
async fn snapshot(server: &TestServer, connections: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let users = server.store.users_after(None, None, 1000).await.unwrap();
    for user in users {
        let hash = server
            .store
            .find_user_with_password_in(&user.connection, user.email.as_deref().unwrap())
            .await
            .unwrap()
            .and_then(|(_, hash)| hash);
        out.push(format!("{} {} {:?}", user.user_id, user.connection, hash));
    }
    for connection in connections {
        let all = tessera_store::Checkpoint {
            from: None,
            take: 100,
        };
        let page = server
            .store
            .connection_clients_from(connection, all)
            .await
            .unwrap();
        out.push(format!("{connection}: {:?}", page.items));
    }
    out
}

#[tokio::test]
async fn hostile_use_of_database_connections_is_refused_and_changes_nothing() {
    let mut tally = Tally::new("databases/hostile_use");
    // With mail: password reset is offered, so its pages answer for themselves.
    let (server, _mail) = spawn_with_mail(|_| {}).await;
    let token = token(&server).await;

    // `staff`: a database connection enabled for no application; `gh`: an upstream one
    // enabled for the SPA. One user lives in `staff`.
    let (status, body) = call(
        &server,
        &token,
        Method::POST,
        "/connections",
        json!({"name": "staff", "strategy": "auth0"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let staff: Value = serde_json::from_str(&body).unwrap();
    let staff_id = staff["id"].as_str().unwrap().to_string();
    let (status, body) = call(
        &server,
        &token,
        Method::POST,
        "/connections",
        json!({
            "name": "gh",
            "strategy": "github",
            "options": {"client_id": "id", "client_secret": "adversarial-secret-9"},
            "enabled_clients": [server.spa_client_id],
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &server,
        &token,
        Method::POST,
        "/users",
        json!({"connection": "staff", "email": "insider@example.com", "password": STAFF_PASSWORD}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let watched = [DATABASE_CONNECTION_ID, staff_id.as_str()];
    let before = snapshot(&server, &watched).await;

    // A client signing up or resetting through a connection its application may not use.
    let signup = |connection: &str, email: &str| {
        json!({
            "client_id": server.spa_client_id,
            "connection": connection,
            "email": email,
            "password": STAFF_PASSWORD,
        })
    };
    for (case, connection) in [
        (
            "sign-up through a database connection not enabled for the app",
            "staff",
        ),
        ("sign-up through an upstream connection", "gh"),
        ("sign-up through a connection nobody made", "nobody"),
        ("sign-up through a name with different case", "STAFF"),
    ] {
        let status = post_json(
            &server,
            "/dbconnections/signup",
            signup(connection, "new@example.com"),
        )
        .await;
        tally.status(case, status, 400);
    }
    for (case, connection) in [
        (
            "a reset code through a connection not enabled for the app",
            "staff",
        ),
        ("a reset code through an upstream connection", "gh"),
    ] {
        let status = post_json(
            &server,
            "/dbconnections/change_password",
            json!({"client_id": server.spa_client_id, "connection": connection, "email": "insider@example.com"}),
        )
        .await;
        tally.status(case, status, 400);
    }

    // /authorize naming a database connection the app may not use: refused to the app,
    // no login page.
    let pkce = pkce();
    let browser = browser();
    let response = browser
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("connection", "staff"),
        ]))
        .send()
        .await
        .unwrap();
    let to = location(&response);
    tally.case(
        "/authorize?connection= of a database connection not enabled for the app",
        to.starts_with(CALLBACK)
            && params_of(&to).get("error").map(String::as_str) == Some("invalid_request"),
        &to,
    );

    // A user of `staff` signing in on the SPA's page (its connection is the default).
    let (status, _) = login_status(&server, "insider@example.com", STAFF_PASSWORD).await;
    tally.status(
        "a user of another database connection signs in on the app's page",
        status,
        401,
    );

    // The reset pages pointed at a connection by hand.
    let page = browser
        .get(server.url("/u/reset-password?connection=nobody"))
        .send()
        .await
        .unwrap();
    tally.status(
        "a reset page for a connection nobody made",
        page.status().as_u16(),
        400,
    );
    let page = browser
        .get(server.url("/u/reset-password/code?connection=gh"))
        .send()
        .await
        .unwrap();
    tally.status(
        "a reset page for an upstream connection",
        page.status().as_u16(),
        400,
    );

    // An administrator's hostile connection changes.
    let default_path = format!("/connections/{DATABASE_CONNECTION_ID}");
    let staff_path = format!("/connections/{staff_id}");
    let cases: Vec<(&str, Method, String, Value, &[u16])> = vec![
        (
            "a login script in a database connection's options",
            Method::POST,
            "/connections".into(),
            json!({"name": "scripted", "strategy": "auth0", "options": {"customScripts": {"login": "function login() {}"}}}),
            &[400],
        ),
        (
            "disable_signup that is not a boolean",
            Method::PATCH,
            staff_path.clone(),
            json!({"options": {"disable_signup": "yes"}}),
            &[400],
        ),
        (
            "usernames required (not enforced by Tessera)",
            Method::PATCH,
            staff_path.clone(),
            json!({"options": {"requires_username": true}}),
            &[403],
        ),
        (
            "a weaker password policy",
            Method::PATCH,
            default_path.clone(),
            json!({"options": {"password_complexity_options": {"min_length": 1}}}),
            &[403],
        ),
        (
            "brute-force protection off",
            Method::PATCH,
            default_path.clone(),
            json!({"options": {"brute_force_protection": false}}),
            &[403],
        ),
        (
            "renaming a database connection",
            Method::PATCH,
            staff_path.clone(),
            json!({"name": "staff2"}),
            &[400],
        ),
        (
            "turning a database connection into an upstream",
            Method::PATCH,
            staff_path.clone(),
            json!({"strategy": "oidc"}),
            &[400],
        ),
        (
            "the dashboard disabled for the default database connection",
            Method::PATCH,
            format!("{default_path}/clients"),
            json!([{"client_id": DASHBOARD_CLIENT_ID, "status": false}]),
            &[400],
        ),
        (
            "a user created in an upstream connection",
            Method::POST,
            "/users".into(),
            json!({"connection": "gh", "email": "fake@example.com", "password": STAFF_PASSWORD}),
            &[400],
        ),
        (
            "a user created in a connection nobody made",
            Method::POST,
            "/users".into(),
            json!({"connection": "staff ", "email": "fake@example.com", "password": STAFF_PASSWORD}),
            &[400],
        ),
        (
            "a user moved to another connection",
            Method::PATCH,
            format!("/users/{}", server.user_id),
            json!({"connection": "staff"}),
            &[400],
        ),
        (
            "a database connection deleted under its users",
            Method::DELETE,
            staff_path.clone(),
            Value::Null,
            &[409],
        ),
        (
            "the default database connection deleted",
            Method::DELETE,
            default_path.clone(),
            Value::Null,
            &[400, 409],
        ),
    ];
    for (case, method, path, body, expected) in cases {
        let (status, answer) = call(&server, &token, method, &path, body).await;
        tally.status_in(case, status, expected);
        tally.case(
            format!("{case}: the answer echoes no script or secret"),
            !answer.contains("function login") && !answer.contains("adversarial-secret"),
            &answer,
        );
    }

    let after = snapshot(&server, &watched).await;
    tally.case(
        "users, passwords and enabled applications are unchanged",
        before == after,
        format_args!("{before:?} → {after:?}"),
    );
    // The deprecated whole-list member leaves Tessera's dashboard enabled.
    let (status, _) = call(
        &server,
        &token,
        Method::PATCH,
        &default_path,
        json!({"enabled_clients": [server.spa_client_id]}),
    )
    .await;
    tally.status(
        "enabled_clients without the dashboard is accepted",
        status,
        200,
    );
    let dashboard_kept = server
        .store
        .connections_of_client(DASHBOARD_CLIENT_ID)
        .await
        .unwrap()
        .iter()
        .any(|c| c.id == DATABASE_CONNECTION_ID);
    tally.case(
        "…and the dashboard stays enabled for it",
        dashboard_kept,
        "the dashboard was disabled",
    );

    tally.finish();
}

/// The login form's answer for `username` in a fresh transaction of the SPA.
async fn login_status(server: &TestServer, username: &str, password: &str) -> (u16, String) {
    let browser = browser();
    let pkce = pkce();
    let response = browser
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await
        .unwrap();
    let login_path = location(&response);
    let response = submit_login_form(&browser, &server.base, &login_path, username, password).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn home_realm_discovery_sends_only_its_exact_domains_upstream() {
    let mut tally = Tally::new("databases/home_realm_discovery");
    let server = spawn().await;
    let token = token(&server).await;
    let github = |enabled: Vec<&str>| {
        json!({
            "name": "corp",
            "strategy": "github",
            "options": {
                "client_id": "id",
                "client_secret": "adversarial-secret-9",
                "domain_aliases": ["corp.example"],
            },
            "enabled_clients": enabled,
        })
    };
    let (status, body) = call(
        &server,
        &token,
        Method::POST,
        "/connections",
        github(vec![]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let made: Value = serde_json::from_str(&body).unwrap();
    let (status, _) = login_status(&server, "jo@corp.example", "some password").await;
    tally.status(
        "an aliased domain of a connection the app may not use: the password is checked",
        status,
        401,
    );
    let clients = format!("/connections/{}/clients", made["id"].as_str().unwrap());
    let enable = json!([{"client_id": server.spa_client_id, "status": true}]);
    let (status, _) = call(&server, &token, Method::PATCH, &clients, enable).await;
    assert_eq!(status, 204);
    let (status, page) = login_status(&server, "jo@corp.example", "some password").await;
    tally.case(
        "control: the aliased domain goes on to the provider",
        status == 200 && page.contains("https://github.com/login/oauth/authorize"),
        format_args!("{status}"),
    );
    for (case, username) in [
        (
            "a longer domain ending in the alias",
            "jo@corp.example.evil.test",
        ),
        ("a subdomain of the alias", "jo@sub.corp.example"),
        ("a domain that merely contains it", "jo@notcorp.example"),
        ("the alias without an address", "corp.example"),
        ("the alias as the local part", "corp.example@elsewhere.test"),
    ] {
        let (status, _) = login_status(&server, username, "some password").await;
        tally.status(case, status, 401);
    }
    let (status, _) = call(
        &server,
        &token,
        Method::POST,
        "/connections",
        json!({"name": "aliased-db", "strategy": "auth0", "options": {"domain_aliases": ["corp.example"]}}),
    )
    .await;
    tally.status("a database connection with domain aliases", status, 400);
    tally.finish();
}

/// `/authorize?connection=NAME` for the SPA: where the browser is sent.
async fn authorize_with(server: &TestServer, connection: &str) -> String {
    let pkce = pkce();
    let response = browser()
        .get(server.authorize_url(&[
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("connection", connection),
        ]))
        .send()
        .await
        .unwrap();
    location(&response)
}

#[tokio::test]
async fn a_third_party_application_reaches_no_connection_short_of_a_domain_one() {
    let mut tally = Tally::new("databases/third_party");
    let server = spawn().await;
    let token = token(&server).await;
    // `staff` (database) and `corp` (upstream, aliasing corp.example) are enabled for the
    // SPA, which becomes a third-party application; neither is a domain connection.
    let mut ids = Vec::new();
    for made in [
        json!({"name": "staff", "strategy": "auth0", "enabled_clients": [server.spa_client_id]}),
        json!({
            "name": "corp",
            "strategy": "github",
            "options": {
                "client_id": "id",
                "client_secret": "adversarial-secret-9",
                "domain_aliases": ["corp.example"],
            },
            "enabled_clients": [server.spa_client_id],
        }),
    ] {
        let (status, body) = call(&server, &token, Method::POST, "/connections", made).await;
        assert_eq!(status, 201, "{body}");
        let made: Value = serde_json::from_str(&body).unwrap();
        ids.push(made["id"].as_str().unwrap().to_string());
    }
    let clients_token = server.management_token(&["update:clients"]).await;
    let third_party = json!({"is_first_party": false});
    let path = format!("/clients/{}", server.spa_client_id);
    let (status, body) = call(&server, &clients_token, Method::PATCH, &path, third_party).await;
    assert_eq!(status, 200, "{body}");
    let before = snapshot(&server, &[DATABASE_CONNECTION_ID, ids[0].as_str()]).await;

    for connection in ["staff", "corp"] {
        let to = authorize_with(&server, connection).await;
        tally.case(
            format_args!("/authorize?connection={connection}, enabled but no domain connection"),
            to.starts_with(CALLBACK)
                && params_of(&to).get("error").map(String::as_str) == Some("invalid_request"),
            &to,
        );
    }
    let (status, page) = login_status(&server, "jo@corp.example", "some password").await;
    tally.case(
        "an aliased domain of an enabled non-domain connection: the password is checked",
        status == 401 && !page.contains("github.com"),
        format_args!("{status}"),
    );
    let status = post_json(
        &server,
        "/dbconnections/signup",
        json!({
            "client_id": server.spa_client_id,
            "connection": "staff",
            "email": "new@example.com",
            "password": STAFF_PASSWORD,
        }),
    )
    .await;
    tally.status(
        "sign-up through an enabled non-domain connection",
        status,
        400,
    );
    let status = post_json(
        &server,
        "/dbconnections/change_password",
        json!({"client_id": server.spa_client_id, "connection": "staff", "email": "a@example.com"}),
    )
    .await;
    tally.status(
        "a reset through an enabled non-domain connection",
        status,
        400,
    );
    // Only administrators with the connections scope promote a connection.
    let path = format!("/connections/{}", ids[1]);
    let promote = json!({"is_domain_connection": true});
    let (status, _) = call(&server, &clients_token, Method::PATCH, &path, promote).await;
    tally.status("promoting with an application token's scope", status, 403);
    tally.case(
        "nothing changed",
        snapshot(&server, &[DATABASE_CONNECTION_ID, ids[0].as_str()]).await == before,
        "users or enabled applications differ",
    );

    // Control: promoted, `corp` is the third party's to use.
    let promote = json!({"is_domain_connection": true});
    let (status, body) = call(&server, &token, Method::PATCH, &path, promote).await;
    assert_eq!(status, 200, "{body}");
    let to = authorize_with(&server, "corp").await;
    tally.case(
        "control: a domain connection sends the third party's user to its provider",
        to.starts_with("https://github.com/login/oauth/authorize"),
        &to,
    );
    tally.finish();
}
