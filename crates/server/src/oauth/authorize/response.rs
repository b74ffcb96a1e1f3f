//! The authorization response: where it goes once the redirect_uri is trusted (`Target`),
//! the error answers, and the tokens or code for a signed-in user who may have them.

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::grant::{Asked, Customization};
use tessera_core::request::{AuthRequest, ResponseMode};
use tessera_core::{AUTHORIZATION_CODE_LIFETIME, Client, ResourceServer, User, ids, scope};
use tessera_store::{NewCode, SessionClient, SessionRecord};

use super::Caller;
use crate::AppState;
use crate::actions::{self, Login, Redirects, RequestFacts};
use crate::clock::now;
use crate::edge::metrics::Grant;
use crate::error::{OAuthError, PageError};
use crate::grant::{self, Denied};
use crate::hosted::transaction::{self, Pending};
use crate::mfa;
use crate::oauth::issue::{self, SignedIn};
use crate::oauth::respond;
use crate::pages;

/// What an authorization code grants, stored with the code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeGrant {
    pub(crate) scope: Vec<String>,
    pub(crate) audience: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    /// The DPoP key the code is bound to (`dpop_jkt`), when the request named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dpop_jkt: Option<String>,
    pub(crate) sid: String,
    pub(crate) auth_time: i64,
    /// What post-login Actions added, applied again when the code is redeemed.
    #[serde(default, skip_serializing_if = "Customization::is_empty")]
    pub(crate) custom: Customization,
    /// How the session was signed in, kept for the tokens and refresh tokens.
    #[serde(flatten)]
    pub(crate) signed_in: SignedIn,
}

/// Where errors go once the redirect_uri is trusted.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) redirect_uri: String,
    pub(crate) mode: ResponseMode,
    pub(crate) state: Option<String>,
}

