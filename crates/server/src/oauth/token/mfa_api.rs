//! Auth0's MFA API, for applications that sign users in with the password grant: when the
//! sign-in needs a second factor the grant answers `mfa_required` with an `mfa_token`, and
//! the application, holding that token, lists the user's authenticators
//! (`GET /mfa/authenticators`), asks for a code (`POST /mfa/challenge`), enrolls an
//! authenticator app for a user who has no second factor (`POST /mfa/associate`), and
//! finishes the sign-in at the token endpoint with a one-time password
//! (`…/grant-type/mfa-otp`) or a recovery code (`…/grant-type/mfa-recovery-code`).
//!
//! The token names one half-finished sign-in of one user at one application for ten
//! minutes (Auth0's fixed lifetime); it is kept as a hash and finishing takes it, so it
//! completes one sign-in. Codes are checked by `crate::mfa` exactly as on the hosted page:
//! each code once, wrong ones counted towards the same lockout. Out-of-band factors (SMS,
//! push, email) are not offered, so `oob` challenges are refused by name.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tessera_core::{Client, MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT, User, ids, totp};
use tessera_store::{Authenticator, MfaTokenRecord, RECOVERY_CODE, StoreError, TOTP};

use super::client_auth::ClientCredentials;
use super::password::{self, PasswordRequest};
use super::response::TokenResponse;
use crate::AppState;
use crate::actions::RequestFacts;
use crate::clock::now;
use crate::edge::authorization;
use crate::edge::cors;
use crate::edge::headers::no_store;
use crate::edge::params::Params;
use crate::error::OAuthError;
use crate::grant;
use crate::mfa::{self, Checked};

/// Auth0's fixed lifetime of an `mfa_token`, in seconds.
const MFA_TOKEN_LIFETIME: i64 = 600;
/// The most an `/mfa/associate` body may weigh: one short list of names.
const MAX_ASSOCIATE_BODY: usize = 4 * 1024;

/// The `mfa_required` answer to a password grant whose sign-in needs a second factor. An
/// application allowed an MFA grant gets an `mfa_token` to finish it with; another hears
/// only that a second factor is needed.
pub(super) async fn mfa_required(
    state: &AppState,
    client: &Client,
    user: &User,
    request: &PasswordRequest,
) -> OAuthError {
    let mut error = OAuthError::new(
        StatusCode::FORBIDDEN,
        "mfa_required",
        grant::SECOND_FACTOR_NEEDED,
    );
    if !(client.allows_grant(MFA_OTP_GRANT) || client.allows_grant(MFA_RECOVERY_CODE_GRANT)) {
        return error;
    }
    let token = ids::secret_token();
    let record = MfaTokenRecord {
        token_hash: ids::secret_hash(&token),
        client_id: client.client_id.clone(),
        user_id: user.user_id.clone(),
        grant: serde_json::to_string(request).expect("plain data serializes"),
        recovery_hash: None,
        expires_at: now() + MFA_TOKEN_LIFETIME,
    };
    match state.store().create_mfa_token(&record).await {
        Ok(()) => {
            error.mfa_token = Some(token);
            error
        }
        Err(store) => store.into(),
    }
}

/// A live MFA token and the user it signs in.
struct Pending {
    record: MfaTokenRecord,
    user: User,
    authenticators: Vec<Authenticator>,
}

/// The live sign-in `token` names, for `client` when one is named (the token endpoint and
/// `/mfa/challenge` authenticate the application; the bearer endpoints have only the
/// token). `None` for an unknown, expired, finished or other application's token, or a
/// user blocked or deleted since.
async fn pending(
    state: &AppState,
    token: &str,
    client: Option<&Client>,
) -> Result<Option<Pending>, StoreError> {
    // Our tokens are 43 characters; anything much longer is not worth hashing.
    if token.is_empty() || token.len() > 256 {
        return Ok(None);
    }
    let Some(record) = state
        .store()
        .find_mfa_token(&ids::secret_hash(token), now())
        .await?
    else {
        return Ok(None);
    };
    if client.is_some_and(|client| client.client_id != record.client_id) {
        return Ok(None);
    }
    let Some(user) = state
        .store()
        .find_user(&record.user_id)
        .await?
        .filter(|user| !user.blocked)
    else {
        return Ok(None);
    };
    let authenticators = state.store().authenticators_of(&user.user_id).await?;
    Ok(Some(Pending {
        record,
        user,
        authenticators,
    }))
}

