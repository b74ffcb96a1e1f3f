//! One worker thread's JavaScript: a QuickJS runtime that never leaves the thread that
//! made it; a context of its own for each action, kept warm for its next executions, and
//! a fresh context for every rule and every compile check.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rquickjs::context::EvalOptions;
use rquickjs::context::intrinsic;
use rquickjs::{Array, Context, Ctx, Function, Object, Persistent, Runtime, Value};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::cache::{self, ActionCache};
use crate::{Limits, Multifactor, Trigger, metadata};

/// The prelude's declaration in a strict block whose completion value is the function.
const PRELUDE: &str = concat!(
    "'use strict';\n{\n",
    include_str!("prelude.js"),
    "\nprelude\n}"
);

/// QuickJS's own stack limit, far below the worker thread's 8 MiB so that deep recursion
/// ends in a catchable "stack overflow" and never in a crash.
const MAX_STACK_BYTES: usize = 1024 * 1024;
/// The smallest heap limit applied, whatever the configuration says.
const MIN_MEMORY_BYTES: usize = 1024 * 1024;
/// A runtime is rebuilt after this many executions, and after any limit was hit, so no
/// fragmentation or half-collected state outlives a few logins.
const EXECUTIONS_PER_RUNTIME: u32 = 500;
/// Actions whose context a worker keeps warm (the most recently run ones).
const WARM_ACTIONS_PER_WORKER: usize = 8;
/// Warm contexts are all dropped when the heap holds more than this share of the limit
/// after an execution: what actions keep in module scope must not leave the next
/// execution less than half of its memory limit.
const WARM_HEAP_SHARE: usize = 2;
/// How often (in executions) a worker measures its heap for [`WARM_HEAP_SHARE`].
const HEAP_CHECK_EVERY: u32 = 32;
/// Raw console output kept before secrets are masked and the log is cut to its limit.
const RAW_LOG_SLACK: usize = 16 * 1024;
const TRUNCATED_MARKER: &str = "…[truncated]";
const REDACTED: &str = "[secret]";
/// Secrets shorter than this are not masked in logs: masking "a" would garble them.
const MIN_MASKED_SECRET: usize = 4;

/// What the code asked for, read from the calls the prelude recorded.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub access_token_claims: Map<String, Json>,
    pub id_token_claims: Map<String, Json>,
    /// `(add, scope)` in call order: `true` for `addScope`, `false` for `removeScope`.
    pub scopes: Vec<(bool, String)>,
    pub app_metadata: Map<String, Json>,
    pub user_metadata: Map<String, Json>,
    /// `api.multifactor.enable`, when called: the last call's arguments.
    pub multifactor: Option<Option<Multifactor>>,
    /// `api.refreshToken.setExpiresAt` / `setIdleExpiresAt`: the earliest asked (ms).
    pub refresh_token_expires_at: Option<i64>,
    pub refresh_token_idle_expires_at: Option<i64>,
    /// `api.session.setExpiresAt` / `setIdleExpiresAt`: the earliest asked (ms).
    pub session_expires_at: Option<i64>,
    pub session_idle_expires_at: Option<i64>,
    /// `api.session.setMetadata` / `deleteMetadata` / `evictMetadata`, in call order.
    pub session_metadata: Vec<MetadataChange>,
    /// `api.refreshToken.setMetadata` / `deleteMetadata` / `evictMetadata`, in call order.
    pub refresh_token_metadata: Vec<MetadataChange>,
    pub denied: Option<RecordedDenial>,
    /// `api.redirect.sendUserTo`, when called: the last call's URL and query parameters,
    /// not yet checked (the run does that).
    pub redirect: Option<RecordedRedirect>,
}

/// One change to the session's metadata an action asked, its key and value already
/// checked (`metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetadataChange {
    Set(String, String),
    Delete(String),
    Evict,
}

