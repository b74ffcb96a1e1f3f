//! Shared state handed to every handler, and the background jobs that maintain it.

use std::sync::Arc;
use std::time::Duration;

use tessera_store::Store;

use crate::ServerConfig;
use crate::cache::{ConfigReads, FirstLogins, MachineAccessCache};
use crate::clock::now;
use crate::edge::metrics::Metrics;
use crate::edge::throttle::ClusterThrottle;
use crate::hosted::mailer::Mailer;
use crate::keys::{KeyRing, KeySet};
use crate::management::ImportQueue;
use crate::passwords::PasswordHasher;

/// At most this many DPoP proofs a minute per node (about 20 MB when full, more token
/// requests than a node signs): beyond, the token endpoint answers 503 rather than forget
/// a proof that could be replayed.
const DPOP_PROOFS_REMEMBERED: usize = 1_000_000;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: ServerConfig,
    store: Store,
    issuer: String,
    keys: KeyRing,
    hasher: PasswordHasher,
    login_throttle: ClusterThrottle,
    mailer: Mailer,
    machine_access: MachineAccessCache,
    config_reads: ConfigReads,
    secure_cookies: bool,
    hsts: bool,
    dashboard_base: String,
    metrics: Metrics,
    imports: ImportQueue,
    first_logins: FirstLogins,
    actions: tessera_actions::Engine,
    action_programs: crate::actions::Programs,
    upstreams: crate::upstream::Upstreams,
    dpop_replay: tessera_jose::dpop::ReplayCache,
    dpop_nonces: Option<tessera_jose::dpop::NonceSource>,
    audit: crate::audit::AuditLog,
}

