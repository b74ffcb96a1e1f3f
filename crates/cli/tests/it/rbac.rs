//! `tessera roles …` and `tessera users roles|permissions …` in Auth0's shapes.

use serde_json::json;
use tessera_testkit::process::Env;

use crate::TESSERA;

#[test]
fn roles_hold_api_permissions_and_users_get_them() {
    let env = Env::new(TESSERA);
    let api = env.json(&[
        "apis",
        "create",
        "--name",
        "Quickstart API",
        "--identifier",
        "https://quickstarts/api",
        "--scopes",
        "read:messages,write:messages",
        "--scope-description",
        "read:messages=Read your messages",
        "--enforce-policies",
    ]);
    assert_eq!(api["enforce_policies"], true);
    let role = env.json(&[
        "roles",
        "create",
        "--name",
        "admin",
        "--description",
        "Reads and writes",
    ]);
    assert!(role["id"].as_str().unwrap().starts_with("rol_"));
    assert_eq!(role["name"], "admin");
    let (code, stderr) = env.fails(&["roles", "create", "--name", "admin"]);
    assert_eq!(code, 1, "{stderr}");

    let (code, stderr) = env.fails(&[
        "roles",
        "permissions",
        "add",
        "admin",
        "--api",
        "https://quickstarts/api",
        "--scopes",
        "delete:everything",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("defines no scope delete:everything"),
        "{stderr}"
    );
    let held = env.json(&[
        "roles",
        "permissions",
        "add",
        "admin",
        "--api",
        "https://quickstarts/api",
        "--scopes",
        "read:messages,write:messages",
    ]);
    assert_eq!(
        held,
        json!([
            {"permission_name": "read:messages", "description": "Read your messages", "resource_server_name": "Quickstart API", "resource_server_identifier": "https://quickstarts/api"},
            {"permission_name": "write:messages", "description": "", "resource_server_name": "Quickstart API", "resource_server_identifier": "https://quickstarts/api"}
        ])
    );

    env.ok_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "demo@example.com",
            "--password-stdin",
        ],
        "an unusual passphrase",
    );
    assert_eq!(
        env.json(&["users", "permissions", "demo@example.com"]),
        json!([])
    );
    let roles = env.json(&["users", "roles", "assign", "demo@example.com", "admin"]);
    assert_eq!(roles[0]["name"], "admin");
    let permissions = env.json(&[
        "users",
        "permissions",
        "demo@example.com",
        "--api",
        "https://quickstarts/api",
    ]);
    assert_eq!(permissions.as_array().unwrap().len(), 2);

    env.json(&[
        "roles",
        "permissions",
        "remove",
        "admin",
        "--api",
        "https://quickstarts/api",
        "--scopes",
        "write:messages",
    ]);
    let permissions = env.json(&["users", "permissions", "demo@example.com"]);
    assert_eq!(
        permissions,
        json!([{"permission_name": "read:messages", "description": "Read your messages", "resource_server_name": "Quickstart API", "resource_server_identifier": "https://quickstarts/api"}])
    );

    env.json(&["users", "roles", "remove", "demo@example.com", "admin"]);
    assert_eq!(
        env.json(&["users", "roles", "list", "demo@example.com"]),
        json!([])
    );
    env.json(&["roles", "delete", "admin"]);
    assert_eq!(env.json(&["roles", "list"]), json!([]));
    let (code, stderr) = env.fails(&["users", "roles", "assign", "demo@example.com", "admin"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no role with id or name admin"), "{stderr}");
}
