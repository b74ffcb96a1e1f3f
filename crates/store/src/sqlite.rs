//! SQLite's single writer, in one place. SQLite lets one connection write at a time; left
//! to themselves, concurrent writers meet at its lock and back off by sleeping (the busy
//! handler sleeps up to 100 ms at a time), which caps write throughput far below the disk
//! and makes a long tail. Here every write goes through one connection, and writers queue
//! for it in order (an async FIFO lock: no thread sleeps, the next writer starts the moment
//! the previous one is done).
//!
//! **Group commit.** Writers that queue while a transaction runs join it: the first one
//! opens a batch (`BEGIN IMMEDIATE`), each runs inside its own savepoint, and the batch
//! commits once — one sync (`synchronous=FULL`; `fdatasync`, see `.cargo/config.toml`)
//! for all of them — when the queue that formed behind its opener has passed. No writer is
//! answered before the commit that holds its work is durable, so durability is what
//! `synchronous=FULL` gives each commit alone;
//! a writer whose work fails rolls back its savepoint and leaves the others' in place. If
//! the batch itself fails (disk full, I/O error), every writer in it gets the error.
//!
//! **Round trips.** Every statement is a round trip to the connection's thread (two
//! context switches), so the batch spends as few as it can: a writer that succeeded leaves
//! its savepoint open rather than releasing it (the batch's `COMMIT` releases them all; a
//! later writer's `ROLLBACK TO` names the newest savepoint, its own), and a lone statement
//! run outside a transaction of the caller's gets no savepoint at all — one statement is
//! atomic by itself in SQLite. When such a statement fails, SQLite has undone it alone and
//! the batch goes on — unless the error is one that may have ended the transaction (I/O,
//! a full disk, …): then the batch is rolled back and its writers told (`lose_batch`).
//! A writer's opening statements — the batch's `BEGIN` for the writer that opens it, the
//! writer's own `SAVEPOINT` — travel with its first statement (`WriterConnection`), and a
//! batch in which nothing was written ends without a `COMMIT`.
//!
//! Reads never wait for writers (WAL): they run on read-only connections (`reads.rs`) and see
//! committed data. Which statements are writes is decided here, by the statement's first
//! word (`is_read`), for the store's single statements run outside a transaction; the
//! read-only connections refuse a write that got past that rule rather than let it contend.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt as _, TryStreamExt as _};
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteQueryResult, SqliteRow};
use sqlx::{
    AssertSqlSafe, ConnectOptions as _, Connection as _, Either, Execute, Executor,
    SqlSafeStr as _, Sqlite, SqliteConnection,
};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::{StoreError, StoreResult};

mod reads;

pub(crate) use reads::{ReadConnection, ReadConnections};

/// How long a writer waits for its turn before the store answers `Unavailable` (503), as
/// SQLite's own busy timeout did: a transaction stuck elsewhere never hangs requests.
const WRITE_WAIT: Duration = Duration::from_secs(5);

/// An SQLite database: read-only connections for reads, the one writer for writes.
#[derive(Clone, Debug)]
pub(crate) struct SqliteDb {
    reads: Arc<ReadConnections>,
    writer: Arc<Writer>,
}

impl SqliteDb {
    /// `reads` must open read-only connections. The writer's connection is `writes`,
    /// opened with `write_options` and watched by [`watch_cached_tables`] with
    /// `cached_table_changed`; a new one replaces it, opened and watched alike, if it fails.
    pub(crate) fn new(
        reads: Arc<ReadConnections>,
        write_options: SqliteConnectOptions,
        writes: SqliteConnection,
        cached_table_changed: Arc<AtomicBool>,
    ) -> Self {
        SqliteDb {
            reads,
            writer: Arc::new(Writer {
                options: write_options,
                closed: AtomicBool::new(false),
                gate: Arc::new(Mutex::new(Slot {
                    conn: Some(WriterConnection::new(writes)),
                    ..Slot::default()
                })),
                queued: AtomicUsize::new(0),
                next_batch: AtomicU64::new(1),
                latest: std::sync::Mutex::new(None),
                writes: AtomicU64::new(0),
                commits: AtomicU64::new(0),
                cache_generation: AtomicI64::new(0),
                cached_table_changed,
            }),
        }
    }

    /// A read-only connection (backups read through one).
    pub(crate) async fn read_connection(&self) -> Result<ReadConnection, sqlx::Error> {
        self.reads.get().await
    }

    /// Connections open (reads and the writer's) and idle, and the most there can be. The
    /// writer's counts as idle when nobody holds its turn.
    pub(crate) fn stats(&self) -> (u32, usize, u32) {
        let (reads_open, reads_idle, reads_max) = self.reads.stats();
        let (writer_open, writer_idle) = match self.writer.gate.try_lock() {
            Ok(slot) => (
                usize::from(slot.conn.is_some()),
                usize::from(slot.conn.is_some()),
            ),
            Err(_) => (1, 0),
        };
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        (
            count(reads_open + writer_open),
            reads_idle + writer_idle,
            count(reads_max + 1),
        )
    }

    /// Writes committed so far, and the commits (each one fsync) that held them.
    pub(crate) fn write_counts(&self) -> (u64, u64) {
        (
            self.writer.writes.load(Ordering::Relaxed),
            self.writer.commits.load(Ordering::Relaxed),
        )
    }

    /// A number that moves whenever this process knows of a change to a cached table: one
    /// up after each of its own commits that changed one (before their writers are
    /// answered), and the `cache_generation` counter itself at each
    /// [`note_cache_generation`] (other processes' writes). In-memory copies of
    /// configuration compare it with the one they were read at. (It never overtakes the
    /// counter — a commit moves the counter at least as far — so a poll never sets it back
    /// to a number a copy was read at after a change.)
    ///
    /// [`note_cache_generation`]: SqliteDb::note_cache_generation
    pub(crate) fn cache_generation_seen(&self) -> i64 {
        self.writer.cache_generation.load(Ordering::Acquire)
    }

    /// Records the counter as read from the database (moved by another process's writes).
    pub(crate) fn note_cache_generation(&self, generation: i64) {
        self.writer
            .cache_generation
            .store(generation, Ordering::Release);
    }

    /// Returns once the batch open now, if any, has ended. A store method whose write met a
    /// conflict calls it before answering: the row it met may belong to a writer ahead of
    /// it in the batch, not yet committed, and the caller is to find it when it looks.
    pub(crate) async fn settle(&self) {
        let watcher = self
            .writer
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(mut watcher) = watcher {
            let _ = watcher.wait_for(Option::is_some).await;
        }
    }

    /// Lets a running batch commit, then closes every connection.
    pub(crate) async fn close(&self) {
        self.writer.closed.store(true, Ordering::Release);
        for _ in 0..100 {
            let mut slot = self.writer.gate.lock().await;
            if slot.batch.is_none() {
                if let Some(conn) = slot.conn.take() {
                    let _ = conn.conn.close().await;
                }
                break;
            }
            // Its finisher is queued for the gate: let it commit, then look again.
            drop(slot);
            tokio::task::yield_now().await;
        }
        self.reads.close().await;
    }

    /// Starts a write transaction: a savepoint in the open batch, or a new batch.
    pub(crate) async fn write(&self) -> StoreResult<WriteTx> {
        Writer::begin(&self.writer, Savepoint::Own).await
    }

