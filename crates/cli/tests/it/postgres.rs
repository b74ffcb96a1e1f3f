//! Two `tessera serve` nodes on one PostgreSQL database (a throwaway server, see
//! `tessera_testkit::pg`), set up with the CLI: what one node issues, the other
//! honours — tokens verify against either node's keys, a code from one is redeemed at the
//! other (a replay at the first is caught), a refresh token from one is rotated at the other
//! (reuse is caught across them), and a key rotation made with the CLI reaches both.

use std::process::Command;

use base64::Engine as _;
use serde_json::Value;
use tessera_testkit::pg::PgServer;
use tessera_testkit::process::{Env, Running, assert_success};
use tessera_testkit::{
    browser, client_credentials, location, oauth_token, pkce_challenge, sign_in_at,
};

use crate::TESSERA;

const API: &str = "https://messages.example/api";
const CALLBACK: &str = "http://localhost:3000/callback";
const EMAIL: &str = "shared@example.com";
const PASSWORD: &str = "an unusual passphrase";
const ISSUER: &str = "http://auth.example.test/";
const VERIFIER: &str = "a-code-verifier-of-the-required-length-43-chars";

/// Every node and admin command: the same database and the same master key.
struct Cluster {
    env: Env,
    database_url: String,
    master_key: String,
}

impl Cluster {
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
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
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
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn serve(&self) -> (Running, String) {
        let mut command = self.command();
        command.args(["serve", "--listen", "127.0.0.1:0", "--issuer", ISSUER]);
        let mut node = Running::spawn(command);
        let base = node.wait_listening();
        (node, base)
    }
}

/// Signs in at `base` and returns the authorization code.
async fn sign_in_for_a_code(base: &str, client_id: &str) -> String {
    let browser = browser();
    let challenge = pkce_challenge(VERIFIER);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email offline_access read:messages")
        .append_pair("audience", API)
        .append_pair("state", "s")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let response = browser
        .get(format!("{base}/authorize?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let login = location(&response);
    assert!(login.starts_with("/u/login"), "{login}");
    let back = sign_in_at(&browser, base, &login, EMAIL, PASSWORD).await;
    let back = url::Url::parse(&back).unwrap();
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    back.query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code")
}

async fn jwks(base: &str) -> Value {
    reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `kid` in a JWT's header.
fn kid(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_database_honour_each_others_tokens() {
    let database = PgServer::start();
    let cluster = Cluster {
        env: Env::new(TESSERA),
        database_url: database.database(),
        master_key: "5e".repeat(32),
    };
    cluster.json(
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
    let spa = cluster.json(
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
    let spa_id = spa["client_id"].as_str().unwrap().to_string();
    let m2m = cluster.json(
        &["apps", "create", "--name", "Backend", "--type", "m2m"],
        None,
    );
    let m2m_id = m2m["client_id"].as_str().unwrap().to_string();
    let m2m_secret = m2m["client_secret"].as_str().unwrap().to_string();
    cluster.json(
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
    cluster.json(
        &["users", "create", "--email", EMAIL, "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );

    // Node A creates the signing keys at its first start; node B finds them.
    let (_node_a, a) = cluster.serve();
    let (_node_b, b) = cluster.serve();
    assert_eq!(jwks(&a).await, jwks(&b).await, "one key set");

    // Client credentials at A; the token's key is published by B.
    let http = reqwest::Client::new();
    let (status, body) = client_credentials(&http, &a, &m2m_id, &m2m_secret, API).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let published = jwks(&b).await;
    assert!(
        published["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|key| key["kid"] == kid(access)),
        "B publishes the key A signed with"
    );

    // A code from A is redeemed at B, and only once: the replay at A also revokes the
    // refresh token it gave.
    let code = sign_in_for_a_code(&a, &spa_id).await;
    let (status, tokens) = oauth_token(&http, &b, &redeem(&spa_id, &code)).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, replay) = oauth_token(&http, &a, &redeem(&spa_id, &code)).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let revoked = tokens["refresh_token"].as_str().expect("a refresh token");
    let (status, _) = oauth_token(&http, &a, &refresh(&spa_id, revoked)).await;
    assert_eq!(status, 400, "the replay at A revoked what B issued");

    // Both nodes' /userinfo accept the access token B issued.
    for base in [&a, &b] {
        let response = reqwest::Client::new()
            .get(format!("{base}/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let info: Value = response.json().await.unwrap();
        assert_eq!(info["email"], EMAIL);
    }

    // A refresh token from A is rotated at B; presenting it again at A is reuse, which
    // revokes the family everywhere.
    let code = sign_in_for_a_code(&b, &spa_id).await;
    let (status, tokens) = oauth_token(&http, &a, &redeem(&spa_id, &code)).await;
    assert_eq!(status, 200, "{tokens}");
    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, rotated) = oauth_token(&http, &b, &refresh(&spa_id, first)).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap();
    let (status, reused) = oauth_token(&http, &a, &refresh(&spa_id, first)).await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = oauth_token(&http, &b, &refresh(&spa_id, second)).await;
    assert_eq!(status, 400, "the reuse revoked the family on every node");

    // A key rotation made with the CLI reaches both nodes.
    let rotation = cluster.json(&["keys", "rotate"], None);
    let new_next = rotation["next"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for base in [&a, &b] {
        loop {
            let published = jwks(base).await;
            if published["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|key| key["kid"] == new_next.as_str())
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{base} did not publish {new_next}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
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

/// With PostgreSQL there is no file to keep a master key beside: `serve` asks for one. And
/// whatever goes wrong with a PostgreSQL URL, its password is not printed.
#[test]
fn postgres_needs_a_configured_master_key_and_never_prints_the_password() {
    let database = PgServer::start();
    let env = Env::new(TESSERA);
    let output = env
        .command()
        .env("TESSERA_DATABASE_URL", database.database())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("with PostgreSQL, set TESSERA_MASTER_KEY or master_key_file"),
        "{stderr}"
    );

    const SECRET: &str = "pa55-w0rd-in-url";
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (url, expected) in [
        (
            format!("postgres://tessera:{SECRET}@db.example:notaport/tessera"),
            "invalid database URL",
        ),
        (
            format!("postgres://tessera:{SECRET}@127.0.0.1:{closed_port}/tessera"),
            "the database is unavailable",
        ),
    ] {
        let (code, stderr) = env.fails(&["apis", "list", "--database-url", &url]);
        assert_eq!(code, 1);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains(SECRET), "{stderr}");
    }
}
