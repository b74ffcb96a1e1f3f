//! Prometheus metrics, served on their own listener (`ServerConfig::metrics_listen`), never
//! on the issuer's port: counts of logins and tokens tell an outsider too much.
//!
//! No global recorder: one `Metrics` lives in `AppState`. Every series is a relaxed atomic
//! in a table built at start, so recording costs a few atomic adds and no lock or
//! allocation. Labels come from closed sets — route templates, methods, status codes,
//! grant types, OAuth error codes — never from what a client sent.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use axum::http::Method;

use tessera_store::PoolStats;

mod layer;

pub(crate) use layer::{RecordLayer, router};

/// `Content-Type` of the text exposition format 0.0.4.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every route template of `router()`, as `MatchedPath` spells it. A template missing here
/// would be counted as `other`: a unit test reads the router's source and fails until it is
/// added.
pub(crate) const ROUTES: &[&str] = &[
    "/healthz",
    "/favicon.ico",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/.well-known/jwks.json",
    "/authorize",
    "/authorize/resume",
    "/u/login",
    "/u/signup",
    "/u/reset-password",
    "/u/reset-password/code",
    "/dbconnections/change_password",
    "/u/consent",
    "/oauth/token",
    "/oauth/revoke",
    "/userinfo",
    "/v2/logout",
    "/oidc/logout",
    "/static/{file}",
    "/api/v2/resource-servers",
    "/api/v2/resource-servers/{id}",
    "/api/v2/clients",
    "/api/v2/clients/{id}",
    "/api/v2/clients/{id}/rotate-secret",
    "/api/v2/client-grants",
    "/api/v2/client-grants/{id}",
    "/api/v2/users",
    "/api/v2/users/{id}",
    "/api/v2/users-by-email",
    "/api/v2/users/{id}/roles",
    "/api/v2/users/{id}/permissions",
    "/api/v2/roles",
    "/api/v2/roles/{id}",
    "/api/v2/roles/{id}/permissions",
    "/api/v2/roles/{id}/users",
];
/// A template not in `ROUTES`.
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
    label: &'static str,
    /// `METHODS.len() × STATUS_SLOTS` counters.
    responses: Box<[AtomicU64]>,
    duration: Histogram,
}

impl RouteStats {
    fn new(label: &'static str) -> Self {
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
    /// `response_type=token` at `/authorize` (the legacy implicit flow).
    Implicit,
}

const GRANTS: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "implicit",
];

/// The token endpoint's error codes (RFC 6749 §5.2 and ours); anything else is `other`.
const TOKEN_ERRORS: [&str; 10] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "access_denied",
    "server_error",
    "temporarily_unavailable",
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
    route_index: HashMap<&'static str, usize>,
    tokens_issued: [AtomicU64; GRANTS.len()],
    token_errors: [AtomicU64; TOKEN_ERRORS.len()],
    logins: [AtomicU64; LOGIN_OUTCOMES.len()],
    signups: AtomicU64,
    refresh_token_reuse: AtomicU64,
    code_replays: AtomicU64,
    store_unavailable: AtomicU64,
}

impl Metrics {
    /// A response of the store being unavailable (a 503), marked by `StoreUnavailable`.
    pub(super) fn count_store_unavailable(&self) {
        self.store_unavailable.fetch_add(1, Relaxed);
    }

