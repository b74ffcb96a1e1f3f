//! The sample API of Auth0's "Calling an API" quickstart, protected by `tessera-guard`:
//!
//! | route | needs |
//! |---|---|
//! | `GET /api/public` | nothing |
//! | `GET /api/private` | a valid access token |
//! | `GET /api/private-scoped` | a token with `read:messages` |
//! | `POST /api/admin` | a token with `write:messages` |
//!
//! CORS allows the sample SPA's origin, on errors too, so the browser can read a 401/403.

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tessera_guard::Guard;

const PUBLIC: &str =
    "Hello from a public endpoint! You don't need to be authenticated to see this.";
const PRIVATE: &str = "Hello from a private endpoint! You need to be authenticated to see this.";
const PRIVATE_SCOPED: &str = "Hello from a private endpoint! You need to be authenticated and have a scope of read:messages to see this.";
const ADMIN: &str = "Hello from an admin endpoint! You need to be authenticated and have a scope of write:messages to see this.";

fn message(text: &'static str) -> Json<serde_json::Value> {
    Json(json!({ "message": text }))
}

/// The API's routes. `spa_origin` (e.g. `http://localhost:3000`) may call it from a browser.
pub fn router(guard: &Guard, spa_origin: &str) -> Router {
    let origin =
        HeaderValue::from_str(spa_origin).unwrap_or_else(|_| HeaderValue::from_static("null"));
    Router::new()
        .route("/api/public", get(|| async { message(PUBLIC) }))
        .route(
            "/api/private",
            get(|| async { message(PRIVATE) }).layer(guard.layer()),
        )
        .route(
            "/api/private-scoped",
            get(|| async { message(PRIVATE_SCOPED) }).layer(guard.require_scope("read:messages")),
        )
        .route(
            "/api/admin",
            post(|| async { message(ADMIN) }).layer(guard.require_scope("write:messages")),
        )
        .layer(axum::middleware::from_fn_with_state(origin, cors))
}

/// CORS for the one allowed origin: preflights answered here, the header added to every
/// response (401 and 403 included).
async fn cors(State(allowed): State<HeaderValue>, request: Request, next: Next) -> Response {
    let from_allowed = request.headers().get(header::ORIGIN) == Some(&allowed);
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if from_allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("Authorization, Content-Type"),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
    }
    response
}
