//! The read-only connections, kept by the store instead of sqlx's pool. sqlx's pool tests
//! every connection given back to it with a ping to the connection's thread — a round trip
//! (two context switches) and a spawned task after every read — and offers no way to turn
//! that off. An SQLite connection is a file handle that does not go stale, so here a read
//! takes an idle connection from a list and puts it back when it is done. One that met an
//! error other than the database's own answer, or whose read was dropped half way, is
//! closed instead: the next read opens a fresh one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a read waits for a connection before the store answers `Unavailable` (503),
/// as sqlx's pool did: reads never pile up without bound.
const READ_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct ReadConnections {
    options: SqliteConnectOptions,
    idle: Mutex<Vec<SqliteConnection>>,
    /// One per connection there may be, open or not: held by each read in progress.
    permits: Arc<Semaphore>,
    max: usize,
    /// Connections open now, idle or in use.
    open: AtomicUsize,
}

impl ReadConnections {
    /// At most `max` connections, opened with `options` (which should make them read-only)
    /// when a read finds none idle. One is opened now, so a database that cannot be read
    /// fails here rather than at the first request.
    pub(crate) async fn open(
        options: SqliteConnectOptions,
        max: usize,
    ) -> Result<Arc<Self>, sqlx::Error> {
        let first = options.connect().await?;
        Ok(Arc::new(ReadConnections {
            options,
            idle: Mutex::new(vec![first]),
            permits: Arc::new(Semaphore::new(max)),
            max,
            open: AtomicUsize::new(1),
        }))
    }

    /// A connection for one read: an idle one, or a new one when none is.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<ReadConnection, sqlx::Error> {
        let permit = tokio::time::timeout(READ_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = self.options.connect().await?;
                self.open.fetch_add(1, Ordering::Relaxed);
                conn
            }
        };
        Ok(ReadConnection {
            conn: Some(conn),
            keep: false,
            home: self.clone(),
            _permit: permit,
        })
    }

    /// Connections open, of them idle, and the most there may be.
    pub(crate) fn stats(&self) -> (usize, usize, usize) {
        (
            self.open.load(Ordering::Relaxed),
            self.idle().len(),
            self.max,
        )
    }

    /// Refuses further reads and closes the idle connections; one in use closes when its
    /// read ends.
    pub(crate) async fn close(&self) {
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle());
        for conn in idle {
            self.open.fetch_sub(1, Ordering::Relaxed);
            let _ = conn.close().await;
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One read's connection. Dropped, it goes back to the idle list if the read marked it
/// sound ([`ReadConnection::keep`]); otherwise it is closed.
#[derive(Debug)]
pub(crate) struct ReadConnection {
    conn: Option<SqliteConnection>,
    keep: bool,
    home: Arc<ReadConnections>,
    _permit: OwnedSemaphorePermit,
}

impl ReadConnection {
    /// Marks the connection fit for the next read after `outcome`: a success or an error
    /// of the database's own (a bad statement) leaves it as it was; anything else (its
    /// thread gone, an I/O error in the driver) may not have.
    pub(crate) fn keep_after<T>(&mut self, outcome: &Result<T, sqlx::Error>) {
        self.keep = matches!(outcome, Ok(_) | Err(sqlx::Error::Database(_)));
    }
}

impl std::ops::Deref for ReadConnection {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for ReadConnection {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("held until dropped")
    }
}

impl Drop for ReadConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.keep && !self.home.permits.is_closed() {
            self.home.idle().push(conn);
        } else {
            // Dropping it ends its thread, which closes it; no runtime is needed.
            self.home.open.fetch_sub(1, Ordering::Relaxed);
            drop(conn);
        }
    }
}
