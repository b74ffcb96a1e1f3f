//! The grant decision: what a request is granted, for every flow — the authorization
//! response (code and implicit), consent's "what needs asking", the code and refresh
//! grants, and client credentials. Handlers gather what it needs (the API, the user's
//! permissions, the client grant) and encode its refusals; none narrows scopes itself.
//!
//! Architecture invariant: **one place decides what is granted** — this module. Policies
//! that change a decision (Actions, later) run on its result, in the server's grant
//! pipeline, never beside it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::scope::{self, OFFLINE_ACCESS};
use crate::system;
use crate::{Client, ClientGrant, ResourceServer};

/// What a request is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The scopes granted, in the order asked.
    pub scopes: Vec<String>,
    /// What an access token's `permissions` claim lists (the `*_authz` dialects): with RBAC
    /// every permission the user holds for the API, as Auth0 lists them; otherwise the
    /// granted scopes the API defines.
    pub permissions: Vec<String>,
    /// What Actions or Rules added (custom claims, scopes); empty without them.
    pub custom: Customization,
}

/// What a trigger's Actions and Rules asked of a grant, already filtered by the custom
/// claims rules (`crate::custom_claims`). Kept with a code until it is redeemed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customization {
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub access_token_claims: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub id_token_claims: Map<String, Value>,
    /// `api.accessToken.addScope`: granted whatever the API defines or RBAC says (as on
    /// Auth0), but never a scope users may not hold (a system API's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added_scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_scopes: Vec<String>,
    /// `api.refreshToken.setExpiresAt` (unix seconds): the refresh token's family ends no
    /// later than this. It only shortens what the application's settings give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_at: Option<i64>,
    /// `api.refreshToken.setIdleExpiresAt` (unix seconds): the refresh token issued now
    /// goes idle no later than this (the next one gets the settings' idle time again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_idle_expires_at: Option<i64>,
    /// `api.refreshToken.setMetadata` and its kin: the refresh token's whole metadata as the
    /// run left it — written on the family issued now, or in place of the exchanged one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_metadata: Option<BTreeMap<String, String>>,
}

impl Customization {
    pub fn is_empty(&self) -> bool {
        self == &Customization::default()
    }
}

impl Grant {
    /// Applies what Actions asked to a user's grant for `api`: removed scopes go, added
    /// ones come (in the order added, once), the claims ride along.
    pub fn customize(&mut self, api: Option<&ResourceServer>, custom: Customization) {
        self.scopes
            .retain(|granted| !custom.removed_scopes.contains(granted));
        for added in &custom.added_scopes {
            let may_hold = api.is_none_or(|api| system::user_may_hold(api, added));
            if may_hold && !self.scopes.contains(added) {
                self.scopes.push(added.clone());
            }
        }
        self.custom = custom;
    }
}

/// Why a request is refused. Each endpoint encodes it in its own error (an
/// `access_denied` redirect from `/authorize`, `invalid_grant` or `access_denied` from
/// `/oauth/token`); `description` is the text both show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The audience names no registered API (any more).
    UnknownAudience { audience: String },
    /// The application is restricted to other APIs.
    AudienceNotAllowed { audience: String },
    /// Every scope asked is one users may not hold for this API (a system API's
    /// administrative scopes).
    NothingUsersMayHold { api_name: String },
    /// A machine-to-machine application without a client grant for the API.
    NoClientGrant { audience: String },
    /// A machine-to-machine request whose scopes the client grant holds none of.
    NoScopeGranted,
}

impl Refusal {
    pub fn description(&self) -> String {
        match self {
            Refusal::UnknownAudience { audience } => {
                format!("Service not found: {audience} is not a registered API.")
            }
            Refusal::AudienceNotAllowed { audience } => {
                format!("Client is not authorized to access \"{audience}\".")
            }
            Refusal::NothingUsersMayHold { api_name } => format!(
                "Users cannot be granted the requested scopes of {api_name}: it grants its \
                 scopes to machine-to-machine applications only."
            ),
            Refusal::NoClientGrant { audience } => format!(
                "Client is not authorized to access \"{audience}\". You need to create a client \
                 grant for this API."
            ),
            Refusal::NoScopeGranted => {
                "Client has not been granted any of the requested scopes".to_string()
            }
        }
    }
}

