//! Signing in through an upstream connection, as a step of the login transaction: the
//! browser is sent to the provider with the transaction's id as `state` (the transaction
//! is bound to this browser's cookie, so another browser cannot finish it), and comes back
//! to the one callback every provider shares, `<issuer>login/callback`. The callback takes
//! the upstream leg out of the transaction before anything else (a replayed or parallel
//! callback finds none), lets `crate::upstream` redeem and verify, and signs the user of
//! `provider|id` in — created at the first sign-in, the profile brought up to date at the
//! next, never matched to an existing account by email. Like every hosted step it hands
//! back to `/authorize/resume`, with the failure kept in the transaction when there is one.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tessera_core::connection::{Strategy, serves_address};
use tessera_core::{ids, pkce};
use tessera_store::{ConnectionRecord, StoreError, TransactionRecord};

use crate::AppState;
use crate::clock::now;
use crate::databases::Database;
use crate::edge::metrics::Login;
use crate::error::PageError;
use crate::hosted::forms::query_params;
use crate::hosted::mfa;
use crate::hosted::session::SignedInWith;
use crate::hosted::transaction::{self, Failure, Pending, UpstreamLeg};
use crate::pages::{self, UpstreamButton};

/// Where every provider sends the browser back.
pub(crate) const CALLBACK_PATH: &str = "login/callback";

fn callback_url(state: &AppState) -> String {
    format!("{}{CALLBACK_PATH}", state.issuer())
}

/// Back to `/authorize/resume`, through a page that goes on by itself rather than a
/// redirect: the provider's login form led here, and browsers hold every redirect after a
/// form submission to that page's `form-action` — which names this callback, not the
/// application it leads to (a Tessera provider's does exactly that). A page ends the chain.
fn resume(transaction: &str) -> Response {
    continue_to(&format!("/authorize/resume?state={transaction}"))
}

/// A page that leads on to `location` (see [`resume`] for why not a redirect).
fn continue_to(location: &str) -> Response {
    pages::html(
        axum::http::StatusCode::OK,
        &pages::ContinuePage { location },
    )
}

/// Begins a login transaction that signs in at `connection`'s provider: 302 there.
pub(crate) async fn begin(
    state: &AppState,
    headers: &HeaderMap,
    mut pending: Pending,
    connection: &ConnectionRecord,
) -> Result<Response, PageError> {
    let leg = new_leg(connection);
    pending.upstream = Some(leg.clone());
    let (id, cookie) = transaction::begin(state, headers, &pending).await?;
    let location = provider_url(state, connection, &id, &leg, &pending).await?;
    Ok(transaction::with_cookie(
        pages::redirect(&location),
        Some(cookie),
    ))
}

/// `GET /u/login/upstream?state=TX&connection=NAME`: a "Continue with …" button of the
/// login page; the transaction goes on at the provider.
pub(crate) async fn leave_for_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = query_params(query)?;
        let (record, pending, client) = transaction::load(
            &state,
            &headers,
            params.get("state"),
            transaction::login_expired,
        )
        .await?;
        let name = params.get("connection").unwrap_or_default();
        let Some(connection) = enabled_upstreams(&state, &client.client_id)
            .await?
            .into_iter()
            .find(|connection| connection.name == name)
        else {
            return Err(PageError::bad_request(
                "Sign-in unavailable",
                "This application does not sign in with that provider.",
            ));
        };
        let location = leave_with(&state, &record, pending, &connection).await?;
        Ok(pages::redirect(&location))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Sends the login transaction `record` on to `connection`'s provider: a new upstream
/// leg in the transaction, and the provider's URL to go to.
async fn leave_with(
    state: &AppState,
    record: &TransactionRecord,
    mut pending: Pending,
    connection: &ConnectionRecord,
) -> Result<String, PageError> {
    let leg = new_leg(connection);
    pending.upstream = Some(leg.clone());
    pending.failure = None;
    let text = serde_json::to_string(&pending).expect("plain data serializes");
    if !state
        .store()
        .replace_transaction(&record.id, &record.request, &text)
        .await?
    {
        return Err(transaction::login_expired());
    }
    provider_url(state, connection, &record.id, &leg, &pending).await
}