#[derive(Debug)]
pub(crate) struct RecordedRedirect {
    pub url: String,
    /// `options.query`'s members in order, their values already text.
    pub query: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct RecordedDenial {
    pub code: String,
    pub reason: String,
    pub user_message: Option<String>,
    /// `api.refreshToken.revoke`: the refresh token presented is revoked as well.
    pub revoke_refresh_token: bool,
    /// `api.session.revoke`: the session ends too; whether its refresh tokens are kept.
    pub end_session: Option<bool>,
}

impl Record {
    /// Reads `[method, JSON array of the arguments]` pairs; each trigger's prelude only
    /// offers its own methods, so the trigger decides what `access.deny`'s arguments are.
    fn from_calls(trigger: Trigger, calls: Vec<(String, String)>) -> Result<Record, String> {
        let mut record = Record::default();
        for (method, arguments) in calls {
            let arguments: Vec<Json> = serde_json::from_str(&arguments)
                .map_err(|error| format!("api.{method}: unreadable arguments ({error})"))?;
            let argument = |index: usize| arguments.get(index).cloned().unwrap_or(Json::Null);
            let text = |index: usize| match argument(index) {
                Json::String(text) => text,
                Json::Null => String::new(),
                other => other.to_string(),
            };
            match method.as_str() {
                "accessToken.setCustomClaim" => {
                    record.access_token_claims.insert(text(0), argument(1));
                }
                "idToken.setCustomClaim" => {
                    record.id_token_claims.insert(text(0), argument(1));
                }
                "accessToken.addScope" => record.scopes.push((true, text(0))),
                "accessToken.removeScope" => record.scopes.push((false, text(0))),
                "user.setAppMetadata" => {
                    record.app_metadata.insert(text(0), argument(1));
                }
                "user.setUserMetadata" => {
                    record.user_metadata.insert(text(0), argument(1));
                }
                "multifactor.enable" => {
                    let remember = argument(1)
                        .get("allowRememberBrowser")
                        .and_then(Json::as_bool)
                        .unwrap_or(false);
                    record.multifactor = Some(Multifactor::of(&text(0), remember));
                }
                "access.deny" => {
                    record.denied = Some(match trigger {
                        Trigger::CredentialsExchange => RecordedDenial {
                            code: text(0),
                            reason: text(1),
                            user_message: None,
                            revoke_refresh_token: false,
                            end_session: None,
                        },
                        _ => RecordedDenial {
                            code: "access_denied".to_string(),
                            reason: text(0),
                            user_message: (!argument(1).is_null()).then(|| text(1)),
                            revoke_refresh_token: false,
                            end_session: None,
                        },
                    });
                }
                "refreshToken.setExpiresAt"
                | "refreshToken.setIdleExpiresAt"
                | "session.setExpiresAt"
                | "session.setIdleExpiresAt" => {
                    // The prelude let only finite numbers through.
                    let Some(at) = argument(0).as_f64().filter(|at| at.is_finite()) else {
                        return Err(format!("api.{method}: unreadable arguments"));
                    };
                    let at = at as i64;
                    let slot = match method.as_str() {
                        "refreshToken.setExpiresAt" => &mut record.refresh_token_expires_at,
                        "refreshToken.setIdleExpiresAt" => {
                            &mut record.refresh_token_idle_expires_at
                        }
                        "session.setExpiresAt" => &mut record.session_expires_at,
                        _ => &mut record.session_idle_expires_at,
                    };
                    *slot = Some(slot.map_or(at, |earlier| earlier.min(at)));
                }
                "session.setMetadata"
                | "session.deleteMetadata"
                | "session.evictMetadata"
                | "refreshToken.setMetadata"
                | "refreshToken.deleteMetadata"
                | "refreshToken.evictMetadata" => {
                    let change = metadata_change(&method, &arguments)?;
                    if method.starts_with("session.") {
                        record.session_metadata.push(change);
                    } else {
                        record.refresh_token_metadata.push(change);
                    }
                }
                "refreshToken.revoke" => {
                    record.denied = Some(RecordedDenial {
                        code: "access_denied".to_string(),
                        reason: text(0),
                        user_message: None,
                        revoke_refresh_token: true,
                        end_session: None,
                    });
                }
                "session.revoke" => {
                    // The prelude let only these shapes through; the engine checks again.
                    let keep = match argument(1) {
                        Json::Null => false,
                        options => match options.get("preserveRefreshTokens") {
                            None | Some(Json::Null) => false,
                            Some(Json::Bool(keep)) => *keep,
                            Some(_) => {
                                return Err(format!("api.{method}: unreadable arguments"));
                            }
                        },
                    };
                    if !argument(0).is_string() {
                        return Err(format!("api.{method}: the reason must be a string"));
                    }
                    record.denied = Some(RecordedDenial {
                        code: "access_denied".to_string(),
                        reason: text(0),
                        user_message: None,
                        revoke_refresh_token: false,
                        end_session: Some(keep),
                    });
                }
                "redirect.sendUserTo" => {
                    let url = argument(0).as_str().map(str::to_string);
                    let query: Option<Vec<(String, String)>> =
                        serde_json::from_value(argument(1)).ok();
                    let (Some(url), Some(query)) = (url, query) else {
                        return Err("api.redirect.sendUserTo: unreadable arguments".to_string());
                    };
                    record.redirect = Some(RecordedRedirect { url, query });
                }
                "validation.error" => {
                    record.denied = Some(RecordedDenial {
                        code: text(0),
                        reason: text(1),
                        user_message: None,
                        revoke_refresh_token: false,
                        end_session: None,
                    });
                }
                other => return Err(format!("api.{other} is not known to the engine")),
            }
        }
        Ok(record)
    }
}

/// One `setMetadata(key, value)`, `deleteMetadata(key)` or `evictMetadata()` call (of
/// `api.session` or `api.refreshToken`): the prelude let only bounded strings through;
/// checked again here, as an action may have replaced what the prelude relies on.
fn metadata_change(method: &str, arguments: &[Json]) -> Result<MetadataChange, String> {
    let text = |index: usize| {
        arguments
            .get(index)
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    if method.ends_with(".evictMetadata") {
        return Ok(MetadataChange::Evict);
    }
    let Some(key) = text(0).filter(|key| metadata::is_key(key)) else {
        return Err(format!(
            "api.{method}: the key must be a string of 1 to {} characters",
            metadata::MOST_CHARACTERS
        ));
    };
    if method.ends_with(".deleteMetadata") {
        return Ok(MetadataChange::Delete(key));
    }
    let Some(value) = text(1).filter(|value| metadata::is_value(value)) else {
        return Err(format!(
            "api.{method}: the value must be a string of at most {} characters",
            metadata::MOST_CHARACTERS
        ));
    };
    Ok(MetadataChange::Set(key, value))
}

/// A rule's `callback(null, user, context)`.
#[derive(Debug, Deserialize)]
pub(crate) struct RuleState {
    pub user: Json,
    pub context: Json,
}

#[derive(Debug)]
struct Report {
    settled: bool,
    error: Option<String>,
    /// `[method, JSON array of its arguments]` in call order.
    calls: Vec<(String, String)>,
    rule: Option<RuleState>,
    /// `api.cache` writes, applied even when the code failed afterwards.
    cache_ops: Vec<Vec<Json>>,
}

/// What one execution ended with.
#[derive(Debug)]
pub(crate) struct Execution {
    pub stdout: String,
    pub duration: Duration,
    pub result: Result<(Record, Option<RuleState>), String>,
}

/// Which clock ended an execution, for the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub at: Instant,
    /// Whether `at` is the trigger's overall deadline rather than the action's own.
    pub is_trigger: bool,
}

/// What the prelude is set up for.
pub(crate) struct Setup {
    /// "action" or "rule", for the limits' messages.
    subject: &'static str,
    /// Whose `api` the prelude builds.
    trigger: Trigger,
    executed_rules: Vec<String>,
}

impl Setup {
    fn rule() -> Setup {
        Setup {
            subject: "rule",
            trigger: Trigger::PostLogin,
            executed_rules: Vec::new(),
        }
    }
}

/// What to run.
pub(crate) enum Program<'a> {
    Action {
        trigger: Trigger,
        code: &'a str,
        /// The exported function to call: the trigger's, or `onContinuePostLogin`. Not
        /// part of the kept context's key: both live in the same loaded module.
        handler: &'a str,
        event_json: &'a str,
        secrets_json: &'a str,
        /// This execution's `api.redirect` context as JSON (`null`: none).
        redirect_json: &'a str,
        /// Rule ids run before, for `api.rules.wasExecuted`.
        executed_rules: &'a [String],
    },
    Rule {
        script: &'a str,
        user_json: &'a str,
        context_json: &'a str,
        configuration_json: &'a str,
    },
}

