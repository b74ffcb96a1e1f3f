//! Pushed authorization requests (RFC 9126). `POST /oauth/par`: an application sends its
//! authorization request over the back channel, authenticated as at the token endpoint;
//! the request is checked as `/authorize` would check it, stored (without credentials),
//! and named by a `request_uri` that `/authorize` accepts once, within a minute, from the
//! same application. The browser then carries only `client_id` and `request_uri`: nothing
//! in the front channel can change what was pushed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::ids;

use super::client_auth::ClientCredentials;
use crate::AppState;
use crate::clock::now;
use crate::edge::params::Params;
use crate::error::{OAuthError, PageError};

/// What a `request_uri` of ours starts with (RFC 9126 §2.2).
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request waits for the browser, in seconds.
pub(crate) const PUSHED_REQUEST_LIFETIME: i64 = 60;
/// Parameters that authenticate the application: used here, never stored.
const CREDENTIALS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

pub(crate) async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = Params::from_body(&headers, &body, false)
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let credentials = ClientCredentials::from_request(&headers, &params)?;
        let client = credentials.authenticated_client(&state).await?;
        // §2.1: a pushed request names no other request.
        if params.get("request_uri").is_some() || params.get("request").is_some() {
            return Err(OAuthError::invalid_request(
                "A pushed request may not carry request_uri or request",
            ));
        }
        // Checked as /authorize will check it again when the browser brings it.
        let mut request = params.clone();
        request.set("client_id", &client.client_id);
        // RFC 9449 §10.1: a proof here binds the code as `dpop_jkt` does; both must agree.
        if let Some(jkt) = super::dpop::proven_key(&state, &headers, "oauth/par")? {
            if request.get("dpop_jkt").is_some_and(|named| named != jkt) {
                return Err(super::dpop::invalid_dpop_proof(
                    "dpop_jkt does not name the key of the DPoP proof.",
                ));
            }
            request.set("dpop_jkt", &jkt);
        }
        if let Err((error, description)) =
            crate::oauth::authorize::check_request(&state, &request).await
        {
            return Err(OAuthError::new(StatusCode::BAD_REQUEST, error, description));
        }
        let stored = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                request
                    .iter()
                    .filter(|(name, _)| !CREDENTIALS.contains(name)),
            )
            .finish();
        let secret = ids::secret_token();
        let expires_at = now() + PUSHED_REQUEST_LIFETIME;
        state
            .store()
            .push_request(
                &ids::secret_hash(&secret),
                &client.client_id,
                &stored,
                expires_at,
            )
            .await?;
        Ok(json!({
            "request_uri": format!("{REQUEST_URI_PREFIX}{secret}"),
            "expires_in": PUSHED_REQUEST_LIFETIME,
        }))
    }
    .await;
    let mut response = match result {
        Ok(answer) => {
            let mut response = (StatusCode::CREATED, Json(answer)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    };
    if let Some(nonce) = super::dpop::nonce_for(&state, &headers) {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    response
}

fn invalid_request_uri() -> PageError {
    PageError::bad_request(
        "Invalid request",
        "The request_uri is unknown, expired or used already. Go back to the application and \
         sign in again.",
    )
}

/// The request `request_uri` names, taken (it works once) for the application `client_id`.
pub(crate) async fn take(
    state: &AppState,
    client_id: Option<&str>,
    request_uri: &str,
) -> Result<Params, PageError> {
    let client_id = client_id.ok_or_else(|| {
        PageError::bad_request("Invalid request", "A request_uri comes with its client_id.")
    })?;
    let secret = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .filter(|secret| secret.len() <= 64)
        .ok_or_else(invalid_request_uri)?;
    let stored = state
        .store()
        .take_pushed_request(&ids::secret_hash(secret), client_id, now())
        .await?
        .ok_or_else(invalid_request_uri)?;
    Params::from_urlencoded(stored.as_bytes()).map_err(|_| invalid_request_uri())
}
