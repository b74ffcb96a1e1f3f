//! Applications → Applications: the list, Create Application (name and type), and an
//! application's tabs — Settings (client id and secret, URLs, grant types, refresh
//! tokens, first or third party), APIs (machine-to-machine authorizations) and
//! Connections (which ones its users may sign in with); Credentials is `credentials.rs`. Every change is an operation of
//! `management::clients`, `management::client_grants` or `management::connections`.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use tessera_core::{AppType, Client, ClientGrant, ResourceServer};
use tessera_store::{ClientFilter, ClientGrantFilter, Slice};

use super::Deletion;
use super::form::{Body, FormError};
use super::session::{Admin, AdminForm};
use super::views::{self, Frame, Tab};
use super::{Paging, notice_of, query_of};
use crate::AppState;
use crate::edge::params::Params;
use crate::management::{ApiError, Fields, client_grants, clients, resource_servers};
use crate::pages::redirect;

const PER_PAGE: u32 = 20;

pub(super) fn app_path(client: &Client, tab: &str) -> String {
    let id = percent_encoding::utf8_percent_encode(
        &client.client_id,
        percent_encoding::NON_ALPHANUMERIC,
    );
    if tab.is_empty() {
        format!("/admin/applications/{id}")
    } else {
        format!("/admin/applications/{id}/{tab}")
    }
}

/// The application types, as the Create Application page offers them.
const TYPES: &[(AppType, &str, &str)] = &[
    (
        AppType::Spa,
        "Single Page Web Applications",
        "A JavaScript front-end app that runs in a browser (React, Vue, Angular).",
    ),
    (
        AppType::RegularWeb,
        "Regular Web Applications",
        "A traditional web app that runs on a server and keeps a secret (Express, ASP.NET, Django).",
    ),
    (
        AppType::Native,
        "Native",
        "A mobile or desktop app that runs on a device (iOS, Android, Electron).",
    ),
    (
        AppType::NonInteractive,
        "Machine to Machine Applications",
        "A CLI, daemon or backend service that calls APIs as itself.",
    ),
];

pub(super) fn type_label(app_type: AppType) -> &'static str {
    TYPES
        .iter()
        .find(|(t, _, _)| *t == app_type)
        .map_or("", |(_, label, _)| label)
}

/// The grant types an administrator may pick, with Auth0's labels.
const GRANT_TYPES: &[(&str, &str)] = &[
    ("authorization_code", "Authorization Code"),
    ("implicit", "Implicit"),
    ("refresh_token", "Refresh Token"),
    ("client_credentials", "Client Credentials"),
    (tessera_core::PASSWORD_GRANT, "Password"),
    (tessera_core::PASSWORD_REALM_GRANT, "Password Realm"),
    (tessera_core::DEVICE_CODE_GRANT, "Device Code"),
    (tessera_core::MFA_OTP_GRANT, "MFA (one-time password)"),
    (tessera_core::MFA_RECOVERY_CODE_GRANT, "MFA (recovery code)"),
];

struct Row {
    client: Client,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "admin/applications.html")]
struct ListPage<'a> {
    frame: Frame<'a>,
    rows: Vec<Row>,
    paging: Paging,
    can_create: bool,
}

/// `GET /admin/applications`.
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
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
    views::page(&ListPage {
        frame: Frame::new(&state, &admin, "applications", notice_of(&query)),
        paging: paging.with_total(page.total),
        rows: page
            .items
            .into_iter()
            .map(|client| Row {
                label: type_label(client.app_type),
                client,
            })
            .collect(),
        can_create: admin.may("create:clients"),
    })
}

struct TypeChoice {
    value: &'static str,
    label: &'static str,
    detail: &'static str,
}

#[derive(Template)]
#[template(path = "admin/application_new.html")]
struct NewPage<'a> {
    frame: Frame<'a>,
    name: &'a str,
    app_type: &'a str,
    types: Vec<TypeChoice>,
    error: Option<FormError>,
}

impl NewPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

