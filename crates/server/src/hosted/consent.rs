//! Consent: between authentication and the authorization response, a third-party
//! application needs the user's consent to what it would get (`/u/consent`, GET and POST).
//!
//! What needs consent: the scopes the response would grant — OIDC scopes, `offline_access`
//! when a refresh token would come of it, and the API's scopes the user may get (RBAC
//! applied) — remembered per user, application and API (`tessera_core::consent`).
//! `prompt=consent` shows the page even when remembered; `prompt=none` answers
//! `consent_required` instead of showing it. The page's form carries the transaction id and
//! the CSRF token (double-submitted, bound to the transaction, as on the login page); the
//! transaction is single use and bound to the user it was shown to.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::consent as rules;
use tessera_core::grant::Asked;
use tessera_core::{
    Client, LOGIN_TRANSACTION_LIFETIME, ResourceServer, User, ids, redirect, scope,
};
use tessera_store::{SessionRecord, TransactionRecord};

use crate::AppState;
use crate::clock::now;
use crate::edge::params::Params;
use crate::error::PageError;
use crate::grant::{self, Denied};
use crate::hosted::login::{csrf_failure, with_form_action};
use crate::hosted::session;
use crate::oauth::authorize::{self, Target, with_cookie};
use crate::pages::{self, ConsentPage, ConsentScope};
use tessera_core::request::AuthRequest;

/// Auth0's description of a declined consent.
const DECLINED: &str = "User did not authorize the request";

/// A request waiting on the consent page, kept in a login transaction.
#[derive(Debug, Serialize, Deserialize)]
struct PendingConsent {
    request: AuthRequest,
    /// The user the page was shown to: only their session may answer it.
    user_id: String,
    /// The key the answer is remembered under (`rules::audience_key`).
    audience: String,
    /// The scopes shown, and remembered on "Accept".
    scopes: Vec<String>,
}

/// After authentication: answers right away for first-party applications and remembered
/// consent, otherwise sends the user to the consent page (or `consent_required` with
/// `prompt=none`).
pub(crate) async fn check(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    request: AuthRequest,
    api: Option<&ResourceServer>,
    session: &SessionRecord,
    user: &User,
) -> Result<Response, PageError> {
    if client.is_first_party {
        return Ok(authorize::complete(state, client, &request, api, session, user).await);
    }
    // What the response would grant is what the user consents to: the same decision.
    let implicit = request.response_type.is_implicit();
    let granted = grant::for_user(
        state,
        api,
        &user.user_id,
        Asked::Requested(&request.scope),
        grant::refresh_possible(client, implicit),
    )
    .await;
    let scopes = match granted {
        Ok(granted) => granted.scopes,
        Err(Denied::Refused(refusal)) => {
            return Ok(authorize::error_response(
                state,
                &Target::of(&request),
                "access_denied",
                &refusal.description(),
            ));
        }
        Err(Denied::Store(error)) => return Err(error.into()),
    };
    let audience = rules::audience_key(state.issuer(), api.map(|a| a.identifier.as_str()));
    let remembered = state
        .store()
        .find_consent(&user.user_id, &client.client_id, &audience)
        .await?;
    let forced = scope::contains(&request.prompt, "consent");
    let Some(ask) = rules::to_ask(&scopes, remembered.as_ref(), forced) else {
        return Ok(authorize::complete(state, client, &request, api, session, user).await);
    };
    if scope::contains(&request.prompt, "none") {
        return Ok(authorize::error_response(
            state,
            &Target::of(&request),
            "consent_required",
            "Consent required",
        ));
    }
    let (csrf, cookie) = session::transaction_binding(state, headers);
    let id = ids::secret_token();
    let pending = PendingConsent {
        request,
        user_id: user.user_id.clone(),
        audience,
        scopes: ask,
    };
    let now = now();
    let record = TransactionRecord {
        id: id.clone(),
        csrf_hash: ids::secret_hash(&csrf),
        request: serde_json::to_string(&pending).expect("plain data serializes"),
        expires_at: now + LOGIN_TRANSACTION_LIFETIME,
    };
    state.store().create_transaction(&record, now).await?;
    Ok(with_cookie(
        pages::redirect(&format!("/u/consent?state={id}")),
        Some(cookie),
    ))
}

fn expired() -> PageError {
    PageError::bad_request(
        "Authorization request expired",
        "This consent page is no longer valid. Go back to the application and sign in again.",
    )
}

