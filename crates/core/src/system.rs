//! System APIs: resource servers Tessera registers itself, as Auth0 registers its
//! Management API in every tenant (`is_system: true`). They cannot be changed or deleted
//! by administrators. Their ids start with [`SYSTEM_API_ID_PREFIX`], which no API created
//! through the CLI or the Management API can have (those ids are random hex, and
//! identifiers of that shape are refused). Users get none of their administrative scopes
//! ([`user_may_hold`]).

use crate::scope::{OFFLINE_ACCESS, OIDC_SCOPES};
use crate::{ResourceServer, Scope, TokenDialect};

/// The prefix of a system API's id.
pub const SYSTEM_API_ID_PREFIX: &str = "sys_";

/// The name of the Management API as a resource server: Auth0's, because Auth0's tools
/// (auth0-deploy-cli) recognise the system API by this name and leave it alone.
pub const MANAGEMENT_API_NAME: &str = "Auth0 Management API";

/// The Management API's scopes (Auth0's names) and their descriptions.
pub const MANAGEMENT_SCOPES: &[(&str, &str)] = &[
    ("read:resource_servers", "Read Resource Servers"),
    ("create:resource_servers", "Create Resource Servers"),
    ("update:resource_servers", "Update Resource Servers"),
    ("delete:resource_servers", "Delete Resource Servers"),
    ("read:clients", "Read Clients"),
    ("create:clients", "Create Clients"),
    ("update:clients", "Update Clients"),
    ("delete:clients", "Delete Clients"),
    ("update:client_keys", "Update Client Keys"),
    ("read:client_grants", "Read Client Grants"),
    ("create:client_grants", "Create Client Grants"),
    ("update:client_grants", "Update Client Grants"),
    ("delete:client_grants", "Delete Client Grants"),
    ("read:users", "Read Users"),
    ("create:users", "Create Users"),
    ("update:users", "Update Users"),
    ("delete:users", "Delete Users"),
    ("read:roles", "Read Roles"),
    ("create:roles", "Create Roles"),
    ("update:roles", "Update Roles"),
    ("delete:roles", "Delete Roles"),
    ("read:role_members", "Read Role Members"),
    ("create:role_members", "Create Role Members"),
    ("delete:role_members", "Delete Role Members"),
    ("read:connections", "Read Connections"),
    ("update:connections", "Update Connections"),
    ("read:tenant_settings", "Read Tenant Settings"),
    ("update:tenant_settings", "Update Tenant Settings"),
    ("create:user_tickets", "Create User Tickets"),
    ("read:email_templates", "Read Email Templates"),
    ("create:email_templates", "Create Email Templates"),
    ("update:email_templates", "Update Email Templates"),
    ("read:email_provider", "Read Email Provider"),
    ("create:email_provider", "Create Email Provider"),
    ("update:email_provider", "Update Email Provider"),
    ("delete:email_provider", "Delete Email Provider"),
    ("read:grants", "Read Grants"),
    ("delete:grants", "Delete Grants"),
];

/// Auth0's Management API scopes for a user's own profile, the only ones Auth0 grants to a
/// user flow (a single-page application calling the API for the signed-in user).
/// Tessera's Management API defines none of them: it serves machine-to-machine
/// applications only, so a user's token for it carries no Management scope at all.
pub const CURRENT_USER_SCOPES: [&str; 8] = [
    "read:current_user",
    "update:current_user",
    "update:current_user_identities",
    "create:current_user_metadata",
    "update:current_user_metadata",
    "delete:current_user_metadata",
    "create:current_user_device_credentials",
    "delete:current_user_device_credentials",
];

/// Whether a user flow (authorization code, implicit, refresh token — anything issued to a
/// user rather than to a machine-to-machine grant) may hold `scope` for `api`. Any scope of
/// an ordinary API (what it defines decides, and RBAC). Of a system API, as on Auth0, only
/// the OpenID Connect scopes, `offline_access` and the [`CURRENT_USER_SCOPES`]: a user who
/// asks for `delete:users` with the Management API as audience does not get it.
pub fn user_may_hold(api: &ResourceServer, scope: &str) -> bool {
    !api.is_system()
        || OIDC_SCOPES.contains(&scope)
        || scope == OFFLINE_ACCESS
        || CURRENT_USER_SCOPES.contains(&scope)
}

/// The Management API's identifier (the `aud` of its tokens): `<issuer>api/v2/`, as on
/// Auth0 (`https://TENANT.auth0.com/api/v2/`). `issuer` ends with `/`.
pub fn management_api_identifier(issuer: &str) -> String {
    format!("{issuer}api/v2/")
}

/// The Management API of `issuer` as a resource server. Its id is derived from the
/// identifier, so registering it is idempotent and two nodes starting at once agree.
pub fn management_api(issuer: &str, now: i64) -> ResourceServer {
    let identifier = management_api_identifier(issuer);
    let digest = crate::ids::secret_hash(&identifier);
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    ResourceServer {
        id: format!("{SYSTEM_API_ID_PREFIX}{hex}"),
        name: MANAGEMENT_API_NAME.to_string(),
        identifier,
        signing_alg: "RS256".to_string(),
        token_lifetime: crate::DEFAULT_ACCESS_TOKEN_LIFETIME,
        token_lifetime_for_web: crate::DEFAULT_ACCESS_TOKEN_LIFETIME,
        allow_offline_access: false,
        token_dialect: TokenDialect::AccessToken,
        enforce_policies: false,
        scopes: MANAGEMENT_SCOPES
            .iter()
            .map(|(value, description)| Scope {
                value: value.to_string(),
                description: description.to_string(),
            })
            .collect(),
        created_at: now,
        updated_at: now,
    }
}

impl ResourceServer {
    /// Whether Tessera registered this API itself (the Management API): read-only.
    pub fn is_system(&self) -> bool {
        self.id.starts_with(SYSTEM_API_ID_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_management_api_is_stable_and_system() {
        let a = management_api("https://id.example.com/", 1);
        let b = management_api("https://id.example.com/", 2);
        assert_eq!(a.id, b.id);
        assert_eq!(a.identifier, "https://id.example.com/api/v2/");
        assert!(a.is_system());
        assert!(a.defines_scope("read:clients"));
        assert_ne!(a.id, management_api("http://127.0.0.1:4000/", 1).id);
    }

    #[test]
    fn users_hold_no_administrative_scope_of_a_system_api() {
        let management = management_api("https://id.example.com/", 1);
        for (scope, _) in MANAGEMENT_SCOPES {
            assert!(!user_may_hold(&management, scope), "{scope}");
        }
        for scope in ["openid", "profile", "email", "offline_access"]
            .into_iter()
            .chain(CURRENT_USER_SCOPES)
        {
            assert!(user_may_hold(&management, scope), "{scope}");
        }
        assert!(!user_may_hold(&management, "read:messages"));
        // No current-user scope is defined here, so none reaches a token: the narrowing
        // keeps only what resolution granted, and resolution grants only defined scopes.
        assert!(
            CURRENT_USER_SCOPES
                .iter()
                .all(|scope| !management.defines_scope(scope))
        );
        let ordinary = ResourceServer {
            id: "0123456789abcdef01234567".into(),
            identifier: "https://api.example.com".into(),
            ..management
        };
        assert!(user_may_hold(&ordinary, "delete:users"));
        assert!(user_may_hold(&ordinary, "read:messages"));
    }
}