/// Home realm discovery on the login form: an address whose domain an enabled upstream
/// connection aliases (`domain_aliases`) signs in at that provider, its password unread.
/// The answer is a page that goes on by itself: the login page's `form-action` would stop
/// a redirect from its form to another origin.
pub(crate) async fn discovered(
    state: &AppState,
    record: &TransactionRecord,
    pending: Pending,
    enabled: &[ConnectionRecord],
    address: &str,
) -> Result<Option<Response>, PageError> {
    let Some(connection) = enabled.iter().find(|connection| {
        Database::of(connection).is_none() && serves_address(&connection.options, address)
    }) else {
        return Ok(None);
    };
    let location = leave_with(state, record, pending, connection).await?;
    tracing::info!(connection = %connection.name, "login: the address's domain signs in upstream");
    Ok(Some(pages::html(
        axum::http::StatusCode::OK,
        &pages::ContinuePage {
            location: &location,
        },
    )))
}

/// The upstream connections enabled for an application, by name (its database
/// connections are not: they have the password form).
async fn enabled_upstreams(
    state: &AppState,
    client_id: &str,
) -> Result<Vec<ConnectionRecord>, StoreError> {
    let mut enabled = state
        .config_reads()
        .sign_in_connections(state.store(), client_id)
        .await?;
    enabled.retain(|connection| Database::of(connection).is_none());
    Ok(enabled)
}

/// The "Continue with …" buttons among an application's enabled connections: its
/// upstream connections shown as buttons, in the given order.
pub(crate) fn buttons(enabled: &[ConnectionRecord]) -> Vec<UpstreamButton> {
    enabled
        .iter()
        .filter(|connection| connection.show_as_button && Database::of(connection).is_none())
        .map(|connection| UpstreamButton {
            name: connection.name.clone(),
            label: connection.display_name.clone(),
        })
        .collect()
}

fn new_leg(connection: &ConnectionRecord) -> UpstreamLeg {
    UpstreamLeg {
        connection_id: connection.id.clone(),
        nonce: ids::secret_token(),
        code_verifier: ids::secret_token(),
    }
}

/// The provider's authorization URL for the transaction `id` and its upstream `leg`.
async fn provider_url(
    state: &AppState,
    connection: &ConnectionRecord,
    id: &str,
    leg: &UpstreamLeg,
    pending: &Pending,
) -> Result<String, PageError> {
    let challenge = pkce::challenge_of(&leg.code_verifier);
    state
        .upstreams()
        .authorization_url(
            connection,
            &crate::upstream::Leg {
                state: id,
                nonce: &leg.nonce,
                code_challenge: &challenge,
                redirect_uri: &callback_url(state),
                login_hint: pending.request.login_hint.as_deref(),
            },
        )
        .await
        .map_err(|error| {
            tracing::warn!(connection = %connection.name, %error, "upstream provider unusable");
            unavailable(connection)
        })
}

fn unavailable(connection: &ConnectionRecord) -> PageError {
    PageError::bad_request(
        "Sign-in unavailable",
        format!(
            "{} cannot be reached right now. Try again later, or contact the administrator.",
            connection.display_name
        ),
    )
    .with_status(axum::http::StatusCode::BAD_GATEWAY)
}

fn no_sign_in() -> PageError {
    PageError::bad_request(
        "No sign-in in progress",
        "This sign-in was finished already or never started in this browser. Go back to the \
         application and sign in again.",
    )
}

