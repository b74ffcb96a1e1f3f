//! The server on PostgreSQL (a throwaway server, `tessera_testkit::pg`).
//! SECURITY.md, reliability: while the database restarts, requests get a fast 503 with
//! `Retry-After` — no hung request, no panic — and everything works again within seconds.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_testkit::pg::PgServer;
use tessera_testkit::*;

async fn token(server: &TestServer, http: &reqwest::Client) -> reqwest::Response {
    http.post(format!("{}/oauth/token", server.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", server.m2m_client_id.as_str()),
            ("client_secret", server.m2m_secret.as_str()),
            ("audience", API),
        ])
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("an answer, never a hung request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_answers_503_with_retry_after_while_postgres_restarts() {
    let mut database = PgServer::start();
    let server = spawn_on(&database.database()).await;
    let http = reqwest::Client::new();
    let response = token(&server, &http).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["aud"], API);

    database.stop();
    // What client credentials read is cached for half a second: the first answers after
    // the stop may still be 200. Then 503, each within the pool's acquire timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    let unavailable = loop {
        let started = Instant::now();
        let response = token(&server, &http).await;
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        if response.status() == 503 {
            break response;
        }
        assert_eq!(response.status(), 200, "only 200 (cached) or 503");
        assert!(Instant::now() < deadline, "never answered 503");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        unavailable.headers()["retry-after"],
        "2",
        "{:?}",
        unavailable.headers()
    );
    let body: Value = unavailable.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    assert!(health.headers().contains_key("retry-after"));

    database.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = token(&server, &http).await;
        if response.status() == 200 {
            let body: Value = response.json().await.unwrap();
            server
                .verify(body["access_token"].as_str().unwrap(), API)
                .await;
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// Clients requesting tokens over and over, 20 at a time, counted by answer.
struct Clients {
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct Counts {
    issued: AtomicU64,
    unavailable: AtomicU64,
    /// The longest any request took, in milliseconds.
    slowest_ms: AtomicU64,
    /// Anything but 200 and 503 with `Retry-After`.
    wrong: Mutex<Vec<String>>,
}

impl Clients {
    fn start(server: &TestServer, clients: usize) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let http = reqwest::Client::new();
        let tasks = (0..clients)
            .map(|_| {
                let (stop, counts, http) = (stop.clone(), counts.clone(), http.clone());
                let form = [
                    ("grant_type", "client_credentials".to_string()),
                    ("client_id", server.m2m_client_id.clone()),
                    ("client_secret", server.m2m_secret.clone()),
                    ("audience", API.to_string()),
                ];
                let url = format!("{}/oauth/token", server.base);
                tokio::spawn(async move {
                    while !stop.load(Relaxed) {
                        let started = Instant::now();
                        let answer = http
                            .post(&url)
                            .form(&form)
                            .timeout(Duration::from_secs(20))
                            .send()
                            .await;
                        let took = u64::try_from(started.elapsed().as_millis()).unwrap();
                        counts.slowest_ms.fetch_max(took, Relaxed);
                        match answer {
                            Ok(response) if response.status() == 200 => {
                                counts.issued.fetch_add(1, Relaxed);
                            }
                            Ok(response)
                                if response.status() == 503
                                    && response.headers().contains_key("retry-after") =>
                            {
                                counts.unavailable.fetch_add(1, Relaxed);
                                // Not a spin: a refused client waits a little.
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            other => counts.wrong.lock().unwrap().push(format!("{other:?}")),
                        }
                    }
                })
            })
            .collect();
        Clients {
            stop,
            counts,
            tasks,
        }
    }

    fn issued(&self) -> u64 {
        self.counts.issued.load(Relaxed)
    }

    fn unavailable(&self) -> u64 {
        self.counts.unavailable.load(Relaxed)
    }

    /// Stops the clients; returns the longest request and the unexpected answers.
    async fn finish(self) -> (Duration, Vec<String>) {
        self.stop.store(true, Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let slowest = Duration::from_millis(self.counts.slowest_ms.load(Relaxed));
        let wrong = std::mem::take(&mut *self.counts.wrong.lock().unwrap());
        (slowest, wrong)
    }
}

/// `tessera_db_failing_fast` on the metrics listener: whether the circuit breaker is open.
async fn failing_fast(server: &TestServer) -> bool {
    let metrics = server.metrics_base.as_ref().expect("a metrics listener");
    let text = reqwest::get(format!("{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    match text
        .lines()
        .find_map(|line| line.strip_prefix("tessera_db_failing_fast "))
    {
        Some("1") => true,
        Some("0") => false,
        other => panic!("tessera_db_failing_fast is {other:?}"),
    }
}

/// Polls `check` (at most 30 s) until it holds.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 10, defect 3, the way an outage happens: PostgreSQL stops while 20 clients keep
/// requesting tokens. The first 503s come after the acquire timeout; then the circuit
/// breaker is open (`tessera_db_failing_fast 1`) and the 503s come at once — far more than
/// 20 in 3 s, and 10 requests in a row take far less than 10 × 2 s. Once PostgreSQL is
/// back, tokens are issued again and the gauge returns to 0. Nothing but 200 and 503 with
/// `Retry-After`, and no request hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_under_load_fails_fast_and_recovers() {
    let mut database = PgServer::start();
    let server = spawn_on_with(Some(&database.database()), |config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let clients = Clients::start(&server, 20);
    eventually("no tokens issued", || {
        let issued = clients.issued();
        async move { issued >= 100 }
    })
    .await;
    assert!(!failing_fast(&server).await);

    tokio::task::block_in_place(|| database.stop());
    eventually("the breaker did not open", || failing_fast(&server)).await;

    let before = clients.unavailable();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let refused = clients.unavailable() - before;
    assert!(refused > 200, "only {refused} answers 503 in 3 s");
    let http = reqwest::Client::new();
    let started = Instant::now();
    for _ in 0..10 {
        let response = token(&server, &http).await;
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "10 requests took {:?}",
        started.elapsed()
    );
    assert!(failing_fast(&server).await, "open for the whole outage");

    tokio::task::block_in_place(|| database.resume());
    let issued = clients.issued();
    eventually("the server did not recover", || {
        let now = clients.issued();
        async move { now > issued + 100 }
    })
    .await;
    let (slowest, wrong) = clients.finish().await;
    assert_eq!(wrong, Vec::<String>::new());
    // At most the acquire timeout and the breaker's own attempt, with room for a slow machine.
    assert!(
        slowest < Duration::from_secs(15),
        "a request took {slowest:?}"
    );
    eventually("the breaker did not close", || async {
        !failing_fast(&server).await
    })
    .await;
    let response = token(&server, &http).await;
    assert_eq!(response.status(), 200);
}
