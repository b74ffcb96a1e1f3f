//! Cluster invalidation: how a node's in-memory copies of configuration stay true when
//! other nodes (or the CLI) change the database. The one place that decides what is
//! cached how long and what a change empties.
//!
//! What a node keeps in memory: the client-credentials grant's (client, API, grant)
//! reads (`cache::MachineAccessCache`), the applications, APIs, connections, tenant
//! settings and email provider the sign-in and token paths read (`cache::ConfigReads`),
//! the signing keys (`keys::KeyRing`), each
//! trigger's Actions and Rules (`actions::Programs`) and the upstream providers
//! (`upstream::Upstreams`, which re-read the connection row on each use and compare its
//! `updated_at`). Sessions, codes, refresh tokens and lockout counts are never cached:
//! they are read from the database on each use, so any node serves any request.
//!
//! On PostgreSQL (shared by several nodes) every committed write to a cached table
//! notifies (the trigger of migration 0032; `tessera_store::Invalidations`):
//! - a listener on a connection of its own drops what the change touched, at once;
//! - when that connection is lost it is made again, listening, and then everything is
//!   flushed: what was committed while nobody listened is read afresh;
//! - a backstop poll reads the `cache_generation` counter every
//!   `ServerConfig::invalidation_poll_interval` (5 s) and flushes everything when it
//!   moved by a change the listener did not hear of (a notification lost in any other
//!   way; one claiming a far generation stands for nothing else);
//! - entries still expire after [`LISTENED_LIFETIME`], in case all of that failed.
//!
//! So a change shows on every node within the notification's delivery (milliseconds),
//! and within the poll interval if notifications stop arriving.
//!
//! On SQLite there is one server; only the CLI (or another process) writes beside it, and
//! nothing notifies. The same triggers bump the counter (migration 0037). The store's writer
//! sees the bump as its statements make it (an update hook), and moves what it saw after
//! the commit, before answering the writers; this module polls the counter every
//! [`ALONE_POLL_INTERVAL`] for other processes' writes; the client-credentials reads
//! and the applications, APIs and tenant settings compare it on every read
//! (`Store::cache_generation_seen`, an atomic load) and empty themselves when it moved. So
//! this process's own writes show at once, and the CLI's within half a second. The
//! programs live a second, and the key set is polled every `key_poll_interval`.
//!
//! A node's own Management API writes also empty what they touched at once
//! (`AppState::forget_client`, `forget_apis`, `forget_connection`, `forget_tenant`), before
//! the answer: the notification that follows only repeats it.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use tessera_store::{Changed, Heard, Store};

use crate::AppState;

/// How long cached configuration lives when a listener keeps it fresh.
pub(crate) const LISTENED_LIFETIME: Duration = Duration::from_secs(60);

/// How often a server on SQLite reads the counter that other processes' writes move.
pub(crate) const ALONE_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long a failed listener waits before connecting again.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

/// At most this many generations heard between two polls are remembered; beyond, the
/// next poll flushes (as if some had not been heard).
const MAX_HEARD: usize = 10_000;

/// What the listener heard since the poll last read the counter. The poll flushes unless
/// it heard of every generation in between, one by one: a notification that claims a far
/// generation (anyone who may NOTIFY on the database can send one) never stands for
/// others, so it cannot switch the backstop off.
#[derive(Default)]
struct Ledger {
    /// The counter at the poll's last read; `None` before the first.
    read: Option<i64>,
    heard: BTreeSet<i64>,
}

impl Ledger {
    fn heard(&mut self, generation: i64) {
        if self.read.is_none_or(|read| generation > read) && self.heard.len() < MAX_HEARD {
            self.heard.insert(generation);
        }
    }

    /// The counter read now: whether something committed since the last read was not
    /// heard of (or the counter went back: a restored database).
    fn missed_any(&mut self, now: i64) -> bool {
        let missed = match self.read {
            // Nothing was cached before the listener's first flush that it did not empty.
            None => false,
            Some(read) if now == read => false,
            Some(read) if now < read => true,
            Some(read) => {
                now - read > MAX_HEARD as i64 || (read + 1..=now).any(|g| !self.heard.contains(&g))
            }
        };
        self.read = Some(now);
        self.heard.retain(|&g| g > now);
        missed
    }
}

/// How long each cache keeps what it read, by backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    /// The client-credentials grant's (client, API, grant).
    pub(crate) machine_access: Duration,
    /// Applications, APIs and tenant settings as the sign-in and token paths read them.
    pub(crate) config_reads: Duration,
    /// A trigger's deployed Actions and Rules.
    pub(crate) programs: Duration,
    /// How often the key set is compared with the database's.
    pub(crate) key_poll: Duration,
}

