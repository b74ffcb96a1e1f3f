//! `/api/v2/jobs`: bulk user imports (`POST /jobs/users-imports`, multipart as Auth0 takes
//! it) and the jobs' state (`GET /jobs/{id}`, `GET /jobs/{id}/errors`).
//!
//! An import answers 202 with the job at once and runs in a task of its own: the file is
//! checked user by user and written a batch per transaction (`crate::user_import`), the
//! failures recorded as the job's errors. Imports run one at a time per process, and at
//! most [`MAX_QUEUED_IMPORTS`] may wait or run: a file is held in memory until its job is
//! done, so this bounds what imports can take.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tessera_core::{DATABASE_CONNECTION_ID, ids};
use tessera_store::{ConnectionRecord, Job, JobStatus};
use tokio::sync::Semaphore;

use super::auth::require;
use super::error::{ApiError, ApiResult};
use super::paging::Query;
use super::wire;
use crate::AppState;
use crate::clock::now;
use crate::databases::Database;
use crate::user_import::{self, FileError, MAX_FILE_BYTES};

/// How long a job and its errors can be read after it was created.
pub(crate) const JOB_LIFETIME: i64 = 24 * 3600;

/// A job of `job_type` on the database connection, made `now`: Auth0's `job_` ids, kept
/// for [`JOB_LIFETIME`]. Every kind of job starts here.
pub(crate) fn new_job(job_type: &str, status: JobStatus, now: i64) -> Job {
    Job {
        id: format!("job_{}", ids::alphanumeric(16)),
        job_type: job_type.into(),
        status,
        connection_id: Some(DATABASE_CONNECTION_ID.into()),
        external_id: None,
        created_at: now,
        updated_at: now,
        expires_at: now + JOB_LIFETIME,
        summary: None,
        details: Default::default(),
    }
}
/// Imports admitted at once (running or waiting); one more is a 429.
pub(crate) const MAX_QUEUED_IMPORTS: usize = 2;
/// The request body of an import: the file and the few form fields beside it.
pub(crate) const MAX_IMPORT_BODY: usize = MAX_FILE_BYTES + 64 * 1024;
/// Errors read per query when `GET /jobs/{id}/errors` streams them.
const ERRORS_PER_READ: u32 = 500;

/// Admission and turn-taking of imports, held in `AppState`.
#[derive(Clone)]
pub(crate) struct ImportQueue {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

impl ImportQueue {
    pub(crate) fn new() -> Self {
        ImportQueue {
            admitted: Arc::new(Semaphore::new(MAX_QUEUED_IMPORTS)),
            running: Arc::new(Semaphore::new(1)),
        }
    }
}

pub(crate) fn job_not_found() -> ApiError {
    ApiError::not_found("The job does not exist.", "inexistent_job")
}

/// A connection named by id (`con_…`) or, for convenience, by name.
pub(crate) async fn find_connection(
    state: &AppState,
    id_or_name: &str,
) -> ApiResult<ConnectionRecord> {
    let store = state.store();
    let found = match store.find_connection(id_or_name).await? {
        Some(connection) => Some(connection),
        None => store.find_connection_by_name(id_or_name).await?,
    };
    found.ok_or_else(|| ApiError::bad_request("The connection does not exist"))
}

/// A job on `connection`: its id, and its name (what the job's wire shape shows).
pub(crate) fn on_connection(mut job: Job, connection: &ConnectionRecord) -> Job {
    job.connection_id = Some(connection.id.clone());
    job.details.insert(
        CONNECTION_DETAIL.into(),
        Value::String(connection.name.clone()),
    );
    job
}

/// The detail that names a job's connection (absent: the default database connection).
pub(crate) const CONNECTION_DETAIL: &str = "connection";

fn form_flag(name: &str, value: &str) -> ApiResult<bool> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid_body(format!(
            "{name} must be true or false"
        ))),
    }
}

/// The parts of an import request.
struct ImportForm {
    users: Bytes,
    connection_id: String,
    upsert: bool,
    external_id: Option<String>,
}

async fn read_form(request: Request) -> ApiResult<ImportForm> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|rejection| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "Expected a multipart/form-data body: {}",
                    rejection.body_text()
                ),
                Some("invalid_body"),
            )
        })?;
    let mut users = None;
    let mut connection_id = None;
    let mut upsert = None;
    let mut external_id = None;
    let mut send_completion_email = None;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The users file is larger than {MAX_FILE_BYTES} bytes"),
            Some("payload_too_large"),
        )
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(too_large());
            }
            Err(error) => {
                return Err(ApiError::invalid_body(format!(
                    "malformed multipart body: {}",
                    error.body_text()
                )));
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(|error| {
            if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::invalid_body("malformed multipart body")
            }
        })?;
        let text = || {
            std::str::from_utf8(&bytes)
                .map(str::to_string)
                .map_err(|_| ApiError::invalid_body(format!("{name} must be UTF-8 text")))
        };
        let slot_taken = match name.as_str() {
            "users" => users.replace(bytes.clone()).is_some(),
            "connection_id" => connection_id.replace(text()?).is_some(),
            "upsert" => upsert.replace(form_flag("upsert", &text()?)?).is_some(),
            "external_id" => external_id.replace(text()?).is_some(),
            "send_completion_email" => send_completion_email
                .replace(form_flag("send_completion_email", &text()?)?)
                .is_some(),
            other => {
                let shown: String = other.chars().take(60).collect();
                return Err(ApiError::invalid_body(format!(
                    "Additional properties not allowed: {shown}"
                )));
            }
        };
        if slot_taken {
            return Err(ApiError::invalid_body(format!("{name} is given twice")));
        }
    }
    let users = users.ok_or_else(|| ApiError::invalid_body("Missing required property: users"))?;
    if users.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let connection_id = connection_id
        .ok_or_else(|| ApiError::invalid_body("Missing required property: connection_id"))?;
    if let Some(id) = &external_id
        && (id.is_empty() || id.len() > 255 || id.chars().any(char::is_control))
    {
        return Err(ApiError::invalid_body(
            "external_id must be 1 to 255 characters without control characters",
        ));
    }
    Ok(ImportForm {
        users,
        connection_id,
        upsert: upsert.unwrap_or(false),
        external_id,
    })
}

