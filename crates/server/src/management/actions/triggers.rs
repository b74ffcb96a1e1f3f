//! `/api/v2/actions/triggers` and `/actions/triggers/{triggerId}/bindings`: the triggers
//! Tessera runs and, for each, the ordered list of deployed actions it runs. A `PATCH`
//! replaces the whole list at once (Terraform's `auth0_trigger_actions`, auth0-deploy-cli).

use serde_json::{Value, json};
use tessera_actions::Trigger;
use tessera_store::{BindingRecord, NewBinding, Page, Slice, StoreError};

use super::super::auth::Principal;
use super::super::body::Fields;
use super::super::error::{ApiError, ApiResult};
use super::{READ, UPDATE};
use crate::AppState;
use crate::actions_admin as policy;
use crate::clock::now;

/// Most bindings one trigger may run.
pub(crate) const MAX_BINDINGS: usize = 20;

/// Tessera's triggers in Auth0's shape.
pub(crate) fn triggers() -> Value {
    let triggers: Vec<Value> = Trigger::ALL
        .iter()
        .map(|trigger| {
            json!({
                "id": trigger.id(),
                "version": trigger.version(),
                "status": "CURRENT",
                "runtimes": ["node18", "node22"],
                "default_runtime": policy::DEFAULT_RUNTIME,
                "compatible_triggers": [],
            })
        })
        .collect();
    json!({ "triggers": triggers })
}

fn trigger_of(id: &str) -> ApiResult<Trigger> {
    policy::trigger(id, None).map_err(|why| ApiError::not_found(why, "inexistent_trigger"))
}

pub(crate) async fn bindings(
    state: &AppState,
    principal: &Principal,
    trigger_id: &str,
    slice: Slice,
) -> ApiResult<Page<BindingRecord>> {
    principal.require(READ)?;
    let trigger = trigger_of(trigger_id)?;
    Ok(state
        .store()
        .list_trigger_bindings(trigger.id(), slice)
        .await?)
}

/// One binding of a PATCH body: `{ref: {type, value}, display_name}`; `secrets` is
/// accepted only empty (Tessera keeps secrets on the action).
struct Wanted {
    by_name: bool,
    value: String,
    display_name: Option<String>,
}

fn wanted(index: usize, mut item: Fields) -> ApiResult<Wanted> {
    let property = format!("bindings[{index}]");
    let mut reference = item
        .object("ref", &["type", "value"])?
        .ok_or_else(|| ApiError::invalid_property("Missing required property: ref", &property))?;
    let kind = Fields::required("type", reference.string("type")?)
        .map_err(|_| ApiError::invalid_property("Missing required property: type", &property))?;
    let by_name = match kind.as_str() {
        "action_name" => true,
        "action_id" | "binding_id" => false,
        _ => {
            return Err(ApiError::invalid_property(
                "ref.type must be action_id or action_name",
                &property,
            ));
        }
    };
    let value = Fields::required("value", reference.string("value")?)
        .map_err(|_| ApiError::invalid_property("Missing required property: value", &property))?;
    let display_name = item.string("display_name")?;
    if let Some(Value::Array(secrets)) = item.take("secrets")
        && !secrets.is_empty()
    {
        return Err(ApiError::bad_request(
            "a binding's secrets are not supported: give the action its secrets",
        )
        .about(&property));
    }
    Ok(Wanted {
        by_name,
        value,
        display_name,
    })
}

