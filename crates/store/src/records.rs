//! Rows that have no domain type of their own in `tessera-core`.

use std::collections::BTreeMap;

use tessera_core::{
    Client, ClientGrant, ClientProfile, Metadata, RefreshPolicy, ResourceServer, Scope,
    TokenDialect,
};

/// Where a key is in its life: published before use (next), signing (current),
/// still published for tokens in flight (previous), then gone from the JWKS (retired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Current,
    Previous,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Previous => "previous",
            KeyState::Retired => "retired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "next" => Some(KeyState::Next),
            "current" => Some(KeyState::Current),
            "previous" => Some(KeyState::Previous),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    /// PKCS#8 sealed with the master key; the store never sees it in clear.
    pub sealed_private_key: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub sid: String,
    pub user_id: String,
    /// The connection the user signed in with (a linked identity's, not always the user's
    /// own); `None` for sessions started before Tessera recorded it.
    pub connection: Option<String>,
    /// How the user authenticated (the ID token's `amr`, e.g. `["pwd", "mfa", "otp"]`);
    /// empty for sessions started before Tessera recorded it.
    pub amr: Vec<String>,
    pub auth_time: i64,
    pub expires_at: i64,
    /// When it was last used, to the minute (a use is recorded at most once a minute);
    /// `None` for sessions from before uses were kept. Ignored when a session is created:
    /// its creation is its first use.
    pub last_interacted_at: Option<i64>,
    /// The upstream provider's own session id (its ID token's `sid`) when the user signed
    /// in through one: the provider's back-channel logout names it.
    pub upstream_sid: Option<String>,
    /// The latest end a post-login action allowed (`api.session.setExpiresAt`): a use
    /// never extends the session past it. Ignored when a session is created.
    pub ends_by: Option<i64>,
}

/// Whom an upstream provider's logout token names (OIDC Back-Channel Logout §2.4: a
/// session id, a subject, or both).
#[derive(Debug, Clone, Copy)]
pub enum UpstreamLogout<'a> {
    /// The provider's session `sid`; `identity`, when the token names a subject too, is
    /// `strategy|connection|sub`.
    Session {
        sid: &'a str,
        identity: Option<&'a str>,
    },
    /// Only a subject: every session its user signed in through the connection.
    User { identity: &'a str },
}

