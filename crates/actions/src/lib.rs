//! Actions and Rules: JavaScript that administrators bind to a trigger, run on an
//! embedded engine with CPU-time and memory limits, one context per action.
//!
//! Architecture invariant: this crate knows JavaScript, the Auth0 `event` / `api`
//! shapes and the limits. It does not know HTTP, SQL or tokens' signing: the server
//! hands it the event (as JSON) and the deployed code, and applies the [`Outcome`].
//!
//! # How code runs
//!
//! The engine is QuickJS-ng through `rquickjs`. [`Engine::start`] spawns
//! [`Limits::workers`] dedicated threads (8 MiB stacks); each creates its own QuickJS
//! runtime, which never leaves that thread, with a heap limit of
//! [`Limits::memory_bytes`] and a JavaScript stack limit of 1 MiB.
//!
//! **Contexts.** Each action runs in a context of its own, which its worker keeps for the
//! action's next executions — as Auth0 keeps an action's module loaded between
//! executions: the module's top level runs once, and what it or a handler leaves in
//! module scope (or on the global object, or on a built-in's prototype) is there next
//! time. What one action changes is never seen by another, and every execution gets its
//! own `event`, `api`, secrets and console. A worker keeps the contexts of the 8 actions
//! it ran last, keyed by trigger and code, so a new version starts over; it drops them all
//! when its heap holds more than half the memory limit after an execution (measured after
//! a module first loads and every 32 executions, since measuring walks the heap), and
//! with its runtime whenever a limit was hit. So an action that grows its module scope by
//! more than about half a MiB per execution can make another execution on that worker hit
//! the memory limit before the check drops it: that one fails closed, and the runtime and
//! every kept context are rebuilt. Every rule and every compile check gets a
//! fresh context. The code is compiled from source; no bytecode is ever loaded and no
//! module loader exists, so `require` and `import` cannot reach anything (calling
//! `require` throws a message that says to bundle).
//!
//! A small JavaScript prelude (`prelude.js`) builds `console`, the trigger's `api` and the
//! controller the engine drives once per context, all writing to the running execution's
//! state, which the controller resets when an execution begins (a promise reaction
//! carries its execution's number, so one settled late never settles or fails another),
//! and a fresh `event` for every execution, parsed from the JSON the caller's thread made
//! of it (so the event is freed where it was allocated). The bridge is data only: `api` methods record `[method, JSON
//! of the arguments]`, `console` appends to a string, `api.cache` works on a snapshot of
//! the trigger's entries and returns its writes. Rust reads these back by plain property
//! access once the execution ends (so the log of an interrupted execution survives) and
//! merges them into the [`Outcome`]. No Rust function is callable from JavaScript:
//! rquickjs shares one prototype per Rust function type across a runtime's contexts,
//! which would both keep an old context's heap alive and let one execution leave state
//! for the next.
//!
//! The server filters the custom claims with `tessera_core::custom_claims::filter`
//! (reserved and restricted names, the 100 KB cap): the engine merges claims as asked
//! (a later action wins) and decides nothing about them.
//!
//! **Redirects.** In post-login, `api.redirect` works from the per-execution context the
//! engine passes to the controller ([`Job::redirect`]), never from globals. `sendUserTo`
//! records a call; the run checks the URL (absolute `http(s)`, RFC 3986 characters, no user
//! info, no fragment, no `state` parameter — the caller adds its own —, at most 2048 bytes)
//! and stops after that action with [`Outcome::redirect`]. A resumed run
//! ([`RedirectContext::resume_at`]) skips the Rules and the earlier actions, calls the
//! redirecting action's `onContinuePostLogin`, then the later ones' usual handler.
//! `encodeToken` / `validateToken` sign and check HS256 tokens with SHA-256 and HMAC written
//! in the prelude (no Rust is callable from JavaScript); `validateToken` reads the
//! `/continue` request's body and query as they were before any code ran.
//!
//! Legacy Rules run first, each in its own context, with `user` / `context` passed from
//! one rule's `callback(null, user, context)` to the next; the last `context.idToken` /
//! `context.accessToken` become claims and `context.accessToken.scope` replaces the
//! scopes (expressed as removed + added).
//!
//! # Limits (defaults)
//!
//! | limit | default | enforced by |
//! |---|---|---|
//! | time per action or rule | 1 s | QuickJS's interrupt handler |
//! | time per trigger (all rules and actions) | 5 s | the same handler: each execution's deadline is the earlier of the two |
//! | heap per execution | 32 MiB | `JS_SetMemoryLimit` (libc allocator; rquickjs's `rust-alloc` would disable it) |
//! | workers | 2 | — |
//! | `console.log` kept per execution | 256 B | cut on a character boundary, `…[truncated]` appended; secrets' values masked |
//!
//! An execution that overran its deadline inside a built-in that never polls the
//! interrupt handler fails once it returns, even if it succeeded. A runtime is rebuilt
//! after any limit was hit and every 500 executions.
//!
//! **Watchdog.** Some built-ins never return in time (huge BigInt to decimal, `sort` of a
//! huge sparse array). A watchdog thread looks at the workers every 100 ms: one still busy
//! 2 s past its budget is marked retired (it is never given work again, and its thread
//! ends if the code ever returns), its caller gets a [`Failure`] at once, and a
//! replacement starts, so the pool never shrinks; [`Engine::retired_workers`] counts them.
//! Retired threads are not capped: action code is administrators' code, and each
//! retirement is logged at `error`. A caller is woken once per job, by its answer (the
//! worker's or the watchdog's), not when a worker takes the job: a thread's wake-up costs
//! about as much as a small action's execution.
//!
//! **Cost.** A new context costs about a millisecond on a small VM, most of it QuickJS
//! parsing the prelude and the action's code; an execution in a kept context costs a few
//! dozen microseconds (the crate's test `an_execution_is_cheap` prints it).

