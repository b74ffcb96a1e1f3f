//! Auth0 features Tessera does not have, answered the way Auth0 answers a tenant without
//! them, so that tools reading a whole tenant (auth0-deploy-cli's export, Terraform's
//! refresh) see "none" instead of failing on a 404 they do not expect.
//!
//! One table, [`ABSENT`], decides every such path:
//! - **collections** Tessera has none of (forms, organizations, …) list as
//!   empty, in the shape Auth0 pages that collection in; creating one is refused with
//!   Auth0's `403 feature_not_enabled`;
//! - **settings** describe what Tessera does instead (the address throttle it enforces,
//!   its login prompt, no MFA policy); writing the same values back is accepted, since it
//!   changes nothing, and any other value is refused saying what Tessera does;
//! - **features that are off** (Hooks, prompt partials, CAPTCHA) answer
//!   `403 feature_not_enabled` to every method, as Auth0 does for a tenant whose plan
//!   lacks them.
//!
//! Any Management API caller may read these answers (they hold no tenant data), so no
//! scope is required beyond a valid token. Paths not in the table stay 404, which the
//! tools already read as "not available".

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{MatchedPath, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any};
use serde_json::{Value, json};

use super::auth::authenticate;
use super::error::{ApiError, ApiResult};
use super::paging::Query;
use crate::AppState;

/// How a collection Tessera has none of is listed.
#[derive(Clone, Copy)]
enum Listing {
    /// `page`/`per_page`/`include_totals`: a bare array unless totals are asked for.
    Paged,
    /// Always an object holding the (empty) array under its key, as Auth0's newer,
    /// checkpoint-paged collections do.
    Object,
    /// A bare array, unpaged (custom domains).
    Bare,
}

/// What one absent path answers.
#[derive(Clone, Copy)]
enum Answer {
    /// A collection: `key` is the member holding it in Auth0's list shape.
    Empty {
        key: &'static str,
        listing: Listing,
        what: &'static str,
    },
    /// A settings object (or array) describing what Tessera does.
    Settings(fn(&AppState) -> Value),
    /// A feature that is off: 403 for every method.
    Off(&'static str),
}

/// Every absent path, relative to `/api/v2`.
const ABSENT: &[(&str, Answer)] = &[
    (
        "/hooks",
        Answer::Off("Hooks are not available: Tessera does not run Hooks"),
    ),
    (
        "/prompts/{prompt}/partials",
        Answer::Off("Prompt partials are not available in Tessera"),
    ),
    (
        "/attack-protection/bot-detection",
        Answer::Off("Bot detection is not available in Tessera"),
    ),
    (
        "/attack-protection/captcha",
        Answer::Off("CAPTCHA is not available in Tessera"),
    ),
    (
        "/supplemental-signals",
        Answer::Off("Supplemental signals are not available in Tessera"),
    ),
    empty(
        "/actions/modules",
        "modules",
        Listing::Object,
        "Action modules",
    ),
    empty(
        "/organizations",
        "organizations",
        Listing::Paged,
        "Organizations",
    ),
    empty(
        "/custom-domains",
        "custom_domains",
        Listing::Bare,
        "Custom domains",
    ),
    empty("/forms", "forms", Listing::Paged, "Forms"),
    empty("/flows", "flows", Listing::Paged, "Flows"),
    empty(
        "/flows/vault/connections",
        "connections",
        Listing::Paged,
        "Flow vault connections",
    ),
    empty(
        "/self-service-profiles",
        "self_service_profiles",
        Listing::Paged,
        "Self-service profiles",
    ),
    empty(
        "/network-acls",
        "network_acls",
        Listing::Paged,
        "Network ACLs",
    ),
    empty(
        "/user-attribute-profiles",
        "user_attribute_profiles",
        Listing::Object,
        "User attribute profiles",
    ),
    empty(
        "/connection-profiles",
        "connection_profiles",
        Listing::Object,
        "Connection profiles",
    ),
    empty(
        "/token-exchange-profiles",
        "token_exchange_profiles",
        Listing::Object,
        "Token exchange profiles",
    ),
    empty(
        "/rate-limit-policies",
        "rate_limit_policies",
        Listing::Object,
        "Rate limit policies",
    ),
    empty(
        "/event-streams",
        "eventStreams",
        Listing::Object,
        "Event streams",
    ),
    empty(
        "/connections-directory-provisionings",
        "directory_provisionings",
        Listing::Object,
        "Directory provisioning",
    ),
    empty(
        "/branding/phone/providers",
        "providers",
        Listing::Object,
        "Phone providers",
    ),
    empty(
        "/branding/phone/templates",
        "templates",
        Listing::Object,
        "Phone templates",
    ),
    ("/prompts", Answer::Settings(prompts)),
    (
        "/prompts/{prompt}/custom-text/{language}",
        Answer::Settings(|_| json!({})),
    ),
    (
        "/attack-protection/suspicious-ip-throttling",
        Answer::Settings(suspicious_ip_throttling),
    ),
    (
        "/attack-protection/breached-password-detection",
        Answer::Settings(breached_password_detection),
    ),
    (
        "/risk-assessments/settings",
        Answer::Settings(|_| json!({ "enabled": false })),
    ),
    (
        "/risk-assessments/settings/new-device",
        Answer::Settings(|_| json!({ "remember_for": 0 })),
    ),
];

const fn empty(
    path: &'static str,
    key: &'static str,
    listing: Listing,
    what: &'static str,
) -> (&'static str, Answer) {
    (path, Answer::Empty { key, listing, what })
}

/// The hosted login asks for the address and the password on one page.
fn prompts(_: &AppState) -> Value {
    json!({
        "universal_login_experience": "new",
        "identifier_first": false,
        "webauthn_platform_first_factor": false,
    })
}

/// `crate::edge::throttle`: requests per client address on the login and token
/// endpoints, refused once over the window's limit.
fn suspicious_ip_throttling(_: &AppState) -> Value {
    json!({ "enabled": true, "shields": ["block"], "allowlist": [] })
}

fn breached_password_detection(_: &AppState) -> Value {
    json!({
        "enabled": false,
        "shields": [],
        "admin_notification_frequency": [],
        "method": "standard",
    })
}

/// Every path of [`ABSENT`], for `super::routes`.
pub(crate) fn templates() -> impl Iterator<Item = &'static str> {
    ABSENT.iter().map(|(path, _)| *path)
}

