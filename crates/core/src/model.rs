//! The domain objects, as Tessera thinks of them. Their Auth0 wire shapes live in the
//! server and CLI crates; these are what the rest of the code works with.

use serde::{Deserialize, Serialize};

/// Every row belongs to a tenant; this is the one served until host-based tenants exist.
pub const DEFAULT_TENANT: &str = "default";

/// Auth0's default database connection, the one users sign up to.
pub const DATABASE_CONNECTION: &str = "Username-Password-Authentication";
/// Its id in the Management API (`con_` and 16 characters, as Auth0's). Fixed: there is one
/// database connection per tenant, and tools keep its id in their files.
pub const DATABASE_CONNECTION_ID: &str = "con_TesseraDatabase1";

/// Default lifetime of access tokens for an API (Auth0: 24 h).
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: i64 = 86_400;
/// Default lifetime of ID tokens (Auth0: 10 h).
pub const DEFAULT_ID_TOKEN_LIFETIME: i64 = 36_000;
/// Lifetime of an authorization code. RFC 6749 recommends at most ten minutes; we use one.
pub const AUTHORIZATION_CODE_LIFETIME: i64 = 60;
/// Lifetime of a login session when the tenant sets none (Auth0's default inactivity
/// timeout is 3 days).
pub const SESSION_LIFETIME: i64 = 3 * 86_400;

/// How long a login session lasts, from the tenant's settings (Auth0's `session_lifetime`
/// and `idle_session_lifetime`, in hours): at most `absolute` seconds after the sign-in,
/// and `idle` seconds after its last use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetimes {
    pub absolute: i64,
    pub idle: i64,
}

impl SessionLifetimes {
    /// Unset members keep [`SESSION_LIFETIME`]; an idle lifetime longer than the absolute
    /// one changes nothing.
    pub fn from_settings(settings: &serde_json::Map<String, serde_json::Value>) -> Self {
        let seconds = |key: &str| {
            settings
                .get(key)
                .and_then(serde_json::Value::as_f64)
                .filter(|hours| *hours > 0.0)
                .map(|hours| (hours * 3600.0).round() as i64)
        };
        let absolute = seconds("session_lifetime").unwrap_or(SESSION_LIFETIME);
        let idle = seconds("idle_session_lifetime")
            .unwrap_or(absolute)
            .min(absolute);
        SessionLifetimes { absolute, idle }
    }

    /// When a session begun at `signed_in` and used at `now` ends.
    pub fn expiry(&self, signed_in: i64, now: i64) -> i64 {
        (signed_in + self.absolute).min(now + self.idle)
    }
}
/// Lifetime of a pending authorization request while the user is on the login page.
pub const LOGIN_TRANSACTION_LIFETIME: i64 = 30 * 60;
/// Opaque access tokens (no audience) are good at /userinfo for this long.
pub const OPAQUE_ACCESS_TOKEN_LIFETIME: i64 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub value: String,
    #[serde(default)]
    pub description: String,
}

/// How access tokens for an API look (Auth0's `token_dialect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDialect {
    AccessToken,
    AccessTokenAuthz,
    Rfc9068Profile,
    Rfc9068ProfileAuthz,
}

impl TokenDialect {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenDialect::AccessToken => "access_token",
            TokenDialect::AccessTokenAuthz => "access_token_authz",
            TokenDialect::Rfc9068Profile => "rfc9068_profile",
            TokenDialect::Rfc9068ProfileAuthz => "rfc9068_profile_authz",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            TokenDialect::AccessToken,
            TokenDialect::AccessTokenAuthz,
            TokenDialect::Rfc9068Profile,
            TokenDialect::Rfc9068ProfileAuthz,
        ]
        .into_iter()
        .find(|d| d.as_str() == text)
    }

    pub fn is_rfc9068(self) -> bool {
        matches!(
            self,
            TokenDialect::Rfc9068Profile | TokenDialect::Rfc9068ProfileAuthz
        )
    }

    pub fn adds_permissions(self) -> bool {
        matches!(
            self,
            TokenDialect::AccessTokenAuthz | TokenDialect::Rfc9068ProfileAuthz
        )
    }
}

