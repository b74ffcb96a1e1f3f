//! Who may use the dashboard, attacked through the Management API: a machine-to-machine
//! token holding every Management scope tries to delete, rename or widen the system roles
//! ("Tessera Admin", "Tessera Viewer"), to shadow their names, and to change, delete,
//! rotate the secret of, grant or even find the dashboard's application. Each refusal is
//! checked against the roles, their permissions and the application read from the store
//! before and after.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::system::{ADMIN_ROLE, DASHBOARD_CLIENT_ID, MANAGEMENT_SCOPES, VIEWER_ROLE};
use tessera_testkit::{API, TestServer, spawn};

use crate::harness::Tally;

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The system roles, their permissions and holders, and the dashboard's application, as
/// stored.
async fn snapshot(server: &TestServer) -> String {
    let store = &server.store;
    let mut out = String::new();
    for role in [ADMIN_ROLE, VIEWER_ROLE] {
        out.push_str(&format!(
            "{:?}\n{:?}\n{:?}\n",
            store.find_role(role.id).await.unwrap(),
            store.role_permissions(role.id).await.unwrap(),
            store
                .list_role_users(role.id, tessera_store::Slice::first(100))
                .await
                .unwrap()
                .items
        ));
    }
    out.push_str(&format!(
        "{:?}",
        store.find_client(DASHBOARD_CLIENT_ID).await.unwrap()
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_m2m_token_cannot_take_over_the_dashboards_identities() {
    let mut tally = Tally::new("admin_identities/m2m");
    let server = spawn().await;
    let scopes: Vec<&str> = MANAGEMENT_SCOPES.iter().map(|(s, _)| *s).collect();
    let token = server.management_token(&scopes).await;
    let t = token.as_str();
    let before = snapshot(&server).await;
    let audience = server.management_audience();
    let permission = |api: &str, name: &str| json!({"permissions": [{"resource_server_identifier": api, "permission_name": name}]});
    let admin = format!("/roles/{}", ADMIN_ROLE.id);
    let viewer = format!("/roles/{}", VIEWER_ROLE.id);
    let mut refused: Vec<(Method, String, Option<Value>, &str)> = vec![
        (Method::DELETE, admin.clone(), None, "delete the admin role"),
        (
            Method::DELETE,
            viewer.clone(),
            None,
            "delete the viewer role",
        ),
        (
            Method::PATCH,
            admin.clone(),
            Some(json!({"name": "Admins"})),
            "rename the admin role",
        ),
        (
            Method::PATCH,
            viewer.clone(),
            Some(json!({"name": "tessera viewer"})),
            "rename the viewer role by case",
        ),
        (
            Method::PATCH,
            viewer.clone(),
            Some(json!({"name": VIEWER_ROLE.name, "description": "Full access"})),
            "redescribe the viewer role",
        ),
        (
            Method::POST,
            format!("{viewer}/permissions"),
            Some(permission(&audience, "delete:users")),
            "widen the viewer role with delete:users",
        ),
        (
            Method::POST,
            format!("{viewer}/permissions"),
            Some(permission(API, "write:messages")),
            "give the viewer role another API's permission",
        ),
        (
            Method::DELETE,
            format!("{admin}/permissions"),
            Some(permission(&audience, "read:users")),
            "narrow the admin role",
        ),
        (
            Method::DELETE,
            format!("{viewer}/permissions"),
            Some(permission(&audience, "read:users")),
            "narrow the viewer role",
        ),
    ];
    // The application: by its id, and by a spelling the router decodes to it.
    for id in [DASHBOARD_CLIENT_ID, "tessera%5Fdashboard"] {
        let path = format!("/clients/{id}");
        refused.extend([
            (
                Method::PATCH,
                path.clone(),
                Some(json!({"callbacks": ["https://evil.example/cb"]})),
                "point the dashboard's callback elsewhere",
            ),
            (
                Method::PATCH,
                path.clone(),
                Some(json!({"grant_types": ["authorization_code", "implicit"]})),
                "add the implicit grant to the dashboard",
            ),
            (
                Method::PATCH,
                path.clone(),
                Some(json!({"is_first_party": false})),
                "make the dashboard third party",
            ),
            (Method::DELETE, path.clone(), None, "delete the dashboard"),
            (
                Method::POST,
                format!("{path}/rotate-secret"),
                None,
                "give the dashboard a secret",
            ),
        ]);
    }
    for (method, path, body, what) in refused {
        let (status, answer) = call(&server, t, method.clone(), &path, body.as_ref()).await;
        tally.case(
            format_args!("{what} ({method} {path})"),
            status == 403 && answer["errorCode"] == "operation_not_supported",
            format_args!("{status} {answer}"),
        );
        let after = snapshot(&server).await;
        tally.case(
            format_args!("{what}: nothing changed"),
            after == before,
            format_args!("before {before}\nafter {after}"),
        );
    }

    // Hidden: not found by id, not in any list, not grantable.
    let (status, body) = call(
        &server,
        t,
        Method::GET,
        &format!("/clients/{DASHBOARD_CLIENT_ID}"),
        None,
    )
    .await;
    tally.status(
        format_args!("read the dashboard by id ({body})"),
        status,
        404,
    );
    for query in [
        "",
        "?include_totals=true&per_page=100",
        "?take=100&include_totals=true",
        "?client_ids=tessera_dashboard,tessera_global_client",
        "?app_type=regular_web&is_first_party=true",
        "?from=tessera_dashboard&take=1&include_totals=true",
    ] {
        let (status, body) = call(&server, t, Method::GET, &format!("/clients{query}"), None).await;
        tally.case(
            format_args!("list /clients{query} without the dashboard"),
            status == 200 && !body.to_string().contains(DASHBOARD_CLIENT_ID),
            format_args!("{status} {body}"),
        );
    }
    for query in [
        "",
        "?include_totals=true",
        "?name_filter=tessera",
        "?name_filter=Tessera%20Admin&include_totals=true",
        "?per_page=100&page=0",
    ] {
        let (status, body) = call(&server, t, Method::GET, &format!("/roles{query}"), None).await;
        tally.case(
            format_args!("list /roles{query} without the system roles"),
            status == 200 && !body.to_string().contains("rol_tessera_"),
            format_args!("{status} {body}"),
        );
    }
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/client-grants",
        Some(&json!({"client_id": DASHBOARD_CLIENT_ID, "audience": audience, "scope": ["read:users"]})),
    )
    .await;
    tally.status(
        format_args!("grant the dashboard Management scopes ({body})"),
        status,
        404,
    );
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/clients",
        Some(&json!({"name": "Tessera Dashboard", "client_id": DASHBOARD_CLIENT_ID})),
    )
    .await;
    tally.status(
        format_args!("create an application with its id ({body})"),
        status,
        400,
    );
    // Names: no other role takes a system role's, by creation or by renaming.
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        "/roles",
        Some(&json!({"name": ADMIN_ROLE.name})),
    )
    .await;
    tally.status(
        format_args!("create a role named Tessera Admin ({body})"),
        status,
        409,
    );
    let (status, role) = call(
        &server,
        t,
        Method::POST,
        "/roles",
        Some(&json!({"name": "clerks"})),
    )
    .await;
    assert_eq!(status, 200, "{role}");
    let clerks = format!("/roles/{}", role["id"].as_str().unwrap());
    let (status, body) = call(
        &server,
        t,
        Method::PATCH,
        &clerks,
        Some(&json!({"name": VIEWER_ROLE.name})),
    )
    .await;
    tally.status(
        format_args!("rename a role to Tessera Viewer ({body})"),
        status,
        409,
    );
    let after = snapshot(&server).await;
    tally.case(
        "after every attempt, the roles and the dashboard are as they were",
        after == before,
        format_args!("before {before}\nafter {after}"),
    );

    // Assigning users is allowed: that is how an M2M tool makes an administrator.
    let (status, body) = call(
        &server,
        t,
        Method::POST,
        &format!("{viewer}/users"),
        Some(&json!({"users": [server.user_id]})),
    )
    .await;
    tally.status(
        format_args!("assign a user the viewer role ({body})"),
        status,
        200,
    );
    tally.finish();
}
