//! The audit log (Auth0's log events): what happened — sign-ins, token exchanges,
//! failures, lockouts, every change through the Management API or the dashboard —
//! written to the store's `logs` table and read by `GET /api/v2/logs`.
//!
//! Writing an event never fails or slows the request it describes. [`AuditLog::record`]
//! puts it on a bounded queue and returns; one worker per node writes what gathers within
//! [`GATHER`] of the first event in a single transaction (one commit, so one fsync, for a
//! burst of events rather than one per request), and what is queued when the node stops.
//! Writing in the request's own transaction would tie every flow's store calls to the log
//! and could not cover failures, which write nothing. When the queue is full the event is
//! dropped and counted (`tessera_log_events_dropped_total`) rather than make a sign-in
//! wait; a failed write is logged and its batch dropped.
//!
//! Where events are decided: the token endpoint's one outcome per request
//! (`oauth::token`), the one password check (`password_sign_in`), the one start of a
//! hosted session (`hosted::session::start`), logout, the one creation of accounts
//! (`accounts::create`: sign-ups), the redemption of a password reset code and of an
//! email verification ticket, the hosted second factor's outcome (`hosted::mfa`), the
//! upstream provider's callback (`hosted::upstream`), and two layers — every write of
//! the Management API ([`management_writes`]) and of the dashboard ([`dashboard_writes`])
//! — which see each request's method, path, body and answer. Every request's address and
//! user agent are kept for the events it causes by [`request_context`].
//!
//! No secret reaches an event: bodies pass [`scrub`], which removes every member whose
//! name is a secret's (passwords, client secrets, tokens, codes, keys, credentials…).

mod scrub;
pub(crate) mod streams;

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use tessera_store::{LogEvent, Store};
use tokio::sync::{mpsc, oneshot};

use crate::{AppState, Route};

pub(crate) use scrub::scrub;

/// Events waiting to be written, per node. A burst beyond this is dropped and counted.
const QUEUE: usize = 8192;
/// Events one transaction writes at most.
const BATCH: usize = 512;
/// How long events gather after the first one before they are written, unless a reader
/// of the log waits for them (`AuditLog::flush`) or a batch fills first. Under load one
/// write then carries the events of dozens of requests: written as they came, a log write
/// joined every other sign-in's or token exchange's write batch and often opened one of
/// its own, which on SQLite cost each of them round trips to the single writer.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);
/// Bodies up to this size are kept (scrubbed) in a write's details; larger ones are
/// named only by their size.
const MAX_KEPT_BODY: usize = 16 * 1024;
/// A user agent is kept up to this many characters.
const MAX_USER_AGENT: usize = 256;

enum Message {
    Event(Box<LogEvent>),
    /// Answered once every event queued before it is written (or dropped).
    Flush(oneshot::Sender<()>),
}

/// The queue to this node's log writer.
#[derive(Clone)]
pub(crate) struct AuditLog {
    queue: mpsc::Sender<Message>,
}

/// Why an event was not queued.
pub(crate) enum NotQueued {
    Full,
    Closed,
}

impl AuditLog {
    /// Starts the writer on the current runtime.
    pub(crate) fn start(store: Store) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_events(store, receiver));
        AuditLog { queue }
    }

    /// Queues `event`, with the address and user agent of the request being served
    /// unless it names its own.
    pub(crate) fn record(&self, mut event: LogEvent) -> Result<(), NotQueued> {
        if event.date == 0 {
            event.date = now_millis();
        }
        let _ = CONTEXT.try_with(|context| {
            if event.ip.is_none() {
                event.ip = Some(context.ip.to_string());
            }
            if event.user_agent.is_none() {
                event.user_agent.clone_from(&context.user_agent);
            }
        });
        self.queue
            .try_send(Message::Event(Box::new(event)))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => NotQueued::Full,
                mpsc::error::TrySendError::Closed(_) => NotQueued::Closed,
            })
    }

    /// Waits until every event this node queued before now is written: a reader of the
    /// log on this node sees what it did itself.
    pub(crate) async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