/// The handler of every absent path (which one: the matched template).
pub(crate) fn route() -> MethodRouter<AppState> {
    any(answer)
}

async fn answer(
    State(state): State<AppState>,
    method: Method,
    matched: MatchedPath,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    authenticate(&state, &headers).await?;
    let template = matched
        .as_str()
        .strip_prefix(super::PREFIX)
        .unwrap_or(matched.as_str());
    let Some((_, answer)) = ABSENT.iter().find(|(path, _)| *path == template) else {
        return Err(ApiError::not_found("Not Found", "inexistent_resource"));
    };
    match *answer {
        Answer::Off(message) => Err(not_enabled(message)),
        Answer::Empty { key, listing, what } => match method {
            Method::GET => list(query.as_deref(), key, listing),
            _ => Err(not_enabled(&format!("{what} are not available in Tessera"))),
        },
        Answer::Settings(current) => {
            let current = current(&state);
            match method {
                Method::GET => {
                    let fields = Query::parse(query.as_deref(), &["fields", "include_fields"])?
                        .field_filter()?;
                    Ok(Json(fields.apply(current)).into_response())
                }
                Method::PATCH | Method::PUT => {
                    let wanted = super::body::json(&headers, body)?;
                    unchanged(&current, &wanted)?;
                    Ok(Json(current).into_response())
                }
                _ => Err(ApiError::new(
                    axum::http::StatusCode::METHOD_NOT_ALLOWED,
                    "Method Not Allowed",
                    None,
                )),
            }
        }
    }
}

fn not_enabled(message: &str) -> ApiError {
    ApiError::forbidden(message.to_string(), "feature_not_enabled")
}

/// The paging parameters Auth0 documents across these collections.
const LIST_PARAMETERS: &[&str] = &[
    "page",
    "per_page",
    "include_totals",
    "from",
    "take",
    "fields",
    "include_fields",
];

/// An empty list in the collection's shape; paging parameters are read (and refused when
/// malformed) like those of the collections Tessera has.
fn list(query: Option<&str>, key: &str, listing: Listing) -> ApiResult<Response> {
    let query = Query::parse(query, LIST_PARAMETERS)?;
    Ok(match listing {
        Listing::Bare => Json(json!([])).into_response(),
        Listing::Object => Json(json!({ key: [], "total": 0 })).into_response(),
        Listing::Paged if query.by_checkpoint() => {
            query.checkpoint()?;
            Json(json!({ key: [] })).into_response()
        }
        Listing::Paged => query.paging()?.respond_empty(key),
    })
}

/// A write to settings Tessera does not let change: accepted when every value it sets is
/// the current one.
pub(super) fn unchanged(current: &Value, wanted: &Value) -> ApiResult<()> {
    let differs = match (current, wanted) {
        (Value::Object(current), Value::Object(wanted)) => wanted
            .iter()
            .find(|(name, value)| current.get(*name) != Some(value))
            .map(|(name, _)| name.as_str()),
        _ if current == wanted => None,
        _ => Some("the settings"),
    };
    match differs {
        None => Ok(()),
        Some(name) => {
            let shown: String = name.chars().take(64).collect();
            Err(not_enabled(&format!(
                "Tessera does not let {shown:?} change here; it is {}",
                serde_json::to_string(&current.get(name).unwrap_or(current)).unwrap_or_default()
            )))
        }
    }
}
