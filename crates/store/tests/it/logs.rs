//! The audit log on both backends: appended in order with growing ids, read by
//! checkpoint, searched by each term and by date in both orders, found by id, purged by
//! age — and ids never reused after a purge that empties the log. On PostgreSQL the
//! checkpoint read is exact: an event is never returned while a lower id can still commit.

use std::time::Duration;

use serde_json::json;
use tessera_store::*;
use tessera_testkit::pg::PgServer;

on_both_backends!(
    events_are_read_by_checkpoint_in_the_order_written,
    a_search_filters_by_type_user_application_and_date,
    a_purge_takes_old_events_and_ids_keep_growing
);

fn event(date: i64, log_type: &str, user: Option<&str>, client: Option<&str>) -> LogEvent {
    LogEvent {
        date,
        log_type: log_type.into(),
        description: Some(format!("{log_type} at {date}")),
        client_id: client.map(str::to_string),
        client_name: client.map(|c| format!("App {c}")),
        user_id: user.map(str::to_string),
        user_name: user.map(|u| format!("{u}@example.com")),
        connection: Some("Username-Password-Authentication".into()),
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test/1".into()),
        audience: None,
        scope: None,
        details: json!({ "n": date }),
    }
}

fn dates(entries: &[LogEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.event.date).collect()
}

async fn events_are_read_by_checkpoint_in_the_order_written(store: &Store) {
    assert!(store.logs_after(None, 10, None).await.unwrap().is_empty());
    let batch: Vec<LogEvent> = (1..=5)
        .map(|n| {
            event(
                n * 1000,
                if n % 2 == 0 { "fp" } else { "s" },
                Some("auth0|a"),
                Some("c1"),
            )
        })
        .collect();
    store.append_logs(&batch).await.unwrap();
    store.append_logs(&[]).await.unwrap();
    store
        .append_logs(&[event(6000, "sapi", None, Some("m2m"))])
        .await
        .unwrap();

    let first = store.logs_after(None, 4, None).await.unwrap();
    assert_eq!(dates(&first), [1000, 2000, 3000, 4000]);
    assert_eq!(
        first[0].event, batch[0],
        "every field comes back as written"
    );
    // Ids sort as text as they do as numbers, and grow.
    for pair in first.windows(2) {
        assert!(pair[0].log_id < pair[1].log_id);
        assert_eq!(pair[0].log_id.len(), 20);
    }
    let last = log_id_number(&first[3].log_id).unwrap();
    let rest = store.logs_after(Some(last), 4, None).await.unwrap();
    assert_eq!(dates(&rest), [5000, 6000], "the checkpoint is exclusive");
    let after_all = log_id_number(&rest[1].log_id).unwrap();
    assert!(
        store
            .logs_after(Some(after_all), 4, None)
            .await
            .unwrap()
            .is_empty()
    );
    let failures = store.logs_after(None, 10, Some("fp")).await.unwrap();
    assert_eq!(dates(&failures), [2000, 4000]);

    let found = store.find_log(&first[2].log_id).await.unwrap().unwrap();
    assert_eq!(found, first[2]);
    // Without its zeros, the same id; nonsense and unknown ids find nothing.
    let bare = log_id_number(&first[2].log_id).unwrap().to_string();
    assert_eq!(store.find_log(&bare).await.unwrap().unwrap(), first[2]);
    for id in ["", "x", "-1", "1e3", "999999999999999999999", "99999"] {
        assert_eq!(store.find_log(id).await.unwrap(), None, "{id:?}");
    }
    assert_eq!(log_id_number("99999999999999999999"), None, "beyond i64");
}