async fn write_events(store: Store, mut receiver: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = receiver.recv().await {
        let written_by = tokio::time::Instant::now() + GATHER;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) => batch.push(*event),
                Message::Flush(done) => flushes.push(done),
            }
            if batch.len() >= BATCH {
                break;
            }
            next = match receiver.try_recv() {
                Ok(message) => Some(message),
                // A reader waits: what was queued before it has been taken.
                Err(_) if !flushes.is_empty() => None,
                // Closed (the node stops) or the window is over: write what there is.
                Err(_) => tokio::time::timeout_at(written_by, receiver.recv())
                    .await
                    .ok()
                    .flatten(),
            };
        }
        if let Err(error) = store.append_logs(&batch).await {
            tracing::warn!(%error, events = batch.len(), "audit log events could not be written");
        }
        batch.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An event of `log_type` with `description`, the rest to be filled in.
pub(crate) fn event(log_type: &str, description: impl Into<String>) -> LogEvent {
    LogEvent {
        log_type: log_type.into(),
        description: Some(description.into()),
        details: json!({}),
        ..LogEvent::default()
    }
}

/// Who made a change: a Management API caller (a machine's `client_id`) or an
/// administrator signed in to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Actor {
    Client { client_id: String },
    Admin { user_id: String, name: String },
}

/// What the events of one request share: where it came from, and who it turned out to
/// be once authenticated.
struct RequestContext {
    ip: IpAddr,
    user_agent: Option<String>,
    actor: RefCell<Option<Actor>>,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// Remembers who the request being served is made by (the Management API's and the
/// dashboard's authentication call it), for the change it may record.
pub(crate) fn set_actor(actor: Actor) {
    let _ = CONTEXT.try_with(|context| *context.actor.borrow_mut() = Some(actor));
}

/// Where the request being served comes from (address, user agent), for an event that
/// is recorded later, off the request (a mail the worker sends).
pub(crate) fn request_origin() -> Origin {
    CONTEXT
        .try_with(|context| Origin {
            ip: Some(context.ip.to_string()),
            user_agent: context.user_agent.clone(),
        })
        .unwrap_or_default()
}

/// A request's address and user agent, kept for an event recorded after it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub(crate) ip: Option<String>,
    pub(crate) user_agent: Option<String>,
}

fn actor() -> Option<Actor> {
    CONTEXT
        .try_with(|context| context.actor.borrow().clone())
        .ok()
        .flatten()
}

/// The layer every request passes: its address (as the throttles see it) and user agent,
/// kept while it is served for the events it causes.
pub(crate) async fn request_context(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
    let ip = state
        .config()
        .trusted_proxies
        .client_ip(peer, request.headers());
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| agent.chars().take(MAX_USER_AGENT).collect());
    let context = RequestContext {
        ip,
        user_agent,
        actor: RefCell::new(None),
    };
    CONTEXT.scope(context, next.run(request)).await
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The request's body when it is small enough to keep, buffered so the handler still
/// reads it; `None` when it is not kept (its length unknown or too large).
async fn small_body(request: Request) -> (Request, Option<Bytes>) {
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<usize>().ok());
    match length {
        Some(length) if length <= MAX_KEPT_BODY => {
            let (parts, body) = request.into_parts();
            match axum::body::to_bytes(body, MAX_KEPT_BODY).await {
                Ok(bytes) => (
                    Request::from_parts(parts, Body::from(bytes.clone())),
                    Some(bytes),
                ),
                // The body could not be read whole; the handler would have failed the same.
                Err(_) => (Request::from_parts(parts, Body::empty()), None),
            }
        }
        _ => (request, None),
    }
}

/// A body as details show it: JSON or a form as an object, scrubbed; anything else by
/// its kind only.
fn body_details(content_type: Option<&str>, body: Option<&Bytes>, path: &str) -> Value {
    let Some(body) = body else {
        return json!({ "omitted": "not kept: larger than 16 KB or of unknown length" });
    };
    if body.is_empty() {
        return Value::Null;
    }
    // A rules-config's value is a secret whatever its name.
    if path.contains("/rules-configs") {
        return json!({ "omitted": "secret" });
    }
    let content_type = content_type.unwrap_or("");
    let mut value = if content_type.starts_with("application/json") {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        Value::Object(
            form_urlencoded::parse(body)
                .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
                .collect(),
        )
    } else {
        return json!({ "omitted": content_type.split(';').next().unwrap_or("") });
    };
    scrub(&mut value);
    value
}

