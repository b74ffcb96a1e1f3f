//! `tessera backup` and `tessera restore` as a drill: a backup taken while a writer keeps
//! creating applications through the Management API of a running `tessera serve`, restored
//! into a new data directory with the master key beside it, holds every write acknowledged
//! before the backup began; the restored server signs with the same keys and knows the
//! same applications. And neither command overwrites anything or accepts a damaged file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tessera_testkit::client_credentials;
use tessera_testkit::process::{Env, Running};

use crate::TESSERA;

fn serve(env: &Env) -> (Running, String) {
    let mut command = env.command();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(command);
    let base = server.wait_listening();
    (server, base)
}

async fn issuer(base: &str) -> String {
    let discovery: Value = reqwest::get(format!("{base}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    discovery["issuer"].as_str().unwrap().to_string()
}

async fn kids(base: &str) -> Vec<String> {
    let jwks: Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

#[tokio::test]
async fn a_backup_under_load_restores_every_write_acknowledged_before_it() {
    let env = Env::new(TESSERA);
    let (server, base) = serve(&env);
    let management = format!("{}api/v2/", issuer(&base).await);
    let (admin_id, admin_secret) = env.m2m_app("Drill", &management, "create:clients", &[]);
    let http = reqwest::Client::new();
    let (status, token) =
        client_credentials(&http, &base, &admin_id, &admin_secret, &management).await;
    assert_eq!(status, 200, "{token}");
    let token = token["access_token"].as_str().unwrap().to_string();

    // The writer: one application after another, each recorded once acknowledged (201).
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acknowledged, stop, base, token) = (
            acknowledged.clone(),
            stop.clone(),
            base.clone(),
            token.clone(),
        );
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let response = http
                    .post(format!("{base}/api/v2/clients"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("drill {n}"), "app_type": "non_interactive"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                let body: Value = response.json().await.unwrap();
                let id = body["client_id"].as_str().unwrap().to_string();
                acknowledged.lock().unwrap().push(id);
            }
        })
    };
    for _ in 0..200 {
        if acknowledged.lock().unwrap().len() >= 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    assert!(before.len() >= 20, "the writer is writing");
    let backup = env.path().join("backup.db");
    let backup_arg = backup.to_str().unwrap().to_string();
    let run = tokio::task::spawn_blocking({
        let env_command = env.command();
        move || {
            let mut command = env_command;
            command.args(["backup", "--to", &backup_arg]);
            command.output().unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let during = acknowledged.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        during > before.len(),
        "the writer kept writing while the backup ran"
    );
    let original_kids = kids(&base).await;
    drop(server);

    // Backing up onto an existing file changes nothing.
    let size = std::fs::metadata(&backup).unwrap().len();
    let (_, stderr) = env.fails(&["backup", "--to", backup.to_str().unwrap()]);
    assert!(stderr.contains("exists already"), "{stderr}");
    assert_eq!(std::fs::metadata(&backup).unwrap().len(), size);

    // Restored into a new data directory, with the master key put back beside it.
    let restored = Env::new(TESSERA);
    let report = restored.json(&["restore", "--from", backup.to_str().unwrap()]);
    assert!(
        report["clients"].as_i64().unwrap() > before.len() as i64,
        "{report}"
    );
    std::fs::copy(
        env.path().join("master.key"),
        restored.path().join("master.key"),
    )
    .unwrap();
    let store = tessera_store::Store::connect(&restored.database_url())
        .await
        .unwrap();
    for client_id in &before {
        assert!(
            store.find_client(client_id).await.unwrap().is_some(),
            "{client_id}, acknowledged before the backup, is in it"
        );
    }
    store.close().await;

    // The restored server signs with the same keys and knows the applications.
    let (_server, restored_base) = serve(&restored);
    assert_eq!(kids(&restored_base).await, original_kids);
    let restored_management = format!("{}api/v2/", issuer(&restored_base).await);
    let (status, body) = client_credentials(
        &http,
        &restored_base,
        &admin_id,
        &admin_secret,
        &restored_management,
    )
    .await;
    // The audience is the new issuer's Management API, which the grant does not name:
    // the application itself must still be known and authenticated.
    assert_ne!(body["error"], "invalid_client", "{status} {body}");

    // Restoring over a database, or from a file that is not a backup, changes nothing.
    let (_, stderr) = restored.fails(&["restore", "--from", backup.to_str().unwrap()]);
    assert!(stderr.contains("exists already"), "{stderr}");
    let damaged = env.path().join("damaged.db");
    let mut bytes = std::fs::read(&backup).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 4096].fill(0xAB);
    std::fs::write(&damaged, bytes).unwrap();
    let fresh = Env::new(TESSERA);
    let (_, stderr) = fresh.fails(&["restore", "--from", damaged.to_str().unwrap()]);
    assert!(stderr.contains("not a usable backup"), "{stderr}");
    assert!(!fresh.path().join("tessera.db").exists(), "nothing written");
    let (_, stderr) = fresh.fails(&["restore", "--from", "/nonexistent/backup.db"]);
    assert!(stderr.contains("no backup file"), "{stderr}");
}

#[test]
fn backup_and_restore_name_pg_dump_for_postgresql() {
    let env = Env::new(TESSERA);
    let url = "postgres://tessera@127.0.0.1:1/tessera";
    let (_, stderr) = env.fails(&["backup", "--to", "x.db", "--database-url", url]);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    let (_, stderr) = env.fails(&["restore", "--from", "x.db", "--database-url", url]);
    assert!(stderr.contains("pg_restore"), "{stderr}");
    assert!(!env.path().join("x.db").exists());
}

#[test]
fn a_mistyped_database_path_is_told_and_never_backed_up() {
    let env = Env::new(TESSERA);
    let typo = env.path().join("tesera.db");
    let url = format!("sqlite://{}", typo.display());
    // A backup of nothing is refused, and makes no database there.
    let (_, stderr) = env.fails(&["backup", "--to", "b.db", "--database-url", &url]);
    assert!(stderr.contains("there is no database at"), "{stderr}");
    assert!(!typo.exists() && !env.path().join("b.db").exists());
    // A refused command leaves no database behind either.
    let (_, stderr) = env.fails(&["users", "show", "auth0|nobody", "--database-url", &url]);
    assert!(!stderr.contains("there was no database at"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(env.path())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().to_string())
        .filter(|name| name.starts_with("tesera.db"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Another command makes one (as before a first `serve`), and says so.
    let output = env.run(&["users", "list", "--database-url", &url]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("there was no database at"), "{stderr}");
    assert!(typo.exists());
    // Once it exists, nothing more is said.
    let output = env.run(&["users", "list", "--database-url", &url]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("no database"), "{stderr}");
}
