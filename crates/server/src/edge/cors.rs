//! CORS. Discovery and JWKS are public (`*`). Token, userinfo and revocation answer
//! only origins registered as an application's web origin. /authorize and the login
//! pages never send CORS headers.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

// `DPoP` carries a proof (RFC 9449); browsers must be allowed to send it and to read the
// `DPoP-Nonce` a server may answer with.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Auth0-Client, DPoP";
const EXPOSED_HEADERS: &str = "DPoP-Nonce, WWW-Authenticate";

pub(crate) async fn preflight_any() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOWED_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

pub(crate) fn allow_any(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// The request's `Origin`, when it is a registered web origin.
async fn registered_origin(state: &AppState, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    if text.len() > 2048 {
        return None;
    }
    match state.store().origin_registered(text).await {
        Ok(true) => Some(origin.clone()),
        Ok(false) => None,
        Err(error) => {
            tracing::warn!(%error, "CORS origin lookup failed");
            None
        }
    }
}

pub(crate) async fn preflight_registered(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = registered_origin(&state, &headers).await {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    response
}

/// Adds CORS headers to an actual response when the origin is registered.
pub(crate) async fn allow_registered(
    state: &AppState,
    headers: &HeaderMap,
    mut response: Response,
) -> Response {
    if headers.contains_key(header::ORIGIN) {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = registered_origin(state, headers).await {
            let out = response.headers_mut();
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }
    response
}
