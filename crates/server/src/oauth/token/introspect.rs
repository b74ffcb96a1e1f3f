//! `POST /oauth/introspect` (RFC 7662): for a resource server that would rather ask than
//! verify a JWT itself. Only a confidential application may ask (its secret, as at the
//! token endpoint), and it learns about an access token only when the token was issued to
//! it or names an API it holds a client grant for: an API's own machine-to-machine
//! application introspects that API's tokens. Every other answer is `{"active": false}`,
//! which says nothing about why. A refresh token is the application's own: only the
//! application it was issued to learns that it is live (not rotated, revoked or expired),
//! for whom, with which scope, and until when.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tessera_core::{Client, ids, scope};
use tessera_jose::verify_with;
use tessera_store::{ClientGrantFilter, Slice};

use super::client_auth::ClientCredentials;
use super::user_tokens::RefreshGrant;
use crate::AppState;
use crate::clock::now;
use crate::edge::headers::no_store;
use crate::edge::params::Params;
use crate::error::OAuthError;

/// Claims an introspection answer repeats from a verified access token (RFC 7662 §2.2).
const REPEATED: &[&str] = &["scope", "sub", "aud", "iss", "exp", "iat", "nbf", "jti"];

pub(crate) async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = Params::from_body(&headers, &body, true)
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let credentials = ClientCredentials::from_request(&headers, &params)?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: token"))?;
        let client = credentials.authenticated_client(&state).await?;
        if client.is_public() {
            return Err(OAuthError::invalid_client(
                "Only a confidential application may introspect tokens",
                credentials.used_basic,
            ));
        }
        answer(&state, &client, token).await
    }
    .await;
    match result {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(error) => error.into_response(),
    }
}

/// What `client` may know of `token`.
async fn answer(state: &AppState, client: &Client, token: &str) -> Result<Value, OAuthError> {
    let inactive = json!({ "active": false });
    if token.len() > 16 * 1024 {
        return Ok(inactive);
    }
    // Our access tokens are JWTs of three parts; a refresh token is one opaque part.
    match token.matches('.').count() {
        2 => {}
        0 => return refresh_token(state, client, token).await,
        _ => return Ok(inactive),
    }
    let keys = state.keys();
    let Ok(verified) = verify_with(token, |kid| keys.verifying_key(kid)) else {
        return Ok(inactive);
    };
    let claims = verified.claims;
    let issued_here = claims.get("iss").and_then(Value::as_str) == Some(state.issuer());
    let now = now();
    let live = claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| exp > now)
        && claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_none_or(|nbf| nbf <= now);
    if !(issued_here && live) {
        return Ok(inactive);
    }
    // Every access token names its application in `azp`; an ID token does not: it is the
    // application's own proof of a login, not a credential an API is shown.
    let Some(token_client) = claims.get("azp").and_then(Value::as_str) else {
        return Ok(inactive);
    };
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut may_know = token_client == client.client_id;
    for audience in &audiences {
        if may_know {
            break;
        }
        let grants = state
            .store()
            .list_client_grants(
                ClientGrantFilter {
                    client_id: Some(&client.client_id),
                    audience: Some(audience),
                },
                Slice::first(1),
            )
            .await?;
        may_know = !grants.items.is_empty();
    }
    if !may_know {
        return Ok(inactive);
    }
    let mut answer = Map::new();
    answer.insert("active".into(), Value::Bool(true));
    answer.insert("token_type".into(), Value::String("Bearer".into()));
    answer.insert("client_id".into(), Value::String(token_client.to_string()));
    for name in REPEATED {
        if let Some(value) = claims.get(*name) {
            answer.insert((*name).to_string(), value.clone());
        }
    }
    Ok(Value::Object(answer))
}

/// What `client` may know of a refresh token: only its own, and only while it can be used.
async fn refresh_token(
    state: &AppState,
    client: &Client,
    token: &str,
) -> Result<Value, OAuthError> {
    let inactive = json!({ "active": false });
    // Ours are 43 characters; a longer one is not worth hashing.
    if token.len() > 256 {
        return Ok(inactive);
    }
    let Some((family, ends)) = state
        .store()
        .live_refresh_token(&ids::secret_hash(token), now())
        .await?
    else {
        return Ok(inactive);
    };
    if family.client_id != client.client_id {
        return Ok(inactive);
    }
    let grant: RefreshGrant =
        serde_json::from_str(&family.grant).map_err(|_| OAuthError::server_error())?;
    let mut answer = json!({
        "active": true,
        "client_id": family.client_id,
        "sub": family.user_id,
        "scope": scope::join(&grant.scope),
        "exp": ends,
        "iss": state.issuer(),
    });
    if let Some(audience) = grant.audience {
        answer["aud"] = Value::String(audience);
    }
    Ok(answer)
}
