//! The second factor at the hosted login (`/u/mfa`, GET and POST). A first factor (a
//! password, a sign-up, an upstream provider) ends in [`after_first_factor`]: the session
//! starts now, or — when `crate::mfa` says this login needs a second factor — the login
//! transaction remembers who passed the first and the browser comes here. A user without an
//! authenticator enrolls one (a QR code and the key as text, confirmed by its first code,
//! then a recovery code shown once); a user with one enters its code or a recovery code.
//! With WebAuthn enabled, a user with a security key is asked for it (the page's script
//! calls `navigator.credentials.get` with a challenge bound to this login and posts the
//! result), and a user without a factor may register one (`navigator.credentials.create`).
//! The session starts only when the second factor is passed; the step is single use.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::webauthn as wa;
use tessera_core::{User, ids, totp};
use tessera_store::{
    Authenticator, SessionRecord, StoreError, TOTP, TransactionRecord, WEBAUTHN_PLATFORM,
    WEBAUTHN_ROAMING, WebauthnCredential,
};

use crate::AppState;
use crate::clock::now;
use crate::edge::headers::no_store;
use crate::error::PageError;
use crate::hosted::forms::{csrf_failure, form_params, query_params, with_form_action};
use crate::hosted::session::SignedInWith;
use crate::hosted::transaction::{self, Failure, Pending, SecondFactorStep, with_cookie};
use crate::hosted::{passkey, session};
use crate::mfa::{self, Checked, Guardian};
use crate::pages::{self, MfaPage};

fn expired() -> PageError {
    PageError::bad_request(
        "Login session expired",
        "This verification page is no longer valid. Go back to the application and sign in again.",
    )
}

fn resume(id: &str) -> Response {
    pages::see_other(&format!("/authorize/resume?state={id}"))
}

/// After a first factor: a session for `user` now, or the second factor first. `stored`
/// is the transaction's text as the caller last saw it (the step is written only over it);
/// `onward` leads the browser to a path (a redirect, or a page where a redirect would be
/// held back).
pub(crate) async fn after_first_factor(
    (state, headers): (&AppState, &HeaderMap),
    (id, stored): (&str, &str),
    user: &User,
    mut how: SignedInWith,
    onward: fn(&str) -> Response,
) -> Result<Response, PageError> {
    let pending = Pending::read(stored).ok_or_else(expired)?;
    let guardian = mfa::guardian(state).await?;
    let needed = guardian.required_for(&pending.request);
    let rememberable = mfa::rememberable(&pending.request);
    if needed && rememberable && remembered(state, headers, &guardian, &user.user_id).await? {
        how.amr.push("mfa".into());
    }
    if !needed || mfa::has_second_factor(&how.amr) {
        let mut next = pending;
        let offer = passkey::offer(state, &mut next, id, (user, &how.connection)).await?;
        if offer.is_some() {
            let text = serde_json::to_string(&next).expect("plain data serializes");
            if !state.store().replace_transaction(id, stored, &text).await? {
                return Err(expired());
            }
        }
        let (_, cookie) = session::start(state, (user, &next.request.client_id), how).await?;
        let path = offer.unwrap_or_else(|| format!("/authorize/resume?state={id}"));
        return Ok(with_cookie(onward(&path), Some(cookie)));
    }
    let mut next = pending;
    next.mfa = Some(SecondFactorStep {
        user_id: user.user_id.clone(),
        connection: how.connection,
        amr: how.amr,
        upstream_sid: how.upstream_sid,
        challenge: None,
        rememberable,
    });
    let text = serde_json::to_string(&next).expect("plain data serializes");
    if !state.store().replace_transaction(id, stored, &text).await? {
        return Err(expired());
    }
    Ok(onward(&format!("/u/mfa?state={id}")))
}

/// Whether this browser is remembered for the user within the tenant's timeouts.
async fn remembered(
    state: &AppState,
    headers: &HeaderMap,
    guardian: &Guardian,
    user_id: &str,
) -> Result<bool, StoreError> {
    let timeouts = (guardian.remember.inactivity, guardian.remember.overall);
    let remembered = session::browser_remembered(state, headers, user_id, timeouts).await?;
    if remembered {
        tracing::info!(user_id, "second factor skipped: a remembered browser");
    }
    Ok(remembered)
}

