//! Password reset codes.

use sqlx::Row;

use super::Store;
use crate::StoreResult;
use crate::records::ResetCodeCheck;

impl Store {
    /// Stores the user's reset code (hashed), replacing any earlier one and its tries.
    pub async fn put_password_reset_code(
        &self,
        user_id: &str,
        code_hash: &[u8],
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO password_reset_codes (tenant_id, user_id, code_hash, attempts, created_at, expires_at) \
                 VALUES ($1, $2, $3, 0, $4, $5) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET code_hash = excluded.code_hash, attempts = 0, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(code_hash)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Checks a presented reset code. Each try is counted before the code is compared, so
    /// concurrent tries cannot compare more than `max_attempts` times; the right code is
    /// deleted by exactly one presenter, and the code dies after `max_attempts` tries.
    pub async fn redeem_password_reset_code(
        &self,
        user_id: &str,
        code_hash: &[u8],
        now: i64,
        max_attempts: i64,
    ) -> StoreResult<ResetCodeCheck> {
        each!(self, |pool| {
            // Every try is counted before its code is compared, in one statement: however
            // many tries arrive at once, at most `max_attempts` of them are ever compared.
            let reserved = sqlx::query(
                "UPDATE password_reset_codes SET attempts = attempts + 1 WHERE tenant_id = $1 AND user_id = $2 \
                 AND expires_at > $3 AND attempts < $4 RETURNING code_hash, attempts",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(now)
            .bind(max_attempts)
            .fetch_optional(pool)
            .await?;
            // No try left, expired or none: nothing is deleted here. A code out of tries
            // stays dead until the purge (its expiry index) or a new code replaces it;
            // deleting it now could take the row from under a concurrent try that reserved
            // an earlier attempt with the right code.
            let Some(reserved) = reserved else {
                return Ok(ResetCodeCheck::Missing);
            };
            let stored: Vec<u8> = reserved.try_get("code_hash")?;
            let attempts: i64 = reserved.try_get("attempts")?;
            if stored != code_hash {
                // Comparing hashes: their timing tells nothing about the code.
                return Ok(ResetCodeCheck::Wrong {
                    attempts_left: (max_attempts - attempts).max(0),
                });
            }
            // The right code: used up by whichever of its concurrent presenters deletes it.
            let won = sqlx::query(
                "DELETE FROM password_reset_codes WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3 \
                 RETURNING user_id",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(code_hash)
            .fetch_optional(pool)
            .await?;
            Ok(match won {
                Some(_) => ResetCodeCheck::Redeemed,
                None => ResetCodeCheck::Missing,
            })
        })
    }
}
