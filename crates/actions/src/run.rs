//! One trigger's run on a worker: the Rules (each in a fresh context), then the actions
//! (each in its own kept one), merged into one [`Outcome`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::js::{
    Deadline, Execution, JsWorker, MetadataChange, Program, Record, RecordedDenial,
    RecordedRedirect, RuleState,
};
use crate::{
    Denial, ExecutionLog, Failure, Job, Outcome, Redirect, RedirectContext, Trigger, earliest,
};
use crate::{metadata, rules};

/// The handler a resumed run calls on the action that redirected.
const CONTINUE_HANDLER: &str = "onContinuePostLogin";
/// The longest URL `sendUserTo` may produce, its query parameters included.
const MAX_REDIRECT_URL_BYTES: usize = 2048;

/// A job as a worker runs it: the event already normalised and serialised by the caller.
pub(crate) struct Prepared {
    /// The job; its `event` is kept only for the Rules, which read it (otherwise `Null`).
    job: Job,
    event_json: String,
    /// `api.redirect`'s context for `onExecutePostLogin` executions, and for the
    /// `onContinuePostLogin` one of a resumed run (with the request's body and query).
    redirect_json: String,
    continue_json: String,
    /// Whether the event has `refresh_token` (a refresh token exchange), which
    /// `api.refreshToken.revoke` needs.
    exchanges_refresh_token: bool,
    /// Whether the event has `session` (a browser's sign-in), which `api.session.revoke`
    /// needs.
    has_session: bool,
}

impl Prepared {
    /// Normalises and serialises the event. Runs on the caller's thread: the event's
    /// memory is freed where it was allocated, and the worker's time goes to JavaScript.
    pub(crate) fn new(mut job: Job) -> Prepared {
        normalise_event(&mut job.event);
        let event_json = job.event.to_string();
        let exchanges_refresh_token = job
            .event
            .get("refresh_token")
            .is_some_and(|token| !token.is_null());
        let has_session = job
            .event
            .get("session")
            .is_some_and(|session| !session.is_null());
        let (redirect_json, continue_json) = match &job.redirect {
            None => ("null".to_string(), "null".to_string()),
            Some(context) => (
                redirect_json(context, None),
                match context.resume_at {
                    Some(_) => redirect_json(context, Some(&job.event)),
                    None => "null".to_string(),
                },
            ),
        };
        if job.rules.is_empty() {
            job.event = Value::Null;
        }
        Prepared {
            job,
            event_json,
            redirect_json,
            continue_json,
            exchanges_refresh_token,
            has_session,
        }
    }
}

