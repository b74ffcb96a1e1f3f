//! Second factors on both backends: a TOTP enrollment is confirmed once, a code's step is
//! accepted once, a recovery code works once and is replaced, wrong codes are counted.

use tessera_store::*;

on_both_backends!(
    a_totp_authenticator_is_confirmed_once_and_each_step_accepted_once,
    a_recovery_code_works_once_and_is_replaced,
    wrong_codes_are_counted_until_cleared,
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

async fn a_totp_authenticator_is_confirmed_once_and_each_step_accepted_once(store: &Store) {
    user(store, "auth0|ada").await;
    user(store, "auth0|bob").await;
    store
        .begin_totp_enrollment("auth0|ada", "totp_1", b"sealed-1", 10)
        .await
        .unwrap();
    // A second enrollment before confirming replaces the first.
    store
        .begin_totp_enrollment("auth0|ada", "totp_2", b"sealed-2", 11)
        .await
        .unwrap();
    let listed = store.authenticators_of("auth0|ada").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].id.as_str(),
            listed[0].kind.as_str(),
            listed[0].confirmed
        ),
        ("totp_2", TOTP, false)
    );
    assert!(
        !store
            .accept_totp_step("auth0|ada", "totp_2", 100, 12)
            .await
            .unwrap(),
        "an unconfirmed authenticator accepts no code"
    );
    let recovery = ("rc_1", &b"hash-1"[..]);
    assert!(
        !store
            .confirm_totp("auth0|bob", "totp_2", 100, recovery, 12)
            .await
            .unwrap(),
        "another user's enrollment"
    );
    assert!(
        store
            .confirm_totp("auth0|ada", "totp_2", 100, recovery, 12)
            .await
            .unwrap()
    );
    assert!(
        !store
            .confirm_totp("auth0|ada", "totp_2", 101, recovery, 12)
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .begin_totp_enrollment("auth0|ada", "totp_3", b"sealed-3", 13)
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Steps: only later ones, each once.
    assert!(
        !store
            .accept_totp_step("auth0|ada", "totp_2", 100, 14)
            .await
            .unwrap()
    );
    assert!(
        !store
            .accept_totp_step("auth0|ada", "totp_2", 99, 14)
            .await
            .unwrap()
    );
    assert!(
        store
            .accept_totp_step("auth0|ada", "totp_2", 101, 14)
            .await
            .unwrap()
    );
    assert!(
        !store
            .accept_totp_step("auth0|ada", "totp_2", 101, 14)
            .await
            .unwrap()
    );
    assert!(
        !store
            .accept_totp_step("auth0|bob", "totp_2", 102, 14)
            .await
            .unwrap()
    );
    let listed = store.authenticators_of("auth0|ada").await.unwrap();
    let kinds: Vec<_> = listed
        .iter()
        .map(|a| (a.kind.as_str(), a.confirmed))
        .collect();
    assert_eq!(kinds, [(TOTP, true), (RECOVERY_CODE, true)]);
    assert_eq!(listed[0].last_step, 101);
    assert_eq!(listed[0].last_auth_at, Some(14));

    assert!(matches!(
        store.delete_authenticator("auth0|bob", "totp_2").await,
        Err(StoreError::NotFound(_))
    ));
    store
        .delete_authenticator("auth0|ada", "totp_2")
        .await
        .unwrap();
    assert_eq!(
        store.delete_authenticators_of("auth0|ada").await.unwrap(),
        1
    );
    assert!(
        store
            .authenticators_of("auth0|ada")
            .await
            .unwrap()
            .is_empty()
    );
    // They go with their user.
    store
        .begin_totp_enrollment("auth0|bob", "totp_b", b"sealed-b", 15)
        .await
        .unwrap();
    store.delete_user("auth0|bob", 0).await.unwrap();
    assert!(
        store
            .authenticators_of("auth0|bob")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_recovery_code_works_once_and_is_replaced(store: &Store) {
    user(store, "auth0|ada").await;
    store
        .regenerate_recovery_code("auth0|ada", ("rc_1", b"first"), 10)
        .await
        .unwrap();
    assert!(
        !store
            .use_recovery_code("auth0|ada", b"wrong", ("rc_x", b"x"), 11)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_recovery_code("auth0|ada", b"first", ("rc_2", b"second"), 11)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code("auth0|ada", b"first", ("rc_3", b"third"), 12)
            .await
            .unwrap()
    );
    let listed = store.authenticators_of("auth0|ada").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), &listed[0].secret[..]),
        ("rc_2", &b"second"[..])
    );
    store
        .regenerate_recovery_code("auth0|ada", ("rc_4", b"fourth"), 13)
        .await
        .unwrap();
    assert!(
        !store
            .use_recovery_code("auth0|ada", b"second", ("rc_5", b"x"), 14)
            .await
            .unwrap()
    );
    assert!(
        store
            .regenerate_recovery_code("auth0|nobody", ("rc_6", b"x"), 14)
            .await
            .is_err()
    );
}

async fn wrong_codes_are_counted_until_cleared(store: &Store) {
    user(store, "auth0|ada").await;
    assert_eq!(store.mfa_failures("auth0|ada").await.unwrap(), (0, 0));
    assert_eq!(store.record_mfa_failure("auth0|ada", 5).await.unwrap(), 1);
    assert_eq!(store.record_mfa_failure("auth0|ada", 7).await.unwrap(), 2);
    assert_eq!(store.mfa_failures("auth0|ada").await.unwrap(), (2, 7));
    store.clear_mfa_failures("auth0|ada").await.unwrap();
    assert_eq!(store.mfa_failures("auth0|ada").await.unwrap(), (0, 0));
}
