//! Signing in to the dashboard: it is an OpenID Connect client of this server (the system
//! application `DASHBOARD_CLIENT_ID`), so administrators pass the hosted login page with
//! its lockout and throttles like everyone else. Authorization code with PKCE S256,
//! `state` and `nonce` kept in a short-lived cookie of the browser that started; the code
//! is redeemed in-process (`oauth::token::authorization_code::redeem`), no token minted.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::ids;

use super::session::{self, AdminForm, FRESH_LOGIN, cookie_name, set_cookie};
use super::{CLIENT_ID, views};
use crate::AppState;
use crate::edge::params::Params;
use crate::hosted::session::read_cookie;
use crate::oauth::token::authorization_code::redeem;

const LOGIN_COOKIE: &str = "tessera_admin_login";
/// How long a sign-in may take, from the redirect to the callback.
const LOGIN_LIFETIME: i64 = 10 * 60;

/// Where the authorization server sends the code back.
pub(crate) fn callback_uri(state: &AppState) -> String {
    format!("{}admin/callback", state.dashboard_base())
}

/// A dashboard path to come back to: only a path under `/admin/` (never another origin,
/// never `//host`, nothing a browser would read as a scheme or a host).
fn safe_return_to(text: &str) -> &str {
    let ok = text.starts_with("/admin/")
        && !text.contains("//")
        && !text.contains('\\')
        && text.len() <= 512
        && text.chars().all(|c| c.is_ascii_graphic());
    if ok { text } else { "/admin/" }
}

/// Sends the browser to `/admin/login`, which starts a sign-in that comes back to
/// `return_to`; `fresh` asks for the password again if it is older than 5 minutes.
pub(crate) fn sign_in_redirect(return_to: &str, fresh: bool) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("return_to", safe_return_to(return_to));
    if fresh {
        query.append_pair("fresh", "1");
    }
    crate::pages::redirect(&format!("/admin/login?{}", query.finish()))
}

/// `GET /admin/login`: redirects to `/authorize` as the dashboard's application.
pub(crate) async fn login(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = Params::from_urlencoded(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let return_to = safe_return_to(params.get("return_to").unwrap_or("/admin/")).to_string();
    let fresh = params.get("fresh") == Some("1");
    let txn_state = ids::secret_token();
    let verifier = ids::secret_token();
    let nonce = ids::secret_token();
    let challenge = URL_SAFE_NO_PAD.encode(ids::secret_hash(&verifier));
    let mut authorize = form_urlencoded::Serializer::new(String::new());
    authorize
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", &callback_uri(&state))
        .append_pair("scope", "openid profile email")
        .append_pair("state", &txn_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if fresh {
        authorize.append_pair("max_age", &FRESH_LOGIN.to_string());
    }
    let cookie_value = format!(
        "{txn_state}.{verifier}.{nonce}.{}",
        URL_SAFE_NO_PAD.encode(return_to.as_bytes())
    );
    // Absolute: the dashboard may have a listener (an origin) of its own.
    let mut response = crate::pages::redirect(&format!(
        "{}authorize?{}",
        state.issuer(),
        authorize.finish()
    ));
    // Lax: the callback arrives by a top-level navigation at the end of the login.
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            &state,
            &cookie_name(&state, LOGIN_COOKIE),
            &cookie_value,
            LOGIN_LIFETIME,
            "Lax",
        ),
    );
    response
}

struct Pending {
    state: String,
    verifier: String,
    nonce: String,
    return_to: String,
}

fn pending(state: &AppState, headers: &HeaderMap) -> Option<Pending> {
    let value = read_cookie(headers, &cookie_name(state, LOGIN_COOKIE))?;
    let mut parts = value.split('.');
    let (txn, verifier, nonce, return_to) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let return_to = String::from_utf8(URL_SAFE_NO_PAD.decode(return_to).ok()?).ok()?;
    Some(Pending {
        state: txn.to_string(),
        verifier: verifier.to_string(),
        nonce: nonce.to_string(),
        return_to: safe_return_to(&return_to).to_string(),
    })
}

/// `GET /admin/callback`: the end of a sign-in. Only the browser that started it (its
/// cookie's `state`) may finish it; the code is redeemed with the verifier, the nonce
/// compared, and the session starts with the time the password was entered.
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let failed = |message: &str| views::sign_in_failed(StatusCode::BAD_REQUEST, message);
    let Ok(params) = Params::from_urlencoded(query.unwrap_or_default().as_bytes()) else {
        return failed("The sign-in answer could not be read.");
    };
    let Some(pending) = pending(&state, &headers) else {
        return failed("This sign-in was not started in this browser, or took too long.");
    };
    if !params
        .get("state")
        .is_some_and(|s| ids::constant_time_eq(s, &pending.state))
    {
        return failed("This sign-in was not started in this browser.");
    }
    if let Some(error) = params.get("error") {
        let description = params.get("error_description").unwrap_or(error);
        let shown: String = description.chars().take(200).collect();
        return views::sign_in_failed(StatusCode::FORBIDDEN, &shown);
    }
    let Some(code) = params.get("code") else {
        return failed("The sign-in answer has no code.");
    };
    let client = match state.store().find_client(CLIENT_ID).await {
        Ok(Some(client)) => client,
        Ok(None) => return failed("The dashboard's application is not registered."),
        Err(error) => return views::store_error(error),
    };
    let redeemed = match redeem(
        &state,
        &client,
        code,
        &callback_uri(&state),
        Some(&pending.verifier),
    )
    .await
    {
        Ok(redeemed) => redeemed,
        Err(error) => return failed(&error.description),
    };
    if !redeemed
        .grant
        .nonce
        .as_deref()
        .is_some_and(|n| ids::constant_time_eq(n, &pending.nonce))
    {
        return failed("The sign-in answer does not belong to this browser's request.");
    }
    let cookie =
        match session::start(&state, &redeemed.user.user_id, redeemed.grant.auth_time).await {
            Ok(cookie) => cookie,
            Err(error) => return views::store_error(error),
        };
    let mut response = crate::pages::redirect(&pending.return_to);
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, cookie);
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, &cookie_name(&state, LOGIN_COOKIE), "", 0, "Lax"),
    );
    response
}

/// `POST /admin/logout`: ends the dashboard's session, then the login page's session
/// through `/v2/logout`, which comes back to the signed-out page.
pub(crate) async fn logout(State(state): State<AppState>, form: AdminForm) -> Response {
    let cookie = match session::end(&state, &form.admin).await {
        Ok(cookie) => cookie,
        Err(error) => return views::store_error(error),
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", CLIENT_ID).append_pair(
        "returnTo",
        &format!("{}admin/signed-out", state.dashboard_base()),
    );
    // Absolute: the dashboard may have a listener (an origin) of its own.
    let mut response =
        crate::pages::redirect(&format!("{}v2/logout?{}", state.issuer(), query.finish()));
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// `GET /admin/signed-out`.
pub(crate) async fn signed_out() -> Response {
    views::signed_out().into_response()
}
