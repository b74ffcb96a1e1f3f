//! A circuit breaker in front of PostgreSQL. While the database is down, every call
//! would wait out the pool's acquire timeout (2 s) before failing; once the breaker knows
//! the server is down it opens, and calls fail at once with `StoreError::Down` (a 503
//! right away). After a cooldown one call at a time goes through; the first call the
//! server answers closes the breaker again.
//!
//! What opens it is a connection attempt of its own that fails (`can_connect`), made when
//! a call failed in a way that may mean the server is unreachable: an I/O error, a
//! connection exception, the server shutting down or starting up, or no connection within
//! the acquire timeout while no other call was answered either. The pool's own numbers
//! cannot tell: while the server is down the pool keeps opening connections (they count in
//! its size) and its idle connections are dead ones. A pool that is only busy (every
//! connection held by slow queries or lock waits), one connection killed, a lock conflict
//! or a statement timeout leave it closed: the server still accepts a connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::POSTGRES_ACQUIRE_TIMEOUT;
use crate::{StoreError, StoreResult};

/// How long calls fail fast after an outage was seen, before the next call goes through.
const COOLDOWN: Duration = Duration::from_millis(500);

pub(crate) struct Breaker {
    origin: Instant,
    /// Milliseconds since `origin` until which calls fail fast; 0 = closed.
    open_until: AtomicU64,
    /// Milliseconds since `origin`, plus one, when the server last answered a call; 0 =
    /// never.
    last_answer: AtomicU64,
    /// A connection attempt of the breaker's own is under way (one at a time).
    checking: AtomicBool,
}

/// A call the breaker let through: when it started.
pub(crate) struct Admitted {
    started: u64,
}

/// What the outcome of one call says about the server.
#[derive(Debug, PartialEq, Eq)]
enum Sign {
    /// The server answered (rows, a conflict, a lock timeout…): it is up.
    Answered,
    /// No connection within the acquire timeout: down, or only busy.
    NoConnection,
    /// A connection failed or was cut, or the server is shutting down or starting up.
    ConnectionTrouble,
    /// Says nothing about the server (the pool was closed, a TLS handshake failed).
    Nothing,
}

fn sign<T>(result: &StoreResult<T>) -> Sign {
    let Err(error) = result else {
        return Sign::Answered;
    };
    match error {
        StoreError::Unavailable(sqlx::Error::PoolTimedOut) => Sign::NoConnection,
        StoreError::Unavailable(sqlx::Error::PoolClosed) | StoreError::Tls(_) => Sign::Nothing,
        error if error.is_connection_trouble() => Sign::ConnectionTrouble,
        _ => Sign::Answered,
    }
}

impl Breaker {
    pub(crate) fn new() -> Breaker {
        Breaker {
            origin: Instant::now(),
            open_until: AtomicU64::new(0),
            last_answer: AtomicU64::new(0),
            checking: AtomicBool::new(false),
        }
    }

    /// Whether a call may go to the database now.
    pub(crate) fn admit(&self) -> Result<Admitted, StoreError> {
        let now = self.now_ms();
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Ok(Admitted { started: now });
        }
        if now < until {
            return Err(StoreError::Down);
        }
        // Cooldown over: this caller tries. The others keep failing fast for as long as
        // its try can take.
        let trying = now + millis(POSTGRES_ACQUIRE_TIMEOUT) + millis(COOLDOWN);
        match self
            .open_until
            .compare_exchange(until, trying, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(Admitted { started: now }),
            Err(_) => Err(StoreError::Down),
        }
    }

    /// Whether calls are failing fast now (for monitoring).
    pub(crate) fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) != 0
    }

    /// Learns from the outcome of an admitted call. `can_connect` opens (and closes) a
    /// connection of its own, outside the pool, and says whether that worked; it is
    /// called when the outcome leaves the server's state in doubt, by one caller at a time.
    pub(crate) async fn record<T, F>(
        &self,
        call: Admitted,
        result: &StoreResult<T>,
        can_connect: impl FnOnce() -> F,
    ) where
        F: Future<Output = bool>,
    {
        match sign(result) {
            Sign::Answered => self.answered(),
            Sign::Nothing => {}
            // Another call got an answer while this one waited: the pool was busy.
            Sign::NoConnection if self.last_answer.load(Ordering::Acquire) > call.started => {}
            Sign::NoConnection | Sign::ConnectionTrouble => {
                if self.checking.swap(true, Ordering::AcqRel) {
                    // Someone is finding out already.
                    return;
                }
                // Cleared even if the caller gives up on this future midway.
                let _checking = ClearOnDrop(&self.checking);
                if can_connect().await {
                    self.answered();
                } else {
                    let until = self.now_ms() + millis(COOLDOWN);
                    self.open_until.store(until.max(1), Ordering::Release);
                }
            }
        }
    }

    fn answered(&self) {
        let stamp = self.now_ms() + 1;
        // Loads first: most calls find both up to date and write nothing shared.
        if self.last_answer.load(Ordering::Relaxed) < stamp {
            self.last_answer.store(stamp, Ordering::Release);
        }
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Release);
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.origin.elapsed())
    }
}

struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::future::{pending, ready};

    use super::*;

    fn refused() -> StoreResult<()> {
        Err(StoreError::Unavailable(sqlx::Error::Io(
            std::io::ErrorKind::ConnectionRefused.into(),
        )))
    }

    fn pool_timeout() -> StoreResult<()> {
        Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut))
    }

    fn no_check() -> std::future::Ready<bool> {
        panic!("the breaker checked the connection when it did not need to")
    }

    #[tokio::test]
    async fn an_outage_confirmed_by_a_failed_connection_opens_it_and_an_answer_closes_it() {
        let breaker = Breaker::new();
        let call = breaker.admit().unwrap();
        breaker.record(call, &refused(), || ready(false)).await;
        assert!(breaker.is_open());
        assert!(matches!(breaker.admit(), Err(StoreError::Down)));
        // A call admitted before the outage, answered late.
        breaker
            .record(Admitted { started: 0 }, &Ok(()), no_check)
            .await;
        assert!(!breaker.is_open());
        breaker.admit().unwrap();
    }

    #[tokio::test]
    async fn a_pool_timeout_with_nothing_answered_meanwhile_is_checked() {
        let breaker = Breaker::new();
        let call = breaker.admit().unwrap();
        breaker.record(call, &pool_timeout(), || ready(false)).await;
        assert!(breaker.is_open(), "the server cannot be reached: down");

        let breaker = Breaker::new();
        let call = breaker.admit().unwrap();
        breaker.record(call, &pool_timeout(), || ready(true)).await;
        assert!(!breaker.is_open(), "a new connection works: only busy");
    }

    #[tokio::test]
    async fn a_pool_timeout_while_other_calls_were_answered_is_a_busy_pool() {
        let breaker = Breaker::new();
        let waiting = breaker.admit().unwrap();
        let other = breaker.admit().unwrap();
        breaker.record(other, &Ok(()), no_check).await;
        breaker.record(waiting, &pool_timeout(), no_check).await;
        assert!(!breaker.is_open());
        breaker.admit().unwrap();
    }

    #[tokio::test]
    async fn a_cut_connection_opens_it_only_if_no_new_one_can_be_made() {
        let breaker = Breaker::new();
        let call = breaker.admit().unwrap();
        breaker.record(call, &refused(), || ready(true)).await;
        assert!(
            !breaker.is_open(),
            "one connection killed, the server is up"
        );
    }

    #[tokio::test]
    async fn conflicts_and_missing_rows_are_answers() {
        let breaker = Breaker::new();
        let call = breaker.admit().unwrap();
        let conflict: StoreResult<()> = Err(StoreError::Conflict("row"));
        breaker.record(call, &conflict, no_check).await;
        assert!(!breaker.is_open());
        let call = breaker.admit().unwrap();
        breaker.record(call, &refused(), || ready(false)).await;
        assert!(breaker.is_open());
        let not_found: StoreResult<()> = Err(StoreError::NotFound("row"));
        breaker
            .record(Admitted { started: 0 }, &not_found, no_check)
            .await;
        assert!(!breaker.is_open(), "the server answered");
    }

    #[tokio::test]
    async fn after_the_cooldown_one_call_goes_through_at_a_time() {
        let breaker = Breaker::new();
        let call = breaker.admit().unwrap();
        breaker.record(call, &refused(), || ready(false)).await;
        // As if the cooldown had passed.
        breaker.open_until.store(1, Ordering::Release);
        std::thread::sleep(Duration::from_millis(2));
        let trying = breaker.admit().expect("the call that tries");
        assert!(matches!(breaker.admit(), Err(StoreError::Down)));
        breaker
            .record(trying, &pool_timeout(), || ready(false))
            .await;
        assert!(matches!(breaker.admit(), Err(StoreError::Down)));
    }

    #[tokio::test]
    async fn one_check_at_a_time_and_an_abandoned_check_does_not_block_the_next() {
        let breaker = Breaker::new();
        let call = breaker.admit().unwrap();
        // The caller gives up while the check hangs.
        let abandoned = tokio::time::timeout(
            Duration::from_millis(20),
            breaker.record(call, &refused(), pending::<bool>),
        )
        .await;
        assert!(abandoned.is_err());
        assert!(!breaker.is_open());
        let call = breaker.admit().unwrap();
        breaker.record(call, &refused(), || ready(false)).await;
        assert!(breaker.is_open(), "the next failure was checked");
    }
}
