//! The JSON shapes of Auth0's Management API v2, member names as Auth0 spells them: what
//! `/api/v2/` answers and what the CLI's `--json` prints (it uses this module as
//! `tessera_server::wire`), one type for each. They are compatibility promises, to scripts,
//! SDKs and Terraform written against Auth0: change them only by adding members.
//!
//! Members are declared in alphabetical order, nested objects' too: `fields=` filtering
//! goes through a `serde_json::Value`, whose maps sort their keys, and an object prints
//! the same whichever way it went (`members_print_in_one_order` checks it).

use serde::{Deserialize, Deserializer, Serialize};
use tessera_core::claims::rfc3339;

/// An API (`/resource-servers`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceServer {
    pub allow_offline_access: bool,
    pub enforce_policies: bool,
    pub id: String,
    pub identifier: String,
    /// The Management API itself: listed, never changed.
    pub is_system: bool,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub signing_alg: String,
    pub skip_consent_for_verifiable_first_party_clients: bool,
    pub token_dialect: String,
    pub token_lifetime: i64,
    /// Tessera has one access-token lifetime, for browsers too.
    pub token_lifetime_for_web: i64,
    /// Auth0's `{"mechanism": "dpop", "required": …}`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_of_possession: Option<tessera_core::ProofOfPossession>,
}

/// A scope an API defines. Also read back: `tessera apis update --scopes-file` takes a
/// list of them, or an API printed by `--json` (a `null` description is none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default, deserialize_with = "null_is_empty")]
    pub description: String,
    pub value: String,
}

fn null_is_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

pub fn resource_server(api: &tessera_core::ResourceServer) -> ResourceServer {
    ResourceServer {
        allow_offline_access: api.allow_offline_access,
        enforce_policies: api.enforce_policies,
        id: api.id.clone(),
        identifier: api.identifier.clone(),
        is_system: api.is_system(),
        name: api.name.clone(),
        scopes: api
            .scopes
            .iter()
            .map(|s| Scope {
                description: s.description.clone(),
                value: s.value.clone(),
            })
            .collect(),
        signing_alg: api.signing_alg.clone(),
        skip_consent_for_verifiable_first_party_clients: true,
        token_dialect: api.token_dialect.as_str().into(),
        token_lifetime: api.token_lifetime,
        token_lifetime_for_web: api.token_lifetime_for_web,
        proof_of_possession: api.proof_of_possession,
    }
}

/// An application (`/clients`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Client {
    /// Tessera's: the APIs users may authorize the application for; `null` for every API.
    pub allowed_apis: Option<Vec<String>>,
    pub allowed_logout_urls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    pub app_type: String,
    pub callbacks: Vec<String>,
    /// Auth0's: present when the application authenticates with private_key_jwt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_authentication_methods: Option<serde_json::Value>,
    pub client_id: String,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub client_metadata: std::collections::BTreeMap<String, String>,
    /// Only where it was just made (create, rotate-secret): Tessera keeps a hash, so it
    /// cannot show the secret again, where Auth0 would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub cross_origin_authentication: bool,
    pub custom_login_page_on: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub grant_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiate_login_uri: Option<String>,
    pub is_first_party: bool,
    pub is_token_endpoint_ip_header_trusted: bool,
    pub jwt_configuration: JwtConfiguration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    pub name: String,
    pub oidc_conformant: bool,
    /// OIDC Back-Channel Logout, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_logout: Option<tessera_core::OidcLogout>,
    pub refresh_token: RefreshToken,
    pub require_pushed_authorization_requests: bool,
    pub sso_disabled: bool,
    pub tenant: String,
    /// Absent while `client_authentication_methods` is set, as on Auth0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    pub web_origins: Vec<String>,
}

/// How the application's ID tokens are signed, and for how long they live.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JwtConfiguration {
    pub alg: String,
    pub lifetime_in_seconds: i64,
}

