//! Who calls: a bearer JWT this server issued by `client_credentials` for the Management
//! API (`aud` = `<issuer>api/v2/`), verified in-process with the published keys (current,
//! next, previous), then checked against the application's grant as it is *now* (through
//! the half-second machine-access cache): deleting the application or its grant, or
//! narrowing the grant's scopes, takes effect within a second for tokens already issued.
//!
//! User tokens are refused: only machine-to-machine grants, which an administrator
//! creates, open this API. (User flows are not granted its scopes in the first place:
//! `tessera_core::system::user_may_hold`.)

use axum::http::{HeaderMap, StatusCode};
use tessera_core::scope;
use tessera_core::system::management_api_identifier;
use tessera_jose::verify_with;

use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::clock::now;
use crate::edge::authorization;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: i64 = 60;
/// Longer bearer tokens are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Who performs a Management API operation and what it may do: a machine whose token
/// holds scopes its grant still allows, or an administrator signed in to the dashboard
/// with the permissions their roles give on the Management API. Every operation checks
/// its scope on the principal, whichever door the request came through.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    scopes: Vec<String>,
}

impl Principal {
    pub(crate) fn with_scopes(scopes: Vec<String>) -> Self {
        Principal { scopes }
    }

    /// Whether the principal holds `scope`.
    pub(crate) fn may(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the principal may change anything (holds a scope other than `read:…`).
    pub(crate) fn writes_anything(&self) -> bool {
        self.scopes.iter().any(|s| !s.starts_with("read:"))
    }

    /// Requires one of `any_of`: 403 `insufficient_scope` otherwise.
    pub(crate) fn require(&self, any_of: &[&str]) -> ApiResult<()> {
        if any_of.iter().any(|needed| self.may(needed)) {
            return Ok(());
        }
        Err(ApiError::forbidden(
            format!("Insufficient scope, expected any of: {}", any_of.join(",")),
            "insufficient_scope",
        ))
    }
}

/// Authenticates the request and requires one of `any_of` among the caller's scopes.
pub(crate) async fn require(
    state: &AppState,
    headers: &HeaderMap,
    any_of: &[&str],
) -> ApiResult<Principal> {
    let principal = authenticate(state, headers).await?;
    principal.require(any_of)?;
    Ok(principal)
}

tokio::task_local! {
    /// The principal a read made inside the server acts as (see [`acting_as`]).
    static ACTING: Principal;
}

/// Runs `work` (a Management API request served in-process) as `principal`, whatever
/// the request's headers say: the audit recorder reads a dashboard form's object before
/// the change with the signed-in administrator's own rights. Only code that calls this
/// sets it; nothing a client sends does.
pub(crate) async fn acting_as<F: std::future::Future>(principal: Principal, work: F) -> F::Output {
    ACTING.scope(principal, work).await
}

/// Authenticates the request: a caller of the Management API, whatever its scopes, with
/// the scopes its token holds that its grant still allows.
pub(crate) async fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<Principal> {
    if let Ok(principal) = ACTING.try_with(Principal::clone) {
        return Ok(principal);
    }
    let bad_header = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "Bad HTTP authentication header format",
            Some("invalid_authorization_header"),
        )
    };
    let token = authorization::with_scheme(headers, "Bearer")
        .map_err(|_| bad_header())?
        .ok_or_else(|| ApiError::unauthorized("Missing authentication"))?;
    let invalid = || ApiError::unauthorized("Invalid token");
    if token.len() > MAX_TOKEN_BYTES || token.matches('.').count() != 2 {
        return Err(invalid());
    }
    let keys = state.keys();
    let verified = verify_with(token, |kid| keys.verifying_key(kid)).map_err(|_| invalid())?;
    let claims = verified.claims;
    let audience = management_api_identifier(state.issuer());
    let now = now();
    if claims.get("iss").and_then(|v| v.as_str()) != Some(state.issuer()) {
        return Err(invalid());
    }
    let audience_ok = match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => *aud == audience,
        Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(ApiError::unauthorized("Bad audience"));
    }
    match claims.get("exp").and_then(|v| v.as_i64()) {
        Some(exp) if exp + LEEWAY_SECONDS > now => {}
        Some(_) => {
            return Err(ApiError::unauthorized(
                "Expired token received for JSON Web Token validation",
            ));
        }
        None => return Err(invalid()),
    }
    if claims
        .get("nbf")
        .and_then(|v| v.as_i64())
        .is_some_and(|nbf| nbf > now + LEEWAY_SECONDS)
    {
        return Err(invalid());
    }
    let client_id = match (
        claims.get("gty").and_then(|v| v.as_str()),
        claims
            .get("sub")
            .and_then(|v| v.as_str())
            .and_then(|s| s.strip_suffix("@clients")),
    ) {
        (Some("client-credentials"), Some(client_id)) => client_id.to_string(),
        _ => {
            return Err(ApiError::unauthorized(
                "Invalid token: the Management API accepts tokens of machine-to-machine applications (client_credentials) only",
            ));
        }
    };
    let token_scopes = scope::parse(claims.get("scope").and_then(|v| v.as_str()).unwrap_or(""));
    // The grant as it is now: scopes removed since the token was issued no longer count.
    let access = state
        .machine_access()
        .get(state.store(), &client_id, &audience)
        .await?
        .ok_or_else(invalid)?;
    crate::audit::set_actor(crate::audit::Actor::Client {
        client_id: client_id.clone(),
    });
    Ok(Principal::with_scopes(match &access.grant {
        Some(grant) => token_scopes
            .into_iter()
            .filter(|s| grant.scope.contains(s))
            .collect(),
        None => Vec::new(),
    }))
}
