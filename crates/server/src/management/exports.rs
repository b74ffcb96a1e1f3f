//! `POST /api/v2/jobs/users-exports` and the export's file, `GET /api/v2/jobs/{id}/file`.
//!
//! The job records what to export (format, fields, limit); the file is written when it
//! is read, streamed from the store a page of users at a time by keyset on `user_id`, so
//! an export of a million users never holds more than a page. Auth0 hands back a
//! pre-signed storage URL; Tessera keeps secrets out of URLs, so `location` is a route
//! of this API that takes the same Management API token (`read:users`), and lives as
//! long as the job. Files are not gzipped (Auth0's are): NDJSON or CSV as they are.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tessera_core::User;
use tessera_store::{Job, JobStatus, Store};

use super::auth::require;
use super::body;
use super::error::{ApiError, ApiResult};
use super::jobs::{CONNECTION_DETAIL, find_connection, job_not_found, new_job, on_connection};
use super::paging::Query;
use super::wire;
use crate::AppState;
use crate::clock::now;

/// The user fields an export may name (the members of the user's wire shape); without
/// `fields`, all of them.
const FIELDS: &[&str] = &[
    "user_id",
    "email",
    "email_verified",
    "name",
    "nickname",
    "picture",
    "blocked",
    "created_at",
    "updated_at",
    "last_login",
    "logins_count",
    "identities",
    "user_metadata",
    "app_metadata",
];
/// Users read per query while the file streams.
const USERS_PER_READ: u32 = 500;
const MAX_EXPORT_AS: usize = 100;

/// `POST /api/v2/jobs/users-exports`: `{connection_id?, format?: "json" | "csv", limit?,
/// fields?: [{name, export_as?}]}`. The job is complete at once: its file is made as it
/// is read.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    request_body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:users"]).await?;
    let mut fields = body::object(
        &headers,
        request_body,
        &["connection_id", "format", "limit", "fields"],
    )?;
    let connection = match fields.string("connection_id")? {
        Some(connection_id) => Some(find_connection(&state, &connection_id).await?),
        None => None,
    };
    let format = fields.string("format")?.unwrap_or_else(|| "csv".into());
    if format != "json" && format != "csv" {
        return Err(ApiError::invalid_property(
            "No enum match for: format (json or csv)",
            "format",
        ));
    }
    let limit = fields.integer("limit")?;
    if limit.is_some_and(|limit| limit < 1) {
        return Err(ApiError::invalid_property(
            "Value is less than minimum 1",
            "limit",
        ));
    }
    let chosen = match fields.objects("fields", &["name", "export_as"])? {
        None => FIELDS
            .iter()
            .map(|name| json!({"name": name}))
            .collect::<Vec<_>>(),
        Some(list) => {
            let mut chosen = Vec::with_capacity(list.len());
            for (index, mut field) in list.into_iter().enumerate() {
                let property = format!("fields[{index}]");
                let name = field.string("name")?.ok_or_else(|| {
                    ApiError::invalid_property("Missing required property: name", &property)
                })?;
                if !FIELDS.contains(&name.as_str()) {
                    let shown: String = name.chars().take(60).collect();
                    return Err(ApiError::invalid_property(
                        format!(
                            "{shown:?} is not a user field Tessera exports (one of {})",
                            FIELDS.join(", ")
                        ),
                        &property,
                    ));
                }
                let mut entry = json!({"name": name});
                if let Some(export_as) = field.string("export_as")? {
                    if export_as.is_empty()
                        || export_as.chars().count() > MAX_EXPORT_AS
                        || export_as.chars().any(char::is_control)
                    {
                        return Err(ApiError::invalid_property(
                            format!(
                                "export_as must be 1 to {MAX_EXPORT_AS} characters without control characters"
                            ),
                            &property,
                        ));
                    }
                    entry["export_as"] = json!(export_as);
                }
                chosen.push(entry);
            }
            chosen
        }
    };
    let mut details = Map::new();
    details.insert("format".into(), json!(format));
    details.insert("fields".into(), Value::Array(chosen));
    if let Some(limit) = limit {
        details.insert("limit".into(), json!(limit));
    }
    let mut job = Job {
        details,
        ..new_job("users_export", JobStatus::Completed, now())
    };
    if let Some(connection) = &connection {
        job = on_connection(job, connection);
    }
    state.store().create_job(&job).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(wire::job(&job, state.issuer())),
    )
        .into_response())
}

/// One column of the file: the user field and the name it is written under.
struct Column {
    field: String,
    header: String,
}

