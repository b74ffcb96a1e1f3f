//! The authorization endpoint (`/authorize`, GET and POST) and its resumption
//! (`/authorize/resume`), where every hosted step — login, sign-up, consent — hands back,
//! and `/continue`, where a user a post-login action sent away comes back.
//!
//! `validate` checks the request (RFC 6749 §4.1.2.1 order); `proceed` answers from the
//! session or begins a login transaction; `consent` decides whether the user must be asked
//! first; `response` delivers the answer to the verified redirect_uri.

mod consent;
mod response;
mod validate;

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use tessera_core::request::AuthRequest;
use tessera_core::{Client, ResourceServer, User, redirect, scope};
use tessera_store::SessionRecord;

pub(crate) use response::CodeGrant;

use consent::Answer;
use response::{Rejection, Target, error_response, reject};
use validate::{Arrival, validate};

use crate::clock::now;
use crate::databases::Database;
use crate::edge::client_ip::ClientIp;
use crate::edge::params::Params;
use crate::error::PageError;
use crate::grant;
use crate::hosted::session;
use crate::hosted::transaction::{self, Consent, Pending};
use crate::hosted::upstream;
use crate::mfa;
use crate::oauth::token;
use crate::pages;
use crate::{AppState, actions};

/// Who sent a request: its headers (the session's cookie) and address (Actions'
/// `event.request`).
pub(crate) struct Caller<'a> {
    pub(crate) headers: &'a HeaderMap,
    pub(crate) ip: IpAddr,
    /// Set at `/continue`: the suspended post-login run to resume.
    pub(crate) continued: Option<&'a Continued>,
}

/// A login coming back to `/continue` after a redirect action sent the user away.
pub(crate) struct Continued {
    pub(crate) continuation: actions::Continuation,
    /// The `state` it came back with: its transaction's id.
    pub(crate) state: String,
    /// The `/continue` request, as the resumed run's `event.request`.
    pub(crate) facts: actions::RequestFacts,
}

pub(crate) async fn authorize_get(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let caller = Caller {
        headers: &headers,
        ip,
        continued: None,
    };
    match Params::from_urlencoded(query.unwrap_or_default().as_bytes()) {
        Ok(params) => authorize(&state, &caller, &params).await,
        Err(error) => PageError::bad_request("Invalid request", error.to_string()).into_response(),
    }
}

pub(crate) async fn authorize_post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = Caller {
        headers: &headers,
        ip,
        continued: None,
    };
    match Params::from_body(&headers, &body, false) {
        Ok(params) => authorize(&state, &caller, &params).await,
        Err(error) => PageError::bad_request("Invalid request", error.to_string()).into_response(),
    }
}

async fn authorize(state: &AppState, caller: &Caller<'_>, params: &Params) -> Response {
    // A pushed request (RFC 9126) stands in for the parameters, whole.
    let taken;
    // Another kind of request_uri (a URL to fetch) is refused by `validate`.
    let (params, how) = match params.get("request_uri") {
        Some(uri) if uri.starts_with(token::pushed::REQUEST_URI_PREFIX) => {
            match token::pushed::take(state, params.get("client_id"), uri).await {
                Ok(pushed) => {
                    taken = pushed;
                    (&taken, Arrival::Pushed)
                }
                Err(page) => return page.into_response(),
            }
        }
        _ => (params, Arrival::FrontChannel),
    };
    let (client, request, api) = match validate(state, params, how).await {
        Ok(valid) => valid,
        Err(rejection) => return reject(state, rejection),
    };
    let signed_in = match session::current(state, caller.headers).await {
        Ok(signed_in) => signed_in,
        Err(error) => return reject(state, error.into()),
    };
    let resumed = None;
    match proceed(
        state,
        caller,
        &client,
        (request, api.as_ref()),
        resumed,
        signed_in,
    )
    .await
    {
        Ok(response) => response,
        Err(rejection) => reject(state, rejection),
    }
}

/// Whether `params` make an authorization request `/authorize` would take, for a pushed
/// request (`/oauth/par`): the OAuth error and description when not.
pub(crate) async fn check_request(
    state: &AppState,
    params: &Params,
) -> Result<(), (&'static str, String)> {
    match validate(state, params, Arrival::Pushed).await {
        Ok(_) => Ok(()),
        Err(Rejection::Redirect(_, error, description)) => Err((error, description)),
        Err(Rejection::Page(page)) if page.status.is_server_error() => {
            Err(("server_error", page.message))
        }
        Err(Rejection::Page(page)) => Err(("invalid_request", page.message)),
    }
}

/// How a request reached `proceed`: fresh from `/authorize`, or resumed from a login
/// transaction (perhaps with the user's answer to its consent page).
enum Resumed {
    Transaction(Option<Answer>),
}