fn type_choices() -> Vec<TypeChoice> {
    TYPES
        .iter()
        .map(|(t, label, detail)| TypeChoice {
            value: t.as_str(),
            label,
            detail,
        })
        .collect()
}

/// `GET /admin/applications/new`.
pub(crate) async fn new(State(state): State<AppState>, admin: Admin) -> Response {
    views::page(&NewPage {
        frame: Frame::new(&state, &admin, "applications", None),
        name: "",
        app_type: "spa",
        types: type_choices(),
        error: None,
    })
}

#[derive(Template)]
#[template(path = "admin/application_secret.html")]
struct SecretPage<'a> {
    frame: Frame<'a>,
    client: Client,
    secret: Option<String>,
    created: bool,
    settings: String,
}

/// `POST /admin/applications`: Create Application. A secret is shown once, here.
pub(crate) async fn create(State(state): State<AppState>, form: AdminForm) -> Response {
    let params = &form.params;
    let body = Body::new()
        .text(params, "name")
        .text(params, "app_type")
        .into_map();
    let result = match Fields::from_map(body, clients::FIELDS) {
        Ok(fields) => clients::create(&state, &form.admin.principal, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(created) => views::page(&SecretPage {
            frame: Frame::new(&state, &form.admin, "applications", Some("app_created")),
            settings: app_path(&created.client, ""),
            client: created.client,
            secret: created.secret,
            created: true,
        }),
        Err(error) if error.status == StatusCode::BAD_REQUEST => views::form_again(&NewPage {
            frame: Frame::new(&state, &form.admin, "applications", None),
            name: params.get("name").unwrap_or(""),
            app_type: params.get("app_type").unwrap_or(""),
            types: type_choices(),
            error: Some(error.into()),
        }),
        Err(error) => views::operation_refused(&error),
    }
}

pub(super) async fn load(state: &AppState, admin: &Admin, id: &str) -> Result<Client, Response> {
    clients::get(state, &admin.principal, id)
        .await
        .map_err(|error| views::operation_refused(&error))
}

pub(super) fn tabs(client: &Client, current: &str) -> Vec<Tab> {
    views::tabs(
        &app_path(client, ""),
        &[
            ("", "Settings"),
            ("credentials", "Credentials"),
            ("apis", "APIs"),
            ("connections", "Connections"),
        ],
        current,
    )
}

struct GrantChoice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "admin/application_settings.html")]
struct SettingsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    client: Client,
    type_label: &'static str,
    domain: String,
    name: String,
    description: String,
    callbacks: String,
    logout_urls: String,
    web_origins: String,
    allowed_origins: String,
    grant_types: Vec<GrantChoice>,
    is_first_party: bool,
    require_par: bool,
    backchannel_url: String,
    backchannel_all: bool,
    initiators: Vec<GrantChoice>,
    /// Logout tokens carry the ended session's metadata.
    backchannel_metadata: bool,
    token_lifetime: String,
    idle_token_lifetime: String,
    leeway: String,
    can_update: bool,
    can_rotate: bool,
    can_delete: bool,
    error: Option<FormError>,
}

impl SettingsPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

