//! `POST /api/v2/tickets/email-verification`: a verification link for a user, for the
//! administrator to deliver (Auth0's `{ticket: URL}`); the same ticket a verification mail
//! carries (`crate::verification_tickets`).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::validate::{self, MAX_URL_LIFETIME};

use super::auth::require;
use super::body::{self, Fields};
use super::error::{ApiError, ApiResult};
use super::users;
use crate::AppState;
use crate::verification_tickets::{TICKET_LIFETIME, issue_ticket};

const MEMBERS: [&str; 6] = [
    "user_id",
    "result_url",
    "ttl_sec",
    "client_id",
    "includeEmailInRedirect",
    "organization_id",
];

pub(crate) async fn email_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["create:user_tickets"]).await?;
    let mut fields = body::object(&headers, body, &MEMBERS)?;
    let user_id = Fields::required("user_id", fields.string("user_id")?)?;
    let result_url = fields
        .string("result_url")?
        .map(|url| validate::result_url(&url, "result_url"))
        .transpose()
        .map_err(|why| ApiError::invalid_property(why, "result_url"))?;
    let lifetime = match fields.integer("ttl_sec")? {
        None | Some(0) => TICKET_LIFETIME,
        Some(seconds) if (1..=MAX_URL_LIFETIME).contains(&seconds) => {
            Duration::from_secs(seconds as u64)
        }
        Some(_) => {
            return Err(ApiError::invalid_property(
                format!("ttl_sec must be 0 to {MAX_URL_LIFETIME} seconds"),
                "ttl_sec",
            ));
        }
    };
    // Accepted for Auth0's clients; the hosted page shows no application and redirects
    // to no organization.
    if let Some(client_id) = fields.string("client_id")?
        && state.store().find_client(&client_id).await?.is_none()
    {
        return Err(ApiError::invalid_property("Unknown client", "client_id"));
    }
    fields.boolean("includeEmailInRedirect")?;
    if fields.string("organization_id")?.is_some() {
        return Err(ApiError::invalid_property(
            "Tessera has no organizations",
            "organization_id",
        ));
    }
    let user = users::find(&state, &user_id).await?;
    if user.email.is_none() {
        return Err(ApiError::bad_request(
            "The user has no email address to verify.",
        ));
    }
    let ticket = issue_ticket(
        state.store(),
        state.issuer(),
        &user.user_id,
        lifetime,
        result_url.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "ticket": ticket }))).into_response())
}
