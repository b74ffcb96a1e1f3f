//! Remembered browsers on both backends: a browser is remembered for its user only, a use
//! is accepted within both timeouts and refused past either, the oldest go past the cap,
//! forgetting takes them all, and the purge takes the expired.

use tessera_store::*;

on_both_backends!(
    a_browser_is_remembered_for_its_user_within_the_timeouts,
    the_oldest_go_past_the_cap_and_forgetting_takes_all,
);

async fn user(store: &Store, id: &str) {
    let new = NewUser {
        email: format!("{}@example.com", id.trim_start_matches("auth0|")),
        password_hash: "h".into(),
        email_verified: true,
        ..Default::default()
    };
    store.create_user(&new, id, 1).await.unwrap();
}

async fn a_browser_is_remembered_for_its_user_within_the_timeouts(store: &Store) {
    user(store, "auth0|ada").await;
    user(store, "auth0|bob").await;
    store
        .remember_browser("auth0|ada", b"hash-1", 100, 1_000)
        .await
        .unwrap();
    let open = (0, 0);
    assert!(
        store
            .use_remembered_browser("auth0|ada", b"hash-1", 200, open)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_remembered_browser("auth0|bob", b"hash-1", 200, open)
            .await
            .unwrap(),
        "another user's browser"
    );
    assert!(
        !store
            .use_remembered_browser("auth0|ada", b"hash-2", 200, open)
            .await
            .unwrap(),
        "a browser never remembered"
    );
    // Created at 100: a tenant timeout that now starts after it refuses it.
    assert!(
        !store
            .use_remembered_browser("auth0|ada", b"hash-1", 300, (150, 0))
            .await
            .unwrap()
    );
    // Last used at 200: inactivity counted from there.
    assert!(
        !store
            .use_remembered_browser("auth0|ada", b"hash-1", 300, (0, 250))
            .await
            .unwrap()
    );
    assert!(
        store
            .use_remembered_browser("auth0|ada", b"hash-1", 300, (0, 150))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_remembered_browser("auth0|ada", b"hash-1", 1_000, open)
            .await
            .unwrap(),
        "expired"
    );
    let purged = store.purge_expired(1_000).await.unwrap();
    assert_eq!(purged.remembered_browsers, 1);
}

async fn the_oldest_go_past_the_cap_and_forgetting_takes_all(store: &Store) {
    user(store, "auth0|ada").await;
    for n in 0..=MAX_REMEMBERED_BROWSERS {
        let hash = format!("hash-{n}");
        store
            .remember_browser("auth0|ada", hash.as_bytes(), 100 + n, 10_000)
            .await
            .unwrap();
    }
    let open = (0, 0);
    assert!(
        !store
            .use_remembered_browser("auth0|ada", b"hash-0", 500, open)
            .await
            .unwrap(),
        "the oldest went"
    );
    assert!(
        store
            .use_remembered_browser("auth0|ada", b"hash-1", 500, open)
            .await
            .unwrap()
    );
    assert_eq!(
        store.forget_remembered_browsers("auth0|ada").await.unwrap(),
        MAX_REMEMBERED_BROWSERS as u64
    );
    assert!(
        !store
            .use_remembered_browser("auth0|ada", b"hash-1", 600, open)
            .await
            .unwrap()
    );
}
