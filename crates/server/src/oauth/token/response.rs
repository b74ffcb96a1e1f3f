//! What the token endpoint answers when it issues (RFC 6749 §5.1).

use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) refresh_token: Option<String>,
    pub(crate) scope: String,
    pub(crate) expires_in: i64,
    pub(super) token_type: &'static str,
    /// The user's next recovery code, after one was used (Auth0's `mfa-recovery-code`
    /// grant): shown to them once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) recovery_code: Option<String>,
    /// Whether anything issued is kept in the store and can be revoked: a refresh token,
    /// an opaque access token (a JWT cannot be taken back). Never sent.
    #[serde(skip)]
    pub(super) revocable: bool,
    /// Who and what for, for the audit log; never sent.
    #[serde(skip)]
    pub(crate) audit: Issued,
}

/// What the audit log says of an issuance (`crate::audit`).
#[derive(Default)]
pub(crate) struct Issued {
    pub(crate) user_id: Option<String>,
    pub(crate) user_name: Option<String>,
    pub(crate) client_name: Option<String>,
    pub(crate) audience: Option<String>,
}
