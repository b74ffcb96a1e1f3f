//! User Management → Users: search (prefix of an email, a name or a user id, answered
//! from an index, paged in SQL), Create User, and a user's tabs — Details (profile,
//! metadata editors, block, brute-force blocks and lifting them, password, delete),
//! Roles, Permissions, Authorized Applications, Multi-factor (the second factors, and
//! resetting them), Sessions (in `user_sessions.rs`), Raw JSON. Every change is an
//! operation of `management::users`, `user_access`, `grants`, `guardian` or
//! `attack_protection`.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use tessera_core::connection::Strategy;
use tessera_core::consent::Consent;
use tessera_core::{Role, User};
use tessera_store::{ConnectionFilter, ConsentFilter, Slice};

use super::Deletion;
use super::form::{Body, FormError};
use super::roles::{ApiChoice, api_choices};
use super::session::{Admin, AdminForm};
use super::views::{self, Frame, Tab};
use super::{Paging, notice_of, query_of};
use crate::AppState;
use crate::management::roles::DescribedPermission;
use crate::management::{
    ApiError, Fields, attack_protection, connections, grants, guardian, roles, user_access,
    user_search, users, wire,
};
use crate::pages::redirect;

const PER_PAGE: u32 = 20;

pub(super) fn user_path(user: &User, tab: &str) -> String {
    let id =
        percent_encoding::utf8_percent_encode(&user.user_id, percent_encoding::NON_ALPHANUMERIC);
    if tab.is_empty() {
        format!("/admin/users/{id}")
    } else {
        format!("/admin/users/{id}/{tab}")
    }
}

/// What the search box searches.
const SEARCH_FIELDS: &[(&str, &str)] =
    &[("email", "Email"), ("name", "Name"), ("user_id", "User ID")];

