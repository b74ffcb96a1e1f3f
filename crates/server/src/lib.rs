//! Tessera's HTTP surface: the OAuth 2.0 / OpenID Connect endpoints, the hosted login
//! pages, discovery and JWKS. Wire types (request parameters, JSON bodies, HTML) live
//! here and nowhere else.
//!
//! `Application::build` binds the listener (port 0 works, for tests) and assembles the
//! state; `run_until_stopped` serves until the shutdown future resolves, then drains
//! in-flight requests.

pub mod actions_admin;
pub mod admin_identities;
pub mod keys;
pub mod passwords;
pub mod user_import;

mod accounts;
mod actions;
mod admin;
mod audit;
mod backchannel_logout;
mod brute_force;
mod cache;
mod clock;
mod cluster;
mod databases;
mod edge;
mod email_provider;
mod email_templates;
mod error;
mod grant;
mod hosted;
pub mod mail;
mod management;
mod mfa;
pub mod mfa_admin;
mod oauth;
mod pages;
mod password_sign_in;
mod state;
mod upstream;
mod upstream_logout;
mod verification_tickets;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{MethodRouter, get, post};
use tessera_jose::MasterKey;
use tessera_store::Store;
use tokio::net::TcpListener;

pub use audit::streams::StreamSettings;
pub use backchannel_logout::LogoutDelivery;
pub use edge::client_ip::{InvalidRange, TrustedProxies};
pub use edge::tls;
pub use management::attack_protection::direct as user_blocks_admin;
/// The connections' operations for the CLI (`tessera connections`).
pub use management::clients::credentials::direct as client_credentials_admin;
pub use management::connections::direct as connections_admin;
pub use management::sessions::direct as sessions_admin;
/// The Management API's JSON shapes, which the CLI's `--json` prints too.
pub use management::wire;
pub use upstream_logout::{AtTheProvider, at_the_provider};

use edge::{cors, deadline, headers, metrics, rejections};
use hosted::{consent, dbconnections, email_verification, login, password_reset, unblock};
pub use mail::{MailConfig, MailError};
use oauth::{authorize, discovery, logout, token, userinfo};
pub use state::AppState;

/// Settings of one server process.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Public base URL. `None`: derived from the bound address (`http://127.0.0.1:PORT/`).
    pub issuer: Option<String>,
    pub listen: SocketAddr,
    pub master_key: MasterKey,
    /// How often expired codes, sessions and transactions are purged.
    pub purge_interval: Duration,
    /// How often the key set is checked for rotations made by another process (SQLite;
    /// on PostgreSQL changes are notified, see `cluster`).
    pub key_poll_interval: Duration,
    /// PostgreSQL: how often the cache generation is read, the backstop for a lost
    /// invalidation notification — the staleness bound when notifications stop.
    pub invalidation_poll_interval: Duration,
    /// Consecutive failed logins for one (account, IP) before that pair is blocked, until
    /// the tenant sets its own (`max_attempts`, `crate::brute_force`).
    pub max_login_failures: i64,
    /// Login attempts one IP may make per minute before getting 429.
    pub login_attempts_per_minute: u32,
    /// Serve HTTPS with this configuration (see `tls::server_config`); plain HTTP if `None`.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// How long a client may take to send a request's header (and an idle keep-alive
    /// connection may stay open) before it is disconnected.
    pub header_read_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for login throttling and
    /// lockout); none by default.
    pub trusted_proxies: TrustedProxies,
    /// How long one request may take, from its header to the response, body included
    /// (default 30 s); a slower one gets 408 and the connection is closed.
    pub request_timeout: Duration,
    /// Where mail goes (reset codes, verification links) unless the tenant's email provider
    /// is enabled (`/api/v2/emails/provider`); `None` and no provider: no mail, so no
    /// password reset.
    pub mail: Option<MailConfig>,
    /// How long an emailed password reset code is valid (15 minutes).
    pub reset_code_lifetime: Duration,
    /// Serve Prometheus metrics at `/metrics` on this address (plain HTTP); off if `None`.
    /// Never on `listen`: the counts would tell anyone how the server is used.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve the dashboard at `<issuer>admin/` (default). Its roles and application are
    /// registered either way (`admin_identities`), so turning it on later needs nothing.
    pub admin: bool,
    /// Serve the dashboard on this address instead of `listen` (where `/admin/` is then
    /// 404), e.g. one reachable only from an administration network.
    pub admin_listen: Option<SocketAddr>,
    /// The dashboard listener's public base URL (`https://admin.example.com/`), where the
    /// sign-in comes back to; default `http(s)://<admin_listen's bound address>/`.
    pub admin_url: Option<String>,
    /// Require server-provided nonces in DPoP proofs at the token endpoint (RFC 9449 §8):
    /// a proof without a current one gets `use_dpop_nonce` and the nonce to use. Off by
    /// default, as at Auth0; the nonces derive from the master key, so every node accepts
    /// what another issued.
    pub dpop_nonces: bool,
    /// How log streams are delivered: poll interval, back-off, suspension
    /// (`audit::streams`).
    pub log_streams: StreamSettings,
    /// How OIDC Back-Channel Logout notices are delivered (`backchannel_logout`).
    pub backchannel_logout: LogoutDelivery,
}

