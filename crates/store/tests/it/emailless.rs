//! Users without an email address: an upstream that shares none signs its user in all the
//! same (as on Auth0), and migration 0022 makes `users.email` nullable without losing
//! anything that refers to users.

use tessera_store::*;
use tessera_testkit::pg::PgServer;

on_both_backends!(
    a_federated_user_without_an_email_is_created_and_updated,
    many_users_without_an_email_coexist_in_one_connection,
);

fn emailless(name: Option<&str>, nickname: Option<&str>) -> FederatedProfile {
    FederatedProfile {
        email: None,
        // Whatever the provider said, no email is never a verified one.
        email_verified: true,
        name: name.map(str::to_string),
        nickname: nickname.map(str::to_string),
        picture: None,
    }
}

async fn a_federated_user_without_an_email_is_created_and_updated(store: &Store) {
    let user = store
        .upsert_federated_user("github|1", "gh", &emailless(None, Some("octocat")), 10)
        .await
        .unwrap();
    assert_eq!(user.email, None);
    assert!(!user.email_verified);
    assert_eq!(user.nickname, "octocat");
    assert_eq!(user.name, "octocat", "no name: the nickname");
    assert!(user.picture.starts_with("data:image/svg+xml"));
    assert_eq!(store.find_user("github|1").await.unwrap(), Some(user));

    // The next sign-in updates the same user; without a nickname it is the name.
    let again = store
        .upsert_federated_user("github|1", "gh", &emailless(Some("Mona"), None), 20)
        .await
        .unwrap();
    assert_eq!(
        (
            again.email.as_deref(),
            again.name.as_str(),
            again.nickname.as_str()
        ),
        (None, "Mona", "Mona")
    );
    assert_eq!((again.created_at, again.updated_at), (10, 20));

    // Neither: the user id.
    let bare = store
        .upsert_federated_user("oidc|corp|7", "corp", &emailless(None, None), 30)
        .await
        .unwrap();
    assert_eq!(
        (bare.nickname.as_str(), bare.name.as_str()),
        ("oidc|corp|7", "oidc|corp|7")
    );

    // The provider shares an address later: it is kept; and dropped when it stops.
    let mut with = emailless(None, Some("octocat"));
    with.email = Some(" Mona@Octo.Example ".into());
    let shared = store
        .upsert_federated_user("github|1", "gh", &with, 40)
        .await
        .unwrap();
    assert_eq!(shared.email.as_deref(), Some("mona@octo.example"));
    assert!(shared.email_verified);
    let withdrawn = store
        .upsert_federated_user("github|1", "gh", &emailless(None, Some("octocat")), 50)
        .await
        .unwrap();
    assert_eq!(withdrawn.email, None);
    assert!(!withdrawn.email_verified);

    // A profile change and metadata leave it without one.
    let changed = store
        .update_user_profile(
            "github|1",
            &UserProfileChange {
                name: Some("Mona Lisa".into()),
                ..Default::default()
            },
            60,
        )
        .await
        .unwrap();
    assert_eq!((changed.email, changed.name.as_str()), (None, "Mona Lisa"));

    // No email finds nobody, and no verification ticket is issued for one.
    assert!(store.users_with_email("").await.unwrap().is_empty());
    assert!(
        store
            .find_user_by_email_in("gh", "")
            .await
            .unwrap()
            .is_none()
    );
    let ticket = store
        .put_email_verification_ticket(&NewVerificationTicket {
            ticket_hash: &[7; 32],
            user_id: "github|1",
            result_url: None,
            now: 60,
            expires_at: 600,
        })
        .await;
    assert!(matches!(ticket, Err(StoreError::NotFound(_))), "{ticket:?}");

    // Linking keeps no email in the identity's profile; unlinking restores none.
    store
        .link_identity("oidc|corp|7", "github|1", 70)
        .await
        .unwrap();
    let identity = &store.linked_identities("oidc|corp|7").await.unwrap()[0];
    assert_eq!(identity.profile.email, None);
    store
        .unlink_identity("oidc|corp|7", "github|1", 80)
        .await
        .unwrap();
    let back = store.find_user("github|1").await.unwrap().unwrap();
    assert_eq!((back.email, back.name.as_str()), (None, "Mona Lisa"));
}