mod cache;
mod engine;
mod js;
pub mod metadata;
mod rules;
mod run;

pub use engine::Engine;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

/// The triggers Tessera runs, with Auth0's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trigger {
    PostLogin,
    CredentialsExchange,
    PreUserRegistration,
    PostUserRegistration,
    PostChangePassword,
}

impl Trigger {
    pub const ALL: [Trigger; 5] = [
        Trigger::PostLogin,
        Trigger::CredentialsExchange,
        Trigger::PreUserRegistration,
        Trigger::PostUserRegistration,
        Trigger::PostChangePassword,
    ];

    /// Auth0's trigger id (`post-login`, …).
    pub fn id(self) -> &'static str {
        match self {
            Trigger::PostLogin => "post-login",
            Trigger::CredentialsExchange => "credentials-exchange",
            Trigger::PreUserRegistration => "pre-user-registration",
            Trigger::PostUserRegistration => "post-user-registration",
            Trigger::PostChangePassword => "post-change-password",
        }
    }

    pub fn parse(id: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|trigger| trigger.id() == id)
    }

    /// The trigger's version as Auth0 lists it (`v3` for post-login, `v2` otherwise).
    pub fn version(self) -> &'static str {
        match self {
            Trigger::PostLogin => "v3",
            _ => "v2",
        }
    }

    /// The exported handler the code must define (`onExecutePostLogin`, …).
    pub fn handler(self) -> &'static str {
        match self {
            Trigger::PostLogin => "onExecutePostLogin",
            Trigger::CredentialsExchange => "onExecuteCredentialsExchange",
            Trigger::PreUserRegistration => "onExecutePreUserRegistration",
            Trigger::PostUserRegistration => "onExecutePostUserRegistration",
            Trigger::PostChangePassword => "onExecutePostChangePassword",
        }
    }

    /// Whether the trigger's outcome changes the transaction (post-user-registration and
    /// post-change-password run after the fact and change nothing).
    pub fn blocking(self) -> bool {
        matches!(
            self,
            Trigger::PostLogin | Trigger::CredentialsExchange | Trigger::PreUserRegistration
        )
    }
}

/// One deployed action as a trigger runs it.
#[derive(Debug, Clone)]
pub struct Action {
    pub id: String,
    pub name: String,
    /// CommonJS source that assigns `exports.<handler>`.
    pub code: String,
    /// `event.secrets`, already unsealed.
    pub secrets: BTreeMap<String, String>,
}

