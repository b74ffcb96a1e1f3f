//! `/api/v2/log-streams`: where the audit log is pushed (Auth0's log streams, type `http`
//! only). The shape is Auth0's: `{id, name, type, status, sink: {httpEndpoint,
//! httpContentType, httpContentFormat, httpAuthorization, httpCustomHeaders}, filters,
//! isPriority}`. The authorization is sealed with the master key before it is stored and
//! never shown: no answer holds `httpAuthorization`. The endpoint follows the rule of every
//! outbound URL (`tessera_core::connection::upstream_url`: https, http only to loopback,
//! no credentials). Delivery is `crate::audit::streams`'. Scopes `read:log_streams`,
//! `create:log_streams`, `update:log_streams`, `delete:log_streams`.

use axum::http::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use tessera_core::connection::upstream_url;
use tessera_jose::MasterKey;
use tessera_store::{LogStream, LogStreamUpdate, MAX_LOG_STREAMS, StoreError};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:log_streams"];
pub(crate) const CREATE: &[&str] = &["create:log_streams"];
pub(crate) const UPDATE: &[&str] = &["update:log_streams"];
pub(crate) const DELETE: &[&str] = &["delete:log_streams"];

pub(crate) const CREATE_FIELDS: &[&str] = &["name", "type", "sink", "filters", "isPriority"];
pub(crate) const UPDATE_FIELDS: &[&str] = &["name", "status", "sink", "filters", "isPriority"];
const SINK_FIELDS: &[&str] = &[
    "httpEndpoint",
    "httpContentType",
    "httpContentFormat",
    "httpAuthorization",
    "httpCustomHeaders",
];

/// The formats a batch is posted in (`crate::audit::streams`).
pub(crate) const FORMATS: &[&str] = &["JSONLINES", "JSONARRAY", "JSONOBJECT"];
const STATUSES: &[&str] = &["active", "paused", "suspended"];
const MAX_NAME: usize = 128;
const MAX_AUTHORIZATION: usize = 4096;
const MAX_HEADERS: usize = 10;
const MAX_HEADER_NAME: usize = 100;
const MAX_HEADER_VALUE: usize = 1024;
const MAX_CONTENT_TYPE: usize = 100;
const MAX_FILTERS: usize = 30;
/// Headers a stream may not set: the request's framing and its authorization (which
/// has its own, sealed, member).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "host",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Auth0's filter categories, and the event types of each Tessera records.
pub(crate) const CATEGORIES: &[(&str, &[&str])] = &[
    ("auth.login.success", &["s", "ssa"]),
    ("auth.login.fail", &["f", "fp", "fu", "fsa", "fcoa"]),
    (
        "auth.login.notification",
        &["limit_wc", "limit_mu", "pwd_leak"],
    ),
    (
        "auth.logout.success",
        &["slo", "oidc_backchannel_logout_succeeded"],
    ),
    (
        "auth.logout.fail",
        &["flo", "oidc_backchannel_logout_failed"],
    ),
    ("auth.signup.success", &["ss"]),
    ("auth.signup.fail", &["fs"]),
    ("auth.silent_auth.success", &["ssa"]),
    ("auth.silent_auth.fail", &["fsa"]),
    (
        "auth.token_exchange.success",
        &[
            "seacft", "seccft", "sertft", "sepft", "sede", "seoobft", "seotpft",
        ],
    ),
    (
        "auth.token_exchange.fail",
        &[
            "feacft", "feccft", "fertft", "fepft", "fede", "feoobft", "feotpft",
        ],
    ),
    ("management.success", &["sapi"]),
    ("management.fail", &["fapi"]),
    ("user.notification", &["scp", "scpr", "sv", "sdu", "srrt"]),
    ("user.fail", &["fcp", "fcpr", "fv", "fdu"]),
    ("system.notification", &["w", "api_limit"]),
    ("other", &[]),
];

