//! TLS between Tessera and PostgreSQL, against a real server that refuses plaintext TCP
//! (`hostssl` only, see `tessera_testkit::pg`). The URL's libpq-style parameters choose the
//! mode: `sslmode=verify-full` (certificate and host name), `verify-ca` (certificate only),
//! `require` (encrypted, unverified), and `sslrootcert` for a private CA.

use tessera_store::Store;
use tessera_testkit::pg::PgServer;

const PASSWORD: &str = "pw-that-must-not-leak";

/// A self-signed certificate for `names` and its key, both PEM.
fn certificate(names: &[&str]) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(
        names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>(),
    )
    .expect("a test certificate");
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

/// The server's URL for a fresh database, with a password (which `trust` ignores, and
/// which no error may repeat) and the given query parameters.
fn url(server: &PgServer, query: &str) -> String {
    let plain = server.database();
    let with_password = plain.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    format!("{with_password}?{query}")
}

/// The whole error chain, as `tessera serve` prints it.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
    text
}

async fn connect_fails(url: &str) -> String {
    match Store::connect(url).await {
        Ok(_) => panic!("connected, but should not have"),
        Err(error) => chain(&error),
    }
}

#[tokio::test]
async fn verify_full_connects_over_tls_with_a_private_ca_and_plaintext_is_refused() {
    let (cert, key) = certificate(&["localhost", "127.0.0.1"]);
    let server = PgServer::start_with_tls(&cert, &key);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();

    let verified = url(
        &server,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let store = Store::connect(&verified).await.expect("connect over TLS");
    store.ping().await.expect("a query over TLS");
    // Schema and writes work as usual over the encrypted connection.
    assert!(store.published_keys().await.expect("read").is_empty());

    // The same server refuses the same client without TLS: so the connection above was
    // encrypted.
    let error = connect_fails(&url(&server, "sslmode=disable")).await;
    assert!(error.contains("no encryption"), "{error}");
}

#[tokio::test]
async fn an_unknown_certificate_authority_or_a_wrong_host_name_is_refused() {
    let (cert, key) = certificate(&["db.example.test"]);
    let server = PgServer::start_with_tls(&cert, &key);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();

    // Not signed by a public CA, and no `sslrootcert`.
    let error = connect_fails(&url(&server, "sslmode=verify-full")).await;
    assert!(error.contains("TLS"), "{error}");
    assert!(error.to_lowercase().contains("issuer"), "{error}");

    // The right CA, but the certificate is for another host than 127.0.0.1.
    let error = connect_fails(&url(
        &server,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ))
    .await;
    assert!(error.contains("TLS"), "{error}");
    assert!(error.to_lowercase().contains("name"), "{error}");

    // verify-ca checks the chain only, as libpq's does.
    let store = Store::connect(&url(
        &server,
        &format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    ))
    .await
    .expect("verify-ca ignores the host name");
    store.ping().await.unwrap();

    // require: encrypted, certificate unchecked (libpq's meaning, for servers with
    // self-signed certificates on a trusted network).
    let store = Store::connect(&url(&server, "sslmode=require"))
        .await
        .expect("require does not verify");
    store.ping().await.unwrap();
}

#[tokio::test]
async fn requiring_tls_from_a_server_without_it_fails_clearly() {
    let server = PgServer::start();
    let error = connect_fails(&url(&server, "sslmode=require")).await;
    assert!(error.contains("server does not support TLS"), "{error}");

    // The default (`prefer`) still connects to it in plaintext, like libpq.
    Store::connect(&url(&server, ""))
        .await
        .expect("prefer falls back to plaintext");
}

#[tokio::test]
async fn a_missing_root_certificate_file_is_named() {
    let (cert, key) = certificate(&["127.0.0.1"]);
    let server = PgServer::start_with_tls(&cert, &key);
    let error = connect_fails(&url(
        &server,
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ))
    .await;
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");
}
