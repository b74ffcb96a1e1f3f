//! Who is using the dashboard: the session cookie (its own, `SameSite=Strict`, apart from
//! the login page's SSO session), its idle and absolute limits, the administrator's
//! permissions read from their roles at every request, and the checks every form passes
//! (the session's CSRF token, `Origin` and `Sec-Fetch-Site`).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::{User, ids};
use tessera_store::{AdminSessionRecord, StoreError};

use super::views;
use crate::AppState;
use crate::clock::now;
use crate::edge::params::Params;
use crate::hosted::session::read_cookie;
use crate::management::Principal;

/// A session ends after this long without a request.
pub(crate) const IDLE_LIFETIME: i64 = 30 * 60;
/// … and this long after the login, whatever its use.
pub(crate) const ABSOLUTE_LIFETIME: i64 = 12 * 60 * 60;
/// Revealing or rotating a secret, deleting, rotating keys: only this soon after a
/// password was entered.
pub(crate) const FRESH_LOGIN: i64 = 5 * 60;
/// A session is extended at most once a minute: a burst of pages writes once.
const EXTEND_GRANULARITY: i64 = 60;

const SESSION_COOKIE: &str = "tessera_admin";

/// `__Host-` pins the cookie to this origin (Secure, Path=/, no Domain): only on HTTPS.
pub(crate) fn cookie_name(state: &AppState, base: &str) -> String {
    if state.dashboard_secure_cookies() {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// A `Set-Cookie` for the dashboard: HttpOnly, `SameSite` as given, Secure over HTTPS.
pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
) -> HeaderValue {
    let secure = if state.dashboard_secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .expect("cookie values are base64url")
}

/// The signed-in administrator of a request.
pub(crate) struct Admin {
    pub(crate) user: User,
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
    pub(crate) auth_time: i64,
    id_hash: Vec<u8>,
}

impl Admin {
    /// Whether the password was entered within [`FRESH_LOGIN`].
    pub(crate) fn is_fresh(&self) -> bool {
        now() - self.auth_time <= FRESH_LOGIN
    }

    /// Whether the administrator holds `scope` of the Management API.
    pub(crate) fn may(&self, scope: &str) -> bool {
        self.principal.may(scope)
    }
}

/// Starts a session for `user_id`, who entered their password at `auth_time`, and returns
/// its `Set-Cookie`.
pub(crate) async fn start(
    state: &AppState,
    user_id: &str,
    auth_time: i64,
) -> Result<HeaderValue, StoreError> {
    let value = ids::secret_token();
    let now = now();
    let absolute = now + ABSOLUTE_LIFETIME;
    let record = AdminSessionRecord {
        user_id: user_id.to_string(),
        csrf_token: ids::secret_token(),
        auth_time,
        created_at: now,
        absolute_expires_at: absolute,
        expires_at: (now + IDLE_LIFETIME).min(absolute),
    };
    state
        .store()
        .create_admin_session(&ids::secret_hash(&value), &record)
        .await?;
    Ok(set_cookie(
        state,
        &cookie_name(state, SESSION_COOKIE),
        &value,
        ABSOLUTE_LIFETIME,
        "Strict",
    ))
}

/// Ends the request's session, if any, and returns the `Set-Cookie` that clears it.
pub(crate) async fn end(state: &AppState, admin: &Admin) -> Result<HeaderValue, StoreError> {
    state.store().delete_admin_session(&admin.id_hash).await?;
    Ok(set_cookie(
        state,
        &cookie_name(state, SESSION_COOKIE),
        "",
        0,
        "Strict",
    ))
}

/// Why a request has no administrator.
enum Refusal {
    /// No live session: sign in, then come back to `return_to`.
    SignIn {
        return_to: String,
    },
    /// Signed in, but the user holds no permission of the Management API.
    Forbidden,
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        Refusal::Store(error)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn { return_to } => super::login::sign_in_redirect(&return_to, false),
            Refusal::Forbidden => views::forbidden(),
            Refusal::Store(error) => views::store_error(error),
        }
    }
}

