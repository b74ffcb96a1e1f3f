//! Server-rendered pages (askama templates, escaped by default) and static assets.

use askama::Template;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage<'a> {
    pub(crate) client_name: &'a str,
    pub(crate) transaction: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) username: &'a str,
    pub(crate) error: Option<&'a str>,
    /// E.g. "your password has been changed", after a reset.
    pub(crate) notice: Option<&'a str>,
    /// Whether to link "Forgot password?" (only when mail can be sent).
    pub(crate) forgot_password: bool,
    /// "Continue with …": the upstream connections enabled for the application.
    pub(crate) upstreams: &'a [UpstreamButton],
    /// Whether the application has a database connection: the email and password form.
    pub(crate) password_form: bool,
    /// Whether its database connection lets users sign themselves up.
    pub(crate) signup: bool,
    /// "Continue with a passkey": the JSON options for `navigator.credentials.get`.
    pub(crate) passkey_options: Option<&'a str>,
}

/// A "Continue with …" button: the connection's name (letters, digits and `-` only) and
/// what it shows.
pub(crate) struct UpstreamButton {
    pub(crate) name: String,
    pub(crate) label: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub(crate) struct SignupPage<'a> {
    pub(crate) client_name: &'a str,
    pub(crate) transaction: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) email: &'a str,
    pub(crate) error: Option<&'a str>,
}

/// The passkey offered after a sign-in (`crate::hosted::passkey`).
#[derive(Template)]
#[template(path = "passkey.html")]
pub(crate) struct PasskeyPage<'a> {
    pub(crate) transaction: &'a str,
    pub(crate) csrf: &'a str,
    /// The JSON options for `navigator.credentials.create` (server-made).
    pub(crate) options: &'a str,
    pub(crate) error: Option<&'a str>,
}

/// The second-factor page (`crate::hosted::mfa`): enrollment, a code, a recovery code, or
/// the new recovery code to save.
#[derive(Template)]
#[template(path = "mfa.html")]
pub(crate) struct MfaPage<'a> {
    pub(crate) transaction: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) enrolling: bool,
    pub(crate) recovery_form: bool,
    /// Whether "Use a recovery code" is linked (the user has one).
    pub(crate) recovery_offered: bool,
    /// The seed as text, while enrolling.
    pub(crate) secret: &'a str,
    /// The key URI's QR code, an SVG drawn by the server (no user text in it).
    pub(crate) qr_svg: &'a str,
    pub(crate) error: Option<&'a str>,
    /// A recovery code to save (shown once), with the way on to the application.
    pub(crate) recovery_code: Option<&'a str>,
    /// Use a registered security key / register one.
    pub(crate) key: bool,
    pub(crate) key_enroll: bool,
    /// The JSON options for `navigator.credentials.get`/`.create` (server-made).
    pub(crate) key_options: &'a str,
    /// Whether a link switches to the app's code, or to a security key.
    pub(crate) otp_offered: bool,
    pub(crate) key_offered: bool,
    /// "Remember this browser for N days" (`remember_days`), ticked or not.
    pub(crate) remember_offered: bool,
    pub(crate) remember_checked: bool,
    pub(crate) remember_days: i64,
}

/// One line of the consent page.
pub(crate) struct ConsentScope {
    pub(crate) value: String,
    pub(crate) description: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub(crate) struct ConsentPage<'a> {
    pub(crate) client_name: &'a str,
    pub(crate) user_email: &'a str,
    pub(crate) api_name: Option<&'a str>,
    pub(crate) scopes: &'a [ConsentScope],
    pub(crate) transaction: &'a str,
    pub(crate) csrf: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    is_error: bool,
}

/// A page that goes on to `location` by itself (a meta refresh, no script).
#[derive(Template)]
#[template(path = "continue.html")]
pub(crate) struct ContinuePage<'a> {
    pub(crate) location: &'a str,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub(crate) struct FormPostPage<'a> {
    pub(crate) action: &'a str,
    pub(crate) fields: &'a [(&'a str, String)],
}

#[derive(Template)]
#[template(path = "web_message.html")]
pub(crate) struct WebMessagePage<'a> {
    pub(crate) origin: &'a str,
    pub(crate) response_json: &'a str,
}

/// Renders a template as an HTML response that no cache keeps.
pub(crate) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, Html(body)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    html(
        status,
        &MessagePage {
            title,
            message,
            is_error: true,
        },
    )
}

pub(crate) fn message_page(title: &str, message: &str) -> Response {
    html(
        StatusCode::OK,
        &MessagePage {
            title,
            message,
            is_error: false,
        },
    )
}

pub(crate) async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing at this address.",
    )
}

pub(crate) async fn static_file(Path(file): Path<String>) -> Response {
    let (body, content_type): (&'static str, &'static str) = match file.as_str() {
        "tessera.css" => (
            include_str!("../static/tessera.css"),
            "text/css; charset=utf-8",
        ),
        "form_post.js" => (
            include_str!("../static/form_post.js"),
            "text/javascript; charset=utf-8",
        ),
        "web_message.js" => (
            include_str!("../static/web_message.js"),
            "text/javascript; charset=utf-8",
        ),
        "webauthn.js" => (
            include_str!("../static/webauthn.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return not_found().await,
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// 302 to `location`, never cached.
pub(crate) fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => invalid_redirect(),
    }
}

pub(crate) fn invalid_redirect() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Invalid redirect",
        "The redirect address is not valid.",
    )
}

/// 303 See Other: after a form POST, the browser follows with a GET.
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = redirect(location);
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}
