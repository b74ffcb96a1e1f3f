//! Who may use the dashboard (`<issuer>admin/`): the system roles "Tessera Admin" and
//! "Tessera Viewer" (`tessera_core::system::SYSTEM_ROLES`), which hold the Management
//! API's permissions, and the dashboard's own application (`DASHBOARD_CLIENT_ID`), an
//! OIDC client of this server. [`ensure`] registers them at start and brings them back to
//! what this version defines; the checks below keep administrators (the Management API,
//! the CLI) from changing them. Users are given the roles like any other
//! (`tessera admins add`, `POST /api/v2/roles/{id}/users`).

use std::collections::BTreeMap;

use tessera_core::system::{self, SYSTEM_ROLES, SystemRole};
use tessera_core::{Client, Permission};
use tessera_store::{ClientUpdate, Store, StoreError};

use crate::AppState;
use crate::management::ApiError;

/// Registers the system roles with their permissions and the dashboard's application
/// when absent, and repairs them when they differ from this version's. Runs after
/// `management::ensure_management_api` (the roles' permissions name that API).
/// Idempotent; another node doing the same at once is fine.
pub async fn ensure(
    store: &Store,
    issuer: &str,
    dashboard_base: &str,
    now: i64,
) -> Result<(), StoreError> {
    for role in SYSTEM_ROLES {
        ensure_role(store, role, now).await?;
        ensure_role_permissions(store, role, issuer).await?;
    }
    ensure_dashboard_client(store, dashboard_base, now).await
}