/// Whether an event of `log_type` passes `filters` (none: every event). `other` takes
/// the types no category names.
pub(crate) fn passes(filters: &Value, log_type: &str) -> bool {
    let Some(filters) = filters.as_array().filter(|f| !f.is_empty()) else {
        return true;
    };
    let named = |category: &str| {
        if category == "other" {
            return !CATEGORIES
                .iter()
                .any(|(_, types)| types.contains(&log_type));
        }
        CATEGORIES
            .iter()
            .any(|(name, types)| *name == category && types.contains(&log_type))
    };
    filters
        .iter()
        .filter_map(|filter| filter.get("name").and_then(Value::as_str))
        .any(named)
}

const SEAL_CONTEXT: &[u8] = b"log_stream httpAuthorization";

fn seal(master_key: &MasterKey, authorization: &str) -> Vec<u8> {
    master_key.seal(authorization.as_bytes(), SEAL_CONTEXT)
}

/// The authorization a stream sends, unsealed; `None` if it has none or it cannot be
/// opened (another master key).
pub(crate) fn authorization(master_key: &MasterKey, stream: &LogStream) -> Option<String> {
    let sealed = stream.sealed_authorization.as_ref()?;
    let opened = master_key.open(sealed, SEAL_CONTEXT).ok()?;
    String::from_utf8(opened).ok()
}

fn not_found() -> ApiError {
    ApiError::not_found("The log stream does not exist", "inexistent_log_stream")
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(_) => not_found(),
        StoreError::Conflict("the tenant's limit of log streams") => ApiError::forbidden(
            format!("A tenant may have at most {MAX_LOG_STREAMS} log streams"),
            "too_many_entities",
        ),
        other => other.into(),
    }
}

fn bad(property: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_property(why, property)
}

