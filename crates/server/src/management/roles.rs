//! `/api/v2/roles` (RBAC): roles, the API permissions they hold and the users who have
//! them. The user side, `/api/v2/users/{id}/roles` and `/users/{id}/permissions`, is
//! `user_access.rs`. Tokens issued afterwards carry the change: issuance reads roles and
//! permissions.
//!
//! Scopes: `read:roles` to read roles and their permissions, `create:` / `update:` /
//! `delete:roles` to change them; members are read with `read:roles` or
//! `read:role_members` and assigned with `update:roles` or `create:role_members`.
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http` and the dashboard alike.

use std::collections::HashMap;

use tessera_core::{Permission, ResourceServer, Role, User, ids, validate};
use tessera_store::{Checkpoint, CheckpointPage, Page, Slice, StoreError};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use super::users;
use crate::AppState;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:roles"];
pub(crate) const CREATE: &[&str] = &["create:roles"];
/// Also what adding and removing a role's permissions needs.
pub(crate) const UPDATE: &[&str] = &["update:roles"];
pub(crate) const DELETE: &[&str] = &["delete:roles"];
pub(crate) const READ_MEMBERS: &[&str] = &["read:roles", "read:role_members"];
pub(crate) const ASSIGN_MEMBERS: &[&str] = &["update:roles", "create:role_members"];
pub(crate) const REMOVE_MEMBERS: &[&str] = &["update:roles", "delete:role_members"];

pub(crate) const FIELDS: &[&str] = &["name", "description"];
/// `{permissions: [{resource_server_identifier, permission_name}]}`.
pub(crate) const PERMISSIONS_FIELDS: &[&str] = &["permissions"];
/// `{users: [user_id…]}`.
pub(crate) const USERS_FIELDS: &[&str] = &["users"];

/// Auth0's limit on a role's description.
const MAX_DESCRIPTION: usize = 140;

pub(super) fn not_found() -> ApiError {
    ApiError::not_found("The role does not exist.", "inexistent_role")
}

fn name_taken() -> ApiError {
    ApiError::conflict("A role with this name already exists.", "role_conflict").about("name")
}

pub(super) async fn find(state: &AppState, id: &str) -> ApiResult<Role> {
    // By id only: names are not identifiers on Auth0.
    match state.store().find_role(id).await? {
        Some(role) if role.id == id => Ok(role),
        _ => Err(not_found()),
    }
}

fn name(value: String) -> ApiResult<String> {
    validate::name(&value, "role").map_err(|why| ApiError::invalid_property(why, "name"))
}

fn description(value: String) -> ApiResult<String> {
    let value = value.trim().to_string();
    if value.chars().count() > MAX_DESCRIPTION || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_property(
            format!("the description must be at most {MAX_DESCRIPTION} printable characters"),
            "description",
        ));
    }
    Ok(value)
}

fn conflict_or(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict(_) => name_taken(),
        StoreError::NotFound(_) => not_found(),
        other => other.into(),
    }
}

/// A permission with the API that defines it (its name, the scope's description), when
/// that API still exists.
pub(crate) struct DescribedPermission {
    pub(crate) permission: Permission,
    pub(crate) api: Option<ResourceServer>,
}

/// The APIs of these identifiers (those that exist), to name and describe permissions.
async fn apis<'a>(
    state: &AppState,
    audiences: impl IntoIterator<Item = &'a str>,
) -> ApiResult<HashMap<String, ResourceServer>> {
    let mut identifiers: Vec<String> = Vec::new();
    for audience in audiences {
        if !identifiers.iter().any(|i| i == audience) {
            identifiers.push(audience.to_string());
        }
    }
    Ok(state
        .store()
        .resource_servers_by_identifier(&identifiers)
        .await?
        .into_iter()
        .map(|api| (api.identifier.clone(), api))
        .collect())
}

/// A page of permissions, each with its API.
pub(super) async fn described(
    state: &AppState,
    page: Page<Permission>,
) -> ApiResult<Page<DescribedPermission>> {
    let apis = apis(state, page.items.iter().map(|p| p.audience.as_str())).await?;
    Ok(page.map(|permission| DescribedPermission {
        api: apis.get(&permission.audience).cloned(),
        permission,
    }))
}

/// `{permissions: [{resource_server_identifier, permission_name}]}`, grouped by API.
pub(super) fn permission_list(fields: &mut Fields) -> ApiResult<Vec<(String, Vec<String>)>> {
    let items = Fields::required(
        "permissions",
        fields.objects(
            "permissions",
            &["resource_server_identifier", "permission_name"],
        )?,
    )?;
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (index, mut item) in items.into_iter().enumerate() {
        let property = |key: &str| format!("permissions[{index}].{key}");
        let required = |key: &str, value: Option<String>| {
            value.ok_or_else(|| {
                ApiError::invalid_property(
                    format!("Missing required property: {key}"),
                    &format!("permissions[{index}]"),
                )
            })
        };
        let audience = required(
            "resource_server_identifier",
            item.string("resource_server_identifier").map_err(|_| {
                ApiError::invalid_property(
                    "Expected type string",
                    &property("resource_server_identifier"),
                )
            })?,
        )?;
        let permission = required(
            "permission_name",
            item.string("permission_name").map_err(|_| {
                ApiError::invalid_property("Expected type string", &property("permission_name"))
            })?,
        )?;
        match grouped.iter_mut().find(|(a, _)| *a == audience) {
            Some((_, list)) if list.contains(&permission) => {}
            Some((_, list)) => list.push(permission),
            None => grouped.push((audience, vec![permission])),
        }
    }
    Ok(grouped)
}

fn inexistent_api(identifier: &str) -> ApiError {
    let shown: String = identifier.chars().take(200).collect();
    ApiError::not_found(
        format!("Resource server {shown} does not exist"),
        "inexistent_resource_server",
    )
}

fn inexistent_permission(permission: &str, identifier: &str) -> ApiError {
    let shown: String = identifier.chars().take(200).collect();
    let permission: String = permission.chars().take(280).collect();
    ApiError::not_found(
        format!("Permission {permission} does not exist for resource server {shown}"),
        "inexistent_permission",
    )
}

/// Every listed permission's API must exist, and the permission must be a scope that API
/// defines — or, when removing, one already `held`.
pub(super) async fn check_listed(
    state: &AppState,
    grouped: &[(String, Vec<String>)],
    held: &[Permission],
    adding: bool,
) -> ApiResult<()> {
    let apis = apis(state, grouped.iter().map(|(audience, _)| audience.as_str())).await?;
    for (audience, permissions) in grouped {
        let api = apis.get(audience).ok_or_else(|| inexistent_api(audience))?;
        if let Some(unknown) = permissions.iter().find(|p| {
            !api.defines_scope(p)
                && (adding
                    || !held
                        .iter()
                        .any(|h| h.audience == *audience && h.permission == **p))
        }) {
            return Err(inexistent_permission(unknown, audience));
        }
    }
    Ok(())
}

/// A list of ids under `key`, at least one.
pub(super) fn ids_of(fields: &mut Fields, key: &str) -> ApiResult<Vec<String>> {
    let list = Fields::required(key, fields.strings(key)?)?;
    if list.is_empty() {
        return Err(ApiError::invalid_property(
            "Array is too short (0), minimum 1",
            key,
        ));
    }
    Ok(list)
}

/// A page of roles by name; `name_filter` keeps names containing it (ignoring case).
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    name_filter: Option<&str>,
    slice: Slice,
) -> ApiResult<Page<Role>> {
    principal.require(READ)?;
    Ok(state.store().list_roles(name_filter, slice).await?)
}

/// Creates a role (members as in `FIELDS`).
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    mut fields: Fields,
) -> ApiResult<Role> {
    principal.require(CREATE)?;
    let name = name(Fields::required("name", fields.string("name")?)?)?;
    let description = fields
        .string("description")?
        .map(description)
        .transpose()?
        .unwrap_or_default();
    let now = now();
    let role = Role {
        id: format!("rol_{}", ids::alphanumeric(16)),
        name,
        description,
        created_at: now,
        updated_at: now,
    };
    state
        .store()
        .create_role(&role)
        .await
        .map_err(conflict_or)?;
    Ok(role)
}

pub(crate) async fn get(state: &AppState, principal: &Principal, id: &str) -> ApiResult<Role> {
    principal.require(READ)?;
    find(state, id).await
}

/// Renames or describes a role (members as in `FIELDS`).
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<Role> {
    principal.require(UPDATE)?;
    let name = fields.string("name")?.map(name).transpose()?;
    let description = fields.string("description")?.map(description).transpose()?;
    crate::admin_identities::refuse_system_role_change(id, name.as_deref(), description.as_deref())
        .map_err(crate::admin_identities::unchangeable)?;
    let role = find(state, id).await?;
    state
        .store()
        .update_role(&role.id, name.as_deref(), description.as_deref(), now())
        .await
        .map_err(conflict_or)
}

pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    crate::admin_identities::refuse_system_role(id)
        .map_err(crate::admin_identities::unchangeable)?;
    let role = find(state, id).await?;
    state
        .store()
        .delete_role(&role.id)
        .await
        .map_err(conflict_or)
}

/// A page of the role's permissions.
pub(crate) async fn permissions(
    state: &AppState,
    principal: &Principal,
    id: &str,
    slice: Slice,
) -> ApiResult<Page<DescribedPermission>> {
    principal.require(READ)?;
    let role = find(state, id).await?;
    let page = state.store().list_role_permissions(&role.id, slice).await?;
    described(state, page).await
}

/// Gives the role permissions (members as in `PERMISSIONS_FIELDS`); each must be a scope
/// its API defines.
pub(crate) async fn add_permissions(
    state: &AppState,
    principal: &Principal,
    id: &str,
    fields: Fields,
) -> ApiResult<()> {
    principal.require(UPDATE)?;
    change_permissions(state, id, fields, true).await
}

/// Takes permissions from the role (members as in `PERMISSIONS_FIELDS`); each must be
/// defined by its API or held by the role.
pub(crate) async fn remove_permissions(
    state: &AppState,
    principal: &Principal,
    id: &str,
    fields: Fields,
) -> ApiResult<()> {
    principal.require(UPDATE)?;
    change_permissions(state, id, fields, false).await
}

async fn change_permissions(
    state: &AppState,
    id: &str,
    mut fields: Fields,
    adding: bool,
) -> ApiResult<()> {
    let grouped = permission_list(&mut fields)?;
    crate::admin_identities::refuse_system_role(id)
        .map_err(crate::admin_identities::unchangeable)?;
    let role = find(state, id).await?;
    let held = state.store().role_permissions(&role.id).await?;
    check_listed(state, &grouped, &held, adding).await?;
    for (audience, permissions) in &grouped {
        let done = if adding {
            state
                .store()
                .add_role_permissions(&role.id, audience, permissions)
                .await
        } else {
            state
                .store()
                .remove_role_permissions(&role.id, audience, permissions)
                .await
        };
        done.map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    }
    Ok(())
}

/// A page of the role's members. By page they are served up to the 1000th, as on
/// Auth0 (the caller's slice says so); checkpoints go on past it.
pub(crate) async fn users(
    state: &AppState,
    principal: &Principal,
    id: &str,
    slice: Slice,
) -> ApiResult<Page<User>> {
    principal.require(READ_MEMBERS)?;
    let role = find(state, id).await?;
    Ok(state.store().list_role_users(&role.id, slice).await?)
}

/// The role's members after a checkpoint.
pub(crate) async fn users_from(
    state: &AppState,
    principal: &Principal,
    id: &str,
    checkpoint: Checkpoint<'_>,
) -> ApiResult<CheckpointPage<User>> {
    principal.require(READ_MEMBERS)?;
    let role = find(state, id).await?;
    Ok(state.store().role_users_from(&role.id, checkpoint).await?)
}

/// Gives the role to users (members as in `USERS_FIELDS`); every user must exist.
pub(crate) async fn assign_users(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<()> {
    principal.require(ASSIGN_MEMBERS)?;
    let user_ids = ids_of(&mut fields, "users")?;
    let role = find(state, id).await?;
    for user_id in &user_ids {
        users::find(state, user_id).await?;
    }
    for user_id in &user_ids {
        state
            .store()
            .assign_user_role(user_id, &role.id)
            .await
            .map_err(|error| match error {
                StoreError::NotFound(_) => users::not_found(),
                other => other.into(),
            })?;
    }
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
    use tessera_store::Page;

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::{ApiError, ApiResult};
    use super::super::paging::{Paging, Query};
    use super::super::wire;
    use super::{
        ASSIGN_MEMBERS, CREATE, DELETE, DescribedPermission, FIELDS, PERMISSIONS_FIELDS, READ,
        READ_MEMBERS, UPDATE, USERS_FIELDS,
    };
    use crate::AppState;

    pub(in super::super) const PAGING: &[&str] = &["page", "per_page", "include_totals"];

    /// A page of permissions in Auth0's shape, each named and described by its API.
    pub(in super::super) fn permissions_page(
        paging: &Paging,
        page: Page<DescribedPermission>,
    ) -> Response {
        let page = page.map(|p| wire::permission(&p.permission, p.api.as_ref()));
        paging.respond(page, "permissions")
    }

    /// `GET /api/v2/roles`: a page by name; `name_filter` keeps names containing it
    /// (ignoring case). Tessera's roles are all tenant roles: `type=organization` (and
    /// `owner_id`, which names an organization) find none.
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
                "name_filter",
                "type",
                "owner_id",
            ],
        )?;
        let paging = query.paging()?;
        let organization = match query.get("type") {
            None | Some("tenant") => false,
            Some("organization") => true,
            Some(_) => {
                return Err(ApiError::invalid_query_property(
                    "No enum match for: type",
                    "type",
                ));
            }
        };
        if organization || query.get("owner_id").is_some() {
            return Ok(paging.respond_empty("roles"));
        }
        let page =
            super::list(&state, &principal, query.get("name_filter"), paging.slice()).await?;
        Ok(paging.respond(page.map(|r| wire::role(&r)), "roles"))
    }

    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, FIELDS)?;
        let role = super::create(&state, &principal, fields).await?;
        // Auth0 answers 200 here, not 201.
        Ok(Json(wire::role(&role)).into_response())
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let role = super::get(&state, &principal, &id).await?;
        Ok(Json(wire::role(&role)).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, FIELDS)?;
        let role = super::update(&state, &principal, &id, fields).await?;
        Ok(Json(wire::role(&role)).into_response())
    }

    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::delete(&state, &principal, &id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    pub(crate) async fn permissions(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let paging = Query::parse(query.as_deref(), PAGING)?.paging()?;
        let page = super::permissions(&state, &principal, &id, paging.slice()).await?;
        Ok(permissions_page(&paging, page))
    }

    pub(crate) async fn add_permissions(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, PERMISSIONS_FIELDS)?;
        super::add_permissions(&state, &principal, &id, fields).await?;
        Ok(StatusCode::CREATED.into_response())
    }

    pub(crate) async fn remove_permissions(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, PERMISSIONS_FIELDS)?;
        super::remove_permissions(&state, &principal, &id, fields).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// `GET /roles/{id}/users`: by page up to the 1000th member, as on Auth0, or by
    /// checkpoint past it.
    pub(crate) async fn users(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_MEMBERS).await?;
        let query = Query::parse(
            query.as_deref(),
            &["page", "per_page", "include_totals", "from", "take"],
        )?;
        if query.by_checkpoint() {
            let page = super::users_from(&state, &principal, &id, query.checkpoint()?).await?;
            return query.respond_checkpoint(page.map(|u| wire::role_member(&u)), "users");
        }
        let paging = query.paging()?;
        let page = super::users(&state, &principal, &id, paging.capped_slice()?).await?;
        Ok(paging.respond(page.map(|u| wire::role_member(&u)), "users"))
    }

    /// `POST /roles/{id}/users`: `{users: [user_id…]}`.
    pub(crate) async fn assign_users(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, ASSIGN_MEMBERS).await?;
        let fields = body::object(&headers, body, USERS_FIELDS)?;
        super::assign_users(&state, &principal, &id, fields).await?;
        Ok(StatusCode::OK.into_response())
    }
}
