//! Who may use the dashboard: the system roles and the dashboard's application that
//! `Application::build` registers (`tessera_server::admin_identities`), their repair at
//! start, and the Management API keeping Auth0's tools away from them.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::system::{
    ADMIN_ROLE, DASHBOARD_CLIENT_ID, MANAGEMENT_SCOPES, SYSTEM_ROLES, VIEWER_ROLE, dashboard_client,
};
use tessera_core::{AppType, Permission};
use tessera_server::admin_identities::{ensure, management_permissions};
use tessera_store::{ClientFilter, ClientUpdate, Slice, Store};
use tessera_testkit::{TestServer, now, spawn};

async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
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
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn all_scopes() -> Vec<&'static str> {
    MANAGEMENT_SCOPES.iter().map(|(scope, _)| *scope).collect()
}

/// Every system role and the dashboard client hold exactly what this version defines.
async fn assert_as_defined(store: &Store, issuer: &str) {
    for role in SYSTEM_ROLES {
        let stored = store.find_role(role.id).await.unwrap().unwrap();
        assert_eq!(
            (
                stored.id.as_str(),
                stored.name.as_str(),
                stored.description.as_str()
            ),
            (role.id, role.name, role.description)
        );
        let mut wanted: Vec<Permission> = role.permissions(issuer);
        wanted.sort_by(|a, b| (&a.audience, &a.permission).cmp(&(&b.audience, &b.permission)));
        assert_eq!(store.role_permissions(role.id).await.unwrap(), wanted);
    }
    let client = store
        .find_client(DASHBOARD_CLIENT_ID)
        .await
        .unwrap()
        .unwrap();
    let wanted = dashboard_client(issuer, client.created_at);
    assert_eq!(
        tessera_core::Client {
            updated_at: 0,
            ..client
        },
        tessera_core::Client {
            updated_at: 0,
            ..wanted
        }
    );
}

#[tokio::test]
async fn start_registers_the_roles_and_the_dashboard_client_and_repairs_them() {
    let server = spawn().await;
    let store = &server.store;
    let issuer = &server.issuer;
    assert_as_defined(store, issuer).await;
    let client = store
        .find_client(DASHBOARD_CLIENT_ID)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.callbacks, [format!("{issuer}admin/callback")]);
    assert_eq!(
        client.allowed_logout_urls,
        [
            format!("{issuer}admin/"),
            format!("{issuer}admin/signed-out")
        ]
    );
    assert_eq!(client.token_endpoint_auth_method, "none");
    assert_eq!(
        store.role_permissions(VIEWER_ROLE.id).await.unwrap().len(),
        MANAGEMENT_SCOPES
            .iter()
            .filter(|(s, _)| s.starts_with("read:"))
            .count()
    );

    // Running again changes nothing.
    ensure(store, issuer, issuer, now()).await.unwrap();
    assert_as_defined(store, issuer).await;

    // Someone with the database changed them: the next start puts them back.
    store
        .update_role(ADMIN_ROLE.id, Some("Admins"), Some("mine now"), now())
        .await
        .unwrap();
    store
        .remove_role_permissions(
            ADMIN_ROLE.id,
            &server.management_audience(),
            &["delete:users".to_string()],
        )
        .await
        .unwrap();
    store
        .add_role_permissions(
            VIEWER_ROLE.id,
            &server.management_audience(),
            &["delete:users".to_string()],
        )
        .await
        .unwrap();
    store
        .add_role_permissions(
            VIEWER_ROLE.id,
            "https://quickstarts/api",
            &["write:messages".to_string()],
        )
        .await
        .unwrap();
    store
        .update_client(
            DASHBOARD_CLIENT_ID,
            &ClientUpdate {
                callbacks: Some(vec!["https://evil.example/cb".into()]),
                grant_types: Some(vec!["authorization_code".into(), "implicit".into()]),
                is_first_party: Some(false),
                ..ClientUpdate::default()
            },
            now(),
        )
        .await
        .unwrap();
    ensure(store, issuer, issuer, now()).await.unwrap();
    assert_as_defined(store, issuer).await;

    // A confidential client of that id (a secret to steal) is replaced by the public one.
    store.delete_client(DASHBOARD_CLIENT_ID).await.unwrap();
    let mut confidential = tessera_testkit::client("x", AppType::NonInteractive, Some("s"));
    confidential.client_id = DASHBOARD_CLIENT_ID.into();
    store.create_client(&confidential).await.unwrap();
    ensure(store, issuer, issuer, now()).await.unwrap();
    assert_as_defined(store, issuer).await;
    assert!(
        store
            .find_client(DASHBOARD_CLIENT_ID)
            .await
            .unwrap()
            .unwrap()
            .secret_hash
            .is_none()
    );
}

