//! What every dashboard page shares: the frame (navigation, the signed-in administrator,
//! the CSRF token its forms carry), the fixed texts of flash notices, and the pages that
//! refuse (sign-in failed, forbidden, a store error).

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use tessera_store::StoreError;

use super::assets;
use super::session::Admin;
use crate::pages::html;

/// The frame around a page's content.
pub(crate) struct Frame<'a> {
    pub(crate) css: &'static str,
    pub(crate) issuer: &'a str,
    pub(crate) email: &'a str,
    pub(crate) csrf: &'a str,
    /// The navigation entry to mark current.
    pub(crate) section: &'static str,
    pub(crate) notice: Option<&'static str>,
    /// A viewer: forms are not shown.
    pub(crate) read_only: bool,
}

impl<'a> Frame<'a> {
    pub(crate) fn new(
        state: &'a crate::AppState,
        admin: &'a Admin,
        section: &'static str,
        notice: Option<&str>,
    ) -> Self {
        Frame {
            css: assets::stylesheet_path(),
            issuer: state.issuer(),
            email: admin.user.email_or_id(),
            csrf: &admin.csrf,
            section,
            notice: notice.and_then(notice_text),
            read_only: !admin.principal.writes_anything(),
        }
    }
}

/// The notices a redirect may ask for (`?notice=key`): fixed texts, so a link cannot make
/// the dashboard say something else.
fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "api_created" => "The API was created.",
        "api_saved" => "The API's settings were saved.",
        "api_deleted" => "The API was deleted.",
        "permission_added" => "The permission was added.",
        "permission_removed" => "The permission was removed.",
        "grant_saved" => "The application's access was saved.",
        "grant_removed" => "The application is no longer authorized.",
        "app_created" => "The application was created.",
        "app_saved" => "The application's settings were saved.",
        "app_deleted" => "The application was deleted.",
        "secret_rotated" => "A new client secret was made; the old one no longer works.",
        "credential_added" => {
            "The key was added: the application now authenticates with a JWT signed by its private key."
        }
        "credential_deleted" => "The key was deleted: it no longer authenticates the application.",
        "user_created" => "The user was created.",
        "user_saved" => "The user was saved.",
        "user_deleted" => "The user was deleted.",
        "factors_reset" => {
            "The user's second factors were reset: they enroll again at their next login that needs one."
        }
        "signed_out" => "Signed out: that browser or application signs in again.",
        "signed_out_everywhere" => {
            "Signed out everywhere: every browser and application of the user signs in again."
        }
        "role_created" => "The role was created.",
        "role_saved" => "The role was saved.",
        "role_deleted" => "The role was deleted.",
        "keys_rotated" => "The signing keys were rotated.",
        "admins_mfa_on" => "Administrators now pass a second factor at their next sign-in.",
        "admins_mfa_off" => "Administrators no longer need a second factor to sign in.",
        "brute_force_saved" => "The brute-force protection settings were saved.",
        "blocks_lifted" => {
            "Brute-force blocks lifted: the user signs in again from those networks."
        }
        "action_created" => "The action was created as a draft: write its code, then deploy it.",
        "action_saved" => "The draft was saved. Deploy it for triggers to run it.",
        "action_deployed" => "The draft was deployed as a new version.",
        "action_rolled_back" => "That version's code was deployed as a new version.",
        "action_deleted" => "The action was deleted.",
        "bindings_saved" => "The trigger's actions were saved.",
        "connection_created" => {
            "The connection was created: enable it for the applications that sign in with it."
        }
        "connection_saved" => "The connection's settings were saved.",
        "connection_deleted" => "The connection was deleted.",
        "connection_apps_saved" => "The connection's applications were saved.",
        "stream_created" => "The stream was created: events are delivered to its endpoint.",
        "stream_saved" => "The stream's settings were saved.",
        "stream_paused" => "The stream was paused: no events are delivered until it resumes.",
        "stream_resumed" => "The stream was resumed: delivery goes on from where it stopped.",
        "stream_deleted" => "The stream was deleted.",
        _ => return None,
    })
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessagePage<'a> {
    css: &'static str,
    title: &'a str,
    message: &'a str,
    sign_in: bool,
}

fn message(status: StatusCode, title: &str, text: &str, sign_in: bool) -> Response {
    html(
        status,
        &MessagePage {
            css: assets::stylesheet_path(),
            title,
            message: text,
            sign_in,
        },
    )
}

/// Signed in, but without any permission of the Management API: no data, only this.
pub(crate) fn forbidden() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "No access",
        "Your account is not an administrator of this tenant. Ask an administrator to run \
         `tessera admins add` with your email address.",
        false,
    )
}

/// A form refused before it was read (CSRF, origin, size).
pub(crate) fn refused(status: StatusCode, text: &str) -> Response {
    message(status, "Request refused", text, false)
}

pub(crate) fn sign_in_failed(status: StatusCode, text: &str) -> Response {
    message(status, "Sign-in failed", text, true)
}

pub(crate) fn signed_out() -> Response {
    message(
        StatusCode::OK,
        "Signed out",
        "You have signed out of the dashboard.",
        true,
    )
}

pub(crate) fn store_error(error: StoreError) -> Response {
    if error.is_transient() {
        tracing::warn!(%error, "dashboard: the database is unavailable");
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "The database did not answer. Try again in a moment.",
            false,
        );
    }
    tracing::error!(%error, "dashboard: database error");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The dashboard could not complete the request.",
        false,
    )
}

/// A page or a refusal with the status an operation's error has.
pub(crate) fn operation_refused(error: &crate::management::ApiError) -> Response {
    let title = match error.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        _ => "Request refused",
    };
    message(error.status, title, &error.message, false)
}

/// Renders a dashboard page.
pub(crate) fn page(page: &impl Template) -> Response {
    html(StatusCode::OK, page)
}

/// Renders a form again after the operation refused it.
pub(crate) fn form_again(page: &impl Template) -> Response {
    html(StatusCode::BAD_REQUEST, page)
}

/// One tab of an object's page (an API's, an application's, a user's, a role's).
pub(crate) struct Tab {
    pub(crate) href: String,
    pub(crate) label: &'static str,
    pub(crate) current: bool,
}

/// The tabs `list` (path under `base`, `""` for `base` itself; label) with `current`
/// marked.
pub(crate) fn tabs(base: &str, list: &[(&str, &'static str)], current: &str) -> Vec<Tab> {
    list.iter()
        .map(|(tab, label)| Tab {
            href: if tab.is_empty() {
                base.to_string()
            } else {
                format!("{base}/{tab}")
            },
            label,
            current: *tab == current,
        })
        .collect()
}

/// The tenant's domain as Auth0's SDKs take it: the issuer's host, and port if any.
pub(crate) fn domain(issuer: &str) -> String {
    url::Url::parse(issuer)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}")))
        })
        .unwrap_or_default()
}
