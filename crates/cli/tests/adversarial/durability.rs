//! Durability: what Tessera acknowledged survives `kill -9` of the real `tessera serve` at a
//! random moment under load (users created, codes redeemed, refresh tokens rotated, on
//! SQLite); a PostgreSQL restart or crash under load costs 503s with `Retry-After`, never
//! another error, a hung request or an acknowledged write; and the files holding user data
//! are their owner's alone.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_core::DATABASE_CONNECTION;
use tessera_testkit::pg::PgServer;
use tessera_testkit::process::{Env, Running, assert_success};
use tessera_testkit::{API, TestServer, location, pkce_challenge, sign_in_at, spawn_on};

use crate::TESSERA;
use crate::harness::Tally;

/// Kill -9 cycles: enough to hit writes at many different moments, few enough for CI.
const CYCLES: usize = 20;
const ISSUER: &str = "http://tessera.test/";
const DURABLE_API: &str = "https://durable.example/api";
const CALLBACK: &str = "http://localhost:3000/callback";
const EMAIL: &str = "durable@example.com";
const PASSWORD: &str = "a durable demo passphrase";
const VERIFIER: &str = "a-code-verifier-of-the-required-length-43-chars";
/// Longer than any answer may take (the PostgreSQL acquire timeout is 2 s): a request still
/// unanswered then is a hung one.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// A number in `0..bound` from the system's random source.
fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    u64::from_le_bytes(bytes) % bound
}

/// Polls `done` (at most 30 s); whether it came true.
async fn within_30s(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn refused_invalid_grant(status: u16, body: &Value) -> bool {
    status == 400 && body["error"] == "invalid_grant"
}

// ---- kill -9 of tessera serve on SQLite ------------------------------------------------

/// The tenant the cycles write to, set up with the CLI.
struct Tenant {
    env: Env,
    spa: String,
    management_token: String,
}

fn serve(env: &Env) -> (Running, String) {
    let mut command = env.command();
    command.args(["serve", "--listen", "127.0.0.1:0", "--issuer", ISSUER]);
    let mut node = Running::spawn(command);
    let base = node.wait_listening();
    (node, base)
}

/// An authorization code for the SPA; `browser` signs in the first time and keeps its
/// session (stored in the database: it outlives restarts) after that.
async fn authorization_code(browser: &reqwest::Client, base: &str, spa: &str) -> String {
    let challenge = pkce_challenge(VERIFIER);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", spa)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid offline_access read:data")
        .append_pair("audience", DURABLE_API)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let response = browser
        .get(format!("{base}/authorize?{query}"))
        .send()
        .await
        .expect("/authorize answers");
    let mut back = location(&response);
    if back.starts_with("/u/login") {
        back = sign_in_at(browser, base, &back, EMAIL, PASSWORD).await;
    }
    let back = url::Url::parse(&back).expect("a redirect to the callback");
    back.query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .unwrap_or_else(|| panic!("no code in {back}"))
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    form: &[(&str, &str)],
) -> Result<(u16, Value), reqwest::Error> {
    let response = http
        .post(format!("{base}/oauth/token"))
        .form(form)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

async fn redeem(
    http: &reqwest::Client,
    base: &str,
    spa: &str,
    code: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", spa),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    token(http, base, &form).await
}

async fn refresh(
    http: &reqwest::Client,
    base: &str,
    spa: &str,
    refresh_token: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", spa),
        ("refresh_token", refresh_token),
    ];
    token(http, base, &form).await
}

/// The API, the SPA, the user and an M2M application allowed to create and read users
/// through the Management API, and its token.
async fn set_up_tenant() -> (Tenant, Running, String) {
    let env = Env::new(TESSERA);
    env.json(&[
        "apis",
        "create",
        "--name",
        "Durable",
        "--identifier",
        DURABLE_API,
        "--scopes",
        "read:data",
        "--allow-offline-access",
    ]);
    let spa = env.json(&[
        "apps",
        "create",
        "--name",
        "SPA",
        "--type",
        "spa",
        "--callbacks",
        CALLBACK,
    ]);
    env.ok_with_stdin(
        &["users", "create", "--email", EMAIL, "--password-stdin"],
        PASSWORD,
    );
    // The first start registers the Management API; then the grant can name it.
    let (node, base) = serve(&env);
    let management = format!("{ISSUER}api/v2/");
    let (m2m_id, m2m_secret) =
        env.m2m_app("Automation", &management, "create:users,read:users", &[]);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", m2m_id.as_str()),
        ("client_secret", m2m_secret.as_str()),
        ("audience", &management),
    ];
    let (status, body) = token(&http_client(), &base, &form).await.expect("a token");
    assert_eq!(status, 200, "{body}");
    let tenant = Tenant {
        spa: spa["client_id"].as_str().expect("a client_id").to_string(),
        management_token: body["access_token"].as_str().expect("a token").to_string(),
        env,
    };
    (tenant, node, base)
}

