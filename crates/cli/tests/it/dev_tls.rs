//! `tessera dev --tls`: Tessera, the sample SPA and the sample API over https, with a
//! certificate from a local CA that only clients trusting that CA accept.

use std::time::Duration;

use serde_json::Value;
use tessera::seed::QUICKSTART_API_IDENTIFIER;
use tessera_testkit::client_credentials;
use tessera_testkit::process::{Env, Running};

use crate::TESSERA;

const READY: &str = "tessera dev ready:";
/// Set for the child process of `the_guards_default_client_trusts_the_system_roots`.
const CHILD_ISSUER: &str = "TESSERA_TEST_CHILD_ISSUER";
const CHILD_TOKEN: &str = "TESSERA_TEST_CHILD_TOKEN";

fn dev_tls(env: &Env) -> (Running, Vec<String>) {
    let mut command = env.command();
    command
        .args([
            "dev",
            "--tls",
            "--port",
            "0",
            "--spa-port",
            "0",
            "--api-port",
            "0",
            "--data-dir",
        ])
        .arg(env.path().join("dev"))
        .arg("--spa-dir")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/jquery-spa"
        ))
        .env("TESSERA_DEMO_PASSWORD", "quickstart demo pass");
    let mut running = Running::spawn(command);
    let output = running.wait_for(READY, Duration::from_secs(120));
    (running, output)
}

