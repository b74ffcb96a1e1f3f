//! A circuit breaker in front of PostgreSQL. While the database is down, every call
//! would wait out the pool's acquire timeout (2 s) before failing; after one such failure
//! the breaker opens and calls fail at once with `StoreError::Down` (a 503 right away).
//! After a cooldown one call at a time goes through as a probe; the first success closes
//! the breaker again.
//!
//! Only outages open it (no connection, connection lost, server shutting down or starting
//! up) — not a lock conflict or a statement timeout, which concern one request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::StoreError;
use crate::backend::POSTGRES_ACQUIRE_TIMEOUT;

/// How long calls fail fast after an outage was seen, before the next probe.
const COOLDOWN: Duration = Duration::from_millis(500);

pub(crate) struct Breaker {
    origin: Instant,
    /// Milliseconds since `origin` until which calls fail fast; 0 = closed.
    open_until: AtomicU64,
}

impl Breaker {
    pub(crate) fn new() -> Breaker {
        Breaker {
            origin: Instant::now(),
            open_until: AtomicU64::new(0),
        }
    }

    /// Whether a call may go to the database now.
    pub(crate) fn admit(&self) -> Result<(), StoreError> {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Ok(());
        }
        let now = self.now_ms();
        if now < until {
            return Err(StoreError::Down);
        }
        // Cooldown over: this caller is the probe. The others keep failing fast for as
        // long as a probe can take.
        let probing = now + millis(POSTGRES_ACQUIRE_TIMEOUT) + millis(COOLDOWN);
        match self
            .open_until
            .compare_exchange(until, probing, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(_) => Err(StoreError::Down),
        }
    }

    /// Whether calls are failing fast now (for monitoring).
    pub(crate) fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) != 0
    }

    /// Learns from the outcome of an admitted call. `pool_is_empty`: the pool holds no
    /// connection at all, so a pool timeout means the server cannot be reached (with
    /// connections in it, the pool was only busy).
    pub(crate) fn record<T>(&self, result: &Result<T, StoreError>, pool_is_empty: bool) {
        match result {
            Err(error) if error.is_outage(pool_is_empty) => {
                let until = self.now_ms() + millis(COOLDOWN);
                self.open_until.store(until.max(1), Ordering::Release);
            }
            _ => {
                if self.open_until.load(Ordering::Relaxed) != 0 {
                    self.open_until.store(0, Ordering::Release);
                }
            }
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.origin.elapsed())
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outage() -> Result<(), StoreError> {
        Err(StoreError::Unavailable(sqlx::Error::Io(
            std::io::ErrorKind::ConnectionRefused.into(),
        )))
    }

    #[test]
    fn an_outage_opens_it_and_a_success_closes_it() {
        let breaker = Breaker::new();
        breaker.admit().unwrap();
        breaker.record(&outage(), true);
        assert!(breaker.is_open());
        assert!(matches!(breaker.admit(), Err(StoreError::Down)));
        breaker.record(&Ok(()), false);
        assert!(!breaker.is_open());
        breaker.admit().unwrap();
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_through_at_a_time() {
        let breaker = Breaker::new();
        breaker.record(&outage(), true);
        // As if the cooldown had passed.
        breaker.open_until.store(1, Ordering::Release);
        std::thread::sleep(Duration::from_millis(2));
        breaker.admit().expect("the probe");
        assert!(matches!(breaker.admit(), Err(StoreError::Down)));
        breaker.record(&outage(), true);
        assert!(matches!(breaker.admit(), Err(StoreError::Down)));
    }

    #[test]
    fn conflicts_and_a_busy_pool_are_not_outages() {
        let breaker = Breaker::new();
        breaker.record::<()>(&Err(StoreError::Conflict("row")), true);
        breaker.admit().unwrap();
        breaker.record::<()>(
            &Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
            false,
        );
        breaker.admit().unwrap();
        breaker.record::<()>(
            &Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
            true,
        );
        assert!(matches!(breaker.admit(), Err(StoreError::Down)));
    }
}
