//! `tessera connections …` through the real binary: the operations of
//! `/api/v2/connections` with their refusals, the secret from stdin only (sealed, never
//! printed), enabling applications, deleting.

use serde_json::Value;
use tessera_testkit::process::Env;

use crate::TESSERA;

const SECRET: &str = "cli-upstream-secret-9c41d7";
const DISCOVERY: &str = "https://idp.example.com/.well-known/openid-configuration";

fn json_with_stdin(env: &Env, args: &[&str], stdin: &str) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&env.ok_with_stdin(&args, stdin)).expect("--json prints JSON")
}

#[test]
fn connections_are_created_listed_changed_enabled_and_deleted_from_the_cli() {
    let env = Env::new(TESSERA);
    let app = env.json(&["apps", "create", "--name", "Web", "--type", "spa"]);
    let client_id = app["client_id"].as_str().unwrap().to_string();

    let created = json_with_stdin(
        &env,
        &[
            "connections",
            "create",
            "--name",
            "corp",
            "--strategy",
            "oidc",
            "--display-name",
            "Corp SSO",
            "--discovery-url",
            DISCOVERY,
            "--client-id",
            "abc",
            "--client-secret-stdin",
            "--scopes",
            "openid,profile",
            "--enable-for",
            &client_id,
        ],
        &format!("{SECRET}\n"),
    );
    assert_eq!(created["name"], "corp");
    assert_eq!(created["strategy"], "oidc");
    assert_eq!(created["options"]["scopes"], "openid profile");
    assert!(!created.to_string().contains(SECRET), "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("con_"), "{id}");

    // With the issuer configured, `get` says what to register at the provider.
    let shown = env.ok(&["connections", "get", "corp"]);
    assert!(
        !shown.contains("login/callback"),
        "no issuer, no URLs: {shown}"
    );
    let output = env
        .command()
        .args(["connections", "get", "corp"])
        .env("TESSERA_ISSUER", "https://auth.example.com")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains("https://auth.example.com/login/callback")
            && shown.contains("https://auth.example.com/login/backchannel-logout/corp"),
        "{shown}"
    );

    // The same refusals as /api/v2, with its texts; nothing created.
    let (code, error) = env.fails_with_stdin(
        &[
            "connections",
            "create",
            "--name",
            "bad name",
            "--strategy",
            "oidc",
            "--discovery-url",
            DISCOVERY,
            "--client-id",
            "abc",
            "--client-secret-stdin",
        ],
        Some("x\n"),
    );
    assert_eq!(code, 1);
    assert!(error.contains("the connection name must be"), "{error}");
    let (_, error) = env.fails(&[
        "connections",
        "create",
        "--name",
        "nosecret",
        "--strategy",
        "github",
        "--client-id",
        "abc",
    ]);
    assert!(
        error.contains("options.client_secret is required"),
        "{error}"
    );
    let (_, error) = env.fails_with_stdin(
        &[
            "connections",
            "create",
            "--name",
            "corp",
            "--strategy",
            "oidc",
            "--discovery-url",
            DISCOVERY,
            "--client-id",
            "abc",
            "--client-secret-stdin",
        ],
        Some("x\n"),
    );
    assert!(error.contains("already exists"), "{error}");
    // A database connection is made from the CLI too; its options are Tessera's.
    let made = env.ok(&[
        "connections",
        "create",
        "--name",
        "db2",
        "--strategy",
        "auth0",
    ]);
    assert!(made.contains("Created connection db2"), "{made}");
    let listed = env.json(&["connections", "list", "--strategy", "auth0"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    env.ok(&["connections", "delete", "db2"]);
    let (_, error) = env.fails(&[
        "connections",
        "create",
        "--name",
        "db3",
        "--strategy",
        "auth0",
        "--client-id",
        "abc",
    ]);
    assert!(
        error.contains("not an option of a database connection"),
        "{error}"
    );
    let (_, error) = env.fails(&[
        "connections",
        "create",
        "--name",
        "j",
        "--strategy",
        "oauth2",
        "--options-json",
        r#"{"client_secret": "in-argv"}"#,
    ]);
    assert!(error.contains("--client-secret-stdin"), "{error}");
    assert!(!error.contains("in-argv"), "{error}");

    // Listed, filtered, paged; shown by id or name.
    let listed = env.json(&["connections", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let listed = env.json(&["connections", "list", "--strategy", "oidc"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "corp");
    let listed = env.json(&["connections", "list", "--per-page", "1", "--page", "1"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let table = env.ok(&["connections", "list"]);
    assert!(table.contains("Username-Password-Authentication") && table.contains("corp"));
    assert_eq!(env.json(&["connections", "get", "corp"])["id"], id.as_str());
    assert_eq!(env.json(&["connections", "get", &id])["name"], "corp");
    let (_, error) = env.fails(&["connections", "get", "nope"]);
    assert!(
        error.contains("no connection with id or name nope"),
        "{error}"
    );

    // Changed: options merged into the current ones; the secret kept.
    let updated = env.json(&[
        "connections",
        "update",
        "corp",
        "--display-name",
        "Corp",
        "--scopes",
        "openid email",
        "--show-as-button",
        "false",
        "--domain-connection",
        "true",
    ]);
    assert_eq!(updated["display_name"], "Corp");
    assert_eq!(updated["is_domain_connection"], true);
    assert_eq!(updated["options"]["scopes"], "openid email");
    assert_eq!(updated["options"]["discovery_url"], DISCOVERY);
    assert_eq!(updated["show_as_button"], false);
    let (_, error) = env.fails(&["connections", "update", "corp", "--scopes", "profile"]);
    assert!(error.contains("openid"), "{error}");
    // The default database connection: what Tessera enforces does not change.
    let (_, error) = env.fails(&[
        "connections",
        "update",
        "Username-Password-Authentication",
        "--options-json",
        r#"{"requires_username": true}"#,
    ]);
    assert!(error.contains("requires_username"), "{error}");

    // Applications.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime
        .block_on(tessera_store::Store::connect(&env.database_url()))
        .unwrap();
    let enabled = |store: &tessera_store::Store| {
        runtime
            .block_on(store.connections_of_client(&client_id))
            .unwrap()
            .len()
    };
    // corp and the default database connection, as every new application.
    assert_eq!(enabled(&store), 2);
    env.ok(&["connections", "disable", "corp", "--app", &client_id]);
    assert_eq!(enabled(&store), 1);
    env.ok(&["connections", "enable", &id, "--app", &client_id]);
    assert_eq!(enabled(&store), 2);
    let (_, error) = env.fails(&["connections", "enable", "corp", "--app", "nope"]);
    assert!(error.contains("The client does not exist"), "{error}");
    // The database connection too, but never for Tessera's own dashboard.
    env.ok(&[
        "connections",
        "disable",
        "Username-Password-Authentication",
        "--app",
        &client_id,
    ]);
    assert_eq!(enabled(&store), 1);
    let (_, error) = env.fails(&[
        "connections",
        "disable",
        "Username-Password-Authentication",
        "--app",
        tessera_core::system::DASHBOARD_CLIENT_ID,
    ]);
    assert!(error.contains("cannot be disabled"), "{error}");

    // The secret is sealed in the database.
    let database = std::fs::read(env.path().join("tessera.db")).unwrap();
    let wal = std::fs::read(env.path().join("tessera.db-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    }
    let sealed = runtime
        .block_on(store.find_connection(&id))
        .unwrap()
        .unwrap()
        .sealed_secret;
    assert!(sealed.is_some());

    // Deleted; the database connection cannot be.
    let (_, error) = env.fails(&["connections", "delete", "Username-Password-Authentication"]);
    assert!(error.contains("cannot be deleted"), "{error}");
    env.ok(&["connections", "delete", "corp"]);
    let (_, error) = env.fails(&["connections", "get", "corp"]);
    assert!(error.contains("no connection"), "{error}");
}

#[test]
fn a_user_without_an_email_shows_an_empty_email_in_the_cli() {
    let env = Env::new(TESSERA);
    env.ok(&["users", "list"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime
        .block_on(tessera_store::Store::connect(&env.database_url()))
        .unwrap();
    let profile = tessera_store::FederatedProfile {
        nickname: Some("octocat".into()),
        ..Default::default()
    };
    runtime
        .block_on(store.upsert_federated_user("github|4242", "github", &profile, 1))
        .unwrap();

    // USER ID, EMAIL, VERIFIED, STATUS: the id alone on its line, the cells empty.
    let listed = env.ok(&["users", "list"]);
    let line = listed
        .lines()
        .find(|line| line.starts_with("github|4242"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(line.trim_end(), "github|4242", "{listed}");
    let shown = env.ok(&["users", "show", "github|4242"]);
    let email = shown
        .lines()
        .find(|line| line.starts_with("email:"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(!email.contains('@'), "{shown}");
    let json = env.json(&["users", "show", "github|4242"]);
    assert_eq!(json["user_id"], "github|4242");
    assert!(json.get("email").is_none(), "{json}");
    assert!(json.get("email_verified").is_none(), "{json}");
    let deleted = env.ok(&["users", "delete", "github|4242"]);
    assert!(deleted.contains("github|4242"), "{deleted}");
    assert!(
        runtime
            .block_on(store.find_user("github|4242"))
            .unwrap()
            .is_none()
    );
}
