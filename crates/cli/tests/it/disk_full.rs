//! SECURITY.md, reliability: "Disk full: writes fail cleanly, reads and verification
//! continue, recovery after space returns."
//!
//! `tessera serve` runs with its database on a small tmpfs that is mounted in a mount
//! namespace of its own (`unshare --mount`), so nothing is mounted on the host and the mount
//! goes away with the process. The test fills that file system, and frees it again, through
//! `/proc/PID/root`. As root this needs nothing else; otherwise a user namespace
//! (`--map-root-user`) grants the mount.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tessera_testkit::client_credentials;
use tessera_testkit::process::{Env, Running};

use crate::TESSERA;

const CALLBACK: &str = "http://localhost:3000/callback";
const AUDIENCE: &str = "https://disk-full/api";
/// Room for the database, its WAL and the keys, not much more.
const TMPFS_SIZE: &str = "16m";

fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// `tessera serve` on a copy of `env`'s database placed on a fresh tmpfs at `mount_point`,
/// inside a private mount namespace.
fn serve_on_small_disk(env: &Env, mount_point: &Path) -> (Running, String) {
    let mut command = Command::new("unshare");
    if !is_root() {
        command.args(["--user", "--map-root-user"]);
    }
    command.args(["--mount", "--propagation", "private", "sh", "-c"]);
    command.arg(
        r#"set -e
mount -t tmpfs -o size="$4" tessera-disk-full "$1"
for file in "$2"/tessera.db "$2"/tessera.db-wal "$2"/tessera.db-shm "$2"/master.key; do
  if [ -e "$file" ]; then cp "$file" "$1"/; fi
done
exec "$3" serve --listen 127.0.0.1:0 --database-url "sqlite://$1/tessera.db""#,
    );
    command.args([
        "sh".as_ref(),
        mount_point.as_os_str(),
        env.path().as_os_str(),
        env.bin().as_os_str(),
        TMPFS_SIZE.as_ref(),
    ]);
    command.current_dir(env.path());
    for var in [
        "TESSERA_DATABASE_URL",
        "TESSERA_CONFIG",
        "TESSERA_MASTER_KEY",
    ] {
        command.env_remove(var);
    }
    let mut running = Running::spawn(command);
    let base = running.wait_listening();
    (running, base)
}

/// Fills the file system holding `dir` until it refuses a write; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("the filler can be created");
    let chunk = vec![0x5a_u8; 64 * 1024];
    // Bounded: the tmpfs is far smaller than this.
    for _ in 0..16 * 1024 {
        if file
            .write_all(&chunk)
            .and_then(|()| file.sync_all())
            .is_err()
        {
            return path;
        }
    }
    panic!("{} never filled up", dir.display());
}

/// `GET /authorize` stores a login transaction: a write. Returns the status and headers.
async fn authorize(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
) -> (u16, reqwest::header::HeaderMap) {
    let response = http
        .get(format!(
            "{base}/authorize?client_id={client_id}&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcallback\
             &response_type=code&scope=openid\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
        ))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.headers().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_cleanly_keeps_reads_and_recovers() {
    let env = Env::new(TESSERA);
    env.json(&[
        "apis",
        "create",
        "--name",
        "Disk",
        "--identifier",
        AUDIENCE,
        "--scopes",
        "read:things",
    ]);
    let m2m = env.json(&["apps", "create", "--name", "m2m", "--type", "m2m"]);
    let m2m_id = m2m["client_id"].as_str().unwrap().to_string();
    let m2m_secret = m2m["client_secret"].as_str().unwrap().to_string();
    env.json(&[
        "grants",
        "create",
        "--app",
        &m2m_id,
        "--api",
        AUDIENCE,
        "--scopes",
        "read:things",
    ]);
    let spa = env.json(&[
        "apps",
        "create",
        "--name",
        "spa",
        "--type",
        "spa",
        "--callbacks",
        CALLBACK,
    ]);
    let spa_id = spa["client_id"].as_str().unwrap().to_string();

    let mount_point = tempfile::tempdir().unwrap();
    let (mut server, base) = serve_on_small_disk(&env, mount_point.path());
    let on_small_disk = PathBuf::from(format!("/proc/{}/root", server.child.id()))
        .join(mount_point.path().strip_prefix("/").unwrap());
    assert!(
        on_small_disk.join("tessera.db").exists(),
        "the database is on the tmpfs"
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let (status, _) = authorize(&http, &base, &spa_id).await;
    assert_eq!(status, 302, "writes work before the disk fills");

    let filler = fill(&on_small_disk);

    // Writes: each /authorize stores a transaction. SQLite may still find room in pages it
    // already has, so keep writing until one is refused — which must be a clean 503.
    let mut refused = None;
    for attempt in 0..5000 {
        let (status, headers) = authorize(&http, &base, &spa_id).await;
        match status {
            302 => continue,
            _ => {
                eprintln!("write {attempt} on the full disk was refused with {status}");
                refused = Some((status, headers));
                break;
            }
        }
    }
    let (status, headers) = refused.expect("no write was refused on a full disk");
    assert_eq!(status, 503, "a write on a full disk is a clean 503");
    assert!(headers.contains_key("retry-after"), "{headers:?}");

    // Reads and verification continue.
    let jwks: Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
    let (status, body) = client_credentials(
        &reqwest::Client::new(),
        &base,
        &m2m_id,
        &m2m_secret,
        AUDIENCE,
    )
    .await;
    assert_eq!(
        status, 200,
        "tokens are still issued on a full disk: {body}"
    );
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    let (status, _) = authorize(&http, &base, &spa_id).await;
    assert_eq!(status, 503, "still full, still refused");

    // Space returns: writes work again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let mut recovered = false;
    for _ in 0..100 {
        if authorize(&http, &base, &spa_id).await.0 == 302 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "writes did not recover after space returned");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
}