async fn load(state: &AppState, parts: &Parts) -> Result<Admin, Refusal> {
    let return_to = if parts.method == Method::GET {
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/admin/".into())
    } else {
        "/admin/".into()
    };
    let sign_in = || Refusal::SignIn {
        return_to: return_to.clone(),
    };
    let value = read_cookie(&parts.headers, &cookie_name(state, SESSION_COOKIE))
        .filter(|v| v.len() <= 100)
        .ok_or_else(sign_in)?;
    let id_hash = ids::secret_hash(&value);
    let now = now();
    let session = state
        .store()
        .find_admin_session(&id_hash, now)
        .await?
        .ok_or_else(sign_in)?;
    let idle_end = (now + IDLE_LIFETIME).min(session.absolute_expires_at);
    if idle_end > session.expires_at + EXTEND_GRANULARITY {
        state
            .store()
            .extend_admin_session(&id_hash, idle_end)
            .await?;
    }
    let user = match state.store().find_user(&session.user_id).await? {
        Some(user) if !user.blocked => user,
        _ => return Err(sign_in()),
    };
    // The roles as they are now: a role taken away takes effect at the next request.
    let scopes = crate::admin_identities::dashboard_permissions(state, &user.user_id).await?;
    if scopes.is_empty() {
        return Err(Refusal::Forbidden);
    }
    crate::audit::set_actor(crate::audit::Actor::Admin {
        user_id: user.user_id.clone(),
        name: user.email.clone().unwrap_or_else(|| user.name.clone()),
    });
    Ok(Admin {
        user,
        principal: Principal::with_scopes(scopes),
        csrf: session.csrf_token,
        auth_time: session.auth_time,
        id_hash,
    })
}

/// The Management API rights of the administrator a request's session cookie signs in,
/// if any (the audit recorder reads an object before a dashboard form changes it).
pub(crate) async fn principal_of(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = Method::POST;
    parts.headers = headers.clone();
    load(state, &parts).await.ok().map(|admin| admin.principal)
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        load(state, parts)
            .await
            .map_err(IntoResponse::into_response)
    }
}

/// A form posted by a signed-in administrator: from this origin, with the session's CSRF
/// token. Every dashboard `POST` takes one, so none can forget the checks.
pub(crate) struct AdminForm {
    pub(crate) admin: Admin,
    pub(crate) params: Params,
}

/// Largest dashboard form body (metadata editors are the biggest), and largest value.
const MAX_FORM_BYTES: usize = 32 * 1024;
const MAX_FORM_VALUE_BYTES: usize = 4 * 1024;

/// [`AdminForm`] for the forms that carry an action's code (100 kB, which percent-encoding
/// may triple) and a test event.
pub(crate) struct AdminCodeForm(pub(crate) AdminForm);

const MAX_CODE_FORM_BYTES: usize = 640 * 1024;
const MAX_CODE_VALUE_BYTES: usize = 300 * 1024;

/// Whether the browser says the request comes from this origin. Browsers that send
/// `Sec-Fetch-Site` say it there (their `Origin` may be `null`: the pages' referrer
/// policy is `no-referrer`); older ones send `Origin`; other clients may send neither, and
/// then the CSRF token alone decides.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let expected = url::Url::parse(state.dashboard_base())
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            origin.to_str().is_ok_and(|o| o == expected)
        }
    }
}

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        read_form(request, state, MAX_FORM_BYTES, MAX_FORM_VALUE_BYTES).await
    }
}

impl FromRequest<AppState> for AdminCodeForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        read_form(request, state, MAX_CODE_FORM_BYTES, MAX_CODE_VALUE_BYTES)
            .await
            .map(AdminCodeForm)
    }
}

/// The administrator, the origin check, the form within `max_bytes` (each value within
/// `max_value`), and its CSRF token.
async fn read_form(
    request: Request,
    state: &AppState,
    max_bytes: usize,
    max_value: usize,
) -> Result<AdminForm, Response> {
    let (parts, body) = request.into_parts();
    let admin = load(state, &parts)
        .await
        .map_err(IntoResponse::into_response)?;
    if !same_origin(state, &parts.headers) {
        return Err(views::refused(
            StatusCode::FORBIDDEN,
            "This form was sent from another site, so it was not carried out.",
        ));
    }
    let bytes = axum::body::to_bytes(body, max_bytes)
        .await
        .map_err(|_| views::refused(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
    if crate::edge::params::media_type(&parts.headers) != "application/x-www-form-urlencoded" {
        return Err(views::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Invalid form: it is not application/x-www-form-urlencoded.",
        ));
    }
    let params = Params::from_urlencoded_within(&bytes, max_bytes, max_value).map_err(|error| {
        views::refused(StatusCode::BAD_REQUEST, &format!("Invalid form: {error}"))
    })?;
    let submitted = params.get("csrf").unwrap_or("");
    if submitted.is_empty() || !ids::constant_time_eq(submitted, &admin.csrf) {
        return Err(views::refused(
            StatusCode::FORBIDDEN,
            "The form's security token is missing or out of date. Reload the page and try again.",
        ));
    }
    Ok(AdminForm { admin, params })
}
