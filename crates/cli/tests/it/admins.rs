//! `tessera admins add|remove|list`: who may use the dashboard, through the real binary;
//! and the `apps` / `roles` commands leaving Tessera's own roles and application alone.

use serde_json::{Value, json};
use tessera_core::system::{self, ADMIN_ROLE, DASHBOARD_CLIENT_ID, VIEWER_ROLE};
use tessera_store::Store;
use tessera_testkit::process::Env;

use crate::TESSERA;

fn create_user(env: &Env, email: &str) -> String {
    let output = env.ok_with_stdin(
        &[
            "users",
            "create",
            "--email",
            email,
            "--password-stdin",
            "--json",
        ],
        "correct horse battery staple\n",
    );
    let user: Value = serde_json::from_str(&output).unwrap();
    user["user_id"].as_str().unwrap().to_string()
}

/// The emails `admins list --json` shows for each role: (admins, viewers).
fn holders(env: &Env) -> (Vec<String>, Vec<String>) {
    let list = env.json(&["admins", "list"]);
    // By user_id (random): sorted here by email.
    let emails = |index: usize, role: &str| -> Vec<String> {
        assert_eq!(list[index]["role"]["name"], role, "{list}");
        let mut emails: Vec<String> = list[index]["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_string())
            .collect();
        emails.sort();
        emails
    };
    (emails(0, ADMIN_ROLE.name), emails(1, VIEWER_ROLE.name))
}

#[test]
fn admins_are_added_listed_changed_and_removed() {
    let env = Env::new(TESSERA);
    create_user(&env, "alice@example.com");
    let bob = create_user(&env, "bob@example.com");
    // No server has run on this database yet: the roles are made when first needed.
    assert_eq!(holders(&env), (vec![], vec![]));
    let human = env.ok(&["admins", "list"]);
    assert!(
        human.contains("Tessera Admin (rol_tessera_admin):")
            && human.contains("nobody (tessera admins add EMAIL)")
            && human.contains("tessera admins add EMAIL --viewer"),
        "{human}"
    );

    let added = env.json(&["admins", "add", "alice@example.com"]);
    assert_eq!(added["user"]["email"], "alice@example.com");
    assert_eq!(
        added["roles"],
        json!([{"id": ADMIN_ROLE.id, "name": ADMIN_ROLE.name, "description": ADMIN_ROLE.description}])
    );
    let out = env.ok(&["admins", "add", "bob@example.com", "--viewer"]);
    assert_eq!(out.trim(), "bob@example.com is now a Tessera Viewer.");
    assert_eq!(
        holders(&env),
        (
            vec!["alice@example.com".into()],
            vec!["bob@example.com".into()]
        )
    );
    // Adding again is harmless; adding as the other role moves the user.
    env.ok(&["admins", "add", "alice@example.com"]);
    env.ok(&["admins", "add", &bob]);
    assert_eq!(
        holders(&env),
        (
            vec!["alice@example.com".into(), "bob@example.com".into()],
            vec![]
        )
    );
    let human = env.ok(&["admins", "list", "--per-page", "1"]);
    assert!(
        human.contains("(1–1 of 2)") && human.contains("Next page: --page 1"),
        "{human}"
    );
    let out = env.ok(&["admins", "remove", "alice@example.com"]);
    assert_eq!(
        out.trim(),
        "alice@example.com is no longer an administrator."
    );
    let removed = env.json(&["admins", "rm", "alice@example.com"]);
    assert_eq!(removed["roles"], json!([]));
    assert_eq!(holders(&env), (vec!["bob@example.com".into()], vec![]));
}

#[test]
fn an_unknown_user_is_refused_and_nothing_changes() {
    let env = Env::new(TESSERA);
    create_user(&env, "alice@example.com");
    env.ok(&["admins", "add", "alice@example.com"]);
    for args in [
        &["admins", "add", "nobody@example.com"][..],
        &["admins", "add", "nobody@example.com", "--viewer"],
        &["admins", "remove", "nobody@example.com"],
        &["admins", "add", ""],
        &["admins", "add", "auth0|000000000000000000000000"],
    ] {
        let (code, stderr) = env.fails(args);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            stderr.starts_with("error: no user with id or email"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(holders(&env), (vec!["alice@example.com".into()], vec![]));
}

#[tokio::test]
async fn apps_and_roles_commands_leave_tessera_s_own_alone() {
    let env = Env::new(TESSERA);
    // What a server's start registers.
    let store = Store::connect(&env.database_url()).await.unwrap();
    let issuer = "http://localhost:4000/";
    store
        .create_resource_server(&system::management_api(issuer, 1))
        .await
        .unwrap();
    tessera_server::admin_identities::ensure(&store, issuer, issuer, 1)
        .await
        .unwrap();

    // The dashboard's application: not listed, shown on request, never changed.
    assert_eq!(env.json(&["apps", "list"]), json!([]));
    let shown = env.json(&["apps", "show", DASHBOARD_CLIENT_ID]);
    assert_eq!(shown["name"], "Tessera Dashboard");
    for args in [
        &["apps", "delete", DASHBOARD_CLIENT_ID][..],
        &["apps", "delete", "Tessera Dashboard"],
        &["apps", "rotate-secret", DASHBOARD_CLIENT_ID],
        &[
            "apps",
            "update",
            DASHBOARD_CLIENT_ID,
            "--callbacks",
            "https://evil.example/cb",
        ],
    ] {
        let (code, stderr) = env.fails(args);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            stderr.contains("Tessera's (its dashboard)"),
            "{args:?}: {stderr}"
        );
    }

    // The system roles: not listed (`tessera admins list` shows them), shown on request,
    // never deleted, their permissions fixed.
    assert_eq!(env.json(&["roles", "list"]), json!([]));
    let shown = env.json(&["roles", "show", "Tessera Admin"]);
    assert_eq!(shown["id"], ADMIN_ROLE.id);
    let audience = system::management_api_identifier(issuer);
    for args in [
        &["roles", "delete", ADMIN_ROLE.id][..],
        &["roles", "delete", "Tessera Viewer"],
        &[
            "roles",
            "permissions",
            "add",
            VIEWER_ROLE.id,
            "--api",
            &audience,
            "--scopes",
            "delete:users",
        ],
        &[
            "roles",
            "permissions",
            "remove",
            ADMIN_ROLE.id,
            "--api",
            &audience,
            "--scopes",
            "read:users",
        ],
    ] {
        let (code, stderr) = env.fails(args);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            stderr.contains("This role is Tessera's"),
            "{args:?}: {stderr}"
        );
    }
    let before = store.find_client(DASHBOARD_CLIENT_ID).await.unwrap();
    assert_eq!(before, Some(system::dashboard_client(issuer, 1)));
    assert_eq!(
        store.role_permissions(VIEWER_ROLE.id).await.unwrap().len(),
        VIEWER_ROLE.scopes().len()
    );
    assert_eq!(
        store.role_permissions(ADMIN_ROLE.id).await.unwrap().len(),
        ADMIN_ROLE.scopes().len()
    );
}

#[test]
fn a_second_factor_is_required_of_administrators_by_one_setting() {
    let env = Env::new(TESSERA);
    assert_eq!(env.json(&["admins", "mfa"]), json!({"mfa_required": false}));
    let on = env.ok(&["admins", "mfa", "--required", "true"]);
    assert_eq!(
        on.trim(),
        "Administrators pass a second factor to sign in to the dashboard."
    );
    assert_eq!(env.json(&["admins", "mfa"]), json!({"mfa_required": true}));
    assert_eq!(
        env.json(&["admins", "mfa", "--required", "false"]),
        json!({"mfa_required": false})
    );
    env.fails(&["admins", "mfa", "--required", "maybe"]);
}
