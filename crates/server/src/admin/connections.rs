//! Authentication → Connections: the list (by strategy), Create Connection, and a
//! connection's tabs — Settings, Applications — and its deletion; an application's
//! Connections tab too. Every change is an operation of `management::connections`
//! (which decides what a database connection lets change).
//!
//! Forms carry the common options as fields (client id, discovery URL, scopes) and the
//! rest as a JSON object; the client secret is a write-only password field, left
//! unchanged when empty, never rendered.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};
use tessera_core::Client;
use tessera_core::DATABASE_CONNECTION_ID;
use tessera_core::connection::Strategy;
use tessera_store::{ClientFilter, ConnectionFilter, ConnectionRecord, Slice};

use super::Deletion;
use super::form::{Body, FormError};
use super::session::{Admin, AdminForm};
use super::views::{self, Frame, Tab};
use super::{Paging, notice_of, query_of};
use crate::AppState;
use crate::databases::Database;
use crate::edge::params::Params;
use crate::management::connections::{self, OptionFields, options_with};
use crate::management::{ApiError, Fields, clients};
use crate::pages::redirect;

const PER_PAGE: u32 = 20;

/// The strategies the list filters by, with their labels.
const STRATEGIES: &[(&str, &str)] = &[
    ("auth0", "Database"),
    ("oidc", "OpenID Connect"),
    ("oauth2", "OAuth 2.0"),
    ("google-oauth2", "Google"),
    ("github", "GitHub"),
];

fn connection_path(id: &str, tab: &str) -> String {
    if tab.is_empty() {
        format!("/admin/connections/{id}")
    } else {
        format!("/admin/connections/{id}/{tab}")
    }
}

fn strategy_label(strategy: &str) -> &'static str {
    STRATEGIES
        .iter()
        .find(|(value, _)| *value == strategy)
        .map_or("Other", |(_, label)| label)
}

/// A known strategy named by a query or form, if any.
fn known_strategy(text: Option<&str>) -> Option<&'static str> {
    let text = text?;
    Strategy::ALL
        .iter()
        .map(|s| s.as_str())
        .find(|value| *value == text)
}

struct Row {
    connection: ConnectionRecord,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "admin/connections.html")]
struct ListPage<'a> {
    frame: Frame<'a>,
    rows: Vec<Row>,
    paging: Paging,
    strategies: &'static [(&'static str, &'static str)],
    /// The strategy shown, `""` for all.
    strategy: &'static str,
    can_create: bool,
}

/// `GET /admin/connections` (`?strategy=` keeps one strategy).
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let strategy = known_strategy(query.get("strategy")).unwrap_or("");
    let filter = ConnectionFilter {
        strategies: if strategy.is_empty() {
            Vec::new()
        } else {
            vec![strategy.to_string()]
        },
        name: None,
    };
    let page = match connections::list(&state, &admin.principal, &filter, paging.slice()).await {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&ListPage {
        frame: Frame::new(&state, &admin, "connections", notice_of(&query)),
        paging: paging.with_total(page.total),
        rows: page
            .items
            .into_iter()
            .map(|connection| Row {
                label: strategy_label(&connection.strategy),
                connection,
            })
            .collect(),
        strategies: STRATEGIES,
        strategy,
        can_create: admin.may("create:connections"),
    })
}

#[derive(Template)]
#[template(path = "admin/connection_new.html")]
struct NewPage<'a> {
    frame: Frame<'a>,
    /// The strategies that may be created (not the database's).
    strategies: &'static [(&'static str, &'static str)],
    name: String,
    display_name: String,
    strategy: String,
    client_id: String,
    discovery_url: String,
    scopes: String,
    options_json: String,
    show_as_button: bool,
    error: Option<FormError>,
}

impl NewPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

