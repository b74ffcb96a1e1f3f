//! Multi-factor authentication: the tenant's policy (Auth0's guardian policies and factors),
//! whether a login needs a second factor, and the second factors themselves — a TOTP
//! authenticator (seed sealed with the master key) and a recovery code (kept as a hash).
//! The hosted pages (`crate::hosted::mfa`) and the Management API
//! (`crate::management::guardian`) decide nothing of this on their own.

use serde_json::{Value, json};
use tessera_core::request::AuthRequest;
use tessera_core::system::DASHBOARD_CLIENT_ID;
use tessera_core::{Metadata, ids, totp};
use tessera_jose::MasterKey;
use tessera_store::{Authenticator, RECOVERY_CODE, StoreResult, TOTP};

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
/// Auth0's factor names that Tessera does not offer (yet): listed, never enabled.
pub(crate) const UNOFFERED: &[&str] = &[
    "sms",
    "push-notification",
    "email",
    "duo",
    "webauthn-roaming",
    "webauthn-platform",
];
/// Consecutive wrong codes before a user must wait, and how long.
pub(crate) const MAX_FAILURES: i64 = 5;
pub(crate) const LOCKOUT_SECONDS: i64 = 300;

/// The tenant's multi-factor settings, as stored (`Store::guardian_settings`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Guardian {
    /// Auth0's policies: `["all-applications"]` or `[]`.
    pub(crate) policies: Vec<String>,
    pub(crate) otp: bool,
    pub(crate) recovery_code: bool,
    /// Administrators pass a second factor to sign in to the dashboard ([`ADMINISTRATORS`]).
    pub(crate) administrators: bool,
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
        }
    }

    /// Whether a factor of Auth0's name is enabled.
    pub(crate) fn enabled(&self, factor: &str) -> bool {
        match factor {
            OTP => self.otp,
            RECOVERY => self.recovery_code,
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
        self.otp && (every_login || dashboard)
    }

    /// Whether a user without an authenticator app may enroll one in this login.
    pub(crate) fn totp_offered(&self) -> bool {
        self.otp
    }
}

/// The tenant's settings, read each time (one small row; an administrator's change holds at
/// the next login on every node).
pub(crate) async fn guardian(state: &AppState) -> StoreResult<Guardian> {
    Ok(Guardian::of(&state.store().guardian_settings().await?))
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
        assert_eq!(none, Guardian::default());
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
