//! On SQLite the server keeps applications, APIs, the tenant's settings and the
//! client-credentials reads in memory too: its own writes show at once, and what another
//! process (the CLI) writes to the same file within a second (the polled counter).

use std::time::{Duration, Instant};

use serde_json::json;
use tessera_store::{ClientUpdate, Store};
use tessera_testkit::*;

/// A client-credentials request: the status. `audience: None` relies on the tenant's
/// default audience.
async fn client_credentials(server: &TestServer, audience: Option<&str>) -> u16 {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", server.m2m_client_id.as_str()),
        ("client_secret", server.m2m_secret.as_str()),
    ];
    if let Some(audience) = audience {
        form.push(("audience", audience));
    }
    reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `/authorize` for the SPA with `callback`: the status.
async fn authorize_to(server: &TestServer, callback: &str) -> u16 {
    let url = format!(
        "{}?response_type=code&client_id={}&redirect_uri={callback}&scope=openid&state=s",
        server.url("/authorize"),
        server.spa_client_id
    );
    browser().get(url).send().await.unwrap().status().as_u16()
}

/// Waits (at most two seconds) until `request` answers `status`.
async fn within_two_seconds<F: Future<Output = u16>>(
    status: u16,
    what: &str,
    request: impl Fn() -> F,
) {
    let started = Instant::now();
    while request().await != status {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what}: still not {status} after two seconds"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_this_process_show_at_once_and_another_processes_within_a_second() {
    let server = spawn().await;
    // Read and kept: no default audience; the machine's grant.
    assert_ne!(client_credentials(&server, None).await, 200);
    assert_eq!(client_credentials(&server, Some(API)).await, 200);

    // Another process on the same file, as the CLI is: nothing it does reaches the
    // server's memory but through the database.
    let url = format!("sqlite://{}", server.store.path().unwrap().display());
    let other = Store::connect(&url).await.unwrap();
    let mut patch = tessera_core::Metadata::new();
    patch.insert("default_audience".into(), json!(API));
    other.patch_tenant_settings(&patch).await.unwrap();
    within_two_seconds(200, "the default audience set by another process", || {
        client_credentials(&server, None)
    })
    .await;
    let no_machine_grant = ClientUpdate {
        grant_types: Some(vec!["authorization_code".into()]),
        ..Default::default()
    };
    other
        .update_client(&server.m2m_client_id, &no_machine_grant, now())
        .await
        .unwrap();
    within_two_seconds(403, "the grant taken away by another process", || {
        client_credentials(&server, Some(API))
    })
    .await;
    // A request that writes nothing (an unregistered callback is refused before the
    // sign-in starts) learns of it from the poll alone, not from a commit of its own.
    const MOVED: &str = "http://localhost:3000/moved";
    assert_eq!(authorize_to(&server, MOVED).await, 400);
    let moved = ClientUpdate {
        callbacks: Some(vec![MOVED.into()]),
        ..Default::default()
    };
    other
        .update_client(&server.spa_client_id, &moved, now())
        .await
        .unwrap();
    within_two_seconds(302, "the callback registered by another process", || {
        authorize_to(&server, MOVED)
    })
    .await;
    other.close().await;

    // This process's own writes: the very next request sees them.
    let machine_grant = ClientUpdate {
        grant_types: Some(vec!["client_credentials".into()]),
        ..Default::default()
    };
    server
        .store
        .update_client(&server.m2m_client_id, &machine_grant, now())
        .await
        .unwrap();
    assert_eq!(client_credentials(&server, Some(API)).await, 200);
    patch.insert("default_audience".into(), json!(null));
    server.store.patch_tenant_settings(&patch).await.unwrap();
    assert_ne!(client_credentials(&server, None).await, 200);
    server
        .store
        .update_client(&server.m2m_client_id, &no_machine_grant, now())
        .await
        .unwrap();
    assert_eq!(client_credentials(&server, Some(API)).await, 403);
}
