//! `/api/v2/connections`: database connections and upstream identity providers, in
//! Auth0's shapes. What a connection may be is `tessera_core::connection`; the client
//! secret of an upstream connection is sealed here with the master key, bound to the
//! connection's id, and never shown again.
//!
//! Database connections (strategy `auth0`) are Tessera's own user stores: the default
//! `Username-Password-Authentication`, which always exists, and any more an administrator
//! creates. Their options describe what Tessera enforces (the password policy of
//! `tessera_core::check_password_policy`, the brute-force block of the hosted login);
//! of those only `disable_signup`, `disable_self_service_change_password`, passkeys
//! (`authentication_methods.passkey`) and their enrollment offer (`passkey_options`) are
//! settable (`crate::databases`), and a `PATCH` that repeats the others is accepted, any
//! other value refused. A database connection is deleted only when it has no users; the
//! default one never.
//!
//! Every connection keeps a real list of enabled applications, read and changed through
//! `…/clients` (Auth0's current way) or the deprecated `enabled_clients` member on create
//! and update, which deploy tools still send. A new application is enabled for the
//! default database connection. Tessera's own applications (the dashboard) stay enabled
//! for the default database connection and are not listed: administrators sign in there.

use serde_json::{Map, Value, json};
use tessera_core::connection::{self as policy, Strategy};
use tessera_core::system::{SYSTEM_CLIENT_IDS, is_system_client};
use tessera_core::{DATABASE_CONNECTION, DATABASE_CONNECTION_ID, ids, validate};
use tessera_jose::MasterKey;
use tessera_store::{
    Checkpoint, CheckpointPage, ConnectionFilter, ConnectionRecord, ConnectionUpdate, Page, Slice,
    Store, StoreError,
};

use super::absent::unchanged;
use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::clock::now;
use crate::databases::{self, Database};

pub(crate) const READ: &[&str] = &["read:connections"];
pub(crate) const CREATE: &[&str] = &["create:connections"];
pub(crate) const UPDATE: &[&str] = &["update:connections"];
pub(crate) const DELETE: &[&str] = &["delete:connections"];

pub(crate) const CREATE_FIELDS: &[&str] = &[
    "name",
    "display_name",
    "strategy",
    "options",
    "enabled_clients",
    "show_as_button",
    "is_domain_connection",
    "metadata",
    "realms",
];
pub(crate) const UPDATE_FIELDS: &[&str] = CREATE_FIELDS;

/// At most this many changes per `PATCH …/clients` (Auth0's limit).
const MAX_CLIENT_CHANGES: usize = 50;

/// The database connection's options: what Tessera enforces, not settable.
fn database_options() -> Value {
    json!({
        "brute_force_protection": true,
        "disable_signup": false,
        "disable_self_service_change_password": false,
        "requires_username": false,
        "import_mode": false,
        "password_complexity_options": { "min_length": 8 },
        "password_dictionary": { "enable": true, "dictionary": [] },
        (databases::AUTHENTICATION_METHODS):
            databases::default_structured_options()[databases::AUTHENTICATION_METHODS],
        (databases::PASSKEY_OPTIONS):
            databases::default_structured_options()[databases::PASSKEY_OPTIONS],
    })
}

/// A connection in Auth0's shape. The client secret is never in it.
pub(crate) fn wire(connection: &ConnectionRecord) -> Value {
    let options = match Database::of(connection) {
        // What Tessera enforces, with what the administrator set.
        Some(_) => {
            let mut options = database_options();
            for name in databases::SETTABLE_OPTIONS
                .iter()
                .chain(databases::STRUCTURED_OPTIONS)
            {
                if let Some(value) = connection.options.get(*name) {
                    options[*name] = value.clone();
                }
            }
            options
        }
        None => Value::Object(connection.options.clone()),
    };
    json!({
        "id": connection.id,
        "name": connection.name,
        "display_name": connection.display_name,
        "strategy": connection.strategy,
        "options": options,
        "show_as_button": connection.show_as_button,
        "is_domain_connection": connection.is_domain_connection,
        "metadata": connection.metadata,
        "realms": [connection.name],
    })
}

