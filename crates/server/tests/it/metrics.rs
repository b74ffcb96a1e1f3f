//! The metrics listener: `/metrics` on its own port (never the issuer's), in the text
//! exposition format, counting what happened.

use std::collections::HashMap;

use tessera_testkit::{PASSWORD, TestServer};

async fn spawn() -> TestServer {
    tessera_testkit::spawn_with(|config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
}

/// One sample: metric name, labels (sorted), value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A strict reader of the text format 0.0.4, as far as this server writes it: every
/// line is `# HELP`, `# TYPE` or a sample of the family declared just before it; names
/// and label names are valid, label values properly escaped, values numbers. Panics
/// with the offending line otherwise.
fn parse(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "the exposition ends with a line feed");
    let mut samples = Vec::new();
    let mut family: Option<(String, String)> = None; // (name, type)
    let mut declared = std::collections::HashSet::new();
    let mut helped = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name), "{line}");
            assert!(!help.is_empty(), "{line}");
            assert_valid_help(help, line);
            helped = Some(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name type");
            assert!(valid_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert_eq!(helped.as_deref(), Some(name), "HELP before TYPE: {line}");
            assert!(declared.insert(name.to_string()), "declared twice: {line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counters end in _total: {line}");
            }
            family = Some((name.to_string(), kind.to_string()));
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let sample = parse_sample(line);
        let (family_name, kind) = family.as_ref().expect("a sample after a TYPE line");
        let belongs = if kind == "histogram" {
            ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| sample.name == format!("{family_name}{suffix}"))
        } else {
            &sample.name == family_name
        };
        assert!(belongs, "{line} is not in family {family_name}");
        if kind == "histogram" && sample.name.ends_with("_bucket") {
            assert!(
                sample.labels.iter().any(|(k, _)| k == "le"),
                "buckets have le: {line}"
            );
        }
        if kind == "counter" {
            assert!(sample.value >= 0.0, "{line}");
        }
        samples.push(sample);
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn assert_valid_help(help: &str, line: &str) {
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            assert!(
                matches!(chars.next(), Some('\\' | 'n')),
                "bad escape in HELP: {line}"
            );
        }
    }
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(valid_name(name), "bad name: {line}");
    let mut labels = Vec::new();
    let mut i = name_end;
    if line[i..].starts_with('{') {
        i += 1;
        if line[i..].starts_with('}') {
            i += 1;
        } else {
            loop {
                let eq = i + line[i..]
                    .find('=')
                    .unwrap_or_else(|| panic!("label without =: {line}"));
                let key = &line[i..eq];
                assert!(
                    valid_name(key) && !key.contains(':'),
                    "bad label name {key:?}: {line}"
                );
                i = eq + 1;
                assert!(line[i..].starts_with('"'), "label value is quoted: {line}");
                i += 1;
                let mut value = String::new();
                let mut chars = line[i..].chars();
                loop {
                    let c = chars
                        .next()
                        .unwrap_or_else(|| panic!("unterminated label value: {line}"));
                    i += c.len_utf8();
                    match c {
                        '\\' => {
                            let escaped = chars.next();
                            i += escaped.map_or(0, char::len_utf8);
                            match escaped {
                                Some('\\') => value.push('\\'),
                                Some('"') => value.push('"'),
                                Some('n') => value.push('\n'),
                                other => panic!("bad escape {other:?} in {line}"),
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.push((key.to_string(), value));
                match line[i..].chars().next() {
                    Some(',') => i += 1,
                    Some('}') => {
                        i += 1;
                        break;
                    }
                    other => panic!("expected , or }} after a label, got {other:?}: {line}"),
                }
            }
        }
    }
    let value_text = line[i..]
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("one space before the value: {line}"));
    assert!(
        !value_text.contains(' '),
        "no timestamp expected, one value: {line}"
    );
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        text => text
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value {text:?}: {line}")),
    };
    let mut sorted = labels;
    sorted.sort();
    let before = sorted.len();
    sorted.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(before, sorted.len(), "duplicate label name: {line}");
    Sample {
        name: name.to_string(),
        labels: sorted,
        value,
    }
}

#[test]
fn the_parser_refuses_what_the_format_does_not_allow() {
    let ok = "# HELP a_total Help with \\\\ and \\n.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\",y=\"\"} 3\n";
    let samples = parse(ok);
    assert_eq!(samples[0].labels[0], ("x".into(), "q\"\\\n".into()));
    for bad in [
        "a_total 1\n",                                                      // no TYPE
        "# HELP a_total h\n# TYPE a_total counter\na_total{x=\"1} 1\n",     // unterminated
        "# HELP a_total h\n# TYPE a_total counter\na_total{x=1} 1\n",       // unquoted
        "# HELP a_total h\n# TYPE a_total counter\na_total{x=\"\\q\"} 1\n", // bad escape
        "# HELP a_total h\n# TYPE a_total counter\na_total  1\n",           // two spaces
        "# HELP a_total h\n# TYPE a_total counter\nb_total 1\n",            // other family
        "# HELP a h\n# TYPE a counter\na 1\n",                              // counter w/o _total
        "# HELP a_total h\n# TYPE a_total counter\na_total one\n",          // not a number
    ] {
        let result = std::panic::catch_unwind(|| parse(bad));
        assert!(result.is_err(), "accepted {bad:?}");
    }
}

/// The scrape, parsed and keyed by `name{k="v",…}` with sorted labels.
struct Scrape {
    text: String,
    values: HashMap<String, f64>,
}

impl Scrape {
    async fn of(server: &TestServer) -> Scrape {
        let base = server.metrics_base.as_ref().expect("metrics enabled");
        let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        let mut values = HashMap::new();
        for sample in parse(&text) {
            let key = key(&sample.name, &sample.labels);
            assert!(
                values.insert(key, sample.value).is_none(),
                "duplicate series"
            );
        }
        Scrape { text, values }
    }

    /// The value of a series; absent series count as 0 (not yet seen).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        self.values.get(&key(name, &labels)).copied().unwrap_or(0.0)
    }
}

