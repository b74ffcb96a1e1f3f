//! A scope description given to `tessera apis create|update` is what a running `tessera serve`
//! shows on a third-party application's consent page: the real binary for both, a
//! browser-like HTTP client for the sign-in.

use std::time::{Duration, Instant};

use tessera_testkit::process::{Env, Running};
use tessera_testkit::{browser, location, pkce_challenge, sign_in_at};

use crate::TESSERA;

const API: &str = "https://messages.example/api";
const CALLBACK: &str = "http://localhost:3000/callback";
const EMAIL: &str = "reader@example.com";
const PASSWORD: &str = "an unusual passphrase";

/// `/authorize` for a code with PKCE, as the application would send it.
fn authorize_url(base: &str, client_id: &str) -> String {
    let challenge = pkce_challenge(&"v".repeat(43));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid read:messages write:messages")
        .append_pair("audience", API)
        .append_pair("state", "s")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{base}/authorize?{query}")
}

/// Signs in (unless the browser has a session) and returns the consent page's HTML.
async fn consent_page(browser: &reqwest::Client, base: &str, authorize: &str) -> String {
    let response = browser.get(authorize).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let mut to = location(&response);
    if to.starts_with("/u/login") {
        to = sign_in_at(browser, base, &to, EMAIL, PASSWORD).await;
    }
    assert!(
        to.starts_with("/u/consent?state="),
        "expected the consent page, went to {to}"
    );
    let response = browser.get(format!("{base}{to}")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn descriptions_set_with_the_cli_are_shown_on_the_consent_page() {
    let env = Env::new(TESSERA);
    env.json(&[
        "apis",
        "create",
        "--name",
        "Messages",
        "--identifier",
        API,
        "--scopes",
        "read:messages,write:messages",
        "--scope-description",
        "read:messages=Read your messages & <drafts>",
    ]);
    let app = env.json(&[
        "apps",
        "create",
        "--name",
        "Partner",
        "--type",
        "spa",
        "--callbacks",
        CALLBACK,
        "--third-party",
    ]);
    let client_id = app["client_id"].as_str().unwrap().to_string();
    env.ok_with_stdin(
        &["users", "create", "--email", EMAIL, "--password-stdin"],
        PASSWORD,
    );

    let mut command = env.command();
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Running::spawn(command);
    let base = server.wait_listening();
    let browser = browser();
    let authorize = authorize_url(&base, &client_id);

    let page = consent_page(&browser, &base, &authorize).await;
    assert!(
        page.contains(
            "<span class=\"scope-description\">Read your messages &#38; &#60;drafts&#62;</span> \
             <code class=\"scope-value\">read:messages</code>"
        ),
        "the description, HTML-escaped, beside its scope: {page}"
    );
    assert!(
        page.contains(
            "<span class=\"scope-description\">write:messages</span> \
             <code class=\"scope-value\">write:messages</code>"
        ),
        "a scope without a description is shown by its name: {page}"
    );

    // Changed while the server runs: the next consent page shows it, with no restart.
    env.json(&[
        "apis",
        "update",
        API,
        "--scope-description",
        "write:messages=Send messages in your name",
    ]);
    let changed_at = Instant::now();
    loop {
        let page = consent_page(&browser, &base, &authorize).await;
        if page.contains("Send messages in your name") {
            assert!(page.contains("Read your messages &#38; &#60;drafts&#62;"));
            break;
        }
        assert!(
            changed_at.elapsed() < Duration::from_secs(5),
            "the consent page still shows the old descriptions: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
}
