//! The consent page (`/u/consent`, GET and POST): what a third-party application would get,
//! with Accept and Decline. `/authorize` decides whether to ask (`oauth::authorize`'s
//! consent check) and puts the question in the login transaction; the answer is written
//! back into a new transaction (Accept also remembers the consent) and handed back to
//! `/authorize/resume`, which answers the application. The form carries the transaction id
//! and the CSRF token (double-submitted, bound to the transaction, as on the login page);
//! the question is single use and only the user it was shown to may answer it.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::Client;
use tessera_core::consent as rules;
use tessera_store::TransactionRecord;

use crate::AppState;
use crate::clock::now;
use crate::error::PageError;
use crate::grant::{self, Denied};
use crate::hosted::forms::{csrf_failure, form_params, query_params, with_form_action};
use crate::hosted::session;
use crate::hosted::transaction::{self, Consent, Pending, with_cookie};
use crate::pages::{self, ConsentPage, ConsentScope};

fn expired() -> PageError {
    PageError::bad_request(
        "Authorization request expired",
        "This consent page is no longer valid. Go back to the application and sign in again.",
    )
}

/// The question of transaction `id` to the signed-in user it was shown to.
struct Question {
    record: TransactionRecord,
    pending: Pending,
    client: Client,
    user_id: String,
    user_email: String,
    audience: String,
    scopes: Vec<String>,
}

async fn load(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<Question, PageError> {
    let (record, pending, client) = transaction::load(state, headers, id, expired).await?;
    let Some(Consent::Asked {
        user_id,
        audience,
        scopes,
    }) = pending.consent.clone()
    else {
        return Err(expired());
    };
    let (_, user) = session::current(state, headers)
        .await?
        .filter(|(_, user)| user.user_id == user_id)
        .ok_or_else(expired)?;
    Ok(Question {
        record,
        pending,
        client,
        user_id,
        // Whom the page greets: a user without an email by their name.
        user_email: user.email.unwrap_or(user.name),
        audience,
        scopes,
    })
}

/// Back to `/authorize/resume` with transaction `id`, which answers the application.
fn resume(id: &str) -> Response {
    pages::see_other(&format!("/authorize/resume?state={id}"))
}

/// `GET /u/consent?state=TX`: what the application asks for, with Accept and Decline.
pub(crate) async fn consent_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = query_params(query)?;
        let question = load(&state, &headers, params.get("state")).await?;
        // The API deleted, or the application restricted, since the question was put: the
        // resume answers the application under the one audience policy.
        let api = match grant::audience(
            &state,
            &question.client,
            question.pending.request.audience.as_deref(),
        )
        .await
        {
            Ok(api) => api,
            Err(
                Denied::Refused(_)
                | Denied::Action { .. }
                | Denied::SecondFactor { .. }
                | Denied::Redirect(_),
            ) => {
                return Ok(resume(&question.record.id));
            }
            Err(Denied::Store(error)) => return Err(error.into()),
        };
        let scopes: Vec<ConsentScope> = question
            .scopes
            .iter()
            .map(|value| ConsentScope {
                value: value.clone(),
                description: rules::describe(value, api.as_ref()),
            })
            .collect();
        let (csrf, cookie) = session::csrf_token(&state, &headers);
        let page = ConsentPage {
            client_name: &question.client.name,
            user_email: &question.user_email,
            api_name: api.as_ref().map(|a| a.name.as_str()),
            scopes: &scopes,
            transaction: &question.record.id,
            csrf: &csrf,
        };
        // The answer ends in a redirect to the application: the form must be allowed to lead
        // there.
        let response = with_form_action(
            pages::html(StatusCode::OK, &page),
            &question.pending.request.redirect_uri,
        );
        Ok::<_, PageError>(with_cookie(response, cookie))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /u/consent`: "Accept" remembers the consent; either answer goes back to
/// `/authorize/resume` in a new transaction, which answers the application.
pub(crate) async fn consent_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = form_params(&headers, &body)?;
        let question = load(&state, &headers, params.get("state")).await?;
        let csrf = params.get("csrf").unwrap_or("");
        if !session::csrf_valid(&state, &headers, csrf, &question.record.csrf_hash) {
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
        if !state
            .store()
            .delete_transaction(&question.record.id)
            .await?
        {
            return Err(expired());
        }
        let client_id = &question.client.client_id;
        if accepted {
            state
                .store()
                .grant_consent(
                    &question.user_id,
                    client_id,
                    &question.audience,
                    &question.scopes,
                    now(),
                )
                .await?;
            tracing::info!(user_id = %question.user_id, %client_id, "consent given");
        }
        let answered = Pending {
            consent: Some(Consent::Answered {
                user_id: question.user_id,
                accepted,
            }),
            ..Pending::new(question.pending.request)
        };
        let (id, cookie) = transaction::begin(&state, &headers, &answered).await?;
        Ok(with_cookie(resume(&id), Some(cookie)))
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