pub(crate) fn lifetimes(store: &Store, key_poll_interval: Duration) -> Lifetimes {
    if store.is_shared() {
        Lifetimes {
            machine_access: LISTENED_LIFETIME,
            config_reads: LISTENED_LIFETIME,
            programs: LISTENED_LIFETIME,
            key_poll: LISTENED_LIFETIME,
        }
    } else {
        Lifetimes {
            // Both compare the counter on every read.
            machine_access: LISTENED_LIFETIME,
            config_reads: LISTENED_LIFETIME,
            programs: Duration::from_secs(1),
            key_poll: key_poll_interval,
        }
    }
}

/// Keeps this node's caches coherent with the database. Runs until dropped.
pub(crate) async fn keep_coherent(state: AppState) {
    if !state.store().is_shared() {
        return poll_alone(&state).await;
    }
    let ledger = Mutex::new(Ledger::default());
    tokio::join!(listen(&state, &ledger), poll(&state, &ledger));
}

/// SQLite: reads the counter, which records it for the caches to compare
/// (`Store::cache_generation_seen`): what another process wrote empties them.
async fn poll_alone(state: &AppState) {
    let mut tick = tokio::time::interval(ALONE_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = state.store().cache_generation().await {
            tracing::debug!(%error, "cannot read the cache generation");
        }
    }
}

/// Applies each notification as it comes; flushes everything when the connection was
/// lost or cannot be made.
async fn listen(state: &AppState, ledger: &Mutex<Ledger>) {
    loop {
        let mut listener = match state.store().invalidations().await {
            Ok(Some(listener)) => listener,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for cache invalidations; retrying");
                flush(state).await;
                tokio::time::sleep(RELISTEN_DELAY).await;
                continue;
            }
        };
        // Listening now: whatever was committed before is read afresh from here on.
        flush(state).await;
        loop {
            match listener.next().await {
                Ok(Heard::Change {
                    changed,
                    generation,
                }) => {
                    apply(state, changed).await;
                    lock(ledger).heard(generation);
                }
                Ok(Heard::Lost) => {
                    // Listening again already (sqlx reconnects before saying so).
                    tracing::warn!("lost the cache invalidation connection; flushed the caches");
                    flush(state).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cache invalidation listener failed; flushed the caches");
                    flush(state).await;
                    break;
                }
            }
        }
        tokio::time::sleep(RELISTEN_DELAY).await;
    }
}

/// The backstop: reads the generation counter and flushes everything when it moved by a
/// change the listener did not hear of.
async fn poll(state: &AppState, ledger: &Mutex<Ledger>) {
    let mut tick = tokio::time::interval(state.config().invalidation_poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.store().cache_generation().await {
            Ok(generation) => {
                let missed = lock(ledger).missed_any(generation);
                if missed {
                    tracing::info!(
                        generation,
                        "a cache invalidation was not heard; flushed the caches"
                    );
                    flush(state).await;
                }
            }
            Err(error) => tracing::debug!(%error, "cannot read the cache generation"),
        }
    }
}

/// Drops what one committed change touched.
async fn apply(state: &AppState, changed: Changed) {
    match changed {
        Changed::Client(client_id) => state.forget_client(&client_id),
        Changed::ResourceServer(_) => {
            // Cached by audience, for every client; and the API's signing algorithm
            // decides what the JWKS publishes.
            state.forget_apis();
            state.reload_keys().await;
        }
        Changed::SigningKey(_) => state.reload_keys().await,
        Changed::Connection(id) => state.forget_connection(&id),
        Changed::Actions | Changed::Rules => state.action_programs().forget(),
        Changed::Tenant => state.forget_tenant(),
        Changed::Other(kind) => {
            tracing::debug!(kind, "a change to a table this build does not cache");
            flush(state).await;
        }
    }
}

/// Drops everything cached from configuration, and reloads the key set.
async fn flush(state: &AppState) {
    state.machine_access().clear();
    state.config_reads().clear();
    state.action_programs().forget();
    state.upstreams().forget_all();
    state.reload_keys().await;
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_flushes_unless_every_generation_was_heard() {
        let mut ledger = Ledger::default();
        ledger.heard(3);
        assert!(
            !ledger.missed_any(5),
            "the first read only says where we are"
        );
        assert!(!ledger.missed_any(5));
        ledger.heard(6);
        ledger.heard(7);
        assert!(!ledger.missed_any(7), "both heard");
        ledger.heard(9);
        assert!(ledger.missed_any(9), "8 was not heard");
        assert!(ledger.missed_any(8), "the counter went back");
        // A forged notification from far ahead stands for nothing else.
        ledger.heard(i64::MAX);
        assert!(ledger.missed_any(9), "9 was not heard");
        ledger.heard(5);
        ledger.heard(10);
        assert!(
            !ledger.missed_any(10),
            "an old generation is ignored, 10 heard"
        );
        assert!(
            ledger.missed_any(10 + MAX_HEARD as i64 + 1),
            "too far to have heard all"
        );
    }
}