/// The `q` of a prefix search on `field`: every character but letters and digits escaped,
/// so the term is a bare word whatever was typed.
fn prefix_query(field: &str, term: &str) -> String {
    let mut q = format!("{field}:");
    for c in term.chars() {
        if !c.is_alphanumeric() {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('*');
    q
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage<'a> {
    frame: Frame<'a>,
    users: Vec<User>,
    paging: Paging,
    term: String,
    field: String,
    fields: &'static [(&'static str, &'static str)],
    can_create: bool,
    error: Option<String>,
    /// The query string of the current search, for the pager's links.
    search_query: String,
}

/// `GET /admin/users?field=email&term=jo`.
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let term = query.get("term").unwrap_or("").trim().to_string();
    let field = query
        .get("field")
        .filter(|f| SEARCH_FIELDS.iter().any(|(name, _)| name == f))
        .unwrap_or("email")
        .to_string();
    let q = (!term.is_empty()).then(|| prefix_query(&field, &term));
    let search_query = form_urlencoded::Serializer::new(String::new())
        .append_pair("field", &field)
        .append_pair("term", &term)
        .finish();
    let result = match user_search::parse(q.as_deref(), None, None) {
        Ok(search) => {
            users::list(
                &state,
                &admin.principal,
                &search,
                paging.slice_looking_ahead(),
            )
            .await
        }
        Err(error) => Err(error),
    };
    let (mut users, error) = match result {
        Ok(page) => (page.items, None),
        Err(error) if error.status == StatusCode::BAD_REQUEST => (Vec::new(), Some(error.message)),
        Err(error) => return views::operation_refused(&error),
    };
    let paging = paging.looked_ahead(&mut users);
    views::page(&ListPage {
        frame: Frame::new(&state, &admin, "users", notice_of(&query)),
        users,
        paging,
        term,
        field,
        fields: SEARCH_FIELDS,
        can_create: admin.may("create:users"),
        error,
        search_query,
    })
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewPage<'a> {
    frame: Frame<'a>,
    email: &'a str,
    /// The database connections a user may be created in, and the one chosen.
    databases: Vec<String>,
    connection: &'a str,
    error: Option<FormError>,
}

impl NewPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

/// The names of the database connections (the first page: a tenant has few).
async fn database_names(state: &AppState, admin: &Admin) -> Result<Vec<String>, Response> {
    let filter = ConnectionFilter {
        strategies: vec![Strategy::Database.as_str().to_string()],
        name: None,
    };
    match connections::list(state, &admin.principal, &filter, Slice::first(50)).await {
        Ok(page) => Ok(page.items.into_iter().map(|c| c.name).collect()),
        Err(error) => Err(views::operation_refused(&error)),
    }
}

/// `GET /admin/users/new`.
pub(crate) async fn new(State(state): State<AppState>, admin: Admin) -> Response {
    let databases = match database_names(&state, &admin).await {
        Ok(names) => names,
        Err(response) => return response,
    };
    views::page(&NewPage {
        frame: Frame::new(&state, &admin, "users", None),
        email: "",
        databases,
        connection: tessera_core::DATABASE_CONNECTION,
        error: None,
    })
}

/// `POST /admin/users`: Create User in the database connection chosen.
pub(crate) async fn create(State(state): State<AppState>, form: AdminForm) -> Response {
    let params = &form.params;
    let connection = params
        .get("connection")
        .unwrap_or(tessera_core::DATABASE_CONNECTION);
    let body = Body::new()
        .value("connection", Value::String(connection.to_string()))
        .text(params, "email")
        .value(
            "password",
            Value::String(params.get("password").unwrap_or("").to_string()),
        )
        .into_map();
    let result = match Fields::from_map(body, users::CREATE_FIELDS) {
        Ok(fields) => users::create(&state, &form.admin.principal, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(user) => redirect(&format!("{}?notice=user_created", user_path(&user, ""))),
        Err(error) if error.status.is_client_error() && error.status != StatusCode::FORBIDDEN => {
            let databases = match database_names(&state, &form.admin).await {
                Ok(names) => names,
                Err(response) => return response,
            };
            views::form_again(&NewPage {
                frame: Frame::new(&state, &form.admin, "users", None),
                email: params.get("email").unwrap_or(""),
                databases,
                connection,
                error: Some(error.into()),
            })
        }
        Err(error) => views::operation_refused(&error),
    }
}

pub(super) async fn load(state: &AppState, admin: &Admin, id: &str) -> Result<User, Response> {
    users::get(state, &admin.principal, id)
        .await
        .map_err(|error| views::operation_refused(&error))
}

pub(super) fn tabs(user: &User, current: &str) -> Vec<Tab> {
    views::tabs(
        &user_path(user, ""),
        &[
            ("", "Details"),
            ("roles", "Roles"),
            ("permissions", "Permissions"),
            ("authorized-applications", "Authorized Applications"),
            ("mfa", "Multi-factor"),
            ("sessions", "Sessions"),
            ("json", "Raw JSON"),
        ],
        current,
    )
}

fn pretty(map: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(map).unwrap_or_else(|_| "{}".into())
}

fn when(seconds: Option<i64>) -> String {
    seconds.map_or_else(|| "never".into(), tessera_core::claims::rfc3339)
}

#[derive(Template)]
#[template(path = "admin/user_details.html")]
struct DetailsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    user: User,
    /// The identities linked to the user (account linking).
    linked: Vec<tessera_store::LinkedIdentity>,
    created: String,
    last_login: String,
    name: String,
    nickname: String,
    user_metadata: String,
    app_metadata: String,
    can_update: bool,
    can_delete: bool,
    /// Where brute-force protection locked the account out: a network's address, or
    /// "every network" for a count per account.
    brute_force_blocks: Vec<String>,
    can_lift_blocks: bool,
    error: Option<FormError>,
}

impl DetailsPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

async fn details_page<'a>(
    state: &'a AppState,
    admin: &'a Admin,
    user: User,
    notice: Option<&str>,
) -> Result<DetailsPage<'a>, Response> {
    let linked = crate::management::users::linked_of(state, std::slice::from_ref(&user))
        .await
        .map_err(|error| views::operation_refused(&error))?;
    // Every count at the threshold, in force or not: an administrator lifting a block
    // before turning the protection back on needs to see it.
    let blocks = attack_protection::blocks_of_user(state, &admin.principal, &user.user_id, false)
        .await
        .map_err(|error| views::operation_refused(&error))?;
    let brute_force_blocks = blocks["blocked_for"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .map(|block| block["ip"].as_str().unwrap_or("every network").to_string())
                .collect()
        })
        .unwrap_or_default();
    Ok(DetailsPage {
        frame: Frame::new(state, admin, "users", notice),
        tabs: tabs(&user, ""),
        created: when(Some(user.created_at)),
        last_login: when(user.last_login),
        name: user.name.clone(),
        nickname: user.nickname.clone(),
        user_metadata: pretty(&user.user_metadata),
        app_metadata: pretty(&user.app_metadata),
        can_update: admin.may("update:users"),
        can_delete: admin.may("delete:users"),
        brute_force_blocks,
        can_lift_blocks: attack_protection::LIFT_BLOCKS.iter().all(|s| admin.may(s)),
        user,
        linked,
        error: None,
    })
}

