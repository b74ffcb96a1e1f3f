//! Back-channel logout from upstream OpenID Connect providers (OIDC Back-Channel Logout
//! 1.0, Tessera as the relying party). A provider whose session ends posts a logout token
//! to `<issuer>login/backchannel-logout/CONNECTION`, the URL an administrator registers
//! there for the connection's client: the Tessera sessions signed in through that
//! provider session (or, for a token naming only the user, through that connection) end,
//! their refresh tokens with them, and the applications they were used with hear
//! `idp-logout` through Tessera's own back-channel logout (`backchannel_logout`).
//!
//! The token is verified by `upstream::Upstreams::verify_logout_token`; this module knows
//! the request, the one-use `jti` and what ends. Every refusal is a 400 that names what
//! was wrong (never the token) and changes nothing.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::connection::Strategy;
use tessera_store::{ConnectionRecord, UpstreamLogout};

use crate::clock::now;
use crate::error::OAuthError;
use crate::state::AppState;
use crate::upstream::{LogoutToken, UpstreamError};

/// What an administrator registers at an upstream connection's provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtTheProvider {
    /// Tessera's one callback (`<issuer>login/callback`).
    pub callback: String,
    /// For OpenID Connect, where the provider posts its logout tokens.
    pub backchannel_logout: Option<String>,
}

/// What to register at `connection`'s provider for `issuer` (normalized, ending in `/`);
/// `None` for a database connection, which has no provider. Connection names are
/// letters, digits and '-': nothing to encode.
pub fn at_the_provider(issuer: &str, connection: &ConnectionRecord) -> Option<AtTheProvider> {
    let strategy = Strategy::parse(&connection.strategy)?;
    if strategy == Strategy::Database {
        return None;
    }
    let oidc = matches!(strategy, Strategy::Oidc | Strategy::Google);
    Some(AtTheProvider {
        callback: format!("{issuer}{}", crate::hosted::upstream::CALLBACK_PATH),
        backchannel_logout: oidc
            .then(|| format!("{issuer}login/backchannel-logout/{}", connection.name)),
    })
}

/// The provider's post. 200 once the sessions it names have ended (none may be left:
/// the user may have signed out here already); 400 for anything else.
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(connection_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match end_named_sessions(&state, &connection_name, &headers, &body).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(Refused::Store(error)) => OAuthError::from(error).into_response(),
        Err(Refused::Token(connection, UpstreamError(why))) => {
            tracing::info!(connection = %connection, %why, "an upstream logout token was refused");
            let mut event = crate::audit::event(
                "flo",
                format!("Logout by the identity provider refused: {why}"),
            );
            event.connection = Some(connection);
            event.details = serde_json::json!({ "initiator": tessera_core::IDP_LOGOUT });
            state.record_log(event);
            OAuthError::invalid_request(format!("The logout token was refused: {why}"))
                .into_response()
        }
        Err(Refused::Request(why)) => OAuthError::invalid_request(why).into_response(),
    }
}

enum Refused {
    /// The request is not a logout token's post.
    Request(&'static str),
    /// The connection's provider did not send this token (connection name, why).
    Token(String, UpstreamError),
    Store(tessera_store::StoreError),
}

impl From<tessera_store::StoreError> for Refused {
    fn from(error: tessera_store::StoreError) -> Self {
        Refused::Store(error)
    }
}

async fn end_named_sessions(
    state: &AppState,
    connection_name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refused> {
    let token = logout_token_of(headers, body)?;
    let connection = state
        .config_reads()
        .connection_named(state.store(), connection_name)
        .await?
        .ok_or(Refused::Request("There is no such connection"))?;
    let refused = |why| Refused::Token(connection.name.clone(), why);
    // A provider's `sub` names a user by the connection's strategy; known before anything
    // is taken, so a refusal changes nothing.
    let strategy = Strategy::parse(&connection.strategy)
        .ok_or_else(|| refused(UpstreamError("the connection's strategy is unknown".into())))?;
    let now = now();
    let verified: LogoutToken = state
        .upstreams()
        .verify_logout_token(&connection, &token, now)
        .await
        .map_err(refused)?;
    if !state
        .store()
        .use_upstream_logout_token(&connection.id, &verified.jti, verified.taken_until)
        .await?
    {
        return Err(refused(UpstreamError(
            "the logout token was used before".into(),
        )));
    }
    let identity = verified
        .sub
        .as_deref()
        .map(|sub| strategy.user_id(&connection.name, sub));
    let named = match (verified.sid.as_deref(), identity.as_deref()) {
        (Some(sid), identity) => UpstreamLogout::Session { sid, identity },
        (None, Some(identity)) => UpstreamLogout::User { identity },
        (None, None) => {
            return Err(refused(UpstreamError(
                "the logout token names neither a subject nor a session".into(),
            )));
        }
    };
    let ended = state
        .store()
        .end_upstream_sessions(&connection.name, &named, now)
        .await?;
    tracing::info!(connection = %connection.name, ended, "the identity provider logged a user out");
    let mut event = crate::audit::event("slo", "The identity provider logged the user out");
    event.connection = Some(connection.name.clone());
    event.user_id = identity;
    event.details = serde_json::json!({
        "initiator": tessera_core::IDP_LOGOUT,
        "sessions_ended": ended,
    });
    state.record_log(event);
    Ok(())
}

/// The one `logout_token` of a form-encoded body (§2.5).
fn logout_token_of(headers: &HeaderMap, body: &[u8]) -> Result<String, Refused> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(Refused::Request(
            "A logout token is posted as application/x-www-form-urlencoded",
        ));
    }
    let mut tokens = form_urlencoded::parse(body)
        .filter(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned());
    match (tokens.next(), tokens.next()) {
        (Some(token), None) if !token.is_empty() => Ok(token),
        (Some(_), Some(_)) => Err(Refused::Request("The logout_token is given more than once")),
        _ => Err(Refused::Request("The logout_token is missing")),
    }
}
