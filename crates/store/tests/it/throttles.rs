//! Throttle windows and failed-login counts on both backends. Windows: attempts counted in one window until it ends, a new
//! window after, keys and kinds apart, concurrent attempts all counted; the purge takes
//! ended windows, more than a batch of them at once.

use tessera_store::*;

on_both_backends!(
    attempts_count_in_fixed_windows_that_end,
    failed_login_counts_below_the_lockout_are_forgotten_when_stale,
);

async fn attempts_count_in_fixed_windows_that_end(store: &Store) {
    let first = store
        .count_attempt("login", "192.0.2.1", 60, 1_000)
        .await
        .unwrap();
    assert_eq!(
        first,
        Attempts {
            count: 1,
            ends_at: 1_060
        }
    );
    let second = store
        .count_attempt("login", "192.0.2.1", 60, 1_030)
        .await
        .unwrap();
    assert_eq!(
        second,
        Attempts {
            count: 2,
            ends_at: 1_060
        },
        "the same window"
    );
    assert_eq!(
        store
            .count_attempt("login", "192.0.2.2", 60, 1_030)
            .await
            .unwrap()
            .count,
        1,
        "another key"
    );
    assert_eq!(
        store
            .count_attempt("other", "192.0.2.1", 60, 1_030)
            .await
            .unwrap()
            .count,
        1,
        "another kind"
    );
    let after = store
        .count_attempt("login", "192.0.2.1", 60, 1_060)
        .await
        .unwrap();
    assert_eq!(
        after,
        Attempts {
            count: 1,
            ends_at: 1_120
        },
        "a new window"
    );

    // Attempts at once (several nodes would send them so) are each counted.
    let counted = futures_util::future::join_all(
        (0..20).map(|_| store.count_attempt("login", "198.51.100.7", 60, 2_000)),
    )
    .await;
    let mut counts: Vec<i64> = counted.into_iter().map(|a| a.unwrap().count).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<_>>());

    // Windows ended by 1_120 (the first two keys' and the other kind's) go.
    assert_eq!(
        store.purge_expired(1_120).await.unwrap().throttle_windows,
        3
    );

    // A flood from more networks than one purge batch holds is emptied by one purge.
    let flood = PURGE_BATCH as usize * 2 + 500;
    let keys: Vec<String> = (0..flood).map(|i| format!("2001:db8:{i:x}::")).collect();
    let counted = futures_util::future::join_all(
        keys.iter()
            .map(|key| store.count_attempt("login", key, 60, 1_500)),
    )
    .await;
    assert!(counted.into_iter().all(|c| c.unwrap().count == 1));
    assert_eq!(
        store.purge_expired(1_560).await.unwrap().throttle_windows,
        flood as u64
    );
    assert_eq!(
        store
            .count_attempt("login", "198.51.100.7", 60, 2_010)
            .await
            .unwrap()
            .count,
        21,
        "a window still open is kept"
    );
}

async fn failed_login_counts_below_the_lockout_are_forgotten_when_stale(store: &Store) {
    let lockout = 10;
    // A made-up address guessed once, long ago; an account locked long ago; a count that
    // is recent.
    store
        .record_login_failure("made-up@example.com", "192.0.2.1", 100)
        .await
        .unwrap();
    for _ in 0..lockout {
        store
            .record_login_failure("locked@example.com", "192.0.2.1", 100)
            .await
            .unwrap();
    }
    store
        .record_login_failure("recent@example.com", "192.0.2.1", 5_000)
        .await
        .unwrap();

    assert_eq!(
        store
            .forget_stale_login_failures(1_000, lockout)
            .await
            .unwrap(),
        1
    );
    let count = |email: &'static str| store.login_failures(email, "192.0.2.1");
    assert_eq!(
        count("made-up@example.com").await.unwrap(),
        0,
        "stale and below: forgotten"
    );
    assert_eq!(
        count("locked@example.com").await.unwrap(),
        lockout,
        "at the lockout: kept"
    );
    assert_eq!(
        count("recent@example.com").await.unwrap(),
        1,
        "recent: kept"
    );
}
