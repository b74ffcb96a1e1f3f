//! `/api/v2/email-templates`: the tenant's email templates in Auth0's shape (`template`,
//! `body`, `from`, `subject`, `syntax` "liquid", `resultUrl`, `urlLifetimeInSeconds`,
//! `includeEmailInRedirect`, `enabled`). Every one of Auth0's names may be stored; a name
//! never created answers 404, as on Auth0. Members are `tessera_core::validate::email_template`'s
//! rules; the Liquid of `body` and `subject` must render with the variables
//! `crate::email_templates` offers. What Tessera sends with them: `verify_email` (its
//! `enabled` also decides whether new accounts are mailed a link, `crate::accounts`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tessera_core::validate::{self, EMAIL_TEMPLATE_MEMBERS, EMAIL_TEMPLATE_NAMES};
use tessera_store::StoreError;

use super::auth::require;
use super::body;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::email_templates::{Part, check};

/// What `POST` and `PUT` must give (Auth0 also requires `from`; Tessera's default sender
/// stands in when it is absent).
const REQUIRED: [&str; 5] = ["template", "body", "subject", "syntax", "enabled"];

fn template_name(name: &str) -> ApiResult<&'static str> {
    EMAIL_TEMPLATE_NAMES
        .iter()
        .find(|known| **known == name)
        .copied()
        .ok_or_else(|| {
            let shown: String = name.chars().filter(|c| !c.is_control()).take(60).collect();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "Path validation error: 'No enum match for: \"{shown}\"' on property \
                     templateName (Template name. Can be {}).",
                    EMAIL_TEMPLATE_NAMES.join(", ")
                ),
                Some("invalid_uri"),
            )
        })
}

fn not_found() -> ApiError {
    ApiError::not_found(
        "The email template does not exist",
        "inexistent_email_template",
    )
}

/// The members' types, then the Liquid of `body` and `subject`.
fn checked(members: &Map<String, Value>) -> ApiResult<()> {
    validate::email_template(members).map_err(ApiError::invalid_body)?;
    for (key, part) in [("body", Part::Body), ("subject", Part::Subject)] {
        if let Some(text) = members.get(key).and_then(Value::as_str) {
            check(text, part).map_err(|why| ApiError::invalid_property(why, key))?;
        }
    }
    Ok(())
}

fn require_members(members: &Map<String, Value>) -> ApiResult<()> {
    match REQUIRED.iter().find(|key| !members.contains_key(**key)) {
        Some(key) => Err(ApiError::invalid_body(format!(
            "Missing required property: {key}"
        ))),
        None => Ok(()),
    }
}

/// A body naming its template must name the one in the path.
fn same_template(members: &Map<String, Value>, name: &str) -> ApiResult<()> {
    match members.get("template") {
        Some(given) if given.as_str() != Some(name) => Err(ApiError::invalid_property(
            "The template name must be the one in the path",
            "template",
        )),
        _ => Ok(()),
    }
}

pub(crate) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:email_templates"]).await?;
    let name = template_name(&name)?;
    let document = state
        .store()
        .email_template(name)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(Value::Object(document)).into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["create:email_templates"]).await?;
    let members = body::object(&headers, body, &EMAIL_TEMPLATE_MEMBERS)?.into_map();
    require_members(&members)?;
    checked(&members)?;
    let name = members
        .get("template")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match state.store().create_email_template(name, &members).await {
        Ok(()) => Ok(Json(Value::Object(members)).into_response()),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            format!("Template {name} already exists."),
            "template_conflict",
        )),
        Err(error) => Err(error.into()),
    }
}

pub(crate) async fn replace(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:email_templates"]).await?;
    let name = template_name(&name)?;
    let mut members = body::object(&headers, body, &EMAIL_TEMPLATE_MEMBERS)?.into_map();
    same_template(&members, name)?;
    members.insert("template".into(), Value::from(name));
    require_members(&members)?;
    checked(&members)?;
    state.store().replace_email_template(name, &members).await?;
    Ok(Json(Value::Object(members)).into_response())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:email_templates"]).await?;
    let name = template_name(&name)?;
    let members = body::object(&headers, body, &EMAIL_TEMPLATE_MEMBERS)?.into_map();
    same_template(&members, name)?;
    checked(&members)?;
    match state.store().patch_email_template(name, &members).await {
        Ok(document) => Ok(Json(Value::Object(document)).into_response()),
        Err(StoreError::NotFound(_)) => Err(not_found()),
        Err(error) => Err(error.into()),
    }
}