/// Auth0's `refresh_token` settings of an application: Tessera always rotates and expires.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshToken {
    pub expiration_type: String,
    pub idle_token_lifetime: i64,
    pub infinite_idle_token_lifetime: bool,
    pub infinite_token_lifetime: bool,
    /// The reuse interval.
    pub leeway: i64,
    pub rotation_type: String,
    pub token_lifetime: i64,
}

/// `secret`: the clear-text secret, passed only by what just made it.
pub fn client(client: &tessera_core::Client, secret: Option<&str>) -> Client {
    Client {
        allowed_apis: client.allowed_apis.clone(),
        allowed_logout_urls: client.allowed_logout_urls.clone(),
        allowed_origins: client.profile.allowed_origins.clone(),
        app_type: client.app_type.as_str().into(),
        callbacks: client.callbacks.clone(),
        client_authentication_methods: client.private_key_jwt_credentials.as_ref().map(|ids| {
            let credentials: Vec<serde_json::Value> = ids
                .iter()
                .map(|id| serde_json::json!({ "id": id }))
                .collect();
            serde_json::json!({ "private_key_jwt": { "credentials": credentials } })
        }),
        client_id: client.client_id.clone(),
        client_metadata: client.profile.client_metadata.clone(),
        client_secret: secret.map(str::to_string),
        cross_origin_authentication: false,
        custom_login_page_on: true,
        description: client.profile.description.clone(),
        grant_types: client.grant_types.clone(),
        initiate_login_uri: client.profile.initiate_login_uri.clone(),
        is_first_party: client.is_first_party,
        is_token_endpoint_ip_header_trusted: false,
        jwt_configuration: JwtConfiguration {
            alg: "RS256".into(),
            lifetime_in_seconds: tessera_core::DEFAULT_ID_TOKEN_LIFETIME,
        },
        logo_uri: client.profile.logo_uri.clone(),
        name: client.name.clone(),
        oidc_conformant: true,
        oidc_logout: client.oidc_logout.clone(),
        refresh_token: RefreshToken {
            expiration_type: "expiring".into(),
            idle_token_lifetime: client.refresh.idle_token_lifetime,
            infinite_idle_token_lifetime: false,
            infinite_token_lifetime: false,
            leeway: client.refresh.reuse_interval,
            rotation_type: "rotating".into(),
            token_lifetime: client.refresh.token_lifetime,
        },
        require_pushed_authorization_requests: client.require_pushed_authorization_requests,
        sso_disabled: false,
        tenant: tessera_core::DEFAULT_TENANT.into(),
        token_endpoint_auth_method: client
            .private_key_jwt_credentials
            .is_none()
            .then(|| client.token_endpoint_auth_method.clone()),
        web_origins: client.web_origins.clone(),
    }
}

/// An application's machine-to-machine access to an API (`/client-grants`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientGrant {
    pub audience: String,
    pub client_id: String,
    pub id: String,
    pub scope: Vec<String>,
}

pub fn client_grant(grant: &tessera_core::ClientGrant) -> ClientGrant {
    ClientGrant {
        audience: grant.audience.clone(),
        client_id: grant.client_id.clone(),
        id: grant.id.clone(),
        scope: grant.scope.clone(),
    }
}

/// A user (`/users`). Times in RFC 3339 with milliseconds, as Auth0 writes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// Shown once set, as Auth0 shows them.
    #[serde(skip_serializing_if = "tessera_core::Metadata::is_empty")]
    pub app_metadata: tessera_core::Metadata,
    pub blocked: bool,
    pub created_at: String,
    /// Both absent when the user has no email (an upstream that shared none), as in Auth0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    pub identities: Vec<Identity>,
    /// Absent until the first login, as in Auth0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login: Option<String>,
    pub logins_count: i64,
    pub name: String,
    pub nickname: String,
    pub picture: String,
    pub updated_at: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "tessera_core::Metadata::is_empty")]
    pub user_metadata: tessera_core::Metadata,
}