/// With a valid request: answer from the browser's session (`signed_in`, as
/// `session::current` found it), or send the user to log in.
async fn proceed(
    state: &AppState,
    caller: &Caller<'_>,
    client: &Client,
    (request, api): (AuthRequest, Option<&ResourceServer>),
    resumed: Option<Resumed>,
    signed_in: Option<(SessionRecord, User)>,
) -> Result<Response, Rejection> {
    let after_login = resumed.is_some();
    let now = now();
    // A session without a second factor does not answer a request that needs one: the
    // user signs in again, and passes one.
    let second_factor_needed = match &signed_in {
        Some((session, _)) if !mfa::has_second_factor(&session.amr) => {
            mfa::guardian(state).await?.required_for(&request)
        }
        _ => false,
    };
    let usable = signed_in.filter(|(session, _)| {
        if second_factor_needed {
            return false;
        }
        let fresh_enough = request
            .max_age
            .is_none_or(|max_age| now - session.auth_time <= max_age);
        let forced_login =
            scope::contains(&request.prompt, "login") || (request.max_age == Some(0));
        let logged_in_since_request = session.auth_time >= request.started_at;
        if after_login {
            logged_in_since_request || (fresh_enough && !forced_login)
        } else {
            fresh_enough && !forced_login
        }
    });
    // OIDC Core §3.1.2.1: with an id_token_hint, answer only for the user it names.
    let hinted_other = |user: &User| {
        request
            .hinted_sub
            .as_deref()
            .is_some_and(|sub| sub != user.user_id)
    };
    if after_login
        && let Some((_, user)) = &usable
        && hinted_other(user)
    {
        return Ok(error_response(
            state,
            &Target::of(&request),
            "login_required",
            "The signed-in user is not the one the id_token_hint names.",
        ));
    }
    let usable = usable.filter(|(_, user)| !hinted_other(user));
    match usable {
        Some((session, user)) => {
            let answer = resumed.and_then(|Resumed::Transaction(answer)| answer);
            Ok(consent::check(
                state,
                caller,
                client,
                request,
                api,
                (&session, &user),
                answer,
            )
            .await?)
        }
        None if scope::contains(&request.prompt, "none") => {
            let target = Target::of(&request);
            Ok(error_response(
                state,
                &target,
                "login_required",
                "Login required",
            ))
        }
        None => start_login(state, caller.headers, request).await,
    }
}

/// Stores the request as a login transaction and redirects to the hosted login page.
async fn start_login(
    state: &AppState,
    headers: &HeaderMap,
    request: AuthRequest,
) -> Result<Response, Rejection> {
    // `connection=NAME`: an upstream connection goes straight to its provider; a database
    // connection's password form is the login page's (`crate::databases::of_client`).
    if let Some(name) = request.connection.as_deref() {
        let enabled = state
            .config_reads()
            .sign_in_connections(state.store(), &request.client_id)
            .await?;
        let Some(connection) = enabled.into_iter().find(|c| c.name == name) else {
            return Ok(error_response(
                state,
                &Target::of(&request),
                "invalid_request",
                "The connection is not enabled for this application.",
            ));
        };
        if Database::of(&connection).is_none() {
            return Ok(upstream::begin(state, headers, Pending::new(request), &connection).await?);
        }
    }
    let page = login_page_of(&request);
    let (id, cookie) = transaction::begin(state, headers, &Pending::new(request)).await?;
    Ok(transaction::with_cookie(
        pages::redirect(&format!("/{page}?state={id}")),
        Some(cookie),
    ))
}

/// The hosted page a request signs in on: sign-up when it asked for it.
fn login_page_of(request: &AuthRequest) -> &'static str {
    if request.screen_hint.as_deref() == Some("signup") {
        "u/signup"
    } else {
        "u/login"
    }
}

/// `GET /authorize/resume?state=TX`: the user just signed in; finish the request.
pub(crate) async fn resume(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Params::from_urlencoded(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => {
            return PageError::bad_request("Invalid request", error.to_string()).into_response();
        }
    };
    let (record, pending, client) = match transaction::load(
        &state,
        &headers,
        params.get("state"),
        transaction::login_expired,
    )
    .await
    {
        Ok(loaded) => loaded,
        Err(page) => return page.into_response(),
    };
    // The device flow's sign-in goes back to the activation page, not to an application.
    if let Some(user_code) = &pending.device {
        return crate::hosted::device::resumed(&state, &headers, &record, &pending, user_code)
            .await;
    }
    let request = pending.request;
    let api = match still_allowed(&state, &client, &request).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    // A sign-in at an upstream provider failed: the application hears why.
    if let Some(failure) = &pending.failure {
        if let Err(error) = state.store().delete_transaction(&record.id).await {
            return PageError::from(error).into_response();
        }
        let error = match failure.error.as_str() {
            "unauthorized" => "unauthorized",
            "server_error" => "server_error",
            // A second factor was needed and none could be had (OpenID Connect Core §3.1.2.6).
            "unmet_authentication_requirements" => "unmet_authentication_requirements",
            _ => "access_denied",
        };
        return error_response(&state, &Target::of(&request), error, &failure.description);
    }
    let signed_in = match session::current(&state, &headers).await {
        Ok(signed_in) => signed_in,
        Err(error) => return PageError::from(error).into_response(),
    };
    if signed_in.is_none() {
        return pages::redirect(&format!("/{}?state={}", login_page_of(&request), record.id));
    }
    if let Err(error) = state.store().delete_transaction(&record.id).await {
        return PageError::from(error).into_response();
    }
    let answer = match pending.consent {
        Some(Consent::Answered { user_id, accepted }) => Some(Answer { user_id, accepted }),
        _ => None,
    };
    let resumed = Some(Resumed::Transaction(answer));
    let caller = Caller {
        headers: &headers,
        ip,
        continued: None,
    };
    let asked = (request, api.as_ref());
    match proceed(&state, &caller, &client, asked, resumed, signed_in).await {
        Ok(response) => response,
        Err(rejection) => reject(&state, rejection),
    }
}