    pub(crate) fn new() -> Self {
        let labels = ROUTES.iter().copied().chain([OTHER_ROUTE, UNMATCHED_ROUTE]);
        let routes: Box<[RouteStats]> = labels.map(RouteStats::new).collect();
        let route_index = ROUTES.iter().enumerate().map(|(i, r)| (*r, i)).collect();
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
        }
    }

    /// The slot of a route template (`None`: no route matched).
    fn route_slot(&self, matched: Option<&str>) -> usize {
        match matched {
            Some(template) => self
                .route_index
                .get(template)
                .copied()
                .unwrap_or(ROUTES.len()),
            None => ROUTES.len() + 1,
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

    /// The whole exposition. `signing_keys` are (algorithm, state, count) triples read
    /// from the key ring; `database` the store's pool; `process` what `/proc/self` says
    /// (absent elsewhere).
    pub(crate) fn render(
        &self,
        signing_keys: &[(&str, &str, u64)],
        database: &PoolStats,
        process: &Process,
    ) -> String {
        let mut out = Exposition::default();

        out.family(
            "tessera_build_info",
            "Version of the running Tessera; always 1.",
            "gauge",
        );
        out.sample(
            "tessera_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );

        out.family(
            "tessera_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            "counter",
        );
        let mut status = String::new();
        for route in self.routes.iter() {
            for (slot, counter) in route.responses.iter().enumerate() {
                let value = counter.load(Relaxed);
                if value == 0 {
                    continue;
                }
                let method = METHODS[slot / STATUS_SLOTS];
                let code = status_label(slot % STATUS_SLOTS, &mut status);
                out.sample(
                    "tessera_http_requests_total",
                    &[("route", route.label), ("method", method), ("status", code)],
                    value,
                );
            }
        }

        out.family(
            "tessera_http_request_duration_seconds",
            "Time from a request's header to its response, by route template.",
            "histogram",
        );
        for route in self.routes.iter() {
            if route.duration.count() > 0 {
                out.histogram(
                    "tessera_http_request_duration_seconds",
                    ("route", route.label),
                    &route.duration,
                );
            }
        }

        out.family(
            "tessera_tokens_issued_total",
            "Access tokens issued, by grant type (implicit: by /authorize).",
            "counter",
        );
        for (grant, counter) in GRANTS.iter().zip(&self.tokens_issued) {
            out.sample(
                "tessera_tokens_issued_total",
                &[("grant_type", grant)],
                counter.load(Relaxed),
            );
        }

        out.family(
            "tessera_token_errors_total",
            "Error responses of /oauth/token, by OAuth error code.",
            "counter",
        );
        for (error, counter) in TOKEN_ERRORS.iter().zip(&self.token_errors) {
            out.sample(
                "tessera_token_errors_total",
                &[("error", error)],
                counter.load(Relaxed),
            );
        }

        out.family(
            "tessera_logins_total",
            "Login form submissions, by outcome.",
            "counter",
        );
        for (outcome, counter) in LOGIN_OUTCOMES.iter().zip(&self.logins) {
            out.sample(
                "tessera_logins_total",
                &[("outcome", outcome)],
                counter.load(Relaxed),
            );
        }

        out.counter(
            "tessera_signups_total",
            "Users who signed up on the hosted page.",
            self.signups.load(Relaxed),
        );
        out.counter(
            "tessera_refresh_token_reuse_total",
            "Rotated refresh tokens presented again; each revoked its family.",
            self.refresh_token_reuse.load(Relaxed),
        );
        out.counter(
            "tessera_authorization_code_replays_total",
            "Authorization codes presented again after their redemption.",
            self.code_replays.load(Relaxed),
        );
        out.counter(
            "tessera_store_unavailable_total",
            "Requests answered 503 because the database was unavailable.",
            self.store_unavailable.load(Relaxed),
        );

        out.family(
            "tessera_signing_keys",
            "Published signing keys, by algorithm and state.",
            "gauge",
        );
        for (alg, state, count) in signing_keys {
            out.sample(
                "tessera_signing_keys",
                &[("alg", alg), ("state", state)],
                *count,
            );
        }

        out.family(
            "tessera_db_connections",
            "Open database connections, by state.",
            "gauge",
        );
        let in_use = database.connections.saturating_sub(database.idle);
        out.sample(
            "tessera_db_connections",
            &[("state", "idle")],
            database.idle.into(),
        );
        out.sample(
            "tessera_db_connections",
            &[("state", "in_use")],
            in_use.into(),
        );
        out.gauge(
            "tessera_db_connections_max",
            "The most connections the pool opens.",
            database.max_connections.into(),
        );
        out.gauge(
            "tessera_db_failing_fast",
            "1 while the database was unreachable moments ago and calls fail at once \
             (the circuit breaker is open), else 0.",
            database.failing_fast.into(),
        );

        out.family(
            "tessera_process_start_time_seconds",
            "Start of this server, in Unix seconds.",
            "gauge",
        );
        out.sample_f64("tessera_process_start_time_seconds", self.started_unix);
        out.family(
            "tessera_process_uptime_seconds",
            "Seconds since this server started.",
            "gauge",
        );
        out.sample_f64(
            "tessera_process_uptime_seconds",
            self.started.elapsed().as_secs_f64(),
        );
        if let Some(bytes) = process.resident_memory_bytes {
            out.gauge(
                "tessera_process_resident_memory_bytes",
                "Resident memory of the process.",
                bytes,
            );
        }
        if let Some(count) = process.open_fds {
            out.gauge(
                "tessera_process_open_fds",
                "Open file descriptors (connections included).",
                count,
            );
        }
        if let Some(count) = process.max_fds {
            out.gauge(
                "tessera_process_max_fds",
                "The process's limit of open file descriptors.",
                count,
            );
        }
        out.text
    }
}

/// What the operating system says about this process (Linux: `/proc/self`).
#[derive(Debug, Default)]
pub(crate) struct Process {
    pub(crate) resident_memory_bytes: Option<u64>,
    pub(crate) open_fds: Option<u64>,
    pub(crate) max_fds: Option<u64>,
}

impl Process {
    pub(crate) fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        Process {
            resident_memory_bytes: status.as_deref().and_then(resident_bytes),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as u64),
            max_fds: limits.as_deref().and_then(max_open_files),
        }
    }
}

