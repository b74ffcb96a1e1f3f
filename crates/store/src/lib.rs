//! Tessera's storage. Only this crate knows SQL.
//!
//! `Store` is the one handle the rest of the code holds. Today it wraps SQLite (WAL,
//! `synchronous=FULL`, foreign keys on); PostgreSQL becomes a second backend behind the
//! same methods, with its own migration folder, and the same test suite runs on both.
//!
//! Secrets never reach this crate in clear: callers pass SHA-256 hashes of codes,
//! session ids, opaque tokens and client secrets, and sealed (encrypted) private keys.

mod records;
mod sqlite;

pub use records::*;
pub use sqlite::SqliteStore;

/// Errors of the storage layer. Messages never contain row contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether retrying later may succeed (the caller answers 503).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict("row"),
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound("referenced row")
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(error)
            }
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c == "5" || c == "6" || c == "13" || c == "517") =>
            {
                // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_BUSY_SNAPSHOT
                StoreError::Unavailable(error)
            }
            _ => StoreError::Database(error),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The storage handle. Cheap to clone (a connection pool inside).
pub type Store = SqliteStore;

/// How many rows one purge statement deletes, so a purge never holds the write lock long.
pub const PURGE_BATCH: i64 = 1000;
