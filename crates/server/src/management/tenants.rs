//! `/api/v2/tenants/settings`: the tenant's settings, as auth0-deploy-cli's `tenant` reads
//! and writes them. `PATCH` sets the members it names (`null` removes one) and keeps the
//! others; the members and their types are `tessera_core::validate::tenant_settings`'s.
//! `default_audience` must name an API: it becomes the audience of a request that names
//! none (`crate::grant::audience`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tessera_core::validate::{self, TENANT_SETTINGS};

use super::auth::require;
use super::body;
use super::error::{ApiError, ApiResult};
use super::paging::Query;
use crate::AppState;

pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:tenant_settings"]).await?;
    let fields = Query::parse(query.as_deref(), &["fields", "include_fields"])?.field_filter()?;
    let settings = state.store().tenant_settings().await?;
    Ok(Json(fields.apply(Value::Object(settings))).into_response())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:tenant_settings"]).await?;
    let patch = body::object(&headers, body, &TENANT_SETTINGS)?.into_map();
    validate::tenant_settings(&patch).map_err(ApiError::invalid_body)?;
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
            )));
        }
    }
    let settings = state.store().patch_tenant_settings(&patch).await?;
    Ok(Json(Value::Object(settings)).into_response())
}
