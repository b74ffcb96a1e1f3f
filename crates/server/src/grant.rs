//! The grant pipeline: every flow that grants something comes here — the authorization
//! response, consent's "what needs asking", the code and refresh grants, client
//! credentials. It reads what `tessera_core::grant` needs, as it is now (the API, the
//! user's permissions), and asks it; the decision itself is made there alone. This is
//! where policies that may change a decision (Actions and Rules, `crate::actions`) run,
//! on its result: `after_login`, `after_credentials`.

use tessera_core::grant::{self, Asked, Grant, Refusal, UserRequest};
use tessera_core::{Client, ResourceServer};
use tessera_store::StoreError;

use crate::error::OAuthError;
use crate::{AppState, actions};

/// Why the pipeline gives no grant: the decision refused, an Action or Rule refused (or
/// failed, which refuses too), or the store could not answer.
#[derive(Debug)]
pub(crate) enum Denied {
    Refused(Refusal),
    /// The OAuth error code (`access_denied`, or what credentials-exchange named) and the
    /// description the application gets.
    Action {
        code: &'static str,
        description: String,
    },
    /// Post-login asked for a second factor this login has not passed: the browser is
    /// sent to pass one (a remembered browser may skip it when `remember`); elsewhere (a
    /// refresh, `prompt=none`) it is a refusal.
    SecondFactor {
        remember: bool,
    },
    /// A post-login action sends the browser away (`api.redirect.sendUserTo`); the login
    /// goes on at `/continue`. Only browser sign-ins get it (elsewhere the action fails).
    Redirect(Box<actions::Suspended>),
    Store(StoreError),
}

/// What an application hears when a second factor is needed where none can be asked.
pub(crate) const SECOND_FACTOR_NEEDED: &str = "Multifactor authentication required";

impl From<actions::Stopped> for Denied {
    fn from(stopped: actions::Stopped) -> Self {
        match stopped {
            actions::Stopped::Denied { code, description } => Denied::Action {
                code: oauth_code(&code),
                description,
            },
            actions::Stopped::Failed => Denied::Action {
                code: "access_denied",
                description: actions::FAILED_DESCRIPTION.to_string(),
            },
            actions::Stopped::SecondFactor { remember } => Denied::SecondFactor { remember },
            actions::Stopped::Redirect(suspended) => Denied::Redirect(suspended),
            // The refresh grant revokes the token itself before it answers.
            actions::Stopped::RefreshTokenRevoked { description } => Denied::Action {
                code: "access_denied",
                description,
            },
            actions::Stopped::Store(error) => Denied::Store(error),
        }
    }
}

/// The codes an action may answer with (credentials-exchange's `deny(code, …)`; the
/// engine refuses others), as the static strings OAuth errors carry.
fn oauth_code(code: &str) -> &'static str {
    match code {
        "invalid_scope" => "invalid_scope",
        "invalid_request" => "invalid_request",
        "server_error" => "server_error",
        _ => "access_denied",
    }
}

/// After the decision, for a user about to get tokens: post-login Actions and Rules run
/// on it — they may refuse, add claims, add or remove scopes.
pub(crate) async fn after_login(
    state: &AppState,
    login: &actions::Login<'_>,
    granted: &mut Grant,
) -> Result<(), Denied> {
    let custom = actions::post_login(state, login).await?;
    granted.customize(login.api, custom);
    Ok(())
}

/// After the decision, for a machine about to get a token: credentials-exchange runs on
/// it — it may refuse or add claims.
pub(crate) async fn after_credentials(
    state: &AppState,
    client: &Client,
    api: &ResourceServer,
    request: &actions::RequestFacts,
    granted: &mut Grant,
) -> Result<(), Denied> {
    let custom =
        actions::credentials_exchange(state, client, api, &granted.scopes, request).await?;
    granted.customize(Some(api), custom);
    Ok(())
}

impl From<StoreError> for Denied {
    fn from(error: StoreError) -> Self {
        Denied::Store(error)
    }
}

impl From<Refusal> for Denied {
    fn from(refusal: Refusal) -> Self {
        Denied::Refused(refusal)
    }
}

/// The audience a request asks for where one starts (`/authorize`, client credentials):
/// the one it names, else the tenant's `default_audience` (as Auth0 does), else none.
/// Later steps (resume, the code, a refresh) carry what this returned.
pub(crate) async fn requested_audience(
    state: &AppState,
    named: Option<&str>,
) -> Result<Option<String>, Denied> {
    if let Some(named) = named {
        return Ok(Some(named.to_string()));
    }
    let settings = state.config_reads().tenant_settings(state.store()).await?;
    Ok(settings
        .get("default_audience")
        .and_then(serde_json::Value::as_str)
        .filter(|audience| !audience.is_empty())
        .map(str::to_string))
}

/// The request's audience as an API, looked up now and judged by the one audience policy
/// (`tessera_core::grant::audience`): a deleted API or an application restricted since the
/// request began is refused wherever the request is when it happens.
pub(crate) async fn audience(
    state: &AppState,
    client: &Client,
    requested: Option<&str>,
) -> Result<Option<ResourceServer>, Denied> {
    let found = match requested {
        Some(identifier) => state.config_reads().api(state.store(), identifier).await?,
        None => None,
    };
    Ok(grant::audience(client, requested, found.as_ref())?.cloned())
}

/// What a user is granted for `api`: `asked` narrowed by the decision, with the user's
/// current permissions when the API enforces RBAC. `refresh_possible`: a refresh token
/// can come of this grant.
pub(crate) async fn for_user(
    state: &AppState,
    api: Option<&ResourceServer>,
    user_id: &str,
    asked: Asked<'_>,
    refresh_possible: bool,
) -> Result<Grant, Denied> {
    let permissions: Vec<String> = match api {
        Some(api) if api.enforce_policies => state
            .store()
            .user_permissions(user_id, Some(&api.identifier))
            .await?
            .into_iter()
            .map(|p| p.permission)
            .collect(),
        _ => Vec::new(),
    };
    Ok(grant::for_user(&UserRequest {
        api,
        asked,
        permissions: &permissions,
        refresh_possible,
    })?)
}

/// Whether a refresh token can come of a user's grant to `client` through this response.
pub(crate) fn refresh_possible(client: &Client, implicit: bool) -> bool {
    !implicit && client.allows_grant("refresh_token")
}

/// At the token endpoint: the API of a code or refresh token that no longer exists makes
/// the grant itself invalid (`invalid_grant`); every other refusal is `access_denied`.
impl From<Denied> for OAuthError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Refused(refusal @ Refusal::UnknownAudience { .. }) => {
                OAuthError::invalid_grant(refusal.description())
            }
            Denied::Refused(refusal) => OAuthError::access_denied(refusal.description()),
            Denied::Action { code, description } => OAuthError::from_action(code, description),
            Denied::SecondFactor { .. } => OAuthError::access_denied(SECOND_FACTOR_NEEDED),
            Denied::Redirect(_) => OAuthError::access_denied(actions::FAILED_DESCRIPTION),
            Denied::Store(error) => error.into(),
        }
    }
}
