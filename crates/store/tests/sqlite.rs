//! The store against a real SQLite file. (The same suite will run against PostgreSQL.)

use tessera_core::{AppType, Client, ClientGrant, ResourceServer, Scope, TokenDialect};
use tessera_store::*;

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nested/dir/t.db").display());
    (Store::connect(&url).await.unwrap(), dir)
}

fn api(identifier: &str) -> ResourceServer {
    ResourceServer {
        id: format!("id-{identifier}"),
        name: "API".into(),
        identifier: identifier.into(),
        signing_alg: "RS256".into(),
        token_lifetime: 60,
        allow_offline_access: false,
        token_dialect: TokenDialect::AccessToken,
        enforce_policies: false,
        scopes: vec![Scope {
            value: "read".into(),
            description: "Read".into(),
        }],
        created_at: 1,
        updated_at: 1,
    }
}

fn client(id: &str) -> Client {
    Client {
        client_id: id.into(),
        name: "App".into(),
        app_type: AppType::NonInteractive,
        secret_hash: Some(vec![1, 2, 3]),
        token_endpoint_auth_method: "client_secret_post".into(),
        callbacks: vec![],
        web_origins: vec!["http://localhost:3000/".into()],
        allowed_logout_urls: vec![],
        grant_types: vec!["client_credentials".into()],
        is_first_party: true,
        allowed_apis: None,
        refresh: tessera_core::RefreshPolicy::default(),
        created_at: 1,
        updated_at: 1,
    }
}

fn code(hash: u8, expires_at: i64) -> NewCode {
    NewCode {
        code_hash: vec![hash; 32],
        client_id: "c".into(),
        user_id: "u".into(),
        redirect_uri: "http://x/cb".into(),
        grant: "{}".into(),
        created_at: 0,
        expires_at,
    }
}

#[tokio::test]
async fn connect_creates_parent_directories_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a/b/c.db").display());
    let first = Store::connect(&url).await.unwrap();
    first
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    first.close().await;
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(
        again.list_resource_servers().await.unwrap().len(),
        1,
        "data survives reopening; migrations rerun safely"
    );
    assert!(matches!(
        Store::connect("postgres://nope").await,
        Err(StoreError::BadUrl(_))
    ));
    assert!(matches!(
        Store::connect("sqlite://").await,
        Err(StoreError::BadUrl(_))
    ));
}

