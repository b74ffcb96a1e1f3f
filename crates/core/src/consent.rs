//! Consent (Auth0's user grants): what a user allowed a third-party application to do with
//! one API. First-party applications never ask. A third-party application shows the
//! consent page when the scopes it would get are not all covered by what the user allowed
//! before for that API, or when it sends `prompt=consent`.

use crate::ResourceServer;

/// What one user allowed one application for one API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Auth0-style grant id.
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    /// The API identifier; for requests without an audience, see [`audience_key`].
    pub audience: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The audience consent is remembered under. A request without an API asks only for the
/// user's identity (the ID token, `/userinfo`); like Auth0, we file that consent under the
/// userinfo audience, `<issuer>userinfo` (the issuer ends with a slash).
pub fn audience_key(issuer: &str, audience: Option<&str>) -> String {
    match audience {
        Some(audience) => audience.to_string(),
        None => format!("{issuer}userinfo"),
    }
}

/// What the consent page must ask for. `None`: the remembered consent covers every scope
/// and nothing forces the page. Otherwise the scopes to show: those not yet allowed, or all
/// of them when the page is forced (`prompt=consent`) or the user never answered this
/// application for this API (then the list may be empty: the page still asks once).
pub fn to_ask(
    scopes: &[String],
    remembered: Option<&Consent>,
    forced: bool,
) -> Option<Vec<String>> {
    match remembered {
        Some(consent) if !forced => {
            let missing: Vec<String> = scopes
                .iter()
                .filter(|s| !consent.scopes.contains(s))
                .cloned()
                .collect();
            (!missing.is_empty()).then_some(missing)
        }
        _ => Some(scopes.to_vec()),
    }
}

/// The remembered scopes and the newly allowed ones, without duplicates, in that order:
/// consent accumulates until it is revoked.
pub fn merge(remembered: &[String], allowed: &[String]) -> Vec<String> {
    let mut out = remembered.to_vec();
    for scope in allowed {
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    out
}

/// What the consent page says a scope lets the application do. The OpenID Connect scopes
/// are described here; an API's scopes by the description the API gives them (their name
/// when it gives none).
pub fn describe(value: &str, api: Option<&ResourceServer>) -> String {
    let fixed = match value {
        "openid" => Some("Sign you in and know who you are (your user id)"),
        "profile" => Some("Your profile: name, nickname and picture"),
        "email" => Some("Your email address and whether it is verified"),
        "offline_access" => Some("Stay connected: access when you are not using the application"),
        _ => None,
    };
    if let Some(text) = fixed {
        return text.to_string();
    }
    api.and_then(|api| api.scopes.iter().find(|s| s.value == value))
        .map(|s| s.description.trim())
        .filter(|d| !d.is_empty())
        .unwrap_or(value)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scope, TokenDialect};

    fn list(text: &str) -> Vec<String> {
        crate::scope::parse(text)
    }

    fn consent(scopes: &str) -> Consent {
        Consent {
            id: "g".into(),
            user_id: "u".into(),
            client_id: "c".into(),
            audience: "https://api".into(),
            scopes: list(scopes),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn what_the_page_asks() {
        // requested × remembered × forced → asked
        let cases: &[(&str, Option<&str>, bool, Option<&str>)] = &[
            ("openid read", None, false, Some("openid read")),
            ("", None, false, Some("")),
            ("openid read", Some("openid read write"), false, None),
            ("openid read", Some("openid"), false, Some("read")),
            ("read write", Some("read"), false, Some("write")),
            (
                "openid read",
                Some("openid read"),
                true,
                Some("openid read"),
            ),
            ("", Some(""), false, None),
        ];
        for (requested, remembered, forced, expected) in cases {
            let remembered = remembered.map(consent);
            let asked = to_ask(&list(requested), remembered.as_ref(), *forced);
            assert_eq!(
                asked.map(|a| a.join(" ")),
                expected.map(str::to_string),
                "{requested} with {remembered:?}, forced={forced}"
            );
        }
    }

    #[test]
    fn consent_accumulates() {
        assert_eq!(
            merge(&list("openid read"), &list("write read profile")).join(" "),
            "openid read write profile"
        );
        assert_eq!(merge(&[], &list("a")).join(" "), "a");
    }

    #[test]
    fn descriptions_and_keys() {
        let api = ResourceServer {
            id: "rs".into(),
            name: "API".into(),
            identifier: "https://api".into(),
            signing_alg: "RS256".into(),
            token_lifetime: 60,
            token_lifetime_for_web: 60,
            allow_offline_access: true,
            token_dialect: TokenDialect::AccessToken,
            enforce_policies: false,
            scopes: vec![
                Scope {
                    value: "read:messages".into(),
                    description: "Read your messages".into(),
                },
                Scope {
                    value: "bare".into(),
                    description: " ".into(),
                },
            ],
            proof_of_possession: None,
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(describe("read:messages", Some(&api)), "Read your messages");
        assert_eq!(describe("bare", Some(&api)), "bare");
        assert_eq!(
            describe("email", None),
            "Your email address and whether it is verified"
        );
        assert_eq!(describe("unknown", None), "unknown");
        assert_eq!(
            audience_key("https://id.example/", None),
            "https://id.example/userinfo"
        );
        assert_eq!(
            audience_key("https://id.example/", Some("https://api")),
            "https://api"
        );
    }
}
