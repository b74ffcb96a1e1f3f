//! Multi-factor authentication: the tenant's policy (Auth0's guardian policies and factors),
//! whether a login needs a second factor, and the second factors themselves — a TOTP
//! authenticator (seed sealed with the master key) and a recovery code (kept as a hash).
//! The hosted pages (`crate::hosted::mfa`) and the Management API
//! (`crate::management::guardian`) decide nothing of this on their own.

use serde_json::{Value, json};
use tessera_core::request::AuthRequest;
use tessera_core::system::DASHBOARD_CLIENT_ID;
use tessera_core::webauthn::{self as wa, Expected};
use tessera_core::{Metadata, ids, totp};
use tessera_jose::MasterKey;
use tessera_store::{
    Authenticator, RECOVERY_CODE, StoreError, StoreResult, TOTP, WebauthnCredential,
};

use crate::AppState;

/// The `acr_values` an application sends to ask for a second factor (step-up), and the
/// `acr` of an ID token whose login had one.
pub(crate) const MFA_ACR: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
/// `PUT /guardian/policies` `["all-applications"]`: every login needs a second factor.
pub(crate) const ALL_APPLICATIONS: &str = "all-applications";
/// Tessera's own setting: every sign-in to the dashboard needs a second factor.
pub(crate) const ADMINISTRATORS: &str = "administrators";
/// Auth0's factor names that Tessera offers.
pub(crate) const OTP: &str = "otp";
pub(crate) const RECOVERY: &str = "recovery-code";
/// Security keys and platform authenticators (WebAuthn) as second factors.
pub(crate) const WEBAUTHN_ROAMING: &str = tessera_store::WEBAUTHN_ROAMING;
pub(crate) const WEBAUTHN_PLATFORM: &str = tessera_store::WEBAUTHN_PLATFORM;
/// The `user_verification` setting of `webauthn-roaming`, as on Auth0.
pub(crate) const USER_VERIFICATION: &str = "user_verification";
pub(crate) const USER_VERIFICATION_VALUES: &[&str] = &["discouraged", "preferred", "required"];
/// Auth0's factor names that Tessera does not offer (yet): listed, never enabled.
pub(crate) const UNOFFERED: &[&str] = &["sms", "push-notification", "email", "duo"];
/// Consecutive wrong codes before a user must wait, and how long.
pub(crate) const MAX_FAILURES: i64 = 5;
pub(crate) const LOCKOUT_SECONDS: i64 = 300;

/// Auth0's `/guardian/settings`: whether the second-factor page shows "Remember this
/// browser", whether it starts ticked, and how long a remembered browser skips the second
/// factor — since it was remembered (overall) and since it was last used (inactivity).
pub(crate) const DISPLAY_REMEMBER: &str = "display_remember_me_checkbox";
pub(crate) const REMEMBER_DEFAULT: &str = "remember_me_default_value";
pub(crate) const INACTIVITY_TIMEOUT: &str = "mfa_session_inactivity_timeout";
pub(crate) const OVERALL_TIMEOUT: &str = "mfa_session_overall_timeout";
/// Auth0's bounds, in seconds: an hour to 30 days idle, an hour to 90 days in all.
const INACTIVITY_RANGE: std::ops::RangeInclusive<i64> = 3_600..=2_592_000;
const OVERALL_RANGE: std::ops::RangeInclusive<i64> = 3_600..=7_776_000;

/// "Remember this browser", as the tenant set it (Auth0's defaults otherwise: shown,
/// unticked, a week idle, 30 days in all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Remember {
    pub(crate) display_checkbox: bool,
    pub(crate) default_value: bool,
    pub(crate) inactivity: i64,
    pub(crate) overall: i64,
}

impl Default for Remember {
    fn default() -> Remember {
        Remember {
            display_checkbox: true,
            default_value: false,
            inactivity: 604_800,
            overall: 2_592_000,
        }
    }
}

impl Remember {
    fn of(settings: &Metadata) -> Remember {
        let default = Remember::default();
        let flag = |name: &str, or: bool| settings.get(name).and_then(Value::as_bool).unwrap_or(or);
        let seconds =
            |name: &str, or: i64| settings.get(name).and_then(Value::as_i64).unwrap_or(or);
        Remember {
            display_checkbox: flag(DISPLAY_REMEMBER, default.display_checkbox),
            default_value: flag(REMEMBER_DEFAULT, default.default_value),
            inactivity: seconds(INACTIVITY_TIMEOUT, default.inactivity),
            overall: seconds(OVERALL_TIMEOUT, default.overall),
        }
    }