async fn many_users_without_an_email_coexist_in_one_connection(store: &Store) {
    for id in ["github|1", "github|2", "github|3"] {
        store
            .upsert_federated_user(id, "gh", &emailless(None, None), 1)
            .await
            .unwrap();
    }
    // An address is still unique in the connection.
    let mut with = emailless(None, None);
    with.email = Some("a@x.io".into());
    store
        .upsert_federated_user("github|4", "gh", &with, 2)
        .await
        .unwrap();
    let taken = store
        .upsert_federated_user("github|5", "gh", &with, 2)
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");

    // Listed and sorted by email, those without one come first ascending, last
    // descending, on both backends; searching by email never finds them.
    let sorted = |descending| UserSearch {
        terms: Vec::new(),
        sort: Some(UserSort {
            by: UserOrder::Email,
            descending,
        }),
    };
    let ids = |page: Page<tessera_core::User>| {
        page.items
            .into_iter()
            .map(|u| u.user_id)
            .collect::<Vec<_>>()
    };
    let ascending = store
        .list_users(&sorted(false), Slice::first(100))
        .await
        .unwrap();
    assert_eq!(
        ids(ascending),
        ["github|1", "github|2", "github|3", "github|4"]
    );
    let descending = store
        .list_users(&sorted(true), Slice::first(100))
        .await
        .unwrap();
    assert_eq!(
        ids(descending),
        ["github|4", "github|3", "github|2", "github|1"]
    );
    let by_prefix = UserSearch {
        terms: vec![UserTerm {
            field: UserField::Email,
            matches: Match::Prefix(String::new()),
        }],
        sort: None,
    };
    assert_eq!(
        ids(store
            .list_users(&by_prefix, Slice::first(100))
            .await
            .unwrap()),
        ["github|4"]
    );
    let exported = store.users_after(Some("gh"), None, 100).await.unwrap();
    assert_eq!(exported.len(), 4);
}

// ---- migration 0022 ----------------------------------------------------------------------

/// The tables that refer to users (and a refresh token, which refers to its family), with
/// the rows each user gets before the migration.
const CHILDREN: [&str; 8] = [
    "sessions",
    "refresh_token_families",
    "refresh_tokens",
    "user_roles",
    "password_reset_codes",
    "email_verification_tickets",
    "admin_sessions",
    "linked_identities",
];

/// Runs the same statements on either backend's pool.
macro_rules! seed_users_and_children {
    ($pool:expr) => {{
        let pool = $pool;
        sqlx::query(
            "INSERT INTO roles (tenant_id, id, name, description, created_at, updated_at) \
             VALUES ('default', 'rol_1', 'reader', '', 1, 1)",
        )
        .execute(pool)
        .await
        .unwrap();
        for (n, user) in ["auth0|a", "auth0|b"].into_iter().enumerate() {
            let n = n as u8;
            let email = format!("{}@x.io", &user[6..]);
            sqlx::query(
                "INSERT INTO users (tenant_id, user_id, connection, email, email_verified, \
                 password_hash, name, nickname, picture, blocked, created_at, updated_at, \
                 last_login, logins_count, user_metadata, app_metadata) VALUES ('default', $1, \
                 'Username-Password-Authentication', $2, TRUE, 'hash', 'Name', 'nick', 'pic', \
                 FALSE, 1, 2, 3, 4, '{\"theme\":\"dark\"}', '{\"plan\":\"pro\"}')",
            )
            .bind(user)
            .bind(&email)
            .execute(pool)
            .await
            .unwrap();
            let statements: [(&str, bool); 8] = [
                (
                    "INSERT INTO sessions (tenant_id, id_hash, sid, user_id, auth_time, \
                     created_at, expires_at) VALUES ('default', $1, 'sid', $2, 1, 1, 9999999999)",
                    true,
                ),
                (
                    "INSERT INTO refresh_token_families (tenant_id, family_id, client_id, user_id, \
                     \"grant\", code_hash, sid, created_at, expires_at, revoked_at) VALUES \
                     ('default', $2, 'client', $2, '{}', NULL, 'sid', 1, 9999999999, NULL)",
                    false,
                ),
                (
                    "INSERT INTO refresh_tokens (tenant_id, token_hash, family_id, created_at, \
                     idle_expires_at, rotated_at) VALUES ('default', $1, $2, 1, 9999999999, NULL)",
                    true,
                ),
                (
                    "INSERT INTO user_roles (tenant_id, user_id, role_id) \
                     VALUES ('default', $2, 'rol_1')",
                    false,
                ),
                (
                    "INSERT INTO password_reset_codes (tenant_id, user_id, code_hash, attempts, \
                     created_at, expires_at) VALUES ('default', $2, $1, 0, 1, 9999999999)",
                    true,
                ),
                (
                    "INSERT INTO email_verification_tickets (tenant_id, ticket_hash, user_id, \
                     email, result_url, created_at, expires_at) \
                     VALUES ('default', $1, $2, 'e@x.io', NULL, 1, 9999999999)",
                    true,
                ),
                (
                    "INSERT INTO admin_sessions (tenant_id, id_hash, user_id, csrf_token, \
                     auth_time, created_at, absolute_expires_at, expires_at) \
                     VALUES ('default', $1, $2, 'csrf', 1, 1, 9999999999, 9999999999)",
                    true,
                ),
                (
                    "INSERT INTO linked_identities (tenant_id, user_id, primary_user_id, \
                     connection, profile, linked_at) VALUES ('default', 'github|' || $2, $2, 'gh', \
                     '{\"email\":\"g@x.io\",\"email_verified\":true,\"name\":\"G\",\
                     \"nickname\":\"g\",\"picture\":\"p\"}', 1)",
                    false,
                ),
            ];
            for (sql, with_bytes) in statements {
                let query = if with_bytes {
                    sqlx::query(sql).bind(vec![n; 32])
                } else {
                    // No hash: the user is the only parameter.
                    sqlx::query(sqlx::AssertSqlSafe(sql.replace("$2", "$1")))
                };
                query.bind(user).execute(pool).await.unwrap();
            }
        }
    }};
}

