//! The key ring: signing keys loaded once from the store, the JWKS rendered once per
//! change, and the lifecycle operations (first-start generation, rotation).
//!
//! The JWKS publishes what Auth0 publishes by default — the RS256 keys, each with a
//! self-signed certificate (`x5c`, `x5t`) — and an algorithm's other keys (ES256, EdDSA)
//! only while an API is set to sign with it: verifiers that read every key as RSA
//! (auth0-python) then work against a tenant that uses RS256 alone. Every key stays good
//! for verifying our own tokens.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tessera_jose::{
    Algorithm, JoseError, Jwks, MasterKey, SigningKey, VerifyingKey, self_signed_rsa,
};
use tessera_store::{KeyState, SigningKeyRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid}: {source}")]
    Key { kid: String, source: JoseError },
    #[error("no current signing key for {0}")]
    NoCurrentKey(Algorithm),
}

/// An immutable snapshot of the published keys.
pub struct KeySet {
    /// The key each algorithm signs with now.
    current: HashMap<Algorithm, Arc<SigningKey>>,
    /// Every published key by kid, for verifying our own tokens (userinfo, id_token_hint).
    verifying: HashMap<String, VerifyingKey>,
    /// The JWKS document, serialized once.
    jwks_json: Arc<str>,
    /// The algorithms whose keys the JWKS lists: the ID tokens' first, then those APIs
    /// sign with.
    published_algorithms: Vec<&'static str>,
    /// What `version` returned when this snapshot was read.
    version: String,
    /// (algorithm, state, how many) of the keys held, for the metrics.
    state_counts: Vec<(&'static str, &'static str, u64)>,
}

impl KeySet {
    pub fn current(&self, alg: Algorithm) -> Option<&Arc<SigningKey>> {
        self.current.get(&alg)
    }

    pub fn verifying_key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }

    pub fn jwks_json(&self) -> Arc<str> {
        self.jwks_json.clone()
    }

    /// The algorithms whose keys the JWKS lists, the ID tokens' first.
    pub fn published_algorithms(&self) -> &[&'static str] {
        &self.published_algorithms
    }

    /// (algorithm, state, how many) of the keys held.
    pub fn state_counts(&self) -> &[(&'static str, &'static str, u64)] {
        &self.state_counts
    }
}

/// Shared, swappable key set. Readers clone an `Arc` and never hold the lock across work.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<RwLock<Arc<KeySet>>>,
}

impl KeyRing {
    pub fn new(set: KeySet) -> Self {
        KeyRing {
            inner: Arc::new(RwLock::new(Arc::new(set))),
        }
    }

    pub fn snapshot(&self) -> Arc<KeySet> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn replace(&self, set: KeySet) {
        *self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
    }

    /// Reloads from the store when another process (the CLI, another node) changed the
    /// keys or the algorithms APIs sign with. Returns whether anything changed.
    pub async fn refresh(&self, store: &Store, master: &MasterKey) -> Result<bool, KeyError> {
        let version = version(store).await?;
        if version.0 == self.snapshot().version {
            return Ok(false);
        }
        self.replace(build(store, master, version).await?);
        Ok(true)
    }
}

/// What a key set is built from, in one string: the keys not retired with their states,
/// and the algorithms APIs sign with (which decide what the JWKS publishes).
struct Version(String, Vec<Algorithm>);

async fn version(store: &Store) -> Result<Version, KeyError> {
    let keys = store.key_set_version().await?;
    let in_use = store.signing_algorithms_in_use().await?;
    // An unknown name cannot be stored (the Management API and the CLI check it); it
    // would publish nothing more.
    let algorithms = in_use
        .iter()
        .filter_map(|name| Algorithm::parse(name).ok())
        .collect();
    Ok(Version(format!("{keys}|{}", in_use.join(",")), algorithms))
}

fn sealed_record(
    key: &SigningKey,
    pkcs8: &[u8],
    state: KeyState,
    master: &MasterKey,
    now: i64,
) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: key.kid().to_string(),
        alg: key.alg().as_str().to_string(),
        state,
        sealed_private_key: master.seal(pkcs8, key.kid().as_bytes()),
        created_at: now,
        updated_at: now,
    }
}

async fn generate_record(
    alg: Algorithm,
    state: KeyState,
    master: &MasterKey,
    now: i64,
) -> Result<SigningKeyRecord, KeyError> {
    let master = master.clone();
    // RSA key generation takes tens of milliseconds: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let (key, pkcs8) = SigningKey::generate(alg).map_err(|source| KeyError::Key {
            kid: "(new)".into(),
            source,
        })?;
        Ok(sealed_record(&key, &pkcs8, state, &master, now))
    })
    .await
    .expect("key generation does not panic")
}

