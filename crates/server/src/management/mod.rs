//! The Auth0 Management API v2 (first slice), under `/api/v2/`: resource servers,
//! clients, client grants, users, roles, actions and rules in Auth0's JSON shapes, for the node `auth0`
//! SDK's `ManagementClient`, Terraform and the Deploy CLI.
//!
//! Callers are machine-to-machine applications with a client grant for the Management
//! API, a system resource server (`<issuer>api/v2/`) registered at start
//! ([`ensure_management_api`]). `auth.rs` checks their tokens and scopes, `body.rs` and
//! `paging.rs` read bodies and query strings (lists are paged in SQL by the store),
//! `user_search.rs` reads `q` and `sort` of `GET /users`, `wire.rs` holds the shapes (the CLI's `--json`
//! prints them too), `error.rs` the
//! `{statusCode, error, message, errorCode}` errors. Every change goes through the store's
//! methods and the validation rules of `tessera_core::validate` the CLI uses too.
//!
//! Each resource module is a service layer: operations on `(state, principal, input)`
//! that check the principal's scope first (the routes in its `http` submodule and the
//! dashboard both call them), and its scope constants and body allow-lists.

mod absent;
pub(crate) mod actions;
pub(crate) mod attack_protection;
mod auth;
mod body;
pub(crate) mod client_grants;
pub(crate) mod clients;
pub(crate) mod connections;
mod email_provider;
mod email_templates;
mod error;
mod exports;
pub(crate) mod grants;
pub(crate) mod guardian;
pub(crate) mod identities;
mod jobs;
pub(crate) mod log_streams;
pub(crate) mod logs;
mod paging;
pub(crate) mod refresh_tokens;
pub(crate) mod resource_servers;
pub(crate) mod roles;
pub(crate) mod rules;
pub(crate) mod rules_configs;
pub(crate) mod sessions;
pub(crate) mod tenants;
mod tickets;
pub(crate) mod user_access;
pub(crate) mod user_search;
pub(crate) mod users;
mod verification_jobs;
pub mod wire;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use tessera_store::{ResourceServerUpdate, Store, StoreError};

use crate::{AppState, Route};
pub(crate) use auth::{Principal, acting_as};
pub(crate) use body::Fields;
pub(crate) use error::{ApiError, ApiResult};
pub(crate) use jobs::ImportQueue;

