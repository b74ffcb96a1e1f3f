//! Where verification keys come from: a fixed set, or the issuer's `jwks_uri` behind a
//! cache.
//!
//! The cache is a `RwLock<Arc<Snapshot>>` that is only ever held for a pointer copy or a
//! pointer swap, never across a fetch. Fetches run in a spawned task ("flight"); at most
//! one is in the air, and callers that need its result wait on a `watch` channel, so a
//! cancelled request cannot strand a refresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tessera_jose::{Jwk, VerifyingKey};
use tokio::sync::watch;

use crate::error::JwksError;

/// Responses from the discovery and JWKS endpoints larger than this are refused.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Verification keys, parsed once per JWKS document. `kid` is only ever a map key.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, VerifyingKey>,
    anonymous: Vec<VerifyingKey>,
}

impl KeySet {
    /// Keeps the keys we can verify with: `use` absent or `sig`, a supported asymmetric
    /// key type whose declared `alg` (if any) matches it. Symmetric (`oct`) keys and keys
    /// we cannot parse are skipped. For a duplicated `kid` the first key wins.
    pub(crate) fn from_jwks<'a>(keys: impl IntoIterator<Item = &'a Jwk>) -> KeySet {
        let mut set = KeySet::default();
        for jwk in keys {
            if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            let key = match VerifyingKey::from_jwk(jwk) {
                Ok(key) => key,
                Err(error) => {
                    tracing::debug!(kid = ?jwk.kid, %error, "skipping JWKS key");
                    continue;
                }
            };
            match &jwk.kid {
                Some(kid) if set.by_kid.contains_key(kid) => {
                    tracing::warn!(%kid, "duplicate kid in JWKS; keeping the first key");
                }
                Some(kid) => {
                    set.by_kid.insert(kid.clone(), key);
                }
                None => set.anonymous.push(key),
            }
        }
        set
    }

    /// Parses a JWKS document leniently per key: one malformed key does not discard the
    /// others.
    fn from_document(bytes: &[u8]) -> Result<KeySet, JwksError> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(bytes).map_err(|_| JwksError::InvalidDocument("JWKS"))?;
        let jwks: Vec<Jwk> = document
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value(value).ok())
            .collect();
        let set = KeySet::from_jwks(&jwks);
        if set.is_empty() {
            return Err(JwksError::NoUsableKeys);
        }
        Ok(set)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_kid.len() + self.anonymous.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.by_kid.get(kid)
    }

    /// The key to use for a token without `kid`: only when the set holds exactly one.
    pub(crate) fn only(&self) -> Option<&VerifyingKey> {
        if self.len() != 1 {
            return None;
        }
        self.by_kid.values().next().or(self.anonymous.first())
    }
}

/// Timings of the remote key cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// At most one fetch per this period for each [`Reason`] (explicit refreshes aside).
    pub(crate) cooldown: Duration,
    /// Keys older than this are refreshed in the background (requests do not wait).
    pub(crate) refresh_interval: Duration,
    /// Keys older than this are no longer used at all (fail closed).
    pub(crate) max_stale: Duration,
    /// Bound of each HTTP request (connect + response).
    pub(crate) http_timeout: Duration,
}

/// One published generation of keys.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    keys: KeySet,
    /// When these keys were fetched; `None` before the first successful fetch.
    fetched_at: Option<Instant>,
}

/// Why a fetch is wanted. Each reason has its own cooldown clock, so a scheduled refresh
/// or the first load never delays the refetch a rotation needs, while each kind of
/// trigger — in particular tokens with unknown `kid`s, which anyone can send — causes at
/// most one fetch per cooldown.
#[derive(Debug, Clone, Copy)]
enum Reason {
    /// No usable keys (never fetched, or older than max-stale).
    Load = 0,
    /// A token names a `kid` the current keys do not have.
    UnknownKid = 1,
    /// The keys are older than the refresh interval.
    Scheduled = 2,
    /// [`RemoteKeys::refresh`]: not rate-limited.
    Explicit = 3,
}

#[derive(Debug, Default)]
struct Flight {
    running: bool,
    last_attempt: [Option<Instant>; 3],
    last_outcome: Option<Result<usize, JwksError>>,
}