impl Program<'_> {
    /// Whose `api` the code gets (rules run in post-login).
    fn trigger(&self) -> Trigger {
        match self {
            Program::Action { trigger, .. } => *trigger,
            Program::Rule { .. } => Trigger::PostLogin,
        }
    }
}

/// What `startAction` is given for one execution of an action.
struct ActionArguments<'a> {
    handler: &'a str,
    event_json: &'a str,
    secrets_json: &'a str,
    cache_json: &'a str,
    redirect_json: &'a str,
}

/// An action's context after an execution that ended well: the prelude has run in it, its
/// code is compiled, and its module's top level has run (or will, if it threw).
struct WarmAction {
    // Declared before `context`, so they are released before it.
    controller: Persistent<Object<'static>>,
    module: Persistent<Value<'static>>,
    trigger: Trigger,
    code: String,
    context: Context,
}

pub(crate) struct JsWorker {
    limits: Limits,
    cache: Arc<Mutex<ActionCache>>,
    runtime: Option<Runtime>,
    /// Most recently used last; all belong to `runtime`.
    warm: Vec<WarmAction>,
    executions: u32,
    deadline: Rc<Cell<Instant>>,
    interrupted: Rc<Cell<bool>>,
}

impl JsWorker {
    pub(crate) fn new(limits: Limits, cache: Arc<Mutex<ActionCache>>) -> JsWorker {
        JsWorker {
            limits,
            cache,
            runtime: None,
            warm: Vec::new(),
            executions: 0,
            deadline: Rc::new(Cell::new(Instant::now())),
            interrupted: Rc::new(Cell::new(false)),
        }
    }

    pub(crate) fn cache(&self) -> Arc<Mutex<ActionCache>> {
        self.cache.clone()
    }

    /// Drops the runtime and every context in it; the next execution starts a new one.
    fn retire_runtime(&mut self) {
        self.warm.clear();
        self.runtime = None;
    }

