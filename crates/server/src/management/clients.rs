//! `/api/v2/clients`: applications. Tessera stores client secrets hashed (SHA-256), so a
//! secret is in the response of `POST /clients` and of `POST /clients/{id}/rotate-secret`
//! only; Auth0 can show it again, Tessera cannot.
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http` and the dashboard alike.

pub(crate) mod credentials;
mod members;

use members::{
    allowed_apis, auth_method, fixed_members, grant_types, oidc_conformant, profile,
    refresh_policy, urls,
};
use serde_json::{Value, json};
use tessera_core::validate::{self, UrlKind};
use tessera_core::{AppType, Client, ClientProfile, RefreshPolicy, ids};
use tessera_store::{
    Checkpoint, CheckpointPage, ClientFilter, ClientUpdate, Page, Slice, StoreError,
};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use super::wire;
use crate::AppState;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:clients"];
pub(crate) const CREATE: &[&str] = &["create:clients"];
pub(crate) const UPDATE: &[&str] = &["update:clients"];
pub(crate) const DELETE: &[&str] = &["delete:clients"];
/// Rotating a secret, as on Auth0.
pub(crate) const ROTATE_SECRET: &[&str] = &["update:client_keys"];

/// The members `POST` and `PATCH` take: the same, as in a tenant file.
pub(crate) const FIELDS: &[&str] = &[
    "name",
    "app_type",
    "callbacks",
    "web_origins",
    "allowed_logout_urls",
    "grant_types",
    "is_first_party",
    "token_endpoint_auth_method",
    "refresh_token",
    "oidc_conformant",
    "allowed_apis",
    "cross_origin_authentication",
    "cross_origin_auth",
    "custom_login_page_on",
    "is_token_endpoint_ip_header_trusted",
    "jwt_configuration",
    "sso_disabled",
    "description",
    "logo_uri",
    "client_metadata",
    "initiate_login_uri",
    "allowed_origins",
    "require_pushed_authorization_requests",
    "client_authentication_methods",
    "oidc_logout",
];

/// `oidc_logout` when the body has it: `Some(None)` clears it (`null`).
fn oidc_logout(fields: &mut Fields) -> ApiResult<Option<Option<tessera_core::OidcLogout>>> {
    fields
        .take("oidc_logout")
        .map(|value| {
            validate::oidc_logout(&value)
                .map_err(|why| ApiError::bad_request(why).about("oidc_logout"))
        })
        .transpose()
}

pub(crate) fn not_found() -> ApiError {
    ApiError::not_found("The client does not exist", "inexistent_client")
}

/// Auth0's global client ("All Applications") holds a tenant's defaults for every
/// application, the classic login page among them; tools find it with `is_global=true`
/// (auth0-deploy-cli's `pages` reads the login page there). Tessera keeps no such
/// defaults, so it describes an empty one, read-only. Lists without `is_global=true`
/// leave it out, which keeps them a plain SQL page. The id cannot collide with a
/// generated one (those are alphanumeric).
const GLOBAL_CLIENT_ID: &str = "tessera_global_client";

fn global_client() -> Value {
    json!({
        "client_id": GLOBAL_CLIENT_ID,
        "name": "All Applications",
        "global": true,
        "is_first_party": true,
        "callbacks": [],
        "allowed_logout_urls": [],
        "custom_login_page_on": false,
        "tenant": tessera_core::DEFAULT_TENANT,
    })
}

fn refuse_global(client_id: &str) -> ApiResult<()> {
    if client_id == GLOBAL_CLIENT_ID {
        return Err(ApiError::forbidden(
            "The global client (All Applications) is Tessera's: it cannot be changed",
            "operation_not_supported",
        ));
    }
    Ok(())
}

pub(crate) async fn find(state: &AppState, client_id: &str) -> ApiResult<Client> {
    if tessera_core::system::is_system_client(client_id) {
        return Err(not_found());
    }
    state
        .store()
        .find_client(client_id)
        .await?
        .ok_or_else(not_found)
}

/// An application with the plain secret it was just given: shown once (Tessera keeps
/// only its hash), so it is kept out of `Debug` and logs.
pub(crate) struct WithSecret {
    pub(crate) client: Client,
    /// `None` for a public application, which has no secret.
    pub(crate) secret: Option<String>,
}

/// A page of applications (`created_at` order), filtered in SQL.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    filter: &ClientFilter,
    slice: Slice,
) -> ApiResult<Page<Client>> {
    principal.require(READ)?;
    Ok(state.store().list_clients(filter, slice).await?)
}

/// Applications after a checkpoint (`client_id` order), filtered in SQL.
pub(crate) async fn list_from(
    state: &AppState,
    principal: &Principal,
    filter: &ClientFilter,
    checkpoint: Checkpoint<'_>,
) -> ApiResult<CheckpointPage<Client>> {
    principal.require(READ)?;
    Ok(state.store().clients_from(filter, checkpoint).await?)
}

pub(crate) async fn get(state: &AppState, principal: &Principal, id: &str) -> ApiResult<Client> {
    principal.require(READ)?;
    find(state, id).await
}

/// Registers an application from `fields` (members as in `FIELDS`); a confidential one
/// gets a secret, returned this once.
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    mut fields: Fields,
) -> ApiResult<WithSecret> {
    principal.require(CREATE)?;
    let name = Fields::required("name", fields.string("name")?)?;
    let name = validate::name(&name, "application")
        .map_err(|why| ApiError::bad_request(why).about("name"))?;
    let app_type = match fields.string("app_type")? {
        Some(text) => {
            validate::app_type(&text).map_err(|why| ApiError::bad_request(why).about("app_type"))?
        }
        None => AppType::RegularWeb,
    };
    let callbacks =
        urls(&mut fields, "callbacks", UrlKind::Callback, app_type)?.unwrap_or_default();
    let web_origins =
        urls(&mut fields, "web_origins", UrlKind::WebOrigin, app_type)?.unwrap_or_default();
    let allowed_logout_urls = urls(
        &mut fields,
        "allowed_logout_urls",
        UrlKind::LogoutUrl,
        app_type,
    )?
    .unwrap_or_default();
    let grant_types =
        grant_types(&mut fields, app_type)?.unwrap_or_else(|| app_type.default_grant_types());
    let is_first_party = fields.boolean("is_first_party")?.unwrap_or(true);
    let auth_method = auth_method(&mut fields, app_type)?
        .unwrap_or_else(|| app_type.default_auth_method().to_string());
    let refresh = refresh_policy(&mut fields, RefreshPolicy::default())?.unwrap_or_default();
    oidc_conformant(&mut fields)?;
    let allowed_apis = allowed_apis(state, &mut fields).await?.flatten();
    let secret = (!app_type.is_public()).then(ids::client_secret);
    let now = now();
    let profile = profile(&mut fields, &ClientProfile::default(), app_type)?.unwrap_or_default();
    let require_pushed_authorization_requests = fields
        .boolean("require_pushed_authorization_requests")?
        .unwrap_or(false);
    // Credentials belong to an application, so none can be named before it exists.
    if fields
        .take("client_authentication_methods")
        .is_some_and(|value| !value.is_null())
    {
        return Err(ApiError::bad_request(
            "client_authentication_methods names credentials of this application: create it, \
             then POST /clients/{id}/credentials, then PATCH client_authentication_methods",
        )
        .about("client_authentication_methods"));
    }
    let client = Client {
        client_id: ids::alphanumeric(32),
        name,
        app_type,
        secret_hash: secret.as_deref().map(ids::secret_hash),
        token_endpoint_auth_method: auth_method,
        callbacks,
        web_origins,
        allowed_logout_urls,
        grant_types,
        is_first_party,
        allowed_apis,
        refresh,
        profile,
        require_pushed_authorization_requests,
        private_key_jwt_credentials: None,
        created_at: now,
        updated_at: now,
        oidc_logout: oidc_logout(&mut fields)?.flatten(),
    };
    fixed_members(&mut fields, &wire::client(&client, None))?;
    state.store().create_client(&client).await?;
    Ok(WithSecret { client, secret })
}

/// Changes what `fields` names (members as in `FIELDS`); the type stays the one chosen
/// at creation, and the global client refuses.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<Client> {
    principal.require(UPDATE)?;
    refuse_global(id)?;
    crate::admin_identities::refuse_system_client(id)
        .map_err(crate::admin_identities::unchangeable)?;
    let client = find(state, id).await?;
    let app_type = client.app_type;
    // The type decides which URLs, grants and secret an application has: it is chosen at
    // creation, as Tessera's CLI does; a body may repeat it.
    if let Some(given) = fields.string("app_type")?
        && validate::app_type(&given).ok() != Some(app_type)
    {
        return Err(ApiError::invalid_property(
            format!(
                "app_type can only be {:?}: an application's type is set when it is created",
                app_type.as_str()
            ),
            "app_type",
        ));
    }
    fixed_members(&mut fields, &wire::client(&client, None))?;
    // One way to authenticate: naming a secret method turns private_key_jwt off, and the
    // two are not set together.
    let token_endpoint_auth_method = auth_method(&mut fields, app_type)?;
    let mut private_key_jwt_credentials =
        credentials::authentication_methods(state, &mut fields, &client).await?;
    if token_endpoint_auth_method.is_some() {
        if matches!(private_key_jwt_credentials, Some(Some(_))) {
            return Err(ApiError::bad_request(
                "token_endpoint_auth_method and client_authentication_methods cannot both be set",
            )
            .about("client_authentication_methods"));
        }
        private_key_jwt_credentials = Some(None);
    }
    let update = ClientUpdate {
        name: fields
            .string("name")?
            .map(|n| {
                validate::name(&n, "application")
                    .map_err(|why| ApiError::bad_request(why).about("name"))
            })
            .transpose()?,
        callbacks: urls(&mut fields, "callbacks", UrlKind::Callback, app_type)?,
        web_origins: urls(&mut fields, "web_origins", UrlKind::WebOrigin, app_type)?,
        allowed_logout_urls: urls(
            &mut fields,
            "allowed_logout_urls",
            UrlKind::LogoutUrl,
            app_type,
        )?,
        grant_types: grant_types(&mut fields, app_type)?,
        secret_hash: None,
        is_first_party: fields.boolean("is_first_party")?,
        allowed_apis: allowed_apis(state, &mut fields).await?,
        refresh: refresh_policy(&mut fields, client.refresh)?,
        token_endpoint_auth_method,
        profile: profile(&mut fields, &client.profile, app_type)?,
        require_pushed_authorization_requests: fields
            .boolean("require_pushed_authorization_requests")?,
        private_key_jwt_credentials,
        oidc_logout: oidc_logout(&mut fields)?,
    };
    oidc_conformant(&mut fields)?;
    let client = state
        .store()
        .update_client(&client.client_id, &update, now())
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.forget_client(&client.client_id);
    Ok(client)
}

/// Deletes an application (its grants go with it); the global client refuses.
pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    refuse_global(id)?;
    crate::admin_identities::refuse_system_client(id)
        .map_err(crate::admin_identities::unchangeable)?;
    state
        .store()
        .delete_client(id)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.forget_client(id);
    Ok(())
}

/// A new secret for a confidential application, returned this once; the old one stops
/// working at once.
pub(crate) async fn rotate_secret(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<WithSecret> {
    principal.require(ROTATE_SECRET)?;
    refuse_global(id)?;
    crate::admin_identities::refuse_system_client(id)
        .map_err(crate::admin_identities::unchangeable)?;
    let client = find(state, id).await?;
    if client.app_type.is_public() || client.is_public() {
        return Err(ApiError::bad_request(format!(
            "a {} application is a public client: it has no client secret",
            client.app_type.as_str()
        )));
    }
    let secret = ids::client_secret();
    let update = ClientUpdate {
        secret_hash: Some(ids::secret_hash(&secret)),
        ..ClientUpdate::default()
    };
    let client = state
        .store()
        .update_client(&client.client_id, &update, now())
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.forget_client(&client.client_id);
    Ok(WithSecret {
        client,
        secret: Some(secret),
    })
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::Value;
    use tessera_core::Client;
    use tessera_store::{CheckpointPage, ClientFilter, Page};

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::{ApiError, ApiResult};
    use super::super::paging::Query;
    use super::super::wire;
    use super::{
        CREATE, DELETE, FIELDS, GLOBAL_CLIENT_ID, READ, ROTATE_SECRET, UPDATE, global_client,
        refuse_global,
    };
    use crate::AppState;

    /// `GET /api/v2/clients`: by page (`created_at` order) or by checkpoint (`from` /
    /// `take`, `client_id` order). `app_type`, `is_first_party` and `client_ids` filter in
    /// SQL; `is_global=true` finds the global client alone (`GLOBAL_CLIENT_ID`), and no
    /// client was registered from a metadata document (`external_client_id`); `q` accepts
    /// the two queries Auth0 documents, both about organizations, which Tessera does not
    /// have.
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
                "fields",
                "include_fields",
                "app_type",
                "is_first_party",
                "is_global",
                "client_ids",
                "external_client_id",
                "q",
                "from",
                "take",
            ],
        )?;
        let paging = query.paging()?;
        let fields = query.field_filter()?;
        let list = |key: &str| -> Option<Vec<String>> {
            query
                .get(key)
                .map(|t| t.split(',').map(|v| v.trim().to_string()).collect())
        };
        let filter = ClientFilter {
            app_types: list("app_type"),
            is_first_party: query.boolean("is_first_party")?,
            client_ids: list("client_ids"),
        };
        let organizations_only = query
            .get("q")
            .map(organization_query)
            .transpose()?
            .is_some();
        let global_only = query.boolean("is_global")? == Some(true);
        let registered_by_document = query.get("external_client_id").is_some();
        let checkpoint = query
            .by_checkpoint()
            .then(|| query.checkpoint())
            .transpose()?;
        if global_only && !organizations_only && !registered_by_document {
            let matches = filter.app_types.is_none()
                && filter.is_first_party != Some(false)
                && filter
                    .client_ids
                    .as_ref()
                    .is_none_or(|ids| ids.iter().any(|id| id == GLOBAL_CLIENT_ID));
            let items: Vec<Value> = if matches {
                vec![fields.apply(global_client())]
            } else {
                Vec::new()
            };
            return match checkpoint {
                Some(checkpoint) => {
                    let first = checkpoint.from.is_none_or(|from| from <= GLOBAL_CLIENT_ID);
                    let items = if first { items } else { Vec::new() };
                    query.respond_checkpoint(CheckpointPage { items, next: None }, "clients")
                }
                None => {
                    let items = if paging.page == 0 { items } else { Vec::new() };
                    let total = Some(u64::from(matches));
                    Ok(paging.respond(Page { items, total }, "clients"))
                }
            };
        }
        if organizations_only || global_only || registered_by_document {
            return match checkpoint {
                Some(_) => query.respond_checkpoint(
                    CheckpointPage::<Value> {
                        items: Vec::new(),
                        next: None,
                    },
                    "clients",
                ),
                None => Ok(paging.respond_empty("clients")),
            };
        }
        let shape = |c: Client| fields.apply(wire::client(&c, None));
        if let Some(checkpoint) = checkpoint {
            let page = super::list_from(&state, &principal, &filter, checkpoint).await?;
            return query.respond_checkpoint(page.map(shape), "clients");
        }
        let page = super::list(&state, &principal, &filter, paging.slice()).await?;
        Ok(paging.respond(page.map(shape), "clients"))
    }

    /// The `q` of `GET /clients`: Auth0 permits only `client_grant.organization_id:ID` and
    /// `client_grant.allow_any_organization:true`. No Tessera grant is tied to an
    /// organization, so either finds no application.
    fn organization_query(q: &str) -> ApiResult<()> {
        let q = q.trim();
        let valid = q
            .strip_prefix("client_grant.organization_id:")
            .is_some_and(|id| !id.trim().is_empty())
            || q == "client_grant.allow_any_organization:true";
        if valid {
            Ok(())
        } else {
            Err(ApiError::invalid_query_property(
                "Permitted queries are client_grant.organization_id:{organization_id} and \
                 client_grant.allow_any_organization:true",
                "q",
            ))
        }
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let fields =
            Query::parse(query.as_deref(), &["fields", "include_fields"])?.field_filter()?;
        if id == GLOBAL_CLIENT_ID {
            return Ok(Json(fields.apply(global_client())).into_response());
        }
        let client = super::get(&state, &principal, &id).await?;
        Ok(Json(fields.apply(wire::client(&client, None))).into_response())
    }

    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, FIELDS)?;
        let created = super::create(&state, &principal, fields).await?;
        let shown = wire::client(&created.client, created.secret.as_deref());
        Ok((StatusCode::CREATED, Json(shown)).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        // The global client refuses whatever body it is sent.
        refuse_global(&id)?;
        let fields = body::object(&headers, body, FIELDS)?;
        let client = super::update(&state, &principal, &id, fields).await?;
        Ok(Json(wire::client(&client, None)).into_response())
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

    /// `POST /api/v2/clients/{id}/rotate-secret` (scope `update:client_keys`, as on
    /// Auth0): a new secret, shown in this response only.
    pub(crate) async fn rotate_secret(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, ROTATE_SECRET).await?;
        let rotated = super::rotate_secret(&state, &principal, &id).await?;
        Ok(Json(wire::client(&rotated.client, rotated.secret.as_deref())).into_response())
    }
}