#[tokio::test]
async fn two_nodes_registering_at_once_both_succeed() {
    let server = spawn().await;
    let store = &server.store;
    for role in SYSTEM_ROLES {
        store.delete_role(role.id).await.unwrap();
    }
    store.delete_client(DASHBOARD_CLIENT_ID).await.unwrap();
    let (a, b) = tokio::join!(
        ensure(store, &server.issuer, &server.issuer, now()),
        ensure(store, &server.issuer, &server.issuer, now())
    );
    a.unwrap();
    b.unwrap();
    assert_as_defined(store, &server.issuer).await;
}

#[tokio::test]
async fn a_role_squatting_a_system_name_stops_the_start_with_a_clear_error() {
    let server = spawn().await;
    let store = &server.store;
    store.delete_role(VIEWER_ROLE.id).await.unwrap();
    store
        .create_role(&tessera_core::Role {
            id: "rol_0123456789abcdef".into(),
            name: VIEWER_ROLE.name.into(),
            description: String::new(),
            created_at: now(),
            updated_at: now(),
        })
        .await
        .unwrap();
    let error = ensure(store, &server.issuer, &server.issuer, now())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("rename it"), "{error}");
}

#[tokio::test]
async fn the_dashboard_client_is_hidden_from_the_management_api_and_unchangeable() {
    let server = spawn().await;
    let token = server.management_token(&all_scopes()).await;
    // Listed by page, with totals, and by checkpoint: never there, and totals agree.
    let (status, page) = call(
        &server,
        &token,
        Method::GET,
        "/clients?include_totals=true&per_page=100",
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let clients = page["clients"].as_array().unwrap();
    assert!(
        clients
            .iter()
            .all(|c| c["client_id"] != DASHBOARD_CLIENT_ID)
    );
    assert_eq!(page["total"], json!(clients.len()));
    let stored = server
        .store
        .list_clients(&ClientFilter::default(), Slice::first(1000))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), clients.len());
    let (_, checkpoint) = call(
        &server,
        &token,
        Method::GET,
        "/clients?take=100&include_totals=true",
        None,
    )
    .await;
    let listed = checkpoint["clients"].as_array().unwrap();
    assert_eq!(listed.len(), clients.len());
    assert!(listed.iter().all(|c| c["client_id"] != DASHBOARD_CLIENT_ID));
    let (_, named) = call(
        &server,
        &token,
        Method::GET,
        &format!("/clients?client_ids={DASHBOARD_CLIENT_ID}&include_totals=true"),
        None,
    )
    .await;
    assert_eq!(named["clients"], json!([]));
    assert_eq!(named["total"], json!(0));

    // By id: unknown, like any application that does not exist.
    let path = format!("/clients/{DASHBOARD_CLIENT_ID}");
    let (status, body) = call(&server, &token, Method::GET, &path, None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["errorCode"], "inexistent_client");

    // Changes: refused as for the Management API itself.
    let refused = [
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"callbacks": ["https://evil.example/cb"]})),
        ),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/rotate-secret"), None),
    ];
    for (method, path, body) in refused {
        let (status, answer) = call(&server, &token, method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["errorCode"], "operation_not_supported", "{answer}");
    }
    // No client grant for it either.
    let (status, body) = call(
        &server,
        &token,
        Method::POST,
        "/client-grants",
        Some(json!({
            "client_id": DASHBOARD_CLIENT_ID,
            "audience": server.management_audience(),
            "scope": ["read:users"],
        })),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_as_defined(&server.store, &server.issuer).await;
}