/// `GET /login/callback`: the provider's answer.
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = query_params(query)?;
        let (record, pending, client) =
            transaction::load(&state, &headers, params.get("state"), no_sign_in).await?;
        let Some(leg) = pending.upstream.clone() else {
            return Err(no_sign_in());
        };
        // Single use: the leg leaves the transaction before the code is looked at.
        let mut after = pending;
        after.upstream = None;
        let after_text = serde_json::to_string(&after).expect("plain data serializes");
        if !state
            .store()
            .replace_transaction(&record.id, &record.request, &after_text)
            .await?
        {
            return Err(no_sign_in());
        }
        // Every refusal ends here: Auth0's `f` (a failed login) with the connection and the
        // reason. The reason is Tessera's own words and an upstream error's name
        // (`crate::upstream::error_name`), never what the provider sent as is.
        let fail = |error: &'static str, description: String, connection: Option<&str>| {
            let state = state.clone();
            let mut failed = after.clone();
            let id = record.id.clone();
            let expected = after_text.clone();
            let mut event = crate::audit::event("f", description.clone());
            event.client_id = Some(client.client_id.clone());
            event.client_name = Some(client.name.clone());
            event.connection = connection.map(str::to_string);
            event.details = serde_json::json!({ "error": error });
            state.record_log(event);
            async move {
                failed.failure = Some(Failure {
                    error: error.to_string(),
                    description,
                });
                let text = serde_json::to_string(&failed).expect("plain data serializes");
                state.store().replace_transaction(&id, &expected, &text).await?;
                Ok::<_, PageError>(resume(&id))
            }
        };
        // Still there and still enabled for the application: an administrator may have
        // changed either while the browser was at the provider.
        let Some(connection) = state
            .config_reads()
            .sign_in_connections(state.store(), &client.client_id)
            .await?
            .into_iter()
            .find(|connection| connection.id == leg.connection_id)
        else {
            return fail(
                "access_denied",
                "The connection is no longer enabled for this application".into(),
                None,
            )
            .await;
        };
        let strategy = Strategy::parse(&connection.strategy);
        if let Some(error) = params.get("error") {
            let shown = crate::upstream::error_name(error);
            tracing::info!(connection = %connection.name, error = %shown, "upstream provider refused the sign-in");
            return fail(
                "access_denied",
                format!("{} refused the sign-in ({shown})", connection.display_name),
                Some(&connection.name),
            )
            .await;
        }
        let Some(code) = params.get("code").filter(|code| !code.is_empty() && code.len() <= 2048)
        else {
            return fail("access_denied", "The provider sent no code".into(), Some(&connection.name)).await;
        };
        let Some(secret) = crate::upstream::client_secret(&state.config().master_key, &connection)
        else {
            tracing::error!(connection = %connection.name, "the connection's client secret does not open with this master key");
            return fail("server_error", "The connection cannot be used".into(), Some(&connection.name)).await;
        };
        let identity = match state
            .upstreams()
            .finish(
                &connection,
                &secret,
                &crate::upstream::Answer {
                    code,
                    code_verifier: &leg.code_verifier,
                    nonce: &leg.nonce,
                    redirect_uri: &callback_url(&state),
                    iss: params.get("iss"),
                },
                now(),
            )
            .await
        {
            Ok(identity) => identity,
            Err(error) => {
                tracing::warn!(connection = %connection.name, %error, "sign-in through an upstream provider failed");
                state.metrics().login(Login::WrongCredentials);
                return fail(
                    "access_denied",
                    format!("The sign-in through {} failed: {error}", connection.display_name),
                Some(&connection.name),
            )
                .await;
            }
        };
        let Some(strategy) = strategy else {
            return fail("access_denied", "The connection's strategy is unknown".into(), Some(&connection.name)).await;
        };
        let user_id = strategy.user_id(&connection.name, &identity.sub);
        // An identity linked to a user signs that user in; any other is its own account,
        // created at its first sign-in and updated at the next ones.
        let linked_to = state
            .store()
            .sign_in_linked(&user_id, &identity.profile)
            .await?;
        let signed_in = match linked_to {
            Some(primary) => state
                .store()
                .find_user(&primary)
                .await?
                .ok_or(StoreError::NotFound("user")),
            None => {
                state
                    .store()
                    .upsert_federated_user(&user_id, &connection.name, &identity.profile, now())
                    .await
            }
        };
        let user = match signed_in {
            Ok(user) => user,
            Err(StoreError::Conflict(_)) => {
                return fail(
                    "access_denied",
                    format!(
                        "Another account of {} already uses this email address",
                        connection.display_name
                    ),
                Some(&connection.name),
            )
                .await;
            }
            Err(other) => return Err(other.into()),
        };
        if user.blocked {
            state.metrics().login(Login::Blocked);
            return fail("unauthorized", "user is blocked".into(), Some(&connection.name)).await;
        }
        state.store().record_login(&user.user_id, now()).await?;
        state.metrics().login(Login::Success);
        tracing::info!(user_id = %user.user_id, connection = %connection.name, "login succeeded through an upstream provider");
        // The provider's own methods are not known here: the session states none of
        // its own until a second factor adds `mfa`. The provider's session id is kept for
        // its back-channel logout (`upstream_logout`).
        let how = SignedInWith {
            connection: connection.name.clone(),
            amr: vec![],
            upstream_sid: identity.sid,
        };
        mfa::after_first_factor(
            (&state, &headers),
            (&record.id, &after_text),
            &user,
            how,
            continue_to,
        )
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