/// `VmRSS:  1234 kB` in `/proc/self/status`.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft limit on the `Max open files` line of `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Writes the text exposition format 0.0.4.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.text.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.text, " {value}");
    }

    fn sample_f64(&mut self, name: &str, value: f64) {
        // `{}` of a finite f64 is plain decimal (never an exponent), which the format takes.
        let _ = writeln!(self.text, "{name} {value}");
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.text.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{key}=\"{}\"", escape_label_value(value));
        }
        self.text.push('}');
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, "counter");
        self.sample(name, &[], value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, help, "gauge");
        self.sample(name, &[], value);
    }

    /// `_bucket` lines (cumulative, ending with `+Inf`), `_sum` and `_count`.
    fn histogram(&mut self, name: &str, label: (&str, &str), histogram: &Histogram) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, (_, le)) in BUCKETS.iter().enumerate() {
            cumulative += histogram.buckets[i].load(Relaxed);
            self.sample(&bucket, &[label, ("le", le)], cumulative);
        }
        cumulative += histogram.buckets[BUCKETS.len()].load(Relaxed);
        self.sample(&bucket, &[label, ("le", "+Inf")], cumulative);
        let sum = histogram.sum_nanos.load(Relaxed) as f64 / 1e9;
        self.text.push_str(name);
        self.text.push_str("_sum");
        self.labels(&[label]);
        let _ = writeln!(self.text, " {sum}");
        self.sample(&format!("{name}_count"), &[label], cumulative);
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label_value(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    let mut escaped = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped.into()
}

