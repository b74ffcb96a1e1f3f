//! `/api/v2/connections`: Tessera's one connection, the database connection
//! (`Username-Password-Authentication`, strategy `auth0`), as auth0-deploy-cli's
//! `databases` and the SDKs read it. Its options describe what Tessera enforces (the
//! password policy of `tessera_core::check_password_policy`, the brute-force block of the
//! hosted login); they are not settable, so a `PATCH` that repeats them is accepted and
//! any other value refused. Connections cannot be created or deleted.
//!
//! Every application may sign users in with it: Tessera keeps no per-connection list of
//! enabled applications. `GET …/clients` lists none — the list Auth0 keeps there is one
//! Tessera does not have, and listing every application would make tools such as
//! auth0-deploy-cli "disable" each one a file does not name; enabling an application is
//! accepted (it is enabled), disabling one refused.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tessera_core::{DATABASE_CONNECTION, DATABASE_CONNECTION_ID};
use tessera_store::CheckpointPage;

use super::absent::unchanged;
use super::auth::require;
use super::body;
use super::error::{ApiError, ApiResult};
use super::paging::Query;
use crate::AppState;

/// The database connection in Auth0's shape.
fn database_connection() -> Map<String, Value> {
    let connection = json!({
        "id": DATABASE_CONNECTION_ID,
        "name": DATABASE_CONNECTION,
        "display_name": DATABASE_CONNECTION,
        "strategy": "auth0",
        "is_domain_connection": false,
        "realms": [DATABASE_CONNECTION],
        "options": {
            "brute_force_protection": true,
            "disable_signup": false,
            "disable_self_service_change_password": false,
            "requires_username": false,
            "import_mode": false,
            "password_complexity_options": { "min_length": 8 },
            "password_dictionary": { "enable": true, "dictionary": [] },
        },
    });
    match connection {
        Value::Object(members) => members,
        _ => unreachable!("a JSON object literal"),
    }
}

fn no_such_connection() -> ApiError {
    ApiError::not_found("The connection does not exist", "inexistent_connection")
}

fn check_id(id: &str) -> ApiResult<()> {
    if id == DATABASE_CONNECTION_ID {
        Ok(())
    } else {
        Err(no_such_connection())
    }
}

/// `GET /api/v2/connections`: the database connection, unless `strategy` or `name`
/// exclude it.
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:connections"]).await?;
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
    let strategies: Vec<&str> = query
        .all("strategy")
        .into_iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .collect();
    let matches = (strategies.is_empty() || strategies.contains(&"auth0"))
        && query
            .get("name")
            .is_none_or(|name| name == DATABASE_CONNECTION);
    let connection = fields.apply(Value::Object(database_connection()));
    if query.by_checkpoint() {
        let checkpoint = query.checkpoint()?;
        // The one connection is the whole list; a checkpoint past it finds nothing.
        let first = checkpoint
            .from
            .is_none_or(|from| from <= DATABASE_CONNECTION_ID);
        let items = if matches && first {
            vec![connection]
        } else {
            Vec::new()
        };
        return query.respond_checkpoint(CheckpointPage { items, next: None }, "connections");
    }
    let paging = query.paging()?;
    let items = if matches && paging.page == 0 && paging.per_page > 0 {
        vec![connection]
    } else {
        Vec::new()
    };
    let total = u64::from(matches);
    Ok(paging.respond(
        tessera_store::Page {
            items,
            total: Some(total),
        },
        "connections",
    ))
}

/// `GET /api/v2/connections/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:connections"]).await?;
    let fields = Query::parse(query.as_deref(), &["fields", "include_fields"])?.field_filter()?;
    check_id(&id)?;
    Ok(Json(fields.apply(Value::Object(database_connection()))).into_response())
}

/// `PATCH /api/v2/connections/{id}`: accepted when it repeats what the connection is.
pub(crate) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:connections"]).await?;
    check_id(&id)?;
    let wanted = body::json(&headers, body)?;
    let current = database_connection();
    let Value::Object(mut wanted) = wanted else {
        return Err(ApiError::invalid_body("Expected type object"));
    };
    // Options are compared member by member: a tool may send only some.
    if let Some(options) = wanted.remove("options") {
        unchanged(&current["options"], &options)?;
    }
    // The deprecated `enabled_clients` member: every application is enabled already.
    if let Some(clients) = wanted.remove("enabled_clients") {
        let all_strings = clients
            .as_array()
            .is_some_and(|list| list.iter().all(Value::is_string));
        if !all_strings {
            return Err(ApiError::invalid_property(
                "Expected type array of strings",
                "enabled_clients",
            ));
        }
    }
    unchanged(&Value::Object(current.clone()), &Value::Object(wanted))?;
    Ok(Json(Value::Object(current)).into_response())
}

/// `GET /api/v2/connections/{id}/clients` (`{clients: [{client_id}], next}`): no list of
/// enabled applications is kept (see the module's comment), so none.
pub(crate) async fn clients(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:connections"]).await?;
    let query = Query::parse(
        query.as_deref(),
        &["from", "take", "fields", "include_fields"],
    )?;
    check_id(&id)?;
    query.checkpoint()?;
    Ok(Json(json!({ "clients": [] })).into_response())
}

/// `PATCH /api/v2/connections/{id}/clients` (`[{client_id, status}]`): enabling is what
/// Tessera does already; disabling is refused.
pub(crate) async fn update_clients(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:connections"]).await?;
    check_id(&id)?;
    let changes = body::json(&headers, body)?;
    let Some(changes) = changes.as_array() else {
        return Err(ApiError::invalid_body("Expected type array"));
    };
    for change in changes {
        let Some(change) = change.as_object() else {
            return Err(ApiError::invalid_body("Expected an array of objects"));
        };
        let Some(client_id) = change.get("client_id").and_then(Value::as_str) else {
            return Err(ApiError::invalid_property(
                "Missing required property",
                "client_id",
            ));
        };
        match change.get("status") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => {
                return Err(ApiError::bad_request(
                    "Every application may use the database connection in Tessera: \
                     an application cannot be disabled for it",
                ));
            }
            _ => {
                return Err(ApiError::invalid_property(
                    "Expected type boolean",
                    "status",
                ));
            }
        }
        if change.len() != 2 {
            return Err(ApiError::invalid_body(
                "Additional properties not allowed: only client_id and status",
            ));
        }
        if state.store().find_client(client_id).await?.is_none() {
            return Err(ApiError::not_found(
                "The client does not exist",
                "inexistent_client",
            ));
        }
    }
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
