//! Actions and Rules in the flows: what each trigger's `event` holds (Auth0's shapes, from
//! what the flow knows), the trigger's deployed code (read from the store, cached for a
//! second), and what its outcome does — a refusal, custom claims and scopes for the grant
//! pipeline (`crate::grant`), metadata written once. The engine (`tessera_actions`) runs
//! the JavaScript; this module knows neither JavaScript nor how tokens are signed.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tessera_actions::{Action, Job, Outcome, RedirectContext, Rule, Trigger};
use tessera_core::grant::Customization;
use tessera_core::{Client, ResourceServer, User, ids};
use tessera_store::{StoreError, UserProfileChange};

use crate::AppState;
use crate::clock::now;
use crate::databases::Database;

/// What the HTTP request that runs a trigger says about its sender (`event.request`).
#[derive(Debug, Clone)]
pub(crate) struct RequestFacts {
    pub(crate) ip: IpAddr,
    pub(crate) method: &'static str,
    pub(crate) user_agent: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) language: Option<String>,
    /// The query (for `/oauth/token`, its body too) as Auth0 shows it: secrets left out.
    pub(crate) query: Map<String, Value>,
    /// A form's fields (`/oauth/token`'s; `/continue`'s, where a redirect action's site
    /// may post its token): `event.request.body`.
    pub(crate) body: Map<String, Value>,
    /// The token endpoint's form is shown as `query` too (as it was before `body`):
    /// kept once, in `body`.
    body_as_query: bool,
}

impl RequestFacts {
    pub(crate) fn of(
        ip: IpAddr,
        method: &'static str,
        headers: &HeaderMap,
        query: Map<String, Value>,
    ) -> RequestFacts {
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        RequestFacts {
            ip,
            method,
            user_agent: text(header::USER_AGENT),
            hostname: text(header::HOST),
            language: text(header::ACCEPT_LANGUAGE)
                .and_then(|list| {
                    list.split([',', ';'])
                        .next()
                        .map(str::trim)
                        .map(str::to_owned)
                })
                .filter(|language| !language.is_empty()),
            query,
            body: Map::new(),
            body_as_query: false,
        }
    }

    /// The facts of a token request: its form (credentials left out) is both
    /// `event.request.body` and, as before Tessera had `body`, `event.request.query`.
    pub(crate) fn of_token_request(
        ip: IpAddr,
        headers: &HeaderMap,
        form: Map<String, Value>,
    ) -> RequestFacts {
        RequestFacts {
            body_as_query: true,
            ..RequestFacts::of(ip, "POST", headers, Map::new()).with_body(form)
        }
    }

    /// These facts with a form's fields as `event.request.body`.
    pub(crate) fn with_body(mut self, body: Map<String, Value>) -> RequestFacts {
        self.body = body;
        self
    }

    fn to_event(&self) -> Value {
        json!({
            "ip": self.ip.to_string(),
            "method": self.method,
            "user_agent": self.user_agent,
            "hostname": self.hostname,
            "language": self.language,
            "query": if self.body_as_query { &self.body } else { &self.query },
            "body": self.body,
            "geoip": {},
        })
    }
}

/// Parameters that never reach an action's `event.request` (they are credentials).
const SECRET_PARAMETERS: &[&str] = &[
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "password",
    "client_assertion",
    "subject_token",
];

/// How many of an authorization request's parameters are kept for `event.request.query`,
/// and how long each may be (bytes of name and value): bounds on what a login's
/// transaction stores, far above what applications send (a longer one is left out).
const KEPT_PARAMETERS: usize = 64;
const KEPT_PARAMETER_BYTES: usize = 2048;

/// An authorization request's parameters as its login keeps them for its actions
/// ([`tessera_core::request::AuthRequest::parameters`]): sorted by name, without
/// credentials, within [`KEPT_PARAMETERS`] and [`KEPT_PARAMETER_BYTES`].
pub(crate) fn kept_parameters<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = pairs
        .filter(|(name, value)| {
            !SECRET_PARAMETERS.contains(name) && name.len() + value.len() <= KEPT_PARAMETER_BYTES
        })
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    kept.sort();
    kept.truncate(KEPT_PARAMETERS);
    kept
}

/// A request's parameters as `event.request.query` shows them.
pub(crate) fn visible_parameters<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Map<String, Value> {
    pairs
        .filter(|(name, _)| !SECRET_PARAMETERS.contains(name))
        .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
        .collect()
}

/// A trigger's rules (post-login) and deployed actions in their binding order.
#[derive(Debug, Default)]
struct Program {
    rules: Vec<Rule>,
    configuration: BTreeMap<String, String>,
    actions: Vec<Action>,
}

impl Program {
    fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.actions.is_empty()
    }
}

/// Each trigger's program, read from the store at most once per lifetime.
pub(crate) struct Programs {
    /// How long a trigger's deployed code is kept before it is read again (see
    /// `cluster::lifetimes`: a second on SQLite; on PostgreSQL changes are notified).
    lifetime: Duration,
    cached: Mutex<HashMap<Trigger, (Instant, Arc<Program>)>>,
    /// The issuer's host, for the custom claims' filter: parsed once, not per token.
    issuer_host: OnceLock<String>,
}

