//! System APIs: resource servers Tessera registers itself, as Auth0 registers its
//! Management API in every tenant (`is_system: true`). They cannot be changed or deleted
//! by administrators. Their ids start with [`SYSTEM_API_ID_PREFIX`], which no API created
//! through the CLI or the Management API can have (those ids are random hex, and
//! identifiers of that shape are refused). Users get none of their administrative scopes
//! ([`user_may_hold`]).

use crate::scope::{OFFLINE_ACCESS, OIDC_SCOPES};
use crate::{AppType, Client, ClientProfile, Permission, RefreshPolicy, ResourceServer, Role};
use crate::{Scope, TokenDialect};

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
    ("read:client_credentials", "Read Client Credentials"),
    ("create:client_credentials", "Create Client Credentials"),
    ("update:client_credentials", "Update Client Credentials"),
    ("delete:client_credentials", "Delete Client Credentials"),
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
    ("create:connections", "Create Connections"),
    ("update:connections", "Update Connections"),
    ("delete:connections", "Delete Connections"),
    ("read:signing_keys", "Read Signing Keys"),
    ("create:signing_keys", "Create Signing Keys"),
    ("update:signing_keys", "Update Signing Keys"),
    ("read:attack_protection", "Read Attack Protection"),
    ("update:attack_protection", "Update Attack Protection"),
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
    ("read:refresh_tokens", "Read Refresh Tokens"),
    ("update:refresh_tokens", "Update Refresh Tokens"),
    ("delete:refresh_tokens", "Delete Refresh Tokens"),
    ("read:sessions", "Read Sessions"),
    ("update:sessions", "Update Sessions"),
    ("delete:sessions", "Delete Sessions"),
    ("read:actions", "Read Actions"),
    ("create:actions", "Create Actions"),
    ("update:actions", "Update Actions"),
    ("delete:actions", "Delete Actions"),
    ("read:rules", "Read Rules"),
    ("create:rules", "Create Rules"),
    ("update:rules", "Update Rules"),
    ("delete:rules", "Delete Rules"),
    ("read:rules_configs", "Read Rules Configs"),
    ("update:rules_configs", "Update Rules Configs"),
    ("delete:rules_configs", "Delete Rules Configs"),
    ("read:guardian_factors", "Read Guardian Factors"),
    ("update:guardian_factors", "Update Guardian Factors"),
    ("read:mfa_policies", "Read MFA Policies"),
    ("update:mfa_policies", "Update MFA Policies"),
    ("read:authentication_methods", "Read Authentication Methods"),
    (
        "delete:authentication_methods",
        "Delete Authentication Methods",
    ),
    ("delete:guardian_enrollments", "Delete Guardian Enrollments"),
    ("read:logs", "Read Logs"),
    ("read:logs_users", "Read logs relating to users"),
    ("read:log_streams", "Read Log Streams"),
    ("create:log_streams", "Create Log Streams"),
    ("update:log_streams", "Update Log Streams"),
    ("delete:log_streams", "Delete Log Streams"),
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
        proof_of_possession: None,
        created_at: now,
        updated_at: now,
    }
}

/// A role Tessera registers itself to say who may use the dashboard (`<issuer>admin/`).
/// Its id is fixed, so every node registers the same row; generated role ids are
/// `rol_` and 16 alphanumeric characters, so an id with a second `_` cannot collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemRole {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// Only the `read:` scopes of the Management API, or all of them.
    pub read_only: bool,
}

/// Administrators: every Management API permission, through the dashboard.
pub const ADMIN_ROLE: SystemRole = SystemRole {
    id: "rol_tessera_admin",
    name: "Tessera Admin",
    description: "Tessera's administrators: may view and change everything in the dashboard",
    read_only: false,
};

/// Read-only administrators: the `read:` Management API permissions.
pub const VIEWER_ROLE: SystemRole = SystemRole {
    id: "rol_tessera_viewer",
    name: "Tessera Viewer",
    description: "May view everything in Tessera's dashboard and change nothing",
    read_only: true,
};

/// Every system role.
pub const SYSTEM_ROLES: [SystemRole; 2] = [ADMIN_ROLE, VIEWER_ROLE];

impl SystemRole {
    /// The Management API scopes this role holds, in [`MANAGEMENT_SCOPES`] order.
    pub fn scopes(&self) -> Vec<String> {
        MANAGEMENT_SCOPES
            .iter()
            .map(|(value, _)| *value)
            .filter(|value| !self.read_only || value.starts_with("read:"))
            .map(str::to_string)
            .collect()
    }

    /// The permissions this role holds: its scopes on the Management API of `issuer`.
    pub fn permissions(&self, issuer: &str) -> Vec<Permission> {
        let audience = management_api_identifier(issuer);
        self.scopes()
            .into_iter()
            .map(|permission| Permission {
                audience: audience.clone(),
                permission,
            })
            .collect()
    }