    /// The settings as Auth0 shows them.
    pub(crate) fn json(&self) -> Value {
        json!({
            DISPLAY_REMEMBER: self.display_checkbox,
            REMEMBER_DEFAULT: self.default_value,
            INACTIVITY_TIMEOUT: self.inactivity,
            OVERALL_TIMEOUT: self.overall,
        })
    }

    /// A `PUT /guardian/settings` body: all four members, in Auth0's bounds; or why not.
    pub(crate) fn parse(body: &Value) -> Result<Remember, String> {
        let object = body
            .as_object()
            .ok_or("Expected an object of the four settings")?;
        if let Some(unknown) = object.keys().find(|name| {
            ![
                DISPLAY_REMEMBER,
                REMEMBER_DEFAULT,
                INACTIVITY_TIMEOUT,
                OVERALL_TIMEOUT,
            ]
            .contains(&name.as_str())
        }) {
            let shown: String = unknown.chars().take(64).collect();
            return Err(format!("{shown} is not a guardian setting"));
        }
        let flag = |name: &str| {
            object
                .get(name)
                .and_then(Value::as_bool)
                .ok_or(format!("{name} is required, a boolean"))
        };
        let seconds = |name: &str, range: &std::ops::RangeInclusive<i64>| {
            object
                .get(name)
                .and_then(Value::as_i64)
                .filter(|value| range.contains(value))
                .ok_or(format!(
                    "{name} is required, seconds from {} to {}",
                    range.start(),
                    range.end()
                ))
        };
        let remember = Remember {
            display_checkbox: flag(DISPLAY_REMEMBER)?,
            default_value: flag(REMEMBER_DEFAULT)?,
            inactivity: seconds(INACTIVITY_TIMEOUT, &INACTIVITY_RANGE)?,
            overall: seconds(OVERALL_TIMEOUT, &OVERALL_RANGE)?,
        };
        if remember.inactivity > remember.overall {
            return Err(format!(
                "{INACTIVITY_TIMEOUT} cannot exceed {OVERALL_TIMEOUT}"
            ));
        }
        Ok(remember)
    }

    /// Whether a browser is remembered after this second factor: the user's tick when the
    /// checkbox is shown, else the tenant's default.
    pub(crate) fn chosen(&self, ticked: Option<&str>) -> bool {
        if self.display_checkbox {
            ticked == Some("1")
        } else {
            self.default_value
        }
    }
}

/// The tenant's multi-factor settings, as stored (`Store::guardian_settings`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Guardian {
    /// Auth0's policies: `["all-applications"]` or `[]`.
    pub(crate) policies: Vec<String>,
    pub(crate) otp: bool,
    pub(crate) recovery_code: bool,
    /// Administrators pass a second factor to sign in to the dashboard ([`ADMINISTRATORS`]).
    pub(crate) administrators: bool,
    pub(crate) webauthn_roaming: bool,
    pub(crate) webauthn_platform: bool,
    /// `webauthn-roaming`'s `user_verification`: `discouraged`, `preferred` (the default)
    /// or `required` (the UV flag is then checked).
    pub(crate) user_verification: String,
    pub(crate) remember: Remember,
}

impl Guardian {
    pub(crate) fn of(settings: &Metadata) -> Guardian {
        let flag = |name: &str| settings.get(name).and_then(Value::as_bool).unwrap_or(false);
        Guardian {
            policies: settings
                .get("policies")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            otp: flag(OTP),
            recovery_code: flag(RECOVERY),
            administrators: flag(ADMINISTRATORS),
            webauthn_roaming: flag(WEBAUTHN_ROAMING),
            webauthn_platform: flag(WEBAUTHN_PLATFORM),
            user_verification: settings
                .get(USER_VERIFICATION)
                .and_then(Value::as_str)
                .filter(|v| USER_VERIFICATION_VALUES.contains(v))
                .unwrap_or("preferred")
                .to_string(),
            remember: Remember::of(settings),
        }
    }

