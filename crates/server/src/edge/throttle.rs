//! Request throttling: a fixed window counter per key — a client network for the login
//! forms, also an email address for password reset mail. The map is pruned as windows
//! expire, so it cannot grow without bound. Both are also counted in the database where
//! several nodes share one ([`ClusterThrottle`]): behind a round-robin balancer each node
//! alone would let a client try as many times again as there are nodes.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tessera_store::Store;

pub(crate) struct Throttle<K = IpAddr> {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

/// What throttles and lockouts count by for a client address: an IPv4 address, or the /64
/// an IPv6 address is in. One subscriber usually holds a whole /64, so counting single IPv6
/// addresses would give each of its 2^64 addresses a fresh budget.
pub(crate) fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// A throttle's key as it is counted: client addresses by their network.
pub(crate) trait ThrottleKey: Hash + Eq + Clone {
    fn counted_as(self) -> Self;
    /// The key as the database keeps it for [`ClusterThrottle`] (of a counted key).
    fn stored_as(&self) -> String;
}

impl ThrottleKey for IpAddr {
    fn counted_as(self) -> Self {
        network_of(self)
    }

    fn stored_as(&self) -> String {
        self.to_string()
    }
}

/// Email addresses (the reset mail's throttle): kept in the database as their SHA-256,
/// so the throttle's table holds no address.
impl ThrottleKey for String {
    fn counted_as(self) -> Self {
        self
    }

    fn stored_as(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(tessera_core::ids::secret_hash(self))
    }
}

impl<K: ThrottleKey> Throttle<K> {
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
        let entry = windows.entry(key.counted_as()).or_insert((now, 0));
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

/// A throttle counted on this node and — where nodes share a PostgreSQL database — by all
/// of them together in it (`Store::count_attempt`). This node's count comes first: a key
/// over the limit here is over it everywhere, and is refused without a write.
pub(crate) struct ClusterThrottle<K = IpAddr> {
    here: Throttle<K>,
    /// The store all nodes count in, and what this throttle is there; `None` on SQLite,
    /// whose one node counts alone.
    shared: Option<(Store, &'static str)>,
}

impl<K: ThrottleKey> ClusterThrottle<K> {
    pub(crate) fn new(limit: u32, window: Duration, store: &Store, kind: &'static str) -> Self {
        ClusterThrottle {
            here: Throttle::new(limit, window),
            shared: store.is_shared().then(|| (store.clone(), kind)),
        }
    }

    /// Counts one request of `key` (a client address: its network); `Err(retry_after_secs)`
    /// when it is over the limit on this node or on all of them together.
    pub(crate) async fn check(&self, key: K) -> Result<(), u64> {
        let key = key.counted_as();
        self.here.check(key.clone())?;
        let Some((store, kind)) = &self.shared else {
            return Ok(());
        };
        let window = self.here.window.as_secs().max(1) as i64;
        let now = crate::clock::now();
        match store
            .count_attempt(kind, &key.stored_as(), window, now)
            .await
        {
            Ok(attempts) if attempts.count > i64::from(self.here.limit) => {
                Err((attempts.ends_at - now).clamp(1, window) as u64)
            }
            Ok(_) => Ok(()),
            // This node's count still holds; and what it guards needs the database anyway.
            Err(error) => {
                tracing::warn!(%error, "the cluster's throttle could not be counted; this node's holds");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address() {
        let throttle: Throttle<IpAddr> = Throttle::new(2, Duration::from_secs(60));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(throttle.check(a).is_ok());
        assert!(throttle.check(a).is_ok());
        let retry = throttle.check(a).unwrap_err();
        assert!((1..=60).contains(&retry));
        assert!(throttle.check(b).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let throttle: Throttle<IpAddr> = Throttle::new(2, Duration::from_secs(60));
        let in_one_64 = [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff::9",
            "2001:db8:1:2::abcd",
        ];
        assert!(throttle.check(in_one_64[0].parse().unwrap()).is_ok());
        assert!(throttle.check(in_one_64[1].parse().unwrap()).is_ok());
        assert!(throttle.check(in_one_64[2].parse().unwrap()).is_err());
        assert!(throttle.check("2001:db8:1:3::1".parse().unwrap()).is_ok());
        assert_eq!(
            network_of("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            network_of("2001:db8::1".parse().unwrap()),
            "2001:db8::".parse::<IpAddr>().unwrap()
        );
    }
}