/// Where a user signs in: the connection and the provider's id for them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identity {
    pub connection: String,
    #[serde(rename = "isSocial")]
    pub is_social: bool,
    pub provider: String,
    /// The user's id without the provider prefix.
    pub user_id: String,
    /// A linked identity's own profile, as its provider last gave it.
    #[serde(rename = "profileData", skip_serializing_if = "Option::is_none")]
    pub profile_data: Option<ProfileData>,
}

/// A linked identity's `profileData`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileData {
    /// Both absent when the identity had no email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    pub name: String,
    pub nickname: String,
    pub picture: String,
}

/// An identity of `user_id` (`provider|id`) of `connection`.
fn identity(user_id: &str, connection: &str, profile_data: Option<ProfileData>) -> Identity {
    // `auth0|5f1c…` → (`auth0`, `5f1c…`); `oidc|acme|sub` → (`oidc`, `acme|sub`).
    let (provider, id) = user_id.split_once('|').unwrap_or(("auth0", user_id));
    Identity {
        connection: connection.into(),
        is_social: tessera_core::connection::Strategy::parse(provider)
            .is_some_and(tessera_core::connection::Strategy::is_social),
        provider: provider.into(),
        user_id: id.into(),
        profile_data,
    }
}

/// A user's identities: its own first, then those linked to it.
pub fn identities(
    user: &tessera_core::User,
    linked: &[tessera_store::LinkedIdentity],
) -> Vec<Identity> {
    let own = identity(&user.user_id, &user.connection, None);
    let linked = linked
        .iter()
        .filter(|l| l.primary_user_id == user.user_id)
        .map(|l| {
            let p = &l.profile;
            let data = ProfileData {
                email: p.email.clone(),
                email_verified: p.email.as_ref().map(|_| p.email_verified),
                name: p.name.clone(),
                nickname: p.nickname.clone(),
                picture: p.picture.clone(),
            };
            identity(&l.user_id, &l.connection, Some(data))
        });
    std::iter::once(own).chain(linked).collect()
}

/// A user; `linked` holds (at least) the identities linked to it, as read with
/// `Store::linked_identities_of` for a page of users.
pub fn user(user: &tessera_core::User, linked: &[tessera_store::LinkedIdentity]) -> User {
    User {
        app_metadata: user.app_metadata.clone(),
        blocked: user.blocked,
        created_at: rfc3339(user.created_at),
        email: user.email.clone(),
        email_verified: user.email.as_ref().map(|_| user.email_verified),
        identities: identities(user, linked),
        last_login: user.last_login.map(rfc3339),
        logins_count: user.logins_count,
        name: user.name.clone(),
        nickname: user.nickname.clone(),
        picture: user.picture.clone(),
        updated_at: rfc3339(user.updated_at),
        user_id: user.user_id.clone(),
        user_metadata: user.user_metadata.clone(),
    }
}

/// A job (`/jobs/{id}`), as Auth0 shows it: `summary` once an import is done; an
/// export's `format`, `limit` and `fields`, and once completed its file's `location`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub connection: String,
    pub connection_id: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<serde_json::Value>,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
    #[serde(rename = "type")]
    pub job_type: String,
}

/// Where a completed export's file is read: `…/api/v2/jobs/{id}/file` on the issuer,
/// with a Management API token (`read:users`).
pub fn export_location(issuer: &str, job_id: &str) -> String {
    format!("{issuer}api/v2/jobs/{job_id}/file")
}

pub fn job(job: &tessera_store::Job, issuer: &str) -> Job {
    let detail = |name: &str| job.details.get(name).cloned();
    let location = (job.job_type == "users_export"
        && job.status == tessera_store::JobStatus::Completed)
        .then(|| export_location(issuer, &job.id));
    Job {
        connection: job
            .details
            .get(super::jobs::CONNECTION_DETAIL)
            .and_then(serde_json::Value::as_str)
            .unwrap_or(tessera_core::DATABASE_CONNECTION)
            .into(),
        connection_id: job
            .connection_id
            .clone()
            .unwrap_or_else(|| tessera_core::DATABASE_CONNECTION_ID.into()),
        created_at: rfc3339(job.created_at),
        external_id: job.external_id.clone(),
        fields: detail("fields"),
        format: detail("format"),
        id: job.id.clone(),
        limit: detail("limit"),
        location,
        status: job.status.as_str().into(),
        summary: job.summary.clone(),
        job_type: job.job_type.clone(),
    }
}

