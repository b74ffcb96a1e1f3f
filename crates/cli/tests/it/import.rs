//! `tessera import auth0`: an a0deploy YAML export and an Auth0 user file become Tessera's
//! APIs, applications, grants, roles, settings and users; a second run skips what exists;
//! an invalid file anywhere changes nothing.

use serde_json::{Value, json};
use tessera_testkit::process::Env;

use crate::TESSERA;

/// What `a0deploy export --format yaml` writes (trimmed), with members Tessera has no
/// setting for and sections it has no such thing as.
const TENANT: &str = r#"
tenant:
  friendly_name: Acme
  support_email: help@acme.example
resourceServers:
  - name: Orders API
    identifier: https://orders.acme.example
    allow_offline_access: true
    signing_alg: RS256
    skip_consent_for_verifiable_first_party_clients: true
    token_lifetime: 3600
    scopes:
      - value: read:orders
        description: Read orders
      - value: write:orders
        description: Write orders
  - name: Auth0 Management API
    identifier: https://acme.eu.auth0.com/api/v2/
clients:
  - name: Storefront
    app_type: spa
    callbacks:
      - https://shop.acme.example/callback
    allowed_logout_urls:
      - https://shop.acme.example/
    web_origins:
      - https://shop.acme.example
    grant_types:
      - authorization_code
      - refresh_token
    oidc_conformant: true
    jwt_configuration:
      alg: RS256
  - name: Fulfilment worker
    app_type: non_interactive
    grant_types:
      - client_credentials
clientGrants:
  - client_id: Fulfilment worker
    audience: https://orders.acme.example
    scope:
      - read:orders
  - client_id: Fulfilment worker
    audience: https://acme.eu.auth0.com/api/v2/
    scope:
      - read:users
roles:
  - name: Order admin
    description: Manages orders
    permissions:
      - permission_name: write:orders
        resource_server_identifier: https://orders.acme.example
  - name: Tessera Admin
    description: Another Tessera's administrators
    permissions:
      - permission_name: delete:users
        resource_server_identifier: https://acme.eu.auth0.com/api/v2/
rules: []
emailTemplates:
  - template: verify_email
attackProtection:
  breachedPasswordDetection:
    enabled: false
  bruteForceProtection:
    enabled: true
    shields:
      - block
      - user_notification
    mode: count_per_identifier_and_ip
    allowlist:
      - 10.0.0.0/8
    max_attempts: 7
  suspiciousIpThrottling:
    enabled: true
"#;

fn write(env: &Env, name: &str, text: &str) -> String {
    let path = env.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Everything a failed import must leave as it was.
fn tenant_state(env: &Env) -> Value {
    json!({
        "apis": env.json(&["apis", "list"]),
        "apps": env.json(&["apps", "list"]),
        "roles": env.json(&["roles", "list"]),
        "users": env.json(&["users", "list"]),
    })
}

#[test]
fn a_tenant_and_its_users_are_imported_then_skipped() {
    let env = Env::new(TESSERA);
    let tenant = write(&env, "tenant.yaml", TENANT);
    let hash = bcrypt::hash("old auth0 password", 4).unwrap();
    let users = write(
        &env,
        "users.json",
        &json!([
            {"email": "ada@acme.example", "email_verified": true, "user_id": "auth0|ada", "password_hash": hash,
             "app_metadata": {"roles": ["admin"]}},
            {"email": "bob@acme.example", "name": "Bob"},
        ])
        .to_string(),
    );
    let report = env.ok(&["import", "auth0", "--tenant", &tenant, "--users", &users]);
    for line in [
        "created resourceServers: 1",
        "created clients: 2",
        "created clientGrants: 1",
        "created roles: 1",
        "skipped roles: 1",
        "Tessera Admin: Tessera's own",
        "created tenant: 1",
        "2 inserted, 0 updated",
        "skipped sections: 2",
        "Auth0's Management API",
        "ignored members of clients (Tessera has no such setting): jwt_configuration, oidc_conformant",
        "created attackProtection: 1",
        "ignored members of attackProtection (Tessera has no such setting): breachedPasswordDetection, suspiciousIpThrottling",
    ] {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }
    let brute_force = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = tessera_store::Store::connect(&env.database_url())
            .await
            .unwrap();
        store.brute_force_settings().await.unwrap()
    });
    assert_eq!(
        Value::Object(brute_force),
        json!({"enabled": true, "shields": ["block", "user_notification"],
               "mode": "count_per_identifier_and_ip",
               "allowlist": ["10.0.0.0/8"], "max_attempts": 7})
    );
    let apis = env.json(&["apis", "list"]);
    let orders = apis
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["identifier"] == "https://orders.acme.example")
        .unwrap();
    assert_eq!(orders["token_lifetime"], 3600);
    assert_eq!(orders["allow_offline_access"], true);
    assert_eq!(
        orders["scopes"][0],
        json!({"value": "read:orders", "description": "Read orders"})
    );
    let apps = env.json(&["apps", "list"]);
    let names: Vec<&str> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Storefront") && names.contains(&"Fulfilment worker"),
        "{names:?}"
    );
    let worker = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Fulfilment worker")
        .unwrap();
    let grants = env.json(&["grants", "list"]);
    assert_eq!(grants[0]["client_id"], worker["client_id"]);
    assert_eq!(grants[0]["scope"], json!(["read:orders"]));
    let roles = env.json(&["roles", "list"]);
    assert_eq!(roles[0]["name"], "Order admin");
    // Another Tessera's system role is not copied: this one registers its own at start.
    assert_eq!(roles.as_array().unwrap().len(), 1, "{roles}");
    let permissions = env.json(&[
        "roles",
        "permissions",
        "list",
        roles[0]["id"].as_str().unwrap(),
    ]);
    assert_eq!(permissions[0]["permission_name"], "write:orders");
    let ada = env.json(&["users", "show", "auth0|ada"]);
    assert_eq!(ada["app_metadata"], json!({"roles": ["admin"]}));

    // Again: everything exists, nothing is created twice.
    let again = env.ok(&["import", "auth0", "--tenant", &tenant, "--users", &users]);
    assert!(!again.contains("created resourceServers"), "{again}");
    assert!(again.contains("skipped resourceServers: 2"), "{again}");
    assert!(again.contains("skipped clients: 2"), "{again}");
    assert!(again.contains("skipped roles: 2"), "{again}");
    assert!(again.contains("0 inserted, 0 updated"), "{again}");
    assert!(again.contains("skipped users: 2"), "{again}");
    assert_eq!(
        env.json(&["apis", "list"]).as_array().unwrap().len(),
        apis.as_array().unwrap().len()
    );
}

