//! Log streams on several nodes sharing one PostgreSQL database: events caused on every
//! node all reach the receiver, each stream delivered by one node at a time (the lease in
//! the database: the receiver never has two requests of the stream in flight, and no
//! event is accepted twice), and an event whose delivery was cut short by the node
//! holding the lease stopping is delivered by another node once that lease runs out.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use tessera_server::{ServerConfig, StreamSettings};
use tessera_store::Store;
use tessera_testkit::pg::PgServer;
use tessera_testkit::*;

/// A receiver that counts requests in flight (the most at once), keeps the ids it
/// accepted, and while `hold` is set keeps each request waiting until it is cleared, then
/// refuses it (503).
#[derive(Clone, Default)]
struct Receiver {
    accepted: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    hold: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
}

/// One request in flight, until dropped (also when its node hangs up mid-request).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> StatusCode {
    let now = receiver.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight(receiver.in_flight.clone());
    receiver.most_in_flight.fetch_max(now, Ordering::SeqCst);
    if receiver.hold.load(Ordering::SeqCst) {
        receiver.held.fetch_add(1, Ordering::SeqCst);
        // Bounded: released by the test, or given up after 30 s.
        for _ in 0..3000 {
            if !receiver.hold.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        // A little time in flight, so two deliveries at once would overlap.
        tokio::time::sleep(Duration::from_millis(15)).await;
        let ids: Vec<String> = std::str::from_utf8(&body)
            .unwrap()
            .lines()
            .map(|line| {
                let item: Value = serde_json::from_str(line).unwrap();
                item["log_id"].as_str().unwrap().to_string()
            })
            .collect();
        receiver.accepted.lock().unwrap().extend(ids);
        StatusCode::OK
    }
}

async fn start_receiver() -> (String, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/in", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

fn fast(config: &mut ServerConfig) {
    config.log_streams = StreamSettings {
        poll_interval: Duration::from_millis(20),
        retry_base: Duration::from_millis(10),
        max_failures: 1000,
        // Longer than a claim takes here, short enough to wait for.
        lease: Duration::from_secs(2),
    };
}

/// One event on the node at `base`: a client-credentials token (`seccft`).
async fn cause_event(first: &TestServer, base: &str) {
    let (status, body) = client_credentials(
        &reqwest::Client::new(),
        base,
        &first.m2m_client_id,
        &first.m2m_secret,
        API,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// The ids of the `seccft` events written after `cursor` (the stream's at its creation),
/// once there are `count` of them.
async fn written(store: &Store, cursor: i64, count: usize) -> Vec<String> {
    for _ in 0..1000 {
        let events = store
            .logs_after(Some(cursor), 1000, Some("seccft"))
            .await
            .unwrap();
        if events.len() >= count {
            return events.into_iter().map(|e| e.log_id).collect();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{count} seccft events were never written");
}

/// Waits (bounded, 30 s) until the receiver accepted every one of `ids`.
async fn until_accepted(receiver: &Receiver, ids: &[String]) {
    for _ in 0..3000 {
        let accepted: HashSet<String> = receiver.accepted.lock().unwrap().iter().cloned().collect();
        if ids.iter().all(|id| accepted.contains(id)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let accepted = receiver.accepted.lock().unwrap().clone();
    panic!("not every event arrived: wanted {ids:?}, accepted {accepted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_on_one_postgres_deliver_every_event_once_and_take_over_a_stopped_nodes_lease() {
    let database = PgServer::start();
    let url = database.database();
    let (endpoint, receiver) = start_receiver().await;
    // The tenant's seed: a node that looks for streams once, at its start (none yet).
    let seed = spawn_on_with(Some(&url), |config| {
        fast(config);
        config.log_streams.poll_interval = Duration::from_secs(3600);
    })
    .await;
    let token = seed
        .management_token(&["create:log_streams", "read:log_streams"])
        .await;

    // (Through the seed: a Management API token is for one issuer, and each node here
    // has its own.) Only the first node delivers: its delivery of the first event is held at the
    // receiver, so it holds the stream's lease when it stops.
    let (first_base, first) = another_node(&seed, &url, fast).await;
    receiver.hold.store(true, Ordering::SeqCst);
    let created = reqwest::Client::new()
        .post(seed.url("/api/v2/log-streams"))
        .bearer_auth(&token)
        .json(&json!({"name": "cluster", "sink": {"httpEndpoint": endpoint}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let cursor = seed
        .store
        .find_log_stream(created["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap()
        .cursor;
    cause_event(&seed, &first_base).await;
    for _ in 0..2000 {
        if receiver.held.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        receiver.held.load(Ordering::SeqCst) > 0,
        "the first node never delivered"
    );
    let (second_base, second) = another_node(&seed, &url, fast).await;
    // Stopped mid-request: its lease stays until it runs out, and the second node then
    // delivers the event the first did not finish.
    first.stop().await;
    receiver.hold.store(false, Ordering::SeqCst);
    let held_event = written(&seed.store, cursor, 1).await;
    until_accepted(&receiver, &held_event).await;

    // Two nodes (the second and a third), events caused on both, alternately.
    let (third_base, third) = another_node(&seed, &url, fast).await;
    for n in 0..20 {
        let base = if n % 2 == 0 {
            &second_base
        } else {
            &third_base
        };
        cause_event(&seed, base).await;
    }
    let all = written(&seed.store, cursor, 21).await;
    until_accepted(&receiver, &all).await;
    let accepted = receiver.accepted.lock().unwrap().clone();
    let distinct: HashSet<&String> = accepted.iter().collect();
    assert_eq!(
        distinct.len(),
        accepted.len(),
        "an event accepted twice: {accepted:?}"
    );
    assert_eq!(
        receiver.most_in_flight.load(Ordering::SeqCst),
        1,
        "two deliveries of the stream at once"
    );
    second.stop().await;
    third.stop().await;
}