/// An API (resource server). Its identifier is the `aud` of its access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServer {
    pub id: String,
    pub name: String,
    pub identifier: String,
    pub signing_alg: String,
    pub token_lifetime: i64,
    /// The lifetime of access tokens handed over in the browser (implicit and hybrid
    /// responses of `/authorize`), at most `token_lifetime`.
    pub token_lifetime_for_web: i64,
    pub allow_offline_access: bool,
    pub token_dialect: TokenDialect,
    pub enforce_policies: bool,
    pub scopes: Vec<Scope>,
    /// Auth0's `proof_of_possession`: whether tokens for this API must be sender-constrained.
    pub proof_of_possession: Option<ProofOfPossession>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An API's proof-of-possession setting, Auth0's `{"mechanism": "dpop", "required": …}`.
/// DPoP (RFC 9449) is the one mechanism Tessera has (Auth0's other, `mtls`, needs client
/// certificates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofOfPossession {
    pub mechanism: PopMechanism,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PopMechanism {
    Dpop,
}

impl ResourceServer {
    /// Whether the token endpoint must refuse a request for this API without a DPoP proof.
    pub fn requires_dpop(&self) -> bool {
        self.proof_of_possession
            .is_some_and(|pop| pop.mechanism == PopMechanism::Dpop && pop.required)
    }

    /// How long an access token for this API lives: `token_lifetime_for_web` when it is
    /// handed over in the browser, `token_lifetime` at the token endpoint (as Auth0).
    pub fn access_token_lifetime(&self, in_browser: bool) -> i64 {
        if in_browser {
            self.token_lifetime_for_web
        } else {
            self.token_lifetime
        }
    }

    pub fn defines_scope(&self, value: &str) -> bool {
        self.scopes.iter().any(|s| s.value == value)
    }
}

/// Application types, named as Auth0 names them on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppType {
    Spa,
    RegularWeb,
    Native,
    NonInteractive,
}

impl AppType {
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Spa => "spa",
            AppType::RegularWeb => "regular_web",
            AppType::Native => "native",
            AppType::NonInteractive => "non_interactive",
        }
    }

    /// Accepts both Auth0's names and the CLI's short ones (`regular`, `m2m`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "spa" => Some(AppType::Spa),
            "regular" | "regular_web" => Some(AppType::RegularWeb),
            "native" => Some(AppType::Native),
            "m2m" | "non_interactive" => Some(AppType::NonInteractive),
            _ => None,
        }
    }

    /// Public clients cannot keep a secret; they authenticate the code flow with PKCE.
    pub fn is_public(self) -> bool {
        matches!(self, AppType::Spa | AppType::Native)
    }

    /// Grant types a new application of this type is allowed (Auth0's defaults).
    pub fn default_grant_types(self) -> Vec<String> {
        let names: &[&str] = match self {
            AppType::Spa | AppType::Native => &["authorization_code", "implicit", "refresh_token"],
            AppType::RegularWeb => &[
                "authorization_code",
                "implicit",
                "refresh_token",
                "client_credentials",
            ],
            AppType::NonInteractive => &["client_credentials"],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    pub fn default_auth_method(self) -> &'static str {
        if self.is_public() {
            "none"
        } else {
            "client_secret_post"
        }
    }
}

/// RFC 6749's resource owner password grant.
pub const PASSWORD_GRANT: &str = "password";
/// Auth0's password grant with a `realm` (the database connection).
pub const PASSWORD_REALM_GRANT: &str = "http://auth0.com/oauth/grant-type/password-realm";
/// RFC 8628's device authorization grant (Auth0: native applications only).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Auth0's MFA API grants: the second factor of a password grant that answered
/// `mfa_required`, proved with an app's one-time password or a recovery code.
pub const MFA_OTP_GRANT: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
pub const MFA_RECOVERY_CODE_GRANT: &str = "http://auth0.com/oauth/grant-type/mfa-recovery-code";

pub const GRANT_TYPES: [&str; 9] = [
    "authorization_code",
    "implicit",
    "refresh_token",
    "client_credentials",
    PASSWORD_GRANT,
    PASSWORD_REALM_GRANT,
    DEVICE_CODE_GRANT,
    MFA_OTP_GRANT,
    MFA_RECOVERY_CODE_GRANT,
];