/// Post-login asked for a second factor (`api.multifactor.enable`) that the signed-in
/// session has not passed: the request (`pending`: an authorization request, or the device
/// flow's activation) waits in a login transaction while the user passes one on `/u/mfa`;
/// the session that follows carries `mfa`, and the request resumes. With
/// `allowRememberBrowser` (`remember`), a remembered browser passes at once.
pub(crate) async fn ask_after_login(
    state: &AppState,
    headers: &HeaderMap,
    (mut pending, remember): (Pending, bool),
    (session, user): (&SessionRecord, &User),
) -> Result<Response, PageError> {
    let rememberable = remember && mfa::rememberable(&pending.request);
    let connection = session
        .connection
        .clone()
        .unwrap_or_else(|| user.connection.clone());
    let guardian = mfa::guardian(state).await?;
    if rememberable && remembered(state, headers, &guardian, &user.user_id).await? {
        let mut amr = session.amr.clone();
        amr.push("mfa".into());
        let (id, cookie) = transaction::begin(state, headers, &pending).await?;
        // The same sign-in, stepped up: still the provider's session it was.
        let how = SignedInWith {
            connection,
            amr,
            upstream_sid: session.upstream_sid.clone(),
        };
        let (_, session_cookie) =
            session::start(state, (user, &pending.request.client_id), how).await?;
        let resume = with_cookie(resume(&id), Some(cookie));
        return Ok(with_cookie(resume, Some(session_cookie)));
    }
    pending.mfa = Some(SecondFactorStep {
        user_id: user.user_id.clone(),
        connection,
        amr: session.amr.clone(),
        upstream_sid: session.upstream_sid.clone(),
        challenge: None,
        rememberable,
    });
    let (id, cookie) = transaction::begin(state, headers, &pending).await?;
    Ok(with_cookie(
        pages::redirect(&format!("/u/mfa?state={id}")),
        Some(cookie),
    ))
}

/// The step of a transaction this browser started, and its user.
struct Step {
    record: TransactionRecord,
    pending: Pending,
    step: SecondFactorStep,
    user: User,
    guardian: Guardian,
    authenticators: Vec<Authenticator>,
    /// The user's security keys and platform authenticators (not passkeys).
    keys: Vec<WebauthnCredential>,
}

async fn load(state: &AppState, headers: &HeaderMap, id: Option<&str>) -> Result<Step, PageError> {
    let (record, pending, _) = transaction::load(state, headers, id, expired).await?;
    let step = pending.mfa.clone().ok_or_else(expired)?;
    let user = state
        .store()
        .find_user(&step.user_id)
        .await?
        .filter(|user| !user.blocked)
        .ok_or_else(expired)?;
    let authenticators = state.store().authenticators_of(&user.user_id).await?;
    let keys = state
        .store()
        .webauthn_credentials_of(&user.user_id)
        .await?
        .into_iter()
        .filter(|c| c.kind == WEBAUTHN_ROAMING || c.kind == WEBAUTHN_PLATFORM)
        .collect();
    Ok(Step {
        record,
        pending,
        step,
        user,
        guardian: mfa::guardian(state).await?,
        authenticators,
        keys,
    })
}

impl Step {
    /// Writes the step's WebAuthn challenge into the transaction (over the text last
    /// read: a racing request makes this one expire).
    async fn set_challenge(
        &mut self,
        state: &AppState,
        challenge: Option<String>,
    ) -> Result<(), PageError> {
        let mut step = self.step.clone();
        step.challenge = challenge;
        let mut next = self.pending.clone();
        next.mfa = Some(step.clone());
        let text = serde_json::to_string(&next).expect("plain data serializes");
        if !state
            .store()
            .replace_transaction(&self.record.id, &self.record.request, &text)
            .await?
        {
            return Err(expired());
        }
        self.record.request = text;
        self.pending = next;
        self.step = step;
        Ok(())
    }