/// Replaces a trigger's bindings. Every action named must exist, be deployed and
/// support the trigger; otherwise 400 naming it, and nothing changes.
pub(crate) async fn replace(
    state: &AppState,
    principal: &Principal,
    trigger_id: &str,
    items: Vec<Fields>,
) -> ApiResult<Vec<BindingRecord>> {
    principal.require(UPDATE)?;
    let trigger = trigger_of(trigger_id)?;
    if items.len() > MAX_BINDINGS {
        return Err(ApiError::invalid_property(
            format!("at most {MAX_BINDINGS} actions may be bound to a trigger"),
            "bindings",
        ));
    }
    let mut bindings: Vec<NewBinding> = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let wanted = wanted(index, item)?;
        let shown: String = wanted.value.chars().take(60).collect();
        let found = if wanted.by_name {
            state.store().find_action_by_name(&wanted.value).await?
        } else {
            state.store().find_action(&wanted.value).await?
        };
        let what = if wanted.by_name { "name" } else { "id" };
        let action = found.ok_or_else(|| {
            ApiError::bad_request(format!("there is no action with the {what} {shown:?}"))
                .about(&format!("bindings[{index}]"))
        })?;
        if action.trigger_id != trigger.id() {
            return Err(ApiError::bad_request(format!(
                "the action {} supports {}, not {}",
                action.name,
                action.trigger_id,
                trigger.id()
            ))
            .about(&format!("bindings[{index}]")));
        }
        if action.deployed_version.is_none() {
            return Err(ApiError::bad_request(format!(
                "the action {} is not deployed: deploy it before binding it",
                action.name
            ))
            .about(&format!("bindings[{index}]")));
        }
        if bindings.iter().any(|b| b.action_id == action.id) {
            return Err(ApiError::bad_request(format!(
                "the action {} is bound twice",
                action.name
            ))
            .about(&format!("bindings[{index}]")));
        }
        bindings.push(NewBinding {
            action_id: action.id.clone(),
            display_name: wanted.display_name.unwrap_or_else(|| action.name.clone()),
        });
    }
    state
        .store()
        .replace_trigger_bindings(trigger.id(), &bindings, &mut policy::new_binding_id, now())
        .await
        .map_err(|error| match error {
            // Deleted or undeployed meanwhile.
            StoreError::NotFound(_) => ApiError::conflict(
                "an action changed while it was being bound: try again",
                "action_conflict",
            ),
            other => other.into(),
        })?;
    state.action_programs().forget();
    let limit = u32::try_from(MAX_BINDINGS).unwrap_or(u32::MAX);
    Ok(state
        .store()
        .list_trigger_bindings(trigger.id(), Slice::first(limit))
        .await?
        .items)
}

pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use serde_json::{Value, json};

    use super::super::super::auth::require;
    use super::super::super::body::{self, Fields};
    use super::super::super::error::{ApiError, ApiResult};
    use super::super::super::paging::Query;
    use super::super::super::wire;
    use super::super::http::paged;
    use super::super::{READ, UPDATE};
    use crate::AppState;

    pub(crate) async fn list(
        State(state): State<AppState>,
        headers: HeaderMap,
    ) -> ApiResult<Response> {
        require(&state, &headers, READ).await?;
        Ok(Json(super::triggers()).into_response())
    }

    pub(crate) async fn bindings(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(trigger_id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(query.as_deref(), &["page", "per_page", "include_totals"])?;
        let mut paging = query.paging()?;
        paging.include_totals = true;
        let page = super::bindings(&state, &principal, &trigger_id, paging.slice()).await?;
        let items = page
            .items
            .iter()
            .map(|binding| json!(wire::binding(binding)))
            .collect();
        Ok(paged(
            items,
            "bindings",
            page.total.unwrap_or(0),
            paging.page,
            paging.per_page,
        ))
    }

    /// `PATCH …/bindings` `{bindings: [{ref: {type, value}, display_name}]}` → the new list.
    pub(crate) async fn replace(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(trigger_id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let mut fields = body::object(&headers, body, &["bindings"])?;
        let items = match Fields::required("bindings", fields.take("bindings"))? {
            Value::Array(items) => items,
            _ => {
                return Err(ApiError::invalid_property(
                    "Expected type array",
                    "bindings",
                ));
            }
        };
        let items = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let property = format!("bindings[{index}]");
                match item {
                    Value::Object(map) => {
                        Fields::from_map(map, &["ref", "display_name", "secrets"])
                            .map_err(|error| error.about(&property))
                    }
                    _ => Err(ApiError::invalid_property(
                        "Expected type object",
                        &property,
                    )),
                }
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let bindings = super::replace(&state, &principal, &trigger_id, items).await?;
        let shown: Vec<_> = bindings.iter().map(wire::binding).collect();
        Ok(Json(json!({ "bindings": shown })).into_response())
    }
}
