//! `/api/v2/emails/provider`: the tenant's email provider in Auth0's shape (`name` "smtp",
//! `enabled`, `default_from_address`, `credentials {smtp_host, smtp_port, smtp_user,
//! smtp_pass}`, `settings`). The password is sealed before it is stored and never shown:
//! `GET` returns the other credentials, and by default only `name` and `enabled`, as
//! Auth0's. When enabled, mail goes through it instead of `--smtp-url` (`crate::email_provider`).
//! None configured: 404 `inexistent_email_provider`, which auth0-deploy-cli reads as "none".

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tessera_core::validate::{self, EMAIL_PROVIDER_MEMBERS};
use tessera_store::{EmailProvider, StoreError};

use super::auth::require;
use super::body;
use super::error::{ApiError, ApiResult};
use super::paging::Query;
use crate::AppState;
use crate::email_provider::{seal_password, transport};

fn not_found() -> ApiError {
    ApiError::not_found(
        "There is no configured email provider",
        "inexistent_email_provider",
    )
}

/// The body's members checked, and the password taken out of its credentials.
fn members_and_password(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(Map<String, Value>, Option<String>)> {
    let mut members = body::object(headers, body, &EMAIL_PROVIDER_MEMBERS)?.into_map();
    validate::email_provider(&members).map_err(ApiError::invalid_body)?;
    let password = members
        .get_mut("credentials")
        .and_then(Value::as_object_mut)
        .and_then(|credentials| credentials.remove("smtp_pass"))
        .and_then(|value| value.as_str().map(str::to_string));
    Ok((members, password))
}

/// The transport must build from what would be stored; the error never quotes a password.
fn usable(state: &AppState, provider: &EmailProvider) -> ApiResult<()> {
    let fallback_from = state.config().mail.as_ref().map(|mail| mail.sender());
    transport(
        provider,
        &state.config().master_key,
        fallback_from.as_deref(),
    )
    .map(|_| ())
    .map_err(ApiError::invalid_body)
}

fn shown(provider: &EmailProvider) -> Value {
    Value::Object(provider.document.clone())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:email_provider"]).await?;
    let query = Query::parse(query.as_deref(), &["fields", "include_fields"])?;
    let asked = query
        .get("fields")
        .is_some_and(|fields| !fields.trim().is_empty());
    let fields = query.field_filter()?;
    let provider = state
        .store()
        .email_provider()
        .await?
        .ok_or_else(not_found)?;
    let document = shown(&provider);
    if asked {
        return Ok(Json(fields.apply(document)).into_response());
    }
    // Auth0 answers `name` and `enabled` unless other fields are asked for.
    let brief: Map<String, Value> = provider
        .document
        .into_iter()
        .filter(|(key, _)| key == "name" || key == "enabled")
        .collect();
    Ok(Json(Value::Object(brief)).into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["create:email_provider"]).await?;
    let (mut members, password) = members_and_password(&headers, body)?;
    for required in ["name", "credentials"] {
        if !members.contains_key(required) {
            return Err(ApiError::invalid_body(format!(
                "Missing required property: {required}"
            )));
        }
    }
    members.entry("enabled").or_insert(Value::Bool(true));
    let provider = EmailProvider {
        document: members,
        sealed_password: password
            .as_deref()
            .map(|password| seal_password(&state.config().master_key, password)),
    };
    usable(&state, &provider)?;
    match state.store().create_email_provider(&provider).await {
        Ok(()) => {
            state.forget_tenant();
            Ok((StatusCode::CREATED, Json(shown(&provider))).into_response())
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "An email provider is already configured: change it with PATCH",
            "conflict",
        )),
        Err(error) => Err(error.into()),
    }
}

pub(crate) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:email_provider"]).await?;
    let (patch, password) = members_and_password(&headers, body)?;
    let sealed = password
        .as_deref()
        .map(|password| seal_password(&state.config().master_key, password));
    // What the patch would make, checked before it is written.
    let mut candidate = state
        .store()
        .email_provider()
        .await?
        .ok_or_else(not_found)?;
    for (key, value) in &patch {
        candidate.document.insert(key.clone(), value.clone());
    }
    if let Some(sealed) = &sealed {
        candidate.sealed_password = Some(sealed.clone());
    }
    usable(&state, &candidate)?;
    match state
        .store()
        .patch_email_provider(&patch, sealed.as_deref())
        .await
    {
        Ok(provider) => {
            state.forget_tenant();
            Ok(Json(shown(&provider)).into_response())
        }
        Err(StoreError::NotFound(_)) => Err(not_found()),
        Err(error) => Err(error.into()),
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    require(&state, &headers, &["delete:email_provider"]).await?;
    match state.store().delete_email_provider().await {
        Ok(()) => {
            state.forget_tenant();
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(StoreError::NotFound(_)) => Err(not_found()),
        Err(error) => Err(error.into()),
    }
}