    /// Runs `query` — several statements in one string — as one transaction, committed
    /// before it returns; the rows its statements changed, together. When the writer is
    /// free and nobody is queued, the whole transaction (`BEGIN IMMEDIATE`, the
    /// statements, `COMMIT`) is one round trip to the connection's thread, rather than one
    /// for the statements and one for the batch's commit; otherwise it joins the batch in a
    /// savepoint of its own. Its statements are to leave the data consistent whatever they
    /// change — the caller cannot undo them after seeing the count.
    pub(crate) async fn write_together<'q>(
        &self,
        query: impl Execute<'q, Sqlite>,
    ) -> StoreResult<u64> {
        let (sql, arguments) = take_apart(query)?;
        self.writer.write_together(sql, arguments).await
    }
}

/// Whether `sql` only reads: it starts with `SELECT`. Everything else (`INSERT … RETURNING`,
/// `WITH … UPDATE`, `PRAGMA`) is treated as a write, which is only ever slower, not wrong.
fn is_read(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    while let Some(comment) = rest.strip_prefix("--") {
        rest = comment
            .split_once('\n')
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    rest.get(..6)
        .is_some_and(|word| word.eq_ignore_ascii_case("select"))
        && rest[6..].starts_with(|c: char| !c.is_ascii_alphanumeric() && c != '_')
}

/// The statement's text and arguments, taken out of any `Execute` so it can be routed.
fn take_apart<'q, E: Execute<'q, Sqlite>>(
    mut query: E,
) -> Result<(sqlx::SqlStr, Option<SqliteArguments>), sqlx::Error> {
    let arguments = query.take_arguments().map_err(sqlx::Error::Encode)?;
    Ok((query.sql(), arguments))
}

impl<'p> Executor<'p> for &'p SqliteDb {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        let (sql, arguments) = match take_apart(query) {
            Ok(parts) => parts,
            Err(error) => return stream::once(async { Err(error) }).boxed(),
        };
        if is_read(sql.as_str()) {
            // Collected, then streamed: the connection goes back before the caller has
            // the rows. The store's reads are bounded (lists are paged in SQL), and every
            // caller collects them anyway (`fetch_all`).
            let reads = self.reads.clone();
            return stream::once(async move {
                let mut conn = reads.get().await?;
                let steps: Result<Vec<_>, _> =
                    conn.fetch_many((sql, arguments)).try_collect().await;
                conn.keep_after(&steps);
                steps
            })
            .map_ok(|steps| stream::iter(steps.into_iter().map(Ok)))
            .try_flatten()
            .boxed();
        }
        let writer = self.writer.clone();
        stream::once(async move { writer.run_alone(sql, arguments).await })
            .map_ok(|steps| stream::iter(steps.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        let (sql, arguments) = match take_apart(query) {
            Ok(parts) => parts,
            Err(error) => return Box::pin(async { Err(error) }),
        };
        if is_read(sql.as_str()) {
            let reads = self.reads.clone();
            return Box::pin(async move {
                let mut conn = reads.get().await?;
                let row = conn.fetch_optional((sql, arguments)).await;
                conn.keep_after(&row);
                row
            });
        }
        let writer = self.writer.clone();
        Box::pin(async move {
            let steps = writer.run_alone(sql, arguments).await?;
            Ok(steps.into_iter().find_map(|step| step.right()))
        })
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [sqlx::sqlite::SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::sqlite::SqliteStatement, sqlx::Error>>
    where
        'p: 'e,
    {
        let reads = self.reads.clone();
        Box::pin(async move {
            let mut conn = reads.get().await?;
            let statement = conn.prepare_with(sql, parameters).await;
            conn.keep_after(&statement);
            statement
        })
    }

    fn describe<'e>(
        self,
        sql: sqlx::SqlStr,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Sqlite>, sqlx::Error>>
    where
        'p: 'e,
    {
        let reads = self.reads.clone();
        Box::pin(async move {
            let mut conn = reads.get().await?;
            let described = conn.describe(sql).await;
            conn.keep_after(&described);
            described
        })
    }
}

/// The one writing connection and the queue in front of it.
#[derive(Debug)]
struct Writer {
    /// How a new connection is opened when the one in the slot was lost.
    options: SqliteConnectOptions,
    /// Set by `SqliteDb::close`: no connection is opened after it.
    closed: AtomicBool,
    /// Whoever holds this may use the connection; tokio's lock is fair (first come, first
    /// served), so the queue is the order of arrival.
    gate: Arc<Mutex<Slot>>,
    /// Writers queued for the gate (not the batches' finishers).
    queued: AtomicUsize,
    next_batch: AtomicU64,
    /// The outcome of the batch opened last, watched without the gate (`settle`).
    latest: std::sync::Mutex<Option<watch::Receiver<Option<Outcome>>>>,
    /// Writes committed, and the commits (fsyncs) that held them.
    writes: AtomicU64,
    commits: AtomicU64,
    /// `SqliteDb::cache_generation_seen`.
    cache_generation: AtomicI64,
    /// Set by the connection's update hook when the batch bumped `cache_generation`.
    cached_table_changed: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct Slot {
    conn: Option<WriterConnection>,
    batch: Option<Batch>,
    /// A writer left without committing or rolling back (an error, a dropped request):
    /// the next holder rolls its savepoint back before anything else.
    abandoned: bool,
    /// A transaction sent in one round trip (`write_together`) whose answer was not
    /// awaited to the end (a dropped request): it may have stopped before its `COMMIT`,
    /// so the next holder rolls back whatever is left open.
    cut_short: bool,
}

#[derive(Debug)]
struct Batch {
    id: u64,
    /// Writers whose savepoint was released into this batch.
    members: u64,
    outcome: watch::Sender<Option<Outcome>>,
}

/// How a batch ended; each of its writers turns it into its own result.
#[derive(Debug, Clone)]
enum Outcome {
    Committed,
    /// The batch's transaction failed (SQLite's message, no data).
    Failed(Arc<str>),
}

impl Outcome {
    /// The error a writer of a failed batch gets. Its own work was sound — another writer's
    /// failure or the commit's (a full disk) undid it — so retrying may succeed: an I/O
    /// error, which the store maps to `Unavailable` (503).
    fn into_sqlx(self) -> Option<sqlx::Error> {
        match self {
            Outcome::Committed => None,
            Outcome::Failed(why) => Some(sqlx::Error::Io(std::io::Error::other(format!(
                "the write was not committed: {why}"
            )))),
        }
    }
}

impl Writer {
    /// Takes the writer's turn, in the open batch or a new one. `Savepoint::Own`: the
    /// caller's work gets a savepoint of its own, undone if it fails or is dropped.
    async fn begin(this: &Arc<Self>, savepoint: Savepoint) -> StoreResult<WriteTx> {
        let slot = this.take_turn().await?;
        Writer::begin_in(this, slot, savepoint).await
    }

    /// Waits for the writer's connection, first in first served, and undoes what a writer
    /// before left half done.
    async fn take_turn(&self) -> StoreResult<OwnedMutexGuard<Slot>> {
        let in_queue = Queued::join(&self.queued);
        let turn = tokio::time::timeout(WRITE_WAIT, self.gate.clone().lock_owned()).await;
        drop(in_queue);
        let mut slot = turn.map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?;
        self.settle(&mut slot).await;
        Ok(slot)
    }

    /// [`Writer::begin`] once the turn is taken.
    async fn begin_in(
        this: &Arc<Self>,
        mut slot: OwnedMutexGuard<Slot>,
        savepoint: Savepoint,
    ) -> StoreResult<WriteTx> {
        if slot.batch.is_none() {
            this.open_batch(&mut slot).await?;
        }
        if let Some(conn) = slot.conn.as_mut() {
            // Sent with the writer's first statement, saving a round trip each.
            conn.opening = match (conn.begun, savepoint) {
                (false, Savepoint::Own) => Opening::Due(Prelude::BeginAndSavepoint),
                (false, Savepoint::None) => Opening::Due(Prelude::Begin),
                (true, Savepoint::Own) => Opening::Due(Prelude::Savepoint),
                (true, Savepoint::None) => Opening::Open,
            };
        }
        let (batch, behind_others) = slot
            .batch
            .as_ref()
            .map_or((0, false), |batch| (batch.id, batch.members > 0));
        // Until the caller commits or rolls back, a drop leaves the savepoint to undo.
        slot.abandoned = savepoint == Savepoint::Own;
        Ok(WriteTx {
            slot: Some(slot),
            writer: this.clone(),
            batch,
            behind_others,
            savepoint,
        })
    }

    /// Opens a batch. Its transaction begins with the first statement written in it
    /// (`BEGIN IMMEDIATE` goes ahead of that statement, in its round trip to the
    /// connection's thread: each is two context switches, and a login makes a dozen writes).
    async fn open_batch(self: &Arc<Self>, slot: &mut Slot) -> StoreResult<()> {
        // The last batch's loss closed its connection: a new one replaces it.
        if slot.conn.is_none() {
            slot.conn = Some(WriterConnection::new(self.connect().await?));
        }
        let id = self.next_batch.fetch_add(1, Ordering::Relaxed);
        let (outcome, watcher) = watch::channel(None);
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
        slot.batch = Some(Batch {
            id,
            members: 0,
            outcome,
        });
        // The finisher queues for the gate soon (`finish`): every writer queued before it
        // joins this batch, and the finisher commits it when their turns are over.
        let writer = self.clone();
        tokio::spawn(async move { writer.finish(id).await });
        Ok(())
    }

    /// Commits batch `id` once its turn comes, unless it already ended.
    async fn finish(self: Arc<Self>, id: u64) {
        // Queued for the gate only after the runtime has looked at its sockets and run
        // what was ready: requests already under way get to queue ahead and join this
        // batch, rather than wait for its commit and open the next one with a sync of
        // their own. (At 4 clients: a context switch less per refresh rotation.)
        tokio::task::yield_now().await;
        let mut slot = self.gate.clone().lock_owned().await;
        self.settle(&mut slot).await;
        if slot.batch.as_ref().is_none_or(|batch| batch.id != id) {
            return;
        }
        if !slot.conn.as_ref().is_some_and(|conn| conn.begun) {
            // Nothing was written in it: nothing to commit.
            if let Some(conn) = slot.conn.as_mut() {
                conn.between_batches();
            }
            if let Some(batch) = slot.batch.take() {
                batch.outcome.send_replace(Some(Outcome::Committed));
            }
            return;
        }
        match statement(&mut slot, "COMMIT").await {
            Ok(()) => {
                if let Some(conn) = slot.conn.as_mut() {
                    conn.between_batches();
                }
                if let Some(batch) = slot.batch.take() {
                    // Before the writers are answered (see `committed`).
                    self.committed(batch.members);
                    batch.outcome.send_replace(Some(Outcome::Committed));
                }
            }
            Err(error) => self.lose_batch(&mut slot, &error).await,
        }
    }

    /// A new connection for the writer, in place of one lost with its batch; watched as
    /// the first one was.
    async fn connect(&self) -> Result<SqliteConnection, sqlx::Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let mut conn = tokio::time::timeout(WRITE_WAIT, self.options.connect())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        watch_cached_tables(&mut conn, self.cached_table_changed.clone()).await?;
        Ok(conn)
    }

    /// Undoes the savepoint of a writer that left without ending it, or the transaction of
    /// one cut short in its round trip.
    async fn settle(&self, slot: &mut Slot) {
        if std::mem::take(&mut slot.cut_short) {
            self.end_open_transaction(slot).await;
        }
        if !slot.abandoned {
            return;
        }
        slot.abandoned = false;
        if let Err(error) = self.undo_savepoint(slot).await {
            self.lose_batch(slot, &error).await;
        }
    }

    /// Undoes the current writer's savepoint, in one round trip — if it was opened: one
    /// still due was never sent (nothing to undo), and one whose opening failed is not
    /// there to roll back to (the newest savepoint is another writer's, or the batch never
    /// began), so the batch is lost rather than that writer's work undone.
    async fn undo_savepoint(&self, slot: &mut Slot) -> Result<(), sqlx::Error> {
        let conn = slot.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        match std::mem::replace(&mut conn.opening, Opening::Open) {
            Opening::Due(_) => Ok(()),
            Opening::Failed => Err(sqlx::Error::Protocol(
                "a writer's savepoint could not be opened".into(),
            )),
            Opening::Sent(_) | Opening::Open => sqlx::raw_sql("ROLLBACK TO writer; RELEASE writer")
                .execute(&mut conn.conn)
                .await
                .map(|_| ()),
        }
    }

    /// The batch's transaction is gone or cannot go on: roll back what is left of it and
    /// tell its writers.
    async fn lose_batch(&self, slot: &mut Slot, error: &sqlx::Error) {
        let why: Arc<str> = match error {
            sqlx::Error::Database(db) => db.message().into(),
            _ => "the database connection failed".into(),
        };
        tracing::error!(%why, "an SQLite write batch failed and was rolled back");
        match statement(slot, "ROLLBACK").await {
            Ok(()) => {
                if let Some(conn) = slot.conn.as_mut() {
                    conn.between_batches();
                }
            }
            // The connection is in an unknown state: closed, a new one replaces it.
            Err(_) => slot.conn = None,
        }
        if let Some(batch) = slot.batch.take() {
            batch.outcome.send_replace(Some(Outcome::Failed(why)));
        }
        // Whatever it changed is undone.
        self.cached_table_changed.store(false, Ordering::Release);
        slot.abandoned = false;
    }

    /// [`SqliteDb::write_together`].
    async fn write_together(
        self: &Arc<Self>,
        sql: sqlx::SqlStr,
        arguments: Option<SqliteArguments>,
    ) -> StoreResult<u64> {
        let mut slot = self.take_turn().await?;
        if slot.batch.is_some() || self.queued.load(Ordering::Acquire) > 0 {
            let mut tx = Writer::begin_in(self, slot, Savepoint::Own).await?;
            return match (&mut *tx).execute((sql, arguments)).await {
                Ok(done) => {
                    tx.commit().await?;
                    Ok(done.rows_affected())
                }
                Err(error) => {
                    tx.fail(&error).await;
                    Err(error.into())
                }
            };
        }
        if slot.conn.is_none() {
            slot.conn = Some(WriterConnection::new(self.connect().await?));
        }
        let whole =
            AssertSqlSafe(format!("BEGIN IMMEDIATE; {}; COMMIT", sql.as_str())).into_sql_str();
        // Until the answer is in: the request may be dropped half way.
        slot.cut_short = true;
        let conn = slot.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        conn.opening = Opening::Open;
        let steps: Result<Vec<_>, _> = (&mut conn.conn)
            .fetch_many((whole, arguments))
            .try_collect()
            .await;
        slot.cut_short = false;
        match steps {
            Ok(steps) => {
                self.committed(1);
                // The answers of `BEGIN` and `COMMIT` (first and last) are not the
                // caller's: each repeats the count of the statement before it.
                let answers: Vec<u64> = steps
                    .iter()
                    .filter_map(|step| step.as_ref().left().map(SqliteQueryResult::rows_affected))
                    .collect();
                let changed = answers
                    .get(1..answers.len().saturating_sub(1))
                    .unwrap_or_default()
                    .iter()
                    .sum();
                Ok(changed)
            }
            Err(error) => {
                // A statement failed: the ones after it, `COMMIT` too, did not run.
                self.end_open_transaction(&mut slot).await;
                Err(error.into())
            }
        }
    }

    /// Rolls back the transaction a one-trip write may have left open; none open is the
    /// usual answer for one cut short — it committed (or never began), and what it changed
    /// stands. A connection that cannot say is replaced.
    async fn end_open_transaction(&self, slot: &mut Slot) {
        let undone = match statement(slot, "ROLLBACK").await {
            Ok(()) => true,
            Err(sqlx::Error::Database(db)) if db.message().contains("no transaction is active") => {
                false
            }
            Err(_) => {
                slot.conn = None;
                // Unknown: reading cached configuration afresh is only slower.
                false
            }
        };
        if undone {
            self.cached_table_changed.store(false, Ordering::Release);
        } else {
            self.keep_cached_change();
        }
    }

    /// A commit (one sync) holding `writes` writers' work: counted, and a change it made
    /// to a cached table kept (`keep_cached_change`) — before its writers are answered, so
    /// one that changed an application reads it afresh in its next request.
    fn committed(&self, writes: u64) {
        self.keep_cached_change();
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes, Ordering::Relaxed);
    }

    /// Moves the cache generation if what was just committed changed a cached table.
    fn keep_cached_change(&self) {
        if self.cached_table_changed.swap(false, Ordering::AcqRel) {
            self.cache_generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// One statement outside any transaction of the caller's: a write of its own, in the
    /// batch like any other. Its rows are returned once the batch is durable.
    async fn run_alone(
        self: &Arc<Self>,
        sql: sqlx::SqlStr,
        arguments: Option<SqliteArguments>,
    ) -> Result<Vec<Either<SqliteQueryResult, SqliteRow>>, sqlx::Error> {
        let mut slot = self.take_turn().await.map_err(store_to_sqlx)?;
        if slot.batch.is_none() && self.queued.load(Ordering::Acquire) == 0 {
            return self.run_committed(&mut slot, sql, arguments).await;
        }
        let mut tx = Writer::begin_in(self, slot, Savepoint::None)
            .await
            .map_err(store_to_sqlx)?;
        let steps = (&mut *tx).fetch_many((sql, arguments)).try_collect().await;
        match steps {
            Ok(steps) => {
                tx.commit().await.map_err(store_to_sqlx)?;
                Ok(steps)
            }
            Err(error) => {
                tx.fail(&error).await;
                Err(error)
            }
        }
    }

    /// Runs a lone statement as its own transaction (SQLite's autocommit: durable when it
    /// returns). For a writer that finds no batch open and nobody queued: a batch would
    /// hold it alone — the writers that queue from now on join the next one anyway — and
    /// cost two more round trips (`BEGIN`, `COMMIT`).
    async fn run_committed(
        &self,
        slot: &mut Slot,
        sql: sqlx::SqlStr,
        arguments: Option<SqliteArguments>,
    ) -> Result<Vec<Either<SqliteQueryResult, SqliteRow>>, sqlx::Error> {
        if slot.conn.is_none() {
            slot.conn = Some(WriterConnection::new(self.connect().await?));
        }
        let conn = slot.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        conn.opening = Opening::Open;
        let steps: Result<Vec<_>, _> = (&mut conn.conn)
            .fetch_many((sql, arguments))
            .try_collect()
            .await;
        match steps {
            Ok(steps) => {
                self.committed(1);
                Ok(steps)
            }
            Err(error) => {
                // SQLite undid the statement; nothing of it was kept.
                self.cached_table_changed.store(false, Ordering::Release);
                Err(error)
            }
        }
    }
}

/// One writer counted in `Writer::queued` while it waits for its turn — and out of it once
/// it has its turn or gave up waiting (a dropped request): the count never strays.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn join(queued: &'a AtomicUsize) -> Self {
        queued.fetch_add(1, Ordering::AcqRel);
        Queued(queued)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Makes the writer's connection set `changed` whenever a statement (a trigger's
/// included) changes `cache_generation` — which the triggers of every cached table bump
/// (migrations 0032, 0037 and 0038) — so the writer knows without reading it back.
pub(crate) async fn watch_cached_tables(
    conn: &mut SqliteConnection,
    changed: Arc<AtomicBool>,
) -> Result<(), sqlx::Error> {
    conn.lock_handle().await?.set_update_hook(move |row| {
        if row.table == "cache_generation" {
            changed.store(true, Ordering::Release);
        }
    });
    Ok(())
}

/// Whether a writer's work runs in a savepoint of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Savepoint {
    /// A transaction of the caller's (several statements): undone as a whole if it fails.
    Own,
    /// One statement, atomic by itself.
    None,
}

/// Whether a failed statement left the transaction as it was. SQLite undoes the failed
/// statement alone (its default `ABORT` resolution; the schema asks for no `ROLLBACK`
/// one) except after the errors its documentation lists as possibly rolling back the
/// whole transaction — a busy or locked database, no memory, an interrupt, an I/O error, a
/// full disk — and a trigger's `RAISE`; a corrupt or unopenable file counts with them.
fn only_the_statement_failed(error: &sqlx::Error) -> bool {
    // SQLite's primary result codes, and one extended code (`SQLITE_CONSTRAINT_TRIGGER`).
    const MAY_END_THE_TRANSACTION: [i32; 9] = [5, 6, 7, 9, 10, 11, 13, 14, 26];
    const CONSTRAINT_TRIGGER: i32 = 19 | (7 << 8);
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    let Some(code) = db.code().and_then(|code| code.parse::<i32>().ok()) else {
        return false;
    };
    code != CONSTRAINT_TRIGGER && !MAY_END_THE_TRANSACTION.contains(&(code & 0xff))
}

/// Statements run through `Executor` report `sqlx::Error`; the writer's own failures are
/// `Unavailable`, whose source is one.
fn store_to_sqlx(error: StoreError) -> sqlx::Error {
    match error {
        StoreError::Unavailable(error) | StoreError::Database(error) => error,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

async fn statement(slot: &mut Slot, sql: &'static str) -> Result<(), sqlx::Error> {
    let conn = slot.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
    sqlx::query(sql).execute(&mut conn.conn).await.map(|_| ())
}

/// The writer's connection, and where the current writer's opening statements stand: the
/// batch's `BEGIN` (for the first writer to write in it) and its own `SAVEPOINT` are sent
/// ahead of its first statement, in the same round trip (each is two context switches),
/// rather than in round trips of their own.
#[derive(Debug)]
pub(crate) struct WriterConnection {
    /// Kept from batch to batch (sqlx's pool would ping its thread each time it was given
    /// back); closed and replaced only when a batch is lost. Dropping it needs no runtime.
    conn: SqliteConnection,
    opening: Opening,
    /// The batch's `BEGIN` has been sent on this connection (whether it ran shows in
    /// `opening`): its transaction is to be committed or rolled back.
    begun: bool,
}

/// What of the current writer's opening statements has reached the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// To be sent with the writer's first statement.
    Due(Prelude),
    /// Sent with a statement; this many of their answers are still to come, ahead of the
    /// statement's own.
    Sent(usize),
    /// Run (or nothing is wanted).
    Open,
    /// An opening statement failed: the writer has no savepoint, or the batch no
    /// transaction.
    Failed,
}

/// The statements that go ahead of a writer's first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prelude {
    /// The first writer to write in a batch, in a savepoint of its own.
    BeginAndSavepoint,
    /// The first writer to write in a batch, one statement atomic by itself.
    Begin,
    /// A writer joining a batch already begun.
    Savepoint,
}

impl Prelude {
    fn sql(self) -> &'static str {
        match self {
            Prelude::BeginAndSavepoint => "BEGIN IMMEDIATE; SAVEPOINT writer;",
            Prelude::Begin => "BEGIN IMMEDIATE;",
            Prelude::Savepoint => "SAVEPOINT writer;",
        }
    }

    /// The answers the prelude's statements give, one each.
    fn answers(self) -> usize {
        match self {
            Prelude::BeginAndSavepoint => 2,
            Prelude::Begin | Prelude::Savepoint => 1,
        }
    }

    fn begins(self) -> bool {
        self != Prelude::Savepoint
    }
}

impl WriterConnection {
    fn new(conn: SqliteConnection) -> Self {
        WriterConnection {
            conn,
            opening: Opening::Open,
            begun: false,
        }
    }

    /// After a batch's commit: the next batch begins afresh.
    fn between_batches(&mut self) {
        self.opening = Opening::Open;
        self.begun = false;
    }

    /// Runs `query` with the opening statements due ahead of it, if any are; their own
    /// answers are taken out (the "rows changed" of each would be the previous
    /// statement's).
    fn run<'c, 'q: 'c, E>(
        &'c mut self,
        query: E,
    ) -> BoxStream<'c, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Sqlite>,
    {
        let Opening::Due(prelude) = self.opening else {
            return (&mut self.conn).fetch_many(query);
        };
        let (sql, arguments) = match take_apart(query) {
            Ok(parts) => parts,
            Err(error) => return stream::once(async { Err(error) }).boxed(),
        };
        let sql = AssertSqlSafe(format!("{} {}", prelude.sql(), sql.as_str())).into_sql_str();
        let WriterConnection {
            conn,
            opening,
            begun,
        } = self;
        // Nothing is sent before the first poll: until then the prelude stays due (a
        // writer dropped meanwhile has nothing to undo), from then on it may have run.
        let mut steps = (&mut *conn).fetch_many((sql, arguments));
        stream::poll_fn(move |cx| {
            loop {
                if *opening == Opening::Due(prelude) {
                    *opening = Opening::Sent(prelude.answers());
                    *begun |= prelude.begins();
                }
                let step = std::task::ready!(steps.poll_next_unpin(cx));
                let Opening::Sent(answers) = *opening else {
                    return Poll::Ready(step);
                };
                match step {
                    // An opening statement's answer.
                    Some(Ok(Either::Left(_))) if answers > 1 => {
                        *opening = Opening::Sent(answers - 1);
                    }
                    Some(Ok(Either::Left(_))) => *opening = Opening::Open,
                    other => {
                        *opening = Opening::Failed;
                        return Poll::Ready(other);
                    }
                }
            }
        })
        .boxed()
    }
}

