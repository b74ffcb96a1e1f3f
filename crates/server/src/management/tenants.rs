//! `/api/v2/tenants/settings`: the tenant's settings, as auth0-deploy-cli's `tenant` reads
//! and writes them. `PATCH` sets the members it names (`null` removes one) and keeps the
//! others; the members and their types are `tessera_core::validate::tenant_settings`'s.
//! `default_audience` must name an API: it becomes the audience of a request that names
//! none (`crate::grant::audience`).
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http` and the dashboard alike.

use serde_json::{Map, Value};
use tessera_core::Metadata;
use tessera_core::validate::{self, TENANT_SETTINGS};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;

pub(crate) const READ: &[&str] = &["read:tenant_settings"];
pub(crate) const UPDATE: &[&str] = &["update:tenant_settings"];
pub(crate) const FIELDS: &[&str] = &TENANT_SETTINGS;

/// The tenant's settings, every member Tessera keeps.
pub(crate) async fn get(state: &AppState, principal: &Principal) -> ApiResult<Metadata> {
    principal.require(READ)?;
    Ok(state.store().tenant_settings().await?)
}

/// Sets the members `fields` names (as in `FIELDS`; `null` removes one), keeps the others
/// and returns them all.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    fields: Fields,
) -> ApiResult<Metadata> {
    principal.require(UPDATE)?;
    let patch = fields.into_map();
    // Member by member, so that an error names the member it is about.
    for (key, value) in &patch {
        let one = Map::from_iter([(key.clone(), value.clone())]);
        validate::tenant_settings(&one).map_err(|why| ApiError::invalid_body(why).about(key))?;
    }
    if let Some(audience) = patch
        .get("default_audience")
        .and_then(Value::as_str)
        .filter(|audience| !audience.is_empty())
    {
        let known = state
            .store()
            .find_resource_server(audience)
            .await?
            .is_some_and(|api| api.identifier == audience);
        if !known {
            let shown: String = audience.chars().take(100).collect();
            return Err(ApiError::invalid_body(format!(
                "default_audience {shown:?} is not the identifier of an API"
            ))
            .about("default_audience"));
        }
    }
    let patched = state.store().patch_tenant_settings(&patch).await?;
    state.forget_tenant();
    Ok(patched)
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{RawQuery, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use serde_json::Value;

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::ApiResult;
    use super::super::paging::Query;
    use super::{FIELDS, READ, UPDATE};
    use crate::AppState;

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let fields =
            Query::parse(query.as_deref(), &["fields", "include_fields"])?.field_filter()?;
        let settings = super::get(&state, &principal).await?;
        Ok(Json(fields.apply(Value::Object(settings))).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, FIELDS)?;
        let settings = super::update(&state, &principal, fields).await?;
        Ok(Json(Value::Object(settings)).into_response())
    }
}
