//! Device authorizations on both backends: a user code is answered once, polls are paced,
//! an approved code gives its grant to one poll only, another client learns nothing, and
//! expired rows are purged.

use tessera_store::*;

on_both_backends!(
    a_device_code_is_approved_once_and_redeemed_once,
    polling_too_early_slows_down_and_denial_is_final,
    expired_device_codes_are_refused_and_purged,
);

fn new_code(hash: u8, user_code: &str, client_id: &str, expires_at: i64) -> NewDeviceCode {
    NewDeviceCode {
        device_code_hash: vec![hash; 32],
        user_code: user_code.into(),
        client_id: client_id.into(),
        scope: r#"["openid"]"#.into(),
        audience: Some("https://api".into()),
        poll_interval: 5,
        created_at: 0,
        expires_at,
    }
}

async fn a_device_code_is_approved_once_and_redeemed_once(store: &Store) {
    assert!(
        store
            .create_device_code(&new_code(1, "BCDFGHJK", "tv", 900))
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_device_code(&new_code(2, "BCDFGHJK", "tv", 900))
            .await
            .unwrap(),
        "a user code names one device"
    );
    let pending = store.pending_device_code("BCDFGHJK", 10).await.unwrap();
    assert_eq!(
        pending,
        Some(PendingDeviceCode {
            client_id: "tv".into(),
            scope: r#"["openid"]"#.into(),
            audience: Some("https://api".into()),
            expires_at: 900,
        })
    );
    assert_eq!(
        store.poll_device_code(&[1; 32], "tv", 10).await.unwrap(),
        DevicePoll::Pending
    );
    assert_eq!(
        store.poll_device_code(&[1; 32], "other", 20).await.unwrap(),
        DevicePoll::Unknown,
        "another client's device code"
    );
    assert_eq!(
        store.poll_device_code(&[9; 32], "tv", 20).await.unwrap(),
        DevicePoll::Unknown
    );
    assert!(
        !store
            .approve_device_code("BCDFGHJK", "other", "auth0|ada", "{}", 20)
            .await
            .unwrap(),
        "approved only for the client it was issued to"
    );
    assert!(
        store
            .approve_device_code("BCDFGHJK", "tv", "auth0|ada", r#"{"scope":[]}"#, 20)
            .await
            .unwrap()
    );
    assert!(
        !store
            .approve_device_code("BCDFGHJK", "tv", "auth0|eve", "{}", 21)
            .await
            .unwrap(),
        "a user code is answered once"
    );
    assert!(!store.deny_device_code("BCDFGHJK", "tv", 21).await.unwrap());
    assert_eq!(
        store.pending_device_code("BCDFGHJK", 21).await.unwrap(),
        None
    );
    assert_eq!(
        store.poll_device_code(&[1; 32], "tv", 30).await.unwrap(),
        DevicePoll::Approved {
            user_id: "auth0|ada".into(),
            grant: r#"{"scope":[]}"#.into(),
        }
    );
    assert_eq!(
        store.poll_device_code(&[1; 32], "tv", 40).await.unwrap(),
        DevicePoll::Redeemed
    );
}

async fn polling_too_early_slows_down_and_denial_is_final(store: &Store) {
    store
        .create_device_code(&new_code(3, "CDFGHJKL", "tv", 900))
        .await
        .unwrap();
    assert_eq!(
        store.poll_device_code(&[3; 32], "tv", 100).await.unwrap(),
        DevicePoll::Pending
    );
    assert_eq!(
        store.poll_device_code(&[3; 32], "tv", 104).await.unwrap(),
        DevicePoll::SlowDown
    );
    // The interval is 10 now: 9 seconds later is still too early.
    assert_eq!(
        store.poll_device_code(&[3; 32], "tv", 113).await.unwrap(),
        DevicePoll::SlowDown
    );
    assert_eq!(
        store.poll_device_code(&[3; 32], "tv", 128).await.unwrap(),
        DevicePoll::Pending
    );
    assert!(store.deny_device_code("CDFGHJKL", "tv", 130).await.unwrap());
    assert!(
        !store
            .approve_device_code("CDFGHJKL", "tv", "auth0|ada", "{}", 131)
            .await
            .unwrap()
    );
    assert_eq!(
        store.poll_device_code(&[3; 32], "tv", 200).await.unwrap(),
        DevicePoll::Denied
    );
}

async fn expired_device_codes_are_refused_and_purged(store: &Store) {
    store
        .create_device_code(&new_code(4, "DFGHJKLM", "tv", 50))
        .await
        .unwrap();
    store
        .create_device_code(&new_code(5, "FGHJKLMN", "tv", 500))
        .await
        .unwrap();
    assert_eq!(
        store.pending_device_code("DFGHJKLM", 50).await.unwrap(),
        None
    );
    assert!(
        !store
            .approve_device_code("DFGHJKLM", "tv", "auth0|ada", "{}", 60)
            .await
            .unwrap()
    );
    assert_eq!(
        store.poll_device_code(&[4; 32], "tv", 60).await.unwrap(),
        DevicePoll::Expired
    );
    let counts = store.purge_expired(100).await.unwrap();
    assert_eq!(counts.device_codes, 1);
    assert_eq!(
        store.poll_device_code(&[4; 32], "tv", 100).await.unwrap(),
        DevicePoll::Unknown
    );
    assert!(
        store
            .create_device_code(&new_code(6, "DFGHJKLM", "tv", 900))
            .await
            .unwrap(),
        "a purged user code can be drawn again"
    );
    assert!(
        store
            .pending_device_code("FGHJKLMN", 100)
            .await
            .unwrap()
            .is_some()
    );
}
