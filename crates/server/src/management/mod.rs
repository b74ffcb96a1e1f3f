//! The Auth0 Management API v2 (first slice), under `/api/v2/`: resource servers,
//! clients, client grants, users and roles in Auth0's JSON shapes, for the node `auth0`
//! SDK's `ManagementClient`, Terraform and the Deploy CLI.
//!
//! Callers are machine-to-machine applications with a client grant for the Management
//! API, a system resource server (`<issuer>api/v2/`) registered at start
//! ([`ensure_management_api`]). `auth.rs` checks their tokens and scopes, `body.rs` and
//! `paging.rs` read bodies and query strings, `wire.rs` holds the shapes, `error.rs` the
//! `{statusCode, error, message, errorCode}` errors. Every change goes through the store's
//! methods and the validation rules of `tessera_core::validate` the CLI uses too.

mod auth;
mod body;
mod client_grants;
mod clients;
mod error;
mod paging;
mod resource_servers;
mod users;
mod wire;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use tessera_store::{Store, StoreError};

use crate::AppState;
use error::ApiError;

/// Registers the Management API as a system resource server of `issuer` if it is not
/// there yet. Idempotent; a concurrent registration by another node is fine.
pub(crate) async fn ensure_management_api(
    store: &Store,
    issuer: &str,
    now: i64,
) -> Result<(), StoreError> {
    let api = tessera_core::system::management_api(issuer, now);
    if store.find_resource_server(&api.identifier).await?.is_some() {
        return Ok(());
    }
    match store.create_resource_server(&api).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The routes, to be nested under `/api/v2`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/resource-servers",
            get(resource_servers::list).post(resource_servers::create),
        )
        .route(
            "/resource-servers/{id}",
            get(resource_servers::get)
                .patch(resource_servers::update)
                .delete(resource_servers::delete),
        )
        .route("/clients", get(clients::list).post(clients::create))
        .route(
            "/clients/{id}",
            get(clients::get)
                .patch(clients::update)
                .delete(clients::delete),
        )
        .route("/clients/{id}/rotate-secret", post(clients::rotate_secret))
        .route(
            "/client-grants",
            get(client_grants::list).post(client_grants::create),
        )
        .route(
            "/client-grants/{id}",
            get(client_grants::get)
                .patch(client_grants::update)
                .delete(client_grants::delete),
        )
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/users-by-email", get(users::by_email))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::map_response(no_store))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not Found", None)
}

/// Responses may hold a client secret: never cached.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
