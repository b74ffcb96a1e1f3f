//! A short-lived cache of what the client-credentials grant reads (client, API, grant),
//! so the hot path of machine-to-machine issuance skips the database. Entries live
//! `ttl` (half a second): changes made by the CLI still show within a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_store::{MachineAccess, Store, StoreError};

/// At most this many (client, audience) pairs are kept; beyond it the map is cleared.
const MAX_ENTRIES: usize = 4096;

/// (client_id, audience) → when it was read, and what.
type Entries = HashMap<(String, String), (Instant, Arc<MachineAccess>)>;

pub(crate) struct MachineAccessCache {
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl MachineAccessCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        MachineAccessCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) async fn get(
        &self,
        store: &Store,
        client_id: &str,
        audience: &str,
    ) -> Result<Option<Arc<MachineAccess>>, StoreError> {
        let key = (client_id.to_string(), audience.to_string());
        if let Some((fetched, value)) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && fetched.elapsed() < self.ttl
        {
            return Ok(Some(value.clone()));
        }
        let value = store
            .machine_access(client_id, audience)
            .await?
            .map(Arc::new);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        // Unknown clients are not cached: the map must not fill with attacker-chosen ids.
        if let Some(value) = &value {
            entries.insert(key, (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// Forgets what was read for `client_id` (its secret was rotated, it was deleted, or
    /// one of its grants changed): the next request reads the store.
    pub(crate) fn forget_client(&self, client_id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(client, _), _| client != client_id);
    }

    /// Forgets everything (an API was changed or deleted).
    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Which applications users have signed in through, as far as this process knows: the
/// first sign-in through each is written once (`Store::record_client_login`), later ones
/// write nothing. Feeds the dashboard's "log in with the sample" step.
#[derive(Default)]
pub(crate) struct FirstLogins {
    known: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Applications remembered at most: beyond, a sign-in is recorded again (a write that
/// changes nothing) rather than memory growing with the number of applications.
const MAX_KNOWN_LOGINS: usize = 10_000;

impl FirstLogins {
    pub(crate) async fn note(&self, store: &Store, client_id: &str) {
        if self
            .known
            .lock()
            .expect("first-logins lock")
            .contains(client_id)
        {
            return;
        }
        match store
            .record_client_login(client_id, crate::clock::now())
            .await
        {
            Ok(()) => {
                let mut known = self.known.lock().expect("first-logins lock");
                if known.len() < MAX_KNOWN_LOGINS {
                    known.insert(client_id.to_string());
                }
            }
            // Only the checklist would miss it; the sign-in goes on.
            Err(error) => tracing::warn!(%error, "could not record an application's first sign-in"),
        }
    }
}
