//! User Management → Roles: the list, Create Role, and a role's tabs — Settings,
//! Permissions (an API's scopes), Users. Every change is an operation of
//! `management::roles` or `management::user_access`.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use tessera_core::{Role, User};
use tessera_store::Slice;

use super::Deletion;
use super::form::{Body, FormError};
use super::session::{Admin, AdminForm};
use super::views::{self, Frame, Tab};
use super::{Paging, notice_of, query_of};
use crate::AppState;
use crate::management::roles::DescribedPermission;
use crate::management::{ApiError, Fields, resource_servers, roles, user_access, users};
use crate::pages::redirect;

const PER_PAGE: u32 = 20;

fn role_path(role: &Role, tab: &str) -> String {
    if tab.is_empty() {
        format!("/admin/roles/{}", role.id)
    } else {
        format!("/admin/roles/{}/{tab}", role.id)
    }
}

#[derive(Template)]
#[template(path = "admin/roles.html")]
struct ListPage<'a> {
    frame: Frame<'a>,
    roles: Vec<Role>,
    paging: Paging,
    can_create: bool,
}

/// `GET /admin/roles`.
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let page = match roles::list(&state, &admin.principal, None, paging.slice()).await {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&ListPage {
        frame: Frame::new(&state, &admin, "roles", notice_of(&query)),
        paging: paging.with_total(page.total),
        roles: page.items,
        can_create: admin.may("create:roles"),
    })
}

#[derive(Template)]
#[template(path = "admin/role_form.html")]
struct FormPage<'a> {
    frame: Frame<'a>,
    /// `None` when creating.
    role: Option<Role>,
    tabs: Vec<Tab>,
    name: String,
    description: String,
    can_update: bool,
    can_delete: bool,
    error: Option<FormError>,
}

impl FormPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

/// `GET /admin/roles/new`.
pub(crate) async fn new(State(state): State<AppState>, admin: Admin) -> Response {
    views::page(&FormPage {
        frame: Frame::new(&state, &admin, "roles", None),
        role: None,
        tabs: Vec::new(),
        name: String::new(),
        description: String::new(),
        can_update: admin.may("create:roles"),
        can_delete: false,
        error: None,
    })
}

fn role_body(params: &crate::edge::params::Params) -> Result<Fields, ApiError> {
    let body = Body::new()
        .text(params, "name")
        .text(params, "description")
        .into_map();
    Fields::from_map(body, roles::FIELDS)
}

