//! The token endpoint — `authorization_code` (with PKCE), `refresh_token` (rotating),
//! `client_credentials`, the password grants and the device code (RFC 8628, whose
//! `/oauth/device/code` lives beside its grant) — and token revocation (RFC 7009). Form and JSON bodies; client
//! authentication by `client_secret_basic`, `client_secret_post`, or none for public
//! clients (which must have used PKCE).

pub(crate) mod authorization_code;
pub(crate) mod client_auth;
pub(crate) mod client_credentials;
mod device_code;
pub(crate) mod dpop;
mod introspect;
mod mfa_api;
mod password;
pub(crate) mod pushed;
pub(crate) mod refresh_token;
pub(crate) mod response;
mod revoke;
mod user_tokens;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub(crate) use device_code::device_authorization;
pub(crate) use introspect::introspect;
pub(crate) use mfa_api::{
    associate as mfa_associate, authenticators as mfa_authenticators, challenge as mfa_challenge,
};
pub(crate) use revoke::revoke;

use client_auth::ClientCredentials;
use response::TokenResponse;

use std::net::IpAddr;

use tessera_core::{
    DEVICE_CODE_GRANT, MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT, PASSWORD_GRANT, PASSWORD_REALM_GRANT,
};

use crate::AppState;
use crate::actions::{RequestFacts, visible_parameters};
use crate::edge::client_ip::ClientIp;
use crate::edge::cors;
use crate::edge::metrics::Grant;
use crate::edge::params::Params;
use crate::error::OAuthError;

pub(crate) async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let nonce = dpop::nonce_for(&state, &headers);
    let mut response = match handle(&state, &headers, ip, &body).await {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            let out = response.headers_mut();
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            out.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => {
            state.metrics().token_error(error.error);
            error.into_response()
        }
    };
    if let Some(nonce) = nonce {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    cors::allow_registered(&state, &headers, response).await
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let params = Params::from_body(headers, body, true)
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let credentials = ClientCredentials::from_request(headers, &params)?;
    // Before the grant: a bad proof costs nothing (no code consumed, no token rotated).
    let proven = dpop::proven_key(state, headers, "oauth/token")?;
    let dpop = proven.as_deref();
    // What Actions see of this request (`event.request`): the body without credentials,
    // as `body` (Auth0's place for a token request's form) and, as before, as `query`.
    let facts = RequestFacts::of_token_request(ip, headers, visible_parameters(params.iter()));
    let (grant, issued) = match params.get("grant_type") {
        Some("authorization_code") => (
            Grant::AuthorizationCode,
            authorization_code::grant(state, &params, &credentials, dpop).await,
        ),
        Some("refresh_token") => (
            Grant::RefreshToken,
            refresh_token::grant(state, &params, &credentials, &facts, dpop).await,
        ),
        Some("client_credentials") => (
            Grant::ClientCredentials,
            client_credentials::grant(state, &params, &credentials, &facts, dpop).await,
        ),
        Some(name @ (PASSWORD_GRANT | PASSWORD_REALM_GRANT)) => {
            let caller = password::Caller {
                headers,
                ip,
                facts: &facts,
                dpop,
            };
            let realm = name == PASSWORD_REALM_GRANT;
            (
                Grant::Password,
                password::grant(state, &params, &credentials, &caller, realm).await,
            )
        }
        Some(DEVICE_CODE_GRANT) => (
            Grant::DeviceCode,
            device_code::grant(state, &params, &credentials, dpop).await,
        ),
        Some(MFA_OTP_GRANT) => (
            Grant::MfaOtp,
            mfa_api::otp_grant(state, &params, &credentials, &facts, dpop).await,
        ),
        Some(MFA_RECOVERY_CODE_GRANT) => (
            Grant::MfaRecoveryCode,
            mfa_api::recovery_code_grant(state, &params, &credentials, &facts, dpop).await,
        ),
        Some(_) => {
            return Err(OAuthError::unsupported_grant_type(format!(
                "Supported grant types: authorization_code, refresh_token, client_credentials, \
                 {PASSWORD_GRANT}, {PASSWORD_REALM_GRANT}, {DEVICE_CODE_GRANT}, {MFA_OTP_GRANT}, \
                 {MFA_RECOVERY_CODE_GRANT}."
            )));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "Missing required parameter: grant_type",
            ));
        }
    };
    if issued.is_ok() {
        state.metrics().token_issued(grant);
    }
    record(state, grant, &credentials.client_id, &issued);
    issued
}

/// The audit event of a grant's outcome (Auth0's codes: `seacft` / `feacft` for a code
/// exchange, `seccft` / `feccft` for client credentials, …; each pair checked against
/// Auth0's list of log event types, descriptions in its words). A device still waiting for
/// its user (`authorization_pending`, `slow_down`) is polling, not failing.
fn record(
    state: &AppState,
    grant: Grant,
    client_id: &str,
    issued: &Result<TokenResponse, OAuthError>,
) {
    let (success, failure, what) = match grant {
        Grant::AuthorizationCode => ("seacft", "feacft", "Authorization Code for Access Token"),
        Grant::RefreshToken => ("sertft", "fertft", "Refresh Token for Access Token"),
        Grant::ClientCredentials => ("seccft", "feccft", "Client Credentials for Access Token"),
        Grant::Password => ("sepft", "fepft", "Password for Access Token"),
        Grant::DeviceCode => ("sede", "fede", "Device Code for Access Token"),
        Grant::MfaOtp => (
            "seotpft",
            "feotpft",
            "Password and OTP Challenge for Access Token",
        ),
        Grant::MfaRecoveryCode => (
            "sercft",
            "fercft",
            "Password and MFA Recovery Code for Access Token",
        ),
        Grant::Implicit => return,
    };
    let mut event = match issued {
        Ok(tokens) => {
            let mut event = crate::audit::event(success, format!("Successful exchange of {what}"));
            event.user_id.clone_from(&tokens.audit.user_id);
            event.user_name.clone_from(&tokens.audit.user_name);
            event.client_name.clone_from(&tokens.audit.client_name);
            event.audience.clone_from(&tokens.audit.audience);
            event.scope = Some(tokens.scope.clone());
            event
        }
        Err(error) if matches!(error.error, "authorization_pending" | "slow_down") => return,
        Err(error) => {
            let mut event = crate::audit::event(failure, error.description.clone());
            event.details = serde_json::json!({ "error": error.error });
            event
        }
    };
    if !client_id.is_empty() {
        event.client_id = Some(client_id.to_string());
    }
    state.record_log(event);
}
