//! `grant_type=authorization_code` (with PKCE): a code is redeemed once; a replay revokes
//! what the first redemption issued, even one racing it.

use tessera_core::{ids, pkce};
use tessera_store::CodeRedemption;

use super::client_auth::ClientCredentials;
use super::response::TokenResponse;
use super::user_tokens::{RefreshSource, UserGrant, user_tokens};
use crate::AppState;
use crate::clock::now;
use crate::edge::params::Params;
use crate::error::OAuthError;
use crate::grant;
use crate::oauth::authorize::CodeGrant;

/// `grant_type=authorization_code`: redeems a code once (PKCE checked) for the user's tokens.
pub(super) async fn grant(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: code"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: redirect_uri"))?;
    let client = credentials
        .client_allowed(state, "authorization_code")
        .await?;
    let Redeemed {
        user,
        grant,
        code_hash,
    } = redeem(
        state,
        &client,
        code,
        redirect_uri,
        params.get("code_verifier"),
    )
    .await?;
    // RFC 9449 §10: a code bound to a key goes only to a proof of that key. Checked once
    // the code is spent, as PKCE is: whoever sends it with another key should not have it.
    if let Some(bound) = &grant.dpop_jkt
        && dpop != Some(bound.as_str())
    {
        return Err(OAuthError::invalid_grant(
            "The authorization code is bound to a DPoP key (dpop_jkt): send a proof of that key.",
        ));
    }
    let api = grant::audience(state, &client, grant.audience.as_deref()).await?;
    let refresh = RefreshSource::Code {
        code_hash: code_hash.clone(),
        sid: grant.sid.clone(),
    };
    let tokens = user_tokens(
        state,
        UserGrant {
            client: &client,
            user: &user,
            api: api.as_ref(),
            scopes: &grant.scope,
            nonce: grant.nonce.as_deref(),
            auth_time: grant.auth_time,
            sid: Some(&grant.sid),
            custom: grant.custom.clone(),
            signed_in: &grant.signed_in,
            dpop,
        },
        Some(refresh),
    )
    .await?;
    // A replay that raced this redemption may have revoked before these tokens were stored:
    // asked only now that they are, so one of the two sides always sees the other. The
    // answer is still this redemption's (it won); what can be revoked of it is — when it
    // issued anything revocable at all.
    if tokens.revocable && state.store().code_was_replayed(&code_hash).await? {
        revoke_what_a_code_issued(state, &code_hash, &client.client_id, &user.user_id).await?;
    }
    Ok(tokens)
}

/// What a redeemed code gives: its user (live, not blocked) and what was authorized.
pub(crate) struct Redeemed {
    pub(crate) user: tessera_core::User,
    pub(crate) grant: CodeGrant,
    pub(crate) code_hash: Vec<u8>,
}

/// Redeems `code` once for `client` (authenticated by the caller): the redirect URI must
/// be the authorization request's, the PKCE verifier its challenge's. A replay revokes
/// what the first redemption issued. The dashboard, a client of this server, redeems its
/// codes in-process through this too.
pub(crate) async fn redeem(
    state: &AppState,
    client: &tessera_core::Client,
    code: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> Result<Redeemed, OAuthError> {
    let invalid = || OAuthError::invalid_grant("Invalid authorization code");
    let now = now();
    let code_hash = ids::secret_hash(code);
    let (redemption, user) = state.store().redeem_code_with_user(&code_hash, now).await?;
    let record = match redemption {
        CodeRedemption::Redeemed(record) => record,
        CodeRedemption::AlreadyUsed(record) => {
            // A replay: whoever holds this code may be an attacker. Record it first, then
            // revoke what the first redemption produced that can be revoked; a winner still
            // storing its tokens sees the record and revokes them itself.
            if record.client_id == client.client_id {
                state.store().mark_code_replayed(&code_hash, now).await?;
                revoke_what_a_code_issued(state, &code_hash, &record.client_id, &record.user_id)
                    .await?;
            }
            state.metrics().code_replayed();
            return Err(invalid());
        }
        CodeRedemption::NotFound => return Err(invalid()),
    };
    if record.client_id != client.client_id {
        return Err(invalid());
    }
    if record.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "The authorization code has expired",
        ));
    }
    if record.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let grant: CodeGrant =
        serde_json::from_str(&record.grant).map_err(|_| OAuthError::server_error())?;
    match (&grant.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => pkce::verify(verifier, challenge)
            .map_err(|e| OAuthError::invalid_grant(e.to_string()))?,
        (Some(_), None) => return Err(OAuthError::invalid_grant("Missing code_verifier")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        (None, None) if client.is_public() => {
            return Err(OAuthError::invalid_grant(
                "Public applications must use PKCE",
            ));
        }
        (None, None) => {}
    }
    let user = user
        .filter(|u| !u.blocked)
        .ok_or_else(|| OAuthError::invalid_grant("The user is blocked or no longer exists"))?;
    Ok(Redeemed {
        user,
        grant,
        code_hash,
    })
}

/// Revokes what the redemption of a replayed code produced that can be revoked: the refresh
/// families it started and the client's opaque tokens for the user.
async fn revoke_what_a_code_issued(
    state: &AppState,
    code_hash: &[u8],
    client_id: &str,
    user_id: &str,
) -> Result<(), OAuthError> {
    let now = now();
    let refresh = state
        .store()
        .revoke_refresh_families_of_code(code_hash, now)
        .await?;
    let opaque = state
        .store()
        .revoke_opaque_tokens(client_id, user_id)
        .await?;
    tracing::warn!(%client_id, refresh, opaque, "authorization code replayed: tokens revoked");
    Ok(())
}
