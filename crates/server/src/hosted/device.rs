//! The device flow's activation page (RFC 8628 §3.3), Auth0's `/activate`: the person types
//! the code their device shows (prefilled from `?user_code=`), signs in on the hosted login
//! page if this browser has no session — a login transaction that comes back here rather
//! than to an application —, sees which application asks and the code again, and confirms
//! or cancels. Plain forms, no script; every form carries the CSRF cookie's token, and every
//! look-up of a user code counts against the client's login throttle (a user code has about
//! 35 bits: guessing is what the throttle stops). What is granted is decided as for
//! `/authorize` (`crate::grant`), post-login Actions run, and the answer is recorded on the
//! device code for its next poll (`oauth::token::device_code`).

use std::net::IpAddr;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::consent as rules;
use tessera_core::device::{display_user_code, normalize_user_code};
use tessera_core::grant::{Asked, Customization};
use tessera_core::request::{AuthRequest, ResponseMode, ResponseType};
use tessera_core::{Client, User};
use tessera_store::{PendingDeviceCode, SessionRecord, TransactionRecord};

use crate::AppState;
use crate::actions::{self, Login, RequestFacts};
use crate::clock::now;
use crate::edge::client_ip::ClientIp;
use crate::error::PageError;
use crate::grant::{self, Denied};
use crate::hosted::forms::{csrf_failure, form_params, query_params};
use crate::hosted::mfa as hosted_mfa;
use crate::hosted::session;
use crate::hosted::transaction::{self, Pending, with_cookie};
use crate::mfa;
use crate::pages::{self, ConsentScope};

/// Auth0's `event.transaction.protocol` for the device flow.
const PROTOCOL: &str = "oauth2-device-code";

/// What the person approved, stored with the device code until its poll takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeviceGrant {
    /// The scopes decided at the confirm page.
    pub(crate) scope: Vec<String>,
    pub(crate) audience: Option<String>,
    pub(crate) auth_time: i64,
    /// What post-login Actions added, applied again when tokens are issued.
    #[serde(default, skip_serializing_if = "Customization::is_empty")]
    pub(crate) custom: Customization,
    /// How the session that approved was signed in.
    pub(crate) connection: Option<String>,
    pub(crate) amr: Vec<String>,
}

#[derive(Template)]
#[template(path = "activate.html")]
struct EntryPage<'a> {
    csrf: &'a str,
    user_code: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "activate_confirm.html")]
struct ConfirmPage<'a> {
    csrf: &'a str,
    user_code: &'a str,
    user_name: &'a str,
    client_name: &'a str,
    api_name: Option<&'a str>,
    scopes: &'a [ConsentScope],
}

/// Said of a code that is malformed, unknown, expired or answered already: all alike.
const INVALID_CODE: &str = "That code is not valid, has expired or was used already. Check the code on your device and try again.";

fn entry_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    user_code: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    // Echo only what can be a code: the page never repeats arbitrary input back.
    let shown = normalize_user_code(user_code)
        .map(|code| display_user_code(&code))
        .unwrap_or_default();
    let page = EntryPage {
        csrf: &csrf,
        user_code: &shown,
        error,
    };
    with_cookie(pages::html(status, &page), cookie)
}

