//! "Forgot password?": a one-time code by email, typed into a page with the new password.
//!
//! No secret travels in a URL: the mail carries an 8-digit code, stored as a hash bound to
//! the user, single use, dead after `MAX_WRONG_CODES` wrong tries or
//! `ServerConfig::reset_code_lifetime`; a new request replaces it. Asking for a code answers
//! the same, at the same speed, whether or not the account exists: the request only queues
//! the address, and one worker looks it up and sends the mail outside the request path
//! (in order, so tests can tell "no mail" from "not yet"). Checking a code does the same
//! work for an unknown address as for an account: the code is checked against
//! [`NO_ACCOUNT`]. Offered only when mail can be sent (`ServerConfig::mail`, or the tenant's
//! enabled email provider).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::{DATABASE_CONNECTION, check_password_policy, validate};
use tessera_store::{ResetCodeCheck, TransactionRecord};

use crate::AppState;
use crate::clock::now;
use crate::databases::{self, Database};
use crate::edge::client_ip::ClientIp;
use crate::edge::cors;
use crate::edge::params::Params;
use crate::error::{OAuthError, PageError};
use crate::hosted::forms::{csrf_failure, form_params, query_params};
use crate::hosted::mailer::Refused;
use crate::hosted::reset_codes::code_hash;
use crate::hosted::session;
use crate::hosted::transaction::{self, with_cookie};
use crate::pages;

/// Shown on the login page after a reset.
pub(crate) const PASSWORD_CHANGED: &str =
    "Your password has been changed. Log in with your new password.";
/// Auth0's answer to `/dbconnections/change_password`, whether or not the account exists.
const CHANGE_PASSWORD_SENT: &str = "We've just sent you an email to reset your password.";
const WRONG_CODE: &str =
    "That code is wrong or has expired. Check the email, or ask for a new code.";
const MAX_WRONG_CODES: i64 = 5;
/// The `fcp` event's description for a code that did not open the reset.
const WRONG_CODE_EVENT: &str = "Wrong, expired or used password reset code";
/// The user id a code for an unknown address is checked against: no account has it (ids
/// are `auth0|…`), so the check finds no code, after the same statements as for an account.
const NO_ACCOUNT: &str = "";
/// The user a code was checked for, if the address is an account's.
fn user_id_of(user_id: &str) -> Option<&str> {
    (user_id != NO_ACCOUNT).then_some(user_id)
}

// ---- pages -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "reset_request.html")]
struct RequestPage<'a> {
    client_name: Option<&'a str>,
    transaction: Option<&'a str>,
    connection: Option<&'a str>,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "reset_code.html")]
struct CodePage<'a> {
    transaction: Option<&'a str>,
    connection: Option<&'a str>,
    csrf: &'a str,
    email: &'a str,
    sent: bool,
    minutes: u64,
    error: Option<&'a str>,
}

/// The login transaction the user came from, when there is one (from the login page), and
/// the database connection whose password is reset: the transaction application's
/// (`crate::databases::of_client`), else the one the page's `connection` parameter names
/// (the mail's link for a connection other than the default), else the default. A
/// parameter naming another user's connection gains nothing: a code is bound to its user.
struct Origin {
    record: Option<TransactionRecord>,
    client_name: Option<String>,
    database: Database,
}

impl Origin {
    async fn load(
        state: &AppState,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<Self, PageError> {
        let unavailable = || {
            PageError::bad_request(
                "Password reset is not available",
                "Passwords of this application's accounts cannot be reset here. Ask your \
                 administrator to set a new password.",
            )
        };
        let origin = match params.get("state") {
            None => {
                let name = params.get("connection").unwrap_or(DATABASE_CONNECTION);
                let database = databases::named(state, name)
                    .await?
                    .ok_or_else(unavailable)?;
                Origin {
                    record: None,
                    client_name: None,
                    database,
                }
            }
            Some(id) => {
                let (record, request, client) =
                    transaction::load_login(state, headers, Some(id)).await?;
                let database =
                    databases::of_client(state, &client.client_id, request.connection.as_deref())
                        .await?
                        .ok_or_else(unavailable)?;
                Origin {
                    record: Some(record),
                    client_name: Some(client.name),
                    database,
                }
            }
        };
        if origin.database.change_password_disabled {
            return Err(unavailable());
        }
        Ok(origin)
    }

    /// The connection's name for the pages' hidden field, when no transaction says it.
    fn connection_field(&self) -> Option<&str> {
        (self.record.is_none() && self.database.name != DATABASE_CONNECTION)
            .then_some(self.database.name.as_str())
    }

    fn transaction(&self) -> Option<&str> {
        self.record.as_ref().map(|r| r.id.as_str())
    }

    /// The double-submitted CSRF token, also bound to the transaction when there is one.
    fn csrf_valid(&self, state: &AppState, headers: &HeaderMap, submitted: &str) -> bool {
        match &self.record {
            Some(record) => session::csrf_valid(state, headers, submitted, &record.csrf_hash),
            None => session::csrf_cookie_matches(state, headers, submitted),
        }
    }
}

fn unavailable_page() -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        "Password reset is not available",
        "This server does not send email, so passwords cannot be reset here. Ask your \
         administrator to set a new password.",
    )
}