    /// The role's row.
    pub fn role(&self, now: i64) -> Role {
        Role {
            id: self.id.to_string(),
            name: self.name.to_string(),
            description: self.description.to_string(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// The system role with this id, if it is one.
pub fn system_role(id: &str) -> Option<SystemRole> {
    SYSTEM_ROLES.into_iter().find(|role| role.id == id)
}

/// Whether `name` is a system role's name (no other role may take it).
pub fn is_system_role_name(name: &str) -> bool {
    SYSTEM_ROLES.iter().any(|role| role.name == name)
}

/// The client id of the dashboard's application. Generated client ids are alphanumeric,
/// so one with `_` cannot collide (like the global client's `tessera_global_client`).
pub const DASHBOARD_CLIENT_ID: &str = "tessera_dashboard";

/// The dashboard application's name.
pub const DASHBOARD_CLIENT_NAME: &str = "Tessera Dashboard";

/// Applications Tessera registers itself: hidden from the Management API's lists (so
/// Auth0's tools never export, copy or delete them) and changed by nobody.
pub const SYSTEM_CLIENT_IDS: &[&str] = &[DASHBOARD_CLIENT_ID];

/// Whether `client_id` is one of [`SYSTEM_CLIENT_IDS`].
pub fn is_system_client(client_id: &str) -> bool {
    SYSTEM_CLIENT_IDS.contains(&client_id)
}

/// The dashboard's address: `<base>admin/`, where `base` is the issuer or, when the
/// dashboard has a listener of its own, that listener's URL.
pub fn dashboard_url(base: &str) -> String {
    format!("{base}admin/")
}

/// The dashboard (served under `dashboard_base`) as an OIDC client of this server: a first-party regular web application
/// that redeems its code in-process with PKCE, so it is public (no secret to keep), uses
/// the authorization code grant only; it reads the user from the ID token and their
/// permissions from the store, never from an access token.
pub fn dashboard_client(dashboard_base: &str, now: i64) -> Client {
    let url = dashboard_url(dashboard_base);
    Client {
        client_id: DASHBOARD_CLIENT_ID.to_string(),
        name: DASHBOARD_CLIENT_NAME.to_string(),
        app_type: AppType::RegularWeb,
        secret_hash: None,
        token_endpoint_auth_method: "none".to_string(),
        callbacks: vec![format!("{url}callback")],
        web_origins: Vec::new(),
        // Where `/v2/logout` may return: the dashboard, and the page saying one signed out.
        allowed_logout_urls: vec![url.clone(), format!("{url}signed-out")],
        grant_types: vec!["authorization_code".to_string()],
        is_first_party: true,
        // Every API: a tenant's `default_audience` applies to its sign-in too, and an
        // empty list would refuse it. Its tokens never leave the server.
        allowed_apis: None,
        refresh: RefreshPolicy::default(),
        profile: ClientProfile {
            description: Some("Tessera's administration dashboard".to_string()),
            ..ClientProfile::default()
        },
        require_pushed_authorization_requests: false,
        private_key_jwt_credentials: None,
        created_at: now,
        updated_at: now,
        oidc_logout: None,
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

    #[test]
    fn system_roles_hold_the_management_scopes() {
        let issuer = "https://id.example.com/";
        let admin = ADMIN_ROLE.permissions(issuer);
        assert_eq!(admin.len(), MANAGEMENT_SCOPES.len());
        assert!(
            admin
                .iter()
                .all(|p| p.audience == "https://id.example.com/api/v2/")
        );
        let viewer = VIEWER_ROLE.scopes();
        assert!(viewer.contains(&"read:users".to_string()));
        assert!(viewer.iter().all(|s| s.starts_with("read:")));
        assert_eq!(
            viewer.len(),
            MANAGEMENT_SCOPES
                .iter()
                .filter(|(s, _)| s.starts_with("read:"))
                .count()
        );
        assert_eq!(system_role("rol_tessera_viewer"), Some(VIEWER_ROLE));
        assert_eq!(system_role("rol_0123456789abcdef"), None);
        assert!(is_system_role_name("Tessera Admin"));
        assert!(!is_system_role_name("tessera admin"));
        // Generated role ids are `rol_` + 16 alphanumerics: a system id has another shape.
        for role in SYSTEM_ROLES {
            let tail = role.id.strip_prefix("rol_").unwrap();
            assert!(
                !tail.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{}",
                role.id
            );
        }
    }

    #[test]
    fn the_dashboard_client_is_public_code_only_and_cannot_collide() {
        let client = dashboard_client("https://id.example.com/", 1);
        assert!(is_system_client(&client.client_id));
        assert!(!client.client_id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(client.is_public());
        assert!(client.secret_hash.is_none());
        assert_eq!(client.grant_types, ["authorization_code"]);
        assert_eq!(client.callbacks, ["https://id.example.com/admin/callback"]);
        assert_eq!(
            client.allowed_logout_urls,
            [
                "https://id.example.com/admin/",
                "https://id.example.com/admin/signed-out"
            ]
        );
        assert!(client.web_origins.is_empty());
        assert!(client.is_first_party);
        crate::validate::urls(
            &client.callbacks,
            crate::validate::UrlKind::Callback,
            client.app_type,
        )
        .unwrap();
        crate::validate::grant_types(&client.grant_types, client.app_type).unwrap();
        assert!(!is_system_client("tessera_global_client"));
    }
}
