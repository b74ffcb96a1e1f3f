//! WebAuthn credentials (migration 0024). The store keeps what makes a cloned
//! authenticator detectable: a signature counter is accepted only if it rises (or both it
//! and the stored one are zero), in the same statement that records it, so two nodes
//! racing with one assertion cannot both accept it.

use super::Store;
use crate::backend::Fetch;
use crate::records::WebauthnCredential;
use crate::{StoreError, StoreResult};

/// `kind` of a security key (a cross-platform authenticator) used as a second factor.
pub const WEBAUTHN_ROAMING: &str = "webauthn-roaming";
/// `kind` of a platform authenticator used as a second factor.
pub const WEBAUTHN_PLATFORM: &str = "webauthn-platform";
/// `kind` of a discoverable credential used as a first factor.
pub const PASSKEY: &str = "passkey";
/// The most credentials one user's list reads.
pub const MAX_WEBAUTHN_CREDENTIALS: i64 = 20;

/// The columns every read selects (a macro: queries are literal strings).
macro_rules! columns {
    () => {
        "SELECT id, user_id, credential_id, public_key, sign_count, transports, kind, name, \
         created_at, last_used_at FROM webauthn_credentials WHERE tenant_id = $1 "
    };
}

fn credential_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<WebauthnCredential> {
    Ok(WebauthnCredential {
        id: row.text("id")?,
        user_id: row.text("user_id")?,
        credential_id: row.col("credential_id")?,
        public_key: row.col("public_key")?,
        sign_count: row.col("sign_count")?,
        transports: row.text("transports")?,
        kind: row.text("kind")?,
        name: row.text("name")?,
        created_at: row.col("created_at")?,
        last_used_at: row.col("last_used_at")?,
    })
}

impl Store {
    /// Stores a new credential. `Conflict` when its credential id is registered already
    /// (to this user or another), or the user has [`MAX_WEBAUTHN_CREDENTIALS`].
    pub async fn add_webauthn_credential(
        &self,
        credential: &WebauthnCredential,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let inserted = sqlx::query(
                "INSERT INTO webauthn_credentials (tenant_id, id, user_id, credential_id, \
                 public_key, sign_count, transports, kind, name, created_at, last_used_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE (SELECT COUNT(*) \
                 FROM webauthn_credentials WHERE tenant_id = $1 AND user_id = $3) < $12",
            )
            .bind(self.tenant)
            .bind(&credential.id)
            .bind(&credential.user_id)
            .bind(&credential.credential_id)
            .bind(&credential.public_key)
            .bind(credential.sign_count)
            .bind(&credential.transports)
            .bind(&credential.kind)
            .bind(&credential.name)
            .bind(credential.created_at)
            .bind(credential.last_used_at)
            .bind(MAX_WEBAUTHN_CREDENTIALS)
            .execute(pool)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("a credential"))?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::Conflict("a credential"));
            }
            Ok(())
        })
    }

    /// A user's credentials, oldest first (at most [`MAX_WEBAUTHN_CREDENTIALS`]).
    pub async fn webauthn_credentials_of(
        &self,
        user_id: &str,
    ) -> StoreResult<Vec<WebauthnCredential>> {
        each!(self, |pool| {
            sqlx::query(concat!(
                columns!(),
                "AND user_id = $2 ORDER BY created_at, id LIMIT $3"
            ))
            .bind(self.tenant)
            .bind(user_id)
            .bind(MAX_WEBAUTHN_CREDENTIALS)
            .fetch_all(pool)
            .await?
            .iter()
            .map(credential_from_row)
            .collect()
        })
    }

    /// The credential with this authenticator credential id, whoever holds it.
    pub async fn webauthn_credential(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<WebauthnCredential>> {
        each!(self, |pool| {
            sqlx::query(concat!(columns!(), "AND credential_id = $2"))
                .bind(self.tenant)
                .bind(credential_id)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(credential_from_row)
                .transpose()
        })
    }

    /// Records a use of the user's credential with the counter its assertion carried, if
    /// the counter rises over the stored one (or both are zero). `false` otherwise: a
    /// cloned authenticator, a replay, or a credential deleted meanwhile.
    pub async fn use_webauthn_credential(
        &self,
        user_id: &str,
        id: &str,
        sign_count: i64,
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let updated = sqlx::query(
                "UPDATE webauthn_credentials SET sign_count = $1, last_used_at = $2 \
                 WHERE tenant_id = $3 AND id = $4 AND user_id = $5 \
                 AND ((sign_count = 0 AND $1 = 0) OR sign_count < $1)",
            )
            .bind(sign_count)
            .bind(now)
            .bind(self.tenant)
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(updated == 1)
        })
    }
}