/// What the server acknowledged in one cycle before it was killed.
#[derive(Default)]
struct Acknowledged {
    /// (user_id, email) of users answered 201.
    users: Mutex<Vec<(String, String)>>,
    /// Codes answered 200.
    codes: Mutex<Vec<String>>,
    /// Refresh tokens presented in a rotation answered 200, in order.
    rotated_away: Mutex<Vec<String>>,
    /// The newest refresh token an acknowledged rotation gave.
    newest: Mutex<String>,
    /// Answers that were neither the success expected nor a cut connection.
    wrong: Mutex<Vec<String>>,
}

impl Acknowledged {
    fn counts(&self) -> [usize; 3] {
        [
            self.users.lock().unwrap().len(),
            self.codes.lock().unwrap().len(),
            self.rotated_away.lock().unwrap().len(),
        ]
    }
}

/// Writes until the server stops answering: users through the Management API (3 tasks),
/// one rotation chain starting at `refresh_token`, and the redemption of `codes`.
fn write_until_killed(
    tenant: &Tenant,
    base: &str,
    cycle: usize,
    codes: Vec<String>,
    refresh_token: String,
    acknowledged: &Arc<Acknowledged>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for writer in 0..3 {
        let (http, base, acked) = (http_client(), base.to_string(), acknowledged.clone());
        let bearer = tenant.management_token.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let email = format!("c{cycle}-w{writer}-{n}@durable.example");
                let body = json!({"connection": DATABASE_CONNECTION, "email": email, "password": PASSWORD});
                let sent = http
                    .post(format!("{base}/api/v2/users"))
                    .bearer_auth(&bearer)
                    .json(&body)
                    .send()
                    .await;
                // A request or an answer cut off by the kill ends the writer.
                let Ok(response) = sent else { return };
                let status = response.status().as_u16();
                let Ok(text) = response.text().await else {
                    return;
                };
                let user: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if status != 201 {
                    acked.wrong.lock().unwrap().push(format!("{status} {text}"));
                    return;
                }
                let user_id = user["user_id"].as_str().unwrap_or_default().to_string();
                acked.users.lock().unwrap().push((user_id, email));
            }
        }));
    }
    let (http, spa, rotate_base, acked) = (
        http_client(),
        tenant.spa.clone(),
        base.to_string(),
        acknowledged.clone(),
    );
    tasks.push(tokio::spawn(async move {
        let mut current = refresh_token;
        while let Ok((status, body)) = refresh(&http, &rotate_base, &spa, &current).await {
            let Some(next) = body["refresh_token"].as_str().filter(|_| status == 200) else {
                acked.wrong.lock().unwrap().push(format!("{status} {body}"));
                return;
            };
            acked.rotated_away.lock().unwrap().push(current);
            current = next.to_string();
            acked.newest.lock().unwrap().clone_from(&current);
        }
    }));
    let (http, spa, redeem_base, acked) = (
        http_client(),
        tenant.spa.clone(),
        base.to_string(),
        acknowledged.clone(),
    );
    tasks.push(tokio::spawn(async move {
        for code in codes {
            match redeem(&http, &redeem_base, &spa, &code).await {
                Ok((200, _)) => acked.codes.lock().unwrap().push(code),
                Ok((status, body)) => {
                    acked.wrong.lock().unwrap().push(format!("{status} {body}"));
                    return;
                }
                Err(_) => return,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }));
    tasks
}

/// After the restart: every acknowledged write of `cycle` is there.
async fn check_cycle(
    tally: &mut Tally,
    tenant: &Tenant,
    base: &str,
    cycle: usize,
    acked: &Acknowledged,
) {
    let http = http_client();
    let health = http.get(format!("{base}/healthz")).send().await;
    let health = health.map(|r| r.status().as_u16());
    tally.case(
        format_args!("cycle {cycle}: tessera serve restarts on the killed database"),
        matches!(health, Ok(200)),
        format_args!("{health:?}"),
    );

    let users = acked.users.lock().unwrap().clone();
    let mut missing = Vec::new();
    for (user_id, email) in &users {
        let id: String = url::form_urlencoded::byte_serialize(user_id.as_bytes()).collect();
        let found = http
            .get(format!("{base}/api/v2/users/{id}"))
            .bearer_auth(&tenant.management_token)
            .send()
            .await;
        let found = match found {
            Ok(response) if response.status() == 200 => response.json::<Value>().await.ok(),
            _ => None,
        };
        if found.is_none_or(|user| user["email"] != email.as_str()) {
            missing.push(user_id.clone());
        }
    }
    tally.case(
        format_args!(
            "cycle {cycle}: the {} users created (201) before SIGKILL are there",
            users.len()
        ),
        missing.is_empty(),
        format_args!("missing {missing:?}"),
    );

    let codes = acked.codes.lock().unwrap().clone();
    let mut replayed = Vec::new();
    for code in &codes {
        let answer = redeem(&http, base, &tenant.spa, code).await;
        if !matches!(&answer, Ok((status, body)) if refused_invalid_grant(*status, body)) {
            replayed.push(format!("{answer:?}"));
        }
    }
    tally.case(
        format_args!(
            "cycle {cycle}: the {} codes redeemed before SIGKILL stay consumed",
            codes.len()
        ),
        replayed.is_empty(),
        format_args!("{replayed:?}"),
    );

    let rotated_away = acked.rotated_away.lock().unwrap().last().cloned();
    let rotated_away = rotated_away.expect("a rotation was acknowledged");
    let answer = refresh(&http, base, &tenant.spa, &rotated_away).await;
    tally.case(
        format_args!("cycle {cycle}: the refresh token rotated away last before SIGKILL is reuse"),
        matches!(&answer, Ok((status, body)) if refused_invalid_grant(*status, body)),
        format_args!("{answer:?}"),
    );
    let newest = acked.newest.lock().unwrap().clone();
    let answer = refresh(&http, base, &tenant.spa, &newest).await;
    tally.case(
        format_args!("cycle {cycle}: that reuse revoked the family, its newest token too"),
        matches!(&answer, Ok((status, body)) if refused_invalid_grant(*status, body)),
        format_args!("{answer:?}"),
    );

    let wrong = acked.wrong.lock().unwrap().clone();
    tally.case(
        format_args!("cycle {cycle}: every write before SIGKILL succeeded or was cut off"),
        wrong.is_empty(),
        format_args!("{wrong:?}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_write() {
    let mut tally = Tally::new("durability/kill-9");
    let (tenant, mut node, mut base) = set_up_tenant().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("a browser");
    for cycle in 0..CYCLES {
        // A refresh-token family of its own, and codes to redeem under load.
        let code = authorization_code(&browser, &base, &tenant.spa).await;
        let (status, tokens) = redeem(&http_client(), &base, &tenant.spa, &code)
            .await
            .expect("the code is redeemed");
        assert_eq!(status, 200, "{tokens}");
        let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
        let mut codes = Vec::new();
        for _ in 0..3 {
            codes.push(authorization_code(&browser, &base, &tenant.spa).await);
        }
        let acked = Arc::new(Acknowledged::default());
        let tasks = write_until_killed(
            &tenant,
            &base,
            cycle,
            codes,
            refresh_token.to_string(),
            &acked,
        );
        let writing = within_30s(|| acked.counts().iter().all(|&n| n > 0)).await;
        assert!(writing, "cycle {cycle}: the writes never got going");
        // SIGKILL at a random moment while the writers go on: no shutdown, no checkpoint.
        tokio::time::sleep(Duration::from_millis(random_below(200))).await;
        node.child.kill().expect("SIGKILL");
        node.child.wait().expect("the killed server is reaped");
        for task in tasks {
            task.await
                .expect("a writer ends when its connection is cut");
        }
        (node, base) = serve(&tenant.env);
        check_cycle(&mut tally, &tenant, &base, cycle, &acked).await;
    }
    drop(node);
    tally.finish();
}

// ---- PostgreSQL restarts under load ----------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Outage {
    /// A restart or failover: sessions end with `57P01 admin_shutdown`.
    FastShutdown,
    /// `kill -9` of every PostgreSQL process; the restart runs crash recovery.
    Crash,
}

/// Clients of the in-process server during a restart: 12 asking for client-credentials
/// tokens, 3 creating users through the Management API.
struct Clients {
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicU64>,
    slowest_ms: Arc<AtomicU64>,
    acked: Arc<Acknowledged>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Clients {
    fn start(server: &TestServer, management_token: &str, round: usize) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicU64::new(0));
        let slowest_ms = Arc::new(AtomicU64::new(0));
        let acked = Arc::new(Acknowledged::default());
        let mut tasks = Vec::new();
        for client in 0..15 {
            let (stop, issued, slowest_ms, acked) = (
                stop.clone(),
                issued.clone(),
                slowest_ms.clone(),
                acked.clone(),
            );
            let (http, base) = (http_client(), server.base.clone());
            let (id, secret) = (server.m2m_client_id.clone(), server.m2m_secret.clone());
            let bearer = management_token.to_string();
            tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    if stop.load(Relaxed) {
                        return;
                    }
                    let started = Instant::now();
                    let creates_users = client >= 12;
                    let email = format!("r{round}-c{client}-{n}@durable.example");
                    let request = if creates_users {
                        http.post(format!("{base}/api/v2/users"))
                            .bearer_auth(&bearer)
                            .json(&json!({"connection": DATABASE_CONNECTION, "email": email, "password": PASSWORD}))
                    } else {
                        http.post(format!("{base}/oauth/token")).form(&[
                            ("grant_type", "client_credentials"),
                            ("client_id", &id),
                            ("client_secret", &secret),
                            ("audience", API),
                        ])
                    };
                    let answer = request.send().await;
                    let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    slowest_ms.fetch_max(took, Relaxed);
                    let response = match answer {
                        Ok(response) => response,
                        Err(error) => {
                            acked.wrong.lock().unwrap().push(format!("{error}"));
                            continue;
                        }
                    };
                    let status = response.status().as_u16();
                    let retry_after = response.headers().contains_key("retry-after");
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    match status {
                        200 if !creates_users => {
                            issued.fetch_add(1, Relaxed);
                        }
                        201 if creates_users => {
                            let user_id = body["user_id"].as_str().unwrap_or_default();
                            acked.users.lock().unwrap().push((user_id.to_string(), email));
                        }
                        503 if retry_after => {
                            // A refused client waits a little, as a real one would.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        _ => acked.wrong.lock().unwrap().push(format!("{status} {body}")),
                    }
                }
            }));
        }
        Clients {
            stop,
            issued,
            slowest_ms,
            acked,
            tasks,
        }
    }

    fn issued(&self) -> u64 {
        self.issued.load(Relaxed)
    }

    fn users(&self) -> usize {
        self.acked.users.lock().unwrap().len()
    }

    /// Stops the clients; returns the longest request.
    async fn finish(self) -> (Duration, Arc<Acknowledged>) {
        self.stop.store(true, Relaxed);
        for task in self.tasks {
            task.await.expect("a client ends");
        }
        (
            Duration::from_millis(self.slowest_ms.load(Relaxed)),
            self.acked,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_under_load_cost_only_503s() {
    let mut tally = Tally::new("durability/postgres-restarts");
    let mut database = PgServer::start();
    let server = spawn_on(&database.database()).await;
    let management = server
        .management_token(&["create:users", "read:users"])
        .await;
    let rounds = [Outage::FastShutdown, Outage::Crash, Outage::FastShutdown];
    for (round, outage) in rounds.into_iter().enumerate() {
        let what = format!("round {round} ({outage:?})");
        let clients = Clients::start(&server, &management, round);
        let going = within_30s(|| clients.issued() > 20 && clients.users() > 0).await;
        assert!(going, "{what}: the load never got going");

        tokio::task::block_in_place(|| match outage {
            Outage::FastShutdown => database.stop(),
            Outage::Crash => database.crash(),
        });
        let opened = within_30s(|| server.store.pool_stats().failing_fast).await;
        tally.case(
            format_args!("{what}: the circuit breaker opens while PostgreSQL is down"),
            opened,
            "it stayed closed",
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        tokio::task::block_in_place(|| database.resume());
        let (issued, users) = (clients.issued(), clients.users());
        let recovered =
            within_30s(|| clients.issued() > issued + 20 && clients.users() > users).await;
        tally.case(
            format_args!("{what}: tokens and writes resume once PostgreSQL is back"),
            recovered,
            "no recovery within 30 s",
        );

        let (slowest, acked) = clients.finish().await;
        let wrong = acked.wrong.lock().unwrap().clone();
        tally.case(
            format_args!("{what}: every answer is a success or 503 with Retry-After"),
            wrong.is_empty(),
            format_args!("{wrong:?}"),
        );
        tally.case(
            format_args!("{what}: no request hangs (the slowest took {slowest:?})"),
            slowest < Duration::from_secs(15),
            format_args!("{slowest:?}"),
        );
        let users = acked.users.lock().unwrap().clone();
        let mut missing = Vec::new();
        for (user_id, email) in &users {
            match server.store.find_user(user_id).await {
                Ok(Some(user)) if user.email.as_ref() == Some(email) => {}
                other => missing.push(format!("{user_id}: {other:?}")),
            }
        }
        tally.case(
            format_args!(
                "{what}: the {} users created (201) around the outage are there",
                users.len()
            ),
            missing.is_empty(),
            format_args!("{missing:?}"),
        );
        let closed = within_30s(|| !server.store.pool_stats().failing_fast).await;
        tally.case(
            format_args!("{what}: the circuit breaker closes again"),
            closed,
            "it stayed open",
        );
    }
    tally.finish();
}

// ---- files holding user data -----------------------------------------------------------

/// The permission bits of `path` in octal, as `chmod` takes them (`"600"`), or why not.
fn mode(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(metadata) => format!("{:o}", metadata.permissions().mode() & 0o777),
        Err(error) => format!("({error})"),
    }
}

/// `env.command()` under umask 022, the usual default, which leaves new files readable by
/// every user unless they are created otherwise.
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

fn expect_mode(tally: &mut Tally, path: &Path, expected: &str) {
    let got = mode(path);
    tally.case(
        format_args!("{} is {expected} under umask 022", path.display()),
        got == expected,
        got,
    );
}

/// Issue 10, defect 9: the database (with SQLite's `-wal` and `-shm`), the master key and
/// the dev TLS keys are created 0600 in directories created 0700; an existing database or
/// master key open to other users is used, with a warning naming the file and the fix.
#[test]
fn files_holding_user_data_are_the_owners_alone() {
    let mut tally = Tally::new("durability/file-modes");

    // tessera serve, its database in directories that do not exist yet.
    let env = Env::new(TESSERA);
    let data = env.path().join("data");
    let nested = data.join("nested");
    let mut command = under_umask_022(&env);
    command
        .env(
            "TESSERA_DATABASE_URL",
            format!("sqlite://{}", nested.join("tessera.db").display()),
        )
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(command);
    server.wait_listening();
    for dir in [&data, &nested] {
        expect_mode(&mut tally, dir, "700");
    }
    for file in [
        "tessera.db",
        "tessera.db-wal",
        "tessera.db-shm",
        "master.key",
    ] {
        expect_mode(&mut tally, &nested.join(file), "600");
    }
    drop(server);

    // tessera dev --tls: the data directory and the TLS keys. With its port taken it stops
    // right after creating them.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    let dev_data = env.path().join("dev-data");
    let output = under_umask_022(&env)
        .args(["dev", "--tls", "--port", &port, "--data-dir"])
        .arg(&dev_data)
        .arg("--spa-dir")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/jquery-spa"
        ))
        .output()
        .expect("tessera dev runs");
    assert!(!output.status.success(), "the port is taken");
    let tls = dev_data.join("tls");
    expect_mode(&mut tally, &dev_data, "700");
    expect_mode(&mut tally, &tls, "700");
    for key in ["ca-key.pem", "localhost-key.pem"] {
        expect_mode(&mut tally, &tls.join(key), "600");
    }

    // An operator's mistake: files made readable by everyone. Tessera starts and says so.
    let env = Env::new(TESSERA);
    // Creates the database, the master key and the signing keys.
    env.ok(&["keys", "list"]);
    for file in ["tessera.db", "master.key"] {
        let path = env.path().join(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let mut command = env.command();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(command);
    let lines = server.wait_for("listening on http://", Duration::from_secs(10));
    for (file, what) in [
        ("tessera.db", "database file"),
        ("master.key", "master key file"),
    ] {
        let path = env.path().join(file);
        let warning = format!(
            "warning: {what} {} has mode 0644: other users may read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
        tally.case(
            format_args!("a {what} readable by others is named at start, with the fix"),
            lines.contains(&warning),
            format_args!("{lines:?}"),
        );
    }
    drop(server);
    // The operator's fix. The server was killed, so SQLite's -wal and -shm (made with the
    // database's mode, 0644 then) may still be there: they are warned about and fixed too.
    for file in [
        "tessera.db",
        "tessera.db-wal",
        "tessera.db-shm",
        "master.key",
    ] {
        let path = env.path().join(file);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }
    let output = env.run(&["apis", "list"]);
    assert_success(&["apis", "list"], &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    tally.case(
        "after chmod 600 there is no warning",
        !stderr.contains("warning"),
        stderr,
    );
    tally.finish();
}
