//! A user's second factors as administrators see and reset them: the one place the
//! Management API (`/users/{id}/authentication-methods`, `DELETE /users/{id}/authenticators`),
//! the dashboard (a user's Multi-factor tab, through the Management API's operations) and
//! the CLI (`tessera users factors`, `tessera users reset-factors`) take them from.

use serde_json::Value;
use tessera_store::{Store, StoreResult};

/// The user's confirmed second factors, in the Management API's `authentication-methods`
/// shape (an enrollment not yet confirmed is not one). A user has a handful at most.
/// WebAuthn credentials (security keys, passkeys) come after the codes.
pub async fn factors(store: &Store, user_id: &str) -> StoreResult<Vec<Value>> {
    let mut list: Vec<Value> = store
        .authenticators_of(user_id)
        .await?
        .iter()
        .filter(|a| a.confirmed)
        .map(crate::mfa::method_json)
        .collect();
    let credentials = store.webauthn_credentials_of(user_id).await?;
    list.extend(credentials.iter().map(crate::mfa::credential_json));
    Ok(list)
}

/// Every second factor of the user goes, and the count of wrong codes and the remembered
/// browsers with them: the user enrolls again at the next login that needs a second
/// factor. Returns how many factors went.
pub async fn reset(store: &Store, user_id: &str) -> StoreResult<u64> {
    let deleted = store.delete_authenticators_of(user_id).await?;
    store.clear_mfa_failures(user_id).await?;
    store.forget_remembered_browsers(user_id).await?;
    tracing::info!(%user_id, "second factors reset by an administrator");
    Ok(deleted)
}

/// Every browser the user chose to remember asks for the second factor again.
pub async fn forget_browsers(store: &Store, user_id: &str) -> StoreResult<u64> {
    let forgotten = store.forget_remembered_browsers(user_id).await?;
    tracing::info!(%user_id, forgotten, "remembered browsers forgotten by an administrator");
    Ok(forgotten)
}