impl AppState {
    /// `dashboard_base`: where `admin/` is served — the issuer, or the admin listener's URL.
    pub(crate) fn new(
        config: ServerConfig,
        store: Store,
        issuer: String,
        keys: KeyRing,
        dashboard_base: String,
    ) -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let login_throttle = ClusterThrottle::new(
            config.login_attempts_per_minute,
            Duration::from_secs(60),
            &store,
            "login",
        );
        let audit = crate::audit::AuditLog::start(store.clone());
        let mailer = Mailer::start(&config, store.clone(), &issuer, audit.clone());
        let secure_cookies = issuer.starts_with("https://");
        let hsts = secure_cookies && !is_loopback(&issuer);
        let dpop_nonces = config.dpop_nonces.then(|| {
            tessera_jose::dpop::NonceSource::new(&crate::dpop_nonce_secret(&config.master_key))
        });
        let lifetimes = crate::cluster::lifetimes(&store, config.key_poll_interval);
        AppState(Arc::new(Inner {
            config,
            store,
            issuer,
            keys,
            hasher: PasswordHasher::new(workers),
            login_throttle,
            mailer,
            machine_access: MachineAccessCache::new(lifetimes.machine_access),
            config_reads: ConfigReads::new(lifetimes.config_reads),
            secure_cookies,
            hsts,
            dashboard_base,
            metrics: Metrics::new(crate::route_templates()),
            imports: ImportQueue::new(),
            first_logins: FirstLogins::default(),
            actions: tessera_actions::Engine::start(tessera_actions::Limits::default()),
            action_programs: crate::actions::Programs::new(lifetimes.programs),
            upstreams: crate::upstream::Upstreams::default(),
            dpop_replay: tessera_jose::dpop::ReplayCache::new(DPOP_PROOFS_REMEMBERED),
            dpop_nonces,
            audit,
        }))
    }

    /// The issuer, with its trailing slash.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    pub(crate) fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn keys(&self) -> Arc<KeySet> {
        self.0.keys.snapshot()
    }

    /// Reloads the key set now rather than at the next poll: an API's signing algorithm
    /// changed here, and what the JWKS publishes depends on it. A failure is the poll's to
    /// retry; the write that asked for this has happened.
    pub(crate) async fn reload_keys(&self) {
        if let Err(error) = self
            .0
            .keys
            .refresh(self.store(), &self.config().master_key)
            .await
        {
            tracing::warn!(%error, "signing keys could not be reloaded");
        }
    }

    pub(crate) fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    pub(crate) fn hasher(&self) -> &PasswordHasher {
        &self.0.hasher
    }

    pub(crate) fn login_throttle(&self) -> &ClusterThrottle {
        &self.0.login_throttle
    }

    pub(crate) fn mailer(&self) -> &Mailer {
        &self.0.mailer
    }

    pub(crate) fn machine_access(&self) -> &MachineAccessCache {
        &self.0.machine_access
    }

    /// Applications, APIs and tenant settings as the sign-in and token paths read them.
    pub(crate) fn config_reads(&self) -> &ConfigReads {
        &self.0.config_reads
    }

    /// Forgets what this node keeps of application `client_id` (it, its grants or its
    /// credentials changed): the next request reads the store.
    pub(crate) fn forget_client(&self, client_id: &str) {
        self.0.machine_access.forget_client(client_id);
        self.0.config_reads.forget_client(client_id);
    }

    /// Forgets what this node keeps of the tenant's settings, Guardian settings and email
    /// provider.
    pub(crate) fn forget_tenant(&self) {
        self.0.config_reads.forget_tenant();
    }

    /// Forgets what this node keeps of connection `id` and of which applications use
    /// which connections (it was created, changed, deleted or enabled for others).
    pub(crate) fn forget_connection(&self, id: &str) {
        self.0.upstreams.forget(id);
        self.0.config_reads.forget_connections();
    }

    /// Forgets what this node keeps of APIs (one changed or went away).
    pub(crate) fn forget_apis(&self) {
        self.0.machine_access.clear();
        self.0.config_reads.forget_apis();
    }

    /// The workers that run Actions and Rules.
    pub(crate) fn actions(&self) -> &tessera_actions::Engine {
        &self.0.actions
    }

    /// Each trigger's deployed rules and actions, as recently read.
    pub(crate) fn action_programs(&self) -> &crate::actions::Programs {
        &self.0.action_programs
    }

    /// The jtis of DPoP proofs the token endpoint accepted in the last minute.
    pub(crate) fn dpop_replay(&self) -> &tessera_jose::dpop::ReplayCache {
        &self.0.dpop_replay
    }

    /// Where the token endpoint's DPoP nonces come from, when it requires them.
    pub(crate) fn dpop_nonces(&self) -> Option<&tessera_jose::dpop::NonceSource> {
        self.0.dpop_nonces.as_ref()
    }

    /// The upstream identity providers' client and what it keeps per connection.
    pub(crate) fn upstreams(&self) -> &crate::upstream::Upstreams {
        &self.0.upstreams
    }

    pub(crate) fn first_logins(&self) -> &FirstLogins {
        &self.0.first_logins
    }

    pub(crate) fn imports(&self) -> &ImportQueue {
        &self.0.imports
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// This node's writer of the audit log.
    pub(crate) fn audit(&self) -> &crate::audit::AuditLog {
        &self.0.audit
    }

    /// Records an audit event without waiting for it to be written; a full queue drops it
    /// and counts the drop (`crate::audit`).
    pub(crate) fn record_log(&self, event: tessera_store::LogEvent) {
        match self.0.audit.record(event) {
            Ok(()) => {}
            Err(crate::audit::NotQueued::Full) => self.0.metrics.log_event_dropped(),
            Err(crate::audit::NotQueued::Closed) => {
                tracing::warn!("audit log writer stopped; event dropped");
            }
        }
    }

    /// Whether we are served over HTTPS: cookies get `Secure` and the `__Host-` prefix.
    pub(crate) fn secure_cookies(&self) -> bool {
        self.0.secure_cookies
    }

    /// The base URL the dashboard's `admin/` hangs from: the issuer, or `admin_url` when
    /// the dashboard has a listener of its own.
    pub(crate) fn dashboard_base(&self) -> &str {
        &self.0.dashboard_base
    }

    /// Whether the dashboard is served on the main listener (on, and no `admin_listen`).
    pub(crate) fn dashboard_on_main_listener(&self) -> bool {
        self.0.config.admin && self.0.config.admin_listen.is_none()
    }

    /// Whether the dashboard is reached over HTTPS: its cookies get `Secure` and `__Host-`.
    pub(crate) fn dashboard_secure_cookies(&self) -> bool {
        self.0.dashboard_base.starts_with("https://")
    }

    /// Whether responses carry `Strict-Transport-Security`: over HTTPS, unless the issuer
    /// is this machine (`localhost`, `127.0.0.0/8`, `::1`). HSTS holds for a host on every
    /// port, so on localhost it would turn every other local http server into https ones.
    pub(crate) fn hsts(&self) -> bool {
        self.0.hsts
    }
}