/// A role (`/roles`, `/users/{id}/roles`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Role {
    pub description: String,
    pub id: String,
    pub name: String,
}

pub fn role(role: &tessera_core::Role) -> Role {
    Role {
        description: role.description.clone(),
        id: role.id.clone(),
        name: role.name.clone(),
    }
}

/// A permission as `/roles/{id}/permissions` and `/users/{id}/permissions` list it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Permission {
    pub description: String,
    pub permission_name: String,
    pub resource_server_identifier: String,
    pub resource_server_name: String,
}

/// `api` is the permission's API, which names and describes it (both empty when the API
/// is gone or no longer defines the scope).
pub fn permission(
    permission: &tessera_core::Permission,
    api: Option<&tessera_core::ResourceServer>,
) -> Permission {
    let description = api
        .and_then(|api| api.scopes.iter().find(|s| s.value == permission.permission))
        .map_or("", |s| s.description.as_str());
    Permission {
        description: description.into(),
        permission_name: permission.permission.clone(),
        resource_server_identifier: permission.audience.clone(),
        resource_server_name: api.map_or("", |api| api.name.as_str()).into(),
    }
}

/// A member of a role, as `/roles/{id}/users` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleMember {
    /// Absent when the user has no email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub name: String,
    pub picture: String,
    pub user_id: String,
}

pub fn role_member(user: &tessera_core::User) -> RoleMember {
    RoleMember {
        email: user.email.clone(),
        name: user.name.clone(),
        picture: user.picture.clone(),
        user_id: user.user_id.clone(),
    }
}

/// A trigger an action supports (`supported_triggers[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionTrigger {
    pub id: String,
    pub version: String,
}

/// A secret of an action: its name, never its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionSecret {
    pub name: String,
    pub updated_at: String,
}

/// An action (`/actions/actions`). Tessera has no build step: `status` is `built` at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub all_changes_deployed: bool,
    pub built_at: String,
    pub code: String,
    pub created_at: String,
    pub dependencies: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_version: Option<ActionVersion>,
    pub id: String,
    pub name: String,
    pub runtime: String,
    pub secrets: Vec<ActionSecret>,
    pub status: &'static str,
    pub supported_triggers: Vec<ActionTrigger>,
    pub updated_at: String,
}

/// What a version says of its action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionSummary {
    pub all_changes_deployed: bool,
    pub created_at: String,
    pub id: String,
    pub name: String,
    pub supported_triggers: Vec<ActionTrigger>,
    pub updated_at: String,
}

/// A deployed snapshot of an action (`/actions/actions/{id}/versions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionVersion {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionSummary>,
    pub action_id: String,
    pub built_at: String,
    pub code: String,
    pub created_at: String,
    pub dependencies: serde_json::Value,
    pub deployed: bool,
    pub errors: Vec<serde_json::Value>,
    pub id: String,
    pub number: i64,
    pub runtime: String,
    pub status: &'static str,
    pub supported_triggers: Vec<ActionTrigger>,
    pub updated_at: String,
}

/// One binding of a trigger (`/actions/triggers/{id}/bindings`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Binding {
    pub action: Action,
    pub created_at: String,
    pub display_name: String,
    pub id: String,
    pub trigger_id: String,
    pub updated_at: String,
}

/// A legacy Rule (`/rules`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub enabled: bool,
    pub id: String,
    pub name: String,
    pub order: i64,
    pub script: String,
    pub stage: String,
}

fn action_triggers(action: &tessera_store::ActionRecord) -> Vec<ActionTrigger> {
    vec![ActionTrigger {
        id: action.trigger_id.clone(),
        version: action.trigger_version.clone(),
    }]
}

