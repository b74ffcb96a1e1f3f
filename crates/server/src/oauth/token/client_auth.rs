//! Client authentication at every endpoint that authenticates applications (token, PAR,
//! revocation, introspection, device authorization): `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9), or none for
//! public clients (which must have used PKCE). An application authenticates the one way
//! it is configured for: with private_key_jwt credentials, never with its secret.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use tessera_core::{Client, ids};
use tessera_jose::{MAX_TOKEN_BYTES, PublicKey};

use crate::AppState;
use crate::clock::now;
use crate::edge::authorization;
use crate::edge::params::Params;
use crate::error::OAuthError;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may still be valid when it arrives, in seconds: Auth0's five
/// minutes. An assertion is single use, so its `jti` is kept that long at most — a
/// longer one would be a bearer credential worth stealing and cost storage.
pub(crate) const MAX_ASSERTION_LIFETIME: i64 = 300;
/// Clock skew forgiven on `exp`, `nbf` and `iat`.
const LEEWAY: i64 = 60;
/// The longest `jti` kept.
const MAX_JTI_LEN: usize = 256;
/// Algorithms assertions may be signed with: each key's own (`tessera_jose::PublicKey`).
pub(crate) const ASSERTION_ALGORITHMS: &[&str] = &["RS256", "ES256", "EdDSA"];

/// Who the caller says it is, and how it proves it.
pub(super) struct ClientCredentials {
    pub(super) client_id: String,
    pub(super) secret: Option<String>,
    /// A private_key_jwt assertion, not yet verified.
    pub(super) assertion: Option<String>,
    pub(super) used_basic: bool,
}

