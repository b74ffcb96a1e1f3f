//! `/api/v2/clients`: applications. Tessera stores client secrets hashed (SHA-256), so a
//! secret is in the response of `POST /clients` and of `POST /clients/{id}/rotate-secret`
//! only; Auth0 can show it again, Tessera cannot.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tessera_core::validate::{self, UrlKind};
use tessera_core::{AppType, Client, ClientProfile, RefreshPolicy, ids};
use tessera_store::{CheckpointPage, ClientFilter, ClientUpdate, Page, StoreError};

use super::auth::require;
use super::body::{self, Fields};
use super::error::{ApiError, ApiResult};
use super::paging::Query;
use super::wire;
use crate::AppState;
use crate::clock::now;

/// The members `POST` and `PATCH` take: the same, as in a tenant file.
const FIELDS: &[&str] = &[
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
];

/// Members `GET /clients` shows with the one value Tessera has (Auth0's default), and why
/// it cannot change: a body may carry them — a read-modify-write of what `GET` returned
/// must go through — as long as they hold that value.
const FIXED_MEMBERS: [(&str, &str); 6] = [
    (
        "cross_origin_authentication",
        "Tessera has no cross-origin authentication (embedded login); use the hosted page",
    ),
    (
        "cross_origin_auth",
        "Tessera has no cross-origin authentication (embedded login); use the hosted page",
    ),
    (
        "custom_login_page_on",
        "every application uses the hosted login page",
    ),
    (
        "is_token_endpoint_ip_header_trusted",
        "the token endpoint trusts forwarding headers only from `--trusted-proxy` ranges",
    ),
    (
        "sso_disabled",
        "every application shares the browser's session",
    ),
    (
        "jwt_configuration",
        "ID tokens are RS256 and live 10 hours for every application",
    ),
];

/// Refuses a [`FIXED_MEMBERS`] member whose value is not the one `shown` (what `GET` would
/// return) holds. `jwt_configuration` may name a subset of its members, and Auth0's
/// `secret_encoded: false` (Tessera signs no ID token with the client secret).
fn fixed_members(fields: &mut Fields, shown: &wire::Client) -> ApiResult<()> {
    let shown = serde_json::to_value(shown).expect("wire types serialize");
    for (key, why) in FIXED_MEMBERS {
        let Some(given) = fields.take(key) else {
            continue;
        };
        let expected = match key {
            "cross_origin_auth" => &shown["cross_origin_authentication"],
            _ => &shown[key],
        };
        let holds = match (key, &given) {
            ("jwt_configuration", Value::Object(members)) => members.iter().all(|(name, value)| {
                (name == "secret_encoded" && *value == Value::Bool(false))
                    || expected.get(name) == Some(value)
            }),
            _ => given == *expected,
        };
        if !holds {
            return Err(ApiError::invalid_property(
                format!("{key} can only be {expected}: {why}"),
                key,
            ));
        }
    }
    Ok(())
}

/// The members an application says about itself (`ClientProfile`), given ones over
/// `current`: a string sets, `null` clears. Each checked by its rule in
/// `tessera_core::validate`.
fn profile(
    fields: &mut Fields,
    current: &ClientProfile,
    app_type: AppType,
) -> ApiResult<Option<ClientProfile>> {
    let mut profile = current.clone();
    let mut changed = false;
    let mut text = |fields: &mut Fields,
                    key: &str,
                    rule: fn(&str) -> Result<String, String>,
                    slot: &mut Option<String>|
     -> ApiResult<()> {
        if fields.is_null(key) {
            *slot = None;
            changed = true;
        } else if let Some(value) = fields.string(key)? {
            *slot = Some(rule(&value).map_err(|why| ApiError::invalid_property(why, key))?);
            changed = true;
        }
        Ok(())
    };
    text(
        fields,
        "description",
        validate::client_description,
        &mut profile.description,
    )?;
    text(
        fields,
        "logo_uri",
        validate::logo_uri,
        &mut profile.logo_uri,
    )?;
    text(
        fields,
        "initiate_login_uri",
        validate::initiate_login_uri,
        &mut profile.initiate_login_uri,
    )?;
    if fields.is_null("client_metadata") {
        profile.client_metadata.clear();
        changed = true;
    } else if let Some(members) = fields.object_value("client_metadata")? {
        profile.client_metadata = validate::client_metadata(&members)
            .map_err(|why| ApiError::invalid_property(why, "client_metadata"))?;
        changed = true;
    }
    if let Some(origins) = fields.strings("allowed_origins")? {
        validate::urls(&origins, UrlKind::WebOrigin, app_type)
            .map_err(|why| ApiError::invalid_property(why, "allowed_origins"))?;
        profile.allowed_origins = origins;
        changed = true;
    }
    Ok(changed.then_some(profile))
}