/// What a resumed request may still have: its redirect_uri and its API, as the
/// application and the API are now (either may have changed since the request started;
/// the same audience policy as at /authorize: a deleted API is access_denied).
async fn still_allowed(
    state: &AppState,
    client: &Client,
    request: &AuthRequest,
) -> Result<Option<ResourceServer>, Response> {
    if !redirect::redirect_uri_allowed(&request.redirect_uri, &client.callbacks, client.app_type) {
        return Err(PageError::bad_request(
            "Callback URL mismatch",
            "The redirect_uri is no longer allowed for this application.",
        )
        .into_response());
    }
    grant::audience(state, client, request.audience.as_deref())
        .await
        .map_err(|denied| reject(state, Rejection::denied(&Target::of(request), denied)))
}

/// `GET` or `POST /continue?state=…`: the user is back from the site a post-login
/// action sent them to (`api.redirect.sendUserTo`). The login's transaction is taken
/// (once), the session must be the one that signed in, and the suspended run resumes —
/// the action's `onContinuePostLogin` sees this request's query and form as
/// `event.request` — before the application gets its answer.
pub(crate) async fn continue_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let query = match Params::from_urlencoded(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => {
            return PageError::bad_request("Invalid request", error.to_string()).into_response();
        }
    };
    let form = if method == Method::POST {
        match Params::from_body(&headers, &body, false) {
            Ok(params) => Some(params),
            Err(error) => {
                return PageError::bad_request("Invalid request", error.to_string())
                    .into_response();
            }
        }
    } else {
        None
    };
    let id = query
        .get("state")
        .or_else(|| form.as_ref().and_then(|form| form.get("state")));
    let (record, pending, client) =
        match transaction::load(&state, &headers, id, transaction::login_expired).await {
            Ok(loaded) => loaded,
            Err(page) => return page.into_response(),
        };
    let Some(continuation) = pending.continuation else {
        return transaction::login_expired().into_response();
    };
    // Once: a second request with this state (a replay, a double submit) finds nothing.
    match state.store().delete_transaction(&record.id).await {
        Ok(true) => {}
        Ok(false) => return transaction::login_expired().into_response(),
        Err(error) => return PageError::from(error).into_response(),
    }
    let request = pending.request;
    let api = match still_allowed(&state, &client, &request).await {
        Ok(api) => api,
        Err(response) => return response,
    };
    // Only the session that was signing in comes back: not a later one of this browser
    // (signed out and in again meanwhile), not none.
    let signed_in = match session::current(&state, &headers).await {
        Ok(signed_in) => signed_in,
        Err(error) => return PageError::from(error).into_response(),
    };
    let Some((session, user)) = signed_in.filter(|(session, user)| {
        session.sid == continuation.sid && user.user_id == continuation.user_id
    }) else {
        return error_response(
            &state,
            &Target::of(&request),
            "login_required",
            "The session that started this login has ended.",
        );
    };
    let visible = |params: &Params| actions::visible_parameters(params.iter());
    let facts = actions::RequestFacts::of(
        ip,
        if method == Method::POST {
            "POST"
        } else {
            "GET"
        },
        &headers,
        visible(&query),
    )
    .with_body(form.as_ref().map(visible).unwrap_or_default());
    let continued = Continued {
        continuation,
        state: record.id,
        facts,
    };
    let caller = Caller {
        headers: &headers,
        ip,
        continued: Some(&continued),
    };
    let resumed = Some(Resumed::Transaction(None));
    let asked = (request, api.as_ref());
    match proceed(
        &state,
        &caller,
        &client,
        asked,
        resumed,
        Some((session, user)),
    )
    .await
    {
        Ok(response) => response,
        Err(rejection) => reject(&state, rejection),
    }
}