pub fn action(action: &tessera_store::ActionRecord) -> Action {
    Action {
        all_changes_deployed: action.all_changes_deployed,
        built_at: rfc3339(action.updated_at),
        code: action.code.clone(),
        created_at: rfc3339(action.created_at),
        dependencies: action.dependencies.clone(),
        deployed_version: action
            .deployed_version
            .as_ref()
            .map(|version| action_version(version, action, false)),
        id: action.id.clone(),
        name: action.name.clone(),
        runtime: action.runtime.clone(),
        secrets: action
            .secrets
            .iter()
            .map(|secret| ActionSecret {
                name: secret.name.clone(),
                updated_at: rfc3339(secret.updated_at),
            })
            .collect(),
        status: "built",
        supported_triggers: action_triggers(action),
        updated_at: rfc3339(action.updated_at),
    }
}

/// A version of `of`; `with_action` adds the summary of the action Auth0 nests in it.
pub fn action_version(
    version: &tessera_store::ActionVersionRecord,
    of: &tessera_store::ActionRecord,
    with_action: bool,
) -> ActionVersion {
    ActionVersion {
        action: with_action.then(|| ActionSummary {
            all_changes_deployed: of.all_changes_deployed,
            created_at: rfc3339(of.created_at),
            id: of.id.clone(),
            name: of.name.clone(),
            supported_triggers: action_triggers(of),
            updated_at: rfc3339(of.updated_at),
        }),
        action_id: version.action_id.clone(),
        built_at: rfc3339(version.created_at),
        code: version.code.clone(),
        created_at: rfc3339(version.created_at),
        dependencies: version.dependencies.clone(),
        deployed: version.deployed,
        errors: Vec::new(),
        id: version.id.clone(),
        number: version.number,
        runtime: version.runtime.clone(),
        status: "built",
        supported_triggers: action_triggers(of),
        updated_at: rfc3339(version.created_at),
    }
}

pub fn binding(binding: &tessera_store::BindingRecord) -> Binding {
    Binding {
        action: action(&binding.action),
        created_at: rfc3339(binding.created_at),
        display_name: binding.display_name.clone(),
        id: binding.id.clone(),
        trigger_id: binding.trigger_id.clone(),
        updated_at: rfc3339(binding.updated_at),
    }
}