enum Start {
    Started,
    AlreadyRunning,
    CoolingDown,
    NoRuntime,
}

/// Keys discovered from `<issuer>.well-known/openid-configuration` (or a configured
/// `jwks_uri`) and cached.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    client: reqwest::Client,
    issuer: String,
    discovery_url: String,
    jwks_uri: RwLock<Option<Arc<str>>>,
    snapshot: RwLock<Arc<Snapshot>>,
    flight: Mutex<Flight>,
    done: watch::Sender<u64>,
    timing: Timing,
}

impl RemoteKeys {
    pub(crate) fn new(
        client: reqwest::Client,
        issuer: &str,
        jwks_uri: Option<String>,
        timing: Timing,
    ) -> RemoteKeys {
        RemoteKeys {
            client,
            issuer: issuer.to_owned(),
            discovery_url: format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
            jwks_uri: RwLock::new(jwks_uri.map(Arc::from)),
            snapshot: RwLock::new(Arc::default()),
            flight: Mutex::default(),
            done: watch::Sender::new(0),
            timing,
        }
    }

    /// The current keys, and a background refresh if they are older than the refresh
    /// interval.
    pub(crate) fn current(self: &Arc<Self>) -> Arc<Snapshot> {
        let snapshot = self.load();
        if snapshot
            .fetched_at
            .is_some_and(|at| at.elapsed() >= self.timing.refresh_interval)
        {
            let _ = self.start(Reason::Scheduled);
        }
        snapshot
    }