pub(crate) enum Rejection {
    Page(PageError),
    Redirect(Box<Target>, &'static str, String),
}

impl From<PageError> for Rejection {
    fn from(error: PageError) -> Self {
        Rejection::Page(error)
    }
}

impl From<tessera_store::StoreError> for Rejection {
    fn from(error: tessera_store::StoreError) -> Self {
        Rejection::Page(error.into())
    }
}

impl Rejection {
    /// The grant pipeline's refusal, answered to the application as `access_denied` (its
    /// redirect_uri is trusted by now).
    pub(crate) fn denied(target: &Target, denied: Denied) -> Rejection {
        match denied {
            Denied::Refused(refusal) => Rejection::Redirect(
                Box::new(target.clone()),
                "access_denied",
                refusal.description(),
            ),
            Denied::Action { code, description } => {
                Rejection::Redirect(Box::new(target.clone()), code, description)
            }
            Denied::SecondFactor { .. } => Rejection::Redirect(
                Box::new(target.clone()),
                "access_denied",
                grant::SECOND_FACTOR_NEEDED.to_string(),
            ),
            // Only a signed-in user's response is suspended (`complete`); elsewhere the
            // login is refused as an action's failure is.
            Denied::Redirect(_) => Rejection::Redirect(
                Box::new(target.clone()),
                "access_denied",
                crate::actions::FAILED_DESCRIPTION.to_string(),
            ),
            Denied::Store(error) => error.into(),
        }
    }
}

impl Target {
    pub(crate) fn of(request: &AuthRequest) -> Target {
        Target {
            redirect_uri: request.redirect_uri.clone(),
            mode: request.response_mode,
            state: request.state.clone(),
        }
    }
}

pub(crate) fn error_response(
    state: &AppState,
    target: &Target,
    error: &str,
    description: &str,
) -> Response {
    let mut params: Vec<(&str, String)> = vec![
        ("error", error.to_string()),
        ("error_description", description.to_string()),
    ];
    if let Some(value) = &target.state {
        params.push(("state", value.clone()));
    }
    params.push(("iss", state.issuer().to_string()));
    respond::deliver(target.mode, &target.redirect_uri, &params)
}

pub(crate) fn reject(state: &AppState, rejection: Rejection) -> Response {
    match rejection {
        Rejection::Page(page) => page.into_response(),
        Rejection::Redirect(target, error, description) => {
            error_response(state, &target, error, &description)
        }
    }
}

/// Issues the authorization response for a signed-in user (who consented, when the
/// application needs consent).
pub(crate) async fn complete(
    state: &AppState,
    caller: &Caller<'_>,
    client: &Client,
    request: &AuthRequest,
    api: Option<&ResourceServer>,
    (session, user): (&SessionRecord, &User),
) -> Response {
    let target = Target::of(request);
    match issue_response(state, caller, client, request, api, (session, user)).await {
        Ok(params) => respond::deliver(target.mode, &target.redirect_uri, &params),
        // Post-login asked for a second factor: the user passes one first, unless the
        // application asked for no interaction.
        Err(Issue::Denied(Denied::SecondFactor { .. }))
            if scope::contains(&request.prompt, "none") =>
        {
            error_response(
                state,
                &target,
                "interaction_required",
                grant::SECOND_FACTOR_NEEDED,
            )
        }
        Err(Issue::Denied(Denied::SecondFactor { remember })) => {
            let asked = crate::hosted::mfa::ask_after_login(
                state,
                caller.headers,
                (
                    crate::hosted::transaction::Pending::new(request.clone()),
                    remember,
                ),
                (session, user),
            )
            .await;
            asked.unwrap_or_else(IntoResponse::into_response)
        }
        // A post-login action sends the user away: the login waits in a transaction
        // under the `state` the site was given, bound to this browser.
        Err(Issue::Denied(Denied::Redirect(suspended))) => {
            let actions::Suspended {
                url,
                state: state_id,
                continuation,
            } = *suspended;
            let pending = Pending {
                continuation: Some(continuation),
                ..Pending::new(request.clone())
            };
            match transaction::begin_as(state, caller.headers, &pending, state_id).await {
                // A page that goes on by itself, not a redirect: the login or consent form
                // that led here holds its redirects to its `form-action`, which names
                // the application, not the action's site.
                Ok((_, cookie)) => transaction::with_cookie(
                    pages::html(
                        axum::http::StatusCode::OK,
                        &pages::ContinuePage { location: &url },
                    ),
                    Some(cookie),
                ),
                Err(error) => PageError::from(error).into_response(),
            }
        }
        Err(Issue::Denied(denied)) => reject(state, Rejection::denied(&target, denied)),
        Err(Issue::Failed(error)) => {
            error_response(state, &target, error.error, &error.description)
        }
    }
}

/// Why no authorization response was issued.
enum Issue {
    Denied(Denied),
    Failed(OAuthError),
}

impl From<Denied> for Issue {
    fn from(denied: Denied) -> Self {
        Issue::Denied(denied)
    }
}

impl From<OAuthError> for Issue {
    fn from(error: OAuthError) -> Self {
        Issue::Failed(error)
    }
}

impl From<tessera_store::StoreError> for Issue {
    fn from(error: tessera_store::StoreError) -> Self {
        Issue::Failed(error.into())
    }
}

/// Auth0's `event.transaction.protocol` for a response type.
fn protocol(request: &AuthRequest) -> &'static str {
    let response_type = request.response_type;
    match (response_type.code, response_type.returns_tokens()) {
        (true, false) => "oidc-basic-profile",
        (true, true) => "oidc-hybrid-profile",
        (false, _) => "oidc-implicit-profile",
    }
}

/// `event.request.query` for an authorization request: what it asked, as parameters.
fn request_query(request: &AuthRequest) -> serde_json::Map<String, serde_json::Value> {
    let scope = scope::join(&request.scope);
    let pairs = [
        ("client_id", Some(request.client_id.as_str())),
        ("redirect_uri", Some(request.redirect_uri.as_str())),
        ("scope", Some(scope.as_str())),
        ("audience", request.audience.as_deref()),
        ("state", request.state.as_deref()),
        ("nonce", request.nonce.as_deref()),
        ("login_hint", request.login_hint.as_deref()),
        ("screen_hint", request.screen_hint.as_deref()),
    ];
    let mut query = crate::actions::visible_parameters(
        pairs
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name, value))),
    );
    // The rest as sent (the application's own among them); what Tessera read stays as read.
    for (name, value) in &request.parameters {
        query
            .entry(name.as_str())
            .or_insert_with(|| serde_json::Value::String(value.clone()));
    }
    query
}

