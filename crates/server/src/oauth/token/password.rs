//! The password grants: RFC 6749's `password` and Auth0's
//! `http://auth0.com/oauth/grant-type/password-realm` (`realm` names the database
//! connection). Off unless the application's `grant_types` holds them; never for a
//! single-page application (`tessera_core::validate::grant_types`). The password is checked
//! by `crate::password_sign_in`, as at the login page, with the same throttle and lockout;
//! post-login Actions run (protocol `oauth2-password`); a login that needs a second factor
//! is answered `mfa_required`, with an `mfa_token` for an application allowed Auth0's MFA
//! grants (`super::mfa_api`), which finish the sign-in through [`finish`].

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tessera_core::grant::Asked;
use tessera_core::{Client, PASSWORD_GRANT, PASSWORD_REALM_GRANT, User, scope};

use super::client_auth::ClientCredentials;
use super::mfa_api;
use super::response::TokenResponse;
use super::user_tokens::{RefreshSource, UserGrant, user_tokens};
use crate::AppState;
use crate::actions::{self, Login, RequestFacts};
use crate::clock::now;
use crate::databases;
use crate::edge::params::Params;
use crate::error::OAuthError;
use crate::grant::{self, Denied};
use crate::mfa;
use crate::oauth::issue::SignedIn;
use crate::password_sign_in::{self, Checked};

/// Auth0's answers, which its SDKs show as they are.
const WRONG_CREDENTIALS: &str = "Wrong email or password.";
const ACCOUNT_LOCKED: &str =
    "Your account has been blocked after multiple consecutive login attempts.";
const USER_BLOCKED: &str = "user is blocked";

/// What a password grant asked, beyond the user's credentials: kept with an `mfa_token`
/// while the second factor is asked, and read again to finish the sign-in.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PasswordRequest {
    /// The database connection the password was checked in.
    pub(super) connection: String,
    /// `audience` as sent (the tenant's default applies when absent).
    pub(super) audience: Option<String>,
    /// `scope` as sent.
    pub(super) scope: String,
}

/// What a password grant request carries besides the parameters.
pub(super) struct Caller<'a> {
    pub(super) headers: &'a HeaderMap,
    /// The client's address as the edge sees it (a trusted proxy's `X-Forwarded-For`).
    pub(super) ip: IpAddr,
    pub(super) facts: &'a RequestFacts,
    /// The thumbprint of the DPoP key the request proved.
    pub(super) dpop: Option<&'a str>,
}

/// `grant_type` `password` (`realm` = false) or `…/password-realm` (`realm` = true).
pub(super) async fn grant(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
    caller: &Caller<'_>,
    realm: bool,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = if realm {
        PASSWORD_REALM_GRANT
    } else {
        PASSWORD_GRANT
    };
    let client = credentials.client_allowed(state, grant_type).await?;
    let required = |name: &str| {
        params
            .get(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| {
                OAuthError::invalid_request(format!("Missing required parameter: {name}"))
            })
    };
    let username = required("username")?.trim();
    let password = required("password")?.to_string();
    let realm_name = if realm {
        Some(required("realm")?)
    } else {
        None
    };
    // The end user's address: a confidential application's backend names it with
    // `auth0-forwarded-for`, believed only from a trusted proxy's address.
    let end_user =
        state
            .config()
            .trusted_proxies
            .end_user_ip(caller.ip, caller.headers, !client.is_public());
    if let Err(retry_after) = state.login_throttle().check(end_user).await {
        let mut error = OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many login attempts from this network. Try again later.",
        );
        error.retry_after = Some(retry_after);
        return Err(error);
    }
    let requested_connection = match realm_name {
        Some(name) => Some(name.to_string()),
        None => default_directory(state).await?,
    };
    let database = databases::of_client(state, &client.client_id, requested_connection.as_deref())
        .await?
        .ok_or_else(|| {
            OAuthError::invalid_request(match requested_connection {
                Some(_) => "The realm names no database connection enabled for this application.",
                None => "This application has no database connection to sign users in with.",
            })
        })?;
    let user = match password_sign_in::check(
        state,
        (end_user, (&client.client_id, &client.name)),
        &database.name,
        username,
        password,
    )
    .await?
    {
        Checked::SignedIn(user) => *user,
        Checked::Wrong => {
            return Err(OAuthError::new(
                StatusCode::FORBIDDEN,
                "invalid_grant",
                WRONG_CREDENTIALS,
            ));
        }
        Checked::Locked => {
            return Err(OAuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                ACCOUNT_LOCKED,
            ));
        }
        Checked::Blocked => {
            return Err(OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                USER_BLOCKED,
            ));
        }
    };
    let request = PasswordRequest {
        connection: database.name.clone(),
        audience: params.get("audience").map(str::to_string),
        scope: params.get("scope").unwrap_or_default().to_string(),
    };
    finish(
        state,
        &client,
        &user,
        &request,
        vec!["pwd".into()],
        caller.facts,
        caller.dpop,
    )
    .await
}