    /// A new challenge for the page (32 random bytes, base64url), remembered in the
    /// transaction.
    async fn issue_challenge(&mut self, state: &AppState) -> Result<String, PageError> {
        let challenge = ids::secret_token();
        self.set_challenge(state, Some(challenge.clone())).await?;
        Ok(challenge)
    }

    /// The challenge issued, taken out of the transaction before the response is checked
    /// (each is used once); `None` when none was issued.
    async fn take_challenge(&mut self, state: &AppState) -> Result<Option<Vec<u8>>, PageError> {
        let Some(challenge) = self.step.challenge.clone() else {
            return Ok(None);
        };
        self.set_challenge(state, None).await?;
        Ok(wa::unb64(&challenge))
    }

    /// Whether the user has a key the tenant lets them use.
    fn has_key(&self) -> bool {
        self.guardian.webauthn() && !self.keys.is_empty()
    }
}

/// What the page shows for a step.
enum Shown {
    /// Enter the code of the confirmed authenticator (or, with `recovery`, a recovery code).
    Challenge { recovery: bool },
    /// Enroll the unconfirmed authenticator with this seed.
    Enroll { seed: Vec<u8> },
    /// Use a registered security key.
    Key,
    /// Register a security key.
    KeyEnroll,
}

/// Which factor the user chose where two are possible (`method=otp|key`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Choice {
    Otp,
    Key,
    Default,
}

impl Choice {
    fn of(value: Option<&str>) -> Choice {
        match value {
            Some("otp") => Choice::Otp,
            Some("key") => Choice::Key,
            _ => Choice::Default,
        }
    }
}

/// OpenID Connect's answer when the login needs a second factor that cannot be had.
const UNMET: &str = "unmet_authentication_requirements";

/// Whether this login needs a second factor the user can neither pass nor enroll: none is
/// enrolled and none is enabled (an application's `acr_values`, or an action, asked anyway).
fn nothing_to_offer(step: &Step) -> bool {
    mfa::confirmed_totp(&step.authenticators).is_none()
        && !step.has_key()
        && !step.guardian.webauthn()
        && !step.guardian.totp_offered()
}

/// The application hears `unmet_authentication_requirements` through `/authorize/resume`
/// (its redirect_uri is trusted by now), rather than the user meeting a dead end.
async fn unmet(state: &AppState, step: &Step) -> Result<Response, PageError> {
    let mut failed = step.pending.clone();
    failed.mfa = None;
    failed.failure = Some(Failure {
        error: UNMET.to_string(),
        description: "The login needs a second factor, and none is available.".to_string(),
    });
    let text = serde_json::to_string(&failed).expect("plain data serializes");
    if !state
        .store()
        .replace_transaction(&step.record.id, &step.record.request, &text)
        .await?
    {
        return Err(expired());
    }
    Ok(resume(&step.record.id))
}

/// What the user is asked, enrolling an authenticator when they have none (and may). A
/// security key is asked before an app's code unless the user chose the app.
async fn shown(
    state: &AppState,
    step: &Step,
    recovery: bool,
    choice: Choice,
) -> Result<Shown, PageError> {
    let has_totp = mfa::confirmed_totp(&step.authenticators).is_some();
    if has_totp || step.has_key() {
        return Ok(if recovery {
            Shown::Challenge { recovery: true }
        } else if step.has_key() && !(has_totp && choice == Choice::Otp) {
            Shown::Key
        } else {
            Shown::Challenge { recovery: false }
        });
    }
    if step.guardian.webauthn() && (choice == Choice::Key || !step.guardian.totp_offered()) {
        return Ok(Shown::KeyEnroll);
    }
    if !step.guardian.totp_offered() {
        return Err(PageError::bad_request(
            "Second factor unavailable",
            "This login needs a second factor, and none is enabled. Ask your administrator.",
        ));
    }
    // The enrollment in progress keeps its seed across reloads and wrong codes.
    let key = &state.config().master_key;
    if let Some(seed) = mfa::pending_totp(&step.authenticators).and_then(|a| mfa::open_seed(key, a))
    {
        return Ok(Shown::Enroll { seed });
    }
    let seed = totp::new_seed();
    let id = mfa::authenticator_id(TOTP);
    let sealed = mfa::seal_seed(key, &step.user.user_id, &id, &seed);
    match state
        .store()
        .begin_totp_enrollment(&step.user.user_id, &id, &sealed, now())
        .await
    {
        Ok(()) => Ok(Shown::Enroll { seed }),
        // Confirmed by another tab meanwhile: its code is asked.
        Err(StoreError::Conflict(_)) => Ok(Shown::Challenge { recovery }),
        Err(other) => Err(other.into()),
    }
}