/// The pending consent of `id`, with its application, for the signed-in user it was
/// shown to.
async fn load(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<
    (
        TransactionRecord,
        PendingConsent,
        Client,
        SessionRecord,
        User,
    ),
    PageError,
> {
    let (record, pending, client) =
        authorize::load_stored(state, headers, id, expired, |pending: &PendingConsent| {
            &pending.request
        })
        .await?;
    let (session, user) = session::current(state, headers)
        .await?
        .filter(|(_, user)| user.user_id == pending.user_id)
        .ok_or_else(expired)?;
    Ok((record, pending, client, session, user))
}

/// The request's API under the one audience policy; a refusal (the API deleted, the
/// application restricted since) is answered to the application as at /authorize.
async fn audience_or_answer(
    state: &AppState,
    client: &Client,
    request: &AuthRequest,
) -> Result<Result<Option<ResourceServer>, Response>, PageError> {
    match grant::audience(state, client, request.audience.as_deref()).await {
        Ok(api) => Ok(Ok(api)),
        Err(Denied::Refused(refusal)) => Ok(Err(authorize::error_response(
            state,
            &Target::of(request),
            "access_denied",
            &refusal.description(),
        ))),
        Err(Denied::Store(error)) => Err(error.into()),
    }
}

/// `GET /u/consent?state=TX`: what the application asks for, with Accept and Decline.
pub(crate) async fn consent_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = Params::from_urlencoded(query.unwrap_or_default().as_bytes())
            .map_err(|error| PageError::bad_request("Invalid request", error.to_string()))?;
        let (record, pending, client, _, user) =
            load(&state, &headers, params.get("state")).await?;
        let api = match audience_or_answer(&state, &client, &pending.request).await? {
            Ok(api) => api,
            Err(answer) => return Ok(answer),
        };
        let scopes: Vec<ConsentScope> = pending
            .scopes
            .iter()
            .map(|value| ConsentScope {
                value: value.clone(),
                description: rules::describe(value, api.as_ref()),
            })
            .collect();
        let (csrf, cookie) = session::csrf_token(&state, &headers);
        let page = ConsentPage {
            client_name: &client.name,
            user_email: &user.email,
            api_name: api.as_ref().map(|a| a.name.as_str()),
            scopes: &scopes,
            transaction: &record.id,
            csrf: &csrf,
        };
        // The answer redirects to the application: the form must be allowed to lead there.
        let response = with_form_action(
            pages::html(StatusCode::OK, &page),
            &pending.request.redirect_uri,
        );
        Ok::<_, PageError>(with_cookie(response, cookie))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /u/consent`: "Accept" remembers the consent and finishes the authorization
/// request; "Decline" answers `access_denied` to the application.
pub(crate) async fn consent_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = Params::from_body(&headers, &body, false)
            .map_err(|error| PageError::bad_request("Invalid request", error.to_string()))?;
        let (record, pending, client, session, user) =
            load(&state, &headers, params.get("state")).await?;
        let csrf = params.get("csrf").unwrap_or("");
        if !session::csrf_valid(&state, &headers, csrf, &record.csrf_hash) {
            return Err(csrf_failure());
        }
        let accepted = match params.get("action") {
            Some("accept") => true,
            Some("deny") => false,
            _ => {
                return Err(PageError::bad_request(
                    "Invalid request",
                    "Choose Accept or Decline.",
                ));
            }
        };
        // Single use: of two submissions of one page, the second finds nothing.
        if !state.store().delete_transaction(&record.id).await? {
            return Err(expired());
        }
        let request = pending.request;
        // The application may have changed while the page was shown.
        if !redirect::redirect_uri_allowed(&request.redirect_uri, &client.callbacks, client.app_type) {
            return Err(PageError::bad_request(
                "Callback URL mismatch",
                "The redirect_uri is no longer allowed for this application.",
            ));
        }
        let target = Target::of(&request);
        if !accepted {
            tracing::info!(user_id = %user.user_id, client_id = %client.client_id, "consent declined");
            return Ok(authorize::error_response(
                &state,
                &target,
                "access_denied",
                DECLINED,
            ));
        }
        // The API or the application may have changed while the page was shown.
        let api = match audience_or_answer(&state, &client, &request).await? {
            Ok(api) => api,
            Err(answer) => return Ok(answer),
        };
        state
            .store()
            .grant_consent(
                &user.user_id,
                &client.client_id,
                &pending.audience,
                &pending.scopes,
                now(),
            )
            .await?;
        tracing::info!(user_id = %user.user_id, client_id = %client.client_id, "consent given");
        Ok(authorize::complete(&state, &client, &request, api.as_ref(), &session, &user).await)
    }
    .await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    // Whatever the answer, this page's result is not to be cached.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}