/// A response's JSON body (the state after a change), scrubbed; the response rebuilt.
async fn response_details(response: Response) -> (Response, Value) {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !json {
        return (response, Value::Null);
    }
    let (parts, body) = response.into_parts();
    // Our own answers: a Management API object or list page, bounded by its page size.
    match axum::body::to_bytes(body, 4 * 1024 * 1024).await {
        Ok(bytes) => {
            let mut value: Value = if bytes.len() <= MAX_KEPT_BODY {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            } else {
                json!({ "omitted": "larger than 16 KB" })
            };
            scrub(&mut value);
            (Response::from_parts(parts, Body::from(bytes)), value)
        }
        Err(_) => (Response::from_parts(parts, Body::empty()), Value::Null),
    }
}

/// The layer of the Management API: each write by an authenticated caller recorded as
/// `sapi` (answered below 400) or `fapi`, with the method, path, scrubbed body and the
/// answer, and for a `PATCH`, `PUT` or `DELETE` the object's state before
/// ([`read_before`]). Writes nobody authenticated for are not changes by anyone and go unrecorded.
pub(crate) async fn management_writes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    recorded_write(&state, request, next, Channel::Api).await
}

/// The layer of the dashboard: each form an administrator posts recorded as `sapi`
/// (answered below 400) or `fapi`, with the administrator as who, and for a form about
/// an existing object that object's state before ([`dashboard_before`]).
pub(crate) async fn dashboard_writes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    recorded_write(&state, request, next, Channel::Dashboard).await
}

/// Where a change was made: the Management API (its answer kept, its path under
/// `/api/v2`) or a dashboard form (an HTML page is no answer worth keeping).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    Api,
    Dashboard,
}

