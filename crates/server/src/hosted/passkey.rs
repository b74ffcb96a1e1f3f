//! Passkeys as the first factor, on database connections whose administrator turned them
//! on (`authentication_methods.passkey`, `crate::databases`).
//!
//! - Sign-in: the login page's "Continue with a passkey" hands `navigator.credentials.get`
//!   a challenge bound to the login transaction, with no credential named (the
//!   authenticator offers the user's discoverable credentials); `POST /u/login/passkey`
//!   finds the credential by its id, checks that its user handle names its holder, and
//!   verifies it with user verification required. A passkey is a first factor: the
//!   tenant's second-factor policy still applies after it, as on Auth0.
//! - Enrollment: after a sign-in (a password, or a sign-up) a user of such a connection
//!   without a passkey is offered one (`/u/passkey`) before returning to the application,
//!   unless the administrator turned the offer off; "Not now" goes on.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::webauthn::{self as wa, Expected};
use tessera_core::{User, ids};
use tessera_store::{MAX_WEBAUTHN_CREDENTIALS, PASSKEY, StoreResult, TransactionRecord};

use crate::AppState;
use crate::clock::now;
use crate::databases::{self, Database};
use crate::edge::client_ip::ClientIp;
use crate::edge::metrics::Login;
use crate::error::PageError;
use crate::hosted::forms::{csrf_failure, form_params, query_params, with_form_action};
use crate::hosted::login::{self, LoginView};
use crate::hosted::session::{self, SignedInWith};
use crate::hosted::transaction::{self, PasskeyOffer, Pending, login_expired, with_cookie};
use crate::mfa::{self, PostedAssertion};
use crate::pages::{self, PasskeyPage};

/// What a passkey login records as its methods (RFC 8176): a key held in an authenticator,
/// unlocked by its user (user verification is required).
pub(crate) const PASSKEY_AMR: [&str; 2] = ["hwk", "user"];

const NOT_SIGNED_IN: &str =
    "We could not sign you in with that passkey. Try again, or use your password.";
const BLOCKED: &str = "Your account is blocked. Contact your administrator.";

/// The options of the login page's passkey button, with a new challenge remembered in
/// the transaction (the last one issued is the one that counts).
pub(crate) async fn login_options(
    state: &AppState,
    record: &mut TransactionRecord,
) -> Result<String, PageError> {
    let mut pending = Pending::read(&record.request).ok_or_else(login_expired)?;
    let challenge = ids::secret_token();
    pending.passkey_challenge = Some(challenge.clone());
    transaction::replace(state, record, &pending, login_expired).await?;
    let (rp_id, _) = mfa::relying_party(state);
    Ok(json!({
        "challenge": challenge,
        "rpId": rp_id,
        "allowCredentials": [],
        "userVerification": "required",
        "timeout": 120000,
    })
    .to_string())
}

