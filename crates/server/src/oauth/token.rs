//! The token endpoint — `authorization_code` (with PKCE), `refresh_token` (rotating) and
//! `client_credentials` — and token revocation (RFC 7009). Form and JSON bodies; client
//! authentication by `client_secret_basic`, `client_secret_post`, or none for public
//! clients (which must have used PKCE).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::Serialize;
use tessera_core::claims::Subject;
use tessera_core::grant::{Asked, Refusal};
use tessera_core::scope;
use tessera_core::{Client, ResourceServer, User, ids, pkce};
use tessera_store::{CodeRedemption, NewRefreshFamily, RefreshRotation, RefreshTiming};

use crate::AppState;
use crate::clock::now;
use crate::edge::authorization;
use crate::edge::cors;
use crate::edge::metrics::Grant;
use crate::edge::params::Params;
use crate::error::OAuthError;
use crate::grant;
use crate::oauth::authorize::CodeGrant;
use crate::oauth::issue;

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    expires_in: i64,
    token_type: &'static str,
}

pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = match handle(&state, &headers, &body).await {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            let out = response.headers_mut();
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            out.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => {
            state.metrics().token_error(error.error);
            error.into_response()
        }
    };
    cors::allow_registered(&state, &headers, response).await
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let params = Params::from_body(headers, body, true)
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let credentials = ClientCredentials::from_request(headers, &params)?;
    let (grant, issued) = match params.get("grant_type") {
        Some("authorization_code") => (
            Grant::AuthorizationCode,
            authorization_code(state, &params, &credentials).await,
        ),
        Some("refresh_token") => (
            Grant::RefreshToken,
            refresh_token(state, &params, &credentials).await,
        ),
        Some("client_credentials") => (
            Grant::ClientCredentials,
            client_credentials(state, &params, &credentials).await,
        ),
        Some(_) => {
            return Err(OAuthError::unsupported_grant_type(
                "Supported grant types: authorization_code, refresh_token, client_credentials.",
            ));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "Missing required parameter: grant_type",
            ));
        }
    };
    if issued.is_ok() {
        state.metrics().token_issued(grant);
    }
    issued
}

/// Who the caller says it is, and how it proves it.
struct ClientCredentials {
    client_id: String,
    secret: Option<String>,
    used_basic: bool,
}

impl ClientCredentials {
    fn from_request(headers: &HeaderMap, params: &Params) -> Result<Self, OAuthError> {
        let basic = match authorization::credentials(headers) {
            Ok(None) => None,
            Ok(Some((scheme, encoded))) if scheme.eq_ignore_ascii_case("basic") => {
                Some(parse_basic(encoded)?)
            }
            Ok(Some(_)) => {
                return Err(OAuthError::invalid_client(
                    "Unsupported client authentication scheme",
                    true,
                ));
            }
            Err(authorization::Refusal::Repeated) => {
                return Err(OAuthError::invalid_request("Send one Authorization header"));
            }
            Err(authorization::Refusal::Malformed) => {
                return Err(OAuthError::invalid_request(
                    "Malformed Authorization header",
                ));
            }
        };
        match basic {
            Some((client_id, secret)) => {
                if params.get("client_secret").is_some() {
                    return Err(OAuthError::invalid_request(
                        "Use one client authentication method, not several",
                    ));
                }
                if params.get("client_id").is_some_and(|id| id != client_id) {
                    return Err(OAuthError::invalid_request(
                        "client_id does not match the Authorization header",
                    ));
                }
                Ok(ClientCredentials {
                    client_id,
                    secret: Some(secret),
                    used_basic: true,
                })
            }
            None => {
                let client_id = params.get("client_id").ok_or_else(|| {
                    OAuthError::invalid_request("Missing required parameter: client_id")
                })?;
                Ok(ClientCredentials {
                    client_id: client_id.to_string(),
                    secret: params.get("client_secret").map(str::to_string),
                    used_basic: false,
                })
            }
        }
    }

    /// The registered client, authenticated.
    async fn authenticated_client(&self, state: &AppState) -> Result<Client, OAuthError> {
        let client = state
            .store()
            .find_client(&self.client_id)
            .await?
            .ok_or_else(|| {
                OAuthError::invalid_client("Client authentication failed", self.used_basic)
            })?;
        self.authenticate(&client)?;
        Ok(client)
    }

    /// The registered client, authenticated and allowed `grant_type`.
    async fn client_allowed(
        &self,
        state: &AppState,
        grant_type: &str,
    ) -> Result<Client, OAuthError> {
        let client = self.authenticated_client(state).await?;
        if !client.allows_grant(grant_type) {
            return Err(OAuthError::unauthorized_client(format!(
                "This application may not use the {grant_type} grant."
            )));
        }
        Ok(client)
    }