/// On first start (or when an algorithm was never used), creates a current and a next
/// key for every supported algorithm. Idempotent and safe to race.
pub async fn ensure_signing_keys(
    store: &Store,
    master: &MasterKey,
    now: i64,
) -> Result<usize, KeyError> {
    let existing = store.published_keys().await?;
    let mut missing = Vec::new();
    for alg in Algorithm::ALL {
        for state in [KeyState::Current, KeyState::Next] {
            let present = existing
                .iter()
                .any(|k| k.alg == alg.as_str() && k.state == state);
            if !present {
                missing.push(generate_record(alg, state, master, now).await?);
            }
        }
    }
    if missing.is_empty() {
        return Ok(0);
    }
    Ok(store.insert_keys_if_missing(&missing).await?)
}

/// next → current, current → previous, previous → retired, and a new next.
/// Returns the kid of the new next key.
pub async fn rotate(
    store: &Store,
    master: &MasterKey,
    alg: Algorithm,
    now: i64,
) -> Result<String, KeyError> {
    let record = generate_record(alg, KeyState::Next, master, now).await?;
    store.rotate_keys(alg.as_str(), &record, now).await?;
    Ok(record.kid)
}

/// Reads, decrypts and parses every published key. A key that fails to decrypt means
/// the master key is wrong: that is an error, not something to skip.
pub async fn load_key_set(store: &Store, master: &MasterKey) -> Result<KeySet, KeyError> {
    build(store, master, version(store).await?).await
}

async fn build(store: &Store, master: &MasterKey, version: Version) -> Result<KeySet, KeyError> {
    let records = store.published_keys().await?;
    let master = master.clone();
    tokio::task::spawn_blocking(move || build_key_set(records, &master, version))
        .await
        .expect("key parsing does not panic")
}

/// Whether the JWKS lists keys of `alg`: the ID tokens' algorithm always, another
/// algorithm while an API signs with it.
fn publishes(alg: Algorithm, in_use: &[Algorithm]) -> bool {
    alg.as_str() == tessera_core::claims::ID_TOKEN_ALG || in_use.contains(&alg)
}

fn build_key_set(
    records: Vec<SigningKeyRecord>,
    master: &MasterKey,
    Version(version, in_use): Version,
) -> Result<KeySet, KeyError> {
    let mut current = HashMap::new();
    let mut verifying = HashMap::new();
    let mut published = Vec::new();
    let mut state_counts: Vec<(&'static str, &'static str, u64)> = Vec::new();
    for record in records {
        let wrap = |source| KeyError::Key {
            kid: record.kid.clone(),
            source,
        };
        let alg = Algorithm::parse(&record.alg).map_err(wrap)?;
        let labels = (alg.as_str(), record.state.as_str());
        match state_counts.iter_mut().find(|(a, s, _)| (*a, *s) == labels) {
            Some((_, _, count)) => *count += 1,
            None => state_counts.push((labels.0, labels.1, 1)),
        }
        let pkcs8 = master
            .open(&record.sealed_private_key, record.kid.as_bytes())
            .map_err(wrap)?;
        let key = SigningKey::from_pkcs8(alg, &pkcs8).map_err(wrap)?;
        verifying.insert(record.kid.clone(), key.verifying_key().map_err(wrap)?);
        // Current keys first, then next, then previous: verifiers that pick the first
        // matching key (old jwks-rsa) find the one in use.
        let rank = match record.state {
            KeyState::Current => 0,
            KeyState::Next => 1,
            _ => 2,
        };
        if publishes(alg, &in_use) {
            let jwk = key.public_jwk().clone();
            let jwk = match alg {
                Algorithm::Rs256 => {
                    jwk.with_certificate(&self_signed_rsa(&pkcs8, record.created_at).map_err(wrap)?)
                }
                _ => jwk,
            };
            published.push((rank, alg, jwk));
        }
        if record.state == KeyState::Current {
            current.insert(alg, Arc::new(key));
        }
    }
    if !current.contains_key(&Algorithm::Rs256) {
        return Err(KeyError::NoCurrentKey(Algorithm::Rs256));
    }
    state_counts.sort_unstable();
    published.sort_by_key(|(rank, alg, _)| (*rank, *alg != Algorithm::Rs256));
    let jwks = Jwks {
        keys: published.into_iter().map(|(_, _, jwk)| jwk).collect(),
    };
    let jwks_json: Arc<str> = serde_json::to_string(&jwks)
        .expect("a JWKS serializes")
        .into();
    let mut published_algorithms: Vec<&'static str> = Algorithm::ALL
        .into_iter()
        .filter(|alg| publishes(*alg, &in_use))
        .map(Algorithm::as_str)
        .collect();
    published_algorithms.sort_by_key(|alg| *alg != tessera_core::claims::ID_TOKEN_ALG);
    Ok(KeySet {
        current,
        verifying,
        jwks_json,
        published_algorithms,
        version,
        state_counts,
    })
}