/// `server=… spa=… api=…` from the readiness line.
fn ready_urls(output: &[String]) -> [String; 3] {
    let line = output.iter().find(|l| l.starts_with(READY)).unwrap();
    ["server", "spa", "api"].map(|key| {
        line.split_whitespace()
            .find_map(|part| part.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_string()
    })
}

/// A client that trusts the CA in `ca_pem` and nothing else.
fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

/// A client credentials token for the quickstart API, from an M2M application made with the
/// CLI on tessera dev's database (the running server sees it within a second).
async fn machine_token(env: &Env, client: &reqwest::Client, server: &str) -> String {
    let database = format!(
        "sqlite://{}",
        env.path().join("dev").join("tessera.db").display()
    );
    let audience = QUICKSTART_API_IDENTIFIER;
    let options = ["--database-url", database.as_str()];
    let (client_id, secret) = env.m2m_app("backend", audience, "read:messages", &options);
    for _ in 0..50 {
        let (status, body) =
            client_credentials(client, server, &client_id, &secret, audience).await;
        if status == 200 {
            return body["access_token"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no token for the new application");
}

#[tokio::test]
async fn tessera_dev_tls_serves_all_three_over_https_trusted_through_its_ca_only() {
    let env = Env::new(TESSERA);
    let (running, output) = dev_tls(&env);
    let [server, spa, api] = ready_urls(&output);
    let port = server.strip_prefix("https://localhost:").unwrap();
    assert!(spa.starts_with("https://localhost:"), "{spa}");
    assert!(api.starts_with("https://localhost:"), "{api}");
    let ca_path = env.path().join("dev/tls/ca.pem").canonicalize().unwrap();
    let text = output.join("\n");
    for expected in [
        format!("CA certificate   {}", ca_path.display()),
        format!("NODE_EXTRA_CA_CERTS={}", ca_path.display()),
        format!("curl --cacert {} {server}/", ca_path.display()),
        "update-ca-certificates".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} in:\n{text}");
    }
    assert!(!text.contains("PRIVATE KEY"), "{text}");

    let ca_pem = std::fs::read_to_string(&ca_path).unwrap();
    let client = trusting(&ca_pem);
    let discovery: Value = client
        .get(format!("{server}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], format!("https://localhost:{port}/"));
    assert_eq!(
        discovery["jwks_uri"],
        format!("https://localhost:{port}/.well-known/jwks.json")
    );
    // The SPA's configuration: the domain alone, as for Auth0.
    let config: Value = client
        .get(format!("{spa}/auth_config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["domain"], format!("localhost:{port}"));
    assert_eq!(config["apiUrl"], api.as_str());
    assert_eq!(config.get("tokenIssuer"), None, "{config}");

    // The seeded application's URLs are the SPA's https origin.
    let database = format!(
        "sqlite://{}",
        env.path().join("dev").join("tessera.db").display()
    );
    let apps = env.json(&["apps", "list", "--database-url", &database]);
    let app = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Quickstart SPA")
        .unwrap();
    let expected = [spa.clone(), format!("{spa}/"), format!("{spa}/spa-js/")];
    assert_eq!(app["callbacks"], serde_json::json!(expected));
    assert_eq!(app["web_origins"], serde_json::json!(expected[..2]));

    // A client with the system's roots does not know the dev CA.
    let refused = reqwest::Client::new()
        .get(format!("{server}/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // The sample API's guard fetches discovery and keys over https, trusting the dev CA.
    let token = machine_token(&env, &client, &server).await;
    let private = client
        .get(format!("{api}/api/private"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    let scoped = client
        .get(format!("{api}/api/private-scoped"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(scoped.status(), 200);
    drop(running);

    // Again: the same CA (nothing to trust anew), the same certificate.
    let before = std::fs::read(env.path().join("dev/tls/localhost.pem")).unwrap();
    let (running, output) = dev_tls(&env);
    let text = output.join("\n");
    assert!(text.contains("the same as before"), "{text}");
    assert!(!text.contains("issued for localhost now"), "{text}");
    assert_eq!(std::fs::read_to_string(&ca_path).unwrap(), ca_pem);
    assert_eq!(
        std::fs::read(env.path().join("dev/tls/localhost.pem")).unwrap(),
        before
    );
    drop(running);
}

/// The guard's default HTTP client verifies https with the system's trusted roots (here
/// pointed at the dev CA with SSL_CERT_FILE, which rustls-native-certs honours), and
/// refuses the issuer when they do not include it. In a child process, because the roots
/// are read from the environment.
#[tokio::test]
async fn the_guards_default_client_trusts_the_system_roots() {
    let env = Env::new(TESSERA);
    let (running, output) = dev_tls(&env);
    let [server, _, _] = ready_urls(&output);
    let ca_path = env.path().join("dev/tls/ca.pem");
    let client = trusting(&std::fs::read_to_string(&ca_path).unwrap());
    let token = machine_token(&env, &client, &server).await;
    let child = |ssl_cert_file: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "dev_tls::guard_with_the_default_client_in_a_child_process",
                "--nocapture",
            ])
            .env(CHILD_ISSUER, &server)
            .env(CHILD_TOKEN, &token)
            .env_remove("SSL_CERT_DIR");
        match ssl_cert_file {
            Some(path) => command.env("SSL_CERT_FILE", path),
            None => command.env_remove("SSL_CERT_FILE"),
        };
        command.output().unwrap()
    };
    let trusted = child(Some(&ca_path));
    let stdout = String::from_utf8_lossy(&trusted.stdout);
    assert!(
        trusted.status.success() && stdout.contains("verified: sub="),
        "{stdout}\n{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let untrusted = child(None);
    let stdout = String::from_utf8_lossy(&untrusted.stdout);
    assert!(
        !untrusted.status.success() && stdout.contains("refused:"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
    drop(running);
}

/// Runs only as the child of `the_guards_default_client_trusts_the_system_roots`.
#[tokio::test]
async fn guard_with_the_default_client_in_a_child_process() {
    let (Ok(issuer), Ok(token)) = (std::env::var(CHILD_ISSUER), std::env::var(CHILD_TOKEN)) else {
        return;
    };
    let guard = tessera_guard::Guard::builder()
        .issuer(&issuer)
        .audience(QUICKSTART_API_IDENTIFIER)
        .build()
        .unwrap();
    match guard.verify(&token).await {
        Ok(claims) => println!("verified: sub={}", claims.sub()),
        Err(error) => {
            println!("refused: {error}");
            panic!("refused: {error}");
        }
    }
}
