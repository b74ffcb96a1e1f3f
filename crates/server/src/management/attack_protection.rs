//! Brute-force protection through the Management API, in Auth0's shapes: its settings
//! (`/attack-protection/brute-force-protection`) and the blocks it put in force
//! (`/user-blocks?identifier=…`, `/user-blocks/{id}`), which an administrator lifts with
//! `DELETE`. A block is an account's count of failed password attempts at the threshold,
//! from one network (or from any, in `count_per_identifier` mode); lifting it forgets the
//! counts, never a block an administrator set (`blocked`). What the settings mean is
//! `crate::brute_force`'s; this module reads and writes them.

use serde_json::{Map, Value, json};
use tessera_core::User;
use tessera_store::{Store, StoreResult};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::brute_force::{self, BruteForce};

pub(crate) const READ: &[&str] = &["read:attack_protection"];
pub(crate) const UPDATE: &[&str] = &["update:attack_protection"];
/// Auth0's scopes for user blocks: those of the users they are about.
pub(crate) const READ_BLOCKS: &[&str] = &["read:users"];
pub(crate) const LIFT_BLOCKS: &[&str] = &["update:users"];
pub(crate) const FIELDS: &[&str] = brute_force::MEMBERS;
/// Blocks listed for one account at most (a guesser spread over many networks could
/// leave any number; lifting them all takes one call).
pub(crate) const BLOCKS_LISTED: i64 = 100;
/// The longest identifier looked up: an email address's bound.
const MAX_IDENTIFIER: usize = 320;

/// `GET /attack-protection/brute-force-protection`.
pub(crate) async fn settings(state: &AppState, principal: &Principal) -> ApiResult<Value> {
    principal.require(READ)?;
    Ok(brute_force::settings(state).await?.json())
}

/// `PATCH /attack-protection/brute-force-protection`: sets the members `fields` names
/// (`null` puts one back to Tessera's default) and keeps the others; the settings after.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    fields: Fields,
) -> ApiResult<Value> {
    principal.require(UPDATE)?;
    let mut patch = Map::new();
    for (member, value) in fields.into_map() {
        let stored = if value.is_null() {
            Value::Null
        } else {
            brute_force::checked(&member, &value)
                .map_err(|why| ApiError::invalid_body(why).about(&member))?
        };
        patch.insert(member, stored);
    }
    state.store().patch_brute_force_settings(&patch).await?;
    state.forget_tenant();
    Ok(brute_force::settings(state).await?.json())
}

/// The blocks of the account `identifier` (an email address): `{"blocked_for": […]}`.
/// `in_force_only` (Auth0's `consider_brute_force_enablement`): only those refusing
/// sign-ins now (none while the protection is off or does not block, none from an
/// allowlisted network); otherwise every count at the threshold.
pub(crate) async fn blocks(
    state: &AppState,
    principal: &Principal,
    identifier: &str,
    in_force_only: bool,
) -> ApiResult<Value> {
    principal.require(READ_BLOCKS)?;
    let identifier = checked_identifier(identifier)?;
    listed(state, identifier, in_force_only).await
}

/// The blocks of the user `user_id` (those of their email address; a user without one
/// has none).
pub(crate) async fn blocks_of_user(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    in_force_only: bool,
) -> ApiResult<Value> {
    principal.require(READ_BLOCKS)?;
    let user = super::users::find(state, user_id).await?;
    match &user.email {
        Some(email) => listed(state, email, in_force_only).await,
        None => Ok(json!({ "blocked_for": [] })),
    }
}

/// Lifts every block of the account `identifier`.
pub(crate) async fn lift(
    state: &AppState,
    principal: &Principal,
    identifier: &str,
) -> ApiResult<()> {
    principal.require(LIFT_BLOCKS)?;
    let identifier = checked_identifier(identifier)?;
    state.store().clear_login_failures(identifier, None).await?;
    Ok(())
}

/// Lifts every block of the user `user_id`; their `blocked` flag stays as it is.
pub(crate) async fn lift_of_user(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
) -> ApiResult<User> {
    principal.require(LIFT_BLOCKS)?;
    let user = super::users::find(state, user_id).await?;
    if let Some(email) = &user.email {
        state.store().clear_login_failures(email, None).await?;
    }
    Ok(user)
}

async fn listed(state: &AppState, identifier: &str, in_force_only: bool) -> ApiResult<Value> {
    let protection = brute_force::settings(state).await?;
    Ok(blocked_for(state.store(), &protection, identifier, in_force_only).await?)
}

