//! Shared fixtures for the engine's tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_actions::{Action, Engine, Job, Limits, Outcome, Rule, Trigger};

pub(crate) fn engine() -> Engine {
    Engine::start(Limits::default())
}

/// The default action limit, a shorter trigger limit so that stuck workers are given up
/// for sooner in tests.
pub(crate) fn fast_engine(workers: usize) -> Engine {
    Engine::start(Limits {
        per_action: Duration::from_secs(1),
        per_trigger: Duration::from_secs(2),
        memory_bytes: 32 * 1024 * 1024,
        workers,
        log_bytes: 256,
    })
}

pub(crate) fn post_login_event() -> Value {
    json!({
        "user": {
            "user_id": "auth0|u1",
            "email": "ada@example.com",
            "email_verified": true,
            "name": "Ada",
            "app_metadata": {"emp_id": "E-42", "plan": "gold"},
            "user_metadata": {"color": "blue"},
        },
        "authorization": {"roles": ["admin", "editor"]},
        "client": {"client_id": "client-1", "name": "Web", "metadata": {"tier": "internal"}},
        "connection": {"id": "con_1", "name": "Username-Password-Authentication", "strategy": "auth0", "metadata": {}},
        "request": {"ip": "192.0.2.7", "method": "GET", "user_agent": "Tests/1.0", "query": {"prompt": "login"}},
        "resource_server": {"identifier": "https://api.example.com"},
        "transaction": {"protocol": "oidc-basic-profile", "requested_scopes": ["openid", "profile", "read:items"], "redirect_uri": "https://app.example.com/cb"},
        "stats": {"logins_count": 7},
        "tenant": {"id": "tessera"},
    })
}

pub(crate) fn action(name: &str, code: &str) -> Action {
    Action {
        id: format!("act_{name}"),
        name: name.to_string(),
        code: code.to_string(),
        secrets: BTreeMap::new(),
    }
}

pub(crate) fn rule(name: &str, script: &str) -> Rule {
    Rule {
        id: format!("rul_{name}"),
        name: name.to_string(),
        script: script.to_string(),
    }
}

pub(crate) fn job(trigger: Trigger, event: Value, actions: Vec<Action>) -> Job {
    Job {
        trigger,
        event,
        rules: Vec::new(),
        configuration: BTreeMap::new(),
        actions,
        redirect: None,
    }
}

pub(crate) async fn run_actions(
    engine: &Engine,
    trigger: Trigger,
    event: Value,
    codes: &[&str],
) -> Outcome {
    let actions = codes
        .iter()
        .enumerate()
        .map(|(index, code)| action(&format!("action-{index}"), code))
        .collect();
    run(engine, job(trigger, event, actions)).await
}

/// Runs a job, bounded so a hang fails the test instead of blocking it.
pub(crate) async fn run(engine: &Engine, job: Job) -> Outcome {
    tokio::time::timeout(Duration::from_secs(60), engine.run(job))
        .await
        .expect("the engine answered")
        .expect("the engine is running")
}

pub(crate) fn failure_message(outcome: &Outcome) -> String {
    outcome
        .failed
        .as_ref()
        .map(|failure| failure.message.clone())
        .unwrap_or_else(|| panic!("expected a failure, got {outcome:?}"))
}