/// The options the page hands `navigator.credentials.get` (`Shown::Key`) or `.create`
/// (`Shown::KeyEnroll`), with a new challenge; `None` for the other pages.
async fn key_options(
    state: &AppState,
    step: &mut Step,
    shown: &Shown,
) -> Result<Option<String>, PageError> {
    if !matches!(shown, Shown::Key | Shown::KeyEnroll) {
        return Ok(None);
    }
    let challenge = step.issue_challenge(state).await?;
    let (rp_id, _) = mfa::relying_party(state);
    let guardian = &step.guardian;
    let options = if matches!(shown, Shown::Key) {
        json!({
            "challenge": challenge,
            "rpId": rp_id,
            "allowCredentials": mfa::descriptors(&step.keys),
            "userVerification": guardian.user_verification,
            "timeout": 120000,
        })
    } else {
        let mut selection = json!({
            "residentKey": "discouraged",
            "userVerification": guardian.user_verification,
        });
        // With one kind enabled, the browser offers only that kind.
        match (guardian.webauthn_roaming, guardian.webauthn_platform) {
            (true, false) => selection["authenticatorAttachment"] = json!("cross-platform"),
            (false, true) => selection["authenticatorAttachment"] = json!("platform"),
            _ => {}
        }
        mfa::creation_options(state, &step.user, (&challenge, &step.keys), selection)
    };
    Ok(Some(options.to_string()))
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    step: &mut Step,
    shown: &Shown,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let options = key_options(state, step, shown).await?;
    let (csrf, cookie) = session::csrf_token(state, headers);
    let (issuer_host, _) = mfa::relying_party(state);
    let (enrolling, recovery_form, secret, qr_svg) = match shown {
        Shown::Enroll { seed } => {
            // The app lists the key under the user's address, or id for a user without one.
            let account = step.user.email.as_deref().unwrap_or(&step.user.user_id);
            let uri = totp::key_uri(&format!("Tessera {issuer_host}"), account, seed);
            (true, false, totp::seed_text(seed), qr_svg(&uri))
        }
        Shown::Challenge { recovery } => (false, *recovery, String::new(), String::new()),
        Shown::Key | Shown::KeyEnroll => (false, false, String::new(), String::new()),
    };
    let has_totp = mfa::confirmed_totp(&step.authenticators).is_some();
    let recovery_offered = step
        .authenticators
        .iter()
        .any(|a| a.kind == tessera_store::RECOVERY_CODE);
    let page = MfaPage {
        transaction: &step.record.id,
        csrf: &csrf,
        enrolling,
        recovery_form,
        recovery_offered,
        secret: &secret,
        qr_svg: &qr_svg,
        error,
        recovery_code: None,
        key: matches!(shown, Shown::Key),
        key_enroll: matches!(shown, Shown::KeyEnroll),
        key_options: options.as_deref().unwrap_or(""),
        // The other factor the user may switch to.
        otp_offered: has_totp || (step.guardian.totp_offered() && !step.has_key()),
        key_offered: step.has_key() || (step.guardian.webauthn() && !has_totp),
        remember_offered: step.step.rememberable && step.guardian.remember.display_checkbox,
        remember_checked: step.guardian.remember.default_value,
        remember_days: step.guardian.remember.overall / 86_400,
    };
    // The answer redirects on to the application: the form's CSP must allow its origin.
    let html = with_form_action(
        pages::html(status, &page),
        &step.pending.request.redirect_uri,
    );
    Ok(no_store(with_cookie(html, cookie)))
}