/// Refresh-token lifetimes of an application (Auth0's `refresh_token` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Absolute lifetime of a refresh-token family, from the original grant.
    pub token_lifetime: i64,
    /// A token unused for this long expires.
    pub idle_token_lifetime: i64,
    /// A rotated token may be presented again within this many seconds (lost responses).
    pub reuse_interval: i64,
}

impl Default for RefreshPolicy {
    /// Auth0's defaults: 30 days absolute, 15 days idle, no reuse interval.
    fn default() -> Self {
        RefreshPolicy {
            token_lifetime: 2_592_000,
            idle_token_lifetime: 1_296_000,
            reuse_interval: 0,
        }
    }
}

/// An application (OAuth client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub app_type: AppType,
    /// SHA-256 of the client secret; `None` for public clients.
    pub secret_hash: Option<Vec<u8>>,
    pub token_endpoint_auth_method: String,
    pub callbacks: Vec<String>,
    pub web_origins: Vec<String>,
    pub allowed_logout_urls: Vec<String>,
    pub grant_types: Vec<String>,
    /// First-party applications skip the consent page; third-party ones ask the user.
    pub is_first_party: bool,
    /// The APIs (identifiers) users may authorize this application for; `None`: every API.
    pub allowed_apis: Option<Vec<String>>,
    pub refresh: RefreshPolicy,
    /// What the application says about itself, kept for the Management API.
    pub profile: ClientProfile,
    /// `/authorize` takes this application's requests only pushed to `/oauth/par` first
    /// (RFC 9126 §6; Auth0's `require_pushed_authorization_requests`).
    pub require_pushed_authorization_requests: bool,
    /// The ids of the credentials that authenticate the application with private_key_jwt
    /// (Auth0's `client_authentication_methods`); `None`: it authenticates by
    /// `token_endpoint_auth_method`.
    pub private_key_jwt_credentials: Option<Vec<String>>,
    /// OIDC Back-Channel Logout (Auth0's `oidc_logout`); `None`: the application is not
    /// told when a session it was used in ends.
    pub oidc_logout: Option<OidcLogout>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where and for which session ends an application gets a logout token (OIDC
/// Back-Channel Logout 1.0), in Auth0's shape. Checked by `validate::oidc_logout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcLogout {
    /// Auth0 allows one.
    pub backchannel_logout_urls: Vec<String>,
    #[serde(default)]
    pub backchannel_logout_initiators: LogoutInitiators,
    /// Auth0's `backchannel_logout_session_metadata`: whether the logout token carries the
    /// ended session's metadata; `None`: not said (it does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_metadata: Option<LogoutSessionMetadata>,
}

/// `{include}`: whether logout tokens carry the session's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutSessionMetadata {
    pub include: bool,
}

/// The session ends that notify an application (Auth0's `backchannel_logout_initiators`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutInitiators {
    pub mode: InitiatorMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selected_initiators: Vec<String>,
}

/// `all`: every session end, present and future; `custom`: `rp-logout` and those selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitiatorMode {
    Custom,
    All,
}

impl Default for LogoutInitiators {
    /// Auth0's default: the logouts an application or the identity provider start.
    fn default() -> Self {
        LogoutInitiators {
            mode: InitiatorMode::Custom,
            selected_initiators: vec![RP_LOGOUT.to_string(), LOGOUT_INITIATORS[1].to_string()],
        }
    }
}