    /// Whether a factor of Auth0's name is enabled.
    pub(crate) fn enabled(&self, factor: &str) -> bool {
        match factor {
            OTP => self.otp,
            RECOVERY => self.recovery_code,
            WEBAUTHN_ROAMING => self.webauthn_roaming,
            WEBAUTHN_PLATFORM => self.webauthn_platform,
            _ => false,
        }
    }

    /// Whether a login for `request` must pass a second factor: the tenant's policy, or
    /// the application asking for one (step-up).
    pub(crate) fn required_for(&self, request: &AuthRequest) -> bool {
        self.required_of(&request.client_id) || asks_for_mfa(request)
    }

    /// Whether the tenant's settings ask a second factor of every login to `client_id`:
    /// the policy, or the dashboard's administrators (the token endpoint's password grants
    /// have no request to ask with).
    pub(crate) fn required_of(&self, client_id: &str) -> bool {
        let every_login = self.policies.iter().any(|p| p == ALL_APPLICATIONS);
        let dashboard = self.administrators && client_id == DASHBOARD_CLIENT_ID;
        // With no factor enabled the policies ask nothing, as on Auth0: turning the last
        // factor off never locks administrators out of the dashboard.
        self.any_factor() && (every_login || dashboard)
    }

    /// Whether a factor a user can enroll at login is enabled.
    fn any_factor(&self) -> bool {
        self.otp || self.webauthn()
    }

    /// Whether security keys or platform authenticators are enabled.
    pub(crate) fn webauthn(&self) -> bool {
        self.webauthn_roaming || self.webauthn_platform
    }

    /// Whether the UV flag is required of a second-factor WebAuthn assertion.
    pub(crate) fn uv_required(&self) -> bool {
        self.user_verification == "required"
    }

    /// Whether a user without an authenticator app may enroll one in this login.
    pub(crate) fn totp_offered(&self) -> bool {
        self.otp
    }
}

/// The tenant's Guardian settings as this node keeps them (an administrator's change holds
/// at the next login on every node: `cluster`).
pub(crate) async fn guardian(state: &AppState) -> StoreResult<Guardian> {
    Ok(Guardian::of(
        &state
            .config_reads()
            .guardian_settings(state.store())
            .await?,
    ))
}

/// Whether a remembered browser may skip the second factor this login needs: when the
/// tenant's policy asks it, not when the application asks for one (step-up) nor at the
/// dashboard, whose administrators pass one each time.
pub(crate) fn rememberable(request: &AuthRequest) -> bool {
    !asks_for_mfa(request) && request.client_id != DASHBOARD_CLIENT_ID
}

/// The application asked for a second factor (`acr_values`).
pub(crate) fn asks_for_mfa(request: &AuthRequest) -> bool {
    request.acr_values.iter().any(|acr| acr == MFA_ACR)
}

/// A session's methods include a second factor.
pub(crate) fn has_second_factor(amr: &[String]) -> bool {
    amr.iter().any(|method| method == "mfa")
}

/// The `acr` an ID token states: the MFA policy when the application asked for it and the
/// login had a second factor.
pub(crate) fn acr_of(request: &AuthRequest, amr: &[String]) -> Option<String> {
    (asks_for_mfa(request) && has_second_factor(amr)).then(|| MFA_ACR.to_string())
}

fn seed_context(user_id: &str, authenticator_id: &str) -> Vec<u8> {
    format!("tessera totp seed\0{user_id}\0{authenticator_id}").into_bytes()
}

/// A seed sealed with the master key, bound to its user and authenticator: a sealed seed
/// copied onto another row does not open.
pub(crate) fn seal_seed(key: &MasterKey, user_id: &str, id: &str, seed: &[u8]) -> Vec<u8> {
    key.seal(seed, &seed_context(user_id, id))
}

/// The seed of a TOTP authenticator; `None` when it does not open.
pub(crate) fn open_seed(key: &MasterKey, authenticator: &Authenticator) -> Option<Vec<u8>> {
    key.open(
        &authenticator.secret,
        &seed_context(&authenticator.user_id, &authenticator.id),
    )
    .ok()
}

/// A new authenticator id in Auth0's style (`totp|dev_…`, `recovery-code|dev_…`).
pub(crate) fn authenticator_id(kind: &str) -> String {
    format!("{kind}|dev_{}", ids::alphanumeric(16))
}

/// A new recovery code: 24 characters of capitals and digits (about 124 bits), shown once.
pub(crate) fn new_recovery_code() -> String {
    ids::alphanumeric(24).to_uppercase()
}

