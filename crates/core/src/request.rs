//! The authorization request as `/authorize` validated it: which tokens it returns
//! (`ResponseType`), how they travel (`ResponseMode`, decided by [`response_mode`] alone),
//! and everything the login transaction keeps while the user signs in (`AuthRequest`).
//! Shared by the protocol endpoints and the hosted pages of the server.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
    WebMessage,
}

impl ResponseMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "query" => Some(ResponseMode::Query),
            "fragment" => Some(ResponseMode::Fragment),
            "form_post" => Some(ResponseMode::FormPost),
            "web_message" => Some(ResponseMode::WebMessage),
            _ => None,
        }
    }
}

/// Every response type `/authorize` accepts, as discovery lists them: the code flow, the
/// implicit flow (both spellings of `token id_token`) and the hybrid flow (OIDC Core §3.3).
/// The words may come in any order; [`ResponseType::parse`] reads each spelling.
pub const SUPPORTED_RESPONSE_TYPES: [&str; 8] = [
    "code",
    "token",
    "id_token",
    "token id_token",
    "id_token token",
    "code id_token",
    "code token",
    "code id_token token",
];

/// Which tokens the authorization endpoint returns: any non-empty set of `code`, `token`
/// and `id_token` — every one is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseType {
    pub code: bool,
    pub token: bool,
    pub id_token: bool,
}

impl ResponseType {
    /// The space-separated words in any order; `None` for an unknown or repeated word, or
    /// none at all.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parsed = ResponseType {
            code: false,
            token: false,
            id_token: false,
        };
        for part in text.split(' ').filter(|p| !p.is_empty()) {
            let slot = match part {
                "code" => &mut parsed.code,
                "token" => &mut parsed.token,
                "id_token" => &mut parsed.id_token,
                _ => return None,
            };
            if *slot {
                return None;
            }
            *slot = true;
        }
        (parsed.code || parsed.token || parsed.id_token).then_some(parsed)
    }

    /// No code: nothing reaches the token endpoint (so no refresh token either).
    pub fn is_implicit(self) -> bool {
        !self.code
    }

    /// Whether the authorization response itself carries a token (access or ID token):
    /// implicit, and hybrid (`code id_token`, `code token`, `code id_token token`).
    pub fn returns_tokens(self) -> bool {
        self.token || self.id_token
    }

    pub fn default_mode(self) -> ResponseMode {
        if self.returns_tokens() {
            ResponseMode::Fragment
        } else {
            ResponseMode::Query
        }
    }
}

/// The response mode, decided here alone: the requested one, else the response type's
/// default. A response that carries a token never travels in a query (OAuth 2.0 Multiple
/// Response Type Encoding Practices §5: queries end up in logs, history and `Referer`), so
/// `response_mode=query` is refused for it. A refusal says in which mode the error goes.
pub fn response_mode(
    requested: Option<&str>,
    response_type: Option<ResponseType>,
) -> Result<ResponseMode, (ResponseMode, &'static str)> {
    let default = response_type.map_or(ResponseMode::Query, ResponseType::default_mode);
    match requested.map(ResponseMode::parse) {
        None => Ok(default),
        Some(None) => Err((default, "Unsupported response_mode.")),
        Some(Some(ResponseMode::Query))
            if response_type.is_some_and(ResponseType::returns_tokens) =>
        {
            Err((
                default,
                "response_mode=query cannot carry tokens: use fragment, form_post or web_message.",
            ))
        }
        Some(Some(mode)) => Ok(mode),
    }
}

