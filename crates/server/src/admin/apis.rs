//! Applications → APIs: the list, Create API, and an API's tabs — Quick Start, Settings,
//! Permissions, Machine to Machine Applications, Test. Every change is an operation of
//! `management::resource_servers` or `management::client_grants`.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{Value, json};
use tessera_core::{AppType, Client, ClientGrant, ResourceServer, Scope, TokenDialect};
use tessera_store::{ClientFilter, ClientGrantFilter, Slice};

use super::Deletion;
use super::form::{Body, FormError};
use super::session::{Admin, AdminForm};
use super::views::{self, Frame, Tab};
use super::{Paging, notice_of, query_of};
use crate::AppState;
use crate::management::{ApiError, Fields, client_grants, resource_servers};
use crate::pages::redirect;

/// Rows per page of the API list and the machine-to-machine tab.
const PER_PAGE: u32 = 20;

fn api_path(api: &ResourceServer, tab: &str) -> String {
    let id = utf8_percent_encode(&api.id);
    if tab.is_empty() {
        format!("/admin/apis/{id}")
    } else {
        format!("/admin/apis/{id}/{tab}")
    }
}

fn utf8_percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn dialect_label(dialect: TokenDialect) -> &'static str {
    match dialect {
        TokenDialect::AccessToken => "Auth0 (scope)",
        TokenDialect::AccessTokenAuthz => "Auth0 with permissions",
        TokenDialect::Rfc9068Profile => "RFC 9068 (scope)",
        TokenDialect::Rfc9068ProfileAuthz => "RFC 9068 with permissions",
    }
}

const DIALECTS: &[TokenDialect] = &[
    TokenDialect::AccessToken,
    TokenDialect::AccessTokenAuthz,
    TokenDialect::Rfc9068Profile,
    TokenDialect::Rfc9068ProfileAuthz,
];

const ALGORITHMS: &[&str] = &["RS256", "ES256", "EdDSA"];

#[derive(Template)]
#[template(path = "admin/apis.html")]
struct ListPage<'a> {
    frame: Frame<'a>,
    apis: Vec<ResourceServer>,
    paging: Paging,
    can_create: bool,
}

/// `GET /admin/apis`.
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let page = match resource_servers::list(&state, &admin.principal, None, paging.slice()).await {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&ListPage {
        frame: Frame::new(&state, &admin, "apis", notice_of(&query)),
        paging: paging.with_total(page.total),
        apis: page.items,
        can_create: admin.may("create:resource_servers"),
    })
}

#[derive(Template)]
#[template(path = "admin/api_new.html")]
struct NewPage<'a> {
    frame: Frame<'a>,
    name: &'a str,
    identifier: &'a str,
    signing_alg: &'a str,
    algorithms: &'static [&'static str],
    error: Option<FormError>,
}

impl NewPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

/// `GET /admin/apis/new`.
pub(crate) async fn new(State(state): State<AppState>, admin: Admin) -> Response {
    views::page(&NewPage {
        frame: Frame::new(&state, &admin, "apis", None),
        name: "",
        identifier: "",
        signing_alg: "RS256",
        algorithms: ALGORITHMS,
        error: None,
    })
}