/// The hash a recovery code is kept as; spaces and dashes a user types are ignored, and
/// case does not matter.
pub(crate) fn recovery_code_hash(code: &str) -> Vec<u8> {
    let normalized: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_uppercase();
    ids::secret_hash(&normalized)
}

/// A user's confirmed TOTP authenticator, if any.
pub(crate) fn confirmed_totp(authenticators: &[Authenticator]) -> Option<&Authenticator> {
    authenticators
        .iter()
        .find(|a| a.kind == TOTP && a.confirmed)
}

/// An authenticator as Auth0's `authentication-methods` show it.
pub(crate) fn method_json(authenticator: &Authenticator) -> Value {
    let kind = match authenticator.kind.as_str() {
        TOTP => "totp",
        RECOVERY_CODE => "recovery-code",
        other => other,
    };
    let mut method = json!({
        "id": authenticator.id,
        "type": kind,
        "confirmed": authenticator.confirmed,
        "created_at": tessera_core::claims::rfc3339(authenticator.created_at),
        "authentication_methods": [{"id": authenticator.id, "type": kind}],
    });
    if kind == "totp" {
        method["name"] = json!("Authenticator app");
    }
    if let Some(at) = authenticator.last_auth_at {
        method["last_auth_at"] = json!(tessera_core::claims::rfc3339(at));
    }
    method
}

/// A WebAuthn credential as Auth0's `authentication-methods` show it (`type`
/// `webauthn-roaming`, `webauthn-platform` or `passkey`).
pub(crate) fn credential_json(credential: &WebauthnCredential) -> Value {
    let mut method = json!({
        "id": credential.id,
        "type": credential.kind,
        "name": credential.name,
        "confirmed": true,
        "key_id": wa::b64(&credential.credential_id),
        "created_at": tessera_core::claims::rfc3339(credential.created_at),
        "authentication_methods": [{"id": credential.id, "type": credential.kind}],
    });
    if let Some(at) = credential.last_used_at {
        method["last_auth_at"] = json!(tessera_core::claims::rfc3339(at));
    }
    method
}

/// The relying party: its id is the issuer's host, and responses must come from the
/// issuer's origin.
pub(crate) fn relying_party(state: &AppState) -> (String, String) {
    let issuer = url::Url::parse(state.issuer()).ok();
    let host = issuer
        .as_ref()
        .and_then(|url| url.host_str().map(str::to_string))
        .unwrap_or_default();
    let origin = issuer
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default();
    (host, origin)
}

/// The largest base64url field of a WebAuthn response a form may carry (the form parser's
/// own limit): a credential id is at most 1023 bytes, an RSA-4096 signature 512, and an
/// attestation object without a certificate chain well under 3 KiB.
pub(crate) const MAX_WEBAUTHN_FIELD: usize = crate::edge::params::MAX_VALUE_LEN;

/// A field of a WebAuthn response, decoded; `None` when absent, too long or not base64url.
pub(crate) fn webauthn_field(value: Option<&str>) -> Option<Vec<u8>> {
    value
        .filter(|v| !v.is_empty() && v.len() <= MAX_WEBAUTHN_FIELD)
        .and_then(wa::unb64)
}

/// An assertion as the page posts it.
pub(crate) struct PostedAssertion {
    pub(crate) credential_id: Vec<u8>,
    pub(crate) client_data_json: Vec<u8>,
    pub(crate) authenticator_data: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) user_handle: Option<Vec<u8>>,
}

impl PostedAssertion {
    pub(crate) fn read<'p>(field: impl Fn(&str) -> Option<&'p str>) -> Option<PostedAssertion> {
        Some(PostedAssertion {
            credential_id: webauthn_field(field("credential_id"))?,
            client_data_json: webauthn_field(field("client_data_json"))?,
            authenticator_data: webauthn_field(field("authenticator_data"))?,
            signature: webauthn_field(field("signature"))?,
            user_handle: webauthn_field(field("user_handle")),
        })
    }
}