/// `GET /admin/users/{id}`: Details.
pub(crate) async fn details(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = match load(&state, &admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let query = query_of(query);
    match details_page(&state, &admin, user, notice_of(&query)).await {
        Ok(page) => views::page(&page),
        Err(response) => response,
    }
}

/// `POST /admin/users/{id}/identities/unlink` (`identity` = `provider|id`): the identity
/// becomes a user of its own again.
pub(crate) async fn unlink(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let identity = form.params.get("identity").unwrap_or("");
    let Some((provider, identity_id)) = identity.split_once('|') else {
        return views::refused(StatusCode::BAD_REQUEST, "No linked identity was chosen.");
    };
    match crate::management::identities::unlink(
        &state,
        &form.admin.principal,
        &id,
        provider,
        identity_id,
    )
    .await
    {
        Ok(linked) => redirect(&format!(
            "{}?notice=user_saved",
            user_path(&linked.user, "")
        )),
        Err(error) => views::operation_refused(&error),
    }
}

/// A metadata editor's text as the PATCH that makes the stored object equal to it: its
/// members, and `null` for each stored member it no longer has (Auth0 merges at the
/// first level). An empty object clears it.
fn metadata_patch(text: &str, stored: &Map<String, Value>, field: &str) -> Result<Value, ApiError> {
    let edited: Value = serde_json::from_str(if text.trim().is_empty() { "{}" } else { text })
        .map_err(|error| ApiError::invalid_property(format!("Invalid JSON: {error}"), field))?;
    let Value::Object(mut edited) = edited else {
        return Err(ApiError::invalid_property(
            "Expected type object but found another type",
            field,
        ));
    };
    if edited.is_empty() {
        return Ok(Value::Object(edited));
    }
    for key in stored.keys() {
        if !edited.contains_key(key) {
            edited.insert(key.clone(), Value::Null);
        }
    }
    Ok(Value::Object(edited))
}

/// `POST /admin/users/{id}`: saves the profile and metadata.
pub(crate) async fn save_details(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let params = &form.params;
    let user = match load(&state, &form.admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let body = (|| -> Result<Fields, ApiError> {
        let user_metadata = metadata_patch(
            params.get("user_metadata").unwrap_or(""),
            &user.user_metadata,
            "user_metadata",
        )?;
        let app_metadata = metadata_patch(
            params.get("app_metadata").unwrap_or(""),
            &user.app_metadata,
            "app_metadata",
        )?;
        let body = Body::new()
            .text(params, "name")
            .text(params, "nickname")
            .value("user_metadata", user_metadata)
            .value("app_metadata", app_metadata)
            .into_map();
        Fields::from_map(body, users::UPDATE_FIELDS)
    })();
    let result = match body {
        Ok(fields) => users::update(&state, &form.admin.principal, &user.user_id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(user) => redirect(&format!("{}?notice=user_saved", user_path(&user, ""))),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            let mut page = match details_page(&state, &form.admin, user, None).await {
                Ok(page) => page,
                Err(response) => return response,
            };
            let text = |name: &str| params.get(name).unwrap_or("").to_string();
            page.name = text("name");
            page.nickname = text("nickname");
            page.user_metadata = text("user_metadata");
            page.app_metadata = text("app_metadata");
            page.error = Some(error.into());
            views::form_again(&page)
        }
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/users/{id}/block` (`blocked=true|false`).
pub(crate) async fn block(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let blocked = form.params.get("blocked") == Some("true");
    let body = Body::new()
        .value("blocked", Value::Bool(blocked))
        .into_map();
    let result = match Fields::from_map(body, users::UPDATE_FIELDS) {
        Ok(fields) => users::update(&state, &form.admin.principal, &id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(user) => redirect(&format!("{}?notice=user_saved", user_path(&user, ""))),
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/users/{id}/brute-force/lift`: forgets the failed password attempts that
/// locked the user out (`DELETE /api/v2/user-blocks/{id}`); the `blocked` flag stays.
pub(crate) async fn lift_brute_force_blocks(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    match attack_protection::lift_of_user(&state, &form.admin.principal, &id).await {
        Ok(user) => redirect(&format!("{}?notice=blocks_lifted", user_path(&user, ""))),
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/users/{id}/password`: sets a new password (the password policy's
/// refusal is shown on the form).
pub(crate) async fn set_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let user = match load(&state, &form.admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let body = Body::new()
        .value(
            "password",
            Value::String(form.params.get("password").unwrap_or("").to_string()),
        )
        .value("connection", Value::String(user.connection.clone()))
        .into_map();
    let result = match Fields::from_map(body, users::UPDATE_FIELDS) {
        Ok(fields) => users::update(&state, &form.admin.principal, &user.user_id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(user) => redirect(&format!("{}?notice=user_saved", user_path(&user, ""))),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            let mut page = match details_page(&state, &form.admin, user, None).await {
                Ok(page) => page,
                Err(response) => return response,
            };
            let error = if error.property.is_none() {
                error.about("password")
            } else {
                error
            };
            page.error = Some(error.into());
            views::form_again(&page)
        }
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/user_delete.html")]
struct DeletePage<'a> {
    frame: Frame<'a>,
    user: User,
    error: Option<&'a str>,
}

/// `GET /admin/users/{id}/delete`: the confirmation (the email typed again), after a
/// fresh login.
pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let user = match load(&state, &admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    if let Some(again) = super::sign_in_again(&admin, &user_path(&user, "delete")) {
        return again;
    }
    views::page(&DeletePage {
        frame: Frame::new(&state, &admin, "users", None),
        user,
        error: None,
    })
}

/// `POST /admin/users/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let user = match load(&state, admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    // A user without an email (an upstream's) is confirmed by their id, which the page
    // shows in its place.
    match Deletion::of(&form, &user_path(&user, "delete"), user.email_or_id()) {
        Deletion::Confirmed => {}
        Deletion::SignInAgain(response) => return response,
        Deletion::Mistyped => {
            let error = if user.email.is_some() {
                "Type the user's email address exactly to delete them."
            } else {
                "Type the user's id exactly to delete them."
            };
            return views::form_again(&DeletePage {
                frame: Frame::new(&state, admin, "users", None),
                user,
                error: Some(error),
            });
        }
    }
    match users::delete(&state, &admin.principal, &user.user_id).await {
        Ok(()) => redirect("/admin/users?notice=user_deleted"),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/user_roles.html")]
struct RolesPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    user: User,
    roles: Vec<Role>,
    paging: Paging,
    /// Roles to pick from (the first page of all roles).
    choices: Vec<Role>,
    can_change: bool,
}

/// `GET /admin/users/{id}/roles`.
pub(crate) async fn user_roles(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = match load(&state, &admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let page =
        match user_access::roles(&state, &admin.principal, &user.user_id, paging.slice()).await {
            Ok(page) => page,
            Err(error) => return views::operation_refused(&error),
        };
    let choices = match roles::list(&state, &admin.principal, None, Slice::first(100)).await {
        Ok(page) => page.items,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&RolesPage {
        frame: Frame::new(&state, &admin, "users", notice_of(&query)),
        tabs: tabs(&user, "roles"),
        user,
        paging: paging.with_total(page.total),
        roles: page.items,
        choices,
        can_change: admin.may("update:roles")
            || (admin.may("create:role_members") && admin.may("delete:role_members")),
    })
}

/// `POST /admin/users/{id}/roles` (`role`, and `remove` to take it away).
pub(crate) async fn change_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let Some(role) = form.params.get("role") else {
        return views::refused(StatusCode::BAD_REQUEST, "No role was chosen.");
    };
    let body = Body::new().value("roles", json!([role])).into_map();
    let result = match Fields::from_map(body, user_access::ROLES_FIELDS) {
        Ok(fields) if form.params.get("remove").is_some() => {
            user_access::remove_roles(&state, &form.admin.principal, &id, fields).await
        }
        Ok(fields) => user_access::assign_roles(&state, &form.admin.principal, &id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => redirect(&format!(
            "/admin/users/{}/roles?notice=user_saved",
            percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
        )),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/user_permissions.html")]
struct PermissionsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    user: User,
    permissions: Vec<DescribedPermission>,
    paging: Paging,
    apis: Vec<ApiChoice>,
    can_change: bool,
}

/// `GET /admin/users/{id}/permissions`: permissions given to the user directly.
pub(crate) async fn user_permissions(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = match load(&state, &admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let page =
        match user_access::permissions(&state, &admin.principal, &user.user_id, paging.slice())
            .await
        {
            Ok(page) => page,
            Err(error) => return views::operation_refused(&error),
        };
    let apis = match api_choices(&state, &admin).await {
        Ok(apis) => apis,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&PermissionsPage {
        frame: Frame::new(&state, &admin, "users", notice_of(&query)),
        tabs: tabs(&user, "permissions"),
        user,
        paging: paging.with_total(page.total),
        permissions: page.items,
        apis,
        can_change: admin.may("update:users"),
    })
}

/// `POST /admin/users/{id}/permissions` (`permission` = `<audience> <scope>`, and
/// `remove` to take it away).
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
    let result = match Fields::from_map(body, user_access::PERMISSIONS_FIELDS) {
        Ok(fields) if form.params.get("remove").is_some() => {
            user_access::remove_permissions(&state, &form.admin.principal, &id, fields).await
        }
        Ok(fields) => {
            user_access::add_permissions(&state, &form.admin.principal, &id, fields).await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => redirect(&format!(
            "/admin/users/{}/permissions?notice=user_saved",
            percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
        )),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/user_authorized.html")]
struct AuthorizedPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    user: User,
    consents: Vec<Consent>,
    paging: Paging,
    can_revoke: bool,
}

/// `GET /admin/users/{id}/authorized-applications`: the user's consents.
pub(crate) async fn authorized(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = match load(&state, &admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let filter = ConsentFilter {
        user_id: Some(&user.user_id),
        ..ConsentFilter::default()
    };
    let page = match grants::list(&state, &admin.principal, filter, paging.slice()).await {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&AuthorizedPage {
        frame: Frame::new(&state, &admin, "users", notice_of(&query)),
        tabs: tabs(&user, "authorized-applications"),
        user,
        paging: paging.with_total(page.total),
        consents: page.items,
        can_revoke: admin.may("delete:grants"),
    })
}

/// `POST /admin/users/{id}/authorized-applications` (`grant`): revokes one consent and
/// what its application holds for the user.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let Some(grant) = form.params.get("grant") else {
        return views::refused(StatusCode::BAD_REQUEST, "No application was chosen.");
    };
    match grants::delete(&state, &form.admin.principal, grant).await {
        Ok(()) => redirect(&format!(
            "/admin/users/{}/authorized-applications?notice=user_saved",
            percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
        )),
        Err(error) => views::operation_refused(&error),
    }
}

/// A second factor as the Multi-factor tab lists it.
struct Factor {
    kind: String,
    name: String,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/user_mfa.html")]
struct FactorsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    user: User,
    factors: Vec<Factor>,
    can_reset: bool,
}

/// `GET /admin/users/{id}/mfa`: the user's second factors, as the Management API's
/// `authentication-methods` lists them (a user has a handful at most).
pub(crate) async fn factors(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = match load(&state, &admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let methods = match guardian::methods(&state, &admin.principal, &user.user_id).await {
        Ok(methods) => methods,
        Err(error) => return views::operation_refused(&error),
    };
    let text = |method: &Value, name: &str| method[name].as_str().unwrap_or("").to_string();
    let factors = methods
        .iter()
        .map(|method| Factor {
            kind: text(method, "type"),
            name: text(method, "name"),
            created: text(method, "created_at"),
        })
        .collect();
    let query = query_of(query);
    views::page(&FactorsPage {
        frame: Frame::new(&state, &admin, "users", notice_of(&query)),
        tabs: tabs(&user, "mfa"),
        user,
        factors,
        can_reset: admin.may(guardian::DELETE_ENROLLMENTS[0]),
    })
}

#[derive(Template)]
#[template(path = "admin/user_mfa_reset.html")]
struct ResetFactorsPage<'a> {
    frame: Frame<'a>,
    user: User,
    error: Option<&'a str>,
}

/// `GET /admin/users/{id}/mfa/reset`: the confirmation (the email typed again), after a
/// fresh login, as deleting the user asks: whoever resets a user's second factors can
/// enroll their own at that user's next login.
pub(crate) async fn confirm_reset_factors(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let user = match load(&state, &admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    if let Some(again) = super::sign_in_again(&admin, &user_path(&user, "mfa/reset")) {
        return again;
    }
    views::page(&ResetFactorsPage {
        frame: Frame::new(&state, &admin, "users", None),
        user,
        error: None,
    })
}

/// `POST /admin/users/{id}/mfa/reset`: every second factor of the user goes
/// (`DELETE /api/v2/users/{id}/authenticators`).
pub(crate) async fn reset_factors(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let user = match load(&state, admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    if let Some(again) = super::sign_in_again(admin, &user_path(&user, "mfa/reset")) {
        return again;
    }
    if form.params.get("confirm") != Some(user.email_or_id()) {
        let error = if user.email.is_some() {
            "Type the user's email address exactly to reset their second factors."
        } else {
            "Type the user's id exactly to reset their second factors."
        };
        return views::form_again(&ResetFactorsPage {
            frame: Frame::new(&state, admin, "users", None),
            user,
            error: Some(error),
        });
    }
    let scopes = guardian::DELETE_ENROLLMENTS;
    match guardian::reset(&state, &admin.principal, &user.user_id, scopes).await {
        Ok(()) => redirect(&format!("{}?notice=factors_reset", user_path(&user, "mfa"))),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/user_json.html")]
struct JsonPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    user: User,
    json: String,
}

/// `GET /admin/users/{id}/json`: the user as `GET /api/v2/users/{id}` shows them.
pub(crate) async fn raw_json(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let user = match load(&state, &admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let linked =
        match crate::management::users::linked_of(&state, std::slice::from_ref(&user)).await {
            Ok(linked) => linked,
            Err(error) => return views::operation_refused(&error),
        };
    let json = serde_json::to_string_pretty(&wire::user(&user, &linked)).unwrap_or_default();
    views::page(&JsonPage {
        frame: Frame::new(&state, &admin, "users", None),
        tabs: tabs(&user, "json"),
        user,
        json,
    })
}
