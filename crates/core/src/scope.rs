//! Which scopes a request is granted.
//!
//! Users: "by default, any user on any client can ask for any scope" the API defines
//! (Auth0's default; RBAC narrows this later). Scopes nobody defines are dropped.
//! Machines: the client grant decides.

use crate::{ClientGrant, ResourceServer};

/// OpenID Connect scopes we understand.
pub const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// Splits a space-delimited scope string, dropping duplicates and keeping order.
pub fn parse(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|s| s == item) {
            out.push(item.to_string());
        }
    }
    out
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

pub fn contains(scopes: &[String], value: &str) -> bool {
    scopes.iter().any(|s| s == value)
}

/// Asks for a refresh token (granted when the API allows offline access).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Scopes granted to a user's request: the OIDC scopes we know, `offline_access` when the
/// API allows offline access (or no API is involved), plus the scopes the audience's API
/// defines. Order follows the request.
pub fn resolve_for_user(requested: &[String], api: Option<&ResourceServer>) -> Vec<String> {
    let offline_allowed = api.is_none_or(|api| api.allow_offline_access);
    requested
        .iter()
        .filter(|s| {
            OIDC_SCOPES.contains(&s.as_str())
                || (s.as_str() == OFFLINE_ACCESS && offline_allowed)
                || api.is_some_and(|api| api.defines_scope(s))
        })
        .cloned()
        .collect()
}

/// RBAC (Auth0's `enforce_policies`): of the API's scopes, only those the user holds as
/// permissions stay granted. OIDC scopes and `offline_access` are not the API's to refuse.
pub fn apply_permissions(granted: &mut Vec<String>, api: &ResourceServer, permissions: &[String]) {
    granted.retain(|s| !api.defines_scope(s) || permissions.contains(s));
}

/// Why a client-credentials request gets no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineScopeError {
    /// Every requested scope is outside the grant.
    NoneGranted,
}

/// Scopes granted to a machine-to-machine request: with no `scope` parameter, all the
/// scopes the grant holds (that the API still defines); otherwise requested ∩ granted.
pub fn resolve_for_client(
    requested: Option<&[String]>,
    grant: &ClientGrant,
    api: &ResourceServer,
) -> Result<Vec<String>, MachineScopeError> {
    let granted = grant.scope.iter().filter(|s| api.defines_scope(s));
    match requested {
        None | Some([]) => Ok(granted.cloned().collect()),
        Some(requested) => {
            let result: Vec<String> = requested
                .iter()
                .filter(|s| grant.scope.contains(s) && api.defines_scope(s))
                .cloned()
                .collect();
            if result.is_empty() {
                Err(MachineScopeError::NoneGranted)
            } else {
                Ok(result)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scope, TokenDialect};

    fn api(scopes: &[&str]) -> ResourceServer {
        ResourceServer {
            id: "rs".into(),
            name: "API".into(),
            identifier: "https://api".into(),
            signing_alg: "RS256".into(),
            token_lifetime: 60,
            token_lifetime_for_web: 60,
            allow_offline_access: false,
            token_dialect: TokenDialect::AccessToken,
            enforce_policies: false,
            scopes: scopes
                .iter()
                .map(|s| Scope {
                    value: s.to_string(),
                    description: String::new(),
                })
                .collect(),
            proof_of_possession: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn grant(scopes: &[&str]) -> ClientGrant {
        ClientGrant {
            id: "g".into(),
            client_id: "c".into(),
            audience: "https://api".into(),
            scope: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: 0,
        }
    }

    #[test]
    fn user_scopes_table() {
        let quickstart = api(&["read:messages", "write:messages"]);
        let offline = ResourceServer {
            allow_offline_access: true,
            ..api(&["read:messages"])
        };
        assert_eq!(
            join(&resolve_for_user(
                &parse("openid offline_access read:messages"),
                Some(&offline)
            )),
            "openid offline_access read:messages"
        );
        let cases: &[(&str, Option<&ResourceServer>, &str)] = &[
            (
                "openid profile read:messages",
                Some(&quickstart),
                "openid profile read:messages",
            ),
            ("openid  openid profile", None, "openid profile"),
            ("openid read:messages", None, "openid"),
            (
                "openid delete:everything read:messages",
                Some(&quickstart),
                "openid read:messages",
            ),
            ("email offline_access", Some(&quickstart), "email"),
            ("openid offline_access", None, "openid offline_access"),
            ("", Some(&quickstart), ""),
        ];
        for (requested, api, expected) in cases {
            assert_eq!(
                join(&resolve_for_user(&parse(requested), *api)),
                *expected,
                "{requested}"
            );
        }
    }

    #[test]
    fn rbac_table() {
        // requested × permissions × enforce_policies → granted
        let cases: &[(&str, &[&str], bool, &str)] = &[
            (
                "openid read:messages write:messages",
                &["read:messages"],
                true,
                "openid read:messages",
            ),
            (
                "openid read:messages write:messages",
                &["read:messages"],
                false,
                "openid read:messages write:messages",
            ),
            ("openid read:messages", &[], true, "openid"),
            (
                "openid offline_access write:messages",
                &["write:messages", "read:messages"],
                true,
                "openid offline_access write:messages",
            ),
            ("profile", &["read:messages"], true, "profile"),
        ];
        for (requested, permissions, enforce, expected) in cases {
            let api = ResourceServer {
                enforce_policies: *enforce,
                allow_offline_access: true,
                ..api(&["read:messages", "write:messages"])
            };
            let mut granted = resolve_for_user(&parse(requested), Some(&api));
            if api.enforce_policies {
                let permissions: Vec<String> = permissions.iter().map(|p| p.to_string()).collect();
                apply_permissions(&mut granted, &api, &permissions);
            }
            assert_eq!(
                join(&granted),
                *expected,
                "{requested} with {permissions:?}, enforce={enforce}"
            );
        }
    }

    #[test]
    fn client_scopes_table() {
        let api = api(&["read", "write", "admin"]);
        let grant = grant(&["read", "write", "retired"]);
        assert_eq!(
            resolve_for_client(None, &grant, &api),
            Ok(vec!["read".into(), "write".into()])
        );
        assert_eq!(
            resolve_for_client(Some(&parse("write admin")), &grant, &api),
            Ok(vec!["write".into()])
        );
        assert_eq!(
            resolve_for_client(Some(&parse("admin")), &grant, &api),
            Err(MachineScopeError::NoneGranted)
        );
        assert_eq!(
            resolve_for_client(Some(&parse("retired")), &grant, &api),
            Err(MachineScopeError::NoneGranted)
        );
    }
}