/// One enabled legacy Rule: `function (user, context, callback) { … }`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub script: String,
}

/// What a trigger runs: the Rules first (post-login only), then the bound actions in order.
#[derive(Debug, Clone)]
pub struct Job {
    pub trigger: Trigger,
    /// Auth0's `event` object without `secrets` (each action gets its own). The engine
    /// guarantees `event.user.app_metadata` / `user_metadata` are objects.
    pub event: Value,
    pub rules: Vec<Rule>,
    /// The `configuration` global the Rules see (rules-configs, unsealed).
    pub configuration: BTreeMap<String, String>,
    pub actions: Vec<Action>,
    /// post-login only: whether and how this run may send the user away
    /// (`api.redirect`), and where a run after the user came back resumes. `None`: no
    /// redirect can happen (`canRedirect()` is false, `sendUserTo` fails the action).
    pub redirect: Option<RedirectContext>,
}

/// What `api.redirect` works with in one post-login run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectContext {
    /// `api.redirect.canRedirect()`: false where there is no browser to send (refresh
    /// token, password grant, `prompt=none`); `sendUserTo` then fails the action.
    pub allowed: bool,
    /// The `state` the external site is given and sends back to `/continue`; the
    /// `state` claim of `encodeToken`'s tokens, which `validateToken` requires.
    pub state: String,
    /// The `iss` claim of `encodeToken`'s tokens: the issuer's host.
    pub issuer: String,
    /// The `sub` claim of `encodeToken`'s tokens, which `validateToken` requires too:
    /// the user's id.
    pub subject: String,
    /// Set when the user came back (`/continue`): the index in [`Job::actions`] of the
    /// action that redirected. Its `onContinuePostLogin` runs first, then the actions
    /// after it run `onExecutePostLogin`; the Rules and the actions before it do not run
    /// again (their outcome was kept by the caller).
    pub resume_at: Option<usize>,
    /// When resuming: the metadata the run's first half left for the refresh token this
    /// login is to issue (it is not issued yet, so no event shows it); `None`: none.
    pub kept_refresh_token_metadata: Option<BTreeMap<String, String>>,
}

/// `api.redirect.sendUserTo`: the run stopped after this action, to send the user away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The action's index in [`Job::actions`] and its id: where the run resumes.
    pub action_index: usize,
    pub action_id: String,
    /// The URL as the action gave it, with its `query` option's parameters added; the
    /// caller adds `state`. Always an absolute `https:` or `http:` URL.
    pub url: String,
}

/// Limits for executions, with the documented defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// CPU/wall time one action (or rule) may take. Default 1 s.
    pub per_action: Duration,
    /// Time a whole trigger may take. Default 5 s.
    pub per_trigger: Duration,
    /// Heap one execution may allocate. Default 32 MiB.
    pub memory_bytes: usize,
    /// Worker threads. Default 2.
    pub workers: usize,
    /// Bytes of `console.log` kept per action. Default 256 (Auth0's limit is 256 chars).
    pub log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_action: Duration::from_secs(1),
            per_trigger: Duration::from_secs(5),
            memory_bytes: 32 * 1024 * 1024,
            workers: 2,
            log_bytes: 256,
        }
    }
}

/// Why a trigger stopped the transaction on purpose (`api.access.deny`, a Rule's
/// `UnauthorizedError`, `api.validation.error`).
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    /// The OAuth error code: `access_denied` unless credentials-exchange named one
    /// (`invalid_scope`, `invalid_request`, `server_error`) or `api.validation.error` did.
    pub code: String,
    /// The reason (`error_description`; the log).
    pub reason: String,
    /// pre-user-registration's `userMessage`, shown to the user.
    pub user_message: Option<String>,
    /// post-login's `api.refreshToken.revoke`: the refresh token the exchange presented is
    /// revoked too (the engine allows it only where the event has `refresh_token`).
    pub revoke_refresh_token: bool,
    /// post-login's `api.session.revoke`: the browser's session ends too (the engine
    /// allows it only where the event has `session`); whether its refresh tokens are kept
    /// (`preserveRefreshTokens`).
    pub end_session: Option<bool>,
    /// The action or rule that denied.
    pub by: String,
}