/// `POST /admin/roles`: Create Role.
pub(crate) async fn create(State(state): State<AppState>, form: AdminForm) -> Response {
    let params = &form.params;
    let result = match role_body(params) {
        Ok(fields) => roles::create(&state, &form.admin.principal, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(role) => redirect(&format!(
            "{}?notice=role_created",
            role_path(&role, "permissions")
        )),
        Err(error)
            if error.status == StatusCode::BAD_REQUEST || error.status == StatusCode::CONFLICT =>
        {
            views::form_again(&FormPage {
                frame: Frame::new(&state, &form.admin, "roles", None),
                role: None,
                tabs: Vec::new(),
                name: params.get("name").unwrap_or("").to_string(),
                description: params.get("description").unwrap_or("").to_string(),
                can_update: true,
                can_delete: false,
                error: Some(error.into()),
            })
        }
        Err(error) => views::operation_refused(&error),
    }
}

async fn load(state: &AppState, admin: &Admin, id: &str) -> Result<Role, Response> {
    roles::get(state, &admin.principal, id)
        .await
        .map_err(|error| views::operation_refused(&error))
}

fn tabs(role: &Role, current: &str) -> Vec<Tab> {
    views::tabs(
        &role_path(role, ""),
        &[
            ("", "Settings"),
            ("permissions", "Permissions"),
            ("users", "Users"),
        ],
        current,
    )
}

/// `GET /admin/roles/{id}`: Settings.
pub(crate) async fn settings(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let role = match load(&state, &admin, &id).await {
        Ok(role) => role,
        Err(response) => return response,
    };
    let query = query_of(query);
    views::page(&FormPage {
        frame: Frame::new(&state, &admin, "roles", notice_of(&query)),
        tabs: tabs(&role, ""),
        name: role.name.clone(),
        description: role.description.clone(),
        role: Some(role),
        can_update: admin.may("update:roles"),
        can_delete: admin.may("delete:roles"),
        error: None,
    })
}

/// `POST /admin/roles/{id}`.
pub(crate) async fn save_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let params = &form.params;
    let result = match role_body(params) {
        Ok(fields) => roles::update(&state, &form.admin.principal, &id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(role) => redirect(&format!("{}?notice=role_saved", role_path(&role, ""))),
        Err(error)
            if error.status == StatusCode::BAD_REQUEST || error.status == StatusCode::CONFLICT =>
        {
            let role = match load(&state, &form.admin, &id).await {
                Ok(role) => role,
                Err(response) => return response,
            };
            views::form_again(&FormPage {
                frame: Frame::new(&state, &form.admin, "roles", None),
                tabs: tabs(&role, ""),
                role: Some(role),
                name: params.get("name").unwrap_or("").to_string(),
                description: params.get("description").unwrap_or("").to_string(),
                can_update: true,
                can_delete: form.admin.may("delete:roles"),
                error: Some(error.into()),
            })
        }
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/roles/{id}/delete` (the role's name typed again; after a fresh login).
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let role = match load(&state, &form.admin, &id).await {
        Ok(role) => role,
        Err(response) => return response,
    };
    match Deletion::of(&form, &role_path(&role, ""), &role.name) {
        Deletion::Confirmed => {}
        Deletion::SignInAgain(response) => return response,
        Deletion::Mistyped => {
            return views::refused(
                StatusCode::BAD_REQUEST,
                "Type the role's name exactly to delete it.",
            );
        }
    }
    match roles::delete(&state, &form.admin.principal, &role.id).await {
        Ok(()) => redirect("/admin/roles?notice=role_deleted"),
        Err(error) => views::operation_refused(&error),
    }
}

/// An API whose permissions a picker offers (roles' and users' Permissions tabs).
pub(super) struct ApiChoice {
    pub(super) identifier: String,
    pub(super) name: String,
    pub(super) scopes: Vec<String>,
}

/// The APIs whose permissions may be given: the first 100 that define any.
pub(super) async fn api_choices(
    state: &AppState,
    admin: &Admin,
) -> Result<Vec<ApiChoice>, ApiError> {
    let page = resource_servers::list(state, &admin.principal, None, Slice::first(100)).await?;
    Ok(page
        .items
        .into_iter()
        .filter(|api| !api.scopes.is_empty())
        .map(|api| ApiChoice {
            scopes: api.scopes.iter().map(|s| s.value.clone()).collect(),
            identifier: api.identifier,
            name: api.name,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "admin/role_permissions.html")]
struct PermissionsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    role: Role,
    permissions: Vec<DescribedPermission>,
    paging: Paging,
    apis: Vec<ApiChoice>,
    can_change: bool,
}

/// `GET /admin/roles/{id}/permissions`.
pub(crate) async fn permissions(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let role = match load(&state, &admin, &id).await {
        Ok(role) => role,
        Err(response) => return response,
    };
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let page = match roles::permissions(&state, &admin.principal, &role.id, paging.slice()).await {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    let apis = match api_choices(&state, &admin).await {
        Ok(apis) => apis,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&PermissionsPage {
        frame: Frame::new(&state, &admin, "roles", notice_of(&query)),
        tabs: tabs(&role, "permissions"),
        role,
        paging: paging.with_total(page.total),
        permissions: page.items,
        apis,
        can_change: admin.may("update:roles"),
    })
}

/// `POST /admin/roles/{id}/permissions` (`permission` = `<audience> <scope>`, `remove` to
/// take it away).
pub(crate) async fn change_permission(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let Some((audience, scope)) = form
        .params
        .get("permission")
        .and_then(|p| p.rsplit_once(' '))
    else {
        return views::refused(StatusCode::BAD_REQUEST, "No permission was chosen.");
    };
    let body = Body::new()
        .value(
            "permissions",
            json!([{"resource_server_identifier": audience, "permission_name": scope}]),
        )
        .into_map();
    let result = match Fields::from_map(body, roles::PERMISSIONS_FIELDS) {
        Ok(fields) if form.params.get("remove").is_some() => {
            roles::remove_permissions(&state, &form.admin.principal, &id, fields).await
        }
        Ok(fields) => roles::add_permissions(&state, &form.admin.principal, &id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => redirect(&format!("/admin/roles/{id}/permissions?notice=role_saved")),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/role_users.html")]
struct UsersPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    role: Role,
    users: Vec<User>,
    paging: Paging,
    can_assign: bool,
    can_remove: bool,
    error: Option<String>,
}

async fn users_page(
    state: &AppState,
    admin: &Admin,
    role: Role,
    paging: Paging,
    notice: Option<&str>,
    error: Option<String>,
) -> Response {
    let page = match roles::users(state, &admin.principal, &role.id, paging.slice()).await {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    let page_of = UsersPage {
        frame: Frame::new(state, admin, "roles", notice),
        tabs: tabs(&role, "users"),
        role,
        paging: paging.with_total(page.total),
        users: page.items,
        can_assign: roles::ASSIGN_MEMBERS.iter().any(|s| admin.may(s)),
        can_remove: roles::REMOVE_MEMBERS.iter().any(|s| admin.may(s)),
        error,
    };
    if page_of.error.is_some() {
        views::form_again(&page_of)
    } else {
        views::page(&page_of)
    }
}

/// `GET /admin/roles/{id}/users`.
pub(crate) async fn role_users(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let role = match load(&state, &admin, &id).await {
        Ok(role) => role,
        Err(response) => return response,
    };
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    users_page(&state, &admin, role, paging, notice_of(&query), None).await
}

/// `POST /admin/roles/{id}/users`: assigns the user with this `email`, or (with
/// `user_id` and `remove`) takes the role from a user.
pub(crate) async fn change_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let role = match load(&state, admin, &id).await {
        Ok(role) => role,
        Err(response) => return response,
    };
    let result = if form.params.get("remove").is_some() {
        let user_id = form.params.get("user_id").unwrap_or("");
        let body = Body::new().value("roles", json!([role.id])).into_map();
        match Fields::from_map(body, user_access::ROLES_FIELDS) {
            Ok(fields) => {
                user_access::remove_roles(&state, &admin.principal, user_id, fields).await
            }
            Err(error) => Err(error),
        }
    } else {
        let email = form.params.get("email").unwrap_or("").trim();
        match users::by_email(&state, &admin.principal, email).await {
            // Every user with the address (one per connection) gets the role.
            Ok(users) if !users.is_empty() => {
                let ids = users.into_iter().map(|user| Value::String(user.user_id));
                let body = Body::new()
                    .value("users", Value::Array(ids.collect()))
                    .into_map();
                match Fields::from_map(body, roles::USERS_FIELDS) {
                    Ok(fields) => {
                        roles::assign_users(&state, &admin.principal, &role.id, fields).await
                    }
                    Err(error) => Err(error),
                }
            }
            Ok(_) => {
                let paging = Paging::first(PER_PAGE);
                return users_page(
                    &state,
                    admin,
                    role,
                    paging,
                    None,
                    Some("No user has that email address.".into()),
                )
                .await;
            }
            Err(error) => Err(error),
        }
    };
    match result {
        Ok(()) => redirect(&format!("{}?notice=role_saved", role_path(&role, "users"))),
        Err(error) => views::operation_refused(&error),
    }
}
