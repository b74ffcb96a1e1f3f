//! Rolling upgrades. Within a release, migrations only expand the schema (new tables, new
//! nullable or defaulted columns, new indexes); what they would remove or rename waits a
//! release, until no node of the older version runs. So a node of this version keeps
//! working on a database that a newer node has already migrated — checked here against a
//! schema one release ahead — and every migration since the rule holds to it.

use std::path::Path;

use sqlx::Connection as _;
use tessera_store::*;
use tessera_testkit::pg::PgServer;

/// Migrations before this one predate the rule (0022 rebuilt `users` on SQLite).
const FIRST_EXPAND_ONLY: u32 = 23;

/// What the next release does to the schema: a new table, a new nullable column on a table
/// this version writes, and its migration recorded.
const NEXT_RELEASE: [&str; 2] = [
    "CREATE TABLE next_release_things (tenant_id TEXT NOT NULL, id TEXT NOT NULL, \
     PRIMARY KEY (tenant_id, id))",
    "ALTER TABLE users ADD COLUMN next_release_note TEXT",
];
const RECORD: &str = "INSERT INTO _sqlx_migrations \
     (version, description, success, checksum, execution_time) VALUES ($1, $2, TRUE, $3, 0)";
const NEXT_VERSION: i64 = 99_990_001;

/// This version's store on a database one release ahead: it opens, reads and writes.
async fn this_version_works_on(url: &str, store_before: Store) {
    store_before
        .create_user(&user("before@example.com"), "auth0|before", 1)
        .await
        .unwrap();
    store_before.close().await;
    let store = Store::connect(url)
        .await
        .expect("a database migrated by the next release opens");
    let before = store
        .find_user_by_email("before@example.com")
        .await
        .unwrap()
        .expect("read");
    assert_eq!(before.user_id, "auth0|before");
    let after = store
        .create_user(&user("after@example.com"), "auth0|after", 2)
        .await
        .expect("written beside the new column");
    assert_eq!(
        store
            .find_user(&after.user_id)
            .await
            .unwrap()
            .unwrap()
            .user_id,
        "auth0|after"
    );
    store.close().await;
}

fn user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: "h".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn this_version_runs_on_a_sqlite_database_of_the_next_release() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url).await.unwrap();
    let mut next = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for statement in NEXT_RELEASE {
        sqlx::query(statement).execute(&mut next).await.unwrap();
    }
    sqlx::query(RECORD)
        .bind(NEXT_VERSION)
        .bind("next release")
        .bind(vec![0u8; 48])
        .execute(&mut next)
        .await
        .unwrap();
    next.close().await.unwrap();
    this_version_works_on(&url, store).await;
}

#[tokio::test]
async fn this_version_runs_on_a_postgres_database_of_the_next_release() {
    let server = PgServer::start();
    let url = server.database();
    let store = Store::connect(&url).await.unwrap();
    let mut next = sqlx::PgConnection::connect(&url).await.unwrap();
    for statement in NEXT_RELEASE {
        sqlx::query(statement).execute(&mut next).await.unwrap();
    }
    sqlx::query(RECORD)
        .bind(NEXT_VERSION)
        .bind("next release")
        .bind(vec![0u8; 48])
        .execute(&mut next)
        .await
        .unwrap();
    next.close().await.unwrap();
    this_version_works_on(&url, store).await;
}

/// The statements of a migration file, comments removed, upper-cased.
fn statements(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let code: String = text
        .lines()
        .map(|line| line.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(|s| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Why `statement` would break a node of the previous version, if it would.
fn contracting(statement: &str) -> Option<&'static str> {
    if statement.starts_with("DROP ") || statement.contains(" DROP ") {
        return Some("drops something the previous version uses");
    }
    if statement.contains(" RENAME ") {
        return Some("renames something the previous version names");
    }
    if statement.contains(" ALTER COLUMN ") {
        return Some("changes a column the previous version reads and writes");
    }
    if statement.starts_with("DELETE ") || statement.starts_with("TRUNCATE ") {
        return Some("deletes rows");
    }
    if statement.contains(" ADD COLUMN ")
        && statement.contains(" NOT NULL")
        && !statement.contains(" DEFAULT ")
    {
        return Some(
            "adds a NOT NULL column without a default: the previous version's inserts fail",
        );
    }
    None
}

#[test]
fn every_migration_since_the_rule_only_expands_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |backend: &str| {
        let mut names: Vec<String> = std::fs::read_dir(root.join(backend))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert_eq!(
        sqlite,
        names("postgres"),
        "both backends have the same migrations"
    );
    let mut checked = 0;
    for backend in ["sqlite", "postgres"] {
        for name in &sqlite {
            let number: u32 = name[..4].parse().expect("NNNN_name.sql");
            if number < FIRST_EXPAND_ONLY {
                continue;
            }
            for statement in statements(&root.join(backend).join(name)) {
                checked += 1;
                if let Some(why) = contracting(&statement) {
                    panic!("{backend}/{name}: {why}: {statement}");
                }
            }
        }
    }
    assert!(checked > 10, "the statements were read ({checked})");
    // The checker itself catches what it must.
    for bad in [
        "DROP TABLE users",
        "ALTER TABLE users DROP COLUMN email",
        "ALTER TABLE users RENAME TO people",
        "ALTER TABLE users ALTER COLUMN email TYPE TEXT",
        "DELETE FROM users",
        "ALTER TABLE users ADD COLUMN age INTEGER NOT NULL",
    ] {
        assert!(contracting(bad).is_some(), "{bad}");
    }
    assert!(contracting("ALTER TABLE users ADD COLUMN age INTEGER NOT NULL DEFAULT 0").is_none());
    assert!(contracting("CREATE INDEX users_age ON users (age)").is_none());
}
