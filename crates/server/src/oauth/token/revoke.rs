//! `POST /oauth/revoke` (RFC 7009).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tessera_core::ids;

use super::client_auth::ClientCredentials;
use crate::AppState;
use crate::clock::now;
use crate::edge::cors;
use crate::edge::params::Params;
use crate::error::OAuthError;

/// `POST /oauth/revoke` (RFC 7009): revokes a refresh token (its whole family). Unknown
/// tokens, and tokens of other clients, get the same empty 200: nothing to learn.
pub(crate) async fn revoke(
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
        let revoked = state
            .store()
            .revoke_refresh_token(&ids::secret_hash(token), &client.client_id, now())
            .await?;
        if revoked {
            tracing::info!(client_id = %client.client_id, "refresh token revoked");
        }
        Ok::<_, OAuthError>(())
    }
    .await;
    let response = match result {
        Ok(()) => {
            let mut response = axum::http::StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    };
    cors::allow_registered(&state, &headers, response).await
}
