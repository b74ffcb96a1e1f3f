//! Whether the authorization response waits for the user's consent: a third-party
//! application needs it for what the response would grant — OIDC scopes, `offline_access`
//! when a refresh token would come of it, and the API's scopes the user may get (the same
//! grant decision) — remembered per user, application and API (`tessera_core::consent`).
//! `prompt=consent` asks even when remembered; `prompt=none` answers `consent_required`
//! instead of asking. The question goes to the hosted consent page (`crate::hosted::consent`)
//! in the login transaction; its answer comes back through `/authorize/resume`.

use axum::response::Response;
use tessera_core::consent as rules;
use tessera_core::grant::Asked;
use tessera_core::request::AuthRequest;
use tessera_core::{Client, ResourceServer, User, scope};
use tessera_store::SessionRecord;

use super::Caller;
use super::response::{Target, complete, error_response};
use crate::AppState;
use crate::error::PageError;
use crate::grant::{self, Denied};
use crate::hosted::transaction::{self, Consent, Pending};
use crate::pages;

/// Auth0's description of a declined consent.
const DECLINED: &str = "User did not authorize the request";

/// What the user said on the consent page of this request.
pub(crate) struct Answer {
    pub(crate) user_id: String,
    pub(crate) accepted: bool,
}

/// After authentication: answers right away for first-party applications, remembered
/// consent and the user's answer to this request's page; otherwise sends the user to the
/// consent page (or `consent_required` with `prompt=none`).
pub(crate) async fn check(
    state: &AppState,
    caller: &Caller<'_>,
    client: &Client,
    request: AuthRequest,
    api: Option<&ResourceServer>,
    (session, user): (&SessionRecord, &User),
    answer: Option<Answer>,
) -> Result<Response, PageError> {
    if client.is_first_party {
        return Ok(complete(state, caller, client, &request, api, (session, user)).await);
    }
    // Only the user the page was shown to answers it.
    match answer.filter(|answer| answer.user_id == user.user_id) {
        Some(Answer {
            accepted: false, ..
        }) => {
            tracing::info!(user_id = %user.user_id, client_id = %client.client_id, "consent declined");
            return Ok(error_response(
                state,
                &Target::of(&request),
                "access_denied",
                DECLINED,
            ));
        }
        Some(Answer { accepted: true, .. }) => {
            return Ok(complete(state, caller, client, &request, api, (session, user)).await);
        }
        None => {}
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
            return Ok(error_response(
                state,
                &Target::of(&request),
                "access_denied",
                &refusal.description(),
            ));
        }
        Err(Denied::Action { code, description }) => {
            return Ok(error_response(
                state,
                &Target::of(&request),
                code,
                &description,
            ));
        }
        // The decision itself asks no second factor and runs no action (post-login
        // does); answered all the same.
        Err(Denied::SecondFactor { .. } | Denied::Redirect(_)) => {
            return Ok(error_response(
                state,
                &Target::of(&request),
                "access_denied",
                grant::SECOND_FACTOR_NEEDED,
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
        return Ok(complete(state, caller, client, &request, api, (session, user)).await);
    };
    if scope::contains(&request.prompt, "none") {
        return Ok(error_response(
            state,
            &Target::of(&request),
            "consent_required",
            "Consent required",
        ));
    }
    let pending = Pending {
        consent: Some(Consent::Asked {
            user_id: user.user_id.clone(),
            audience,
            scopes: ask,
        }),
        ..Pending::new(request)
    };
    let (id, cookie) = transaction::begin(state, caller.headers, &pending).await?;
    Ok(transaction::with_cookie(
        pages::redirect(&format!("/u/consent?state={id}")),
        Some(cookie),
    ))
}
