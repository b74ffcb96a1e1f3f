//! Log streams (migration 0033) on both backends: created with the cursor at the newest
//! event, changed, limited per tenant, claimed by one owner at a time, the cursor moving
//! forward only, failures counted up to a suspension, resumed.

use serde_json::json;
use tessera_store::*;

on_both_backends!(
    a_stream_starts_at_the_newest_event_and_changes,
    one_owner_delivers_a_stream_at_a_time
);

fn log_event(n: i64) -> LogEvent {
    LogEvent {
        date: n,
        log_type: "s".into(),
        description: Some(format!("event {n}")),
        details: json!({}),
        ..LogEvent::default()
    }
}

fn stream(id: &str) -> LogStream {
    LogStream {
        id: id.into(),
        name: format!("stream {id}"),
        stream_type: "http".into(),
        status: "active".into(),
        sink: json!({"httpEndpoint": "https://logs.example/in", "httpContentFormat": "JSONLINES"})
            .as_object()
            .unwrap()
            .clone(),
        sealed_authorization: Some(vec![1, 2, 3]),
        filters: json!([]),
        is_priority: false,
        cursor: 0,
        failures: 0,
        last_error: None,
        next_attempt_at: 0,
        created_at: 10,
        updated_at: 10,
    }
}

async fn a_stream_starts_at_the_newest_event_and_changes(store: &Store) {
    store
        .append_logs(&[log_event(1), log_event(2)])
        .await
        .unwrap();
    let newest = store.logs_after(None, 10, None).await.unwrap();
    let newest = log_id_number(&newest[1].log_id).unwrap();

    let created = store.create_log_stream(&stream("lst_1")).await.unwrap();
    assert_eq!(created.cursor, newest, "what happens from now on");
    let found = store.find_log_stream("lst_1").await.unwrap().unwrap();
    assert_eq!(found, created);
    assert!(matches!(
        store.create_log_stream(&stream("lst_1")).await,
        Err(StoreError::Conflict("a log stream with this id"))
    ));
    assert_eq!(store.find_log_stream("lst_2").await.unwrap(), None);

    // Suspended after failures, then set active: the failures are forgotten.
    let owner = "node-a";
    store
        .claim_log_stream("lst_1", owner, 100, 200)
        .await
        .unwrap()
        .unwrap();
    store
        .log_stream_failed("lst_1", owner, "HTTP 500", 150, 1)
        .await
        .unwrap();
    let suspended = store.find_log_stream("lst_1").await.unwrap().unwrap();
    assert_eq!(suspended.status, "suspended");
    assert_eq!(suspended.failures, 1);
    assert_eq!(suspended.last_error.as_deref(), Some("HTTP 500"));
    let update = LogStreamUpdate {
        name: Some("renamed".into()),
        status: Some("active".into()),
        sealed_authorization: Some(None),
        filters: Some(json!([{"type": "category", "name": "auth.login.fail"}])),
        ..LogStreamUpdate::default()
    };
    let changed = store.update_log_stream("lst_1", &update, 20).await.unwrap();
    assert_eq!(
        (
            changed.name.as_str(),
            changed.status.as_str(),
            changed.failures,
            changed.next_attempt_at,
            changed.last_error.as_deref(),
            changed.sealed_authorization.as_deref(),
            changed.updated_at,
        ),
        ("renamed", "active", 0, 0, None, None, 20)
    );
    assert_eq!(
        store.find_log_stream("lst_1").await.unwrap().unwrap(),
        changed
    );
    assert_eq!(changed.sink, created.sink, "what the update left alone");
    assert!(matches!(
        store
            .update_log_stream("lst_9", &LogStreamUpdate::default(), 1)
            .await,
        Err(StoreError::NotFound("log stream"))
    ));

    // The tenant's limit.
    for n in 2..=MAX_LOG_STREAMS {
        store
            .create_log_stream(&stream(&format!("lst_{n}")))
            .await
            .unwrap();
    }
    assert!(matches!(
        store.create_log_stream(&stream("lst_extra")).await,
        Err(StoreError::Conflict("the tenant's limit of log streams"))
    ));
    assert_eq!(
        store.list_log_streams().await.unwrap().len() as i64,
        MAX_LOG_STREAMS
    );
    store.delete_log_stream("lst_1").await.unwrap();
    assert!(matches!(
        store.delete_log_stream("lst_1").await,
        Err(StoreError::NotFound("log stream"))
    ));
    assert_eq!(store.find_log_stream("lst_1").await.unwrap(), None);
    store.create_log_stream(&stream("lst_extra")).await.unwrap();
}

async fn one_owner_delivers_a_stream_at_a_time(store: &Store) {
    store.create_log_stream(&stream("lst_1")).await.unwrap();
    let claimed = store
        .claim_log_stream("lst_1", "node-a", 1000, 2000)
        .await
        .unwrap();
    assert!(claimed.is_some());
    assert_eq!(
        store
            .claim_log_stream("lst_1", "node-b", 1500, 2500)
            .await
            .unwrap(),
        None,
        "held by node-a until 2000"
    );
    // node-a's lease ran out; node-b takes it, and node-a's late answer changes nothing.
    assert!(
        store
            .claim_log_stream("lst_1", "node-b", 2001, 3000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !store
            .log_stream_delivered("lst_1", "node-a", 50)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .log_stream_failed("lst_1", "node-a", "x", 0, 3)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .log_stream_delivered("lst_1", "node-b", 40)
            .await
            .unwrap()
    );
    let after = store.find_log_stream("lst_1").await.unwrap().unwrap();
    assert_eq!((after.cursor, after.failures), (40, 0));

    // The cursor only moves forward.
    store
        .claim_log_stream("lst_1", "node-a", 3001, 4000)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .log_stream_delivered("lst_1", "node-a", 30)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .find_log_stream("lst_1")
            .await
            .unwrap()
            .unwrap()
            .cursor,
        40
    );

    // Failures back off (not claimable before next_attempt_at) and suspend at the third.
    for failure in 1..=3 {
        let now = 10_000 * failure;
        store
            .claim_log_stream("lst_1", "node-a", now, now + 1000)
            .await
            .unwrap()
            .unwrap();
        let counted = store
            .log_stream_failed("lst_1", "node-a", "HTTP 503", now + 5000, 3)
            .await
            .unwrap();
        assert_eq!(counted, Some(failure));
        assert_eq!(
            store
                .claim_log_stream("lst_1", "node-a", now + 4999, now + 6000)
                .await
                .unwrap(),
            None,
            "not due yet"
        );
    }
    let suspended = store.find_log_stream("lst_1").await.unwrap().unwrap();
    assert_eq!(
        (suspended.status.as_str(), suspended.cursor),
        ("suspended", 40)
    );
    assert_eq!(
        store
            .claim_log_stream("lst_1", "node-a", i64::MAX - 1, i64::MAX)
            .await
            .unwrap(),
        None,
        "a suspended stream is not delivered"
    );
    // A paused one neither.
    let resume = LogStreamUpdate {
        status: Some("paused".into()),
        ..LogStreamUpdate::default()
    };
    store.update_log_stream("lst_1", &resume, 1).await.unwrap();
    assert_eq!(
        store
            .claim_log_stream("lst_1", "node-a", 5, 6)
            .await
            .unwrap(),
        None
    );
    let resume = LogStreamUpdate {
        status: Some("active".into()),
        ..LogStreamUpdate::default()
    };
    store.update_log_stream("lst_1", &resume, 2).await.unwrap();
    let again = store
        .claim_log_stream("lst_1", "node-a", 5, 6)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.cursor, again.failures), (40, 0), "from the cursor");
}