#[test]
fn an_auth0_user_export_is_read_line_by_line() {
    let env = Env::new(TESSERA);
    let export = [
        json!({"user_id": "auth0|5f1c", "email": "ada@acme.example", "email_verified": true, "name": "Ada",
               "created_at": "2020-01-01T00:00:00.000Z", "logins_count": 12, "identities": [{"provider": "auth0"}]}),
        json!({"user_id": "google-oauth2|1234", "email": "gmail@acme.example"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let users = write(&env, "users.ndjson", &export);
    let report = env.ok(&["import", "auth0", "--users", &users]);
    assert!(report.contains("1 inserted"), "{report}");
    assert!(report.contains("a google-oauth2 user"), "{report}");
    assert!(
        report.contains("sign in after a password reset"),
        "{report}"
    );
    assert_eq!(env.json(&["users", "show", "auth0|5f1c"])["name"], "Ada");
}

#[test]
fn invalid_input_anywhere_changes_nothing() {
    let env = Env::new(TESSERA);
    let before = tenant_state(&env);
    let users = write(&env, "users.json", r#"[{"email": "ok@acme.example"}]"#);
    let cases: Vec<(&str, String, String)> = vec![
        ("a javascript: callback", TENANT.replace("https://shop.acme.example/callback", "javascript:alert(1)"), users.clone()),
        ("a grant for an unknown application", TENANT.replace("client_id: Fulfilment worker\n    audience: https://orders", "client_id: Nobody\n    audience: https://orders"), users.clone()),
        ("a permission the API does not define", TENANT.replace("permission_name: write:orders", "permission_name: delete:orders"), users.clone()),
        ("an unknown tenant setting", TENANT.replace("friendly_name: Acme", "friendly_name: Acme\n  sandbox_mode: yes"), users.clone()),
        ("an empty role name", TENANT.replace("name: Order admin", "name: ''"), users.clone()),
        ("no brute-force threshold", TENANT.replace("max_attempts: 7", "max_attempts: 0"), users.clone()),
        ("a brute-force allowlist of host names", TENANT.replace("- 10.0.0.0/8", "- attacker.example"), users.clone()),
        ("a user with a slow bcrypt hash", TENANT.to_string(), write(&env, "slow.json", r#"[{"email": "ok@acme.example"}, {"email": "slow@acme.example", "password_hash": "$2b$20$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"}]"#)),
        ("a user file that is not JSON", TENANT.to_string(), write(&env, "bad.json", "email,password\n")),
        ("YAML that is not a mapping", "- a\n- b\n".to_string(), users.clone()),
        ("YAML that does not parse", "tenant: [unclosed\n".to_string(), users.clone()),
        ("a billion laughs", "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n".to_string(), users.clone()),
    ];
    for (case, tenant, users) in cases {
        let tenant = write(&env, "case.yaml", &tenant);
        let (code, stderr) =
            env.fails(&["import", "auth0", "--tenant", &tenant, "--users", &users]);
        assert_ne!(code, 0, "{case}");
        assert!(!stderr.is_empty(), "{case}: no message");
        assert_eq!(tenant_state(&env), before, "{case} changed the tenant");
    }
    // Nothing to import at all is a usage error.
    let (code, _) = env.fails(&["import", "auth0"]);
    assert_eq!(code, 2);
}

#[test]
fn with_json_the_report_is_one_json_document() {
    let env = Env::new(TESSERA);
    let tenant = write(
        &env,
        "tenant.yaml",
        "resourceServers:\n  - name: Json API\n    identifier: https://json.example/api\n    scopes:\n      - value: read:things\n        description: Read things\n",
    );
    let report: Value = env.json(&["import", "auth0", "--tenant", &tenant, "--dry-run"]);
    assert_eq!(
        report["created"]["resourceServers"],
        json!(["https://json.example/api (would be)"]),
        "{report}"
    );
    let report: Value = env.json(&["import", "auth0", "--tenant", &tenant]);
    assert_eq!(
        report["created"]["resourceServers"],
        json!(["https://json.example/api"])
    );
    let again: Value = env.json(&["import", "auth0", "--tenant", &tenant]);
    assert_eq!(
        again["skipped"]["resourceServers"],
        json!(["https://json.example/api: exists"])
    );
    assert!(again["created"].get("resourceServers").is_none(), "{again}");
}
