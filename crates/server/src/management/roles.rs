//! `/api/v2/roles` (RBAC): roles, the API permissions they hold and the users who have
//! them; and the user side, `/api/v2/users/{id}/roles` and `/users/{id}/permissions`.
//! Tokens issued afterwards carry the change: issuance reads roles and permissions.
//!
//! Scopes: `read:roles` to read roles and their permissions, `create:` / `update:` /
//! `delete:roles` to change them; members are read with `read:roles` or
//! `read:role_members` (or `read:users` from the user's side, as on Auth0), assigned with
//! `update:roles` or `create:role_members` and removed with `update:roles` or
//! `delete:role_members`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::{Permission, ResourceServer, Role, ids, validate};
use tessera_store::{Page, StoreError};

use super::auth::require;
use super::body::{self, Fields};
use super::error::{ApiError, ApiResult};
use super::paging::{Paging, Query};
use super::{users, wire};
use crate::AppState;
use crate::clock::now;

/// Auth0's limit on a role's description.
const MAX_DESCRIPTION: usize = 140;
const PAGING: &[&str] = &["page", "per_page", "include_totals"];

fn not_found() -> ApiError {
    ApiError::not_found("The role does not exist.", "inexistent_role")
}

fn name_taken() -> ApiError {
    ApiError::conflict("A role with this name already exists.", "role_conflict")
}

async fn find(state: &AppState, id: &str) -> ApiResult<Role> {
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

/// `GET /api/v2/roles`: a page by name; `name_filter` keeps names containing it
/// (ignoring case). Tessera's roles are all tenant roles: `type=organization` (and
/// `owner_id`, which names an organization) find none.
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:roles"]).await?;
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
    let page = state
        .store()
        .list_roles(query.get("name_filter"), paging.slice())
        .await?;
    Ok(paging.respond(page.map(|r| wire::role(&r)), "roles"))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["create:roles"]).await?;
    let mut fields = body::object(&headers, body, &["name", "description"])?;
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
    // Auth0 answers 200 here, not 201.
    Ok(Json(wire::role(&role)).into_response())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:roles"]).await?;
    let role = find(&state, &id).await?;
    Ok(Json(wire::role(&role)).into_response())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:roles"]).await?;
    let mut fields = body::object(&headers, body, &["name", "description"])?;
    let name = fields.string("name")?.map(name).transpose()?;
    let description = fields.string("description")?.map(description).transpose()?;
    let role = find(&state, &id).await?;
    let role = state
        .store()
        .update_role(&role.id, name.as_deref(), description.as_deref(), now())
        .await
        .map_err(conflict_or)?;
    Ok(Json(wire::role(&role)).into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    require(&state, &headers, &["delete:roles"]).await?;
    let role = find(&state, &id).await?;
    state
        .store()
        .delete_role(&role.id)
        .await
        .map_err(conflict_or)?;
    Ok(StatusCode::NO_CONTENT.into_response())
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

/// A page of permissions in Auth0's shape, each named and described by its API.
async fn described(
    state: &AppState,
    paging: &Paging,
    page: Page<Permission>,
) -> ApiResult<Response> {
    let apis = apis(state, page.items.iter().map(|p| p.audience.as_str())).await?;
    let page = page.map(|p| wire::permission(&p, apis.get(&p.audience)));
    Ok(paging.respond(page, "permissions"))
}

pub(crate) async fn permissions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:roles"]).await?;
    let paging = Query::parse(query.as_deref(), PAGING)?.paging()?;
    let role = find(&state, &id).await?;
    let page = state
        .store()
        .list_role_permissions(&role.id, paging.slice())
        .await?;
    described(&state, &paging, page).await
}

