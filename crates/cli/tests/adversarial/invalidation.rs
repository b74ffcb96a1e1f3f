//! Cluster invalidation (tessera-server's `cluster`) against hostile or broken
//! notifications, on PostgreSQL: anyone who may NOTIFY on the database can send anything
//! on `tessera_invalidate` — garbage, an unknown table, a payload near PostgreSQL's limit,
//! a generation far ahead. None of it stops a node from serving, and none of it switches
//! off the backstop: a change whose notification never came (here: the trigger disabled,
//! the counter moved by hand) still holds on the node within its poll interval. On SQLite,
//! where the server keeps the same rows: a leaked secret used through its rotation, and a
//! change made behind the server's back.

use std::time::{Duration, Instant};

use tessera_testkit::pg::PgServer;
use tessera_testkit::{API, client_credentials, spawn_on_with};

use crate::harness::Tally;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_lost_notifications_never_leave_a_node_stale() {
    let mut tally = Tally::new("invalidation/notifications");
    let database = PgServer::start();
    let url = database.database();
    let server = spawn_on_with(Some(&url), |config| {
        config.invalidation_poll_interval = Duration::from_millis(200);
    })
    .await;
    let http = reqwest::Client::new();
    let issue = || {
        client_credentials(
            &http,
            &server.base,
            &server.m2m_client_id,
            &server.m2m_secret,
            API,
        )
    };
    let (status, body) = issue().await;
    assert_eq!(status, 200, "{body}");

    let mut raw = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let huge = format!(
        r#"{{"kind":"clients","id":"{}","generation":1}}"#,
        "x".repeat(7_900)
    );
    let far = format!(
        r#"{{"kind":"clients","id":"{}","generation":{}}}"#,
        server.m2m_client_id,
        i64::MAX
    );
    for (what, payload) in [
        ("not JSON", "not json"),
        ("an empty object", "{}"),
        (
            "a generation that is not a number",
            r#"{"kind":"no_such_table","generation":"seven"}"#,
        ),
        (
            "an unknown table, a negative generation",
            r#"{"kind":"no_such_table","id":null,"generation":-1}"#,
        ),
        ("7,900 bytes", &huge),
        ("the client, at generation i64::MAX", &far),
    ] {
        sqlx::query("SELECT pg_notify('tessera_invalidate', $1)")
            .bind(payload)
            .execute(&mut raw)
            .await
            .unwrap();
        // The node still issues: a forged notification can at most make it read again.
        let (status, _) = issue().await;
        tally.status(
            format_args!("a forged notification ({what}): still issuing"),
            status,
            200,
        );
    }

    // A change nobody hears of: the grant deleted with its trigger off, the counter moved
    // as the trigger would have. The cache lives a minute; only the poll can catch this.
    sqlx::query("ALTER TABLE client_grants DISABLE TRIGGER client_grants_invalidate")
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM client_grants WHERE client_id = $1")
        .bind(&server.m2m_client_id)
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE cache_generation SET generation = generation + 1")
        .execute(&mut raw)
        .await
        .unwrap();
    let bound = Duration::from_secs(10);
    let deadline = Instant::now() + bound;
    let status = loop {
        let (status, _) = issue().await;
        if status != 200 || Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tally.status(
        format_args!(
            "a deleted grant nobody was told of, after a forged far generation: refused within \
             {bound:?} (the backstop poll still runs)"
        ),
        status,
        403,
    );
    tally.finish();
}

/// On SQLite the server keeps applications and the client-credentials reads in memory
/// too. An attacker holding a leaked secret hammers the token endpoint while the
/// administrator rotates it: no request sent after the rotation was answered may succeed
/// (a read racing the rotation must not bring the old row back). And a change made behind
/// the server's back — a trigger dropped by hand, the counter set back to an older value,
/// as a restored copy would — still holds within the poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_rotated_secret_is_refused_from_the_next_request_on() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use futures_util::StreamExt as _;

    let mut tally = Tally::new("invalidation/sqlite");
    let server = tessera_testkit::spawn().await;
    let http = reqwest::Client::new();
    let issue = |secret: String| {
        let http = http.clone();
        let base = server.base.clone();
        let client_id = server.m2m_client_id.clone();
        async move { client_credentials(&http, &base, &client_id, &secret, API).await }
    };
    let (status, body) = issue(server.m2m_secret.clone()).await;
    assert_eq!(status, 200, "{body}");

    let rotated_at = Mutex::new(None::<Instant>);
    let sent_after = AtomicUsize::new(0);
    let accepted_after = AtomicUsize::new(0);
    let attacker = async {
        // Four requests in flight at a time until 200 were sent after the rotation
        // (at most 4,000 in all).
        let attempts = (0..4_000).map(|_| async {
            if sent_after.load(SeqCst) >= 200 {
                return;
            }
            let sent = Instant::now();
            let (status, _) = issue(server.m2m_secret.clone()).await;
            if rotated_at.lock().unwrap().is_some_and(|at| sent > at) {
                sent_after.fetch_add(1, SeqCst);
                if status == 200 {
                    accepted_after.fetch_add(1, SeqCst);
                }
            }
        });
        futures_util::stream::iter(attempts)
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await;
    };
    let administrator = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let token = server.management_token(&["update:client_keys"]).await;
        let rotated = http
            .post(server.url(&format!(
                "/api/v2/clients/{}/rotate-secret",
                server.m2m_client_id
            )))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(rotated.status(), 200);
        *rotated_at.lock().unwrap() = Some(Instant::now());
        let body: serde_json::Value = rotated.json().await.unwrap();
        body["client_secret"].as_str().unwrap().to_string()
    };
    let ((), new_secret) = tokio::join!(attacker, administrator);
    let sent = sent_after.load(SeqCst);
    assert!(sent > 0, "no attempt was sent after the rotation");
    let accepted = accepted_after.load(SeqCst);
    tally.case(
        format_args!("{sent} uses of the leaked secret sent after its rotation: none accepted"),
        accepted == 0,
        format_args!("{accepted} accepted"),
    );
    let (status, body) = issue(new_secret.clone()).await;
    assert_eq!(status, 200, "the new secret: {body}");

    // Behind the server's back (another connection to the file): the grant's trigger
    // dropped, the grant deleted (nothing bumps the counter), the counter set back to 0.
    let url = format!("sqlite://{}", server.store.path().unwrap().display());
    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    for statement in [
        "DROP TRIGGER client_grants_invalidate_delete",
        "DELETE FROM client_grants",
        "UPDATE cache_generation SET generation = 0",
    ] {
        sqlx::query(statement).execute(&mut raw).await.unwrap();
    }
    let bound = Duration::from_secs(5);
    let deadline = Instant::now() + bound;
    let status = loop {
        let (status, _) = issue(new_secret.clone()).await;
        if status != 200 || Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tally.status(
        format_args!(
            "a grant deleted behind the server's back, the counter set back: refused within \
             {bound:?}"
        ),
        status,
        403,
    );
    tally.finish();
}
