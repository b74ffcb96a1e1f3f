//! `/api/v2/users/{id}/identities`: linking accounts, as Auth0 does — explicitly, never by
//! a matching email (the nOAuth class of account takeovers). Linking makes another user (the
//! secondary, named by `provider` + `user_id` or proven by an ID token in `link_with`) an
//! identity of this one: its own account goes, and signing in through it signs this user
//! in. Unlinking gives it an account of its own again.
//!
//! Only identities of upstream connections become secondary: a password sign-in finds its
//! account by email in the database connection and would not follow a link, so a database
//! user is linked as the primary.

use tessera_core::User;
use tessera_store::{LinkedIdentity, MAX_LINKED_IDENTITIES, StoreError};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use super::users::{UPDATE, find, not_found};
use crate::AppState;
use crate::clock::now;

pub(crate) const LINK_FIELDS: &[&str] = &["provider", "user_id", "connection_id", "link_with"];

/// Longest `provider` and `user_id` accepted: ids Tessera makes are far shorter.
const MAX_PROVIDER: usize = 64;
const MAX_ID: usize = 512;

/// A user and the identities linked to it.
pub(crate) struct Identities {
    pub(crate) user: User,
    pub(crate) linked: Vec<LinkedIdentity>,
}

/// Links the secondary account `fields` name to `primary_id`.
pub(crate) async fn link(
    state: &AppState,
    principal: &Principal,
    primary_id: &str,
    mut fields: Fields,
) -> ApiResult<Identities> {
    principal.require(UPDATE)?;
    let secondary_id = secondary_named(state, &mut fields).await?;
    let connection_id = fields.string("connection_id")?;
    let primary = find(state, primary_id).await?;
    if secondary_id == primary.user_id {
        return Err(ApiError::bad_request(
            "Main identity and the new one are the same.",
        ));
    }
    let secondary = state
        .store()
        .find_user(&secondary_id)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request("The secondary user does not exist.").about("user_id")
        })?;
    if crate::databases::named(state, &secondary.connection)
        .await?
        .is_some()
    {
        return Err(ApiError::bad_request(format!(
            "Only identities of upstream connections can be linked to another user: a \
             password sign-in would not follow the link. Link the other account to this \
             user of {} instead.",
            secondary.connection
        )));
    }
    if let Some(connection_id) = connection_id {
        let connection = state.store().find_connection(&connection_id).await?;
        if connection.is_none_or(|c| c.name != secondary.connection) {
            return Err(ApiError::bad_request(
                "connection_id is not the connection of the secondary user.",
            )
            .about("connection_id"));
        }
    }
    match state
        .store()
        .link_identity(&primary.user_id, &secondary.user_id, now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict("identities linked to the secondary user")) => {
            return Err(ApiError::bad_request(
                "The secondary user has identities linked to it; unlink them first.",
            ));
        }
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::bad_request(format!(
                "The user has the most linked identities a user may have ({MAX_LINKED_IDENTITIES})."
            )));
        }
        // Deleted between the reads above and the link.
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(other) => return Err(other.into()),
    }
    tracing::info!(user_id = %primary.user_id, identity = %secondary.user_id, "identity linked");
    identities_of(state, primary).await
}

/// Unlinks `provider|user_id` from `primary_id`; it becomes a user of its own again.
pub(crate) async fn unlink(
    state: &AppState,
    principal: &Principal,
    primary_id: &str,
    provider: &str,
    user_id: &str,
) -> ApiResult<Identities> {
    principal.require(UPDATE)?;
    let primary = find(state, primary_id).await?;
    let secondary_id = format!("{provider}|{user_id}");
    if secondary_id == primary.user_id {
        return Err(ApiError::bad_request("Main identity cannot be removed."));
    }
    match state
        .store()
        .unlink_identity(&primary.user_id, &secondary_id, now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(
                "The identity is not linked to this user.",
                "inexistent_identity",
            ));
        }
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict(
                "Another user of the identity's connection has its email address; the \
                 identity stays linked.",
                "user_exists",
            ));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(user_id = %primary.user_id, identity = %secondary_id, "identity unlinked");
    identities_of(state, primary).await
}

async fn identities_of(state: &AppState, user: User) -> ApiResult<Identities> {
    let linked = state.store().linked_identities(&user.user_id).await?;
    Ok(Identities { user, linked })
}

/// The secondary's user id: `provider|user_id`, or the subject of an ID token of ours in
/// `link_with` (Auth0 accepts one or the other, never both).
async fn secondary_named(state: &AppState, fields: &mut Fields) -> ApiResult<String> {
    let link_with = fields.string("link_with")?;
    let provider = fields.string("provider")?;
    let user_id = match fields.take("user_id") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(id)) => Some(id),
        // Auth0 takes numeric ids (GitHub's) as numbers too.
        Some(serde_json::Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(_) => {
            return Err(ApiError::invalid_property(
                "user_id must be a string or a positive integer",
                "user_id",
            ));
        }
    };
    if let Some(token) = link_with {
        if provider.is_some() || user_id.is_some() {
            return Err(ApiError::invalid_body(
                "link_with cannot be sent with provider or user_id",
            ));
        }
        return subject_of(state, &token).await;
    }
    let provider = Fields::required("provider", provider)?;
    let user_id = Fields::required("user_id", user_id)?;
    if provider.is_empty() || provider.len() > MAX_PROVIDER || provider.contains('|') {
        return Err(ApiError::invalid_property(
            "provider must be a provider's name such as github or oidc",
            "provider",
        ));
    }
    if user_id.is_empty() || user_id.len() > MAX_ID {
        return Err(ApiError::invalid_property(
            format!("user_id must be 1 to {MAX_ID} characters"),
            "user_id",
        ));
    }
    Ok(format!("{provider}|{user_id}"))
}

/// The user an unexpired ID token issued here proves: Tessera's signature and issuer, and
/// an audience that is an application of this tenant (an access token's is an API).
async fn subject_of(state: &AppState, token: &str) -> ApiResult<String> {
    let refused = || {
        ApiError::invalid_property(
            "link_with must be an unexpired ID token issued by this tenant",
            "link_with",
        )
    };
    let read = crate::oauth::issue::read_id_token_hint(state, token).ok_or_else(refused)?;
    if read.expires_at.is_none_or(|exp| exp <= now()) {
        return Err(refused());
    }
    if state.store().find_client(&read.client_id).await?.is_none() {
        return Err(refused());
    }
    Ok(read.sub)
}

pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::ApiResult;
    use super::super::users::UPDATE;
    use super::super::wire;
    use super::{Identities, LINK_FIELDS};
    use crate::AppState;

    fn shown(identities: &Identities) -> Json<Vec<wire::Identity>> {
        Json(wire::identities(&identities.user, &identities.linked))
    }

    /// `POST /api/v2/users/{id}/identities`: 201 and the user's identities.
    pub(crate) async fn link(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, LINK_FIELDS)?;
        let identities = super::link(&state, &principal, &id, fields).await?;
        Ok((StatusCode::CREATED, shown(&identities)).into_response())
    }

    /// `DELETE /api/v2/users/{id}/identities/{provider}/{user_id}`: the identities left.
    pub(crate) async fn unlink(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path((id, provider, user_id)): Path<(String, String, String)>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let identities = super::unlink(&state, &principal, &id, &provider, &user_id).await?;
        Ok(shown(&identities).into_response())
    }
}