fn key(name: &str, labels: &[(String, String)]) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// How much every series moved between two scrapes, except those that move by themselves
/// (durations, process and connection-pool gauges, the database's writes and commits — the
/// audit log and background jobs write too — and the scrapes' own effects).
fn changes(before: &Scrape, after: &Scrape) -> HashMap<String, f64> {
    after
        .values
        .iter()
        .filter(|(key, _)| {
            !key.starts_with("tessera_process_")
                && !key.starts_with("tessera_db_connections")
                && !key.starts_with("tessera_db_writes")
                && !key.starts_with("tessera_db_commits")
                && !key.starts_with("tessera_http_request_duration_seconds")
        })
        .filter_map(|(key, value)| {
            let delta = value - before.values.get(key).copied().unwrap_or(0.0);
            (delta != 0.0).then(|| (key.clone(), delta))
        })
        .collect()
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    key(name, &labels)
}

async fn client_credentials(server: &TestServer, secret: &str) -> u16 {
    server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &server.m2m_client_id),
            ("client_secret", secret),
            ("audience", tessera_testkit::API),
        ])
        .await
        .0
}

#[tokio::test]
async fn a_token_request_moves_exactly_its_series() {
    let server = spawn().await;
    let before = Scrape::of(&server).await;
    assert_eq!(
        client_credentials(&server, &server.m2m_secret.clone()).await,
        200
    );
    let after = Scrape::of(&server).await;

    let expected: HashMap<String, f64> = [
        (
            series(
                "tessera_tokens_issued_total",
                &[("grant_type", "client_credentials")],
            ),
            1.0,
        ),
        (
            series(
                "tessera_http_requests_total",
                &[
                    ("route", "/oauth/token"),
                    ("method", "POST"),
                    ("status", "200"),
                ],
            ),
            1.0,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(changes(&before, &after), expected);
    // And it was timed.
    let count = |scrape: &Scrape| {
        scrape.get(
            "tessera_http_request_duration_seconds_count",
            &[("route", "/oauth/token")],
        )
    };
    assert_eq!(count(&after) - count(&before), 1.0);
    let inf = after.get(
        "tessera_http_request_duration_seconds_bucket",
        &[("route", "/oauth/token"), ("le", "+Inf")],
    );
    assert_eq!(inf, count(&after), "+Inf bucket equals _count");
    assert!(
        after.get(
            "tessera_http_request_duration_seconds_sum",
            &[("route", "/oauth/token")]
        ) > 0.0
    );
}

#[tokio::test]
async fn a_failed_token_request_counts_its_error_code() {
    let server = spawn().await;
    let before = Scrape::of(&server).await;
    assert_eq!(client_credentials(&server, "not-the-secret").await, 401);
    let after = Scrape::of(&server).await;
    let expected: HashMap<String, f64> = [
        (
            series("tessera_token_errors_total", &[("error", "invalid_client")]),
            1.0,
        ),
        (
            series(
                "tessera_http_requests_total",
                &[
                    ("route", "/oauth/token"),
                    ("method", "POST"),
                    ("status", "401"),
                ],
            ),
            1.0,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(changes(&before, &after), expected);
    // A grant type nobody supports.
    let (status, body) = server.token(&[("grant_type", "password")]).await;
    assert_eq!(status, 400, "{body}");
    let again = Scrape::of(&server).await;
    assert_eq!(
        again.get(
            "tessera_token_errors_total",
            &[("error", "invalid_request")]
        ) + again.get(
            "tessera_token_errors_total",
            &[("error", "unsupported_grant_type")]
        ),
        1.0,
        "{}",
        again.text
    );
    assert_eq!(
        again.get(
            "tessera_tokens_issued_total",
            &[("grant_type", "client_credentials")]
        ),
        0.0
    );
}

#[tokio::test]
async fn logins_are_counted_by_outcome_and_nothing_personal_is_exposed() {
    let server = spawn().await;
    let browser = tessera_testkit::browser();
    let authorize = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
        ("code_challenge", &tessera_testkit::pkce().challenge),
        ("code_challenge_method", "S256"),
    ]);
    let before = Scrape::of(&server).await;
    let response = server
        .submit_login(&browser, &authorize, &server.user_email, "wrong password!")
        .await;
    assert_eq!(response.status(), 401);
    let after = Scrape::of(&server).await;
    let moved = changes(&before, &after);
    assert_eq!(
        moved.get(&series(
            "tessera_logins_total",
            &[("outcome", "wrong_credentials")]
        )),
        Some(&1.0),
        "{moved:?}"
    );
    assert_eq!(
        moved.get(&series(
            "tessera_http_requests_total",
            &[("route", "/u/login"), ("method", "POST"), ("status", "401")]
        )),
        Some(&1.0),
        "{moved:?}"
    );
    assert!(
        !moved
            .keys()
            .any(|k| k.starts_with("tessera_logins_total") && !k.contains("wrong_credentials")),
        "{moved:?}"
    );

    let response = server
        .submit_login(&browser, &authorize, &server.user_email, PASSWORD)
        .await;
    assert_eq!(response.status(), 303);
    let last = Scrape::of(&server).await;
    assert_eq!(
        last.get("tessera_logins_total", &[("outcome", "success")]),
        1.0
    );
    // Route templates only: no query strings, ids, emails or client ids.
    for secret in [
        server.user_email.as_str(),
        "demo",
        server.spa_client_id.as_str(),
        server.m2m_client_id.as_str(),
        server.user_id.as_str(),
        "?",
    ] {
        assert!(
            !last.text.contains(secret),
            "{secret:?} in the scrape:\n{}",
            last.text
        );
    }
    assert!(last.text.contains("route=\"/authorize\""), "{}", last.text);
}

#[tokio::test]
async fn unknown_paths_and_templates_have_bounded_labels() {
    let server = spawn().await;
    let client = reqwest::Client::new();
    for path in ["/nope/1", "/nope/2", "/nope/3?x=1"] {
        let status = client.get(server.url(path)).send().await.unwrap().status();
        assert_eq!(status, 404);
    }
    // A template with a parameter: labelled by the template, not the value.
    let status = client
        .get(server.url("/static/does-not-exist.css"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    let scrape = Scrape::of(&server).await;
    assert_eq!(
        scrape.get(
            "tessera_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        3.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.get(
            "tessera_http_requests_total",
            &[
                ("route", "/static/{file}"),
                ("method", "GET"),
                ("status", "404")
            ]
        ),
        1.0,
        "{}",
        scrape.text
    );
    assert!(!scrape.text.contains("nope"));
    assert!(!scrape.text.contains("does-not-exist"));
    // A nested Management API route keeps its full template.
    let status = client
        .get(server.url("/api/v2/users/auth0%7Cabc"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let scrape = Scrape::of(&server).await;
    assert_eq!(
        scrape.get(
            "tessera_http_requests_total",
            &[
                ("route", "/api/v2/users/{id}"),
                ("method", "GET"),
                ("status", "401")
            ]
        ),
        1.0,
        "{}",
        scrape.text
    );
}

/// Every route of the router is counted under its own template: one request to each
/// template's path moves that template's series by one, and nothing lands in `other`.
#[tokio::test]
async fn every_route_is_counted_under_its_own_template() {
    let server = spawn().await;
    let templates: Vec<String> = tessera_server::route_templates().collect();
    for expected in ["/oauth/token", "/api/v2/users/{id}"] {
        assert!(templates.iter().any(|t| t == expected), "{templates:?}");
    }
    // No redirect followed: each request reaches exactly one route.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let before = Scrape::of(&server).await;
    for template in &templates {
        let path = template.replace("{id}", "x").replace("{file}", "x");
        client.get(server.url(&path)).send().await.unwrap();
    }
    let after = Scrape::of(&server).await;
    let mut counted: HashMap<String, f64> = HashMap::new();
    for (series, delta) in changes(&before, &after) {
        if let Some(rest) = series.strip_prefix("tessera_http_requests_total{") {
            let route = rest
                .split(',')
                .find_map(|label| label.strip_prefix("route="))
                .expect("a route label");
            *counted
                .entry(route.trim_matches('"').to_owned())
                .or_default() += delta;
        }
    }
    for template in &templates {
        assert_eq!(
            counted.remove(template),
            Some(1.0),
            "{template}: {}",
            after.text
        );
    }
    assert!(counted.is_empty(), "counted elsewhere: {counted:?}");
}

#[tokio::test]
async fn scrape_time_gauges_are_present() {
    let server = spawn().await;
    let scrape = Scrape::of(&server).await;
    for alg in ["RS256", "ES256", "EdDSA"] {
        for state in ["current", "next"] {
            assert_eq!(
                scrape.get("tessera_signing_keys", &[("alg", alg), ("state", state)]),
                1.0,
                "{alg} {state}:\n{}",
                scrape.text
            );
        }
    }
    // The pool: SQLite here, so at least one connection and never failing fast.
    let open = scrape.get("tessera_db_connections", &[("state", "idle")])
        + scrape.get("tessera_db_connections", &[("state", "in_use")]);
    assert!(open >= 1.0, "{open}");
    assert!(scrape.get("tessera_db_connections_max", &[]) >= open);
    assert_eq!(scrape.get("tessera_db_failing_fast", &[]), 0.0);
    assert!(scrape.get("tessera_process_uptime_seconds", &[]) >= 0.0);
    assert!(scrape.get("tessera_process_start_time_seconds", &[]) > 1.0e9);
    if cfg!(target_os = "linux") {
        assert!(scrape.get("tessera_process_resident_memory_bytes", &[]) > 0.0);
        assert!(scrape.get("tessera_process_open_fds", &[]) > 0.0);
    }
    assert_eq!(
        scrape.get(
            "tessera_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
}

#[tokio::test]
async fn metrics_are_only_on_their_own_port() {
    let server = spawn().await;
    let client = reqwest::Client::new();
    let response = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404, "never on the issuer's port");
    assert!(!response.text().await.unwrap().contains("tessera_"));

    let base = server.metrics_base.clone().unwrap();
    for path in ["/", "/healthz", "/metrics/", "/.well-known/jwks.json"] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // Scrapes are not counted among the server's requests.
    let first = Scrape::of(&server).await;
    let second = Scrape::of(&server).await;
    assert!(changes(&first, &second).is_empty());

    // Off by default.
    let plain = tessera_testkit::spawn().await;
    assert!(plain.metrics_base.is_none());
}
