//! Every request must be over within `ServerConfig::request_timeout`, body included.
//! `tessera-http`'s header read timeout ends a client that dribbles its header; this ends
//! one that dribbles its body (a form posted a byte at a time), which would otherwise hold
//! a task and a connection for as long as it likes.
//!
//! Not tower-http's `TimeoutLayer`, though it would time the same future (the body is read
//! by the handler's extractors, so a slow body is covered either way): its answer is fixed
//! — the status alone, an empty body, no header — where ours is in the endpoints' JSON
//! error shape, says `Connection: close` (the client is still sending a body nobody will
//! read) and is logged with its path. Adding those around it would mean recognising its
//! 408 afterwards by the status alone.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;

pub(crate) async fn within_deadline(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config().request_timeout;
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            // The path only: a query string may carry codes or state.
            tracing::warn!(%path, ?limit, "request not complete in time; answered 408");
            let mut response = (
                StatusCode::REQUEST_TIMEOUT,
                Json(json!({
                    "error": "invalid_request",
                    "error_description": "The request was not received in time.",
                })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}
