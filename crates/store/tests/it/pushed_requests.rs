//! Pushed authorization requests on both backends: taken once, by their client only,
//! before they expire; the purge takes the expired.

use tessera_store::*;

on_both_backends!(a_pushed_request_is_taken_once_by_its_client_before_it_expires);

async fn a_pushed_request_is_taken_once_by_its_client_before_it_expires(store: &Store) {
    store
        .push_request(b"uri-1", "app", "response_type=code", 160)
        .await
        .unwrap();
    store
        .push_request(b"uri-2", "app", "scope=openid", 160)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_pushed_request(b"uri-1", "other", 100)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_pushed_request(b"uri-1", "app", 100)
            .await
            .unwrap()
            .as_deref(),
        Some("response_type=code")
    );
    assert_eq!(
        store
            .take_pushed_request(b"uri-1", "app", 100)
            .await
            .unwrap(),
        None,
        "once"
    );
    assert_eq!(
        store
            .take_pushed_request(b"uri-2", "app", 160)
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(store.purge_expired(160).await.unwrap().pushed_requests, 1);
}