/// Where a request came from, as a session records it (the address as the trusted proxies
/// resolve it; the user agent cut short).
#[derive(Debug, Clone, Default)]
pub struct SessionOrigin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A login session as an administrator sees it (the Management API's `/sessions`).
#[derive(Debug, Clone)]
pub struct SessionDetails {
    pub session: SessionRecord,
    pub created_at: i64,
    /// Where it started.
    pub initial: SessionOrigin,
    /// Where it was last used (when: `session.last_interacted_at`).
    pub last: SessionOrigin,
    /// What actions and administrators wrote on it (`api.session.setMetadata`, `PATCH
    /// /api/v2/sessions/{id}`); empty when nothing was.
    pub metadata: BTreeMap<String, String>,
}

/// A session of the administration dashboard (its id is kept hashed, as the key).
#[derive(Debug, Clone)]
pub struct AdminSessionRecord {
    pub user_id: String,
    /// The token every form of the session carries.
    pub csrf_token: String,
    /// When the administrator last entered their password.
    pub auth_time: i64,
    pub created_at: i64,
    pub absolute_expires_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct TransactionRecord {
    pub id: String,
    pub csrf_hash: Vec<u8>,
    /// The validated authorization request, serialized by the server.
    pub request: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewCode {
    /// The session the code was issued in, when the application is to be told of its end
    /// (it has a back-channel logout URL): recorded with the code.
    pub session_client: Option<SessionClient>,
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    /// What the code grants, serialized by the server.
    pub grant: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A login session an application was used with (OIDC Back-Channel Logout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClient {
    pub sid: String,
    /// Kept until then: the session's absolute end.
    pub expires_at: i64,
}

/// A logout token to post: an application's session ended (`logout_notices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutNotice {
    pub id: i64,
    pub client_id: String,
    pub user_id: String,
    pub sid: String,
    /// Why the session ended, in Auth0's initiator names (`rp-logout`, …).
    pub initiator: String,
    pub created_at: i64,
    /// Failed posts so far.
    pub attempts: i64,
    /// The ended session's metadata, as it was when the session ended.
    pub session_metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub grant: String,
    pub expires_at: i64,
}

/// The outcome of trying to redeem a code.
#[derive(Debug, Clone)]
pub enum CodeRedemption {
    /// This caller won the code.
    Redeemed(CodeRecord),
    /// The code exists but was redeemed before (a replay).
    AlreadyUsed(CodeRecord),
    NotFound,
}

#[derive(Debug, Clone)]
pub struct OpaqueTokenRecord {
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub expires_at: i64,
}

/// Input for a new user of the database connection.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    pub user_metadata: Metadata,
    pub app_metadata: Metadata,
}

/// Profile fields of a user that may change. `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct UserProfileChange {
    /// Normalized by the store; must stay unique in the connection.
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    /// Merged into the stored object (`tessera_core::merge_metadata`).
    pub user_metadata: Option<Metadata>,
    pub app_metadata: Option<Metadata>,
}

/// Fields of an API that may change. `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct ResourceServerUpdate {
    pub name: Option<String>,
    pub scopes: Option<Vec<Scope>>,
    pub signing_alg: Option<String>,
    pub token_lifetime: Option<i64>,
    pub token_lifetime_for_web: Option<i64>,
    pub allow_offline_access: Option<bool>,
    pub token_dialect: Option<TokenDialect>,
    pub enforce_policies: Option<bool>,
    /// `Some(None)` removes the setting.
    pub proof_of_possession: Option<Option<tessera_core::ProofOfPossession>>,
}

/// Fields of an application that may change. `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    pub name: Option<String>,
    pub callbacks: Option<Vec<String>>,
    pub web_origins: Option<Vec<String>>,
    pub allowed_logout_urls: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub secret_hash: Option<Vec<u8>>,
    pub is_first_party: Option<bool>,
    /// `Some(None)`: every API again; `Some(Some(list))`: only these API identifiers.
    pub allowed_apis: Option<Option<Vec<String>>>,
    pub refresh: Option<RefreshPolicy>,
    pub token_endpoint_auth_method: Option<String>,
    /// Replaces the whole profile.
    pub profile: Option<ClientProfile>,
    pub require_pushed_authorization_requests: Option<bool>,
    /// `Some(None)`: authenticate by `token_endpoint_auth_method` again;
    /// `Some(Some(ids))`: by private_key_jwt with these credentials.
    pub private_key_jwt_credentials: Option<Option<Vec<String>>>,
    /// `Some(None)`: no back-channel logout any more.
    pub oidc_logout: Option<Option<tessera_core::OidcLogout>>,
}

/// Everything the client-credentials grant needs, read in one query.
#[derive(Debug, Clone)]
pub struct MachineAccess {
    pub client: Client,
    pub api: Option<ResourceServer>,
    pub grant: Option<ClientGrant>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub codes: u64,
    pub sessions: u64,
    pub transactions: u64,
    pub opaque_tokens: u64,
    pub refresh_tokens: u64,
    pub reset_codes: u64,
    pub verification_tickets: u64,
    pub unblock_tickets: u64,
    pub admin_sessions: u64,
    /// Expired jobs, their errors with them.
    pub jobs: u64,
    pub remembered_browsers: u64,
    pub pushed_requests: u64,
    pub device_codes: u64,
    pub mfa_tokens: u64,
    pub client_assertions: u64,
    /// Ended windows of throttles counted in the database.
    pub throttle_windows: u64,
    /// Records of applications used in sessions that have ended by now.
    pub session_clients: u64,
    /// Upstream logout tokens' ids past the time the token could be accepted.
    pub upstream_logout_tokens: u64,
}

