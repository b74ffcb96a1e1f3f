//! Monitoring → Streams: the tenant's log streams (HTTP webhooks the audit log is pushed
//! to), Create Stream, a stream's settings, pause and resume (a suspended stream resumes
//! from its cursor), delete. Every change is an operation of `management::log_streams`,
//! so a form is checked by the same rules as `/api/v2/log-streams`. The authorization is
//! write-only: the page never holds it; an empty field keeps the one set.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use tessera_store::LogStream;

use super::Deletion;
use super::form::FormError;
use super::session::{Admin, AdminForm};
use super::views::{self, Frame};
use super::{notice_of, query_of};
use crate::AppState;
use crate::edge::params::Params;
use crate::management::log_streams::{self, CATEGORIES, CREATE_FIELDS, FORMATS, UPDATE_FIELDS};
use crate::management::{ApiError, Fields};
use crate::pages::redirect;

const SECTION: &str = "streams";

/// A stream as its pages show it (never its authorization, only whether one is set).
pub(crate) struct StreamView {
    id: String,
    name: String,
    status: String,
    endpoint: String,
    content_type: String,
    format: String,
    headers: String,
    filters: Vec<String>,
    has_authorization: bool,
    failures: i64,
    last_error: Option<String>,
}

fn sink_text(stream: &LogStream, member: &str) -> String {
    stream
        .sink
        .get(member)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

impl StreamView {
    fn of(stream: &LogStream) -> Self {
        let headers = stream
            .sink
            .get("httpCustomHeaders")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        Some(format!(
                            "{}: {}",
                            item.get("header")?.as_str()?,
                            item.get("value")?.as_str()?
                        ))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        let filters = stream
            .filters
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|f| f.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        StreamView {
            id: stream.id.clone(),
            name: stream.name.clone(),
            status: stream.status.clone(),
            endpoint: sink_text(stream, "httpEndpoint"),
            content_type: sink_text(stream, "httpContentType"),
            format: sink_text(stream, "httpContentFormat"),
            headers,
            filters,
            has_authorization: stream.sealed_authorization.is_some(),
            failures: stream.failures,
            last_error: stream.last_error.clone(),
        }
    }

    /// What a form posted, shown again after a refusal (the authorization never).
    fn posted(params: &Params, current: Option<&LogStream>) -> Self {
        let text = |name: &str| params.get(name).unwrap_or("").to_string();
        let filters = CATEGORIES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| params.get(&format!("filter:{name}")).is_some())
            .map(str::to_string)
            .collect();
        StreamView {
            id: current.map(|s| s.id.clone()).unwrap_or_default(),
            name: text("name"),
            status: current.map(|s| s.status.clone()).unwrap_or_default(),
            endpoint: text("endpoint"),
            content_type: text("content_type"),
            format: text("format"),
            headers: text("headers"),
            filters,
            has_authorization: current.is_some_and(|s| s.sealed_authorization.is_some()),
            failures: current.map_or(0, |s| s.failures),
            last_error: current.and_then(|s| s.last_error.clone()),
        }
    }

    fn filtered(&self, category: &str) -> bool {
        self.filters.iter().any(|f| f == category)
    }
}

#[derive(Template)]
#[template(path = "admin/log_streams.html")]
struct ListPage<'a> {
    frame: Frame<'a>,
    streams: Vec<StreamView>,
    can_create: bool,
}

/// `GET /admin/log-streams`: every stream (a tenant has at most ten).
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    let streams = match log_streams::list(&state, &admin.principal).await {
        Ok(streams) => streams,
        Err(error) => return views::operation_refused(&error),
    };
    views::page(&ListPage {
        frame: Frame::new(&state, &admin, SECTION, notice_of(&query)),
        streams: streams.iter().map(StreamView::of).collect(),
        can_create: admin.may("create:log_streams"),
    })
}

#[derive(Template)]
#[template(path = "admin/log_stream_form.html")]
struct FormPage<'a> {
    frame: Frame<'a>,
    /// False when creating.
    editing: bool,
    stream: StreamView,
    formats: &'static [&'static str],
    categories: Vec<&'static str>,
    can_update: bool,
    can_delete: bool,
    error: Option<FormError>,
}