/// Checks an assertion with one of `credentials` (the user's own: another user's
/// credential id matches none), the challenge issued for this step and the counter.
/// Failures count towards the lockout like wrong codes. The credential used, on success.
pub(crate) async fn check_assertion<'c>(
    state: &AppState,
    user_id: &str,
    credentials: &'c [WebauthnCredential],
    posted: Option<&PostedAssertion>,
    (challenge, user_verification): (&[u8], bool),
    now: i64,
) -> StoreResult<(Checked, Option<&'c WebauthnCredential>)> {
    if locked(state, user_id, now).await? {
        return Ok((Checked::Locked, None));
    }
    let (rp_id, origin) = relying_party(state);
    let expected = Expected {
        rp_id: &rp_id,
        origin: &origin,
        challenge,
        user_verification,
    };
    // §7.2: the credential must be one of the user's, and a user handle, when the
    // authenticator returns one, must name the same user.
    let found = posted.and_then(|posted| {
        let handle_ok = posted
            .user_handle
            .as_ref()
            .is_none_or(|handle| handle.as_slice() == user_id.as_bytes());
        credentials
            .iter()
            .find(|c| c.credential_id == posted.credential_id)
            .filter(|_| handle_ok)
            .map(|c| (posted, c))
    });
    let mut accepted = None;
    if let Some((posted, credential)) = found
        && use_credential(state, credential, posted, &expected, now).await?
    {
        accepted = Some(credential);
    }
    let checked = settle(state, user_id, accepted.is_some(), now).await?;
    Ok((checked, accepted))
}

/// The options a page hands `navigator.credentials.create` to register a credential for
/// `user` under this issuer: the user handle is the user id (an assertion names its holder
/// by it), every algorithm Tessera verifies, no attestation asked, and `exclude`d the
/// credentials the authenticator must not register twice.
pub(crate) fn creation_options(
    state: &AppState,
    user: &tessera_core::User,
    (challenge, exclude): (&str, &[WebauthnCredential]),
    selection: Value,
) -> Value {
    let (rp_id, _) = relying_party(state);
    let name = user.email.as_deref().unwrap_or(&user.user_id);
    let display_name = if user.name.is_empty() {
        name
    } else {
        &user.name
    };
    let params: Vec<Value> = wa::ALGORITHMS
        .iter()
        .map(|alg| json!({"type": "public-key", "alg": alg}))
        .collect();
    json!({
        "challenge": challenge,
        "rp": {"id": rp_id, "name": format!("Tessera {rp_id}")},
        "user": {"id": wa::b64(user.user_id.as_bytes()), "name": name, "displayName": display_name},
        "pubKeyCredParams": params,
        "excludeCredentials": descriptors(exclude),
        "authenticatorSelection": selection,
        "attestation": "none",
        "timeout": 120000,
    })
}

/// Checks `posted` against the user's `credential` and what was `expected` (signature,
/// challenge, origin, relying party, flags), then records its use if its counter rises
/// (§7.2 step 22). `false`: refused, the reason logged.
pub(crate) async fn use_credential(
    state: &AppState,
    credential: &WebauthnCredential,
    posted: &PostedAssertion,
    expected: &Expected<'_>,
    now: i64,
) -> StoreResult<bool> {
    let user_id = credential.user_id.as_str();
    let verified = wa::verify_assertion(
        &posted.client_data_json,
        &posted.authenticator_data,
        &posted.signature,
        &credential.public_key,
        expected,
    );
    let assertion = match verified {
        Ok(assertion) => assertion,
        Err(error) => {
            tracing::info!(user_id, %error, "WebAuthn assertion refused");
            return Ok(false);
        }
    };
    let stored = u32::try_from(credential.sign_count).unwrap_or(u32::MAX);
    // The store repeats this check atomically; here it is named in the log.
    if !wa::counter_advances(stored, assertion.sign_count) {
        tracing::warn!(user_id, method_id = %credential.id, "WebAuthn counter did not rise: possibly a cloned authenticator");
        return Ok(false);
    }
    state
        .store()
        .use_webauthn_credential(user_id, &credential.id, assertion.sign_count.into(), now)
        .await
}