/// `token_endpoint_auth_method` of a `app_type` application: `none` for public ones, a
/// secret method for confidential ones (the token endpoint accepts the secret either way).
fn auth_method(fields: &mut Fields, app_type: AppType) -> ApiResult<Option<String>> {
    let Some(method) = fields.string("token_endpoint_auth_method")? else {
        return Ok(None);
    };
    let allowed: &[&str] = if app_type.is_public() {
        &["none"]
    } else {
        &["client_secret_post", "client_secret_basic"]
    };
    if !allowed.contains(&method.as_str()) {
        return Err(ApiError::bad_request(format!(
            "token_endpoint_auth_method of a {} application must be one of: {}",
            app_type.as_str(),
            allowed.join(", ")
        )));
    }
    Ok(Some(method))
}
const REFRESH_FIELDS: &[&str] = &[
    "rotation_type",
    "expiration_type",
    "token_lifetime",
    "idle_token_lifetime",
    "infinite_token_lifetime",
    "infinite_idle_token_lifetime",
    "leeway",
];

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
    state
        .store()
        .find_client(client_id)
        .await?
        .ok_or_else(not_found)
}

fn urls(
    fields: &mut Fields,
    key: &str,
    kind: UrlKind,
    app_type: AppType,
) -> ApiResult<Option<Vec<String>>> {
    let Some(list) = fields.strings(key)? else {
        return Ok(None);
    };
    validate::urls(&list, kind, app_type).map_err(ApiError::bad_request)?;
    Ok(Some(list))
}

fn grant_types(fields: &mut Fields, app_type: AppType) -> ApiResult<Option<Vec<String>>> {
    let Some(list) = fields.strings("grant_types")? else {
        return Ok(None);
    };
    validate::grant_types(&list, app_type).map_err(ApiError::bad_request)?;
    Ok(Some(list))
}

/// `oidc_conformant`: Tessera is always OIDC-conformant; `false` cannot be honoured.
fn oidc_conformant(fields: &mut Fields) -> ApiResult<()> {
    if fields.boolean("oidc_conformant")? == Some(false) {
        return Err(ApiError::bad_request(
            "oidc_conformant cannot be false: Tessera applications are always OIDC-conformant",
        ));
    }
    Ok(())
}

/// Auth0's `refresh_token` object: Tessera always rotates and expires refresh tokens, so
/// only the lifetimes and `leeway` (the reuse interval) can change.
fn refresh_policy(fields: &mut Fields, current: RefreshPolicy) -> ApiResult<Option<RefreshPolicy>> {
    let Some(mut refresh) = fields.object("refresh_token", REFRESH_FIELDS)? else {
        return Ok(None);
    };
    let fixed = |value: Option<String>, expected: &str, key: &str| -> ApiResult<()> {
        match value {
            Some(v) if v != expected => Err(ApiError::bad_request(format!(
                "refresh_token.{key} must be {expected:?}: Tessera always rotates and expires refresh tokens"
            ))),
            _ => Ok(()),
        }
    };
    fixed(
        refresh.string("rotation_type")?,
        "rotating",
        "rotation_type",
    )?;
    fixed(
        refresh.string("expiration_type")?,
        "expiring",
        "expiration_type",
    )?;
    for key in ["infinite_token_lifetime", "infinite_idle_token_lifetime"] {
        if refresh.boolean(key)? == Some(true) {
            return Err(ApiError::bad_request(format!(
                "refresh_token.{key} cannot be true: refresh tokens always expire in Tessera"
            )));
        }
    }
    let seconds = |value: Option<i64>, key: &str, max: i64| -> ApiResult<Option<i64>> {
        match value {
            Some(v) if !(0..=max).contains(&v) => Err(ApiError::bad_request(format!(
                "refresh_token.{key} must be between 0 and {max} seconds"
            ))),
            other => Ok(other),
        }
    };
    // Auth0's bounds: lifetimes up to a year, leeway up to a minute.
    let policy = RefreshPolicy {
        token_lifetime: seconds(
            refresh.integer("token_lifetime")?,
            "token_lifetime",
            31_557_600,
        )?
        .unwrap_or(current.token_lifetime),
        idle_token_lifetime: seconds(
            refresh.integer("idle_token_lifetime")?,
            "idle_token_lifetime",
            31_557_600,
        )?
        .unwrap_or(current.idle_token_lifetime),
        reuse_interval: seconds(refresh.integer("leeway")?, "leeway", 60)?
            .unwrap_or(current.reuse_interval),
    };
    Ok(Some(policy))
}

