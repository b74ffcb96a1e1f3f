//! `/userinfo` (GET and POST): the profile claims a bearer token's scopes allow.
//! Accepts our JWT access tokens whose audience includes `<issuer>userinfo`, and the
//! opaque tokens issued without an audience.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::{claims, ids, scope};
use tessera_jose::verify_with;

use crate::AppState;
use crate::clock::now;
use crate::edge::authorization;
use crate::edge::cors;
use crate::edge::params::Params;
use crate::error::OAuthError;

/// Clock skew tolerated on `exp`.
const LEEWAY_SECONDS: i64 = 60;

pub(crate) async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let sent = Sent {
        method: &method,
        headers: &headers,
        query: query.as_deref(),
        body: &body,
    };
    let response = match handle(&state, &sent).await {
        Ok(document) => {
            let mut response = Json(document).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(error) => error.into_response(),
    };
    cors::allow_registered(&state, &headers, response).await
}

/// The parts of a request that may carry the access token.
struct Sent<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    body: &'a [u8],
}

/// RFC 6750 §2.1–2.3: the token from the header (scheme case-insensitive), a form body,
/// or the `access_token` query parameter (passport-auth0 sends it there), exactly one of
/// them. The request log never shows query strings, so the token stays out of logs.
fn bearer_token(sent: &Sent<'_>) -> Result<String, OAuthError> {
    let Sent {
        method,
        headers,
        query,
        body,
    } = *sent;
    let from_header = authorization::with_scheme(headers, "Bearer")
        .map_err(|refusal| match refusal {
            authorization::Refusal::Repeated => {
                OAuthError::invalid_request("Send one Authorization header")
            }
            authorization::Refusal::Malformed => OAuthError::invalid_request(
                "Malformed Authorization header: expected Bearer <token>",
            ),
        })?
        .map(str::to_string);
    let from_body = if method == Method::POST && !body.is_empty() {
        Params::from_body(headers, body, false)
            .ok()
            .and_then(|p| p.get("access_token").map(str::to_string))
    } else {
        None
    };
    let from_query = match query {
        Some(query) => Params::from_urlencoded(query.as_bytes())
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?
            .get("access_token")
            .map(str::to_string),
        None => None,
    };
    let mut sources = [from_header, from_body, from_query].into_iter().flatten();
    match (sources.next(), sources.next()) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("Send the access token once")),
        (Some(token), None) => Ok(token),
        (None, _) => {
            let mut error = OAuthError::invalid_token("Missing access token");
            error.www_authenticate = Some("Bearer realm=\"tessera\"".into());
            error.status = StatusCode::UNAUTHORIZED;
            Err(error)
        }
    }
}

async fn handle(state: &AppState, sent: &Sent<'_>) -> Result<serde_json::Value, OAuthError> {
    let token = bearer_token(sent)?;
    let invalid = || OAuthError::invalid_token("The access token is invalid or expired");
    let now = now();
    let (user_id, scopes) = if token.matches('.').count() == 2 {
        let keys = state.keys();
        let verified = verify_with(&token, |kid| keys.verifying_key(kid)).map_err(|_| invalid())?;
        let claims = verified.claims;
        let userinfo_audience = format!("{}userinfo", state.issuer());
        let audience_ok = match claims.get("aud") {
            Some(serde_json::Value::String(aud)) => *aud == userinfo_audience,
            Some(serde_json::Value::Array(list)) => {
                list.iter().any(|a| a.as_str() == Some(&userinfo_audience))
            }
            _ => false,
        };
        let issuer_ok = claims.get("iss").and_then(|v| v.as_str()) == Some(state.issuer());
        let exp_ok = claims
            .get("exp")
            .and_then(|v| v.as_i64())
            .is_some_and(|exp| exp + LEEWAY_SECONDS > now);
        if !(audience_ok && issuer_ok && exp_ok) {
            return Err(invalid());
        }
        let sub = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .ok_or_else(invalid)?
            .to_string();
        let scope_text = claims.get("scope").and_then(|v| v.as_str()).unwrap_or("");
        (sub, scope::parse(scope_text))
    } else {
        if token.len() > 100 {
            return Err(invalid());
        }
        let record = state
            .store()
            .find_opaque_token(&ids::secret_hash(&token), now)
            .await?
            .ok_or_else(invalid)?;
        (record.user_id, scope::parse(&record.scope))
    };
    if !scope::contains(&scopes, "openid") {
        let mut error = OAuthError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The openid scope is required",
        );
        error.www_authenticate =
            Some("Bearer realm=\"tessera\", error=\"insufficient_scope\", scope=\"openid\"".into());
        return Err(error);
    }
    let user = state
        .store()
        .find_user(&user_id)
        .await?
        .filter(|u| !u.blocked)
        .ok_or_else(invalid)?;
    let mut document = claims::profile_claims(&user, &scopes);
    document.insert("sub".into(), serde_json::Value::String(user.user_id));
    Ok(serde_json::Value::Object(document))
}
