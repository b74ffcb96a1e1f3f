//! `/api/v2/rules`: legacy Rules (`function (user, context, callback)`), run in `order`
//! before the post-login actions while `enabled`. Stage `login_success` only.

use tessera_store::{Page, RuleRecord, RuleUpdate, Slice, StoreError};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::actions_admin as policy;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:rules"];
pub(crate) const CREATE: &[&str] = &["create:rules"];
pub(crate) const UPDATE: &[&str] = &["update:rules"];
pub(crate) const DELETE: &[&str] = &["delete:rules"];

pub(crate) const CREATE_FIELDS: &[&str] = &["name", "script", "order", "enabled", "stage"];
pub(crate) const UPDATE_FIELDS: &[&str] = &["name", "script", "order", "enabled"];

fn not_found() -> ApiError {
    ApiError::not_found("The rule does not exist", "inexistent_rule")
}

fn conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict("a rule with this order") => {
            ApiError::conflict("A rule with the same order already exists", "rule_conflict")
                .about("order")
        }
        StoreError::Conflict(_) => {
            ApiError::conflict("A rule with the same name already exists", "rule_conflict")
                .about("name")
        }
        StoreError::NotFound(_) => not_found(),
        other => other.into(),
    }
}

fn name_of(name: &str) -> ApiResult<String> {
    policy::rule_name(name).map_err(|why| ApiError::bad_request(why).about("name"))
}

fn script_of(script: &str) -> ApiResult<()> {
    policy::code(script, "the rule's script")
        .map_err(|why| ApiError::bad_request(why).about("script"))
}

fn order_of(order: i64) -> ApiResult<i64> {
    policy::rule_order(order).map_err(|why| ApiError::bad_request(why).about("order"))
}

pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    enabled: Option<bool>,
    slice: Slice,
) -> ApiResult<Page<RuleRecord>> {
    principal.require(READ)?;
    Ok(state.store().list_rules(enabled, slice).await?)
}

pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<RuleRecord> {
    principal.require(READ)?;
    state.store().find_rule(id).await?.ok_or_else(not_found)
}

/// Saves a rule from `fields` (members as in `CREATE_FIELDS`); without `order` it runs
/// after the others, without `enabled` it is enabled (Auth0's defaults).
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    mut fields: Fields,
) -> ApiResult<RuleRecord> {
    principal.require(CREATE)?;
    let name = name_of(&Fields::required("name", fields.string("name")?)?)?;
    let script = Fields::required("script", fields.string("script")?)?;
    script_of(&script)?;
    let order = fields.integer("order")?.map(order_of).transpose()?;
    let enabled = fields.boolean("enabled")?.unwrap_or(true);
    if let Some(stage) = fields.string("stage")?
        && stage != policy::RULE_STAGE
    {
        return Err(ApiError::bad_request(format!(
            "Rules run only at the stage {}",
            policy::RULE_STAGE
        ))
        .about("stage"));
    }
    let now = now();
    let mut rule = RuleRecord {
        id: policy::new_rule_id(),
        name,
        script,
        order: order.unwrap_or(0),
        enabled,
        stage: policy::RULE_STAGE.to_string(),
        created_at: now,
        updated_at: now,
    };
    rule.order = state
        .store()
        .create_rule(&rule, order)
        .await
        .map_err(conflict)?;
    state.action_programs().forget();
    Ok(rule)
}

pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<RuleRecord> {
    principal.require(UPDATE)?;
    let script = fields.string("script")?;
    if let Some(script) = &script {
        script_of(script)?;
    }
    let update = RuleUpdate {
        name: fields.string("name")?.map(|n| name_of(&n)).transpose()?,
        script,
        order: fields.integer("order")?.map(order_of).transpose()?,
        enabled: fields.boolean("enabled")?,
    };
    let rule = state
        .store()
        .update_rule(id, &update, now())
        .await
        .map_err(conflict)?;
    state.action_programs().forget();
    Ok(rule)
}

pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    state.store().delete_rule(id).await.map_err(conflict)?;
    state.action_programs().forget();
    Ok(())
}

pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::ApiResult;
    use super::super::paging::Query;
    use super::super::wire;
    use super::{CREATE, CREATE_FIELDS, DELETE, READ, UPDATE, UPDATE_FIELDS};
    use crate::AppState;

    /// `GET /api/v2/rules`: in order; `enabled` filters; Auth0's paging.
    pub(crate) async fn list(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(
            query.as_deref(),
            &[
                "page",
                "per_page",
                "include_totals",
                "enabled",
                "fields",
                "include_fields",
            ],
        )?;
        let paging = query.paging()?;
        let fields = query.field_filter()?;
        let enabled = query.boolean("enabled")?;
        let page = super::list(&state, &principal, enabled, paging.slice()).await?;
        Ok(paging.respond(page.map(|rule| fields.apply(wire::rule(&rule))), "rules"))
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let rule = super::get(&state, &principal, &id).await?;
        Ok(Json(wire::rule(&rule)).into_response())
    }

    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, CREATE_FIELDS)?;
        let rule = super::create(&state, &principal, fields).await?;
        Ok((StatusCode::CREATED, Json(wire::rule(&rule))).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, UPDATE_FIELDS)?;
        let rule = super::update(&state, &principal, &id, fields).await?;
        Ok(Json(wire::rule(&rule)).into_response())
    }

    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::delete(&state, &principal, &id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}
