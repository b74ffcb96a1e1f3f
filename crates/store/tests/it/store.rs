//! The store's test suite, run against both backends: every test below is one `async fn`
//! taking a fresh `Store`, and `on_both_backends!` makes a `sqlite::NAME` test (a new file)
//! and a `postgres::NAME` test (a new database on a throwaway PostgreSQL server, see
//! `tessera_testkit::pg`) of each. Backend-specific tests (connecting, URLs, a server restart)
//! follow at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tessera_core::{AppType, Client, ClientGrant, ResourceServer, Role, Scope, TokenDialect};
use tessera_store::*;
use tessera_testkit::pg::PgServer;

/// A store and what keeps it alive (the SQLite file's directory, the PostgreSQL server).
pub(crate) struct Fresh {
    pub(crate) store: Store,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgServer>,
}

pub(crate) async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nested/dir/t.db").display());
    Fresh {
        store: Store::connect(&url).await.unwrap(),
        _dir: Some(dir),
        _pg: None,
    }
}

pub(crate) async fn postgres() -> Fresh {
    let server = PgServer::start();
    let url = server.database();
    Fresh {
        store: Store::connect(&url).await.unwrap(),
        _dir: None,
        _pg: Some(server),
    }
}

on_both_backends!(
    resource_servers_crud_and_conflicts,
    machine_access_joins_client_api_and_grant,
    origins_are_matched_with_or_without_a_trailing_slash,
    a_code_is_redeemed_once_even_under_concurrency,
    a_code_is_redeemed_with_its_user_by_one_caller,
    purge_removes_only_expired_rows_in_batches,
    login_failures_count_per_account_and_address,
    login_blocks_list_the_networks_at_the_lockout_and_settings_patch_by_member,
    an_unblock_ticket_lifts_its_one_block_once,
    users_are_unique_per_email_case_insensitively,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    a_refresh_family_is_read_with_its_user,
    a_users_refresh_tokens_are_listed_by_checkpoint_and_revoked,
    a_users_sessions_are_listed_by_checkpoint_and_ended,
    a_refresh_family_is_only_ever_shortened,
    refresh_tokens_expire_idle_and_absolute_and_honour_the_reuse_interval,
    twenty_parallel_uses_of_one_refresh_token_at_most_one_wins_then_the_family_is_revoked,
    revocation_by_token_code_session_and_user,
    purge_removes_expired_refresh_families_with_their_tokens,
    consent_accumulates_per_user_client_and_audience,
    applications_may_be_restricted_to_some_apis_and_be_third_party,
    a_transaction_is_deleted_once,
    signing_keys_are_inserted_once_and_rotate,
    roles_and_permissions,
    roles_are_renamed_and_list_their_users,
    user_profiles_change_and_emails_stay_unique,
    sessions_opaque_tokens_and_user_changes,
    sessions_shortened_by_an_action_are_never_extended_past_it,
    session_metadata_is_replaced_whole_and_only_on_a_live_session,
    refresh_token_metadata_is_kept_from_issue_and_replaced_while_live,
    user_metadata_is_stored_and_merged,
    clients_grants_and_lists,
    ordering_is_byte_order_as_in_sqlite,
    a_reset_code_works_once_and_is_replaced_by_a_new_one,
    a_reset_code_dies_after_wrong_tries_or_at_expiry_and_is_purged,
    parallel_tries_of_a_reset_code_compare_at_most_the_allowed_number,
    users_are_paged_searched_and_sorted_in_sql,
    configuration_lists_are_paged_and_filtered_in_sql,
    checkpoints_resume_after_the_last_page_even_when_its_next_row_is_gone,
    tenant_settings_are_patched_member_by_member,
    a_verification_ticket_verifies_its_address_once,
    concurrent_redemptions_of_a_verification_ticket_verify_once,
    email_templates_are_created_once_replaced_and_patched,
    the_email_provider_is_configured_once_patched_and_deleted,
    jobs_keep_status_summary_and_paged_errors,
    imports_insert_update_or_refuse_per_user,
    admin_sessions_live_within_their_limits_and_go_with_their_user,
    ending_sessions_queues_logout_notices_for_their_applications,
    a_purged_sessions_applications_are_told_it_expired,
    sessions_past_a_lowered_lifetime_are_ended_and_told,
    a_sessions_applications_are_kept_while_it_is_extended,
    an_upstream_logout_ends_the_sessions_it_names,
);

pub(crate) fn api(identifier: &str) -> ResourceServer {
    ResourceServer {
        id: format!("id-{identifier}"),
        name: "API".into(),
        identifier: identifier.into(),
        signing_alg: "RS256".into(),
        token_lifetime: 60,
        token_lifetime_for_web: 60,
        allow_offline_access: false,
        token_dialect: TokenDialect::AccessToken,
        enforce_policies: false,
        scopes: vec![Scope {
            value: "read".into(),
            description: "Read".into(),
        }],
        proof_of_possession: None,
        created_at: 1,
        updated_at: 1,
    }
}

pub(crate) fn client(id: &str) -> Client {
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
        profile: Default::default(),
        require_pushed_authorization_requests: false,
        private_key_jwt_credentials: None,
        created_at: 1,
        updated_at: 1,
        oidc_logout: None,
    }
}

/// A session of `user_id` signed in with a password alone, no connection recorded.
fn plain_session(sid: &str, user_id: &str, auth_time: i64, expires_at: i64) -> SessionRecord {
    SessionRecord {
        sid: sid.into(),
        user_id: user_id.into(),
        connection: None,
        amr: vec![],
        auth_time,
        expires_at,
        last_interacted_at: None,
        upstream_sid: None,
        ends_by: None,
    }
}

fn code(hash: u8, expires_at: i64) -> NewCode {
    NewCode {
        session_client: None,
        code_hash: vec![hash; 32],
        client_id: "c".into(),
        user_id: "u".into(),
        redirect_uri: "http://x/cb".into(),
        grant: "{}".into(),
        created_at: 0,
        expires_at,
    }
}