fn settings_page<'a>(
    state: &'a AppState,
    admin: &'a Admin,
    client: Client,
    notice: Option<&str>,
) -> SettingsPage<'a> {
    SettingsPage {
        frame: Frame::new(state, admin, "applications", notice),
        tabs: tabs(&client, ""),
        type_label: type_label(client.app_type),
        domain: views::domain(state.issuer()),
        name: client.name.clone(),
        description: client.profile.description.clone().unwrap_or_default(),
        callbacks: client.callbacks.join("\n"),
        logout_urls: client.allowed_logout_urls.join("\n"),
        web_origins: client.web_origins.join("\n"),
        allowed_origins: client.profile.allowed_origins.join("\n"),
        grant_types: GRANT_TYPES
            .iter()
            .map(|(value, label)| GrantChoice {
                value,
                label,
                checked: client.grant_types.iter().any(|g| g == value),
            })
            .collect(),
        is_first_party: client.is_first_party,
        require_par: client.require_pushed_authorization_requests,
        backchannel_url: client
            .oidc_logout
            .as_ref()
            .and_then(|l| l.url())
            .unwrap_or_default()
            .to_string(),
        backchannel_all: client.oidc_logout.as_ref().is_some_and(|l| {
            l.backchannel_logout_initiators.mode == tessera_core::InitiatorMode::All
        }),
        backchannel_metadata: client
            .oidc_logout
            .as_ref()
            .is_some_and(|l| l.includes_session_metadata()),
        initiators: initiator_choices(|name| {
            client.oidc_logout.as_ref().map_or_else(
                || {
                    tessera_core::LogoutInitiators::default()
                        .selected_initiators
                        .iter()
                        .any(|s| s == name)
                },
                |l| {
                    l.backchannel_logout_initiators
                        .selected_initiators
                        .iter()
                        .any(|s| s == name)
                },
            )
        }),
        token_lifetime: client.refresh.token_lifetime.to_string(),
        idle_token_lifetime: client.refresh.idle_token_lifetime.to_string(),
        leeway: client.refresh.reuse_interval.to_string(),
        can_update: admin.may("update:clients"),
        can_rotate: admin.may("update:client_keys") && !client.is_public(),
        can_delete: admin.may("delete:clients"),
        client,
        error: None,
    }
}

