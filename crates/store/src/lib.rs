//! Tessera's storage. Only this crate knows SQL.
//!
//! `Store` is the one handle the rest of the code holds. It runs on one of two backends,
//! chosen by the database URL given to [`Store::connect`]:
//!
//! - `sqlite://PATH` (or `sqlite:PATH`): an embedded SQLite file (WAL, `synchronous=FULL`,
//!   foreign keys on), migrations in `migrations/sqlite/`.
//! - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`): a PostgreSQL
//!   server shared by any number of Tessera nodes, migrations in `migrations/postgres/`,
//!   TLS by libpq's `sslmode` / `sslrootcert` parameters, and a circuit breaker that
//!   fails calls at once while the server is unreachable (`breaker.rs`).
//!
//! Every method is written once (`store/`, one file per group of tables); the SQL text
//! serves both backends (`$N` placeholders, which SQLite accepts too), and where the
//! dialects differ — locking, JSON, purge batches — the statement is written per backend
//! next to the other. The same test suite (`tests/it/store.rs`) runs against both.
//!
//! Secrets never reach this crate in clear: callers pass SHA-256 hashes of codes,
//! session ids, opaque tokens and client secrets, and sealed (encrypted) private keys.

mod backend;
mod breaker;
mod lists;
mod records;
mod sqlite;
mod store;

pub use backend::{sqlite_files, sqlite_path};
pub use lists::{
    Checkpoint, CheckpointPage, ClientFilter, ClientGrantFilter, ConsentFilter, Match, Page, Slice,
    UserField, UserOrder, UserSearch, UserSort, UserTerm,
};
pub use records::*;
pub use store::{
    Changed, CopyCheck, Heard, INVALIDATION_CHANNEL, Invalidations, MAX_AUTHENTICATORS,
    MAX_CLIENT_CREDENTIALS, MAX_LINKED_IDENTITIES, MAX_LOG_STREAMS, MAX_REMEMBERED_BROWSERS,
    MAX_USERS_BY_EMAIL, MAX_WEBAUTHN_CREDENTIALS, PASSKEY, PURGE_BATCH, PoolStats, RECOVERY_CODE,
    Store, TOTP, WEBAUTHN_PLATFORM, WEBAUTHN_ROAMING, check_sqlite_copy, log_id_number,
};

/// Errors of the storage layer. Messages never contain row contents, nor the password of
/// a database URL.
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
    /// Not tried: the database was unreachable moments ago (the circuit breaker is open).
    #[error("the database is unavailable (it was unreachable moments ago; retrying shortly)")]
    Down,
    /// The TLS handshake with PostgreSQL failed: an untrusted certificate, a host name
    /// the certificate does not name, a server that does not speak TLS.
    #[error("TLS with the database failed (check sslmode and sslrootcert in the database URL)")]
    Tls(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// What this backend does not do, and what to use instead.
    #[error("{0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// Whether retrying later may succeed (the caller answers 503).
    pub fn is_transient(&self) -> bool {
        // A TLS failure after start-up (the server got a new certificate) heals when the
        // operator fixes it; until then the database is as good as down.
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Down | StoreError::Tls(_)
        )
    }

    /// Whether a connection failed or was cut (I/O error, connection exception) or the
    /// server is shutting down or starting up: the database may be unreachable, which the
    /// circuit breaker then checks (`breaker.rs`).
    pub(crate) fn is_connection_trouble(&self) -> bool {
        match self {
            StoreError::Unavailable(sqlx::Error::Io(_)) => true,
            StoreError::Unavailable(sqlx::Error::Database(db)) => db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some_and(|pg| {
                    // 08: connection exception; 57P01-57P03: shutdown, crash, starting up.
                    pg.code().starts_with("08") || pg.code().starts_with("57P0")
                }),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict("row"),
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound("referenced row")
            }
            sqlx::Error::Tls(_) => StoreError::Tls(error),
            sqlx::Error::Io(io) if is_tls_failure(io) => StoreError::Tls(error),
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(error)
            }
            sqlx::Error::Database(db) if transient_database_error(db.as_ref()) => {
                StoreError::Unavailable(error)
            }
            _ => StoreError::Database(error),
        }
    }
}

/// sqlx reports a failed handshake as an I/O error carrying rustls' error.
fn is_tls_failure(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// Database errors that go away by themselves: the server is restarting or overloaded,
/// or a concurrent transaction won a lock.
fn transient_database_error(db: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let code = pg.code();
        // 08: connection exception; 53: insufficient resources (too many connections,
        // disk full); 57P01-57P03: shutdown, crash, starting up; 57014: statement timeout;
        // 40001: serialization failure; 40P01: deadlock; 55P03: lock not available;
        // 25006: read-only transaction (a standby during failover).
        return code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || ["57014", "40001", "40P01", "55P03", "25006"].contains(&code);
    }
    // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_BUSY_SNAPSHOT
    db.code()
        .is_some_and(|c| c == "5" || c == "6" || c == "13" || c == "517")
}

pub type StoreResult<T> = Result<T, StoreError>;