/// The audience policy, one for every flow: no audience is fine (an opaque token good at
/// `/userinfo`); an audience must be a registered API (`found` is what looking it up gave,
/// now) that the application may use.
pub fn audience<'a>(
    client: &Client,
    requested: Option<&str>,
    found: Option<&'a ResourceServer>,
) -> Result<Option<&'a ResourceServer>, Refusal> {
    let Some(requested) = requested else {
        return Ok(None);
    };
    let api = found
        .filter(|api| api.identifier == requested)
        .ok_or_else(|| Refusal::UnknownAudience {
            audience: requested.to_string(),
        })?;
    if !client.may_access_api(requested) {
        return Err(Refusal::AudienceNotAllowed {
            audience: requested.to_string(),
        });
    }
    Ok(Some(api))
}

/// Which scopes a user's grant starts from.
#[derive(Debug, Clone, Copy)]
pub enum Asked<'a> {
    /// A request's `scope` parameter: only what the OpenID Connect scopes, `offline_access`
    /// (when the API allows offline access) and the API define can be granted.
    Requested(&'a [String]),
    /// Scopes decided before (a code's, a refresh-token family's): granted again, minus
    /// what the user may no longer hold.
    Decided(&'a [String]),
}

/// A user's request: at `/authorize` (and on the consent page) or at the token endpoint.
#[derive(Debug, Clone, Copy)]
pub struct UserRequest<'a> {
    /// The API (the resolved audience), or none for an opaque token.
    pub api: Option<&'a ResourceServer>,
    pub asked: Asked<'a>,
    /// The user's permissions for `api` (roles and direct ones); read by the caller only
    /// when the API enforces RBAC, ignored otherwise.
    pub permissions: &'a [String],
    /// Whether a refresh token can come of this grant (not implicit, and the application
    /// may use the refresh-token grant); without it `offline_access` is not granted.
    pub refresh_possible: bool,
}

/// What a user's request is granted: the scopes asked that can be granted; of a system
/// API, none of its administrative scopes (`access_denied` when nothing is left of what was
/// asked); no `offline_access` when no refresh token can come of it; with RBAC, of the
/// API's scopes only those the user holds as permissions.
pub fn for_user(request: &UserRequest<'_>) -> Result<Grant, Refusal> {
    let mut scopes = match request.asked {
        Asked::Requested(requested) => scope::resolve_for_user(requested, request.api),
        Asked::Decided(decided) => decided.to_vec(),
    };
    if let Some(api) = request.api {
        let asked = scopes.len();
        scopes.retain(|s| system::user_may_hold(api, s));
        if scopes.is_empty() && asked > 0 {
            return Err(Refusal::NothingUsersMayHold {
                api_name: api.name.clone(),
            });
        }
    }
    if !request.refresh_possible {
        scopes.retain(|s| s != OFFLINE_ACCESS);
    }
    let permissions = match request.api {
        Some(api) if api.enforce_policies => {
            scope::apply_permissions(&mut scopes, api, request.permissions);
            request.permissions.to_vec()
        }
        Some(api) => defined_by(api, &scopes),
        None => Vec::new(),
    };
    Ok(Grant {
        scopes,
        permissions,
        custom: Customization::default(),
    })
}

/// What a machine-to-machine request (client credentials) is granted: with no `scope`,
/// everything its client grant holds that the API still defines; otherwise what it asks
/// for of that.
pub fn for_machine(
    requested: Option<&[String]>,
    api: &ResourceServer,
    client_grant: Option<&ClientGrant>,
) -> Result<Grant, Refusal> {
    let client_grant = client_grant.ok_or_else(|| Refusal::NoClientGrant {
        audience: api.identifier.clone(),
    })?;
    let scopes = scope::resolve_for_client(requested, client_grant, api)
        .map_err(|scope::MachineScopeError::NoneGranted| Refusal::NoScopeGranted)?;
    Ok(Grant {
        permissions: defined_by(api, &scopes),
        scopes,
        custom: Customization::default(),
    })
}

