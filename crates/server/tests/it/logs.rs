//! No secret reaches the logs, even at TRACE level for every crate.

use tessera_testkit::logs::LogCapture;
use tessera_testkit::*;

// `#[tokio::test]` runs on one thread, so the thread-local subscriber sees the server too.
#[tokio::test]
async fn no_secret_appears_in_logs() {
    let capture = LogCapture::default();
    let subscriber = capture.subscriber(tracing::Level::TRACE);
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = spawn().await;
    let browser = browser();
    let tokens = server
        .code_flow(&browser, "openid profile read:messages", Some(API))
        .await;
    let wrong = server
        .submit_login(
            &browser,
            &server.authorize_url(&[
                ("response_type", "token"),
                ("scope", "openid"),
                ("prompt", "login"),
            ]),
            "demo@example.com",
            "a wrong password",
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let (status, machine) = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", &server.m2m_secret),
            ("audience", API),
        ])
        .await;
    assert_eq!(status, 200);

    let logs = capture.text();
    assert!(logs.contains("login succeeded"), "the capture works");
    for secret in [
        PASSWORD,
        "a wrong password",
        server.m2m_secret.as_str(),
        tokens["access_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
        machine["access_token"].as_str().unwrap(),
    ] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
}
