//! Request throttling: a fixed window counter per key — a client address for the login
//! forms, also an email address for password reset mail. The map is pruned as windows
//! expire, so it cannot grow without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct Throttle<K = IpAddr> {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq> Throttle<K> {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Throttle {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request; `Err(retry_after_secs)` when over the limit.
    pub(crate) fn check(&self, key: K) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.limit {
            let retry = self
                .window
                .saturating_sub(now.duration_since(entry.0))
                .as_secs()
                .max(1);
            return Err(retry);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address() {
        let throttle = Throttle::new(2, Duration::from_secs(60));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(throttle.check(a).is_ok());
        assert!(throttle.check(a).is_ok());
        let retry = throttle.check(a).unwrap_err();
        assert!((1..=60).contains(&retry));
        assert!(throttle.check(b).is_ok());
    }
}