fn defined_by(api: &ResourceServer, scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| api.defines_scope(s))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AppType, RefreshPolicy, Scope, TokenDialect};

    fn api(identifier: &str, scopes: &[&str]) -> ResourceServer {
        ResourceServer {
            id: "rs".into(),
            name: "Messages API".into(),
            identifier: identifier.into(),
            signing_alg: "RS256".into(),
            token_lifetime: 60,
            token_lifetime_for_web: 60,
            allow_offline_access: true,
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

    fn client(allowed_apis: Option<&[&str]>) -> Client {
        Client {
            client_id: "c".into(),
            name: "App".into(),
            app_type: AppType::Spa,
            secret_hash: None,
            token_endpoint_auth_method: "none".into(),
            callbacks: vec![],
            web_origins: vec![],
            allowed_logout_urls: vec![],
            grant_types: AppType::Spa.default_grant_types(),
            is_first_party: true,
            allowed_apis: allowed_apis.map(|apis| apis.iter().map(|a| a.to_string()).collect()),
            refresh: RefreshPolicy::default(),
            profile: Default::default(),
            require_pushed_authorization_requests: false,
            private_key_jwt_credentials: None,
            created_at: 0,
            updated_at: 0,
            oidc_logout: None,
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    /// One row of the user-grant table: the API's setup, what is asked, the outcome.
    struct Row {
        name: &'static str,
        rbac: bool,
        offline_allowed: bool,
        system: bool,
        asked: &'static [&'static str],
        /// `asked` was decided before (a code's or refresh family's scopes).
        decided: bool,
        permissions: &'static [&'static str],
        refresh_possible: bool,
        /// (scopes, permissions), or the refusal's variant name.
        expect: Result<(&'static [&'static str], &'static [&'static str]), &'static str>,
    }

    const EVERYTHING: &[&str] = &[
        "openid",
        "profile",
        "offline_access",
        "read",
        "write",
        "other",
    ];

    const ROWS: &[Row] = &[
        Row {
            name: "nothing asked, nothing granted",
            rbac: false,
            offline_allowed: true,
            system: false,
            asked: &[],
            decided: false,
            permissions: &[],
            refresh_possible: true,
            expect: Ok((&[], &[])),
        },
        Row {
            name: "undefined scopes are dropped; the API's and OIDC's are granted",
            rbac: false,
            offline_allowed: true,
            system: false,
            asked: EVERYTHING,
            decided: false,
            permissions: &[],
            refresh_possible: true,
            expect: Ok((
                &["openid", "profile", "offline_access", "read", "write"],
                &["read", "write"],
            )),
        },
        Row {
            name: "RBAC keeps the API's scopes the user holds; permissions list them all",
            rbac: true,
            offline_allowed: true,
            system: false,
            asked: EVERYTHING,
            decided: false,
            permissions: &["read", "delete"],
            refresh_possible: true,
            expect: Ok((
                &["openid", "profile", "offline_access", "read"],
                &["read", "delete"],
            )),
        },
        Row {
            name: "no offline_access when the API does not allow it",
            rbac: false,
            offline_allowed: false,
            system: false,
            asked: EVERYTHING,
            decided: false,
            permissions: &[],
            refresh_possible: true,
            expect: Ok((&["openid", "profile", "read", "write"], &["read", "write"])),
        },
        Row {
            name: "no offline_access when no refresh token can follow",
            rbac: false,
            offline_allowed: true,
            system: false,
            asked: EVERYTHING,
            decided: false,
            permissions: &[],
            refresh_possible: false,
            expect: Ok((&["openid", "profile", "read", "write"], &["read", "write"])),
        },
        Row {
            name: "decided scopes are not resolved again, but RBAC applies now",
            rbac: true,
            offline_allowed: false,
            system: false,
            asked: &["openid", "offline_access", "read", "write"],
            decided: true,
            permissions: &["write"],
            refresh_possible: true,
            expect: Ok((&["openid", "offline_access", "write"], &["write"])),
        },
        Row {
            name: "a system API: administrative scopes dropped, OIDC kept",
            rbac: false,
            offline_allowed: true,
            system: true,
            asked: EVERYTHING,
            decided: false,
            permissions: &[],
            refresh_possible: true,
            expect: Ok((&["openid", "profile", "offline_access"], &[])),
        },
        Row {
            name: "a system API: only administrative scopes asked is a refusal",
            rbac: false,
            offline_allowed: true,
            system: true,
            asked: &["read", "write"],
            decided: false,
            permissions: &[],
            refresh_possible: true,
            expect: Err("NothingUsersMayHold"),
        },
        Row {
            name: "a decided grant of administrative scopes is refused at issuance too",
            rbac: false,
            offline_allowed: true,
            system: true,
            asked: &["read", "write"],
            decided: true,
            permissions: &[],
            refresh_possible: true,
            expect: Err("NothingUsersMayHold"),
        },
    ];

    #[test]
    fn user_grants() {
        for row in ROWS {
            let mut api = api("https://api", &["read", "write", "delete"]);
            api.enforce_policies = row.rbac;
            api.allow_offline_access = row.offline_allowed;
            if row.system {
                api.id = format!("{}x", system::SYSTEM_API_ID_PREFIX);
            }
            let asked = strings(row.asked);
            let permissions = strings(row.permissions);
            let got = for_user(&UserRequest {
                api: Some(&api),
                asked: if row.decided {
                    Asked::Decided(&asked)
                } else {
                    Asked::Requested(&asked)
                },
                permissions: &permissions,
                refresh_possible: row.refresh_possible,
            });
            match (got, &row.expect) {
                (Ok(grant), Ok((scopes, permissions))) => {
                    assert_eq!(grant.scopes, strings(scopes), "{}: scopes", row.name);
                    assert_eq!(
                        grant.permissions,
                        strings(permissions),
                        "{}: permissions",
                        row.name
                    );
                }
                (Err(refusal), Err(kind)) => {
                    assert!(format!("{refusal:?}").starts_with(kind), "{}", row.name)
                }
                (got, expected) => panic!("{}: got {got:?}, expected {expected:?}", row.name),
            }
        }
    }

    #[test]
    fn without_an_api_the_oidc_scopes_and_offline_access_are_granted() {
        let asked = strings(&["openid", "email", "offline_access", "read"]);
        let grant = for_user(&UserRequest {
            api: None,
            asked: Asked::Requested(&asked),
            permissions: &[],
            refresh_possible: true,
        })
        .unwrap();
        assert_eq!(
            grant.scopes,
            strings(&["openid", "email", "offline_access"])
        );
        assert!(grant.permissions.is_empty());
    }

    #[test]
    fn one_audience_policy() {
        let messages = api("https://messages", &["read"]);
        let anyone = client(None);
        let restricted = client(Some(&["https://other"]));
        assert_eq!(audience(&anyone, None, None), Ok(None));
        assert_eq!(
            audience(&anyone, Some("https://messages"), Some(&messages)),
            Ok(Some(&messages))
        );
        // Deleted (or never registered): the same refusal wherever it is noticed.
        assert_eq!(
            audience(&anyone, Some("https://messages"), None),
            Err(Refusal::UnknownAudience {
                audience: "https://messages".into()
            })
        );
        // A lookup that matched another spelling (e.g. the API's id) is not the audience.
        assert_eq!(
            audience(&anyone, Some("rs"), Some(&messages)),
            Err(Refusal::UnknownAudience {
                audience: "rs".into()
            })
        );
        assert_eq!(
            audience(&restricted, Some("https://messages"), Some(&messages)),
            Err(Refusal::AudienceNotAllowed {
                audience: "https://messages".into()
            })
        );
    }

    #[test]
    fn machine_grants() {
        let messages = api("https://messages", &["read", "write"]);
        let client_grant = ClientGrant {
            id: "g".into(),
            client_id: "c".into(),
            audience: "https://messages".into(),
            scope: strings(&["read", "gone"]),
            created_at: 0,
        };
        let all = for_machine(None, &messages, Some(&client_grant)).unwrap();
        assert_eq!(all.scopes, strings(&["read"]));
        assert_eq!(all.permissions, strings(&["read"]));
        let write = strings(&["write"]);
        assert_eq!(
            for_machine(Some(&write), &messages, Some(&client_grant)),
            Err(Refusal::NoScopeGranted)
        );
        assert_eq!(
            for_machine(None, &messages, None),
            Err(Refusal::NoClientGrant {
                audience: "https://messages".into()
            })
        );
    }
}