impl Programs {
    pub(crate) fn new(lifetime: Duration) -> Self {
        Programs {
            lifetime,
            cached: Mutex::default(),
            issuer_host: OnceLock::new(),
        }
    }

    async fn get(&self, state: &AppState, trigger: Trigger) -> Result<Arc<Program>, StoreError> {
        if let Some((read, program)) = self.cached.lock().expect("not poisoned").get(&trigger)
            && read.elapsed() < self.lifetime
        {
            return Ok(program.clone());
        }
        let program = Arc::new(load(state, trigger).await?);
        self.cached
            .lock()
            .expect("not poisoned")
            .insert(trigger, (Instant::now(), program.clone()));
        Ok(program)
    }

    /// Forgets what was read, so a change made through this node applies to its next
    /// request (other nodes hear of it: `cluster`).
    pub(crate) fn forget(&self) {
        self.cached.lock().expect("not poisoned").clear();
    }
}

/// What a trigger runs, read from the store: its deployed actions and, for post-login,
/// the enabled Rules with their configuration.
async fn load(state: &AppState, trigger: Trigger) -> Result<Program, StoreError> {
    let store = state.store();
    let deployed = store.trigger_program(trigger.id()).await?;
    let actions = deployed
        .into_iter()
        .map(|action| Action {
            secrets: crate::actions_admin::open_secrets(state, &action.action_id, &action.secrets),
            id: action.action_id,
            name: action.name,
            code: action.code,
        })
        .collect();
    let (rules, configuration) = if trigger == Trigger::PostLogin {
        let rules = store
            .enabled_rules()
            .await?
            .into_iter()
            .map(|rule| Rule {
                id: rule.id,
                name: rule.name,
                script: rule.script,
            })
            .collect::<Vec<_>>();
        let configuration = if rules.is_empty() {
            BTreeMap::new()
        } else {
            crate::actions_admin::open_rules_configs(state, &store.rules_configs_sealed().await?)
        };
        (rules, configuration)
    } else {
        (Vec::new(), BTreeMap::new())
    };
    Ok(Program {
        rules,
        configuration,
        actions,
    })
}

/// Why a trigger stopped a transaction.
#[derive(Debug)]
pub(crate) enum Stopped {
    /// `api.access.deny`, a Rule's `UnauthorizedError`, `api.validation.error`: the code
    /// and description the application gets.
    Denied {
        code: String,
        description: String,
    },
    /// The code failed (an exception, a limit): the transaction fails closed.
    Failed,
    /// `api.multifactor.enable` for a login that has not passed a second factor: the user
    /// passes one, then the login goes on (post-login runs again then). `remember`: a
    /// browser the user chose to remember may skip it (`allowRememberBrowser`).
    SecondFactor {
        remember: bool,
    },
    /// `api.redirect.sendUserTo`: the browser goes to `url`; the login continues at
    /// `/continue` with what `continuation` keeps.
    Redirect(Box<Suspended>),
    /// `api.refreshToken.revoke`: the exchange is refused (`access_denied`, the reason as
    /// its description) and the refresh token presented is revoked. Only a refresh
    /// exchange gets it (the engine fails the action elsewhere).
    RefreshTokenRevoked {
        description: String,
    },
    Store(StoreError),
}

/// A post-login run stopped by a redirect: where the browser goes, and what the run that
/// resumes it needs.
#[derive(Debug)]
pub(crate) struct Suspended {
    /// The action's URL with `state` added.
    pub(crate) url: String,
    /// The `state`: the id the login's transaction is stored under meanwhile.
    pub(crate) state: String,
    pub(crate) continuation: Continuation,
}

/// What a login suspended by a redirect action keeps until the user comes back to
/// `/continue` (in the login transaction, whose id is the `state` the site was given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Continuation {
    /// Who was signing in, in which session: `/continue` answers only that session.
    pub(crate) user_id: String,
    pub(crate) sid: String,
    /// The action that redirected: its index among the trigger's bound actions and its
    /// id (a binding changed meanwhile fails the login rather than run another action).
    pub(crate) action_index: usize,
    pub(crate) action_id: String,
    /// What the run asked before it stopped, applied under what the resumed run asks
    /// (a later claim or scope change wins). The user's and the session's metadata were
    /// written already; the refresh token's waits here for the token.
    #[serde(default)]
    pub(crate) kept: KeptOutcome,
}

/// The parts of an outcome a suspended run carries over, as the engine gave them (the
/// custom claims' filter runs once, on the whole).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeptOutcome {
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    access_token_claims: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    id_token_claims: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    added_scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    removed_scopes: Vec<String>,
    /// `api.multifactor.enable`'s provider and `allowRememberBrowser`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multifactor: Option<(String, bool)>,
    /// `api.refreshToken.setExpiresAt` / `setIdleExpiresAt` (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token_idle_expires_at: Option<i64>,
    /// `api.session.setExpiresAt` / `setIdleExpiresAt` (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_idle_expires_at: Option<i64>,
    /// `api.refreshToken.setMetadata` and its kin: what the token this login issues is to
    /// carry (the resumed run starts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token_metadata: Option<BTreeMap<String, String>>,
}

