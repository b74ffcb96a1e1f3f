//! WebAuthn credentials on both backends: a credential id is registered once per tenant,
//! a counter is accepted only if it rises (or stays at zero for keys that keep none), and
//! the delete and reset of authentication methods take credentials too.

use tessera_store::*;

on_both_backends!(
    a_credential_is_registered_once_and_its_counter_only_rises,
    deleting_methods_takes_credentials,
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

fn credential(id: &str, user_id: &str, credential_id: &[u8], count: i64) -> WebauthnCredential {
    WebauthnCredential {
        id: id.into(),
        user_id: user_id.into(),
        credential_id: credential_id.to_vec(),
        public_key: b"cose".to_vec(),
        sign_count: count,
        transports: "[\"usb\"]".into(),
        kind: WEBAUTHN_ROAMING.into(),
        name: "Security key".into(),
        created_at: 10,
        last_used_at: None,
    }
}

async fn a_credential_is_registered_once_and_its_counter_only_rises(store: &Store) {
    user(store, "auth0|ada").await;
    user(store, "auth0|bob").await;
    store
        .add_webauthn_credential(&credential("wr_1", "auth0|ada", b"cred-1", 5))
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_webauthn_credential(&credential("wr_2", "auth0|bob", b"cred-1", 0))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let found = store.webauthn_credential(b"cred-1").await.unwrap().unwrap();
    assert_eq!(found, credential("wr_1", "auth0|ada", b"cred-1", 5));
    assert!(store.webauthn_credential(b"none").await.unwrap().is_none());
    assert!(
        store
            .webauthn_credentials_of("auth0|bob")
            .await
            .unwrap()
            .is_empty()
    );

    assert!(
        !store
            .use_webauthn_credential("auth0|ada", "wr_1", 5, 20)
            .await
            .unwrap(),
        "the same counter"
    );
    assert!(
        !store
            .use_webauthn_credential("auth0|ada", "wr_1", 4, 20)
            .await
            .unwrap(),
        "a lower counter"
    );
    assert!(
        !store
            .use_webauthn_credential("auth0|bob", "wr_1", 9, 20)
            .await
            .unwrap(),
        "another user's"
    );
    assert!(
        store
            .use_webauthn_credential("auth0|ada", "wr_1", 6, 21)
            .await
            .unwrap()
    );
    let listed = store.webauthn_credentials_of("auth0|ada").await.unwrap();
    assert_eq!(
        (listed[0].sign_count, listed[0].last_used_at),
        (6, Some(21))
    );
    assert!(
        !store
            .use_webauthn_credential("auth0|ada", "wr_1", 0, 22)
            .await
            .unwrap(),
        "back to zero"
    );

    // A key that keeps no counter: zero after zero.
    store
        .add_webauthn_credential(&credential("wr_3", "auth0|bob", b"cred-3", 0))
        .await
        .unwrap();
    assert!(
        store
            .use_webauthn_credential("auth0|bob", "wr_3", 0, 30)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_webauthn_credential("auth0|bob", "wr_3", 0, 31)
            .await
            .unwrap()
    );
}

async fn deleting_methods_takes_credentials(store: &Store) {
    user(store, "auth0|ada").await;
    for (id, cred) in [("wr_1", &b"c1"[..]), ("wr_2", b"c2")] {
        store
            .add_webauthn_credential(&credential(id, "auth0|ada", cred, 0))
            .await
            .unwrap();
    }
    store
        .delete_authenticator("auth0|ada", "wr_1")
        .await
        .unwrap();
    assert!(matches!(
        store.delete_authenticator("auth0|ada", "wr_1").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .webauthn_credentials_of("auth0|ada")
            .await
            .unwrap()
            .len(),
        1
    );
    // A passkey is a first factor: resetting the second factors leaves it.
    let passkey = WebauthnCredential {
        kind: PASSKEY.into(),
        ..credential("pk_1", "auth0|ada", b"passkey-1", 0)
    };
    store.add_webauthn_credential(&passkey).await.unwrap();
    assert_eq!(
        store.delete_authenticators_of("auth0|ada").await.unwrap(),
        1
    );
    let left = store.webauthn_credentials_of("auth0|ada").await.unwrap();
    assert_eq!(
        left.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["pk_1"]
    );
    store
        .delete_authenticator("auth0|ada", "pk_1")
        .await
        .unwrap();
    // The id is free again once deleted.
    store
        .add_webauthn_credential(&credential("wr_4", "auth0|ada", b"c1", 0))
        .await
        .unwrap();
}
