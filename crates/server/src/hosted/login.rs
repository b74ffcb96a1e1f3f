//! The hosted login and sign-up pages.
//!
//! Both forms carry the transaction id and a CSRF token (double-submitted: hidden field
//! and cookie, and bound to the transaction). A successful POST starts a fresh session
//! and answers 303 to `/authorize/resume`, which finishes the original request.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_core::Client;
use tessera_core::request::AuthRequest;
use tessera_store::{StoreError, TransactionRecord};

use crate::AppState;
use crate::accounts::{self, NewAccount, Refusal};
use crate::actions::{RequestFacts, SignUp, visible_parameters};
use crate::clock::now;
use crate::databases::{self, Database};
use crate::edge::client_ip::ClientIp;
use crate::edge::metrics::Login;
use crate::error::PageError;
use crate::hosted::forms::{csrf_failure, form_params, query_params, with_form_action};
use crate::hosted::session::{self, SignedInWith};
use crate::hosted::transaction::{self, Pending, with_cookie};
use crate::hosted::{mfa, passkey, upstream};
use crate::pages::{self, LoginPage, SignupPage, UpstreamButton};
use crate::password_sign_in::{self, Checked};

const WRONG_CREDENTIALS: &str = "Wrong email or password.";
const ACCOUNT_LOCKED: &str = "Your account has been blocked after multiple consecutive login attempts. \
     Contact your administrator to unblock it.";
pub(crate) const USER_EXISTS: &str = "The user already exists.";
const USER_BLOCKED: &str = "Your account is blocked. Contact your administrator.";

pub(crate) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = query_params(query)?;
        let (mut record, pending, client) = transaction::load(
            &state,
            &headers,
            params.get("state"),
            transaction::login_expired,
        )
        .await?;
        let view = LoginView {
            status: StatusCode::OK,
            username: pending.request.login_hint.as_deref().unwrap_or(""),
            error: None,
            notice: (params.get("password_changed") == Some("1"))
                .then_some(crate::hosted::password_reset::PASSWORD_CHANGED),
        };
        render(&state, &headers, (&mut record, &client), view).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// What a login page shows beyond what its transaction and application decide.
pub(crate) struct LoginView<'a> {
    pub(crate) status: StatusCode,
    pub(crate) username: &'a str,
    pub(crate) error: Option<&'a str>,
    /// E.g. "your password has been changed", after a reset.
    pub(crate) notice: Option<&'a str>,
}

/// The login page of a transaction: the application's ways of signing in, read once, and
/// with passkeys on, a new challenge for the passkey button (written into `record`).
pub(crate) async fn render(
    state: &AppState,
    headers: &HeaderMap,
    (record, client): (&mut TransactionRecord, &Client),
    view: LoginView<'_>,
) -> Result<Response, PageError> {
    let request = Pending::read(&record.request)
        .ok_or_else(transaction::login_expired)?
        .request;
    let (csrf, cookie) = session::csrf_token(state, headers);
    let (database, upstreams) = choices(state, &client.client_id, &request).await?;
    let passkey_options = match &database {
        Some(database) if database.passkeys => Some(passkey::login_options(state, record).await?),
        _ => None,
    };
    // Without `--smtp-url` it is one lookup.
    let forgot_password = state
        .mailer()
        .offered(state.config_reads(), state.store())
        .await
        && database
            .as_ref()
            .is_some_and(|d| !d.change_password_disabled);
    let page = LoginPage {
        client_name: &client.name,
        transaction: &record.id,
        csrf: &csrf,
        username: view.username,
        error: view.error,
        notice: view.notice,
        forgot_password,
        upstreams: &upstreams,
        password_form: database.is_some(),
        signup: database.as_ref().is_some_and(|d| !d.signup_disabled),
        passkey_options: passkey_options.as_deref(),
    };
    let response = with_form_action(pages::html(view.status, &page), &request.redirect_uri);
    Ok(with_cookie(response, cookie))
}