/// The throttle window an attempt was counted in (`Store::count_attempt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// Attempts in the window, this one included.
    pub count: i64,
    /// When the window ends (seconds).
    pub ends_at: i64,
}

/// A password grant's sign-in waiting for its second factor (Auth0's `mfa_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaTokenRecord {
    /// SHA-256 of the token the application holds.
    pub token_hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    /// What the password grant asked, serialized by the server.
    pub grant: String,
    /// The recovery code an enrollment handed out (its hash), until it is confirmed.
    pub recovery_hash: Option<Vec<u8>>,
    pub expires_at: i64,
}

/// A blocked-account mail's ticket, as issued: it lifts the block of `email` counted at
/// `counted_at` (a network, or `''` for the account's count over every network).
pub struct NewUnblockTicket<'a> {
    pub ticket_hash: &'a [u8],
    pub user_id: &'a str,
    pub email: &'a str,
    pub counted_at: &'a str,
    pub expires_at: i64,
}

/// An email verification ticket to store: its hash, never the ticket.
#[derive(Debug, Clone, Copy)]
pub struct NewVerificationTicket<'a> {
    pub ticket_hash: &'a [u8],
    pub user_id: &'a str,
    /// Where the result page sends the user on (Auth0's `result_url`).
    pub result_url: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

/// The tenant's email provider: its members as the Management API shows them, and the
/// SMTP password sealed (the store never sees it in clear).
#[derive(Debug, Clone, PartialEq)]
pub struct EmailProvider {
    pub document: tessera_core::Metadata,
    pub sealed_password: Option<Vec<u8>>,
}

/// What a redeemed ticket verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEmail {
    pub user_id: String,
    pub email: String,
    pub result_url: Option<String>,
}

/// The outcome of presenting a password reset code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetCodeCheck {
    /// The code was right and is now used up.
    Redeemed,
    /// Wrong code; the live code survives `attempts_left` more wrong tries (0: it is dead).
    Wrong { attempts_left: i64 },
    /// No live code: none asked for, expired, used, or killed by wrong tries.
    Missing,
}

/// A new refresh-token family: the grant behind every token rotated out of it.
#[derive(Debug, Clone)]
pub struct NewRefreshFamily {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    /// What the family grants, serialized by the server.
    pub grant: String,
    pub code_hash: Option<Vec<u8>>,
    pub sid: Option<String>,
    pub created_at: i64,
    /// Absolute end of the family.
    pub expires_at: i64,
    /// What a post-login action wrote on the token it issues (`api.refreshToken.setMetadata`).
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct RefreshFamily {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub grant: String,
    /// When the family's first token was issued.
    pub created_at: i64,
    pub expires_at: i64,
    /// What actions and administrators wrote on it (`api.refreshToken.setMetadata`,
    /// `PATCH /api/v2/refresh-tokens/{id}`); empty when nothing was.
    pub metadata: BTreeMap<String, String>,
}

/// A refresh token as the Management API shows it: its family (every token rotated out of
/// one sign-in shares the id), when the family's live token goes idle (`None`: it has no
/// live token), and when it was last exchanged (`None`: never).
#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub family: RefreshFamily,
    pub idle_expires_at: Option<i64>,
    pub last_exchanged_at: Option<i64>,
}

/// How long refresh tokens live and how reuse is treated (per application).
#[derive(Debug, Clone, Copy)]
pub struct RefreshTiming {
    /// A token unused for this long expires (never beyond the family's absolute end).
    pub idle_lifetime: i64,
    /// A rotated token presented again within this many seconds is accepted (retries
    /// after a lost response); later it is a reuse and revokes the family.
    pub reuse_interval: i64,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone)]
pub enum RefreshRotation {
    /// The token was exchanged for the new one.
    Rotated,
    /// A rotated token came back: the family is now revoked.
    Reused,
    /// Unknown, expired, revoked, or issued to another client.
    Invalid,
}

