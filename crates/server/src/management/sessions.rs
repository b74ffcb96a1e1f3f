//! `/api/v2/sessions/{id}` and `/api/v2/users/{id}/sessions`: a user's login sessions at
//! the hosted pages (one per browser that signed in), seen and ended by an administrator.
//! A session's id is the `sid` claim of the ID tokens issued in it. Ending one makes that
//! browser sign in again; its applications' own sessions and tokens live on — except with
//! `POST /sessions/{id}/revoke`, which also revokes the refresh tokens issued in it.
//! `PATCH /sessions/{id}` replaces its metadata (what post-login actions see as
//! `event.session.metadata`).
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http`.

use serde_json::{Map, Value, json};
use tessera_core::{SessionLifetimes, claims};
use tessera_store::{Checkpoint, CheckpointPage, SessionDetails, SessionOrigin, SessionRecord};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::clock::now;
use crate::hosted::session::lifetimes;

pub(crate) const READ: &[&str] = &["read:sessions"];
pub(crate) const DELETE: &[&str] = &["delete:sessions"];
pub(crate) const UPDATE: &[&str] = &["update:sessions"];
const METADATA: &str = "session_metadata";
/// A `PATCH`'s members.
pub(crate) const UPDATE_FIELDS: &[&str] = &[METADATA];

fn not_found() -> ApiError {
    ApiError::not_found("The session does not exist", "inexistent_session")
}

/// What makes a session live now: not past its idle end (the store's `expires_at`), and
/// signed in within the tenant's absolute lifetime as it is now.
pub(crate) fn live_at(lifetimes: SessionLifetimes) -> (i64, i64) {
    let now = now();
    (now, now - lifetimes.absolute)
}

/// The latest a session can last, however it is used: the tenant's absolute lifetime,
/// or the end a post-login action allowed when that is earlier.
fn absolute_end(session: &SessionRecord, lifetimes: SessionLifetimes) -> i64 {
    let absolute = session.auth_time + lifetimes.absolute;
    session
        .ends_by
        .map_or(absolute, |ends_by| absolute.min(ends_by))
}

/// A session in Auth0's shape. `expires_at` is the absolute end, `idle_expires_at` the end
/// if it is not used again; `device` holds what was recorded (sessions from before it was
/// kept have none). Post-login's `event.session` too.
pub(crate) fn shape(details: &SessionDetails, lifetimes: SessionLifetimes) -> Value {
    let session = &details.session;
    let time = |at: i64| json!(claims::rfc3339(at));
    let mut device = Map::new();
    let mut put = |prefix: &str, origin: &SessionOrigin| {
        if let Some(ip) = &origin.ip {
            device.insert(format!("{prefix}_ip"), json!(ip));
        }
        if let Some(agent) = &origin.user_agent {
            device.insert(format!("{prefix}_user_agent"), json!(agent));
        }
    };
    put("initial", &details.initial);
    put("last", &details.last);
    let last_interacted = session.last_interacted_at.unwrap_or(details.created_at);
    let methods: Vec<Value> = session
        .amr
        .iter()
        .map(|name| json!({ "name": name, "timestamp": time(session.auth_time) }))
        .collect();
    json!({
        "id": session.sid,
        "user_id": session.user_id,
        "created_at": time(details.created_at),
        "updated_at": time(last_interacted),
        "authenticated_at": time(session.auth_time),
        "last_interacted_at": time(last_interacted),
        "idle_expires_at": time(session.expires_at),
        "expires_at": time(absolute_end(session, lifetimes)),
        "device": device,
        "authentication": { "methods": methods },
        "cookie": { "mode": "persistent" },
        "session_metadata": details.metadata,
    })
}

/// One live session.
pub(crate) async fn get(state: &AppState, principal: &Principal, id: &str) -> ApiResult<Value> {
    principal.require(READ)?;
    let lifetimes = lifetimes(state).await?;
    let details = state
        .store()
        .find_session_by_sid(id, live_at(lifetimes))
        .await?
        .ok_or_else(not_found)?;
    Ok(shape(&details, lifetimes))
}

/// Replaces a live session's metadata with `session_metadata` (an object of strings within
/// `tessera_actions::session_metadata`'s bounds; `{}` or `null` removes it, none leaves
/// it), as Auth0 does; the session as it is after.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<Value> {
    principal.require(UPDATE)?;
    let lifetimes = lifetimes(state).await?;
    let found = |details: Option<SessionDetails>| details.ok_or_else(not_found);
    let store = state.store();
    let Some(metadata) = fields.bounded_metadata(METADATA)? else {
        return Ok(shape(
            &found(store.find_session_by_sid(id, live_at(lifetimes)).await?)?,
            lifetimes,
        ));
    };
    // A session past the tenant's absolute lifetime is not live, though its row may be.
    if !store
        .set_session_metadata(id, &metadata, live_at(lifetimes))
        .await?
    {
        return Err(not_found());
    }
    Ok(shape(
        &found(store.find_session_by_sid(id, live_at(lifetimes)).await?)?,
        lifetimes,
    ))
}

/// Ends one session; `with_refresh_tokens` also revokes the refresh tokens issued in it.
pub(crate) async fn end(
    state: &AppState,
    principal: &Principal,
    id: &str,
    with_refresh_tokens: bool,
) -> ApiResult<()> {
    principal.require(DELETE)?;
    if !state
        .store()
        .end_session(id, with_refresh_tokens, now())
        .await?
    {
        return Err(not_found());
    }
    Ok(())
}

/// Ends the user's session `id` and the refresh tokens issued in it (the dashboard's
/// Sessions tab, which names the user): another user's session is not found.
pub(crate) async fn end_of_user(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    id: &str,
) -> ApiResult<()> {
    principal.require(DELETE)?;
    if !direct::end_one(state.store(), user_id, id).await? {
        return Err(not_found());
    }
    Ok(())
}

/// A page of a user's live sessions, by id.
pub(crate) async fn of_user(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    checkpoint: Checkpoint<'_>,
) -> ApiResult<CheckpointPage<Value>> {
    principal.require(READ)?;
    super::users::find(state, user_id).await?;
    let lifetimes = lifetimes(state).await?;
    let page = state
        .store()
        .sessions_of_user(user_id, live_at(lifetimes), checkpoint)
        .await?;
    Ok(page.map(|details| shape(&details, lifetimes)))
}

/// Ends every session of a user.
pub(crate) async fn delete_of_user(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
) -> ApiResult<()> {
    principal.require(DELETE)?;
    super::users::find(state, user_id).await?;
    state
        .store()
        .delete_sessions_of_user(user_id, now())
        .await?;
    Ok(())
}

/// For the CLI, which has the store but no server (`tessera users sessions`, `tessera users
/// sign-out`): the same shapes and liveness, the tenant's lifetimes read from the store.
pub mod direct {
    use serde_json::Value;
    use tessera_core::SessionLifetimes;
    use tessera_store::{Checkpoint, CheckpointPage, Store, StoreResult};

