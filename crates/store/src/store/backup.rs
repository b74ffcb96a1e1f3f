//! Online backups of an SQLite database: `VACUUM INTO` writes one consistent snapshot
//! while the server keeps serving (WAL: readers and the writer go on), and a copy is
//! trusted only after SQLite's own `PRAGMA integrity_check` reads every page of it.
//! PostgreSQL is backed up with its own tools (`pg_dump`), which know its replication and
//! locking better than any copy made here could.

use std::path::Path;
use std::str::FromStr as _;

use sqlx::ConnectOptions as _;
use sqlx::sqlite::SqliteConnectOptions;

use super::{Backend, Store};
use crate::{StoreError, StoreResult};

/// What checking a copy found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyCheck {
    /// Migrations the copy's schema has applied (a newer Tessera applies the rest).
    pub migrations: i64,
    pub users: i64,
    pub clients: i64,
}

impl Store {
    /// Writes a snapshot of this SQLite database into `target`, which must not exist or
    /// be empty (SQLite refuses anything else). PostgreSQL: `Unsupported`.
    pub async fn backup_into(&self, target: &Path) -> StoreResult<()> {
        let Backend::Sqlite(db) = &self.backend else {
            return Err(StoreError::Unsupported(
                "a PostgreSQL database is backed up with pg_dump (see OPERATIONS.md)",
            ));
        };
        let target = target
            .to_str()
            .ok_or(StoreError::Unsupported("the backup path must be UTF-8"))?;
        let mut conn = db.read_connection().await?;
        let copied = sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&mut *conn)
            .await;
        conn.keep_after(&copied);
        copied?;
        Ok(())
    }
}

/// Checks the SQLite database file at `path` without writing to it: every page
/// (`PRAGMA integrity_check`), and that it is a Tessera database. `Corrupt` otherwise.
pub async fn check_sqlite_copy(path: &Path) -> StoreResult<CopyCheck> {
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(|e| StoreError::BadUrl(e.to_string()))?
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let mut connection = options.connect().await.map_err(StoreError::from)?;
    let verdicts: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut connection)
        .await
        .map_err(|_| StoreError::Corrupt("the file is not an SQLite database"))?;
    if verdicts != ["ok"] {
        return Err(StoreError::Corrupt("SQLite's integrity check failed"));
    }
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let not_tessera = |_| StoreError::Corrupt("the file is not a Tessera database");
    let migrations = count("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut connection)
        .await
        .map_err(not_tessera)?;
    let users = count("SELECT count(*) FROM users")
        .fetch_one(&mut connection)
        .await
        .map_err(not_tessera)?;
    let clients = count("SELECT count(*) FROM clients")
        .fetch_one(&mut connection)
        .await
        .map_err(not_tessera)?;
    Ok(CopyCheck {
        migrations,
        users,
        clients,
    })
}
