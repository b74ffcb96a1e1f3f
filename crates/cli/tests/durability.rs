//! `kill -9` loses no acknowledged write: a redeemed authorization code stays redeemed
//! after the process is killed without warning and started again on the same database.

mod common;

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