/// A HELP text: backslash and line feed escaped (quotes stay).
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: PoolStats = PoolStats {
        connections: 3,
        idle: 1,
        max_connections: 16,
        failing_fast: false,
    };

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label_value("plain"), "plain");
        assert_eq!(
            escape_label_value("a\\b\"c\nd"),
            "a\\\\b\\\"c\\nd",
            "backslash, quote and newline"
        );
        assert_eq!(escape_help("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
        let mut out = Exposition::default();
        out.sample("m", &[("k", "va\"l"), ("j", "\\")], 3);
        assert_eq!(out.text, "m{k=\"va\\\"l\",j=\"\\\\\"} 3\n");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_micros(100)); // ≤ 0.0005
        histogram.observe(Duration::from_micros(500)); // exactly 0.0005: le is inclusive
        histogram.observe(Duration::from_millis(30)); // ≤ 0.05
        histogram.observe(Duration::from_secs(60)); // above every bound
        let mut out = Exposition::default();
        out.histogram("h_seconds", ("route", "/r"), &histogram);
        let lines: Vec<&str> = out.text.lines().collect();
        assert_eq!(lines.len(), BUCKETS.len() + 3);
        assert_eq!(lines[0], "h_seconds_bucket{route=\"/r\",le=\"0.0005\"} 2");
        assert_eq!(lines[1], "h_seconds_bucket{route=\"/r\",le=\"0.001\"} 2");
        assert_eq!(lines[5], "h_seconds_bucket{route=\"/r\",le=\"0.025\"} 2");
        assert_eq!(lines[6], "h_seconds_bucket{route=\"/r\",le=\"0.05\"} 3");
        assert_eq!(lines[13], "h_seconds_bucket{route=\"/r\",le=\"10\"} 3");
        assert_eq!(lines[14], "h_seconds_bucket{route=\"/r\",le=\"+Inf\"} 4");
        assert_eq!(lines[15], "h_seconds_sum{route=\"/r\"} 60.0306");
        assert_eq!(lines[16], "h_seconds_count{route=\"/r\"} 4");
        // Never decreasing.
        let values: Vec<u64> = lines[..15]
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    }

    #[test]
    fn requests_are_counted_by_template_method_and_status() {
        let metrics = Metrics::new();
        let token = metrics.route_slot(Some("/oauth/token"));
        metrics.record_request(token, method_slot(&Method::POST), 200, Duration::ZERO);
        metrics.record_request(token, method_slot(&Method::POST), 200, Duration::ZERO);
        metrics.record_request(token, method_slot(&Method::POST), 401, Duration::ZERO);
        let unknown = metrics.route_slot(Some("/not/a/template"));
        metrics.record_request(unknown, method_slot(&Method::TRACE), 418, Duration::ZERO);
        let unmatched = metrics.route_slot(None);
        metrics.record_request(unmatched, method_slot(&Method::GET), 404, Duration::ZERO);
        let text = metrics.render(&[("RS256", "current", 1)], &POOL, &Process::default());
        for line in [
            "tessera_http_requests_total{route=\"/oauth/token\",method=\"POST\",status=\"200\"} 2",
            "tessera_http_requests_total{route=\"/oauth/token\",method=\"POST\",status=\"401\"} 1",
            "tessera_http_requests_total{route=\"other\",method=\"other\",status=\"4xx\"} 1",
            "tessera_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
            "tessera_http_request_duration_seconds_count{route=\"/oauth/token\"} 3",
            "tessera_signing_keys{alg=\"RS256\",state=\"current\"} 1",
            "tessera_tokens_issued_total{grant_type=\"implicit\"} 0",
            "tessera_db_connections{state=\"idle\"} 1",
            "tessera_db_connections{state=\"in_use\"} 2",
            "tessera_db_connections_max 16",
            "tessera_db_failing_fast 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Each family is declared once, before its samples.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(types, helps);
    }

    #[test]
    fn counters_land_in_their_labels() {
        let metrics = Metrics::new();
        metrics.token_issued(Grant::ClientCredentials);
        metrics.token_error("invalid_client");
        metrics.token_error("something_new");
        metrics.login(Login::WrongCredentials);
        metrics.login(Login::WrongCredentials);
        let text = metrics.render(&[], &POOL, &Process::default());
        for line in [
            "tessera_tokens_issued_total{grant_type=\"client_credentials\"} 1",
            "tessera_token_errors_total{error=\"invalid_client\"} 1",
            "tessera_token_errors_total{error=\"other\"} 1",
            "tessera_logins_total{outcome=\"wrong_credentials\"} 2",
            "tessera_logins_total{outcome=\"success\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

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

    /// `ROUTES` must list every template the router registers, or its requests would be
    /// counted as `other`: read them from the source.
    #[test]
    fn every_route_of_the_router_is_listed() {
        let mut found = Vec::new();
        for (source, prefix) in [
            (include_str!("../../lib.rs"), ""),
            (include_str!("../../management/mod.rs"), "/api/v2"),
        ] {
            for piece in source.split(".route(").skip(1) {
                let path = piece.trim_start().strip_prefix('"').unwrap();
                let path = &path[..path.find('"').unwrap()];
                found.push(format!("{prefix}{path}"));
            }
        }
        assert!(found.len() > 20, "{found:?}");
        for template in &found {
            assert!(
                ROUTES.contains(&template.as_str()),
                "{template} is not in ROUTES"
            );
        }
        // Listing more is harmless (a route being added elsewhere may be listed first): a
        // template never requested is never rendered.
    }

    #[test]
    fn proc_files_are_read() {
        assert_eq!(
            resident_bytes("Name:\tx\nVmRSS:\t   2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(
            max_open_files(
                "Limit                     Soft Limit           Hard Limit           Units     \n\
                 Max open files            1024                 524288               files     \n"
            ),
            Some(1024)
        );
        if cfg!(target_os = "linux") {
            let process = Process::read();
            assert!(process.resident_memory_bytes.unwrap() > 0);
            assert!(process.open_fds.unwrap() > 0);
        }
    }
}