fn printable(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn name_of(name: String) -> ApiResult<String> {
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME || !printable(&name) || name.trim().is_empty() {
        return Err(bad(
            "name",
            format!("must be 1 to {MAX_NAME} printable characters"),
        ));
    }
    Ok(name)
}

fn header_value(text: &str, max: usize, property: &str) -> ApiResult<()> {
    if text.len() > max || HeaderValue::from_str(text).is_err() || !printable(text) {
        return Err(bad(
            property,
            format!("must be at most {max} characters a header value may hold"),
        ));
    }
    Ok(())
}

/// The sink's members checked and completed with Auth0's defaults, and the
/// authorization taken out of it: `Some(None)` removes it (`null` or `""`).
fn sink_of(mut sink: Fields, base: Option<&Map<String, Value>>) -> ApiResult<SinkChange> {
    let mut members = base.cloned().unwrap_or_default();
    if let Some(endpoint) = sink.string("httpEndpoint")? {
        upstream_url(&endpoint).map_err(|why| bad("sink.httpEndpoint", why))?;
        members.insert("httpEndpoint".into(), Value::String(endpoint));
    }
    if !members.contains_key("httpEndpoint") {
        return Err(
            ApiError::invalid_body("Missing required property: sink.httpEndpoint")
                .about("sink.httpEndpoint"),
        );
    }
    if let Some(content_type) = sink.string("httpContentType")? {
        header_value(&content_type, MAX_CONTENT_TYPE, "sink.httpContentType")?;
        if !content_type.contains('/') {
            return Err(bad("sink.httpContentType", "must be a media type"));
        }
        members.insert("httpContentType".into(), Value::String(content_type));
    }
    members
        .entry("httpContentType")
        .or_insert_with(|| Value::String("application/json".into()));
    if let Some(format) = sink.string("httpContentFormat")? {
        if !FORMATS.contains(&format.as_str()) {
            return Err(bad(
                "sink.httpContentFormat",
                format!("must be one of {}", FORMATS.join(", ")),
            ));
        }
        members.insert("httpContentFormat".into(), Value::String(format));
    }
    members
        .entry("httpContentFormat")
        .or_insert_with(|| Value::String("JSONLINES".into()));
    let authorization = if sink.is_null("httpAuthorization") {
        Some(None)
    } else {
        match sink.string("httpAuthorization")? {
            None => None,
            Some(text) if text.is_empty() => Some(None),
            Some(text) => {
                header_value(&text, MAX_AUTHORIZATION, "sink.httpAuthorization")?;
                Some(Some(text))
            }
        }
    };
    if sink.is_null("httpCustomHeaders") {
        members.insert("httpCustomHeaders".into(), json!([]));
    } else if let Some(headers) = sink.take("httpCustomHeaders") {
        members.insert("httpCustomHeaders".into(), custom_headers(headers)?);
    }
    members
        .entry("httpCustomHeaders")
        .or_insert_with(|| json!([]));
    Ok(SinkChange {
        members,
        authorization,
    })
}

struct SinkChange {
    members: Map<String, Value>,
    authorization: Option<Option<String>>,
}

fn custom_headers(value: Value) -> ApiResult<Value> {
    const P: &str = "sink.httpCustomHeaders";
    let Value::Array(items) = value else {
        return Err(bad(P, "must be an array of {header, value}"));
    };
    if items.len() > MAX_HEADERS {
        return Err(bad(P, format!("at most {MAX_HEADERS} headers")));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let (Some(header), Some(value), 2) = (
            item.get("header").and_then(Value::as_str),
            item.get("value").and_then(Value::as_str),
            item.as_object().map_or(0, Map::len),
        ) else {
            return Err(bad(
                P,
                "each header must be an object {header, value} of two strings",
            ));
        };
        let lower = header.to_ascii_lowercase();
        if header.is_empty()
            || header.len() > MAX_HEADER_NAME
            || HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            return Err(bad(
                P,
                format!("a header name must be a token of at most {MAX_HEADER_NAME} characters"),
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(bad(
                P,
                format!("the header {lower} cannot be set (httpAuthorization sets Authorization)"),
            ));
        }
        if seen.contains(&lower) {
            return Err(bad(P, format!("the header {lower} is given twice")));
        }
        header_value(value, MAX_HEADER_VALUE, P)?;
        seen.push(lower);
        out.push(json!({ "header": header, "value": value }));
    }
    Ok(Value::Array(out))
}

fn filters_of(value: Value) -> ApiResult<Value> {
    const P: &str = "filters";
    let Value::Array(items) = value else {
        return Err(bad(P, "must be an array of {type: \"category\", name}"));
    };
    if items.len() > MAX_FILTERS {
        return Err(bad(P, format!("at most {MAX_FILTERS} filters")));
    }
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        let known = item.as_object().is_some_and(|o| o.len() == 2)
            && item.get("type").and_then(Value::as_str) == Some("category")
            && item
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| CATEGORIES.iter().any(|(c, _)| *c == name));
        if !known {
            let names: Vec<&str> = CATEGORIES.iter().map(|(c, _)| *c).collect();
            return Err(bad(
                P,
                format!(
                    "each filter must be {{type: \"category\", name}} with a name of {}",
                    names.join(", ")
                ),
            ));
        }
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(Value::Array(out))
}

/// A stream as the Management API shows it: never its authorization.
pub(crate) fn shown(stream: &LogStream) -> Value {
    let mut sink = stream.sink.clone();
    sink.remove("httpAuthorization");
    json!({
        "id": stream.id,
        "name": stream.name,
        "type": stream.stream_type,
        "status": stream.status,
        "sink": sink,
        "filters": stream.filters,
        "isPriority": stream.is_priority,
    })
}

pub(crate) async fn list(state: &AppState, principal: &Principal) -> ApiResult<Vec<LogStream>> {
    principal.require(READ)?;
    Ok(state.store().list_log_streams().await?)
}

pub(crate) async fn get(state: &AppState, principal: &Principal, id: &str) -> ApiResult<LogStream> {
    principal.require(READ)?;
    state
        .store()
        .find_log_stream(id)
        .await?
        .ok_or_else(not_found)
}

pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    mut fields: Fields,
) -> ApiResult<LogStream> {
    principal.require(CREATE)?;
    let name = name_of(Fields::required("name", fields.string("name")?)?)?;
    let stream_type = fields.string("type")?.unwrap_or_else(|| "http".into());
    if stream_type != "http" {
        return Err(bad(
            "type",
            "Tessera delivers log streams of type http only",
        ));
    }
    let sink = Fields::required("sink", fields.object("sink", SINK_FIELDS)?)?;
    let sink = sink_of(sink, None)?;
    let filters = fields.take("filters").map(filters_of).transpose()?;
    let is_priority = fields.boolean("isPriority")?.unwrap_or(false);
    let master_key = &state.config().master_key;
    let now = now();
    let stream = LogStream {
        id: format!("lst_{}", tessera_core::ids::alphanumeric(16)),
        name,
        stream_type,
        status: "active".into(),
        sink: sink.members,
        sealed_authorization: sink
            .authorization
            .flatten()
            .map(|authorization| seal(master_key, &authorization)),
        filters: filters.unwrap_or_else(|| json!([])),
        is_priority,
        cursor: 0,
        failures: 0,
        last_error: None,
        next_attempt_at: 0,
        created_at: now,
        updated_at: now,
    };
    state
        .store()
        .create_log_stream(&stream)
        .await
        .map_err(store_error)
}

