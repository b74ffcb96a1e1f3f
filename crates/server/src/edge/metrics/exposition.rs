//! The Prometheus text exposition format 0.0.4: what `GET /metrics` answers, rendered
//! from the counters at each scrape.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use tessera_store::PoolStats;

use super::process::Process;
use super::{
    BUCKETS, GRANTS, Histogram, LOGIN_OUTCOMES, METHODS, Metrics, STATUS_SLOTS, TOKEN_ERRORS,
    status_label,
};

impl Metrics {
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
                    &[
                        ("route", &route.label),
                        ("method", method),
                        ("status", code),
                    ],
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
                    ("route", &route.label),
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
            "Users who signed up (the hosted page and /dbconnections/signup).",
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
        out.counter(
            "tessera_log_events_dropped_total",
            "Audit log events dropped because the log's queue was full.",
            self.log_events_dropped.load(Relaxed),
        );
        out.counter(
            "tessera_log_stream_events_delivered_total",
            "Audit log events log streams' receivers accepted.",
            self.log_stream_events_delivered.load(Relaxed),
        );
        out.counter(
            "tessera_log_stream_failures_total",
            "Log stream deliveries that failed and wait to be tried again.",
            self.log_stream_failures.load(Relaxed),
        );

        out.family(
            "tessera_signing_keys",
            "Signing keys held (not retired), by algorithm and state.",
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
        out.counter(
            "tessera_db_writes_total",
            "SQLite: writes committed (zero on PostgreSQL).",
            database.writes,
        );
        out.counter(
            "tessera_db_commits_total",
            "SQLite: commits, one fsync each; several writes share one under load \
             (group commit).",
            database.commits,
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
    use std::time::Duration;

    use axum::http::Method;

    use super::*;
    use crate::edge::metrics::{Grant, Login, method_slot};

    const POOL: PoolStats = PoolStats {
        connections: 3,
        idle: 1,
        max_connections: 16,
        failing_fast: false,
        writes: 7,
        commits: 3,
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
        let metrics = Metrics::new(["/oauth/token".to_owned()]);
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
            "tessera_db_writes_total 7",
            "tessera_db_commits_total 3",
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
        let metrics = Metrics::new(["/oauth/token".to_owned()]);
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
}
