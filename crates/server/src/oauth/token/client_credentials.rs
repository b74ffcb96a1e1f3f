//! `grant_type=client_credentials`: machine-to-machine tokens, as the client grant allows.

use tessera_core::claims::Subject;
use tessera_core::grant::Refusal;
use tessera_core::scope;

use super::client_auth::ClientCredentials;
use super::response::TokenResponse;
use crate::AppState;
use crate::actions::RequestFacts;
use crate::edge::params::Params;
use crate::error::OAuthError;
use crate::oauth::issue;
use tessera_store::MachineAccess;

/// `grant_type=client_credentials`: a machine-to-machine token, as its client grant allows.
pub(super) async fn grant(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
    facts: &RequestFacts,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let Some(audience) = crate::grant::requested_audience(state, params.get("audience")).await?
    else {
        // Only an application that proved who it is learns how the tenant is configured.
        let client = credentials.authenticated_client(state).await?;
        may_use_the_grant(&client)?;
        return Err(OAuthError::access_denied(
            "No audience parameter was provided, and no default audience has been configured",
        ));
    };
    let audience = audience.as_str();
    let access = state
        .machine_access()
        .get(state.store(), &credentials.client_id, audience)
        .await?
        .ok_or_else(|| {
            OAuthError::invalid_client("Client authentication failed", credentials.used_basic)
        })?;
    credentials.authenticate(state, &access.client).await?;
    super::dpop::require_for(access.api.as_ref(), dpop)?;
    may_use_the_grant(&access.client)?;
    let requested = params.get("scope").map(scope::parse);
    machine_token(
        state,
        &access,
        audience,
        requested.as_deref(),
        Some(facts),
        dpop,
    )
    .await
}

/// Refuses a public application, or one whose grant types leave this one out.
fn may_use_the_grant(client: &tessera_core::Client) -> Result<(), OAuthError> {
    if client.is_public() || !client.allows_grant("client_credentials") {
        return Err(OAuthError::unauthorized_client(
            "Grant type 'client_credentials' not allowed for the client.",
        ));
    }
    Ok(())
}

/// A token for `access`'s application (already authenticated, or vouched for by an
/// administrator testing an API in the dashboard) to its audience, with the scopes its
/// grant allows of `requested` (all of them when `None`). With `request`, the
/// credentials-exchange Actions run on it (the dashboard's test token skips them). With
/// `dpop`, the token is bound to that key thumbprint.
pub(crate) async fn machine_token(
    state: &AppState,
    access: &MachineAccess,
    audience: &str,
    requested: Option<&[String]>,
    request: Option<&RequestFacts>,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let api = access.api.as_ref().ok_or_else(|| {
        OAuthError::access_denied(
            Refusal::UnknownAudience {
                audience: audience.to_string(),
            }
            .description(),
        )
    })?;
    let mut granted = tessera_core::grant::for_machine(requested, api, access.grant.as_ref())
        .map_err(|refusal| OAuthError::access_denied(refusal.description()))?;
    if let Some(request) = request {
        crate::grant::after_credentials(state, &access.client, api, request, &mut granted).await?;
    }
    let issued = issue::jwt_access_token(
        state,
        api,
        Subject::Client,
        &access.client.client_id,
        &granted,
        false,
        dpop,
    )?;
    let scopes = granted.scopes;
    let token_type = issued.token_type();
    Ok(TokenResponse {
        access_token: issued.token,
        id_token: None,
        refresh_token: None,
        scope: scope::join(&scopes),
        expires_in: issued.expires_in,
        token_type,
        recovery_code: None,
        revocable: issued.stored,
        audit: super::response::Issued {
            client_name: Some(access.client.name.clone()),
            audience: Some(audience.to_string()),
            ..Default::default()
        },
    })
}