pub(crate) async fn signup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = query_params(query)?;
        let (record, request, client) =
            transaction::load_login(&state, &headers, params.get("state")).await?;
        let (csrf, cookie) = session::csrf_token(&state, &headers);
        if let SignupDatabase::Refused(_) =
            signup_database(&state, &client.client_id, &request).await?
        {
            return Err(signup_refused());
        }
        let page = SignupPage {
            client_name: &client.name,
            transaction: &record.id,
            csrf: &csrf,
            email: request.login_hint.as_deref().unwrap_or(""),
            error: None,
        };
        let response = with_form_action(pages::html(StatusCode::OK, &page), &request.redirect_uri);
        Ok::<_, PageError>(with_cookie(response, cookie))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// What the login page offers an application, from one read of its connections: the
/// database connection of its password form (`crate::databases::pick`) and its
/// "Continue with …" buttons.
async fn choices(
    state: &AppState,
    client_id: &str,
    request: &AuthRequest,
) -> Result<(Option<Database>, Vec<UpstreamButton>), StoreError> {
    let enabled = state
        .config_reads()
        .sign_in_connections(state.store(), client_id)
        .await?;
    Ok((
        databases::pick(&enabled, request.connection.as_deref()),
        upstream::buttons(&enabled),
    ))
}

/// Where a sign-up on the hosted page would create the account.
enum SignupDatabase {
    /// The application's database connection, open to sign-ups.
    Open(Database),
    /// Refused: the application has no database connection (`None`), or this one does
    /// not let users sign themselves up.
    Refused(Option<Database>),
}

/// The database connection a sign-up on the hosted page creates the account in, from one
/// read of the application's connections.
async fn signup_database(
    state: &AppState,
    client_id: &str,
    request: &AuthRequest,
) -> Result<SignupDatabase, StoreError> {
    Ok(
        match databases::of_client(state, client_id, request.connection.as_deref()).await? {
            Some(database) if !database.signup_disabled => SignupDatabase::Open(database),
            refusing => SignupDatabase::Refused(refusing),
        },
    )
}

fn signup_refused() -> PageError {
    PageError::bad_request(
        "Sign-up unavailable",
        "This application does not let you sign up. Ask its administrator for an account.",
    )
    .with_status(StatusCode::FORBIDDEN)
}