impl FormPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        super::form::error_on(&self.error, field)
    }

    /// A refusal that names no field of the form, shown at its top.
    fn general_error(&self) -> Option<&str> {
        let error = self.error.as_ref()?;
        let on_a_field = error.property.as_deref().is_some_and(|p| {
            [
                "name",
                "sink.httpEndpoint",
                "sink.httpAuthorization",
                "sink.httpContentType",
                "sink.httpContentFormat",
                "sink.httpCustomHeaders",
                "filters",
            ]
            .contains(&p)
        });
        (!on_a_field).then_some(error.message.as_str())
    }
}

fn categories() -> Vec<&'static str> {
    CATEGORIES.iter().map(|(name, _)| *name).collect()
}

/// `GET /admin/log-streams/new`.
pub(crate) async fn new(State(state): State<AppState>, admin: Admin) -> Response {
    views::page(&FormPage {
        frame: Frame::new(&state, &admin, SECTION, None),
        editing: false,
        stream: StreamView {
            id: String::new(),
            name: String::new(),
            status: String::new(),
            endpoint: String::new(),
            content_type: "application/json".into(),
            format: "JSONLINES".into(),
            headers: String::new(),
            filters: Vec::new(),
            has_authorization: false,
            failures: 0,
            last_error: None,
        },
        formats: FORMATS,
        categories: categories(),
        can_update: admin.may("create:log_streams"),
        can_delete: false,
        error: None,
    })
}

/// The custom headers of the form's textarea, one `Name: value` a line, as the API's
/// `httpCustomHeaders`; the operation checks them.
fn custom_headers(text: &str) -> Result<Value, ApiError> {
    let mut headers = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((header, value)) = line.split_once(':') else {
            return Err(ApiError::invalid_property(
                "Write each header on its own line as Name: value",
                "sink.httpCustomHeaders",
            ));
        };
        headers.push(json!({ "header": header.trim(), "value": value.trim() }));
    }
    Ok(Value::Array(headers))
}

/// A stream's form in the Management API's terms: the object `POST` (or `PATCH`) of
/// `/api/v2/log-streams` would receive.
fn stream_body(params: &Params, creating: bool) -> Result<Fields, ApiError> {
    let text = |name: &str| Value::String(params.get(name).unwrap_or("").trim().to_string());
    let mut sink = Map::new();
    sink.insert("httpEndpoint".into(), text("endpoint"));
    sink.insert("httpContentType".into(), text("content_type"));
    sink.insert("httpContentFormat".into(), text("format"));
    sink.insert(
        "httpCustomHeaders".into(),
        custom_headers(params.get("headers").unwrap_or(""))?,
    );
    // Write-only: empty keeps the authorization set (none when creating).
    let authorization = params.get("authorization").unwrap_or("");
    if !authorization.is_empty() {
        sink.insert(
            "httpAuthorization".into(),
            Value::String(authorization.into()),
        );
    } else if !creating && params.get("clear_authorization").is_some() {
        sink.insert("httpAuthorization".into(), Value::Null);
    }
    let filters: Vec<Value> = CATEGORIES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| params.get(&format!("filter:{name}")).is_some())
        .map(|name| json!({ "type": "category", "name": name }))
        .collect();
    let mut body = Map::new();
    body.insert("name".into(), text("name"));
    if creating {
        body.insert("type".into(), Value::String("http".into()));
    }
    body.insert("sink".into(), Value::Object(sink));
    body.insert("filters".into(), Value::Array(filters));
    Fields::from_map(
        body,
        if creating {
            CREATE_FIELDS
        } else {
            UPDATE_FIELDS
        },
    )
}

/// Whether an operation's refusal is the form's to show (what was typed is wrong) rather
/// than a page's (not allowed, gone).
fn shown_on_form(error: &ApiError) -> bool {
    error.status == StatusCode::BAD_REQUEST
        || error.status == StatusCode::CONFLICT
        || error.error_code == Some("too_many_entities")
}