async fn a_search_filters_by_type_user_application_and_date(store: &Store) {
    let events = [
        event(1000, "s", Some("auth0|a"), Some("c1")),
        event(2000, "fp", Some("auth0|a"), Some("c1")),
        event(3000, "s", Some("auth0|b"), Some("c2")),
        event(3000, "sapi", None, Some("m2m")),
        event(4000, "s", Some("auth0|a"), Some("c2")),
    ];
    store.append_logs(&events).await.unwrap();
    let all = Slice {
        offset: 0,
        limit: 10,
        count: true,
    };
    let search = |f: fn(&mut LogSearch)| {
        let mut search = LogSearch::default();
        f(&mut search);
        search
    };

    let newest = store.search_logs(&LogSearch::default(), all).await.unwrap();
    assert_eq!(dates(&newest.items), [4000, 3000, 3000, 2000, 1000]);
    assert_eq!(newest.total, Some(5));
    // Ties of one millisecond: the later written first, newest first.
    assert_eq!(newest.items[1].event.log_type, "sapi");
    let oldest = store
        .search_logs(&search(|s| s.oldest_first = true), all)
        .await
        .unwrap();
    assert_eq!(dates(&oldest.items), [1000, 2000, 3000, 3000, 4000]);
    assert_eq!(oldest.items[2].event.log_type, "s");

    let by_type = search(|s| s.log_type = Some("s".into()));
    let by_type = store.search_logs(&by_type, all).await.unwrap();
    assert_eq!(dates(&by_type.items), [4000, 3000, 1000]);
    let by_user = search(|s| s.user_id = Some("auth0|a".into()));
    let by_user = store.search_logs(&by_user, all).await.unwrap();
    assert_eq!(dates(&by_user.items), [4000, 2000, 1000]);
    let by_client = search(|s| s.client_id = Some("c2".into()));
    let by_client = store.search_logs(&by_client, all).await.unwrap();
    assert_eq!(dates(&by_client.items), [4000, 3000]);
    let by_date = search(|s| {
        s.from_date = Some(2000);
        s.to_date = Some(3000);
    });
    let page = store.search_logs(&by_date, all).await.unwrap();
    assert_eq!(dates(&page.items), [3000, 3000, 2000], "both ends included");
    let combined = search(|s| {
        s.log_type = Some("s".into());
        s.user_id = Some("auth0|a".into());
        s.from_date = Some(1500);
    });
    let page = store.search_logs(&combined, all).await.unwrap();
    assert_eq!(dates(&page.items), [4000]);
    assert_eq!(page.total, Some(1));
    let nobody = search(|s| s.user_id = Some("auth0|zz".into()));
    let nobody = store.search_logs(&nobody, all).await.unwrap();
    assert!(nobody.items.is_empty());

    let second = Slice {
        offset: 2,
        limit: 2,
        count: false,
    };
    let page = store
        .search_logs(&LogSearch::default(), second)
        .await
        .unwrap();
    assert_eq!(dates(&page.items), [3000, 2000]);
    assert_eq!(page.total, None);
}

async fn a_purge_takes_old_events_and_ids_keep_growing(store: &Store) {
    let old: Vec<LogEvent> = (0..(PURGE_BATCH + 5))
        .map(|n| event(n, "s", Some("auth0|a"), None))
        .collect();
    store.append_logs(&old).await.unwrap();
    store
        .append_logs(&[event(1_000_000, "fp", None, None)])
        .await
        .unwrap();
    let last_before = store.logs_after(None, 100, Some("fp")).await.unwrap()[0]
        .log_id
        .clone();

    // One batch per call, then the rest; the recent event stays.
    assert_eq!(store.purge_logs(500_000).await.unwrap(), PURGE_BATCH as u64);
    assert_eq!(store.purge_logs(500_000).await.unwrap(), 5);
    assert_eq!(store.purge_logs(500_000).await.unwrap(), 0);
    let left = store.logs_after(None, 10, None).await.unwrap();
    assert_eq!(dates(&left), [1_000_000]);

    // Emptied, the log still numbers new events after every earlier one.
    assert_eq!(store.purge_logs(2_000_000).await.unwrap(), 1);
    store
        .append_logs(&[event(3_000_000, "s", None, None)])
        .await
        .unwrap();
    let new = store.logs_after(None, 10, None).await.unwrap();
    assert_eq!(new.len(), 1);
    assert!(new[0].log_id > last_before);
}

/// Two nodes on one PostgreSQL: node A's writer holds a batch open (the row inserted, not
/// committed) while node B appends a later event. A checkpoint reader must not get the
/// later event while the earlier id can still commit — it would move past it for good.
#[tokio::test]
async fn postgres_a_checkpoint_never_passes_an_id_that_can_still_commit() {
    let server = PgServer::start();
    let url = server.database();
    let node_b = Store::connect(&url).await.unwrap();
    let reader = Store::connect(&url).await.unwrap();
    let raw = sqlx::PgPool::connect(&url).await.unwrap();

    // Node A: an insert into the log, its transaction open.
    let mut open = raw.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO logs (tenant_id, logged_at, type, details) \
         VALUES ('default', 1, 's', '{}')",
    )
    .execute(&mut *open)
    .await
    .unwrap();

    // Node B appends a later event: it waits for node A's batch rather than commit
    // an id above one still open.
    let later = tokio::spawn(async move { node_b.append_logs(&[event(2, "s", None, None)]).await });
    let mut waited = false;
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE logs%'",
        )
        .fetch_one(&raw)
        .await
        .unwrap();
        if waiting == 1 {
            waited = true;
            break;
        }
        assert!(!later.is_finished(), "the later event committed first");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(waited, "node B's append waits for node A's batch");
    assert!(
        reader.logs_after(None, 10, None).await.unwrap().is_empty(),
        "nothing is returned while the earlier id is open"
    );

    open.commit().await.unwrap();
    later.await.unwrap().unwrap();
    let read = reader.logs_after(None, 10, None).await.unwrap();
    let dates: Vec<i64> = read.iter().map(|e| e.event.date).collect();
    assert_eq!(dates, [1, 2], "both, in the order of their ids");
    assert!(read[0].log_id < read[1].log_id);
}