    fn runtime(&mut self) -> Result<Runtime, String> {
        if self.executions >= EXECUTIONS_PER_RUNTIME {
            self.retire_runtime();
        }
        if let Some(runtime) = &self.runtime {
            return Ok(runtime.clone());
        }
        let runtime =
            Runtime::new().map_err(|error| format!("could not start JavaScript: {error}"))?;
        // The prelude and a context take a few hundred KiB; 0 would mean no limit at all.
        runtime.set_memory_limit(self.limits.memory_bytes.max(MIN_MEMORY_BYTES));
        runtime.set_max_stack_size(MAX_STACK_BYTES);
        runtime.set_gc_threshold((self.limits.memory_bytes / 4).max(256 * 1024));
        let deadline = self.deadline.clone();
        let interrupted = self.interrupted.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            if Instant::now() >= deadline.get() {
                interrupted.set(true);
                true
            } else {
                false
            }
        })));
        self.executions = 0;
        self.runtime = Some(runtime.clone());
        Ok(runtime)
    }

    /// Compiles an action's module (its top level does not run).
    pub(crate) fn check_action(&mut self, code: &str, deadline: Deadline) -> Result<(), String> {
        self.with_fresh_context(
            deadline,
            Setup {
                subject: "action",
                trigger: Trigger::PostLogin,
                executed_rules: Vec::new(),
            },
            |ctx, _| compile(ctx, &module_source(code), "action.js").map(|_| ()),
            |_, _| Ok(()),
        )
        .result
    }

    /// Compiles a rule's script (its body does not run).
    pub(crate) fn check_rule(&mut self, script: &str, deadline: Deadline) -> Result<(), String> {
        self.with_fresh_context(
            deadline,
            Setup::rule(),
            |ctx, _| compile(ctx, &rule_source(script), "rule.js").map(|_| ()),
            |_, _| Ok(()),
        )
        .result
    }

    /// Runs one action (in its warm context) or rule (in a fresh one) and reports what it
    /// recorded.
    pub(crate) fn execute(
        &mut self,
        program: Program<'_>,
        secrets: &[&str],
        deadline: Deadline,
    ) -> Execution {
        let started = Instant::now();
        let cache = self.cache.clone();
        let cache_json = match &program {
            Program::Action { trigger, .. } => lock(&cache).snapshot(*trigger, now_ms()),
            Program::Rule { .. } => "{}".to_string(),
        };
        let finish = |ctx: &Ctx<'_>, controller: &Object<'_>| {
            let report = finish_program(ctx, controller)?;
            if let Program::Action { trigger, .. } = &program {
                apply_cache_ops(&mut lock(&cache), *trigger, &report.cache_ops);
            }
            if let Some(error) = report.error {
                return Err(error);
            }
            if !report.settled {
                return Err(match program {
                    Program::Action { .. } => "the handler's promise never settled (it awaits something that never resolves)".to_string(),
                    Program::Rule { .. } => "the rule never called callback".to_string(),
                });
            }
            let record = Record::from_calls(program.trigger(), report.calls)?;
            Ok((record, report.rule))
        };
        let ran = match &program {
            Program::Action {
                trigger,
                code,
                handler,
                event_json,
                secrets_json,
                redirect_json,
                executed_rules,
            } => {
                let setup = Setup {
                    subject: "action",
                    trigger: *trigger,
                    executed_rules: executed_rules.to_vec(),
                };
                let arguments = ActionArguments {
                    handler,
                    event_json,
                    secrets_json,
                    cache_json: &cache_json,
                    redirect_json,
                };
                self.run_action(deadline, setup, code, arguments, finish)
            }
            Program::Rule {
                script,
                user_json,
                context_json,
                configuration_json,
            } => self.with_fresh_context(
                deadline,
                Setup::rule(),
                |ctx, controller| {
                    let rule = compile(ctx, &rule_source(script), "rule.js")?;
                    call_controller(
                        ctx,
                        controller,
                        "startRule",
                        (*user_json, *context_json, *configuration_json, rule),
                    )
                },
                finish,
            ),
        };
        let stdout = finish_log(&ran.log, secrets, self.limits.log_bytes);
        Execution {
            stdout,
            duration: started.elapsed(),
            result: ran.result.map_err(|message| mask(&message, secrets)),
        }
    }

    /// Runs an action in the context kept for its code, or in a new one that is kept
    /// afterwards if the execution ended within its limits.
    fn run_action<T>(
        &mut self,
        deadline: Deadline,
        setup: Setup,
        code: &str,
        arguments: ActionArguments<'_>,
        finish: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> Result<T, String>,
    ) -> Ran<T> {
        let runtime = match self.runtime() {
            Ok(runtime) => runtime,
            Err(error) => return Ran::failed(error),
        };
        let trigger = setup.trigger;
        let kept = self
            .warm
            .iter()
            .position(|warm| warm.trigger == trigger && warm.code == code)
            .map(|position| self.warm.remove(position));
        let context = match &kept {
            Some(warm) => warm.context.clone(),
            None => match new_context(&runtime) {
                Ok(context) => context,
                Err(error) => return Ran::failed(error),
            },
        };
        // The controller and the compiled module: kept ones, or made in the first phase
        // (under the deadline: a huge action takes a while to parse).
        let first_run = kept.is_none();
        let (compiled, kept_code) = match kept {
            Some(warm) => (Some((warm.controller, warm.module)), Some(warm.code)),
            None => (None, None),
        };
        let compiled = RefCell::new(compiled);
        let ran = self.with_context(
            &runtime,
            context.clone(),
            deadline,
            &setup,
            |ctx, raw_log_cap| {
                let kept_controller = compiled
                    .borrow()
                    .as_ref()
                    .map(|(controller, _)| controller.clone());
                let controller = match kept_controller {
                    Some(controller) => controller
                        .restore(ctx)
                        .map_err(|error| describe_error(ctx, error))?,
                    None => {
                        let controller = new_controller(ctx, &setup)?;
                        let module = compile(ctx, &module_source(code), "action.js")?;
                        let saved = (
                            Persistent::save(ctx, controller.clone()),
                            Persistent::save(ctx, module),
                        );
                        *compiled.borrow_mut() = Some(saved);
                        controller
                    }
                };
                begin(ctx, &controller, raw_log_cap, &setup)?;
                Ok(controller)
            },
            |ctx, controller| {
                let kept_module = compiled.borrow().as_ref().map(|(_, module)| module.clone());
                let module = match kept_module {
                    Some(module) => module
                        .restore(ctx)
                        .map_err(|error| describe_error(ctx, error))?,
                    None => return Err("the action was not compiled".to_string()),
                };
                let ActionArguments {
                    handler,
                    event_json,
                    secrets_json,
                    cache_json,
                    redirect_json,
                } = arguments;
                call_controller(
                    ctx,
                    controller,
                    "startAction",
                    (
                        handler,
                        event_json,
                        secrets_json,
                        cache_json,
                        redirect_json,
                        module,
                    ),
                )
            },
            finish,
        );
        if let (true, Some((controller, module))) = (ran.healthy, compiled.into_inner()) {
            self.keep_warm(
                &runtime,
                WarmAction {
                    controller,
                    module,
                    trigger,
                    code: kept_code.unwrap_or_else(|| code.to_string()),
                    context,
                },
                first_run,
            );
        }
        ran
    }

    /// Keeps an action's context for its next execution, within the count and the share
    /// of the heap that warm contexts may hold.
    fn keep_warm(&mut self, runtime: &Runtime, warm: WarmAction, first_run: bool) {
        if self.runtime.is_none() {
            return;
        }
        self.warm.push(warm);
        if self.warm.len() > WARM_ACTIONS_PER_WORKER {
            self.warm.remove(0);
        }
        // Measuring walks the whole heap (most of a millisecond): after a module's top
        // level ran, and every few executions for what handlers add to module scope.
        if first_run || self.executions.is_multiple_of(HEAP_CHECK_EVERY) {
            let limit = self.limits.memory_bytes.max(MIN_MEMORY_BYTES);
            if runtime.memory_usage().malloc_size > (limit / WARM_HEAP_SHARE) as i64 {
                self.warm.clear();
                runtime.run_gc();
            }
        }
    }

    /// Runs `start` in a new context after the prelude, then `finish` (see
    /// [`JsWorker::with_context`]).
    fn with_fresh_context<T>(
        &mut self,
        deadline: Deadline,
        setup: Setup,
        start: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> Result<(), String>,
        finish: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> Result<T, String>,
    ) -> Ran<T> {
        let runtime = match self.runtime() {
            Ok(runtime) => runtime,
            Err(error) => return Ran::failed(error),
        };
        let context = match new_context(&runtime) {
            Ok(context) => context,
            Err(error) => return Ran::failed(error),
        };
        let ran = self.with_context(
            &runtime,
            context,
            deadline,
            &setup,
            |ctx, raw_log_cap| {
                let controller = new_controller(ctx, &setup)?;
                begin(ctx, &controller, raw_log_cap, &setup)?;
                Ok(controller)
            },
            start,
            finish,
        );
        if ran.healthy {
            // The context is dropped: give its heap back now rather than at the threshold.
            runtime.run_gc();
        }
        ran
    }

    /// Gets the controller from `prelude`, runs `start`, drains the promise jobs, then
    /// runs `finish`, all under the deadline; turns an interrupt or an exhausted heap
    /// into the limit's message and retires the runtime after either. Returns the
    /// console output too, whatever happened.
    #[allow(clippy::too_many_arguments)]
    fn with_context<T>(
        &mut self,
        runtime: &Runtime,
        context: Context,
        deadline: Deadline,
        setup: &Setup,
        prelude: impl for<'js> FnOnce(&Ctx<'js>, usize) -> Result<Object<'js>, String>,
        start: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> Result<(), String>,
        finish: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> Result<T, String>,
    ) -> Ran<T> {
        self.executions += 1;
        self.deadline.set(deadline.at);
        self.interrupted.set(false);
        let raw_log_cap = self
            .limits
            .log_bytes
            .saturating_mul(4)
            .saturating_add(RAW_LOG_SLACK);
        let (result, log) = run_phases(
            runtime,
            &context,
            raw_log_cap,
            deadline.at,
            prelude,
            start,
            finish,
        );
        drop(context);
        // Some built-ins (BigInt to string, huge joins) never poll the interrupt handler:
        // an execution that overran its deadline fails even if it then succeeded.
        let overran = Instant::now() > deadline.at;
        // Nothing of this execution may run on after it: the deadline stays passed.
        self.deadline.set(Instant::now());
        let interrupted = self.interrupted.get();
        // The heap limit usually surfaces as a catchable "out of memory" error that the
        // prelude reports like any other.
        let out_of_memory = matches!(&result, Err(message) if is_out_of_memory(message));
        if interrupted || overran || out_of_memory {
            self.retire_runtime();
        }
        let ran = |result| Ran {
            result,
            log,
            healthy: !(interrupted || overran || out_of_memory),
        };
        if interrupted || (overran && !out_of_memory) {
            let limit = if deadline.is_trigger {
                format!(
                    "the trigger exceeded its time limit ({} ms)",
                    self.limits.per_trigger.as_millis()
                )
            } else {
                format!(
                    "the {} exceeded its time limit ({} ms)",
                    setup.subject,
                    self.limits.per_action.as_millis()
                )
            };
            return ran(Err(limit));
        }
        if out_of_memory {
            let limit = format!(
                "the {} exceeded its memory limit ({} MiB)",
                setup.subject,
                self.limits.memory_bytes / (1024 * 1024)
            );
            return ran(Err(limit));
        }
        ran(result)
    }
}