/// The key URI as an SVG QR code (drawn on the server: no script, no image fetched).
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(192, 192)
                .build();
            // Inline in HTML: the document's XML declaration is not wanted.
            svg.find("<svg")
                .map(|start| svg[start..].to_string())
                .unwrap_or_default()
        }
        // A key URI is short; should one ever not fit, the key is shown as text anyway.
        Err(_) => String::new(),
    }
}

/// `GET /u/mfa?state=TX[&recovery=1]`: the code asked, or the enrollment.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let params = query_params(query)?;
        let mut step = load(&state, &headers, params.get("state")).await?;
        let recovery = params.get("recovery") == Some("1");
        let choice = Choice::of(params.get("method"));
        if nothing_to_offer(&step) {
            return unmet(&state, &step).await;
        }
        let shown = shown(&state, &step, recovery, choice).await?;
        render(&state, &headers, &mut step, &shown, StatusCode::OK, None).await
    }
    .await;
    no_store(result.unwrap_or_else(IntoResponse::into_response))
}

/// `POST /u/mfa`: a code (`action=code`), a recovery code (`action=recovery`), a security
/// key's assertion (`action=key`) or registration (`action=key-enroll`).
pub(crate) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = form_params(&headers, &body)?;
        let mut step = load(&state, &headers, params.get("state")).await?;
        let csrf = params.get("csrf").unwrap_or("");
        if !session::csrf_valid(&state, &headers, csrf, &step.record.csrf_hash) {
            return Err(csrf_failure());
        }
        let action = params.get("action").unwrap_or("");
        let recovery = action == "recovery";
        if nothing_to_offer(&step) {
            return unmet(&state, &step).await;
        }
        let shown = shown(&state, &step, recovery, Choice::of(params.get("method"))).await?;
        let now = now();
        let user_id = step.user.user_id.clone();
        // A key's response is checked against the challenge this login was given, which
        // is used up now, whatever the outcome.
        let challenge = match shown {
            Shown::Key | Shown::KeyEnroll => step.take_challenge(&state).await?,
            _ => None,
        };
        let (checked, method, recovery_code) = match &shown {
            Shown::Key => {
                let posted =
                    mfa::PostedAssertion::read(|name| params.get(name)).filter(|_| action == "key");
                let uv = step.guardian.uv_required();
                let (checked, _) = match &challenge {
                    Some(challenge) => {
                        mfa::check_assertion(
                            &state,
                            &user_id,
                            &step.keys,
                            posted.as_ref(),
                            (challenge, uv),
                            now,
                        )
                        .await?
                    }
                    None => (Checked::Refused, None),
                };
                (checked, "hwk", None)
            }
            Shown::KeyEnroll => {
                let field = |name: &str| params.get(name).filter(|_| action == "key-enroll");
                enroll_key(&state, &step, field, challenge.as_deref(), now).await?
            }
            Shown::Challenge { recovery: false } => {
                let authenticator = mfa::confirmed_totp(&step.authenticators)
                    .expect("a challenge has a confirmed authenticator");
                let code = params.get("code").unwrap_or("");
                let checked = mfa::check_totp(&state, authenticator, code, now).await?;
                (checked, "otp", None)
            }
            Shown::Challenge { recovery: true } => {
                let code = params.get("recovery_code").unwrap_or("");
                let (checked, next) = mfa::use_recovery_code(&state, &user_id, code, now).await?;
                (checked, "recovery-code", next)
            }
            Shown::Enroll { .. } => enroll(&state, &step, params.get("code"), now).await?,
        };
        record(&state, &step, &shown, &checked);
        let key = matches!(shown, Shown::Key | Shown::KeyEnroll);
        let error = match checked {
            Checked::Accepted => None,
            Checked::Refused if key => Some("Your security key could not be verified. Try again."),
            Checked::Refused => Some("That code is not right. Try again."),
            Checked::Locked if key => {
                Some("Too many failed attempts. Wait a few minutes, then try again.")
            }
            Checked::Locked => Some("Too many wrong codes. Wait a few minutes, then try again."),
        };
        if let Some(error) = error {
            tracing::info!(user_id = %user_id, method, "second factor refused");
            let status = match checked {
                Checked::Locked => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            return render(&state, &headers, &mut step, &shown, status, Some(error)).await;
        }
        let remember = step.step.rememberable
            && step
                .guardian
                .remember
                .chosen(params.get("remember_browser"));
        passed(&state, step, (method, remember), recovery_code).await
    }
    .await;
    no_store(result.unwrap_or_else(IntoResponse::into_response))
}