#[tokio::test]
async fn system_roles_are_unlisted_assignable_and_otherwise_unchangeable() {
    let server = spawn().await;
    let token = server.management_token(&all_scopes()).await;
    // Not listed (auth0-deploy-cli would delete and re-add their permissions on every
    // import), with totals that agree; read and assigned by their fixed ids.
    let (status, page) = call(
        &server,
        &token,
        Method::GET,
        "/roles?include_totals=true&name_filter=tessera",
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["roles"], json!([]));
    assert_eq!(page["total"], json!(0));
    let (_, all) = call(&server, &token, Method::GET, "/roles", None).await;
    assert_eq!(all, json!([]));
    let (status, role) = call(
        &server,
        &token,
        Method::GET,
        &format!("/roles/{}", ADMIN_ROLE.id),
        None,
    )
    .await;
    assert_eq!((status, &role["name"]), (200, &json!("Tessera Admin")));

    let admin = format!("/roles/{}", ADMIN_ROLE.id);
    let viewer = format!("/roles/{}", VIEWER_ROLE.id);
    // Repeating what it holds (a read-modify-write) goes through.
    let (status, body) = call(
        &server,
        &token,
        Method::PATCH,
        &admin,
        Some(json!({"name": ADMIN_ROLE.name, "description": ADMIN_ROLE.description})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let widen = json!({"permissions": [{
        "resource_server_identifier": server.management_audience(),
        "permission_name": "delete:users",
    }]});
    let refused = [
        (
            Method::PATCH,
            admin.clone(),
            Some(json!({"name": "Admins"})),
        ),
        (
            Method::PATCH,
            viewer.clone(),
            Some(json!({"description": "anything"})),
        ),
        (Method::DELETE, admin.clone(), None),
        (Method::DELETE, viewer.clone(), None),
        (
            Method::POST,
            format!("{viewer}/permissions"),
            Some(widen.clone()),
        ),
        (
            Method::DELETE,
            format!("{admin}/permissions"),
            Some(widen.clone()),
        ),
    ];
    for (method, path, body) in refused {
        let (status, answer) = call(&server, &token, method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["errorCode"], "operation_not_supported", "{answer}");
    }
    // Nor can a role of another name take a system role's name.
    let (status, _) = call(
        &server,
        &token,
        Method::POST,
        "/roles",
        Some(json!({"name": "Tessera Admin"})),
    )
    .await;
    assert_eq!(status, 409);
    assert_as_defined(&server.store, &server.issuer).await;

    // Assigning users is how an administrator is made.
    assert!(
        management_permissions(&server.store, &server.issuer, &server.user_id)
            .await
            .unwrap()
            .is_empty()
    );
    let (status, body) = call(
        &server,
        &token,
        Method::POST,
        &format!("{viewer}/users"),
        Some(json!({"users": [server.user_id]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let held = management_permissions(&server.store, &server.issuer, &server.user_id)
        .await
        .unwrap();
    assert!(held.iter().all(|p| p.starts_with("read:")) && held.contains(&"read:users".into()));
    // Direct permissions count too, and the admin role gives all.
    server
        .store
        .add_user_permissions(
            &server.user_id,
            &server.management_audience(),
            &["update:users".to_string()],
        )
        .await
        .unwrap();
    let held = management_permissions(&server.store, &server.issuer, &server.user_id)
        .await
        .unwrap();
    assert!(held.contains(&"update:users".into()) && held.contains(&"read:roles".into()));
    server
        .store
        .assign_user_role(&server.user_id, ADMIN_ROLE.id)
        .await
        .unwrap();
    let mut all: Vec<String> = all_scopes().into_iter().map(String::from).collect();
    all.sort();
    assert_eq!(
        management_permissions(&server.store, &server.issuer, &server.user_id)
            .await
            .unwrap(),
        all
    );
    // Permissions of other APIs are not the dashboard's.
    server
        .store
        .add_user_permissions(
            &server.user_id,
            "https://quickstarts/api",
            &["read:messages".to_string()],
        )
        .await
        .unwrap();
    assert_eq!(
        management_permissions(&server.store, &server.issuer, &server.user_id)
            .await
            .unwrap(),
        all
    );
}

#[tokio::test]
async fn an_administrator_gets_no_management_scope_in_a_token() {
    // The roles decide what the dashboard shows; they never put Management API scopes in a
    // user's access token (`tessera_core::system::user_may_hold`).
    let server = spawn().await;
    server
        .store
        .assign_user_role(&server.user_id, ADMIN_ROLE.id)
        .await
        .unwrap();
    let audience = server.management_audience();
    let tokens = server
        .code_flow(
            &tessera_testkit::browser(),
            "openid delete:users read:users",
            Some(&audience),
        )
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let claims = server.verify(access, &server.management_audience()).await;
    let scope = claims["scope"].as_str().unwrap_or_default();
    assert!(!scope.contains("users"), "{claims}");
}

#[tokio::test]
async fn on_postgresql_too_they_are_registered_once_and_left_out_of_lists() {
    let database = tessera_testkit::pg::PgServer::start();
    let server = tessera_testkit::spawn_on(&database.database()).await;
    assert_as_defined(&server.store, &server.issuer).await;
    let (a, b) = tokio::join!(
        ensure(&server.store, &server.issuer, &server.issuer, now()),
        ensure(&server.store, &server.issuer, &server.issuer, now())
    );
    a.unwrap();
    b.unwrap();
    assert_as_defined(&server.store, &server.issuer).await;
    let token = server.management_token(&all_scopes()).await;
    let (_, roles) = call(
        &server,
        &token,
        Method::GET,
        "/roles?include_totals=true",
        None,
    )
    .await;
    assert_eq!((&roles["roles"], &roles["total"]), (&json!([]), &json!(0)));
    let (_, clients) = call(
        &server,
        &token,
        Method::GET,
        "/clients?include_totals=true&per_page=100",
        None,
    )
    .await;
    let listed = clients["clients"].as_array().unwrap();
    assert_eq!(clients["total"], json!(listed.len()));
    assert!(listed.iter().all(|c| c["client_id"] != DASHBOARD_CLIENT_ID));
}