/// `allowed_apis` (Tessera's): identifiers or ids of existing APIs; `null` = every API.
async fn allowed_apis(
    state: &AppState,
    fields: &mut Fields,
) -> ApiResult<Option<Option<Vec<String>>>> {
    if fields.is_null("allowed_apis") {
        return Ok(Some(None));
    }
    let Some(names) = fields.strings("allowed_apis")? else {
        return Ok(None);
    };
    let mut identifiers: Vec<String> = Vec::new();
    for name in names {
        let api = state
            .store()
            .find_resource_server(&name)
            .await?
            .ok_or_else(|| {
                let shown: String = name.chars().take(100).collect();
                ApiError::bad_request(format!(
                    "allowed_apis: no API with identifier or id {shown:?}"
                ))
            })?;
        if !identifiers.contains(&api.identifier) {
            identifiers.push(api.identifier);
        }
    }
    Ok(Some(Some(identifiers)))
}

/// `GET /api/v2/clients`: by page (`created_at` order) or by checkpoint (`from` /
/// `take`, `client_id` order). `app_type`, `is_first_party` and `client_ids` filter in
/// SQL; `is_global=true` finds the global client alone (`GLOBAL_CLIENT_ID`), and no
/// client was registered from a metadata document (`external_client_id`); `q` accepts the two
/// queries Auth0 documents, both about organizations, which Tessera does not have.
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    require(&state, &headers, &["read:clients"]).await?;
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
        let page = state.store().clients_from(&filter, checkpoint).await?;
        return query.respond_checkpoint(page.map(shape), "clients");
    }
    let page = state.store().list_clients(&filter, paging.slice()).await?;
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
    require(&state, &headers, &["read:clients"]).await?;
    let fields = Query::parse(query.as_deref(), &["fields", "include_fields"])?.field_filter()?;
    if id == GLOBAL_CLIENT_ID {
        return Ok(Json(fields.apply(global_client())).into_response());
    }
    let client = find(&state, &id).await?;
    Ok(Json(fields.apply(wire::client(&client, None))).into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["create:clients"]).await?;
    let mut fields = body::object(&headers, body, FIELDS)?;
    let name = Fields::required("name", fields.string("name")?)?;
    let name = validate::name(&name, "application").map_err(ApiError::bad_request)?;
    let app_type = match fields.string("app_type")? {
        Some(text) => validate::app_type(&text).map_err(ApiError::bad_request)?,
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
    let allowed_apis = allowed_apis(&state, &mut fields).await?.flatten();
    let secret = (!app_type.is_public()).then(ids::client_secret);
    let now = now();
    let profile = profile(&mut fields, &ClientProfile::default(), app_type)?.unwrap_or_default();
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
        created_at: now,
        updated_at: now,
    };
    fixed_members(&mut fields, &wire::client(&client, None))?;
    state.store().create_client(&client).await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::client(&client, secret.as_deref())),
    )
        .into_response())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:clients"]).await?;
    refuse_global(&id)?;
    let mut fields = body::object(&headers, body, FIELDS)?;
    let client = find(&state, &id).await?;
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
    let update = ClientUpdate {
        name: fields
            .string("name")?
            .map(|n| validate::name(&n, "application").map_err(ApiError::bad_request))
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
        allowed_apis: allowed_apis(&state, &mut fields).await?,
        refresh: refresh_policy(&mut fields, client.refresh)?,
        token_endpoint_auth_method: auth_method(&mut fields, app_type)?,
        profile: profile(&mut fields, &client.profile, app_type)?,
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
    state.machine_access().forget_client(&client.client_id);
    Ok(Json(wire::client(&client, None)).into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    require(&state, &headers, &["delete:clients"]).await?;
    refuse_global(&id)?;
    state
        .store()
        .delete_client(&id)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.machine_access().forget_client(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v2/clients/{id}/rotate-secret` (scope `update:client_keys`, as on Auth0):
/// a new secret, shown in this response only; the old one stops working at once.
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    require(&state, &headers, &["update:client_keys"]).await?;
    refuse_global(&id)?;
    let client = find(&state, &id).await?;
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
    state.machine_access().forget_client(&client.client_id);
    Ok(Json(wire::client(&client, Some(&secret))).into_response())
}
