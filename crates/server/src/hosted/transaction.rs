//! The login transaction: the authorization request kept while the user signs in and, for a
//! third-party application, answers the consent page — bound to the browser that started it.
//! `/authorize` begins it; every hosted step loads it through [`load`] (so another browser
//! cannot finish someone else's login: login CSRF); each step hands back to
//! `/authorize/resume`, which ends it.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tessera_core::request::AuthRequest;
use tessera_core::{Client, LOGIN_TRANSACTION_LIFETIME, ids};
use tessera_store::{StoreError, TransactionRecord};

use crate::AppState;
use crate::clock::now;
use crate::error::PageError;
use crate::hosted::forms::csrf_failure;
use crate::hosted::session;

/// What a transaction keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) request: AuthRequest,
    /// Where consent stands, for an application that needs it.
    #[serde(default)]
    pub(crate) consent: Option<Consent>,
    /// The sign-in under way at an upstream provider: what its callback checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upstream: Option<UpstreamLeg>,
    /// Why the sign-in failed, for `/authorize/resume` to tell the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failure: Option<Failure>,
    /// A first factor passed and a second one is asked (`crate::hosted::mfa`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mfa: Option<SecondFactorStep>,
    /// The challenge the login page's passkey button was given (base64url): taken out
    /// before a passkey's answer is checked, so each is used once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) passkey_challenge: Option<String>,
    /// A user who just signed in is offered a passkey (`crate::hosted::passkey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) passkey_offer: Option<PasskeyOffer>,
    /// A sign-in for the device flow's activation page (`crate::hosted::device`): the user
    /// code it returns to once signed in, instead of answering an application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device: Option<String>,
    /// A post-login action sent the user away; `/continue` resumes the login with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) continuation: Option<crate::actions::Continuation>,
}

/// Who is offered a passkey, and the challenge of the page that offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PasskeyOffer {
    pub(crate) user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) challenge: Option<String>,
}

/// Who passed the first factor, and how: the session starts with this once the second
/// factor is passed too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SecondFactorStep {
    pub(crate) user_id: String,
    pub(crate) connection: String,
    pub(crate) amr: Vec<String>,
    /// The upstream provider's session id, when the first factor was a sign-in there
    /// (`session::SignedInWith`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) upstream_sid: Option<String>,
    /// The WebAuthn challenge the page last issued (base64url): bound to this login, and
    /// taken out before a response is checked, so each is used once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) challenge: Option<String>,
    /// Whether the user may have this browser remembered (`crate::mfa::rememberable`, or
    /// the action's `allowRememberBrowser`).
    #[serde(default)]
    pub(crate) rememberable: bool,
}

/// What was sent to an upstream provider: the connection, the `nonce` its ID token must
/// carry and the PKCE verifier of the code it returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UpstreamLeg {
    pub(crate) connection_id: String,
    pub(crate) nonce: String,
    pub(crate) code_verifier: String,
}

/// A sign-in that failed: the OAuth error and description the application gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Failure {
    pub(crate) error: String,
    pub(crate) description: String,
}

/// The consent page's part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum Consent {
    /// The page asks `user_id` for `scopes`, remembered under `audience` on "Accept".
    Asked {
        user_id: String,
        audience: String,
        scopes: Vec<String>,
    },
    /// `user_id` answered; `/authorize/resume` carries it out.
    Answered { user_id: String, accepted: bool },
}

impl Pending {
    pub(crate) fn new(request: AuthRequest) -> Pending {
        Pending {
            request,
            consent: None,
            upstream: None,
            failure: None,
            mfa: None,
            passkey_challenge: None,
            passkey_offer: None,
            device: None,
            continuation: None,
        }
    }

    /// Reads what a transaction holds; a bare request is what transactions held before
    /// consent moved in with it.
    pub(crate) fn read(stored: &str) -> Option<Pending> {
        serde_json::from_str(stored)
            .or_else(|_| serde_json::from_str(stored).map(Pending::new))
            .ok()
    }
}

/// Stores `pending` as a new transaction bound to this browser; returns its id and the
/// binding cookie the response must set.
pub(crate) async fn begin(
    state: &AppState,
    headers: &HeaderMap,
    pending: &Pending,
) -> Result<(String, HeaderValue), StoreError> {
    begin_as(state, headers, pending, ids::secret_token()).await
}

