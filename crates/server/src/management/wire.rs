//! The JSON shapes of Auth0's Management API v2, field names as Auth0 spells them.

use serde_json::{Value, json};
use tessera_core::claims::rfc3339;
use tessera_core::{Client, ClientGrant, Permission, ResourceServer, Role, User};

pub(crate) fn resource_server(api: &ResourceServer) -> Value {
    json!({
        "id": api.id,
        "name": api.name,
        "identifier": api.identifier,
        "scopes": api.scopes,
        "signing_alg": api.signing_alg,
        "token_lifetime": api.token_lifetime,
        "token_lifetime_for_web": api.token_lifetime,
        "allow_offline_access": api.allow_offline_access,
        "skip_consent_for_verifiable_first_party_clients": true,
        "token_dialect": api.token_dialect.as_str(),
        "enforce_policies": api.enforce_policies,
        "is_system": api.is_system(),
    })
}

/// An application. `secret` is the clear-text secret, passed only by create and
/// rotate-secret (Tessera stores a hash: it cannot show the secret again).
pub(crate) fn client(client: &Client, secret: Option<&str>) -> Value {
    let mut value = json!({
        "client_id": client.client_id,
        "tenant": tessera_core::DEFAULT_TENANT,
        "name": client.name,
        "app_type": client.app_type.as_str(),
        "is_first_party": client.is_first_party,
        "oidc_conformant": true,
        "callbacks": client.callbacks,
        "web_origins": client.web_origins,
        "allowed_logout_urls": client.allowed_logout_urls,
        "grant_types": client.grant_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "jwt_configuration": { "alg": "RS256", "lifetime_in_seconds": tessera_core::DEFAULT_ID_TOKEN_LIFETIME },
        "refresh_token": {
            "rotation_type": "rotating",
            "expiration_type": "expiring",
            "token_lifetime": client.refresh.token_lifetime,
            "idle_token_lifetime": client.refresh.idle_token_lifetime,
            "infinite_token_lifetime": false,
            "infinite_idle_token_lifetime": false,
            "leeway": client.refresh.reuse_interval,
        },
        "allowed_apis": client.allowed_apis,
        "is_token_endpoint_ip_header_trusted": false,
        "sso_disabled": false,
        "cross_origin_authentication": false,
        "custom_login_page_on": true,
    });
    if let Some(secret) = secret {
        value["client_secret"] = json!(secret);
    }
    value
}

pub(crate) fn client_grant(grant: &ClientGrant) -> Value {
    json!({
        "id": grant.id,
        "client_id": grant.client_id,
        "audience": grant.audience,
        "scope": grant.scope,
    })
}

pub(crate) fn user(user: &User) -> Value {
    // `auth0|5f1c…` → `5f1c…`: identities carry the id without the provider prefix.
    let id = user
        .user_id
        .split_once('|')
        .map_or(user.user_id.as_str(), |(_, id)| id);
    let mut value = json!({
        "user_id": user.user_id,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "nickname": user.nickname,
        "picture": user.picture,
        "blocked": user.blocked,
        "created_at": rfc3339(user.created_at),
        "updated_at": rfc3339(user.updated_at),
        "logins_count": user.logins_count,
        "identities": [{
            "connection": user.connection,
            "user_id": id,
            "provider": "auth0",
            "isSocial": false,
        }],
    });
    // Absent until the first login, as in Auth0.
    if let Some(last_login) = user.last_login {
        value["last_login"] = json!(rfc3339(last_login));
    }
    // Shown once set, as Auth0 shows them.
    if !user.user_metadata.is_empty() {
        value["user_metadata"] = Value::Object(user.user_metadata.clone());
    }
    if !user.app_metadata.is_empty() {
        value["app_metadata"] = Value::Object(user.app_metadata.clone());
    }
    value
}

pub(crate) fn role(role: &Role) -> Value {
    json!({
        "id": role.id,
        "name": role.name,
        "description": role.description,
    })
}

/// A permission as `/roles/{id}/permissions` and `/users/{id}/permissions` list it: the
/// description and name come from the API's scope (empty when the API no longer defines it).
pub(crate) fn permission(permission: &Permission, api: Option<&ResourceServer>) -> Value {
    let description = api
        .and_then(|api| api.scopes.iter().find(|s| s.value == permission.permission))
        .map_or("", |s| s.description.as_str());
    json!({
        "permission_name": permission.permission,
        "description": description,
        "resource_server_name": api.map_or("", |api| api.name.as_str()),
        "resource_server_identifier": permission.audience,
    })
}

/// A member of a role, as `/roles/{id}/users` lists it.
pub(crate) fn role_member(user: &User) -> Value {
    json!({
        "user_id": user.user_id,
        "email": user.email,
        "name": user.name,
        "picture": user.picture,
    })
}