fn new_page<'a>(state: &'a AppState, admin: &'a Admin, params: &Params) -> NewPage<'a> {
    let text = |name: &str| params.get(name).unwrap_or("").to_string();
    NewPage {
        frame: Frame::new(state, admin, "connections", None),
        strategies: STRATEGIES,
        name: text("name"),
        display_name: text("display_name"),
        strategy: params.get("strategy").unwrap_or("oidc").to_string(),
        client_id: text("client_id"),
        discovery_url: text("discovery_url"),
        scopes: text("scopes"),
        options_json: params.get("options_json").unwrap_or("{}").to_string(),
        show_as_button: params.get("show_as_button").is_some() || params.get("csrf").is_none(),
        error: None,
    }
}

/// `GET /admin/connections/new` (`?strategy=` preselects one).
pub(crate) async fn new(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    views::page(&new_page(&state, &admin, &query))
}

/// The options JSON of a form: an object, or the API's type error about `options`.
fn options_of(params: &Params) -> Result<Map<String, Value>, ApiError> {
    let text = params.get("options_json").unwrap_or("").trim();
    if text.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(options)) => Ok(options),
        _ => Err(ApiError::invalid_property(
            "Expected a JSON object",
            "options",
        )),
    }
}

fn create_body(params: &Params) -> Result<Fields, ApiError> {
    let strategy = params.get("strategy").unwrap_or("").trim();
    let options = options_with(
        strategy,
        options_of(params)?,
        &OptionFields {
            client_id: params.get("client_id"),
            client_secret: params.get("client_secret"),
            discovery_url: params.get("discovery_url"),
            scopes: params.get("scopes"),
            ..OptionFields::default()
        },
    );
    let mut body = Body::new()
        .text(params, "name")
        .text(params, "strategy")
        .checkbox(params, "show_as_button")
        .value("options", Value::Object(options));
    if params
        .get("display_name")
        .is_some_and(|t| !t.trim().is_empty())
    {
        body = body.text(params, "display_name");
    }
    Fields::from_map(body.into_map(), connections::CREATE_FIELDS)
}

/// `POST /admin/connections`: Create Connection.
pub(crate) async fn create(State(state): State<AppState>, form: AdminForm) -> Response {
    let params = &form.params;
    let result = match create_body(params) {
        Ok(fields) => connections::create(&state, &form.admin.principal, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(connection) => redirect(&format!(
            "{}?notice=connection_created",
            connection_path(&connection.id, "applications")
        )),
        Err(error)
            if error.status == StatusCode::BAD_REQUEST || error.status == StatusCode::CONFLICT =>
        {
            let mut page = new_page(&state, &form.admin, params);
            page.error = Some(error.into());
            views::form_again(&page)
        }
        Err(error) => views::operation_refused(&error),
    }
}

async fn load(state: &AppState, admin: &Admin, id: &str) -> Result<ConnectionRecord, Response> {
    connections::get(state, &admin.principal, id)
        .await
        .map_err(|error| views::operation_refused(&error))
}

fn tabs(connection: &ConnectionRecord, current: &str) -> Vec<Tab> {
    views::tabs(
        &connection_path(&connection.id, ""),
        &[("", "Settings"), ("applications", "Applications")],
        current,
    )
}

#[derive(Template)]
#[template(path = "admin/connection_settings.html")]
struct SettingsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    connection: ConnectionRecord,
    label: &'static str,
    database: bool,
    has_secret: bool,
    display_name: String,
    options_json: String,
    show_as_button: bool,
    is_domain_connection: bool,
    can_update: bool,
    can_delete: bool,
    error: Option<FormError>,
    /// What to register at an upstream provider.
    at_the_provider: Option<crate::upstream_logout::AtTheProvider>,
}

impl SettingsPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

