//! MFA tokens on both backends: found while live, the recovery code of an enrollment kept
//! with them, taken once, and purged when expired.

use tessera_store::*;

on_both_backends!(an_mfa_token_lives_briefly_and_finishes_once);

fn record(hash: &[u8], expires_at: i64) -> MfaTokenRecord {
    MfaTokenRecord {
        token_hash: hash.to_vec(),
        client_id: "app".into(),
        user_id: "auth0|pat".into(),
        grant: r#"{"scope":"openid"}"#.into(),
        recovery_hash: None,
        expires_at,
    }
}

async fn an_mfa_token_lives_briefly_and_finishes_once(store: &Store) {
    store
        .create_mfa_token(&record(b"token-1", 700))
        .await
        .unwrap();
    store
        .create_mfa_token(&record(b"token-2", 150))
        .await
        .unwrap();
    assert!(
        store
            .create_mfa_token(&record(b"token-1", 700))
            .await
            .is_err(),
        "one row per token"
    );
    let found = store.find_mfa_token(b"token-1", 100).await.unwrap();
    assert_eq!(found, Some(record(b"token-1", 700)));
    assert_eq!(store.find_mfa_token(b"token-3", 100).await.unwrap(), None);
    assert_eq!(
        store.find_mfa_token(b"token-2", 150).await.unwrap(),
        None,
        "expired"
    );

    assert!(
        store
            .set_mfa_token_recovery(b"token-1", b"rc", 100)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_mfa_token_recovery(b"token-2", b"rc", 150)
            .await
            .unwrap()
    );
    let taken = store
        .take_mfa_token(b"token-1", 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.recovery_hash.as_deref(), Some(&b"rc"[..]));
    assert_eq!(
        store.take_mfa_token(b"token-1", 100).await.unwrap(),
        None,
        "once"
    );
    assert_eq!(store.find_mfa_token(b"token-1", 100).await.unwrap(), None);
    assert_eq!(store.take_mfa_token(b"token-2", 150).await.unwrap(), None);

    assert_eq!(store.purge_expired(150).await.unwrap().mfa_tokens, 1);
}