/// A database connection's options as given: the settable ones (booleans) are kept,
/// the others must repeat what Tessera enforces; one Tessera does not know is refused
/// by name (a `customScripts` body is never echoed).
fn database_options_of(given: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let enforced = database_options();
    let mut kept = Map::new();
    let mut rest = Map::new();
    for (name, value) in given {
        if enforced.get(name).is_none() {
            let shown: String = name.chars().take(64).collect();
            return Err(refused(
                format!("options.{shown} is not an option of a database connection in Tessera"),
                "options",
            ));
        }
        let structured = match name.as_str() {
            databases::AUTHENTICATION_METHODS => Some(databases::authentication_methods(value)),
            databases::PASSKEY_OPTIONS => Some(databases::passkey_options(value)),
            _ => None,
        };
        if let Some(checked) = structured {
            kept.insert(
                name.clone(),
                checked.map_err(|why| refused(why, "options"))?,
            );
        } else if databases::SETTABLE_OPTIONS.contains(&name.as_str()) {
            if !value.is_boolean() {
                return Err(refused(
                    format!("options.{name} must be a boolean"),
                    "options",
                ));
            }
            kept.insert(name.clone(), value.clone());
        } else {
            rest.insert(name.clone(), value.clone());
        }
    }
    unchanged(&enforced, &Value::Object(rest))?;
    Ok(kept)
}

fn not_found() -> ApiError {
    ApiError::not_found("The connection does not exist", "inexistent_connection")
}

fn no_such_client() -> ApiError {
    ApiError::not_found("The client does not exist", "inexistent_client")
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict("users of this connection") => ApiError::conflict(
            "The connection still has users: delete them first",
            "connection_has_users",
        ),
        StoreError::Conflict(_) => ApiError::conflict(
            "A connection with the same name already exists",
            "connection_conflict",
        )
        .about("name"),
        StoreError::NotFound("application") => no_such_client(),
        StoreError::NotFound(_) => not_found(),
        other => other.into(),
    }
}

fn refused(why: String, property: &str) -> ApiError {
    ApiError::invalid_property(why, property)
}

/// A page of connections; `strategies` keeps any of them (all when empty).
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    filter: &ConnectionFilter,
    slice: Slice,
) -> ApiResult<Page<ConnectionRecord>> {
    principal.require(READ)?;
    Ok(state.store().list_connections(filter, slice).await?)
}

pub(crate) async fn list_from(
    state: &AppState,
    principal: &Principal,
    filter: &ConnectionFilter,
    checkpoint: Checkpoint<'_>,
) -> ApiResult<CheckpointPage<ConnectionRecord>> {
    principal.require(READ)?;
    Ok(state.store().connections_from(filter, checkpoint).await?)
}

pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<ConnectionRecord> {
    principal.require(READ)?;
    state
        .store()
        .find_connection(id)
        .await?
        .ok_or_else(not_found)
}

/// `realms`, when given, must be the connection's own name: Tessera has no other realm.
fn check_realms(fields: &mut Fields, name: &str) -> ApiResult<()> {
    match fields.strings("realms")? {
        None => Ok(()),
        Some(realms) if realms.is_empty() || realms == [name] => Ok(()),
        Some(_) => Err(refused(
            "realms may only name the connection itself".into(),
            "realms",
        )),
    }
}

fn metadata_of(fields: &mut Fields) -> ApiResult<Option<Map<String, Value>>> {
    let metadata = fields.object_value("metadata")?;
    if let Some(metadata) = &metadata {
        policy::connection_metadata(metadata).map_err(|why| refused(why, "metadata"))?;
    }
    Ok(metadata)
}

fn display_name_of(fields: &mut Fields) -> ApiResult<Option<String>> {
    fields
        .string("display_name")?
        .map(|text| {
            validate::name(&text, "connection's display")
                .map_err(|why| refused(why, "display_name"))
        })
        .transpose()
}

/// Creates a connection: a database connection (its options as [`database_options_of`]
/// allows) or an upstream identity provider.
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    fields: Fields,
) -> ApiResult<ConnectionRecord> {
    principal.require(CREATE)?;
    let created = create_in(state.store(), &state.config().master_key, fields).await?;
    state.forget_connection(&created.id);
    Ok(created)
}

