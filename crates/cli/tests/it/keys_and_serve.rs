//! Signing keys through the CLI, and a running `tessera serve` seeing what the CLI changes
//! and answering, in its Management API, what the CLI's `--json` prints.

use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_testkit::client_credentials;
use tessera_testkit::process::{Env, Running};

use crate::TESSERA;

fn kid(keys: &Value, alg: &str, state: &str) -> String {
    let matching: Vec<&Value> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg && k["state"] == state)
        .collect();
    assert_eq!(matching.len(), 1, "exactly one {alg} {state} key in {keys}");
    matching[0]["kid"].as_str().unwrap().to_string()
}

#[test]
fn keys_list_and_rotate() {
    let env = Env::new(TESSERA);
    let keys = env.json(&["keys", "list"]);
    let current = kid(&keys, "RS256", "current");
    let next = kid(&keys, "RS256", "next");
    assert_ne!(current, next);
    assert_eq!(
        keys.as_array()
            .unwrap()
            .iter()
            .filter(|k| k["alg"] == "RS256")
            .count(),
        2
    );
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["state"] != "previous")
    );

    // The master key was created beside the database, readable by its owner only.
    let master = env.path().join("master.key");
    assert!(master.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&master).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // A second listing changes nothing.
    assert_eq!(env.json(&["keys", "list"]), keys);

    let rotation = env.json(&["keys", "rotate"]);
    assert_eq!(rotation["alg"], "RS256");
    assert_eq!(rotation["current"], next.as_str(), "next became current");
    assert_eq!(
        rotation["previous"],
        current.as_str(),
        "current became previous"
    );
    let new_next = rotation["next"].as_str().unwrap().to_string();
    assert!(new_next != current && new_next != next);

    let keys = env.json(&["keys", "list"]);
    assert_eq!(kid(&keys, "RS256", "current"), next);
    assert_eq!(kid(&keys, "RS256", "next"), new_next);
    assert_eq!(kid(&keys, "RS256", "previous"), current);

    // Rotating again retires the oldest key.
    env.json(&["keys", "rotate"]);
    let keys = env.json(&["keys", "list"]);
    assert_eq!(kid(&keys, "RS256", "retired"), current);
    assert_eq!(kid(&keys, "RS256", "previous"), next);

    let human = env.ok(&["keys", "list"]);
    assert!(human.starts_with("KID"), "{human}");

    let (code, stderr) = env.fails(&["keys", "rotate", "--alg", "HS256"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unsupported signing algorithm"), "{stderr}");
}

#[test]
fn a_wrong_master_key_is_refused_before_anything_changes() {
    let env = Env::new(TESSERA);
    let before = env.json(&["keys", "list"]);
    let other_key = "ab".repeat(32);
    let output = env
        .command()
        .env("TESSERA_MASTER_KEY", &other_key)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the master key is not the one this database was created with"),
        "{stderr}"
    );
    assert!(!stderr.contains(&other_key), "the key is never printed");
    assert_eq!(env.json(&["keys", "list"]), before);

    // Losing master.key is reported, not silently replaced by a new key.
    std::fs::remove_file(env.path().join("master.key")).unwrap();
    let (code, stderr) = env.fails(&["keys", "rotate"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the database has signing keys but there is no master key"),
        "{stderr}"
    );
    assert!(!env.path().join("master.key").exists());
    // Listing needs no secret.
    assert_eq!(env.json(&["keys", "list"]), before);
}

fn serve(env: &Env) -> (Running, String) {
    let mut command = env.command();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(command);
    let base = server.wait_listening();
    (server, base)
}

async fn jwks_kids(client: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks: Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("the JWKS is JSON");
    jwks["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The server polls the key set every 500 ms: a rotation made by the CLI is published
/// without a restart (waited for in bounded polls; how fast is not asserted).
#[tokio::test]
async fn a_running_server_publishes_a_cli_key_rotation_without_a_restart() {
    let env = Env::new(TESSERA);
    let (server, base) = serve(&env);
    let client = reqwest::Client::new();

    let rotation = env.json(&["keys", "rotate"]);
    let new_next = rotation["next"].as_str().unwrap().to_string();
    let mut polls = 0;
    while !jwks_kids(&client, &base).await.contains(&new_next) {
        polls += 1;
        assert!(
            polls < 100,
            "the JWKS at {base} never published the new key {new_next}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
}

#[tokio::test]
async fn serve_reads_its_settings_and_stops_gracefully_on_sigterm() {
    let env = Env::new(TESSERA);
    std::fs::write(
        env.path().join("tessera.toml"),
        "issuer = \"https://auth.example.com\"\nlisten = \"127.0.0.1:0\"\n\
         trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let mut command = env.command();
    command.arg("serve");
    let started = Instant::now();
    let mut server = Running::spawn(command);
    let lines = server.wait_for("listening on http://", Duration::from_secs(10));
    let line = lines.last().unwrap();
    assert!(
        line.contains("(issuer https://auth.example.com/)"),
        "{line}"
    );
    eprintln!(
        "serve was ready after {:?} (first start: creates the database and keys)",
        started.elapsed()
    );

    let base = server.base_url_in(line);
    let discovery: Value = reqwest::get(format!("{base}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], "https://auth.example.com/");
    // An audit event recorded just before the stop (still gathering to be written).
    let refused = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody-at-all"),
            ("client_secret", "wrong"),
            ("audience", "https://api.example.com/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let status = server.stop_with_sigterm(Duration::from_secs(10));
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    let store = tessera_store::Store::connect(&env.database_url())
        .await
        .unwrap();
    let failures = store.logs_after(None, 10, Some("feccft")).await.unwrap();
    assert_eq!(
        failures
            .iter()
            .map(|entry| entry.event.client_id.as_deref())
            .collect::<Vec<_>>(),
        [Some("nobody-at-all")],
        "the stopped server wrote the events it held"
    );
}

#[test]
fn serve_refuses_a_bad_issuer_and_a_busy_port() {
    let env = Env::new(TESSERA);
    let (code, stderr) = env.fails(&["serve", "--listen", "127.0.0.1:0", "--issuer", "not a url"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid issuer URL"), "{stderr}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let (code, stderr) = env.fails(&["serve", "--listen", &address]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn apps_apis_and_grants_made_by_the_cli_are_live_without_a_restart() {
    const AUDIENCE: &str = "https://quickstarts/api";
    let env = Env::new(TESSERA);
    let (server, base) = serve(&env);
    let http = reqwest::Client::new();

    env.json(&[
        "apis",
        "create",
        "--name",
        "Quickstart API",
        "--identifier",
        AUDIENCE,
        "--scopes",
        "read:messages,write:messages",
    ]);
    let app = env.json(&["apps", "create", "--name", "Backend", "--type", "m2m"]);
    let client_id = app["client_id"].as_str().unwrap().to_string();
    let secret = app["client_secret"].as_str().unwrap().to_string();
    let grant = env.json(&[
        "grants",
        "create",
        "--app",
        &client_id,
        "--api",
        AUDIENCE,
        "--scopes",
        "read:messages",
    ]);

    let (status, body) = client_credentials(&http, &base, &client_id, &secret, AUDIENCE).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read:messages");

    let rotated = env.json(&["apps", "rotate-secret", &client_id]);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    // The server caches machine-to-machine lookups for half a second: the promise is
    // "seen within a second".
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, body) = client_credentials(&http, &base, &client_id, &secret, AUDIENCE).await;
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old secret still works after 2 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = client_credentials(&http, &base, &client_id, new_secret, AUDIENCE).await;
    assert_eq!(status, 200);

    env.ok(&["grants", "delete", grant["id"].as_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, body) =
            client_credentials(&http, &base, &client_id, new_secret, AUDIENCE).await;
        if status != 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a token is still issued 2 s after the grant was deleted: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
}

/// `GET /api/v2{path}` with a Management API token; the answer must be 200.
async fn management_get(base: &str, token: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v2{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("the answer is JSON");
    assert_eq!(status, 200, "GET /api/v2{path}: {body}");
    body
}

/// One set of wire types renders both: every object the CLI prints with `--json` is what
/// the Management API answers for it, member for member.
#[tokio::test]
async fn cli_json_is_what_the_management_api_answers() {
    let env = Env::new(TESSERA);
    let (server, base) = serve(&env);
    let discovery: Value = reqwest::get(format!("{base}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let management = format!("{}api/v2/", discovery["issuer"].as_str().unwrap());

    let admin = env.json(&["apps", "create", "--name", "Admin", "--type", "m2m"]);
    let admin_id = admin["client_id"].as_str().unwrap();
    env.json(&[
        "grants",
        "create",
        "--app",
        admin_id,
        "--api",
        &management,
        "--scopes",
        "read:resource_servers,read:clients,read:client_grants,read:users,update:users,read:roles",
    ]);
    let (status, body) = client_credentials(
        &reqwest::Client::new(),
        &base,
        admin_id,
        admin["client_secret"].as_str().unwrap(),
        &management,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let get = |path: String| {
        let (base, token) = (base.clone(), token.clone());
        async move { management_get(&base, &token, &path).await }
    };

    // APIs, the system one (the Management API) included.
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
    let api_id = api["id"].as_str().unwrap();
    assert_eq!(api, get(format!("/resource-servers/{api_id}")).await);
    assert_eq!(
        env.json(&["apis", "show", &management]),
        get(format!("/resource-servers/{}", encode(&management))).await
    );
    assert_eq!(
        env.json(&["apis", "list"]),
        get("/resource-servers".into()).await
    );

    // Applications: the secret only in what made it, the rest alike.
    let spa = env.json(&[
        "apps",
        "create",
        "--name",
        "SPA",
        "--type",
        "spa",
        "--callbacks",
        "http://localhost:3000/callback",
        "--origins",
        "http://localhost:3000",
        "--logout-urls",
        "http://localhost:3000",
        "--allowed-apis",
        "https://messages.example",
    ]);
    let spa_id = spa["client_id"].as_str().unwrap();
    assert_eq!(spa, get(format!("/clients/{spa_id}")).await);
    let mut shown_admin = admin.clone();
    shown_admin.as_object_mut().unwrap().remove("client_secret");
    assert_eq!(shown_admin, get(format!("/clients/{admin_id}")).await);
    assert_eq!(env.json(&["apps", "show", admin_id]), shown_admin);
    assert_eq!(env.json(&["apps", "list"]), get("/clients".into()).await);
    assert_eq!(
        env.json(&["grants", "list"]),
        get("/client-grants".into()).await
    );

    // Users, with metadata the Management API set.
    let output = env.run_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "ada@example.com",
            "--password-stdin",
            "--json",
        ],
        Some("correct horse battery staple\n"),
    );
    tessera_testkit::process::assert_success(&["users", "create"], &output);
    let user: Value = serde_json::from_slice(&output.stdout).unwrap();
    let user_id = user["user_id"].as_str().unwrap().to_string();
    assert_eq!(user, get(format!("/users/{}", encode(&user_id))).await);
    let patched: Value = reqwest::Client::new()
        .patch(format!("{base}/api/v2/users/{}", encode(&user_id)))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "user_metadata": {"theme": "dark"},
            "app_metadata": {"plan": "pro"},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(env.json(&["users", "show", &user_id]), patched);
    assert_eq!(env.json(&["users", "list"]), get("/users".into()).await);

    // Roles and permissions.
    let role = env.json(&[
        "roles",
        "create",
        "--name",
        "reader",
        "--description",
        "Reads messages",
    ]);
    let role_id = role["id"].as_str().unwrap();
    assert_eq!(role, get(format!("/roles/{role_id}")).await);
    let held = env.json(&[
        "roles",
        "permissions",
        "add",
        "reader",
        "--api",
        "https://messages.example",
        "--scopes",
        "read:messages,write:messages",
    ]);
    assert_eq!(held, get(format!("/roles/{role_id}/permissions")).await);
    // `roles show`: the role, with its permissions.
    let mut shown_role = get(format!("/roles/{role_id}")).await;
    shown_role["permissions"] = held;
    assert_eq!(env.json(&["roles", "show", "reader"]), shown_role);
    assert_eq!(env.json(&["roles", "list"]), get("/roles".into()).await);
    env.json(&["users", "roles", "assign", &user_id, "reader"]);
    assert_eq!(
        env.json(&["users", "roles", "list", &user_id]),
        get(format!("/users/{}/roles", encode(&user_id))).await
    );
    assert_eq!(
        env.json(&["users", "permissions", &user_id]),
        get(format!("/users/{}/permissions", encode(&user_id))).await
    );
    drop(server);
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[test]
fn serve_names_a_bad_trusted_proxy() {
    let env = Env::new(TESSERA);
    let mut command = env.command();
    command
        .env("TESSERA_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/33")
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("trusted_proxies"), "{stderr}");
    assert!(stderr.contains("10.0.0.0/33"), "{stderr}");
}

#[test]
fn serve_names_a_bad_metrics_listen_address() {
    let env = Env::new(TESSERA);
    let mut command = env.command();
    command
        .env("TESSERA_METRICS_LISTEN", "not-an-address")
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TESSERA_METRICS_LISTEN"), "{stderr}");
    assert!(stderr.contains("not-an-address"), "{stderr}");
    // Checked before the database is touched.
    assert!(!env.path().join("tessera.db").exists());
}

#[tokio::test]
async fn serve_prints_its_metrics_address_and_the_flag_beats_the_environment() {
    let env = Env::new(TESSERA);
    let mut command = env.command();
    command
        .env("TESSERA_METRICS_LISTEN", "not-an-address")
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
    let mut server = Running::spawn(command);
    let base = server.wait_listening();
    let lines = server.wait_for("tessera metrics at http://", Duration::from_secs(10));
    let metrics = server.base_url_in(lines.last().unwrap());
    assert!(metrics.ends_with("/metrics"), "{metrics}");
    assert_ne!(metrics.trim_end_matches("/metrics"), base);

    let response = reqwest::get(&metrics).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE tessera_tokens_issued_total counter"),
        "{text}"
    );
    let main = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(main.status(), 404);

    // Both listeners stop on SIGTERM.
    let status = server.stop_with_sigterm(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}