/// The response's parameters: the code (stored with what it grants), the access token,
/// then the ID token, which names those two issued with it (`c_hash`, `at_hash`: a hybrid
/// or implicit client checks it was not handed another response's code or token).
async fn issue_response(
    state: &AppState,
    caller: &Caller<'_>,
    client: &Client,
    request: &AuthRequest,
    api: Option<&ResourceServer>,
    (session, user): (&SessionRecord, &User),
) -> Result<Vec<(&'static str, String)>, Issue> {
    let implicit = request.response_type.is_implicit();
    let mut granted = grant::for_user(
        state,
        api,
        &user.user_id,
        Asked::Requested(&request.scope),
        grant::refresh_possible(client, implicit),
    )
    .await?;
    let facts;
    let (facts, redirects) = match caller.continued {
        Some(continued) => (
            &continued.facts,
            Redirects::Resuming {
                continuation: &continued.continuation,
                state: &continued.state,
            },
        ),
        None => {
            facts = RequestFacts::of(caller.ip, "GET", caller.headers, request_query(request));
            let allowed = !scope::contains(&request.prompt, "none");
            (
                &facts,
                Redirects::Browser {
                    sid: &session.sid,
                    allowed,
                },
            )
        }
    };
    let signed_in = SignedIn {
        connection: session.connection.clone(),
        amr: session.amr.clone(),
        acr: mfa::acr_of(request, &session.amr),
    };
    grant::after_login(
        state,
        &Login {
            client,
            user,
            api,
            protocol: protocol(request),
            requested_scopes: &request.scope,
            redirect_uri: Some(&request.redirect_uri),
            request: facts,
            connection: session.connection.as_deref(),
            amr: &session.amr,
            redirects,
            refresh_token: None,
        },
        &mut granted,
    )
    .await?;
    // For the dashboard's checklist ("log in with the sample"): the first sign-in through
    // each application is recorded, once per application per process.
    state
        .first_logins()
        .note(state.store(), &client.client_id)
        .await;
    let mut params: Vec<(&'static str, String)> = Vec::new();
    // An application to be told when the session ends (OIDC Back-Channel Logout) is
    // recorded with the session: with the code, or alone when there is none.
    let session_client = match client.oidc_logout.as_ref().and_then(|l| l.url()) {
        Some(_) => Some(SessionClient {
            sid: session.sid.clone(),
            expires_at: session.auth_time
                + crate::hosted::session::lifetimes(state).await?.absolute,
        }),
        None => None,
    };
    let mut code = None;
    if request.response_type.code {
        let issued = ids::secret_token();
        let grant = CodeGrant {
            scope: granted.scopes.clone(),
            audience: api.map(|a| a.identifier.clone()),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            dpop_jkt: request.dpop_jkt.clone(),
            sid: session.sid.clone(),
            auth_time: session.auth_time,
            custom: granted.custom.clone(),
            signed_in: signed_in.clone(),
        };
        let now = now();
        state
            .store()
            .create_code(&NewCode {
                session_client: session_client.clone(),
                code_hash: ids::secret_hash(&issued),
                client_id: client.client_id.clone(),
                user_id: user.user_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                grant: serde_json::to_string(&grant).expect("plain data serializes"),
                created_at: now,
                expires_at: now + AUTHORIZATION_CODE_LIFETIME,
            })
            .await?;
        params.push(("code", issued.clone()));
        code = Some(issued);
    } else if let Some(session_client) = &session_client {
        state
            .store()
            .record_session_client(&client.client_id, session_client)
            .await?;
    }
    let mut access_token = None;
    if request.response_type.token {
        let issued = issue::user_access_token(
            state,
            api,
            &client.client_id,
            &user.user_id,
            &granted,
            true,
            None,
        )
        .await?;
        params.push(("access_token", issued.token.clone()));
        params.push(("token_type", "Bearer".into()));
        params.push(("expires_in", issued.expires_in.to_string()));
        params.push(("scope", scope::join(&issued.scopes)));
        access_token = Some(issued.token);
    }
    if request.response_type.id_token {
        let id_token = issue::id_token(
            state,
            &issue::IdTokenInput {
                user,
                client_id: &client.client_id,
                scopes: &granted.scopes,
                nonce: request.nonce.as_deref(),
                auth_time: session.auth_time,
                sid: Some(&session.sid),
                access_token: access_token.as_deref(),
                code: code.as_deref(),
                custom_claims: &granted.custom.id_token_claims,
                signed_in: &signed_in,
            },
        )?;
        params.push(("id_token", id_token));
    }
    if let Some(value) = &request.state {
        params.push(("state", value.clone()));
    }
    params.push(("iss", state.issuer().to_string()));
    if request.response_type.token {
        state.metrics().token_issued(Grant::Implicit);
    }
    Ok(params)
}