async fn create_in(
    store: &Store,
    master_key: &MasterKey,
    mut fields: Fields,
) -> ApiResult<ConnectionRecord> {
    let name = Fields::required("name", fields.string("name")?)?;
    let name = policy::connection_name(&name).map_err(|why| refused(why, "name"))?;
    let strategy_text = Fields::required("strategy", fields.string("strategy")?)?;
    let Some(strategy) = Strategy::parse(&strategy_text) else {
        return Err(refused(
            "strategy must be one of auth0, oidc, oauth2, google-oauth2, github".into(),
            "strategy",
        ));
    };
    let checked = if strategy == Strategy::Database {
        let given = fields.object_value("options")?.unwrap_or_default();
        policy::UpstreamOptions {
            options: database_options_of(&given)?,
            client_secret: None,
        }
    } else {
        let options = Fields::required("options", fields.object_value("options")?)?;
        policy::upstream_options(strategy, &options, false)
            .map_err(|why| refused(why, "options"))?
    };
    let display_name = display_name_of(&mut fields)?.unwrap_or_else(|| name.clone());
    let metadata = metadata_of(&mut fields)?.unwrap_or_default();
    check_realms(&mut fields, &name)?;
    let enabled_clients = fields.strings("enabled_clients")?.unwrap_or_default();
    let id = format!("con_{}", ids::alphanumeric(16));
    let now = now();
    let connection = ConnectionRecord {
        sealed_secret: checked
            .client_secret
            .as_deref()
            .map(|secret| crate::upstream::seal_secret(master_key, &id, secret)),
        id,
        name,
        display_name,
        strategy: strategy.as_str().to_string(),
        options: checked.options,
        // A database connection's form is the login page's own, not a button.
        show_as_button: fields
            .boolean("show_as_button")?
            .unwrap_or(strategy != Strategy::Database),
        is_domain_connection: fields.boolean("is_domain_connection")?.unwrap_or(false),
        metadata,
        created_at: now,
        updated_at: now,
    };
    store
        .create_connection(&connection, &enabled_clients)
        .await
        .map_err(store_error)?;
    Ok(connection)
}

/// Changes a connection. `name` and `strategy` cannot change (repeating them is fine);
/// `options` replaces the options whole, keeping the stored secret unless it names a
/// new one; `enabled_clients` replaces the list.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    fields: Fields,
) -> ApiResult<ConnectionRecord> {
    principal.require(UPDATE)?;
    let updated = update_in(state.store(), &state.config().master_key, id, fields).await?;
    state.forget_connection(id);
    Ok(updated)
}

async fn update_in(
    store: &Store,
    master_key: &MasterKey,
    id: &str,
    mut fields: Fields,
) -> ApiResult<ConnectionRecord> {
    let current = store.find_connection(id).await?.ok_or_else(not_found)?;
    for (member, now) in [("name", &current.name), ("strategy", &current.strategy)] {
        if let Some(wanted) = fields.string(member)?
            && &wanted != now
        {
            return Err(refused(
                format!("a connection's {member} cannot change"),
                member,
            ));
        }
    }
    let strategy = Strategy::parse(&current.strategy).ok_or(StoreError::Corrupt("strategy"))?;
    let mut update = ConnectionUpdate {
        display_name: display_name_of(&mut fields)?,
        show_as_button: fields.boolean("show_as_button")?,
        is_domain_connection: fields.boolean("is_domain_connection")?,
        metadata: metadata_of(&mut fields)?,
        enabled_clients: fields.strings("enabled_clients")?,
        ..ConnectionUpdate::default()
    };
    check_realms(&mut fields, &current.name)?;
    if let Some(clients) = &mut update.enabled_clients
        && current.id == DATABASE_CONNECTION_ID
    {
        // Tessera's own applications keep the default database connection.
        clients.retain(|client_id| !is_system_client(client_id));
        clients.extend(SYSTEM_CLIENT_IDS.iter().map(|id| id.to_string()));
    }
    if strategy == Strategy::Database {
        if let Some(options) = fields.object_value("options")? {
            // Options not given keep their value: tools send some of them.
            let mut merged = current.options.clone();
            merged.extend(database_options_of(&options)?);
            update.options = Some(merged);
        }
    } else if let Some(options) = fields.object_value("options")? {
        let checked = policy::upstream_options(strategy, &options, current.sealed_secret.is_some())
            .map_err(|why| refused(why, "options"))?;
        update.sealed_secret = checked
            .client_secret
            .as_deref()
            .map(|secret| crate::upstream::seal_secret(master_key, id, secret));
        update.options = Some(checked.options);
    }
    store
        .update_connection(id, &update, now())
        .await
        .map_err(store_error)
}

