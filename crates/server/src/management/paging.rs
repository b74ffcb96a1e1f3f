//! Query strings and pagination, as Auth0 lists: `page` (0-based), `per_page` (default 50,
//! at most 100), `include_totals=true` → `{start, limit, length, total, <items>: […]}`,
//! otherwise a bare array. This slice pages in memory over the store's list functions
//! (every row is read, then one page is cut out).

use std::collections::HashMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};

pub(crate) const DEFAULT_PER_PAGE: usize = 50;
pub(crate) const MAX_PER_PAGE: usize = 100;

/// Query parameters; unknown names and repeated ones are refused.
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> ApiResult<Query> {
        let mut map = HashMap::new();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&key.as_ref()) {
                let shown: String = key.chars().take(60).collect();
                return Err(ApiError::invalid_query(format!(
                    "Additional properties not allowed: {shown}"
                )));
            }
            if map.insert(key.to_string(), value.to_string()).is_some() {
                return Err(ApiError::invalid_query(format!(
                    "Expected a single value for {key}"
                )));
            }
        }
        Ok(Query(map))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn number(&self, key: &str) -> ApiResult<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(text) => text.parse::<usize>().map(Some).map_err(|_| {
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
    /// `take` = how many (default 50, at most 100); with `include_totals=true` the page is
    /// `{<key>: […], next}`, `next` present while more follow. `items` are `(id, shape)`
    /// in order.
    pub(crate) fn checkpoint<T: Serialize>(
        &self,
        items: Vec<(String, T)>,
        key: &str,
    ) -> ApiResult<Response> {
        let take = match self.get("take") {
            None => DEFAULT_PER_PAGE,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid_query_property(
                        format!("Expected an integer between 1 and {MAX_PER_PAGE}"),
                        "take",
                    ));
                }
            },
        };
        let start = match self.get("from") {
            None => 0,
            Some(from) => items
                .iter()
                .position(|(id, _)| id == from)
                .unwrap_or(items.len()),
        };
        let next = items.get(start + take).map(|(id, _)| id.clone());
        let page: Vec<T> = items
            .into_iter()
            .skip(start)
            .take(take)
            .map(|(_, value)| value)
            .collect();
        if self.boolean("include_totals")?.unwrap_or(false) {
            let mut body = json!({ key: page });
            if let Some(next) = next {
                body["next"] = json!(next);
            }
            return Ok(Json(body).into_response());
        }
        Ok(Json(page).into_response())
    }

    pub(crate) fn paging(&self) -> ApiResult<Paging> {
        let page = self.number("page")?.unwrap_or(0);
        let per_page = self.number("per_page")?.unwrap_or(DEFAULT_PER_PAGE);
        if per_page > MAX_PER_PAGE {
            return Err(ApiError::invalid_query_property(
                format!("Too large: {per_page} > {MAX_PER_PAGE}"),
                "per_page",
            ));
        }
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
    pub(crate) page: usize,
    pub(crate) per_page: usize,
    pub(crate) include_totals: bool,
}

impl Paging {
    /// One page of `items` (already in order), in Auth0's list shape.
    pub(crate) fn respond<T: Serialize>(&self, items: Vec<T>, key: &str) -> Response {
        let total = items.len();
        let start = self.page.saturating_mul(self.per_page);
        let page: Vec<T> = items.into_iter().skip(start).take(self.per_page).collect();
        if self.include_totals {
            Json(json!({
                "start": start,
                "limit": self.per_page,
                "length": page.len(),
                "total": total,
                key: page,
            }))
            .into_response()
        } else {
            Json(page).into_response()
        }
    }
}