/// A validated authorization request, kept in the login transaction while the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_type: ResponseType,
    pub response_mode: ResponseMode,
    pub scope: Vec<String>,
    pub audience: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `sub` of the `id_token_hint`: only that user may be answered for.
    #[serde(default)]
    pub hinted_sub: Option<String>,
    pub screen_hint: Option<String>,
    /// `connection=NAME`: sign in through that connection, skipping the login page.
    #[serde(default)]
    pub connection: Option<String>,
    /// `acr_values`, space-separated in the request: the authentication context classes
    /// asked for (Tessera acts on the multi-factor one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    pub code_challenge: Option<String>,
    /// `dpop_jkt` (RFC 9449 §10): the thumbprint of the DPoP key the code is bound to; the
    /// token request must prove that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// When the request arrived: a login after this satisfies `prompt=login`.
    pub started_at: i64,
    /// The request's parameters as sent, credentials left out, sorted by name: what
    /// post-login's `event.request.query` shows (an application may send its own, as to
    /// Auth0). Requests kept from before Tessera kept them have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_types() {
        let kind = |code, token, id_token| {
            Some(ResponseType {
                code,
                token,
                id_token,
            })
        };
        assert!(ResponseType::parse("code").is_some_and(|r| r.code && !r.is_implicit()));
        assert_eq!(
            ResponseType::parse("token id_token"),
            kind(false, true, true)
        );
        assert_eq!(
            ResponseType::parse("id_token token"),
            kind(false, true, true)
        );
        // The hybrid ones, in any order of their words.
        for text in ["code id_token", "id_token code"] {
            assert_eq!(ResponseType::parse(text), kind(true, false, true), "{text}");
        }
        for text in ["code token", "token code"] {
            assert_eq!(ResponseType::parse(text), kind(true, true, false), "{text}");
        }
        for text in [
            "code id_token token",
            "code token id_token",
            "id_token code token",
            "id_token token code",
            "token code id_token",
            "token id_token code",
        ] {
            assert_eq!(ResponseType::parse(text), kind(true, true, true), "{text}");
        }
        let hybrid = ResponseType::parse("code id_token").unwrap();
        assert!(!hybrid.is_implicit() && hybrid.returns_tokens());
        // Repeated, unknown or no words.
        for text in [
            "code code",
            "code id_token id_token",
            "token code token",
            "code id_token foo",
            "none",
            "code none",
            "Code",
            "code\tid_token",
            "code+id_token",
            "",
            "  ",
        ] {
            assert_eq!(ResponseType::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_supported_list_names_every_response_type() {
        let listed: Vec<ResponseType> = SUPPORTED_RESPONSE_TYPES
            .iter()
            .map(|text| ResponseType::parse(text).expect(text))
            .collect();
        for bits in 1..8u8 {
            let combination = ResponseType {
                code: bits & 1 != 0,
                token: bits & 2 != 0,
                id_token: bits & 4 != 0,
            };
            assert!(listed.contains(&combination), "{combination:?} is listed");
        }
    }

    #[test]
    fn a_response_with_a_token_never_goes_in_the_query() {
        let kind = |code, token, id_token| ResponseType {
            code,
            token,
            id_token,
        };
        // Every combination, the hybrid ones too.
        let response_types = [
            kind(true, false, false),
            kind(false, true, false),
            kind(false, false, true),
            kind(false, true, true),
            kind(true, false, true),
            kind(true, true, false),
            kind(true, true, true),
        ];
        let requested = [
            None,
            Some("query"),
            Some("fragment"),
            Some("form_post"),
            Some("web_message"),
            Some("jwt"),
        ];
        for response_type in response_types {
            let carries_tokens = response_type.token || response_type.id_token;
            for mode in requested {
                let resolved = response_mode(mode, Some(response_type));
                let delivered_in = match resolved {
                    Ok(mode) | Err((mode, _)) => mode,
                };
                if carries_tokens {
                    assert_ne!(
                        delivered_in,
                        ResponseMode::Query,
                        "{response_type:?} {mode:?}"
                    );
                }
                let expected = match mode {
                    None => Ok(response_type.default_mode()),
                    Some("query") if carries_tokens => Err(ResponseMode::Fragment),
                    Some("jwt") => Err(response_type.default_mode()),
                    Some(other) => Ok(ResponseMode::parse(other).unwrap()),
                };
                assert_eq!(
                    resolved.map_err(|(mode, _)| mode),
                    expected,
                    "{response_type:?} {mode:?}"
                );
            }
        }
        // An unreadable response_type: its error goes where asked, or in the query.
        assert_eq!(response_mode(None, None), Ok(ResponseMode::Query));
        assert_eq!(
            response_mode(Some("form_post"), None),
            Ok(ResponseMode::FormPost)
        );
    }
}
