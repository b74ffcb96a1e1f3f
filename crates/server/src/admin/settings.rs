//! Settings: the tenant (issuer, endpoints, signing keys with their states and a rotate
//! button), its brute-force protection (read and changed through
//! `management::attack_protection`) and who administers it (the holders of the system
//! roles).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use tessera_core::User;
use tessera_core::system::{ADMIN_ROLE, VIEWER_ROLE};
use tessera_jose::Algorithm;
use tessera_store::{SigningKeyRecord, Slice};

use super::form::{Body, FormError};
use super::session::{Admin, AdminForm};
use super::views::{self, Frame};
use super::{notice_of, query_of};
use crate::AppState;
use crate::brute_force::{BLOCK, PER_IDENTIFIER, PER_IDENTIFIER_AND_IP, USER_NOTIFICATION};
use crate::clock::now;
use crate::edge::params::Params;
use crate::management::{ApiError, Fields, attack_protection, roles};
use crate::pages::redirect;

/// Reading and rotating signing keys: Auth0's scopes for `/api/v2/keys/signing`.
const READ_KEYS: &[&str] = &["read:signing_keys"];
const ROTATE_KEYS: &[&str] = &["create:signing_keys", "update:signing_keys"];
/// Requiring a second factor of administrators: Auth0's scopes for the MFA settings.
const CHANGE_MFA: &[&str] = &["update:guardian_factors", "update:mfa_policies"];

/// The counting modes as the form offers them: Auth0's value and what it means.
const MODES: &[(&str, &str)] = &[
    (PER_IDENTIFIER_AND_IP, "Per account and network"),
    (PER_IDENTIFIER, "Per account"),
];

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

/// Brute-force protection as its form shows it: the stored settings, or what was posted
/// when the change was refused.
struct BruteForceForm {
    enabled: bool,
    /// The `block` shield.
    block: bool,
    /// The `user_notification` shield: the owner of a blocked account is mailed a link
    /// lifting the block.
    notify: bool,
    mode: String,
    max_attempts: String,
    /// One address or network a line.
    allowlist: String,
}

impl BruteForceForm {
    /// From the settings in Auth0's shape (`management::attack_protection::settings`).
    fn of_settings(settings: &Value) -> Self {
        let strings = |member: &str| -> Vec<&str> {
            settings[member]
                .as_array()
                .map(|items| items.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        BruteForceForm {
            enabled: settings["enabled"].as_bool().unwrap_or(false),
            block: strings("shields").contains(&BLOCK),
            notify: strings("shields").contains(&USER_NOTIFICATION),
            mode: settings["mode"].as_str().unwrap_or("").to_string(),
            max_attempts: settings["max_attempts"]
                .as_i64()
                .map(|max| max.to_string())
                .unwrap_or_default(),
            allowlist: strings("allowlist").join("\n"),
        }
    }

    /// What was posted, to show again with the refusal.
    fn of_params(params: &Params) -> Self {
        let text = |name: &str| params.get(name).unwrap_or("").to_string();
        BruteForceForm {
            enabled: params.get("enabled").is_some(),
            block: params.get("block").is_some(),
            notify: params.get("notify").is_some(),
            mode: text("mode"),
            max_attempts: text("max_attempts"),
            allowlist: text("allowlist"),
        }
    }

    /// One sentence of what stored settings do, for whoever cannot change them too.
    fn summary(&self) -> String {
        let counted = if self.mode == PER_IDENTIFIER {
            "from any network"
        } else {
            "from one network"
        };
        match (self.enabled, self.block) {
            (false, _) => "Off: failed password attempts are not counted.".to_string(),
            (true, false) => format!(
                "Counting only: failed password attempts are counted ({counted}) but nobody is refused."
            ),
            (true, true) => format!(
                "On: an account is locked out after {} failed password attempts {counted}, \
                 until an administrator unblocks it{} or its password is reset.",
                self.max_attempts,
                if self.notify {
                    ", its owner follows the link mailed to them"
                } else {
                    ""
                }
            ),
        }
    }
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
    /// `None` for an administrator who may not read it (`read:attack_protection`).
    brute_force: Option<BruteForceForm>,
    /// What the stored settings do (a refused form shows what was posted, not this).
    brute_force_summary: String,
    modes: &'static [(&'static str, &'static str)],
    can_change_brute_force: bool,
    /// The brute-force form's refusal.
    error: Option<FormError>,
}

impl SettingsPage<'_> {
    /// The refusal about a member of the settings (`shields`: the Block and Notify boxes).
    fn error_on(&self, member: &str) -> Option<&str> {
        super::form::error_on(&self.error, member)
    }

    /// A refusal about no field of the form.
    fn general_error(&self) -> Option<&str> {
        let error = self.error.as_ref()?;
        let on_a_field = error
            .property
            .as_deref()
            .is_some_and(|p| attack_protection::FIELDS.contains(&p));
        (!on_a_field).then_some(error.message.as_str())
    }
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

/// The page as stored now; `notice` is the key a redirect asked for.
async fn settings_page<'a>(
    state: &'a AppState,
    admin: &'a Admin,
    notice: Option<&str>,
) -> Result<SettingsPage<'a>, Response> {
    admin
        .principal
        .require(READ_KEYS)
        .map_err(|error| views::operation_refused(&error))?;
    let records: Vec<SigningKeyRecord> = state
        .store()
        .published_keys()
        .await
        .map_err(views::store_error)?;
    let groups = admins(state, admin)
        .await
        .map_err(|error| views::operation_refused(&error))?;
    let admins_mfa = crate::admin_identities::mfa_required(state.store())
        .await
        .map_err(views::store_error)?;
    // A custom role may read keys but not the attack protection: the section says so.
    let brute_force = if admin.principal.require(attack_protection::READ).is_ok() {
        let settings = attack_protection::settings(state, &admin.principal)
            .await
            .map_err(|error| views::operation_refused(&error))?;
        Some(BruteForceForm::of_settings(&settings))
    } else {
        None
    };
    let brute_force_summary = brute_force
        .as_ref()
        .map(BruteForceForm::summary)
        .unwrap_or_default();
    Ok(SettingsPage {
        frame: Frame::new(state, admin, "settings", notice),
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
        brute_force,
        brute_force_summary,
        modes: MODES,
        can_change_brute_force: attack_protection::UPDATE.iter().all(|s| admin.may(s)),
        error: None,
    })
}

