//! `/api/v2/resource-servers`: APIs. `{id}` is the id or the (URL-encoded) identifier.
//! System APIs (the Management API itself) are listed but cannot be changed or deleted.
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http` and the dashboard alike.

use tessera_core::{
    DEFAULT_ACCESS_TOKEN_LIFETIME, ProofOfPossession, ResourceServer, TokenDialect, ids, validate,
};
use tessera_jose::Algorithm;
use tessera_store::{Page, ResourceServerUpdate, Slice, StoreError};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:resource_servers"];
pub(crate) const CREATE: &[&str] = &["create:resource_servers"];
pub(crate) const UPDATE: &[&str] = &["update:resource_servers"];
pub(crate) const DELETE: &[&str] = &["delete:resource_servers"];

pub(crate) const CREATE_FIELDS: &[&str] = &[
    "name",
    "identifier",
    "scopes",
    "signing_alg",
    "token_lifetime",
    "allow_offline_access",
    "token_dialect",
    "enforce_policies",
    "skip_consent_for_verifiable_first_party_clients",
    "token_lifetime_for_web",
    "proof_of_possession",
];
pub(crate) const UPDATE_FIELDS: &[&str] = &[
    "name",
    "scopes",
    "signing_alg",
    "token_lifetime",
    "allow_offline_access",
    "token_dialect",
    "enforce_policies",
    "skip_consent_for_verifiable_first_party_clients",
    "token_lifetime_for_web",
    "proof_of_possession",
];

/// Auth0's `proof_of_possession`: `{"mechanism": "dpop", "required": bool}`, or `null` to
/// remove it (`Some(None)`). `mtls` is refused: Tessera has no client certificates.
fn proof_of_possession(fields: &mut Fields) -> ApiResult<Option<Option<ProofOfPossession>>> {
    let invalid = || {
        ApiError::invalid_property(
            "proof_of_possession must be {\"mechanism\": \"dpop\", \"required\": true|false} \
             (mtls is not supported)",
            "proof_of_possession",
        )
    };
    match fields.take("proof_of_possession") {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(None)),
        Some(value) => serde_json::from_value::<ProofOfPossession>(value)
            .map(|pop| Some(Some(pop)))
            .map_err(|_| invalid()),
    }
}

/// `skip_consent_for_verifiable_first_party_clients`, which `GET` shows as Tessera has
/// it: accepted in a body when it keeps that value (a read-modify-write goes through).
/// First-party applications never see a consent page in Tessera.
fn consent_skip(fields: &mut Fields) -> ApiResult<()> {
    if fields.boolean("skip_consent_for_verifiable_first_party_clients")? == Some(false) {
        return Err(ApiError::invalid_property(
            "skip_consent_for_verifiable_first_party_clients can only be true: first-party \
             applications never ask for consent in Tessera",
            "skip_consent_for_verifiable_first_party_clients",
        ));
    }
    Ok(())
}

/// `token_lifetime_for_web`: the lifetime of tokens handed over in the browser, at most
/// `token_lifetime` (as Auth0 requires). Absent: `current`, shortened to `token_lifetime`
/// if that went below it.
fn web_lifetime(fields: &mut Fields, token_lifetime: i64, current: i64) -> ApiResult<i64> {
    let given = fields
        .integer("token_lifetime_for_web")?
        .map(|seconds| {
            validate::token_lifetime(seconds)
                .map_err(|why| ApiError::invalid_property(why, "token_lifetime_for_web"))
        })
        .transpose()?;
    match given {
        Some(web) if web > token_lifetime => Err(ApiError::invalid_property(
            format!("token_lifetime_for_web must be at most token_lifetime ({token_lifetime})"),
            "token_lifetime_for_web",
        )),
        Some(web) => Ok(web),
        None => Ok(current.min(token_lifetime)),
    }
}

fn not_found() -> ApiError {
    ApiError::not_found(
        "The resource server does not exist",
        "inexistent_resource_server",
    )
}

pub(crate) async fn find(state: &AppState, id: &str) -> ApiResult<ResourceServer> {
    state
        .store()
        .find_resource_server(id)
        .await?
        .ok_or_else(not_found)
}

fn signing_alg(text: &str) -> ApiResult<String> {
    Algorithm::parse(text)
        .map(|a| a.as_str().to_string())
        .map_err(|_| {
            let shown: String = text.chars().take(20).collect();
            ApiError::bad_request(format!(
                "unsupported signing_alg {shown:?}: use RS256, ES256 or EdDSA"
            ))
            .about("signing_alg")
        })
}

fn dialect(text: Option<String>) -> ApiResult<Option<TokenDialect>> {
    text.map(|t| {
        validate::token_dialect(&t).map_err(|why| ApiError::bad_request(why).about("token_dialect"))
    })
    .transpose()
}

fn lifetime(seconds: Option<i64>) -> ApiResult<Option<i64>> {
    seconds
        .map(|s| {
            validate::token_lifetime(s)
                .map_err(|why| ApiError::bad_request(why).about("token_lifetime"))
        })
        .transpose()
}

fn refuse_system(api: &ResourceServer) -> ApiResult<()> {
    if api.is_system() {
        return Err(ApiError::forbidden(
            format!(
                "{} is a system resource server: it cannot be updated or deleted",
                api.name
            ),
            "operation_not_supported",
        ));
    }
    Ok(())
}

/// A page of APIs, oldest first; `identifiers` keeps those.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    identifiers: Option<&[String]>,
    slice: Slice,
) -> ApiResult<Page<ResourceServer>> {
    principal.require(READ)?;
    Ok(state
        .store()
        .list_resource_servers(identifiers, slice)
        .await?)
}

pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<ResourceServer> {
    principal.require(READ)?;
    find(state, id).await
}

/// Registers an API from `fields` (members as in `CREATE_FIELDS`).
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    mut fields: Fields,
) -> ApiResult<ResourceServer> {
    principal.require(CREATE)?;
    let identifier = Fields::required("identifier", fields.string("identifier")?)?;
    let identifier = validate::api_identifier(&identifier)
        .map_err(|why| ApiError::bad_request(why).about("identifier"))?;
    let name = match fields.string("name")? {
        Some(name) => {
            validate::api_name(&name).map_err(|why| ApiError::bad_request(why).about("name"))?
        }
        None => identifier.clone(),
    };
    let scopes = fields.scopes("scopes")?.unwrap_or_default();
    let signing_alg = match fields.string("signing_alg")? {
        Some(alg) => signing_alg(&alg)?,
        None => "RS256".to_string(),
    };
    let token_lifetime =
        lifetime(fields.integer("token_lifetime")?)?.unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME);
    let allow_offline_access = fields.boolean("allow_offline_access")?.unwrap_or(false);
    let token_dialect =
        dialect(fields.string("token_dialect")?)?.unwrap_or(TokenDialect::AccessToken);
    let enforce_policies = fields.boolean("enforce_policies")?.unwrap_or(false);
    let pop = proof_of_possession(&mut fields)?.flatten();
    consent_skip(&mut fields)?;
    let token_lifetime_for_web = web_lifetime(&mut fields, token_lifetime, token_lifetime)?;
    let now = now();
    let api = ResourceServer {
        // Auth0's resource-server ids are 24 hex characters.
        id: ids::hex_id(12),
        name,
        identifier,
        signing_alg,
        token_lifetime,
        token_lifetime_for_web,
        allow_offline_access,
        token_dialect,
        enforce_policies,
        scopes,
        proof_of_possession: pop,
        created_at: now,
        updated_at: now,
    };
    state
        .store()
        .create_resource_server(&api)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => ApiError::conflict(
                "A resource server with the same identifier already exists",
                "resource_server_conflict",
            )
            .about("identifier"),
            other => other.into(),
        })?;
    state.reload_keys().await;
    Ok(api)
}

/// Changes what `fields` names (members as in `UPDATE_FIELDS`); system APIs refuse.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<ResourceServer> {
    principal.require(UPDATE)?;
    let api = find(state, id).await?;
    refuse_system(&api)?;
    let token_lifetime = lifetime(fields.integer("token_lifetime")?)?;
    consent_skip(&mut fields)?;
    let web = web_lifetime(
        &mut fields,
        token_lifetime.unwrap_or(api.token_lifetime),
        api.token_lifetime_for_web,
    )?;
    let token_lifetime_for_web = (web != api.token_lifetime_for_web).then_some(web);
    let update = ResourceServerUpdate {
        name: fields
            .string("name")?
            .map(|n| validate::api_name(&n).map_err(|why| ApiError::bad_request(why).about("name")))
            .transpose()?,
        scopes: fields.scopes("scopes")?,
        signing_alg: fields
            .string("signing_alg")?
            .map(|a| signing_alg(&a))
            .transpose()?,
        token_lifetime,
        token_lifetime_for_web,
        allow_offline_access: fields.boolean("allow_offline_access")?,
        token_dialect: dialect(fields.string("token_dialect")?)?,
        enforce_policies: fields.boolean("enforce_policies")?,
        proof_of_possession: proof_of_possession(&mut fields)?,
    };
    let api = state
        .store()
        .update_resource_server(&api.id, &update, now())
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.forget_apis();
    state.reload_keys().await;
    Ok(api)
}

/// Deletes an API (its grants and permissions go with it); system APIs refuse.
pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    let api = find(state, id).await?;
    refuse_system(&api)?;
    state
        .store()
        .delete_resource_server(&api.id)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.forget_apis();
    state.reload_keys().await;
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

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::{ApiError, ApiResult};
    use super::super::paging::Query;
    use super::super::wire;
    use super::{CREATE, CREATE_FIELDS, DELETE, READ, UPDATE, UPDATE_FIELDS};
    use crate::AppState;

    /// Auth0's limit on `identifiers` values in one request.
    const MAX_IDENTIFIERS: usize = 10;

    /// `GET /api/v2/resource-servers`: a page, oldest first; `identifiers` (repeatable, at
    /// most 10) keeps those APIs.
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
                "identifiers",
                "fields",
                "include_fields",
            ],
        )?;
        let paging = query.paging()?;
        let fields = query.field_filter()?;
        let identifiers: Vec<String> = query
            .all("identifiers")
            .into_iter()
            .map(str::to_string)
            .collect();
        if identifiers.len() > MAX_IDENTIFIERS {
            return Err(ApiError::invalid_query_property(
                format!(
                    "Array is too long ({}), maximum {MAX_IDENTIFIERS}",
                    identifiers.len()
                ),
                "identifiers",
            ));
        }
        let filter = (!identifiers.is_empty()).then_some(identifiers.as_slice());
        let page = super::list(&state, &principal, filter, paging.slice()).await?;
        Ok(paging.respond(
            page.map(|api| fields.apply(wire::resource_server(&api))),
            "resource_servers",
        ))
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let api = super::get(&state, &principal, &id).await?;
        Ok(Json(wire::resource_server(&api)).into_response())
    }

    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, CREATE_FIELDS)?;
        let api = super::create(&state, &principal, fields).await?;
        Ok((StatusCode::CREATED, Json(wire::resource_server(&api))).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, UPDATE_FIELDS)?;
        let api = super::update(&state, &principal, &id, fields).await?;
        Ok(Json(wire::resource_server(&api)).into_response())
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