/// What revoking consent removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentRevocation {
    /// Consent rows deleted.
    pub consents: u64,
    /// Refresh-token families of the application for the user, revoked with the consent.
    pub refresh_families: u64,
    /// Opaque access tokens (no audience) of the application for the user, deleted.
    pub opaque_tokens: u64,
}

/// Where a job is in its life (Auth0's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        Some(match text {
            "pending" => JobStatus::Pending,
            "processing" => JobStatus::Processing,
            "completed" => JobStatus::Completed,
            "failed" => JobStatus::Failed,
            _ => return None,
        })
    }
}

/// A job of the Management API (`/api/v2/jobs/…`). `job_type` is an open string
/// (`users_import`, `users_export`, …); `details` is what that type keeps (a JSON object)
/// and `summary` what it reports when done.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub job_type: String,
    pub status: JobStatus,
    pub connection_id: Option<String>,
    pub external_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
    pub summary: Option<serde_json::Value>,
    pub details: Metadata,
}

/// A user as a bulk import writes it: already validated, the email normalized, the
/// password hash in the form the server verifies (`None`: no password).
#[derive(Debug, Clone, Default)]
pub struct ImportedUser {
    pub user_id: String,
    pub email: String,
    /// `None`: false for a new user, unchanged by an upsert.
    pub email_verified: Option<bool>,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    pub blocked: bool,
    pub user_metadata: Option<Metadata>,
    pub app_metadata: Option<Metadata>,
}

/// What became of one user of an import batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Inserted,
    /// An existing user with that email took the file's upsertable fields (upsert only).
    Updated,
    /// A user with that email exists and the import does not upsert.
    DuplicateEmail,
    /// The `user_id` belongs to a user with another email.
    DuplicateUserId,
}

/// A secret of an action as lists show it: the value (sealed) never leaves the store
/// through these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub updated_at: i64,
}

/// An action's draft, with the version deployed from it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    pub id: String,
    pub name: String,
    /// The one trigger it supports (Auth0's `supported_triggers[0]`).
    pub trigger_id: String,
    pub trigger_version: String,
    pub code: String,
    /// Auth0's `dependencies` (a JSON array; Tessera only keeps empty ones).
    pub dependencies: serde_json::Value,
    pub runtime: String,
    pub secrets: Vec<SecretInfo>,
    pub deployed_version: Option<ActionVersionRecord>,
    /// Whether the draft is what is deployed.
    pub all_changes_deployed: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new action; secrets arrive sealed.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub id: String,
    pub name: String,
    pub trigger_id: String,
    pub trigger_version: String,
    pub code: String,
    pub dependencies: serde_json::Value,
    pub runtime: String,
    pub secrets: Vec<(String, Vec<u8>)>,
    pub now: i64,
}

/// What an update changes. `secrets`, when given, is the whole new list: a name with
/// `None` keeps its sealed value, names not listed are removed.
#[derive(Debug, Clone, Default)]
pub struct ActionUpdate {
    pub name: Option<String>,
    pub trigger: Option<(String, String)>,
    pub code: Option<String>,
    pub dependencies: Option<serde_json::Value>,
    pub runtime: Option<String>,
    pub secrets: Option<Vec<(String, Option<Vec<u8>>)>>,
}

/// Which actions a list shows.
#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    pub trigger_id: Option<String>,
    pub name: Option<String>,
    pub deployed: Option<bool>,
}

/// A snapshot of an action taken by a deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionVersionRecord {
    pub id: String,
    pub action_id: String,
    pub number: i64,
    pub code: String,
    pub dependencies: serde_json::Value,
    pub runtime: String,
    pub deployed: bool,
    pub created_at: i64,
}

/// One binding of a trigger, with the action it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingRecord {
    pub id: String,
    pub trigger_id: String,
    pub display_name: String,
    pub action: ActionRecord,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A binding to write: the action (by id) and the name the trigger shows.