/// `POST /u/login/passkey`: a passkey's answer to the login page's challenge.
pub(crate) async fn login_submit(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Answers are throttled per network as passwords are: each costs a signature check.
    if let Err(retry_after) = state.login_throttle().check(client_ip).await {
        state.metrics().login(Login::Throttled);
        return login::throttled(retry_after);
    }
    let result = async {
        let params = form_params(&headers, &body)?;
        let (mut record, mut pending, client) =
            transaction::load(&state, &headers, params.get("state"), login_expired).await?;
        let csrf = params.get("csrf").unwrap_or("");
        if !session::csrf_valid(&state, &headers, csrf, &record.csrf_hash) {
            return Err(csrf_failure());
        }
        let request = pending.request.clone();
        let database =
            databases::of_client(&state, &client.client_id, request.connection.as_deref())
                .await?
                .filter(|database| database.passkeys)
                .ok_or_else(|| {
                    PageError::bad_request(
                        "Passkey login unavailable",
                        "This application does not sign users in with a passkey.",
                    )
                })?;
        // The challenge is used up now, whatever the outcome.
        let challenge = pending.passkey_challenge.take();
        transaction::replace(&state, &mut record, &pending, login_expired).await?;
        let posted = PostedAssertion::read(|name| params.get(name));
        let signed_in = match (challenge.as_deref().and_then(wa::unb64), posted) {
            (Some(challenge), Some(posted)) => {
                verify(&state, &database, &posted, &challenge, now()).await?
            }
            _ => Verified::Refused,
        };
        let view = |status, error| LoginView {
            status,
            error: Some(error),
            notice: None,
            username: "",
        };
        let user = match signed_in {
            Verified::User(user) => user,
            Verified::Blocked => {
                state.metrics().login(Login::Blocked);
                let shown = view(StatusCode::FORBIDDEN, BLOCKED);
                return login::render(&state, &headers, (&mut record, &client), shown).await;
            }
            Verified::Refused => {
                state.metrics().login(Login::WrongCredentials);
                let shown = view(StatusCode::UNAUTHORIZED, NOT_SIGNED_IN);
                return login::render(&state, &headers, (&mut record, &client), shown).await;
            }
        };
        state.store().record_login(&user.user_id, now()).await?;
        state.metrics().login(Login::Success);
        tracing::info!(user_id = %user.user_id, client_id = %client.client_id, "passkey login succeeded");
        let amr = PASSKEY_AMR.iter().map(|m| m.to_string()).collect();
        crate::hosted::mfa::after_first_factor(
            (&state, &headers),
            (&record.id, &record.request),
            &user,
            SignedInWith::here(&user.connection, amr),
            pages::see_other,
        )
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// What a passkey's answer proved.
enum Verified {
    User(Box<User>),
    /// A good answer from a blocked user's passkey.
    Blocked,
    Refused,
}

/// §7.2 for a discoverable credential: the credential is a passkey of a user of this
/// database connection, its user handle names that user, and the answer verifies (with
/// user verification) with a rising counter.
async fn verify(
    state: &AppState,
    database: &Database,
    posted: &PostedAssertion,
    challenge: &[u8],
    now: i64,
) -> StoreResult<Verified> {
    let Some(handle) = posted.user_handle.as_deref() else {
        return Ok(Verified::Refused);
    };
    let credential = state
        .store()
        .webauthn_credential(&posted.credential_id)
        .await?
        .filter(|c| c.kind == PASSKEY && c.user_id.as_bytes() == handle);
    let Some(credential) = credential else {
        tracing::info!("passkey login refused: an unknown credential or user handle");
        return Ok(Verified::Refused);
    };
    let user = state
        .store()
        .find_user(&credential.user_id)
        .await?
        .filter(|user| user.connection == database.name);
    let Some(user) = user else {
        return Ok(Verified::Refused);
    };
    let (rp_id, origin) = mfa::relying_party(state);
    let expected = Expected {
        rp_id: &rp_id,
        origin: &origin,
        challenge,
        user_verification: true,
    };
    if !mfa::use_credential(state, &credential, posted, &expected, now).await? {
        return Ok(Verified::Refused);
    }
    // Checked after the signature, so a blocked account is named only to its holder.
    Ok(if user.blocked {
        Verified::Blocked
    } else {
        Verified::User(Box::new(user))
    })
}

/// Whether `user`, who just signed in through `connection`, is to be offered a passkey:
/// the connection offers them, and the user has none and room for one. When so, the
/// offer is written into `pending` (the caller stores it) and the browser is to go to
/// the returned path.
pub(crate) async fn offer(
    state: &AppState,
    pending: &mut Pending,
    id: &str,
    (user, connection): (&User, &str),
) -> StoreResult<Option<String>> {
    let offered = databases::named(state, connection)
        .await?
        .is_some_and(|database| database.passkey_enrollment);
    if !offered {
        return Ok(None);
    }
    let credentials = state.store().webauthn_credentials_of(&user.user_id).await?;
    let full = credentials.len() >= MAX_WEBAUTHN_CREDENTIALS as usize;
    if full || credentials.iter().any(|c| c.kind == PASSKEY) {
        return Ok(None);
    }
    pending.passkey_offer = Some(PasskeyOffer {
        user_id: user.user_id.clone(),
        challenge: None,
    });
    Ok(Some(format!("/u/passkey?state={id}")))
}

fn expired() -> PageError {
    PageError::bad_request(
        "Login session expired",
        "This page is no longer valid. Go back to the application and sign in again.",
    )
}

fn resume(id: &str) -> Response {
    pages::see_other(&format!("/authorize/resume?state={id}"))
}

/// The offer a transaction this browser started holds, and its user.
struct Offered {
    record: TransactionRecord,
    pending: Pending,
    offer: PasskeyOffer,
    user: User,
}

async fn load_offer(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<Offered, PageError> {
    let (record, pending, _) = transaction::load(state, headers, id, expired).await?;
    let offer = pending.passkey_offer.clone().ok_or_else(expired)?;
    let user = state
        .store()
        .find_user(&offer.user_id)
        .await?
        .filter(|user| !user.blocked)
        .ok_or_else(expired)?;
    Ok(Offered {
        record,
        pending,
        offer,
        user,
    })
}

impl Offered {
    /// Writes the offer (or, with `None`, its end) into the transaction.
    async fn write(
        &mut self,
        state: &AppState,
        offer: Option<PasskeyOffer>,
    ) -> Result<(), PageError> {
        self.pending.passkey_offer = offer;
        transaction::replace(state, &mut self.record, &self.pending, expired).await
    }
}

/// The page's `navigator.credentials.create` options, with a new challenge.
async fn creation_options(state: &AppState, offered: &mut Offered) -> Result<String, PageError> {
    let challenge = ids::secret_token();
    let mut offer = offered.offer.clone();
    offer.challenge = Some(challenge.clone());
    offered.write(state, Some(offer.clone())).await?;
    offered.offer = offer;
    let credentials = state
        .store()
        .webauthn_credentials_of(&offered.user.user_id)
        .await?;
    let selection = json!({
        "residentKey": "required",
        "requireResidentKey": true,
        "userVerification": "required",
    });
    let exclude = (challenge.as_str(), credentials.as_slice());
    Ok(mfa::creation_options(state, &offered.user, exclude, selection).to_string())
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    offered: &mut Offered,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let options = creation_options(state, offered).await?;
    let (csrf, cookie) = session::csrf_token(state, headers);
    let page = PasskeyPage {
        transaction: &offered.record.id,
        csrf: &csrf,
        options: &options,
        error,
    };
    // "Not now" redirects on to the application: the form's CSP must allow its origin.
    let html = with_form_action(
        pages::html(status, &page),
        &offered.pending.request.redirect_uri,
    );
    Ok(with_cookie(html, cookie))
}

/// `GET /u/passkey?state=TX`: the offer.
pub(crate) async fn offer_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = query_params(query)?;
        let mut offered = load_offer(&state, &headers, params.get("state")).await?;
        render(&state, &headers, &mut offered, StatusCode::OK, None).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /u/passkey`: the new passkey (`action=create`), or "Not now" (`action=skip`).
pub(crate) async fn offer_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = form_params(&headers, &body)?;
        let mut offered = load_offer(&state, &headers, params.get("state")).await?;
        let csrf = params.get("csrf").unwrap_or("");
        if !session::csrf_valid(&state, &headers, csrf, &offered.record.csrf_hash) {
            return Err(csrf_failure());
        }
        let challenge = offered.offer.challenge.clone();
        // The offer ends here unless the answer is refused (then a new one is shown).
        offered.write(&state, None).await?;
        match params.get("action") {
            Some("skip") => return Ok(resume(&offered.record.id)),
            Some("create") => {}
            _ => {
                return Err(PageError::bad_request(
                    "Unknown action",
                    "Create a passkey, or choose \"Not now\".",
                ));
            }
        }
        let user_id = offered.user.user_id.clone();
        let registered = match challenge.as_deref().and_then(wa::unb64) {
            Some(challenge) => {
                let field = |name: &str| params.get(name);
                mfa::register_credential(
                    &state,
                    &user_id,
                    field,
                    (&challenge, true),
                    (PASSKEY, "Passkey"),
                    now(),
                )
                .await?
            }
            None => None,
        };
        if registered.is_none() {
            // A new challenge comes with the page again.
            let error = "Your passkey could not be created. Try again, or choose \"Not now\".";
            return render(
                &state,
                &headers,
                &mut offered,
                StatusCode::UNAUTHORIZED,
                Some(error),
            )
            .await;
        }
        tracing::info!(user_id = %user_id, "passkey registered");
        Ok(resume(&offered.record.id))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
