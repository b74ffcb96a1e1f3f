//! The Logs page: the audit log newest first, a page at a time, filtered by event type
//! or user; one event's detail with its JSON. Read through `management::logs`, so the
//! administrator needs `read:logs` as a Management API caller would.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use tessera_store::LogSearch;

use super::session::Admin;
use super::views::{self, Frame};
use super::{Paging, query_of};
use crate::AppState;
use crate::management::{logs, wire};

const PER_PAGE: u32 = 50;
/// As the Management API's search: the first 1000 events of a filter; narrower filters
/// reach further back.
const MAX_RESULTS: u64 = 1000;

#[derive(Template)]
#[template(path = "admin/logs.html")]
struct ListPage<'a> {
    frame: Frame<'a>,
    events: Vec<wire::LogEvent>,
    paging: Paging,
    log_type: String,
    user_id: String,
    error: Option<&'static str>,
    /// The filters as a query string, for the pager's links.
    search_query: String,
}

fn valid_type(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `GET /admin/logs`.
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    let mut paging = Paging::from_query(&query, PER_PAGE);
    let last_page = MAX_RESULTS / u64::from(PER_PAGE) - 1;
    paging.page = paging.page.min(last_page);
    let log_type = query.get("type").unwrap_or("").trim().to_string();
    let user_id = query.get("user").unwrap_or("").trim().to_string();
    let mut error = None;
    let mut search = LogSearch::default();
    if !log_type.is_empty() {
        if valid_type(&log_type) {
            search.log_type = Some(log_type.clone());
        } else {
            error = Some("An event type is a short code such as s, fp or sapi.");
        }
    }
    if !user_id.is_empty() {
        if user_id.chars().count() <= 300 {
            search.user_id = Some(user_id.clone());
        } else {
            error = Some("A user id has at most 300 characters.");
        }
    }
    let mut page = match logs::search(
        &state,
        &admin.principal,
        &search,
        paging.slice_looking_ahead(),
    )
    .await
    {
        Ok(page) => page,
        Err(error) => return views::operation_refused(&error),
    };
    let mut paging = paging.looked_ahead(&mut page.items);
    // No page after the last one served.
    paging.total = paging.total.min(MAX_RESULTS);
    let search_query = form_urlencoded::Serializer::new(String::new())
        .append_pair("type", &log_type)
        .append_pair("user", &user_id)
        .finish();
    views::page(&ListPage {
        frame: Frame::new(&state, &admin, "logs", None),
        events: page.items.iter().map(wire::log_event).collect(),
        paging,
        log_type,
        user_id,
        error,
        search_query,
    })
}

#[derive(Template)]
#[template(path = "admin/log.html")]
struct DetailPage<'a> {
    frame: Frame<'a>,
    event: wire::LogEvent,
    json: String,
}

/// `GET /admin/logs/{id}`.
pub(crate) async fn detail(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let entry = match logs::get(&state, &admin.principal, &id).await {
        Ok(entry) => entry,
        Err(error) => return views::operation_refused(&error),
    };
    let event = wire::log_event(&entry);
    let json = serde_json::to_string_pretty(&event).unwrap_or_default();
    views::page(&DetailPage {
        frame: Frame::new(&state, &admin, "logs", None),
        event,
        json,
    })
}