impl ServerConfig {
    pub fn new(listen: SocketAddr, master_key: MasterKey) -> Self {
        ServerConfig {
            issuer: None,
            listen,
            master_key,
            purge_interval: Duration::from_secs(60),
            key_poll_interval: Duration::from_millis(500),
            invalidation_poll_interval: Duration::from_secs(5),
            max_login_failures: brute_force::DEFAULT_MAX_ATTEMPTS,
            login_attempts_per_minute: 60,
            tls: None,
            header_read_timeout: tessera_http::ServeOptions::default().header_read_timeout,
            trusted_proxies: TrustedProxies::default(),
            request_timeout: Duration::from_secs(30),
            mail: None,
            reset_code_lifetime: Duration::from_secs(15 * 60),
            metrics_listen: None,
            admin: true,
            admin_listen: None,
            admin_url: None,
            dpop_nonces: false,
            log_streams: StreamSettings::default(),
            backchannel_logout: LogoutDelivery::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "invalid issuer URL {0:?}: it must be an absolute http(s) URL without query or fragment"
    )]
    BadIssuer(String),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot register the Management API: {0}")]
    ManagementApi(tessera_store::StoreError),
    #[error("admin_listen is set but the dashboard is off (admin = false)")]
    AdminListenWithoutAdmin,
    #[error("cannot register the dashboard's roles and application: {0}")]
    AdminIdentities(tessera_store::StoreError),
}

/// The secret DPoP nonces are made with (`dpop_nonces`): derived from the master key, so
/// every node and the resource servers it is shared with accept the same nonces.
pub fn dpop_nonce_secret(master_key: &MasterKey) -> [u8; 32] {
    master_key.derive("tessera dpop nonces")
}