impl<'c> Executor<'c> for &'c mut WriterConnection {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        self.run(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        if !matches!(self.opening, Opening::Due(_)) {
            return (&mut self.conn).fetch_optional(query);
        }
        let mut steps = self.run(query);
        Box::pin(async move {
            while let Some(step) = steps.next().await {
                if let Either::Right(row) = step? {
                    return Ok(Some(row));
                }
            }
            Ok(None)
        })
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [sqlx::sqlite::SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::sqlite::SqliteStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut self.conn).prepare_with(sql, parameters)
    }

    fn describe<'e>(
        self,
        sql: sqlx::SqlStr,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Sqlite>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut self.conn).describe(sql)
    }
}

/// A write transaction: the writer's connection, inside a savepoint of the open batch.
/// `commit` returns once the batch is durable; dropping it undoes its work.
pub(crate) struct WriteTx {
    slot: Option<OwnedMutexGuard<Slot>>,
    writer: Arc<Writer>,
    batch: u64,
    /// Writers ahead of this one in its batch left work not yet committed, which this one
    /// sees (a row it conflicts with, a code already spent).
    behind_others: bool,
    savepoint: Savepoint,
}

impl WriteTx {
    /// Undoes this transaction's work after a statement failed with `error`, and returns
    /// once what the failure may have met — the uncommitted work of writers ahead in the
    /// batch — is committed or gone: a caller told "conflict" then finds the row it
    /// conflicted with. (A transaction merely dropped undoes its work without that wait.)
    async fn fail(mut self, error: &sqlx::Error) {
        let Some(mut slot) = self.slot.take() else {
            return;
        };
        slot.abandoned = false;
        match self.savepoint {
            Savepoint::Own => {
                if let Err(error) = self.writer.undo_savepoint(&mut slot).await {
                    self.writer.lose_batch(&mut slot, &error).await;
                    return;
                }
            }
            Savepoint::None if only_the_statement_failed(error) => {}
            Savepoint::None => {
                self.writer.lose_batch(&mut slot, error).await;
                return;
            }
        }
        let Some(batch) = slot.batch.as_ref().filter(|_| self.behind_others) else {
            return;
        };
        let mut outcome = batch.outcome.subscribe();
        drop(slot);
        let _ = outcome.wait_for(Option::is_some).await;
    }

