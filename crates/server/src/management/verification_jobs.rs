//! `POST /api/v2/jobs/verification-email`: a verification link mailed to a user, as the
//! sign-up mails it (`crate::hosted::mailer`), recorded as Auth0's `verification_email`
//! job. The job is complete once the link is queued: the mail worker sends it (or logs why
//! not — no transport, an address verified since) in the order it was asked.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tessera_store::JobStatus;

use super::auth::require;
use super::body::{self, Fields};
use super::error::{ApiError, ApiResult};
use super::jobs::new_job;
use super::wire;
use crate::AppState;
use crate::clock::now;

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:users"]).await?;
    let mut fields = body::object(
        &headers,
        body,
        &["user_id", "client_id", "identity", "organization_id"],
    )?;
    let user_id = Fields::required("user_id", fields.string("user_id")?)?;
    if fields.take("organization_id").is_some() {
        return Err(ApiError::invalid_property(
            "Tessera has no organizations",
            "organization_id",
        ));
    }
    if let Some(identity) = fields.object("identity", &["user_id", "provider"])? {
        let identity = Value::Object(identity.into_map());
        // The database identity is the only one a Tessera user has.
        let matches = identity["provider"] == "auth0"
            && user_id.strip_prefix("auth0|") == identity["user_id"].as_str();
        if !matches {
            return Err(ApiError::invalid_property(
                "The identity must be the user's database identity (provider auth0)",
                "identity",
            ));
        }
    }
    let application_name = match fields.string("client_id")? {
        Some(client_id) => Some(super::clients::find(&state, &client_id).await?.name),
        None => None,
    };
    let user = state
        .store()
        .find_user(&user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("The user does not exist.", "inexistent_user"))?;
    if user.email.is_none() {
        return Err(ApiError::bad_request(
            "The user has no email address to verify.",
        ));
    }
    state
        .mailer()
        .send_verification(&user.user_id, application_name.as_deref());
    let job = new_job("verification_email", JobStatus::Completed, now());
    state.store().create_job(&job).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(wire::job(&job, state.issuer())),
    )
        .into_response())
}
