//! Three `tessera serve` nodes on one PostgreSQL database behind HAProxy (round-robin, no
//! stickiness: every multi-request flow crosses nodes), all on loopback:
//! - a code is redeemed exactly once under 30 parallel attempts spread over the nodes;
//! - a refresh family rotates across nodes, and reuse on another node revokes it;
//! - an admin change made with the CLI (grant removed, secret rotated, key rotated, user
//!   blocked) holds on every node within a second — the caches live a minute on
//!   PostgreSQL, so only the invalidation notification (`cluster` in tessera-server)
//!   can make it that fast;
//! - a node killed (SIGKILL) under load loses no acknowledged write, and HAProxy, which
//!   retries only connections that failed before a request reached a node, never
//!   replays a code.
//!
//! HAProxy must be installed (`apt-get install haproxy`; scripts/test.sh does it): without
//! it the test fails and says so.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_testkit::pg::PgServer;
use tessera_testkit::process::{Env, Running, assert_success};
use tessera_testkit::{
    browser, client_credentials, location, oauth_token, pkce_challenge, sign_in_at,
};

use crate::TESSERA;

const API: &str = "https://messages.example/api";
const CALLBACK: &str = "http://localhost:3000/callback";
const EMAIL: &str = "cluster@example.com";
const PASSWORD: &str = "an unusual passphrase";
const ISSUER: &str = "http://auth.example.test/";
const VERIFIER: &str = "a-code-verifier-of-the-required-length-43-chars";

/// Redemptions each of the four browsers tries while a node is killed.
const ROUNDS: usize = 30;

/// How soon an admin change must hold on every node.
const PROPAGATION: Duration = Duration::from_secs(1);

/// The nodes' shared configuration, and the CLI run with it.
struct Admin {
    env: Env,
    database_url: String,
    master_key: String,
}

impl Admin {
    fn command(&self) -> Command {
        let mut command = self.env.command();
        command
            .env("TESSERA_DATABASE_URL", &self.database_url)
            .env("TESSERA_MASTER_KEY", &self.master_key);
        command
    }

    fn json(&self, args: &[&str], stdin: Option<&str>) -> Value {
        use std::io::Write as _;
        let mut child = self
            .command()
            .args(args)
            .arg("--json")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert_success(args, &output);
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    }

    fn serve(&self) -> (Running, String) {
        let mut command = self.command();
        command.args(["serve", "--listen", "127.0.0.1:0", "--issuer", ISSUER]);
        let mut node = Running::spawn(command);
        let base = node.wait_listening();
        (node, base)
    }
}

