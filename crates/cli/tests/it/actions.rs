//! `tessera actions …` through the real binary: create from a code file with secrets,
//! show and list without secret values, deploy, bind in order, refuse what cannot run,
//! delete a bound action only with --force; the secret sealed in the database.

use serde_json::Value;
use tessera_jose::MasterKey;
use tessera_server::actions_admin;
use tessera_store::Store;
use tessera_testkit::process::Env;

use crate::TESSERA;

const SECRET: &str = "cli-secret-value-5b7e21";

fn write(env: &Env, name: &str, text: &str) -> String {
    let path = env.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn actions_are_created_deployed_bound_and_deleted_from_the_cli() {
    let env = Env::new(TESSERA);
    let code = write(
        &env,
        "roles.js",
        "exports.onExecutePostLogin = async (event, api) => {\n  api.idToken.setCustomClaim('https://example.com/roles', event.authorization.roles);\n};\n",
    );
    let created = env.json(&[
        "actions",
        "create",
        "roles",
        "--trigger",
        "post-login",
        "--code",
        &code,
        "--secret",
        &format!("API_KEY={SECRET}"),
    ]);
    assert_eq!(created["status"], "built");
    assert_eq!(created["supported_triggers"][0]["id"], "post-login");
    assert_eq!(created["secrets"][0]["name"], "API_KEY");
    let id = created["id"].as_str().unwrap().to_string();

    let shown = env.ok(&["actions", "show", "roles"]);
    assert!(
        shown.contains("API_KEY") && shown.contains("setCustomClaim"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET), "{shown}");

    // Refused: another trigger, a duplicate name, code over 100 kB, binding a draft.
    let (_, error) = env.fails(&[
        "actions",
        "create",
        "x",
        "--trigger",
        "send-phone-message",
        "--code",
        &code,
    ]);
    assert!(error.contains("post-login"), "{error}");
    let (_, error) = env.fails(&[
        "actions",
        "create",
        "roles",
        "--trigger",
        "post-login",
        "--code",
        &code,
    ]);
    assert!(error.contains("already exists"), "{error}");
    let huge = write(&env, "huge.js", &"x".repeat(100 * 1024 + 1));
    let (_, error) = env.fails(&[
        "actions",
        "create",
        "huge",
        "--trigger",
        "post-login",
        "--code",
        &huge,
    ]);
    assert!(error.contains("at most"), "{error}");
    let (_, error) = env.fails(&["actions", "bind", "post-login", "roles"]);
    assert!(error.contains("not deployed"), "{error}");

    let version = env.json(&["actions", "deploy", "roles"]);
    assert_eq!(version["number"], 1);
    let updated = env.json(&[
        "actions",
        "update",
        "roles",
        "--secret",
        "OTHER=another-value",
    ]);
    let names: Vec<&str> = updated["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["API_KEY", "OTHER"]);
    let machine = write(
        &env,
        "m.js",
        "exports.onExecuteCredentialsExchange = async () => {};",
    );
    env.ok(&[
        "actions",
        "create",
        "machines",
        "--trigger",
        "credentials-exchange",
        "--code",
        &machine,
    ]);
    env.ok(&["actions", "deploy", "machines"]);
    let (_, error) = env.fails(&["actions", "bind", "post-login", "roles", "machines"]);
    assert!(error.contains("credentials-exchange"), "{error}");

    let bound = env.ok(&["actions", "bind", "post-login", "roles"]);
    assert_eq!(bound.trim(), "post-login runs, in order: roles.");
    let listed = env.json(&["actions", "list", "--trigger", "post-login"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["deployed_version"]["number"], 1);
    assert!(!listed.to_string().contains(SECRET));

    // The secret is sealed in the database, bound to the action, and opens with the key.
    let database = std::fs::read(env.path().join("tessera.db")).unwrap();
    let wal = std::fs::read(env.path().join("tessera.db-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    }
    let key_text = std::fs::read_to_string(env.path().join("master.key")).unwrap();
    let master_key = MasterKey::parse(key_text.trim()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let program = runtime.block_on(async {
        let store = Store::connect(&env.database_url()).await.unwrap();
        store.trigger_program("post-login").await.unwrap()
    });
    assert_eq!(program.len(), 1);
    let opened = actions_admin::open_secrets_with(&master_key, &id, &program[0].secrets);
    assert_eq!(opened["API_KEY"], SECRET);

    let (_, error) = env.fails(&["actions", "delete", "roles"]);
    assert!(error.contains("--force"), "{error}");
    env.ok(&["actions", "delete", "roles", "--force"]);
    let listed: Value = env.json(&["actions", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        env.ok(&["actions", "bind", "credentials-exchange"]).trim(),
        "credentials-exchange runs no action."
    );
}

#[test]
fn a_test_run_says_what_a_denial_ends() {
    let env = Env::new(TESSERA);
    let code = write(
        &env,
        "risky.js",
        "exports.onExecutePostLogin = async (event, api) => {\n  if (event.session.device.last_ip !== event.request.ip) api.session.revoke('moved', { preserveRefreshTokens: true });\n};\n",
    );
    env.json(&[
        "actions",
        "create",
        "risky",
        "--trigger",
        "post-login",
        "--code",
        &code,
    ]);
    let moved = write(
        &env,
        "moved.json",
        r#"{"session": {"id": "s1", "device": {"last_ip": "10.0.0.1"}}, "request": {"ip": "192.0.2.7"}}"#,
    );
    let tested = env.json(&["actions", "test", "risky", "--event", &moved]);
    assert_eq!(tested["denied"]["reason"], "moved", "{tested}");
    assert_eq!(
        tested["denied"]["session_revoked"]["preserve_refresh_tokens"], true,
        "{tested}"
    );
    // From the address the session was last used at: nothing denied.
    let none = write(
        &env,
        "none.json",
        r#"{"session": {"device": {"last_ip": "192.0.2.7"}}, "request": {"ip": "192.0.2.7"}}"#,
    );
    let tested = env.json(&["actions", "test", "risky", "--event", &none]);
    assert!(tested["denied"].is_null(), "{tested}");
    assert!(tested.get("session_expires_at").is_none(), "{tested}");
}

#[test]
fn a_test_run_says_which_ends_and_session_metadata_an_action_asked() {
    let env = Env::new(TESSERA);
    let code = write(
        &env,
        "short.js",
        "exports.onExecutePostLogin = async (event, api) => {\n  api.session.setExpiresAt(1800000000000);\n  api.session.setIdleExpiresAt(1700000000000);\n  api.refreshToken.setExpiresAt(1900000000000);\n  api.session.setMetadata('device', event.session.metadata.seen + '!');\n  api.refreshToken.setMetadata('exchanges', String(Number(event.refresh_token.metadata.exchanges) + 1));\n};\n",
    );
    env.json(&[
        "actions",
        "create",
        "short",
        "--trigger",
        "post-login",
        "--code",
        &code,
    ]);
    let event = write(
        &env,
        "event.json",
        r#"{"session": {"id": "s1", "metadata": {"seen": "laptop"}}, "refresh_token": {"id": "rt", "metadata": {"exchanges": "4"}}}"#,
    );
    let tested = env.json(&["actions", "test", "short", "--event", &event]);
    assert_eq!(
        tested["session_metadata"],
        serde_json::json!({"seen": "laptop", "device": "laptop!"}),
        "{tested}"
    );
    assert_eq!(
        tested["refresh_token_metadata"],
        serde_json::json!({"exchanges": "5"}),
        "{tested}"
    );
    assert_eq!(
        tested["session_expires_at"], 1_800_000_000_000_i64,
        "{tested}"
    );
    assert_eq!(
        tested["session_idle_expires_at"], 1_700_000_000_000_i64,
        "{tested}"
    );
    assert_eq!(
        tested["refresh_token_expires_at"], 1_900_000_000_000_i64,
        "{tested}"
    );
    assert!(
        tested.get("refresh_token_idle_expires_at").is_none(),
        "{tested}"
    );
}
