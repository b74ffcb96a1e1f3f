//! Throttle windows the nodes of a cluster count in together: the server decides what is
//! counted and the limit; here only the count, atomically, in the database all nodes share.

use super::Store;
use crate::{Attempts, StoreResult};

impl Store {
    /// Counts one attempt of `kind` by `key` in its current window of `window` seconds; a
    /// window that has ended is replaced by one that starts now. One statement, so
    /// attempts counted at once on several nodes are all counted.
    pub async fn count_attempt(
        &self,
        kind: &str,
        key: &str,
        window: i64,
        now: i64,
    ) -> StoreResult<Attempts> {
        each!(self, |pool| {
            let (count, ends_at): (i64, i64) = sqlx::query_as(
                "INSERT INTO throttle_windows (tenant_id, kind, key, attempts, expires_at) \
                 VALUES ($1, $2, $3, 1, $4) \
                 ON CONFLICT (tenant_id, kind, key) DO UPDATE SET \
                 attempts = CASE WHEN throttle_windows.expires_at <= $5 THEN 1 \
                                 ELSE throttle_windows.attempts + 1 END, \
                 expires_at = CASE WHEN throttle_windows.expires_at <= $5 THEN excluded.expires_at \
                                   ELSE throttle_windows.expires_at END \
                 RETURNING attempts, expires_at",
            )
            .bind(self.tenant)
            .bind(kind)
            .bind(key)
            .bind(now.saturating_add(window))
            .bind(now)
            .fetch_one(pool)
            .await?;
            Ok(Attempts { count, ends_at })
        })
    }
}
