//! The admin commands against a real SQLite database, through the real binary.

use serde_json::{Value, json};
use tessera_testkit::process::{Env, assert_success};

use crate::TESSERA;

fn create_quickstart_api(env: &Env) -> Value {
    env.json(&[
        "apis",
        "create",
        "--name",
        "Quickstart API",
        "--identifier",
        "https://quickstarts/api",
        "--scopes",
        "read:messages,write:messages",
    ])
}

#[test]
fn apis_create_list_show_update_delete_in_auth0_shapes() {
    let env = Env::new(TESSERA);
    let api = create_quickstart_api(&env);
    let id = api["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 24, "Auth0-style 24-hex id: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        api,
        json!({
            "id": id,
            "name": "Quickstart API",
            "identifier": "https://quickstarts/api",
            "scopes": [{"value": "read:messages", "description": ""}, {"value": "write:messages", "description": ""}],
            "signing_alg": "RS256",
            "token_lifetime": 86400,
            "allow_offline_access": false,
            "token_lifetime_for_web": 86400,
            "token_dialect": "access_token",
            "enforce_policies": false,
            "skip_consent_for_verifiable_first_party_clients": true,
            "is_system": false,
        })
    );
    assert_eq!(env.json(&["apis", "list"]), json!([api]));
    assert_eq!(env.json(&["apis", "show", "https://quickstarts/api"]), api);
    assert_eq!(env.json(&["apis", "show", &id]), api);

    let updated = env.json(&[
        "apis",
        "update",
        "https://quickstarts/api",
        "--token-lifetime",
        "600",
        "--allow-offline-access",
        "true",
        "--scopes",
        "read:messages,admin",
    ]);
    assert_eq!(updated["token_lifetime"], 600);
    assert_eq!(updated["allow_offline_access"], true);
    assert_eq!(
        updated["scopes"],
        json!([{"value": "read:messages", "description": ""}, {"value": "admin", "description": ""}])
    );

    // DPoP as Auth0's proof_of_possession: required, then no longer.
    let required = env.json(&["apis", "update", &id, "--require-dpop", "true"]);
    assert_eq!(
        required["proof_of_possession"],
        json!({"mechanism": "dpop", "required": true})
    );
    let shown = env.ok(&["apis", "show", &id]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("DPoP required:") && l.ends_with(" yes")),
        "{shown}"
    );
    let relaxed = env.json(&["apis", "update", &id, "--require-dpop", "false"]);
    assert!(relaxed.get("proof_of_possession").is_none(), "{relaxed}");
    let (code, _) = env.fails(&["apis", "update", &id, "--require-dpop", "sometimes"]);
    assert_eq!(code, 2);
    let strict = env.json(&[
        "apis",
        "create",
        "--name",
        "Strict",
        "--identifier",
        "https://strict.example",
        "--require-dpop",
    ]);
    assert_eq!(strict["proof_of_possession"]["required"], true);
    env.ok(&["apis", "delete", "https://strict.example"]);

    let human = env.ok(&["apis", "list"]);
    assert!(human.starts_with("ID "), "{human}");
    assert!(human.contains("https://quickstarts/api"), "{human}");

    env.ok(&["apis", "delete", &id]);
    assert_eq!(env.json(&["apis", "list"]), json!([]));
    let (code, stderr) = env.fails(&["apis", "show", &id]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        format!("error: no API with id or identifier {id}")
    );
}

