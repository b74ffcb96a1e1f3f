//! Cluster invalidation (tessera-server's `cluster`) against hostile or broken
//! notifications, on PostgreSQL: anyone who may NOTIFY on the database can send anything
//! on `tessera_invalidate` — garbage, an unknown table, a payload near PostgreSQL's limit,
//! a generation far ahead. None of it stops a node from serving, and none of it switches
//! off the backstop: a change whose notification never came (here: the trigger disabled,
//! the counter moved by hand) still holds on the node within its poll interval.

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