async fn resource_servers_crud_and_conflicts(store: &Store) {
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
        token_lifetime_for_web: Some(120),
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
    // Auth0's proof_of_possession: set, kept by an update that does not name it, removed.
    let dpop = tessera_core::ProofOfPossession {
        mechanism: tessera_core::PopMechanism::Dpop,
        required: true,
    };
    let set = ResourceServerUpdate {
        proof_of_possession: Some(Some(dpop)),
        ..Default::default()
    };
    store
        .update_resource_server("id-https://a", &set, 6)
        .await
        .unwrap();
    let read = store
        .find_resource_server("https://a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.proof_of_possession, Some(dpop));
    assert!(read.requires_dpop());
    let renamed = store
        .update_resource_server("id-https://a", &update, 7)
        .await
        .unwrap();
    assert_eq!(renamed.proof_of_possession, Some(dpop));
    let cleared = ResourceServerUpdate {
        proof_of_possession: Some(None),
        ..Default::default()
    };
    store
        .update_resource_server("id-https://a", &cleared, 8)
        .await
        .unwrap();
    let read = store
        .find_resource_server("https://a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.proof_of_possession, None);
    let created = ResourceServer {
        id: "with-pop".into(),
        proof_of_possession: Some(dpop),
        ..api("https://b")
    };
    store.create_resource_server(&created).await.unwrap();
    assert_eq!(
        store
            .find_resource_server("https://b")
            .await
            .unwrap()
            .unwrap(),
        created
    );
    store.delete_resource_server("id-https://a").await.unwrap();
    assert!(matches!(
        store.delete_resource_server("id-https://a").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn machine_access_joins_client_api_and_grant(store: &Store) {
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
    assert!(
        store
            .list_client_grants(
                tessera_store::ClientGrantFilter::default(),
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn origins_are_matched_with_or_without_a_trailing_slash(store: &Store) {
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

async fn a_code_is_redeemed_once_even_under_concurrency(store: &Store) {
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
    // A replay is recorded once and stays recorded; other codes are untouched.
    assert!(!store.code_was_replayed(&[7; 32]).await.unwrap());
    store.mark_code_replayed(&[7; 32], 11).await.unwrap();
    store.mark_code_replayed(&[7; 32], 12).await.unwrap();
    assert!(store.code_was_replayed(&[7; 32]).await.unwrap());
    store.create_code(&code(8, i64::MAX)).await.unwrap();
    assert!(!store.code_was_replayed(&[8; 32]).await.unwrap());
    store.mark_code_replayed(&[9; 32], 11).await.unwrap();
    assert!(!store.code_was_replayed(&[9; 32]).await.unwrap());
}

async fn a_code_is_redeemed_with_its_user_by_one_caller(store: &Store) {
    let new = NewUser {
        email: "coder@example.com".into(),
        password_hash: "h".into(),
        ..Default::default()
    };
    store.create_user(&new, "u", 1).await.unwrap();
    store.create_code(&code(7, i64::MAX)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.redeem_code_with_user(&[7; 32], 10).await.unwrap()
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (CodeRedemption::Redeemed(record), user) => winners.push((record, user)),
            (CodeRedemption::AlreadyUsed(record), user) => {
                assert_eq!(record.user_id, "u");
                assert!(user.is_none(), "only the winner reads the user");
            }
            (CodeRedemption::NotFound, _) => panic!("the code exists"),
        }
    }
    assert_eq!(winners.len(), 1);
    let (record, user) = winners.pop().unwrap();
    assert_eq!(
        (record.client_id.as_str(), record.redirect_uri.as_str()),
        ("c", "http://x/cb")
    );
    assert_eq!((record.expires_at, record.grant.as_str()), (i64::MAX, "{}"));
    let user = user.expect("the code's user");
    assert_eq!(
        (user.user_id.as_str(), user.email.as_deref()),
        ("u", Some("coder@example.com"))
    );
    // A code whose user is gone is still spent by its one redemption, without a user.
    store.create_code(&code(8, i64::MAX)).await.unwrap();
    store.delete_user("u", 0).await.unwrap();
    let (redemption, user) = store.redeem_code_with_user(&[8; 32], 10).await.unwrap();
    assert!(matches!(redemption, CodeRedemption::Redeemed(_)) && user.is_none());
    assert!(matches!(
        store.redeem_code_with_user(&[8; 32], 11).await.unwrap(),
        (CodeRedemption::AlreadyUsed(_), None)
    ));
    assert!(matches!(
        store.redeem_code_with_user(&[9; 32], 10).await.unwrap(),
        (CodeRedemption::NotFound, None)
    ));
}

async fn purge_removes_only_expired_rows_in_batches(store: &Store) {
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
            reset_codes: 0,
            verification_tickets: 0,
            unblock_tickets: 0,
            admin_sessions: 0,
            jobs: 0,
            remembered_browsers: 0,
            pushed_requests: 0,
            device_codes: 0,
            mfa_tokens: 0,
            client_assertions: 0,
            throttle_windows: 0,
            session_clients: 0,
            upstream_logout_tokens: 0,
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

async fn login_failures_count_per_account_and_address(store: &Store) {
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

    // A password sign-in forgets its network's failures and counts the login, together.
    let user = store
        .create_user(&new_user("B@x.io"), "auth0|b", 1)
        .await
        .unwrap();
    for ip in ["1.1.1.1", "2.2.2.2"] {
        store.record_login_failure("b@x.io", ip, 0).await.unwrap();
    }
    store
        .record_password_login("B@X.io", "1.1.1.1", &user.user_id, 77)
        .await
        .unwrap();
    assert_eq!(store.login_failures("b@x.io", "1.1.1.1").await.unwrap(), 0);
    assert_eq!(store.login_failures("b@x.io", "2.2.2.2").await.unwrap(), 1);
    let counted = store.find_user(&user.user_id).await.unwrap().unwrap();
    assert_eq!((counted.logins_count, counted.last_login), (1, Some(77)));
}

async fn login_blocks_list_the_networks_at_the_lockout_and_settings_patch_by_member(store: &Store) {
    for (ip, failures) in [("9.9.9.9", 3), ("1.1.1.1", 5), ("5.5.5.5", 2), ("", 3)] {
        for _ in 0..failures {
            store.record_login_failure("C@x.io", ip, 0).await.unwrap();
        }
    }
    store
        .record_login_failure("d@x.io", "7.7.7.7", 0)
        .await
        .unwrap();
    let blocks = store.login_blocks("c@X.io", 3, 100).await.unwrap();
    assert_eq!(blocks, ["", "1.1.1.1", "9.9.9.9"]);
    assert_eq!(
        store.login_blocks("c@x.io", 3, 2).await.unwrap(),
        ["", "1.1.1.1"]
    );
    assert_eq!(store.login_blocks("c@x.io", 6, 100).await.unwrap().len(), 0);
    assert_eq!(
        store
            .login_blocks("nobody@x.io", 1, 100)
            .await
            .unwrap()
            .len(),
        0
    );

    // The brute-force settings: `{}` at first, then patched member by member.
    assert!(store.brute_force_settings().await.unwrap().is_empty());
    let patch = |value: serde_json::Value| value.as_object().unwrap().clone();
    store
        .patch_brute_force_settings(&patch(serde_json::json!({"max_attempts": 4})))
        .await
        .unwrap();
    let now = store
        .patch_brute_force_settings(&patch(serde_json::json!({"enabled": false})))
        .await
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(now),
        serde_json::json!({"max_attempts": 4, "enabled": false})
    );
    store
        .patch_brute_force_settings(&patch(serde_json::json!({"max_attempts": null})))
        .await
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(store.brute_force_settings().await.unwrap()),
        serde_json::json!({"enabled": false})
    );
    // The tenant's other documents are apart.
    assert!(store.tenant_settings().await.unwrap().is_empty());
}

async fn an_unblock_ticket_lifts_its_one_block_once(store: &Store) {
    let user = store
        .create_user(&new_user("U@x.io"), "auth0|u", 1)
        .await
        .unwrap();
    for network in ["1.1.1.1", "2.2.2.2"] {
        for _ in 0..3 {
            store
                .record_login_failure("u@x.io", network, 1)
                .await
                .unwrap();
        }
    }
    let ticket = |hash: &'static [u8], expires_at| NewUnblockTicket {
        ticket_hash: hash,
        user_id: "auth0|u",
        email: "U@X.io",
        counted_at: "1.1.1.1",
        expires_at,
    };
    store
        .put_unblock_ticket(&ticket(b"live", 100))
        .await
        .unwrap();
    store.put_unblock_ticket(&ticket(b"old", 10)).await.unwrap();
    assert!(store.unblock_ticket_live(b"live", 50).await.unwrap());
    assert!(!store.unblock_ticket_live(b"old", 50).await.unwrap());
    assert!(!store.unblock_ticket_live(b"other", 50).await.unwrap());
    assert_eq!(store.redeem_unblock_ticket(b"old", 50).await.unwrap(), None);
    assert_eq!(
        store.redeem_unblock_ticket(b"live", 50).await.unwrap(),
        Some((user.user_id.clone(), "u@x.io".to_string()))
    );
    assert_eq!(store.login_failures("u@x.io", "1.1.1.1").await.unwrap(), 0);
    assert_eq!(
        store.login_failures("u@x.io", "2.2.2.2").await.unwrap(),
        3,
        "another network's block stays"
    );
    assert_eq!(
        store.redeem_unblock_ticket(b"live", 50).await.unwrap(),
        None,
        "once"
    );
    // Expired tickets go with the purge; a deleted user's with the user.
    assert_eq!(store.purge_expired(50).await.unwrap().unblock_tickets, 1);
    store
        .put_unblock_ticket(&ticket(b"again", 100))
        .await
        .unwrap();
    store.delete_user(&user.user_id, 60).await.unwrap();
    assert!(!store.unblock_ticket_live(b"again", 50).await.unwrap());
}

async fn users_are_unique_per_email_case_insensitively(store: &Store) {
    let new = NewUser {
        email: "Demo@Example.com".into(),
        password_hash: "h".into(),
        email_verified: false,
        name: None,
        nickname: None,
        picture: None,
        ..Default::default()
    };
    let user = store.create_user(&new, "auth0|1", 3).await.unwrap();
    assert_eq!(
        (user.email.as_deref().unwrap(), user.nickname.as_str()),
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
        ..Default::default()
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
        metadata: Default::default(),
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

async fn a_refresh_family_is_only_ever_shortened(store: &Store) {
    refresh_family(store, 8, 10_000).await;
    async fn ends(store: &Store) -> Option<(i64, i64)> {
        store
            .live_refresh_token(&[8; 32], 10)
            .await
            .unwrap()
            .map(|(family, ends)| (family.expires_at, ends))
    }
    // The token goes idle at 1,000 (the helper's), the family ends at 10,000.
    assert_eq!(ends(store).await, Some((10_000, 1_000)));
    // Later ends change nothing.
    store
        .shorten_refresh_family("f8", &[8; 32], Some(20_000), Some(5_000))
        .await
        .unwrap();
    assert_eq!(ends(store).await, Some((10_000, 1_000)));
    // Earlier ones hold; another family's token is not touched through this family.
    store
        .shorten_refresh_family("f8", &[8; 32], Some(9_000), Some(800))
        .await
        .unwrap();
    assert_eq!(ends(store).await, Some((9_000, 800)));
    store
        .shorten_refresh_family("other", &[8; 32], None, Some(20))
        .await
        .unwrap();
    assert_eq!(ends(store).await, Some((9_000, 800)));
    // An end already past: the token is no longer live.
    store
        .shorten_refresh_family("f8", &[8; 32], Some(5), None)
        .await
        .unwrap();
    assert_eq!(ends(store).await, None);
}

async fn a_users_refresh_tokens_are_listed_by_checkpoint_and_revoked(store: &Store) {
    let first = refresh_family(store, 21, 10_000).await;
    // Two more families of the same user, one of them already past its end.
    for (id, token, expires_at) in [("f22", 22u8, 10_000), ("f23", 23, 5)] {
        let family = NewRefreshFamily {
            family_id: id.into(),
            client_id: "c".into(),
            user_id: "auth0|r21".into(),
            grant: "{}".into(),
            code_hash: None,
            sid: None,
            created_at: 0,
            expires_at,
            metadata: Default::default(),
        };
        store
            .create_refresh_family(&family, &[token; 32], 1_000)
            .await
            .unwrap();
    }
    // Another user's family is never in this user's list.
    refresh_family(store, 24, 10_000).await;
    let from = |from, take| Checkpoint { from, take };
    let page = store
        .refresh_tokens_of_user("auth0|r21", 10, from(None, 1))
        .await
        .unwrap();
    let ids: Vec<_> = page
        .items
        .iter()
        .map(|r| r.family.family_id.clone())
        .collect();
    assert_eq!(
        (ids, page.next.as_deref()),
        (vec![first.clone()], Some("f22"))
    );
    let rest = store
        .refresh_tokens_of_user("auth0|r21", 10, from(page.next.as_deref(), 50))
        .await
        .unwrap();
    let ids: Vec<_> = rest
        .items
        .iter()
        .map(|r| r.family.family_id.clone())
        .collect();
    assert_eq!(
        (ids, rest.next),
        (vec!["f22".to_string()], None),
        "f23 has ended"
    );
    let record = &page.items[0];
    assert_eq!(
        (record.idle_expires_at, record.last_exchanged_at),
        (Some(1_000), None),
        "never exchanged"
    );
    // After a rotation at 50 the live token is the new one, and the family was exchanged.
    let rotated = store
        .rotate_refresh_token(&[21; 32], &[121; 32], "c", TIMING, 50)
        .await
        .unwrap();
    assert!(matches!(rotated, RefreshRotation::Rotated));
    let record = store
        .find_refresh_token(&first, 60)
        .await
        .unwrap()
        .expect("live");
    assert_eq!(
        (record.idle_expires_at, record.last_exchanged_at),
        (Some(150), Some(50))
    );
    assert_eq!(record.family.user_id, "auth0|r21");
    assert!(store.find_refresh_token("f23", 60).await.unwrap().is_none());
    assert!(
        store
            .find_refresh_token("nope", 60)
            .await
            .unwrap()
            .is_none()
    );
    // Revoked: gone from the list and from use; a second revocation finds nothing.
    assert!(store.revoke_refresh_family(&first, 70).await.unwrap());
    assert!(!store.revoke_refresh_family(&first, 71).await.unwrap());
    assert!(
        !store.revoke_refresh_family("f23", 71).await.unwrap(),
        "ended"
    );
    assert!(
        store
            .find_refresh_token(&first, 72)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_family_with_user(&[121; 32], 72)
            .await
            .unwrap()
            .is_none()
    );
    let left = store
        .refresh_tokens_of_user("auth0|r21", 72, from(None, 50))
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(
        store
            .refresh_tokens_of_user("auth0|r24", 72, from(None, 50))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

async fn a_refresh_family_is_read_with_its_user(store: &Store) {
    let family_id = refresh_family(store, 6, 10_000).await;
    let (family, user) = store
        .find_refresh_family_with_user(&[6; 32], 10)
        .await
        .unwrap()
        .expect("a live family");
    assert_eq!(
        (family.family_id.as_str(), family.client_id.as_str()),
        (family_id.as_str(), "c")
    );
    assert_eq!(family.user_id, "auth0|r6");
    assert_eq!((family.created_at, family.expires_at), (0, 10_000));
    assert_eq!(
        (user.user_id.as_str(), user.email.as_deref(), user.blocked),
        ("auth0|r6", Some("r6@x.io"), false)
    );
    // What `find_refresh_family` reads, the same.
    let alone = store
        .find_refresh_family(&[6; 32], 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            alone.family_id,
            alone.user_id,
            alone.grant,
            alone.created_at,
            alone.expires_at
        ),
        (
            family.family_id,
            family.user_id,
            family.grant,
            family.created_at,
            family.expires_at
        )
    );
    // Past its end, or unknown: none.
    assert!(
        store
            .find_refresh_family_with_user(&[6; 32], 10_000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_family_with_user(&[7; 32], 12)
            .await
            .unwrap()
            .is_none()
    );
    // A family goes with its user.
    store.delete_user("auth0|r6", 0).await.unwrap();
    assert!(
        store
            .find_refresh_family_with_user(&[6; 32], 13)
            .await
            .unwrap()
            .is_none()
    );
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(store: &Store) {
    refresh_family(store, 1, 10_000).await;
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
        RefreshRotation::Rotated
    ));
    assert!(matches!(
        store
            .rotate_refresh_token(&[2; 32], &[3; 32], "c", TIMING, 20)
            .await
            .unwrap(),
        RefreshRotation::Rotated
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

async fn refresh_tokens_expire_idle_and_absolute_and_honour_the_reuse_interval(store: &Store) {
    refresh_family(store, 1, 10_000).await;
    // Idle: the first token's idle end is 1000.
    assert!(matches!(
        store
            .rotate_refresh_token(&[1; 32], &[2; 32], "c", TIMING, 1_000)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    ));
    refresh_family(store, 10, 50).await;
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
    refresh_family(store, 20, 10_000).await;
    let lenient = RefreshTiming {
        idle_lifetime: 100,
        reuse_interval: 5,
    };
    assert!(matches!(
        store
            .rotate_refresh_token(&[20; 32], &[21; 32], "c", lenient, 10)
            .await
            .unwrap(),
        RefreshRotation::Rotated
    ));
    assert!(
        matches!(
            store
                .rotate_refresh_token(&[20; 32], &[22; 32], "c", lenient, 14)
                .await
                .unwrap(),
            RefreshRotation::Rotated
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

async fn twenty_parallel_uses_of_one_refresh_token_at_most_one_wins_then_the_family_is_revoked(
    store: &Store,
) {
    refresh_family(store, 1, 10_000).await;
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
        if let RefreshRotation::Rotated = task.await.unwrap() {
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

async fn revocation_by_token_code_session_and_user(store: &Store) {
    for token in [1u8, 2, 3, 4] {
        refresh_family(store, token, 10_000).await;
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

async fn purge_removes_expired_refresh_families_with_their_tokens(store: &Store) {
    refresh_family(store, 1, 100).await;
    refresh_family(store, 2, 10_000).await;
    let counts = store.purge_expired(500).await.unwrap();
    assert_eq!(counts.refresh_tokens, 1);
    assert!(matches!(
        store
            .rotate_refresh_token(&[2; 32], &[3; 32], "c", TIMING, 600)
            .await
            .unwrap(),
        RefreshRotation::Rotated
    ));
}

async fn consent_accumulates_per_user_client_and_audience(store: &Store) {
    store.create_client(&client("c")).await.unwrap();
    store.create_client(&client("other")).await.unwrap();
    store
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    refresh_family(store, 1, 10_000).await; // user auth0|r1, client c
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
    // By page, filtered in SQL, in the same order; one by its id.
    let page = store
        .list_consents_page(
            ConsentFilter {
                user_id: Some(user),
                ..ConsentFilter::default()
            },
            Slice {
                offset: 1,
                limit: 1,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, Some(3));
    assert_eq!(page.items, [listed[1].clone()]);
    let of_other = ConsentFilter {
        client_id: Some("other"),
        audience: Some("https://a"),
        ..ConsentFilter::default()
    };
    let page = store
        .list_consents_page(of_other, Slice::first(10))
        .await
        .unwrap();
    assert_eq!(page.items, [listed[2].clone()]);
    let nobody = ConsentFilter {
        user_id: Some("auth0|nobody"),
        ..ConsentFilter::default()
    };
    let page = store
        .list_consents_page(nobody, Slice::first(10))
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!(
        store.find_consent_by_id(&listed[0].id).await.unwrap(),
        Some(listed[0].clone())
    );
    assert_eq!(store.find_consent_by_id("nope").await.unwrap(), None);
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
        metadata: Default::default(),
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
    store.delete_user(user, 0).await.unwrap();
    assert!(store.list_consents(user).await.unwrap().is_empty());
}

async fn applications_may_be_restricted_to_some_apis_and_be_third_party(store: &Store) {
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
    // Requiring pushed requests, and private_key_jwt credentials: stored, read back by
    // both reads, cleared again.
    assert!(!unrestricted.require_pushed_authorization_requests);
    assert_eq!(unrestricted.private_key_jwt_credentials, None);
    let par = store
        .update_client(
            "c",
            &ClientUpdate {
                require_pushed_authorization_requests: Some(true),
                private_key_jwt_credentials: Some(Some(vec!["cred_1".into()])),
                ..ClientUpdate::default()
            },
            7,
        )
        .await
        .unwrap();
    assert!(par.require_pushed_authorization_requests);
    assert_eq!(store.find_client("c").await.unwrap(), Some(par.clone()));
    let access = store
        .machine_access("c", "https://a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(access.client, par);
    let cleared = store
        .update_client(
            "c",
            &ClientUpdate {
                private_key_jwt_credentials: Some(None),
                ..ClientUpdate::default()
            },
            8,
        )
        .await
        .unwrap();
    assert_eq!(cleared.private_key_jwt_credentials, None);
    assert!(cleared.require_pushed_authorization_requests);
}

async fn a_transaction_is_deleted_once(store: &Store) {
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

fn key(kid: &str, alg: &str, state: KeyState, at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: alg.into(),
        state,
        sealed_private_key: vec![0, 1, 2, 255],
        created_at: at,
        updated_at: at,
    }
}

async fn signing_keys_are_inserted_once_and_rotate(store: &Store) {
    assert_eq!(store.key_set_version().await.unwrap(), "");
    let first = [
        key("b-current", "RS256", KeyState::Current, 1),
        key("a-next", "RS256", KeyState::Next, 1),
    ];
    assert_eq!(store.insert_keys_if_missing(&first).await.unwrap(), 2);
    let again = [
        key("other-current", "RS256", KeyState::Current, 2),
        key("c-current", "ES256", KeyState::Current, 2),
    ];
    assert_eq!(
        store.insert_keys_if_missing(&again).await.unwrap(),
        1,
        "RS256 has a current key already"
    );
    assert_eq!(
        store.key_set_version().await.unwrap(),
        "a-next:next,b-current:current,c-current:current"
    );
    store
        .rotate_keys("RS256", &key("d-next", "RS256", KeyState::Next, 3), 3)
        .await
        .unwrap();
    store
        .rotate_keys("RS256", &key("e-next", "RS256", KeyState::Next, 4), 4)
        .await
        .unwrap();
    let published: Vec<(String, KeyState)> = store
        .published_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(
        published,
        [
            ("a-next".to_string(), KeyState::Previous),
            ("c-current".to_string(), KeyState::Current),
            ("d-next".to_string(), KeyState::Current),
            ("e-next".to_string(), KeyState::Next),
        ]
    );
    let all = store.all_keys().await.unwrap();
    assert_eq!(all.len(), 5);
    let retired = all.iter().find(|k| k.kid == "b-current").unwrap();
    assert_eq!(
        (
            retired.state,
            retired.updated_at,
            &retired.sealed_private_key
        ),
        (KeyState::Retired, 4, &vec![0, 1, 2, 255])
    );

    // Nodes starting together: each inserts the keys it lacks; one set results.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let keys = [key(&format!("eddsa-{i}"), "EdDSA", KeyState::Current, 5)];
            store.insert_keys_if_missing(&keys).await.unwrap()
        }));
    }
    let mut inserted = 0;
    for task in tasks {
        inserted += task.await.unwrap();
    }
    assert_eq!(inserted, 1);
}

async fn roles_and_permissions(store: &Store) {
    store
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    store
        .create_resource_server(&api("https://b"))
        .await
        .unwrap();
    let user = store
        .create_user(&new_user("rbac@x.io"), "auth0|rbac", 1)
        .await
        .unwrap();
    let role = |id: &str, name: &str| Role {
        id: id.into(),
        name: name.into(),
        description: format!("{name} role"),
        created_at: 1,
        updated_at: 1,
    };
    store.create_role(&role("rol_2", "writer")).await.unwrap();
    store.create_role(&role("rol_1", "reader")).await.unwrap();
    assert!(matches!(
        store.create_role(&role("rol_3", "reader")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .list_roles(None, tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["reader", "writer"]
    );
    assert_eq!(
        store.find_role("writer").await.unwrap(),
        Some(role("rol_2", "writer"))
    );
    assert_eq!(
        store.find_role("rol_1").await.unwrap().unwrap().name,
        "reader"
    );
    assert_eq!(store.find_role("nobody").await.unwrap(), None);

    let perms = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    store
        .add_role_permissions("rol_1", "https://a", &perms(&["read", "list"]))
        .await
        .unwrap();
    store
        .add_role_permissions("rol_1", "https://a", &perms(&["read"]))
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_role_permissions("rol_1", "https://missing", &perms(&["x"]))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .add_role_permissions("rol_missing", "https://a", &perms(&["x"]))
            .await,
        Err(StoreError::NotFound(_))
    ));
    store
        .add_role_permissions("rol_2", "https://b", &perms(&["write"]))
        .await
        .unwrap();
    assert_eq!(store.role_permissions("rol_1").await.unwrap().len(), 2);
    store
        .remove_role_permissions("rol_1", "https://a", &perms(&["list"]))
        .await
        .unwrap();

    store
        .assign_user_role(&user.user_id, "rol_1")
        .await
        .unwrap();
    store
        .assign_user_role(&user.user_id, "rol_1")
        .await
        .unwrap();
    store
        .assign_user_role(&user.user_id, "rol_2")
        .await
        .unwrap();
    assert!(matches!(
        store.assign_user_role("auth0|nobody", "rol_1").await,
        Err(StoreError::NotFound(_))
    ));
    store
        .add_user_permissions(&user.user_id, "https://a", &perms(&["read", "admin"]))
        .await
        .unwrap();
    assert!(matches!(
        store
            .add_user_permissions(&user.user_id, "https://missing", &perms(&["x"]))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let all: Vec<(String, String)> = store
        .user_permissions(&user.user_id, None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.audience, p.permission))
        .collect();
    let pair = |a: &str, p: &str| (a.to_string(), p.to_string());
    assert_eq!(
        all,
        [
            pair("https://a", "admin"),
            pair("https://a", "read"),
            pair("https://b", "write")
        ],
        "sorted, duplicates merged"
    );
    assert_eq!(
        store
            .user_permissions(&user.user_id, Some("https://b"))
            .await
            .unwrap()
            .len(),
        1
    );
    // A direct permission taken back: one a role also gives stays.
    store
        .remove_user_permissions(&user.user_id, "https://a", &perms(&["admin", "read"]))
        .await
        .unwrap();
    let direct_gone: Vec<String> = store
        .user_permissions(&user.user_id, Some("https://a"))
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.permission)
        .collect();
    assert_eq!(direct_gone, ["read"], "read still comes from a role");
    assert_eq!(store.user_roles(&user.user_id).await.unwrap().len(), 2);
    store
        .remove_user_role(&user.user_id, "rol_2")
        .await
        .unwrap();
    assert_eq!(
        store
            .user_permissions(&user.user_id, Some("https://b"))
            .await
            .unwrap(),
        []
    );
    store.delete_role("rol_1").await.unwrap();
    assert!(matches!(
        store.delete_role("rol_1").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.user_roles(&user.user_id).await.unwrap().is_empty());
    // Deleting an API takes its permissions along.
    store.delete_resource_server("id-https://a").await.unwrap();
    assert!(
        store
            .user_permissions(&user.user_id, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn roles_are_renamed_and_list_their_users(store: &Store) {
    let role = |id: &str, name: &str| Role {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        created_at: 1,
        updated_at: 1,
    };
    store.create_role(&role("rol_a", "admin")).await.unwrap();
    store.create_role(&role("rol_b", "billing")).await.unwrap();
    let renamed = store
        .update_role("rol_a", Some("administrator"), None, 5)
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str()),
        ("administrator", "")
    );
    assert_eq!((renamed.created_at, renamed.updated_at), (1, 5));
    let described = store
        .update_role("rol_a", None, Some("Does everything"), 6)
        .await
        .unwrap();
    assert_eq!(
        (described.name.as_str(), described.description.as_str()),
        ("administrator", "Does everything")
    );
    assert_eq!(store.find_role("rol_a").await.unwrap(), Some(described));
    assert!(matches!(
        store.update_role("rol_a", Some("billing"), None, 7).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.update_role("rol_missing", Some("x"), None, 7).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.find_role("rol_a").await.unwrap().unwrap().updated_at,
        6
    );

    let first = store
        .create_user(&new_user("first@x.io"), "auth0|first", 1)
        .await
        .unwrap();
    let second = store
        .create_user(&new_user("second@x.io"), "auth0|second", 2)
        .await
        .unwrap();
    store
        .assign_user_role("auth0|second", "rol_a")
        .await
        .unwrap();
    store
        .assign_user_role("auth0|first", "rol_a")
        .await
        .unwrap();
    assert_eq!(
        store
            .list_role_users("rol_a", tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items,
        [first, second]
    );
    assert!(
        store
            .list_role_users("rol_b", tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        store
            .list_role_users("rol_missing", tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn user_profiles_change_and_emails_stay_unique(store: &Store) {
    let user = store
        .create_user(&new_user("p@x.io"), "auth0|p", 1)
        .await
        .unwrap();
    store
        .create_user(&new_user("taken@x.io"), "auth0|taken", 1)
        .await
        .unwrap();
    let changed = store
        .update_user_profile(
            "auth0|p",
            &UserProfileChange {
                name: Some("Pat".into()),
                nickname: Some("pat".into()),
                ..Default::default()
            },
            5,
        )
        .await
        .unwrap();
    assert_eq!(
        (changed.name.as_str(), changed.nickname.as_str()),
        ("Pat", "pat")
    );
    assert_eq!(
        (
            changed.email.as_deref().unwrap(),
            changed.picture.as_str(),
            changed.email_verified
        ),
        ("p@x.io", user.picture.as_str(), true),
        "fields not given keep their values"
    );
    assert_eq!(changed.updated_at, 5);
    assert_eq!(store.find_user("auth0|p").await.unwrap(), Some(changed));

    let moved = store
        .update_user_profile(
            "auth0|p",
            &UserProfileChange {
                email: Some(" New@X.io".into()),
                email_verified: Some(false),
                picture: Some("https://pics.example/p.png".into()),
                ..Default::default()
            },
            6,
        )
        .await
        .unwrap();
    assert_eq!(moved.email.as_deref(), Some("new@x.io"), "normalized");
    assert!(!moved.email_verified);
    assert_eq!(moved.picture, "https://pics.example/p.png");
    assert!(store.find_user_by_email("p@x.io").await.unwrap().is_none());
    assert_eq!(
        store
            .find_user_with_password("NEW@x.io")
            .await
            .unwrap()
            .map(|(u, hash)| (u.user_id, hash)),
        Some(("auth0|p".to_string(), Some("h".to_string()))),
        "the password stays with the user"
    );

    let taken = store
        .update_user_profile(
            "auth0|p",
            &UserProfileChange {
                email: Some("Taken@x.io".into()),
                name: Some("Not applied".into()),
                ..Default::default()
            },
            7,
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))));
    assert_eq!(
        store.find_user("auth0|p").await.unwrap().unwrap().name,
        "Pat",
        "nothing changed"
    );
    assert!(matches!(
        store
            .update_user_profile("auth0|nobody", &UserProfileChange::default(), 8)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn user_metadata_is_stored_and_merged(store: &Store) {
    let object = |value: serde_json::Value| value.as_object().unwrap().clone();
    let created = store
        .create_user(
            &NewUser {
                user_metadata: object(serde_json::json!({"theme": "dark", "lang": "en"})),
                app_metadata: object(serde_json::json!({"plan": "pro", "flags": {"beta": true}})),
                ..new_user("meta@x.io")
            },
            "auth0|meta",
            1,
        )
        .await
        .unwrap();
    let found = store.find_user("auth0|meta").await.unwrap().unwrap();
    assert_eq!(found, created);
    assert_eq!(found.app_metadata["flags"]["beta"], serde_json::json!(true));

    let changed = store
        .update_user_profile(
            "auth0|meta",
            &UserProfileChange {
                user_metadata: Some(object(serde_json::json!({"lang": null, "tz": "UTC"}))),
                app_metadata: Some(object(serde_json::json!({"flags": {"gamma": 1}}))),
                ..Default::default()
            },
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::Value::Object(changed.user_metadata.clone()),
        serde_json::json!({"theme": "dark", "tz": "UTC"})
    );
    assert_eq!(
        serde_json::Value::Object(changed.app_metadata.clone()),
        serde_json::json!({"plan": "pro", "flags": {"gamma": 1}})
    );
    assert_eq!(store.find_user("auth0|meta").await.unwrap(), Some(changed));

    // An empty object clears; the other metadata stays.
    let cleared = store
        .update_user_profile(
            "auth0|meta",
            &UserProfileChange {
                user_metadata: Some(Default::default()),
                ..Default::default()
            },
            3,
        )
        .await
        .unwrap();
    assert!(cleared.user_metadata.is_empty());
    assert_eq!(cleared.app_metadata["plan"], serde_json::json!("pro"));
    // A user made without metadata has empty objects.
    let plain = store
        .create_user(&new_user("plain@x.io"), "auth0|plain", 4)
        .await
        .unwrap();
    assert!(plain.user_metadata.is_empty() && plain.app_metadata.is_empty());
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: "h".into(),
        email_verified: true,
        name: Some("Name".into()),
        nickname: None,
        picture: None,
        ..Default::default()
    }
}

async fn a_users_sessions_are_listed_by_checkpoint_and_ended(store: &Store) {
    for (id, email) in [("auth0|a", "a@x.io"), ("auth0|b", "b@x.io")] {
        store.create_user(&new_user(email), id, 1).await.unwrap();
    }
    let session = |sid: &str, user_id: &str| SessionRecord {
        sid: sid.into(),
        user_id: user_id.into(),
        connection: Some("Username-Password-Authentication".into()),
        amr: vec!["pwd".into()],
        auth_time: 5,
        expires_at: 100,
        last_interacted_at: None,
        upstream_sid: None,
        ends_by: None,
    };
    let from = |ip: &str, agent: &str| SessionOrigin {
        ip: Some(ip.into()),
        user_agent: Some(agent.into()),
    };
    for (n, sid) in ["s3", "s1", "s2"].into_iter().enumerate() {
        store
            .create_session(
                &[n as u8; 32],
                &session(sid, "auth0|a"),
                &from("10.0.0.1", "A"),
                5,
            )
            .await
            .unwrap();
    }
    store
        .create_session(
            &[9; 32],
            &session("s0", "auth0|b"),
            &from("10.0.0.9", "B"),
            5,
        )
        .await
        .unwrap();
    // An expired session of the user is not listed.
    store
        .create_session(
            &[8; 32],
            &SessionRecord {
                expires_at: 20,
                ..session("s9", "auth0|a")
            },
            &from("10.0.0.1", "A"),
            5,
        )
        .await
        .unwrap();
    // A use records where from and when; the creation's origin stays.
    store
        .record_session_use(&[1; 32], 150, &from("10.0.0.2", "A2"), 30)
        .await
        .unwrap();
    let page = |from: Option<&'static str>| {
        store.sessions_of_user("auth0|a", (25, 0), Checkpoint { from, take: 2 })
    };
    let first = page(None).await.unwrap();
    let sids = |p: &CheckpointPage<SessionDetails>| {
        p.items
            .iter()
            .map(|d| d.session.sid.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(sids(&first), ["s1", "s2"]);
    assert_eq!(first.next.as_deref(), Some("s3"));
    let second = page(Some("s3")).await.unwrap();
    assert_eq!((sids(&second), second.next), (vec!["s3".to_string()], None));
    let used = &first.items[0];
    assert_eq!(
        (
            used.initial.ip.as_deref(),
            used.initial.user_agent.as_deref()
        ),
        (Some("10.0.0.1"), Some("A"))
    );
    assert_eq!(
        (used.last.ip.as_deref(), used.last.user_agent.as_deref()),
        (Some("10.0.0.2"), Some("A2"))
    );
    assert_eq!(
        (
            used.session.last_interacted_at,
            used.created_at,
            used.session.expires_at
        ),
        (Some(30), 5, 150)
    );
    assert_eq!(first.items[1].session.last_interacted_at, Some(5));
    // By id; an expired one, or the id in other letters, is not found.
    let found = store
        .find_session_by_sid("s0", (25, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.session.user_id, "auth0|b");
    assert!(
        store
            .find_session_by_sid("s9", (25, 0))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_session_by_sid("S0", (25, 0))
            .await
            .unwrap()
            .is_none()
    );
    // Signed in before the absolute lifetime's start: not live, listed or found.
    assert!(
        store
            .find_session_by_sid("s0", (25, 5))
            .await
            .unwrap()
            .is_none()
    );
    let old = store
        .sessions_of_user(
            "auth0|a",
            (25, 5),
            Checkpoint {
                from: None,
                take: 9,
            },
        )
        .await
        .unwrap();
    assert!(old.items.is_empty());
    // Ending one: with its refresh tokens, or without.
    let family = |id: &str, sid: &str| NewRefreshFamily {
        family_id: id.into(),
        client_id: "c".into(),
        user_id: "auth0|a".into(),
        grant: "{}".into(),
        code_hash: None,
        sid: Some(sid.into()),
        created_at: 5,
        expires_at: 1_000,
        metadata: Default::default(),
    };
    store
        .create_refresh_family(&family("f1", "s1"), &[21; 32], 500)
        .await
        .unwrap();
    store
        .create_refresh_family(&family("f2", "s2"), &[22; 32], 500)
        .await
        .unwrap();
    assert!(store.end_session("s1", true, 25).await.unwrap());
    assert!(store.end_session("s2", false, 25).await.unwrap());
    assert!(!store.end_session("s2", true, 25).await.unwrap());
    assert!(!store.end_session("s9", true, 25).await.unwrap());
    assert!(store.find_session(&[1; 32], 25).await.unwrap().is_none());
    assert!(
        store
            .find_refresh_family(&[21; 32], 25)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_family(&[22; 32], 25)
            .await
            .unwrap()
            .is_some()
    );
    // Every session of one user, no other's.
    assert_eq!(
        store.delete_sessions_of_user("auth0|a", 0).await.unwrap(),
        2
    );
    assert!(page(None).await.unwrap().items.is_empty());
    assert!(
        store
            .find_session_by_sid("s0", (25, 0))
            .await
            .unwrap()
            .is_some()
    );
}

/// `api.session.setExpiresAt` / `setIdleExpiresAt`: a session only ever gets shorter, and
/// a use extends it no further than the end an action allowed.
async fn refresh_token_metadata_is_kept_from_issue_and_replaced_while_live(store: &Store) {
    store.create_client(&client("c")).await.unwrap();
    store
        .create_user(&new_user("a@x.io"), "auth0|a", 1)
        .await
        .unwrap();
    let issued = BTreeMap::from([("device".to_string(), "phone".to_string())]);
    let family = |id: &str, metadata: &BTreeMap<String, String>| NewRefreshFamily {
        family_id: id.into(),
        client_id: "c".into(),
        user_id: "auth0|a".into(),
        grant: "{}".into(),
        code_hash: None,
        sid: None,
        created_at: 5,
        expires_at: 1_000,
        metadata: metadata.clone(),
    };
    store
        .create_refresh_family(&family("f1", &issued), &[31; 32], 500)
        .await
        .unwrap();
    store
        .create_refresh_family(&family("f2", &BTreeMap::new()), &[32; 32], 500)
        .await
        .unwrap();
    let by_token = |hash: u8| async move {
        store
            .find_refresh_family(&[hash; 32], 10)
            .await
            .unwrap()
            .map(|family| family.metadata)
    };
    let by_id = |id: &'static str| async move {
        store
            .find_refresh_token(id, 10)
            .await
            .unwrap()
            .map(|record| record.family.metadata)
    };
    assert_eq!(by_token(31).await, Some(issued.clone()), "kept from issue");
    assert_eq!(by_id("f1").await, Some(issued.clone()));
    assert_eq!(
        by_token(32).await,
        Some(BTreeMap::new()),
        "none asked: none"
    );
    let live = store.live_refresh_token(&[31; 32], 10).await.unwrap();
    assert_eq!(
        live.map(|(family, _)| family.metadata),
        Some(issued.clone())
    );
    // Replaced whole; empty removes it.
    let replaced = BTreeMap::from([("org".to_string(), "acme".to_string())]);
    assert!(
        store
            .set_refresh_family_metadata("f1", &replaced, 10)
            .await
            .unwrap()
    );
    assert_eq!(by_token(31).await, Some(replaced.clone()));
    assert!(
        store
            .set_refresh_family_metadata("f1", &BTreeMap::new(), 10)
            .await
            .unwrap()
    );
    assert_eq!(by_id("f1").await, Some(BTreeMap::new()));
    // A revoked family, one past its end, an unknown one: nothing written, and said so.
    assert!(store.revoke_refresh_family("f2", 10).await.unwrap());
    assert!(
        !store
            .set_refresh_family_metadata("f2", &replaced, 11)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_refresh_family_metadata("f1", &replaced, 1_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_refresh_family_metadata("nope", &replaced, 10)
            .await
            .unwrap()
    );
    assert_eq!(by_id("f1").await, Some(BTreeMap::new()));
}

async fn session_metadata_is_replaced_whole_and_only_on_a_live_session(store: &Store) {
    let user = store
        .create_user(&new_user("meta@x.io"), "auth0|meta", 1)
        .await
        .unwrap();
    for (hash, sid, expires_at) in [([5; 32], "meta", 1_000), ([6; 32], "gone", 15)] {
        store
            .create_session(
                &hash,
                &plain_session(sid, &user.user_id, 10, expires_at),
                &SessionOrigin::default(),
                10,
            )
            .await
            .unwrap();
    }
    let live = (20, 0);
    let metadata_of = |sid: &'static str| async move {
        let details = store.find_session_by_sid(sid, live).await.unwrap().unwrap();
        details.metadata
    };
    assert!(
        metadata_of("meta").await.is_empty(),
        "a new session has none"
    );
    let first = BTreeMap::from([
        ("device".to_string(), "laptop".to_string()),
        ("org".to_string(), "acme — ünïcode".to_string()),
    ]);
    assert!(
        store
            .set_session_metadata("meta", &first, (20, 0))
            .await
            .unwrap()
    );
    assert_eq!(metadata_of("meta").await, first);
    // The same in a user's page of sessions.
    let page = store
        .sessions_of_user(
            &user.user_id,
            live,
            Checkpoint {
                from: None,
                take: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "the expired session is not listed");
    assert_eq!(page.items[0].metadata, first);
    // A write replaces the whole: a key left out is gone.
    let second = BTreeMap::from([("device".to_string(), "phone".to_string())]);
    assert!(
        store
            .set_session_metadata("meta", &second, (21, 0))
            .await
            .unwrap()
    );
    assert_eq!(metadata_of("meta").await, second);
    // Empty removes it all.
    assert!(
        store
            .set_session_metadata("meta", &BTreeMap::new(), (22, 0))
            .await
            .unwrap()
    );
    assert!(metadata_of("meta").await.is_empty());
    // An expired session, an unknown one: nothing written, and said so.
    assert!(
        !store
            .set_session_metadata("gone", &first, (20, 0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_session_metadata("nobody", &first, (20, 0))
            .await
            .unwrap()
    );
    // Signed in before the tenant's absolute lifetime's cut: not live, not written.
    assert!(
        !store
            .set_session_metadata("meta", &first, (20, 10))
            .await
            .unwrap()
    );
    assert!(metadata_of("meta").await.is_empty());
    let gone = store
        .find_session_by_sid("gone", (10, 0))
        .await
        .unwrap()
        .unwrap();
    assert!(gone.metadata.is_empty(), "{:?}", gone.metadata);
}

async fn sessions_shortened_by_an_action_are_never_extended_past_it(store: &Store) {
    let user = store
        .create_user(&new_user("short@x.io"), "auth0|short", 1)
        .await
        .unwrap();
    let hash = [7; 32];
    store
        .create_session(
            &hash,
            &plain_session("short", &user.user_id, 10, 1_000),
            &SessionOrigin::default(),
            10,
        )
        .await
        .unwrap();
    let other = [8; 32];
    store
        .create_session(
            &other,
            &plain_session("other", &user.user_id, 10, 1_000),
            &SessionOrigin::default(),
            10,
        )
        .await
        .unwrap();
    let now_at = |hash: [u8; 32]| async move {
        let found = store.find_session(&hash, 20).await.unwrap().unwrap();
        (found.expires_at, found.ends_by)
    };
    let origin = SessionOrigin::default();
    // Nothing asked: nothing written.
    assert!(
        store
            .shorten_session("short", (None, None), 20)
            .await
            .unwrap()
    );
    assert_eq!(now_at(hash).await, (1_000, None));
    assert!(
        store
            .shorten_session("short", (Some(800), None), 20)
            .await
            .unwrap()
    );
    assert_eq!(now_at(hash).await, (800, Some(800)));
    // A use would extend it to 2,000: the end the action allowed holds.
    store
        .record_session_use(&hash, 2_000, &origin, 30)
        .await
        .unwrap();
    assert_eq!(now_at(hash).await, (800, Some(800)));
    // A later, longer end asked changes nothing; a shorter idle end moves only the idle end.
    assert!(
        store
            .shorten_session("short", (Some(900), Some(500)), 40)
            .await
            .unwrap()
    );
    assert_eq!(now_at(hash).await, (500, Some(800)));
    store
        .record_session_use(&hash, 700, &origin, 50)
        .await
        .unwrap();
    assert_eq!(now_at(hash).await, (700, Some(800)));
    store
        .record_session_use(&hash, 5_000, &origin, 60)
        .await
        .unwrap();
    assert_eq!(now_at(hash).await, (800, Some(800)));
    assert!(
        store
            .shorten_session("short", (None, Some(600)), 70)
            .await
            .unwrap()
    );
    assert_eq!(now_at(hash).await, (600, Some(800)));
    // The other session of the same user is untouched, and still extends freely.
    store
        .record_session_use(&other, 3_000, &origin, 70)
        .await
        .unwrap();
    assert_eq!(now_at(other).await, (3_000, None));
    // An end already past leaves it expired; an expired session is not there to shorten.
    assert!(
        store
            .shorten_session("short", (Some(15), None), 80)
            .await
            .unwrap()
    );
    assert!(store.find_session(&hash, 80).await.unwrap().is_none());
    assert!(
        !store
            .shorten_session("short", (None, Some(900)), 80)
            .await
            .unwrap()
    );
    assert!(
        !store
            .shorten_session("nowhere", (Some(900), None), 80)
            .await
            .unwrap()
    );
    // A use of the expired session brings nothing back.
    store
        .record_session_use(&hash, 9_000, &origin, 90)
        .await
        .unwrap();
    assert!(store.find_session(&hash, 90).await.unwrap().is_none());
}

async fn sessions_opaque_tokens_and_user_changes(store: &Store) {
    let user = store
        .create_user(&new_user("s@x.io"), "auth0|s", 1)
        .await
        .unwrap();
    assert_eq!(
        (user.name.as_str(), user.email_verified, user.logins_count),
        ("Name", true, 0)
    );
    let session = SessionRecord {
        sid: "sid-1".into(),
        user_id: user.user_id.clone(),
        connection: Some("github".into()),
        amr: vec!["pwd".into(), "mfa".into()],
        auth_time: 5,
        expires_at: 100,
        last_interacted_at: None,
        upstream_sid: Some("provider-session".into()),
        ends_by: None,
    };
    store
        .create_session(&[1; 32], &session, &SessionOrigin::default(), 5)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_session(
                &[2; 32],
                &SessionRecord {
                    user_id: "auth0|nobody".into(),
                    ..session.clone()
                },
                &SessionOrigin::default(),
                5
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    let found = store.find_session(&[1; 32], 99).await.unwrap().unwrap();
    assert_eq!((found.sid.as_str(), found.auth_time), ("sid-1", 5));
    assert_eq!(found.connection.as_deref(), Some("github"));
    assert_eq!(found.amr, ["pwd", "mfa"]);
    assert_eq!(found.upstream_sid.as_deref(), Some("provider-session"));
    assert!(store.find_session(&[1; 32], 100).await.unwrap().is_none());
    // Read with its user in one query: the same session, the user's own columns (the
    // session's `connection` and `expires_at` are not taken for the user's).
    let (joined, owner) = store
        .find_session_with_user(&[1; 32], 99)
        .await
        .unwrap()
        .unwrap();
    let fields = |s: &SessionRecord| {
        let SessionRecord {
            sid,
            user_id,
            connection,
            amr,
            auth_time,
            expires_at,
            last_interacted_at,
            upstream_sid,
            ends_by,
        } = s.clone();
        (
            sid,
            user_id,
            connection,
            amr,
            auth_time,
            expires_at,
            last_interacted_at,
            upstream_sid,
            ends_by,
        )
    };
    assert_eq!(fields(&joined), fields(&found));
    assert_eq!(owner, user);
    assert!(
        store
            .find_session_with_user(&[1; 32], 100)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_session_with_user(&[9; 32], 1)
            .await
            .unwrap()
            .is_none()
    );
    // A new session's first use is its creation.
    assert_eq!(found.last_interacted_at, Some(5));
    // A use moves the end later, never earlier, and is recorded either way.
    let somewhere = SessionOrigin::default();
    store
        .record_session_use(&[1; 32], 150, &somewhere, 10)
        .await
        .unwrap();
    store
        .record_session_use(&[1; 32], 120, &somewhere, 11)
        .await
        .unwrap();
    let extended = store.find_session(&[1; 32], 149).await.unwrap().unwrap();
    assert_eq!(
        (extended.expires_at, extended.last_interacted_at),
        (150, Some(11))
    );
    assert!(store.find_session(&[1; 32], 150).await.unwrap().is_none());
    store.delete_session(&[1; 32], 0).await.unwrap();
    assert!(store.find_session(&[1; 32], 6).await.unwrap().is_none());

    let opaque = OpaqueTokenRecord {
        client_id: "c".into(),
        user_id: user.user_id.clone(),
        scope: "openid email".into(),
        expires_at: 50,
    };
    store
        .create_opaque_token(&[3; 32], &opaque, 1)
        .await
        .unwrap();
    assert_eq!(
        store
            .find_opaque_token(&[3; 32], 49)
            .await
            .unwrap()
            .unwrap()
            .scope,
        "openid email"
    );
    assert!(
        store
            .find_opaque_token(&[3; 32], 50)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .revoke_opaque_tokens("c", &user.user_id)
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .find_opaque_token(&[3; 32], 2)
            .await
            .unwrap()
            .is_none()
    );

    store.record_login(&user.user_id, 7).await.unwrap();
    store.record_login(&user.user_id, 8).await.unwrap();
    let user = store.find_user(&user.user_id).await.unwrap().unwrap();
    assert_eq!((user.last_login, user.logins_count), (Some(8), 2));

    // A new password ends the sessions and the refresh tokens.
    store
        .create_session(&[4; 32], &session, &SessionOrigin::default(), 9)
        .await
        .unwrap();
    let family = NewRefreshFamily {
        family_id: "fam".into(),
        client_id: "c".into(),
        user_id: user.user_id.clone(),
        grant: "{\"scope\":\"openid\"}".into(),
        code_hash: None,
        sid: Some("sid-1".into()),
        created_at: 9,
        expires_at: 1_000,
        metadata: Default::default(),
    };
    store
        .create_refresh_family(&family, &[5; 32], 500)
        .await
        .unwrap();
    let live = store
        .find_refresh_family(&[5; 32], 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (live.family_id.as_str(), live.grant.as_str()),
        ("fam", "{\"scope\":\"openid\"}")
    );
    store
        .set_user_password(&user.user_id, "h2", 10)
        .await
        .unwrap();
    assert!(store.find_session(&[4; 32], 11).await.unwrap().is_none());
    assert!(
        store
            .find_refresh_family(&[5; 32], 11)
            .await
            .unwrap()
            .is_none()
    );
    let (_, hash) = store
        .find_user_with_password("s@x.io")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash.as_deref(), Some("h2"));
    assert!(matches!(
        store.set_user_password("auth0|nobody", "h", 10).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_user_blocked("auth0|nobody", true, 10).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .set_user_blocked(&user.user_id, true, 11)
        .await
        .unwrap();
    store
        .set_user_blocked(&user.user_id, false, 12)
        .await
        .unwrap();
    let user = store.find_user_by_email("S@X.io").await.unwrap().unwrap();
    assert!(!user.blocked && user.updated_at == 12);
    store
        .create_user(&new_user("t@x.io"), "auth0|t", 2)
        .await
        .unwrap();
    assert_eq!(
        store
            .list_users(
                &tessera_store::UserSearch::default(),
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .iter()
            .map(|u| u.user_id.as_str())
            .collect::<Vec<_>>(),
        ["auth0|s", "auth0|t"]
    );
    store.delete_user("auth0|t", 0).await.unwrap();
    assert!(matches!(
        store.delete_user("auth0|t", 0).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.find_user("auth0|t").await.unwrap().is_none());
}

async fn clients_grants_and_lists(store: &Store) {
    let mut second = client("c2");
    second.name = "Second".into();
    second.created_at = 2;
    second.secret_hash = None;
    second.app_type = AppType::Spa;
    store.create_client(&second).await.unwrap();
    store.create_client(&client("c1")).await.unwrap();
    assert!(matches!(
        store.create_client(&client("c1")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .list_clients(
                &tessera_store::ClientFilter::default(),
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .iter()
            .map(|c| c.client_id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    assert_eq!(
        store.find_client_by_name("Second").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.find_client("c2").await.unwrap(), Some(second));
    let update = ClientUpdate {
        callbacks: Some(vec!["https://app/cb".into()]),
        secret_hash: Some(vec![9; 32]),
        refresh: Some(tessera_core::RefreshPolicy {
            token_lifetime: 10,
            idle_token_lifetime: 5,
            reuse_interval: 2,
        }),
        ..ClientUpdate::default()
    };
    let updated = store.update_client("c2", &update, 7).await.unwrap();
    assert_eq!(
        store.find_client("c2").await.unwrap(),
        Some(updated.clone())
    );
    assert_eq!(
        (updated.refresh.reuse_interval, updated.secret_hash),
        (2, Some(vec![9; 32]))
    );
    assert!(matches!(
        store
            .update_client("nope", &ClientUpdate::default(), 7)
            .await,
        Err(StoreError::NotFound(_))
    ));

    store
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    for (id, client_id) in [("g1", "c1"), ("g2", "c2")] {
        store
            .create_client_grant(&ClientGrant {
                id: id.into(),
                client_id: client_id.into(),
                audience: "https://a".into(),
                scope: vec!["read".into()],
                created_at: 1,
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .list_client_grants(
                tessera_store::ClientGrantFilter::default(),
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        store
            .list_client_grants(
                tessera_store::ClientGrantFilter {
                    client_id: Some("c2"),
                    audience: None
                },
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let changed = store
        .update_client_grant("g2", &["read".into(), "write".into()])
        .await
        .unwrap();
    assert_eq!(changed.scope, ["read", "write"]);
    assert!(matches!(
        store.update_client_grant("nope", &[]).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_client_grant("g2").await.unwrap();
    assert!(matches!(
        store.delete_client_grant("g2").await,
        Err(StoreError::NotFound(_))
    ));
    // Deleting an API removes its grants.
    store.delete_resource_server("id-https://a").await.unwrap();
    assert!(
        store
            .list_client_grants(
                tessera_store::ClientGrantFilter::default(),
                tessera_store::Slice::first(1000)
            )
            .await
            .unwrap()
            .items
            .is_empty()
    );
    store.delete_client("c1").await.unwrap();
    assert!(matches!(
        store.delete_client("c1").await,
        Err(StoreError::NotFound(_))
    ));
    let scopes = ResourceServerUpdate {
        scopes: Some(vec![]),
        allow_offline_access: Some(true),
        enforce_policies: Some(true),
        token_dialect: Some(TokenDialect::AccessTokenAuthz),
        ..ResourceServerUpdate::default()
    };
    assert!(matches!(
        store.update_resource_server("nope", &scopes, 1).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Lists sort by bytes, as SQLite does, whatever the PostgreSQL database's locale.
async fn ordering_is_byte_order_as_in_sqlite(store: &Store) {
    for name in ["b", "B", "a", "_", "Z"] {
        store
            .create_role(&Role {
                id: format!("rol_{name}"),
                name: name.into(),
                description: String::new(),
                created_at: 1,
                updated_at: 1,
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .list_roles(None, tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["B", "Z", "_", "a", "b"]
    );
}

// ---- backend-specific ------------------------------------------------------------------

#[tokio::test]
async fn sqlite_connect_creates_parent_directories_and_is_idempotent() {
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
        again
            .list_resource_servers(None, tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .len(),
        1,
        "data survives reopening; migrations rerun safely"
    );
    assert!(matches!(
        Store::connect("mysql://nope").await,
        Err(StoreError::BadUrl(_))
    ));
    assert!(matches!(
        Store::connect("sqlite://").await,
        Err(StoreError::BadUrl(_))
    ));
}

/// The database holds user data: its file (and SQLite's `-wal` and `-shm` beside it) and
/// the directories created for it are the owner's alone, whatever the umask leaves open.
/// `database_files` lists the files there are. A file that exists keeps its mode.
#[tokio::test]
async fn sqlite_files_and_new_directories_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &std::path::Path| {
        let metadata = std::fs::metadata(path).unwrap();
        format!("{:o}", metadata.permissions().mode() & 0o777)
    };
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("new/dir/t.db");
    let store = Store::connect(&format!("sqlite://{}", database.display()))
        .await
        .unwrap();
    store
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    let files = store.database_files();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
    assert_eq!(names, ["t.db", "t.db-wal", "t.db-shm"]);
    for file in &files {
        assert_eq!(mode(file), "600", "{}", file.display());
    }
    for new in ["new", "new/dir"] {
        assert_eq!(mode(&dir.path().join(new)), "700", "{new}");
    }
    store.close().await;

    let shared = dir.path().join("shared.db");
    std::fs::write(&shared, "").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    Store::connect(&format!("sqlite://{}", shared.display()))
        .await
        .unwrap();
    assert_eq!(mode(&shared), "640", "left as it was");
}

#[tokio::test]
async fn postgres_connect_is_idempotent_and_either_scheme_works() {
    let server = PgServer::start();
    let url = server.database();
    let first = Store::connect(&url).await.unwrap();
    assert_eq!(first.path(), None, "no file beside a PostgreSQL database");
    first
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    first.close().await;
    let again = Store::connect(&url.replacen("postgres://", "postgresql://", 1))
        .await
        .unwrap();
    assert_eq!(
        again
            .list_resource_servers(None, tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .len(),
        1,
        "data survives reconnecting; migrations rerun safely"
    );
    assert!(format!("{again:?}").contains("postgres"));
    // Through the Unix socket: no host, `?host=DIR`.
    let name = url.rsplit('/').next().unwrap();
    let socket = Store::connect(&format!(
        "postgres:///{name}?host={}&port={}&user=postgres",
        server.socket_dir().display(),
        server.port()
    ))
    .await
    .unwrap();
    assert_eq!(
        socket
            .list_resource_servers(None, tessera_store::Slice::first(1000))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

/// The password of a PostgreSQL URL is never part of an error, whatever goes wrong.
#[tokio::test]
async fn postgres_urls_are_checked_and_passwords_never_echoed() {
    const SECRET: &str = "s3cret-Pa55word";
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let full_text = |error: &StoreError| {
        let mut text = format!("{error} {error:?}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        text
    };
    for bad in [
        format!("postgres://tessera:{SECRET}@db.example:notaport/tessera"),
        format!("postgres://tessera:{SECRET}@/tessera"),
        format!("postgres://tessera:{SECRET}@db.example/tessera?sslmode=sometimes"),
    ] {
        let error = Store::connect(&bad).await.unwrap_err();
        assert!(matches!(error, StoreError::BadUrl(_)), "{bad}: {error:?}");
        assert!(!full_text(&error).contains(SECRET), "{error:?}");
    }
    let started = Instant::now();
    let refused = Store::connect(&format!(
        "postgres://tessera:{SECRET}@127.0.0.1:{closed_port}/tessera"
    ))
    .await
    .unwrap_err();
    assert!(refused.is_transient(), "{refused:?}");
    assert!(!full_text(&refused).contains(SECRET), "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // Wrong database: a clear, permanent error from the server.
    let server = PgServer::start();
    let missing = Store::connect(&server.url("no_such_database"))
        .await
        .unwrap_err();
    assert!(!missing.is_transient(), "{missing:?}");
    assert!(
        full_text(&missing).contains("no_such_database"),
        "{missing:?}"
    );
}

/// SECURITY.md, reliability: the database restarts — calls fail fast with `Unavailable`
/// (the server answers 503 with Retry-After), nothing panics or hangs, and the same
/// handle works again within seconds once PostgreSQL is back.
#[tokio::test]
async fn postgres_restart_gives_unavailable_then_the_same_store_recovers() {
    let mut server = PgServer::start();
    let store = Store::connect(&server.database()).await.unwrap();
    store.create_client(&client("c1")).await.unwrap();
    store.create_code(&code(1, i64::MAX)).await.unwrap();

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let error = store.find_client("c1").await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
        // Bounded by the pool's acquire timeout (2 s), with room for a slow machine.
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
    }
    let error = store.redeem_code(&[1; 32], 5).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(store.ping().await.unwrap_err().is_transient());

    server.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.find_client("c1").await {
            Ok(found) => {
                assert_eq!(found, Some(client("c1")));
                break;
            }
            Err(error) if error.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the store did not recover: {error:?}"),
        }
    }
    assert!(
        matches!(
            store.redeem_code(&[1; 32], 6).await.unwrap(),
            CodeRedemption::Redeemed(_)
        ),
        "the failed redemption changed nothing"
    );
    store.ping().await.unwrap();
}

/// While PostgreSQL is down, one call finds out (after the pool's acquire timeout) and the
/// calls after it fail at once with `Down`, without trying; once the server is back, a
/// probe gets through and the breaker closes.
#[tokio::test]
async fn postgres_outage_opens_the_circuit_breaker_and_recovery_closes_it() {
    let mut server = PgServer::start();
    let store = Store::connect(&server.database()).await.unwrap();
    store.create_client(&client("c1")).await.unwrap();

    server.stop();
    let first = store.find_client("c1").await.unwrap_err();
    assert!(matches!(first, StoreError::Unavailable(_)), "{first:?}");
    for _ in 0..3 {
        let next = store.find_client("c1").await.unwrap_err();
        assert!(matches!(next, StoreError::Down), "{next:?}");
        assert!(next.is_transient());
    }
    // Clones share the pool, and so the breaker.
    assert!(matches!(store.clone().ping().await, Err(StoreError::Down)));

    server.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.find_client("c1").await {
            Ok(found) => {
                assert_eq!(found, Some(client("c1")));
                break;
            }
            Err(error) if error.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the store did not recover: {error:?}"),
        }
    }
    // Closed again: calls go through.
    store.ping().await.unwrap();
    store.find_client("c1").await.unwrap();
}

/// A conflict is the caller's problem, not an outage: the breaker stays closed.
#[tokio::test]
async fn postgres_conflicts_do_not_open_the_circuit_breaker() {
    let server = PgServer::start();
    let store = Store::connect(&server.database()).await.unwrap();
    store.create_client(&client("c1")).await.unwrap();
    assert!(matches!(
        store.create_client(&client("c1")).await,
        Err(StoreError::Conflict(_))
    ));
    store.find_client("c1").await.unwrap();
}

/// Calls made over and over by `tasks` tasks at once, as a busy server makes them, counted
/// by outcome.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    counts: std::sync::Arc<Counts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct Counts {
    answered: std::sync::atomic::AtomicU64,
    unavailable: std::sync::atomic::AtomicU64,
    /// The longest any call took, in milliseconds.
    slowest_ms: std::sync::atomic::AtomicU64,
    /// Errors other than `Unavailable`/`Down`.
    wrong: std::sync::Mutex<Vec<String>>,
}

impl Load {
    fn start(store: &Store, tasks: usize) -> Load {
        use std::sync::atomic::Ordering::Relaxed;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counts = std::sync::Arc::new(Counts::default());
        let tasks = (0..tasks)
            .map(|_| {
                let (store, stop, counts) = (store.clone(), stop.clone(), counts.clone());
                tokio::spawn(async move {
                    while !stop.load(Relaxed) {
                        let started = Instant::now();
                        let outcome = store.find_client("c1").await;
                        let took = u64::try_from(started.elapsed().as_millis()).unwrap();
                        counts.slowest_ms.fetch_max(took, Relaxed);
                        match outcome {
                            Ok(_) => counts.answered.fetch_add(1, Relaxed),
                            Err(error) if error.is_transient() => {
                                // Not a spin: a failed call waits a little, as a client would.
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                counts.unavailable.fetch_add(1, Relaxed)
                            }
                            Err(error) => {
                                counts.wrong.lock().unwrap().push(format!("{error:?}"));
                                0
                            }
                        };
                    }
                })
            })
            .collect();
        Load {
            stop,
            counts,
            tasks,
        }
    }

    fn answered(&self) -> u64 {
        self.counts
            .answered
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn unavailable(&self) -> u64 {
        self.counts
            .unavailable
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the tasks; returns the longest call and the unexpected errors.
    async fn finish(self) -> (Duration, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let slowest = self
            .counts
            .slowest_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let wrong = std::mem::take(&mut *self.counts.wrong.lock().unwrap());
        (Duration::from_millis(slowest), wrong)
    }
}

/// Waits (at most 30 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How the test takes PostgreSQL down.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// A restart or failover: sessions end with `57P01 admin_shutdown`.
    FastShutdown,
    /// `kill -9` of every PostgreSQL process.
    Crash,
}

/// An outage as it happens: PostgreSQL goes down while 20 calls are in flight. The pool
/// then keeps opening connections (so it is never empty) and holds dead idle ones; the
/// breaker must open anyway, and the calls after it fail at once instead of waiting the
/// 2 s acquire timeout each. Once PostgreSQL is back the same store works again.
async fn outage_under_load(outage: Outage) {
    let mut server = PgServer::start();
    let store = Store::connect(&server.database()).await.unwrap();
    store.create_client(&client("c1")).await.unwrap();
    let load = Load::start(&store, 20);
    eventually("the load never got going", || load.answered() >= 100).await;

    tokio::task::block_in_place(|| match outage {
        Outage::FastShutdown => server.stop(),
        Outage::Crash => server.crash(),
    });
    eventually("the breaker did not open", || {
        store.pool_stats().failing_fast
    })
    .await;

    // Failing at once: in 3 s the 20 tasks get far more errors than the ~40 they would if
    // each call waited out the acquire timeout.
    let before = load.unavailable();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failed = load.unavailable() - before;
    assert!(failed > 200, "{failed} calls failed in 3 s ({outage:?})");
    // One after the other: 10 calls take far less than 10 × 2 s.
    let started = Instant::now();
    for _ in 0..10 {
        let error = store.find_client("c1").await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "10 calls took {:?} ({outage:?})",
        started.elapsed()
    );
    assert!(store.pool_stats().failing_fast, "open for the whole outage");

    tokio::task::block_in_place(|| server.resume());
    let recovered = load.answered();
    eventually("the store did not recover", || {
        load.answered() > recovered + 100
    })
    .await;
    let (slowest, wrong) = load.finish().await;
    assert_eq!(wrong, Vec::<String>::new(), "only Unavailable or Down");
    // At most the acquire timeout and the breaker's own attempt, with room for a slow machine.
    assert!(slowest < Duration::from_secs(15), "a call took {slowest:?}");
    assert_eq!(
        store.find_client("c1").await.unwrap(),
        Some(client("c1")),
        "nothing lost"
    );
    assert!(!store.pool_stats().failing_fast, "closed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fast_shutdown_under_load_opens_the_breaker_then_recovers() {
    outage_under_load(Outage::FastShutdown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_under_load_opens_the_breaker_then_recovers() {
    outage_under_load(Outage::Crash).await;
}

/// A busy pool is not an outage: with every connection held by calls waiting for a lock,
/// one more call gets no connection within the acquire timeout and fails, but the breaker
/// stays closed and the next calls go to the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_busy_pool_does_not_open_the_breaker() {
    use sqlx::Connection as _;
    let server = PgServer::start();
    let url = server.database();
    let store = Store::connect(&url).await.unwrap();
    store.create_client(&client("c1")).await.unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
        .execute(&mut admin)
        .await
        .unwrap();
    let max = store.pool_stats().max_connections;
    let waiting: Vec<_> = (0..max)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.find_client("c1").await })
        })
        .collect();
    eventually("the calls did not take every connection", || {
        let stats = store.pool_stats();
        stats.connections == max && stats.idle == 0
    })
    .await;

    let error = store.ping().await.unwrap_err();
    assert!(
        matches!(error, StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        "{error:?}"
    );
    assert!(!store.pool_stats().failing_fast, "busy, not down");

    sqlx::raw_sql("ROLLBACK").execute(&mut admin).await.unwrap();
    for call in waiting {
        // Answered once the lock is gone (or refused by the lock timeout meanwhile).
        match call.await.unwrap() {
            Ok(found) => assert_eq!(found, Some(client("c1"))),
            Err(error) => assert!(error.is_transient(), "{error:?}"),
        }
    }
    store.ping().await.unwrap();
    assert!(!store.pool_stats().failing_fast);
}

/// Two nodes (two pools) on one database: a code is still redeemed once, a refresh token
/// still rotated once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_redeem_a_code_and_rotate_a_token_once() {
    let server = PgServer::start();
    let url = server.database();
    let nodes = [
        Store::connect(&url).await.unwrap(),
        Store::connect(&url).await.unwrap(),
    ];
    nodes[0].create_code(&code(7, i64::MAX)).await.unwrap();
    refresh_family(&nodes[1], 1, 10_000).await;
    let mut redemptions = Vec::new();
    let mut rotations = Vec::new();
    for i in 0..20u8 {
        let store = nodes[usize::from(i % 2)].clone();
        redemptions.push(tokio::spawn(async move {
            store.redeem_code(&[7; 32], 10).await.unwrap()
        }));
        let store = nodes[usize::from(i % 2)].clone();
        rotations.push(tokio::spawn(async move {
            store
                .rotate_refresh_token(&[1; 32], &[100 + i; 32], "c", TIMING, 10)
                .await
                .unwrap()
        }));
    }
    let mut redeemed = 0;
    for task in redemptions {
        if let CodeRedemption::Redeemed(_) = task.await.unwrap() {
            redeemed += 1;
        }
    }
    assert_eq!(redeemed, 1);
    let mut rotated = 0;
    let mut reused = 0;
    for task in rotations {
        match task.await.unwrap() {
            RefreshRotation::Rotated => rotated += 1,
            RefreshRotation::Reused => reused += 1,
            RefreshRotation::Invalid => {}
        }
    }
    assert_eq!(rotated, 1, "exactly one use rotates");
    assert!(
        reused >= 1,
        "the others are reuse (or find the family revoked)"
    );
}

/// A lock held elsewhere (an administrator's open transaction) makes a call fail with
/// `Unavailable` after the lock timeout (5 s), not hang; it works again once released.
#[tokio::test]
async fn postgres_a_lock_held_elsewhere_gives_unavailable_not_a_hang() {
    use sqlx::Connection as _;
    let server = PgServer::start();
    let url = server.database();
    let store = Store::connect(&url).await.unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
        .execute(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    let error = store.find_client("c1").await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    sqlx::raw_sql("ROLLBACK").execute(&mut admin).await.unwrap();
    assert_eq!(store.find_client("c1").await.unwrap(), None);
}

async fn reset_user(store: &Store, user_id: &str, email: &str) {
    let new = NewUser {
        email: email.into(),
        password_hash: "h".into(),
        email_verified: false,
        name: None,
        nickname: None,
        picture: None,
        ..Default::default()
    };
    store.create_user(&new, user_id, 0).await.unwrap();
}

async fn a_reset_code_works_once_and_is_replaced_by_a_new_one(store: &Store) {
    reset_user(store, "auth0|r1", "r1@example.com").await;
    reset_user(store, "auth0|r2", "r2@example.com").await;
    store
        .put_password_reset_code("auth0|r1", &[1; 32], 10, 100)
        .await
        .unwrap();
    // A code is bound to its user.
    assert_eq!(
        store
            .redeem_password_reset_code("auth0|r2", &[1; 32], 20, 5)
            .await
            .unwrap(),
        ResetCodeCheck::Missing
    );
    // A new request replaces the code: the old one is now wrong.
    store
        .put_password_reset_code("auth0|r1", &[2; 32], 30, 100)
        .await
        .unwrap();
    assert_eq!(
        store
            .redeem_password_reset_code("auth0|r1", &[1; 32], 40, 5)
            .await
            .unwrap(),
        ResetCodeCheck::Wrong { attempts_left: 4 }
    );
    // Concurrent redemptions of the right code: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .redeem_password_reset_code("auth0|r1", &[2; 32], 40, 5)
                .await
                .unwrap()
        }));
    }
    let mut redeemed = 0;
    for task in tasks {
        if task.await.unwrap() == ResetCodeCheck::Redeemed {
            redeemed += 1;
        }
    }
    assert_eq!(redeemed, 1);
    assert_eq!(
        store
            .redeem_password_reset_code("auth0|r1", &[2; 32], 41, 5)
            .await
            .unwrap(),
        ResetCodeCheck::Missing
    );
    // Deleting the user deletes the code.
    store
        .put_password_reset_code("auth0|r2", &[3; 32], 50, 100)
        .await
        .unwrap();
    store.delete_user("auth0|r2", 0).await.unwrap();
    reset_user(store, "auth0|r2", "r2@example.com").await;
    assert_eq!(
        store
            .redeem_password_reset_code("auth0|r2", &[3; 32], 60, 5)
            .await
            .unwrap(),
        ResetCodeCheck::Missing
    );
}

async fn a_reset_code_dies_after_wrong_tries_or_at_expiry_and_is_purged(store: &Store) {
    reset_user(store, "auth0|r3", "r3@example.com").await;
    store
        .put_password_reset_code("auth0|r3", &[7; 32], 10, 100)
        .await
        .unwrap();
    for left in (0..5).rev() {
        assert_eq!(
            store
                .redeem_password_reset_code("auth0|r3", &[8; 32], 20, 5)
                .await
                .unwrap(),
            ResetCodeCheck::Wrong {
                attempts_left: left
            }
        );
    }
    // Five wrong tries: even the right code is refused now.
    assert_eq!(
        store
            .redeem_password_reset_code("auth0|r3", &[7; 32], 20, 5)
            .await
            .unwrap(),
        ResetCodeCheck::Missing
    );
    // Expired: refused, and the purge removes the row.
    store
        .put_password_reset_code("auth0|r3", &[9; 32], 10, 100)
        .await
        .unwrap();
    assert_eq!(
        store
            .redeem_password_reset_code("auth0|r3", &[9; 32], 100, 5)
            .await
            .unwrap(),
        ResetCodeCheck::Missing
    );
    store
        .put_password_reset_code("auth0|r3", &[9; 32], 10, 100)
        .await
        .unwrap();
    assert_eq!(store.purge_expired(99).await.unwrap().reset_codes, 0);
    assert_eq!(store.purge_expired(100).await.unwrap().reset_codes, 1);
}

async fn parallel_tries_of_a_reset_code_compare_at_most_the_allowed_number(store: &Store) {
    reset_user(store, "auth0|r4", "r4@example.com").await;
    // Several rounds, since the order concurrent tries reach the database varies.
    for round in 0..5u8 {
        store
            .put_password_reset_code("auth0|r4", &[7; 32], 10, 100)
            .await
            .unwrap();
        for _ in 0..4 {
            store
                .redeem_password_reset_code("auth0|r4", &[8; 32], 20, 5)
                .await
                .unwrap();
        }
        // One try is left: of the right code and 19 wrong ones sent at once, exactly one is
        // answered as compared (Redeemed or Wrong); the rest find no try left. This holds
        // the invariant; the race it guards against (every wrong try compared before any
        // was counted) did not show in answers, which is why each try now reserves first.
        let mut tasks = Vec::new();
        for attempt in 0..20u8 {
            let store = store.clone();
            let code = if attempt == 0 {
                [7; 32]
            } else {
                [100 + attempt; 32]
            };
            tasks.push(tokio::spawn(async move {
                store
                    .redeem_password_reset_code("auth0|r4", &code, 20, 5)
                    .await
                    .unwrap()
            }));
        }
        let mut compared = 0;
        for task in tasks {
            match task.await.unwrap() {
                ResetCodeCheck::Missing => {}
                ResetCodeCheck::Redeemed | ResetCodeCheck::Wrong { .. } => compared += 1,
            }
        }
        assert_eq!(
            compared, 1,
            "round {round}: only the one try left was compared"
        );
        assert_eq!(
            store
                .redeem_password_reset_code("auth0|r4", &[7; 32], 21, 5)
                .await
                .unwrap(),
            ResetCodeCheck::Missing,
            "round {round}: the code is used up or dead"
        );
    }
}

// ---- lists paged in SQL -------------------------------------------------------------------

fn ids(page: &Page<tessera_core::User>) -> Vec<&str> {
    page.items.iter().map(|u| u.user_id.as_str()).collect()
}

fn term(field: UserField, matches: Match) -> UserTerm {
    UserTerm { field, matches }
}

fn search(terms: Vec<UserTerm>) -> UserSearch {
    UserSearch { terms, sort: None }
}

fn sorted(by: UserOrder, descending: bool) -> UserSearch {
    UserSearch {
        terms: Vec::new(),
        sort: Some(UserSort { by, descending }),
    }
}

const ALL: Slice = Slice {
    offset: 0,
    limit: 100,
    count: true,
};

async fn users_are_paged_searched_and_sorted_in_sql(store: &Store) {
    // u00…u11, created in that order; names alternate case; two have logged in.
    for i in 0..12 {
        let mut new = new_user(&format!("Person{i:02}@Example.com"));
        new.name = Some(if i % 2 == 0 {
            format!("Jane {i:02}")
        } else {
            format!("JOHN {i:02}")
        });
        store
            .create_user(&new, &format!("auth0|u{i:02}"), 100 + i)
            .await
            .unwrap();
    }
    store.record_login("auth0|u03", 500).await.unwrap();
    store.record_login("auth0|u07", 400).await.unwrap();

    // Pages by position, oldest first, with the total only when asked.
    let page = store
        .list_users(
            &UserSearch::default(),
            Slice {
                offset: 4,
                limit: 3,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&page), ["auth0|u04", "auth0|u05", "auth0|u06"]);
    assert_eq!(page.total, Some(12));
    let page = store
        .list_users(&UserSearch::default(), Slice::first(2))
        .await
        .unwrap();
    assert_eq!((ids(&page).len(), page.total), (2, None));
    let past = store
        .list_users(
            &UserSearch::default(),
            Slice {
                offset: u64::MAX,
                limit: 100,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!((past.items.len(), past.total), (0, Some(12)));

    // Email: stored lower-case, searched lower-cased, exact or by prefix.
    let exact = search(vec![term(
        UserField::Email,
        Match::Exact("PERSON03@example.COM".into()),
    )]);
    assert_eq!(
        ids(&store.list_users(&exact, ALL).await.unwrap()),
        ["auth0|u03"]
    );
    let prefix = search(vec![term(
        UserField::Email,
        Match::Prefix("PERSON1".into()),
    )]);
    let page = store.list_users(&prefix, ALL).await.unwrap();
    assert_eq!(ids(&page), ["auth0|u10", "auth0|u11"]);
    assert_eq!(page.total, Some(2));
    // LIKE's wildcards mean nothing here.
    for literal in ["person_", "person%", "%", "_"] {
        let none = search(vec![term(UserField::Email, Match::Prefix(literal.into()))]);
        assert_eq!(store.list_users(&none, ALL).await.unwrap().total, Some(0));
    }
    let everyone = search(vec![term(UserField::Email, Match::Prefix(String::new()))]);
    assert_eq!(
        store.list_users(&everyone, ALL).await.unwrap().total,
        Some(12)
    );

    // Name: either case matches (ASCII), in name order.
    let johns = search(vec![term(UserField::Name, Match::Prefix("john".into()))]);
    let page = store.list_users(&johns, ALL).await.unwrap();
    assert_eq!(page.total, Some(6));
    assert_eq!(ids(&page)[0], "auth0|u01");
    let jane = search(vec![term(UserField::Name, Match::Exact("JANE 04".into()))]);
    assert_eq!(
        ids(&store.list_users(&jane, ALL).await.unwrap()),
        ["auth0|u04"]
    );

    // user_id is case-sensitive; terms are joined by AND.
    let upper = search(vec![term(
        UserField::UserId,
        Match::Prefix("AUTH0|".into()),
    )]);
    assert_eq!(store.list_users(&upper, ALL).await.unwrap().total, Some(0));
    let both = search(vec![
        term(UserField::UserId, Match::Prefix("auth0|u0".into())),
        term(UserField::Name, Match::Prefix("jane".into())),
        term(
            UserField::Connection,
            Match::Exact(tessera_core::DATABASE_CONNECTION.into()),
        ),
    ]);
    let page = store.list_users(&both, ALL).await.unwrap();
    assert_eq!(
        ids(&page),
        [
            "auth0|u00",
            "auth0|u02",
            "auth0|u04",
            "auth0|u06",
            "auth0|u08"
        ]
    );
    let other = search(vec![term(
        UserField::Connection,
        Match::Exact("other".into()),
    )]);
    assert_eq!(store.list_users(&other, ALL).await.unwrap().total, Some(0));

    // Sorts, ties broken by user_id; never-logged-in users first ascending, last
    // descending, on both backends.
    let page = store
        .list_users(&sorted(UserOrder::Email, true), Slice::first(2))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["auth0|u11", "auth0|u10"]);
    let page = store
        .list_users(&sorted(UserOrder::LastLogin, true), Slice::first(3))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["auth0|u03", "auth0|u07", "auth0|u11"]);
    let page = store
        .list_users(&sorted(UserOrder::LastLogin, false), ALL)
        .await
        .unwrap();
    assert_eq!(ids(&page)[..2], ["auth0|u00", "auth0|u01"]);
    assert_eq!(ids(&page)[10..], ["auth0|u07", "auth0|u03"]);
    let page = store
        .list_users(&sorted(UserOrder::CreatedAt, true), Slice::first(1))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["auth0|u11"]);
    let page = store
        .list_users(&sorted(UserOrder::Name, false), Slice::first(2))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["auth0|u00", "auth0|u02"]);
}

async fn configuration_lists_are_paged_and_filtered_in_sql(store: &Store) {
    for (i, app_type) in [AppType::Spa, AppType::NonInteractive, AppType::Spa]
        .into_iter()
        .enumerate()
    {
        let mut c = client(&format!("c{i}"));
        c.app_type = app_type;
        c.is_first_party = i != 2;
        c.created_at = 10 - i as i64;
        store.create_client(&c).await.unwrap();
    }
    let clients = |page: Page<Client>| -> Vec<String> {
        page.items.into_iter().map(|c| c.client_id).collect()
    };
    let spa = ClientFilter {
        app_types: Some(vec!["spa".into()]),
        ..ClientFilter::default()
    };
    // Newest created last: c2 (8), c1 (9), c0 (10).
    assert_eq!(
        clients(store.list_clients(&spa, ALL).await.unwrap()),
        ["c2", "c0"]
    );
    let first_party_spa = ClientFilter {
        is_first_party: Some(true),
        ..spa.clone()
    };
    assert_eq!(
        clients(store.list_clients(&first_party_spa, ALL).await.unwrap()),
        ["c0"]
    );
    let named = ClientFilter {
        client_ids: Some(vec!["c1".into(), "c2".into(), "nope".into()]),
        ..ClientFilter::default()
    };
    let page = store
        .list_clients(
            &named,
            Slice {
                offset: 1,
                limit: 1,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, Some(2));
    assert_eq!(clients(page), ["c1"]);
    let nothing = ClientFilter {
        app_types: Some(Vec::new()),
        ..ClientFilter::default()
    };
    assert_eq!(
        store.list_clients(&nothing, ALL).await.unwrap().total,
        Some(0)
    );
    let by_id = store
        .clients_from(
            &ClientFilter::default(),
            Checkpoint {
                from: Some("c1"),
                take: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!(by_id.next, None);
    assert_eq!(
        by_id
            .items
            .iter()
            .map(|c| c.client_id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2"]
    );

    for identifier in ["https://a", "https://b", "https://c"] {
        store
            .create_resource_server(&api(identifier))
            .await
            .unwrap();
    }
    let wanted = ["https://c".to_string(), "https://a".to_string()];
    let page = store
        .list_resource_servers(Some(&wanted), ALL)
        .await
        .unwrap();
    assert_eq!(page.total, Some(2));
    assert_eq!(
        store
            .resource_servers_by_identifier(&wanted)
            .await
            .unwrap()
            .len(),
        2
    );

    for (id, name) in [
        ("rol_1", "Admin"),
        ("rol_2", "billing_admin"),
        ("rol_3", "Reader"),
        ("rol_4", "100% admin"),
    ] {
        let role = Role {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            created_at: 1,
            updated_at: 1,
        };
        store.create_role(&role).await.unwrap();
    }
    let names =
        |page: Page<Role>| -> Vec<String> { page.items.into_iter().map(|r| r.name).collect() };
    assert_eq!(
        names(store.list_roles(Some("ADMIN"), ALL).await.unwrap()),
        ["100% admin", "Admin", "billing_admin"]
    );
    // `%` and `_` are literal.
    assert_eq!(
        names(store.list_roles(Some("_"), ALL).await.unwrap()),
        ["billing_admin"]
    );
    assert_eq!(
        names(store.list_roles(Some("0%"), ALL).await.unwrap()),
        ["100% admin"]
    );
    let page = store
        .list_roles(
            None,
            Slice {
                offset: 3,
                limit: 10,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (names(page.clone()), page.total),
        (vec!["billing_admin".to_string()], Some(4))
    );

    let user = store
        .create_user(&new_user("member@x.io"), "auth0|member", 1)
        .await
        .unwrap();
    store
        .assign_user_role(&user.user_id, "rol_3")
        .await
        .unwrap();
    store
        .assign_user_role(&user.user_id, "rol_1")
        .await
        .unwrap();
    let page = store
        .list_user_roles(
            &user.user_id,
            Slice {
                offset: 0,
                limit: 1,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (names(page.clone()), page.total),
        (vec!["Admin".to_string()], Some(2))
    );
    store
        .add_role_permissions("rol_3", "https://b", &["read".to_string()])
        .await
        .unwrap();
    store
        .add_role_permissions("rol_1", "https://a", &["read".to_string()])
        .await
        .unwrap();
    store
        .add_user_permissions(&user.user_id, "https://a", &["read".to_string()])
        .await
        .unwrap();
    let page = store
        .list_user_permissions(&user.user_id, ALL)
        .await
        .unwrap();
    assert_eq!(page.total, Some(2), "the same permission twice counts once");
    assert_eq!(page.items[0].audience, "https://a");
    let page = store.list_role_permissions("rol_3", ALL).await.unwrap();
    assert_eq!((page.items.len(), page.total), (1, Some(1)));
}

async fn checkpoints_resume_after_the_last_page_even_when_its_next_row_is_gone(store: &Store) {
    store
        .create_resource_server(&api("https://a"))
        .await
        .unwrap();
    for i in 0..5 {
        store
            .create_client(&client(&format!("c{i}")))
            .await
            .unwrap();
        let grant = ClientGrant {
            id: format!("cgr_{i}"),
            client_id: format!("c{i}"),
            audience: "https://a".into(),
            scope: vec!["read".into()],
            created_at: 10 - i,
        };
        store.create_client_grant(&grant).await.unwrap();
    }
    let all = ClientGrantFilter::default();
    let first = store
        .client_grants_from(
            all,
            Checkpoint {
                from: None,
                take: 2,
            },
        )
        .await
        .unwrap();
    let grant_ids =
        |items: &[ClientGrant]| -> Vec<String> { items.iter().map(|g| g.id.clone()).collect() };
    assert_eq!(grant_ids(&first.items), ["cgr_0", "cgr_1"]);
    assert_eq!(first.next.as_deref(), Some("cgr_2"));
    // The row `next` names is deleted before the next page is asked for: the page
    // starts at the row after it, nothing is skipped.
    store.delete_client_grant("cgr_2").await.unwrap();
    let second = store
        .client_grants_from(
            all,
            Checkpoint {
                from: first.next.as_deref(),
                take: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(grant_ids(&second.items), ["cgr_3", "cgr_4"]);
    assert_eq!(second.next, None);
    // By page: oldest first; filters in SQL.
    let page = store
        .list_client_grants(
            all,
            Slice {
                offset: 0,
                limit: 2,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (grant_ids(&page.items), page.total),
        (vec!["cgr_4".to_string(), "cgr_3".to_string()], Some(4))
    );
    let of_c1 = ClientGrantFilter {
        client_id: Some("c1"),
        audience: Some("https://a"),
    };
    assert_eq!(
        grant_ids(&store.list_client_grants(of_c1, ALL).await.unwrap().items),
        ["cgr_1"]
    );
    assert_eq!(
        store
            .find_client_grant("cgr_1")
            .await
            .unwrap()
            .map(|g| g.client_id),
        Some("c1".into())
    );
    assert_eq!(store.find_client_grant("cgr_2").await.unwrap(), None);

    // A role's members, by user_id, by page and by checkpoint.
    let role = Role {
        id: "rol_m".into(),
        name: "members".into(),
        description: String::new(),
        created_at: 1,
        updated_at: 1,
    };
    store.create_role(&role).await.unwrap();
    for i in [3, 1, 4, 0, 2] {
        let user_id = format!("auth0|m{i}");
        store
            .create_user(&new_user(&format!("m{i}@x.io")), &user_id, i)
            .await
            .unwrap();
        store.assign_user_role(&user_id, "rol_m").await.unwrap();
    }
    let page = store
        .list_role_users(
            "rol_m",
            Slice {
                offset: 1,
                limit: 2,
                count: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&page), ["auth0|m1", "auth0|m2"]);
    assert_eq!(page.total, Some(5));
    let mut seen = Vec::new();
    let mut from: Option<String> = None;
    for _ in 0..5 {
        let page = store
            .role_users_from(
                "rol_m",
                Checkpoint {
                    from: from.as_deref(),
                    take: 2,
                },
            )
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|u| u.user_id));
        from = page.next;
        if from.is_none() {
            break;
        }
    }
    assert_eq!(
        seen,
        ["auth0|m0", "auth0|m1", "auth0|m2", "auth0|m3", "auth0|m4"]
    );
}

async fn tenant_settings_are_patched_member_by_member(store: &Store) {
    let patch = |value: serde_json::Value| value.as_object().unwrap().clone();
    assert!(store.tenant_settings().await.unwrap().is_empty());
    let set = store
        .patch_tenant_settings(&patch(serde_json::json!({
            "friendly_name": "Acme", "flags": {"a": true}, "session_lifetime": 168
        })))
        .await
        .unwrap();
    assert_eq!(set["friendly_name"], "Acme");
    let changed = store
        .patch_tenant_settings(&patch(
            serde_json::json!({"friendly_name": null, "support_email": "help@acme.example"}),
        ))
        .await
        .unwrap();
    assert!(
        changed.get("friendly_name").is_none(),
        "null removes a member"
    );
    assert_eq!(
        changed["flags"],
        serde_json::json!({"a": true}),
        "unnamed members stay"
    );
    assert_eq!(store.tenant_settings().await.unwrap(), changed);

    // Concurrent patches of different members both land (the row is locked meanwhile).
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let one = patch(serde_json::json!({ format!("m{i}"): i }));
        tasks.push(tokio::spawn(async move {
            store.patch_tenant_settings(&one).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let settings = store.tenant_settings().await.unwrap();
    for i in 0..10 {
        assert_eq!(settings[&format!("m{i}")], i, "patch {i} was kept");
    }
}

fn ticket<'a>(hash: &'a [u8], user_id: &'a str, expires_at: i64) -> NewVerificationTicket<'a> {
    NewVerificationTicket {
        ticket_hash: hash,
        user_id,
        result_url: None,
        now: 10,
        expires_at,
    }
}

async fn a_verification_ticket_verifies_its_address_once(store: &Store) {
    reset_user(store, "auth0|v1", "v1@example.com").await;
    let mut with_result = ticket(&[1; 32], "auth0|v1", 100);
    with_result.result_url = Some("https://app.example/done");
    store
        .put_email_verification_ticket(&with_result)
        .await
        .unwrap();
    assert!(
        store
            .email_verification_ticket_live(&[1; 32], 50)
            .await
            .unwrap()
    );
    // Looking does not use it up; an unknown hash is nothing.
    assert!(
        !store
            .email_verification_ticket_live(&[2; 32], 50)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .redeem_email_verification_ticket(&[2; 32], 50)
            .await
            .unwrap(),
        None
    );
    let verified = store
        .redeem_email_verification_ticket(&[1; 32], 50)
        .await
        .unwrap()
        .expect("a live ticket verifies");
    assert_eq!(verified.user_id, "auth0|v1");
    assert_eq!(verified.email, "v1@example.com");
    assert_eq!(
        verified.result_url.as_deref(),
        Some("https://app.example/done")
    );
    let user = store.find_user("auth0|v1").await.unwrap().unwrap();
    assert!(user.email_verified);
    assert_eq!(user.updated_at, 50);
    // Used: gone.
    assert_eq!(
        store
            .redeem_email_verification_ticket(&[1; 32], 51)
            .await
            .unwrap(),
        None
    );
    // Expired: refused, then purged.
    store
        .put_email_verification_ticket(&ticket(&[3; 32], "auth0|v1", 100))
        .await
        .unwrap();
    assert!(
        !store
            .email_verification_ticket_live(&[3; 32], 100)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .redeem_email_verification_ticket(&[3; 32], 100)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.purge_expired(99).await.unwrap().verification_tickets,
        0
    );
    assert_eq!(
        store.purge_expired(100).await.unwrap().verification_tickets,
        1
    );
    // A ticket for an address the user no longer has verifies nothing.
    reset_user(store, "auth0|v2", "v2@example.com").await;
    store
        .put_email_verification_ticket(&ticket(&[4; 32], "auth0|v2", 100))
        .await
        .unwrap();
    let change = UserProfileChange {
        email: Some("v2-new@example.com".into()),
        ..Default::default()
    };
    store
        .update_user_profile("auth0|v2", &change, 20)
        .await
        .unwrap();
    assert_eq!(
        store
            .redeem_email_verification_ticket(&[4; 32], 50)
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .find_user("auth0|v2")
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    // A deleted user's tickets go with it; an unknown user gets none.
    store
        .put_email_verification_ticket(&ticket(&[5; 32], "auth0|v2", 100))
        .await
        .unwrap();
    store.delete_user("auth0|v2", 0).await.unwrap();
    assert!(
        !store
            .email_verification_ticket_live(&[5; 32], 50)
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .put_email_verification_ticket(&ticket(&[6; 32], "auth0|v2", 100))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn concurrent_redemptions_of_a_verification_ticket_verify_once(store: &Store) {
    reset_user(store, "auth0|v3", "v3@example.com").await;
    store
        .put_email_verification_ticket(&ticket(&[7; 32], "auth0|v3", 100))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .redeem_email_verification_ticket(&[7; 32], 50)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut verified = 0;
    for task in tasks {
        if task.await.unwrap().is_some() {
            verified += 1;
        }
    }
    assert_eq!(verified, 1);
}

async fn email_templates_are_created_once_replaced_and_patched(store: &Store) {
    let doc = |pairs: &[(&str, serde_json::Value)]| -> tessera_core::Metadata {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    };
    assert_eq!(store.email_template("verify_email").await.unwrap(), None);
    assert!(matches!(
        store
            .patch_email_template("verify_email", &doc(&[("enabled", true.into())]))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let first = doc(&[("subject", "Hi".into()), ("enabled", false.into())]);
    store
        .create_email_template("verify_email", &first)
        .await
        .unwrap();
    assert!(matches!(
        store.create_email_template("verify_email", &first).await,
        Err(StoreError::Conflict(_))
    ));
    let patched = store
        .patch_email_template("verify_email", &doc(&[("enabled", true.into())]))
        .await
        .unwrap();
    assert_eq!(
        patched,
        doc(&[("subject", "Hi".into()), ("enabled", true.into())])
    );
    let replaced = doc(&[("body", "B".into())]);
    store
        .replace_email_template("verify_email", &replaced)
        .await
        .unwrap();
    store
        .replace_email_template("reset_email", &first)
        .await
        .unwrap();
    assert_eq!(
        store.email_template("verify_email").await.unwrap(),
        Some(replaced)
    );
    assert_eq!(
        store.email_template("reset_email").await.unwrap(),
        Some(first)
    );
}

async fn the_email_provider_is_configured_once_patched_and_deleted(store: &Store) {
    let members =
        |value: serde_json::Value| -> tessera_core::Metadata { value.as_object().unwrap().clone() };
    assert_eq!(store.email_provider().await.unwrap(), None);
    assert!(matches!(
        store
            .patch_email_provider(&members(serde_json::json!({"enabled": false})), None)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let provider = EmailProvider {
        document: members(serde_json::json!({"name": "smtp", "enabled": true})),
        sealed_password: Some(vec![1, 2, 3]),
    };
    store.create_email_provider(&provider).await.unwrap();
    assert!(matches!(
        store.create_email_provider(&provider).await,
        Err(StoreError::Conflict(_))
    ));
    // A patch without a password keeps the sealed one.
    let patched = store
        .patch_email_provider(&members(serde_json::json!({"enabled": false})), None)
        .await
        .unwrap();
    assert_eq!(patched.sealed_password, Some(vec![1, 2, 3]));
    assert_eq!(patched.document["enabled"], false);
    let patched = store
        .patch_email_provider(&members(serde_json::json!({})), Some(&[9]))
        .await
        .unwrap();
    assert_eq!(patched.sealed_password, Some(vec![9]));
    assert_eq!(store.email_provider().await.unwrap(), Some(patched));
    store.delete_email_provider().await.unwrap();
    assert_eq!(store.email_provider().await.unwrap(), None);
    assert!(matches!(
        store.delete_email_provider().await,
        Err(StoreError::NotFound(_))
    ));
}

fn job(id: &str, expires_at: i64) -> Job {
    Job {
        id: id.into(),
        job_type: "users_import".into(),
        status: JobStatus::Pending,
        connection_id: Some("con_x".into()),
        external_id: None,
        created_at: 10,
        updated_at: 10,
        expires_at,
        summary: None,
        details: Default::default(),
    }
}

async fn jobs_keep_status_summary_and_paged_errors(store: &Store) {
    store.create_job(&job("job_a", 100)).await.unwrap();
    assert!(matches!(
        store.create_job(&job("job_a", 100)).await,
        Err(StoreError::Conflict(_))
    ));
    let found = store.find_job("job_a", 50).await.unwrap().unwrap();
    assert_eq!(found, job("job_a", 100));
    // Past its expiry a job is gone for readers, and purged.
    assert_eq!(store.find_job("job_a", 100).await.unwrap(), None);
    assert_eq!(store.find_job("job_b", 50).await.unwrap(), None);

    let summary = serde_json::json!({"failed": 2, "updated": 0, "inserted": 1, "total": 3});
    store
        .set_job_status("job_a", JobStatus::Completed, Some(&summary), 20)
        .await
        .unwrap();
    let done = store.find_job("job_a", 50).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.summary, Some(summary.clone()));
    assert_eq!(done.updated_at, 20);
    // A status change without a summary keeps the one recorded.
    store
        .set_job_status("job_a", JobStatus::Failed, None, 21)
        .await
        .unwrap();
    assert_eq!(
        store.find_job("job_a", 50).await.unwrap().unwrap().summary,
        Some(summary)
    );
    assert!(matches!(
        store
            .set_job_status("job_b", JobStatus::Failed, None, 21)
            .await,
        Err(StoreError::NotFound(_))
    ));

    // More errors than one statement inserts, read back a page at a time in order.
    let errors: Vec<(i64, serde_json::Value)> = (0..1203)
        .map(|i| {
            (
                i * 2,
                serde_json::json!({"user": {"email": format!("u{i}@x.io")}}),
            )
        })
        .collect();
    store.add_job_errors("job_a", &errors).await.unwrap();
    let mut read = Vec::new();
    let mut after = None;
    loop {
        let page = store.job_errors("job_a", after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.0);
        read.extend(page);
    }
    assert_eq!(read, errors);

    let counts = store.purge_expired(100).await.unwrap();
    assert_eq!(counts.jobs, 1);
    assert!(
        store
            .job_errors("job_a", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn imported(id: &str, email: &str) -> ImportedUser {
    ImportedUser {
        user_id: id.into(),
        email: email.into(),
        password_hash: Some(format!("hash-of-{id}")),
        ..Default::default()
    }
}

async fn imports_insert_update_or_refuse_per_user(store: &Store) {
    let existing = store
        .create_user(
            &NewUser {
                email: "old@x.io".into(),
                password_hash: "old-hash".into(),
                email_verified: false,
                name: Some("Old".into()),
                nickname: None,
                picture: None,
                user_metadata: Default::default(),
                app_metadata: Default::default(),
            },
            "auth0|old",
            1,
        )
        .await
        .unwrap();
    let mut upserted = imported("auth0|other", "OLD@x.io");
    upserted.name = Some("Renamed".into());
    upserted.email_verified = Some(true);
    upserted.blocked = true;
    upserted.app_metadata =
        Some(serde_json::from_value(serde_json::json!({"plan": "pro"})).unwrap());
    let mut blocked = imported("auth0|b", "b@x.io");
    blocked.blocked = true;
    let batch = vec![
        imported("auth0|a", "A@x.io"),
        upserted.clone(),
        imported("auth0|old", "taken-id@x.io"),
        blocked,
    ];

    // Without upsert the existing email is refused, and nothing of that user changes.
    let outcomes = store.import_users(&batch, false, 5).await.unwrap();
    assert_eq!(
        outcomes,
        [
            ImportOutcome::Inserted,
            ImportOutcome::DuplicateEmail,
            ImportOutcome::DuplicateUserId,
            ImportOutcome::Inserted,
        ]
    );
    let (old, hash) = store
        .find_user_with_password("old@x.io")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old, existing);
    assert_eq!(hash.as_deref(), Some("old-hash"));
    let (a, hash) = store
        .find_user_with_password("a@x.io")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            a.user_id.as_str(),
            a.email.as_deref().unwrap(),
            a.name.as_str()
        ),
        ("auth0|a", "a@x.io", "a@x.io")
    );
    assert_eq!(a.created_at, 5);
    assert!(!a.email_verified && !a.blocked);
    assert_eq!(hash.as_deref(), Some("hash-of-auth0|a"));
    assert!(store.find_user("auth0|b").await.unwrap().unwrap().blocked);
    assert_eq!(
        store.find_user_by_email("taken-id@x.io").await.unwrap(),
        None
    );

    // With upsert the profile and metadata change; the password, id and blocked do not.
    let outcomes = store.import_users(&[upserted], true, 6).await.unwrap();
    assert_eq!(outcomes, [ImportOutcome::Updated]);
    let (old, hash) = store
        .find_user_with_password("old@x.io")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.user_id, "auth0|old");
    assert_eq!(old.name, "Renamed");
    assert!(old.email_verified);
    assert!(!old.blocked);
    assert_eq!(
        old.app_metadata.get("plan"),
        Some(&serde_json::json!("pro"))
    );
    assert_eq!(old.updated_at, 6);
    assert_eq!(hash.as_deref(), Some("old-hash"));
    assert_eq!(store.find_user("auth0|other").await.unwrap(), None);

    // A user without a password has none to verify against.
    let mut no_password = imported("auth0|np", "np@x.io");
    no_password.password_hash = None;
    store.import_users(&[no_password], false, 7).await.unwrap();
    let (_, hash) = store
        .find_user_with_password("np@x.io")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, None);

    // An upgraded hash replaces only the hash it was computed from.
    assert!(
        !store
            .upgrade_password_hash("auth0|a", "stale", "new")
            .await
            .unwrap()
    );
    assert!(
        store
            .upgrade_password_hash("auth0|a", "hash-of-auth0|a", "new")
            .await
            .unwrap()
    );
    let (_, hash) = store
        .find_user_with_password("a@x.io")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash.as_deref(), Some("new"));

    // A whole-tenant read goes by keyset on the id.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.users_after(None, after.as_deref(), 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.user_id.clone());
        seen.extend(page.into_iter().map(|u| u.user_id));
    }
    assert_eq!(seen, ["auth0|a", "auth0|b", "auth0|np", "auth0|old"]);

    // Batches of a thousand users go in one statement each.
    let many: Vec<ImportedUser> = (0..1000)
        .map(|i| imported(&format!("auth0|m{i}"), &format!("m{i}@x.io")))
        .collect();
    let outcomes = store.import_users(&many, false, 8).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ImportOutcome::Inserted));
    assert!(store.find_user("auth0|m999").await.unwrap().is_some());
}

async fn admin_sessions_live_within_their_limits_and_go_with_their_user(store: &Store) {
    reset_user(store, "auth0|a1", "a1@example.com").await;
    let record = tessera_store::AdminSessionRecord {
        user_id: "auth0|a1".into(),
        csrf_token: "csrf".into(),
        auth_time: 10,
        created_at: 10,
        absolute_expires_at: 1000,
        expires_at: 100,
    };
    store.create_admin_session(&[7; 32], &record).await.unwrap();
    let found = store
        .find_admin_session(&[7; 32], 99)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.csrf_token, "csrf");
    assert_eq!(found.auth_time, 10);
    assert!(
        store
            .find_admin_session(&[7; 32], 100)
            .await
            .unwrap()
            .is_none(),
        "idle end"
    );
    assert!(
        store
            .find_admin_session(&[8; 32], 50)
            .await
            .unwrap()
            .is_none()
    );
    // Extended by use, never past the absolute end, never shortened.
    store.extend_admin_session(&[7; 32], 5000).await.unwrap();
    let found = store
        .find_admin_session(&[7; 32], 500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.expires_at, 1000);
    store.extend_admin_session(&[7; 32], 200).await.unwrap();
    assert_eq!(
        store
            .find_admin_session(&[7; 32], 500)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        1000
    );
    assert_eq!(store.purge_expired(999).await.unwrap().admin_sessions, 0);
    assert_eq!(store.purge_expired(1000).await.unwrap().admin_sessions, 1);
    // Deleted by sign-out, and with the user.
    store.create_admin_session(&[9; 32], &record).await.unwrap();
    store.delete_admin_session(&[9; 32]).await.unwrap();
    assert!(
        store
            .find_admin_session(&[9; 32], 50)
            .await
            .unwrap()
            .is_none()
    );
    store
        .create_admin_session(&[10; 32], &record)
        .await
        .unwrap();
    store.delete_user("auth0|a1", 0).await.unwrap();
    assert!(
        store
            .find_admin_session(&[10; 32], 50)
            .await
            .unwrap()
            .is_none()
    );
    // The first sign-in through an application is recorded once.
    store.create_client(&client("app1")).await.unwrap();
    assert!(
        !store
            .has_client_login_except("tessera_dashboard")
            .await
            .unwrap()
    );
    store.record_client_login("app1", 5).await.unwrap();
    store.record_client_login("app1", 6).await.unwrap();
    assert!(
        store
            .has_client_login_except("tessera_dashboard")
            .await
            .unwrap()
    );
    assert!(!store.has_client_login_except("app1").await.unwrap());
}

/// OIDC Back-Channel Logout's outbox: a session's applications are recorded with its codes
/// (once each); ending sessions in any way queues a notice per application, with why, in
/// the same transaction; a notice is claimed by one caller at a time, retried, deleted.
async fn ending_sessions_queues_logout_notices_for_their_applications(store: &Store) {
    store
        .create_user(&new_user("a@x.io"), "auth0|a", 1)
        .await
        .unwrap();
    let session = |sid: &str| SessionRecord {
        sid: sid.into(),
        user_id: "auth0|a".into(),
        connection: None,
        amr: vec![],
        auth_time: 5,
        expires_at: 100,
        last_interacted_at: None,
        upstream_sid: None,
        ends_by: None,
    };
    for (n, sid) in ["s1", "s2", "s3", "s4"].into_iter().enumerate() {
        store
            .create_session(&[n as u8; 32], &session(sid), &SessionOrigin::default(), 5)
            .await
            .unwrap();
    }
    let used = |hash: u8, client: &str, sid: &str| NewCode {
        session_client: Some(SessionClient {
            sid: sid.into(),
            expires_at: 200,
        }),
        client_id: client.into(),
        user_id: "auth0|a".into(),
        ..code(hash, 50)
    };
    // s1 with two applications (one twice), s2 with one, s3 alone by id_token, s4 none.
    for (hash, client, sid) in [
        (1, "app", "s1"),
        (2, "app", "s1"),
        (3, "web", "s1"),
        (4, "app", "s2"),
    ] {
        store.create_code(&used(hash, client, sid)).await.unwrap();
    }
    store
        .record_session_client(
            "web",
            &SessionClient {
                sid: "s3".into(),
                expires_at: 200,
            },
        )
        .await
        .unwrap();
    let queued = |store: &Store| {
        let store = store.clone();
        async move {
            let mut notices: Vec<(String, String, String)> = store
                .due_logout_notices(i64::MAX, &[])
                .await
                .unwrap()
                .into_iter()
                .map(|n| (n.sid, n.client_id, n.initiator))
                .collect();
            notices.sort();
            notices
        }
    };
    let triple = |sid: &str, client: &str, why: &str| (sid.into(), client.into(), why.into());
    // The browser logs out of s1: one notice per application.
    store.delete_session(&[0; 32], 10).await.unwrap();
    assert_eq!(
        queued(store).await,
        [
            triple("s1", "app", "rp-logout"),
            triple("s1", "web", "rp-logout")
        ]
    );
    // An administrator ends s2 by id.
    assert!(store.end_session("s2", false, 10).await.unwrap());
    assert_eq!(queued(store).await.len(), 3);
    assert!(
        queued(store)
            .await
            .contains(&triple("s2", "app", "session-revoked"))
    );
    // An application a node is busy with is left out of the batch.
    let others = store
        .due_logout_notices(i64::MAX, &["app".to_string()])
        .await
        .unwrap();
    assert_eq!(
        others
            .iter()
            .map(|n| n.client_id.as_str())
            .collect::<Vec<_>>(),
        ["web"]
    );
    // Claims: one at a time, until the lease ends; a retry releases and counts.
    let notice = store.due_logout_notices(10, &[]).await.unwrap()[0].clone();
    assert!(store.claim_logout_notice(notice.id, 10, 40).await.unwrap());
    assert!(!store.claim_logout_notice(notice.id, 20, 50).await.unwrap());
    assert!(
        !store
            .due_logout_notices(20, &[])
            .await
            .unwrap()
            .iter()
            .any(|n| n.id == notice.id)
    );
    assert!(
        store
            .due_logout_notices(40, &[])
            .await
            .unwrap()
            .iter()
            .any(|n| n.id == notice.id)
    );
    store.retry_logout_notice(notice.id, 60).await.unwrap();
    assert!(
        !store
            .due_logout_notices(59, &[])
            .await
            .unwrap()
            .iter()
            .any(|n| n.id == notice.id)
    );
    let again = store.due_logout_notices(60, &[]).await.unwrap();
    let again = again.iter().find(|n| n.id == notice.id).unwrap();
    assert_eq!(again.attempts, 1);
    assert!(store.claim_logout_notice(notice.id, 60, 90).await.unwrap());
    for notice in store.due_logout_notices(i64::MAX, &[]).await.unwrap() {
        store.delete_logout_notice(notice.id).await.unwrap();
    }
    assert!(queued(store).await.is_empty());
    // The user deleted: their remaining sessions' applications (s3's; s4 has none).
    store.delete_user("auth0|a", 10).await.unwrap();
    assert_eq!(
        queued(store).await,
        [triple("s3", "web", "account-deleted")]
    );
    // Records of applications outlive nothing: purged at the session's absolute end.
    let purged = store.purge_expired(200).await.unwrap();
    assert_eq!(purged.session_clients, 4);
}

/// The purge takes expired sessions and, in the same transaction, queues `session-expired`
/// notices for the applications they were used with; live sessions and sessions without
/// applications queue nothing.
async fn a_purged_sessions_applications_are_told_it_expired(store: &Store) {
    store
        .create_user(&new_user("a@x.io"), "auth0|a", 1)
        .await
        .unwrap();
    let session = |sid: &str, expires_at: i64| plain_session(sid, "auth0|a", 5, expires_at);
    for (n, sid, ends) in [
        (1u8, "gone", 50),
        (2, "bare", 50),
        (3, "live", 500),
        (4, "plain", 50),
    ] {
        store
            .create_session(&[n; 32], &session(sid, ends), &SessionOrigin::default(), 5)
            .await
            .unwrap();
    }
    // The notices carry what the session's metadata was when it ended.
    let metadata = BTreeMap::from([("device".to_string(), "laptop".to_string())]);
    assert!(
        store
            .set_session_metadata("gone", &metadata, (10, 0))
            .await
            .unwrap()
    );
    // A record ends with its session's absolute end: the same purge takes both.
    for (sid, client, ends) in [
        ("gone", "app", 50),
        ("gone", "web", 1_000),
        ("live", "app", 500),
        ("plain", "app", 50),
    ] {
        store
            .record_session_client(
                client,
                &SessionClient {
                    sid: sid.into(),
                    expires_at: ends,
                },
            )
            .await
            .unwrap();
    }
    let counts = store.purge_expired(100).await.unwrap();
    assert_eq!(counts.sessions, 3);
    let notices = store.due_logout_notices(i64::MAX, &[]).await.unwrap();
    for notice in &notices {
        let expected = if notice.sid == "gone" {
            metadata.clone()
        } else {
            BTreeMap::new()
        };
        assert_eq!(notice.session_metadata, expected, "{notice:?}");
    }
    let mut queued: Vec<(String, String, String, String)> = notices
        .into_iter()
        .filter(|n| n.sid != "plain")
        .map(|n| (n.sid, n.client_id, n.user_id, n.initiator))
        .collect();
    queued.sort();
    let notice = |client: &str| {
        (
            "gone".to_string(),
            client.to_string(),
            "auth0|a".to_string(),
            "session-expired".to_string(),
        )
    };
    assert_eq!(queued, [notice("app"), notice("web")]);
    assert!(
        store
            .find_session_by_sid("live", (100, 0))
            .await
            .unwrap()
            .is_some()
    );
    // Nothing more at the next purge.
    assert_eq!(store.purge_expired(100).await.unwrap().sessions, 0);
    assert_eq!(
        store.due_logout_notices(i64::MAX, &[]).await.unwrap().len(),
        3
    );
}

/// Sessions signed in before an instant (the tenant's absolute lifetime was lowered) end
/// though their stored end is later, and their applications are told `session-expired`;
/// later sign-ins, and other tenants' sessions, stay.
async fn sessions_past_a_lowered_lifetime_are_ended_and_told(store: &Store) {
    store
        .create_user(&new_user("a@x.io"), "auth0|a", 1)
        .await
        .unwrap();
    for (n, sid, signed_in) in [(1u8, "old", 5), (2, "edge", 50), (3, "new", 51)] {
        let session = plain_session(sid, "auth0|a", signed_in, 10_000);
        store
            .create_session(&[n; 32], &session, &SessionOrigin::default(), signed_in)
            .await
            .unwrap();
        store
            .record_session_client(
                "app",
                &SessionClient {
                    sid: sid.into(),
                    expires_at: 10_000,
                },
            )
            .await
            .unwrap();
    }
    // The expiry purge does not reach them: their stored end is far.
    assert_eq!(store.purge_expired(100).await.unwrap().sessions, 0);
    assert_eq!(store.purge_sessions_signed_in_by(50, 100).await.unwrap(), 2);
    let mut told: Vec<(String, String)> = store
        .due_logout_notices(i64::MAX, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.sid, n.initiator))
        .collect();
    told.sort();
    assert_eq!(
        told,
        [
            ("edge".to_string(), "session-expired".to_string()),
            ("old".to_string(), "session-expired".to_string()),
        ]
    );
    for (sid, stays) in [("old", false), ("edge", false), ("new", true)] {
        let found = store.find_session_by_sid(sid, (100, 0)).await.unwrap();
        assert_eq!(found.is_some(), stays, "{sid}");
    }
    assert_eq!(store.purge_sessions_signed_in_by(50, 100).await.unwrap(), 0);
}

/// A session extended past the end its applications' records were written with (the
/// tenant's absolute lifetime was raised) keeps them: when it ends, later, they are told.
async fn a_sessions_applications_are_kept_while_it_is_extended(store: &Store) {
    store
        .create_user(&new_user("a@x.io"), "auth0|a", 1)
        .await
        .unwrap();
    let session = plain_session("s", "auth0|a", 5, 50);
    store
        .create_session(&[1; 32], &session, &SessionOrigin::default(), 5)
        .await
        .unwrap();
    store
        .record_session_client(
            "app",
            &SessionClient {
                sid: "s".into(),
                expires_at: 50,
            },
        )
        .await
        .unwrap();
    store
        .record_session_use(&[1; 32], 500, &SessionOrigin::default(), 40)
        .await
        .unwrap();
    let counts = store.purge_expired(100).await.unwrap();
    assert_eq!((counts.sessions, counts.session_clients), (0, 0));
    store.delete_session(&[1; 32], 120).await.unwrap();
    let told: Vec<(String, String)> = store
        .due_logout_notices(i64::MAX, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.client_id, n.initiator))
        .collect();
    assert_eq!(told, [("app".to_string(), "rp-logout".to_string())]);
    // The record, kept to the session's new end, goes with the purge after it.
    assert_eq!(store.purge_expired(600).await.unwrap().session_clients, 1);
}

/// A provider's logout token ends the sessions signed in through its connection that it
/// names — by the provider's session id (of the identity's user, a linked identity's
/// being its primary), or every one of the identity's user — with their refresh tokens
/// and `idp-logout` notices; nothing through another connection or of another user. Its
/// `jti` is accepted once per connection, and purged when it could no longer be.
async fn an_upstream_logout_ends_the_sessions_it_names(store: &Store) {
    for (email, user_id) in [
        ("one@x.io", "oidc|acme|s1"),
        ("two@x.io", "auth0|two"),
        ("nine@x.io", "oidc|acme|s9"),
    ] {
        store
            .create_user(&new_user(email), user_id, 1)
            .await
            .unwrap();
    }
    store
        .link_identity("auth0|two", "oidc|acme|s9", 2)
        .await
        .unwrap();
    let sessions = [
        ("A", "oidc|acme|s1", "acme", Some("up-1")),
        ("B", "oidc|acme|s1", "acme", Some("up-2")),
        ("C", "auth0|two", "acme", Some("up-1")),
        (
            "D",
            "oidc|acme|s1",
            "Username-Password-Authentication",
            None,
        ),
        ("E", "oidc|acme|s1", "beta", Some("up-1")),
    ];
    for (n, (sid, user_id, connection, upstream_sid)) in sessions.into_iter().enumerate() {
        let session = SessionRecord {
            connection: Some(connection.into()),
            upstream_sid: upstream_sid.map(str::to_string),
            ends_by: None,
            ..plain_session(sid, user_id, 5, 1_000)
        };
        store
            .create_session(&[n as u8; 32], &session, &SessionOrigin::default(), 5)
            .await
            .unwrap();
        let used = SessionClient {
            sid: sid.into(),
            expires_at: 1_000,
        };
        store.record_session_client("app", &used).await.unwrap();
        let family = NewRefreshFamily {
            family_id: format!("f{sid}"),
            client_id: "c".into(),
            user_id: user_id.into(),
            grant: "{}".into(),
            code_hash: None,
            sid: Some(sid.into()),
            created_at: 5,
            expires_at: 10_000,
            metadata: Default::default(),
        };
        store
            .create_refresh_family(&family, &[100 + n as u8; 32], 10_000)
            .await
            .unwrap();
    }
    let live = |store: &Store| {
        let store = store.clone();
        async move {
            let mut live = Vec::new();
            for sid in ["A", "B", "C", "D", "E"] {
                if store
                    .find_session_by_sid(sid, (10, 0))
                    .await
                    .unwrap()
                    .is_some()
                {
                    live.push(sid);
                }
            }
            live
        }
    };
    let end = |connection: &'static str, named: UpstreamLogout<'static>| {
        let store = store.clone();
        async move {
            store
                .end_upstream_sessions(connection, &named, 10)
                .await
                .unwrap()
        }
    };
    let session = |sid, identity| UpstreamLogout::Session { sid, identity };
    // The provider's session up-1 of the linked identity s9: its primary's session only.
    assert_eq!(end("acme", session("up-1", Some("oidc|acme|s9"))).await, 1);
    assert_eq!(live(store).await, ["A", "B", "D", "E"]);
    // The same provider session of s1: A, not E (another connection's).
    assert_eq!(end("acme", session("up-1", Some("oidc|acme|s1"))).await, 1);
    assert_eq!(end("acme", session("up-1", Some("oidc|acme|s1"))).await, 0);
    assert_eq!(live(store).await, ["B", "D", "E"]);
    // Only a subject: every session of s1 through acme — B; D and E came otherwise.
    let user = UpstreamLogout::User {
        identity: "oidc|acme|s1",
    };
    assert_eq!(end("acme", user).await, 1);
    assert_eq!(live(store).await, ["D", "E"]);
    // Only a provider session id, at the other connection.
    assert_eq!(end("beta", session("up-1", None)).await, 1);
    assert_eq!(live(store).await, ["D"]);
    let mut notices: Vec<(String, String)> = store
        .due_logout_notices(i64::MAX, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|notice| (notice.sid, notice.initiator))
        .collect();
    notices.sort();
    let idp = |sid: &str| (sid.to_string(), "idp-logout".to_string());
    assert_eq!(notices, [idp("A"), idp("B"), idp("C"), idp("E")]);
    // The ended sessions' refresh tokens are revoked; D's lives on.
    for (n, sid) in ["A", "B", "C", "D", "E"].into_iter().enumerate() {
        let rotation = store
            .rotate_refresh_token(&[100 + n as u8; 32], &[200 + n as u8; 32], "c", TIMING, 11)
            .await
            .unwrap();
        assert_eq!(
            matches!(rotation, RefreshRotation::Rotated),
            sid == "D",
            "{sid}: {rotation:?}"
        );
    }
    // A logout token's id: once per connection, until it is purged.
    assert!(
        store
            .use_upstream_logout_token("con_a", "j1", 100)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_upstream_logout_token("con_a", "j1", 100)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_upstream_logout_token("con_b", "j1", 100)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .purge_expired(99)
            .await
            .unwrap()
            .upstream_logout_tokens,
        0
    );
    assert_eq!(
        store
            .purge_expired(100)
            .await
            .unwrap()
            .upstream_logout_tokens,
        2
    );
    assert!(
        store
            .use_upstream_logout_token("con_a", "j1", 200)
            .await
            .unwrap()
    );
}