/// Changes a stream; `status: "active"` resumes a paused or suspended one from its cursor.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<LogStream> {
    principal.require(UPDATE)?;
    let name = fields.string("name")?.map(name_of).transpose()?;
    let status = fields.string("status")?;
    if let Some(status) = &status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(bad(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ));
    }
    let sink = fields.object("sink", SINK_FIELDS)?;
    let filters = fields.take("filters").map(filters_of).transpose()?;
    let is_priority = fields.boolean("isPriority")?;
    let (sink, sealed_authorization) = match sink {
        None => (None, None),
        Some(sink) => {
            let current = state
                .store()
                .find_log_stream(id)
                .await?
                .ok_or_else(not_found)?;
            let change = sink_of(sink, Some(&current.sink))?;
            let master_key = &state.config().master_key;
            let sealed = change.authorization.map(|authorization| {
                authorization.map(|authorization| seal(master_key, &authorization))
            });
            (Some(change.members), sealed)
        }
    };
    let update = LogStreamUpdate {
        name,
        status,
        sink,
        sealed_authorization,
        filters,
        is_priority,
    };
    state
        .store()
        .update_log_stream(id, &update, now())
        .await
        .map_err(store_error)
}

pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    state
        .store()
        .delete_log_stream(id)
        .await
        .map_err(store_error)
}

pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::Value;

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::ApiResult;
    use super::super::paging::Query;
    use super::{CREATE, CREATE_FIELDS, DELETE, READ, UPDATE, UPDATE_FIELDS, shown};
    use crate::AppState;

    /// `GET /api/v2/log-streams`: every stream (a tenant has a handful), a bare array.
    pub(crate) async fn list(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        Query::parse(query.as_deref(), &[])?;
        let streams = super::list(&state, &principal).await?;
        Ok(Json(Value::Array(streams.iter().map(shown).collect())).into_response())
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let stream = super::get(&state, &principal, &id).await?;
        Ok(Json(shown(&stream)).into_response())
    }

    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, CREATE_FIELDS)?;
        let stream = super::create(&state, &principal, fields).await?;
        Ok((StatusCode::CREATED, Json(shown(&stream))).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, UPDATE_FIELDS)?;
        let stream = super::update(&state, &principal, &id, fields).await?;
        Ok(Json(shown(&stream)).into_response())
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
}
