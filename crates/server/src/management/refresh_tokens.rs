//! `/api/v2/refresh-tokens/{id}` and `/api/v2/users/{id}/refresh-tokens`: a user's refresh
//! tokens, seen and revoked by an administrator (a lost device, "sign out everywhere").
//! A refresh token here is a family — every token rotated out of one sign-in shares its id,
//! as post-login's `event.refresh_token` does — so revoking it ends the chain, whichever
//! link the application holds. Access tokens already issued live until they expire.
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http`.

use serde_json::{Value, json};
use tessera_core::claims;
use tessera_store::{Checkpoint, CheckpointPage, RefreshTokenRecord};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::clock::now;
use crate::oauth::token::refresh_token::auth0_shape;

pub(crate) const READ: &[&str] = &["read:refresh_tokens"];
pub(crate) const DELETE: &[&str] = &["delete:refresh_tokens"];
pub(crate) const UPDATE: &[&str] = &["update:refresh_tokens"];
const METADATA: &str = "refresh_token_metadata";
/// A `PATCH`'s members.
pub(crate) const UPDATE_FIELDS: &[&str] = &[METADATA];

fn not_found() -> ApiError {
    ApiError::not_found(
        "The refresh token does not exist",
        "inexistent_refresh_token",
    )
}

/// A record in Auth0's shape: the token's own fields, its idle end and its last exchange
/// when it has them.
fn shape(record: &RefreshTokenRecord) -> Value {
    let mut token = auth0_shape(&record.family);
    // Post-login's `event.refresh_token` says `metadata`, the Management API this.
    if let Some(metadata) = token
        .as_object_mut()
        .and_then(|token| token.remove("metadata"))
    {
        token[METADATA] = metadata;
    }
    if let Some(at) = record.idle_expires_at {
        token["idle_expires_at"] = json!(claims::rfc3339(at));
    }
    if let Some(at) = record.last_exchanged_at {
        token["last_exchanged_at"] = json!(claims::rfc3339(at));
    }
    token
}

/// One live refresh token.
pub(crate) async fn get(state: &AppState, principal: &Principal, id: &str) -> ApiResult<Value> {
    principal.require(READ)?;
    let record = state
        .store()
        .find_refresh_token(id, now())
        .await?
        .ok_or_else(not_found)?;
    Ok(shape(&record))
}

/// Replaces a live refresh token's metadata with `refresh_token_metadata` (within the
/// bounds actions are held to; `{}` or `null` removes it, none leaves it), as Auth0 does;
/// the token as it is after.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<Value> {
    principal.require(UPDATE)?;
    let store = state.store();
    if let Some(metadata) = fields.bounded_metadata(METADATA)?
        && !store
            .set_refresh_family_metadata(id, &metadata, now())
            .await?
    {
        return Err(not_found());
    }
    let record = store
        .find_refresh_token(id, now())
        .await?
        .ok_or_else(not_found)?;
    Ok(shape(&record))
}

/// Revokes one refresh token: the application's next exchange of it fails.
pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    if !state.store().revoke_refresh_family(id, now()).await? {
        return Err(not_found());
    }
    Ok(())
}

/// Revokes the user's refresh token `id` (the dashboard's Sessions tab, which names the
/// user): another user's token is not found.
pub(crate) async fn delete_of_user_one(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    id: &str,
) -> ApiResult<()> {
    principal.require(DELETE)?;
    let store = state.store();
    let theirs = store
        .find_refresh_token(id, now())
        .await?
        .is_some_and(|record| record.family.user_id == user_id);
    if !theirs || !store.revoke_refresh_family(id, now()).await? {
        return Err(not_found());
    }
    Ok(())
}

/// A page of a user's live refresh tokens, by id.
pub(crate) async fn of_user(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    checkpoint: Checkpoint<'_>,
) -> ApiResult<CheckpointPage<Value>> {
    principal.require(READ)?;
    super::users::find(state, user_id).await?;
    let page = state
        .store()
        .refresh_tokens_of_user(user_id, now(), checkpoint)
        .await?;
    Ok(page.map(|record| shape(&record)))
}

/// Revokes every refresh token of a user.
pub(crate) async fn delete_of_user(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
) -> ApiResult<()> {
    principal.require(DELETE)?;
    super::users::find(state, user_id).await?;
    state
        .store()
        .revoke_refresh_families_of_user(user_id, now())
        .await?;
    Ok(())
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::json;

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::ApiResult;
    use super::super::paging::Query;
    use super::{DELETE, READ, UPDATE, UPDATE_FIELDS};
    use crate::AppState;

    /// `GET /api/v2/refresh-tokens/{id}`.
    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        Ok(Json(super::get(&state, &principal, &id).await?).into_response())
    }

    /// `PATCH /api/v2/refresh-tokens/{id}`: `{refresh_token_metadata}`; the token as it
    /// is after.
    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, UPDATE_FIELDS)?;
        Ok(Json(super::update(&state, &principal, &id, fields).await?).into_response())
    }

    /// `DELETE /api/v2/refresh-tokens/{id}`: 202, as Auth0 answers.
    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::delete(&state, &principal, &id).await?;
        Ok(StatusCode::ACCEPTED.into_response())
    }

    /// `GET /api/v2/users/{id}/refresh-tokens`: `{tokens, next}`, paged by checkpoint
    /// (`from` = a token id from `next`, `take` at most 100). `include_totals` (the SDKs
    /// send it) must be a boolean; the answer is the object either way, as Auth0 documents.
    pub(crate) async fn of_user(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(user_id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(query.as_deref(), &["from", "take", "include_totals"])?;
        query.boolean("include_totals")?;
        let page = super::of_user(&state, &principal, &user_id, query.checkpoint()?).await?;
        let mut body = json!({ "tokens": page.items });
        if let Some(next) = page.next {
            body["next"] = json!(next);
        }
        Ok(Json(body).into_response())
    }

    /// `DELETE /api/v2/users/{id}/refresh-tokens`: 202, as Auth0 answers.
    pub(crate) async fn delete_of_user(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(user_id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::delete_of_user(&state, &principal, &user_id).await?;
        Ok(StatusCode::ACCEPTED.into_response())
    }
}