/// `GET /admin/applications/{id}`: Settings.
pub(crate) async fn settings(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let client = match load(&state, &admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let query = query_of(query);
    views::page(&settings_page(&state, &admin, client, notice_of(&query)))
}

/// Auth0's logout initiators as the Settings tab offers them (`rp-logout` always on).
const INITIATOR_LABELS: [(&str, &str); 9] = [
    ("rp-logout", "The user logs out (always)"),
    ("idp-logout", "The identity provider logs the user out"),
    ("password-changed", "The password is changed"),
    ("session-expired", "The session expires"),
    ("session-revoked", "An administrator ends the session"),
    ("account-deleted", "The user is deleted"),
    ("email-identifier-changed", "The email address is changed"),
    ("mfa-phone-unenrolled", "A phone factor is removed"),
    ("account-deactivated", "The user is blocked"),
];

fn initiator_choices(checked: impl Fn(&str) -> bool) -> Vec<GrantChoice> {
    INITIATOR_LABELS
        .iter()
        .map(|(value, label)| GrantChoice {
            value,
            label,
            checked: *value == tessera_core::RP_LOGOUT || checked(value),
        })
        .collect()
}

/// The Back-Channel Logout fieldset as Auth0's `oidc_logout`: `null` without a URL.
fn oidc_logout_body(params: &Params) -> Value {
    let url = params.get("backchannel_logout_url").unwrap_or("").trim();
    if url.is_empty() {
        return Value::Null;
    }
    let initiators = if params.get("backchannel_logout_mode") == Some("all") {
        json!({ "mode": "all" })
    } else {
        // In Auth0's order, whatever order the form sent them in.
        let selected: Vec<Value> = INITIATOR_LABELS
            .iter()
            .filter(|(name, _)| {
                *name == tessera_core::RP_LOGOUT
                    || params.get(&format!("initiator:{name}")).is_some()
            })
            .map(|(name, _)| Value::String((*name).to_string()))
            .collect();
        json!({ "mode": "custom", "selected_initiators": selected })
    };
    let metadata = params.get("backchannel_logout_session_metadata").is_some();
    json!({
        "backchannel_logout_urls": [url],
        "backchannel_logout_initiators": initiators,
        "backchannel_logout_session_metadata": { "include": metadata },
    })
}

fn settings_body(params: &Params) -> Result<Fields, ApiError> {
    let grant_types: Vec<Value> = params
        .names_after("grant:")
        .into_iter()
        .map(|g| Value::String(g.to_string()))
        .collect();
    let number = |name: &str| -> Result<i64, ApiError> {
        params.get(name).unwrap_or("").trim().parse().map_err(|_| {
            ApiError::invalid_property("Expected type integer but found type string", name)
                .about("refresh_token")
        })
    };
    let refresh = json!({
        "rotation_type": "rotating",
        "expiration_type": "expiring",
        "token_lifetime": number("token_lifetime")?,
        "idle_token_lifetime": number("idle_token_lifetime")?,
        "leeway": number("leeway")?,
    });
    let body = Body::new()
        .text(params, "name")
        .text(params, "description")
        .lines(params, "callbacks")
        .lines(params, "allowed_logout_urls")
        .lines(params, "web_origins")
        .lines(params, "allowed_origins")
        .value("grant_types", Value::Array(grant_types))
        .checkbox(params, "is_first_party")
        .checkbox(params, "require_pushed_authorization_requests")
        .value("oidc_logout", oidc_logout_body(params))
        .value("refresh_token", refresh)
        .into_map();
    Fields::from_map(body, clients::FIELDS)
}

/// `POST /admin/applications/{id}`: saves Settings.
pub(crate) async fn save_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let params = &form.params;
    let result = match settings_body(params) {
        Ok(fields) => clients::update(&state, &form.admin.principal, &id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(client) => redirect(&format!("{}?notice=app_saved", app_path(&client, ""))),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            let client = match load(&state, &form.admin, &id).await {
                Ok(client) => client,
                Err(response) => return response,
            };
            let mut page = settings_page(&state, &form.admin, client, None);
            let text = |name: &str| params.get(name).unwrap_or("").to_string();
            page.name = text("name");
            page.description = text("description");
            page.callbacks = text("callbacks");
            page.logout_urls = text("allowed_logout_urls");
            page.web_origins = text("web_origins");
            page.allowed_origins = text("allowed_origins");
            for choice in &mut page.grant_types {
                choice.checked = params.get(&format!("grant:{}", choice.value)).is_some();
            }
            page.is_first_party = params.get("is_first_party").is_some();
            page.require_par = params
                .get("require_pushed_authorization_requests")
                .is_some();
            page.backchannel_url = text("backchannel_logout_url");
            page.backchannel_all = params.get("backchannel_logout_mode") == Some("all");
            page.initiators =
                initiator_choices(|name| params.get(&format!("initiator:{name}")).is_some());
            page.backchannel_metadata = params.get("backchannel_logout_session_metadata").is_some();
            page.token_lifetime = text("token_lifetime");
            page.idle_token_lifetime = text("idle_token_lifetime");
            page.leeway = text("leeway");
            page.error = Some(error.into());
            views::form_again(&page)
        }
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/applications/{id}/rotate-secret`: a new secret, shown once; only soon
/// after a password was entered.
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let client = match load(&state, &form.admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    if let Some(again) =
        super::sign_in_again(&form.admin, &format!("{}?rotate=1", app_path(&client, "")))
    {
        return again;
    }
    match clients::rotate_secret(&state, &form.admin.principal, &client.client_id).await {
        Ok(rotated) => views::page(&SecretPage {
            frame: Frame::new(&state, &form.admin, "applications", Some("secret_rotated")),
            settings: app_path(&rotated.client, ""),
            client: rotated.client,
            secret: rotated.secret,
            created: false,
        }),
        Err(error) => views::operation_refused(&error),
    }
}

/// One API on an application's APIs tab, with the application's grant for it.
struct ApiRow {
    api: ResourceServer,
    grant: Option<ClientGrant>,
}

impl ApiRow {
    fn granted(&self, scope: &str) -> bool {
        self.grant
            .as_ref()
            .is_some_and(|g| g.scope.iter().any(|s| s == scope))
    }
}

#[derive(Template)]
#[template(path = "admin/application_apis.html")]
struct ApisPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    client: Client,
    type_label: &'static str,
    rows: Vec<ApiRow>,
    paging: Paging,
    machine: bool,
    can_change: bool,
}

/// `GET /admin/applications/{id}/apis`: the APIs a machine-to-machine application may
/// call, each with the permissions granted (one indexed lookup per row of a page).
pub(crate) async fn apis(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let client = match load(&state, &admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let page = match resource_servers::list(&state, &admin.principal, None, paging.slice()).await {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    let mut rows = Vec::with_capacity(page.items.len());
    for api in page.items {
        let grant = match client_grants::list(
            &state,
            &admin.principal,
            ClientGrantFilter {
                client_id: Some(&client.client_id),
                audience: Some(&api.identifier),
            },
            Slice::first(1),
        )
        .await
        {
            Ok(page) => page.items.into_iter().next(),
            Err(error) => return views::operation_refused(&error),
        };
        rows.push(ApiRow { api, grant });
    }
    views::page(&ApisPage {
        frame: Frame::new(&state, &admin, "applications", notice_of(&query)),
        tabs: tabs(&client, "apis"),
        machine: client.app_type == AppType::NonInteractive,
        type_label: type_label(client.app_type),
        can_change: admin.may("create:client_grants")
            && admin.may("update:client_grants")
            && admin.may("delete:client_grants"),
        client,
        rows,
        paging: paging.with_total(page.total),
    })
}

/// `POST /admin/applications/{id}/apis`: authorizes the application for one API with the
/// checked permissions, changes them, or takes the authorization away.
pub(crate) async fn save_api(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let client = match load(&state, &form.admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let Some(audience) = form.params.get("audience") else {
        return views::refused(StatusCode::BAD_REQUEST, "No API was named.");
    };
    match super::grants::save(
        &state,
        &form.admin,
        &client.client_id,
        audience,
        &form.params,
    )
    .await
    {
        Ok(notice) => redirect(&format!("{}?notice={notice}", app_path(&client, "apis"))),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/application_delete.html")]
struct DeletePage<'a> {
    frame: Frame<'a>,
    client: Client,
    error: Option<&'a str>,
}

/// `GET /admin/applications/{id}/delete`: the confirmation (the name typed again), after
/// a fresh login.
pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let client = match load(&state, &admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    if let Some(again) = super::sign_in_again(&admin, &app_path(&client, "delete")) {
        return again;
    }
    views::page(&DeletePage {
        frame: Frame::new(&state, &admin, "applications", None),
        client,
        error: None,
    })
}

/// `POST /admin/applications/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let client = match load(&state, admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    match Deletion::of(&form, &app_path(&client, "delete"), &client.name) {
        Deletion::Confirmed => {}
        Deletion::SignInAgain(response) => return response,
        Deletion::Mistyped => {
            return views::form_again(&DeletePage {
                frame: Frame::new(&state, admin, "applications", None),
                client,
                error: Some("Type the application's name exactly to delete it."),
            });
        }
    }
    match clients::delete(&state, &admin.principal, &client.client_id).await {
        Ok(()) => redirect("/admin/applications?notice=app_deleted"),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/application_connections.html")]
struct ConnectionsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    client: Client,
    type_label: &'static str,
    rows: Vec<super::connections::ClientConnection>,
    paging: Paging,
    can_change: bool,
}

/// `GET /admin/applications/{id}/connections`: the connections, a page at a time, with
/// whether the application may sign users in with each.
pub(crate) async fn connections(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let client = match load(&state, &admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let (rows, total) = match super::connections::of_client(
        &state,
        &admin,
        &client.client_id,
        paging.slice(),
    )
    .await
    {
        Ok(found) => found,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&ConnectionsPage {
        frame: Frame::new(&state, &admin, "applications", notice_of(&query)),
        tabs: tabs(&client, "connections"),
        type_label: type_label(client.app_type),
        can_change: admin.may("update:connections"),
        client,
        rows,
        paging: paging.with_total(total),
    })
}

/// `POST /admin/applications/{id}/connections` (`connection_id`, `status`).
pub(crate) async fn change_connection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let client = match load(&state, &form.admin, &id).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let connection_id = form.params.get("connection_id").unwrap_or("");
    let result = match super::connections::wanted_status(&form.params) {
        Ok(enabled) => {
            crate::management::connections::set_client(
                &state,
                &form.admin.principal,
                connection_id,
                &client.client_id,
                enabled,
            )
            .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => redirect(&format!(
            "{}?notice=connection_apps_saved",
            app_path(&client, "connections")
        )),
        Err(error) => views::operation_refused(&error),
    }
}