/// What one run in a context ended with.
struct Ran<T> {
    result: Result<T, String>,
    log: String,
    /// No limit was hit: the runtime (and a warm context) may be used again.
    healthy: bool,
}

impl<T> Ran<T> {
    fn failed(error: String) -> Ran<T> {
        Ran {
            result: Err(error),
            log: String::new(),
            healthy: false,
        }
    }
}

/// Runs the prelude in a new context: its controller, for every execution in the context.
fn new_controller<'js>(ctx: &Ctx<'js>, setup: &Setup) -> Result<Object<'js>, String> {
    let prelude: Function = ctx
        .eval(PRELUDE)
        .map_err(|error| describe_error(ctx, error))?;
    prelude
        .call((
            cache::MAX_KEY_BYTES,
            cache::MAX_VALUE_BYTES,
            setup.trigger.id(),
        ))
        .map_err(|error| describe_error(ctx, error))
}

/// Starts an execution: its own console output and state.
fn begin<'js>(
    ctx: &Ctx<'js>,
    controller: &Object<'js>,
    raw_log_cap: usize,
    setup: &Setup,
) -> Result<(), String> {
    call_controller(
        ctx,
        controller,
        "begin",
        (raw_log_cap, setup.executed_rules.clone()),
    )
}

fn call_controller<'js, A: rquickjs::function::IntoArgs<'js>>(
    ctx: &Ctx<'js>,
    controller: &Object<'js>,
    method: &str,
    arguments: A,
) -> Result<(), String> {
    controller
        .get::<_, Function>(method)
        .and_then(|start| start.call::<_, ()>(arguments))
        .map_err(|error| describe_error(ctx, error))
}

