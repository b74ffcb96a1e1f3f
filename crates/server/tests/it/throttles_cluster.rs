//! Throttles on two nodes sharing one PostgreSQL database: behind a round-robin balancer
//! each node alone would let a client try as many times again as there are nodes. The
//! login throttle of a client network, and the reset codes one address may be sent:
//! requests alternate between the nodes, the one past the limit is refused (429 with
//! Retry-After) on whichever node it reaches, and another network or address still has its
//! own budget.

use serde_json::json;
use tessera_core::{AppType, PASSWORD_GRANT};
use tessera_server::MailConfig;
use tessera_testkit::pg::PgServer;
use tessera_testkit::smtp::SmtpReceiver;
use tessera_testkit::*;

const LIMIT: u32 = 4;

async fn guess(base: &str, client_id: &str, secret: &str, n: u32, from: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .header("x-forwarded-for", from)
        .form(&[
            ("grant_type", PASSWORD_GRANT),
            ("client_id", client_id),
            ("client_secret", secret),
            ("username", &format!("nobody-{n}@example.com")),
            ("password", "not-the-password"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_networks_login_attempts_are_counted_by_every_node_together() {
    let database = PgServer::start();
    let url = database.database();
    let limited = |config: &mut tessera_server::ServerConfig| {
        config.login_attempts_per_minute = LIMIT;
        // The test's requests come from loopback: a trusted proxy, so the forwarded
        // address is the end user's (two networks below).
        config.trusted_proxies = tessera_server::TrustedProxies::parse(["127.0.0.1"]).unwrap();
    };
    let first = spawn_on_with(Some(&url), limited).await;
    let (second_base, second) = another_node(&first, &url, limited).await;
    let secret = "a-web-application-secret-long-enough";
    let mut web = client("Web", AppType::RegularWeb, Some(secret));
    web.grant_types.push(PASSWORD_GRANT.to_string());
    first.store.create_client(&web).await.unwrap();
    let nodes = [first.base.as_str(), second_base.as_str()];

    for n in 0..LIMIT {
        let node = nodes[n as usize % 2];
        let response = guess(node, &web.client_id, secret, n, "203.0.113.9").await;
        assert_eq!(
            response.status(),
            403,
            "guess {n} at {node}: a wrong password"
        );
    }
    // Each node has counted two: alone, either would let the next one through.
    for node in nodes {
        let response = guess(node, &web.client_id, secret, 99, "203.0.113.9").await;
        assert_eq!(response.status(), 429, "past the cluster's limit at {node}");
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    let other = guess(nodes[1], &web.client_id, secret, 100, "198.51.100.4").await;
    assert_eq!(other.status(), 403, "another network keeps its own budget");
    second.stop().await;
}

/// Asks `base` to mail a reset code to `email` for the seeded SPA: the answer's status.
async fn ask_for_code(base: &str, client_id: &str, email: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/dbconnections/change_password"))
        .json(&json!({
            "client_id": client_id,
            "connection": "Username-Password-Authentication",
            "email": email,
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reset_codes_one_address_is_sent_are_counted_by_every_node_together() {
    let database = PgServer::start();
    let url = database.database();
    let smtp = SmtpReceiver::start().await;
    let relay = smtp.url();
    let with_mail = move |config: &mut tessera_server::ServerConfig| {
        config.mail = Some(MailConfig::smtp(&relay, "Tessera <no-reply@example.com>").unwrap());
    };
    let first = spawn_on_with(Some(&url), with_mail.clone()).await;
    let (second_base, second) = another_node(&first, &url, with_mail).await;
    let nodes = [first.base.as_str(), second_base.as_str()];
    // Five codes an hour per address, whoever asks.
    for n in 0..5 {
        let node = nodes[n % 2];
        let response = ask_for_code(node, &first.spa_client_id, &first.user_email).await;
        assert_eq!(response.status(), 200, "code {n} at {node}");
    }
    for node in nodes {
        let response = ask_for_code(node, &first.spa_client_id, &first.user_email).await;
        assert_eq!(response.status(), 429, "a sixth code at {node}");
    }
    let other = ask_for_code(nodes[1], &first.spa_client_id, "someone-else@example.com").await;
    assert_eq!(other.status(), 200, "another address keeps its own budget");
    second.stop().await;
}
