//! A machine-to-machine authorization as one form sets it — from an API's Machine to
//! Machine tab or an application's APIs tab: checked means granted with the checked
//! permissions (`scope:<value>` fields), unchecked means no grant.

use serde_json::Value;
use tessera_store::{ClientGrantFilter, Slice};

use super::form::Body;
use super::session::Admin;
use crate::AppState;
use crate::edge::params::Params;
use crate::management::{ApiResult, Fields, client_grants};

/// Creates, updates or deletes `client_id`'s grant for `audience` as `params` say; the
/// notice to show after.
pub(crate) async fn save(
    state: &AppState,
    admin: &Admin,
    client_id: &str,
    audience: &str,
    params: &Params,
) -> ApiResult<&'static str> {
    let authorized = params.get("authorized").is_some();
    let scopes: Vec<Value> = params
        .names_after("scope:")
        .into_iter()
        .map(|s| Value::String(s.to_string()))
        .collect();
    let existing = client_grants::list(
        state,
        &admin.principal,
        ClientGrantFilter {
            client_id: Some(client_id),
            audience: Some(audience),
        },
        Slice::first(1),
    )
    .await?
    .items
    .into_iter()
    .next();
    match (existing, authorized) {
        (None, false) => Ok("grant_removed"),
        (Some(grant), false) => {
            client_grants::delete(state, &admin.principal, &grant.id).await?;
            Ok("grant_removed")
        }
        (None, true) => {
            let body = Body::new()
                .value("client_id", Value::String(client_id.to_string()))
                .value("audience", Value::String(audience.to_string()))
                .value("scope", Value::Array(scopes))
                .into_map();
            let fields = Fields::from_map(body, client_grants::CREATE_FIELDS)?;
            client_grants::create(state, &admin.principal, fields).await?;
            Ok("grant_saved")
        }
        (Some(grant), true) => {
            let body = Body::new().value("scope", Value::Array(scopes)).into_map();
            let fields = Fields::from_map(body, client_grants::UPDATE_FIELDS)?;
            client_grants::update(state, &admin.principal, &grant.id, fields).await?;
            Ok("grant_saved")
        }
    }
}
