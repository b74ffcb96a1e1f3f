//! The authorization endpoint (`/authorize`, GET and POST) and its resumption after the
//! hosted login (`/authorize/resume`).
//!
//! Order of checks (RFC 6749 §4.1.2.1): the client and redirect_uri are checked first and
//! failures there are shown as a page, never redirected; every later failure goes back
//! to the verified redirect_uri in the requested response mode.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::grant::Asked;
use tessera_core::request::{AuthRequest, ResponseMode, ResponseType, response_mode};
use tessera_core::{
    AUTHORIZATION_CODE_LIFETIME, Client, LOGIN_TRANSACTION_LIFETIME, ResourceServer, User, ids,
    pkce, redirect, scope,
};
use tessera_store::{NewCode, SessionRecord, TransactionRecord};

use crate::AppState;
use crate::clock::now;
use crate::edge::metrics::Grant;
use crate::edge::params::Params;
use crate::error::{OAuthError, PageError};
use crate::grant::{self, Denied};
use crate::hosted::consent;
use crate::hosted::login::csrf_failure;
use crate::hosted::session;
use crate::oauth::issue;
use crate::oauth::respond;
use crate::pages;

/// What an authorization code grants, stored with the code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeGrant {
    pub(crate) scope: Vec<String>,
    pub(crate) audience: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) sid: String,
    pub(crate) auth_time: i64,
}

/// Where errors go once the redirect_uri is trusted.
#[derive(Clone)]
pub(crate) struct Target {
    redirect_uri: String,
    mode: ResponseMode,
    state: Option<String>,
}

enum Rejection {
    Page(PageError),
    Redirect(Box<Target>, &'static str, String),
}

impl From<PageError> for Rejection {
    fn from(error: PageError) -> Self {
        Rejection::Page(error)
    }
}

impl From<tessera_store::StoreError> for Rejection {
    fn from(error: tessera_store::StoreError) -> Self {
        Rejection::Page(error.into())
    }
}

impl Rejection {
    /// The grant pipeline's refusal, answered to the application as `access_denied` (its
    /// redirect_uri is trusted by now).
    fn denied(target: &Target, denied: Denied) -> Rejection {
        match denied {
            Denied::Refused(refusal) => Rejection::Redirect(
                Box::new(target.clone()),
                "access_denied",
                refusal.description(),
            ),
            Denied::Store(error) => error.into(),
        }
    }
}

pub(crate) fn error_response(
    state: &AppState,
    target: &Target,
    error: &str,
    description: &str,
) -> Response {
    let mut params: Vec<(&str, String)> = vec![
        ("error", error.to_string()),
        ("error_description", description.to_string()),
    ];
    if let Some(value) = &target.state {
        params.push(("state", value.clone()));
    }
    params.push(("iss", state.issuer().to_string()));
    respond::deliver(target.mode, &target.redirect_uri, &params)
}

fn reject(state: &AppState, rejection: Rejection) -> Response {
    match rejection {
        Rejection::Page(page) => page.into_response(),
        Rejection::Redirect(target, error, description) => {
            error_response(state, &target, error, &description)
        }
    }
}

pub(crate) async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match Params::from_urlencoded(query.unwrap_or_default().as_bytes()) {
        Ok(params) => authorize(&state, &headers, &params).await,
        Err(error) => PageError::bad_request("Invalid request", error.to_string()).into_response(),
    }
}

pub(crate) async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match Params::from_body(&headers, &body, false) {
        Ok(params) => authorize(&state, &headers, &params).await,
        Err(error) => PageError::bad_request("Invalid request", error.to_string()).into_response(),
    }
}

async fn authorize(state: &AppState, headers: &HeaderMap, params: &Params) -> Response {
    let (client, request, api) = match validate(state, params).await {
        Ok(valid) => valid,
        Err(rejection) => return reject(state, rejection),
    };
    match proceed(state, headers, &client, request, api.as_ref(), false).await {
        Ok(response) => response,
        Err(rejection) => reject(state, rejection),
    }
}

