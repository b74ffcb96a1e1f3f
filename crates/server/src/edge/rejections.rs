//! What the framework answers before a handler runs — 405 for a method the route lacks
//! (an empty body), 413 for a body over the limit, 400 for a path segment that is not
//! UTF-8 (plain text) — rewritten in the error shape of the endpoint asked: OAuth's JSON,
//! the Management API's JSON, Auth0's sign-up JSON, or an HTML page. A client parses every error the same way,
//! whoever produced it. Handlers' own errors are JSON or HTML already and pass untouched.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{OAuthError, SignupError};
use crate::management::ApiError;
use crate::pages;

/// Where errors are OAuth's `{error, error_description}`.
const OAUTH_PATHS: [&str; 9] = [
    "/oauth/token",
    "/login/backchannel-logout/",
    "/oauth/device/code",
    "/oauth/revoke",
    "/oauth/introspect",
    "/oauth/par",
    "/mfa/",
    "/userinfo",
    "/dbconnections/",
];

/// Where errors are Auth0's `{name, code, description, statusCode}`.
const SIGNUP_PATH: &str = "/dbconnections/signup";

#[derive(Clone, Copy)]
enum Shape {
    OAuth,
    Management,
    Signup,
    Page,
}

impl Shape {
    fn of(path: &str) -> Shape {
        if path == "/api/v2" || path.starts_with("/api/v2/") {
            Shape::Management
        } else if path == SIGNUP_PATH {
            Shape::Signup
        } else if OAUTH_PATHS.iter().any(|p| path.starts_with(p)) {
            Shape::OAuth
        } else {
            Shape::Page
        }
    }
}

pub(crate) async fn in_endpoint_shape(request: Request, next: Next) -> Response {
    let shape = Shape::of(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_client_error() || is_shaped(&response) {
        return response;
    }
    // Fixed wording: the framework's messages may quote the request.
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "This endpoint does not accept this method.",
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is too large.",
        _ => "The request could not be read.",
    };
    let mut shaped = match shape {
        Shape::OAuth => {
            let mut error = OAuthError::invalid_request(message);
            error.status = status;
            error.into_response()
        }
        Shape::Management => ApiError::new(status, message, None).into_response(),
        Shape::Signup => SignupError::new(status, "invalid_request", message).into_response(),
        Shape::Page => pages::error_page(
            status,
            status.canonical_reason().unwrap_or("Invalid request"),
            message,
        ),
    };
    if let Some(allow) = response.headers().get(header::ALLOW) {
        shaped.headers_mut().insert(header::ALLOW, allow.clone());
    }
    shaped
}

/// Whether a handler wrote the response: JSON or HTML.
fn is_shaped(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("text/html")
        })
}