/// The audit event of a second factor's outcome, in Auth0's codes: `gd_auth_succeed` /
/// `gd_auth_failed` (a code or a security key), `gd_recovery_succeed` /
/// `gd_recovery_failed`, `gd_enrollment_complete` (an authenticator or key registered) or
/// `gd_webauthn_enrollment_failed`, and `gd_otp_rate_limit_exceed` once too many wrong
/// attempts lock the factor. Nothing typed or posted is kept, only the factor's kind.
fn record(state: &AppState, step: &Step, shown: &Shown, checked: &Checked) {
    let (authenticator, succeeded, failed) = match shown {
        Shown::Challenge { recovery: false } => ("otp", "gd_auth_succeed", "gd_auth_failed"),
        Shown::Challenge { recovery: true } => {
            ("recovery-code", "gd_recovery_succeed", "gd_recovery_failed")
        }
        Shown::Enroll { .. } => ("otp", "gd_enrollment_complete", "gd_auth_failed"),
        Shown::Key => ("webauthn-roaming", "gd_auth_succeed", "gd_auth_failed"),
        Shown::KeyEnroll => (
            "webauthn-roaming",
            "gd_enrollment_complete",
            "gd_webauthn_enrollment_failed",
        ),
    };
    let (log_type, description) = match checked {
        Checked::Accepted if matches!(shown, Shown::Enroll { .. } | Shown::KeyEnroll) => {
            (succeeded, "Second factor enrolled")
        }
        Checked::Accepted => (succeeded, "Second factor passed"),
        Checked::Refused => (failed, "Second factor refused"),
        Checked::Locked => (
            "gd_otp_rate_limit_exceed",
            "Too many failed second factor attempts",
        ),
    };
    let mut event = crate::audit::event(log_type, description);
    event.user_id = Some(step.user.user_id.clone());
    event.user_name.clone_from(&step.user.email);
    event.client_id = Some(step.pending.request.client_id.clone());
    event.details = json!({ "authenticator": authenticator });
    state.record_log(event);
}

/// Registers a security key (or platform authenticator); a recovery code comes with it.
async fn enroll_key<'p>(
    state: &AppState,
    step: &Step,
    field: impl Fn(&str) -> Option<&'p str>,
    challenge: Option<&[u8]>,
    now: i64,
) -> Result<(Checked, &'static str, Option<String>), PageError> {
    let user_id = &step.user.user_id;
    if mfa::locked(state, user_id, now).await? {
        return Ok((Checked::Locked, "hwk", None));
    }
    let Some(challenge) = challenge else {
        state.store().record_mfa_failure(user_id, now).await?;
        return Ok((Checked::Refused, "hwk", None));
    };
    let guardian = &step.guardian;
    // The kind the browser reports, among those enabled.
    let platform = guardian.webauthn_platform
        && (field("attachment") == Some("platform") || !guardian.webauthn_roaming);
    let (kind, name) = if platform {
        (WEBAUTHN_PLATFORM, "Platform authenticator")
    } else {
        (WEBAUTHN_ROAMING, "Security key")
    };
    let uv = guardian.uv_required();
    let Some(_) =
        mfa::register_credential(state, user_id, field, (challenge, uv), (kind, name), now).await?
    else {
        // Counted like a wrong code.
        state.store().record_mfa_failure(user_id, now).await?;
        return Ok((Checked::Refused, "hwk", None));
    };
    let recovery = mfa::new_recovery_code();
    let recovery_id = mfa::authenticator_id(tessera_store::RECOVERY_CODE);
    state
        .store()
        .regenerate_recovery_code(
            user_id,
            (&recovery_id, &mfa::recovery_code_hash(&recovery)),
            now,
        )
        .await?;
    state.store().clear_mfa_failures(user_id).await?;
    tracing::info!(user_id = %user_id, kind, "security key registered");
    Ok((Checked::Accepted, "hwk", Some(recovery)))
}

