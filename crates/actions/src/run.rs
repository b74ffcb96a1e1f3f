//! One trigger's run on a worker: the Rules (each in a fresh context), then the actions
//! (each in its own kept one), merged into one [`Outcome`].

use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::js::{Deadline, Execution, JsWorker, Program, Record, RecordedDenial, RuleState};
use crate::rules;
use crate::{Denial, ExecutionLog, Failure, Job, Outcome, Trigger};

/// A job as a worker runs it: the event already normalised and serialised by the caller.
pub(crate) struct Prepared {
    /// The job; its `event` is kept only for the Rules, which read it (otherwise `Null`).
    job: Job,
    event_json: String,
}

impl Prepared {
    /// Normalises and serialises the event. Runs on the caller's thread: the event's
    /// memory is freed where it was allocated, and the worker's time goes to JavaScript.
    pub(crate) fn new(mut job: Job) -> Prepared {
        normalise_event(&mut job.event);
        let event_json = job.event.to_string();
        if job.rules.is_empty() {
            job.event = Value::Null;
        }
        Prepared { job, event_json }
    }
}

/// Runs a prepared job to its end; every limit is enforced inside, so this always
/// returns. `running` names the rule or action under way, for the watchdog's message.
pub(crate) fn run_job(
    worker: &mut JsWorker,
    Prepared { job, event_json }: Prepared,
    limits: &crate::Limits,
    running: &Mutex<String>,
) -> Outcome {
    let set_running = |name: &str| {
        let mut running = running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        running.clear();
        running.push_str(name);
    };
    let trigger_deadline = Instant::now() + limits.per_trigger;
    let deadline = || {
        let own = Instant::now() + limits.per_action;
        if own < trigger_deadline {
            Deadline {
                at: own,
                is_trigger: false,
            }
        } else {
            Deadline {
                at: trigger_deadline,
                is_trigger: true,
            }
        }
    };
    let event = job.event;
    let mut outcome = Outcome::default();
    let mut executed_rules = Vec::new();

    if job.trigger == Trigger::PostLogin && !job.rules.is_empty() {
        let configuration_json = json_text(&job.configuration);
        let configuration_secrets: Vec<&str> =
            job.configuration.values().map(String::as_str).collect();
        let (mut user, mut context) = rules::initial_state(&event);
        for rule in &job.rules {
            set_running(&rule.name);
            let execution = worker.execute(
                Program::Rule {
                    script: &rule.script,
                    user_json: &user.to_string(),
                    context_json: &context.to_string(),
                    configuration_json: &configuration_json,
                },
                &configuration_secrets,
                deadline(),
            );
            let result = log_execution(&mut outcome, &rule.name, execution);
            executed_rules.push(rule.id.clone());
            match result {
                Err(message) => return failed(outcome, &rule.name, message),
                Ok((record, state)) => {
                    if let Some(denied) = record.denied {
                        outcome.denied = Some(denial(denied, &rule.name));
                        return outcome;
                    }
                    if let Some(state) = state {
                        user = state.user;
                        context = state.context;
                    }
                }
            }
        }
        match rules::effects(&context) {
            Err(message) => {
                let by = job
                    .rules
                    .last()
                    .map(|rule| rule.name.clone())
                    .unwrap_or_default();
                return failed(outcome, &by, message);
            }
            Ok(effects) => {
                merge(&mut outcome.id_token_claims, effects.id_token_claims);
                outcome.multifactor = effects.multifactor;
                merge(
                    &mut outcome.access_token_claims,
                    effects.access_token_claims,
                );
                if let Some(granted) = effects.scope {
                    let requested = requested_scopes(&event);
                    for scope in requested.iter().filter(|scope| !granted.contains(scope)) {
                        change_scope(&mut outcome, false, scope);
                    }
                    for scope in granted.iter().filter(|scope| !requested.contains(scope)) {
                        change_scope(&mut outcome, true, scope);
                    }
                }
            }
        }
    }

    for action in &job.actions {
        set_running(&action.name);
        let secrets_json = json_text(&action.secrets);
        let secrets: Vec<&str> = action.secrets.values().map(String::as_str).collect();
        let execution = worker.execute(
            Program::Action {
                trigger: job.trigger,
                code: &action.code,
                event_json: &event_json,
                secrets_json: &secrets_json,
                executed_rules: &executed_rules,
            },
            &secrets,
            deadline(),
        );
        match log_execution(&mut outcome, &action.name, execution) {
            Err(message) => return failed(outcome, &action.name, message),
            Ok((record, _)) => {
                let denied = apply(&mut outcome, record);
                if let Some(denied) = denied {
                    outcome.denied = Some(denial(denied, &action.name));
                    return outcome;
                }
            }
        }
    }
    outcome
}

/// Merges one action's record (its denial, if any, is returned, not applied).
fn apply(outcome: &mut Outcome, record: Record) -> Option<RecordedDenial> {
    merge(&mut outcome.access_token_claims, record.access_token_claims);
    merge(&mut outcome.id_token_claims, record.id_token_claims);
    merge(&mut outcome.app_metadata, record.app_metadata);
    merge(&mut outcome.user_metadata, record.user_metadata);
    for (add, scope) in &record.scopes {
        change_scope(outcome, *add, scope);
    }
    if let Some(multifactor) = record.multifactor {
        outcome.multifactor = multifactor;
    }
    record.denied
}

/// A later add of a scope cancels an earlier remove, and the other way round.
fn change_scope(outcome: &mut Outcome, add: bool, scope: &str) {
    let (to, from) = if add {
        (&mut outcome.added_scopes, &mut outcome.removed_scopes)
    } else {
        (&mut outcome.removed_scopes, &mut outcome.added_scopes)
    };
    from.retain(|existing| existing != scope);
    if !to.iter().any(|existing| existing == scope) {
        to.push(scope.to_string());
    }
}

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (name, value) in from {
        into.insert(name, value);
    }
}

fn denial(denied: RecordedDenial, by: &str) -> Denial {
    Denial {
        code: denied.code,
        reason: denied.reason,
        user_message: denied.user_message,
        by: by.to_string(),
    }
}

fn failed(mut outcome: Outcome, by: &str, message: String) -> Outcome {
    outcome.failed = Some(Failure {
        by: by.to_string(),
        message,
    });
    outcome
}

fn log_execution(
    outcome: &mut Outcome,
    name: &str,
    execution: Execution,
) -> Result<(Record, Option<RuleState>), String> {
    outcome.logs.push(ExecutionLog {
        name: name.to_string(),
        stdout: execution.stdout,
        duration: execution.duration,
        error: execution.result.as_ref().err().cloned(),
    });
    execution.result
}

/// Auth0 guarantees `event.user.app_metadata` and `user_metadata` are objects.
fn normalise_event(event: &mut Value) {
    if !event.is_object() {
        *event = Value::Object(Map::new());
    }
    if let Some(user) = event.get_mut("user").and_then(Value::as_object_mut) {
        for field in ["app_metadata", "user_metadata"] {
            if !user.get(field).is_some_and(Value::is_object) {
                user.insert(field.to_string(), Value::Object(Map::new()));
            }
        }
    }
}

fn requested_scopes(event: &Value) -> Vec<String> {
    event
        .pointer("/transaction/requested_scopes")
        .and_then(Value::as_array)
        .map(|scopes| {
            scopes
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}
