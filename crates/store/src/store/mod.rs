//! The `Store` handle and every method of it, written once for both backends: `each!`
//! expands a body once per backend with `pool` bound to that backend's pool, so the same
//! SQL text (with `$N` placeholders, which SQLite accepts too) runs on both. Where the
//! dialects differ, `pg` picks the statement.
//!
//! The methods live beside their tables, one `impl Store` per file: `keys.rs`,
//! `resource_servers.rs`, `clients.rs` (and client grants), `users.rs` (and failed
//! logins), `roles.rs` (and permissions), `consent.rs`, `codes.rs`, `sessions.rs` (and
//! login transactions), `tokens.rs` (opaque and refresh tokens), `reset_codes.rs`,
//! `verification_tickets.rs`, `email_templates.rs`, `email_provider.rs`, `tenant.rs`,
//! `logs.rs` (the audit log), `purge.rs` and `invalidation.rs` (what other nodes changed: LISTEN/NOTIFY). Every list runs through `page_of` / `checkpoint_of` below (one page in SQL,
//! see `lists.rs`); `plans.rs` (a test) checks each list's query plan uses an index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::backend::Fetch;
use crate::lists::{Bind, Checkpoint, CheckpointPage, Page, Slice, Sql, bound_query};
use crate::{StoreError, StoreResult, backend, breaker};

/// `each!(self, |pool| body)` or `each!(self, |pool, pg| body)`: the body once per
/// backend, `pool` being its pool and `pg` whether it is PostgreSQL. The body evaluates
/// to a `StoreResult`; `return` and `?` end it with their value. On PostgreSQL the call
/// passes the circuit breaker first (`breaker.rs`), which then learns from its outcome. On
/// SQLite a conflict is answered once the writer's open batch has ended (`sqlite.rs`).
macro_rules! each {
    ($self:ident, |$pool:ident| $body:expr) => {
        each!($self, |$pool, _pg| $body)
    };
    ($self:ident, |$pool:ident, $pg:ident| $body:expr) => {
        match &$self.backend {
            $crate::store::Backend::Sqlite($pool) => {
                let $pg = false;
                let result: $crate::StoreResult<_> = async { $body }.await;
                if matches!(result, Err($crate::StoreError::Conflict(_))) {
                    $pool.settle().await;
                }
                result
            }
            $crate::store::Backend::Postgres($pool) => {
                let $pg = true;
                let call = $self.breaker.admit()?;
                let result: $crate::StoreResult<_> = async { $body }.await;
                $self
                    .breaker
                    .record(call, &result, || $crate::backend::can_connect($pool))
                    .await;
                result
            }
        }
    };
}

/// `for_update!(pg, "SELECT ", columns!(), " FROM …")`: the pieces concatenated into a
/// `SELECT` that locks its rows for the write transaction it runs in — `FOR UPDATE` on
/// PostgreSQL; SQLite has no such clause, its write transaction excludes other writers.
macro_rules! for_update {
    ($pg:ident, $($select:tt)+) => {
        if $pg {
            concat!($($select)+, " FOR UPDATE")
        } else {
            concat!($($select)+)
        }
    };
}

/// The columns `users::user_from_row` reads (also read with a refresh token's family).
macro_rules! user_columns {
    () => {
        "user_id, connection, email, email_verified, name, nickname, picture, blocked, \
     created_at, updated_at, last_login, logins_count, user_metadata, app_metadata"
    };
}

mod actions;
mod admin_sessions;
mod authenticators;
mod backup;
mod client_credentials;
mod clients;
mod codes;
mod connections;
mod consent;
mod device_codes;
mod email_provider;
mod email_templates;
mod invalidation;
mod jobs;
mod keys;
mod linked_identities;
mod log_streams;
#[macro_use]
mod logout_notices;
mod logs;
mod mfa_tokens;
#[cfg(test)]
mod plans;
mod purge;
mod pushed_requests;
mod remembered_browsers;
mod reset_codes;
mod resource_servers;
mod roles;
mod rules;
mod sessions;
mod tenant;
mod throttles;
mod tokens;
mod users;
mod verification_tickets;
mod webauthn;