/// [`begin`] under an id chosen before: a redirect action's `state`, which its tokens
/// carry before the transaction exists.
pub(crate) async fn begin_as(
    state: &AppState,
    headers: &HeaderMap,
    pending: &Pending,
    id: String,
) -> Result<(String, HeaderValue), StoreError> {
    let (csrf, cookie) = session::transaction_binding(state, headers);
    let now = now();
    let record = TransactionRecord {
        id: id.clone(),
        csrf_hash: ids::secret_hash(&csrf),
        request: serde_json::to_string(pending).expect("plain data serializes"),
        expires_at: now + LOGIN_TRANSACTION_LIFETIME,
    };
    state.store().create_transaction(&record, now).await?;
    Ok((id, cookie))
}

/// The login page's answer to a transaction that is gone.
pub(crate) fn login_expired() -> PageError {
    PageError::bad_request(
        "Login session expired",
        "This login link is no longer valid. Go back to the application and sign in again.",
    )
}

/// Loads a live transaction that this browser started, and the application of its request.
/// Anything missing or unreadable is `expired()`: the page tells the user to start again
/// from the application; another browser's transaction is a CSRF refusal.
pub(crate) async fn load(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
    expired: impl Fn() -> PageError,
) -> Result<(TransactionRecord, Pending, Client), PageError> {
    let id = id.filter(|id| id.len() <= 64).ok_or_else(&expired)?;
    let record = state
        .store()
        .find_transaction(id, now())
        .await?
        .ok_or_else(&expired)?;
    if !session::started_here(state, headers, &record.csrf_hash) {
        return Err(csrf_failure());
    }
    let pending = Pending::read(&record.request).ok_or_else(&expired)?;
    let client = state
        .config_reads()
        .client(state.store(), &pending.request.client_id)
        .await?
        .ok_or_else(&expired)?;
    Ok((record, pending, client))
}

/// [`load`] for the login and sign-up pages: the request, whatever consent's state.
pub(crate) async fn load_login(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<(TransactionRecord, AuthRequest, Client), PageError> {
    let (record, pending, client) = load(state, headers, id, login_expired).await?;
    Ok((record, pending.request, client))
}

/// Writes `next` over the transaction's text as last read (`record.request`), keeping
/// `record` current; a racing request that wrote first makes this one `expired()`.
pub(crate) async fn replace(
    state: &AppState,
    record: &mut TransactionRecord,
    next: &Pending,
    expired: impl Fn() -> PageError,
) -> Result<(), PageError> {
    let text = serde_json::to_string(next).expect("plain data serializes");
    if !state
        .store()
        .replace_transaction(&record.id, &record.request, &text)
        .await?
    {
        return Err(expired());
    }
    record.request = text;
    Ok(())
}

/// Adds a `Set-Cookie` when there is one.
pub(crate) fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tessera_core::request::{ResponseMode, ResponseType};

    /// A plain code request, for tests of what reads requests.
    pub(crate) fn request() -> AuthRequest {
        AuthRequest {
            client_id: "c".into(),
            redirect_uri: "https://app/cb".into(),
            response_type: ResponseType::parse("code").unwrap(),
            response_mode: ResponseMode::Query,
            scope: vec!["openid".into()],
            audience: None,
            state: Some("s".into()),
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
            started_at: 1,
            parameters: vec![],
        }
    }

    #[test]
    fn transactions_of_either_shape_are_read() {
        let bare = serde_json::to_string(&request()).unwrap();
        let pending = Pending::read(&bare).expect("a bare request");
        assert_eq!(pending.request.client_id, "c");
        assert_eq!(pending.consent, None);
        let answered = Pending {
            consent: Some(Consent::Answered {
                user_id: "u".into(),
                accepted: false,
            }),
            ..Pending::new(request())
        };
        let read = Pending::read(&serde_json::to_string(&answered).unwrap()).unwrap();
        assert_eq!(read.consent, answered.consent);
        assert!(Pending::read("{\"nonsense\":1}").is_none());
    }
}