/// HAProxy in the foreground (`-db`), killed when dropped.
struct Balancer {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("haproxy"))
            .find(|candidate| candidate.is_file())
    });
    on_path
        .or_else(|| {
            let sbin = PathBuf::from("/usr/sbin/haproxy");
            sbin.is_file().then_some(sbin)
        })
        .unwrap_or_else(|| {
            panic!(
                "HAProxy is not installed, but this test puts it in front of three nodes: \
                 install it (Debian/Ubuntu: `apt-get install haproxy`; scripts/test.sh does it)"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Round-robin without stickiness over `nodes` (`http://127.0.0.1:PORT`). Retries only
/// `conn-failure` — a connection to a node that failed before the request was sent — so
/// no request a node may have acted on (a code redemption) is ever sent twice.
fn balance(nodes: &[String]) -> Balancer {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let servers: String = nodes
        .iter()
        .enumerate()
        .map(|(i, base)| {
            let address = base.trim_start_matches("http://");
            format!("    server n{i} {address} check\n")
        })
        .collect();
    let config = format!(
        "global\n\
         \x20   maxconn 512\n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 2s\n\
         \x20   timeout client 30s\n\
         \x20   timeout server 30s\n\
         \x20   retries 3\n\
         \x20   retry-on conn-failure\n\
         \x20   option redispatch 1\n\
         frontend front\n\
         \x20   bind 127.0.0.1:{port}\n\
         \x20   default_backend nodes\n\
         backend nodes\n\
         \x20   balance roundrobin\n\
         \x20   option httpchk GET /healthz\n\
         \x20   http-check expect status 200\n\
         \x20   default-server inter 200ms fall 2 rise 1\n\
         {servers}"
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(haproxy_binary())
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy starts");
    Balancer {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// Waits (bounded) until `check` holds.
async fn eventually<F, Fut>(what: &str, bound: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + bound;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn authorize_query(client_id: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email offline_access read:messages")
        .append_pair("audience", API)
        .append_pair("state", "s")
        .append_pair("code_challenge", &pkce_challenge(VERIFIER))
        .append_pair("code_challenge_method", "S256")
        .finish()
}

fn code_in(callback: &str) -> String {
    let back = url::Url::parse(callback).unwrap();
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    back.query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .unwrap_or_else(|| panic!("no code in {back}"))
}

/// A browser signed in through `base`, and its first code.
async fn signed_in(base: &str, client_id: &str) -> (reqwest::Client, String) {
    let browser = browser();
    let response = browser
        .get(format!("{base}/authorize?{}", authorize_query(client_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let login = location(&response);
    assert!(login.starts_with("/u/login"), "{login}");
    let back = sign_in_at(&browser, base, &login, EMAIL, PASSWORD).await;
    (browser, code_in(&back))
}

/// Another code for a browser that has a session (no password asked): `None` when the
/// request failed (a node died under it).
async fn next_code(browser: &reqwest::Client, base: &str, client_id: &str) -> Option<String> {
    let response = browser
        .get(format!("{base}/authorize?{}", authorize_query(client_id)))
        .send()
        .await
        .ok()?;
    if response.status() != 302 {
        return None;
    }
    Some(code_in(&location(&response)))
}

/// One redemption through `base`: (status, body), or `None` when the connection failed.
async fn redeem_once(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    code: &str,
) -> Option<(u16, Value)> {
    let response = http
        .post(format!("{base}/oauth/token"))
        .form(&redeem(client_id, code))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

fn redeem<'a>(client_id: &'a str, code: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ]
}

fn refresh<'a>(client_id: &'a str, token: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", token),
    ]
}

async fn password_grant(base: &str, client_id: &str, secret: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "password"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("username", EMAIL),
        ("password", PASSWORD),
        ("scope", "openid"),
    ];
    oauth_token(&reqwest::Client::new(), base, &form).await
}

async fn jwks_kids(base: &str) -> Vec<String> {
    let jwks: Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_behind_haproxy_on_one_postgres() {
    let haproxy = haproxy_binary();
    let database = PgServer::start();
    let admin = Admin {
        env: Env::new(TESSERA),
        database_url: database.database(),
        master_key: "6c".repeat(32),
    };
    admin.json(
        &[
            "apis",
            "create",
            "--name",
            "Messages",
            "--identifier",
            API,
            "--scopes",
            "read:messages",
            "--allow-offline-access",
        ],
        None,
    );
    let spa = admin.json(
        &[
            "apps",
            "create",
            "--name",
            "SPA",
            "--type",
            "spa",
            "--callbacks",
            CALLBACK,
        ],
        None,
    );
    let spa = spa["client_id"].as_str().unwrap().to_string();
    let m2m = admin.json(
        &["apps", "create", "--name", "Backend", "--type", "m2m"],
        None,
    );
    let m2m_id = m2m["client_id"].as_str().unwrap().to_string();
    let m2m_secret = m2m["client_secret"].as_str().unwrap().to_string();
    admin.json(
        &[
            "grants",
            "create",
            "--app",
            &m2m_id,
            "--api",
            API,
            "--scopes",
            "read:messages",
        ],
        None,
    );
    let web = admin.json(
        &[
            "apps",
            "create",
            "--name",
            "Web",
            "--type",
            "regular",
            "--callbacks",
            CALLBACK,
            "--grant-types",
            "password",
        ],
        None,
    );
    let web_id = web["client_id"].as_str().unwrap().to_string();
    let web_secret = web["client_secret"].as_str().unwrap().to_string();
    admin.json(
        &["users", "create", "--email", EMAIL, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );

    let mut running = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let (node, base) = admin.serve();
        running.push(node);
        nodes.push(base);
    }
    assert!(haproxy.is_file());
    let balancer = balance(&nodes);
    let front = balancer.base.clone();
    let http = reqwest::Client::new();
    // Up once HAProxy answers and has seen every node healthy: three requests in a row
    // each reach a node (round-robin over the three).
    eventually("HAProxy serves", Duration::from_secs(15), || {
        let http = http.clone();
        let front = front.clone();
        async move {
            for _ in 0..3 {
                let ok = http
                    .get(format!("{front}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if !ok {
                    return false;
                }
            }
            true
        }
    })
    .await;

    // ---- a code from a flow that crossed nodes is redeemed exactly once -------------
    let (browser, code) = signed_in(&front, &spa).await;
    let attempts = (0..30).map(|i| {
        let base = nodes[i % 3].clone();
        let spa = spa.clone();
        let code = code.clone();
        tokio::spawn(async move {
            oauth_token(&reqwest::Client::new(), &base, &redeem(&spa, &code)).await
        })
    });
    let outcomes: Vec<(u16, Value)> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let winners: Vec<&Value> = outcomes
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for (status, body) in &outcomes {
        if *status != 200 {
            assert_eq!(
                (*status, body["error"].as_str()),
                (400, Some("invalid_grant"))
            );
        }
    }

    // The replays revoked what the winner got (as Auth0 does).
    let revoked = winners[0]["refresh_token"].as_str().unwrap();
    for node in &nodes {
        let (status, _) = oauth_token(&http, node, &refresh(&spa, revoked)).await;
        assert_eq!(status, 400, "{node} honours the revocation");
    }

    // ---- a refresh family rotates across nodes; reuse elsewhere revokes it ----------
    let code = next_code(&browser, &front, &spa).await.expect("a code");
    let (status, tokens) = oauth_token(&http, &front, &redeem(&spa, &code)).await;
    assert_eq!(status, 200, "{tokens}");
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let mut latest = first.clone();
    for _ in 0..3 {
        let (status, rotated) = oauth_token(&http, &front, &refresh(&spa, &latest)).await;
        assert_eq!(status, 200, "{rotated}");
        latest = rotated["refresh_token"].as_str().unwrap().to_string();
    }
    let (status, reused) = oauth_token(&http, &nodes[1], &refresh(&spa, &first)).await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    for node in &nodes {
        let (status, _) = oauth_token(&http, node, &refresh(&spa, &latest)).await;
        assert_eq!(
            status, 400,
            "the reuse revoked the family, seen from {node}"
        );
    }

    // ---- admin changes hold on every node within a second ---------------------------
    // Each node has the client's access cached first: only the notification empties it.
    for node in &nodes {
        let (status, body) = client_credentials(&http, node, &m2m_id, &m2m_secret, API).await;
        assert_eq!(status, 200, "{body}");
    }
    admin.json(&["apps", "rotate-secret", &m2m_id], None);
    for node in &nodes {
        eventually(
            &format!("the old secret refused at {node}"),
            PROPAGATION,
            || async {
                client_credentials(&http, node, &m2m_id, &m2m_secret, API)
                    .await
                    .0
                    == 401
            },
        )
        .await;
    }

    // A second client keeps its secret: its grant is removed instead.
    let other = admin.json(
        &["apps", "create", "--name", "Worker", "--type", "m2m"],
        None,
    );
    let other_id = other["client_id"].as_str().unwrap().to_string();
    let other_secret = other["client_secret"].as_str().unwrap().to_string();
    let other_grant = admin.json(
        &[
            "grants",
            "create",
            "--app",
            &other_id,
            "--api",
            API,
            "--scopes",
            "read:messages",
        ],
        None,
    );
    for node in &nodes {
        eventually(&format!("the new grant at {node}"), PROPAGATION, || async {
            client_credentials(&http, node, &other_id, &other_secret, API)
                .await
                .0
                == 200
        })
        .await;
    }
    admin.json(
        &["grants", "delete", other_grant["id"].as_str().unwrap()],
        None,
    );
    for node in &nodes {
        eventually(
            &format!("the removed grant refused at {node}"),
            PROPAGATION,
            || async {
                client_credentials(&http, node, &other_id, &other_secret, API)
                    .await
                    .0
                    == 403
            },
        )
        .await;
    }

    // A key rotation: the new next key is published by every node.
    let rotation = admin.json(&["keys", "rotate"], None);
    let next = rotation["next"].as_str().unwrap().to_string();
    for node in &nodes {
        eventually(&format!("{node} publishes {next}"), PROPAGATION, || async {
            jwks_kids(node).await.contains(&next)
        })
        .await;
    }

    // A blocked user: no login on any node.
    for node in &nodes {
        let (status, body) = password_grant(node, &web_id, &web_secret).await;
        assert_eq!(status, 200, "{body}");
    }
    admin.json(&["users", "block", EMAIL], None);
    for node in &nodes {
        eventually(
            &format!("the blocked user refused at {node}"),
            PROPAGATION,
            || async { password_grant(node, &web_id, &web_secret).await.0 != 200 },
        )
        .await;
    }
    admin.json(&["users", "unblock", EMAIL], None);

    // A signing-in application's secret rotated: every node has the application itself
    // kept now (the password grant read it above), and only the notification empties it.
    let rotated = admin.json(&["apps", "rotate-secret", &web_id], None);
    let new_web_secret = rotated["client_secret"].as_str().unwrap().to_string();
    for node in &nodes {
        eventually(
            &format!("the web app's old secret refused at {node}"),
            PROPAGATION,
            || async { password_grant(node, &web_id, &web_secret).await.0 == 401 },
        )
        .await;
        let (status, body) = password_grant(node, &web_id, &new_web_secret).await;
        assert_eq!(status, 200, "the new secret at {node}: {body}");
    }

    // The database connection disabled for that application: every node has the
    // application's connections kept now (the password grant above read them), and only
    // the notification empties them. Enabled again, it signs users in everywhere again.
    let database = "Username-Password-Authentication";
    admin.json(
        &["connections", "disable", database, "--app", &web_id],
        None,
    );
    for node in &nodes {
        eventually(
            &format!("no password form for the web app at {node}"),
            PROPAGATION,
            || async { password_grant(node, &web_id, &new_web_secret).await.0 == 400 },
        )
        .await;
    }
    admin.json(&["connections", "enable", database, "--app", &web_id], None);
    for node in &nodes {
        eventually(
            &format!("the web app's password form back at {node}"),
            PROPAGATION,
            || async { password_grant(node, &web_id, &new_web_secret).await.0 == 200 },
        )
        .await;
    }

    // ---- a node killed under load: no acknowledged write lost, no code replayed -------
    // Four browsers with sessions take codes and redeem them through HAProxy; a
    // redemption answered 200 created a refresh token family, which must work afterwards.
    // A code is sent once: `invalid_grant` for it could only mean a replay.
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (browser, first_code) = signed_in(&front, &spa).await;
        let front = front.clone();
        let spa = spa.clone();
        let progress = progress.clone();
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            let mut refused = Vec::new();
            let mut transport_failures = 0;
            let mut code = Some(first_code);
            for _ in 0..ROUNDS {
                if let Some(code) = code.take() {
                    match redeem_once(&http, &front, &spa, &code).await {
                        Some((200, body)) => {
                            acknowledged.push(body["refresh_token"].as_str().unwrap().to_string());
                            progress.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Some((400..=403, body)) => refused.push(body),
                        // 502/503, or a connection cut while the node dies: not
                        // acknowledged.
                        _ => transport_failures += 1,
                    }
                }
                code = next_code(&browser, &front, &spa).await;
            }
            (acknowledged, refused, transport_failures)
        }));
    }
    drop(browser);
    // Kill a node once the load runs: after a few redemptions went through.
    eventually("the load runs", Duration::from_secs(30), || {
        let progress = progress.clone();
        async move { progress.load(std::sync::atomic::Ordering::SeqCst) >= 8 }
    })
    .await;
    let mut victim = running.remove(1);
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let mut acknowledged = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (tokens, refused, transport_failures) = worker.await.unwrap();
        assert!(refused.is_empty(), "a code was refused: {refused:?}");
        acknowledged.extend(tokens);
        failures += transport_failures;
    }
    eprintln!(
        "killed a node under load: {} redemptions acknowledged, {failures} failed in transit",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() >= 4 * ROUNDS / 2,
        "most redemptions succeeded ({} of {})",
        acknowledged.len(),
        4 * ROUNDS
    );
    for token in &acknowledged {
        let (status, body) = oauth_token(&http, &front, &refresh(&spa, token)).await;
        assert_eq!(status, 200, "an acknowledged redemption was lost: {body}");
    }
    drop(balancer);
}
