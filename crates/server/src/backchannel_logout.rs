//! OIDC Back-Channel Logout 1.0: applications are told when a login session they were
//! used with ends, by a logout token posted to their `oidc_logout` URL.
//!
//! The store writes a notice per application in the transaction that ends the session
//! (`logout_notices`, with why it ended in Auth0's initiator names), so a notice is never
//! lost to a crash between the two. This task, one per node, polls for due notices,
//! claims each (a conditional `UPDATE`: of several nodes one posts it) and posts
//! `logout_token=<JWT>` as a form, beside its polls: a receiver that hangs holds only a
//! few posts of its own application ([`IN_FLIGHT_PER_APPLICATION`]). The application's settings are read at delivery: a
//! notice whose application no longer wants that initiator, or has no URL any more, is
//! dropped. A 2xx delivers it; anything else (no answer within [`TIMEOUT`], a refused
//! connection, another status — redirects are not followed) is tried again after
//! `retry_base × 2^(attempts−1)`, and dropped after `max_attempts`. Both outcomes are in
//! the audit log as Auth0 writes them (`oidc_backchannel_logout_succeeded` / `_failed`),
//! without the URL (it may carry a token) or the receiver's body.

use std::collections::HashMap;
use std::time::Duration;

use tessera_store::LogoutNotice;

use crate::AppState;
use crate::clock::now;

/// A receiver answers within this (connecting included), or the attempt failed.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a claim holds a notice: longer than one post at its timeout.
const LEASE_SECONDS: i64 = 30;

/// How logout notices are delivered (`ServerConfig::backchannel_logout`).
#[derive(Debug, Clone, Copy)]
pub struct LogoutDelivery {
    /// How often the task looks for due notices.
    pub poll_interval: Duration,
    /// The wait after the first failure, doubled with each further one (whole seconds).
    pub retry_base: Duration,
    /// Posts tried before a notice is given up.
    pub max_attempts: u32,
}

impl Default for LogoutDelivery {
    fn default() -> Self {
        LogoutDelivery {
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(2),
            // 2 + 4 + 8 + 16 s: a receiver restarting is waited for about half a minute.
            max_attempts: 5,
        }
    }
}

/// The wait in seconds before the next attempt after `attempts` failed ones.
fn backoff(settings: &LogoutDelivery, attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let base = i64::try_from(settings.retry_base.as_secs().max(1)).unwrap_or(1);
    base.saturating_mul(1 << doublings).min(3600)
}

/// Posts one node has in flight at most, and at most for one application: a receiver
/// that hangs holds a few of its own notices for the timeout, never the others' (the
/// posts run beside the polls; a poll leaves out the applications at their limit).
const IN_FLIGHT: usize = 64;
const IN_FLIGHT_PER_APPLICATION: usize = 4;

/// Runs for the server's life.
pub(crate) async fn deliver(state: AppState) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent("Tessera back-channel logout")
        .build()
        .expect("a client without custom roots builds");
    let settings = state.config().backchannel_logout;
    let mut tick = tokio::time::interval(settings.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut posts = tokio::task::JoinSet::new();
    // The application of each post in flight, by task, and how many each has.
    let mut posting: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut per_application: HashMap<String, usize> = HashMap::new();
    loop {
        tick.tick().await;
        while let Some(done) = posts.try_join_next_with_id() {
            let id = match done {
                Ok((id, ())) => id,
                Err(error) => error.id(),
            };
            if let Some(client_id) = posting.remove(&id)
                && let Some(count) = per_application.get_mut(&client_id)
            {
                *count -= 1;
                if *count == 0 {
                    per_application.remove(&client_id);
                }
            }
        }
        if posts.len() >= IN_FLIGHT {
            continue;
        }
        let busy: Vec<String> = per_application
            .iter()
            .filter(|(_, count)| **count >= IN_FLIGHT_PER_APPLICATION)
            .map(|(client_id, _)| client_id.clone())
            .collect();
        let due = match state.store().due_logout_notices(now(), &busy).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "logout notices could not be read");
                continue;
            }
        };
        for notice in due {
            let count = per_application.get(&notice.client_id).copied();
            if posts.len() >= IN_FLIGHT || count >= Some(IN_FLIGHT_PER_APPLICATION) {
                continue;
            }
            let client_id = notice.client_id.clone();
            *per_application.entry(client_id.clone()).or_default() += 1;
            let (state, http) = (state.clone(), http.clone());
            let task = posts.spawn(async move { deliver_one(&state, &http, notice).await });
            posting.insert(task.id(), client_id);
        }
    }
}