/// Metadata as a column keeps it (written only as an object of strings); none: empty.
pub(crate) fn metadata_from(column: Option<String>) -> BTreeMap<String, String> {
    column
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Metadata as a column keeps it: `NULL` when empty.
pub(crate) fn metadata_column(metadata: &BTreeMap<String, String>) -> Option<String> {
    (!metadata.is_empty()).then(|| serde_json::to_string(metadata).expect("strings serialize"))
}

pub use authenticators::{MAX_AUTHENTICATORS, RECOVERY_CODE, TOTP};
pub use backup::{CopyCheck, check_sqlite_copy};
pub use client_credentials::MAX_CLIENT_CREDENTIALS;
pub use invalidation::{CHANNEL as INVALIDATION_CHANNEL, Changed, Heard, Invalidations};
pub use linked_identities::MAX_LINKED_IDENTITIES;
pub use log_streams::MAX_LOG_STREAMS;
pub use logs::log_id_number;
pub use purge::PURGE_BATCH;
pub use remembered_browsers::MAX_REMEMBERED_BROWSERS;
pub use users::MAX_USERS_BY_EMAIL;
pub use webauthn::{MAX_WEBAUTHN_CREDENTIALS, PASSKEY, WEBAUTHN_PLATFORM, WEBAUTHN_ROAMING};

/// A snapshot of the connection pool ([`Store::pool_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, idle or in use.
    pub connections: u32,
    pub idle: u32,
    pub max_connections: u32,
    /// The circuit breaker is open: calls fail at once (PostgreSQL only).
    pub failing_fast: bool,
    /// SQLite: writes committed, and the commits (one fsync each) that held them — group
    /// commit lets several writes share one. Zero on PostgreSQL.
    pub writes: u64,
    pub commits: u64,
}

/// The storage handle. Cheap to clone (a connection pool inside).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Shared by the clones of this handle (one pool, one breaker); unused on SQLite.
    breaker: std::sync::Arc<breaker::Breaker>,
    /// The SQLite database file; `None` on PostgreSQL.
    path: Option<PathBuf>,
    tenant: &'static str,
}

#[derive(Clone)]
enum Backend {
    Sqlite(crate::sqlite::SqliteDb),
    Postgres(sqlx::PgPool),
}

/// Never shows the connection options (a PostgreSQL URL may hold a password).
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .field("path", &self.path)
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl Store {
    /// Opens the database named by `url` and applies its backend's migrations:
    /// `sqlite://PATH` (created if needed, parent directories too) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (the database must exist).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme);
        match scheme {
            Some("sqlite") => {
                let (pool, path) = backend::connect_sqlite(url).await?;
                Ok(Store::new(Backend::Sqlite(pool), Some(path)))
            }
            Some("postgres" | "postgresql") => {
                let pool = backend::connect_postgres(url).await?;
                Ok(Store::new(Backend::Postgres(pool), None))
            }
            _ => Err(StoreError::BadUrl(
                "expected sqlite://PATH or postgres://USER@HOST/DATABASE".into(),
            )),
        }
    }

    fn new(backend: Backend, path: Option<PathBuf>) -> Self {
        Store {
            backend,
            breaker: std::sync::Arc::new(breaker::Breaker::new()),
            path,
            tenant: tessera_core::DEFAULT_TENANT,
        }
    }

    /// The SQLite database file, where files that live beside it (the master key) are
    /// found; `None` on PostgreSQL, whose nodes share no file system.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The files of the SQLite database that exist now: the database and its `-wal` and
    /// `-shm` files. Empty on PostgreSQL.
    pub fn database_files(&self) -> Vec<PathBuf> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        backend::sqlite_files(path)
            .into_iter()
            .filter(|file| file.exists())
            .collect()
    }

    /// The connection pool as it is now, for monitoring.
    pub fn pool_stats(&self) -> PoolStats {
        let (writes, commits) = match &self.backend {
            Backend::Sqlite(db) => db.write_counts(),
            Backend::Postgres(_) => (0, 0),
        };
        let (size, idle, max) = match &self.backend {
            Backend::Sqlite(db) => db.stats(),
            Backend::Postgres(pool) => (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ),
        };
        PoolStats {
            connections: size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max_connections: max,
            failing_fast: self.breaker.is_open(),
            writes,
            commits,
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection; calls after this fail with `Unavailable`.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(db) => db.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// A cheap liveness probe.
    pub async fn ping(&self) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }
}

