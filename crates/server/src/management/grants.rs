//! `/api/v2/grants`: users' consents to third-party applications (Auth0's user grants,
//! the dashboard's "Authorized Applications"), as the consent page records them
//! (`tessera_store`'s `consent.rs`). Revoking one also ends what the application holds
//! for the user — its refresh tokens and opaque access tokens — as Auth0 does; the user
//! is asked for consent again next time. JWT access tokens already issued live until they
//! expire.
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http` and the dashboard alike.

use tessera_core::consent::Consent;
use tessera_store::{ConsentFilter, Page, Slice};

use super::auth::Principal;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:grants"];
pub(crate) const DELETE: &[&str] = &["delete:grants"];

fn not_found() -> ApiError {
    ApiError::not_found("The grant does not exist", "inexistent_grant")
}

/// A page of consents matching `filter`, by user, application then API.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    filter: ConsentFilter<'_>,
    slice: Slice,
) -> ApiResult<Page<Consent>> {
    principal.require(READ)?;
    Ok(state.store().list_consents_page(filter, slice).await?)
}

/// Revokes one consent and what its application holds for the user.
pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    let consent = state
        .store()
        .find_consent_by_id(id)
        .await?
        .ok_or_else(not_found)?;
    state
        .store()
        .revoke_consents(
            &consent.user_id,
            &consent.client_id,
            Some(&consent.audience),
            now(),
        )
        .await?;
    Ok(())
}

/// Revokes every consent of a user (none: nothing to do) and what those applications
/// hold for them.
pub(crate) async fn delete_for_user(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
) -> ApiResult<()> {
    principal.require(DELETE)?;
    // A user consents to a handful of applications: read whole, revoked application by
    // application (each revocation is one transaction; a retry finishes an interrupted run).
    let consents = state.store().list_consents(user_id).await?;
    let mut clients: Vec<&str> = consents.iter().map(|c| c.client_id.as_str()).collect();
    clients.dedup();
    for client_id in clients {
        state
            .store()
            .revoke_consents(user_id, client_id, None, now())
            .await?;
    }
    Ok(())
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde::Serialize;
    use tessera_core::consent::Consent;
    use tessera_store::ConsentFilter;

    use super::super::auth::require;
    use super::super::error::{ApiError, ApiResult};
    use super::super::paging::Query;
    use super::{DELETE, READ};
    use crate::AppState;

    /// A grant in Auth0's shape (`clientID` is spelled so on Auth0).
    #[derive(Serialize)]
    struct Grant {
        id: String,
        #[serde(rename = "clientID")]
        client_id: String,
        user_id: String,
        audience: String,
        scope: Vec<String>,
    }

    fn grant(consent: Consent) -> Grant {
        Grant {
            id: consent.id,
            client_id: consent.client_id,
            user_id: consent.user_id,
            audience: consent.audience,
            scope: consent.scopes,
        }
    }

    /// `GET /api/v2/grants`: a page, `user_id`, `client_id` and `audience` filtering in
    /// SQL.
    pub(crate) async fn list(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(
            query.as_deref(),
            &[
                "page",
                "per_page",
                "include_totals",
                "user_id",
                "client_id",
                "audience",
            ],
        )?;
        let paging = query.paging()?;
        let filter = ConsentFilter {
            user_id: query.get("user_id"),
            client_id: query.get("client_id"),
            audience: query.get("audience"),
        };
        let page = super::list(&state, &principal, filter, paging.slice()).await?;
        Ok(paging.respond(page.map(grant), "grants"))
    }

    /// `DELETE /api/v2/grants/{id}`.
    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::delete(&state, &principal, &id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// `DELETE /api/v2/grants?user_id=…`: every grant of the user.
    pub(crate) async fn delete_for_user(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        let query = Query::parse(query.as_deref(), &["user_id"])?;
        let user_id = query
            .get("user_id")
            .ok_or_else(|| ApiError::invalid_query("Missing required property: user_id"))?;
        super::delete_for_user(&state, &principal, user_id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}