impl KeptOutcome {
    fn of(outcome: &Outcome) -> KeptOutcome {
        KeptOutcome {
            access_token_claims: outcome.access_token_claims.clone(),
            id_token_claims: outcome.id_token_claims.clone(),
            added_scopes: outcome.added_scopes.clone(),
            removed_scopes: outcome.removed_scopes.clone(),
            multifactor: outcome
                .multifactor
                .as_ref()
                .map(|asked| (asked.provider.clone(), asked.allow_remember_browser)),
            refresh_token_expires_at: outcome.refresh_token_expires_at,
            refresh_token_idle_expires_at: outcome.refresh_token_idle_expires_at,
            session_expires_at: outcome.session_expires_at,
            session_idle_expires_at: outcome.session_idle_expires_at,
            refresh_token_metadata: outcome.refresh_token_metadata.clone(),
        }
    }

    /// `later` (the resumed run's outcome) over what was kept: its claims win, its scope
    /// changes come after the kept ones, its second-factor request replaces the kept one,
    /// and the earlier of the refresh token's and the session's ends asked holds.
    fn under(self, mut later: Outcome) -> Outcome {
        // The resumed run started from the kept metadata: its own, when it changed it,
        // holds the first half's too.
        if later.refresh_token_metadata.is_none() {
            later.refresh_token_metadata = self.refresh_token_metadata;
        }
        later.session_expires_at =
            tessera_actions::earliest(self.session_expires_at, later.session_expires_at);
        later.session_idle_expires_at =
            tessera_actions::earliest(self.session_idle_expires_at, later.session_idle_expires_at);
        later.refresh_token_expires_at = tessera_actions::earliest(
            self.refresh_token_expires_at,
            later.refresh_token_expires_at,
        );
        later.refresh_token_idle_expires_at = tessera_actions::earliest(
            self.refresh_token_idle_expires_at,
            later.refresh_token_idle_expires_at,
        );
        let mut access_token_claims = self.access_token_claims;
        access_token_claims.append(&mut later.access_token_claims);
        later.access_token_claims = access_token_claims;
        let mut id_token_claims = self.id_token_claims;
        id_token_claims.append(&mut later.id_token_claims);
        later.id_token_claims = id_token_claims;
        let (mut added, mut removed) = (self.added_scopes, self.removed_scopes);
        for scope in &later.removed_scopes {
            added.retain(|kept| kept != scope);
            if !removed.contains(scope) {
                removed.push(scope.clone());
            }
        }
        for scope in &later.added_scopes {
            removed.retain(|kept| kept != scope);
            if !added.contains(scope) {
                added.push(scope.clone());
            }
        }
        later.added_scopes = added;
        later.removed_scopes = removed;
        if later.multifactor.is_none() {
            later.multifactor = self.multifactor.and_then(|(provider, remember)| {
                tessera_actions::Multifactor::of(&provider, remember)
            });
        }
        later
    }
}

impl From<StoreError> for Stopped {
    fn from(error: StoreError) -> Self {
        Stopped::Store(error)
    }
}

/// What the application is told when an action failed: nothing of the failure itself
/// (the log has it), so no code or secret leaks to it.
pub(crate) const FAILED_DESCRIPTION: &str =
    "The login was refused because an Action or Rule failed; the server's log says why.";

/// The most of an action's denial text a client or a user is shown: it travels in a
/// redirect's query, which proxies and browsers cap at a few kilobytes.
const MAX_DENIAL_BYTES: usize = 500;