/// Confirms the enrollment with its first code; a recovery code comes with it.
async fn enroll(
    state: &AppState,
    step: &Step,
    code: Option<&str>,
    now: i64,
) -> Result<(Checked, &'static str, Option<String>), PageError> {
    let user_id = &step.user.user_id;
    let Some(pending) = mfa::pending_totp(&step.authenticators) else {
        state.store().record_mfa_failure(user_id, now).await?;
        return Ok((Checked::Refused, "otp", None));
    };
    let recovery = mfa::new_recovery_code();
    let hash = mfa::recovery_code_hash(&recovery);
    match mfa::confirm_enrollment(state, pending, code.unwrap_or(""), &hash, now).await? {
        Some(Checked::Accepted) => Ok((Checked::Accepted, "otp", Some(recovery))),
        Some(other) => Ok((other, "otp", None)),
        // Another tab confirmed it first: that one's session counts, not this.
        None => Err(expired()),
    }
}

/// The second factor passed: the step leaves the transaction (single use), the session
/// starts (and, when the user chose, this browser is remembered), and the browser resumes
/// the request — after seeing a new recovery code, if one was made.
async fn passed(
    state: &AppState,
    step: Step,
    (method, remember): (&'static str, bool),
    recovery_code: Option<String>,
) -> Result<Response, PageError> {
    let mut after = step.pending.clone();
    after.mfa = None;
    let user = (&step.user, step.step.connection.as_str());
    let offer = passkey::offer(state, &mut after, &step.record.id, user).await?;
    let text = serde_json::to_string(&after).expect("plain data serializes");
    if !state
        .store()
        .replace_transaction(&step.record.id, &step.record.request, &text)
        .await?
    {
        return Err(expired());
    }
    let mut amr = step.step.amr.clone();
    amr.push("mfa".into());
    // RFC 8176: `otp` for an app's code, `hwk` for a key held in hardware.
    if method == "otp" || method == "hwk" {
        amr.push(method.into());
    }
    state
        .store()
        .record_login(&step.user.user_id, now())
        .await?;
    tracing::info!(user_id = %step.user.user_id, method, "second factor passed");
    let how = SignedInWith {
        connection: step.step.connection.clone(),
        amr,
        upstream_sid: step.step.upstream_sid.clone(),
    };
    let (_, cookie) =
        session::start(state, (&step.user, &step.pending.request.client_id), how).await?;
    let remembered = if remember {
        let lifetime = step.guardian.remember.overall;
        Some(session::remember_browser(state, &step.user.user_id, lifetime).await?)
    } else {
        None
    };
    let response = match recovery_code {
        None => match offer {
            Some(path) => pages::see_other(&path),
            None => resume(&step.record.id),
        },
        Some(code) => {
            let page = MfaPage {
                transaction: &step.record.id,
                csrf: "",
                enrolling: false,
                recovery_form: false,
                recovery_offered: false,
                secret: "",
                qr_svg: "",
                error: None,
                recovery_code: Some(&code),
                key: false,
                key_enroll: false,
                key_options: "",
                otp_offered: false,
                key_offered: false,
                remember_offered: false,
                remember_checked: false,
                remember_days: 0,
            };
            pages::html(StatusCode::OK, &page)
        }
    };
    Ok(with_cookie(with_cookie(response, Some(cookie)), remembered))
}
