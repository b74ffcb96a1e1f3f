//! Request bodies: JSON objects only, no member named twice (at any depth), every member
//! known to the endpoint, each of the type Auth0 documents. Errors use Auth0's
//! `Payload validation error: '…'` wording and never repeat a member's value (it may be a
//! password).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use tessera_core::Scope;

use super::error::{ApiError, ApiResult};
use crate::edge::params::{JsonError, json_value, media_type};

/// The members of a JSON object body, taken one by one with their expected types.
pub(crate) struct Fields(Map<String, Value>);

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(expected: &str, found: &Value, property: &str) -> ApiError {
    ApiError::invalid_property(
        format!(
            "Expected type {expected} but found type {}",
            type_name(found)
        ),
        property,
    )
}

/// Parses a body that must be a JSON object whose members are all in `allowed`.
pub(crate) fn object(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    allowed: &[&str],
) -> ApiResult<Fields> {
    let value = json(headers, body)?;
    let Value::Object(map) = value else {
        return Err(ApiError::invalid_body(format!(
            "Expected type object but found type {}",
            type_name(&value)
        )));
    };
    Fields::from_map(map, allowed)
}

impl Fields {
    /// The members of an object whose members must all be in `allowed`: a parsed body,
    /// or what a dashboard form says in the body's terms.
    pub(crate) fn from_map(map: Map<String, Value>, allowed: &[&str]) -> ApiResult<Fields> {
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !unknown.is_empty() {
            let shown: Vec<String> = unknown
                .iter()
                .map(|k| k.chars().take(60).collect())
                .collect();
            return Err(ApiError::invalid_body(format!(
                "Additional properties not allowed: {}",
                shown.join(",")
            )));
        }
        Ok(Fields(map))
    }
}

/// Parses a JSON body of any type (`Content-Type: application/json`, no member named
/// twice).
pub(crate) fn json(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<Value> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "Payload content length greater than maximum allowed: 65536",
                Some("payload_too_large"),
            )
        } else {
            ApiError::new(status, "Invalid request payload", Some("invalid_body"))
        }
    })?;
    if media_type(headers) != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: send a JSON body with Content-Type: application/json",
            Some("unsupported_media_type"),
        ));
    }
    let value = json_value(&body).map_err(|error| match error {
        JsonError::Syntax => ApiError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request payload JSON format",
            Some("invalid_body"),
        ),
        JsonError::Duplicate(name) => {
            let shown: String = name.chars().take(60).collect();
            ApiError::invalid_body(format!("A member is named twice (duplicate): {shown}"))
        }
    })?;
    Ok(value)
}

impl Fields {
    /// Every member as given, for a body whose members are checked together.
    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// Whether `key` is present and `null` (then it is taken).
    pub(crate) fn is_null(&mut self, key: &str) -> bool {
        if matches!(self.0.get(key), Some(Value::Null)) {
            self.0.remove(key);
            return true;
        }
        false
    }

    /// Fails with Auth0's message when `key` is absent.
    pub(crate) fn required<T>(key: &str, value: Option<T>) -> ApiResult<T> {
        value.ok_or_else(|| {
            ApiError::invalid_body(format!("Missing required property: {key}")).about(key)
        })
    }