/// prelude → start → drain the jobs → finish, keeping the controller across the phases.
fn run_phases<T>(
    runtime: &Runtime,
    context: &Context,
    raw_log_cap: usize,
    deadline: Instant,
    prelude: impl for<'js> FnOnce(&Ctx<'js>, usize) -> Result<Object<'js>, String>,
    start: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> Result<(), String>,
    finish: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> Result<T, String>,
) -> (Result<T, String>, String) {
    let (controller, started) = context.with(|ctx| match prelude(&ctx, raw_log_cap) {
        Ok(controller) => {
            let started = start(&ctx, &controller);
            (Some(Persistent::save(&ctx, controller)), started)
        }
        Err(error) => (None, Err(error)),
    });
    let Some(controller) = controller else {
        let error = started.err().unwrap_or_default();
        return (Err(error), String::new());
    };
    let drained = started.and_then(|()| drain_jobs(runtime, deadline));
    context.with(|ctx| match controller.restore(&ctx) {
        Ok(controller) => {
            let result = drained.and_then(|()| finish(&ctx, &controller));
            (result, read_log(&controller))
        }
        Err(error) => (Err(describe_error(&ctx, error)), String::new()),
    })
}

fn new_context(runtime: &Runtime) -> Result<Context, String> {
    // Everything Context::full has except Performance and DOMException; none of these
    // intrinsics does I/O. No module loader is installed, so nothing can be imported and
    // no bytecode is ever read.
    Context::builder()
        .with::<intrinsic::Date>()
        .with::<intrinsic::Eval>()
        .with::<intrinsic::RegExpCompiler>()
        .with::<intrinsic::RegExp>()
        .with::<intrinsic::Json>()
        .with::<intrinsic::Proxy>()
        .with::<intrinsic::MapSet>()
        .with::<intrinsic::TypedArrays>()
        .with::<intrinsic::Promise>()
        .with::<intrinsic::WeakRef>()
        .build(runtime)
        .map_err(|error| format!("could not create a JavaScript context: {error}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as i64)
        .unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The console output so far. A plain property read: no JavaScript runs, so this works
/// after an interrupt too.
fn read_log(controller: &Object<'_>) -> String {
    controller
        .get::<_, Object>("output")
        .and_then(|output| output.get::<_, String>("log"))
        .unwrap_or_default()
}

/// Applies an execution's `api.cache` writes: `["set", key, value, expires_at]` and
/// `["delete", key]`. The cache enforces its limits again; a refused write is skipped.
fn apply_cache_ops(cache: &mut ActionCache, trigger: Trigger, operations: &[Vec<Json>]) {
    let now = now_ms();
    for operation in operations {
        match operation.as_slice() {
            [
                Json::String(kind),
                Json::String(key),
                Json::String(value),
                expires_at,
            ] if kind == "set" => {
                let expires_at = expires_at.as_f64().unwrap_or(0.0) as i64;
                let _ = cache.set(trigger, key, value, expires_at, now);
            }
            [Json::String(kind), Json::String(key)] if kind == "delete" => {
                cache.delete(trigger, key);
            }
            _ => {}
        }
    }
}

/// CommonJS: the code is a function body with `exports`, `module` and `require` in scope.
/// A declaration, not a parenthesised expression: QuickJS scans the contents of a `(`
/// twice (looking for an arrow function), which would double the cost of parsing.
fn module_source(code: &str) -> String {
    format!(
        "function {MODULE_FUNCTION}(exports, module, require) {{\n{code}\n}}\n{MODULE_FUNCTION}"
    )
}

const MODULE_FUNCTION: &str = "__tesseraActionModule";

/// A rule is a function expression; a trailing `;` would end the parenthesis early.
fn rule_source(script: &str) -> String {
    let trimmed = script.trim_end().trim_end_matches(';');
    format!("(\n{trimmed}\n)")
}

fn compile<'js>(ctx: &Ctx<'js>, source: &str, file: &str) -> Result<Value<'js>, String> {
    let mut options = EvalOptions::default();
    options.global = true;
    options.strict = false;
    options.filename = Some(file.to_string());
    ctx.eval_with_options::<Value, _>(source.as_bytes().to_vec(), options)
        .map_err(|error| describe_compile_error(ctx, error))
}

/// Runs the queued promise jobs until none is left or the deadline passed (a promise
/// chain that keeps queueing more would otherwise never end). No I/O exists, so the
/// queue holds only promise reactions. Runs outside `Context::with`: the runtime's own
/// job runner hands back a job's uncaught error, where a heap exhausted inside promise
/// machinery shows (the context's runner would swallow it).
fn drain_jobs(runtime: &Runtime, deadline: Instant) -> Result<(), String> {
    while Instant::now() < deadline {
        match runtime.execute_pending_job() {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(exception) => {
                let message = exception
                    .0
                    .with(|ctx| describe_error(&ctx, rquickjs::Error::Exception));
                if is_out_of_memory(&message) {
                    return Err(message);
                }
            }
        }
    }
    Ok(())
}

fn finish_program(ctx: &Ctx<'_>, controller: &Object<'_>) -> Result<Report, String> {
    let finish: Function = controller
        .get("finish")
        .map_err(|error| describe_error(ctx, error))?;
    let unreadable = |error: String| format!("the action's result could not be read: {error}");
    let report: Array = finish
        .call(())
        .map_err(|error| describe_error(ctx, error))?;
    let get = |index: usize| {
        report
            .get::<Value>(index)
            .map_err(|error| describe_error(ctx, error))
    };
    let text = |value: Value<'_>| -> Result<Option<String>, String> {
        if value.is_null() || value.is_undefined() {
            return Ok(None);
        }
        value
            .get::<String>()
            .map(Some)
            .map_err(|error| unreadable(error.to_string()))
    };
    let json = |value: Value<'_>| -> Result<Option<Json>, String> {
        text(value)?
            .map(|text| serde_json::from_str(&text).map_err(|error| unreadable(error.to_string())))
            .transpose()
    };
    let mut calls = Vec::new();
    if let Some(list) = get(2)?.into_array() {
        for call in list.iter::<Array>() {
            let call = call.map_err(|error| unreadable(error.to_string()))?;
            let part = |index: usize| {
                call.get::<String>(index)
                    .map_err(|error| unreadable(error.to_string()))
            };
            calls.push((part(0)?, part(1)?));
        }
    }
    let rule = match json(get(3)?)? {
        Some(state) => {
            Some(serde_json::from_value(state).map_err(|error| unreadable(error.to_string()))?)
        }
        None => None,
    };
    let cache_ops = match json(get(4)?)? {
        Some(ops) => serde_json::from_value(ops).map_err(|error| unreadable(error.to_string()))?,
        None => Vec::new(),
    };
    Ok(Report {
        settled: get(0)?.as_bool().unwrap_or(false),
        error: text(get(1)?)?,
        calls,
        rule,
        cache_ops,
    })
}