/// Checks the client and redirect_uri (page on failure), then everything else (redirect
/// with an error on failure).
async fn validate(
    state: &AppState,
    params: &Params,
) -> Result<(Client, AuthRequest, Option<ResourceServer>), Rejection> {
    let client_id = params.get("client_id").ok_or_else(|| {
        PageError::bad_request("Invalid request", "The client_id parameter is missing.")
    })?;
    let client = state.store().find_client(client_id).await?.ok_or_else(|| {
        PageError::bad_request(
            "Unknown application",
            "No application with this client_id is registered.",
        )
    })?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        PageError::bad_request("Invalid request", "The redirect_uri parameter is missing.")
    })?;
    if !redirect::redirect_uri_allowed(redirect_uri, &client.callbacks, client.app_type) {
        return Err(PageError::bad_request(
            "Callback URL mismatch",
            format!(
                "The redirect_uri is not in the allowed callback URLs of the application \"{}\". \
                 Add it to the application's callbacks (tessera apps update --callbacks).",
                client.name
            ),
        )
        .into());
    }
    if !redirect::deliverable(redirect_uri, client.app_type) {
        return Err(PageError::bad_request(
            "Callback URL not allowed",
            "This callback URL uses a scheme that responses are never sent to. Register an \
             https callback, or for a native application a private-use scheme such as \
             com.example.app:/callback.",
        )
        .into());
    }

    let response_type = params.get("response_type").map(ResponseType::parse);
    let mode = response_mode(params.get("response_mode"), response_type.flatten());
    let (Ok(delivery) | Err((delivery, _))) = mode;
    if matches!(delivery, ResponseMode::FormPost | ResponseMode::WebMessage) {
        // Both answer with a page that posts to the redirect_uri's origin.
        let origin = redirect::origin_of(redirect_uri).ok_or_else(|| {
            PageError::bad_request(
                "Invalid request",
                "response_mode=form_post and web_message need an http(s) redirect_uri; \
                 a native application's callback takes query or fragment.",
            )
        })?;
        if delivery == ResponseMode::WebMessage
            && !redirect::origin_allowed(&origin, &client.web_origins)
        {
            return Err(PageError::bad_request(
                "Origin not allowed",
                "web_message responses go only to the application's allowed web origins; this redirect_uri's origin is not one of them.",
            )
            .into());
        }
    }
    let target = Box::new(Target {
        redirect_uri: redirect_uri.to_string(),
        mode: delivery,
        state: params.get("state").map(str::to_string),
    });
    let fail = |error: &'static str, description: &str| {
        Rejection::Redirect(target.clone(), error, description.to_string())
    };

    if params.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "Request objects are not supported.",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported.",
        ));
    }
    if let Err((_, description)) = mode {
        return Err(fail("invalid_request", description));
    }
    let response_type = match response_type {
        None => {
            return Err(fail(
                "invalid_request",
                "The response_type parameter is missing.",
            ));
        }
        Some(parsed) => parsed.filter(|rt| rt.is_supported()).ok_or_else(|| {
            fail(
                "unsupported_response_type",
                "Supported response types: code, token, id_token, token id_token.",
            )
        })?,
    };
    if response_type.code && !client.allows_grant("authorization_code") {
        return Err(fail(
            "unauthorized_client",
            "This application may not use the authorization code grant.",
        ));
    }
    if response_type.returns_tokens() && !client.allows_grant("implicit") {
        return Err(fail(
            "unauthorized_client",
            "This application may not use the implicit grant.",
        ));
    }
    let requested_scope = scope::parse(params.get("scope").unwrap_or(""));
    if response_type.id_token && !scope::contains(&requested_scope, "openid") {
        return Err(fail(
            "invalid_request",
            "The openid scope is required when an id_token is requested.",
        ));
    }
    let nonce = params.get("nonce").map(str::to_string);
    if response_type.id_token && nonce.is_none() {
        return Err(fail(
            "invalid_request",
            "The nonce parameter is required when an id_token is returned from the authorization endpoint.",
        ));
    }
    let code_challenge = params.get("code_challenge").map(str::to_string);
    if let Some(challenge) = &code_challenge {
        if !response_type.code {
            return Err(fail(
                "invalid_request",
                "code_challenge is only valid with response_type=code.",
            ));
        }
        if let Err(error) = pkce::check_challenge(challenge, params.get("code_challenge_method")) {
            return Err(fail("invalid_request", &error.to_string()));
        }
    } else if params.get("code_challenge_method").is_some() {
        return Err(fail(
            "invalid_request",
            "code_challenge_method was sent without code_challenge.",
        ));
    }
    if response_type.code && client.is_public() && code_challenge.is_none() {
        return Err(fail(
            "invalid_request",
            "Public applications must use PKCE: send code_challenge with code_challenge_method=S256.",
        ));
    }
    let prompt: Vec<String> = scope::parse(params.get("prompt").unwrap_or(""));
    for value in &prompt {
        if !matches!(
            value.as_str(),
            "none" | "login" | "consent" | "select_account"
        ) {
            return Err(fail("invalid_request", "Unsupported prompt value."));
        }
    }
    if prompt.len() > 1 && scope::contains(&prompt, "none") {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values.",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(value) if value >= 0 => Some(value),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "max_age must be a non-negative integer.",
                ));
            }
        },
    };
    let hinted_sub = match params.get("id_token_hint") {
        None => None,
        Some(hint) => match issue::read_id_token_hint(state, hint) {
            Some(hint) => Some(hint.sub),
            None => {
                return Err(fail(
                    "invalid_request",
                    "id_token_hint is not an ID token issued here.",
                ));
            }
        },
    };
    let audience = params.get("audience").map(str::to_string);
    let api = grant::audience(state, &client, audience.as_deref())
        .await
        .map_err(|denied| Rejection::denied(&target, denied))?;
    let request = AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri: target.redirect_uri.clone(),
        response_type,
        response_mode: delivery,
        scope: requested_scope,
        audience,
        state: target.state.clone(),
        nonce,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        hinted_sub,
        screen_hint: params.get("screen_hint").map(str::to_string),
        code_challenge,
        started_at: now(),
    };
    Ok((client, request, api))
}