/// Registers the credential a `navigator.credentials.create` answer (`field`) describes,
/// as `kind` under `name`. `None`: refused (a bad answer, the challenge not this one's,
/// registered already, or too many); the caller decides what a refusal costs.
pub(crate) async fn register_credential<'p>(
    state: &AppState,
    user_id: &str,
    field: impl Fn(&str) -> Option<&'p str>,
    (challenge, user_verification): (&[u8], bool),
    (kind, name): (&str, &str),
    now: i64,
) -> StoreResult<Option<WebauthnCredential>> {
    let (rp_id, origin) = relying_party(state);
    let expected = Expected {
        rp_id: &rp_id,
        origin: &origin,
        challenge,
        user_verification,
    };
    let posted =
        webauthn_field(field("client_data_json")).zip(webauthn_field(field("attestation_object")));
    let verified = match posted {
        Some((client, object)) => wa::verify_registration(&client, &object, &expected)
            .map_err(|error| tracing::info!(user_id, %error, "WebAuthn registration refused"))
            .ok(),
        None => None,
    };
    let Some(registration) = verified else {
        return Ok(None);
    };
    // Transports are hints for later `allowCredentials`: only the names WebAuthn defines.
    let transports: Vec<&str> = field("transports")
        .unwrap_or("")
        .split(',')
        .filter(|t| ["usb", "nfc", "ble", "internal", "hybrid", "smart-card"].contains(t))
        .take(6)
        .collect();
    let credential = WebauthnCredential {
        id: authenticator_id(kind),
        user_id: user_id.to_string(),
        credential_id: registration.credential_id,
        public_key: registration.public_key,
        sign_count: registration.sign_count.into(),
        transports: json!(transports).to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        created_at: now,
        last_used_at: Some(now),
    };
    match state.store().add_webauthn_credential(&credential).await {
        Ok(()) => Ok(Some(credential)),
        // Registered already (here or to someone else), or too many: refused.
        Err(StoreError::Conflict(_)) => {
            tracing::info!(
                user_id,
                "WebAuthn credential refused: registered already or too many"
            );
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

/// The `allowCredentials`/`excludeCredentials` entries of credentials.
pub(crate) fn descriptors(credentials: &[WebauthnCredential]) -> Vec<Value> {
    credentials
        .iter()
        .map(|c| {
            let transports: Value = serde_json::from_str(&c.transports).unwrap_or(json!([]));
            json!({"type": "public-key", "id": wa::b64(&c.credential_id), "transports": transports})
        })
        .collect()
}

/// What checking a code found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Checked {
    Accepted,
    /// Wrong, replayed or of no authenticator: counted towards the lockout.
    Refused,
    /// Too many wrong codes lately: not even checked.
    Locked,
}

/// Whether the user must wait before another code is checked.
pub(crate) async fn locked(state: &AppState, user_id: &str, now: i64) -> StoreResult<bool> {
    let (failures, last) = state.store().mfa_failures(user_id).await?;
    Ok(failures >= MAX_FAILURES && now - last < LOCKOUT_SECONDS)
}

/// Checks a TOTP code against the user's confirmed authenticator: each code once, wrong
/// codes counted.
pub(crate) async fn check_totp(
    state: &AppState,
    authenticator: &Authenticator,
    code: &str,
    now: i64,
) -> StoreResult<Checked> {
    let user_id = &authenticator.user_id;
    if locked(state, user_id, now).await? {
        return Ok(Checked::Locked);
    }
    let step = open_seed(&state.config().master_key, authenticator)
        .and_then(|seed| totp::matching_step(&seed, code, now));
    let accepted = match step {
        Some(step) => {
            state
                .store()
                .accept_totp_step(user_id, &authenticator.id, step, now)
                .await?
        }
        None => false,
    };
    settle(state, user_id, accepted, now).await
}

/// Confirms `pending`, an unconfirmed TOTP authenticator, with its first code; the user's
/// recovery code becomes the one whose hash is `recovery_hash` (the caller shows the code
/// once). `None`: confirmed or replaced meanwhile by a racing request.
pub(crate) async fn confirm_enrollment(
    state: &AppState,
    pending: &Authenticator,
    code: &str,
    recovery_hash: &[u8],
    now: i64,
) -> StoreResult<Option<Checked>> {
    let user_id = &pending.user_id;
    if locked(state, user_id, now).await? {
        return Ok(Some(Checked::Locked));
    }
    let matched = open_seed(&state.config().master_key, pending)
        .and_then(|seed| totp::matching_step(&seed, code, now));
    let Some(step) = matched else {
        state.store().record_mfa_failure(user_id, now).await?;
        return Ok(Some(Checked::Refused));
    };
    let recovery_id = authenticator_id(RECOVERY_CODE);
    if !state
        .store()
        .confirm_totp(
            user_id,
            &pending.id,
            step,
            (&recovery_id, recovery_hash),
            now,
        )
        .await?
    {
        return Ok(None);
    }
    state.store().clear_mfa_failures(user_id).await?;
    tracing::info!(user_id = %user_id, "authenticator app enrolled");
    Ok(Some(Checked::Accepted))
}

/// The user's TOTP enrollment in progress, if any.
pub(crate) fn pending_totp(authenticators: &[Authenticator]) -> Option<&Authenticator> {
    authenticators
        .iter()
        .find(|a| a.kind == TOTP && !a.confirmed)
}

/// Uses a recovery code; on success the next one is returned to be shown once.
pub(crate) async fn use_recovery_code(
    state: &AppState,
    user_id: &str,
    code: &str,
    now: i64,
) -> StoreResult<(Checked, Option<String>)> {
    if locked(state, user_id, now).await? {
        return Ok((Checked::Locked, None));
    }
    let next = new_recovery_code();
    let next_id = authenticator_id(RECOVERY_CODE);
    let used = state
        .store()
        .use_recovery_code(
            user_id,
            &recovery_code_hash(code),
            (&next_id, &recovery_code_hash(&next)),
            now,
        )
        .await?;
    let checked = settle(state, user_id, used, now).await?;
    Ok((checked, used.then_some(next)))
}

async fn settle(state: &AppState, user_id: &str, accepted: bool, now: i64) -> StoreResult<Checked> {
    if accepted {
        state.store().clear_mfa_failures(user_id).await?;
        Ok(Checked::Accepted)
    } else {
        state.store().record_mfa_failure(user_id, now).await?;
        Ok(Checked::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_reads_auth0s_names_and_nothing_else() {
        let settings = |value: Value| match value {
            Value::Object(map) => Guardian::of(&map),
            _ => unreachable!(),
        };
        let none = settings(json!({}));
        assert_eq!(
            none,
            Guardian {
                user_verification: "preferred".into(),
                ..Guardian::default()
            }
        );
        let all = settings(json!({"policies": ["all-applications"], "otp": true}));
        assert!(all.enabled(OTP) && !all.enabled(RECOVERY) && !all.enabled("sms"));
        let request = |client_id: &str, acr: &[&str]| AuthRequest {
            client_id: client_id.into(),
            acr_values: acr.iter().map(|a| a.to_string()).collect(),
            ..crate::hosted::transaction::tests::request()
        };
        assert!(all.required_for(&request("app", &[])));
        assert!(!none.required_for(&request("app", &[])));
        assert!(none.required_for(&request("app", &[MFA_ACR])));
        assert!(!none.required_for(&request("app", &["urn:other"])));
        let policy_without_factor = settings(json!({"policies": ["all-applications"]}));
        assert!(!policy_without_factor.required_for(&request("app", &[])));
        let administrators = settings(json!({"administrators": true, "otp": true}));
        assert!(administrators.required_for(&request(DASHBOARD_CLIENT_ID, &[])));
        assert!(!administrators.required_for(&request("app", &[])));
        let administrators_without_factor = settings(json!({"administrators": true}));
        assert!(!administrators_without_factor.required_for(&request(DASHBOARD_CLIENT_ID, &[])));
    }

    #[test]
    fn recovery_codes_are_typed_loosely_and_kept_as_hashes() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 24);
        assert!(
            code.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        let typed = format!("{}-{} {}", &code[..8], &code[8..16], &code[16..]).to_lowercase();
        assert_eq!(recovery_code_hash(&typed), recovery_code_hash(&code));
        assert_ne!(
            recovery_code_hash(&new_recovery_code()),
            recovery_code_hash(&code)
        );
    }

    #[test]
    fn acr_is_stated_only_when_asked_and_met() {
        let asked = AuthRequest {
            acr_values: vec![MFA_ACR.into()],
            ..crate::hosted::transaction::tests::request()
        };
        let mfa = vec!["pwd".to_string(), "mfa".into(), "otp".into()];
        assert_eq!(acr_of(&asked, &mfa).as_deref(), Some(MFA_ACR));
        assert_eq!(acr_of(&asked, &["pwd".to_string()]), None);
        let plain = crate::hosted::transaction::tests::request();
        assert_eq!(acr_of(&plain, &mfa), None);
    }
}