/// Issues the tokens of a password sign-in by `amr` — or, while it lacks a second factor
/// the tenant's policy or an Action asks for, answers `mfa_required`.
pub(super) async fn finish(
    state: &AppState,
    client: &Client,
    user: &User,
    request: &PasswordRequest,
    amr: Vec<String>,
    facts: &RequestFacts,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    // The request is checked before a second factor is asked: a user is not sent through
    // one for a sign-in that would fail anyway.
    let audience = grant::requested_audience(state, request.audience.as_deref()).await?;
    let api = grant::audience(state, client, audience.as_deref()).await?;
    let second_factor_passed = mfa::has_second_factor(&amr);
    if !second_factor_passed && mfa::guardian(state).await?.required_of(&client.client_id) {
        return Err(mfa_api::mfa_required(state, client, user, request).await);
    }
    let requested = scope::parse(&request.scope);
    let decided = grant::for_user(
        state,
        api.as_ref(),
        &user.user_id,
        Asked::Requested(&requested),
        grant::refresh_possible(client, false),
    )
    .await?;
    let signed_in = SignedIn {
        connection: Some(request.connection.clone()),
        amr,
        acr: None,
    };
    let login = Login {
        client,
        user,
        api: api.as_ref(),
        protocol: "oauth2-password",
        requested_scopes: &requested,
        redirect_uri: None,
        request: facts,
        connection: Some(&request.connection),
        amr: &signed_in.amr,
        redirects: actions::Redirects::Impossible,
        refresh_token: None,
    };
    let custom = match actions::post_login(state, &login)
        .await
        .map_err(Denied::from)
    {
        Ok(custom) => custom,
        Err(Denied::SecondFactor { .. }) if !second_factor_passed => {
            return Err(mfa_api::mfa_required(state, client, user, request).await);
        }
        Err(denied) => return Err(denied.into()),
    };
    tracing::info!(user_id = %user.user_id, client_id = %client.client_id, "password grant succeeded");
    user_tokens(
        state,
        UserGrant {
            client,
            user,
            api: api.as_ref(),
            scopes: &decided.scopes,
            nonce: None,
            auth_time: now(),
            sid: None,
            custom,
            signed_in: &signed_in,
            dpop,
        },
        Some(RefreshSource::Password),
    )
    .await
}

/// Auth0's tenant setting `default_directory`: the connection `grant_type=password` signs
/// users in with; without it, the application's own database connection.
async fn default_directory(state: &AppState) -> Result<Option<String>, OAuthError> {
    let settings = state.config_reads().tenant_settings(state.store()).await?;
    Ok(settings
        .get("default_directory")
        .and_then(serde_json::Value::as_str)
        .filter(|name| !name.is_empty())
        .map(str::to_string))
}
