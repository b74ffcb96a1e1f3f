//! Browsers remembered after a second factor (migration 0026). A browser is known by the
//! hash of its cookie; a use is accepted and recorded in one statement, so the tenant's
//! timeouts hold on every node.

use super::Store;
use crate::StoreResult;
use crate::backend::BeginWrite as _;

/// The most browsers one user keeps remembered: a new one pushes out the oldest.
pub const MAX_REMEMBERED_BROWSERS: i64 = 20;

impl Store {
    /// Remembers a browser for `user_id` until `expires_at` at the latest.
    pub async fn remember_browser(
        &self,
        user_id: &str,
        token_hash: &[u8],
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(
                "INSERT INTO remembered_browsers (tenant_id, token_hash, user_id, created_at, \
                 last_used_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)",
            )
            .bind(self.tenant)
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM remembered_browsers WHERE tenant_id = $1 AND user_id = $2 \
                 AND token_hash NOT IN (SELECT token_hash FROM remembered_browsers \
                 WHERE tenant_id = $1 AND user_id = $2 \
                 ORDER BY created_at DESC, token_hash LIMIT $3)",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(MAX_REMEMBERED_BROWSERS)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a use of the browser remembered for `user_id` under `token_hash`, if it
    /// was remembered after `created_after` and last used after `used_after` (and has not
    /// expired). `false`: not remembered (for this user), or no longer.
    pub async fn use_remembered_browser(
        &self,
        user_id: &str,
        token_hash: &[u8],
        now: i64,
        (created_after, used_after): (i64, i64),
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let updated = sqlx::query(
                "UPDATE remembered_browsers SET last_used_at = $1 \
                 WHERE tenant_id = $2 AND token_hash = $3 AND user_id = $4 \
                 AND expires_at > $1 AND created_at > $5 AND last_used_at > $6",
            )
            .bind(now)
            .bind(self.tenant)
            .bind(token_hash)
            .bind(user_id)
            .bind(created_after)
            .bind(used_after)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(updated == 1)
        })
    }

    /// Forgets every browser remembered for the user; how many.
    pub async fn forget_remembered_browsers(&self, user_id: &str) -> StoreResult<u64> {
        each!(self, |pool| {
            Ok(
                sqlx::query(
                    "DELETE FROM remembered_browsers WHERE tenant_id = $1 AND user_id = $2",
                )
                .bind(self.tenant)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected(),
            )
        })
    }
}
