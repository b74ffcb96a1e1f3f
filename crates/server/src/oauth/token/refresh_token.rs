//! `grant_type=refresh_token`: rotating refresh tokens — every use returns a new one;
//! presenting a used one revokes the whole family.

use tessera_core::{ids, scope};
use tessera_store::{RefreshRotation, RefreshTiming};

use super::client_auth::ClientCredentials;
use super::response::TokenResponse;
use super::user_tokens::{RefreshGrant, RefreshSource, UserGrant, user_tokens};
use crate::AppState;
use crate::actions::{self, Login, RequestFacts};
use crate::clock::now;
use crate::edge::params::Params;
use crate::error::OAuthError;
use crate::grant;

/// `grant_type=refresh_token`: rotates the token (the old one stops working; presenting it
/// again revokes the whole family) and issues fresh tokens, ID token included.
pub(super) async fn grant(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
    facts: &RequestFacts,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: refresh_token"))?;
    let client = credentials.client_allowed(state, "refresh_token").await?;
    let invalid = || OAuthError::invalid_grant("Unknown or invalid refresh token.");
    let now = now();
    let old_hash = ids::secret_hash(token);
    // Validate everything that can fail before rotating, so a bad request costs nothing.
    let (family, user) = state
        .store()
        .find_refresh_family_with_user(&old_hash, now)
        .await?
        .ok_or_else(invalid)?;
    if family.client_id != client.client_id {
        return Err(invalid());
    }
    let grant: RefreshGrant =
        serde_json::from_str(&family.grant).map_err(|_| OAuthError::server_error())?;
    if let Some(bound) = grant.dpop_jkt.as_deref()
        && dpop != Some(bound)
    {
        return Err(super::dpop::invalid_dpop_proof(
            "The refresh token is bound to a DPoP key: a proof with that key is required.",
        ));
    }
    let scopes = match params.get("scope") {
        None => grant.scope.clone(),
        Some(requested) => {
            let requested = scope::parse(requested);
            if let Some(extra) = requested.iter().find(|s| !scope::contains(&grant.scope, s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "The scope {extra:?} was not part of the original grant."
                )));
            }
            requested
        }
    };
    if user.blocked {
        return Err(OAuthError::invalid_grant(
            "The user is blocked or no longer exists",
        ));
    }
    let api = grant::audience(state, &client, grant.audience.as_deref()).await?;
    super::dpop::require_for(api.as_ref(), dpop)?;
    // Post-login runs again for a refresh (protocol `oauth2-refresh-token`), before the
    // rotation: a refusal leaves the refresh token as it was.
    let login = Login {
        client: &client,
        user: &user,
        api: api.as_ref(),
        protocol: "oauth2-refresh-token",
        requested_scopes: &scopes,
        redirect_uri: None,
        request: facts,
        connection: grant.signed_in.connection.as_deref(),
        amr: &grant.signed_in.amr,
        redirects: actions::Redirects::Impossible,
    };
    let custom = actions::post_login(state, &login)
        .await
        .map_err(grant::Denied::from)?;
    let new_token = ids::secret_token();
    let timing = RefreshTiming {
        idle_lifetime: client.refresh.idle_token_lifetime,
        reuse_interval: client.refresh.reuse_interval,
    };
    match state
        .store()
        .rotate_refresh_token(
            &old_hash,
            &ids::secret_hash(&new_token),
            &client.client_id,
            timing,
            now,
        )
        .await?
    {
        RefreshRotation::Rotated => {}
        RefreshRotation::Reused => {
            state.metrics().refresh_token_reused();
            tracing::warn!(client_id = %client.client_id, "refresh token reused: family revoked");
            return Err(invalid());
        }
        RefreshRotation::Invalid => return Err(invalid()),
    }
    // The family keeps its full scope; a narrower `scope` narrows only this response's
    // access token. A refreshed token keeps `offline_access` so the new refresh token is
    // returned.
    let mut scopes = scopes;
    if !scope::contains(&scopes, scope::OFFLINE_ACCESS) {
        scopes.push(scope::OFFLINE_ACCESS.to_string());
    }
    user_tokens(
        state,
        UserGrant {
            client: &client,
            user: &user,
            api: api.as_ref(),
            scopes: &scopes,
            nonce: None,
            auth_time: grant.auth_time,
            sid: grant.sid.as_deref(),
            custom,
            signed_in: &grant.signed_in,
            dpop,
        },
        Some(RefreshSource::Rotated(new_token)),
    )
    .await
}