/// `text` cut to [`MAX_DENIAL_BYTES`] on a character boundary (the log keeps it whole).
fn bounded(mut text: String) -> String {
    if text.len() > MAX_DENIAL_BYTES {
        let mut end = MAX_DENIAL_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// What the flow knows when a user's tokens are about to be issued.
pub(crate) struct Login<'a> {
    pub(crate) client: &'a Client,
    pub(crate) user: &'a User,
    pub(crate) api: Option<&'a ResourceServer>,
    /// Auth0's `event.transaction.protocol`: `oidc-basic-profile`, `oidc-implicit-profile`,
    /// `oidc-hybrid-profile`, `oauth2-refresh-token`.
    pub(crate) protocol: &'static str,
    pub(crate) requested_scopes: &'a [String],
    pub(crate) redirect_uri: Option<&'a str>,
    pub(crate) request: &'a RequestFacts,
    /// The connection the user signed in with when the flow knows it: a linked identity's
    /// is not the user's own. `None`: the user's own.
    pub(crate) connection: Option<&'a str>,
    /// How the session was signed in (RFC 8176 methods): `event.authentication.methods`,
    /// and whether `api.multifactor.enable` is met already.
    pub(crate) amr: &'a [String],
    /// Whether an action may send the browser away (`api.redirect`).
    pub(crate) redirects: Redirects<'a>,
    /// `event.refresh_token`: the refresh token a refresh exchange presented (`None`
    /// elsewhere); `api.refreshToken.revoke` works only where it is set. Made only when
    /// an action is to run: most refreshes run none.
    pub(crate) refresh_token: Option<&'a (dyn Fn() -> Value + Sync)>,
}

/// Where a post-login run stands with `api.redirect`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Redirects<'a> {
    /// No browser to send (a refresh, the password grant, the device flow):
    /// `canRedirect()` is false and `sendUserTo` fails the action.
    Impossible,
    /// A browser sign-in in session `sid`; `allowed` is false for `prompt=none`.
    Browser { sid: &'a str, allowed: bool },
    /// The user came back to `/continue` with `state`: the run resumes where it
    /// stopped. A second redirect from it is given the same `state`.
    Resuming {
        continuation: &'a Continuation,
        state: &'a str,
    },
}

/// `event.session` in a browser's sign-in: the session in the Management API's shape
/// (`GET /api/v2/sessions/{id}`), but for its metadata, which actions read as `metadata`
/// where the Management API says `session_metadata`. Auth0 has it in interactive flows
/// only: a refresh, the password grant and the device flow's token have none.
async fn session_event(
    state: &AppState,
    redirects: Redirects<'_>,
) -> Result<Option<Value>, StoreError> {
    let sid = match redirects {
        Redirects::Browser { sid, .. } => sid,
        Redirects::Resuming { continuation, .. } => continuation.sid.as_str(),
        Redirects::Impossible => return Ok(None),
    };
    let lifetimes = crate::hosted::session::lifetimes(state).await?;
    let live = crate::management::sessions::live_at(lifetimes);
    let details = state.store().find_session_by_sid(sid, live).await?;
    Ok(details.map(|details| {
        let mut session = crate::management::sessions::shape(&details, lifetimes);
        if let Some(shown) = session.as_object_mut()
            && let Some(metadata) = shown.remove("session_metadata")
        {
            shown.insert("metadata".to_string(), metadata);
        }
        session
    }))
}

/// Runs post-login (Rules, then the bound actions) for a user about to get tokens.
pub(crate) async fn post_login(
    state: &AppState,
    login: &Login<'_>,
) -> Result<Customization, Stopped> {
    let program = state
        .action_programs()
        .get(state, Trigger::PostLogin)
        .await?;
    if program.is_empty() {
        if let Redirects::Resuming { continuation, .. } = login.redirects {
            // Unbound while the user was away: nothing checks what the site sent back.
            tracing::error!(
                target: "tessera::actions",
                action = %continuation.action_id,
                client_id = %login.client.client_id,
                "the action that redirected is no longer bound: the login is refused"
            );
            return Err(Stopped::Failed);
        }
        return Ok(Customization::default());
    }
    let roles = state
        .store()
        .user_roles(&login.user.user_id)
        .await?
        .into_iter()
        .map(|role| role.name)
        .collect::<Vec<_>>();
    let linked = state.store().linked_identities(&login.user.user_id).await?;
    let mut user = user_event(login.user, &linked);
    let (enrolled, providers) = second_factors(state, &login.user.user_id).await?;
    user["enrolledFactors"] = Value::Array(enrolled);
    user["multifactor"] = json!(providers);
    let mut event = json!({
        "user": user,
        "authorization": { "roles": roles },
        "client": client_event(login.client),
        "connection": connection_event(state, login.connection.unwrap_or(&login.user.connection)).await?,
        "request": login.request.to_event(),
        "stats": { "logins_count": login.user.logins_count },
        "authentication": {
            "methods": login.amr.iter().map(|name| json!({ "name": name })).collect::<Vec<_>>(),
        },
        "tenant": { "id": "default" },
        "transaction": {
            "protocol": login.protocol,
            "requested_scopes": login.requested_scopes,
            "redirect_uri": login.redirect_uri,
        },
    });
    if let Some(api) = login.api {
        event["resource_server"] = json!({ "identifier": api.identifier });
    }
    if let Some(refresh_token) = login.refresh_token {
        event["refresh_token"] = refresh_token();
    }
    if let Some(session) = session_event(state, login.redirects).await? {
        event["session"] = session;
    }
    let redirect = redirect_context(state, login, &program)?;
    let redirect_state = redirect.as_ref().map(|context| context.state.clone());
    let outcome = run_with(state, Trigger::PostLogin, event, &program, redirect).await;
    write_metadata(state, &login.user.user_id, &outcome).await?;
    let sid = match login.redirects {
        Redirects::Resuming { continuation, .. } => Some(continuation.sid.as_str()),
        Redirects::Browser { sid, .. } => Some(sid),
        Redirects::Impossible => None,
    };
    if let (Some(metadata), Some(sid)) = (&outcome.session_metadata, sid) {
        write_session_metadata(state, sid, metadata, &login.client.client_id).await?;
    }
    let outcome = match login.redirects {
        Redirects::Resuming { continuation, .. } => continuation.kept.clone().under(outcome),
        _ => outcome,
    };
    if let (Some(redirect), Some(state_id), Some(sid)) = (&outcome.redirect, redirect_state, sid)
        && outcome.allowed()
    {
        log_executions(&outcome, &login.client.client_id);
        tracing::info!(
            target: "tessera::actions",
            action = %redirect.action_id,
            client_id = %login.client.client_id,
            "the login is suspended: an action sends the user away"
        );
        // The engine hands over only absolute http(s) URLs.
        let Some(url) = with_state(&redirect.url, &state_id) else {
            return Err(Stopped::Failed);
        };
        return Err(Stopped::Redirect(Box::new(Suspended {
            url,
            state: state_id,
            continuation: Continuation {
                user_id: login.user.user_id.clone(),
                sid: sid.to_string(),
                action_index: redirect.action_index,
                action_id: redirect.action_id.clone(),
                kept: KeptOutcome::of(&outcome),
            },
        })));
    }
    if outcome.redirect.is_some() && outcome.allowed() {
        // The engine refuses `sendUserTo` where no redirect can happen; never issue
        // tokens past one that got through.
        tracing::error!(target: "tessera::actions", client_id = %login.client.client_id, "an action redirected where no redirect can happen: the login is refused");
        return Err(Stopped::Failed);
    }
    if let (Some(denial), Some(sid)) = (&outcome.denied, sid)
        && let Some(keep_refresh_tokens) = denial.end_session
    {
        // `api.session.revoke`: as an administrator ends a session (`session-revoked` for
        // its applications), then the login is denied like any other.
        let ended = state
            .store()
            .end_session(sid, !keep_refresh_tokens, now())
            .await?;
        tracing::info!(
            target: "tessera::actions",
            action = %denial.by,
            client_id = %login.client.client_id,
            ended,
            keep_refresh_tokens,
            "api.session.revoke: the browser's session is ended"
        );
    }
    if let Some(sid) = sid
        && outcome.allowed()
    {
        shorten_session(state, sid, &outcome, &login.client.client_id).await?;
    }
    let multifactor = outcome.multifactor.clone();
    let custom = settle(state, outcome, &login.client.client_id)?;
    match multifactor {
        Some(asked) if !crate::mfa::has_second_factor(login.amr) => {
            // Tessera's factors are its own: every provider but Duo means "one of them".
            if asked.provider == "duo" {
                tracing::error!(
                    target: "tessera::actions",
                    client_id = %login.client.client_id,
                    "api.multifactor.enable('duo'): Duo is not offered; the login is refused"
                );
                return Err(Stopped::Failed);
            }
            Err(Stopped::SecondFactor {
                remember: asked.allow_remember_browser,
            })
        }
        _ => Ok(custom),
    }
}

/// `api.session.setExpiresAt` / `setIdleExpiresAt`: the browser's session ends by then
/// (never later than it would have). Without a session (a refresh, the password grant)
/// there is nothing to shorten, as there is no refresh token to shorten in a login that
/// issues none.
async fn shorten_session(
    state: &AppState,
    sid: &str,
    outcome: &Outcome,
    client_id: &str,
) -> Result<(), StoreError> {
    let (ends_by, idle_end) = (
        seconds(outcome.session_expires_at),
        seconds(outcome.session_idle_expires_at),
    );
    if ends_by.is_none() && idle_end.is_none() {
        return Ok(());
    }
    let live = state
        .store()
        .shorten_session(sid, (ends_by, idle_end), now())
        .await?;
    tracing::info!(
        target: "tessera::actions",
        %client_id,
        ends_by,
        idle_end,
        live,
        "api.session: the browser's session is shortened"
    );
    Ok(())
}

/// `api.session.setMetadata` / `deleteMetadata` / `evictMetadata`: the session's metadata
/// as the run left it, written at once — a deny does not undo it, as it does not undo user
/// metadata, and the second half of a run a redirect split reads it from the session.
async fn write_session_metadata(
    state: &AppState,
    sid: &str,
    metadata: &BTreeMap<String, String>,
    client_id: &str,
) -> Result<(), StoreError> {
    let live = state
        .store()
        // The session the run signed in with: its absolute lifetime is not in question.
        .set_session_metadata(sid, metadata, (now(), i64::MIN))
        .await?;
    tracing::info!(
        target: "tessera::actions",
        %client_id,
        keys = metadata.len(),
        live,
        "api.session: the session's metadata is written"
    );
    Ok(())
}

/// Auth0 takes milliseconds; the store keeps seconds (an instant inside a second rounds
/// down: never later than asked).
fn seconds(ms: Option<i64>) -> Option<i64> {
    ms.map(|ms| ms.div_euclid(1000))
}

/// Runs credentials-exchange for a machine-to-machine token about to be issued.
pub(crate) async fn credentials_exchange(
    state: &AppState,
    client: &Client,
    api: &ResourceServer,
    requested_scopes: &[String],
    request: &RequestFacts,
) -> Result<Customization, Stopped> {
    let program = state
        .action_programs()
        .get(state, Trigger::CredentialsExchange)
        .await?;
    if program.is_empty() {
        return Ok(Customization::default());
    }
    let event = json!({
        "client": client_event(client),
        "resource_server": { "identifier": api.identifier },
        "request": request.to_event(),
        "tenant": { "id": "default" },
        "transaction": { "requested_scopes": requested_scopes },
        "accessToken": { "customClaims": {}, "scope": requested_scopes },
    });
    let outcome = run(state, Trigger::CredentialsExchange, event, &program).await;
    settle(state, outcome, &client.client_id)
}

/// A user's own sign-up: the application, the request and the database connection, for
/// the registration triggers.
#[derive(Clone)]
pub(crate) struct SignUp {
    pub(crate) client: Client,
    pub(crate) request: RequestFacts,
    pub(crate) database: Database,
}

/// The profile a sign-up submitted, before the account exists.
pub(crate) struct NewProfile<'a> {
    pub(crate) email: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) nickname: Option<&'a str>,
    pub(crate) picture: Option<&'a str>,
    pub(crate) user_metadata: &'a Map<String, Value>,
    pub(crate) app_metadata: &'a Map<String, Value>,
}

