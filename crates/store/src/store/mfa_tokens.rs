//! MFA tokens (migration 0030): a password grant's sign-in waiting for its second factor,
//! named by a token the application holds for a few minutes. Kept as hashes; finishing
//! takes the row in the same statement, so a token completes one sign-in on any node.

use super::Store;
use crate::StoreResult;
use crate::backend::Fetch;
use crate::records::MfaTokenRecord;

impl Store {
    /// Stores a new MFA token (its hash) for `client_id`'s sign-in of `user_id`.
    pub async fn create_mfa_token(&self, record: &MfaTokenRecord) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO mfa_tokens (tenant_id, token_hash, client_id, user_id, \"grant\", \
                 recovery_hash, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(self.tenant)
            .bind(&record.token_hash)
            .bind(&record.client_id)
            .bind(&record.user_id)
            .bind(&record.grant)
            .bind(&record.recovery_hash)
            .bind(record.expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The live MFA token with this hash; `None` when unknown, finished or expired.
    pub async fn find_mfa_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<MfaTokenRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT token_hash, client_id, user_id, \"grant\", recovery_hash, expires_at \
                 FROM mfa_tokens WHERE tenant_id = $1 AND token_hash = $2 AND expires_at > $3",
            )
            .bind(self.tenant)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(mfa_token_from_row).transpose()
        })
    }

    /// Keeps the hash of the recovery code an enrollment handed out, to be given to the
    /// user when the enrollment is confirmed. `false` when the token is gone.
    pub async fn set_mfa_token_recovery(
        &self,
        token_hash: &[u8],
        recovery_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let updated = sqlx::query(
                "UPDATE mfa_tokens SET recovery_hash = $1 \
                 WHERE tenant_id = $2 AND token_hash = $3 AND expires_at > $4",
            )
            .bind(recovery_hash)
            .bind(self.tenant)
            .bind(token_hash)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(updated == 1)
        })
    }

    /// Takes (deletes and returns) the live MFA token with this hash: the sign-in it names
    /// finishes once. `None`: unknown, taken already, or expired.
    pub async fn take_mfa_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<MfaTokenRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(
                "DELETE FROM mfa_tokens WHERE tenant_id = $1 AND token_hash = $2 \
                 AND expires_at > $3 \
                 RETURNING token_hash, client_id, user_id, \"grant\", recovery_hash, expires_at",
            )
            .bind(self.tenant)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(mfa_token_from_row).transpose()
        })
    }
}

fn mfa_token_from_row<R: Fetch>(row: &R) -> StoreResult<MfaTokenRecord> {
    Ok(MfaTokenRecord {
        token_hash: row.col("token_hash")?,
        client_id: row.text("client_id")?,
        user_id: row.text("user_id")?,
        grant: row.text("grant")?,
        recovery_hash: row.col("recovery_hash")?,
        expires_at: row.col("expires_at")?,
    })
}