/// The row of `role` (name and description), without its permissions: enough for
/// `tessera admins add` to assign it before a server of this version has started.
pub async fn ensure_role(store: &Store, role: SystemRole, now: i64) -> Result<(), StoreError> {
    let existing = match store.find_role(role.id).await? {
        Some(existing) if existing.id == role.id => existing,
        _ => {
            match store.create_role(&role.role(now)).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
            // A conflict: another node registered it, or another role has its name.
            match store.find_role(role.id).await? {
                Some(existing) if existing.id == role.id => existing,
                _ => {
                    return Err(StoreError::Conflict(
                        "a role named \"Tessera Admin\" or \"Tessera Viewer\" that is not \
                         Tessera's: rename it (tessera roles / PATCH /api/v2/roles/{id})",
                    ));
                }
            }
        }
    };
    if existing.name != role.name || existing.description != role.description {
        match store
            .update_role(role.id, Some(role.name), Some(role.description), now)
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Gives `role` exactly the permissions this version defines: adds the missing ones,
/// takes back any other (of any API).
async fn ensure_role_permissions(
    store: &Store,
    role: SystemRole,
    issuer: &str,
) -> Result<(), StoreError> {
    let wanted = role.permissions(issuer);
    let held = store.role_permissions(role.id).await?;
    let by_api = |list: Vec<&Permission>| {
        let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in list {
            grouped
                .entry(p.audience.clone())
                .or_default()
                .push(p.permission.clone());
        }
        grouped
    };
    let missing = by_api(wanted.iter().filter(|p| !held.contains(p)).collect());
    let extra = by_api(held.iter().filter(|p| !wanted.contains(p)).collect());
    for (audience, permissions) in missing {
        store
            .add_role_permissions(role.id, &audience, &permissions)
            .await?;
    }
    for (audience, permissions) in extra {
        store
            .remove_role_permissions(role.id, &audience, &permissions)
            .await?;
    }
    Ok(())
}

/// Registers the dashboard's application, or gives it back this version's settings.
async fn ensure_dashboard_client(
    store: &Store,
    dashboard_base: &str,
    now: i64,
) -> Result<(), StoreError> {
    let wanted = system::dashboard_client(dashboard_base, now);
    let Some(existing) = store.find_client(&wanted.client_id).await? else {
        return match store.create_client(&wanted).await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(error) => Err(error),
        };
    };
    // The type and the absence of a secret cannot be changed in place.
    if existing.app_type != wanted.app_type || existing.secret_hash.is_some() {
        match store.delete_client(&wanted.client_id).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
        return match store.create_client(&wanted).await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(error) => Err(error),
        };
    }
    if !same_settings(&existing, &wanted) {
        let update = ClientUpdate {
            name: Some(wanted.name),
            callbacks: Some(wanted.callbacks),
            web_origins: Some(wanted.web_origins),
            allowed_logout_urls: Some(wanted.allowed_logout_urls),
            grant_types: Some(wanted.grant_types),
            secret_hash: None,
            is_first_party: Some(wanted.is_first_party),
            allowed_apis: Some(wanted.allowed_apis),
            refresh: Some(wanted.refresh),
            token_endpoint_auth_method: Some(wanted.token_endpoint_auth_method),
            profile: Some(wanted.profile),
            require_pushed_authorization_requests: Some(
                wanted.require_pushed_authorization_requests,
            ),
            private_key_jwt_credentials: Some(wanted.private_key_jwt_credentials),
            oidc_logout: Some(wanted.oidc_logout),
        };
        match store.update_client(&existing.client_id, &update, now).await {
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Whether two applications have the same settings (timestamps aside).
fn same_settings(a: &Client, b: &Client) -> bool {
    Client {
        created_at: 0,
        updated_at: 0,
        ..a.clone()
    } == Client {
        created_at: 0,
        updated_at: 0,
        ..b.clone()
    }
}

/// What a user may do in the dashboard: their permissions on the Management API, through
/// roles and given directly (one indexed query, the one RBAC token issuance uses).
pub(crate) async fn dashboard_permissions(
    state: &AppState,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    management_permissions(state.store(), state.issuer(), user_id).await
}

/// A user's permissions on the Management API of `issuer`, through roles and direct
/// ones, sorted and without duplicates.
pub async fn management_permissions(
    store: &Store,
    issuer: &str,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    let audience = system::management_api_identifier(issuer);
    let permissions = store.user_permissions(user_id, Some(&audience)).await?;
    Ok(permissions.into_iter().map(|p| p.permission).collect())
}

/// Refuses any change to a system application (the dashboard's): it is Tessera's.
pub fn refuse_system_client(client_id: &str) -> Result<(), &'static str> {
    if system::is_system_client(client_id) {
        return Err("This application is Tessera's (its dashboard): it cannot be changed");
    }
    Ok(())
}

/// Refuses deleting a system role or changing its permissions. Its users may change:
/// assigning one is how an administrator is made.
pub fn refuse_system_role(role_id: &str) -> Result<(), &'static str> {
    if system::system_role(role_id).is_some() {
        return Err(
            "This role is Tessera's (it says who may use the dashboard): it cannot be deleted \
             and its permissions cannot be changed; assign it to users or remove it from them",
        );
    }
    Ok(())
}

/// Refuses renaming a system role or changing its description. Repeating what it holds
/// is accepted: a read-modify-write of what `GET` returned (auth0-deploy-cli's import of
/// an export) must go through.
pub fn refuse_system_role_change(
    role_id: &str,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<(), &'static str> {
    let Some(role) = system::system_role(role_id) else {
        return Ok(());
    };
    if name.is_some_and(|n| n != role.name) || description.is_some_and(|d| d != role.description) {
        return Err(
            "This role is Tessera's (it says who may use the dashboard): its name and \
             description cannot be changed",
        );
    }
    Ok(())
}

/// The Management API's answer to a refused change of a system role or application:
/// 403 `operation_not_supported`, as for the Management API itself.
pub(crate) fn unchangeable(why: &'static str) -> ApiError {
    ApiError::forbidden(why, "operation_not_supported")
}

/// Whether administrators must pass a second factor to sign in to the dashboard, as the
/// dashboard's Settings page and `tessera admins mfa` show it.
pub async fn mfa_required(store: &Store) -> Result<bool, StoreError> {
    let guardian = crate::mfa::Guardian::of(&store.guardian_settings().await?);
    Ok(guardian.administrators && guardian.otp)
}

/// Requires (or stops requiring) a second factor of administrators at the dashboard's
/// sign-in. Requiring it turns authenticator apps (`otp`) on too, so an administrator can
/// always enroll one; other applications are not affected unless the tenant's policy asks
/// every login. The dashboard and the CLI both change it here.
pub async fn require_mfa(store: &Store, required: bool) -> Result<(), StoreError> {
    let mut patch = tessera_core::Metadata::new();
    patch.insert(
        crate::mfa::ADMINISTRATORS.to_string(),
        serde_json::Value::Bool(required),
    );
    if required {
        patch.insert(crate::mfa::OTP.to_string(), serde_json::Value::Bool(true));
    }
    store.patch_guardian_settings(&patch).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_system_identities_are_refused() {
        assert!(refuse_system_client(system::DASHBOARD_CLIENT_ID).is_err());
        assert!(refuse_system_client("0123456789abcdefABCDEF0123456789").is_ok());
        assert!(refuse_system_role(system::ADMIN_ROLE.id).is_err());
        assert!(refuse_system_role(system::VIEWER_ROLE.id).is_err());
        assert!(refuse_system_role("rol_0123456789abcdef").is_ok());
        let viewer = system::VIEWER_ROLE;
        assert!(refuse_system_role_change(viewer.id, None, None).is_ok());
        assert!(
            refuse_system_role_change(viewer.id, Some(viewer.name), Some(viewer.description))
                .is_ok()
        );
        assert!(refuse_system_role_change(viewer.id, Some("Viewers"), None).is_err());
        assert!(refuse_system_role_change(viewer.id, None, Some("")).is_err());
        assert!(refuse_system_role_change("rol_0123456789abcdef", Some("x"), None).is_ok());
    }
}