/// What pre-user-registration changes in the account about to be written.
#[derive(Debug, Default)]
pub(crate) struct RegistrationChanges {
    pub(crate) user_metadata: Map<String, Value>,
    pub(crate) app_metadata: Map<String, Value>,
}

/// Why a sign-up stopped at pre-user-registration.
#[derive(Debug)]
pub(crate) enum RegistrationStopped {
    /// What the user may be shown: the action's `userMessage`, or a generic sentence (the
    /// reason is for the log).
    Denied {
        user_message: String,
    },
    Store(StoreError),
}

/// What a user is told when a sign-up was refused without a message for them.
const SIGN_UP_REFUSED: &str = "The sign-up was not allowed.";

/// Runs pre-user-registration for a sign-up about to be written.
pub(crate) async fn pre_user_registration(
    state: &AppState,
    sign_up: &SignUp,
    profile: &NewProfile<'_>,
) -> Result<RegistrationChanges, RegistrationStopped> {
    let program = state
        .action_programs()
        .get(state, Trigger::PreUserRegistration)
        .await
        .map_err(RegistrationStopped::Store)?;
    if program.is_empty() {
        return Ok(RegistrationChanges::default());
    }
    let event = json!({
        "user": {
            "email": profile.email,
            "name": profile.name,
            "nickname": profile.nickname,
            "picture": profile.picture,
            "user_metadata": profile.user_metadata,
            "app_metadata": profile.app_metadata,
        },
        "client": client_event(&sign_up.client),
        "connection": database_event(&sign_up.database),
        "request": sign_up.request.to_event(),
        "tenant": { "id": "default" },
        "transaction": {},
    });
    let outcome = run(state, Trigger::PreUserRegistration, event, &program).await;
    log_executions(&outcome, &sign_up.client.client_id);
    if let Some(failure) = &outcome.failed {
        tracing::error!(
            target: "tessera::actions",
            action = %failure.by,
            client_id = %sign_up.client.client_id,
            error = %failure.message,
            "action failed: the sign-up is refused"
        );
        return Err(RegistrationStopped::Denied {
            user_message: SIGN_UP_REFUSED.to_string(),
        });
    }
    if let Some(denial) = outcome.denied {
        tracing::info!(
            target: "tessera::actions",
            action = %denial.by,
            client_id = %sign_up.client.client_id,
            reason = %denial.reason,
            "sign-up denied by an action"
        );
        let user_message = denial
            .user_message
            .or_else(|| (denial.code != "access_denied").then_some(denial.reason))
            .unwrap_or_else(|| SIGN_UP_REFUSED.to_string());
        return Err(RegistrationStopped::Denied {
            user_message: bounded(user_message),
        });
    }
    Ok(RegistrationChanges {
        user_metadata: outcome.user_metadata,
        app_metadata: outcome.app_metadata,
    })
}

