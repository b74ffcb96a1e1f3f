//! The members of an application's body that need more than a type check, each read
//! by its rule in `tessera_core::validate`; `create` and `update` share them.

use serde_json::Value;
use tessera_core::validate::{self, UrlKind};
use tessera_core::{AppType, ClientProfile, RefreshPolicy};

use super::super::body::Fields;
use super::super::error::{ApiError, ApiResult};
use super::super::wire;
use crate::AppState;

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
pub(super) fn fixed_members(fields: &mut Fields, shown: &wire::Client) -> ApiResult<()> {
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
pub(super) fn profile(
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
pub(super) fn auth_method(fields: &mut Fields, app_type: AppType) -> ApiResult<Option<String>> {
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
        ))
        .about("token_endpoint_auth_method"));
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

pub(super) fn urls(
    fields: &mut Fields,
    key: &str,
    kind: UrlKind,
    app_type: AppType,
) -> ApiResult<Option<Vec<String>>> {
    let Some(list) = fields.strings(key)? else {
        return Ok(None);
    };
    validate::urls(&list, kind, app_type).map_err(|why| ApiError::bad_request(why).about(key))?;
    Ok(Some(list))
}

pub(super) fn grant_types(
    fields: &mut Fields,
    app_type: AppType,
) -> ApiResult<Option<Vec<String>>> {
    let Some(list) = fields.strings("grant_types")? else {
        return Ok(None);
    };
    validate::grant_types(&list, app_type)
        .map_err(|why| ApiError::bad_request(why).about("grant_types"))?;
    Ok(Some(list))
}

/// `oidc_conformant`: Tessera is always OIDC-conformant; `false` cannot be honoured.
pub(super) fn oidc_conformant(fields: &mut Fields) -> ApiResult<()> {
    if fields.boolean("oidc_conformant")? == Some(false) {
        return Err(ApiError::bad_request(
            "oidc_conformant cannot be false: Tessera applications are always OIDC-conformant",
        )
        .about("oidc_conformant"));
    }
    Ok(())
}

/// Auth0's `refresh_token` object: Tessera always rotates and expires refresh tokens, so
/// only the lifetimes and `leeway` (the reuse interval) can change.
pub(super) fn refresh_policy(
    fields: &mut Fields,
    current: RefreshPolicy,
) -> ApiResult<Option<RefreshPolicy>> {
    let Some(mut refresh) = fields.object("refresh_token", REFRESH_FIELDS)? else {
        return Ok(None);
    };
    let fixed = |value: Option<String>, expected: &str, key: &str| -> ApiResult<()> {
        match value {
            Some(v) if v != expected => Err(ApiError::bad_request(format!(
                "refresh_token.{key} must be {expected:?}: Tessera always rotates and expires refresh tokens"
            ))
            .about("refresh_token")),
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
            ))
            .about("refresh_token"));
        }
    }
    let seconds = |value: Option<i64>, key: &str, max: i64| -> ApiResult<Option<i64>> {
        match value {
            Some(v) if !(0..=max).contains(&v) => Err(ApiError::bad_request(format!(
                "refresh_token.{key} must be between 0 and {max} seconds"
            ))
            .about("refresh_token")),
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
pub(super) async fn allowed_apis(
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
                .about("allowed_apis")
            })?;
        if !identifiers.contains(&api.identifier) {
            identifiers.push(api.identifier);
        }
    }
    Ok(Some(Some(identifiers)))
}