/// The bearer endpoints' refusal of a missing or unusable `mfa_token` (RFC 6750 §3.1).
fn invalid_token() -> OAuthError {
    OAuthError::invalid_token("The mfa_token is invalid or has expired.")
}

/// The `mfa_token` an `Authorization: Bearer` header carries.
async fn bearer_pending(state: &AppState, headers: &HeaderMap) -> Result<Pending, OAuthError> {
    let token = match authorization::with_scheme(headers, "Bearer") {
        Ok(Some(token)) => token,
        Ok(None) | Err(_) => return Err(invalid_token()),
    };
    pending(state, token, None).await?.ok_or_else(invalid_token)
}

/// Whether the user has a second factor the hosted page would ask for: a confirmed
/// authenticator app or a security key. Enrolling another through this API would let a
/// password alone replace it.
async fn has_second_factor(state: &AppState, pending: &Pending) -> Result<bool, StoreError> {
    if mfa::confirmed_totp(&pending.authenticators).is_some() {
        return Ok(true);
    }
    let keys = state
        .store()
        .webauthn_credentials_of(&pending.user.user_id)
        .await?;
    Ok(keys
        .iter()
        .any(|key| key.kind == mfa::WEBAUTHN_ROAMING || key.kind == mfa::WEBAUTHN_PLATFORM))
}

/// An authenticator as `/mfa/authenticators` lists it.
fn listed(authenticator: &Authenticator) -> Option<Value> {
    let kind = match authenticator.kind.as_str() {
        TOTP => "otp",
        RECOVERY_CODE => "recovery-code",
        _ => return None,
    };
    Some(json!({
        "id": authenticator.id,
        "authenticator_type": kind,
        "active": authenticator.confirmed,
    }))
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    result: Result<Value, OAuthError>,
) -> Response {
    let response = match result {
        Ok(body) => no_store(Json(body).into_response()),
        Err(error) => error.into_response(),
    };
    cors::allow_registered(state, headers, response).await
}

/// `GET /mfa/authenticators`: the user's authenticator app and recovery code (an
/// enrollment not yet confirmed is listed inactive). Security keys are not listed: they
/// are answered on the hosted page, not through this API.
pub(crate) async fn authenticators(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let result = async {
        let pending = bearer_pending(&state, &headers).await?;
        let listed: Vec<Value> = pending.authenticators.iter().filter_map(listed).collect();
        Ok(Value::Array(listed))
    }
    .await;
    answer(&state, &headers, result).await
}

/// `POST /mfa/challenge`: the application says which challenges it can present; Tessera
/// answers that the user should enter their app's code. The code itself is checked by the
/// `mfa-otp` grant.
pub(crate) async fn challenge(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = Params::from_body(&headers, &body, true)
            .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let credentials = ClientCredentials::from_request(&headers, &params)?;
        let token = params
            .get("mfa_token")
            .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: mfa_token"))?;
        let client = credentials.authenticated_client(&state).await?;
        let pending = pending(&state, token, Some(&client))
            .await?
            .ok_or_else(|| invalid_grant("The mfa_token is invalid or has expired."))?;
        let accepted = params.get("challenge_type").unwrap_or("otp oob");
        if !accepted.split(' ').any(|kind| kind == "otp") {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_challenge_type",
                "Only the otp challenge type is offered: there are no out-of-band factors.",
            ));
        }
        let usable = match params.get("authenticator_id") {
            Some(id) => pending
                .authenticators
                .iter()
                .any(|a| a.id == id && a.kind == TOTP && a.confirmed),
            None => mfa::confirmed_totp(&pending.authenticators).is_some(),
        };
        if !usable {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "association_required",
                "User is not enrolled. You can use /mfa/associate endpoint to enroll the first authenticator.",
            ));
        }
        Ok(json!({ "challenge_type": "otp" }))
    }
    .await;
    answer(&state, &headers, result).await
}