/// Runs post-user-registration after a sign-up, off the request's path: it cannot change
/// the outcome, and its failures are only logged.
pub(crate) fn post_user_registration(state: &AppState, sign_up: SignUp, user: &User) {
    let event = json!({
        // A new account: nothing is linked to it yet.
        "user": user_event(user, &[]),
        "client": client_event(&sign_up.client),
        "connection": database_event(&sign_up.database),
        "request": sign_up.request.to_event(),
        "tenant": { "id": "default" },
        "transaction": {},
    });
    after_the_fact(
        state,
        Trigger::PostUserRegistration,
        event,
        sign_up.client.client_id,
    );
}

/// Runs post-change-password after a user's password changed, off the request's path.
pub(crate) fn post_change_password(
    state: &AppState,
    user: &User,
    database: &Database,
    request: &RequestFacts,
) {
    let event = json!({
        // Off the request's path and without a store read: linked identities are left out.
        "user": user_event(user, &[]),
        "connection": database_event(database),
        "request": request.to_event(),
        "tenant": { "id": "default" },
        "transaction": {},
    });
    after_the_fact(state, Trigger::PostChangePassword, event, String::new());
}

/// A non-blocking trigger, on a task of its own.
fn after_the_fact(state: &AppState, trigger: Trigger, event: Value, client_id: String) {
    let state = state.clone();
    tokio::spawn(async move {
        let program = match state.action_programs().get(&state, trigger).await {
            Ok(program) if program.is_empty() => return,
            Ok(program) => program,
            Err(error) => {
                tracing::error!(target: "tessera::actions", trigger = trigger.id(), %error, "cannot read the trigger's actions");
                return;
            }
        };
        let outcome = run(&state, trigger, event, &program).await;
        log_executions(&outcome, &client_id);
        if let Some(failure) = &outcome.failed {
            tracing::error!(
                target: "tessera::actions",
                action = %failure.by,
                trigger = trigger.id(),
                error = %failure.message,
                "action failed (after the fact: nothing was refused)"
            );
        }
    });
}