pub(crate) fn throttled(retry_after: u64) -> Response {
    let mut response = pages::error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "Too many login attempts from your network. Wait a minute and try again.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// After a successful login or sign-up: new session, 303 to resume the request.
async fn signed_in(
    browser: (&AppState, &HeaderMap),
    transaction: &TransactionRecord,
    user: &tessera_core::User,
) -> Result<Response, PageError> {
    let password = vec!["pwd".to_string()];
    mfa::after_first_factor(
        browser,
        (&transaction.id, &transaction.request),
        user,
        SignedInWith::here(&user.connection, password),
        pages::see_other,
    )
    .await
}

pub(crate) async fn login_submit(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(retry_after) = state.login_throttle().check(client_ip).await {
        state.metrics().login(Login::Throttled);
        return throttled(retry_after);
    }
    let result = async {
        let params = form_params(&headers, &body)?;
        let (mut record, pending, client) = transaction::load(
            &state,
            &headers,
            params.get("state"),
            transaction::login_expired,
        )
        .await?;
        let csrf = params.get("csrf").unwrap_or("");
        if !session::csrf_valid(&state, &headers, csrf, &record.csrf_hash) {
            return Err(csrf_failure());
        }
        let username = params.get("username").unwrap_or("").trim().to_string();
        let password = params.get("password").unwrap_or("").to_string();
        let request = pending.request.clone();
        let enabled = state
            .config_reads()
            .sign_in_connections(state.store(), &client.client_id)
            .await?;
        if let Some(onward) =
            upstream::discovered(&state, &record, pending, &enabled, &username).await?
        {
            return Ok(onward);
        }
        let Some(database) = databases::pick(&enabled, request.connection.as_deref()) else {
            return Err(PageError::bad_request(
                "Password login unavailable",
                "This application does not sign users in with a password.",
            ));
        };
        let refused = if username.is_empty() || password.is_empty() {
            (StatusCode::BAD_REQUEST, "Enter your email and password.")
        } else {
            match password_sign_in::check(
                &state,
                (client_ip, (&client.client_id, &client.name)),
                &database.name,
                &username,
                password,
            )
                .await?
            {
                Checked::SignedIn(user) => {
                    tracing::info!(user_id = %user.user_id, client_id = %client.client_id, "login succeeded");
                    return signed_in((&state, &headers), &record, &user).await;
                }
                Checked::Locked => (StatusCode::TOO_MANY_REQUESTS, ACCOUNT_LOCKED),
                Checked::Wrong => (StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS),
                Checked::Blocked => (StatusCode::FORBIDDEN, USER_BLOCKED),
            }
        };
        let (status, error) = refused;
        let view = LoginView {
            status,
            username: &username,
            error: Some(error),
            notice: None,
        };
        render(&state, &headers, (&mut record, &client), view).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn signup_submit(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(retry_after) = state.login_throttle().check(client_ip).await {
        return throttled(retry_after);
    }
    let result = async {
        let params = form_params(&headers, &body)?;
        let (record, request, client) =
            transaction::load_login(&state, &headers, params.get("state")).await?;
        let csrf = params.get("csrf").unwrap_or("");
        if !session::csrf_valid(&state, &headers, csrf, &record.csrf_hash) {
            return Err(csrf_failure());
        }
        let email = params.get("email").unwrap_or("").trim().to_string();
        let database = match signup_database(&state, &client.client_id, &request).await? {
            SignupDatabase::Open(database) => database,
            SignupDatabase::Refused(refusing) => {
                if let Some(database) = refusing {
                    crate::accounts::record_refused_sign_up(
                        &state,
                        &client,
                        &database.name,
                        &email,
                        "Public signup is disabled",
                    );
                }
                return Err(signup_refused());
            }
        };
        let password = params.get("password").unwrap_or("").to_string();
        let render = |error: &str| {
            let page = SignupPage {
                client_name: &client.name,
                transaction: &record.id,
                csrf,
                email: &email,
                error: Some(error),
            };
            with_form_action(
                pages::html(StatusCode::BAD_REQUEST, &page),
                &request.redirect_uri,
            )
        };
        let account = NewAccount {
            connection: Some(database.name.clone()),
            email: email.clone(),
            password,
            application_name: Some(client.name.clone()),
            sign_up: Some(SignUp {
                database: database.clone(),
                client: client.clone(),
                request: RequestFacts::of(
                    client_ip,
                    "POST",
                    &headers,
                    visible_parameters(
                        [
                            ("client_id", client.client_id.as_str()),
                            ("redirect_uri", request.redirect_uri.as_str()),
                        ]
                        .into_iter(),
                    ),
                ),
            }),
            ..Default::default()
        };
        let user = match accounts::create(&state, account).await {
            Ok(user) => user,
            Err(Refusal::InvalidEmail) => return Ok(render("Enter a valid email address.")),
            Err(Refusal::WeakPassword(policy)) => return Ok(render(&policy.to_string())),
            Err(Refusal::Exists) => return Ok(render(USER_EXISTS)),
            Err(Refusal::Denied { user_message }) => return Ok(render(&user_message)),
            Err(Refusal::Store(error)) => return Err(error.into()),
        };
        state.metrics().signup();
        state.store().record_login(&user.user_id, now()).await?;
        tracing::info!(user_id = %user.user_id, client_id = %client.client_id, "user signed up");
        signed_in((&state, &headers), &record, &user).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