/// Deletes a connection while none of its users remain (never the default database
/// connection).
pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    delete_in(state.store(), id).await?;
    state.forget_connection(id);
    Ok(())
}

async fn delete_in(store: &Store, id: &str) -> ApiResult<()> {
    if id == DATABASE_CONNECTION_ID {
        return Err(ApiError::bad_request(format!(
            "{DATABASE_CONNECTION} is Tessera's default database connection and cannot be \
             deleted"
        )));
    }
    store.delete_connection(id).await.map_err(store_error)
}

/// The applications a connection is enabled for, by checkpoint (Tessera's own are not
/// listed: see the module's comment).
pub(crate) async fn enabled_clients(
    state: &AppState,
    principal: &Principal,
    id: &str,
    checkpoint: Checkpoint<'_>,
) -> ApiResult<CheckpointPage<String>> {
    principal.require(READ)?;
    if state.store().find_connection(id).await?.is_none() {
        return Err(not_found());
    }
    let mut page = state
        .store()
        .connection_clients_from(id, checkpoint)
        .await?;
    page.items.retain(|client_id| !is_system_client(client_id));
    Ok(page)
}

/// Reads `[{client_id, status}]`, at most [`MAX_CLIENT_CHANGES`].
fn client_changes(body: &Value) -> ApiResult<Vec<(String, bool)>> {
    let Some(changes) = body.as_array() else {
        return Err(ApiError::invalid_body("Expected type array"));
    };
    if changes.len() > MAX_CLIENT_CHANGES {
        return Err(ApiError::invalid_body(format!(
            "At most {MAX_CLIENT_CHANGES} changes per request"
        )));
    }
    changes
        .iter()
        .map(|change| {
            let Some(change) = change.as_object() else {
                return Err(ApiError::invalid_body("Expected an array of objects"));
            };
            let Some(client_id) = change.get("client_id").and_then(Value::as_str) else {
                return Err(refused("Missing required property".into(), "client_id"));
            };
            let Some(status) = change.get("status").and_then(Value::as_bool) else {
                return Err(refused("Expected type boolean".into(), "status"));
            };
            if change.len() != 2 {
                return Err(ApiError::invalid_body(
                    "Additional properties not allowed: only client_id and status",
                ));
            }
            Ok((client_id.to_string(), status))
        })
        .collect()
}

/// Enables or disables applications for a connection, all or none.
pub(crate) async fn update_enabled_clients(
    state: &AppState,
    principal: &Principal,
    id: &str,
    body: &Value,
) -> ApiResult<()> {
    principal.require(UPDATE)?;
    set_clients_in(state.store(), id, body).await?;
    state.forget_connection(id);
    Ok(())
}

async fn set_clients_in(store: &Store, id: &str, body: &Value) -> ApiResult<()> {
    let changes = client_changes(body)?;
    if id == DATABASE_CONNECTION_ID
        && changes
            .iter()
            .any(|(client_id, enabled)| !enabled && is_system_client(client_id))
    {
        return Err(ApiError::bad_request(format!(
            "Tessera's own applications sign administrators in with {DATABASE_CONNECTION} \
             and cannot be disabled for it"
        )));
    }
    store
        .set_connection_clients(id, &changes)
        .await
        .map_err(store_error)
}

/// Whether each of `client_ids` may sign in with the connection (the dashboard's
/// applications lists).
pub(crate) async fn enabled_for(
    state: &AppState,
    principal: &Principal,
    id: &str,
    client_ids: &[String],
) -> ApiResult<Vec<bool>> {
    principal.require(READ)?;
    let mut enabled = Vec::with_capacity(client_ids.len());
    for client_id in client_ids {
        enabled.push(
            state
                .store()
                .connections_of_client(client_id)
                .await?
                .iter()
                .any(|c| c.id == id),
        );
    }
    Ok(enabled)
}