/// `api.redirect`'s context for a post-login run: a fresh `state` for a browser sign-in
/// (the id its transaction gets if an action redirects), the kept one when resuming.
fn redirect_context(
    state: &AppState,
    login: &Login<'_>,
    program: &Program,
) -> Result<Option<RedirectContext>, Stopped> {
    let (allowed, state_id, resume_at, kept_refresh_token_metadata) = match login.redirects {
        Redirects::Impossible => return Ok(None),
        Redirects::Browser { allowed, .. } => (allowed, ids::secret_token(), None, None),
        Redirects::Resuming {
            continuation,
            state: state_id,
        } => {
            // The bindings changed while the user was away: fail rather than resume in
            // another action.
            let bound = program.actions.get(continuation.action_index);
            if bound.is_none_or(|action| action.id != continuation.action_id) {
                tracing::error!(
                    target: "tessera::actions",
                    action = %continuation.action_id,
                    client_id = %login.client.client_id,
                    "the action that redirected is no longer bound there: the login is refused"
                );
                return Err(Stopped::Failed);
            }
            (
                true,
                state_id.to_string(),
                Some(continuation.action_index),
                continuation.kept.refresh_token_metadata.clone(),
            )
        }
    };
    Ok(Some(RedirectContext {
        allowed,
        state: state_id,
        issuer: issuer_host(state).to_string(),
        subject: login.user.user_id.clone(),
        resume_at,
        kept_refresh_token_metadata,
    }))
}

/// The redirect's URL with `state`, the id of the transaction `/continue` reads, as its
/// only `state`: one the action put there is dropped, so the site cannot be handed a
/// state that resumes another login.
fn with_state(url: &str, state_id: &str) -> Option<String> {
    let mut url = url::Url::parse(url).ok()?;
    // The engine hands over only these; checked again where the browser is sent.
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| name != "state")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("state", state_id);
    Some(url.into())
}

/// The issuer's host: `iss` of redirect actions' tokens, and what the custom claims'
/// filter keeps out of claim names.
pub(crate) fn issuer_host(state: &AppState) -> &str {
    state.action_programs().issuer_host.get_or_init(|| {
        url::Url::parse(state.issuer())
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default()
    })
}

async fn run(state: &AppState, trigger: Trigger, event: Value, program: &Program) -> Outcome {
    run_with(state, trigger, event, program, None).await
}

async fn run_with(
    state: &AppState,
    trigger: Trigger,
    event: Value,
    program: &Program,
    redirect: Option<RedirectContext>,
) -> Outcome {
    let job = Job {
        trigger,
        event,
        rules: program.rules.clone(),
        configuration: program.configuration.clone(),
        actions: program.actions.clone(),
        redirect,
    };
    match state.actions().run(job).await {
        Ok(outcome) => outcome,
        Err(error) => Outcome {
            failed: Some(tessera_actions::Failure {
                by: trigger.id().to_string(),
                message: error.to_string(),
            }),
            ..Outcome::default()
        },
    }
}

/// `api.user.setAppMetadata` / `setUserMetadata`, gathered over the trigger and written
/// once — a deny does not undo them (as on Auth0).
async fn write_metadata(
    state: &AppState,
    user_id: &str,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    if outcome.app_metadata.is_empty() && outcome.user_metadata.is_empty() {
        return Ok(());
    }
    let change = UserProfileChange {
        app_metadata: (!outcome.app_metadata.is_empty()).then(|| outcome.app_metadata.clone()),
        user_metadata: (!outcome.user_metadata.is_empty()).then(|| outcome.user_metadata.clone()),
        ..UserProfileChange::default()
    };
    state
        .store()
        .update_user_profile(user_id, &change, now())
        .await?;
    Ok(())
}

/// Each execution of a trigger's run, in the log: what `console.log` printed included.
fn log_executions(outcome: &Outcome, client_id: &str) {
    for execution in &outcome.logs {
        tracing::info!(
            target: "tessera::actions",
            action = %execution.name,
            %client_id,
            millis = execution.duration.as_millis() as u64,
            error = execution.error.as_deref().unwrap_or(""),
            stdout = %execution.stdout,
            "action executed"
        );
    }
}

