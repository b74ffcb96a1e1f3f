//! A user's side of RBAC: `/api/v2/users/{id}/roles` and `/users/{id}/permissions`.
//! Tokens issued afterwards carry the change: issuance reads roles and permissions.
//!
//! Scopes, as on Auth0: a user's roles are read with `read:users`, `read:roles` or
//! `read:role_members`, assigned with `update:roles` or `create:role_members` and removed
//! with `update:roles` or `delete:role_members`; a user's permissions are read with
//! `read:users` and changed with `update:users`.
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http` and the dashboard alike.

use tessera_core::Role;
use tessera_store::{Page, Slice, StoreError};

use super::auth::Principal;
use super::body::Fields;
use super::error::ApiResult;
use super::roles::{self, DescribedPermission};
use super::users;
use crate::AppState;

pub(crate) const READ_ROLES: &[&str] = &["read:users", "read:roles", "read:role_members"];
pub(crate) const ASSIGN_ROLES: &[&str] = roles::ASSIGN_MEMBERS;
pub(crate) const REMOVE_ROLES: &[&str] = roles::REMOVE_MEMBERS;
pub(crate) const READ_PERMISSIONS: &[&str] = users::READ;
pub(crate) const CHANGE_PERMISSIONS: &[&str] = users::UPDATE;

/// `{roles: [role_id…]}`.
pub(crate) const ROLES_FIELDS: &[&str] = &["roles"];
/// `{permissions: [{resource_server_identifier, permission_name}]}`.
pub(crate) const PERMISSIONS_FIELDS: &[&str] = roles::PERMISSIONS_FIELDS;

/// A page of the user's roles.
pub(crate) async fn roles(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    slice: Slice,
) -> ApiResult<Page<Role>> {
    principal.require(READ_ROLES)?;
    let user = users::find(state, user_id).await?;
    Ok(state.store().list_user_roles(&user.user_id, slice).await?)
}

/// Gives the user roles (members as in `ROLES_FIELDS`); every role must exist.
pub(crate) async fn assign_roles(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    fields: Fields,
) -> ApiResult<()> {
    principal.require(ASSIGN_ROLES)?;
    change_roles(state, user_id, fields, true).await
}

/// Takes roles from the user (members as in `ROLES_FIELDS`); every role must exist.
pub(crate) async fn remove_roles(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    fields: Fields,
) -> ApiResult<()> {
    principal.require(REMOVE_ROLES)?;
    change_roles(state, user_id, fields, false).await
}

async fn change_roles(
    state: &AppState,
    user_id: &str,
    mut fields: Fields,
    adding: bool,
) -> ApiResult<()> {
    let role_ids = roles::ids_of(&mut fields, "roles")?;
    let user = users::find(state, user_id).await?;
    for role_id in &role_ids {
        roles::find(state, role_id).await?;
    }
    for role_id in &role_ids {
        let done = if adding {
            state.store().assign_user_role(&user.user_id, role_id).await
        } else {
            state.store().remove_user_role(&user.user_id, role_id).await
        };
        done.map_err(|error| match error {
            StoreError::NotFound(_) => roles::not_found(),
            other => other.into(),
        })?;
    }
    Ok(())
}

/// A page of the user's permissions, through roles and direct grants, merged.
pub(crate) async fn permissions(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    slice: Slice,
) -> ApiResult<Page<DescribedPermission>> {
    principal.require(READ_PERMISSIONS)?;
    let user = users::find(state, user_id).await?;
    let page = state
        .store()
        .list_user_permissions(&user.user_id, slice)
        .await?;
    roles::described(state, page).await
}

/// Gives the user permissions directly (members as in `PERMISSIONS_FIELDS`; each must be
/// a scope its API defines).
pub(crate) async fn add_permissions(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    fields: Fields,
) -> ApiResult<()> {
    principal.require(CHANGE_PERMISSIONS)?;
    change_permissions(state, user_id, fields, true).await
}

/// Takes back direct permissions (members as in `PERMISSIONS_FIELDS`); what a role gives
/// stays.
pub(crate) async fn remove_permissions(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    fields: Fields,
) -> ApiResult<()> {
    principal.require(CHANGE_PERMISSIONS)?;
    change_permissions(state, user_id, fields, false).await
}

async fn change_permissions(
    state: &AppState,
    user_id: &str,
    mut fields: Fields,
    adding: bool,
) -> ApiResult<()> {
    let grouped = roles::permission_list(&mut fields)?;
    let user = users::find(state, user_id).await?;
    let held = state.store().user_permissions(&user.user_id, None).await?;
    roles::check_listed(state, &grouped, &held, adding).await?;
    for (audience, permissions) in &grouped {
        if adding {
            state
                .store()
                .add_user_permissions(&user.user_id, audience, permissions)
                .await?;
        } else {
            state
                .store()
                .remove_user_permissions(&user.user_id, audience, permissions)
                .await?;
        }
    }
    Ok(())
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::ApiResult;
    use super::super::paging::Query;
    use super::super::roles::http::{PAGING, permissions_page};
    use super::super::wire;
    use super::{
        ASSIGN_ROLES, CHANGE_PERMISSIONS, PERMISSIONS_FIELDS, READ_PERMISSIONS, READ_ROLES,
        REMOVE_ROLES, ROLES_FIELDS,
    };
    use crate::AppState;

    pub(crate) async fn roles(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_ROLES).await?;
        let paging = Query::parse(query.as_deref(), PAGING)?.paging()?;
        let page = super::roles(&state, &principal, &id, paging.slice()).await?;
        Ok(paging.respond(page.map(|r| wire::role(&r)), "roles"))
    }

    /// `POST /users/{id}/roles`: `{roles: [role_id…]}`.
    pub(crate) async fn assign_roles(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, ASSIGN_ROLES).await?;
        let fields = body::object(&headers, body, ROLES_FIELDS)?;
        super::assign_roles(&state, &principal, &id, fields).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// `DELETE /users/{id}/roles`: `{roles: [role_id…]}`.
    pub(crate) async fn remove_roles(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, REMOVE_ROLES).await?;
        let fields = body::object(&headers, body, ROLES_FIELDS)?;
        super::remove_roles(&state, &principal, &id, fields).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// `GET /users/{id}/permissions`: through roles and direct grants, merged.
    pub(crate) async fn permissions(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_PERMISSIONS).await?;
        let paging = Query::parse(query.as_deref(), PAGING)?.paging()?;
        let page = super::permissions(&state, &principal, &id, paging.slice()).await?;
        Ok(permissions_page(&paging, page))
    }

    /// `POST /users/{id}/permissions`.
    pub(crate) async fn add_permissions(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CHANGE_PERMISSIONS).await?;
        let fields = body::object(&headers, body, PERMISSIONS_FIELDS)?;
        super::add_permissions(&state, &principal, &id, fields).await?;
        Ok(StatusCode::CREATED.into_response())
    }

    /// `DELETE /users/{id}/permissions`.
    pub(crate) async fn remove_permissions(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CHANGE_PERMISSIONS).await?;
        let fields = body::object(&headers, body, PERMISSIONS_FIELDS)?;
        super::remove_permissions(&state, &principal, &id, fields).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}