impl Target {
    pub(crate) fn of(request: &AuthRequest) -> Target {
        Target {
            redirect_uri: request.redirect_uri.clone(),
            mode: request.response_mode,
            state: request.state.clone(),
        }
    }
}

/// With a valid request: answer from the session, or send the user to log in.
/// `after_login` is set when resuming a transaction whose login just happened.
async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    request: AuthRequest,
    api: Option<&ResourceServer>,
    after_login: bool,
) -> Result<Response, Rejection> {
    let signed_in = session::current(state, headers).await?;
    let now = now();
    let usable = signed_in.filter(|(session, _)| {
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
            Ok(consent::check(state, headers, client, request, api, &session, &user).await?)
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
        None => start_login(state, headers, &request).await,
    }
}

/// Stores the request as a login transaction and redirects to the hosted login page.
async fn start_login(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthRequest,
) -> Result<Response, Rejection> {
    let (csrf, csrf_cookie) = session::transaction_binding(state, headers);
    let id = ids::secret_token();
    let now = now();
    let record = TransactionRecord {
        id: id.clone(),
        csrf_hash: ids::secret_hash(&csrf),
        request: serde_json::to_string(request).expect("plain data serializes"),
        expires_at: now + LOGIN_TRANSACTION_LIFETIME,
    };
    state.store().create_transaction(&record, now).await?;
    let page = if request.screen_hint.as_deref() == Some("signup") {
        "u/signup"
    } else {
        "u/login"
    };
    Ok(with_cookie(
        pages::redirect(&format!("/{page}?state={id}")),
        Some(csrf_cookie),
    ))
}

/// Issues the authorization response for a signed-in user (who consented, when the
/// application needs consent).
pub(crate) async fn complete(
    state: &AppState,
    client: &Client,
    request: &AuthRequest,
    api: Option<&ResourceServer>,
    session: &SessionRecord,
    user: &User,
) -> Response {
    let target = Target::of(request);
    match issue_response(state, client, request, api, session, user).await {
        Ok(params) => respond::deliver(target.mode, &target.redirect_uri, &params),
        Err(error) => error_response(state, &target, error.error, &error.description),
    }
}

async fn issue_response(
    state: &AppState,
    client: &Client,
    request: &AuthRequest,
    api: Option<&ResourceServer>,
    session: &SessionRecord,
    user: &User,
) -> Result<Vec<(&'static str, String)>, OAuthError> {
    let implicit = request.response_type.is_implicit();
    let granted = grant::for_user(
        state,
        api,
        &user.user_id,
        Asked::Requested(&request.scope),
        grant::refresh_possible(client, implicit),
    )
    .await?;
    let mut params: Vec<(&'static str, String)> = Vec::new();
    if request.response_type.code {
        let code = ids::secret_token();
        let grant = CodeGrant {
            scope: granted.scopes.clone(),
            audience: api.map(|a| a.identifier.clone()),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            sid: session.sid.clone(),
            auth_time: session.auth_time,
        };
        let now = now();
        state
            .store()
            .create_code(&NewCode {
                code_hash: ids::secret_hash(&code),
                client_id: client.client_id.clone(),
                user_id: user.user_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                grant: serde_json::to_string(&grant).expect("plain data serializes"),
                created_at: now,
                expires_at: now + AUTHORIZATION_CODE_LIFETIME,
            })
            .await?;
        params.push(("code", code));
    }
    let mut access_token = None;
    if request.response_type.token {
        let issued =
            issue::user_access_token(state, api, &client.client_id, &user.user_id, &granted)
                .await?;
        params.push(("access_token", issued.token.clone()));
        params.push(("token_type", "Bearer".into()));
        params.push(("expires_in", issued.expires_in.to_string()));
        params.push(("scope", scope::join(&issued.scopes)));
        access_token = Some(issued.token);
    }
    if request.response_type.id_token {
        let id_token = issue::id_token(
            state,
            &issue::IdTokenInput {
                user,
                client_id: &client.client_id,
                scopes: &granted.scopes,
                nonce: request.nonce.as_deref(),
                auth_time: session.auth_time,
                sid: Some(&session.sid),
                access_token: access_token.as_deref(),
            },
        )?;
        params.push(("id_token", id_token));
    }
    if let Some(value) = &request.state {
        params.push(("state", value.clone()));
    }
    params.push(("iss", state.issuer().to_string()));
    if request.response_type.token {
        state.metrics().token_issued(Grant::Implicit);
    }
    Ok(params)
}

/// Loads a live login transaction that this browser started, and its request.
pub(crate) async fn load_transaction(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<(TransactionRecord, AuthRequest, Client), PageError> {
    let expired = || {
        PageError::bad_request(
            "Login session expired",
            "This login link is no longer valid. Go back to the application and sign in again.",
        )
    };
    load_stored(state, headers, id, expired, |request: &AuthRequest| request).await
}

/// Loads a live transaction whose stored value is a `T` that carries an authorization
/// request, and the application of that request. Anything missing or unreadable is
/// `expired()`: the page tells the user to start again from the application. Every step
/// of a transaction comes here, so every step is bound to the browser that started it
/// (login CSRF: another browser must not finish it with its own session).
pub(crate) async fn load_stored<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
    expired: impl Fn() -> PageError,
    request_of: impl Fn(&T) -> &AuthRequest,
) -> Result<(TransactionRecord, T, Client), PageError> {
    let id = id.filter(|id| id.len() <= 64).ok_or_else(&expired)?;
    let record = state
        .store()
        .find_transaction(id, now())
        .await?
        .ok_or_else(&expired)?;
    if !session::started_here(state, headers, &record.csrf_hash) {
        return Err(csrf_failure());
    }
    let stored: T = serde_json::from_str(&record.request).map_err(|_| expired())?;
    let client = state
        .store()
        .find_client(&request_of(&stored).client_id)
        .await?
        .ok_or_else(&expired)?;
    Ok((record, stored, client))
}

/// `GET /authorize/resume?state=TX`: the user just signed in; finish the request.
pub(crate) async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Params::from_urlencoded(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => {
            return PageError::bad_request("Invalid request", error.to_string()).into_response();
        }
    };
    let (record, request, client) =
        match load_transaction(&state, &headers, params.get("state")).await {
            Ok(loaded) => loaded,
            Err(page) => return page.into_response(),
        };
    // The application may have changed since the request started.
    if !redirect::redirect_uri_allowed(&request.redirect_uri, &client.callbacks, client.app_type) {
        return PageError::bad_request(
            "Callback URL mismatch",
            "The redirect_uri is no longer allowed for this application.",
        )
        .into_response();
    }
    // The API or the application may have changed since the request started: the same
    // audience policy as at /authorize (a deleted API is access_denied, not an opaque token).
    let api = match grant::audience(&state, &client, request.audience.as_deref()).await {
        Ok(api) => api,
        Err(denied) => return reject(&state, Rejection::denied(&Target::of(&request), denied)),
    };
    let signed_in = matches!(session::current(&state, &headers).await, Ok(Some(_)));
    if !signed_in {
        let page = if request.screen_hint.as_deref() == Some("signup") {
            "u/signup"
        } else {
            "u/login"
        };
        return pages::redirect(&format!("/{page}?state={}", record.id));
    }
    if let Err(error) = state.store().delete_transaction(&record.id).await {
        return PageError::from(error).into_response();
    }
    match proceed(&state, &headers, &client, request, api.as_ref(), true).await {
        Ok(response) => response,
        Err(rejection) => reject(&state, rejection),
    }
}

/// Adds a `Set-Cookie` when there is one.
pub(crate) fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