fn is_loopback(issuer: &str) -> bool {
    match url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Domain(name)) => name == "localhost" || name.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Key-set polling (rotations made by the CLI show up within `key_poll_interval` on
/// SQLite), the purge of expired rows, log streams' delivery (`audit::streams`), logout
/// tokens' delivery (`backchannel_logout`) and the
/// invalidation of what is kept in memory (`cluster`). Errors are logged and retried at the next tick.
pub(crate) fn spawn_background_jobs(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::join!(
            periodic_jobs(state.clone()),
            crate::audit::streams::deliver(state.clone()),
            crate::backchannel_logout::deliver(state.clone()),
            crate::cluster::keep_coherent(state)
        );
    })
}

async fn periodic_jobs(state: AppState) {
    let key_poll =
        crate::cluster::lifetimes(state.store(), state.config().key_poll_interval).key_poll;
    let mut key_tick = tokio::time::interval(key_poll);
    let mut purge_tick = tokio::time::interval(state.config().purge_interval);
    key_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    purge_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = key_tick.tick() => {
                match state.0.keys.refresh(state.store(), &state.config().master_key).await {
                    Ok(true) => tracing::info!("signing keys reloaded"),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "signing keys could not be reloaded"),
                }
            }
            _ = purge_tick.tick() => {
                match state.store().purge_expired(now()).await {
                    Ok(counts) if counts != Default::default() => tracing::debug!(?counts, "purged expired rows"),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "purge of expired rows failed"),
                }
                match crate::hosted::session::end_sessions_past_lifetime(&state).await {
                    Ok(0) => {}
                    Ok(sessions) => tracing::debug!(sessions, "ended sessions past a lowered lifetime"),
                    Err(error) => tracing::warn!(%error, "purge of sessions past their lifetime failed"),
                }
                let quiet_since = now() - crate::password_sign_in::FAILURES_FORGOTTEN_AFTER;
                let lockout = match crate::brute_force::settings(&state).await {
                    Ok(protection) => protection.max_attempts,
                    Err(_) => state.config().max_login_failures,
                };
                match state.store().forget_stale_login_failures(quiet_since, lockout).await {
                    Ok(0) => {}
                    Ok(pairs) => tracing::debug!(pairs, "forgot failed-login counts below the lockout"),
                    Err(error) => tracing::warn!(%error, "purge of failed-login counts failed"),
                }
                match purge_logs(&state).await {
                    Ok(0) => {}
                    Ok(events) => tracing::debug!(events, "purged audit log events past their retention"),
                    Err(error) => tracing::warn!(%error, "purge of the audit log failed"),
                }
            }
        }
    }
}

/// Deletes audit log events older than the tenant's `log_retention_days` (default 30), a
/// batch per statement, at most a few batches per tick so a backlog never holds the
/// database long; what is left goes at the next tick.
pub(crate) async fn purge_logs(state: &AppState) -> Result<u64, tessera_store::StoreError> {
    const BATCHES_PER_TICK: usize = 10;
    let days = tessera_core::validate::log_retention_days(&state.store().tenant_settings().await?);
    let before = crate::audit::now_millis() - days * 86_400_000;
    let mut purged = 0;
    for _ in 0..BATCHES_PER_TICK {
        let gone = state.store().purge_logs(before).await?;
        purged += gone;
        if gone < tessera_store::PURGE_BATCH as u64 {
            break;
        }
    }
    Ok(purged)
}
