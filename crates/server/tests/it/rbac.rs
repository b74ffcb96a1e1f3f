//! RBAC (Auth0's enforce_policies): an API's scopes are granted only as permissions the user
//! holds through roles or directly, and the `*_authz` dialects list them in `permissions`.

use serde_json::json;
use tessera_core::{Role, TokenDialect};
use tessera_store::ResourceServerUpdate;
use tessera_testkit::*;

async fn enforce_rbac(server: &TestServer) {
    let api = server
        .store
        .find_resource_server(API)
        .await
        .unwrap()
        .unwrap();
    let update = ResourceServerUpdate {
        enforce_policies: Some(true),
        token_dialect: Some(TokenDialect::AccessTokenAuthz),
        ..Default::default()
    };
    server
        .store
        .update_resource_server(&api.id, &update, now())
        .await
        .unwrap();
}

async fn admin_role(server: &TestServer) -> Role {
    let role = Role {
        id: "rol_admin".into(),
        name: "admin".into(),
        description: "Reads and writes messages".into(),
        created_at: now(),
        updated_at: now(),
    };
    server.store.create_role(&role).await.unwrap();
    let permissions = vec!["read:messages".to_string(), "write:messages".to_string()];
    server
        .store
        .add_role_permissions(&role.id, API, &permissions)
        .await
        .unwrap();
    role
}

const ASK: &str = "openid profile offline_access read:messages write:messages";

#[tokio::test]
async fn granted_scopes_are_the_requested_ones_the_user_holds() {
    let server = spawn().await;
    enforce_rbac(&server).await;
    let role = admin_role(&server).await;

    // No role, no permission: only the OIDC scopes.
    let tokens = server.code_flow(&browser(), ASK, Some(API)).await;
    assert_eq!(tokens["scope"], "openid profile offline_access");
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["permissions"], json!([]));

    // With the admin role: both, and the token lists the permissions.
    server
        .store
        .assign_user_role(&server.user_id, &role.id)
        .await
        .unwrap();
    let tokens = server.code_flow(&browser(), ASK, Some(API)).await;
    assert_eq!(tokens["scope"], ASK);
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(
        claims["permissions"],
        json!(["read:messages", "write:messages"])
    );
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    // Taking the role away shows in the next token, refreshed ones included.
    server
        .store
        .remove_user_role(&server.user_id, &role.id)
        .await
        .unwrap();
    server
        .store
        .add_user_permissions(&server.user_id, API, &["read:messages".to_string()])
        .await
        .unwrap();
    let (status, refreshed) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &server.spa_client_id),
            ("refresh_token", &refresh_token),
        ])
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        refreshed["scope"],
        "openid profile offline_access read:messages"
    );
    let claims = server
        .verify(refreshed["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["permissions"], json!(["read:messages"]));
}

#[tokio::test]
async fn without_enforcement_any_defined_scope_is_granted() {
    let server = spawn().await;
    admin_role(&server).await;
    let tokens = server.code_flow(&browser(), ASK, Some(API)).await;
    assert_eq!(
        tokens["scope"], ASK,
        "Auth0's default: any user may ask for any scope the API defines"
    );
}

#[tokio::test]
async fn implicit_tokens_follow_the_same_policy() {
    let server = spawn().await;
    enforce_rbac(&server).await;
    server
        .store
        .add_user_permissions(&server.user_id, API, &["write:messages".to_string()])
        .await
        .unwrap();
    let url = server.authorize_url(&[
        ("response_type", "token id_token"),
        ("scope", "openid read:messages write:messages"),
        ("audience", API),
        ("nonce", "n"),
    ]);
    let params = params_of(&server.sign_in(&browser(), &url).await);
    assert_eq!(params["scope"], "openid write:messages");
    let claims = server.verify(&params["access_token"], API).await;
    assert_eq!(claims["scope"], "openid write:messages");
}

#[tokio::test]
async fn store_reports_permissions_through_roles_and_directly() {
    let server = spawn().await;
    let role = admin_role(&server).await;
    server
        .store
        .assign_user_role(&server.user_id, &role.id)
        .await
        .unwrap();
    server
        .store
        .add_user_permissions(&server.user_id, API, &["read:messages".to_string()])
        .await
        .unwrap();
    let all = server
        .store
        .user_permissions(&server.user_id, None)
        .await
        .unwrap();
    assert_eq!(
        all.len(),
        2,
        "read:messages from both sources counts once: {all:?}"
    );
    assert_eq!(
        server.store.user_roles(&server.user_id).await.unwrap(),
        vec![role.clone()]
    );
    server.store.delete_role(&role.id).await.unwrap();
    let left = server
        .store
        .user_permissions(&server.user_id, Some(API))
        .await
        .unwrap();
    assert_eq!(
        left.iter()
            .map(|p| p.permission.as_str())
            .collect::<Vec<_>>(),
        ["read:messages"]
    );
    assert!(matches!(
        server
            .store
            .add_role_permissions("rol_missing", API, &["x".into()])
            .await,
        Err(tessera_store::StoreError::NotFound(_))
    ));
}