/// A CSV cell (RFC 4180): quoted when it holds a comma, quote or line break. A cell that
/// a spreadsheet would read as a formula (`= + - @`, tab, CR first) gets a leading `'`:
/// names and metadata are user input, and this file is opened by administrators.
fn csv_cell(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn render(
    user: &User,
    linked: &[tessera_store::LinkedIdentity],
    columns: &[Column],
    csv: bool,
) -> String {
    let shape = serde_json::to_value(wire::user(user, linked)).unwrap_or(Value::Null);
    if csv {
        let cells: Vec<String> = columns
            .iter()
            .map(|column| csv_cell(shape.get(&column.field).unwrap_or(&Value::Null)))
            .collect();
        format!("{}\n", cells.join(","))
    } else {
        let mut line = Map::new();
        for column in columns {
            if let Some(value) = shape.get(&column.field) {
                line.insert(column.header.clone(), value.clone());
            }
        }
        format!("{}\n", Value::Object(line))
    }
}

/// What the file's stream carries from one read to the next.
struct Cursor {
    store: Store,
    columns: Vec<Column>,
    csv: bool,
    /// Only this connection's users, when the job names one.
    connection: Option<String>,
    after: Option<String>,
    left: Option<u64>,
    header: bool,
    done: bool,
}

/// `GET /api/v2/jobs/{id}/file`: the export, NDJSON (`format: json`, one user per line)
/// or CSV with a header row.
pub(crate) async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:users"]).await?;
    Query::parse(query.as_deref(), &[])?;
    let job = state
        .store()
        .find_job(&id, now())
        .await?
        .filter(|job| job.job_type == "users_export")
        .ok_or_else(job_not_found)?;
    let csv = job.details.get("format").and_then(Value::as_str) == Some("csv");
    let columns: Vec<Column> = job
        .details
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|field| {
            let name = field.get("name")?.as_str()?.to_string();
            let header = field
                .get("export_as")
                .and_then(Value::as_str)
                .unwrap_or(&name)
                .to_string();
            Some(Column {
                field: name,
                header,
            })
        })
        .collect();
    let cursor = Cursor {
        store: state.store().clone(),
        columns,
        csv,
        connection: job
            .details
            .get(CONNECTION_DETAIL)
            .and_then(Value::as_str)
            .map(str::to_string),
        after: None,
        left: job.details.get("limit").and_then(Value::as_u64),
        header: csv,
        done: false,
    };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        let mut chunk = String::new();
        if cursor.header {
            cursor.header = false;
            let names: Vec<String> = cursor
                .columns
                .iter()
                .map(|column| csv_cell(&Value::String(column.header.clone())))
                .collect();
            chunk.push_str(&names.join(","));
            chunk.push('\n');
        }
        let want = cursor.left.map_or(USERS_PER_READ, |left| {
            left.min(u64::from(USERS_PER_READ)) as u32
        });
        if want == 0 {
            cursor.done = true;
            return Some((Ok(Bytes::from(chunk)), cursor));
        }
        let read = async {
            let users = cursor
                .store
                .users_after(cursor.connection.as_deref(), cursor.after.as_deref(), want)
                .await?;
            let ids: Vec<&str> = users.iter().map(|u| u.user_id.as_str()).collect();
            let linked = cursor.store.linked_identities_of(&ids).await?;
            Ok::<_, tessera_store::StoreError>((users, linked))
        };
        match read.await {
            Ok((users, linked)) => {
                for user in &users {
                    chunk.push_str(&render(user, &linked, &cursor.columns, cursor.csv));
                }
                cursor.after = users.last().map(|user| user.user_id.clone());
                cursor.left = cursor.left.map(|left| left - users.len() as u64);
                cursor.done = users.len() < want as usize;
                Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), cursor))
            }
            Err(error) => {
                tracing::error!(%error, "an export could not be read");
                cursor.done = true;
                Some((
                    Err(std::io::Error::other("the export could not be read")),
                    cursor,
                ))
            }
        }
    });
    let (content_type, extension) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "json")
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.{extension}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell(&json!("plain")), "plain");
        assert_eq!(csv_cell(&json!("a,b")), "\"a,b\"");
        assert_eq!(csv_cell(&json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(
            csv_cell(&json!("=HYPERLINK(\"x\")")),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(csv_cell(&json!("@SUM(A1)")), "'@SUM(A1)");
        assert_eq!(csv_cell(&json!(true)), "true");
        assert_eq!(csv_cell(&json!({"a": 1})), "\"{\"\"a\"\":1}\"");
        assert_eq!(csv_cell(&Value::Null), "");
    }
}