/// `POST /admin/apis`: Create API.
pub(crate) async fn create(State(state): State<AppState>, form: AdminForm) -> Response {
    let params = &form.params;
    let body = Body::new()
        .text(params, "name")
        .text(params, "identifier")
        .text(params, "signing_alg")
        .into_map();
    let result = match Fields::from_map(body, resource_servers::CREATE_FIELDS) {
        Ok(fields) => resource_servers::create(&state, &form.admin.principal, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(api) => redirect(&format!("{}?notice=api_created", api_path(&api, ""))),
        Err(error) if error.status.is_client_error() && error.status.as_u16() != 403 => {
            views::form_again(&NewPage {
                frame: Frame::new(&state, &form.admin, "apis", None),
                name: params.get("name").unwrap_or(""),
                identifier: params.get("identifier").unwrap_or(""),
                signing_alg: params.get("signing_alg").unwrap_or("RS256"),
                algorithms: ALGORITHMS,
                error: Some(error.into()),
            })
        }
        Err(error) => views::operation_refused(&error),
    }
}

async fn load(state: &AppState, admin: &Admin, id: &str) -> Result<ResourceServer, Response> {
    resource_servers::get(state, &admin.principal, id)
        .await
        .map_err(|error| views::operation_refused(&error))
}

/// The tabs of an API's page.
const TABS: &[(&str, &str)] = &[
    ("", "Quick Start"),
    ("settings", "Settings"),
    ("permissions", "Permissions"),
    ("m2m", "Machine to Machine Applications"),
    ("test", "Test"),
];

fn tabs(api: &ResourceServer, current: &str) -> Vec<Tab> {
    views::tabs(&api_path(api, ""), TABS, current)
}

#[derive(Template)]
#[template(path = "admin/api_quickstart.html")]
struct QuickStartPage<'a> {
    frame: Frame<'a>,
    api: ResourceServer,
    tabs: Vec<Tab>,
    domain: String,
    issuer: &'a str,
    scope_example: String,
}

/// `GET /admin/apis/{id}`: Quick Start, with this tenant's domain and the API's audience.
pub(crate) async fn quickstart(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let api = match load(&state, &admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    let query = query_of(query);
    let domain = views::domain(state.issuer());
    let mut scope_example = String::from("openid profile");
    if let Some(first) = api.scopes.first() {
        scope_example.push(' ');
        scope_example.push_str(&first.value);
    }
    views::page(&QuickStartPage {
        frame: Frame::new(&state, &admin, "apis", notice_of(&query)),
        tabs: tabs(&api, ""),
        api,
        domain,
        issuer: state.issuer(),
        scope_example,
    })
}

#[derive(Template)]
#[template(path = "admin/api_settings.html")]
struct SettingsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    api: ResourceServer,
    /// The values shown in the form: the API's, or what was posted when refused.
    name: String,
    token_lifetime: String,
    token_lifetime_for_web: String,
    signing_alg: String,
    enforce_policies: bool,
    dialect: String,
    allow_offline_access: bool,
    require_dpop: bool,
    dialects: Vec<(&'static str, &'static str)>,
    algorithms: &'static [&'static str],
    can_update: bool,
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
    api: ResourceServer,
    notice: Option<&str>,
) -> SettingsPage<'a> {
    SettingsPage {
        frame: Frame::new(state, admin, "apis", notice),
        tabs: tabs(&api, "settings"),
        name: api.name.clone(),
        token_lifetime: api.token_lifetime.to_string(),
        token_lifetime_for_web: api.token_lifetime_for_web.to_string(),
        signing_alg: api.signing_alg.clone(),
        enforce_policies: api.enforce_policies,
        dialect: api.token_dialect.as_str().to_string(),
        allow_offline_access: api.allow_offline_access,
        require_dpop: api.requires_dpop(),
        dialects: DIALECTS
            .iter()
            .map(|d| (d.as_str(), dialect_label(*d)))
            .collect(),
        algorithms: ALGORITHMS,
        can_update: admin.may("update:resource_servers") && !api.is_system(),
        can_delete: admin.may("delete:resource_servers") && !api.is_system(),
        api,
        error: None,
    }
}

