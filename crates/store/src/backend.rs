//! What differs between the backends outside the SQL text: connecting (pool settings,
//! migrations), starting a write transaction, and reading a column of either row type.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow, SqliteSynchronous};
use sqlx::{ConnectOptions as _, PgPool, Postgres, Row, Sqlite, Transaction};

use crate::sqlite::{ReadConnections, SqliteDb, WriteTx};
use crate::{StoreError, StoreResult};

/// The migrations of each backend. A database may carry migrations this build does not
/// know — a newer release's, applied by a node upgraded first — and is opened all the same:
/// migrations are expand-only within a release (new tables, new nullable columns;
/// `crates/store/tests/it/upgrades.rs` holds every migration to it), so this build's
/// statements still fit the newer schema, and a rolling upgrade never stops the old nodes.
static SQLITE_MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| tolerant(sqlx::migrate!("./migrations/sqlite")));
static POSTGRES_MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| tolerant(sqlx::migrate!("./migrations/postgres")));

fn tolerant(mut migrator: Migrator) -> Migrator {
    migrator.set_ignore_missing(true);
    migrator
}

/// How long a request waits for a PostgreSQL connection (a free one, or a new one while
/// the server is down or restarting) before the store answers `Unavailable`: the server
/// then answers 503 with `Retry-After` instead of hanging.
pub(crate) const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the circuit breaker's own connection attempt may take (`can_connect`).
const POSTGRES_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a PostgreSQL statement waits for a lock held by another session.
pub(crate) const POSTGRES_LOCK_TIMEOUT: &str = "5s";

/// The file an `sqlite://PATH` URL names; `BadUrl` for any other URL.
pub fn sqlite_path(url: &str) -> StoreResult<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::BadUrl("expected sqlite://PATH".into()))?;
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() {
        return Err(StoreError::BadUrl(
            "the path is empty; expected sqlite://PATH".into(),
        ));
    }
    Ok(PathBuf::from(path))
}

/// An SQLite database's files: the database and its `-wal` and `-shm` files beside it.
pub fn sqlite_files(path: &Path) -> [PathBuf; 3] {
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), beside("-wal"), beside("-shm")]
}

/// Opens (creating if needed) the database at `sqlite://PATH` and applies migrations.
/// Reads and writes get their own connections (`sqlite.rs`).
pub(crate) async fn connect_sqlite(url: &str) -> StoreResult<(SqliteDb, PathBuf)> {
    let path = sqlite_path(url)?;
    create_private(&path)
        .map_err(|e| StoreError::BadUrl(format!("cannot create {}: {e}", path.display())))?;
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(|e| StoreError::BadUrl(e.to_string()))?
        // Created above with its mode; SQLite would create it readable by everyone.
        .filename(&path)
        // Another process (the CLI) may write at the same time.
        .busy_timeout(Duration::from_secs(5));
    let writes = options
        .clone()
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: an acknowledged write (code redeemed, user created) survives kill -9
        // and power loss, not only a crash of this process.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        // A batch's writers leave their savepoints open until its COMMIT (`sqlite.rs`), so
        // the statement journal holds the batch's changed pages: in memory, not spilled to
        // a file in a temporary directory that may not be writable.
        .pragma("temp_store", "memory");
    let cached_table_changed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The writer's one connection and the read-only ones are the store's own, not an
    // sqlx pool's (`sqlite.rs`: a pool pings a connection's thread each time it is given
    // back).
    let mut writer = tokio::time::timeout(Duration::from_secs(5), writes.connect())
        .await
        .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?
        .map_err(StoreError::from)?;
    crate::sqlite::watch_cached_tables(&mut writer, cached_table_changed.clone())
        .await
        .map_err(StoreError::from)?;
    SQLITE_MIGRATOR
        .run(&mut writer)
        .await
        .map_err(StoreError::Migration)?;
    // Read-only: a write that reached a reading connection fails loudly instead of
    // contending with the writer.
    let reads = ReadConnections::open(options.read_only(true), 8)
        .await
        .map_err(StoreError::from)?;
    Ok((
        SqliteDb::new(reads, writes, writer, cached_table_changed),
        path,
    ))
}

/// Creates the database file, if missing, readable by its owner only (0600), and its
/// missing parent directories likewise (0700): it holds user data. SQLite gives its `-wal`
/// and `-shm` files the database file's mode. Existing files and directories are left as
/// they are.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut dirs = std::fs::DirBuilder::new();
    dirs.recursive(true);
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        dirs.mode(0o700);
        file.mode(0o600);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        dirs.create(parent)?;
    }
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Connects to `postgres://…` and applies migrations (sqlx holds an advisory lock while
/// it does, so nodes starting together migrate once).
pub(crate) async fn connect_postgres(url: &str) -> StoreResult<PgPool> {
    let options = postgres_options(url)?;
    // One direct connection first: a wrong password, an unknown database or a refused
    // connection is reported as such, not as a pool timeout. It applies the migrations,
    // which may wait for another node's (sqlx holds an advisory lock meanwhile).
    let mut first = tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::ConnectOptions::connect(&options),
    )
    .await
    .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?
    .map_err(StoreError::from)?;
    POSTGRES_MIGRATOR
        .run(&mut first)
        .await
        .map_err(StoreError::Migration)?;
    sqlx::Connection::close(first).await.ok();
    // Requests never wait long inside the database either: a lock held elsewhere (an
    // administrator's open transaction) or a runaway statement ends in an error that maps
    // to `Unavailable` (55P03, 57014), i.e. a 503, not a hung request.
    let options = options.options([
        ("lock_timeout", POSTGRES_LOCK_TIMEOUT),
        ("statement_timeout", "30s"),
    ]);
    PgPoolOptions::new()
        .max_connections(16)
        .min_connections(1)
        .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
        // Idle connections are checked before use (the default): after a server restart
        // the dead ones are replaced at once instead of failing one request each.
        .test_before_acquire(true)
        .connect_with(options)
        .await
        .map_err(StoreError::from)
}