fn throttled(retry_after: u64) -> Response {
    let mut response = pages::error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "Too many codes were tried from your network. Wait a minute and try again.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// `GET /activate[?user_code=…]`: the form, prefilled; with a session and a code, the
/// confirm page straight away.
pub(crate) async fn page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = query_params(query)?;
        let typed = params.get("user_code").unwrap_or("");
        if typed.is_empty() || session::current(&state, &headers).await?.is_none() {
            return Ok(entry_page(&state, &headers, StatusCode::OK, typed, None));
        }
        let csrf = session::csrf_token(&state, &headers).0;
        advance(&state, &headers, ip, typed, &csrf).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /activate`: the code typed; on to sign in, or to the confirm page.
pub(crate) async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = form_params(&headers, &body)?;
        let csrf = params.get("csrf").unwrap_or("");
        if !session::csrf_cookie_matches(&state, &headers, csrf) {
            return Err(csrf_failure());
        }
        advance(
            &state,
            &headers,
            ip,
            params.get("user_code").unwrap_or(""),
            csrf,
        )
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A live pending code, its application, and the person signed in here (if their session
/// is enough for this application: a second factor when the tenant asks one of it).
struct Found {
    user_code: String,
    pending: PendingDeviceCode,
    client: Client,
    signed_in: Option<(SessionRecord, User)>,
}

/// Looks a typed code up, counted by the throttle. `Err(response)`: what to answer instead.
async fn find(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    typed: &str,
) -> Result<Result<Found, Response>, PageError> {
    if let Err(retry_after) = state.login_throttle().check(ip).await {
        return Ok(Err(throttled(retry_after)));
    }
    let invalid = || {
        entry_page(
            state,
            headers,
            StatusCode::BAD_REQUEST,
            typed,
            Some(INVALID_CODE),
        )
    };
    let Some(user_code) = normalize_user_code(typed) else {
        return Ok(Err(invalid()));
    };
    let Some(pending) = state.store().pending_device_code(&user_code, now()).await? else {
        return Ok(Err(invalid()));
    };
    let Some(client) = state.store().find_client(&pending.client_id).await? else {
        return Ok(Err(invalid()));
    };
    let second_factor_needed = mfa::guardian(state).await?.required_of(&client.client_id);
    let signed_in = session::current(state, headers)
        .await?
        .filter(|(session, _)| !second_factor_needed || mfa::has_second_factor(&session.amr));
    Ok(Ok(Found {
        user_code,
        pending,
        client,
        signed_in,
    }))
}

/// With a typed code: the confirm page for a signed-in person, else the login page.
async fn advance(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    typed: &str,
    csrf: &str,
) -> Result<Response, PageError> {
    let found = match find(state, headers, ip, typed).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    match &found.signed_in {
        Some((_, user)) => confirm_page(state, csrf, &found, user).await,
        None => sign_in(state, headers, &found).await,
    }
}

/// Begins a login transaction that returns to this page for `found`'s code.
async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    found: &Found,
) -> Result<Response, PageError> {
    let (id, cookie) =
        transaction::begin(state, headers, &sign_in_transaction(state, found)).await?;
    Ok(with_cookie(
        pages::see_other(&format!("/u/login?state={id}")),
        Some(cookie),
    ))
}

/// The login transaction of a device sign-in: it returns to this page for `found`'s code.
fn sign_in_transaction(state: &AppState, found: &Found) -> Pending {
    let request = AuthRequest {
        client_id: found.client.client_id.clone(),
        // Never used as a redirect: `/authorize/resume` sends a device sign-in back here.
        redirect_uri: format!("{}activate", state.issuer()),
        response_type: ResponseType::parse("code").expect("code is a response type"),
        response_mode: ResponseMode::Query,
        scope: requested_scopes(&found.pending),
        audience: found.pending.audience.clone(),
        state: None,
        nonce: None,
        prompt: vec![],
        max_age: None,
        login_hint: None,
        hinted_sub: None,
        screen_hint: None,
        connection: None,
        acr_values: vec![],
        code_challenge: None,
        dpop_jkt: None,
        started_at: now(),
        parameters: Vec::new(),
    };
    Pending {
        device: Some(found.user_code.clone()),
        ..Pending::new(request)
    }
}

/// `/authorize/resume` for a device sign-in: back to the activation page with its code
/// once a session is there (the transaction ends), or on to the login page.
pub(crate) async fn resumed(
    state: &AppState,
    headers: &HeaderMap,
    record: &TransactionRecord,
    pending: &Pending,
    user_code: &str,
) -> Response {
    let result = async {
        if pending.failure.is_some() {
            state.store().delete_transaction(&record.id).await?;
            return Ok(pages::error_page(
                StatusCode::FORBIDDEN,
                "Sign-in failed",
                "You could not be signed in. Start again from your device.",
            ));
        }
        if session::current(state, headers).await?.is_none() {
            return Ok(pages::see_other(&format!("/u/login?state={}", record.id)));
        }
        state.store().delete_transaction(&record.id).await?;
        Ok::<_, PageError>(pages::see_other(&format!(
            "/activate?user_code={}",
            display_user_code(user_code)
        )))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn requested_scopes(pending: &PendingDeviceCode) -> Vec<String> {
    serde_json::from_str(&pending.scope).unwrap_or_default()
}

/// What the person would grant: decided as `/authorize` decides it.
async fn decide(
    state: &AppState,
    found: &Found,
    user: &User,
) -> Result<(Option<tessera_core::ResourceServer>, Vec<String>), Denied> {
    let api = grant::audience(state, &found.client, found.pending.audience.as_deref()).await?;
    let granted = grant::for_user(
        state,
        api.as_ref(),
        &user.user_id,
        Asked::Requested(&requested_scopes(&found.pending)),
        grant::refresh_possible(&found.client, false),
    )
    .await?;
    Ok((api, granted.scopes))
}

async fn confirm_page(
    state: &AppState,
    csrf: &str,
    found: &Found,
    user: &User,
) -> Result<Response, PageError> {
    let (api, scopes) = match decide(state, found, user).await {
        Ok(decided) => decided,
        Err(Denied::Store(error)) => return Err(error.into()),
        Err(_) => return Ok(refused_page()),
    };
    let scopes: Vec<ConsentScope> = scopes
        .iter()
        .map(|value| ConsentScope {
            value: value.clone(),
            description: rules::describe(value, api.as_ref()),
        })
        .collect();
    let shown = display_user_code(&found.user_code);
    let user_name = user.email.as_deref().unwrap_or(&user.name);
    let page = ConfirmPage {
        csrf,
        user_code: &shown,
        user_name,
        client_name: &found.client.name,
        api_name: api.as_ref().map(|a| a.name.as_str()),
        scopes: &scopes,
    };
    Ok(pages::html(StatusCode::OK, &page))
}

fn refused_page() -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        "Access refused",
        "This application may not access your account. Your device has been told.",
    )
}

/// `POST /activate/confirm`: the answer, recorded once.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = form_params(&headers, &body)?;
        if !session::csrf_cookie_matches(&state, &headers, params.get("csrf").unwrap_or("")) {
            return Err(csrf_failure());
        }
        let accepted = match params.get("action") {
            Some("confirm") => true,
            Some("cancel") => false,
            _ => {
                return Err(PageError::bad_request(
                    "Invalid request",
                    "Confirm or cancel.",
                ));
            }
        };
        let typed = params.get("user_code").unwrap_or("");
        let found = match find(&state, &headers, ip, typed).await? {
            Ok(found) => found,
            Err(response) => return Ok(response),
        };
        let Some((session, user)) = &found.signed_in else {
            return sign_in(&state, &headers, &found).await;
        };
        let now = now();
        let (user_code, client_id) = (&found.user_code, &found.client.client_id);
        if !accepted {
            if !state
                .store()
                .deny_device_code(user_code, client_id, now)
                .await?
            {
                return Ok(entry_page(
                    &state,
                    &headers,
                    StatusCode::BAD_REQUEST,
                    "",
                    Some(INVALID_CODE),
                ));
            }
            tracing::info!(user_id = %user.user_id, %client_id, "device authorization cancelled");
            return Ok(pages::message_page(
                "Cancelled",
                "The device was not given access. You can close this window.",
            ));
        }
        let approved = match approve(&state, &headers, ip, &found, session, user).await? {
            Approval::Granted(grant) => grant,
            // The person passes a second factor first, then comes back to confirm.
            Approval::SecondFactor(response) => return Ok(response),
            Approval::Refused(response) => {
                // Refused by the grant decision or an Action: the device hears access_denied.
                state
                    .store()
                    .deny_device_code(user_code, client_id, now)
                    .await?;
                return Ok(response);
            }
        };
        let text = serde_json::to_string(&approved).expect("plain data serializes");
        if !state
            .store()
            .approve_device_code(user_code, client_id, &user.user_id, &text, now)
            .await?
        {
            return Ok(entry_page(
                &state,
                &headers,
                StatusCode::BAD_REQUEST,
                "",
                Some(INVALID_CODE),
            ));
        }
        tracing::info!(user_id = %user.user_id, %client_id, "device authorized");
        Ok(pages::message_page(
            "Your device is connected",
            "You can close this window and go back to your device.",
        ))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// What confirming led to.
enum Approval {
    Granted(DeviceGrant),
    /// Post-login asked for a second factor the session has not passed: the page that
    /// asks for it (the device keeps polling meanwhile).
    SecondFactor(Response),
    /// Refused: the page that says so (the device hears `access_denied`).
    Refused(Response),
}

/// The grant the person approves: the decision, then post-login Actions on it.
async fn approve(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    found: &Found,
    session: &SessionRecord,
    user: &User,
) -> Result<Approval, PageError> {
    let (api, scopes) = match decide(state, found, user).await {
        Ok(decided) => decided,
        Err(Denied::Store(error)) => return Err(error.into()),
        Err(_) => return Ok(Approval::Refused(refused_page())),
    };
    let requested = requested_scopes(&found.pending);
    let facts = RequestFacts::of(
        ip,
        "POST",
        headers,
        actions::visible_parameters([("client_id", found.client.client_id.as_str())].into_iter()),
    );
    let login = Login {
        client: &found.client,
        user,
        api: api.as_ref(),
        protocol: PROTOCOL,
        requested_scopes: &requested,
        redirect_uri: None,
        request: &facts,
        connection: session.connection.as_deref(),
        amr: &session.amr,
        redirects: actions::Redirects::Impossible,
        refresh_token: None,
    };
    let custom = match actions::post_login(state, &login)
        .await
        .map_err(Denied::from)
    {
        Ok(custom) => custom,
        Err(Denied::Store(error)) => return Err(error.into()),
        Err(Denied::Action { description, .. }) => {
            return Ok(Approval::Refused(pages::error_page(
                StatusCode::FORBIDDEN,
                "Access refused",
                &description,
            )));
        }
        Err(Denied::SecondFactor { remember }) => {
            let pending = sign_in_transaction(state, found);
            let asked =
                hosted_mfa::ask_after_login(state, headers, (pending, remember), (session, user))
                    .await?;
            return Ok(Approval::SecondFactor(asked));
        }
        // No redirect can happen here (the engine fails the action): refused all the same.
        Err(Denied::Refused(_) | Denied::Redirect(_)) => {
            return Ok(Approval::Refused(refused_page()));
        }
    };
    Ok(Approval::Granted(DeviceGrant {
        scope: scopes,
        audience: api.map(|a| a.identifier),
        auth_time: session.auth_time,
        custom,
        connection: session.connection.clone(),
        amr: session.amr.clone(),
    }))
}