    use super::{live_at, shape};

    /// A page of a user's live sessions, in the Management API's shape.
    pub async fn of_user(
        store: &Store,
        user_id: &str,
        checkpoint: Checkpoint<'_>,
    ) -> StoreResult<CheckpointPage<Value>> {
        let lifetimes = SessionLifetimes::from_settings(&store.tenant_settings().await?);
        let page = store
            .sessions_of_user(user_id, live_at(lifetimes), checkpoint)
            .await?;
        Ok(page.map(|details| shape(&details, lifetimes)))
    }

    /// Ends the user's session `sid` and the refresh tokens issued in it; false when the
    /// user has no such live session.
    pub async fn end_one(store: &Store, user_id: &str, sid: &str) -> StoreResult<bool> {
        let lifetimes = SessionLifetimes::from_settings(&store.tenant_settings().await?);
        let theirs = store
            .find_session_by_sid(sid, live_at(lifetimes))
            .await?
            .is_some_and(|details| details.session.user_id == user_id);
        Ok(theirs && store.end_session(sid, true, crate::clock::now()).await?)
    }
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::Json;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::json;

    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::ApiResult;
    use super::super::paging::Query;
    use super::{DELETE, READ, UPDATE, UPDATE_FIELDS};
    use crate::AppState;

    /// `GET /api/v2/sessions/{id}`.
    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        Ok(Json(super::get(&state, &principal, &id).await?).into_response())
    }

    /// `PATCH /api/v2/sessions/{id}`: `{session_metadata}`; the session as it is after.
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

    /// `DELETE /api/v2/sessions/{id}`: 202, as Auth0 answers.
    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::end(&state, &principal, &id, false).await?;
        Ok(StatusCode::ACCEPTED.into_response())
    }

    /// `POST /api/v2/sessions/{id}/revoke`: the session and its refresh tokens; 202.
    pub(crate) async fn revoke(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::end(&state, &principal, &id, true).await?;
        Ok(StatusCode::ACCEPTED.into_response())
    }

    /// `GET /api/v2/users/{id}/sessions`: `{sessions, next}`, paged by checkpoint (`from` =
    /// a session id from `next`, `take` at most 100).
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
        let mut body = json!({ "sessions": page.items });
        if let Some(next) = page.next {
            body["next"] = json!(next);
        }
        Ok(Json(body).into_response())
    }

    /// `DELETE /api/v2/users/{id}/sessions`: 202, as Auth0 answers.
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