    /// The keys of `snapshot` if they may still be used (fetched, and not older than
    /// max-stale).
    pub(crate) fn usable<'a>(&self, snapshot: &'a Snapshot) -> Option<&'a KeySet> {
        snapshot
            .fetched_at
            .filter(|at| at.elapsed() <= self.timing.max_stale)
            .map(|_| &snapshot.keys)
    }

    /// Called when `seen` did not have the key a token asked for (or had no usable keys):
    /// refetches unless another caller already did, one is in flight (then waits for it),
    /// or the cooldown forbids it.
    pub(crate) async fn refetch_after_miss(
        self: &Arc<Self>,
        seen: &Arc<Snapshot>,
    ) -> Arc<Snapshot> {
        let receiver = self.done.subscribe();
        let current = self.load();
        if !Arc::ptr_eq(&current, seen) {
            return current;
        }
        let reason = if self.usable(seen).is_some() {
            Reason::UnknownKid
        } else {
            Reason::Load
        };
        match self.start(reason) {
            Start::Started | Start::AlreadyRunning => self.wait(receiver).await,
            Start::CoolingDown | Start::NoRuntime => {}
        }
        self.load()
    }

    /// Fetches now, ignoring the cooldown (joins a fetch already in flight).
    pub(crate) async fn refresh(self: &Arc<Self>) -> Result<usize, JwksError> {
        let receiver = self.done.subscribe();
        match self.start(Reason::Explicit) {
            Start::Started | Start::AlreadyRunning => self.wait(receiver).await,
            Start::NoRuntime => return Err(JwksError::NoRuntime),
            Start::CoolingDown => {}
        }
        lock(&self.flight)
            .last_outcome
            .clone()
            .unwrap_or(Err(JwksError::Timeout))
    }

    fn load(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Upper bound of one flight: discovery plus JWKS, each bounded by the HTTP timeout.
    fn flight_budget(&self) -> Duration {
        self.timing.http_timeout * 2 + Duration::from_millis(500)
    }

    async fn wait(&self, mut receiver: watch::Receiver<u64>) {
        let _ = tokio::time::timeout(self.flight_budget(), receiver.changed()).await;
    }

    fn start(self: &Arc<Self>, reason: Reason) -> Start {
        let mut flight = lock(&self.flight);
        if flight.running {
            return Start::AlreadyRunning;
        }
        let clock = flight.last_attempt.get_mut(reason as usize);
        if let Some(Some(at)) = &clock
            && at.elapsed() < self.timing.cooldown
        {
            return Start::CoolingDown;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Start::NoRuntime;
        };
        if let Some(clock) = clock {
            *clock = Some(Instant::now());
        }
        flight.running = true;
        drop(flight);
        runtime.spawn(Arc::clone(self).fly());
        Start::Started
    }

    async fn fly(self: Arc<Self>) {
        let mut landing = Landing {
            remote: &self,
            outcome: None,
        };
        let outcome = match tokio::time::timeout(self.flight_budget(), self.fetch()).await {
            Ok(Ok(keys)) => {
                let count = keys.len();
                let snapshot = Arc::new(Snapshot {
                    keys,
                    fetched_at: Some(Instant::now()),
                });
                *self
                    .snapshot
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = snapshot;
                tracing::debug!(keys = count, "JWKS refreshed");
                Ok(count)
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(JwksError::Timeout),
        };
        if let Err(error) = &outcome {
            tracing::warn!(%error, issuer = %self.issuer, "JWKS refresh failed; keeping the last good keys");
        }
        landing.outcome = Some(outcome);
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        let known = self
            .jwks_uri
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let jwks_uri = match known {
            Some(uri) => uri,
            None => {
                let uri = self.discover().await?;
                *self
                    .jwks_uri
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&uri));
                uri
            }
        };
        KeySet::from_document(&self.get(&jwks_uri).await?)
    }

    async fn discover(&self) -> Result<Arc<str>, JwksError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let body = self.get(&self.discovery_url).await?;
        let document: Discovery =
            serde_json::from_slice(&body).map_err(|_| JwksError::InvalidDocument("discovery"))?;
        if document.issuer != self.issuer {
            return Err(JwksError::IssuerMismatch);
        }
        if !is_http_url(&document.jwks_uri) {
            return Err(JwksError::InvalidDocument("discovery"));
        }
        Ok(document.jwks_uri.into())
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, JwksError> {
        let http = |e: reqwest::Error| JwksError::Http(e.without_url().to_string());
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timing.http_timeout)
            .send()
            .await
            .map_err(http)?;
        if !response.status().is_success() {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(JwksError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(JwksError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Ends a flight even if its task is cancelled or panics: records the outcome, clears
/// `running` and wakes the waiters, in that order.
struct Landing<'a> {
    remote: &'a RemoteKeys,
    outcome: Option<Result<usize, JwksError>>,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        {
            let mut flight = lock(&self.remote.flight);
            flight.running = false;
            flight.last_outcome = Some(self.outcome.take().unwrap_or(Err(JwksError::Timeout)));
        }
        self.remote.done.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        !rest.is_empty() && !rest.starts_with('/') && !rest.contains(['#', ' '])
    })
}

#[cfg(test)]
mod tests {
    use tessera_jose::{Algorithm, SigningKey};

    use super::*;

    #[test]
    fn key_set_skips_symmetric_encryption_and_unparsable_keys() {
        let (rsa, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let good = serde_json::to_value(rsa.public_jwk()).unwrap();
        let mut enc = good.clone();
        enc["use"] = "enc".into();
        enc["kid"] = "enc-key".into();
        let document = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": 7},
            enc,
            good,
        ]});
        let set = KeySet::from_document(&serde_json::to_vec(&document).unwrap()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.get(rsa.kid()).is_some());
        assert!(set.get("hmac").is_none() && set.get("enc-key").is_none());
        assert!(set.only().is_some());

        let only_bad =
            serde_json::json!({"keys": [{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]});
        assert_eq!(
            KeySet::from_document(&serde_json::to_vec(&only_bad).unwrap()).unwrap_err(),
            JwksError::NoUsableKeys
        );
        assert_eq!(
            KeySet::from_document(b"<html>").unwrap_err(),
            JwksError::InvalidDocument("JWKS")
        );
    }

    #[test]
    fn http_urls_are_recognised() {
        assert!(is_http_url(
            "https://auth.example.com/.well-known/jwks.json"
        ));
        assert!(is_http_url("http://127.0.0.1:8080/"));
        assert!(!is_http_url("file:///etc/passwd"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https:///path"));
        assert!(!is_http_url("javascript:alert(1)"));
    }
}
