//! Errors, and their RFC 6750 rendering: the only place that knows the wire format of a
//! rejection.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_jose::JoseError;
use tessera_jose::dpop::{DPOP_ALGORITHMS, DpopError};

/// The realm used when no other was configured (the one express-oauth2-jwt-bearer uses).
pub(crate) const DEFAULT_REALM: &str = "api";

/// Why a request was refused. Each variant maps to one RFC 6750 response; see
/// [`GuardError::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// No bearer token in the request (no `Authorization` header, or another scheme such as
    /// `Basic`): 401 with a bare `Bearer realm="api"` challenge.
    #[error("missing bearer token")]
    MissingToken,
    /// The `Authorization` header is malformed: 400 `invalid_request`.
    #[error("{0}")]
    InvalidRequest(RequestError),
    /// The token failed verification: 401 `invalid_token`.
    #[error("{0}")]
    InvalidToken(TokenError),
    /// The token is valid but lacks what the route requires: 403 `insufficient_scope`,
    /// with the needed scopes (or permissions) in the challenge's `scope` parameter.
    #[error("insufficient scope")]
    InsufficientScope {
        /// The scopes or permissions the route asks for.
        required: Vec<String>,
    },
    /// The `DPoP` proof is missing, repeated or wrong (RFC 9449 §7.1): 401
    /// `invalid_dpop_proof` with a `DPoP` challenge.
    #[error("{0}")]
    InvalidDpopProof(DpopError),
    /// The API requires a server-provided nonce in DPoP proofs and this one had none, or
    /// an old one (RFC 9449 §9): 401 `use_dpop_nonce`, the nonce to use in `DPoP-Nonce`.
    #[error("the resource server requires a nonce in the DPoP proof")]
    UseDpopNonce(String),
}

/// What is wrong with an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("more than one Authorization header")]
    MultipleAuthorizationHeaders,
    #[error("the Authorization header is not visible ASCII")]
    UnreadableHeader,
    #[error("the Bearer scheme has no token")]
    EmptyToken,
    #[error("the bearer token has characters outside the b64token syntax")]
    InvalidTokenSyntax,
}

/// Why a token was not accepted. The messages are fixed strings: they never echo token
/// contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("the token is not a well-formed JWS")]
    Malformed,
    #[error("the token is too large")]
    TooLarge,
    #[error("unexpected alg value")]
    WrongAlgorithm,
    #[error("the token has an unsupported critical header")]
    UnsupportedCritical,
    #[error("signature verification failed")]
    BadSignature,
    #[error("no signing key matches the token")]
    UnknownKey,
    #[error("unexpected typ value")]
    WrongType,
    #[error("missing {0} claim")]
    MissingClaim(&'static str),
    #[error("invalid {0} claim")]
    InvalidClaim(&'static str),
    #[error("unexpected iss value")]
    WrongIssuer,
    #[error("unexpected aud value")]
    WrongAudience,
    #[error("the token is an ID token, not an access token")]
    NotAnAccessToken,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token is DPoP-bound: present it with the DPoP scheme and a proof")]
    BoundTokenAsBearer,
    #[error("the token is not DPoP-bound")]
    NotDpopBound,
    #[error("the token is not bound to the DPoP proof's key")]
    KeyMismatch,
    #[error("this API requires DPoP-bound tokens")]
    DpopRequired,
}

impl From<JoseError> for TokenError {
    fn from(error: JoseError) -> Self {
        match error {
            JoseError::TooLarge => TokenError::TooLarge,
            JoseError::AlgorithmMismatch | JoseError::UnsupportedAlgorithm(_) => {
                TokenError::WrongAlgorithm
            }
            JoseError::UnsupportedCritical => TokenError::UnsupportedCritical,
            JoseError::BadSignature => TokenError::BadSignature,
            JoseError::UnknownKey => TokenError::UnknownKey,
            _ => TokenError::Malformed,
        }
    }
}

impl From<TokenError> for GuardError {
    fn from(error: TokenError) -> Self {
        GuardError::InvalidToken(error)
    }
}

impl From<RequestError> for GuardError {
    fn from(error: RequestError) -> Self {
        GuardError::InvalidRequest(error)
    }
}

/// Invalid configuration given to [`GuardBuilder::build`](crate::GuardBuilder::build).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("an issuer is required")]
    MissingIssuer,
    #[error("the issuer must be an http(s) URL without query or fragment")]
    InvalidIssuer,
    #[error("at least one audience is required")]
    MissingAudience,
    #[error("the leeway may be at most 60 seconds")]
    LeewayTooLarge,
    #[error("the jwks_uri must be an http(s) URL")]
    InvalidJwksUri,
    #[error("the fixed key set has no usable signing key")]
    NoUsableKeys,
    #[error("the HTTP client could not be built")]
    HttpClient,
    #[error("the public origin must be an http(s) scheme and host, without a path")]
    InvalidPublicOrigin,
}

/// Why a JWKS refresh failed. The guard keeps its last good keys when this happens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    #[error("HTTP request failed: {0}")]
    Http(String),
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    #[error("the response is too large")]
    TooLarge,
    #[error("invalid {0} document")]
    InvalidDocument(&'static str),
    #[error("the discovery document names another issuer")]
    IssuerMismatch,
    #[error("the JWKS has no usable signing key")]
    NoUsableKeys,
    #[error("the refresh did not finish in time")]
    Timeout,
    #[error("no Tokio runtime to run the refresh on")]
    NoRuntime,
}

