//! Query strings and pagination, as Auth0 lists: `page` (0-based), `per_page` (default 50,
//! at most 100), `include_totals=true` → `{start, limit, length, total, <items>: […]}`,
//! otherwise a bare array; or by checkpoint, `from` / `take` → `{<items>: […], next}`.
//! The store pages in SQL ([`tessera_store::Slice`], [`tessera_store::Checkpoint`]):
//! this module only reads the parameters and shapes the answer.

use std::collections::HashMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use tessera_store::{Checkpoint, CheckpointPage, Page, Slice};

use super::error::{ApiError, ApiResult};

pub(crate) const DEFAULT_PER_PAGE: u32 = 50;
pub(crate) const MAX_PER_PAGE: u32 = 100;
/// Auth0 serves at most the first 1000 results of a user search (and of a role's members
/// by `page`): `page * per_page + per_page` may not exceed it. Past it, checkpoints.
pub(crate) const MAX_PAGED_RESULTS: u64 = 1000;

/// Parameters Auth0 lets a client repeat (`identifiers=a&identifiers=b`).
const REPEATABLE: &[&str] = &["identifiers", "strategy"];

/// Query parameters; unknown names, repeated ones and control characters are refused.
pub(crate) struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> ApiResult<Query> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&key.as_ref()) {
                let shown: String = key.chars().take(60).collect();
                return Err(ApiError::invalid_query(format!(
                    "Additional properties not allowed: {shown}"
                )));
            }
            // No stored value holds one, and PostgreSQL refuses NUL in text outright.
            if value.chars().any(char::is_control) {
                return Err(ApiError::invalid_query_property(
                    "Control characters are not allowed",
                    &key,
                ));
            }
            let values = map.entry(key.to_string()).or_default();
            if !values.is_empty() && !REPEATABLE.contains(&key.as_ref()) {
                return Err(ApiError::invalid_query(format!(
                    "Expected a single value for {key}"
                )));
            }
            values.push(value.to_string());
        }
        Ok(Query(map))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(|values| values.first())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of a repeatable parameter, in order.
    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .get(key)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .collect()
    }

    fn number(&self, key: &str) -> ApiResult<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
                ApiError::invalid_query_property(
                    "Expected type integer (0 or more) but found type string",
                    key,
                )
            }),
        }
    }

    pub(crate) fn boolean(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid_query_property(
                "Expected type boolean but found type string",
                key,
            )),
        }
    }

    /// `fields=a,b` with `include_fields=true` (the default) keeps only those top-level
    /// members of each object returned; with `include_fields=false` it drops them.
    pub(crate) fn field_filter(&self) -> ApiResult<FieldFilter> {
        let include = self.boolean("include_fields")?.unwrap_or(true);
        let names = self
            .get("fields")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(FieldFilter { names, include })
    }

    /// Whether the caller pages by checkpoint (`from` / `take`).
    pub(crate) fn by_checkpoint(&self) -> bool {
        self.get("from").is_some() || self.get("take").is_some()
    }

    /// Auth0's checkpoint pagination (what the v5+ SDKs use for client grants and role
    /// members): `from` = the id of the first item to return (from a previous `next`),
    /// `take` = how many (default 50, at most 100).
    pub(crate) fn checkpoint(&self) -> ApiResult<Checkpoint<'_>> {
        let take = match self.get("take") {
            None => DEFAULT_PER_PAGE,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid_query_property(
                        format!("Expected an integer between 1 and {MAX_PER_PAGE}"),
                        "take",
                    ));
                }
            },
        };
        Ok(Checkpoint {
            from: self.get("from"),
            take,
        })
    }

    /// A page by checkpoint in Auth0's shape: with `include_totals=true`
    /// `{<key>: […], next}`, `next` present while more follow; otherwise a bare array.
    pub(crate) fn respond_checkpoint<T: Serialize>(
        &self,
        page: CheckpointPage<T>,
        key: &str,
    ) -> ApiResult<Response> {
        if self.boolean("include_totals")?.unwrap_or(false) {
            let mut body = json!({ key: page.items });
            if let Some(next) = page.next {
                body["next"] = json!(next);
            }
            return Ok(Json(body).into_response());
        }
        Ok(Json(page.items).into_response())
    }

    pub(crate) fn paging(&self) -> ApiResult<Paging> {
        let page = self.number("page")?.unwrap_or(0);
        let per_page = match self.number("per_page")? {
            None => DEFAULT_PER_PAGE,
            Some(n) if n <= u64::from(MAX_PER_PAGE) => n as u32,
            Some(n) => {
                let shown = n.min(u64::from(u32::MAX));
                return Err(ApiError::invalid_query_property(
                    format!("Too large: {shown} > {MAX_PER_PAGE}"),
                    "per_page",
                ));
            }
        };
        Ok(Paging {
            page,
            per_page,
            include_totals: self.boolean("include_totals")?.unwrap_or(false),
        })
    }
}

/// What `fields` / `include_fields` ask to see of each object.
pub(crate) struct FieldFilter {
    names: Vec<String>,
    include: bool,
}

impl FieldFilter {
    /// `shape` as JSON, with only the members asked for.
    pub(crate) fn apply(&self, shape: impl Serialize) -> Value {
        let value = serde_json::to_value(shape).expect("wire shapes always serialize");
        let Value::Object(members) = value else {
            return value;
        };
        if self.names.is_empty() {
            return Value::Object(members);
        }
        Value::Object(
            members
                .into_iter()
                .filter(|(name, _)| self.names.contains(name) == self.include)
                .collect(),
        )
    }
}

pub(crate) struct Paging {
    pub(crate) page: u64,
    pub(crate) per_page: u32,
    pub(crate) include_totals: bool,
}

impl Paging {
    /// What to ask the store for.
    pub(crate) fn slice(&self) -> Slice {
        Slice {
            offset: self.page.saturating_mul(u64::from(self.per_page)),
            limit: self.per_page,
            count: self.include_totals,
        }
    }

    /// [`Paging::slice`] within Auth0's first 1000 results (users, a role's members);
    /// a page beyond them is refused as Auth0 refuses it.
    pub(crate) fn capped_slice(&self) -> ApiResult<Slice> {
        let slice = self.slice();
        if slice.offset.saturating_add(u64::from(slice.limit)) > MAX_PAGED_RESULTS {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!(
                    "You can only page through the first {MAX_PAGED_RESULTS} records. \
                     See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation"
                ),
                Some("invalid_paging"),
            ));
        }
        Ok(slice)
    }

    /// An empty page: what a filter on something Tessera does not have (organizations,
    /// global clients) finds.
    pub(crate) fn respond_empty(&self, key: &str) -> Response {
        self.respond::<Value>(
            Page {
                items: Vec::new(),
                total: Some(0),
            },
            key,
        )
    }

    /// One page from the store, in Auth0's list shape.
    pub(crate) fn respond<T: Serialize>(&self, page: Page<T>, key: &str) -> Response {
        if self.include_totals {
            let length = page.items.len();
            Json(json!({
                "start": self.slice().offset,
                "limit": self.per_page,
                "length": length,
                "total": page.total.unwrap_or(0),
                key: page.items,
            }))
            .into_response()
        } else {
            Json(page.items).into_response()
        }
    }
}