/// `GET /admin/settings`.
pub(crate) async fn settings(
    State(state): State<AppState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_of(query);
    match settings_page(&state, &admin, notice_of(&query)).await {
        Ok(page) => views::page(&page),
        Err(response) => response,
    }
}

/// The brute-force form as the body `PATCH /api/v2/attack-protection/brute-force-protection`
/// takes: every member set, so the form is the whole of the settings.
fn brute_force_body(params: &Params) -> Result<Fields, ApiError> {
    let shields: Vec<&str> = [("block", BLOCK), ("notify", USER_NOTIFICATION)]
        .into_iter()
        .filter(|(field, _)| params.get(field).is_some())
        .map(|(_, shield)| shield)
        .collect();
    let body = Body::new()
        .checkbox(params, "enabled")
        .value("shields", json!(shields))
        .text(params, "mode")
        .integer(params, "max_attempts")?
        .lines(params, "allowlist")
        .into_map();
    Fields::from_map(body, attack_protection::FIELDS)
}

/// `POST /admin/settings/brute-force` (`enabled`, `block`, `notify`, `mode`,
/// `max_attempts`, `allowlist`): the tenant's brute-force protection, as the Management API changes it.
/// A refusal changes nothing and shows the form again with what was posted.
pub(crate) async fn save_brute_force(State(state): State<AppState>, form: AdminForm) -> Response {
    // Refused before the form is read: a viewer learns nothing from its validation.
    if let Err(error) = form.admin.principal.require(attack_protection::UPDATE) {
        return views::operation_refused(&error);
    }
    let result = match brute_force_body(&form.params) {
        Ok(fields) => attack_protection::update(&state, &form.admin.principal, fields).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(_) => {
            tracing::info!("brute-force protection changed from the dashboard");
            redirect("/admin/settings?notice=brute_force_saved")
        }
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            let mut page = match settings_page(&state, &form.admin, None).await {
                Ok(page) => page,
                Err(response) => return response,
            };
            page.brute_force = Some(BruteForceForm::of_params(&form.params));
            page.error = Some(error.into());
            views::form_again(&page)
        }
        Err(error) => views::operation_refused(&error),
    }
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
