//! Multi-factor authentication through the Management API, in Auth0's shapes: the policy
//! (`/guardian/policies`), the factors (`/guardian/factors[/{name}]`), "Remember this
//! browser" (`/guardian/settings`; a user's remembered browsers are forgotten with
//! `POST /users/{id}/multifactor/actions/invalidate-remember-browser`), a user's
//! authentication methods (`/users/{id}/authentication-methods[/{method}]`), resetting them
//! (`DELETE /users/{id}/authenticators`) and a new recovery code
//! (`POST /users/{id}/recovery-code-regeneration`). What the settings mean is
//! `crate::mfa`'s; this module reads and writes them.

use serde_json::{Map, Value, json};
use tessera_store::{RECOVERY_CODE, StoreError};

use super::auth::Principal;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::clock::now;
use crate::mfa::{
    self, ALL_APPLICATIONS, DISPLAY_REMEMBER, INACTIVITY_TIMEOUT, OTP, OVERALL_TIMEOUT, RECOVERY,
    REMEMBER_DEFAULT, Remember, UNOFFERED, USER_VERIFICATION, USER_VERIFICATION_VALUES,
    WEBAUTHN_PLATFORM, WEBAUTHN_ROAMING,
};

pub(crate) const READ_FACTORS: &[&str] = &["read:guardian_factors"];
pub(crate) const UPDATE_FACTORS: &[&str] = &["update:guardian_factors"];
pub(crate) const READ_POLICIES: &[&str] = &["read:mfa_policies"];
pub(crate) const UPDATE_POLICIES: &[&str] = &["update:mfa_policies"];
pub(crate) const READ_METHODS: &[&str] = &["read:authentication_methods"];
pub(crate) const DELETE_METHODS: &[&str] = &["delete:authentication_methods"];
pub(crate) const DELETE_ENROLLMENTS: &[&str] = &["delete:guardian_enrollments"];
pub(crate) const REGENERATE: &[&str] = &["update:users"];

