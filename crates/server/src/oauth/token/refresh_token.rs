//! `grant_type=refresh_token`: rotating refresh tokens — every use returns a new one;
//! presenting a used one revokes the whole family.

use serde_json::{Value, json};
use tessera_core::{claims, ids, scope};
use tessera_store::{RefreshFamily, RefreshRotation, RefreshTiming};

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
    let refresh_token = || refresh_token_event(&family, Some(&grant));
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
        refresh_token: Some(&refresh_token),
    };
    let custom = match actions::post_login(state, &login).await {
        Ok(custom) => custom,
        Err(actions::Stopped::RefreshTokenRevoked { description }) => {
            revoked_by_action(state, &old_hash, &family, &description, now).await?;
            return Err(OAuthError::access_denied(description));
        }
        Err(stopped) => return Err(grant::Denied::from(stopped).into()),
    };
    let new_token = ids::secret_token();
    let new_hash = ids::secret_hash(&new_token);
    let timing = RefreshTiming {
        idle_lifetime: client.refresh.idle_token_lifetime,
        reuse_interval: client.refresh.reuse_interval,
    };
    match state
        .store()
        .rotate_refresh_token(&old_hash, &new_hash, &client.client_id, timing, now)
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
    // `api.refreshToken.setMetadata` and its kin: the family's metadata as the run left it.
    if let Some(metadata) = &custom.refresh_token_metadata {
        state
            .store()
            .set_refresh_family_metadata(&family.family_id, metadata, now)
            .await?;
    }
    // An action may bring the family's end, or the new token's idle end, forward.
    if custom.refresh_token_expires_at.is_some() || custom.refresh_token_idle_expires_at.is_some() {
        state
            .store()
            .shorten_refresh_family(
                &family.family_id,
                &new_hash,
                custom.refresh_token_expires_at,
                custom.refresh_token_idle_expires_at,
            )
            .await?;
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

/// A refresh token in Auth0's shape, as the Management API's refresh-token resource shows
/// it (without the times only the store knows: idle end, last exchange). A family whose
/// stored grant does not read (none this version writes) shows without what the grant
/// holds — its session and APIs — rather than hide the token from its administrator.
pub(crate) fn auth0_shape(family: &RefreshFamily) -> Value {
    let grant = serde_json::from_str::<RefreshGrant>(&family.grant).ok();
    refresh_token_event(family, grant.as_ref())
}

/// Auth0's `event.refresh_token` for the token a refresh exchange presents — the same
/// shape as the Management API's. Its `id` is the family's: every token rotated out of one
/// sign-in shares it, so a policy keyed on it follows the grant, not one link of the chain.
/// Tessera keeps no device history for a token (`device`): it is absent.
fn refresh_token_event(family: &RefreshFamily, grant: Option<&RefreshGrant>) -> Value {
    let mut event = json!({
        "id": family.family_id,
        "client_id": family.client_id,
        "user_id": family.user_id,
        "created_at": claims::rfc3339(family.created_at),
        "expires_at": claims::rfc3339(family.expires_at),
        "rotating": true,
        "session_id": grant.and_then(|grant| grant.sid.as_deref()),
        "metadata": family.metadata,
    });
    if let Some(grant) = grant
        && let Some(audience) = &grant.audience
    {
        event["resource_servers"] =
            json!([{ "audience": audience, "scopes": grant.scope.join(" ") }]);
    }
    event
}

/// `api.refreshToken.revoke`: the family of the token presented is revoked — the token
/// and every one rotated out of it — and the audit log says so (`srrt`, with the reason).
async fn revoked_by_action(
    state: &AppState,
    token_hash: &[u8],
    family: &RefreshFamily,
    reason: &str,
    now: i64,
) -> Result<(), OAuthError> {
    state
        .store()
        .revoke_refresh_token(token_hash, &family.client_id, now)
        .await?;
    tracing::info!(
        target: "tessera::actions",
        client_id = %family.client_id,
        "an action revoked the refresh token presented"
    );
    let mut event = crate::audit::event("srrt", "Successful Refresh Token Revocation");
    event.client_id = Some(family.client_id.clone());
    event.user_id = Some(family.user_id.clone());
    event.details = json!({ "reason": reason, "refresh_token_id": family.family_id });
    state.record_log(event);
    Ok(())
}