/// Runs a write and records it for the caller the handler authenticated, if any.
async fn recorded_write(
    state: &AppState,
    request: Request,
    next: Next,
    channel: Channel,
) -> Response {
    if !is_write(request.method()) {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let content_type = header_text(&request, header::CONTENT_TYPE);
    let before = match channel {
        Channel::Api if changes_an_object(request.method()) => {
            let read = read_request(&request, &path);
            Some(read_before(state, read).await)
        }
        Channel::Dashboard => {
            // Owned, so no borrow of the request (not `Sync`) is held across the read.
            let headers = request.headers().clone();
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .copied();
            dashboard_before(state, headers, peer, &path).await
        }
        _ => None,
    };
    let (request, body) = small_body(request).await;
    let response = next.run(request).await;
    let Some(actor) = actor() else {
        return response;
    };
    let status = response.status();
    let (response, path, after, name) = match channel {
        Channel::Api => {
            let (response, after) = response_details(response).await;
            let path = format!("{}{path}", crate::management::PREFIX);
            (response, path, after, "api")
        }
        Channel::Dashboard => (response, path, Value::Null, "dashboard"),
    };
    let body = body_details(content_type.as_deref(), body.as_ref(), &path);
    record_write(
        state,
        actor,
        (&method, &path, name),
        status,
        (body, before, after),
    );
    response
}

/// Whether a write changes or removes an object that exists already (`PATCH`, `PUT`,
/// `DELETE`), whose state before is worth keeping; a `POST` creates or acts.
fn changes_an_object(method: &Method) -> bool {
    matches!(*method, Method::PATCH | Method::PUT | Method::DELETE)
}

/// The object a Management API write is about to change, as the caller itself would read
/// it just before: the `GET` of the same route (found by the template the request was
/// routed by), with the caller's credentials, scrubbed. One read in the recorder covers
/// every handler, and it shows no more than the caller may see: without a read scope (or
/// with a DPoP-bound token, whose proof is for the write) the state is named as not read,
/// never fetched with more rights than the caller's. A route without a `GET` has no state
/// to show. Not atomic with the write: a change by someone else in between is the next
/// event's `before`.
///
/// (Not `next`: `Router::layer` wraps each method's handler, so `next` of a `DELETE` is
/// the delete handler whatever the method of the request given to it.)
fn read_request(request: &Request, path: &str) -> Option<(Route, Request)> {
    // A rules-config's value is a secret whatever its name.
    if path.contains("/rules-configs") {
        return None;
    }
    let matched = request.extensions().get::<MatchedPath>()?.as_str();
    let template = matched
        .strip_prefix(crate::management::PREFIX)
        .unwrap_or(matched);
    let route = crate::management::routes()
        .into_iter()
        .find(|(known, _)| *known == template)?;
    let mut read = Request::new(Body::empty());
    *read.method_mut() = Method::GET;
    *read.uri_mut() = path.parse().ok()?;
    if let Some(authorization) = request.headers().get(header::AUTHORIZATION) {
        read.headers_mut()
            .insert(header::AUTHORIZATION, authorization.clone());
    }
    // The route's parameters (set by routing, before this layer), the peer's address.
    *read.extensions_mut() = request.extensions().clone();
    Some((route, read))
}

/// Runs [`read_request`]'s `GET` on the route's handlers.
async fn read_before(state: &AppState, read: Option<(Route, Request)>) -> Value {
    let Some(((_, handlers), read)) = read else {
        return json!({ "omitted": "not read" });
    };
    let handlers = handlers().with_state(state.clone());
    let Ok(response) = tower::ServiceExt::oneshot(handlers, read).await;
    state_of(response).await
}

/// The object a read answered, scrubbed; or why there is none.
async fn state_of(response: Response) -> Value {
    let status = response.status();
    if status != axum::http::StatusCode::OK {
        return json!({ "omitted": format!("not read: GET answered {}", status.as_u16()) });
    }
    let (_, value) = response_details(response).await;
    value
}

/// The object a dashboard form is about to change ([`crate::admin::object_read`]), read
/// as [`read_before`] reads for the Management API: that object's `GET` route, with the
/// signed-in administrator's own rights (a viewer's read, never more), scrubbed. `None`
/// for a form that changes no existing object, or without a signed-in administrator
/// (whose request is then not recorded at all).
async fn dashboard_before(
    state: &AppState,
    headers: axum::http::HeaderMap,
    peer: Option<ConnectInfo<SocketAddr>>,
    path: &str,
) -> Option<Value> {
    let (template, read_path) = crate::admin::object_read(path)?;
    let principal = crate::admin::principal_of(state, &headers).await?;
    let (_, handlers) = crate::management::routes()
        .into_iter()
        .find(|(known, _)| *known == template)?;
    let prefix = crate::management::PREFIX;
    // Routed, so the route's own parameters are set from the path read.
    let router = axum::Router::new()
        .route(&format!("{prefix}{template}"), handlers())
        .with_state(state.clone());
    let mut read = Request::new(Body::empty());
    let Ok(uri) = format!("{prefix}{read_path}").parse() else {
        return Some(json!({ "omitted": "not read" }));
    };
    *read.uri_mut() = uri;
    if let Some(peer) = peer {
        read.extensions_mut().insert(peer);
    }
    let Ok(response) =
        crate::management::acting_as(principal, tower::ServiceExt::oneshot(router, read)).await;
    Some(state_of(response).await)
}

fn header_text(request: &Request, name: header::HeaderName) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

fn record_write(
    state: &AppState,
    actor: Actor,
    (method, path, channel): (&str, &str, &str),
    status: axum::http::StatusCode,
    (body, before, after): (Value, Option<Value>, Value),
) {
    let succeeded = status.as_u16() < 400;
    let (log_type, description) = if succeeded {
        ("sapi", format!("{method} {path}"))
    } else {
        ("fapi", format!("Failed {method} {path}"))
    };
    let mut event = event(log_type, description);
    let auth = match &actor {
        Actor::Client { client_id } => {
            event.client_id = Some(client_id.clone());
            json!({ "client_id": client_id, "strategy": "jwt" })
        }
        Actor::Admin { user_id, name } => {
            event.user_id = Some(user_id.clone());
            event.user_name = Some(name.clone());
            json!({ "user": { "user_id": user_id, "name": name }, "strategy": "session" })
        }
    };
    event.details = json!({
        "request": {
            "method": method,
            "path": path,
            "channel": channel,
            "auth": auth,
            "body": body,
        },
        "response": {
            "statusCode": status.as_u16(),
            "body": after,
        },
    });
    if let Some(before) = before {
        event.details["before"] = before;
    }
    state.record_log(event);
}
