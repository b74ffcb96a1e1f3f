//! Turning a user's grant into tokens at the token endpoint (code and refresh grants): the
//! access token, an ID token with `openid`, a refresh token with `offline_access` when the
//! application may refresh.

use serde::{Deserialize, Serialize};
use tessera_core::grant::{Asked, Customization};
use tessera_core::{Client, ResourceServer, User, ids, scope};
use tessera_store::NewRefreshFamily;

use super::response::TokenResponse;
use crate::AppState;
use crate::clock::now;
use crate::error::OAuthError;
use crate::grant;
use crate::oauth::issue::{self, SignedIn};

/// What a refresh-token family grants, stored with the family.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RefreshGrant {
    pub(super) scope: Vec<String>,
    pub(super) audience: Option<String>,
    pub(super) sid: Option<String>,
    pub(super) auth_time: i64,
    /// How the session that started the family was signed in (post-login Actions and
    /// ID tokens see it again at each refresh).
    #[serde(flatten)]
    pub(super) signed_in: SignedIn,
    /// The DPoP key a public client's family is bound to: each refresh must prove it
    /// (RFC 9449 §5). A confidential client's family is bound by its authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) dpop_jkt: Option<String>,
}

/// Where the refresh token of a response comes from.
pub(super) enum RefreshSource {
    /// A new family, started by this code.
    Code { code_hash: Vec<u8>, sid: String },
    /// A new family from a password grant: no code, no browser session.
    Password,
    /// A new family from a device code: no code, and the browser's session that approved
    /// is not the device's.
    Device,
    /// The token the family was just rotated to.
    Rotated(String),
}

/// A user's grant being turned into tokens: what the code or refresh family recorded.
pub(super) struct UserGrant<'a> {
    pub(super) client: &'a Client,
    pub(super) user: &'a User,
    pub(super) api: Option<&'a ResourceServer>,
    /// The scopes decided when the code or the family was.
    pub(super) scopes: &'a [String],
    pub(super) nonce: Option<&'a str>,
    pub(super) auth_time: i64,
    pub(super) sid: Option<&'a str>,
    /// What post-login Actions added: at the code's login, or at this refresh.
    pub(super) custom: Customization,
    pub(super) signed_in: &'a SignedIn,
    /// The thumbprint of the DPoP key this request proved (RFC 9449): the access token is
    /// bound to it, and a public client's new refresh-token family too.
    pub(super) dpop: Option<&'a str>,
}

/// Access token, ID token (with `openid`) and refresh token (with `offline_access`, when
/// the application may refresh) for a user.
pub(super) async fn user_tokens(
    state: &AppState,
    recorded: UserGrant<'_>,
    refresh: Option<RefreshSource>,
) -> Result<TokenResponse, OAuthError> {
    let UserGrant {
        client,
        user,
        api,
        scopes,
        nonce,
        auth_time,
        sid,
        custom,
        signed_in,
        dpop,
    } = recorded;
    super::dpop::require_for(api, dpop)?;
    // The scopes were decided when the code or the family was; decided again now with the
    // user's current permissions (and without offline_access when no refresh token can
    // follow), so a role removed since shows in this token.
    let mut granted = grant::for_user(
        state,
        api,
        &user.user_id,
        Asked::Decided(scopes),
        grant::refresh_possible(client, false),
    )
    .await?;
    // The family keeps what was decided, not what Actions added: they run again at
    // every refresh, as they stand then.
    let decided = granted.scopes.clone();
    granted.customize(api, custom);
    let wants_refresh = scope::contains(&granted.scopes, scope::OFFLINE_ACCESS);
    let access = issue::user_access_token(
        state,
        api,
        &client.client_id,
        &user.user_id,
        &granted,
        false,
        dpop,
    )
    .await?;
    let id_token_claims = granted.custom.id_token_claims;
    let scopes = granted.scopes;
    let id_token = if scope::contains(&scopes, "openid") {
        Some(issue::id_token(
            state,
            &issue::IdTokenInput {
                user,
                client_id: &client.client_id,
                scopes: &scopes,
                nonce,
                auth_time,
                sid,
                access_token: Some(&access.token),
                code: None,
                custom_claims: &id_token_claims,
                signed_in,
            },
        )?)
    } else {
        None
    };
    let refresh_token = match (wants_refresh, refresh) {
        (true, Some(RefreshSource::Rotated(token))) => Some(token),
        (
            true,
            Some(
                source @ (RefreshSource::Code { .. }
                | RefreshSource::Password
                | RefreshSource::Device),
            ),
        ) => {
            let (code_hash, sid) = match source {
                RefreshSource::Code { code_hash, sid } => (Some(code_hash), Some(sid)),
                _ => (None, None),
            };
            let token = ids::secret_token();
            let now = now();
            let grant = RefreshGrant {
                scope: decided,
                audience: api.map(|a| a.identifier.clone()),
                sid: sid.clone(),
                auth_time,
                signed_in: signed_in.clone(),
                dpop_jkt: dpop.filter(|_| client.is_public()).map(str::to_string),
            };
            let family = NewRefreshFamily {
                family_id: ids::alphanumeric(24),
                client_id: client.client_id.clone(),
                user_id: user.user_id.clone(),
                grant: serde_json::to_string(&grant).expect("plain data serializes"),
                code_hash,
                sid,
                created_at: now,
                // An action may shorten the settings' lifetimes, never lengthen them.
                expires_at: shortened(
                    now + client.refresh.token_lifetime,
                    granted.custom.refresh_token_expires_at,
                ),
                metadata: granted
                    .custom
                    .refresh_token_metadata
                    .clone()
                    .unwrap_or_default(),
            };
            let idle_expires_at = shortened(
                now + client.refresh.idle_token_lifetime,
                granted.custom.refresh_token_idle_expires_at,
            );
            state
                .store()
                .create_refresh_family(&family, &ids::secret_hash(&token), idle_expires_at)
                .await?;
            Some(token)
        }
        _ => None,
    };
    let token_type = access.token_type();
    let revocable = access.stored || refresh_token.is_some();
    Ok(TokenResponse {
        access_token: access.token,
        id_token,
        refresh_token,
        scope: scope::join(&scopes),
        expires_in: access.expires_in,
        token_type,
        recovery_code: None,
        revocable,
        audit: super::response::Issued {
            user_id: Some(user.user_id.clone()),
            user_name: Some(user.email.clone().unwrap_or_else(|| user.name.clone())),
            client_name: Some(client.name.clone()),
            audience: api.map(|a| a.identifier.clone()),
        },
    })
}

/// `settings`, or an earlier time an action asked (`api.refreshToken.setExpiresAt` /
/// `setIdleExpiresAt`): the one rule for a refresh token's ends, `earliest`.
pub(super) fn shortened(settings: i64, asked: Option<i64>) -> i64 {
    tessera_actions::earliest(Some(settings), asked).unwrap_or(settings)
}
