//! `/api/v2/client-grants`: machine-to-machine access of an application to an API.
//! Changes reach the client-credentials grant at once on this node (the machine-access
//! cache forgets the application), within half a second on others.
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http` and the dashboard alike.

use tessera_core::{ClientGrant, ids, validate};
use tessera_store::{Checkpoint, CheckpointPage, ClientGrantFilter, Page, Slice, StoreError};

use super::auth::Principal;
use super::body::Fields;
use super::clients;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:client_grants"];
pub(crate) const CREATE: &[&str] = &["create:client_grants"];
pub(crate) const UPDATE: &[&str] = &["update:client_grants"];
pub(crate) const DELETE: &[&str] = &["delete:client_grants"];
pub(crate) const CREATE_FIELDS: &[&str] = &["client_id", "audience", "scope"];
pub(crate) const UPDATE_FIELDS: &[&str] = &["scope"];

fn not_found() -> ApiError {
    ApiError::not_found("The client grant does not exist", "inexistent_client_grant")
}

fn conflict() -> ApiError {
    ApiError::conflict(
        "A client grant for this client and audience already exists",
        "client_grant_conflict",
    )
}

async fn find(state: &AppState, id: &str) -> ApiResult<ClientGrant> {
    state
        .store()
        .find_client_grant(id)
        .await?
        .ok_or_else(not_found)
}

async fn api_of(state: &AppState, audience: &str) -> ApiResult<tessera_core::ResourceServer> {
    state
        .store()
        .find_resource_server(audience)
        .await?
        .filter(|api| api.identifier == audience)
        .ok_or_else(|| {
            let shown: String = audience.chars().take(100).collect();
            ApiError::not_found(
                format!("No resource server found by audience: {shown}"),
                "inexistent_resource_server",
            )
        })
}

/// A page of grants (`created_at` order), filtered in SQL.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    filter: ClientGrantFilter<'_>,
    slice: Slice,
) -> ApiResult<Page<ClientGrant>> {
    principal.require(READ)?;
    Ok(state.store().list_client_grants(filter, slice).await?)
}

/// Grants after a checkpoint (id order), filtered in SQL.
pub(crate) async fn list_from(
    state: &AppState,
    principal: &Principal,
    filter: ClientGrantFilter<'_>,
    checkpoint: Checkpoint<'_>,
) -> ApiResult<CheckpointPage<ClientGrant>> {
    principal.require(READ)?;
    Ok(state.store().client_grants_from(filter, checkpoint).await?)
}

pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<ClientGrant> {
    principal.require(READ)?;
    find(state, id).await
}

/// Grants an application access to an API (members as in `CREATE_FIELDS`).
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    mut fields: Fields,
) -> ApiResult<ClientGrant> {
    principal.require(CREATE)?;
    let client_id = Fields::required("client_id", fields.string("client_id")?)?;
    let audience = Fields::required("audience", fields.string("audience")?)?;
    let scope = Fields::required("scope", fields.strings("scope")?)?;
    let client = clients::find(state, &client_id).await?;
    validate::client_grant_app_type(client.app_type)
        .map_err(|why| ApiError::bad_request(why).about("client_id"))?;
    let api = api_of(state, &audience).await?;
    validate::granted_scopes(&scope, &api)
        .map_err(|why| ApiError::bad_request(why).about("scope"))?;
    let existing = ClientGrantFilter {
        client_id: Some(&client.client_id),
        audience: Some(&api.identifier),
    };
    let existing = state
        .store()
        .list_client_grants(existing, Slice::first(1))
        .await?;
    if !existing.items.is_empty() {
        return Err(conflict());
    }
    let grant = ClientGrant {
        id: format!("cgr_{}", ids::alphanumeric(16)),
        client_id: client.client_id.clone(),
        audience: api.identifier.clone(),
        scope,
        created_at: now(),
    };
    state
        .store()
        .create_client_grant(&grant)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => conflict(),
            StoreError::NotFound(_) => clients::not_found(),
            other => other.into(),
        })?;
    state.forget_client(&grant.client_id);
    Ok(grant)
}

/// Replaces a grant's scopes (members as in `UPDATE_FIELDS`; none: unchanged).
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<ClientGrant> {
    principal.require(UPDATE)?;
    let grant = find(state, id).await?;
    let Some(scope) = fields.strings("scope")? else {
        return Ok(grant);
    };
    let api = api_of(state, &grant.audience).await?;
    validate::granted_scopes(&scope, &api)
        .map_err(|why| ApiError::bad_request(why).about("scope"))?;
    let grant = state
        .store()
        .update_client_grant(&grant.id, &scope)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.forget_client(&grant.client_id);
    Ok(grant)
}

pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    let grant = find(state, id).await?;
    state
        .store()
        .delete_client_grant(&grant.id)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.forget_client(&grant.client_id);
    Ok(())
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use tessera_store::{CheckpointPage, ClientGrantFilter};

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::{ApiError, ApiResult};
    use super::super::paging::Query;
    use super::super::wire;
    use super::{CREATE, CREATE_FIELDS, DELETE, READ, UPDATE, UPDATE_FIELDS};
    use crate::AppState;

    /// `GET /api/v2/client-grants`: by page (`created_at` order) or by checkpoint (`from` /
    /// `take`, id order), `client_id` and `audience` filtering in SQL. Every Tessera grant is
    /// a machine's (`subject_type` `client`), tied to no organization and the default for
    /// nobody: `allow_any_organization=true`, `subject_type=user` and `default_for` find none.
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
                "audience",
                "client_id",
                "from",
                "take",
                "allow_any_organization",
                "subject_type",
                "default_for",
            ],
        )?;
        let paging = query.paging()?;
        let checkpoint = query
            .by_checkpoint()
            .then(|| query.checkpoint())
            .transpose()?;
        let subject_type = match query.get("subject_type") {
            None | Some("client") => true,
            Some("user") => false,
            Some(_) => {
                return Err(ApiError::invalid_query_property(
                    "No enum match for: subject_type",
                    "subject_type",
                ));
            }
        };
        let default_for = match query.get("default_for") {
            None => false,
            Some("third_party_clients") => true,
            Some(_) => {
                return Err(ApiError::invalid_query_property(
                    "No enum match for: default_for",
                    "default_for",
                ));
            }
        };
        let any_organization = query.boolean("allow_any_organization")? == Some(true);
        if !subject_type || default_for || any_organization {
            return match checkpoint {
                Some(_) => query.respond_checkpoint(
                    CheckpointPage::<wire::ClientGrant> {
                        items: Vec::new(),
                        next: None,
                    },
                    "client_grants",
                ),
                None => Ok(paging.respond_empty("client_grants")),
            };
        }
        let filter = ClientGrantFilter {
            client_id: query.get("client_id"),
            audience: query.get("audience"),
        };
        if let Some(checkpoint) = checkpoint {
            let page = super::list_from(&state, &principal, filter, checkpoint).await?;
            return query.respond_checkpoint(page.map(|g| wire::client_grant(&g)), "client_grants");
        }
        let page = super::list(&state, &principal, filter, paging.slice()).await?;
        Ok(paging.respond(page.map(|g| wire::client_grant(&g)), "client_grants"))
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let grant = super::get(&state, &principal, &id).await?;
        Ok(Json(wire::client_grant(&grant)).into_response())
    }

    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, CREATE_FIELDS)?;
        let grant = super::create(&state, &principal, fields).await?;
        Ok((StatusCode::CREATED, Json(wire::client_grant(&grant))).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, UPDATE_FIELDS)?;
        let grant = super::update(&state, &principal, &id, fields).await?;
        Ok(Json(wire::client_grant(&grant)).into_response())
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