/// `POST /mfa/associate` `{"authenticator_types":["otp"]}`: a user without a second factor
/// enrolls an authenticator app. The answer carries its key (text and `otpauth://` URI)
/// and the recovery code the user gets once the enrollment is confirmed by the `mfa-otp`
/// grant with the app's first code.
pub(crate) async fn associate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let pending = bearer_pending(&state, &headers).await?;
        let asked = associate_types(&headers, &body)?;
        if asked != ["otp"] {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_challenge_type",
                "Only an authenticator app (otp) can be enrolled.",
            ));
        }
        if !mfa::guardian(&state).await?.enabled(mfa::OTP) {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_challenge_type",
                "One-time passwords are not enabled for this tenant.",
            ));
        }
        if has_second_factor(&state, &pending).await? {
            return Err(OAuthError::access_denied("User is already enrolled."));
        }
        enroll(&state, &pending).await
    }
    .await;
    answer(&state, &headers, result).await
}

/// `authenticator_types` of an `/mfa/associate` body (JSON, as Auth0's SDKs send it).
fn associate_types(headers: &HeaderMap, body: &[u8]) -> Result<Vec<String>, OAuthError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(OAuthError::invalid_request(
            "Send the body as application/json.",
        ));
    }
    if body.len() > MAX_ASSOCIATE_BODY {
        return Err(OAuthError::invalid_request("The body is too large."));
    }
    let malformed = || {
        OAuthError::invalid_request("authenticator_types must be a list of authenticator types.")
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| malformed())?;
    let list = value
        .get("authenticator_types")
        .and_then(Value::as_array)
        .ok_or_else(malformed)?;
    list.iter()
        .map(|item| item.as_str().map(str::to_string).ok_or_else(malformed))
        .collect()
}

/// Starts (or restarts) the user's authenticator-app enrollment and keeps the recovery
/// code it hands out with the token, to be given to the user when the enrollment is
/// confirmed.
async fn enroll(state: &AppState, pending: &Pending) -> Result<Value, OAuthError> {
    let user = &pending.user;
    let key = &state.config().master_key;
    let seed = totp::new_seed();
    let id = mfa::authenticator_id(TOTP);
    let sealed = mfa::seal_seed(key, &user.user_id, &id, &seed);
    let now = now();
    match state
        .store()
        .begin_totp_enrollment(&user.user_id, &id, &sealed, now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(OAuthError::access_denied("User is already enrolled."));
        }
        Err(other) => return Err(other.into()),
    }
    let recovery = mfa::new_recovery_code();
    if !state
        .store()
        .set_mfa_token_recovery(
            &pending.record.token_hash,
            &mfa::recovery_code_hash(&recovery),
            now,
        )
        .await?
    {
        return Err(invalid_token());
    }
    let (issuer_host, _) = mfa::relying_party(state);
    // The app lists the key under the user's address, or id for a user without one.
    let account = user.email.as_deref().unwrap_or(&user.user_id);
    tracing::info!(user_id = %user.user_id, "authenticator app enrollment started (MFA API)");
    Ok(json!({
        "authenticator_type": "otp",
        "secret": totp::seed_text(&seed),
        "barcode_uri": totp::key_uri(&format!("Tessera {issuer_host}"), account, &seed),
        "recovery_codes": [recovery],
    }))
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(StatusCode::FORBIDDEN, "invalid_grant", description)
}

/// What a refused code answers.
fn refused(checked: Checked, description: &str) -> OAuthError {
    match checked {
        Checked::Locked => OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many failed attempts. Wait a few minutes, then try again.",
        ),
        Checked::Refused | Checked::Accepted => invalid_grant(description),
    }
}

