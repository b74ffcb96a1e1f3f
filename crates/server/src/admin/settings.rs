//! Settings: the tenant (issuer, endpoints, signing keys with their states and a rotate
//! button) and who administers it (the holders of the system roles).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use tessera_core::User;
use tessera_core::system::{ADMIN_ROLE, VIEWER_ROLE};
use tessera_jose::Algorithm;
use tessera_store::{SigningKeyRecord, Slice};

use super::session::{Admin, AdminForm};
use super::views::{self, Frame};
use super::{notice_of, query_of};
use crate::AppState;
use crate::clock::now;
use crate::management::{ApiError, roles};
use crate::pages::redirect;

/// Reading and rotating signing keys: Auth0's scopes for `/api/v2/keys/signing`.
const READ_KEYS: &[&str] = &["read:signing_keys"];
const ROTATE_KEYS: &[&str] = &["create:signing_keys", "update:signing_keys"];
/// Requiring a second factor of administrators: Auth0's scopes for the MFA settings.
const CHANGE_MFA: &[&str] = &["update:guardian_factors", "update:mfa_policies"];

/// Administrators shown per role (the role's Users tab pages through all of them).
const ADMINS_SHOWN: u32 = 50;

struct KeyRow {
    kid: String,
    alg: String,
    state: &'static str,
    created: String,
}

struct AdminGroup {
    role_id: &'static str,
    role_name: &'static str,
    users: Vec<User>,
    total: u64,
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage<'a> {
    frame: Frame<'a>,
    issuer: &'a str,
    keys: Vec<KeyRow>,
    algorithms: Vec<&'static str>,
    groups: Vec<AdminGroup>,
    can_rotate: bool,
    shown: u32,
    admins_mfa: bool,
    can_change_mfa: bool,
}

async fn admins(state: &AppState, admin: &Admin) -> Result<Vec<AdminGroup>, ApiError> {
    let mut groups = Vec::new();
    for role in [ADMIN_ROLE, VIEWER_ROLE] {
        let slice = Slice {
            offset: 0,
            limit: ADMINS_SHOWN,
            count: true,
        };
        let page = roles::users(state, &admin.principal, role.id, slice).await?;
        groups.push(AdminGroup {
            role_id: role.id,
            role_name: role.name,
            total: page.total.unwrap_or(0),
            users: page.items,
        });
    }
    Ok(groups)
}

/// `GET /admin/settings`.
pub(crate) async fn settings(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    if let Err(error) = admin.principal.require(READ_KEYS) {
        return views::operation_refused(&error);
    }
    let records: Vec<SigningKeyRecord> = match state.store().published_keys().await {
        Ok(records) => records,
        Err(error) => return views::store_error(error),
    };
    let groups = match admins(&state, &admin).await {
        Ok(groups) => groups,
        Err(error) => return views::operation_refused(&error),
    };
    let admins_mfa = match crate::admin_identities::mfa_required(state.store()).await {
        Ok(required) => required,
        Err(error) => return views::store_error(error),
    };
    views::page(&SettingsPage {
        frame: Frame::new(&state, &admin, "settings", notice_of(&query)),
        issuer: state.issuer(),
        keys: records
            .into_iter()
            .map(|k| KeyRow {
                created: tessera_core::claims::rfc3339(k.created_at),
                state: k.state.as_str(),
                kid: k.kid,
                alg: k.alg,
            })
            .collect(),
        algorithms: Algorithm::ALL.iter().map(|a| a.as_str()).collect(),
        groups,
        can_rotate: ROTATE_KEYS.iter().all(|s| admin.may(s)),
        shown: ADMINS_SHOWN,
        admins_mfa,
        can_change_mfa: CHANGE_MFA.iter().all(|s| admin.may(s)),
    })
}

/// `POST /admin/settings/keys/rotate` (`alg`): next becomes current, current previous, a
/// new next is made. Only soon after a password was entered.
pub(crate) async fn rotate_keys(State(state): State<AppState>, form: AdminForm) -> Response {
    for scope in ROTATE_KEYS {
        if let Err(error) = form.admin.principal.require(&[scope]) {
            return views::operation_refused(&error);
        }
    }
    if let Some(again) = super::sign_in_again(&form.admin, "/admin/settings") {
        return again;
    }
    let Some(alg) = form
        .params
        .get("alg")
        .and_then(|a| Algorithm::parse(a).ok())
    else {
        return views::refused(StatusCode::BAD_REQUEST, "Choose RS256, ES256 or EdDSA.");
    };
    match crate::keys::rotate(state.store(), &state.config().master_key, alg, now()).await {
        Ok(kid) => {
            tracing::info!(alg = alg.as_str(), next = %kid, "signing keys rotated from the dashboard");
            state.reload_keys().await;
            redirect("/admin/settings?notice=keys_rotated")
        }
        Err(error) => {
            tracing::error!(%error, "signing key rotation failed");
            views::refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The keys could not be rotated. Nothing changed.",
            )
        }
    }
}

/// `POST /admin/settings/mfa` (`required` = `true` or `false`): whether administrators
/// pass a second factor to sign in here (`crate::admin_identities::require_mfa`). Only
/// soon after a password was entered, as key rotation.
pub(crate) async fn require_mfa(State(state): State<AppState>, form: AdminForm) -> Response {
    if let Err(error) = form.admin.principal.require(CHANGE_MFA) {
        return views::operation_refused(&error);
    }
    if let Some(again) = super::sign_in_again(&form.admin, "/admin/settings") {
        return again;
    }
    let required = match form.params.get("required") {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return views::refused(
                StatusCode::BAD_REQUEST,
                "Say whether a second factor is required (true or false).",
            );
        }
    };
    match crate::admin_identities::require_mfa(state.store(), required).await {
        Ok(()) => {
            tracing::info!(
                required,
                "administrators' second factor changed from the dashboard"
            );
            let notice = if required {
                "admins_mfa_on"
            } else {
                "admins_mfa_off"
            };
            redirect(&format!("/admin/settings?notice={notice}"))
        }
        Err(error) => views::store_error(error),
    }
}