/// Why a trigger failed without meaning to: a thrown error, a time or memory limit, a
/// syntax error, a missing handler, an unsupported API. The transaction fails closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The action or rule that failed.
    pub by: String,
    /// A message fit for the log and the administrator (never secrets' values).
    pub message: String,
}

/// One action's or rule's execution, for the log and the Test panel.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionLog {
    pub name: String,
    /// `console.log` / `console.error` lines, truncated to [`Limits::log_bytes`] in all.
    pub stdout: String,
    pub duration: Duration,
    pub error: Option<String>,
}

/// What a trigger asked for. The server applies it: claims filtered by
/// `tessera_core::claims` rules, scopes added/removed, metadata written once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub access_token_claims: Map<String, Value>,
    pub id_token_claims: Map<String, Value>,
    /// `api.accessToken.addScope`, in call order, deduplicated.
    pub added_scopes: Vec<String>,
    /// `api.accessToken.removeScope`; a later add of the same scope wins over an
    /// earlier remove and the other way round.
    pub removed_scopes: Vec<String>,
    /// `api.user.setAppMetadata` merged across actions; `Value::Null` removes the key.
    pub app_metadata: Map<String, Value>,
    pub user_metadata: Map<String, Value>,
    /// `api.multifactor.enable` (a Rule's `context.multifactor`): this login needs a
    /// second factor. The last call wins; provider `none` asks nothing.
    pub multifactor: Option<Multifactor>,
    /// `api.refreshToken.setExpiresAt` / `setIdleExpiresAt` (milliseconds since 1970, as
    /// Auth0 takes them): the earliest asked across calls and actions, since they can only
    /// shorten a refresh token's life.
    pub refresh_token_expires_at: Option<i64>,
    pub refresh_token_idle_expires_at: Option<i64>,
    /// `api.session.setExpiresAt` / `setIdleExpiresAt` (ms): the earliest asked, as for
    /// the refresh token — they only shorten the browser's session.
    pub session_expires_at: Option<i64>,
    pub session_idle_expires_at: Option<i64>,
    /// `api.session.setMetadata` / `deleteMetadata` / `evictMetadata`: the session's whole
    /// metadata after the run's changes (within `metadata`'s bounds), to be written
    /// in place of what it had; `None` when nothing changed it or there is no session.
    pub session_metadata: Option<BTreeMap<String, String>>,
    /// `api.refreshToken.setMetadata` / `deleteMetadata` / `evictMetadata`: the refresh
    /// token's whole metadata after the run's changes — the exchanged token's at a refresh,
    /// else the one a login issues (if it issues one); `None` when nothing changed it.
    pub refresh_token_metadata: Option<BTreeMap<String, String>>,
    pub denied: Option<Denial>,
    pub failed: Option<Failure>,
    /// `api.redirect.sendUserTo`: the run stopped after the action that called it (the
    /// actions after it have not run). Never set together with `denied` or `failed`.
    pub redirect: Option<Redirect>,
    pub logs: Vec<ExecutionLog>,
}

/// The earlier of two optional times. A refresh token's or a session's life is only ever
/// shortened (`api.refreshToken.setExpiresAt`, `api.session.setIdleExpiresAt`, …), so of
/// every end asked — across calls, actions, and the two halves of a run a redirect split —
/// the earliest holds.
pub fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Outcome {
    /// Whether the transaction may go on.
    pub fn allowed(&self) -> bool {
        self.denied.is_none() && self.failed.is_none()
    }
}

/// A second factor an action asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multifactor {
    /// Auth0's provider name: `any`, `guardian`, `google-authenticator`, `duo`.
    pub provider: String,
    /// `{allowRememberBrowser: true}`: a browser the user chose to remember may skip it.
    pub allow_remember_browser: bool,
}

impl Multifactor {
    /// Auth0's `enable(provider, options)` arguments; `none` (or nothing) asks nothing.
    pub fn of(provider: &str, allow_remember_browser: bool) -> Option<Multifactor> {
        (!provider.is_empty() && provider != "none").then(|| Multifactor {
            provider: provider.to_string(),
            allow_remember_browser,
        })
    }
}

/// Errors of the engine itself (not of the code it runs).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the actions engine is not running")]
    Stopped,
}
