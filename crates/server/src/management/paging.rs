//! Query strings and pagination, as Auth0 lists: `page` (0-based), `per_page` (default 50,
//! at most 100), `include_totals=true` → `{start, limit, length, total, <items>: […]}`,
//! otherwise a bare array. This slice pages in memory over the store's list functions
//! (every row is read, then one page is cut out).

use std::collections::HashMap;

use axum::Json;
use axum::response::{IntoResponse, Response};
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

pub(crate) struct Paging {
    pub(crate) page: usize,
    pub(crate) per_page: usize,
    pub(crate) include_totals: bool,
}

impl Paging {
    /// One page of `items` (already in order), in Auth0's list shape.
    pub(crate) fn respond(&self, items: Vec<Value>, key: &str) -> Response {
        let total = items.len();
        let start = self.page.saturating_mul(self.per_page);
        let page: Vec<Value> = items.into_iter().skip(start).take(self.per_page).collect();
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
            Json(Value::Array(page)).into_response()
        }
    }
}