fn throttled_page(retry_after: u64, message: &str) -> Response {
    let mut response =
        pages::error_page(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

const TOO_MANY_FROM_NETWORK: &str =
    "Too many attempts from your network. Wait a minute and try again.";
const TOO_MANY_FOR_ADDRESS: &str =
    "Too many codes were requested for this address. Wait a while, then ask again.";

/// `GET /u/reset-password[?state=TX]`: asks for the email address.
pub(crate) async fn request_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if !state
        .mailer()
        .offered(state.config_reads(), state.store())
        .await
    {
        return unavailable_page();
    }
    let result = async {
        let params = query_params(query)?;
        let origin = Origin::load(&state, &headers, &params).await?;
        let (csrf, cookie) = session::csrf_token(&state, &headers);
        let page = RequestPage {
            client_name: origin.client_name.as_deref(),
            transaction: origin.transaction(),
            connection: origin.connection_field(),
            csrf: &csrf,
            email: "",
            error: None,
        };
        Ok::<_, PageError>(with_cookie(pages::html(StatusCode::OK, &page), cookie))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// What both forms check first: reset is offered, the client's network is not throttled,
/// the form parses, its login transaction (if any) loads and its CSRF token is valid.
async fn admit_form(
    state: &AppState,
    client_ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Origin), Response> {
    if !state
        .mailer()
        .offered(state.config_reads(), state.store())
        .await
    {
        return Err(unavailable_page());
    }
    if let Err(retry_after) = state.login_throttle().check(client_ip).await {
        return Err(throttled_page(retry_after, TOO_MANY_FROM_NETWORK));
    }
    let params = form_params(headers, body).map_err(IntoResponse::into_response)?;
    let origin = Origin::load(state, headers, &params)
        .await
        .map_err(IntoResponse::into_response)?;
    if !origin.csrf_valid(state, headers, params.get("csrf").unwrap_or("")) {
        return Err(csrf_failure().into_response());
    }
    Ok((params, origin))
}

/// `POST /u/reset-password`: queues the code and shows the page to enter it.
pub(crate) async fn request_submit(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (params, origin) = match admit_form(&state, client_ip, &headers, &body).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let csrf = params.get("csrf").unwrap_or("");
    let result: Result<Response, PageError> = async {
        let email = params.get("email").unwrap_or("").trim().to_string();
        if validate::email(&email).is_err() {
            let page = RequestPage {
                client_name: origin.client_name.as_deref(),
                transaction: origin.transaction(),
                connection: origin.connection_field(),
                csrf,
                email: &email,
                error: Some("Enter a valid email address."),
            };
            return Ok(pages::html(StatusCode::BAD_REQUEST, &page));
        }
        match state
            .mailer()
            .request_reset_code(&origin.database.name, &email)
            .await
        {
            Ok(()) => {}
            Err(Refused::Throttled(retry_after)) => {
                return Ok(throttled_page(retry_after, TOO_MANY_FOR_ADDRESS));
            }
        }
        let page = CodePage {
            transaction: origin.transaction(),
            connection: origin.connection_field(),
            csrf,
            email: &email,
            sent: true,
            minutes: state.mailer().reset_code_minutes(),
            error: None,
        };
        Ok(pages::html(StatusCode::OK, &page))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /u/reset-password/code[?state=TX]`: where the mail sends people who left the page.
pub(crate) async fn code_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if !state
        .mailer()
        .offered(state.config_reads(), state.store())
        .await
    {
        return unavailable_page();
    }
    let result = async {
        let params = query_params(query)?;
        let origin = Origin::load(&state, &headers, &params).await?;
        let (csrf, cookie) = session::csrf_token(&state, &headers);
        let page = CodePage {
            transaction: origin.transaction(),
            connection: origin.connection_field(),
            csrf: &csrf,
            email: "",
            sent: false,
            minutes: state.mailer().reset_code_minutes(),
            error: None,
        };
        Ok::<_, PageError>(with_cookie(pages::html(StatusCode::OK, &page), cookie))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /u/reset-password/code`: the code and the new password. On success every session
/// and refresh token of the user ends, the login lockout is lifted, and the user goes back
/// to the login page of the transaction (or sees "password changed").
pub(crate) async fn code_submit(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (params, origin) = match admit_form(&state, client_ip, &headers, &body).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let csrf = params.get("csrf").unwrap_or("");
    let result: Result<Response, PageError> = async {
        let email = params.get("email").unwrap_or("").trim().to_string();
        let code: String = params
            .get("code")
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        let password = params.get("password").unwrap_or("").to_string();
        let render = |error: &str| {
            let page = CodePage {
                transaction: origin.transaction(),
                connection: origin.connection_field(),
                csrf,
                email: &email,
                sent: false,
                minutes: state.mailer().reset_code_minutes(),
                error: Some(error),
            };
            pages::html(StatusCode::BAD_REQUEST, &page)
        };
        if email.is_empty() || code.is_empty() {
            return Ok(render("Enter your email address and the code."));
        }
        // The audit event of the outcome (`scp`, `fcp`): the address typed, never the code
        // or the password.
        let audit = |log_type: &str, description: &str, user_id: Option<&str>| {
            let mut event = crate::audit::event(log_type, description);
            event.connection = Some(origin.database.name.clone());
            event.user_name = Some(email.chars().take(256).collect());
            event.user_id = user_id.map(str::to_string);
            state.record_log(event);
        };
        // The policy first, so that a refused password does not use up the code.
        if let Err(policy) = check_password_policy(&password) {
            audit("fcp", &format!("Password is too weak: {policy}"), None);
            return Ok(render(&policy.to_string()));
        }
        if code.len() != 8 || !code.bytes().all(|b| b.is_ascii_digit()) {
            audit("fcp", WRONG_CODE_EVENT, None);
            return Ok(render(WRONG_CODE));
        }
        // Unknown account, wrong, expired, used or dead code: one answer for all, after the
        // same work.
        let user = state
            .store()
            .find_user_by_email_in(&origin.database.name, &email)
            .await?;
        let user_id = user
            .as_ref()
            .map_or(NO_ACCOUNT, |user| user.user_id.as_str());
        let check = state
            .store()
            .redeem_password_reset_code(user_id, &code_hash(user_id, &code), now(), MAX_WRONG_CODES)
            .await?;
        let user_id = user_id_of(user_id).map(str::to_string);
        let Some(user) = user.filter(|_| check == ResetCodeCheck::Redeemed) else {
            audit("fcp", WRONG_CODE_EVENT, user_id.as_deref());
            return Ok(render(WRONG_CODE));
        };
        let hash = state.hasher().hash(password).await;
        // As the Management API's password change: every session and refresh token ends.
        state
            .store()
            .set_user_password(&user.user_id, &hash, now())
            .await?;
        // The failures are counted per email; a user found by code and email has one.
        if let Some(email) = &user.email {
            state.store().clear_login_failures(email, None).await?;
        }
        tracing::info!(user_id = %user.user_id, "password reset");
        audit(
            "scp",
            "Password changed with a reset code",
            Some(&user.user_id),
        );
        crate::actions::post_change_password(
            &state,
            &user,
            &origin.database,
            &crate::actions::RequestFacts::of(client_ip, "POST", &headers, Default::default()),
        );
        if let Some(record) = &origin.record
            && state
                .store()
                .find_transaction(&record.id, now())
                .await?
                .is_some()
        {
            return Ok(pages::see_other(&format!(
                "/u/login?state={}&password_changed=1",
                record.id
            )));
        }
        Ok(pages::message_page(
            "Password changed",
            "Your password has been changed. Go back to the application and log in with it.",
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

// ---- Auth0's endpoint ----------------------------------------------------------------------

/// `POST /dbconnections/change_password` (auth0-js `changePassword`): JSON or form
/// `{client_id, email, connection}`; the same mail as the hosted page, the same answer
/// for every address.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = match change_password_inner(&state, client_ip, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    cors::allow_registered(&state, &headers, response).await
}

fn too_many(retry_after: u64, description: &str) -> OAuthError {
    let mut error = OAuthError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        description,
    );
    error.retry_after = Some(retry_after);
    error
}

async fn change_password_inner(
    state: &AppState,
    client_ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    state
        .login_throttle()
        .check(client_ip)
        .await
        .map_err(|retry| too_many(retry, TOO_MANY_FROM_NETWORK))?;
    let params = Params::from_body(headers, body, true)
        .map_err(|error| OAuthError::invalid_request(error.to_string()))?;
    let client_id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_request("client_id is required."))?;
    if client_id.len() > 128 || state.store().find_client(client_id).await?.is_none() {
        return Err(OAuthError::invalid_request("Unknown client."));
    }
    let connection = params
        .get("connection")
        .ok_or_else(|| OAuthError::invalid_request("connection is required."))?;
    let Some(database) = databases::of_client(state, client_id, Some(connection)).await? else {
        return Err(OAuthError::invalid_request(
            "connection must be a database connection enabled for this application.",
        ));
    };
    if database.change_password_disabled {
        return Err(OAuthError::invalid_request(
            "Password reset is disabled for this connection.",
        ));
    }
    let email = params.get("email").unwrap_or("").trim();
    if validate::email(email).is_err() {
        return Err(OAuthError::invalid_request("email is not a valid address."));
    }
    if !state
        .mailer()
        .offered(state.config_reads(), state.store())
        .await
    {
        return Err(OAuthError::invalid_request(
            "Password reset is not available: this server does not send email.",
        ));
    }
    match state
        .mailer()
        .request_reset_code(&database.name, email)
        .await
    {
        Ok(()) => {}
        Err(Refused::Throttled(retry)) => return Err(too_many(retry, TOO_MANY_FOR_ADDRESS)),
    }
    let mut response = CHANGE_PASSWORD_SENT.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}