/// `GET /admin/apis/{id}/settings`.
pub(crate) async fn settings(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let api = match load(&state, &admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    let query = query_of(query);
    views::page(&settings_page(&state, &admin, api, notice_of(&query)))
}

fn settings_body(params: &crate::edge::params::Params) -> Result<Fields, ApiError> {
    let body = Body::new()
        .text(params, "name")
        .integer(params, "token_lifetime")?
        .integer(params, "token_lifetime_for_web")?
        .text(params, "signing_alg")
        .checkbox(params, "enforce_policies")
        .text(params, "token_dialect")
        .checkbox(params, "allow_offline_access")
        .value(
            "proof_of_possession",
            match params.get("require_dpop") {
                Some(_) => serde_json::json!({"mechanism": "dpop", "required": true}),
                None => serde_json::Value::Null,
            },
        )
        .into_map();
    Fields::from_map(body, resource_servers::UPDATE_FIELDS)
}

/// `POST /admin/apis/{id}/settings`.
pub(crate) async fn save_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let params = &form.params;
    let result = match settings_body(params) {
        Ok(fields) => resource_servers::update(&state, &form.admin.principal, &id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(api) => redirect(&format!("{}?notice=api_saved", api_path(&api, "settings"))),
        Err(error) if error.status == axum::http::StatusCode::BAD_REQUEST => {
            let api = match load(&state, &form.admin, &id).await {
                Ok(api) => api,
                Err(response) => return response,
            };
            let mut page = settings_page(&state, &form.admin, api, None);
            page.name = params.get("name").unwrap_or("").to_string();
            page.token_lifetime = params.get("token_lifetime").unwrap_or("").to_string();
            page.token_lifetime_for_web = params
                .get("token_lifetime_for_web")
                .unwrap_or("")
                .to_string();
            page.signing_alg = params.get("signing_alg").unwrap_or("").to_string();
            page.enforce_policies = params.get("enforce_policies").is_some();
            page.dialect = params.get("token_dialect").unwrap_or("").to_string();
            page.allow_offline_access = params.get("allow_offline_access").is_some();
            page.require_dpop = params.get("require_dpop").is_some();
            page.error = Some(error.into());
            views::form_again(&page)
        }
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/api_permissions.html")]
struct PermissionsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    api: ResourceServer,
    can_update: bool,
    value: String,
    description: String,
    error: Option<FormError>,
}

impl PermissionsPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }
}

