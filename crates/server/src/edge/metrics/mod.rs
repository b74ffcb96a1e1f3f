//! Prometheus metrics, served on their own listener (`ServerConfig::metrics_listen`), never
//! on the issuer's port: counts of logins and tokens tell an outsider too much.
//!
//! No global recorder: one `Metrics` lives in `AppState`. Every series is a relaxed atomic
//! in a table built at start, so recording costs a few atomic adds and no lock or
//! allocation. Labels come from closed sets — route templates, methods, status codes,
//! grant types, OAuth error codes — never from what a client sent.
//!
//! `exposition.rs` renders the counters in the text format, `process.rs` reads what the
//! operating system says about the process, `layer.rs` counts every request and serves the
//! metrics listener.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use axum::http::Method;

mod exposition;
mod layer;
mod process;

pub(crate) use layer::{RecordLayer, router};

/// `Content-Type` of the text exposition format 0.0.4.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A matched template the table was not built with (a route registered outside the
/// router's route tables).
const OTHER_ROUTE: &str = "other";
/// No route matched (the 404 fallback).
const UNMATCHED_ROUTE: &str = "unmatched";

const METHODS: [&str; 8] = [
    "GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "HEAD", "other",
];

/// The status codes this server (and axum's rejections) answer with; any other is counted
/// under its class (`2xx` … `5xx`).
const STATUSES: [u16; 30] = [
    101, 200, 201, 202, 204, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 406, 408, 409,
    410, 411, 413, 414, 415, 422, 429, 431, 500, 501, 503,
];
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
const STATUS_SLOTS: usize = STATUSES.len() + STATUS_CLASSES.len();

fn status_slot(status: u16) -> usize {
    match STATUSES.binary_search(&status) {
        Ok(index) => index,
        Err(_) => {
            STATUSES.len()
                + match status / 100 {
                    class @ 1..=5 => usize::from(class) - 1,
                    _ => STATUS_CLASSES.len() - 1,
                }
        }
    }
}

fn status_label(slot: usize, buffer: &mut String) -> &str {
    match slot.checked_sub(STATUSES.len()) {
        None => {
            buffer.clear();
            let _ = write!(buffer, "{}", STATUSES[slot]);
            buffer
        }
        Some(class) => STATUS_CLASSES[class],
    }
}

pub(super) fn method_slot(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::OPTIONS => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::HEAD => 6,
        _ => 7,
    }
}

/// Upper bounds of the duration histogram's buckets: nanoseconds, and the `le` label.
const BUCKETS: [(u64, &str); 14] = [
    (500_000, "0.0005"),
    (1_000_000, "0.001"),
    (2_500_000, "0.0025"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (25_000_000, "0.025"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
    (500_000_000, "0.5"),
    (1_000_000_000, "1"),
    (2_500_000_000, "2.5"),
    (5_000_000_000, "5"),
    (10_000_000_000, "10"),
];

/// A fixed-bucket histogram of durations. Each observation lands in one bucket (the
/// renderer accumulates), so `_count` always equals the `+Inf` bucket.
pub(crate) struct Histogram {
    /// `BUCKETS.len()` bounded buckets, then the one above the last bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS
            .iter()
            .position(|(bound, _)| nanos <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }
}

/// Requests of one route template: by method and status, and their durations.
struct RouteStats {
    label: String,
    /// `METHODS.len() × STATUS_SLOTS` counters.
    responses: Box<[AtomicU64]>,
    duration: Histogram,
}

impl RouteStats {
    fn new(label: String) -> Self {
        RouteStats {
            label,
            responses: (0..METHODS.len() * STATUS_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            duration: Histogram::new(),
        }
    }
}

/// How a token was obtained.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Grant {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// An access token from `/authorize` (`response_type` with `token`: the implicit
    /// grant, or the hybrid flow's `code token`).
    Implicit,
    /// `password` or Auth0's `password-realm`.
    Password,
    /// RFC 8628's device code.
    DeviceCode,
    /// Auth0's MFA API: a password sign-in finished with an app's code…
    MfaOtp,
    /// …or with a recovery code.
    MfaRecoveryCode,
}

const GRANTS: [&str; 8] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "implicit",
    "password",
    "device_code",
    "mfa_otp",
    "mfa_recovery_code",
];

/// The token endpoint's error codes (RFC 6749 §5.2 and ours); anything else is `other`.
const TOKEN_ERRORS: [&str; 16] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    "server_error",
    "temporarily_unavailable",
    // A device's polls (RFC 8628 §3.5): what it hears while the person decides.
    "authorization_pending",
    "slow_down",
    "expired_token",
    // A password sign-in waiting for its second factor (Auth0's MFA API).
    "mfa_required",
    // DPoP (RFC 9449): a bad proof, and a proof without the nonce the server requires.
    "invalid_dpop_proof",
    "use_dpop_nonce",
    "other",
];

/// How a login form submission ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Login {
    Success,
    /// Unknown account or wrong password (indistinguishable on purpose).
    WrongCredentials,
    /// The (account, IP) pair is locked after too many consecutive failures.
    Locked,
    /// The IP made too many attempts this minute (429).
    Throttled,
    /// The right password for a blocked user.
    Blocked,
}

