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

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::{get, post};
use serde_json::json;
use tessera_guard::Guard;
use tower_http::cors::{AllowOrigin, CorsLayer};

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
        .layer(cors(spa_origin))
}

/// CORS for the one allowed origin: preflights answered by the layer, the headers added to
/// every response the guard or a handler gives (401 and 403 included, so the SPA can read
/// them). A listed origin, not an exact one: `Access-Control-Allow-Origin` goes only to the
/// SPA's requests.
fn cors(spa_origin: &str) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(HeaderValue::from_str(spa_origin).ok()))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        // `DPoP` carries the proof of a DPoP-bound token (RFC 9449).
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("dpop"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("dpop-nonce"),
        ])
        .max_age(Duration::from_secs(600))
        .vary([header::ORIGIN])
}
