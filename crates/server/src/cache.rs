//! What the hot paths keep of configuration rows, and for how long (`cluster::Lifetimes`):
//! the client-credentials grant's (client, API, grant) reads, and the applications, APIs,
//! connections and tenant documents the sign-in and token paths read on every request. What
//! empties them is `cluster`'s business (and the Management API's, for its own writes);
//! here only how they are kept.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_core::{Client, Metadata, ResourceServer};
use tessera_store::{ConnectionRecord, EmailProvider, MachineAccess, Store, StoreError};

/// At most this many entries are kept in one map; beyond it the map is cleared.
const MAX_ENTRIES: usize = 4096;

/// Values read from the store, each kept `ttl`. A value read while something was forgotten
/// is not kept: the read may have seen the row before the change that emptied the map
/// (a token request's read racing an administrator's secret rotation), and keeping it
/// would bring the old row back until it expired.
struct Kept<K, V> {
    ttl: Duration,
    inner: Mutex<KeptInner<K, V>>,
}

struct KeptInner<K, V> {
    entries: HashMap<K, (Instant, Arc<V>)>,
    /// Moves on every forget: a read that started at another generation is not kept.
    generation: u64,
}

impl<K: Hash + Eq, V> Kept<K, V> {
    fn new(ttl: Duration) -> Self {
        Kept {
            ttl,
            inner: Mutex::new(KeptInner {
                entries: HashMap::new(),
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeptInner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value kept for `key`, if it is fresh.
    fn fresh(&self, key: &K) -> Option<Arc<V>> {
        self.lock()
            .entries
            .get(key)
            .filter(|(fetched, _)| fetched.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    /// Taken before reading the store: what that read finds is kept only if nothing was
    /// forgotten meanwhile.
    fn ticket(&self) -> u64 {
        self.lock().generation
    }

    fn keep(&self, key: K, value: Arc<V>, ticket: u64) {
        let mut inner = self.lock();
        if inner.generation != ticket {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(key, (Instant::now(), value));
    }

    fn forget_where(&self, matches: impl Fn(&K) -> bool) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.retain(|key, _| !matches(key));
    }

    fn clear(&self) {
        self.forget_where(|_| true);
    }

    /// The value for `key`: kept, or found by `read` (and kept then; what is not found is
    /// never kept, so the map cannot fill with attacker-chosen keys).
    async fn through(
        &self,
        key: K,
        read: impl Future<Output = Result<Option<V>, StoreError>>,
    ) -> Result<Option<Arc<V>>, StoreError> {
        if let Some(value) = self.fresh(&key) {
            return Ok(Some(value));
        }
        let ticket = self.ticket();
        let value = read.await?.map(Arc::new);
        if let Some(value) = &value {
            self.keep(key, value.clone(), ticket);
        }
        Ok(value)
    }
}

/// Whether the store saw a change to a cached table since the last look
/// (`Store::cache_generation_seen`: SQLite's own commits and the counter it polls; it never
/// moves on PostgreSQL, whose notifications empty the caches instead). One atomic load, so
/// every read of a cache looks: a write this process committed is never served stale by
/// its next request.
#[derive(Default)]
struct Generation(AtomicI64);

impl Generation {
    fn moved(&self, store: &Store) -> bool {
        let seen = store.cache_generation_seen();
        self.0.load(Ordering::Acquire) != seen && self.0.swap(seen, Ordering::AcqRel) != seen
    }
}

/// The client-credentials grant's (client, API, grant) reads, so machine-to-machine
/// issuance skips the database. Emptied by changes (`cluster`); entries expire too.
pub(crate) struct MachineAccessCache {
    kept: Kept<(String, String), MachineAccess>,
    generation: Generation,
}

impl MachineAccessCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        MachineAccessCache {
            kept: Kept::new(ttl),
            generation: Generation::default(),
        }
    }

    pub(crate) async fn get(
        &self,
        store: &Store,
        client_id: &str,
        audience: &str,
    ) -> Result<Option<Arc<MachineAccess>>, StoreError> {
        if self.generation.moved(store) {
            self.kept.clear();
        }
        let key = (client_id.to_string(), audience.to_string());
        self.kept
            .through(key, store.machine_access(client_id, audience))
            .await
    }

    /// Forgets what was read for `client_id` (its secret was rotated, it was deleted, or
    /// one of its grants changed): the next request reads the store.
    pub(crate) fn forget_client(&self, client_id: &str) {
        self.kept.forget_where(|(client, _)| client == client_id);
    }

    /// Forgets everything (an API was changed or deleted).
    pub(crate) fn clear(&self) {
        self.kept.clear();
    }
}

/// Applications (by client_id), APIs (by identifier), the connections each application
/// signs users in with, connections by name, the tenant's settings and its email provider,
/// as `/authorize`, the hosted login and the token endpoint read them — several times a
/// sign-in. On PostgreSQL every node would otherwise read them from the shared database on
/// every request; on SQLite each read is a round trip to a connection's thread. Emptied by
/// changes (`cluster`); entries expire too.
pub(crate) struct ConfigReads {
    clients: Kept<String, Client>,
    apis: Kept<String, ResourceServer>,
    /// By client_id: `Store::connections_for_sign_in`.
    sign_in: Kept<String, Vec<ConnectionRecord>>,
    /// By name.
    connections: Kept<String, ConnectionRecord>,
    tenant: Kept<TenantRow, Metadata>,
    /// The tenant's email provider, or that there is none (the login page's "Forgot
    /// password?" asks on every view).
    email_provider: Kept<(), Option<EmailProvider>>,
    generation: Generation,
}

/// The tenant row's documents.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum TenantRow {
    Settings,
    Guardian,
    BruteForce,
}

impl ConfigReads {
    /// `ttl`: how long an entry lives.
    pub(crate) fn new(ttl: Duration) -> Self {
        ConfigReads {
            clients: Kept::new(ttl),
            apis: Kept::new(ttl),
            sign_in: Kept::new(ttl),
            connections: Kept::new(ttl),
            tenant: Kept::new(ttl),
            email_provider: Kept::new(ttl),
            generation: Generation::default(),
        }
    }

    /// The application `client_id` (unknown ones are never kept).
    pub(crate) async fn client(
        &self,
        store: &Store,
        client_id: &str,
    ) -> Result<Option<Client>, StoreError> {
        self.look(store);
        let client = self
            .clients
            .through(client_id.to_string(), store.find_client(client_id))
            .await?;
        Ok(client.map(|client| Client::clone(&client)))
    }

    /// The API whose identifier (audience) is `identifier`.
    pub(crate) async fn api(
        &self,
        store: &Store,
        identifier: &str,
    ) -> Result<Option<ResourceServer>, StoreError> {
        self.look(store);
        let api = self
            .apis
            .through(
                identifier.to_string(),
                store.find_resource_server(identifier),
            )
            .await?;
        Ok(api.map(|api| ResourceServer::clone(&api)))
    }

    /// The connections application `client_id` signs users in with, by name
    /// (`Store::connections_for_sign_in`). Asked only for applications already found.
    pub(crate) async fn sign_in_connections(
        &self,
        store: &Store,
        client_id: &str,
    ) -> Result<Vec<ConnectionRecord>, StoreError> {
        self.look(store);
        let read = async { store.connections_for_sign_in(client_id).await.map(Some) };
        let found = self.sign_in.through(client_id.to_string(), read).await?;
        Ok(found
            .map(|enabled| Vec::clone(&enabled))
            .unwrap_or_default())
    }

    /// The connection named `name` (unknown names are never kept).
    pub(crate) async fn connection_named(
        &self,
        store: &Store,
        name: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        self.look(store);
        let found = self
            .connections
            .through(name.to_string(), store.find_connection_by_name(name))
            .await?;
        Ok(found.map(|connection| ConnectionRecord::clone(&connection)))
    }

    /// The tenant's settings (Auth0's tenant settings document).
    pub(crate) async fn tenant_settings(&self, store: &Store) -> Result<Metadata, StoreError> {
        self.tenant_row(store, TenantRow::Settings, async {
            store.tenant_settings().await.map(Some)
        })
        .await
    }

    /// The tenant's Guardian (second factor) settings.
    pub(crate) async fn guardian_settings(&self, store: &Store) -> Result<Metadata, StoreError> {
        self.tenant_row(store, TenantRow::Guardian, async {
            store.guardian_settings().await.map(Some)
        })
        .await
    }

    /// The tenant's brute-force protection, as an administrator set it.
    pub(crate) async fn brute_force_settings(&self, store: &Store) -> Result<Metadata, StoreError> {
        self.tenant_row(store, TenantRow::BruteForce, async {
            store.brute_force_settings().await.map(Some)
        })
        .await
    }

    /// The tenant's email provider (`Store::email_provider`).
    pub(crate) async fn email_provider(
        &self,
        store: &Store,
    ) -> Result<Option<EmailProvider>, StoreError> {
        self.look(store);
        let read = async { store.email_provider().await.map(Some) };
        let found = self.email_provider.through((), read).await?;
        Ok(found.and_then(|provider| Option::clone(&provider)))
    }

    async fn tenant_row(
        &self,
        store: &Store,
        row: TenantRow,
        read: impl Future<Output = Result<Option<Metadata>, StoreError>>,
    ) -> Result<Metadata, StoreError> {
        self.look(store);
        let found = self.tenant.through(row, read).await?;
        Ok(found.map(|m| Metadata::clone(&m)).unwrap_or_default())
    }

    /// Empties everything if the store saw a change since the last look.
    fn look(&self, store: &Store) {
        if self.generation.moved(store) {
            self.clear();
        }
    }

    /// Forgets the application and the connections it signs users in with (creating or
    /// deleting an application enables or drops them).
    pub(crate) fn forget_client(&self, client_id: &str) {
        self.clients.forget_where(|id| id == client_id);
        self.sign_in.forget_where(|id| id == client_id);
    }

    /// Forgets every connection and which applications use them (one changed: its
    /// options, name lookups and the lists it is in).
    pub(crate) fn forget_connections(&self) {
        self.sign_in.clear();
        self.connections.clear();
    }

    /// Forgets every API (kept by identifier; a change names the API by its id).
    pub(crate) fn forget_apis(&self) {
        self.apis.clear();
    }

    /// Forgets the tenant's settings, Guardian settings and email provider.
    pub(crate) fn forget_tenant(&self) {
        self.tenant.clear();
        self.email_provider.clear();
    }

    pub(crate) fn clear(&self) {
        self.clients.clear();
        self.apis.clear();
        self.forget_connections();
        self.forget_tenant();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_forget_is_not_kept() {
        let kept: Kept<String, u32> = Kept::new(Duration::from_secs(60));
        let ticket = kept.ticket();
        // The row changed (and was forgotten) while the read was in flight.
        kept.forget_where(|key| key == "a");
        kept.keep("a".into(), Arc::new(1), ticket);
        assert!(kept.fresh(&"a".into()).is_none(), "the stale read was kept");
        let ticket = kept.ticket();
        kept.keep("a".into(), Arc::new(2), ticket);
        assert_eq!(kept.fresh(&"a".into()).as_deref(), Some(&2));
    }

    #[test]
    fn entries_expire_and_forgetting_one_keeps_the_others() {
        let kept: Kept<String, u32> = Kept::new(Duration::from_secs(60));
        let ticket = kept.ticket();
        kept.keep("a".into(), Arc::new(1), ticket);
        kept.keep("b".into(), Arc::new(2), ticket);
        kept.forget_where(|key| key == "a");
        assert!(kept.fresh(&"a".into()).is_none());
        assert_eq!(kept.fresh(&"b".into()).as_deref(), Some(&2));
        kept.clear();
        assert!(kept.fresh(&"b".into()).is_none());

        let brief: Kept<String, u32> = Kept::new(Duration::ZERO);
        let ticket = brief.ticket();
        brief.keep("a".into(), Arc::new(1), ticket);
        assert!(
            brief.fresh(&"a".into()).is_none(),
            "an expired entry was served"
        );
    }

    #[tokio::test]
    async fn what_is_not_found_is_read_again_and_what_is_found_is_kept() {
        let kept: Kept<String, u32> = Kept::new(Duration::from_secs(60));
        let missing = kept.through("a".into(), async { Ok(None) }).await.unwrap();
        assert!(missing.is_none());
        let found = kept
            .through("a".into(), async { Ok(Some(7)) })
            .await
            .unwrap();
        assert_eq!(found.as_deref(), Some(&7), "the absent value was kept");
        let again = kept
            .through("a".into(), async { panic!("read although kept") })
            .await
            .unwrap();
        assert_eq!(again.as_deref(), Some(&7));
    }

    #[test]
    fn the_map_is_bounded() {
        let kept: Kept<u32, u32> = Kept::new(Duration::from_secs(60));
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            let ticket = kept.ticket();
            kept.keep(i, Arc::new(i), ticket);
        }
        assert!(kept.lock().entries.len() <= MAX_ENTRIES);
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