/// Normalizes an issuer to the form tokens carry: absolute, with a trailing slash.
pub fn normalize_issuer(issuer: &str) -> Result<String, ServerError> {
    let parsed = url::Url::parse(issuer).map_err(|_| ServerError::BadIssuer(issuer.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || parsed.cannot_be_a_base()
    {
        return Err(ServerError::BadIssuer(issuer.to_string()));
    }
    let mut text = parsed.to_string();
    if !text.ends_with('/') {
        text.push('/');
    }
    Ok(text)
}

pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    admin_listener: Option<TcpListener>,
    state: AppState,
}

impl Application {
    pub async fn build(config: ServerConfig, store: Store) -> Result<Self, ServerError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Self::with_listener(config, store, listener).await
    }

    /// Like `build`, on a listener bound by the caller (who may need the port first, e.g.
    /// to put it in the issuer).
    pub async fn with_listener(
        config: ServerConfig,
        store: Store,
        listener: TcpListener,
    ) -> Result<Self, ServerError> {
        let local = listener.local_addr()?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let admin_listener = match config.admin_listen {
            Some(_) if !config.admin => return Err(ServerError::AdminListenWithoutAdmin),
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let issuer = match &config.issuer {
            Some(issuer) => normalize_issuer(issuer)?,
            None => format!("{scheme}://{local}/"),
        };
        // Where `admin/` is served: under the issuer, or at the admin listener's own URL.
        let dashboard_base = match (&admin_listener, &config.admin_url) {
            (None, _) => issuer.clone(),
            (Some(_), Some(url)) => normalize_issuer(url)?,
            (Some(listener), None) => format!("{scheme}://{}/", listener.local_addr()?),
        };
        keys::ensure_signing_keys(&store, &config.master_key, clock::now()).await?;
        let key_ring = keys::KeyRing::new(keys::load_key_set(&store, &config.master_key).await?);
        management::ensure_management_api(&store, &issuer, clock::now())
            .await
            .map_err(ServerError::ManagementApi)?;
        admin_identities::ensure(&store, &issuer, &dashboard_base, clock::now())
            .await
            .map_err(ServerError::AdminIdentities)?;
        let state = AppState::new(config, store, issuer, key_ring, dashboard_base);
        Ok(Application {
            listener,
            metrics_listener,
            admin_listener,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn issuer(&self) -> &str {
        self.state.issuer()
    }

    /// Where `/metrics` is served, when `ServerConfig::metrics_listen` asked for it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// The dashboard's address (`<issuer>admin/`, or under `admin_url` when it has a
    /// listener of its own).
    pub fn dashboard_url(&self) -> String {
        tessera_core::system::dashboard_url(self.state.dashboard_base())
    }

    /// Serves until `shutdown` resolves, then stops accepting and finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let background = state::spawn_background_jobs(self.state.clone());
        let header_read_timeout = self.state.config().header_read_timeout;
        let options = tessera_http::ServeOptions {
            tls: self.state.config().tls.clone(),
            header_read_timeout,
            ..tessera_http::ServeOptions::default()
        };
        // One shutdown for every listener; if the main one ends, so do the others.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let when_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let mut others = Vec::new();
        if let Some(listener) = self.metrics_listener {
            // Plain HTTP: metrics are scraped from inside the network.
            let options = tessera_http::ServeOptions {
                header_read_timeout,
                ..tessera_http::ServeOptions::default()
            };
            let app = metrics::router(self.state.clone());
            others.push(tessera_http::serve(listener, app, options, when_stopped()));
        }
        if let Some(listener) = self.admin_listener {
            let app = admin_router(self.state.clone());
            others.push(tessera_http::serve(
                listener,
                app,
                options.clone(),
                when_stopped(),
            ));
        }
        let main_shutdown = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let audit = self.state.audit().clone();
        let app = router(self.state);
        let (result, others) = tokio::join!(
            tessera_http::serve(self.listener, app, options, main_shutdown),
            futures_util::future::join_all(others),
        );
        background.abort();
        // The events of the requests just finished, which may still be gathering.
        let _ = tokio::time::timeout(Duration::from_secs(5), audit.flush()).await;
        others
            .into_iter()
            .fold(result, |all, one| all.and(one))
            .map_err(ServerError::Io)
    }
}

/// A route: its template, as `MatchedPath` spells it, and its handlers.
pub(crate) type Route = (&'static str, fn() -> MethodRouter<AppState>);

/// Every route of the server but the Management API's (`management::routes`, nested under
/// `management::PREFIX`). The router registers them and the metrics count requests under
/// their templates (`route_templates`): a route added here is counted, with no second list
/// to keep.
const ROUTES: &[Route] = &[
    ("/healthz", || get(discovery::health)),
    ("/favicon.ico", || {
        get(|| async { axum::http::StatusCode::NO_CONTENT })
    }),
    ("/.well-known/openid-configuration", || {
        get(discovery::openid_configuration).options(cors::preflight_any)
    }),
    ("/.well-known/oauth-authorization-server", || {
        get(discovery::openid_configuration).options(cors::preflight_any)
    }),
    ("/.well-known/jwks.json", || {
        get(discovery::jwks).options(cors::preflight_any)
    }),
    ("/authorize", || {
        get(authorize::authorize_get).post(authorize::authorize_post)
    }),
    ("/authorize/resume", || get(authorize::resume)),
    ("/continue", || {
        get(authorize::continue_login).post(authorize::continue_login)
    }),
    ("/login/callback", || get(hosted::upstream::callback)),
    ("/login/backchannel-logout/{connection}", || {
        post(upstream_logout::receive)
    }),
    ("/u/login/upstream", || {
        get(hosted::upstream::leave_for_provider)
    }),
    ("/u/login", || {
        get(login::login_page).post(login::login_submit)
    }),
    ("/u/signup", || {
        get(login::signup_page).post(login::signup_submit)
    }),
    ("/u/reset-password", || {
        get(password_reset::request_page).post(password_reset::request_submit)
    }),
    ("/u/reset-password/code", || {
        get(password_reset::code_page).post(password_reset::code_submit)
    }),
    ("/u/email-verification", || {
        get(email_verification::page).post(email_verification::submit)
    }),
    ("/u/unblock", || get(unblock::page).post(unblock::submit)),
    ("/dbconnections/signup", || {
        post(dbconnections::signup).options(cors::preflight_registered)
    }),
    ("/dbconnections/change_password", || {
        post(password_reset::change_password).options(cors::preflight_registered)
    }),
    ("/u/mfa", || {
        get(hosted::mfa::page).post(hosted::mfa::submit)
    }),
    ("/u/login/passkey", || post(hosted::passkey::login_submit)),
    ("/u/passkey", || {
        get(hosted::passkey::offer_page).post(hosted::passkey::offer_submit)
    }),
    ("/u/consent", || {
        get(consent::consent_page).post(consent::consent_submit)
    }),
    ("/oauth/token", || {
        post(token::token).options(cors::preflight_registered)
    }),
    ("/oauth/device/code", || post(token::device_authorization)),
    ("/activate", || {
        get(hosted::device::page).post(hosted::device::submit)
    }),
    ("/activate/confirm", || post(hosted::device::confirm)),
    ("/oauth/introspect", || post(token::introspect)),
    ("/mfa/authenticators", || {
        get(token::mfa_authenticators).options(cors::preflight_registered)
    }),
    ("/mfa/challenge", || {
        post(token::mfa_challenge).options(cors::preflight_registered)
    }),
    ("/mfa/associate", || {
        post(token::mfa_associate).options(cors::preflight_registered)
    }),
    ("/oauth/par", || post(token::pushed::push)),
    ("/oauth/revoke", || {
        post(token::revoke).options(cors::preflight_registered)
    }),
    ("/userinfo", || {
        get(userinfo::userinfo)
            .post(userinfo::userinfo)
            .options(cors::preflight_registered)
    }),
    ("/v2/logout", || get(logout::v2_logout)),
    ("/oidc/logout", || {
        get(logout::oidc_logout).post(logout::oidc_logout_post)
    }),
    ("/static/{file}", || get(pages::static_file)),
];

/// A router with `routes` registered.
pub(crate) fn routed(routes: &[Route]) -> Router<AppState> {
    routes
        .iter()
        .fold(Router::new(), |router, (template, handlers)| {
            router.route(template, handlers())
        })
}

/// Every route template of [`router`], as requests match them (`/api/v2/users/{id}`): what
/// the metrics count requests under.
pub fn route_templates() -> impl Iterator<Item = String> {
    let nested = management::routes()
        .into_iter()
        .map(|(template, _)| format!("{}{template}", management::PREFIX));
    ROUTES
        .iter()
        .chain(admin::ROUTES)
        .map(|(template, _)| (*template).to_owned())
        .chain(nested)
}

/// Every route of the server (the dashboard's too, unless it has a listener of its own).
pub fn router(state: AppState) -> Router {
    let routes = routed(ROUTES)
        .merge(if state.dashboard_on_main_listener() {
            dashboard(&state)
        } else {
            Router::new()
        })
        .nest(management::PREFIX, management::router(state.clone()));
    serving(routes, state)
}

/// The dashboard's routes, each change an administrator makes recorded in the audit log.
fn dashboard(state: &AppState) -> Router<AppState> {
    routed(admin::ROUTES).layer(axum::middleware::from_fn_with_state(
        state.clone(),
        audit::dashboard_writes,
    ))
}

/// The dashboard's own listener (`admin_listen`): its routes alone, `/` leading to it.
fn admin_router(state: AppState) -> Router {
    let routes = dashboard(&state)
        .route("/", get(|| async { pages::redirect("/admin/") }))
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            forms_may_lead_to_the_issuer,
        ));
    serving(routes, state)
}

/// On its own listener the dashboard's forms end at the issuer's origin (signing out,
/// a fresh login before deleting), and browsers apply `form-action` to those redirects.
async fn forms_may_lead_to_the_issuer(
    State(state): State<AppState>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    let html = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/html"));
    if html
        && !response
            .headers()
            .contains_key(axum::http::header::CONTENT_SECURITY_POLICY)
        && let Some(csp) = headers::form_page_csp(state.issuer())
    {
        let headers = response.headers_mut();
        headers.insert(axum::http::header::CONTENT_SECURITY_POLICY, csp);
        headers.insert(
            axum::http::header::X_FRAME_OPTIONS,
            axum::http::HeaderValue::from_static("DENY"),
        );
    }
    response
}

/// `routes` with what every listener's requests pass through: the 404 page, error shapes,
/// security headers, the deadline, the body limit and the metrics.
fn serving(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(rejections::in_endpoint_shape))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deadline::within_deadline,
        ))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::request_context,
        ))
        // Outermost, so it sees the 408s and times the whole request.
        .layer(metrics::RecordLayer(state.clone()))
        .with_state(state)
}