/// Registers the Management API as a system resource server of `issuer` if it is not
/// there yet, or gives it the name and scopes this version defines when an older version
/// registered it otherwise (both are Tessera's, nobody else may change them). Idempotent;
/// a concurrent registration by another node is fine.
pub(crate) async fn ensure_management_api(
    store: &Store,
    issuer: &str,
    now: i64,
) -> Result<(), StoreError> {
    let api = tessera_core::system::management_api(issuer, now);
    if let Some(existing) = store.find_resource_server(&api.identifier).await? {
        if existing.is_system() && (existing.scopes != api.scopes || existing.name != api.name) {
            let update = ResourceServerUpdate {
                name: Some(api.name),
                scopes: Some(api.scopes),
                ..Default::default()
            };
            match store
                .update_resource_server(&existing.id, &update, now)
                .await
            {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        return Ok(());
    }
    match store.create_resource_server(&api).await {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Where the Management API's routes are nested.
pub(crate) const PREFIX: &str = "/api/v2";

/// The Management API's routes, under `PREFIX` (see `crate::ROUTES`) — the resources
/// Tessera serves.
pub(crate) const ROUTES: &[Route] = &[
    ("/resource-servers", || {
        get(resource_servers::http::list).post(resource_servers::http::create)
    }),
    ("/resource-servers/{id}", || {
        get(resource_servers::http::get)
            .patch(resource_servers::http::update)
            .delete(resource_servers::http::delete)
    }),
    ("/clients", || {
        get(clients::http::list).post(clients::http::create)
    }),
    ("/clients/{id}", || {
        get(clients::http::get)
            .patch(clients::http::update)
            .delete(clients::http::delete)
    }),
    ("/clients/{id}/rotate-secret", || {
        post(clients::http::rotate_secret)
    }),
    ("/clients/{id}/credentials", || {
        get(clients::credentials::http::list).post(clients::credentials::http::create)
    }),
    ("/clients/{id}/credentials/{credential_id}", || {
        get(clients::credentials::http::get)
            .patch(clients::credentials::http::update)
            .delete(clients::credentials::http::delete)
    }),
    ("/client-grants", || {
        get(client_grants::http::list).post(client_grants::http::create)
    }),
    ("/client-grants/{id}", || {
        get(client_grants::http::get)
            .patch(client_grants::http::update)
            .delete(client_grants::http::delete)
    }),
    ("/grants", || {
        get(grants::http::list).delete(grants::http::delete_for_user)
    }),
    ("/grants/{id}", || delete(grants::http::delete)),
    ("/users", || {
        get(users::http::list).post(users::http::create)
    }),
    ("/users/{id}", || {
        get(users::http::get)
            .patch(users::http::update)
            .delete(users::http::delete)
    }),
    ("/users-by-email", || get(users::http::by_email)),
    ("/users/{id}/identities", || post(identities::http::link)),
    ("/users/{id}/identities/{provider}/{user_id}", || {
        delete(identities::http::unlink)
    }),
    ("/users/{id}/roles", || {
        get(user_access::http::roles)
            .post(user_access::http::assign_roles)
            .delete(user_access::http::remove_roles)
    }),
    ("/users/{id}/permissions", || {
        get(user_access::http::permissions)
            .post(user_access::http::add_permissions)
            .delete(user_access::http::remove_permissions)
    }),
    ("/roles", || {
        get(roles::http::list).post(roles::http::create)
    }),
    ("/roles/{id}", || {
        get(roles::http::get)
            .patch(roles::http::update)
            .delete(roles::http::delete)
    }),
    ("/roles/{id}/permissions", || {
        get(roles::http::permissions)
            .post(roles::http::add_permissions)
            .delete(roles::http::remove_permissions)
    }),
    ("/roles/{id}/users", || {
        get(roles::http::users).post(roles::http::assign_users)
    }),
    ("/connections", || {
        get(connections::http::list).post(connections::http::create)
    }),
    ("/connections/{id}", || {
        get(connections::http::get)
            .patch(connections::http::update)
            .delete(connections::http::delete)
    }),
    ("/connections/{id}/clients", || {
        get(connections::http::clients).patch(connections::http::update_clients)
    }),
    ("/guardian/factors", || get(guardian::http::factors)),
    ("/guardian/factors/{name}", || {
        put(guardian::http::set_factor)
    }),
    ("/guardian/policies", || {
        get(guardian::http::policies).put(guardian::http::set_policies)
    }),
    ("/guardian/settings", || {
        get(guardian::http::settings).put(guardian::http::set_settings)
    }),
    (
        "/users/{id}/multifactor/actions/invalidate-remember-browser",
        || post(guardian::http::forget_browsers),
    ),
    ("/users/{id}/authentication-methods", || {
        get(guardian::http::methods).delete(guardian::http::delete_methods)
    }),
    ("/users/{id}/authentication-methods/{method_id}", || {
        get(guardian::http::method).delete(guardian::http::delete_method)
    }),
    ("/users/{id}/authenticators", || {
        delete(guardian::http::delete_authenticators)
    }),
    ("/users/{id}/recovery-code-regeneration", || {
        post(guardian::http::regenerate_recovery_code)
    }),
    ("/attack-protection/brute-force-protection", || {
        get(attack_protection::http::settings).patch(attack_protection::http::update)
    }),
    ("/user-blocks", || {
        get(attack_protection::http::blocks).delete(attack_protection::http::lift)
    }),
    ("/user-blocks/{id}", || {
        get(attack_protection::http::blocks_of_user).delete(attack_protection::http::lift_of_user)
    }),
    ("/tenants/settings", || {
        get(tenants::http::get).patch(tenants::http::update)
    }),
    ("/email-templates", || post(email_templates::create)),
    ("/email-templates/{name}", || {
        get(email_templates::get)
            .put(email_templates::replace)
            .patch(email_templates::update)
    }),
    ("/tickets/email-verification", || {
        post(tickets::email_verification)
    }),
    ("/emails/provider", || {
        get(email_provider::get)
            .post(email_provider::create)
            .patch(email_provider::update)
            .delete(email_provider::delete)
    }),
    ("/jobs/users-imports", || {
        post(jobs::import_users).layer(DefaultBodyLimit::max(jobs::MAX_IMPORT_BODY))
    }),
    ("/jobs/users-exports", || post(exports::create)),
    ("/jobs/verification-email", || {
        post(verification_jobs::create)
    }),
    ("/jobs/{id}", || get(jobs::get)),
    ("/jobs/{id}/file", || get(exports::file)),
    ("/jobs/{id}/errors", || get(jobs::errors)),
    ("/actions/actions", || {
        get(actions::http::list)
            .post(actions::http::create)
            .layer(DefaultBodyLimit::max(actions::MAX_BODY))
    }),
    ("/actions/actions/{id}", || {
        get(actions::http::get)
            .patch(actions::http::update)
            .delete(actions::http::delete)
            .layer(DefaultBodyLimit::max(actions::MAX_BODY))
    }),
    ("/actions/actions/{id}/deploy", || {
        post(actions::http::deploy)
    }),
    ("/actions/actions/{id}/test", || post(actions::http::test)),
    ("/actions/actions/{id}/versions", || {
        get(actions::http::versions)
    }),
    ("/actions/actions/{id}/versions/{version_id}", || {
        get(actions::http::version)
    }),
    ("/actions/actions/{id}/versions/{version_id}/deploy", || {
        post(actions::http::redeploy)
    }),
    ("/actions/triggers", || get(actions::triggers::http::list)),
    ("/actions/triggers/{trigger_id}/bindings", || {
        get(actions::triggers::http::bindings).patch(actions::triggers::http::replace)
    }),
    ("/rules", || {
        get(rules::http::list)
            .post(rules::http::create)
            .layer(DefaultBodyLimit::max(actions::MAX_BODY))
    }),
    ("/rules/{id}", || {
        get(rules::http::get)
            .patch(rules::http::update)
            .delete(rules::http::delete)
            .layer(DefaultBodyLimit::max(actions::MAX_BODY))
    }),
    ("/logs", || get(logs::http::list)),
    ("/log-streams", || {
        get(log_streams::http::list).post(log_streams::http::create)
    }),
    ("/log-streams/{id}", || {
        get(log_streams::http::get)
            .patch(log_streams::http::update)
            .delete(log_streams::http::delete)
    }),
    ("/logs/{id}", || get(logs::http::get)),
    ("/users/{id}/logs", || get(logs::http::of_user)),
    ("/users/{id}/refresh-tokens", || {
        get(refresh_tokens::http::of_user).delete(refresh_tokens::http::delete_of_user)
    }),
    ("/refresh-tokens/{id}", || {
        get(refresh_tokens::http::get)
            .patch(refresh_tokens::http::update)
            .delete(refresh_tokens::http::delete)
    }),
    ("/users/{id}/sessions", || {
        get(sessions::http::of_user).delete(sessions::http::delete_of_user)
    }),
    ("/sessions/{id}", || {
        get(sessions::http::get)
            .patch(sessions::http::update)
            .delete(sessions::http::delete)
    }),
    ("/sessions/{id}/revoke", || post(sessions::http::revoke)),
    ("/rules-configs", || get(rules_configs::http::list)),
    ("/rules-configs/{key}", || {
        put(rules_configs::http::set).delete(rules_configs::http::delete)
    }),
];

/// Every route under `PREFIX`: [`ROUTES`], then the answers for the Auth0 features
/// Tessera does not have (`absent.rs`).
pub(crate) fn routes() -> Vec<Route> {
    let absent = absent::templates().map(|template| (template, absent::route as fn() -> _));
    ROUTES.iter().copied().chain(absent).collect()
}

/// The routes, to be nested under `PREFIX`.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    crate::routed(&routes())
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(axum::middleware::map_response(no_store))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::audit::management_writes,
        ))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not Found", None)
}

/// Responses may hold a client secret: never cached.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_older_registration_gets_the_new_name_and_scopes_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        let issuer = "https://id.example.com/";
        // As an earlier version registered it: without the role scopes.
        let mut old = tessera_core::system::management_api(issuer, 1);
        old.scopes.retain(|s| !s.value.contains("role"));
        old.name = "Tessera Management API".into();
        store.create_resource_server(&old).await.unwrap();

        ensure_management_api(&store, issuer, 2).await.unwrap();
        let api = store
            .find_resource_server(&old.identifier)
            .await
            .unwrap()
            .unwrap();
        assert!(api.defines_scope("update:roles"));
        assert!(api.defines_scope("delete:role_members"));
        assert_eq!(api.name, "Auth0 Management API");
        assert_eq!(api.updated_at, 2);
        ensure_management_api(&store, issuer, 3).await.unwrap();
        let again = store
            .find_resource_server(&old.identifier)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.updated_at, 2, "nothing to do the second time");
    }
}