    /// Keeps this transaction's work and waits until the batch holding it is committed.
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        let Some(mut slot) = self.slot.take() else {
            return Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
        };
        // Its savepoint stays open (no round trip): the batch's COMMIT releases it.
        slot.abandoned = false;
        if slot
            .conn
            .as_ref()
            .is_some_and(|conn| conn.opening == Opening::Failed)
        {
            // Work done without its savepoint cannot be told from the others': none of it
            // is kept.
            let error = sqlx::Error::Protocol("a writer's savepoint could not be opened".into());
            self.writer.lose_batch(&mut slot, &error).await;
            return Err(StoreError::Unavailable(error));
        }
        let Some(batch) = slot.batch.as_mut().filter(|batch| batch.id == self.batch) else {
            return Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
        };
        batch.members += 1;
        let mut outcome = batch.outcome.subscribe();
        // The next writer in the queue (or the batch's finisher) goes on meanwhile.
        drop(slot);
        let ended = outcome
            .wait_for(Option::is_some)
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?
            .clone();
        match ended.map(Outcome::into_sqlx) {
            Some(None) => Ok(()),
            Some(Some(error)) => Err(error.into()),
            None => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = WriterConnection;

    fn deref(&self) -> &WriterConnection {
        self.slot
            .as_ref()
            .and_then(|slot| slot.conn.as_ref())
            .expect("a write transaction holds the writer's connection")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut WriterConnection {
        self.slot
            .as_mut()
            .and_then(|slot| slot.conn.as_mut())
            .expect("a write transaction holds the writer's connection")
    }
}

#[cfg(test)]
mod tests {
    use super::{SqliteDb, WriteTx, is_read};
    use futures_util::future::BoxFuture;
    use std::sync::atomic::Ordering;

    #[test]
    fn only_a_leading_select_reads() {
        assert!(is_read("SELECT 1"));
        assert!(is_read("  \n select id FROM users"));
        assert!(is_read("-- why\nSELECT 1"));
        assert!(is_read("SELECT\n1"));
        assert!(!is_read("INSERT INTO t SELECT 1"));
        assert!(!is_read("WITH x AS (SELECT 1) DELETE FROM t"));
        assert!(!is_read("UPDATE t SET a = 1 RETURNING a"));
        assert!(!is_read("SELECTED"));
        assert!(!is_read("PRAGMA integrity_check"));
        assert!(!is_read("VACUUM INTO 'x'"));
        assert!(!is_read(""));
        assert!(!is_read("-- only a comment"));
    }

    async fn database() -> (tempfile::TempDir, SqliteDb) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/writer.db", dir.path().display());
        let (db, _) = crate::backend::connect_sqlite(&url).await.unwrap();
        for table in [
            "CREATE TABLE t (v INTEGER PRIMARY KEY)",
            "CREATE TABLE refused (v INTEGER)",
            // Rolls back the whole transaction, as a full disk or an I/O error would.
            "CREATE TRIGGER refuse BEFORE INSERT ON refused \
             BEGIN SELECT RAISE(ROLLBACK, 'refused'); END",
        ] {
            sqlx::query(table).execute(&db).await.unwrap();
        }
        (dir, db)
    }

    async fn values(db: &SqliteDb) -> Vec<i64> {
        sqlx::query_scalar("SELECT v FROM t ORDER BY v")
            .fetch_all(db)
            .await
            .unwrap()
    }

    /// `insert` as a task of its own, queued behind whoever holds the writer.
    fn spawn_insert(db: &SqliteDb, v: i64) -> tokio::task::JoinHandle<Result<(), sqlx::Error>> {
        let db = db.clone();
        tokio::spawn(async move { insert(&db, v).await })
    }

    async fn insert(db: &SqliteDb, v: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO t (v) VALUES ($1)")
            .bind(v)
            .execute(db)
            .await
            .map(|_| ())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_land_and_share_commits() {
        let (_dir, db) = database().await;
        let (writes_before, commits_before) = db.write_counts();
        let tasks: Vec<_> = (0..64).map(|v| spawn_insert(&db, v)).collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(values(&db).await, (0..64).collect::<Vec<_>>());
        let (writes, commits) = db.write_counts();
        assert_eq!(writes - writes_before, 64);
        assert!(
            commits - commits_before < 64,
            "64 concurrent writes took {} commits: none shared one",
            commits - commits_before
        );
    }

    #[tokio::test]
    async fn a_failing_writer_leaves_the_others_in_its_batch() {
        let (_dir, db) = database().await;
        insert(&db, 1).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let db = db.clone();
                // Every fourth one repeats the existing key.
                let v = if i % 4 == 0 { 1 } else { 100 + i };
                tokio::spawn(async move { (v, insert(&db, v).await) })
            })
            .collect();
        for task in tasks {
            let (v, result) = task.await.unwrap();
            assert_eq!(result.is_err(), v == 1, "{v}: {result:?}");
        }
        let expected: Vec<i64> = std::iter::once(1)
            .chain((0..20).filter(|i| i % 4 != 0).map(|i| 100 + i))
            .collect();
        assert_eq!(values(&db).await, expected);
    }