fn patch(members: impl IntoIterator<Item = (&'static str, Value)>) -> Map<String, Value> {
    members
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// `GET /guardian/factors`: every factor Auth0 names, enabled or not.
pub(crate) async fn factors(state: &AppState, principal: &Principal) -> ApiResult<Value> {
    principal.require(READ_FACTORS)?;
    let guardian = mfa::guardian(state).await?;
    let factor = |name: &str| {
        let mut factor =
            json!({"name": name, "enabled": guardian.enabled(name), "trial_expired": false});
        if name == WEBAUTHN_ROAMING {
            factor[USER_VERIFICATION] = json!(guardian.user_verification);
        }
        factor
    };
    let mut list: Vec<Value> = [OTP, RECOVERY, WEBAUTHN_ROAMING, WEBAUTHN_PLATFORM]
        .into_iter()
        .map(factor)
        .collect();
    list.extend(UNOFFERED.iter().copied().map(factor));
    Ok(Value::Array(list))
}

/// `PUT /guardian/factors/{name}` with `{"enabled": bool}` (and, for `webauthn-roaming`,
/// optionally `"user_verification": "discouraged"|"preferred"|"required"`, kept with the
/// factor). Factors Tessera does not offer may be turned off, never on.
pub(crate) async fn set_factor(
    state: &AppState,
    principal: &Principal,
    name: &str,
    body: &Value,
) -> ApiResult<Value> {
    principal.require(UPDATE_FACTORS)?;
    let object = body.as_object();
    let verification = object.and_then(|o| o.get(USER_VERIFICATION));
    let members = 1 + usize::from(verification.is_some() && name == WEBAUTHN_ROAMING);
    let Some(enabled) = object
        .filter(|o| o.len() == members)
        .and_then(|o| o.get("enabled"))
        .and_then(Value::as_bool)
    else {
        return Err(ApiError::invalid_body("Expected {\"enabled\": true|false}").about("enabled"));
    };
    let verification = match verification.filter(|_| name == WEBAUTHN_ROAMING) {
        None => None,
        Some(value) => match value
            .as_str()
            .filter(|v| USER_VERIFICATION_VALUES.contains(v))
        {
            Some(value) => Some(value),
            None => {
                return Err(ApiError::invalid_body(
                    "user_verification is one of discouraged, preferred, required",
                )
                .about(USER_VERIFICATION));
            }
        },
    };
    match name {
        OTP | RECOVERY | WEBAUTHN_ROAMING | WEBAUTHN_PLATFORM => {
            let key = [OTP, RECOVERY, WEBAUTHN_ROAMING, WEBAUTHN_PLATFORM]
                .into_iter()
                .find(|known| *known == name)
                .expect("matched above");
            let mut settings = patch([(key, json!(enabled))]);
            if let Some(value) = verification {
                settings.insert(USER_VERIFICATION.into(), json!(value));
            }
            patch_guardian(state, &settings).await?;
            if let Some(value) = verification {
                return Ok(json!({ "enabled": enabled, "user_verification": value }));
            }
        }
        other if UNOFFERED.contains(&other) => {
            if enabled {
                return Err(ApiError::forbidden(
                    format!("The {other} factor is not available in Tessera"),
                    "feature_not_enabled",
                ));
            }
        }
        _ => return Err(ApiError::not_found("Factor not found", "inexistent_factor")),
    }
    Ok(json!({ "enabled": enabled }))
}

/// `GET /guardian/policies`: `["all-applications"]` or `[]`.
pub(crate) async fn policies(state: &AppState, principal: &Principal) -> ApiResult<Value> {
    principal.require(READ_POLICIES)?;
    Ok(json!(mfa::guardian(state).await?.policies))
}

/// `PUT /guardian/policies` with `["all-applications"]` or `[]`.
pub(crate) async fn set_policies(
    state: &AppState,
    principal: &Principal,
    body: &Value,
) -> ApiResult<Value> {
    principal.require(UPDATE_POLICIES)?;
    let Some(list) = body.as_array() else {
        return Err(ApiError::invalid_body("Expected an array of policies"));
    };
    let mut policies = Vec::new();
    for policy in list {
        match policy.as_str() {
            Some(ALL_APPLICATIONS) if policies.is_empty() => policies.push(ALL_APPLICATIONS),
            _ => {
                return Err(ApiError::invalid_body(
                    "Policies are [] or [\"all-applications\"] in Tessera",
                ));
            }
        }
    }
    patch_guardian(state, &patch([("policies", json!(policies))])).await?;
    Ok(json!(policies))
}

/// Patches the tenant's Guardian settings, and forgets what this node kept of them before
/// the answer (other nodes hear of it from the database).
async fn patch_guardian(
    state: &AppState,
    patch: &tessera_core::Metadata,
) -> Result<(), StoreError> {
    state.store().patch_guardian_settings(patch).await?;
    state.forget_tenant();
    Ok(())
}

/// `GET /guardian/settings`: "Remember this browser" and its timeouts.
pub(crate) async fn settings(state: &AppState, principal: &Principal) -> ApiResult<Value> {
    principal.require(READ_POLICIES)?;
    Ok(mfa::guardian(state).await?.remember.json())
}

/// `PUT /guardian/settings` with all four members, in Auth0's bounds.
pub(crate) async fn set_settings(
    state: &AppState,
    principal: &Principal,
    body: &Value,
) -> ApiResult<Value> {
    principal.require(UPDATE_POLICIES)?;
    let remember = Remember::parse(body).map_err(ApiError::invalid_body)?;
    patch_guardian(
        state,
        &patch([
            (DISPLAY_REMEMBER, json!(remember.display_checkbox)),
            (REMEMBER_DEFAULT, json!(remember.default_value)),
            (INACTIVITY_TIMEOUT, json!(remember.inactivity)),
            (OVERALL_TIMEOUT, json!(remember.overall)),
        ]),
    )
    .await?;
    Ok(remember.json())
}

/// `POST /users/{id}/multifactor/actions/invalidate-remember-browser`: every browser the
/// user chose to remember asks the second factor again.
pub(crate) async fn forget_browsers(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
) -> ApiResult<()> {
    principal.require(REGENERATE)?;
    existing_user(state, user_id).await?;
    crate::mfa_admin::forget_browsers(state.store(), user_id).await?;
    Ok(())
}

async fn existing_user(state: &AppState, user_id: &str) -> ApiResult<()> {
    match state.store().find_user(user_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(
            "The user does not exist.",
            "inexistent_user",
        )),
    }
}

/// `GET /users/{id}/authentication-methods`: the user's confirmed second factors, then
/// their WebAuthn credentials (each list bounded in the store).
pub(crate) async fn methods(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
) -> ApiResult<Vec<Value>> {
    principal.require(READ_METHODS)?;
    existing_user(state, user_id).await?;
    Ok(crate::mfa_admin::factors(state.store(), user_id).await?)
}

fn method_not_found() -> ApiError {
    ApiError::not_found(
        "The authentication method does not exist.",
        "inexistent_authentication_method",
    )
}

/// `GET /users/{id}/authentication-methods/{method}`.
pub(crate) async fn method(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    id: &str,
) -> ApiResult<Value> {
    methods(state, principal, user_id)
        .await?
        .into_iter()
        .find(|method| method["id"] == id)
        .ok_or_else(method_not_found)
}

/// `DELETE /users/{id}/authentication-methods/{method}`.
pub(crate) async fn delete_method(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    id: &str,
) -> ApiResult<()> {
    principal.require(DELETE_METHODS)?;
    existing_user(state, user_id).await?;
    match state.store().delete_authenticator(user_id, id).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(method_not_found()),
        Err(other) => Err(other.into()),
    }
}