    /// `key`'s value as given, whatever its type.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    pub(crate) fn string(&mut self, key: &str) -> ApiResult<Option<String>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type("string", &other, key)),
        }
    }

    pub(crate) fn boolean(&mut self, key: &str) -> ApiResult<Option<bool>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(wrong_type("boolean", &other, key)),
        }
    }

    pub(crate) fn integer(&mut self, key: &str) -> ApiResult<Option<i64>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(other) => Err(wrong_type("integer", &other, key)),
        }
    }

    /// A list of strings, duplicates dropped (order kept).
    pub(crate) fn strings(&mut self, key: &str) -> ApiResult<Option<Vec<String>>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                let mut out: Vec<String> = Vec::with_capacity(items.len());
                for (index, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => {
                            if !out.contains(&s) {
                                out.push(s);
                            }
                        }
                        other => {
                            return Err(wrong_type("string", &other, &format!("{key}[{index}]")));
                        }
                    }
                }
                Ok(Some(out))
            }
            Some(other) => Err(wrong_type("array", &other, key)),
        }
    }

    /// `key`'s object as given; its members are the caller's to check.
    pub(crate) fn object_value(
        &mut self,
        key: &str,
    ) -> ApiResult<Option<serde_json::Map<String, Value>>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(wrong_type("object", &other, key)),
        }
    }

    /// `user_metadata` / `app_metadata`: an object whose member names Auth0 would accept.
    pub(crate) fn metadata(&mut self, key: &str) -> ApiResult<Option<tessera_core::Metadata>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::Object(map)) => {
                tessera_core::validate::metadata(&map, key)
                    .map_err(|why| ApiError::invalid_property(why, key))?;
                Ok(Some(map))
            }
            Some(other) => Err(wrong_type("object", &other, key)),
        }
    }

    /// A session's or a refresh token's metadata (`session_metadata`,
    /// `refresh_token_metadata`): an object of strings within `tessera_actions::metadata`'s
    /// bounds — the same as actions are held to —, `null` for none; absent: `None`.
    pub(crate) fn bounded_metadata(
        &mut self,
        key: &str,
    ) -> ApiResult<Option<BTreeMap<String, String>>> {
        if self.is_null(key) {
            return Ok(Some(BTreeMap::new()));
        }
        let Some(members) = self.object_value(key)? else {
            return Ok(None);
        };
        let mut metadata = BTreeMap::new();
        for (name, value) in members {
            let Value::String(value) = value else {
                return Err(ApiError::invalid_property(
                    format!("Each value of {key} must be a string"),
                    key,
                ));
            };
            metadata.insert(name, value);
        }
        tessera_actions::metadata::check(&metadata)
            .map_err(|why| ApiError::invalid_property(capitalised(&why), key))?;
        Ok(Some(metadata))
    }

    /// A nested object, as `Fields` restricted to `allowed`.
    pub(crate) fn object(&mut self, key: &str, allowed: &[&str]) -> ApiResult<Option<Fields>> {
        match self.0.remove(key) {
            None => Ok(None),
            Some(Value::Object(map)) => {
                if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                    let shown: String = unknown.chars().take(60).collect();
                    return Err(ApiError::invalid_property(
                        format!("Additional properties not allowed: {shown}"),
                        key,
                    ));
                }
                Ok(Some(Fields(map)))
            }
            Some(other) => Err(wrong_type("object", &other, key)),
        }
    }

    /// A non-empty list of objects restricted to `allowed` (e.g. `permissions`).
    pub(crate) fn objects(
        &mut self,
        key: &str,
        allowed: &[&str],
    ) -> ApiResult<Option<Vec<Fields>>> {
        let items = match self.0.remove(key) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(wrong_type("array", &other, key)),
        };
        if items.is_empty() {
            return Err(ApiError::invalid_property(
                "Array is too short (0), minimum 1",
                key,
            ));
        }
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let property = format!("{key}[{index}]");
            let Value::Object(map) = item else {
                return Err(wrong_type("object", &item, &property));
            };
            if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                let shown: String = unknown.chars().take(60).collect();
                return Err(ApiError::invalid_property(
                    format!("Additional properties not allowed: {shown}"),
                    &property,
                ));
            }
            out.push(Fields(map));
        }
        Ok(Some(out))
    }

    /// Scopes in Auth0's shape: `[{"value": "read:messages", "description": "…"}]`,
    /// each value valid and listed once.
    pub(crate) fn scopes(&mut self, key: &str) -> ApiResult<Option<Vec<Scope>>> {
        let items = match self.0.remove(key) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(wrong_type("array", &other, key)),
        };
        let mut scopes: Vec<Scope> = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let property = format!("{key}[{index}]");
            let Value::Object(map) = item else {
                return Err(wrong_type("object", &item, &property));
            };
            if let Some(unknown) = map
                .keys()
                .find(|k| !["value", "description"].contains(&k.as_str()))
            {
                let shown: String = unknown.chars().take(60).collect();
                return Err(ApiError::invalid_property(
                    format!("Additional properties not allowed: {shown}"),
                    &property,
                ));
            }
            let mut fields = Fields(map);
            let value = Fields::required("value", fields.string("value")?).map_err(|_| {
                ApiError::invalid_property("Missing required property: value", &property)
            })?;
            tessera_core::validate::scope_value(&value).map_err(ApiError::bad_request)?;
            let description = fields.string("description")?.unwrap_or_default();
            let description = tessera_core::validate::scope_description(&value, &description)
                .map_err(ApiError::bad_request)?;
            if scopes.iter().any(|s| s.value == value) {
                return Err(ApiError::bad_request(format!(
                    "the scope {value:?} is listed twice"
                )));
            }
            scopes.push(Scope { value, description });
        }
        Ok(Some(scopes))
    }
}

/// Auth0's messages start with a capital.
fn capitalised(text: &str) -> String {
    let mut characters = text.chars();
    characters
        .next()
        .map(|first| first.to_uppercase().chain(characters).collect())
        .unwrap_or_default()
}
