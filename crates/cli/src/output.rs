//! What the admin commands print. The JSON types here are compatibility promises: they
//! are the Auth0 Management API v2 shapes (`GET /api/v2/resource-servers/{id}`,
//! `/clients/{id}`, `/client-grants`, `/users/{id}`), so scripts written against Auth0's
//! output keep working. Change them only by adding fields.

use serde::Serialize;
use tessera_core::claims::rfc3339;
use tessera_core::consent::Consent;
use tessera_core::{Client, ClientGrant, Permission, ResourceServer, Role, Scope, User};
use tessera_store::{KeyState, SigningKeyRecord};

// ---- JSON shapes --------------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct ResourceServerJson<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub identifier: &'a str,
    pub scopes: &'a [Scope],
    pub signing_alg: &'a str,
    pub token_lifetime: i64,
    pub allow_offline_access: bool,
    pub token_dialect: &'static str,
    pub enforce_policies: bool,
    pub skip_consent_for_verifiable_first_party_clients: bool,
}

pub fn resource_server(api: &ResourceServer) -> ResourceServerJson<'_> {
    ResourceServerJson {
        id: &api.id,
        name: &api.name,
        identifier: &api.identifier,
        scopes: &api.scopes,
        signing_alg: &api.signing_alg,
        token_lifetime: api.token_lifetime,
        allow_offline_access: api.allow_offline_access,
        token_dialect: api.token_dialect.as_str(),
        enforce_policies: api.enforce_policies,
        skip_consent_for_verifiable_first_party_clients: true,
    }
}

#[derive(Debug, Serialize)]
pub struct JwtConfigurationJson {
    pub alg: &'static str,
}

/// Auth0's `refresh_token` settings object of an application.
#[derive(Debug, Serialize)]
pub struct RefreshTokenJson {
    pub rotation_type: &'static str,
    pub expiration_type: &'static str,
    pub token_lifetime: i64,
    pub idle_token_lifetime: i64,
    pub infinite_token_lifetime: bool,
    pub infinite_idle_token_lifetime: bool,
    pub leeway: i64,
}

#[derive(Debug, Serialize)]
pub struct ClientJson<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub app_type: &'static str,
    /// Present only right after it was generated (create, rotate-secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<&'a str>,
    pub token_endpoint_auth_method: &'a str,
    pub callbacks: &'a [String],
    pub web_origins: &'a [String],
    pub allowed_logout_urls: &'a [String],
    pub grant_types: &'a [String],
    pub is_first_party: bool,
    /// Tessera's: the APIs users may authorize the application for; `null` for every API.
    pub allowed_apis: Option<&'a [String]>,
    pub oidc_conformant: bool,
    pub jwt_configuration: JwtConfigurationJson,
    pub refresh_token: RefreshTokenJson,
}

/// `secret` is the clear-text secret, passed only by the commands that just made it.
pub fn client<'a>(client: &'a Client, secret: Option<&'a str>) -> ClientJson<'a> {
    ClientJson {
        client_id: &client.client_id,
        name: &client.name,
        app_type: client.app_type.as_str(),
        client_secret: secret,
        token_endpoint_auth_method: &client.token_endpoint_auth_method,
        callbacks: &client.callbacks,
        web_origins: &client.web_origins,
        allowed_logout_urls: &client.allowed_logout_urls,
        grant_types: &client.grant_types,
        is_first_party: client.is_first_party,
        allowed_apis: client.allowed_apis.as_deref(),
        oidc_conformant: true,
        jwt_configuration: JwtConfigurationJson { alg: "RS256" },
        refresh_token: RefreshTokenJson {
            rotation_type: "rotating",
            expiration_type: "expiring",
            token_lifetime: client.refresh.token_lifetime,
            idle_token_lifetime: client.refresh.idle_token_lifetime,
            infinite_token_lifetime: false,
            infinite_idle_token_lifetime: false,
            leeway: client.refresh.reuse_interval,
        },
    }
}

/// A user's consent, as Auth0's `GET /api/v2/grants?user_id=…` lists it (plus the times).
#[derive(Debug, Serialize)]
pub struct ConsentJson<'a> {
    pub id: &'a str,
    #[serde(rename = "clientID")]
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub audience: &'a str,
    pub scope: &'a [String],
    pub created_at: String,
    pub updated_at: String,
}

pub fn consent(consent: &Consent) -> ConsentJson<'_> {
    ConsentJson {
        id: &consent.id,
        client_id: &consent.client_id,
        user_id: &consent.user_id,
        audience: &consent.audience,
        scope: &consent.scopes,
        created_at: rfc3339(consent.created_at),
        updated_at: rfc3339(consent.updated_at),
    }
}

#[derive(Debug, Serialize)]
pub struct ClientGrantJson<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub audience: &'a str,
    pub scope: &'a [String],
}

