//! The Management API's error shape, Auth0's:
//! `{"statusCode": 404, "error": "Not Found", "message": "…", "errorCode": "inexistent_client"}`.
//! Messages never repeat a secret or a password.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tessera_store::StoreError;

#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) error_code: Option<&'static str>,
    /// The member of the body or query the error is about, when it is about one (the
    /// dashboard shows the message next to that field).
    pub(crate) property: Option<String>,
    retry_after: bool,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        message: impl Into<String>,
        error_code: Option<&'static str>,
    ) -> Self {
        ApiError {
            status,
            message: message.into(),
            error_code,
            property: None,
            retry_after: false,
        }
    }

    /// 400 `invalid_body`: `Payload validation error: '<what>'.` (Auth0's wording).
    pub(crate) fn invalid_body(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Payload validation error: '{what}'."),
            Some("invalid_body"),
        )
    }

    /// 400 `invalid_body` about one property: `… '<what>' on property <name>.`
    pub(crate) fn invalid_property(what: impl std::fmt::Display, property: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Payload validation error: '{what}' on property {property}."),
            Some("invalid_body"),
        )
        .about(property)
    }

    /// Names the member the error is about.
    pub(crate) fn about(mut self, property: &str) -> Self {
        self.property = Some(property.to_string());
        self
    }

    /// 400 `invalid_query_string`: `Query validation error: '<what>'.`
    pub(crate) fn invalid_query(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Query validation error: '{what}'."),
            Some("invalid_query_string"),
        )
    }

    /// 400 `invalid_query_string` about one parameter.
    pub(crate) fn invalid_query_property(what: impl std::fmt::Display, property: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Query validation error: '{what}' on property {property}."),
            Some("invalid_query_string"),
        )
    }

    /// 400 for a value the shared rules refused (the message says why).
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, Some("invalid_body"))
    }

    pub(crate) fn not_found(message: impl Into<String>, error_code: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, message, Some(error_code))
    }

    pub(crate) fn conflict(message: impl Into<String>, error_code: &'static str) -> Self {
        Self::new(StatusCode::CONFLICT, message, Some(error_code))
    }

    pub(crate) fn forbidden(message: impl Into<String>, error_code: &'static str) -> Self {
        Self::new(StatusCode::FORBIDDEN, message, Some(error_code))
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message, None)
    }

    /// A store error nobody mapped to a 404 or 409 of its own.
    pub(crate) fn store(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                format!("{what} already exists"),
                Some("conflict"),
            ),
            StoreError::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                format!("{what} not found"),
                Some("inexistent_resource"),
            ),
            error if error.is_transient() => {
                tracing::warn!(%error, "management API: the database is unavailable");
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable, please try again later.",
                    Some("temporarily_unavailable"),
                );
                e.retry_after = true;
                e
            }
            error => {
                tracing::error!(%error, "management API: database error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    Some("internal_error"),
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::store(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("statusCode".into(), json!(self.status.as_u16()));
        body.insert(
            "error".into(),
            json!(self.status.canonical_reason().unwrap_or("Error")),
        );
        body.insert("message".into(), json!(self.message));
        if let Some(code) = self.error_code {
            body.insert("errorCode".into(), json!(code));
        }
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\", error=\"invalid_token\""),
            );
        }
        if self.retry_after {
            // Only a store that did not answer sets it.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
                .extensions_mut()
                .insert(crate::edge::metrics::StoreUnavailable);
        }
        response
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
