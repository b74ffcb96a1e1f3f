//! Discovery documents, the JWKS and the health check.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::request::SUPPORTED_RESPONSE_TYPES;

use crate::AppState;
use crate::edge::cors;
use crate::oauth::token::client_auth::ASSERTION_ALGORITHMS;

/// OpenID Connect Discovery 1.0 / RFC 8414 metadata. Served at both well-known paths.
pub(crate) async fn openid_configuration(State(state): State<AppState>) -> Response {
    let url = |path: &str| format!("{}{path}", state.issuer());
    let document = json!({
        "issuer": state.issuer(),
        "authorization_endpoint": url("authorize"),
        "token_endpoint": url("oauth/token"),
        "userinfo_endpoint": url("userinfo"),
        "jwks_uri": url(".well-known/jwks.json"),
        "end_session_endpoint": url("oidc/logout"),
        // OIDC Back-Channel Logout 1.0 (`backchannel_logout`): logout tokens carry `sid`.
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "revocation_endpoint": url("oauth/revoke"),
        "introspection_endpoint": url("oauth/introspect"),
        "pushed_authorization_request_endpoint": url("oauth/par"),
        "require_pushed_authorization_requests": false,
        "device_authorization_endpoint": url("oauth/device/code"),
        "response_types_supported": SUPPORTED_RESPONSE_TYPES,
        "response_modes_supported": ["query", "fragment", "form_post", "web_message"],
        "grant_types_supported": [
            "authorization_code",
            "implicit",
            "refresh_token",
            "client_credentials",
            tessera_core::PASSWORD_GRANT,
            tessera_core::PASSWORD_REALM_GRANT,
            tessera_core::DEVICE_CODE_GRANT,
        ],
        "subject_types_supported": ["public"],
        // ID tokens are always ID_TOKEN_ALG; the list also names the algorithms APIs sign
        // access tokens with, as the JWKS does, because verifiers such as
        // express-oauth2-jwt-bearer accept on access tokens what it lists.
        "id_token_signing_alg_values_supported": state.keys().published_algorithms(),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": tessera_jose::dpop::DPOP_ALGORITHMS,
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "claims_supported": [
            "aud", "auth_time", "email", "email_verified", "exp", "iat", "iss", "name", "nickname",
            "picture", "sub", "updated_at", "nonce", "at_hash", "c_hash", "sid"
        ],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    let mut response = Json(document).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    cors::allow_any(response)
}

pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.keys().jwks_json();
    let mut response = body.to_string().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Short: the next key is published ahead of use, so a stale cache never misses a kid
    // for long, and rotations made by the CLI are visible quickly.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    cors::allow_any(response)
}

pub(crate) async fn health(State(state): State<AppState>) -> Response {
    match state.store().ping().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(_) => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "database unavailable"})),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            response
                .extensions_mut()
                .insert(crate::edge::metrics::StoreUnavailable);
            response
        }
    }
}