#[derive(Debug, Clone)]
pub struct NewBinding {
    pub action_id: String,
    pub display_name: String,
}

/// A bound action as a trigger runs it: its deployed version's code and secrets (sealed
/// to the action's id and each secret's name).
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedAction {
    pub action_id: String,
    pub name: String,
    pub code: String,
    pub secrets: Vec<(String, Vec<u8>)>,
}

/// A legacy Rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRecord {
    pub id: String,
    pub name: String,
    pub script: String,
    pub order: i64,
    pub enabled: bool,
    /// Always `login_success`.
    pub stage: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a rule update changes.
#[derive(Debug, Clone, Default)]
pub struct RuleUpdate {
    pub name: Option<String>,
    pub script: Option<String>,
    pub order: Option<i64>,
    pub enabled: Option<bool>,
}

/// A connection as stored: `options` is the JSON object shown (never the secret), and
/// the client secret arrives sealed by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub strategy: String,
    pub options: serde_json::Map<String, serde_json::Value>,
    pub sealed_secret: Option<Vec<u8>>,
    pub show_as_button: bool,
    pub is_domain_connection: bool,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a connection update changes; `enabled_clients` replaces the list whole.
#[derive(Debug, Clone, Default)]
pub struct ConnectionUpdate {
    pub display_name: Option<String>,
    pub options: Option<serde_json::Map<String, serde_json::Value>>,
    pub sealed_secret: Option<Vec<u8>>,
    pub show_as_button: Option<bool>,
    pub is_domain_connection: Option<bool>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub enabled_clients: Option<Vec<String>>,
}

/// Which connections a list keeps: any of `strategies` (all when empty), and the one
/// named `name`.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub strategies: Vec<String>,
    pub name: Option<String>,
}

/// What an upstream provider says about a user at a sign-in; `None` members take the
/// defaults a new user of the database connection gets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FederatedProfile {
    /// `None`: the provider shared no (valid) email address.
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
}

/// A profile as a user row holds it: what a linked identity keeps of its account
/// (Auth0's `profileData`), and what its account gets back when it is unlinked.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinkedProfile {
    /// Absent when the account had no email (older rows always have one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: String,
    pub nickname: String,
    pub picture: String,
}

/// An identity linked to a user: signing in through it signs the primary user in.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedIdentity {
    /// The identity's own id, `provider|id` (the account it was before linking).
    pub user_id: String,
    pub primary_user_id: String,
    /// The connection's name.
    pub connection: String,
    pub profile: LinkedProfile,
    pub linked_at: i64,
}

/// A user's second factor (migration 0023): a TOTP authenticator or a recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticator {
    pub id: String,
    pub user_id: String,
    /// [`crate::TOTP`] or [`crate::RECOVERY_CODE`].
    pub kind: String,
    /// A TOTP seed sealed with the master key, or a recovery code's SHA-256.
    pub secret: Vec<u8>,
    /// A TOTP authenticator is confirmed by its first code; a recovery code always is.
    pub confirmed: bool,
    /// The time step of the last TOTP code accepted.
    pub last_step: i64,
    pub created_at: i64,
    pub last_auth_at: Option<i64>,
}

/// A user's WebAuthn credential (migration 0024): a security key, a platform authenticator
/// or a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnCredential {
    /// Tessera's authentication-method id (`webauthn-roaming|dev_…`).
    pub id: String,
    pub user_id: String,
    /// The authenticator's credential id (unique in the tenant).
    pub credential_id: Vec<u8>,
    /// The COSE_Key as registered.
    pub public_key: Vec<u8>,
    /// The last signature counter accepted.
    pub sign_count: i64,
    /// The transports the browser reported, a JSON array.
    pub transports: String,
    /// [`crate::WEBAUTHN_ROAMING`], [`crate::WEBAUTHN_PLATFORM`] or [`crate::PASSKEY`].
    pub kind: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A device authorization to store (RFC 8628): the device code's hash, never the code.
