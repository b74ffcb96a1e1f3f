//! The ways a request fails: an OAuth error as JSON (token, userinfo, revoke), an HTML page
//! (authorize, login, logout) when redirecting back to the client is unsafe, and Auth0's
//! own JSON on its sign-up endpoint. (The Management API's is `management::ApiError`.)

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_store::StoreError;

use crate::edge::metrics::StoreUnavailable;
use crate::pages;

/// An RFC 6749 §5.2 error response.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: String,
    /// Set for client-authentication failures (`Basic`) and bearer failures (`Bearer …`).
    pub(crate) www_authenticate: Option<String>,
    pub(crate) retry_after: Option<u64>,
    /// Auth0's `mfa_required` names the sign-in waiting for its second factor.
    pub(crate) mfa_token: Option<String>,
}

impl OAuthError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            www_authenticate: None,
            retry_after: None,
            mfa_token: None,
        }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(crate) fn invalid_client(description: impl Into<String>, used_basic: bool) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
        if used_basic {
            error.www_authenticate = Some("Basic realm=\"tessera\"".into());
        }
        error
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub(crate) fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "unauthorized_client", description)
    }

    pub(crate) fn access_denied(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "access_denied", description)
    }

    /// An Action's refusal at the token endpoint: `access_denied` is 403, what
    /// credentials-exchange may name instead is a bad request or the server's error
    /// (RFC 6749 §5.2).
    pub(crate) fn from_action(code: &'static str, description: impl Into<String>) -> Self {
        let status = match code {
            "invalid_scope" | "invalid_request" => StatusCode::BAD_REQUEST,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::FORBIDDEN,
        };
        Self::new(status, code, description)
    }

    pub(crate) fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    pub(crate) fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// RFC 6750 §3.1: the bearer token is missing (bare challenge) or bad.
    pub(crate) fn invalid_token(description: impl Into<String>) -> Self {
        let description = description.into();
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            description.clone(),
        );
        error.www_authenticate = Some(format!(
            "Bearer realm=\"tessera\", error=\"invalid_token\", error_description=\"{description}\""
        ));
        error
    }

    pub(crate) fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The server could not complete the request.",
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() {
            tracing::warn!(%error, "database unavailable");
            let mut response = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The service is temporarily unavailable. Try again shortly.",
            );
            response.retry_after = Some(2);
            response
        } else {
            tracing::error!(%error, "storage error");
            Self::server_error()
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut body =
            serde_json::json!({"error": self.error, "error_description": self.description});
        if let Some(token) = self.mfa_token {
            body["mfa_token"] = serde_json::Value::String(token);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self
            .www_authenticate
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.extensions_mut().insert(StoreUnavailable);
        }
        response
    }
}

/// An error of Auth0's sign-up endpoint (`/dbconnections/signup`): `{name, code,
/// description, statusCode}`; the password policy's also carries `message` and `policy`.
#[derive(Debug)]
pub(crate) struct SignupError {
    pub(crate) status: StatusCode,
    pub(crate) body: serde_json::Value,
    pub(crate) retry_after: Option<u64>,
}

impl SignupError {
    /// The usual shape, named after the status as Auth0 names its errors.
    pub(crate) fn new(status: StatusCode, code: &str, description: impl Into<String>) -> Self {
        let name = match status {
            StatusCode::BAD_REQUEST => "BadRequestError",
            StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowedError",
            StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLargeError",
            StatusCode::TOO_MANY_REQUESTS => "TooManyRequestsError",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableError",
            status if status.is_server_error() => "InternalServerError",
            _ => "Error",
        };
        SignupError {
            status,
            body: serde_json::json!({
                "name": name,
                "code": code,
                "description": description.into(),
                "statusCode": status.as_u16(),
            }),
            retry_after: None,
        }
    }
}

/// The store's failure, with the status and words OAuth's mapping gives it.
impl From<StoreError> for SignupError {
    fn from(error: StoreError) -> Self {
        let failure = OAuthError::from(error);
        let mut shaped = SignupError::new(failure.status, failure.error, failure.description);
        shaped.retry_after = failure.retry_after;
        shaped
    }
}

impl IntoResponse for SignupError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.extensions_mut().insert(StoreUnavailable);
        }
        response
    }
}

/// An error shown to the person in the browser, never redirected anywhere.
#[derive(Debug)]
pub(crate) struct PageError {
    pub(crate) status: StatusCode,
    pub(crate) title: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
}

impl PageError {
    pub(crate) fn bad_request(title: &'static str, message: impl Into<String>) -> Self {
        PageError {
            status: StatusCode::BAD_REQUEST,
            title,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() {
            tracing::warn!(%error, "database unavailable");
            PageError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "Temporarily unavailable",
                message:
                    "The service is temporarily unavailable. Please try again in a few seconds."
                        .into(),
                retry_after: Some(2),
            }
        } else {
            tracing::error!(%error, "storage error");
            PageError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                title: "Something went wrong",
                message: "The server could not complete the request.".into(),
                retry_after: None,
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response = pages::error_page(self.status, self.title, &self.message);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.extensions_mut().insert(StoreUnavailable);
        }
        response
    }
}