/// The grant's application, its sign-in in waiting, and the code presented.
async fn grant_parts<'p>(
    state: &AppState,
    params: &'p Params,
    credentials: &ClientCredentials,
    (grant_type, code_name): (&str, &str),
) -> Result<(Client, Pending, &'p str), OAuthError> {
    let required = |name: &str| {
        params
            .get(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| {
                OAuthError::invalid_request(format!("Missing required parameter: {name}"))
            })
    };
    let token = required("mfa_token")?;
    let code = required(code_name)?;
    let client = credentials.client_allowed(state, grant_type).await?;
    let pending = pending(state, token, Some(&client))
        .await?
        .ok_or_else(|| invalid_grant("The mfa_token is invalid or has expired."))?;
    Ok((client, pending, code))
}

/// `grant_type=http://auth0.com/oauth/grant-type/mfa-otp`: the code of the user's
/// authenticator app — or, for an enrollment begun at `/mfa/associate`, its first code,
/// which confirms it.
pub(super) async fn otp_grant(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
    facts: &RequestFacts,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let (client, pending, code) =
        grant_parts(state, params, credentials, (MFA_OTP_GRANT, "otp")).await?;
    let now = now();
    let checked = if let Some(authenticator) = mfa::confirmed_totp(&pending.authenticators) {
        mfa::check_totp(state, authenticator, code, now).await?
    } else if let (Some(enrolling), Some(recovery)) = (
        mfa::pending_totp(&pending.authenticators),
        pending.record.recovery_hash.as_deref(),
    ) {
        mfa::confirm_enrollment(state, enrolling, code, recovery, now)
            .await?
            .ok_or_else(|| invalid_grant("The enrollment was confirmed by another request."))?
    } else {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "association_required",
            "User is not enrolled. You can use /mfa/associate endpoint to enroll the first authenticator.",
        ));
    };
    if checked != Checked::Accepted {
        return Err(refused(checked, "Invalid otp_code."));
    }
    finish(state, &client, pending, "otp", facts, None, dpop).await
}

/// `grant_type=http://auth0.com/oauth/grant-type/mfa-recovery-code`: a recovery code, used
/// once; the answer carries the user's next one (`recovery_code`), to be shown once.
pub(super) async fn recovery_code_grant(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
    facts: &RequestFacts,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let (client, pending, code) = grant_parts(
        state,
        params,
        credentials,
        (MFA_RECOVERY_CODE_GRANT, "recovery_code"),
    )
    .await?;
    let (checked, next) = mfa::use_recovery_code(state, &pending.user.user_id, code, now()).await?;
    if checked != Checked::Accepted {
        return Err(refused(checked, "Invalid recovery code."));
    }
    finish(state, &client, pending, "recovery-code", facts, next, dpop).await
}

/// The second factor passed: the token is taken (a racing request with another good code
/// finds it gone) and the password grant's sign-in is finished as it would have been.
async fn finish(
    state: &AppState,
    client: &Client,
    pending: Pending,
    method: &str,
    facts: &RequestFacts,
    next_recovery_code: Option<String>,
    dpop: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let Some(record) = state
        .store()
        .take_mfa_token(&pending.record.token_hash, now())
        .await?
    else {
        return Err(invalid_grant("The mfa_token is invalid or has expired."));
    };
    let request: PasswordRequest =
        serde_json::from_str(&record.grant).map_err(|_| OAuthError::server_error())?;
    let mut amr = vec!["pwd".to_string(), "mfa".to_string()];
    // RFC 8176: `otp` for an app's code; a recovery code has no method of its own.
    if method == "otp" {
        amr.push("otp".into());
    }
    tracing::info!(user_id = %pending.user.user_id, client_id = %client.client_id, method, "second factor passed (MFA API)");
    let mut tokens =
        password::finish(state, client, &pending.user, &request, amr, facts, dpop).await?;
    tokens.recovery_code = next_recovery_code;
    Ok(tokens)
}