#[derive(Debug, Clone)]
pub struct NewDeviceCode {
    pub device_code_hash: Vec<u8>,
    /// Normalized: 8 letters, no dash.
    pub user_code: String,
    pub client_id: String,
    /// JSON array of the requested scopes.
    pub scope: String,
    pub audience: Option<String>,
    pub poll_interval: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A live, pending device authorization as the activation page finds it by its user code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeviceCode {
    pub client_id: String,
    /// JSON array of the requested scopes.
    pub scope: String,
    pub audience: Option<String>,
    pub expires_at: i64,
}

/// What polling a device code found (`Store::poll_device_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// No such code for this client: unknown, forged, another client's, or purged.
    Unknown,
    Expired,
    /// Polled before the interval passed: the interval grew.
    SlowDown,
    Pending,
    Denied,
    /// Approved, and this poll took it: the user and what was granted (JSON), once.
    Approved {
        user_id: String,
        grant: String,
    },
    /// Tokens were issued for it already.
    Redeemed,
}

/// An application's public key for private_key_jwt (migration 0028; Auth0's client
/// credential of type `public_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredential {
    /// `cred_…`.
    pub id: String,
    pub client_id: String,
    pub name: String,
    /// The key's RFC 7638 thumbprint.
    pub kid: String,
    /// The one algorithm assertions signed with the key may use.
    pub alg: String,
    /// SubjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
    /// After this the key authenticates nothing; `None`: it does not expire.
    pub expires_at: Option<i64>,
}

/// One event of the audit log (Auth0's log event), as written. `date` is in milliseconds
/// since the epoch; `details` a JSON object that never holds a secret (the server's
/// `audit` module removes them before the store sees it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogEvent {
    pub date: i64,
    /// Auth0's code: `s`, `fp`, `seacft`, `sapi`, …
    pub log_type: String,
    pub description: Option<String>,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub connection: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub details: serde_json::Value,
}

/// An event of the audit log as stored: its `log_id` (growing with every write, shown
/// as a string of 20 digits so that it sorts as text too) and the event.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub log_id: String,
    pub event: LogEvent,
}

/// What `GET /api/v2/logs?q=…` searches for: every term given must hold. `from_date` /
/// `to_date` are milliseconds, both inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSearch {
    pub log_type: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub from_date: Option<i64>,
    pub to_date: Option<i64>,
    /// Newest first (`sort=date:-1`, the default) or oldest first.
    pub oldest_first: bool,
}

/// A log stream (migration 0033): where the audit log is pushed, as the Management API
/// shows it (`sink` without the authorization, which arrives sealed by the caller), and
/// its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStream {
    pub id: String,
    pub name: String,
    /// `http`, the one type Tessera delivers.
    pub stream_type: String,
    /// `active`, `paused` or `suspended`.
    pub status: String,
    /// Auth0's sink members except `httpAuthorization`.
    pub sink: tessera_core::Metadata,
    pub sealed_authorization: Option<Vec<u8>>,
    /// Auth0's filters (`[{type: "category", name}]`).
    pub filters: serde_json::Value,
    pub is_priority: bool,
    /// The last `log_id` delivered (or passed over by the filters).
    pub cursor: i64,
    /// Consecutive failed deliveries.
    pub failures: i64,
    /// The last failure, a short line without secrets.
    pub last_error: Option<String>,
    /// When a failed stream is tried again (milliseconds).
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A change of a log stream's settings; `None` leaves a member as it is. A stream set
/// `active` starts again from its cursor: its failures are forgotten.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogStreamUpdate {
    pub name: Option<String>,
    pub status: Option<String>,
    pub sink: Option<tessera_core::Metadata>,
    /// `Some(None)`: the authorization removed.
    pub sealed_authorization: Option<Option<Vec<u8>>>,
    pub filters: Option<serde_json::Value>,
    pub is_priority: Option<bool>,
}