pub fn client_grant(grant: &ClientGrant) -> ClientGrantJson<'_> {
    ClientGrantJson {
        id: &grant.id,
        client_id: &grant.client_id,
        audience: &grant.audience,
        scope: &grant.scope,
    }
}

#[derive(Debug, Serialize)]
pub struct IdentityJson<'a> {
    pub connection: &'a str,
    pub user_id: &'a str,
    pub provider: &'static str,
    #[serde(rename = "isSocial")]
    pub is_social: bool,
}

#[derive(Debug, Serialize)]
pub struct UserJson<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub email_verified: bool,
    pub name: &'a str,
    pub nickname: &'a str,
    pub picture: &'a str,
    pub blocked: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Absent until the first login, as in Auth0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login: Option<String>,
    pub logins_count: i64,
    pub identities: [IdentityJson<'a>; 1],
    /// Shown once set, as Auth0 shows them.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub user_metadata: &'a tessera_core::Metadata,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub app_metadata: &'a tessera_core::Metadata,
}

pub fn user(user: &User) -> UserJson<'_> {
    // `auth0|5f1c…` → `5f1c…`: identities carry the id without the provider prefix.
    let id = user
        .user_id
        .split_once('|')
        .map_or(user.user_id.as_str(), |(_, id)| id);
    UserJson {
        user_id: &user.user_id,
        email: &user.email,
        email_verified: user.email_verified,
        name: &user.name,
        nickname: &user.nickname,
        picture: &user.picture,
        blocked: user.blocked,
        created_at: rfc3339(user.created_at),
        updated_at: rfc3339(user.updated_at),
        last_login: user.last_login.map(rfc3339),
        logins_count: user.logins_count,
        identities: [IdentityJson {
            connection: &user.connection,
            user_id: id,
            provider: "auth0",
            is_social: false,
        }],
        user_metadata: &user.user_metadata,
        app_metadata: &user.app_metadata,
    }
}

/// A signing key: our state name plus the booleans of Auth0's `/api/v2/keys/signing`.
#[derive(Debug, Serialize)]
pub struct SigningKeyJson<'a> {
    pub kid: &'a str,
    pub alg: &'a str,
    pub state: &'static str,
    pub current: bool,
    pub next: bool,
    pub previous: bool,
    pub revoked: bool,
    pub created_at: String,
    pub updated_at: String,
}

pub fn signing_key(key: &SigningKeyRecord) -> SigningKeyJson<'_> {
    SigningKeyJson {
        kid: &key.kid,
        alg: &key.alg,
        state: key.state.as_str(),
        current: key.state == KeyState::Current,
        next: key.state == KeyState::Next,
        previous: key.state == KeyState::Previous,
        revoked: key.state == KeyState::Retired,
        created_at: rfc3339(key.created_at),
        updated_at: rfc3339(key.updated_at),
    }
}

/// Prints a value as pretty JSON on stdout. A closed pipe (`tessera … --json | head`) is
/// not an error worth a panic: the reader has what it wanted.
pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value).expect("output types always serialize");
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

// ---- human-readable forms -----------------------------------------------------------------

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    use std::io::Write as _;
    let _ = write!(std::io::stdout().lock(), "{}", table(header, rows));
}

pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Prints `label: value` lines with the values aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields
        .iter()
        .map(|(label, _)| label.len() + 1)
        .max()
        .unwrap_or(0);
    for (label, value) in fields {
        println!("{:<width$} {value}", format!("{label}:"));
    }
}

pub fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

pub fn resource_server_fields(api: &ResourceServer) -> Vec<(&'static str, String)> {
    // "read:messages (Read your messages), write:messages": the description when there is one.
    let scopes: Vec<String> = api
        .scopes
        .iter()
        .map(|s| match s.description.as_str() {
            "" => s.value.clone(),
            description => format!("{} ({description})", s.value),
        })
        .collect();
    vec![
        ("id", api.id.clone()),
        ("name", api.name.clone()),
        ("identifier", api.identifier.clone()),
        ("scopes", list_or_none(&scopes)),
        ("signing alg", api.signing_alg.clone()),
        ("token lifetime", format!("{} s", api.token_lifetime)),
        ("offline access", yes_no(api.allow_offline_access)),
        ("token dialect", api.token_dialect.as_str().to_string()),
    ]
}

pub fn client_fields(client: &Client) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", client.client_id.clone()),
        ("name", client.name.clone()),
        ("type", client.app_type.as_str().to_string()),
        ("auth method", client.token_endpoint_auth_method.clone()),
        ("callbacks", list_or_none(&client.callbacks)),
        ("web origins", list_or_none(&client.web_origins)),
        ("logout URLs", list_or_none(&client.allowed_logout_urls)),
        ("grant types", list_or_none(&client.grant_types)),
        (
            "party",
            if client.is_first_party {
                "first (no consent page)"
            } else {
                "third (users consent)"
            }
            .to_string(),
        ),
        (
            "allowed APIs",
            client
                .allowed_apis
                .as_deref()
                .map_or_else(|| "all".to_string(), list_or_none),
        ),
    ]
}