/// How many rows of `table` belong to `user` (its own or, for refresh tokens, through its
/// family, whose id is the user id here).
macro_rules! children_of {
    ($pool:expr, $user:expr) => {{
        let mut counts = Vec::new();
        for table in CHILDREN {
            let column = match table {
                "refresh_tokens" => "family_id",
                "linked_identities" => "primary_user_id",
                _ => "user_id",
            };
            let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1");
            let n: i64 = sqlx::Row::get(
                &sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind($user)
                    .fetch_one($pool)
                    .await
                    .unwrap(),
                "n",
            );
            counts.push((table, n));
        }
        counts
    }};
}

fn one_each() -> Vec<(&'static str, i64)> {
    CHILDREN.iter().map(|table| (*table, 1)).collect()
}

fn none() -> Vec<(&'static str, i64)> {
    CHILDREN.iter().map(|table| (*table, 0)).collect()
}

/// After 0022, what 0001-0019 wrote is all there and cascades still work.
async fn check_after_migration(store: &Store) {
    let a = store.find_user("auth0|a").await.unwrap().unwrap();
    assert_eq!(
        (
            a.email.as_deref(),
            a.email_verified,
            a.name.as_str(),
            a.last_login,
            a.logins_count
        ),
        (Some("a@x.io"), true, "Name", Some(3), 4)
    );
    assert_eq!(a.app_metadata["plan"], "pro");
    assert_eq!(
        store
            .find_user_with_password("a@x.io")
            .await
            .unwrap()
            .unwrap()
            .1
            .as_deref(),
        Some("hash")
    );
    assert_eq!(store.linked_identities("auth0|a").await.unwrap().len(), 1);
    // Now a user may have no email.
    store
        .upsert_federated_user("github|9", "gh", &emailless(None, None), 5)
        .await
        .unwrap();
    store
        .upsert_federated_user("github|10", "gh", &emailless(None, None), 5)
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_migration_0022_keeps_every_row_that_refers_to_users() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    sqlx::migrate::Migrator::new(std::path::Path::new(migrations))
        .await
        .unwrap()
        .run_to(19, &pool)
        .await
        .unwrap();
    seed_users_and_children!(&pool);
    assert_eq!(children_of!(&pool, "auth0|a"), one_each());

    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(
        children_of!(&pool, "auth0|a"),
        one_each(),
        "nothing deleted"
    );
    assert_eq!(
        children_of!(&pool, "auth0|b"),
        one_each(),
        "nothing deleted"
    );
    let (nullable,): (i64,) =
        sqlx::query_as("SELECT \"notnull\" FROM pragma_table_info('users') WHERE name = 'email'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(nullable, 0);
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' \
         AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let indexes: Vec<&str> = indexes.iter().map(|(name,)| name.as_str()).collect();
    assert_eq!(
        indexes,
        [
            "users_created",
            "users_email",
            "users_last_login",
            "users_name",
            "users_updated"
        ]
    );
    let violations: Vec<(String,)> =
        sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    check_after_migration(&store).await;

    // Deleting a user still takes its rows with it, and only its own.
    store.delete_user("auth0|a", 0).await.unwrap();
    assert_eq!(children_of!(&pool, "auth0|a"), none(), "cascaded");
    assert_eq!(children_of!(&pool, "auth0|b"), one_each());
    store.close().await;
    // Reopening applies nothing again.
    let again = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(again.find_user("auth0|b").await.unwrap().is_some());
}

#[tokio::test]
async fn postgres_migration_0022_keeps_every_row_that_refers_to_users() {
    let server = PgServer::start();
    let url = server.database();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    sqlx::migrate::Migrator::new(std::path::Path::new(migrations))
        .await
        .unwrap()
        .run_to(19, &pool)
        .await
        .unwrap();
    seed_users_and_children!(&pool);
    assert_eq!(children_of!(&pool, "auth0|a"), one_each());

    let store = Store::connect(&url).await.unwrap();
    assert_eq!(
        children_of!(&pool, "auth0|a"),
        one_each(),
        "nothing deleted"
    );
    assert_eq!(
        children_of!(&pool, "auth0|b"),
        one_each(),
        "nothing deleted"
    );
    let (nullable,): (String,) = sqlx::query_as(
        "SELECT is_nullable::text FROM information_schema.columns \
         WHERE table_name = 'users' AND column_name = 'email'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(nullable, "YES");
    check_after_migration(&store).await;

    store.delete_user("auth0|a", 0).await.unwrap();
    assert_eq!(children_of!(&pool, "auth0|a"), none(), "cascaded");
    assert_eq!(children_of!(&pool, "auth0|b"), one_each());
}
