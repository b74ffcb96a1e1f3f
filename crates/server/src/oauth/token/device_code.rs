//! RFC 8628 device authorization: `POST /oauth/device/code` (Auth0's path) starts it, and
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` polls it. The device code is a
//! bearer secret, stored hashed; the person answers at `/activate` (`hosted::device`). A
//! poll is `authorization_pending` until then, `slow_down` when it came before the
//! interval (which grows by 5 s), `expired_token` after 15 minutes, `access_denied` after
//! Cancel, and the tokens once after Confirm; a code polled again, or by another
//! application, is `invalid_grant`. Off unless the application's `grant_types` holds the
//! grant (native applications only: `tessera_core::validate::grant_types`). Asking for a
//! device code counts against the client network's login throttle.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::device::{DEVICE_CODE_LIFETIME, POLL_INTERVAL, display_user_code};
use tessera_core::{DEVICE_CODE_GRANT, ids, scope};
use tessera_store::{DevicePoll, NewDeviceCode};

use super::client_auth::ClientCredentials;
use super::response::TokenResponse;
use super::user_tokens::{RefreshSource, UserGrant, user_tokens};
use crate::AppState;
use crate::clock::now;
use crate::edge::client_ip::ClientIp;
use crate::edge::params::Params;
use crate::error::OAuthError;
use crate::grant::{self, Denied};
use crate::hosted::device::DeviceGrant;
use crate::oauth::issue::SignedIn;

/// RFC 8628 §3.2's answer.
#[derive(Serialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: i64,
    interval: i64,
}

/// `POST /oauth/device/code`: a device code for an application allowed the grant.
pub(crate) async fn device_authorization(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A public application's client_id is no secret: without a limit anyone could fill the
    // table faster than the purge empties it. Counted with the login forms' attempts.
    if let Err(retry_after) = state.login_throttle().check(ip).await {
        let mut error = OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many device codes were asked for from this network. Try again later.",
        );
        error.retry_after = Some(retry_after);
        return error.into_response();
    }
    match start(&state, &headers, &body).await {
        Ok(answer) => {
            let mut response = Json(answer).into_response();
            let out = response.headers_mut();
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            out.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn start(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<DeviceAuthorization, OAuthError> {
    let params = Params::from_body(headers, body, true)
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let credentials = ClientCredentials::from_request(headers, &params)?;
    let client = credentials.client_allowed(state, DEVICE_CODE_GRANT).await?;
    let requested = scope::parse(params.get("scope").unwrap_or_default());
    // The audience is judged now, as Auth0 does: a device is told at once, not after a
    // person has signed in for nothing.
    let refused = |denied: Denied| match denied {
        Denied::Refused(refusal) => OAuthError::access_denied(refusal.description()),
        other => other.into(),
    };
    let audience = grant::requested_audience(state, params.get("audience"))
        .await
        .map_err(refused)?;
    let api = grant::audience(state, &client, audience.as_deref())
        .await
        .map_err(refused)?;
    let now = now();
    // A user code is drawn again in the rare case it is taken.
    for _ in 0..5 {
        let device_code = ids::secret_token();
        let user_code = ids::user_code();
        let created = state
            .store()
            .create_device_code(&NewDeviceCode {
                device_code_hash: ids::secret_hash(&device_code),
                user_code: user_code.clone(),
                client_id: client.client_id.clone(),
                scope: serde_json::to_string(&requested).expect("strings serialize"),
                audience: api.as_ref().map(|a| a.identifier.clone()),
                poll_interval: POLL_INTERVAL,
                created_at: now,
                expires_at: now + DEVICE_CODE_LIFETIME,
            })
            .await?;
        if created {
            let shown = display_user_code(&user_code);
            let verification_uri = format!("{}activate", state.issuer());
            return Ok(DeviceAuthorization {
                device_code,
                verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                user_code: shown,
                verification_uri,
                expires_in: DEVICE_CODE_LIFETIME,
                interval: POLL_INTERVAL,
            });
        }
    }
    Err(OAuthError::server_error())
}

/// The token endpoint's `grant_type=urn:ietf:params:oauth:grant-type:device_code`.
pub(super) async fn grant(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let device_code = params
        .get("device_code")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: device_code"))?;
    let client = credentials.client_allowed(state, DEVICE_CODE_GRANT).await?;
    let invalid = || OAuthError::invalid_grant("Invalid or used device code");
    let polled = state
        .store()
        .poll_device_code(&ids::secret_hash(device_code), &client.client_id, now())
        .await?;
    let (user_id, grant) = match polled {
        DevicePoll::Approved { user_id, grant } => (user_id, grant),
        DevicePoll::Unknown | DevicePoll::Redeemed => return Err(invalid()),
        DevicePoll::Pending => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "authorization_pending",
                "User has yet to authorize device code.",
            ));
        }
        DevicePoll::SlowDown => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "slow_down",
                "You are polling faster than allowed. Try again in a few seconds.",
            ));
        }
        DevicePoll::Expired => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "expired_token",
                "The device code has expired.",
            ));
        }
        DevicePoll::Denied => {
            return Err(OAuthError::access_denied("The user denied the request."));
        }
    };
    let grant: DeviceGrant =
        serde_json::from_str(&grant).map_err(|_| OAuthError::server_error())?;
    let user = state
        .store()
        .find_user(&user_id)
        .await?
        .filter(|u| !u.blocked)
        .ok_or_else(|| OAuthError::invalid_grant("The user is blocked or no longer exists"))?;
    let api = grant::audience(state, &client, grant.audience.as_deref()).await?;
    let signed_in = SignedIn {
        connection: grant.connection.clone(),
        amr: grant.amr.clone(),
        acr: None,
    };
    tracing::info!(user_id = %user.user_id, client_id = %client.client_id, "device code redeemed");
    user_tokens(
        state,
        UserGrant {
            client: &client,
            user: &user,
            api: api.as_ref(),
            scopes: &grant.scope,
            nonce: None,
            auth_time: grant.auth_time,
            sid: None,
            custom: grant.custom,
            signed_in: &signed_in,
            dpop,
        },
        Some(RefreshSource::Device),
    )
    .await
}
