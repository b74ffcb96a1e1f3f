//! Client authentication at the token endpoint: `client_secret_basic`,
//! `client_secret_post`, or none for public clients (which must have used PKCE).

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tessera_core::{Client, ids};

use crate::AppState;
use crate::edge::authorization;
use crate::edge::params::Params;
use crate::error::OAuthError;

/// Who the caller says it is, and how it proves it.
pub(super) struct ClientCredentials {
    pub(super) client_id: String,
    pub(super) secret: Option<String>,
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
    pub(super) async fn authenticated_client(
        &self,
        state: &AppState,
    ) -> Result<Client, OAuthError> {
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
    pub(super) fn authenticate(&self, client: &Client) -> Result<(), OAuthError> {
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