/// The connections an application is enabled for, by name.
pub(crate) async fn of_client(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
) -> ApiResult<Vec<ConnectionRecord>> {
    principal.require(READ)?;
    Ok(state.store().connections_of_client(client_id).await?)
}

/// Enables or disables one application for a connection (the dashboard's toggles, the
/// CLI's `enable`/`disable`): a `PATCH …/clients` of one change.
pub(crate) async fn set_client(
    state: &AppState,
    principal: &Principal,
    id: &str,
    client_id: &str,
    enabled: bool,
) -> ApiResult<()> {
    update_enabled_clients(
        state,
        principal,
        id,
        &json!([{ "client_id": client_id, "status": enabled }]),
    )
    .await
}

/// The options the common fields of a form or the command line describe, on top of
/// `base` (the options given as JSON, or the connection's current ones): the client's
/// id and secret, an OpenID Connect discovery URL or issuer, and the scopes asked for
/// (`scopes`, one string, for `oidc`; `scope` for the others). Empty fields are left out.
/// Only the shape is made here; [`create`] and [`update`] check it.
#[derive(Debug, Default)]
pub struct OptionFields<'a> {
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
    pub discovery_url: Option<&'a str>,
    pub issuer: Option<&'a str>,
    /// Separated by spaces or commas.
    pub scopes: Option<&'a str>,
}

pub fn options_with(
    strategy: &str,
    mut base: Map<String, Value>,
    fields: &OptionFields<'_>,
) -> Map<String, Value> {
    let given = |value: Option<&str>| {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    for (member, value) in [
        ("client_id", fields.client_id),
        ("discovery_url", fields.discovery_url),
        ("issuer", fields.issuer),
    ] {
        if let Some(value) = given(value) {
            base.insert(member.into(), Value::String(value));
        }
    }
    // A secret is kept as typed: spaces may belong to it.
    if let Some(secret) = fields.client_secret.filter(|s| !s.is_empty()) {
        base.insert("client_secret".into(), Value::String(secret.to_string()));
    }
    if let Some(scopes) = given(fields.scopes) {
        let words: Vec<&str> = scopes.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        let member = if strategy == Strategy::Oidc.as_str() {
            "scopes"
        } else {
            "scope"
        };
        base.insert(member.into(), Value::String(words.join(" ")));
    }
    base
}

/// The same operations for the `tessera connections` commands, which hold the store
/// and the master key rather than a request: no principal (whoever may open the
/// database administers it), the same checks, the same texts. A server running beside
/// forgets its copy of a changed connection within its cache's lifetime.
pub mod direct {
    use serde_json::{Map, Value};
    use tessera_jose::MasterKey;
    use tessera_store::{ConnectionFilter, ConnectionRecord, Page, Slice, Store};

    use super::super::body::Fields;
    use super::super::error::ApiError;
    use super::{CREATE_FIELDS, UPDATE_FIELDS};
    pub use super::{OptionFields, options_with};

    /// An operation's refusal: the status `/api/v2` would answer and its message.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Refusal {
        pub status: u16,
        pub message: String,
    }

    fn refusal(error: ApiError) -> Refusal {
        Refusal {
            status: error.status.as_u16(),
            message: error.message,
        }
    }

    fn from_store(error: tessera_store::StoreError) -> Refusal {
        refusal(ApiError::from(error))
    }

    pub type Result<T> = std::result::Result<T, Refusal>;

    /// A connection as `/api/v2/connections` shows it (never its secret).
    pub fn wire(connection: &ConnectionRecord) -> Value {
        super::wire(connection)
    }

    pub async fn list(
        store: &Store,
        filter: &ConnectionFilter,
        slice: Slice,
    ) -> Result<Page<ConnectionRecord>> {
        store
            .list_connections(filter, slice)
            .await
            .map_err(from_store)
    }

    /// The connection with this id, or else this name.
    pub async fn find(store: &Store, id_or_name: &str) -> Result<ConnectionRecord> {
        if let Some(found) = store
            .find_connection(id_or_name)
            .await
            .map_err(from_store)?
        {
            return Ok(found);
        }
        store
            .find_connection_by_name(id_or_name)
            .await
            .map_err(from_store)?
            .ok_or_else(|| refusal(super::not_found()))
    }

    /// `POST /api/v2/connections` with this body.
    pub async fn create(
        store: &Store,
        master_key: &MasterKey,
        body: Map<String, Value>,
    ) -> Result<ConnectionRecord> {
        let fields = Fields::from_map(body, CREATE_FIELDS).map_err(refusal)?;
        super::create_in(store, master_key, fields)
            .await
            .map_err(refusal)
    }

    /// `PATCH /api/v2/connections/{id}` with this body.
    pub async fn update(
        store: &Store,
        master_key: &MasterKey,
        id: &str,
        body: Map<String, Value>,
    ) -> Result<ConnectionRecord> {
        let fields = Fields::from_map(body, UPDATE_FIELDS).map_err(refusal)?;
        super::update_in(store, master_key, id, fields)
            .await
            .map_err(refusal)
    }

    /// `PATCH /api/v2/connections/{id}/clients` with one change.
    pub async fn set_client(store: &Store, id: &str, client_id: &str, enabled: bool) -> Result<()> {
        let change = serde_json::json!([{ "client_id": client_id, "status": enabled }]);
        super::set_clients_in(store, id, &change)
            .await
            .map_err(refusal)
    }

    /// `DELETE /api/v2/connections/{id}`.
    pub async fn delete(store: &Store, id: &str) -> Result<()> {
        super::delete_in(store, id).await.map_err(refusal)
    }
}

pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::{Value, json};
    use tessera_store::ConnectionFilter;

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::ApiResult;
    use super::super::paging::Query;
    use super::{CREATE, CREATE_FIELDS, DELETE, READ, UPDATE, UPDATE_FIELDS, wire};
    use crate::AppState;

    /// `GET /api/v2/connections`: in id order, by page or checkpoint; `strategy`
    /// (repeated or comma-separated) and `name` filter.
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
                "from",
                "take",
                "strategy",
                "name",
                "fields",
                "include_fields",
            ],
        )?;
        let fields = query.field_filter()?;
        let filter = ConnectionFilter {
            strategies: query
                .all("strategy")
                .into_iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            name: query.get("name").map(str::to_string),
        };
        if query.by_checkpoint() {
            let page = super::list_from(&state, &principal, &filter, query.checkpoint()?).await?;
            let page = tessera_store::CheckpointPage {
                items: page.items.iter().map(|c| fields.apply(wire(c))).collect(),
                next: page.next,
            };
            return query.respond_checkpoint(page, "connections");
        }
        let paging = query.paging()?;
        let page = super::list(&state, &principal, &filter, paging.slice()).await?;
        Ok(paging.respond(page.map(|c| fields.apply(wire(&c))), "connections"))
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let fields =
            Query::parse(query.as_deref(), &["fields", "include_fields"])?.field_filter()?;
        let connection = super::get(&state, &principal, &id).await?;
        Ok(Json(fields.apply(wire(&connection))).into_response())
    }

    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, CREATE_FIELDS)?;
        let connection = super::create(&state, &principal, fields).await?;
        Ok((StatusCode::CREATED, Json(wire(&connection))).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, UPDATE_FIELDS)?;
        let connection = super::update(&state, &principal, &id, fields).await?;
        Ok(Json(wire(&connection)).into_response())
    }

    /// `DELETE /api/v2/connections/{id}`: 202, as Auth0 answers.
    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::delete(&state, &principal, &id).await?;
        Ok(StatusCode::ACCEPTED.into_response())
    }

    /// `GET /api/v2/connections/{id}/clients`: `{clients: [{client_id}], next}`.
    pub(crate) async fn clients(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(
            query.as_deref(),
            &["from", "take", "fields", "include_fields"],
        )?;
        let page = super::enabled_clients(&state, &principal, &id, query.checkpoint()?).await?;
        let clients: Vec<Value> = page
            .items
            .iter()
            .map(|client_id| json!({ "client_id": client_id }))
            .collect();
        let mut body = json!({ "clients": clients });
        if let Some(next) = page.next {
            body["next"] = json!(next);
        }
        Ok(Json(body).into_response())
    }

    /// `PATCH /api/v2/connections/{id}/clients` (`[{client_id, status}]`): 204.
    pub(crate) async fn update_clients(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let changes = body::json(&headers, body)?;
        super::update_enabled_clients(&state, &principal, &id, &changes).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}