/// `{"blocked_for": […]}` of the account `identifier`, as [`blocks`] says.
async fn blocked_for(
    store: &Store,
    protection: &BruteForce,
    identifier: &str,
    in_force_only: bool,
) -> StoreResult<Value> {
    let counted = store
        .login_blocks(identifier, protection.max_attempts, BLOCKS_LISTED)
        .await?;
    let shown = tessera_core::normalize_email(identifier);
    let blocked_for: Vec<Value> = counted
        .iter()
        .filter(|counted_at| !in_force_only || protection.in_force(counted_at))
        .map(|counted_at| match brute_force::address_of(counted_at) {
            Some(ip) => json!({ "identifier": shown, "ip": ip }),
            None => json!({ "identifier": shown }),
        })
        .collect();
    Ok(json!({ "blocked_for": blocked_for }))
}

/// For the command line, which reads the database itself (and so the stored settings,
/// with the server's default threshold).
pub mod direct {
    use serde_json::{Map, Value};
    use tessera_core::Metadata;
    use tessera_store::{Store, StoreResult};

    use crate::brute_force::{self, BruteForce, DEFAULT_MAX_ATTEMPTS, MEMBERS};

    /// Auth0's brute-force settings as an export holds them (a0deploy's
    /// `attackProtection.bruteForceProtection`), checked as `PATCH` checks them: what to
    /// store, and the members Tessera has no place for (left out). A member Tessera has
    /// but cannot hold is refused.
    pub fn from_export(exported: &Map<String, Value>) -> Result<(Metadata, Vec<String>), String> {
        let mut stored = Metadata::new();
        let mut left_out = Vec::new();
        for (member, value) in exported {
            if !MEMBERS.contains(&member.as_str()) {
                left_out.push(member.clone());
                continue;
            }
            let checked = brute_force::checked(member, value)
                .map_err(|why| format!("bruteForceProtection.{member}: {why}"))?;
            stored.insert(member.clone(), checked);
        }
        Ok((stored, left_out))
    }

    /// Every count of the account `email` at the threshold, in the Management API's shape.
    pub async fn blocks(store: &Store, email: &str) -> StoreResult<Value> {
        let stored = store.brute_force_settings().await?;
        let protection = BruteForce::from_stored(&stored, DEFAULT_MAX_ATTEMPTS);
        super::blocked_for(store, &protection, email, false).await
    }
}

fn checked_identifier(identifier: &str) -> ApiResult<&str> {
    let length = identifier.chars().count();
    if length == 0 || length > MAX_IDENTIFIER {
        return Err(ApiError::invalid_query(format!(
            "identifier must be 1 to {MAX_IDENTIFIER} characters"
        )));
    }
    Ok(identifier)
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::{ApiError, ApiResult};
    use super::super::paging::Query;
    use super::{FIELDS, LIFT_BLOCKS, READ, READ_BLOCKS, UPDATE};
    use crate::AppState;

    const CONSIDER: &str = "consider_brute_force_enablement";

    pub(crate) async fn settings(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let fields =
            Query::parse(query.as_deref(), &["fields", "include_fields"])?.field_filter()?;
        let settings = super::settings(&state, &principal).await?;
        Ok(Json(fields.apply(settings)).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, FIELDS)?;
        Ok(Json(super::update(&state, &principal, fields).await?).into_response())
    }

    fn identifier(query: &Query) -> ApiResult<String> {
        query
            .get("identifier")
            .map(str::to_string)
            .ok_or_else(|| ApiError::invalid_query("Missing required property: identifier"))
    }

    /// `GET /user-blocks?identifier=…[&consider_brute_force_enablement=true]`.
    pub(crate) async fn blocks(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_BLOCKS).await?;
        let query = Query::parse(query.as_deref(), &["identifier", CONSIDER])?;
        let in_force_only = query.boolean(CONSIDER)?.unwrap_or(false);
        let found = super::blocks(&state, &principal, &identifier(&query)?, in_force_only).await?;
        Ok(Json(found).into_response())
    }

    /// `DELETE /user-blocks?identifier=…`: 204.
    pub(crate) async fn lift(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, LIFT_BLOCKS).await?;
        let query = Query::parse(query.as_deref(), &["identifier"])?;
        super::lift(&state, &principal, &identifier(&query)?).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// `GET /user-blocks/{id}[?consider_brute_force_enablement=true]`.
    pub(crate) async fn blocks_of_user(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_BLOCKS).await?;
        let query = Query::parse(query.as_deref(), &[CONSIDER])?;
        let in_force_only = query.boolean(CONSIDER)?.unwrap_or(false);
        let found = super::blocks_of_user(&state, &principal, &id, in_force_only).await?;
        Ok(Json(found).into_response())
    }

    /// `DELETE /user-blocks/{id}`: 204.
    pub(crate) async fn lift_of_user(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, LIFT_BLOCKS).await?;
        super::lift_of_user(&state, &principal, &id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}