    /// A lone statement that fails at run time (here: malformed JSON) is undone by SQLite
    /// alone; the writers sharing its batch are not failed with it.
    #[tokio::test]
    async fn a_lone_statement_that_fails_leaves_the_others_in_its_batch() {
        let (_dir, db) = database().await;
        let first = db.write().await.unwrap();
        let before = spawn_insert(&db, 1);
        let failing = tokio::spawn({
            let db = db.clone();
            async move {
                sqlx::query("INSERT INTO t (v) VALUES (json_extract($1, '$.v'))")
                    .bind("{not json")
                    .execute(&db)
                    .await
            }
        });
        let after = spawn_insert(&db, 2);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        first.commit().await.unwrap();
        before.await.unwrap().unwrap();
        assert!(
            failing.await.unwrap().is_err(),
            "malformed JSON was accepted"
        );
        after.await.unwrap().unwrap();
        assert_eq!(values(&db).await, [1, 2]);
    }

    #[tokio::test]
    async fn a_dropped_transaction_is_undone_and_the_next_writer_goes_on() {
        let (_dir, db) = database().await;
        let mut tx = db.write().await.unwrap();
        sqlx::query("INSERT INTO t (v) VALUES (5)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        insert(&db, 6).await.unwrap();
        assert_eq!(values(&db).await, [6]);
    }

    /// Writers that succeeded leave their savepoints open; a later one undone in the same
    /// batch (dropped after a failed statement) must take back its own work only.
    #[tokio::test]
    async fn undoing_a_writer_keeps_the_work_of_those_before_it_in_the_batch() {
        let (_dir, db) = database().await;
        let first = db.write().await.unwrap();
        let kept = tokio::spawn({
            let db = db.clone();
            async move {
                let mut tx = db.write().await.unwrap();
                sqlx::query("INSERT INTO t (v) VALUES (10)")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await
            }
        });
        let undone = tokio::spawn({
            let db = db.clone();
            async move {
                let mut tx = db.write().await.unwrap();
                sqlx::query("INSERT INTO t (v) VALUES (11)")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                // Conflicts with 10, written ahead of it in the batch; the caller gives up.
                sqlx::query("INSERT INTO t (v) VALUES (10)")
                    .execute(&mut *tx)
                    .await
                    .is_err()
            }
        });
        let alone = spawn_insert(&db, 12);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        first.commit().await.unwrap();
        kept.await.unwrap().unwrap();
        assert!(undone.await.unwrap(), "the duplicate was accepted");
        alone.await.unwrap().unwrap();
        assert_eq!(values(&db).await, [10, 12]);
    }

    /// A lone statement that finds the writer idle is its own transaction: no batch is
    /// opened for it, and it is durable (committed) when it returns; one that fails there
    /// changes nothing and leaves the writer working.
    #[tokio::test]
    async fn a_lone_write_with_nobody_queued_commits_by_itself() {
        let (_dir, db) = database().await;
        let batches = db.writer.next_batch.load(Ordering::Relaxed);
        let (writes, commits) = db.write_counts();
        insert(&db, 1).await.unwrap();
        assert!(insert(&db, 1).await.is_err(), "a duplicate accepted");
        insert(&db, 2).await.unwrap();
        assert_eq!(values(&db).await, [1, 2]);
        assert_eq!(db.write_counts(), (writes + 2, commits + 2));
        assert_eq!(
            db.writer.next_batch.load(Ordering::Relaxed),
            batches,
            "a batch was opened"
        );
        // Committed, not merely written: a second connection reads it (WAL readers see
        // committed data only).
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM t")
            .fetch_one(&mut *db.read_connection().await.unwrap())
            .await
            .unwrap();
        assert_eq!(count, 2);
    }

    /// A writer that gives up while queued (its request dropped) leaves the queue: the
    /// lone writes after it still commit by themselves.
    #[tokio::test]
    async fn a_writer_dropped_while_queued_leaves_the_queue() {
        let (_dir, db) = database().await;
        let first = db.write().await.unwrap();
        let gave_up = spawn_insert(&db, 1);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(db.writer.queued.load(Ordering::Acquire), 1, "not queued");
        gave_up.abort();
        assert!(gave_up.await.unwrap_err().is_cancelled());
        assert_eq!(db.writer.queued.load(Ordering::Acquire), 0);
        first.commit().await.unwrap();
        let batches = db.writer.next_batch.load(Ordering::Relaxed);
        insert(&db, 2).await.unwrap();
        assert_eq!(values(&db).await, [2]);
        assert_eq!(
            db.writer.next_batch.load(Ordering::Relaxed),
            batches,
            "a batch was opened"
        );
    }

    /// A writer that joins an open batch sends its `SAVEPOINT` with its first statement:
    /// what that statement reports is its own, and undoing the writer — dropped before
    /// any statement, or after a first statement that failed — takes back its work only.
    #[tokio::test]
    async fn a_joining_writer_s_savepoint_goes_with_its_first_statement() {
        let (_dir, db) = database().await;
        let (writes_before, commits_before) = db.write_counts();
        // Holds the writer while the others queue; its batch's finisher yields before it
        // queues, so the others queue ahead of it and join the batch. `first` writes
        // nothing: the batch's BEGIN goes with the next writer's first statement.
        let first = db.write().await.unwrap();
        let spawn_writer = |work: fn(WriteTx) -> BoxFuture<'static, Result<u64, String>>| {
            let db = db.clone();
            tokio::spawn(async move { work(db.write().await.unwrap()).await })
        };
        // A writer of one statement, committed: the rows it changed.
        let spawn_statement = |sql: &'static str| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut tx = db.write().await.unwrap();
                let done = sqlx::query(sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                tx.commit().await.map_err(|e| e.to_string())?;
                Ok::<_, String>(done.rows_affected())
            })
        };
        let opener = spawn_statement("INSERT INTO t (v) VALUES (1), (2), (3)");
        // Not the 3 rows the statement before it changed.
        let counted = spawn_statement("UPDATE t SET v = v WHERE v = 999");
        let returned = spawn_writer(|mut tx| {
            Box::pin(async move {
                let row = sqlx::query("INSERT INTO t (v) VALUES (4) RETURNING v")
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("no row")?;
                tx.commit().await.map_err(|e| e.to_string())?;
                Ok(sqlx::Row::get::<i64, _>(&row, "v") as u64)
            })
        });
        // Had its due savepoint been undone, the newest one (4's) would have gone.
        let left_early = spawn_writer(|tx| {
            Box::pin(async move {
                drop(tx);
                Ok(0)
            })
        });
        let refused_first = spawn_writer(|mut tx| {
            Box::pin(async move {
                // Its savepoint went out with this statement, which fails to prepare.
                match sqlx::query("INSERT INTO nowhere (v) VALUES (5)")
                    .execute(&mut *tx)
                    .await
                {
                    Ok(_) => Err("a missing table accepted".into()),
                    Err(_) => Ok(0),
                }
            })
        });
        let failed_second = spawn_writer(|mut tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (v) VALUES (6)")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| e.to_string())?;
                match sqlx::query("INSERT INTO t (v) VALUES (1)")
                    .execute(&mut *tx)
                    .await
                {
                    Ok(_) => Err("a duplicate accepted".into()),
                    Err(_) => Ok(0),
                }
            })
        });
        let last = spawn_statement("INSERT INTO t (v) VALUES (7)");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        first.commit().await.unwrap();
        assert_eq!(opener.await.unwrap(), Ok(3));
        assert_eq!(counted.await.unwrap(), Ok(0));
        assert_eq!(left_early.await.unwrap(), Ok(0));
        assert_eq!(returned.await.unwrap(), Ok(4));
        assert_eq!(refused_first.await.unwrap(), Ok(0));
        assert_eq!(failed_second.await.unwrap(), Ok(0));
        assert_eq!(last.await.unwrap(), Ok(1));
        assert_eq!(values(&db).await, [1, 2, 3, 4, 7]);
        let (writes, commits) = db.write_counts();
        assert_eq!(
            (writes - writes_before, commits - commits_before),
            (5, 1),
            "the writers that committed (`first` among them) shared one commit"
        );
    }

    /// A batch whose `BEGIN` fails — another process holds SQLite's write lock past the
    /// busy timeout — fails the writer whose first statement carried it and keeps nothing;
    /// the writer queued behind it goes on once the lock is released.
    #[tokio::test]
    async fn a_batch_that_cannot_begin_fails_its_writer_and_the_next_one_goes_on() {
        use sqlx::{ConnectOptions as _, Connection as _};
        let (dir, db) = database().await;
        // The writer's connection waits 50 ms for the lock, not the usual 5 s.
        sqlx::query("PRAGMA busy_timeout = 50")
            .execute(&db)
            .await
            .unwrap();
        let mut other = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("writer.db"))
            .connect()
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();

        let mut opener = db.write().await.unwrap();
        let queued = spawn_insert(&db, 2);
        let refused = sqlx::query("INSERT INTO t (v) VALUES (1)")
            .execute(&mut *opener)
            .await;
        assert!(refused.is_err(), "written without the lock: {refused:?}");
        assert!(opener.commit().await.is_err(), "a batch never begun kept");

        // The writer queued behind it opens a batch of its own, which begins once the
        // lock is released.
        sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
        queued.await.unwrap().unwrap();
        insert(&db, 3).await.unwrap();
        assert_eq!(values(&db).await, [2, 3]);
        other.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_lost_batch_fails_every_writer_in_it_and_the_next_batch_works() {
        let (_dir, db) = database().await;
        // Hold the writer so the next two queue and join its batch (its finisher yields
        // before it queues): the current-thread runtime polls them in the order they were
        // spawned.
        let first = db.write().await.unwrap();
        let kept = spawn_insert(&db, 7);
        let refused = tokio::spawn({
            let db = db.clone();
            async move {
                sqlx::query("INSERT INTO refused VALUES (1)")
                    .execute(&db)
                    .await
            }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // Every writer of the lost batch is told, `first` too (it wrote nothing).
        assert!(first.commit().await.is_err());
        assert!(refused.await.unwrap().is_err());
        let kept = kept.await.unwrap();
        assert!(kept.is_err(), "its batch was rolled back: {kept:?}");
        assert_eq!(values(&db).await, Vec::<i64>::new());
        insert(&db, 8).await.unwrap();
        assert_eq!(values(&db).await, [8]);
    }

    #[tokio::test]
    async fn a_conflict_is_answered_once_the_row_it_met_is_readable() {
        let (_dir, db) = database().await;
        // A batch is held open while two writers of the same key queue and join it, the
        // second one conflicting with the first one's uncommitted row.
        let first = db.write().await.unwrap();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    let result = insert(&db, 3).await;
                    (result.is_ok(), values(&db).await)
                })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        first.commit().await.unwrap();
        let mut outcomes = Vec::new();
        for writer in writers {
            outcomes.push(writer.await.unwrap());
        }
        outcomes.sort();
        assert_eq!(outcomes, [(false, vec![3]), (true, vec![3])]);
    }

    #[tokio::test]
    async fn reads_reuse_their_connections_up_to_the_limit() {
        let (_dir, db) = database().await;
        for _ in 0..20 {
            values(&db).await;
        }
        let (open, idle, max) = db.reads.stats();
        assert_eq!(
            (open, idle, max),
            (1, 1, 8),
            "one connection served every read"
        );
        // A bad statement is the database's answer: its connection stays.
        let missing = sqlx::query("SELECT * FROM missing").fetch_all(&db).await;
        assert!(matches!(missing, Err(sqlx::Error::Database(_))));
        assert_eq!(db.reads.stats(), (1, 1, 8));
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(db.read_connection().await.unwrap());
        }
        assert_eq!(db.reads.stats(), (8, 0, 8));
        let waiting = tokio::spawn({
            let db = db.clone();
            async move { values(&db).await }
        });
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(
            !waiting.is_finished(),
            "a ninth read waits for a connection"
        );
        // Not marked sound (`keep_after`): closed, not given back.
        held.pop();
        assert_eq!(waiting.await.unwrap(), Vec::<i64>::new());
        assert_eq!(db.reads.stats(), (8, 1, 8));
        drop(held);
        assert_eq!(db.reads.stats(), (1, 1, 8));
        db.close().await;
        assert_eq!(db.reads.stats(), (0, 0, 8));
        assert!(matches!(
            db.read_connection().await,
            Err(sqlx::Error::PoolClosed)
        ));
        // Nor is a writer's connection opened again.
        assert!(insert(&db, 1).await.is_err());
    }

    #[tokio::test]
    async fn the_writer_keeps_its_connection_between_batches() {
        let (_dir, db) = database().await;
        // A temporary table lives and dies with the connection that made it.
        sqlx::query("CREATE TEMP TABLE mark (v INTEGER)")
            .execute(&db)
            .await
            .unwrap();
        for v in 0..3 {
            insert(&db, v).await.unwrap();
            let mut tx = db.write().await.unwrap();
            sqlx::query("INSERT INTO temp.mark (v) VALUES ($1)")
                .bind(v)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        // A batch lost (the trigger rolls the transaction back) keeps it too.
        let refused = sqlx::query("INSERT INTO refused (v) VALUES (1)")
            .execute(&db)
            .await;
        assert!(refused.is_err());
        let marks = sqlx::query("INSERT INTO temp.mark (v) VALUES (9) RETURNING v")
            .fetch_all(&db)
            .await
            .unwrap();
        assert_eq!(marks.len(), 1);
        assert_eq!(values(&db).await, vec![0, 1, 2]);
    }

    fn two_inserts(
        a: i64,
        b: i64,
    ) -> sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
        sqlx::query("INSERT INTO t (v) VALUES ($1); INSERT INTO t (v) VALUES ($2)")
            .bind(a)
            .bind(b)
    }

    /// Statements written together with the writer free are one transaction of one round
    /// trip: both land or neither does, no batch is opened, and the count is theirs.
    #[tokio::test]
    async fn statements_written_together_alone_are_one_transaction() {
        let (_dir, db) = database().await;
        let batches = db.writer.next_batch.load(Ordering::Relaxed);
        let (writes, commits) = db.write_counts();
        assert_eq!(db.write_together(two_inserts(1, 2)).await.unwrap(), 2);
        assert_eq!(db.write_counts(), (writes + 1, commits + 1));
        // The second fails (a duplicate): the first is undone with it.
        assert!(db.write_together(two_inserts(3, 1)).await.is_err());
        // The first fails: the second never runs.
        assert!(db.write_together(two_inserts(2, 4)).await.is_err());
        assert_eq!(values(&db).await, [1, 2]);
        // No transaction was left open: the next ones commit, a lone write among them.
        assert_eq!(db.write_together(two_inserts(5, 6)).await.unwrap(), 2);
        insert(&db, 7).await.unwrap();
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM t")
            .fetch_one(&mut *db.read_connection().await.unwrap())
            .await
            .unwrap();
        assert_eq!(count, 5);
        assert_eq!(
            db.writer.next_batch.load(Ordering::Relaxed),
            batches,
            "a batch was opened"
        );
    }

    /// With a batch open, statements written together join it in a savepoint of their own:
    /// undone alone when one of them fails, committed with the batch otherwise.
    #[tokio::test]
    async fn statements_written_together_join_an_open_batch() {
        let (_dir, db) = database().await;
        let mut first = db.write().await.unwrap();
        sqlx::query("INSERT INTO t (v) VALUES (10)")
            .execute(&mut *first)
            .await
            .unwrap();
        let spawn_together = |a, b| {
            let db = db.clone();
            tokio::spawn(async move { db.write_together(two_inserts(a, b)).await })
        };
        let joined = spawn_together(11, 12);
        let failed = spawn_together(13, 10);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(db.writer.queued.load(Ordering::Acquire), 2, "not queued");
        first.commit().await.unwrap();
        assert_eq!(joined.await.unwrap().unwrap(), 2);
        assert!(failed.await.unwrap().is_err());
        assert_eq!(values(&db).await, [10, 11, 12]);
    }

    /// A request dropped while its statements are on their way may leave their
    /// transaction open on the connection; the next writer finds it rolled back or
    /// committed whole, never half, and goes on.
    #[tokio::test]
    async fn statements_written_together_and_dropped_leave_no_half() {
        let (_dir, db) = database().await;
        for round in 0..20 {
            let (a, b) = (round * 10, round * 10 + 1);
            let mut together = Box::pin(db.write_together(two_inserts(a, b)));
            // Sent, not awaited to the end.
            let polled = futures_util::FutureExt::now_or_never(together.as_mut());
            drop(together);
            insert(&db, round * 10 + 2).await.unwrap();
            let now = values(&db).await;
            let kept = now.contains(&a);
            assert_eq!(
                kept,
                now.contains(&b),
                "half a transaction kept: {now:?} ({polled:?})"
            );
        }
        assert_eq!(db.write_together(two_inserts(1000, 1001)).await.unwrap(), 2);
        assert!(db.writer.gate.try_lock().is_ok_and(|slot| !slot.cut_short));
    }

    /// A write cut short that committed anyway changed what it changed: a cached table's
    /// change still moves the cache generation; one rolled back does not.
    #[tokio::test]
    async fn a_cut_short_write_moves_the_cache_generation_only_if_it_committed() {
        let (_dir, db) = database().await;
        // `cache_generation` is the row the cached tables' triggers bump (migration 0032).
        for round in 0..20 {
            let seen = db.cache_generation_seen();
            let bump = sqlx::query(
                "INSERT INTO t (v) VALUES ($1); \
                 UPDATE cache_generation SET generation = generation + 1",
            )
            .bind(round);
            let mut together = Box::pin(db.write_together(bump));
            let _ = futures_util::FutureExt::now_or_never(together.as_mut());
            drop(together);
            insert(&db, 1000 + round).await.unwrap();
            let committed = values(&db).await.contains(&round);
            assert_eq!(
                db.cache_generation_seen() > seen,
                committed,
                "round {round}: committed {committed}"
            );
        }
        // A trip cut short after its `COMMIT` ran (its answer was on the way): as if so.
        {
            let mut slot = db.writer.gate.lock().await;
            let conn = slot.conn.as_mut().expect("the writer's connection");
            sqlx::query("UPDATE cache_generation SET generation = generation + 1")
                .execute(&mut conn.conn)
                .await
                .unwrap();
            slot.cut_short = true;
        }
        let seen = db.cache_generation_seen();
        insert(&db, 2000).await.unwrap();
        assert!(
            db.cache_generation_seen() > seen,
            "a committed change to a cached table was forgotten"
        );
    }

    #[tokio::test]
    async fn reading_connections_refuse_writes() {
        let (_dir, db) = database().await;
        let refused = sqlx::query("INSERT INTO t (v) VALUES (1)")
            .execute(&mut *db.read_connection().await.unwrap())
            .await;
        assert!(refused.is_err());
        assert_eq!(values(&db).await, Vec::<i64>::new());
    }
}