impl ClientCredentials {
    pub(super) fn from_request(headers: &HeaderMap, params: &Params) -> Result<Self, OAuthError> {
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
                if params.get("client_secret").is_some()
                    || params.get("client_assertion").is_some()
                    || params.get("client_assertion_type").is_some()
                {
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
                    assertion: None,
                    used_basic: true,
                })
            }
            None => {
                if let Some(assertion) = assertion(params)? {
                    // RFC 7523 §3.1: client_id is optional; the assertion's `sub` names
                    // the client (checked against `iss` and the key once verified).
                    let client_id = match params.get("client_id") {
                        Some(id) => id.to_string(),
                        None => unverified_subject(assertion).ok_or_else(|| {
                            OAuthError::invalid_client("Client authentication failed", false)
                        })?,
                    };
                    return Ok(ClientCredentials {
                        client_id,
                        secret: None,
                        assertion: Some(assertion.to_string()),
                        used_basic: false,
                    });
                }
                let client_id = params.get("client_id").ok_or_else(|| {
                    OAuthError::invalid_request("Missing required parameter: client_id")
                })?;
                Ok(ClientCredentials {
                    client_id: client_id.to_string(),
                    secret: params.get("client_secret").map(str::to_string),
                    assertion: None,
                    used_basic: false,
                })
            }
        }
    }

    /// The registered client, authenticated.
    pub(super) async fn authenticated_client(
        &self,
        state: &AppState,
    ) -> Result<Client, OAuthError> {
        let client = state
            .config_reads()
            .client(state.store(), &self.client_id)
            .await?
            .ok_or_else(|| {
                OAuthError::invalid_client("Client authentication failed", self.used_basic)
            })?;
        self.authenticate(state, &client).await?;
        Ok(client)
    }

    /// The registered client, authenticated and allowed `grant_type`.
    pub(super) async fn client_allowed(
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
    pub(super) async fn authenticate(
        &self,
        state: &AppState,
        client: &Client,
    ) -> Result<(), OAuthError> {
        let failed = || OAuthError::invalid_client("Client authentication failed", self.used_basic);
        // The method the application is configured for is the only one accepted.
        match (&client.private_key_jwt_credentials, &self.assertion) {
            (Some(enabled), Some(assertion)) => {
                return verify_assertion(state, client, enabled, assertion).await;
            }
            (Some(_), None) | (None, Some(_)) => return Err(failed()),
            (None, None) => {}
        }
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

/// The assertion, when the request carries one: both parameters, the type JWT bearer, no
/// client secret beside it.
fn assertion(params: &Params) -> Result<Option<&str>, OAuthError> {
    match (
        params.get("client_assertion_type"),
        params.get("client_assertion"),
    ) {
        (None, None) => Ok(None),
        (Some(_), None) | (None, Some(_)) => Err(OAuthError::invalid_request(
            "client_assertion and client_assertion_type are sent together",
        )),
        (Some(kind), Some(_)) if kind != JWT_BEARER => Err(OAuthError::invalid_client(
            format!("Unsupported client_assertion_type; use {JWT_BEARER}"),
            false,
        )),
        (Some(_), Some(_)) if params.get("client_secret").is_some() => Err(
            OAuthError::invalid_request("Use one client authentication method, not several"),
        ),
        (Some(_), Some(assertion)) => Ok(Some(assertion)),
    }
}

/// The `sub` of an assertion, read without verifying it: only to find which application's
/// keys verify it.
fn unverified_subject(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let payload = assertion.split('.').nth(1)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&tessera_jose::b64_decode(payload).ok()?).ok()?;
    claims.get("sub")?.as_str().map(str::to_string)
}

/// Verifies a private_key_jwt assertion for `client`, whose `enabled` credentials may sign
/// it, and spends its `jti`. Every failure is the same `invalid_client`: the reason is
/// logged at debug level, never sent.
async fn verify_assertion(
    state: &AppState,
    client: &Client,
    enabled: &[String],
    assertion: &str,
) -> Result<(), OAuthError> {
    let failed = |reason: &'static str| {
        tracing::debug!(client_id = %client.client_id, reason, "client assertion refused");
        OAuthError::invalid_client("Client authentication failed", false)
    };
    let now = now();
    let header = tessera_jose::peek_header(assertion).map_err(|_| failed("malformed"))?;
    // Only the application's registered, enabled, unexpired keys: `jwk`, `jku`, `x5u`
    // and `x5c` headers are never read. The header's `kid` narrows the choice; the key
    // decides the algorithm.
    let credentials = state
        .store()
        .client_credentials_of(&client.client_id)
        .await?;
    let verified = credentials
        .iter()
        .filter(|c| enabled.contains(&c.id))
        .filter(|c| c.expires_at.is_none_or(|end| end > now))
        .filter(|c| header.kid.as_deref().is_none_or(|kid| kid == c.kid))
        .filter(|c| c.alg == header.alg)
        .find_map(|c| {
            let key = PublicKey::from_spki(&c.public_key, None).ok()?;
            key.verifying_key().ok()?.verify(assertion).ok()
        })
        .ok_or_else(|| failed("no registered key verifies it"))?;
    let claims = verified.claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let time = |name: &str| {
        claims
            .get(name)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
    };
    if text("iss") != Some(client.client_id.as_str()) || text("sub") != Some(&client.client_id) {
        return Err(failed("iss or sub is not the client"));
    }
    // `aud`: this server, as its issuer (Auth0's `https://domain/`) or its token endpoint.
    let issuer = state.issuer();
    let token_endpoint = format!("{issuer}oauth/token");
    let ours = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| a == issuer || a == token_endpoint)
    };
    let audience_ok = match claims.get("aud") {
        Some(Value::Array(list)) => !list.is_empty() && list.iter().all(ours),
        Some(aud) => ours(aud),
        None => false,
    };
    if !audience_ok {
        return Err(failed("aud is not this server"));
    }
    let exp = time("exp").ok_or_else(|| failed("no exp"))?;
    if exp + LEEWAY <= now {
        return Err(failed("expired"));
    }
    if exp > now + MAX_ASSERTION_LIFETIME + LEEWAY {
        return Err(failed("lives too long"));
    }
    if time("nbf").is_some_and(|nbf| nbf > now + LEEWAY)
        || claims.get("nbf").is_some_and(|v| !v.is_number())
    {
        return Err(failed("not yet valid"));
    }
    if time("iat").is_some_and(|iat| iat > now + LEEWAY)
        || claims.get("iat").is_some_and(|v| !v.is_number())
    {
        return Err(failed("issued in the future"));
    }
    let jti = text("jti")
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_LEN)
        .ok_or_else(|| failed("no usable jti"))?;
    if !state
        .store()
        .use_client_assertion(&client.client_id, jti, exp + LEEWAY)
        .await?
    {
        return Err(failed("jti used before"));
    }
    Ok(())
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