pub fn grant_fields(grant: &ClientGrant) -> Vec<(&'static str, String)> {
    vec![
        ("id", grant.id.clone()),
        ("client_id", grant.client_id.clone()),
        ("audience", grant.audience.clone()),
        ("scope", list_or_none(&grant.scope)),
    ]
}

pub fn user_fields(user: &User) -> Vec<(&'static str, String)> {
    vec![
        ("user_id", user.user_id.clone()),
        ("email", user.email.clone()),
        ("email verified", yes_no(user.email_verified)),
        ("name", user.name.clone()),
        ("nickname", user.nickname.clone()),
        ("blocked", yes_no(user.blocked)),
        ("created", rfc3339(user.created_at)),
        (
            "last login",
            user.last_login
                .map(rfc3339)
                .unwrap_or_else(|| "never".into()),
        ),
        ("logins", user.logins_count.to_string()),
    ]
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{AppType, TokenDialect};

    #[test]
    fn tables_align() {
        let text = table(
            &["ID", "NAME"],
            &[
                vec!["a".into(), "first".into()],
                vec!["long-id".into(), "x".into()],
            ],
        );
        assert_eq!(text, "ID       NAME\na        first\nlong-id  x\n");
    }

    #[test]
    fn shapes_are_auth0_shapes() {
        let api = ResourceServer {
            id: "5f0c".into(),
            name: "API".into(),
            identifier: "https://api".into(),
            signing_alg: "RS256".into(),
            token_lifetime: 86400,
            allow_offline_access: false,
            token_dialect: TokenDialect::AccessToken,
            enforce_policies: false,
            scopes: vec![Scope {
                value: "read".into(),
                description: "Read".into(),
            }],
            created_at: 0,
            updated_at: 0,
        };
        let json = serde_json::to_value(resource_server(&api)).unwrap();
        assert_eq!(
            json["scopes"],
            serde_json::json!([{"value": "read", "description": "Read"}])
        );
        assert_eq!(
            json["skip_consent_for_verifiable_first_party_clients"],
            true
        );

        let app = Client {
            client_id: "abc".into(),
            name: "App".into(),
            app_type: AppType::NonInteractive,
            secret_hash: Some(vec![1]),
            token_endpoint_auth_method: "client_secret_post".into(),
            callbacks: vec![],
            web_origins: vec![],
            allowed_logout_urls: vec![],
            grant_types: vec!["client_credentials".into()],
            is_first_party: true,
            allowed_apis: None,
            refresh: tessera_core::RefreshPolicy::default(),
            created_at: 0,
            updated_at: 0,
        };
        let without = serde_json::to_value(client(&app, None)).unwrap();
        assert!(without.get("client_secret").is_none());
        assert_eq!(without["app_type"], "non_interactive");
        assert_eq!(without["jwt_configuration"]["alg"], "RS256");
        assert_eq!(without["allowed_apis"], serde_json::Value::Null);
        let with = serde_json::to_value(client(&app, Some("s"))).unwrap();
        assert_eq!(with["client_secret"], "s");

        let person = User {
            user_id: "auth0|00ff".into(),
            connection: "Username-Password-Authentication".into(),
            email: "a@example.com".into(),
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
        };
        let json = serde_json::to_value(user(&person)).unwrap();
        assert_eq!(json["created_at"], "1970-01-01T00:00:00.000Z");
        assert!(json.get("last_login").is_none());
        assert_eq!(
            json["identities"],
            serde_json::json!([{"connection": "Username-Password-Authentication", "user_id": "00ff", "provider": "auth0", "isSocial": false}])
        );
    }
}

// ---- roles and permissions (Auth0 Management API shapes) ------------------------------------

#[derive(Debug, Serialize)]
pub struct RoleJson<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
}

pub fn role(role: &Role) -> RoleJson<'_> {
    RoleJson {
        id: &role.id,
        name: &role.name,
        description: &role.description,
    }
}

#[derive(Debug, Serialize)]
pub struct PermissionJson<'a> {
    pub permission_name: &'a str,
    pub resource_server_identifier: &'a str,
}

pub fn permission(permission: &Permission) -> PermissionJson<'_> {
    PermissionJson {
        permission_name: &permission.permission,
        resource_server_identifier: &permission.audience,
    }
}

/// Permissions as an aligned table (API, permission).
pub fn print_permissions(permissions: &[Permission]) {
    let rows: Vec<Vec<String>> = permissions
        .iter()
        .map(|p| vec![p.audience.clone(), p.permission.clone()])
        .collect();
    print_table(&["API", "PERMISSION"], &rows);
}