/// Claims one notice and posts it; a store error leaves it to the claim's end.
async fn deliver_one(state: &AppState, http: &reqwest::Client, notice: LogoutNotice) {
    let store = state.store();
    let claimed_at = now();
    match store
        .claim_logout_notice(notice.id, claimed_at, claimed_at + LEASE_SECONDS)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            tracing::warn!(%error, "a logout notice could not be claimed");
            return;
        }
    }
    let outcome = post(state, http, &notice).await;
    let settled = match outcome {
        Outcome::NotWanted => store.delete_logout_notice(notice.id).await,
        Outcome::Delivered => {
            record(state, &notice, "oidc_backchannel_logout_succeeded", None);
            store.delete_logout_notice(notice.id).await
        }
        Outcome::Failed(why) => {
            let attempts = notice.attempts + 1;
            let settings = state.config().backchannel_logout;
            if attempts >= i64::from(settings.max_attempts) {
                record(state, &notice, "oidc_backchannel_logout_failed", Some(&why));
                store.delete_logout_notice(notice.id).await
            } else {
                store
                    .retry_logout_notice(notice.id, now() + backoff(&settings, attempts))
                    .await
            }
        }
    };
    if let Err(error) = settled {
        tracing::warn!(%error, "a logout notice could not be settled");
    }
}

enum Outcome {
    Delivered,
    /// The application has no URL, or does not want this initiator (any more).
    NotWanted,
    /// The status line kept, without secrets.
    Failed(String),
}

async fn post(state: &AppState, http: &reqwest::Client, notice: &LogoutNotice) -> Outcome {
    let client = match state
        .config_reads()
        .client(state.store(), &notice.client_id)
        .await
    {
        Ok(client) => client,
        Err(_) => return Outcome::Failed("the application could not be read".into()),
    };
    let Some(logout) = client.and_then(|client| client.oidc_logout) else {
        return Outcome::NotWanted;
    };
    let Some(url) = logout.url().filter(|_| logout.notifies(&notice.initiator)) else {
        return Outcome::NotWanted;
    };
    let metadata = logout
        .includes_session_metadata()
        .then_some(&notice.session_metadata);
    let Ok(token) = crate::oauth::issue::logout_token(
        state,
        &notice.client_id,
        (&notice.user_id, &notice.sid),
        metadata,
    ) else {
        return Outcome::Failed("the logout token could not be signed".into());
    };
    let response = http
        .post(url)
        .header(reqwest::header::CACHE_CONTROL, "no-store")
        .form(&[("logout_token", token)])
        .send()
        .await;
    match response {
        // The body is not read: dropping the response closes the connection.
        Ok(response) if response.status().is_success() => Outcome::Delivered,
        Ok(response) => Outcome::Failed(format!("HTTP {}", response.status().as_u16())),
        Err(error) if error.is_timeout() => {
            Outcome::Failed(format!("no answer within {} s", TIMEOUT.as_secs()))
        }
        Err(error) if error.is_connect() => Outcome::Failed("could not connect".into()),
        Err(_) => Outcome::Failed("the request failed".into()),
    }
}

fn record(state: &AppState, notice: &LogoutNotice, log_type: &str, why: Option<&str>) {
    let description = match why {
        None => "Successful OIDC Back-Channel Logout request".to_string(),
        Some(why) => format!("Failed OIDC Back-Channel Logout request: {why}"),
    };
    let mut event = crate::audit::event(log_type, description);
    event.client_id = Some(notice.client_id.clone());
    event.user_id = Some(notice.user_id.clone());
    event.details = serde_json::json!({
        "sid": notice.sid,
        "initiator": notice.initiator,
        "attempts": notice.attempts + 1,
    });
    state.record_log(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_the_base() {
        let settings = LogoutDelivery::default();
        let waits: Vec<i64> = (1..=5).map(|a| backoff(&settings, a)).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32]);
        assert_eq!(backoff(&settings, 1_000), 3600);
    }
}