/// `POST /admin/log-streams`: Create Stream.
pub(crate) async fn create(State(state): State<AppState>, form: AdminForm) -> Response {
    let params = &form.params;
    let result = match stream_body(params, true) {
        Ok(fields) => log_streams::create(&state, &form.admin.principal, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(stream) => redirect(&format!(
            "/admin/log-streams/{}?notice=stream_created",
            stream.id
        )),
        Err(error) if shown_on_form(&error) => views::form_again(&FormPage {
            frame: Frame::new(&state, &form.admin, SECTION, None),
            editing: false,
            stream: StreamView::posted(params, None),
            formats: FORMATS,
            categories: categories(),
            can_update: true,
            can_delete: false,
            error: Some(error.into()),
        }),
        Err(error) => views::operation_refused(&error),
    }
}

async fn load(state: &AppState, admin: &Admin, id: &str) -> Result<LogStream, Response> {
    log_streams::get(state, &admin.principal, id)
        .await
        .map_err(|error| views::operation_refused(&error))
}

/// `GET /admin/log-streams/{id}`: the stream's settings and status.
pub(crate) async fn settings(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let stream = match load(&state, &admin, &id).await {
        Ok(stream) => stream,
        Err(response) => return response,
    };
    let query = query_of(query);
    views::page(&FormPage {
        frame: Frame::new(&state, &admin, SECTION, notice_of(&query)),
        editing: true,
        stream: StreamView::of(&stream),
        formats: FORMATS,
        categories: categories(),
        can_update: admin.may("update:log_streams"),
        can_delete: admin.may("delete:log_streams"),
        error: None,
    })
}

/// `POST /admin/log-streams/{id}`: Save.
pub(crate) async fn save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let params = &form.params;
    let result = match stream_body(params, false) {
        Ok(fields) => log_streams::update(&state, &form.admin.principal, &id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(stream) => redirect(&format!(
            "/admin/log-streams/{}?notice=stream_saved",
            stream.id
        )),
        Err(error) if shown_on_form(&error) => {
            let stream = match load(&state, &form.admin, &id).await {
                Ok(stream) => stream,
                Err(response) => return response,
            };
            views::form_again(&FormPage {
                frame: Frame::new(&state, &form.admin, SECTION, None),
                editing: true,
                stream: StreamView::posted(params, Some(&stream)),
                formats: FORMATS,
                categories: categories(),
                can_update: true,
                can_delete: form.admin.may("delete:log_streams"),
                error: Some(error.into()),
            })
        }
        Err(error) => views::operation_refused(&error),
    }
}

/// `POST /admin/log-streams/{id}/status`: Pause (`paused`) or Resume (`active`, which
/// also resumes a suspended stream from its cursor).
pub(crate) async fn change_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let status = form.params.get("status").unwrap_or("");
    let notice = match status {
        "active" => "stream_resumed",
        "paused" => "stream_paused",
        _ => {
            return views::refused(
                StatusCode::BAD_REQUEST,
                "A stream is either paused or resumed.",
            );
        }
    };
    let mut body = Map::new();
    body.insert("status".into(), Value::String(status.into()));
    let result = match Fields::from_map(body, UPDATE_FIELDS) {
        Ok(fields) => log_streams::update(&state, &form.admin.principal, &id, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(stream) => redirect(&format!("/admin/log-streams/{}?notice={notice}", stream.id)),
        Err(error) => views::operation_refused(&error),
    }
}

#[derive(Template)]
#[template(path = "admin/log_stream_delete.html")]
struct DeletePage<'a> {
    frame: Frame<'a>,
    stream: StreamView,
    error: Option<&'static str>,
}

fn delete_path(id: &str) -> String {
    format!("/admin/log-streams/{id}/delete")
}

/// `GET /admin/log-streams/{id}/delete`: the confirmation (the name typed again), after a
/// fresh login.
pub(crate) async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let stream = match load(&state, &admin, &id).await {
        Ok(stream) => stream,
        Err(response) => return response,
    };
    if let Some(again) = super::sign_in_again(&admin, &delete_path(&stream.id)) {
        return again;
    }
    views::page(&DeletePage {
        frame: Frame::new(&state, &admin, SECTION, None),
        stream: StreamView::of(&stream),
        error: None,
    })
}

/// `POST /admin/log-streams/{id}/delete` (the stream's name typed again; after a fresh
/// login).
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let stream = match load(&state, &form.admin, &id).await {
        Ok(stream) => stream,
        Err(response) => return response,
    };
    match Deletion::of(&form, &delete_path(&stream.id), &stream.name) {
        Deletion::Confirmed => {}
        Deletion::SignInAgain(response) => return response,
        Deletion::Mistyped => {
            return views::form_again(&DeletePage {
                frame: Frame::new(&state, &form.admin, SECTION, None),
                stream: StreamView::of(&stream),
                error: Some("Type the stream's name exactly to delete it."),
            });
        }
    }
    match log_streams::delete(&state, &form.admin.principal, &stream.id).await {
        Ok(()) => redirect("/admin/log-streams?notice=stream_deleted"),
        Err(error) => views::operation_refused(&error),
    }
}
