//! `kill -9` loses no acknowledged write: a redeemed authorization code stays redeemed
//! after the process is killed without warning and started again on the same database.
//! And the files holding that data are the owner's alone: created 0600 in 0700 directories
//! under the usual umask (022), with a warning when an existing database is open to others.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Env, Running};
use serde_json::Value;

const CALLBACK: &str = "http://localhost:3000/callback";
const PASSWORD: &str = "an unusual demo passphrase";

fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the field is on the page") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

fn serve(env: &Env) -> (Running, String) {
    let mut command = env.command();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut running = Running::spawn(command);
    let base = running.wait_listening();
    (running, base)
}

async fn redeem(base: &str, client_id: &str, code: &str, verifier: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_redeemed_code_stays_redeemed_after_kill_9() {
    let env = Env::new();
    let app = env.json(&[
        "apps",
        "create",
        "--name",
        "spa",
        "--type",
        "spa",
        "--callbacks",
        CALLBACK,
    ]);
    let client_id = app["client_id"].as_str().unwrap().to_string();
    let output = env.run_with_stdin(
        &[
            "users",
            "create",
            "--email",
            "kill@example.com",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    common::assert_success(&["users", "create"], &output);

    let (mut server, base) = serve(&env);
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = "v".repeat(20) + &"w".repeat(30);
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    let authorize = format!(
        "{base}/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
        "http%3A%2F%2Flocalhost%3A3000%2Fcallback"
    );
    let response = browser.get(&authorize).send().await.unwrap();
    let login = format!("{base}{}", response.headers()["location"].to_str().unwrap());
    let page = browser
        .get(&login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("state", hidden_field(&page, "state")),
        ("csrf", hidden_field(&page, "csrf")),
        ("username", "kill@example.com".to_string()),
        ("password", PASSWORD.to_string()),
    ];
    let response = browser
        .post(format!("{base}/u/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let resume = format!("{base}{}", response.headers()["location"].to_str().unwrap());
    let response = browser.get(&resume).send().await.unwrap();
    let back = response.headers()["location"].to_str().unwrap().to_string();
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();

    let (status, _) = redeem(&base, &client_id, &code, &verifier).await;
    assert_eq!(status, 200, "the first redemption is acknowledged");
    // SIGKILL right after the acknowledgement: no shutdown, no flush, no checkpoint.
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let (_server, base) = serve(&env);
    let (status, body) = redeem(&base, &client_id, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the code is still consumed"
    );
}

/// The permission bits of `path`, in octal as `chmod` takes them: `"600"`.
fn mode(path: &Path) -> String {
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:o}", metadata.permissions().mode() & 0o777)
}

/// `env.command()` with umask 022, the usual default, which leaves new files readable by
/// everyone unless they are created otherwise.
fn under_umask_022(env: &Env) -> Command {
    let template = env.command();
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(template.get_program())
        .current_dir(env.path());
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command
}

/// Issue 10, defect 9: `tessera serve` creates its database in new directories (0700) as a
/// file only its owner may read (0600), and SQLite's `-wal` and `-shm` files follow; so
/// does the master key beside it.
#[test]
fn serve_creates_the_database_files_private_under_umask_022() {
    let env = Env::new();
    let data = env.path().join("data");
    let database = data.join("nested").join("tessera.db");
    let mut command = under_umask_022(&env);
    command
        .env(
            "TESSERA_DATABASE_URL",
            format!("sqlite://{}", database.display()),
        )
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(command);
    server.wait_listening();
    let wal = data.join("nested/tessera.db-wal");
    let shm = data.join("nested/tessera.db-shm");
    for dir in [&data, &data.join("nested")] {
        assert_eq!(mode(dir), "700", "{}", dir.display());
    }
    for file in [&database, &wal, &shm, &data.join("nested/master.key")] {
        assert_eq!(mode(file), "600", "{}", file.display());
    }
}

/// `tessera dev` creates its data directory 0700, and `--tls` its keys 0600 in a 0700
/// directory. (Port taken: `dev` stops after creating them, before anything else.)
#[test]
fn dev_creates_its_data_directory_private_under_umask_022() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data = env.path().join("dev-data");
    let output = under_umask_022(&env)
        .args(["dev", "--tls", "--port", &port, "--data-dir"])
        .arg(&data)
        .arg("--spa-dir")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/jquery-spa"
        ))
        .output()
        .unwrap();
    assert!(!output.status.success(), "the port is taken");
    assert_eq!(mode(&data), "700");
    assert_eq!(mode(&data.join("tls")), "700");
    for key in ["ca-key.pem", "localhost-key.pem"] {
        assert_eq!(mode(&data.join("tls").join(key)), "600", "{key}");
    }
}

/// A database created before (or by hand) that others may read is used, with a warning
/// that names it and the fix.
#[test]
fn an_existing_database_open_to_others_gives_a_warning() {
    let env = Env::new();
    env.ok(&["apis", "list"]);
    let database = env.path().join("tessera.db");
    assert_eq!(mode(&database), "600");
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut command = env.command();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(command);
    let lines = server.wait_for("listening on http://", Duration::from_secs(10));
    let warning = format!(
        "warning: database file {} has mode 0644: other users may read it; run `chmod 600 {}`",
        database.display(),
        database.display()
    );
    assert!(lines.contains(&warning), "{lines:#?}");
    drop(server);

    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = env.run(&["apis", "list"]);
    common::assert_success(&["apis", "list"], &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
}
