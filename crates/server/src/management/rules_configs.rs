//! `/api/v2/rules-configs`: the `configuration` every Rule sees. Values are sealed as
//! they arrive and never shown again: a list names the keys only.

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::actions_admin as policy;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:rules_configs"];
pub(crate) const UPDATE: &[&str] = &["update:rules_configs"];
pub(crate) const DELETE: &[&str] = &["delete:rules_configs"];

fn key_of(key: &str) -> ApiResult<()> {
    policy::config_key(key).map_err(|why| ApiError::bad_request(why).about("key"))
}

pub(crate) async fn keys(state: &AppState, principal: &Principal) -> ApiResult<Vec<String>> {
    principal.require(READ)?;
    Ok(state.store().rules_config_keys().await?)
}

/// Sets `key` to the body's `value`.
pub(crate) async fn set(
    state: &AppState,
    principal: &Principal,
    key: &str,
    mut fields: Fields,
) -> ApiResult<()> {
    principal.require(UPDATE)?;
    key_of(key)?;
    let value = Fields::required("value", fields.string("value")?)?;
    policy::secret_value(key, &value).map_err(|why| ApiError::bad_request(why).about("value"))?;
    let sealed = policy::seal_config(&state.config().master_key, key, &value);
    state.store().set_rules_config(key, &sealed, now()).await?;
    state.action_programs().forget();
    Ok(())
}

pub(crate) async fn delete(state: &AppState, principal: &Principal, key: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    key_of(key)?;
    state
        .store()
        .delete_rules_config(key)
        .await
        .map_err(|error| match error {
            tessera_store::StoreError::NotFound(_) => {
                ApiError::not_found("The rules-config does not exist", "inexistent_rules_config")
            }
            other => other.into(),
        })?;
    state.action_programs().forget();
    Ok(())
}

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
    use super::{DELETE, READ, UPDATE};
    use crate::AppState;

    /// `GET /api/v2/rules-configs` → `[{key}]`.
    pub(crate) async fn list(
        State(state): State<AppState>,
        headers: HeaderMap,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let keys = super::keys(&state, &principal).await?;
        let shown: Vec<_> = keys.iter().map(|key| json!({ "key": key })).collect();
        Ok(Json(shown).into_response())
    }

    /// `PUT /api/v2/rules-configs/{key}` `{value}` → `{key}` (the value is not repeated).
    pub(crate) async fn set(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(key): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, &["value"])?;
        super::set(&state, &principal, &key, fields).await?;
        Ok(Json(json!({ "key": key })).into_response())
    }

    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(key): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::delete(&state, &principal, &key).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}