#[tokio::test]
async fn resource_servers_crud_and_conflicts() {
    let (store, _dir) = store().await;
    store
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    let duplicate = store
        .create_resource_server(&ResourceServer {
            id: "other".into(),
            ..api("https://a")
        })
        .await;
    assert!(matches!(duplicate, Err(StoreError::Conflict(_))));
    let found = store
        .find_resource_server("https://a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, api("https://a"));
    assert_eq!(
        store
            .find_resource_server("id-https://a")
            .await
            .unwrap()
            .unwrap()
            .identifier,
        "https://a"
    );
    let update = ResourceServerUpdate {
        name: Some("Renamed".into()),
        token_lifetime: Some(120),
        ..Default::default()
    };
    let updated = store
        .update_resource_server("id-https://a", &update, 5)
        .await
        .unwrap();
    assert_eq!(
        (
            updated.name.as_str(),
            updated.token_lifetime,
            updated.updated_at
        ),
        ("Renamed", 120, 5)
    );
    store.delete_resource_server("id-https://a").await.unwrap();
    assert!(matches!(
        store.delete_resource_server("id-https://a").await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn machine_access_joins_client_api_and_grant() {
    let (store, _dir) = store().await;
    store
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    store.create_client(&client("c1")).await.unwrap();
    let access = store
        .machine_access("c1", "https://a")
        .await
        .unwrap()
        .unwrap();
    assert!(access.api.is_some() && access.grant.is_none());
    let grant = ClientGrant {
        id: "g1".into(),
        client_id: "c1".into(),
        audience: "https://a".into(),
        scope: vec!["read".into()],
        created_at: 1,
    };
    store.create_client_grant(&grant).await.unwrap();
    assert!(matches!(
        store
            .create_client_grant(&ClientGrant {
                id: "g2".into(),
                ..grant.clone()
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    let dangling = ClientGrant {
        id: "g3".into(),
        audience: "https://missing".into(),
        ..grant.clone()
    };
    assert!(matches!(
        store.create_client_grant(&dangling).await,
        Err(StoreError::NotFound(_))
    ));
    let access = store
        .machine_access("c1", "https://a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(access.grant.unwrap(), grant);
    assert_eq!(access.client, client("c1"));
    assert!(
        store
            .machine_access("c1", "https://none")
            .await
            .unwrap()
            .unwrap()
            .api
            .is_none()
    );
    assert!(
        store
            .machine_access("nobody", "https://a")
            .await
            .unwrap()
            .is_none()
    );
    // Deleting the client removes its grants.
    store.delete_client("c1").await.unwrap();
    assert!(store.list_client_grants(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn origins_are_matched_with_or_without_a_trailing_slash() {
    let (store, _dir) = store().await;
    store.create_client(&client("c1")).await.unwrap();
    assert!(
        store
            .origin_registered("http://localhost:3000")
            .await
            .unwrap()
    );
    assert!(
        !store
            .origin_registered("http://localhost:3001")
            .await
            .unwrap()
    );
    assert!(!store.origin_registered("' OR 1=1 --").await.unwrap());
}

#[tokio::test]
async fn a_code_is_redeemed_once_even_under_concurrency() {
    let (store, _dir) = store().await;
    store.create_code(&code(7, i64::MAX)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.redeem_code(&[7; 32], 10).await.unwrap()
        }));
    }
    let mut redeemed = 0;
    for task in tasks {
        match task.await.unwrap() {
            CodeRedemption::Redeemed(_) => redeemed += 1,
            CodeRedemption::AlreadyUsed(record) => assert_eq!(record.client_id, "c"),
            CodeRedemption::NotFound => panic!("the code exists"),
        }
    }
    assert_eq!(redeemed, 1);
    assert!(matches!(
        store.redeem_code(&[9; 32], 10).await.unwrap(),
        CodeRedemption::NotFound
    ));
}

#[tokio::test]
async fn purge_removes_only_expired_rows_in_batches() {
    let (store, _dir) = store().await;
    for i in 0..5u8 {
        store.create_code(&code(i, 100)).await.unwrap();
    }
    store.create_code(&code(200, 1_000)).await.unwrap();
    let tx = TransactionRecord {
        id: "t".into(),
        csrf_hash: vec![1],
        request: "{}".into(),
        expires_at: 50,
    };
    store.create_transaction(&tx, 0).await.unwrap();
    let counts = store.purge_expired(100).await.unwrap();
    assert_eq!(
        counts,
        PurgeCounts {
            codes: 5,
            sessions: 0,
            transactions: 1,
            opaque_tokens: 0,
            refresh_tokens: 0,
        }
    );
    assert!(matches!(
        store.redeem_code(&[200; 32], 0).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert_eq!(
        store.purge_expired(100).await.unwrap(),
        PurgeCounts::default()
    );
}

#[tokio::test]
async fn login_failures_count_per_account_and_address() {
    let (store, _dir) = store().await;
    for expected in 1..=3 {
        assert_eq!(
            store
                .record_login_failure("A@x.io", "1.1.1.1", 0)
                .await
                .unwrap(),
            expected
        );
    }
    assert_eq!(store.login_failures("a@x.io", "1.1.1.1").await.unwrap(), 3);
    assert_eq!(store.login_failures("a@x.io", "2.2.2.2").await.unwrap(), 0);
    store
        .record_login_failure("a@x.io", "2.2.2.2", 0)
        .await
        .unwrap();
    store
        .clear_login_failures("a@x.io", Some("1.1.1.1"))
        .await
        .unwrap();
    assert_eq!(store.login_failures("a@x.io", "1.1.1.1").await.unwrap(), 0);
    assert_eq!(store.login_failures("a@x.io", "2.2.2.2").await.unwrap(), 1);
    store.clear_login_failures("a@x.io", None).await.unwrap();
    assert_eq!(store.login_failures("a@x.io", "2.2.2.2").await.unwrap(), 0);
}

#[tokio::test]
async fn users_are_unique_per_email_case_insensitively() {
    let (store, _dir) = store().await;
    let new = NewUser {
        email: "Demo@Example.com".into(),
        password_hash: "h".into(),
        email_verified: false,
        name: None,
        nickname: None,
        picture: None,
    };
    let user = store.create_user(&new, "auth0|1", 3).await.unwrap();
    assert_eq!(
        (user.email.as_str(), user.nickname.as_str()),
        ("demo@example.com", "demo")
    );
    assert!(user.picture.starts_with("data:image/svg+xml"));
    let again = store
        .create_user(
            &NewUser {
                email: "demo@example.com ".into(),
                ..new.clone()
            },
            "auth0|2",
            3,
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))));
    let (found, hash) = store
        .find_user_with_password("DEMO@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.user_id.as_str(), hash.as_deref()),
        ("auth0|1", Some("h"))
    );
    store.set_user_blocked("auth0|1", true, 4).await.unwrap();
    assert!(store.find_user("auth0|1").await.unwrap().unwrap().blocked);
}

async fn refresh_family(store: &Store, token: u8, expires_at: i64) -> String {
    let new = NewUser {
        email: format!("r{token}@x.io"),
        password_hash: "h".into(),
        email_verified: false,
        name: None,
        nickname: None,
        picture: None,
    };
    let user_id = format!("auth0|r{token}");
    store.create_user(&new, &user_id, 0).await.unwrap();
    let family = NewRefreshFamily {
        family_id: format!("f{token}"),
        client_id: "c".into(),
        user_id,
        grant: "{}".into(),
        code_hash: Some(vec![token; 32]),
        sid: Some(format!("sid{token}")),
        created_at: 0,
        expires_at,
    };
    store
        .create_refresh_family(&family, &[token; 32], 1_000)
        .await
        .unwrap();
    family.family_id
}

const TIMING: RefreshTiming = RefreshTiming {
    idle_lifetime: 100,
    reuse_interval: 0,
};

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let (store, _dir) = store().await;
    refresh_family(&store, 1, 10_000).await;
    assert!(matches!(
        store
            .rotate_refresh_token(&[1; 32], &[2; 32], "other-client", TIMING, 10)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    ));
    assert!(matches!(
        store
            .rotate_refresh_token(&[1; 32], &[2; 32], "c", TIMING, 10)
            .await
            .unwrap(),
        RefreshRotation::Rotated(_)
    ));
    assert!(matches!(
        store
            .rotate_refresh_token(&[2; 32], &[3; 32], "c", TIMING, 20)
            .await
            .unwrap(),
        RefreshRotation::Rotated(_)
    ));
    // The first token again: reuse. The family dies, newest token included.
    assert!(matches!(
        store
            .rotate_refresh_token(&[1; 32], &[4; 32], "c", TIMING, 30)
            .await
            .unwrap(),
        RefreshRotation::Reused
    ));
    assert!(matches!(
        store
            .rotate_refresh_token(&[3; 32], &[5; 32], "c", TIMING, 31)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    ));
}

#[tokio::test]
async fn refresh_tokens_expire_idle_and_absolute_and_honour_the_reuse_interval() {
    let (store, _dir) = store().await;
    refresh_family(&store, 1, 10_000).await;
    // Idle: the first token's idle end is 1000.
    assert!(matches!(
        store
            .rotate_refresh_token(&[1; 32], &[2; 32], "c", TIMING, 1_000)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    ));
    refresh_family(&store, 10, 50).await;
    assert!(
        matches!(
            store
                .rotate_refresh_token(&[10; 32], &[11; 32], "c", TIMING, 50)
                .await
                .unwrap(),
            RefreshRotation::Invalid
        ),
        "absolute end"
    );
    refresh_family(&store, 20, 10_000).await;
    let lenient = RefreshTiming {
        idle_lifetime: 100,
        reuse_interval: 5,
    };
    assert!(matches!(
        store
            .rotate_refresh_token(&[20; 32], &[21; 32], "c", lenient, 10)
            .await
            .unwrap(),
        RefreshRotation::Rotated(_)
    ));
    assert!(
        matches!(
            store
                .rotate_refresh_token(&[20; 32], &[22; 32], "c", lenient, 14)
                .await
                .unwrap(),
            RefreshRotation::Rotated(_)
        ),
        "retry within the interval"
    );
    assert!(matches!(
        store
            .rotate_refresh_token(&[20; 32], &[23; 32], "c", lenient, 16)
            .await
            .unwrap(),
        RefreshRotation::Reused
    ));
}

#[tokio::test]
async fn twenty_parallel_uses_of_one_refresh_token_at_most_one_wins_then_the_family_is_revoked() {
    let (store, _dir) = store().await;
    refresh_family(&store, 1, 10_000).await;
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rotate_refresh_token(&[1; 32], &[100 + i; 32], "c", TIMING, 10)
                .await
                .unwrap()
        }));
    }
    let mut rotated = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if let RefreshRotation::Rotated(_) = task.await.unwrap() {
            rotated.push(100 + i as u8);
        }
    }
    assert!(rotated.len() <= 1);
    for token in rotated {
        assert!(matches!(
            store
                .rotate_refresh_token(&[token; 32], &[200; 32], "c", TIMING, 11)
                .await
                .unwrap(),
            RefreshRotation::Invalid
        ));
    }
}

#[tokio::test]
async fn revocation_by_token_code_session_and_user() {
    let (store, _dir) = store().await;
    for token in [1u8, 2, 3, 4] {
        refresh_family(&store, token, 10_000).await;
    }
    assert!(
        !store
            .revoke_refresh_token(&[1; 32], "other-client", 5)
            .await
            .unwrap(),
        "only the owner revokes"
    );
    assert!(store.revoke_refresh_token(&[1; 32], "c", 5).await.unwrap());
    assert_eq!(
        store
            .revoke_refresh_families_of_code(&[2; 32], 5)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .revoke_refresh_families_of_session("sid3", 5)
            .await
            .unwrap(),
        1
    );
    store.set_user_blocked("auth0|r4", true, 5).await.unwrap();
    for token in [1u8, 2, 3, 4] {
        assert!(
            matches!(
                store
                    .rotate_refresh_token(&[token; 32], &[50 + token; 32], "c", TIMING, 6)
                    .await
                    .unwrap(),
                RefreshRotation::Invalid
            ),
            "{token}"
        );
    }
}

#[tokio::test]
async fn purge_removes_expired_refresh_families_with_their_tokens() {
    let (store, _dir) = store().await;
    refresh_family(&store, 1, 100).await;
    refresh_family(&store, 2, 10_000).await;
    let counts = store.purge_expired(500).await.unwrap();
    assert_eq!(counts.refresh_tokens, 1);
    assert!(matches!(
        store
            .rotate_refresh_token(&[2; 32], &[3; 32], "c", TIMING, 600)
            .await
            .unwrap(),
        RefreshRotation::Rotated(_)
    ));
}

#[tokio::test]
async fn consent_accumulates_per_user_client_and_audience() {
    let (store, _dir) = store().await;
    store.create_client(&client("c")).await.unwrap();
    store.create_client(&client("other")).await.unwrap();
    store
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    refresh_family(&store, 1, 10_000).await; // user auth0|r1, client c
    let user = "auth0|r1";
    let scopes = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    assert!(
        store
            .find_consent(user, "c", "https://a")
            .await
            .unwrap()
            .is_none()
    );
    let first = store
        .grant_consent(user, "c", "https://a", &scopes(&["openid", "read"]), 10)
        .await
        .unwrap();
    let second = store
        .grant_consent(user, "c", "https://a", &scopes(&["read", "write"]), 20)
        .await
        .unwrap();
    assert_eq!(second.id, first.id, "one row per user, client and audience");
    assert_eq!(second.scopes, scopes(&["openid", "read", "write"]));
    assert_eq!((second.created_at, second.updated_at), (10, 20));
    assert_eq!(
        store.find_consent(user, "c", "https://a").await.unwrap(),
        Some(second.clone())
    );
    store
        .grant_consent(user, "c", "https://id/userinfo", &scopes(&["openid"]), 30)
        .await
        .unwrap();
    store
        .grant_consent(user, "other", "https://a", &scopes(&[]), 30)
        .await
        .unwrap();
    let listed = store.list_consents(user).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.client_id.as_str(), c.audience.as_str()))
            .collect::<Vec<_>>(),
        [
            ("c", "https://a"),
            ("c", "https://id/userinfo"),
            ("other", "https://a")
        ]
    );
    assert!(
        matches!(
            store
                .grant_consent(user, "missing-client", "https://a", &[], 1)
                .await,
            Err(StoreError::NotFound(_))
        ),
        "consent belongs to a registered application"
    );

    // A family of the other client survives revoking consent to c.
    let other_family = NewRefreshFamily {
        family_id: "f-other".into(),
        client_id: "other".into(),
        user_id: user.into(),
        grant: "{}".into(),
        code_hash: None,
        sid: None,
        created_at: 0,
        expires_at: 10_000,
    };
    store
        .create_refresh_family(&other_family, &[9; 32], 1_000)
        .await
        .unwrap();

    // One API: that row goes, and c's refresh tokens for the user with it.
    let revoked = store
        .revoke_consents(user, "c", Some("https://a"), 40)
        .await
        .unwrap();
    assert_eq!((revoked.consents, revoked.refresh_families), (1, 1));
    assert!(
        store
            .find_refresh_family(&[1; 32], 41)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_family(&[9; 32], 41)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.list_consents(user).await.unwrap().len(), 2);
    // Nothing to revoke: nothing else happens.
    assert_eq!(
        store
            .revoke_consents(user, "c", Some("https://a"), 42)
            .await
            .unwrap(),
        ConsentRevocation::default()
    );
    // Every API of one client.
    let revoked = store.revoke_consents(user, "c", None, 43).await.unwrap();
    assert_eq!(revoked.consents, 1);
    assert_eq!(store.list_consents(user).await.unwrap().len(), 1);

    // Deleting the API forgets consent for it; deleting the user forgets the rest.
    store
        .grant_consent(user, "c", "https://a", &scopes(&["read"]), 50)
        .await
        .unwrap();
    store.delete_resource_server("id-https://a").await.unwrap();
    assert!(store.list_consents(user).await.unwrap().is_empty());
    store
        .grant_consent(user, "c", "https://id/userinfo", &scopes(&["openid"]), 60)
        .await
        .unwrap();
    store.delete_user(user).await.unwrap();
    assert!(store.list_consents(user).await.unwrap().is_empty());
}