const LOGIN_OUTCOMES: [&str; 5] = [
    "success",
    "wrong_credentials",
    "locked",
    "throttled",
    "blocked",
];

/// Set on a response that is a 503 because the store was unavailable; the request
/// middleware counts it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreUnavailable;

/// Every counter of one server process.
pub(crate) struct Metrics {
    started: Instant,
    started_unix: f64,
    routes: Box<[RouteStats]>,
    /// A template's slot in `routes`.
    route_index: HashMap<String, usize>,
    tokens_issued: [AtomicU64; GRANTS.len()],
    token_errors: [AtomicU64; TOKEN_ERRORS.len()],
    logins: [AtomicU64; LOGIN_OUTCOMES.len()],
    signups: AtomicU64,
    refresh_token_reuse: AtomicU64,
    code_replays: AtomicU64,
    store_unavailable: AtomicU64,
    log_events_dropped: AtomicU64,
    log_stream_events_delivered: AtomicU64,
    log_stream_failures: AtomicU64,
}

impl Metrics {
    /// A response of the store being unavailable (a 503), marked by `StoreUnavailable`.
    pub(super) fn count_store_unavailable(&self) {
        self.store_unavailable.fetch_add(1, Relaxed);
    }

    /// Counters for requests of each of `templates` (every route template of the router,
    /// `crate::route_templates`), then of `other` and `unmatched`.
    pub(crate) fn new(templates: impl IntoIterator<Item = String>) -> Self {
        let templates: Vec<String> = templates.into_iter().collect();
        let route_index = templates.iter().cloned().zip(0..).collect();
        let labels = templates
            .into_iter()
            .chain([OTHER_ROUTE, UNMATCHED_ROUTE].map(str::to_owned));
        let routes: Box<[RouteStats]> = labels.map(RouteStats::new).collect();
        Metrics {
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            routes,
            route_index,
            tokens_issued: Default::default(),
            token_errors: Default::default(),
            logins: Default::default(),
            signups: AtomicU64::new(0),
            refresh_token_reuse: AtomicU64::new(0),
            code_replays: AtomicU64::new(0),
            store_unavailable: AtomicU64::new(0),
            log_events_dropped: AtomicU64::new(0),
            log_stream_events_delivered: AtomicU64::new(0),
            log_stream_failures: AtomicU64::new(0),
        }
    }

    /// The slot of a route template (`None`: no route matched).
    fn route_slot(&self, matched: Option<&str>) -> usize {
        let other = self.route_index.len();
        match matched {
            Some(template) => self.route_index.get(template).copied().unwrap_or(other),
            None => other + 1,
        }
    }

    fn record_request(&self, route: usize, method: usize, status: u16, elapsed: Duration) {
        let stats = &self.routes[route];
        stats.responses[method * STATUS_SLOTS + status_slot(status)].fetch_add(1, Relaxed);
        stats.duration.observe(elapsed);
    }

    pub(crate) fn token_issued(&self, grant: Grant) {
        self.tokens_issued[grant as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn token_error(&self, error: &str) {
        let slot = TOKEN_ERRORS
            .iter()
            .position(|known| *known == error)
            .unwrap_or(TOKEN_ERRORS.len() - 1);
        self.token_errors[slot].fetch_add(1, Relaxed);
    }

    pub(crate) fn login(&self, outcome: Login) {
        self.logins[outcome as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn signup(&self) {
        self.signups.fetch_add(1, Relaxed);
    }

    pub(crate) fn refresh_token_reused(&self) {
        self.refresh_token_reuse.fetch_add(1, Relaxed);
    }

    pub(crate) fn code_replayed(&self) {
        self.code_replays.fetch_add(1, Relaxed);
    }

    /// An audit event dropped because this node's log queue was full.
    pub(crate) fn log_event_dropped(&self) {
        self.log_events_dropped.fetch_add(1, Relaxed);
    }

    /// Audit events a log stream's receiver accepted (`audit::streams`).
    pub(crate) fn log_stream_delivered(&self, events: u64) {
        self.log_stream_events_delivered.fetch_add(events, Relaxed);
    }

    /// A log stream's delivery that failed (the batch is tried again later).
    pub(crate) fn log_stream_failed(&self) {
        self.log_stream_failures.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_their_slot_or_class() {
        for (i, status) in STATUSES.iter().enumerate() {
            assert_eq!(status_slot(*status), i);
        }
        assert!(STATUSES.windows(2).all(|w| w[0] < w[1]), "sorted");
        let mut buffer = String::new();
        assert_eq!(status_label(status_slot(200), &mut buffer), "200");
        assert_eq!(status_label(status_slot(299), &mut buffer), "2xx");
        assert_eq!(status_label(status_slot(599), &mut buffer), "5xx");
        assert_eq!(status_label(status_slot(999), &mut buffer), "other");
        assert_eq!(status_label(status_slot(42), &mut buffer), "other");
    }
}