impl GuardError {
    /// The HTTP status this error is answered with: 400, 401 or 403.
    pub fn status(&self) -> StatusCode {
        match self {
            GuardError::MissingToken
            | GuardError::InvalidToken(_)
            | GuardError::InvalidDpopProof(_)
            | GuardError::UseDpopNonce(_) => StatusCode::UNAUTHORIZED,
            GuardError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            GuardError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The RFC 6750 error code, if any (a missing token has none).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            GuardError::MissingToken => None,
            GuardError::InvalidRequest(_) => Some("invalid_request"),
            GuardError::InvalidToken(_) => Some("invalid_token"),
            GuardError::InsufficientScope { .. } => Some("insufficient_scope"),
            GuardError::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            GuardError::UseDpopNonce(_) => Some("use_dpop_nonce"),
        }
    }

    /// Whether the challenge is `DPoP` (RFC 9449 §7.1): for a bad proof, and whenever the
    /// API requires DPoP; otherwise `Bearer`.
    fn dpop_challenge(&self, dpop_required: bool) -> bool {
        dpop_required
            || matches!(
                self,
                GuardError::InvalidDpopProof(_)
                    | GuardError::UseDpopNonce(_)
                    | GuardError::InvalidToken(TokenError::NotDpopBound | TokenError::KeyMismatch)
            )
    }

    /// The `WWW-Authenticate` challenge for this error in `realm`.
    pub fn challenge(&self, realm: &str) -> String {
        self.challenge_in(realm, false)
    }

    /// The challenge in `realm`, for an API that requires DPoP or not.
    pub fn challenge_in(&self, realm: &str, dpop_required: bool) -> String {
        let dpop = self.dpop_challenge(dpop_required);
        let mut challenge = String::with_capacity(96);
        challenge.push_str(if dpop {
            "DPoP realm=\""
        } else {
            "Bearer realm=\""
        });
        push_quoted(&mut challenge, realm);
        challenge.push('"');
        if let Some(code) = self.code() {
            let description = match self {
                GuardError::InsufficientScope { .. } => "Insufficient Scope".to_owned(),
                other => other.to_string(),
            };
            let _ = write!(challenge, ", error=\"{code}\", error_description=\"");
            push_quoted(&mut challenge, &description);
            challenge.push('"');
        }
        if let GuardError::InsufficientScope { required } = self {
            challenge.push_str(", scope=\"");
            push_quoted(&mut challenge, &required.join(" "));
            challenge.push('"');
        }
        if dpop {
            let _ = write!(challenge, ", algs=\"{}\"", DPOP_ALGORITHMS.join(" "));
        }
        challenge
    }

    /// The full response: status, `WWW-Authenticate` challenge and a JSON body
    /// `{"error": ..., "error_description": ...}`; `error` is `unauthorized` for a missing
    /// token, which has no RFC 6750 error code.
    pub fn to_response(&self, realm: &str) -> Response {
        self.to_response_in(realm, false)
    }

    /// The full response, for an API that requires DPoP or not.
    pub fn to_response_in(&self, realm: &str, dpop_required: bool) -> Response {
        let challenge = HeaderValue::from_str(&self.challenge_in(realm, dpop_required))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        let body = serde_json::json!({
            "error": self.code().unwrap_or("unauthorized"),
            "error_description": self.to_string(),
        });
        let mut response = (self.status(), axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
        if let GuardError::UseDpopNonce(nonce) = self
            && let Ok(nonce) = HeaderValue::from_str(nonce)
        {
            response.headers_mut().insert("dpop-nonce", nonce);
        }
        response
    }
}

impl IntoResponse for GuardError {
    fn into_response(self) -> Response {
        self.to_response(DEFAULT_REALM)
    }
}

/// Appends `text` as the inside of an HTTP quoted-string: `"` and `\` are escaped, and
/// anything that is not visible ASCII or a space becomes `?`, so the header value is
/// always valid.
fn push_quoted(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(
            GuardError::MissingToken.challenge("api"),
            r#"Bearer realm="api""#
        );
        assert_eq!(
            GuardError::InvalidToken(TokenError::Expired).challenge("api"),
            r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
        );
        assert_eq!(
            GuardError::InvalidRequest(RequestError::EmptyToken).challenge("api"),
            r#"Bearer realm="api", error="invalid_request", error_description="the Bearer scheme has no token""#
        );
        let scope = GuardError::InsufficientScope {
            required: vec!["read:messages".into(), "write:messages".into()],
        };
        assert_eq!(
            scope.challenge("api"),
            r#"Bearer realm="api", error="insufficient_scope", error_description="Insufficient Scope", scope="read:messages write:messages""#
        );
    }

    #[test]
    fn hostile_realm_and_scope_names_cannot_break_the_header() {
        let error = GuardError::InsufficientScope {
            required: vec!["a\"b\\c\r\nSet-Cookie: x=1".into(), "é".into()],
        };
        let challenge = error.challenge("r\"ealm");
        assert!(challenge.contains(r#"realm="r\"ealm""#));
        assert!(challenge.contains(r#"scope="a\"b\\c??Set-Cookie: x=1 ?""#));
        let response = error.to_response("r\"ealm");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap(),
            challenge
        );
    }
}
