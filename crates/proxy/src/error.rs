//! The proxy's two error types: what stops it from starting, and what a request is
//! answered with when it cannot be forwarded.

use std::net::SocketAddr;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::request::RequestError;
use crate::rules::RuleError;

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("invalid upstream URL {url:?}: {reason}")]
    InvalidUpstream { url: String, reason: &'static str },
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("cannot set up TLS for https upstreams: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Why a request was answered by the proxy instead of the upstream (token failures are
/// answered by the guard). Bodies are JSON `{error, error_description}` with fixed
/// descriptions: nothing about the upstream's address or the underlying error leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("{0}")]
    Refused(RequestError),
    #[error("the request body is malformed or incomplete")]
    MalformedBody,
    #[error("the upstream service is unavailable")]
    UpstreamUnavailable,
    #[error("the upstream service did not answer in time")]
    UpstreamTimeout,
}

impl ForwardError {
    pub fn status(&self) -> StatusCode {
        match self {
            ForwardError::Refused(error) => error.status(),
            ForwardError::MalformedBody => StatusCode::BAD_REQUEST,
            ForwardError::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            ForwardError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ForwardError::Refused(_) | ForwardError::MalformedBody => "invalid_request",
            ForwardError::UpstreamUnavailable => "bad_gateway",
            ForwardError::UpstreamTimeout => "gateway_timeout",
        }
    }
}

impl IntoResponse for ForwardError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.code(),
            "error_description": self.to_string(),
        });
        (self.status(), Json(body)).into_response()
    }
}