/// The message of a pending exception, `Name: message`.
fn describe_error(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if !matches!(error, rquickjs::Error::Exception) {
        return error.to_string();
    }
    let thrown = ctx.catch();
    describe_thrown(&thrown).0
}

/// `(Name: message, stack)` of a thrown value.
fn describe_thrown(thrown: &Value<'_>) -> (String, Option<String>) {
    if let Some(object) = thrown.as_object() {
        let name: Option<String> = object.get("name").ok();
        let message: Option<String> = object.get("message").ok();
        let stack: Option<String> = object.get("stack").ok();
        if let Some(message) = message {
            let name = name.unwrap_or_else(|| "Error".to_string());
            return (format!("{name}: {message}"), stack);
        }
    }
    if let Some(text) = thrown.as_string().and_then(|text| text.to_string().ok()) {
        return (text, None);
    }
    if thrown.is_null() {
        // QuickJS throws null when it cannot even allocate the error.
        return ("InternalError: out of memory".to_string(), None);
    }
    (format!("thrown: {}", thrown.type_name()), None)
}

/// A syntax error with the line in the administrator's code.
fn describe_compile_error(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if !matches!(error, rquickjs::Error::Exception) {
        return error.to_string();
    }
    let thrown = ctx.catch();
    let (message, stack) = describe_thrown(&thrown);
    let line = stack.as_deref().and_then(|stack| {
        let rest = &stack[stack.find(".js:")? + 4..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    match line {
        // Our wrapper adds one line before the code.
        Some(line) if line > 1 => format!("{message} (line {})", line - 1),
        _ => message,
    }
}

fn is_out_of_memory(message: &str) -> bool {
    message.contains("out of memory")
}

fn cut_at_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Masks secrets' values, then keeps at most `log_bytes` bytes of whole characters.
fn finish_log(raw: &str, secrets: &[&str], log_bytes: usize) -> String {
    let masked = mask(raw, secrets);
    if masked.len() <= log_bytes {
        return masked;
    }
    let mut kept = cut_at_char_boundary(&masked, log_bytes).to_string();
    kept.push_str(TRUNCATED_MARKER);
    kept
}

fn mask(text: &str, secrets: &[&str]) -> String {
    let mut masked = text.to_string();
    for secret in secrets {
        if secret.len() >= MIN_MASKED_SECRET && masked.contains(secret) {
            masked = masked.replace(secret, REDACTED);
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_cut_on_character_boundaries_after_masking() {
        let log = finish_log("é".repeat(10).as_str(), &[], 5);
        assert_eq!(log, format!("éé{TRUNCATED_MARKER}"));
        let log = finish_log("token=hunter22 ok", &["hunter22"], 256);
        assert_eq!(log, "token=[secret] ok");
    }

    /// The prelude's hand-written SHA-256, HMAC, UTF-8 and base64url against aws-lc-rs,
    /// at every padding boundary (55/56 bytes: the length no longer fits the last block).
    #[test]
    fn the_prelude_hashes_as_aws_lc_does() {
        use aws_lc_rs::{digest, hmac};
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

        let source = concat!(
            "'use strict';\n{\n",
            include_str!("prelude.js"),
            "\n[(text) => { const b = utf8(text); return toBase64url(sha256(b[0], b[1]), 32); },",
            " (key, text) => toBase64url(signHs256(key, text), 32),",
            " (text) => { const b = fromBase64url(text); return b === null ? null : fromUtf8(b[0], b[1]); }]\n}"
        );
        let runtime = Runtime::new().unwrap();
        let context = Context::full(&runtime).unwrap();
        context.with(|ctx| {
            let functions: Array = ctx.eval(source).unwrap();
            let sha256: Function = functions.get(0).unwrap();
            let hmac_sha256: Function = functions.get(1).unwrap();
            let decode: Function = functions.get(2).unwrap();
            let mut texts: Vec<String> = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000]
                .iter()
                .map(|&length| "abcdefghij".repeat(100)[..length].to_string())
                .collect();
            texts.extend(["é", "Zoë ☃ 😀", &"ключ😀".repeat(30)].map(str::to_string));
            for text in &texts {
                let got: String = sha256.call((text.as_str(),)).unwrap();
                let want = digest::digest(&digest::SHA256, text.as_bytes());
                assert_eq!(
                    got,
                    B64.encode(want.as_ref()),
                    "SHA-256 of {} bytes",
                    text.len()
                );
                for key in ["k", &"K".repeat(64), &"K".repeat(65), "ключ"] {
                    let got: String = hmac_sha256.call((key, text.as_str())).unwrap();
                    let tag = hmac::sign(
                        &hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()),
                        text.as_bytes(),
                    );
                    assert_eq!(
                        got,
                        B64.encode(tag.as_ref()),
                        "HMAC of {} bytes",
                        text.len()
                    );
                }
                let decoded: Option<String> = decode.call((B64.encode(text),)).unwrap();
                assert_eq!(decoded.as_deref(), Some(text.as_str()));
            }
            // Not canonical base64url, or not UTF-8: refused.
            for bad in ["A", "AB=", "AB+/", "AB", "wA", "wIA", "7aCA", "_w"] {
                let decoded: Option<String> = decode.call((bad,)).unwrap();
                assert_eq!(decoded, None, "{bad}");
            }
        });
    }

    #[test]
    fn rule_scripts_with_a_trailing_semicolon_compile() {
        assert_eq!(
            rule_source("function (u, c, cb) {};\n"),
            "(\nfunction (u, c, cb) {}\n)"
        );
    }
}