#[test]
fn addresses_with_markup_and_system_shaped_identifiers_are_refused() {
    let env = Env::new(TESSERA);
    for email in [
        "<script>alert(1)</script>@test.example",
        "\"a b\"@example.com",
        "bob@[192.0.2.1]",
    ] {
        let (code, stderr) = env.fails_with_stdin(
            &["users", "create", "--email", email, "--password-stdin"],
            Some("correct horse battery staple\n"),
        );
        assert_eq!(code, 1, "{email}");
        assert!(
            stderr.starts_with("error: invalid email address:"),
            "{email}: {stderr}"
        );
    }
    let (code, stderr) = env.fails_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "bob@example.com",
            "--name",
            "<img src=x onerror=alert(1)>",
            "--password-stdin",
        ],
        Some("correct horse battery staple\n"),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("must not contain < or >"), "{stderr}");
    assert_eq!(
        env.json(&["users", "list"]),
        json!([]),
        "nobody was written"
    );

    let (code, stderr) = env.fails(&[
        "apis",
        "create",
        "--name",
        "Shadow",
        "--identifier",
        "sys_0123456789abcdef0123",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("reserved for system APIs"), "{stderr}");
    assert_eq!(env.json(&["apis", "list"]), json!([]));
}

#[test]
fn apps_show_their_secret_only_when_it_is_made() {
    let env = Env::new(TESSERA);
    let m2m = env.json(&["apps", "create", "--name", "Backend", "--type", "m2m"]);
    let client_id = m2m["client_id"].as_str().unwrap().to_string();
    assert_eq!(client_id.len(), 32);
    assert!(client_id.bytes().all(|b| b.is_ascii_alphanumeric()));
    let secret = m2m["client_secret"]
        .as_str()
        .expect("create reveals the secret")
        .to_string();
    assert_eq!(secret.len(), 64);
    assert_eq!(m2m["app_type"], "non_interactive");
    assert_eq!(m2m["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(m2m["grant_types"], json!(["client_credentials"]));
    assert_eq!(m2m["oidc_conformant"], true);
    assert_eq!(m2m["is_first_party"], true);
    assert_eq!(
        m2m["jwt_configuration"],
        json!({"alg": "RS256", "lifetime_in_seconds": 36000})
    );

    let shown = env.json(&["apps", "show", &client_id]);
    assert!(
        shown.get("client_secret").is_none(),
        "show never reveals the secret: {shown}"
    );
    let listed = env.json(&["apps", "list"]);
    assert!(listed[0].get("client_secret").is_none());
    assert!(!env.ok(&["apps", "show", &client_id]).contains(&secret));
    assert!(!env.ok(&["apps", "list"]).contains(&secret));
    // The database holds a hash, never the secret.
    let database = std::fs::read(env.path().join("tessera.db")).unwrap();
    assert!(
        !database
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
    );

    let rotated = env.json(&["apps", "rotate-secret", &client_id]);
    let new_secret = rotated["client_secret"]
        .as_str()
        .expect("rotate-secret reveals the new secret");
    assert_ne!(new_secret, secret);

    let spa = env.json(&[
        "apps",
        "create",
        "--name",
        "Quickstart SPA",
        "--type",
        "spa",
        "--callbacks",
        "http://localhost:3000,http://localhost:3000/",
        "--origins",
        "http://localhost:3000",
        "--logout-urls",
        "http://localhost:3000",
    ]);
    assert!(
        spa.get("client_secret").is_none(),
        "public clients have no secret"
    );
    assert_eq!(spa["token_endpoint_auth_method"], "none");
    assert_eq!(
        spa["callbacks"],
        json!(["http://localhost:3000", "http://localhost:3000/"])
    );
    assert_eq!(spa["web_origins"], json!(["http://localhost:3000"]));
    assert_eq!(spa["allowed_logout_urls"], json!(["http://localhost:3000"]));
    assert_eq!(
        spa["grant_types"],
        json!(["authorization_code", "implicit", "refresh_token"])
    );
    let spa_id = spa["client_id"].as_str().unwrap();
    let (code, stderr) = env.fails(&["apps", "rotate-secret", spa_id]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("public clients have no client secret"),
        "{stderr}"
    );

    let updated = env.json(&[
        "apps",
        "update",
        spa_id,
        "--callbacks",
        "https://app.example/callback",
    ]);
    assert_eq!(
        updated["callbacks"],
        json!(["https://app.example/callback"])
    );
    assert!(updated.get("client_secret").is_none());
    assert_eq!(env.json(&["apps", "list"]).as_array().unwrap().len(), 2);
    env.ok(&["apps", "delete", spa_id]);
    assert_eq!(env.json(&["apps", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn grants_link_machine_apps_to_api_scopes() {
    let env = Env::new(TESSERA);
    create_quickstart_api(&env);
    let m2m = env.json(&["apps", "create", "--name", "Backend", "--type", "m2m"]);
    let client_id = m2m["client_id"].as_str().unwrap();

    let grant = env.json(&[
        "grants",
        "create",
        "--app",
        client_id,
        "--api",
        "https://quickstarts/api",
        "--scopes",
        "read:messages",
    ]);
    let id = grant["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("cgr_") && id.len() == 20, "{id}");
    assert_eq!(
        grant,
        json!({"id": id, "client_id": client_id, "audience": "https://quickstarts/api", "scope": ["read:messages"]})
    );
    assert_eq!(env.json(&["grants", "list"]), json!([grant]));
    assert_eq!(
        env.json(&["grants", "list", "--app", client_id]),
        json!([grant])
    );

    let (_, stderr) = env.fails(&[
        "grants",
        "create",
        "--app",
        client_id,
        "--api",
        "https://quickstarts/api",
        "--scopes",
        "read:messages",
    ]);
    assert!(stderr.contains("already has a grant"), "{stderr}");

    let (code, stderr) = env.fails(&["grants", "update", &id, "--scopes", "delete:everything"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("scope delete:everything is not defined by API https://quickstarts/api"),
        "{stderr}"
    );
    let updated = env.json(&[
        "grants",
        "update",
        &id,
        "--scopes",
        "read:messages,write:messages",
    ]);
    assert_eq!(updated["scope"], json!(["read:messages", "write:messages"]));

    let spa = env.json(&["apps", "create", "--name", "SPA", "--type", "spa"]);
    let (code, stderr) = env.fails(&[
        "grants",
        "create",
        "--app",
        spa["client_id"].as_str().unwrap(),
        "--api",
        "https://quickstarts/api",
        "--scopes",
        "read:messages",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr
            .contains("client grants are for machine-to-machine (m2m) or regular web applications"),
        "{stderr}"
    );

    env.ok(&["grants", "delete", &id]);
    assert_eq!(env.json(&["grants", "list"]), json!([]));
}

#[test]
fn users_are_created_from_a_password_on_stdin() {
    let env = Env::new(TESSERA);
    let output = env.ok_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "Alice@Example.com",
            "--password-stdin",
            "--name",
            "Alice",
            "--json",
        ],
        "correct horse battery staple\n",
    );
    let user: Value = serde_json::from_str(&output).unwrap();
    let user_id = user["user_id"].as_str().unwrap().to_string();
    assert!(
        user_id.starts_with("auth0|") && user_id.len() == 6 + 24,
        "{user_id}"
    );
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["name"], "Alice");
    assert_eq!(user["nickname"], "alice");
    assert_eq!(user["blocked"], false);
    assert_eq!(user["logins_count"], 0);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        user["identities"],
        json!([{
            "connection": "Username-Password-Authentication",
            "user_id": user_id.trim_start_matches("auth0|"),
            "provider": "auth0",
            "isSocial": false,
        }])
    );
    assert_eq!(env.json(&["users", "show", "alice@example.com"]), user);
    assert_eq!(env.json(&["users", "show", &user_id]), user);
    let database = std::fs::read(env.path().join("tessera.db")).unwrap();
    assert!(
        !database.windows(14).any(|w| w == b"correct horse "),
        "the password is never stored in clear"
    );

    let (code, stderr) = env.fails_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        Some("another good passphrase\n"),
    );
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "error: a user with email alice@example.com already exists"
    );

    let (code, stderr) = env.fails_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "error: password refused: Your password must be at least 8 characters long."
    );
    let (_, stderr) = env.fails_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        Some("password\n"),
    );
    assert!(stderr.contains("This password is too common"), "{stderr}");
    assert_eq!(
        env.json(&["users", "list"]).as_array().unwrap().len(),
        1,
        "refused users are not written"
    );

    let blocked = env.json(&["users", "block", "alice@example.com"]);
    assert_eq!(blocked["blocked"], true);
    let unblocked = env.json(&["users", "unblock", &user_id]);
    assert_eq!(unblocked["blocked"], false);

    env.ok_with_stdin(
        &["users", "set-password", &user_id, "--password-stdin"],
        "a brand new passphrase\r\n",
    );
    env.ok(&["users", "delete", &user_id]);
    assert_eq!(env.json(&["users", "list"]), json!([]));
}

#[test]
fn bad_input_is_refused_clearly_and_writes_nothing() {
    let env = Env::new(TESSERA);
    let (code, stderr) = env.fails(&["apps", "create", "--name", "X", "--type", "desktop"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "error: unknown application type \"desktop\": use spa, regular, native or m2m"
    );

    let (code, stderr) = env.fails(&[
        "apps",
        "create",
        "--name",
        "X",
        "--type",
        "spa",
        "--callbacks",
        "localhost:3000/cb",
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: invalid callback URL \"localhost:3000/cb\""),
        "{stderr}"
    );
    let (_, stderr) = env.fails(&[
        "apps",
        "create",
        "--name",
        "X",
        "--type",
        "spa",
        "--callbacks",
        "https://app.example/cb#x",
    ]);
    assert!(stderr.contains("must not have a #fragment"), "{stderr}");
    let (_, stderr) = env.fails(&[
        "apps",
        "create",
        "--name",
        "X",
        "--type",
        "spa",
        "--origins",
        "https://app.example/path",
    ]);
    assert!(stderr.contains("invalid web origin"), "{stderr}");
    let (_, stderr) = env.fails(&[
        "apps",
        "create",
        "--name",
        "X",
        "--type",
        "spa",
        "--grant-types",
        "client_credentials",
    ]);
    assert!(stderr.contains("cannot use client_credentials"), "{stderr}");
    assert_eq!(env.json(&["apps", "list"]), json!([]));

    // Missing required flags: clap's usage error, exit code 2.
    let (code, stderr) = env.fails(&["apis", "create", "--name", "No identifier"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--identifier"), "{stderr}");
    let (code, _) = env.fails(&["users", "create", "--email", "a@example.com"]);
    assert_eq!(
        code, 2,
        "--password-stdin is required: passwords are never arguments"
    );
    let (code, _) = env.fails(&["apis", "update", "https://quickstarts/api"]);
    assert_eq!(code, 2, "an update without changes is a usage error");

    let (_, stderr) = env.fails(&["apis", "create", "--name", "A", "--identifier", "has space"]);
    assert!(stderr.contains("invalid API identifier"), "{stderr}");
    let (_, stderr) = env.fails(&[
        "apis",
        "create",
        "--name",
        "A",
        "--identifier",
        "https://a",
        "--token-lifetime",
        "0",
    ]);
    assert!(stderr.contains("between 1 and 2592000"), "{stderr}");
    let (_, stderr) = env.fails(&[
        "apis",
        "create",
        "--name",
        "A",
        "--identifier",
        "https://a",
        "--signing-alg",
        "HS256",
    ]);
    assert!(stderr.contains("unsupported signing algorithm"), "{stderr}");
    let (_, stderr) = env.fails(&[
        "apis",
        "create",
        "--name",
        "A",
        "--identifier",
        "https://a",
        "--scopes",
        "read messages",
    ]);
    assert!(stderr.contains("invalid scope"), "{stderr}");
    assert_eq!(env.json(&["apis", "list"]), json!([]));

    create_quickstart_api(&env);
    let (code, stderr) = env.fails(&[
        "apis",
        "create",
        "--name",
        "Again",
        "--identifier",
        "https://quickstarts/api",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "error: an API with identifier https://quickstarts/api already exists"
    );

    let m2m = env.json(&["apps", "create", "--name", "Backend", "--type", "m2m"]);
    let (code, stderr) = env.fails(&[
        "grants",
        "create",
        "--app",
        m2m["client_id"].as_str().unwrap(),
        "--api",
        "https://unknown/api",
        "--scopes",
        "read:messages",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "error: no API with id or identifier https://unknown/api"
    );
    let (_, stderr) = env.fails(&[
        "grants",
        "create",
        "--app",
        "nope",
        "--api",
        "https://quickstarts/api",
        "--scopes",
        "read:messages",
    ]);
    assert_eq!(stderr.trim(), "error: no application with client_id nope");
    assert_eq!(env.json(&["grants", "list"]), json!([]));

    let (code, stderr) = env.fails(&["apis", "list", "--database-url", "mysql://nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid database URL"), "{stderr}");
}

#[test]
fn config_file_env_and_flags_are_layered() {
    let env = Env::new(TESSERA);
    let from_file = env.path().join("from-file.db");
    let from_env = env.path().join("from-env.db");
    let from_flag = env.path().join("from-flag.db");
    std::fs::write(
        env.path().join("tessera.toml"),
        format!("database_url = \"sqlite://{}\"\n", from_file.display()),
    )
    .unwrap();

    // ./tessera.toml is read when it exists…
    let output = env
        .command()
        .env_remove("TESSERA_DATABASE_URL")
        .args(["apis", "list"])
        .output()
        .unwrap();
    assert_success(&["apis", "list"], &output);
    assert!(from_file.exists());
    // …the environment overrides it…
    let output = env
        .command()
        .env(
            "TESSERA_DATABASE_URL",
            format!("sqlite://{}", from_env.display()),
        )
        .args(["apis", "list"])
        .output()
        .unwrap();
    assert_success(&["apis", "list"], &output);
    assert!(from_env.exists());
    // …and flags override both.
    let flag = format!("sqlite://{}", from_flag.display());
    let output = env
        .command()
        .args(["apis", "list", "--database-url", &flag])
        .output()
        .unwrap();
    assert_success(&["apis", "list"], &output);
    assert!(from_flag.exists());

    // A typo in the configuration is reported, not ignored.
    std::fs::write(
        env.path().join("tessera.toml"),
        "databse_url = \"sqlite://x.db\"\n",
    )
    .unwrap();
    let output = env.command().args(["apis", "list"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("databse_url"));
}

#[test]
fn refresh_token_settings_of_an_application() {
    let env = Env::new(TESSERA);
    let app = env.json(&[
        "apps",
        "create",
        "--name",
        "spa",
        "--type",
        "spa",
        "--callbacks",
        "http://localhost:3000",
    ]);
    assert_eq!(app["refresh_token"]["rotation_type"], "rotating");
    assert_eq!(app["refresh_token"]["token_lifetime"], 2_592_000);
    assert_eq!(app["refresh_token"]["idle_token_lifetime"], 1_296_000);
    let id = app["client_id"].as_str().unwrap();
    let updated = env.json(&[
        "apps",
        "update",
        id,
        "--refresh-idle-lifetime",
        "600",
        "--refresh-reuse-interval",
        "2",
    ]);
    assert_eq!(updated["refresh_token"]["idle_token_lifetime"], 600);
    assert_eq!(updated["refresh_token"]["leeway"], 2);
    assert_eq!(
        updated["refresh_token"]["token_lifetime"], 2_592_000,
        "unchanged"
    );
    let (code, stderr) = env.fails(&["apps", "update", id, "--refresh-reuse-interval", "3600"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        env.json(&["apps", "show", id])["refresh_token"]["leeway"],
        2,
        "nothing written"
    );
}

#[test]
fn scope_descriptions_are_set_on_create_changed_on_update_and_validated() {
    let env = Env::new(TESSERA);
    let api = env.json(&[
        "apis",
        "create",
        "--name",
        "Messages",
        "--identifier",
        "https://messages.example",
        "--scopes",
        "read:messages,write:messages",
        "--scope-description",
        "read:messages=Read your messages",
    ]);
    assert_eq!(
        api["scopes"],
        json!([
            {"value": "read:messages", "description": "Read your messages"},
            {"value": "write:messages", "description": ""},
        ])
    );

    // One description changes; the other scopes and descriptions stay as they were.
    let api = env.json(&[
        "apis",
        "update",
        "https://messages.example",
        "--scope-description",
        "write:messages=Send messages as you",
    ]);
    assert_eq!(
        api["scopes"],
        json!([
            {"value": "read:messages", "description": "Read your messages"},
            {"value": "write:messages", "description": "Send messages as you"},
        ])
    );
    // Replacing the list keeps the descriptions of the scopes that stay, and may describe new ones.
    let api = env.json(&[
        "apis",
        "update",
        "https://messages.example",
        "--scopes",
        "read:messages,delete:messages",
        "--scope-description",
        "delete:messages=Delete your messages",
    ]);
    assert_eq!(
        api["scopes"],
        json!([
            {"value": "read:messages", "description": "Read your messages"},
            {"value": "delete:messages", "description": "Delete your messages"},
        ])
    );

    // Bad input: a clear message, and nothing changes.
    let before = env.json(&["apis", "show", "https://messages.example"]);
    for (args, message) in [
        (
            vec!["--scope-description", "read:messages"],
            "SCOPE=DESCRIPTION",
        ),
        (
            vec!["--scope-description", "admin=Everything"],
            "not one of the API's scopes",
        ),
        (
            vec!["--scope-description", "read:messages=line\nbreak"],
            "control characters",
        ),
    ] {
        let mut full = vec!["apis", "update", "https://messages.example"];
        full.extend(args);
        let (code, stderr) = env.fails(&full);
        assert_ne!(code, 0);
        assert!(stderr.contains(message), "{stderr}");
    }
    let long = format!("read:messages={}", "x".repeat(501));
    let (_, stderr) = env.fails(&[
        "apis",
        "update",
        "https://messages.example",
        "--scope-description",
        &long,
    ]);
    assert!(stderr.contains("too long"), "{stderr}");
    let (_, stderr) = env.fails(&[
        "apis",
        "create",
        "--name",
        "Other",
        "--identifier",
        "https://other.example",
        "--scope-description",
        "read=Read",
    ]);
    assert!(stderr.contains("not one of the API's scopes"), "{stderr}");
    assert_eq!(
        env.json(&["apis", "show", "https://messages.example"]),
        before
    );
    assert_eq!(env.json(&["apis", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn scopes_file_takes_auth0_json_and_shows_in_text() {
    let env = Env::new(TESSERA);
    let file = env.path().join("scopes.json");
    std::fs::write(
        &file,
        r#"[
            {"value": "read:messages", "description": "Read your messages"},
            {"value": "write:messages"},
            {"value": "a=b", "description": null}
        ]"#,
    )
    .unwrap();
    let api = env.json(&[
        "apis",
        "create",
        "--name",
        "Messages",
        "--identifier",
        "https://messages.example",
        "--scopes-file",
        file.to_str().unwrap(),
        "--scope-description",
        "a=b=Scopes may hold '=' too",
    ]);
    assert_eq!(
        api["scopes"],
        json!([
            {"value": "read:messages", "description": "Read your messages"},
            {"value": "write:messages", "description": ""},
            {"value": "a=b", "description": "Scopes may hold '=' too"},
        ])
    );
    let text = env.ok(&["apis", "show", "https://messages.example"]);
    assert!(
        text.contains("read:messages (Read your messages), write:messages, a=b (Scopes"),
        "{text}"
    );

    // Another API's JSON (as `apis show --json` or Auth0 prints it) copies its scopes; from
    // stdin; on update the file replaces the list, descriptions included.
    let other = env.json(&[
        "apis",
        "create",
        "--name",
        "Other",
        "--identifier",
        "https://other.example",
        "--scopes",
        "read:messages",
    ]);
    assert_eq!(
        other["scopes"],
        json!([{"value": "read:messages", "description": ""}])
    );
    let output = env.ok_with_stdin(
        &[
            "apis",
            "update",
            "https://other.example",
            "--scopes-file",
            "-",
            "--json",
        ],
        &api.to_string(),
    );
    let other: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(other["scopes"], api["scopes"]);
    assert_eq!(other["name"], "Other", "only the scopes come from the file");

    // Bad files: a clear message, and nothing changes.
    let before = env.json(&["apis", "list"]);
    for (content, message) in [
        ("{", "is not valid JSON"),
        (r#"{"name": "x"}"#, "does not hold scopes"),
        (r#"["read"]"#, "each scope is {\"value\""),
        (
            r#"[{"value": "read", "desc": "Read"}]"#,
            "unknown field `desc`",
        ),
        (
            r#"[{"value": "read"}, {"value": "read"}]"#,
            "lists the scope \"read\" twice",
        ),
        (
            r#"[{"value": "read messages"}]"#,
            "invalid scope \"read messages\"",
        ),
        (
            r#"[{"value": "read", "description": "two\nlines"}]"#,
            "the description of \"read\" contains control characters",
        ),
    ] {
        std::fs::write(&file, content).unwrap();
        let (code, stderr) = env.fails(&[
            "apis",
            "update",
            "https://messages.example",
            "--scopes-file",
            file.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{content}: {stderr}");
        assert!(stderr.contains(message), "{content}: {stderr}");
    }
    let (code, stderr) = env.fails(&[
        "apis",
        "update",
        "https://messages.example",
        "--scopes-file",
        "missing.json",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot read missing.json"), "{stderr}");
    let (code, stderr) = env.fails(&[
        "apis",
        "create",
        "--name",
        "Third",
        "--identifier",
        "https://third.example",
        "--scopes",
        "read",
        "--scopes-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        code, 2,
        "--scopes and --scopes-file exclude each other: {stderr}"
    );
    assert_eq!(env.json(&["apis", "list"]), before);
}

#[test]
fn lists_print_one_page_at_a_time() {
    let env = Env::new(TESSERA);
    for n in 0..3 {
        env.json(&[
            "apis",
            "create",
            "--name",
            &format!("API {n}"),
            "--identifier",
            &format!("https://api{n}.example"),
        ]);
    }
    let identifiers = |list: Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|api| api["identifier"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(identifiers(env.json(&["apis", "list"])).len(), 3);
    let first = identifiers(env.json(&["apis", "list", "--per-page", "2"]));
    let second = identifiers(env.json(&["apis", "list", "--per-page", "2", "--page", "1"]));
    assert_eq!((first.len(), second.len()), (2, 1));
    assert!(!first.contains(&second[0]));
    let human = env.ok(&["apis", "list", "--per-page", "2"]);
    assert!(human.contains("(1–2 of 3)"), "{human}");
    assert!(human.contains("Next page: --page 1"), "{human}");
    let last = env.ok(&["apis", "list", "--per-page", "2", "--page", "1"]);
    assert!(
        last.contains("(3–3 of 3)") && !last.contains("Next page"),
        "{last}"
    );
    let past = env.ok(&["apis", "list", "--page", "9"]);
    assert!(past.contains("past the end: 3 in all"), "{past}");
    assert_eq!(env.json(&["users", "list", "--page", "9"]), json!([]));
    for bad in [
        ["--per-page", "0"],
        ["--per-page", "1001"],
        ["--page", "-1"],
    ] {
        let (code, _) = env.fails(&["users", "list", bad[0], bad[1]]);
        assert_eq!(code, 2, "{bad:?}");
    }
    let help = env.ok(&["users", "list", "--help"]);
    assert!(
        help.contains("--per-page") && help.contains("a page at a time"),
        "{help}"
    );
}