pub fn rule(rule: &tessera_store::RuleRecord) -> Rule {
    Rule {
        enabled: rule.enabled,
        id: rule.id.clone(),
        name: rule.name.clone(),
        order: rule.order,
        script: rule.script.clone(),
        stage: rule.stage.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use tessera_core::{AppType, TokenDialect};

    use super::*;

    fn api() -> tessera_core::ResourceServer {
        tessera_core::ResourceServer {
            id: "5f0c".into(),
            name: "API".into(),
            identifier: "https://api".into(),
            signing_alg: "RS256".into(),
            token_lifetime: 86400,
            token_lifetime_for_web: 86400,
            allow_offline_access: false,
            token_dialect: TokenDialect::AccessToken,
            enforce_policies: false,
            scopes: vec![tessera_core::Scope {
                value: "read".into(),
                description: "Read".into(),
            }],
            proof_of_possession: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn app() -> tessera_core::Client {
        tessera_core::Client {
            client_id: "abc".into(),
            name: "App".into(),
            app_type: AppType::NonInteractive,
            secret_hash: Some(vec![1]),
            token_endpoint_auth_method: "client_secret_post".into(),
            callbacks: vec!["https://app/cb".into()],
            web_origins: vec![],
            allowed_logout_urls: vec![],
            grant_types: vec!["client_credentials".into()],
            is_first_party: true,
            allowed_apis: None,
            refresh: tessera_core::RefreshPolicy::default(),
            profile: Default::default(),
            require_pushed_authorization_requests: false,
            private_key_jwt_credentials: None,
            created_at: 0,
            updated_at: 0,
            oidc_logout: None,
        }
    }

    fn person() -> tessera_core::User {
        tessera_core::User {
            user_id: "auth0|00ff".into(),
            connection: "Username-Password-Authentication".into(),
            email: Some("a@example.com".into()),
            email_verified: false,
            name: "a@example.com".into(),
            nickname: "a".into(),
            picture: "data:".into(),
            blocked: false,
            created_at: 0,
            updated_at: 1,
            last_login: None,
            logins_count: 0,
            user_metadata: Default::default(),
            app_metadata: Default::default(),
        }
    }

    #[test]
    fn a_user_without_an_email_has_no_email_members() {
        let mut federated = person();
        federated.user_id = "github|42".into();
        federated.email = None;
        let shape = serde_json::to_value(user(&federated, &[])).unwrap();
        assert!(shape.get("email").is_none(), "{shape}");
        assert!(shape.get("email_verified").is_none(), "{shape}");
        assert_eq!(shape["identities"][0]["provider"], "github");
        let member = serde_json::to_value(role_member(&federated)).unwrap();
        assert!(member.get("email").is_none(), "{member}");
        let shape = serde_json::to_value(user(&person(), &[])).unwrap();
        assert_eq!(shape["email"], "a@example.com");
        assert_eq!(shape["email_verified"], false);
    }

    /// Printed directly and through a `Value` (sorted keys), every shape reads the same,
    /// with every optional member present.
    #[test]
    fn members_print_in_one_order() {
        fn same<T: Serialize>(shape: &T) {
            let direct = serde_json::to_string(shape).unwrap();
            let through_value =
                serde_json::to_string(&serde_json::to_value(shape).unwrap()).unwrap();
            assert_eq!(direct, through_value, "declare the members alphabetically");
        }
        let mut someone = person();
        someone.last_login = Some(2);
        someone.user_metadata.insert("theme".into(), json!("dark"));
        someone.app_metadata.insert("plan".into(), json!("pro"));
        let mut restricted = app();
        restricted.allowed_apis = Some(vec!["https://api".into()]);
        same(&resource_server(&api()));
        same(&client(&restricted, Some("secret")));
        same(&client_grant(&tessera_core::ClientGrant {
            id: "cgr_1".into(),
            client_id: "abc".into(),
            audience: "https://api".into(),
            scope: vec!["read".into()],
            created_at: 0,
        }));
        same(&user(&someone, &[]));
        same(&role(&tessera_core::Role {
            id: "rol_1".into(),
            name: "reader".into(),
            description: "Reads".into(),
            created_at: 0,
            updated_at: 0,
        }));
        let held = tessera_core::Permission {
            audience: "https://api".into(),
            permission: "read".into(),
        };
        same(&permission(&held, Some(&api())));
        same(&role_member(&someone));
        let version = tessera_store::ActionVersionRecord {
            id: "actv_1".into(),
            action_id: "act_1".into(),
            number: 1,
            code: "exports.onExecutePostLogin = async () => {};".into(),
            dependencies: json!([]),
            runtime: "node22".into(),
            deployed: true,
            created_at: 1,
        };
        let deployed = tessera_store::ActionRecord {
            id: "act_1".into(),
            name: "a".into(),
            trigger_id: "post-login".into(),
            trigger_version: "v3".into(),
            code: "exports.onExecutePostLogin = async () => {};".into(),
            dependencies: json!([]),
            runtime: "node22".into(),
            secrets: vec![tessera_store::SecretInfo {
                name: "K".into(),
                updated_at: 1,
            }],
            deployed_version: Some(version.clone()),
            all_changes_deployed: true,
            created_at: 0,
            updated_at: 1,
        };
        same(&action(&deployed));
        same(&action_version(&version, &deployed, true));
        same(&binding(&tessera_store::BindingRecord {
            id: "bnd_1".into(),
            trigger_id: "post-login".into(),
            display_name: "a".into(),
            action: deployed.clone(),
            created_at: 0,
            updated_at: 0,
        }));
        same(&rule(&tessera_store::RuleRecord {
            id: "rul_1".into(),
            name: "r".into(),
            script: "function (user, context, callback) {}".into(),
            order: 1,
            enabled: true,
            stage: "login_success".into(),
            created_at: 0,
            updated_at: 0,
        }));
    }

    #[test]
    fn shapes_are_auth0_shapes() {
        let json = serde_json::to_value(resource_server(&api())).unwrap();
        assert_eq!(
            json["scopes"],
            json!([{"value": "read", "description": "Read"}])
        );
        assert_eq!(json["is_system"], false);
        assert_eq!(json["token_lifetime_for_web"], 86400);

        let without = serde_json::to_value(client(&app(), None)).unwrap();
        assert!(without.get("client_secret").is_none());
        assert_eq!(without["app_type"], "non_interactive");
        assert_eq!(
            without["jwt_configuration"],
            json!({"alg": "RS256", "lifetime_in_seconds": 36000})
        );
        assert_eq!(without["allowed_apis"], Value::Null);
        let with = serde_json::to_value(client(&app(), Some("s"))).unwrap();
        assert_eq!(with["client_secret"], "s");

        let json = serde_json::to_value(user(&person(), &[])).unwrap();
        assert_eq!(json["created_at"], "1970-01-01T00:00:00.000Z");
        assert!(json.get("last_login").is_none());
        assert!(json.get("user_metadata").is_none());
        assert_eq!(
            json["identities"],
            json!([{"connection": "Username-Password-Authentication", "user_id": "00ff", "provider": "auth0", "isSocial": false}])
        );

        let held = tessera_core::Permission {
            audience: "https://api".into(),
            permission: "read".into(),
        };
        assert_eq!(
            serde_json::to_value(permission(&held, Some(&api()))).unwrap(),
            json!({"permission_name": "read", "description": "Read", "resource_server_name": "API", "resource_server_identifier": "https://api"})
        );
        assert_eq!(
            serde_json::to_value(permission(&held, None)).unwrap()["resource_server_name"],
            ""
        );
    }

    #[test]
    fn scopes_read_back_strictly() {
        let scopes: Vec<Scope> = serde_json::from_str(
            r#"[{"value": "a"}, {"value": "b", "description": null}, {"value": "c", "description": "C"}]"#,
        )
        .unwrap();
        let descriptions: Vec<&str> = scopes.iter().map(|s| s.description.as_str()).collect();
        assert_eq!(descriptions, ["", "", "C"]);
        let error = serde_json::from_str::<Scope>(r#"{"value": "a", "desc": "A"}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `desc`"),
            "{error}"
        );
    }
}

/// An event of the audit log (`/logs`), as Auth0 shows it; members it does not have are
/// left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// ISO 8601 with milliseconds.
    pub date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub details: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub log_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(rename = "type")]
    pub log_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// Milliseconds since the epoch as ISO 8601 (`2026-12-05T21:52:04.123Z`).
pub fn iso_millis(millis: i64) -> String {
    let seconds = rfc3339(millis.div_euclid(1000));
    let fraction = millis.rem_euclid(1000);
    format!(
        "{}.{fraction:03}Z",
        seconds.strip_suffix(".000Z").unwrap_or(&seconds)
    )
}

pub fn log_event(entry: &tessera_store::LogEntry) -> LogEvent {
    let event = &entry.event;
    LogEvent {
        audience: event.audience.clone(),
        client_id: event.client_id.clone(),
        client_name: event.client_name.clone(),
        connection: event.connection.clone(),
        date: iso_millis(event.date),
        description: event.description.clone(),
        details: event.details.clone(),
        ip: event.ip.clone(),
        log_id: entry.log_id.clone(),
        scope: event.scope.clone(),
        log_type: event.log_type.clone(),
        user_agent: event.user_agent.clone(),
        user_id: event.user_id.clone(),
        user_name: event.user_name.clone(),
    }
}