/// Auth0's initiator names. Tessera starts those with a constant below; the others
/// (`idp-logout`, …) are accepted so tenant files carry them.
pub const LOGOUT_INITIATORS: [&str; 9] = [
    RP_LOGOUT,
    IDP_LOGOUT,
    PASSWORD_CHANGED,
    SESSION_EXPIRED,
    SESSION_REVOKED,
    ACCOUNT_DELETED,
    "email-identifier-changed",
    "mfa-phone-unenrolled",
    ACCOUNT_DEACTIVATED,
];
/// A browser logged out at `/v2/logout` or `/oidc/logout`.
pub const RP_LOGOUT: &str = "rp-logout";
/// The upstream provider the user signed in through ended its session (its own
/// back-channel logout token).
pub const IDP_LOGOUT: &str = "idp-logout";
/// The session ran out (noticed when the purge takes it).
pub const SESSION_EXPIRED: &str = "session-expired";
/// An administrator ended the session (Management API, dashboard, CLI).
pub const SESSION_REVOKED: &str = "session-revoked";
/// The user was deleted.
pub const ACCOUNT_DELETED: &str = "account-deleted";
/// The user's password was set.
pub const PASSWORD_CHANGED: &str = "password-changed";
/// The user was blocked.
pub const ACCOUNT_DEACTIVATED: &str = "account-deactivated";

impl OidcLogout {
    /// Whether its logout tokens carry the ended session's metadata.
    pub fn includes_session_metadata(&self) -> bool {
        self.backchannel_logout_session_metadata
            .is_some_and(|metadata| metadata.include)
    }

    /// The URL logout tokens go to.
    pub fn url(&self) -> Option<&str> {
        self.backchannel_logout_urls.first().map(String::as_str)
    }

    /// Whether a session ended by `initiator` notifies the application: `rp-logout`
    /// always does (Auth0 keeps it when every other initiator is unselected).
    pub fn notifies(&self, initiator: &str) -> bool {
        let initiators = &self.backchannel_logout_initiators;
        initiator == RP_LOGOUT
            || initiators.mode == InitiatorMode::All
            || initiators
                .selected_initiators
                .iter()
                .any(|i| i == initiator)
    }
}

/// Members of an Auth0 application that Tessera stores and shows but does not act on:
/// tenant files (auth0-deploy-cli, Terraform) carry them, and a read-modify-write must
/// keep them. Checked by `validate::client_profile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Up to 10 string members (Auth0's limits).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub client_metadata: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiate_login_uri: Option<String>,
    /// Origins Auth0 allows cross-origin authentication from; Tessera has none (no
    /// embedded login), so they only travel with the application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

impl Client {
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    /// Whether user tokens for the API `audience` may be issued to this application.
    pub fn may_access_api(&self, audience: &str) -> bool {
        self.allowed_apis
            .as_ref()
            .is_none_or(|apis| apis.iter().any(|a| a == audience))
    }

    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == "none"
    }
}

/// Machine-to-machine access of one client to one API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGrant {
    pub id: String,
    pub client_id: String,
    pub audience: String,
    pub scope: Vec<String>,
    pub created_at: i64,
}

/// A named set of permissions (an API's scopes), given to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Auth0-style id, e.g. `rol_…`.
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One permission: a scope of one API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// The API identifier (audience).
    pub audience: String,
    pub permission: String,
}

/// A user of the default database connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Auth0-style id, e.g. `auth0|5f1c…`.
    pub user_id: String,
    pub connection: String,
    /// `None`: an upstream connection's user whose provider shared no email address
    /// (users of a database connection always have one).
    pub email: Option<String>,
    /// `false` when there is no email.
    pub email_verified: bool,
    pub name: String,
    pub nickname: String,
    pub picture: String,
    pub blocked: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login: Option<i64>,
    pub logins_count: i64,
    /// What the user may edit about themselves (preferences), as on Auth0.
    pub user_metadata: Metadata,
    /// What only administrators and back ends set (plan, flags), as on Auth0.
    pub app_metadata: Metadata,
}

/// `user_metadata` / `app_metadata`: a JSON object.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// Auth0's update rule for metadata: the patch is merged into the stored object at its
/// first level — a member set to `null` is removed, any other value replaces the stored
/// member whole (nested objects are not merged) — and an empty patch clears it all.
pub fn merge_metadata(stored: &mut Metadata, patch: &Metadata) {
    if patch.is_empty() {
        stored.clear();
    }
    for (name, value) in patch {
        if value.is_null() {
            stored.remove(name);
        } else {
            stored.insert(name.clone(), value.clone());
        }
    }
}