/// `POST /api/v2/jobs/users-imports`: checks the request and the file as a whole
/// (a file that is not a JSON array of objects is refused here, nothing imported), then
/// answers 202 with the pending job; users are checked and written in the background.
pub(crate) async fn import_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> ApiResult<Response> {
    require(&state, &headers, &["create:users"]).await?;
    let form = read_form(request).await?;
    let connection = find_connection(&state, &form.connection_id).await?;
    let Some(database) = Database::of(&connection) else {
        return Err(ApiError::bad_request(format!(
            "Users are imported into a database connection; {} is of strategy {}",
            connection.name, connection.strategy
        )));
    };
    let values = user_import::parse_file(&form.users).map_err(|error| match error {
        FileError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            error.to_string(),
            Some("payload_too_large"),
        ),
        other => ApiError::bad_request(other.to_string()),
    })?;
    drop(form.users);
    let Ok(admitted) = state.imports().admitted.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "There are already {MAX_QUEUED_IMPORTS} import jobs pending or processing; \
                 try again when one is done"
            ),
            Some("too_many_requests"),
        ));
    };
    let job = on_connection(
        Job {
            external_id: form.external_id,
            ..new_job("users_import", JobStatus::Pending, now())
        },
        &connection,
    );
    state.store().create_job(&job).await?;
    let task_state = state.clone();
    let job_id = job.id.clone();
    let upsert = form.upsert;
    tokio::spawn(async move {
        let _admitted = admitted;
        let _turn = task_state.imports().running.clone().acquire_owned().await;
        run_import(&task_state, &job_id, &database.name, values, upsert).await;
    });
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(wire::job(&job, state.issuer())),
    )
        .into_response())
}

/// Carries out an import job; the outcome is the job's status, summary and errors.
async fn run_import(
    state: &AppState,
    job_id: &str,
    connection: &str,
    values: Vec<Value>,
    upsert: bool,
) {
    let store = state.store();
    let result = async {
        store
            .set_job_status(job_id, JobStatus::Processing, None, now())
            .await?;
        // Checking is CPU work (no hashing, but a file's worth of JSON): off the executor.
        let (values, checked) = tokio::task::spawn_blocking(move || {
            let checked = user_import::check_all(&values);
            (values, checked)
        })
        .await
        .expect("checking users does not panic");
        store.add_job_errors(job_id, &checked.failures).await?;
        let summary = user_import::write(
            store,
            connection,
            &values,
            &checked,
            upsert,
            now(),
            |failures| async move { store.add_job_errors(job_id, &failures).await },
        )
        .await?;
        store
            .set_job_status(job_id, JobStatus::Completed, Some(&json!(summary)), now())
            .await
    }
    .await;
    if let Err(error) = result {
        tracing::error!(%error, job_id, "user import failed");
        if let Err(error) = store
            .set_job_status(job_id, JobStatus::Failed, None, now())
            .await
        {
            tracing::error!(%error, job_id, "the failed import could not be marked failed");
        }
    }
}

/// `GET /api/v2/jobs/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:users", "create:users"]).await?;
    Query::parse(query.as_deref(), &[])?;
    let job = state
        .store()
        .find_job(&id, now())
        .await?
        .ok_or_else(job_not_found)?;
    Ok(axum::Json(wire::job(&job, state.issuer())).into_response())
}

/// `GET /api/v2/jobs/{id}/errors`: every failed user of the job, `[{user, errors}]` in
/// file order, streamed from the store a few hundred at a time (a job may have failed
/// every user of a large file).
pub(crate) async fn errors(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:users", "create:users"]).await?;
    Query::parse(query.as_deref(), &[])?;
    let store = state.store().clone();
    store
        .find_job(&id, now())
        .await?
        .ok_or_else(job_not_found)?;
    // State: where the next read starts, and whether the array was opened / closed.
    let pages = futures_util::stream::unfold(
        (store, id, None::<i64>, false),
        |(store, id, after, done)| async move {
            if done {
                return None;
            }
            let opening = after.is_none();
            match store.job_errors(&id, after, ERRORS_PER_READ).await {
                Ok(page) => {
                    let last = page.last().map(|(position, _)| *position);
                    let mut chunk = String::new();
                    if opening {
                        chunk.push('[');
                    }
                    for (index, (_, error)) in page.iter().enumerate() {
                        if !(opening && index == 0) {
                            chunk.push(',');
                        }
                        chunk.push_str(&error.to_string());
                    }
                    let finished = page.len() < ERRORS_PER_READ as usize;
                    if finished {
                        chunk.push(']');
                    }
                    let next = (store, id, Some(last.or(after).unwrap_or(-1)), finished);
                    Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), next))
                }
                Err(error) => {
                    tracing::error!(%error, "job errors could not be read");
                    Some((
                        Err(std::io::Error::other("the job's errors could not be read")),
                        (store, id, after, true),
                    ))
                }
            }
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from_stream(pages),
    )
        .into_response())
}
