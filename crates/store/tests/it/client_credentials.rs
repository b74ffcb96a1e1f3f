//! Applications' private_key_jwt credentials on both backends: at most two per
//! application, found only under their application, expired and deleted; a client
//! assertion's `jti` accepted once, per application, and purged after it expires.

use tessera_core::{AppType, Client};
use tessera_store::*;

on_both_backends!(
    credentials_are_bounded_and_belong_to_their_application,
    an_assertion_jti_is_accepted_once_and_purged,
);

fn app(id: &str) -> Client {
    Client {
        client_id: id.into(),
        name: "Service".into(),
        app_type: AppType::NonInteractive,
        secret_hash: Some(vec![1]),
        token_endpoint_auth_method: "client_secret_post".into(),
        callbacks: vec![],
        web_origins: vec![],
        allowed_logout_urls: vec![],
        grant_types: vec!["client_credentials".into()],
        is_first_party: true,
        allowed_apis: None,
        refresh: Default::default(),
        profile: Default::default(),
        require_pushed_authorization_requests: false,
        private_key_jwt_credentials: None,
        created_at: 1,
        updated_at: 1,
        oidc_logout: None,
    }
}

fn credential(id: &str, client_id: &str, created_at: i64) -> ClientCredential {
    ClientCredential {
        id: id.into(),
        client_id: client_id.into(),
        name: format!("key {id}"),
        kid: format!("kid-{id}"),
        alg: "RS256".into(),
        public_key: vec![0x30, 0x00],
        created_at,
        updated_at: created_at,
        expires_at: None,
    }
}

async fn credentials_are_bounded_and_belong_to_their_application(store: &Store) {
    store.create_client(&app("a")).await.unwrap();
    store.create_client(&app("b")).await.unwrap();
    store
        .add_client_credential(&credential("cred_1", "a", 10))
        .await
        .unwrap();
    store
        .add_client_credential(&credential("cred_2", "a", 11))
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_client_credential(&credential("cred_3", "a", 12))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .add_client_credential(&credential("cred_x", "nobody", 12))
            .await
            .is_err(),
        "no application, no credential"
    );
    let listed = store.client_credentials_of("a").await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["cred_1", "cred_2"]
    );
    assert_eq!(listed[0], credential("cred_1", "a", 10));
    // Another application's id finds nothing, changes nothing, deletes nothing.
    assert_eq!(store.client_credential("b", "cred_1").await.unwrap(), None);
    assert!(matches!(
        store
            .set_client_credential_expiry("b", "cred_1", Some(5), 20)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_client_credential("b", "cred_1").await,
        Err(StoreError::NotFound(_))
    ));
    let expiring = store
        .set_client_credential_expiry("a", "cred_1", Some(500), 20)
        .await
        .unwrap();
    assert_eq!((expiring.expires_at, expiring.updated_at), (Some(500), 20));
    store.delete_client_credential("a", "cred_2").await.unwrap();
    assert_eq!(store.client_credentials_of("a").await.unwrap().len(), 1);
    store
        .add_client_credential(&credential("cred_3", "a", 12))
        .await
        .unwrap();
    // Gone with their application.
    store.delete_client("a").await.unwrap();
    assert!(store.client_credentials_of("a").await.unwrap().is_empty());
}

async fn an_assertion_jti_is_accepted_once_and_purged(store: &Store) {
    assert!(store.use_client_assertion("a", "jti-1", 100).await.unwrap());
    assert!(!store.use_client_assertion("a", "jti-1", 100).await.unwrap());
    assert!(
        store.use_client_assertion("b", "jti-1", 100).await.unwrap(),
        "a jti is one application's"
    );
    let counts = store.purge_expired(99).await.unwrap();
    assert_eq!(counts.client_assertions, 0);
    assert!(!store.use_client_assertion("a", "jti-1", 100).await.unwrap());
    let counts = store.purge_expired(100).await.unwrap();
    assert_eq!(counts.client_assertions, 2);
}