/// The log of a trigger's run, and what the flow does with its outcome.
fn settle(state: &AppState, outcome: Outcome, client_id: &str) -> Result<Customization, Stopped> {
    log_executions(&outcome, client_id);
    if let Some(failure) = &outcome.failed {
        tracing::error!(
            target: "tessera::actions",
            action = %failure.by,
            %client_id,
            error = %failure.message,
            "action failed: the transaction is refused"
        );
        return Err(Stopped::Failed);
    }
    if let Some(denial) = outcome.denied {
        tracing::info!(
            target: "tessera::actions",
            action = %denial.by,
            %client_id,
            reason = %denial.reason,
            revoke_refresh_token = denial.revoke_refresh_token,
            "access denied by an action"
        );
        if denial.revoke_refresh_token {
            return Err(Stopped::RefreshTokenRevoked {
                description: bounded(denial.reason),
            });
        }
        return Err(Stopped::Denied {
            code: denial.code,
            description: bounded(denial.reason),
        });
    }
    let host = issuer_host(state);
    let (access_token_claims, dropped_access) =
        tessera_core::custom_claims::filter(host, true, outcome.access_token_claims);
    let (id_token_claims, dropped_id) =
        tessera_core::custom_claims::filter(host, false, outcome.id_token_claims);
    for dropped in dropped_access.iter().chain(&dropped_id) {
        tracing::warn!(target: "tessera::actions", %client_id, claim = %dropped, "custom claim dropped");
    }
    Ok(Customization {
        access_token_claims,
        id_token_claims,
        added_scopes: outcome.added_scopes,
        removed_scopes: outcome.removed_scopes,
        refresh_token_expires_at: seconds(outcome.refresh_token_expires_at),
        refresh_token_idle_expires_at: seconds(outcome.refresh_token_idle_expires_at),
        refresh_token_metadata: outcome.refresh_token_metadata,
    })
}

/// `event.user.enrolledFactors` (Auth0's factor names: `otp`, `webauthn-roaming`,
/// `webauthn-platform`, `recovery-code`; a passkey signs in, it is no second factor) and
/// `event.user.multifactor` (`["guardian"]` once there is one), from the user's confirmed
/// factors as administrators see them (`mfa_admin::factors`).
async fn second_factors(
    state: &AppState,
    user_id: &str,
) -> Result<(Vec<Value>, Vec<&'static str>), StoreError> {
    let factors = crate::mfa_admin::factors(state.store(), user_id).await?;
    let enrolled: Vec<Value> = factors
        .iter()
        .filter_map(|factor| match factor["type"].as_str()? {
            "totp" => Some("otp"),
            "webauthn-roaming" => Some("webauthn-roaming"),
            "webauthn-platform" => Some("webauthn-platform"),
            "recovery-code" => Some("recovery-code"),
            _ => None,
        })
        .map(|kind| json!({ "type": kind }))
        .collect();
    let providers = if enrolled.is_empty() {
        Vec::new()
    } else {
        vec!["guardian"]
    };
    Ok((enrolled, providers))
}

/// `event.user`: the Management API's user (with the identities linked to it), metadata
/// always objects.
fn user_event(user: &User, linked: &[tessera_store::LinkedIdentity]) -> Value {
    let mut event = serde_json::to_value(crate::management::wire::user(user, linked))
        .expect("plain data serializes");
    for member in ["app_metadata", "user_metadata"] {
        if !event[member].is_object() {
            event[member] = json!({});
        }
    }
    event["multifactor"] = json!([]);
    event["enrolledFactors"] = json!([]);
    event
}

fn client_event(client: &Client) -> Value {
    json!({
        "client_id": client.client_id,
        "name": client.name,
        "metadata": client.profile.client_metadata,
    })
}

/// `event.connection` of a login: the connection named `name`, the one the user signed
/// in with (found by its name, as users and sessions keep it).
async fn connection_event(state: &AppState, name: &str) -> Result<Value, StoreError> {
    Ok(match state.store().find_connection_by_name(name).await? {
        Some(connection) => json!({
            "id": connection.id,
            "name": connection.name,
            "strategy": connection.strategy,
            "metadata": connection.metadata,
        }),
        None => json!({ "name": name, "metadata": {} }),
    })
}

fn database_event(database: &Database) -> Value {
    json!({
        "id": database.id,
        "name": database.name,
        "strategy": "auth0",
        "metadata": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_denial_is_cut_on_a_character_boundary() {
        assert_eq!(bounded("short".into()), "short");
        let long = "é".repeat(MAX_DENIAL_BYTES);
        let cut = bounded(long);
        assert!(
            cut.len() <= MAX_DENIAL_BYTES + '…'.len_utf8(),
            "{}",
            cut.len()
        );
        assert!(cut.ends_with('…'));
        assert!(cut.trim_end_matches('…').chars().all(|c| c == 'é'));
    }
}