/// Whether a new connection to the pool's server can be opened now, outside the pool
/// (the circuit breaker asks when calls fail in a way that may mean an outage). A server
/// that answers but refuses the connection (too many connections, a bad password) is up.
pub(crate) async fn can_connect(pool: &PgPool) -> bool {
    let options = pool.connect_options();
    let attempt = tokio::time::timeout(POSTGRES_CHECK_TIMEOUT, async {
        match sqlx::ConnectOptions::connect(&*options).await {
            Ok(connection) => {
                sqlx::Connection::close(connection).await.ok();
                true
            }
            Err(error) => !StoreError::from(error).is_connection_trouble(),
        }
    });
    attempt.await.unwrap_or(false)
}

/// Parses a PostgreSQL URL. Errors never repeat the URL (it may hold a password).
fn postgres_options(url: &str) -> StoreResult<PgConnectOptions> {
    const SHAPE: &str = "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE";
    let parsed = url::Url::parse(url).map_err(|e| StoreError::BadUrl(format!("{e}; {SHAPE}")))?;
    // No host: only with `?host=/run/postgresql` (a Unix socket directory).
    if parsed.host_str().is_none_or(str::is_empty)
        && !parsed.query_pairs().any(|(name, _)| name == "host")
    {
        return Err(StoreError::BadUrl(format!("no host; {SHAPE}")));
    }
    let options = PgConnectOptions::from_url(&parsed).map_err(|e| {
        let why = e.to_string();
        match parsed.password() {
            Some(password) if why.contains(password) => StoreError::BadUrl(SHAPE.into()),
            _ => StoreError::BadUrl(format!("{why}; {SHAPE}")),
        }
    })?;
    // sqlx reads these files only during the handshake, and its error then names no
    // file: check them now, so a typo is reported as such. (A value may also be the PEM
    // text itself.)
    for (name, value) in parsed.query_pairs() {
        if matches!(&*name, "sslrootcert" | "sslcert" | "sslkey")
            && !value.trim_start().starts_with("-----BEGIN")
            && let Err(error) = std::fs::File::open(&*value)
        {
            return Err(StoreError::BadUrl(format!(
                "{name}: cannot read {value}: {error}"
            )));
        }
    }
    Ok(options.application_name("tessera"))
}

/// Starts a write transaction. SQLite: a savepoint in the writer's batch (`sqlite.rs`),
/// the database's one write lock held up front so a read-then-write never fails halfway.
/// PostgreSQL: `BEGIN` (read committed), then `pg_lock` if given — a `LOCK TABLE` where
/// SQLite's whole-database serialization is needed; elsewhere the statements lock rows
/// (`FOR UPDATE`).
pub(crate) trait BeginWrite {
    type Tx;
    type Db: sqlx::Database;

    fn begin_write(
        &self,
        pg_lock: Option<&'static str>,
    ) -> impl Future<Output = StoreResult<Self::Tx>> + Send;

    /// Runs `query` — several statements in one string — as one transaction and commits
    /// it; the rows they changed, together. SQLite: one round trip when the writer is free
    /// ([`SqliteDb::write_together`]).
    fn write_together<'q>(
        &self,
        query: sqlx::query::Query<'q, Self::Db, <Self::Db as sqlx::Database>::Arguments>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}

impl BeginWrite for SqliteDb {
    type Tx = WriteTx;
    type Db = Sqlite;

    async fn begin_write(&self, _pg_lock: Option<&'static str>) -> StoreResult<WriteTx> {
        self.write().await
    }

    async fn write_together<'q>(
        &self,
        query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> StoreResult<u64> {
        SqliteDb::write_together(self, query).await
    }
}

impl BeginWrite for PgPool {
    type Tx = Transaction<'static, Postgres>;
    type Db = Postgres;

    async fn write_together<'q>(
        &self,
        query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let changed = query.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(changed)
    }

    async fn begin_write(
        &self,
        pg_lock: Option<&'static str>,
    ) -> StoreResult<Transaction<'static, Postgres>> {
        let mut tx = self.begin().await?;
        if let Some(lock) = pg_lock {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        Ok(tx)
    }
}

/// Reads one column of a row of either backend as `T`.
pub(crate) trait Col<T> {
    fn col(&self, name: &str) -> StoreResult<T>;
}

impl<T> Col<T> for SqliteRow
where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    fn col(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }
}

impl<T> Col<T> for PgRow
where
    T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    fn col(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }
}

/// A row of either backend, readable as the column types the schema uses.
pub(crate) trait Fetch:
    Col<String>
    + Col<Option<String>>
    + Col<i64>
    + Col<Option<i64>>
    + Col<bool>
    + Col<Vec<u8>>
    + Col<Option<Vec<u8>>>
{
    fn text(&self, name: &str) -> StoreResult<String> {
        Col::<String>::col(self, name)
    }

    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        Col::<Option<String>>::col(self, name)
    }
}

impl<R> Fetch for R where
    R: Col<String>
        + Col<Option<String>>
        + Col<i64>
        + Col<Option<i64>>
        + Col<bool>
        + Col<Vec<u8>>
        + Col<Option<Vec<u8>>>
{
}