impl User {
    /// What names the user to a person (the dashboard, the CLI): the email, or the user
    /// id when there is none.
    pub fn email_or_id(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.user_id)
    }

    /// The nickname Auth0 derives from an email: its local part.
    pub fn nickname_from_email(email: &str) -> String {
        email.split('@').next().unwrap_or(email).to_string()
    }
}

/// Normalizes an email for lookups: trimmed, lower-case.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Why a password is refused at sign-up. Shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    #[error("Your password must be at least 8 characters long.")]
    TooShort,
    #[error("Your password must be at most 128 characters long.")]
    TooLong,
    #[error("This password is too common. Please choose another one.")]
    TooCommon,
}

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// OWASP / NIST 800-63B: length 8..=128, no composition rules, refuse common passwords.
pub fn check_password_policy(password: &str) -> Result<(), PasswordPolicyError> {
    let length = password.chars().count();
    if length < 8 {
        return Err(PasswordPolicyError::TooShort);
    }
    if length > 128 {
        return Err(PasswordPolicyError::TooLong);
    }
    let lowered = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|common| common == lowered) {
        return Err(PasswordPolicyError::TooCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_merges_at_the_first_level_and_null_removes() {
        let mut stored =
            serde_json::json!({"theme": "dark", "lang": "en", "nested": {"a": 1, "b": 2}})
                .as_object()
                .unwrap()
                .clone();
        let patch = serde_json::json!({"lang": null, "nested": {"a": 3}, "new": [1]})
            .as_object()
            .unwrap()
            .clone();
        super::merge_metadata(&mut stored, &patch);
        assert_eq!(
            serde_json::Value::Object(stored.clone()),
            serde_json::json!({"theme": "dark", "nested": {"a": 3}, "new": [1]})
        );
        super::merge_metadata(&mut stored, &super::Metadata::new());
        assert!(stored.is_empty());
    }

    use super::*;

    #[test]
    fn session_lifetimes_come_from_the_settings_in_hours() {
        let settings = |value: serde_json::Value| value.as_object().unwrap().clone();
        let default = SessionLifetimes::from_settings(&settings(serde_json::json!({})));
        assert_eq!(
            default,
            SessionLifetimes {
                absolute: SESSION_LIFETIME,
                idle: SESSION_LIFETIME
            }
        );
        let set = SessionLifetimes::from_settings(&settings(
            serde_json::json!({"session_lifetime": 168, "idle_session_lifetime": 0.5}),
        ));
        assert_eq!((set.absolute, set.idle), (168 * 3600, 1800));
        // Used within the idle time, a session lives on, never past the absolute end.
        assert_eq!(set.expiry(0, 1000), 2800);
        assert_eq!(set.expiry(0, 168 * 3600 - 10), 168 * 3600);
        let longer_idle = SessionLifetimes::from_settings(&settings(
            serde_json::json!({"session_lifetime": 1, "idle_session_lifetime": 72}),
        ));
        assert_eq!(longer_idle.idle, 3600);
    }

    #[test]
    fn password_policy() {
        assert_eq!(
            check_password_policy("short"),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(
            check_password_policy("password"),
            Err(PasswordPolicyError::TooCommon)
        );
        assert_eq!(
            check_password_policy("Password1"),
            Err(PasswordPolicyError::TooCommon)
        );
        assert_eq!(
            check_password_policy(&"x".repeat(129)),
            Err(PasswordPolicyError::TooLong)
        );
        assert_eq!(
            check_password_policy("correct horse battery staple"),
            Ok(())
        );
        assert_eq!(check_password_policy(&"ü".repeat(64)), Ok(()));
    }

    #[test]
    fn emails_are_normalized_for_lookups() {
        assert_eq!(normalize_email(" Demo@Example.COM "), "demo@example.com");
    }

    #[test]
    fn app_types_round_trip() {
        for t in [
            AppType::Spa,
            AppType::RegularWeb,
            AppType::Native,
            AppType::NonInteractive,
        ] {
            assert_eq!(AppType::parse(t.as_str()), Some(t));
        }
        assert_eq!(AppType::parse("m2m"), Some(AppType::NonInteractive));
        assert!(AppType::parse("desktop").is_none());
    }
}