/// `GET /admin/apis/{id}/permissions`.
pub(crate) async fn permissions(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let api = match load(&state, &admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    let query = query_of(query);
    views::page(&PermissionsPage {
        frame: Frame::new(&state, &admin, "apis", notice_of(&query)),
        tabs: tabs(&api, "permissions"),
        can_update: admin.may("update:resource_servers") && !api.is_system(),
        api,
        value: String::new(),
        description: String::new(),
        error: None,
    })
}

fn scopes_value(scopes: &[Scope]) -> Value {
    Value::Array(
        scopes
            .iter()
            .map(|s| json!({"value": s.value, "description": s.description}))
            .collect(),
    )
}

/// Replaces the API's scopes with `scopes` through the update operation.
async fn save_scopes(
    state: &AppState,
    admin: &Admin,
    api: &ResourceServer,
    scopes: &[Scope],
) -> Result<ResourceServer, ApiError> {
    let body = Body::new().value("scopes", scopes_value(scopes)).into_map();
    let fields = Fields::from_map(body, resource_servers::UPDATE_FIELDS)?;
    resource_servers::update(state, &admin.principal, &api.id, fields).await
}

/// `POST /admin/apis/{id}/permissions`: adds one (value and description).
pub(crate) async fn add_permission(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let api = match load(&state, admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    let value = form.params.get("value").unwrap_or("").trim().to_string();
    let description = form
        .params
        .get("description")
        .unwrap_or("")
        .trim()
        .to_string();
    let result = if value.is_empty() {
        Err(ApiError::invalid_body("Missing required property: value").about("value"))
    } else if api.defines_scope(&value) {
        Err(
            ApiError::bad_request(format!("The API already has the permission {value}"))
                .about("value"),
        )
    } else {
        let mut scopes = api.scopes.clone();
        scopes.push(Scope {
            value: value.clone(),
            description: description.clone(),
        });
        save_scopes(&state, admin, &api, &scopes)
            .await
            .map_err(|e| {
                if e.property.is_none() {
                    e.about("value")
                } else {
                    e
                }
            })
    };
    match result {
        Ok(api) => redirect(&format!(
            "{}?notice=permission_added",
            api_path(&api, "permissions")
        )),
        Err(error) if error.status == axum::http::StatusCode::BAD_REQUEST => {
            views::form_again(&PermissionsPage {
                frame: Frame::new(&state, admin, "apis", None),
                tabs: tabs(&api, "permissions"),
                can_update: true,
                api,
                value,
                description,
                error: Some(error.into()),
            })
        }
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/apis/{id}/permissions/remove`.
pub(crate) async fn remove_permission(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let api = match load(&state, admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    let value = form.params.get("value").unwrap_or("");
    let scopes: Vec<Scope> = api
        .scopes
        .iter()
        .filter(|s| s.value != value)
        .cloned()
        .collect();
    if scopes.len() == api.scopes.len() {
        return redirect(&api_path(&api, "permissions"));
    }
    match save_scopes(&state, admin, &api, &scopes).await {
        Ok(api) => redirect(&format!(
            "{}?notice=permission_removed",
            api_path(&api, "permissions")
        )),
        Err(error) => views::operation_refused(&error),
    }
}

/// One machine-to-machine application on the tab: whether it is authorized and for what.
struct MachineRow {
    client: Client,
    grant: Option<ClientGrant>,
}

impl MachineRow {
    fn granted(&self, scope: &str) -> bool {
        self.grant
            .as_ref()
            .is_some_and(|g| g.scope.iter().any(|s| s == scope))
    }
}

#[derive(Template)]
#[template(path = "admin/api_m2m.html")]
struct MachinesPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    api: ResourceServer,
    rows: Vec<MachineRow>,
    paging: Paging,
    can_change: bool,
}

/// The machine-to-machine applications of one page, each with its grant for `api`: one
/// indexed lookup per row of a page of at most `PER_PAGE`.
async fn machine_rows(
    state: &AppState,
    admin: &Admin,
    api: &ResourceServer,
    paging: &Paging,
) -> Result<(Vec<MachineRow>, Option<u64>), ApiError> {
    admin.principal.require(&["read:clients"])?;
    let filter = ClientFilter {
        app_types: Some(vec![AppType::NonInteractive.as_str().to_string()]),
        ..ClientFilter::default()
    };
    let page = state.store().list_clients(&filter, paging.slice()).await?;
    let mut rows = Vec::with_capacity(page.items.len());
    for client in page.items {
        let grants = client_grants::list(
            state,
            &admin.principal,
            ClientGrantFilter {
                client_id: Some(&client.client_id),
                audience: Some(&api.identifier),
            },
            Slice::first(1),
        )
        .await?;
        rows.push(MachineRow {
            client,
            grant: grants.items.into_iter().next(),
        });
    }
    Ok((rows, page.total))
}

/// `GET /admin/apis/{id}/m2m`.
pub(crate) async fn machines(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let api = match load(&state, &admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    let query = query_of(query);
    let paging = Paging::from_query(&query, PER_PAGE);
    let (rows, total) = match machine_rows(&state, &admin, &api, &paging).await {
        Ok(rows) => rows,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&MachinesPage {
        frame: Frame::new(&state, &admin, "apis", notice_of(&query)),
        tabs: tabs(&api, "m2m"),
        can_change: admin.may("create:client_grants")
            && admin.may("update:client_grants")
            && admin.may("delete:client_grants"),
        api,
        rows,
        paging: paging.with_total(total),
    })
}

/// `POST /admin/apis/{id}/m2m`: authorizes one application with the checked scopes,
/// changes its scopes, or (unchecked) takes its authorization away.
pub(crate) async fn save_machine(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let api = match load(&state, admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    let Some(client_id) = form.params.get("client_id") else {
        return views::refused(
            axum::http::StatusCode::BAD_REQUEST,
            "No application was named.",
        );
    };
    let result = super::grants::save(&state, admin, client_id, &api.identifier, &form.params).await;
    match result {
        Ok(notice) => redirect(&format!("{}?notice={notice}", api_path(&api, "m2m"))),
        Err(error) => views::operation_refused(&error),
    }
}

/// A token the Test tab issued, decoded for reading.
struct IssuedToken {
    client_name: String,
    token: String,
    header: String,
    claims: String,
}

#[derive(Template)]
#[template(path = "admin/api_test.html")]
struct TestPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    api: ResourceServer,
    /// Authorized applications to pick from.
    rows: Vec<MachineRow>,
    issued: Option<IssuedToken>,
    issuer: &'a str,
    can_issue: bool,
    error: Option<String>,
}

async fn test_page<'a>(
    state: &'a AppState,
    admin: &'a Admin,
    api: ResourceServer,
    issued: Option<IssuedToken>,
    error: Option<String>,
) -> Response {
    let paging = Paging::first(PER_PAGE);
    let rows = match machine_rows(state, admin, &api, &paging).await {
        Ok((rows, _)) => rows.into_iter().filter(|r| r.grant.is_some()).collect(),
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&TestPage {
        frame: Frame::new(state, admin, "apis", None),
        tabs: tabs(&api, "test"),
        api,
        rows,
        issued,
        issuer: state.issuer(),
        can_issue: admin.may(TEST_TOKEN_SCOPE),
        error,
    })
}

/// Issuing a token as an application is acting as it: the same power as holding its
/// keys.
const TEST_TOKEN_SCOPE: &str = "update:client_keys";

/// `GET /admin/apis/{id}/test`.
pub(crate) async fn test(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let api = match load(&state, &admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    test_page(&state, &admin, api, None, None).await
}

/// `POST /admin/apis/{id}/test`: a client-credentials token for the chosen authorized
/// application, issued in-process as `/oauth/token` would, and shown decoded.
pub(crate) async fn issue_test_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let api = match load(&state, admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    if let Err(error) = admin.principal.require(&[TEST_TOKEN_SCOPE]) {
        return views::operation_refused(&error);
    }
    let client_id = form.params.get("client_id").unwrap_or("");
    let access = match state
        .machine_access()
        .get(state.store(), client_id, &api.identifier)
        .await
    {
        Ok(Some(access)) if access.grant.is_some() => access,
        Ok(_) => {
            return test_page(
                &state,
                admin,
                api,
                None,
                Some("That application is not authorized for this API.".into()),
            )
            .await;
        }
        Err(error) => return views::store_error(error),
    };
    let issued = match crate::oauth::token::client_credentials::machine_token(
        &state,
        &access,
        &api.identifier,
        None,
        None,
        None,
    )
    .await
    {
        Ok(response) => response,
        Err(error) => {
            return test_page(&state, admin, api, None, Some(error.description)).await;
        }
    };
    let decoded = decode(&issued.access_token);
    let token = IssuedToken {
        client_name: access.client.name.clone(),
        header: decoded.0,
        claims: decoded.1,
        token: issued.access_token,
    };
    test_page(&state, admin, api, Some(token), None).await
}

/// The header and claims of a compact JWS this server just signed, pretty-printed.
fn decode(token: &str) -> (String, String) {
    use base64::Engine;
    let part = |text: Option<&str>| {
        text.and_then(|t| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default()
    };
    let mut parts = token.split('.');
    (part(parts.next()), part(parts.next()))
}

#[derive(Template)]
#[template(path = "admin/api_delete.html")]
struct DeletePage<'a> {
    frame: Frame<'a>,
    api: ResourceServer,
    error: Option<&'a str>,
}

/// `GET /admin/apis/{id}/delete`: the confirmation (the API's identifier typed again),
/// after a fresh login.
pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let api = match load(&state, &admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    if let Some(again) = super::sign_in_again(&admin, &api_path(&api, "delete")) {
        return again;
    }
    views::page(&DeletePage {
        frame: Frame::new(&state, &admin, "apis", None),
        api,
        error: None,
    })
}

/// `POST /admin/apis/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let api = match load(&state, admin, &id).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    match Deletion::of(&form, &api_path(&api, "delete"), &api.identifier) {
        Deletion::Confirmed => {}
        Deletion::SignInAgain(response) => return response,
        Deletion::Mistyped => {
            return views::form_again(&DeletePage {
                frame: Frame::new(&state, admin, "apis", None),
                api,
                error: Some("Type the API's identifier exactly to delete it."),
            });
        }
    }
    match resource_servers::delete(&state, &admin.principal, &api.id).await {
        Ok(()) => redirect("/admin/apis?notice=api_deleted"),
        Err(error) => views::operation_refused(&error),
    }
}
