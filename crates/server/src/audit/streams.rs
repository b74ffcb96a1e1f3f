//! Log streams' delivery: one task per node pushes the audit log to each active stream's
//! HTTP endpoint, in checkpoint order (`Store::logs_after`, exact on PostgreSQL too), at
//! least once.
//!
//! Every tick the task reads the tenant's streams (at most `MAX_LOG_STREAMS`) and, for
//! each one active and due, claims it with a lease in the database (a conditional
//! `UPDATE`: of several nodes one delivers a stream at a time, none twice concurrently).
//! Holding it, it reads up to [`BATCH`] events after the stream's cursor, keeps those its
//! filters pass, posts them in the stream's format with its headers, and moves the cursor
//! past the batch only after a 2xx; up to [`BATCHES_PER_CLAIM`] batches per claim, so a
//! claim ends well within its lease even when every request takes its whole timeout.
//!
//! A failure (no answer within [`TIMEOUT`], a refused connection, any status but 2xx —
//! redirects are not followed) keeps the cursor, counts one more consecutive failure and
//! waits `retry_base × 2^(failures−1)`, at most [`MAX_BACKOFF`], before the next attempt;
//! at `max_failures` consecutive failures (default [`MAX_FAILURES`], about an hour of
//! failing with the default base) the stream is `suspended` and delivery stops until an
//! administrator sets it `active` again, which resumes from the cursor. A failed batch may
//! be delivered again: receivers see duplicates of it, never a gap.
//!
//! What a failure keeps is a short status line (`HTTP 503`, `timed out`, …): never a
//! receiver's body, never the URL (it may carry a token), never the authorization.

use std::time::Duration;

use serde_json::{Value, json};
use tessera_store::{LogEntry, LogStream, log_id_number};

use crate::AppState;
use crate::management::log_streams::{authorization, passes};
use crate::management::wire;

/// Events read per batch (Auth0's batches are as large).
pub(crate) const BATCH: u32 = 100;
/// Batches one claim delivers at most.
const BATCHES_PER_CLAIM: usize = 5;
/// A receiver answers within this (connecting included), or the attempt failed.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim holds a stream: longer than a claim's batches at their timeout.
const LEASE: Duration = Duration::from_secs(120);
/// The longest wait between attempts of a failing stream.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Consecutive failures that suspend a stream: with the default base (1 s) and cap
/// (5 min), about an hour of failing.
pub(crate) const MAX_FAILURES: u32 = 20;

/// How delivery behaves (`ServerConfig::log_streams`).
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// How often the task looks for streams to deliver.
    pub poll_interval: Duration,
    /// The wait after the first failure; doubled with each further one.
    pub retry_base: Duration,
    /// Consecutive failures that suspend a stream.
    pub max_failures: u32,
    /// How long a claim holds a stream (default [`LEASE`]): a node stopped while
    /// delivering leaves the stream to the others once it runs out. Longer than a claim's
    /// batches at their timeout, or two nodes may deliver one stream at once.
    pub lease: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            max_failures: MAX_FAILURES,
            lease: LEASE,
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The wait before the attempt after `failures` consecutive failures.
fn backoff(settings: &StreamSettings, failures: i64) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    settings
        .retry_base
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// Runs for the server's life.
pub(crate) async fn deliver(state: AppState) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent("Tessera log stream")
        .build()
        .expect("a client without custom roots builds");
    let owner = format!("node-{}", tessera_core::ids::hex_id(8));
    let settings = state.config().log_streams;
    let mut tick = tokio::time::interval(settings.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let streams = match state.store().list_log_streams().await {
            Ok(streams) => streams,
            Err(error) => {
                tracing::warn!(%error, "log streams could not be read");
                continue;
            }
        };
        let now = crate::audit::now_millis();
        let mut deliveries = tokio::task::JoinSet::new();
        for stream in streams {
            if stream.status != "active" || stream.next_attempt_at > now {
                continue;
            }
            // Nothing new: no claim (a write) for an idle stream.
            match state.store().logs_after(Some(stream.cursor), 1, None).await {
                Ok(next) if next.is_empty() => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "audit log could not be read");
                    continue;
                }
            }
            let (state, http, owner) = (state.clone(), http.clone(), owner.clone());
            deliveries.spawn(async move { deliver_one(&state, &http, &owner, &stream.id).await });
        }
        while deliveries.join_next().await.is_some() {}
    }
}