    /// Checks the credentials against the registered client.
    fn authenticate(&self, client: &Client) -> Result<(), OAuthError> {
        let failed = || OAuthError::invalid_client("Client authentication failed", self.used_basic);
        if client.is_public() {
            // Public clients have no secret; presenting one means confusion, not proof.
            return if self.secret.is_none() {
                Ok(())
            } else {
                Err(failed())
            };
        }
        match (&self.secret, &client.secret_hash) {
            (Some(secret), Some(hash)) if ids::secret_matches(secret, hash) => Ok(()),
            _ => Err(failed()),
        }
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(encoded: &str) -> Result<(String, String), OAuthError> {
    let malformed = || OAuthError::invalid_client("Malformed Basic credentials", true);
    let decoded = STANDARD.decode(encoded).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    // One form-encoded value each: `+` is a space, `%XX` a byte; `&` and `=` are data
    // (a form parser would cut the value there and read `id&x` as `id`).
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(String::from)
            .map_err(|_| malformed())
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

async fn authorization_code(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
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
    let invalid = || OAuthError::invalid_grant("Invalid authorization code");
    let now = now();
    let record = match state
        .store()
        .redeem_code(&ids::secret_hash(code), now)
        .await?
    {
        CodeRedemption::Redeemed(record) => record,
        CodeRedemption::AlreadyUsed(record) => {
            // A replay: whoever holds this code may be an attacker. Record it first, then
            // revoke what the first redemption produced that can be revoked; a winner still
            // storing its tokens sees the record and revokes them itself.
            if record.client_id == client.client_id {
                let code_hash = ids::secret_hash(code);
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
    match (&grant.code_challenge, params.get("code_verifier")) {
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
    let user = state
        .store()
        .find_user(&record.user_id)
        .await?
        .filter(|u| !u.blocked)
        .ok_or_else(|| OAuthError::invalid_grant("The user is blocked or no longer exists"))?;
    let api = grant::audience(state, &client, grant.audience.as_deref()).await?;
    let code_hash = ids::secret_hash(code);
    let refresh = RefreshSource::Code {
        code_hash: code_hash.clone(),
        sid: grant.sid.clone(),
    };
    let tokens = user_tokens(
        state,
        &client,
        &user,
        api.as_ref(),
        &grant.scope,
        grant.nonce.as_deref(),
        grant.auth_time,
        Some(&grant.sid),
        Some(refresh),
    )
    .await?;
    // A replay that raced this redemption may have revoked before these tokens were stored:
    // asked only now that they are, so one of the two sides always sees the other. The
    // answer is still this redemption's (it won); what can be revoked of it is.
    if state.store().code_was_replayed(&code_hash).await? {
        revoke_what_a_code_issued(state, &code_hash, &client.client_id, &user.user_id).await?;
    }
    Ok(tokens)
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

/// What a refresh-token family grants, stored with the family.
#[derive(Debug, Serialize, Deserialize)]
struct RefreshGrant {
    scope: Vec<String>,
    audience: Option<String>,
    sid: Option<String>,
    auth_time: i64,
}

/// Where the refresh token of a response comes from.
enum RefreshSource {
    /// A new family, started by this code.
    Code { code_hash: Vec<u8>, sid: String },
    /// The token the family was just rotated to.
    Rotated(String),
}

/// Access token, ID token (with `openid`) and refresh token (with `offline_access`, when
/// the application may refresh) for a user.
#[allow(clippy::too_many_arguments)]
async fn user_tokens(
    state: &AppState,
    client: &Client,
    user: &User,
    api: Option<&ResourceServer>,
    scopes: &[String],
    nonce: Option<&str>,
    auth_time: i64,
    sid: Option<&str>,
    refresh: Option<RefreshSource>,
) -> Result<TokenResponse, OAuthError> {
    // The scopes were decided when the code or the family was; decided again now with the
    // user's current permissions (and without offline_access when no refresh token can
    // follow), so a role removed since shows in this token.
    let granted = grant::for_user(
        state,
        api,
        &user.user_id,
        Asked::Decided(scopes),
        grant::refresh_possible(client, false),
    )
    .await?;
    let wants_refresh = scope::contains(&granted.scopes, scope::OFFLINE_ACCESS);
    let access =
        issue::user_access_token(state, api, &client.client_id, &user.user_id, &granted).await?;
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
            },
        )?)
    } else {
        None
    };
    let refresh_token = match (wants_refresh, refresh) {
        (true, Some(RefreshSource::Rotated(token))) => Some(token),
        (true, Some(RefreshSource::Code { code_hash, sid })) => {
            let token = ids::secret_token();
            let now = now();
            let grant = RefreshGrant {
                scope: scopes.clone(),
                audience: api.map(|a| a.identifier.clone()),
                sid: Some(sid.clone()),
                auth_time,
            };
            let family = NewRefreshFamily {
                family_id: ids::alphanumeric(24),
                client_id: client.client_id.clone(),
                user_id: user.user_id.clone(),
                grant: serde_json::to_string(&grant).expect("plain data serializes"),
                code_hash: Some(code_hash),
                sid: Some(sid),
                created_at: now,
                expires_at: now + client.refresh.token_lifetime,
            };
            state
                .store()
                .create_refresh_family(
                    &family,
                    &ids::secret_hash(&token),
                    now + client.refresh.idle_token_lifetime,
                )
                .await?;
            Some(token)
        }
        _ => None,
    };
    Ok(TokenResponse {
        access_token: access.token,
        id_token,
        refresh_token,
        scope: scope::join(&scopes),
        expires_in: access.expires_in,
        token_type: "Bearer",
    })
}

/// `grant_type=refresh_token`: rotates the token (the old one stops working; presenting it
/// again revokes the whole family) and issues fresh tokens, ID token included.
async fn refresh_token(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: refresh_token"))?;
    let client = credentials.client_allowed(state, "refresh_token").await?;
    let invalid = || OAuthError::invalid_grant("Unknown or invalid refresh token.");
    let now = now();
    let old_hash = ids::secret_hash(token);
    // Validate everything that can fail before rotating, so a bad request costs nothing.
    let family = state
        .store()
        .find_refresh_family(&old_hash, now)
        .await?
        .ok_or_else(invalid)?;
    if family.client_id != client.client_id {
        return Err(invalid());
    }
    let grant: RefreshGrant =
        serde_json::from_str(&family.grant).map_err(|_| OAuthError::server_error())?;
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
    let user = state
        .store()
        .find_user(&family.user_id)
        .await?
        .filter(|u| !u.blocked)
        .ok_or_else(|| OAuthError::invalid_grant("The user is blocked or no longer exists"))?;
    let api = grant::audience(state, &client, grant.audience.as_deref()).await?;
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
        RefreshRotation::Rotated(_) => {}
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
        &client,
        &user,
        api.as_ref(),
        &scopes,
        None,
        grant.auth_time,
        grant.sid.as_deref(),
        Some(RefreshSource::Rotated(new_token)),
    )
    .await
}

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

async fn client_credentials(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let audience = params.get("audience").ok_or_else(|| {
        OAuthError::access_denied(
            "No audience parameter was provided, and no default audience has been configured",
        )
    })?;
    let access = state
        .machine_access()
        .get(state.store(), &credentials.client_id, audience)
        .await?
        .ok_or_else(|| {
            OAuthError::invalid_client("Client authentication failed", credentials.used_basic)
        })?;
    credentials.authenticate(&access.client)?;
    if access.client.is_public() || !access.client.allows_grant("client_credentials") {
        return Err(OAuthError::unauthorized_client(
            "Grant type 'client_credentials' not allowed for the client.",
        ));
    }
    let api = access.api.as_ref().ok_or_else(|| {
        OAuthError::access_denied(
            Refusal::UnknownAudience {
                audience: audience.to_string(),
            }
            .description(),
        )
    })?;
    let requested = params.get("scope").map(scope::parse);
    let granted =
        tessera_core::grant::for_machine(requested.as_deref(), api, access.grant.as_ref())
            .map_err(|refusal| OAuthError::access_denied(refusal.description()))?;
    let issued = issue::jwt_access_token(
        state,
        api,
        Subject::Client,
        &access.client.client_id,
        &granted,
    )?;
    let scopes = granted.scopes;
    Ok(TokenResponse {
        access_token: issued.token,
        id_token: None,
        refresh_token: None,
        scope: scope::join(&scopes),
        expires_in: issued.expires_in,
        token_type: "Bearer",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        let encoded = STANDARD.encode("my%20id:s%3Acret");
        assert_eq!(
            parse_basic(&encoded).unwrap(),
            ("my id".to_string(), "s:cret".to_string())
        );
        assert!(parse_basic("!!!").is_err());
        assert!(parse_basic(&STANDARD.encode("no-colon")).is_err());
        assert!(parse_basic(&STANDARD.encode(":secret")).is_err());
    }

    #[test]
    fn basic_credentials_keep_characters_that_separate_form_fields() {
        // A raw `&` or `=` is data here: `id&x` is not the client `id`.
        let encoded = STANDARD.encode("id&x:s&cret=1&");
        assert_eq!(
            parse_basic(&encoded).unwrap(),
            ("id&x".to_string(), "s&cret=1&".to_string())
        );
        let encoded = STANDARD.encode("a+b%2B:%26");
        assert_eq!(
            parse_basic(&encoded).unwrap(),
            ("a b+".to_string(), "&".to_string())
        );
        // Escapes that decode to bytes that are not UTF-8 are malformed, not replaced.
        assert!(parse_basic(&STANDARD.encode("id:%FF")).is_err());
    }
}