fn settings_page<'a>(
    state: &'a AppState,
    admin: &'a Admin,
    connection: ConnectionRecord,
    notice: Option<&str>,
) -> SettingsPage<'a> {
    let database = Database::of(&connection).is_some();
    // A database connection's options are what `/api/v2` shows (Tessera's policy).
    let options = connections::wire(&connection)["options"].clone();
    let at_the_provider = crate::upstream_logout::at_the_provider(state.issuer(), &connection);
    SettingsPage {
        at_the_provider,
        frame: Frame::new(state, admin, "connections", notice),
        tabs: tabs(&connection, ""),
        label: strategy_label(&connection.strategy),
        database,
        has_secret: connection.sealed_secret.is_some(),
        display_name: connection.display_name.clone(),
        options_json: serde_json::to_string_pretty(&options).unwrap_or_default(),
        show_as_button: connection.show_as_button,
        is_domain_connection: connection.is_domain_connection,
        can_update: admin.may("update:connections"),
        can_delete: connection.id != DATABASE_CONNECTION_ID && admin.may("delete:connections"),
        connection,
        error: None,
    }
}

/// `GET /admin/connections/{id}`: Settings.
pub(crate) async fn settings(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let connection = match load(&state, &admin, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let query = query_of(query);
    views::page(&settings_page(
        &state,
        &admin,
        connection,
        notice_of(&query),
    ))
}

fn settings_body(params: &Params, strategy: &str) -> Result<Fields, ApiError> {
    let options = options_with(
        strategy,
        options_of(params)?,
        &OptionFields {
            client_secret: params.get("client_secret"),
            ..OptionFields::default()
        },
    );
    let body = Body::new()
        .text(params, "display_name")
        .checkbox(params, "show_as_button")
        .checkbox(params, "is_domain_connection")
        .value("options", Value::Object(options))
        .into_map();
    Fields::from_map(body, connections::UPDATE_FIELDS)
}

/// `POST /admin/connections/{id}`: the settings; an empty secret field keeps the secret.
pub(crate) async fn save_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let connection = match load(&state, admin, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let params = &form.params;
    let result = match settings_body(params, &connection.strategy) {
        Ok(fields) => connections::update(&state, &admin.principal, &connection.id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(saved) => redirect(&format!(
            "{}?notice=connection_saved",
            connection_path(&saved.id, "")
        )),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            let mut page = settings_page(&state, admin, connection, None);
            page.display_name = params.get("display_name").unwrap_or("").to_string();
            page.options_json = params.get("options_json").unwrap_or("").to_string();
            page.show_as_button = params.get("show_as_button").is_some();
            page.is_domain_connection = params.get("is_domain_connection").is_some();
            page.error = Some(error.into());
            views::form_again(&page)
        }
        Err(error) => views::operation_refused(&error),
    }
}

struct AppRow {
    client: Client,
    enabled: bool,
}

#[derive(Template)]
#[template(path = "admin/connection_applications.html")]
struct ApplicationsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    connection: ConnectionRecord,
    label: &'static str,
    database: bool,
    rows: Vec<AppRow>,
    paging: Paging,
    can_change: bool,
}