/// Runs a prepared job to its end; every limit is enforced inside, so this always
/// returns. `running` names the rule or action under way, for the watchdog's message.
pub(crate) fn run_job(
    worker: &mut JsWorker,
    Prepared {
        job,
        mut event_json,
        redirect_json,
        continue_json,
        exchanges_refresh_token,
        has_session,
    }: Prepared,
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
    let resume_at = job.redirect.as_ref().and_then(|context| context.resume_at);
    let kept_refresh_token_metadata = job
        .redirect
        .as_ref()
        .and_then(|context| context.kept_refresh_token_metadata.as_ref());
    if let Some(index) = resume_at
        && (job.trigger != Trigger::PostLogin || index >= job.actions.len())
    {
        let message = format!(
            "the run cannot resume at action {index}: {} has {} bound action(s)",
            job.trigger.id(),
            job.actions.len()
        );
        return failed(outcome, job.trigger.id(), message);
    }

    // A resumed run's Rules ran before the user was sent away.
    if job.trigger == Trigger::PostLogin && !job.rules.is_empty() && resume_at.is_none() {
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

    let first = resume_at.unwrap_or(0);
    for (index, action) in job.actions.iter().enumerate().skip(first) {
        set_running(&action.name);
        let continuing = resume_at == Some(index);
        let secrets_json = json_text(&action.secrets);
        let secrets: Vec<&str> = action.secrets.values().map(String::as_str).collect();
        let execution = worker.execute(
            Program::Action {
                trigger: job.trigger,
                code: &action.code,
                handler: if continuing {
                    CONTINUE_HANDLER
                } else {
                    job.trigger.handler()
                },
                event_json: &event_json,
                secrets_json: &secrets_json,
                redirect_json: if continuing {
                    &continue_json
                } else {
                    &redirect_json
                },
                executed_rules: &executed_rules,
            },
            &secrets,
            deadline(),
        );
        match log_execution(&mut outcome, &action.name, execution) {
            Err(message) => return failed(outcome, &action.name, message),
            Ok((mut record, _)) => {
                let redirect = record.redirect.take();
                // Written even when the action denies, as user metadata is.
                if let Err(message) = change_metadata(
                    &mut outcome,
                    &mut record,
                    (has_session, kept_refresh_token_metadata),
                    &mut event_json,
                ) {
                    if let Some(log) = outcome.logs.last_mut() {
                        log.error = Some(message.clone());
                    }
                    return failed(outcome, &action.name, message);
                }
                let denied = apply(&mut outcome, record);
                // A denial wins over a redirect asked for in the same execution.
                if let Some(denied) = denied {
                    let missing = if denied.revoke_refresh_token && !exchanges_refresh_token {
                        Some(
                            "api.refreshToken.revoke: this transaction has no refresh token \
                             (event.refresh_token is set only when one is exchanged)",
                        )
                    } else if denied.end_session.is_some() && !has_session {
                        Some(
                            "api.session.revoke: this transaction has no session \
                             (event.session is set only in a browser's sign-in)",
                        )
                    } else {
                        None
                    };
                    if let Some(message) = missing {
                        let message = message.to_string();
                        if let Some(log) = outcome.logs.last_mut() {
                            log.error = Some(message.clone());
                        }
                        return failed(outcome, &action.name, message);
                    }
                    outcome.denied = Some(denial(denied, &action.name));
                    return outcome;
                }
                if let Some(redirect) = redirect {
                    let checked = match job.redirect.as_ref().is_some_and(|c| c.allowed) {
                        false => Err("api.redirect.sendUserTo: this login cannot redirect".into()),
                        true => redirect_url(&redirect),
                    };
                    return match checked {
                        Err(message) => {
                            // The execution itself ended well: its log entry says why it failed.
                            if let Some(log) = outcome.logs.last_mut() {
                                log.error = Some(message.clone());
                            }
                            failed(outcome, &action.name, message)
                        }
                        Ok(url) => {
                            outcome.redirect = Some(Redirect {
                                action_index: index,
                                action_id: action.id.clone(),
                                url,
                            });
                            outcome
                        }
                    };
                }
            }
        }
    }
    outcome
}

/// `api.redirect`'s context for one execution, as the prelude reads it. `request` (the
/// event) is given for `onContinuePostLogin` only: `validateToken` reads the token from
/// its body or query as they were before any code ran.
fn redirect_json(context: &RedirectContext, request: Option<&Value>) -> String {
    let part = |name: &str| {
        request
            .and_then(|event| event.get("request"))
            .and_then(|request| request.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    serde_json::json!({
        "allowed": context.allowed,
        "state": context.state,
        "issuer": context.issuer,
        "subject": context.subject,
        "continuing": request.is_some(),
        "body": part("body"),
        "query": part("query"),
    })
    .to_string()
}

/// `sendUserTo`'s URL with its query parameters added, if it is one the caller can send
/// a browser to: absolute `https:` or `http:`, a host and no user info, no fragment (the
/// caller appends `state`) and no `state` parameter of its own, at most
/// [`MAX_REDIRECT_URL_BYTES`] in all. A character that needs percent-encoding is refused
/// rather than encoded: the parser would quietly drop tabs and newlines, or re-encode, and
/// the user would be sent somewhere the action did not write.
fn redirect_url(redirect: &RecordedRedirect) -> Result<String, String> {
    let refuse = |why: &str| Err(format!("api.redirect.sendUserTo: {why}"));
    let text = redirect.url.as_str();
    if let Some(bad) = text.chars().find(|&c| !is_url_char(c)) {
        return refuse(&format!(
            "the URL has a character that must be percent-encoded ({})",
            bad.escape_default()
        ));
    }
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices('%') {
        if !(bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return refuse("the URL has a % not followed by two hexadecimal digits");
        }
    }
    let Some((_, after_scheme)) = text.split_once("://") else {
        return refuse("the URL must be absolute (https://…)");
    };
    // The parser skips extra slashes (`https:///path` is host `path`): not here.
    if after_scheme.is_empty() || after_scheme.starts_with('/') {
        return refuse("the URL must have a host: a DNS name (punycode) or an IP address");
    }
    let mut url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(url::ParseError::EmptyHost) => {
            return refuse("the URL must have a host: a DNS name (punycode) or an IP address");
        }
        Err(url::ParseError::InvalidPort) => {
            return refuse("the URL's port is not a number from 0 to 65535");
        }
        Err(error) => return refuse(&format!("the URL cannot be parsed ({error})")),
    };
    if !matches!(url.scheme(), "https" | "http") {
        return refuse("the URL must be https: or http:");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return refuse("the URL must have a host: a DNS name (punycode) or an IP address");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("the URL must not carry user info (user@host)");
    }
    if url.fragment().is_some() {
        return refuse("the URL must not have a #fragment (the parameters go in its query)");
    }
    // Names compared decoded: `%73tate` is `state` to the site too.
    let names_state = url.query_pairs().any(|(name, _)| name == "state")
        || redirect.query.iter().any(|(name, _)| name == "state");
    if names_state {
        return refuse(
            "the URL must not have a state parameter: it is added to the URL when the user is sent",
        );
    }
    if !redirect.query.is_empty() {
        // `?a=1&` gets `b=2` as `?a=1&b=2`, not `?a=1&&b=2`.
        if let Some(query) = url.query().filter(|query| query.ends_with('&')) {
            let trimmed = query.trim_end_matches('&').to_string();
            url.set_query(Some(&trimmed));
        }
        url.query_pairs_mut().extend_pairs(&redirect.query);
    }
    let full = String::from(url);
    if full.len() > MAX_REDIRECT_URL_BYTES {
        return refuse(&format!(
            "the URL is longer than {MAX_REDIRECT_URL_BYTES} bytes with its query parameters"
        ));
    }
    Ok(full)
}

/// RFC 3986's unreserved, reserved and `%` characters.
fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
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
    outcome.refresh_token_expires_at = earliest(
        outcome.refresh_token_expires_at,
        record.refresh_token_expires_at,
    );
    outcome.refresh_token_idle_expires_at = earliest(
        outcome.refresh_token_idle_expires_at,
        record.refresh_token_idle_expires_at,
    );
    outcome.session_expires_at = earliest(outcome.session_expires_at, record.session_expires_at);
    outcome.session_idle_expires_at = earliest(
        outcome.session_idle_expires_at,
        record.session_idle_expires_at,
    );
    record.denied
}

/// Applies an action's changes to the metadata of the session and of the refresh token,
/// and shows the results to the actions after it (`event.session.metadata`,
/// `event.refresh_token.metadata`), as Auth0 does. Without a session (a refresh, the
/// password grant) there is no session to write on, as `setExpiresAt` has nothing to
/// shorten; a refresh token's metadata starts from the exchanged token's, or from what the
/// first half of a resumed run left, or from nothing for the token a login issues.
fn change_metadata(
    outcome: &mut Outcome,
    record: &mut Record,
    (has_session, kept_refresh_token_metadata): (bool, Option<&BTreeMap<String, String>>),
    event_json: &mut String,
) -> Result<(), String> {
    let session = std::mem::take(&mut record.session_metadata);
    let refresh_token = std::mem::take(&mut record.refresh_token_metadata);
    if has_session && !session.is_empty() {
        let holder = Holder {
            event_key: "session",
            api: "session",
        };
        holder.change(&mut outcome.session_metadata, None, event_json, session)?;
    }
    if !refresh_token.is_empty() {
        let holder = Holder {
            event_key: "refresh_token",
            api: "refreshToken",
        };
        holder.change(
            &mut outcome.refresh_token_metadata,
            kept_refresh_token_metadata,
            event_json,
            refresh_token,
        )?;
    }
    Ok(())
}

/// What holds metadata: its member in the event and its name in `api`.
struct Holder {
    event_key: &'static str,
    api: &'static str,
}

impl Holder {
    /// `changes` on what the run wrote so far — or else on what the event shows, or else
    /// on `start` — held to `metadata`'s bounds; a change refused leaves what
    /// earlier actions wrote.
    fn change(
        &self,
        written: &mut Option<BTreeMap<String, String>>,
        start: Option<&BTreeMap<String, String>>,
        event_json: &mut String,
        changes: Vec<MetadataChange>,
    ) -> Result<(), String> {
        let mut event: Value =
            serde_json::from_str(event_json).map_err(|error| format!("the event: {error}"))?;
        let shown = event
            .get(self.event_key)
            .and_then(|holder| holder.get("metadata"))
            .and_then(Value::as_object)
            .map(|shown| {
                shown
                    .iter()
                    .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
                    .collect()
            });
        let mut metadata = match (&*written, shown) {
            (Some(metadata), _) => metadata.clone(),
            (None, Some(shown)) => shown,
            (None, None) => start.cloned().unwrap_or_default(),
        };
        for change in changes {
            match change {
                MetadataChange::Set(key, value) => {
                    metadata.insert(key, value);
                }
                MetadataChange::Delete(key) => {
                    metadata.remove(&key);
                }
                MetadataChange::Evict => metadata.clear(),
            }
        }
        metadata::check(&metadata).map_err(|why| format!("api.{}.setMetadata: {why}", self.api))?;
        if let Some(holder) = event.get_mut(self.event_key).and_then(Value::as_object_mut) {
            holder.insert("metadata".to_string(), json!(metadata));
            *event_json = event.to_string();
        }
        *written = Some(metadata);
        Ok(())
    }
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
        revoke_refresh_token: denied.revoke_refresh_token,
        end_session: denied.end_session,
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