#[tokio::test]
async fn applications_may_be_restricted_to_some_apis_and_be_third_party() {
    let (store, _dir) = store().await;
    store.create_client(&client("c")).await.unwrap();
    let update = ClientUpdate {
        is_first_party: Some(false),
        allowed_apis: Some(Some(vec!["https://a".into()])),
        ..ClientUpdate::default()
    };
    let updated = store.update_client("c", &update, 5).await.unwrap();
    assert_eq!(store.find_client("c").await.unwrap(), Some(updated.clone()));
    assert!(!updated.is_first_party);
    assert!(updated.may_access_api("https://a") && !updated.may_access_api("https://b"));
    let access = store
        .machine_access("c", "https://a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(access.client.allowed_apis, Some(vec!["https://a".into()]));
    let unrestricted = store
        .update_client(
            "c",
            &ClientUpdate {
                allowed_apis: Some(None),
                ..ClientUpdate::default()
            },
            6,
        )
        .await
        .unwrap();
    assert_eq!(unrestricted.allowed_apis, None);
    assert!(
        !unrestricted.is_first_party,
        "other fields keep their value"
    );
}

#[tokio::test]
async fn a_transaction_is_deleted_once() {
    let (store, _dir) = store().await;
    let record = TransactionRecord {
        id: "tx".into(),
        csrf_hash: vec![1],
        request: "{}".into(),
        expires_at: 100,
    };
    store.create_transaction(&record, 1).await.unwrap();
    assert!(store.delete_transaction("tx").await.unwrap());
    assert!(!store.delete_transaction("tx").await.unwrap());
}