/// `GET /admin/connections/{id}/applications`: every application, a page at a time,
/// with whether it may use the connection.
pub(crate) async fn applications(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let connection = match load(&state, &admin, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let page = match clients::list(
        &state,
        &admin.principal,
        &ClientFilter::default(),
        paging.slice(),
    )
    .await
    {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    let ids: Vec<String> = page.items.iter().map(|c| c.client_id.clone()).collect();
    let enabled =
        match connections::enabled_for(&state, &admin.principal, &connection.id, &ids).await {
            Ok(enabled) => enabled,
            Err(error) => return views::operation_refused(&error),
        };
    let database = Database::of(&connection).is_some();
    views::page(&ApplicationsPage {
        frame: Frame::new(&state, &admin, "connections", notice_of(&query)),
        tabs: tabs(&connection, "applications"),
        label: strategy_label(&connection.strategy),
        database,
        paging: paging.with_total(page.total),
        rows: page
            .items
            .into_iter()
            .zip(enabled)
            .map(|(client, enabled)| AppRow { client, enabled })
            .collect(),
        connection,
        can_change: admin.may("update:connections"),
    })
}

/// Whether a toggle form asks to enable (`status=enable`) or disable; anything else is
/// refused.
pub(super) fn wanted_status(params: &Params) -> Result<bool, ApiError> {
    match params.get("status") {
        Some("enable") => Ok(true),
        Some("disable") => Ok(false),
        _ => Err(ApiError::invalid_property(
            "Expected enable or disable",
            "status",
        )),
    }
}

/// `POST /admin/connections/{id}/applications` (`client_id`, `status`).
pub(crate) async fn change_application(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let connection = match load(&state, &form.admin, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    let client_id = form.params.get("client_id").unwrap_or("");
    let result = match wanted_status(&form.params) {
        Ok(enabled) => {
            connections::set_client(
                &state,
                &form.admin.principal,
                &connection.id,
                client_id,
                enabled,
            )
            .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => redirect(&format!(
            "{}?notice=connection_apps_saved",
            connection_path(&connection.id, "applications")
        )),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/connection_delete.html")]
struct DeletePage<'a> {
    frame: Frame<'a>,
    connection: ConnectionRecord,
    error: Option<String>,
}

/// `GET /admin/connections/{id}/delete`: the confirmation (after a fresh login).
pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let connection = match load(&state, &admin, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    if let Some(again) = super::sign_in_again(&admin, &connection_path(&connection.id, "delete")) {
        return again;
    }
    views::page(&DeletePage {
        frame: Frame::new(&state, &admin, "connections", None),
        connection,
        error: None,
    })
}

/// `POST /admin/connections/{id}/delete` (the name typed again); a connection that still
/// has users is refused on the same page.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let connection = match load(&state, admin, &id).await {
        Ok(connection) => connection,
        Err(response) => return response,
    };
    match Deletion::of(
        &form,
        &connection_path(&connection.id, "delete"),
        &connection.name,
    ) {
        Deletion::Confirmed => {}
        Deletion::SignInAgain(response) => return response,
        Deletion::Mistyped => {
            return views::form_again(&DeletePage {
                frame: Frame::new(&state, admin, "connections", None),
                connection,
                error: Some("Type the connection's name exactly to delete it.".into()),
            });
        }
    }
    match connections::delete(&state, &admin.principal, &connection.id).await {
        Ok(()) => redirect("/admin/connections?notice=connection_deleted"),
        // Still has users (409), or the database connection (400): said on the page.
        Err(error)
            if error.status == StatusCode::BAD_REQUEST || error.status == StatusCode::CONFLICT =>
        {
            crate::pages::html(
                error.status,
                &DeletePage {
                    frame: Frame::new(&state, admin, "connections", None),
                    connection,
                    error: Some(error.message),
                },
            )
        }
        Err(error) => views::operation_refused(&error),
    }
}

/// The connections an application's Connections tab lists: one page of them, each with
/// whether the application may use it.
pub(super) struct ClientConnection {
    pub(super) connection: ConnectionRecord,
    pub(super) label: &'static str,
    pub(super) enabled: bool,
}

pub(super) async fn of_client(
    state: &AppState,
    admin: &Admin,
    client_id: &str,
    slice: Slice,
) -> Result<(Vec<ClientConnection>, Option<u64>), ApiError> {
    let page =
        connections::list(state, &admin.principal, &ConnectionFilter::default(), slice).await?;
    let ids: Vec<String> = page.items.iter().map(|c| c.id.clone()).collect();
    let enabled: Vec<bool> = connections::of_client(state, &admin.principal, client_id)
        .await?
        .iter()
        .map(|c| c.id.clone())
        .fold(vec![false; ids.len()], |mut marks, on| {
            if let Some(i) = ids.iter().position(|id| *id == on) {
                marks[i] = true;
            }
            marks
        });
    let rows = page
        .items
        .into_iter()
        .zip(enabled)
        .map(|(connection, enabled)| ClientConnection {
            label: strategy_label(&connection.strategy),
            enabled,
            connection,
        })
        .collect();
    Ok((rows, page.total))
}