impl Store {
    /// A token's `jti` taken once, on any node, until the token could no longer be used:
    /// `insert` puts `($1 tenant, $2 whose, $3 jti, $4 expires_at)` into a table of taken
    /// ids and does nothing on conflict. Whether this call took it (`false`: a replay).
    async fn take_jti(
        &self,
        insert: &'static str,
        whose: &str,
        jti: &str,
        expires_at: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let inserted = sqlx::query(insert)
                .bind(self.tenant)
                .bind(whose)
                .bind(jti)
                .bind(expires_at)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(inserted == 1)
        })
    }

    /// One page of a list: `select` (the columns) + `filter` (` FROM … WHERE …`) +
    /// `order` with `LIMIT`/`OFFSET`, and `SELECT count(*)` over the same filter when
    /// the slice asks for the total.
    async fn page_of<T>(
        &self,
        select: &str,
        filter: &Sql,
        order: &str,
        slice: Slice,
        from_row: fn(&dyn Fetch) -> StoreResult<T>,
    ) -> StoreResult<Page<T>> {
        let page = page_sql(select, filter, order, slice);
        let count = count_sql(filter);
        each!(self, |pool| {
            let rows = bound_query!(&page).fetch_all(pool).await?;
            let items = rows
                .iter()
                .map(|row| from_row(row))
                .collect::<StoreResult<_>>()?;
            let total = if slice.count {
                let row = bound_query!(&count).fetch_one(pool).await?;
                Some(count_of(&row)?)
            } else {
                None
            };
            Ok(Page { items, total })
        })
    }

    /// One page of a list by checkpoint: rows of `filter` whose `key` (the id column the
    /// order ends with) is at or after `from`, one more than asked read to know whether
    /// the list goes on.
    async fn checkpoint_of<T>(
        &self,
        select: &str,
        filter: Sql,
        key: &str,
        checkpoint: Checkpoint<'_>,
        from_row: fn(&dyn Fetch) -> StoreResult<T>,
        key_of: fn(&T) -> String,
    ) -> StoreResult<CheckpointPage<T>> {
        let page = checkpoint_sql(select, filter, key, checkpoint);
        each!(self, |pool| {
            let rows = bound_query!(&page).fetch_all(pool).await?;
            let mut items = rows
                .iter()
                .map(|row| from_row(row))
                .collect::<StoreResult<Vec<T>>>()?;
            let next = if items.len() > checkpoint.take as usize {
                items.pop().as_ref().map(key_of)
            } else {
                None
            };
            Ok(CheckpointPage { items, next })
        })
    }
}

/// The text and values of [`Store::page_of`]'s page query.
fn page_sql(select: &str, filter: &Sql, order: &str, slice: Slice) -> Sql {
    let mut page = Sql::new(select);
    page.text.push_str(&filter.text);
    page.binds.extend(filter.binds.iter().cloned());
    page.push(
        &format!("{order} LIMIT ? OFFSET ?"),
        [Bind::Int(slice.limit_sql()), Bind::Int(slice.offset_sql())],
    );
    page
}

/// `SELECT count(*)` over a list's filter.
fn count_sql(filter: &Sql) -> Sql {
    let mut count = Sql::new("SELECT count(*) AS n");
    count.text.push_str(&filter.text);
    count.binds.extend(filter.binds.iter().cloned());
    count
}

/// The text and values of [`Store::checkpoint_of`]'s query.
fn checkpoint_sql(select: &str, filter: Sql, key: &str, checkpoint: Checkpoint<'_>) -> Sql {
    let mut page = Sql::new(select);
    page.text.push_str(&filter.text);
    page.binds = filter.binds;
    if let Some(from) = checkpoint.from {
        page.push(&format!(" AND {key} >= ?"), [Bind::Text(from.into())]);
    }
    page.push(
        &format!(" ORDER BY {key} LIMIT ?"),
        [Bind::Int(i64::from(checkpoint.take) + 1)],
    );
    page
}

/// The `n` of a `SELECT count(*) AS n`.
fn count_of(row: &(impl Fetch + ?Sized)) -> StoreResult<u64> {
    let n: i64 = row.col("n")?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt("count"))
}

fn json_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("JSON list"))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data always serializes")
}

impl StoreError {
    /// Names what a unique violation collided with (the driver's error says only "row").
    fn conflict_is(self, what: &'static str) -> Self {
        match self {
            StoreError::Conflict(_) => StoreError::Conflict(what),
            other => other,
        }
    }

    /// Names what a foreign-key violation found missing ("referenced row" otherwise).
    fn not_found_is(self, what: &'static str) -> Self {
        match self {
            StoreError::NotFound(_) => StoreError::NotFound(what),
            other => other,
        }
    }
}
