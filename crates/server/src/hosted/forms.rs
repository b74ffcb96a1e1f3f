//! What every hosted form shares: reading its parameters, the refusal of a request that
//! fails its CSRF check, and the CSP that lets a form lead to the application.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::edge::headers;
use crate::edge::params::Params;
use crate::error::PageError;

/// A hosted page's query string.
pub(crate) fn query_params(query: Option<String>) -> Result<Params, PageError> {
    Params::from_urlencoded(query.unwrap_or_default().as_bytes())
        .map_err(|error| PageError::bad_request("Invalid request", error.to_string()))
}

/// A hosted page's form body.
pub(crate) fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, PageError> {
    Params::from_body(headers, body, false)
        .map_err(|error| PageError::bad_request("Invalid request", error.to_string()))
}

/// Lets the form lead to the application (see `headers::form_page_csp`).
pub(crate) fn with_form_action(mut response: Response, redirect_uri: &str) -> Response {
    if let Some(csp) = headers::form_page_csp(redirect_uri) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
        response
            .headers_mut()
            .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

/// The page of a form posted over its network's throttle (a ticket's button: verification,
/// unblock), with `Retry-After`.
pub(crate) fn too_many_attempts(retry_after: u64) -> Response {
    let mut response = crate::pages::error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "Too many attempts from your network. Wait a minute and try again.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

pub(crate) fn csrf_failure() -> PageError {
    PageError::bad_request(
        "Request could not be verified",
        "Your browser did not send the expected security token. Make sure cookies are enabled, \
         then go back to the application and sign in again.",
    )
    .with_status(StatusCode::FORBIDDEN)
}