/// `{permissions: [{resource_server_identifier, permission_name}]}`, grouped by API.
fn permission_list(fields: &mut Fields) -> ApiResult<Vec<(String, Vec<String>)>> {
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
async fn check_listed(
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

/// `POST` (add) and `DELETE` (remove) `/roles/{id}/permissions`. Added permissions must
/// be scopes their API defines; removed ones must be defined or held by the role.
async fn change_permissions(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: Result<Bytes, BytesRejection>,
    adding: bool,
) -> ApiResult<()> {
    require(state, headers, &["update:roles"]).await?;
    let mut fields = body::object(headers, body, &["permissions"])?;
    let grouped = permission_list(&mut fields)?;
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

pub(crate) async fn add_permissions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    change_permissions(&state, &headers, &id, body, true).await?;
    Ok(StatusCode::CREATED.into_response())
}

pub(crate) async fn remove_permissions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    change_permissions(&state, &headers, &id, body, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:roles", "read:role_members"]).await?;
    let query = Query::parse(
        query.as_deref(),
        &["page", "per_page", "include_totals", "from", "take"],
    )?;
    let role = find(&state, &id).await?;
    if query.by_checkpoint() {
        let page = state
            .store()
            .role_users_from(&role.id, query.checkpoint()?)
            .await?;
        return query.respond_checkpoint(page.map(|u| wire::role_member(&u)), "users");
    }
    // By page, a role's members are served up to the 1000th, as on Auth0; checkpoints
    // go on past it.
    let paging = query.paging()?;
    let page = state
        .store()
        .list_role_users(&role.id, paging.capped_slice()?)
        .await?;
    Ok(paging.respond(page.map(|u| wire::role_member(&u)), "users"))
}

/// A list of ids under `key`, at least one.
fn ids_of(fields: &mut Fields, key: &str) -> ApiResult<Vec<String>> {
    let list = Fields::required(key, fields.strings(key)?)?;
    if list.is_empty() {
        return Err(ApiError::invalid_property(
            "Array is too short (0), minimum 1",
            key,
        ));
    }
    Ok(list)
}

/// `POST /roles/{id}/users`: `{users: [user_id…]}`; every user must exist.
pub(crate) async fn assign_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:roles", "create:role_members"]).await?;
    let mut fields = body::object(&headers, body, &["users"])?;
    let user_ids = ids_of(&mut fields, "users")?;
    let role = find(&state, &id).await?;
    for user_id in &user_ids {
        users::find(&state, user_id).await?;
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
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn user_roles(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(
        &state,
        &headers,
        &["read:users", "read:roles", "read:role_members"],
    )
    .await?;
    let paging = Query::parse(query.as_deref(), PAGING)?.paging()?;
    let user = users::find(&state, &id).await?;
    let page = state
        .store()
        .list_user_roles(&user.user_id, paging.slice())
        .await?;
    Ok(paging.respond(page.map(|r| wire::role(&r)), "roles"))
}

/// `POST` / `DELETE /users/{id}/roles`: `{roles: [role_id…]}`; every role must exist.
async fn change_user_roles(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: Result<Bytes, BytesRejection>,
    adding: bool,
) -> ApiResult<()> {
    let scopes: &[&str] = if adding {
        &["update:roles", "create:role_members"]
    } else {
        &["update:roles", "delete:role_members"]
    };
    require(state, headers, scopes).await?;
    let mut fields = body::object(headers, body, &["roles"])?;
    let role_ids = ids_of(&mut fields, "roles")?;
    let user = users::find(state, id).await?;
    for role_id in &role_ids {
        find(state, role_id).await?;
    }
    for role_id in &role_ids {
        let done = if adding {
            state.store().assign_user_role(&user.user_id, role_id).await
        } else {
            state.store().remove_user_role(&user.user_id, role_id).await
        };
        done.map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    }
    Ok(())
}

pub(crate) async fn assign_user_roles(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    change_user_roles(&state, &headers, &id, body, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn remove_user_roles(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    change_user_roles(&state, &headers, &id, body, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /users/{id}/permissions`: through roles and direct grants, merged.
pub(crate) async fn user_permissions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:users"]).await?;
    let paging = Query::parse(query.as_deref(), PAGING)?.paging()?;
    let user = users::find(&state, &id).await?;
    let page = state
        .store()
        .list_user_permissions(&user.user_id, paging.slice())
        .await?;
    described(&state, &paging, page).await
}

/// `POST /users/{id}/permissions`: gives the user permissions directly (each must be a
/// scope its API defines).
pub(crate) async fn add_user_permissions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    change_user_permissions(&state, &headers, &id, body, true).await?;
    Ok(StatusCode::CREATED.into_response())
}

/// `DELETE /users/{id}/permissions`: takes back direct permissions; what a role gives
/// stays.
pub(crate) async fn remove_user_permissions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    change_user_permissions(&state, &headers, &id, body, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn change_user_permissions(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: Result<Bytes, BytesRejection>,
    adding: bool,
) -> ApiResult<()> {
    require(state, headers, &["update:users"]).await?;
    let mut fields = body::object(headers, body, &["permissions"])?;
    let grouped = permission_list(&mut fields)?;
    let user = users::find(state, id).await?;
    let held = state.store().user_permissions(&user.user_id, None).await?;
    check_listed(state, &grouped, &held, adding).await?;
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
