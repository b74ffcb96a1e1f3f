//! Cluster invalidation (migration 0032): on PostgreSQL a committed write to a cached
//! table notifies every listener and bumps the generation; a failed write, and the
//! token and login tables, say nothing; a listener whose connection was killed says so
//! and listens again. SQLite has no listener; its writer reads the counter after each commit.

use std::time::Duration;

use tessera_core::ClientGrant;
use tessera_store::*;
use tessera_testkit::pg::PgServer;

use crate::store::{api, client};

/// A bound on each wait: a notification arrives in milliseconds, or the test fails.
const WAIT: Duration = Duration::from_secs(10);

async fn next(listener: &mut Invalidations) -> Heard {
    tokio::time::timeout(WAIT, listener.next())
        .await
        .expect("a notification within the bound")
        .expect("the listener works")
}

/// What the listener hears up to the generation the store is at now: every change
/// since `after`, one generation each, in commit order.
async fn heard_since(listener: &mut Invalidations, store: &Store, after: i64) -> Vec<Changed> {
    let now = store.cache_generation().await.unwrap();
    let mut changes = Vec::new();
    for expected in after + 1..=now {
        match next(listener).await {
            Heard::Change {
                changed,
                generation,
            } => {
                assert_eq!(generation, expected, "{changed:?}");
                changes.push(changed);
            }
            Heard::Lost => panic!("the connection was lost"),
        }
    }
    changes
}

fn code(hash: u8) -> NewCode {
    NewCode {
        session_client: None,
        code_hash: vec![hash; 32],
        client_id: "c1".into(),
        user_id: "u".into(),
        redirect_uri: "http://x/cb".into(),
        grant: "{}".into(),
        created_at: 0,
        expires_at: i64::MAX,
    }
}

#[tokio::test]
async fn postgres_notifies_committed_writes_to_cached_tables_only() {
    let server = PgServer::start();
    let url = server.database();
    let store = Store::connect(&url).await.unwrap();
    assert!(store.is_shared());
    let mut listener = store.invalidations().await.unwrap().expect("a listener");
    let start = store.cache_generation().await.unwrap();

    // A client is enabled for the default database connection as it is created.
    store.create_client(&client("c1")).await.unwrap();
    let mut seen = start;
    let changes = heard_since(&mut listener, &store, seen).await;
    assert!(
        changes.contains(&Changed::Client("c1".into())),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .all(|c| matches!(c, Changed::Client(_) | Changed::Connection(_))),
        "{changes:?}"
    );
    seen += changes.len() as i64;
    store
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    assert_eq!(
        heard_since(&mut listener, &store, seen).await,
        [Changed::ResourceServer("https://a".into())]
    );
    seen += 1;
    let grant = ClientGrant {
        id: "g1".into(),
        client_id: "c1".into(),
        audience: "https://a".into(),
        scope: vec!["read".into()],
        created_at: 1,
    };
    store.create_client_grant(&grant).await.unwrap();
    // A grant names its client: what a node cached for that client goes.
    assert_eq!(
        heard_since(&mut listener, &store, seen).await,
        [Changed::Client("c1".into())]
    );
    seen += 1;

    // Refused writes (a duplicate client, a grant for an unknown id) commit nothing, so
    // they notify nothing and bump nothing; the token and login paths never notify.
    assert!(store.create_client(&client("c1")).await.is_err());
    assert!(store.delete_client_grant("no-such-grant").await.is_err());
    store.create_code(&code(1)).await.unwrap();
    store.redeem_code(&[1; 32], 1).await.unwrap();
    let user = NewUser {
        email: "u@example.com".into(),
        password_hash: "h".into(),
        ..Default::default()
    };
    store.create_user(&user, "auth0|u", 1).await.unwrap();
    assert_eq!(store.cache_generation().await.unwrap(), seen);

    store.delete_client_grant("g1").await.unwrap();
    assert_eq!(
        heard_since(&mut listener, &store, seen).await,
        [Changed::Client("c1".into())]
    );
    seen += 1;

    // A NOTIFY on the channel that is not the trigger's is skipped, not misread.
    let mut raw = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify($1, 'not an invalidation')")
        .bind(INVALIDATION_CHANNEL)
        .execute(&mut raw)
        .await
        .unwrap();
    store
        .update_client_grant("g2", &["read".into()])
        .await
        .unwrap_err();
    store
        .create_resource_server(&api("https://b"))
        .await
        .unwrap();
    assert_eq!(
        heard_since(&mut listener, &store, seen).await,
        [Changed::ResourceServer("https://b".into())]
    );
    seen += 1;

    // The listener's connection is killed: it says so (whatever was committed meanwhile
    // was not heard, so the node flushes), and it listens again.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN %'",
    )
    .fetch_all(&mut raw)
    .await
    .unwrap();
    assert_eq!(killed, [true], "one listening connection");
    assert_eq!(next(&mut listener).await, Heard::Lost);
    store.delete_client("c1").await.unwrap();
    let changes = heard_since(&mut listener, &store, seen).await;
    assert!(
        changes.contains(&Changed::Client("c1".into())),
        "{changes:?}"
    );
}

#[tokio::test]
async fn sqlite_has_no_listener_and_its_writes_move_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url).await.unwrap();
    assert!(!store.is_shared());
    assert!(store.invalidations().await.unwrap().is_none());
    assert_eq!(store.cache_generation_seen(), 0);

    // A write to a cached table moves the counter, and the writer knows it by the time
    // the write returns (no read of the counter in between: its connection's update hook
    // saw the triggers' bump).
    store.create_client(&client("c1")).await.unwrap();
    let seen = store.cache_generation_seen();
    assert!(
        seen > 0,
        "the client's creation did not move what the store saw"
    );
    // Refused writes and the token and login tables move nothing.
    assert!(store.create_client(&client("c1")).await.is_err());
    store.create_code(&code(1)).await.unwrap();
    store.redeem_code(&[1; 32], 1).await.unwrap();
    let user = NewUser {
        email: "u@example.com".into(),
        password_hash: "h".into(),
        ..Default::default()
    };
    store.create_user(&user, "auth0|u", 1).await.unwrap();
    assert_eq!(
        store.cache_generation_seen(),
        seen,
        "moved by a write to no cached table"
    );
    // (The client's row and its default connection's: two bumps in one commit.)
    let counter = store.cache_generation().await.unwrap();
    assert_eq!(counter, 2);
    assert_eq!(store.cache_generation_seen(), counter);
    let seen = counter;

    // Another process's write (a handle of its own, as the CLI's): this one learns of it
    // when it reads the counter, or at its own next commit.
    let other = Store::connect(&url).await.unwrap();
    other
        .create_resource_server(&api("https://a/"))
        .await
        .unwrap();
    other.close().await;
    assert_eq!(store.cache_generation_seen(), seen, "nothing told it yet");
    assert_eq!(store.cache_generation().await.unwrap(), seen + 1);
    assert_eq!(store.cache_generation_seen(), seen + 1);
}