/// Claims one stream and delivers what is due; every store error ends the claim (the
/// lease runs out and the next tick tries again).
async fn deliver_one(state: &AppState, http: &reqwest::Client, owner: &str, id: &str) {
    let store = state.store();
    let settings = state.config().log_streams;
    let now = crate::audit::now_millis();
    let claimed = store
        .claim_log_stream(id, owner, now, now + millis(settings.lease))
        .await;
    let mut stream = match claimed {
        Ok(Some(stream)) => stream,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, stream = id, "log stream could not be claimed");
            return;
        }
    };
    let one_at_a_time =
        stream.sink.get("httpContentFormat").and_then(Value::as_str) == Some("JSONOBJECT");
    for _ in 0..BATCHES_PER_CLAIM {
        let take = if one_at_a_time { 1 } else { BATCH };
        let entries = match store.logs_after(Some(stream.cursor), take, None).await {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, stream = id, "audit log could not be read");
                return;
            }
        };
        let Some(last) = entries.last().and_then(|e| log_id_number(&e.log_id)) else {
            break;
        };
        let full = entries.len() == take as usize;
        let passing: Vec<&LogEntry> = entries
            .iter()
            .filter(|entry| passes(&stream.filters, &entry.event.log_type))
            .collect();
        if !passing.is_empty()
            && let Err(why) = post(state, http, &stream, &passing).await
        {
            state.metrics().log_stream_failed();
            let failures = stream.failures + 1;
            let next = crate::audit::now_millis() + millis(backoff(&settings, failures));
            match store
                .log_stream_failed(id, owner, &why, next, i64::from(settings.max_failures))
                .await
            {
                Ok(Some(counted)) if counted >= i64::from(settings.max_failures) => {
                    tracing::warn!(stream = id, failures = counted, error = %why,
                        "log stream suspended after consecutive failures");
                }
                Ok(_) => {
                    tracing::debug!(stream = id, error = %why, "log stream delivery failed");
                }
                Err(error) => tracing::warn!(%error, stream = id, "log stream failure not kept"),
            }
            return;
        }
        state.metrics().log_stream_delivered(passing.len() as u64);
        // The cursor moves and the lease is given back; a backlog is claimed again at
        // once (here, or by another node that got there first).
        match store.log_stream_delivered(id, owner, last).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(%error, stream = id, "log stream cursor not kept");
                return;
            }
        }
        stream.cursor = last;
        stream.failures = 0;
        if !full {
            return;
        }
        let now = crate::audit::now_millis();
        match store
            .claim_log_stream(id, owner, now, now + millis(settings.lease))
            .await
        {
            Ok(Some(again)) => stream = again,
            _ => return,
        }
    }
    // BATCHES_PER_CLAIM delivered and more waiting: give the lease back for the next tick.
    let _ = store.log_stream_delivered(id, owner, stream.cursor).await;
}

/// The body a batch is posted as: each event `{log_id, data}` as Auth0 streams them —
/// one per line (`JSONLINES`), an array (`JSONARRAY`), or one object (`JSONOBJECT`, a
/// request per event).
fn body(format: &str, entries: &[&LogEntry]) -> Vec<u8> {
    let items = entries
        .iter()
        .map(|entry| json!({ "log_id": entry.log_id, "data": wire::log_event(entry) }));
    match format {
        "JSONARRAY" => serde_json::to_vec(&items.collect::<Vec<_>>()).unwrap_or_default(),
        "JSONOBJECT" => items
            .map(|item| serde_json::to_vec(&item).unwrap_or_default())
            .next()
            .unwrap_or_default(),
        _ => {
            let mut out = Vec::new();
            for item in items {
                out.extend(serde_json::to_vec(&item).unwrap_or_default());
                out.push(b'\n');
            }
            out
        }
    }
}

/// Posts one batch; `Err` is the status line kept, without secrets.
async fn post(
    state: &AppState,
    http: &reqwest::Client,
    stream: &LogStream,
    entries: &[&LogEntry],
) -> Result<(), String> {
    let text = |name: &str| stream.sink.get(name).and_then(Value::as_str);
    let endpoint = text("httpEndpoint").ok_or("no endpoint")?;
    let format = text("httpContentFormat").unwrap_or("JSONLINES");
    let content_type = text("httpContentType").unwrap_or("application/json");
    let mut request = http
        .post(endpoint)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body(format, entries));
    if let Some(headers) = stream
        .sink
        .get("httpCustomHeaders")
        .and_then(Value::as_array)
    {
        for header in headers {
            if let (Some(name), Some(value)) = (
                header.get("header").and_then(Value::as_str),
                header.get("value").and_then(Value::as_str),
            ) {
                request = request.header(name, value);
            }
        }
    }
    if stream.sealed_authorization.is_some() {
        let authorization = authorization(&state.config().master_key, stream)
            .ok_or("the authorization could not be unsealed (another master key?)")?;
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
    }
    let response = request.send().await.map_err(|error| {
        if error.is_timeout() {
            format!("no answer within {} s", TIMEOUT.as_secs())
        } else if error.is_connect() {
            "could not connect".to_string()
        } else if error.is_builder() {
            "the request could not be built".to_string()
        } else {
            "the request failed".to_string()
        }
    })?;
    let status = response.status();
    // The body is not read: dropping the response closes the connection, whatever its size.
    drop(response);
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_cap() {
        let settings = StreamSettings::default();
        let waits: Vec<u64> = [1, 2, 3, 9, 10, 20, 1000]
            .iter()
            .map(|&failures| backoff(&settings, failures).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 256, 300, 300, 300]);
    }
}