/// `DELETE /users/{id}/authentication-methods` (scope `delete:authentication_methods`)
/// and `DELETE /users/{id}/authenticators` (`delete:guardian_enrollments`): every second
/// factor of the user goes, and the count of wrong codes with them. The user enrolls again
/// at the next login that needs a second factor.
pub(crate) async fn reset(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
    scopes: &[&str],
) -> ApiResult<()> {
    principal.require(scopes)?;
    existing_user(state, user_id).await?;
    crate::mfa_admin::reset(state.store(), user_id).await?;
    Ok(())
}

/// `POST /users/{id}/recovery-code-regeneration`: a new recovery code, shown this once;
/// the old one stops working. Only for a user with an authenticator enrolled.
pub(crate) async fn regenerate_recovery_code(
    state: &AppState,
    principal: &Principal,
    user_id: &str,
) -> ApiResult<String> {
    principal.require(REGENERATE)?;
    existing_user(state, user_id).await?;
    // A recovery code stands in for an enrolled factor: an authenticator app or a key.
    let authenticators = state.store().authenticators_of(user_id).await?;
    let has_factor = mfa::confirmed_totp(&authenticators).is_some()
        || !state
            .store()
            .webauthn_credentials_of(user_id)
            .await?
            .is_empty();
    if !has_factor {
        return Err(ApiError::bad_request(
            "The user has no second factor enrolled; a recovery code comes with one",
        ));
    }
    let code = mfa::new_recovery_code();
    let id = mfa::authenticator_id(RECOVERY_CODE);
    state
        .store()
        .regenerate_recovery_code(user_id, (&id, &mfa::recovery_code_hash(&code)), now())
        .await?;
    Ok(code)
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::json;

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::ApiResult;
    use super::*;

    pub(crate) async fn factors(
        State(state): State<AppState>,
        headers: HeaderMap,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_FACTORS).await?;
        Ok(Json(super::factors(&state, &principal).await?).into_response())
    }

    pub(crate) async fn set_factor(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(name): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE_FACTORS).await?;
        let value = body::json(&headers, body)?;
        let answer = super::set_factor(&state, &principal, &name, &value).await?;
        Ok(Json(answer).into_response())
    }

    pub(crate) async fn policies(
        State(state): State<AppState>,
        headers: HeaderMap,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_POLICIES).await?;
        Ok(Json(super::policies(&state, &principal).await?).into_response())
    }

    pub(crate) async fn set_policies(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE_POLICIES).await?;
        let value = body::json(&headers, body)?;
        Ok(Json(super::set_policies(&state, &principal, &value).await?).into_response())
    }

    pub(crate) async fn settings(
        State(state): State<AppState>,
        headers: HeaderMap,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_POLICIES).await?;
        Ok(Json(super::settings(&state, &principal).await?).into_response())
    }

    pub(crate) async fn set_settings(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE_POLICIES).await?;
        let value = body::json(&headers, body)?;
        Ok(Json(super::set_settings(&state, &principal, &value).await?).into_response())
    }

    pub(crate) async fn forget_browsers(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(user_id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, REGENERATE).await?;
        super::forget_browsers(&state, &principal, &user_id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    pub(crate) async fn methods(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(user_id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_METHODS).await?;
        Ok(Json(super::methods(&state, &principal, &user_id).await?).into_response())
    }

    pub(crate) async fn method(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path((user_id, id)): Path<(String, String)>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_METHODS).await?;
        Ok(Json(super::method(&state, &principal, &user_id, &id).await?).into_response())
    }

    pub(crate) async fn delete_method(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path((user_id, id)): Path<(String, String)>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE_METHODS).await?;
        super::delete_method(&state, &principal, &user_id, &id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    pub(crate) async fn delete_methods(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(user_id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE_METHODS).await?;
        super::reset(&state, &principal, &user_id, DELETE_METHODS).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    pub(crate) async fn delete_authenticators(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(user_id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE_ENROLLMENTS).await?;
        super::reset(&state, &principal, &user_id, DELETE_ENROLLMENTS).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    pub(crate) async fn regenerate_recovery_code(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(user_id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, REGENERATE).await?;
        let code = super::regenerate_recovery_code(&state, &principal, &user_id).await?;
        Ok(Json(json!({ "recovery_code": code })).into_response())
    }
}
