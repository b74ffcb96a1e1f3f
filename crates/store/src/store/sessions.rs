//! Login sessions and login transactions.

use sqlx::Row;

use super::Store;
use crate::StoreResult;
use crate::records::{SessionRecord, TransactionRecord};

impl Store {
    pub async fn create_session(
        &self,
        id_hash: &[u8],
        record: &SessionRecord,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO sessions (tenant_id, id_hash, sid, user_id, auth_time, created_at, expires_at, \
             connection, amr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.tenant)
        .bind(id_hash)
        .bind(&record.sid)
        .bind(&record.user_id)
        .bind(record.auth_time)
        .bind(now)
        .bind(record.expires_at)
        .bind(&record.connection)
        .bind(serde_json::to_string(&record.amr).expect("strings serialize"))
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// A live session (not expired at `now`).
    pub async fn find_session(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT sid, user_id, connection, amr, auth_time, expires_at FROM sessions WHERE tenant_id = $1 AND id_hash = $2 AND expires_at > $3",
        )
        .bind(self.tenant)
        .bind(id_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            row.map(|row| {
                Ok(SessionRecord {
                    sid: row.try_get("sid")?,
                    user_id: row.try_get("user_id")?,
                    connection: row.try_get("connection")?,
                    amr: row
                        .try_get::<Option<String>, _>("amr")?
                        .and_then(|amr| serde_json::from_str(&amr).ok())
                        .unwrap_or_default(),
                    auth_time: row.try_get("auth_time")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .transpose()
        })
    }

    /// Moves a session's end to `expires_at` when that is later (a session used within its
    /// idle lifetime lives on; a concurrent use that extended it further wins).
    pub async fn extend_session(&self, id_hash: &[u8], expires_at: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "UPDATE sessions SET expires_at = $3 \
                 WHERE tenant_id = $1 AND id_hash = $2 AND expires_at < $3",
            )
            .bind(self.tenant)
            .bind(id_hash)
            .bind(expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND id_hash = $2")
                .bind(self.tenant)
                .bind(id_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    // ---- login transactions ------------------------------------------------------------

    pub async fn create_transaction(
        &self,
        record: &TransactionRecord,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO login_transactions (tenant_id, id, csrf_hash, request, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.tenant)
        .bind(&record.id)
        .bind(&record.csrf_hash)
        .bind(&record.request)
        .bind(now)
        .bind(record.expires_at)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    pub async fn find_transaction(
        &self,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<TransactionRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT id, csrf_hash, request, expires_at FROM login_transactions WHERE tenant_id = $1 AND id = $2 AND expires_at > $3",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            row.map(|row| {
                Ok(TransactionRecord {
                    id: row.try_get("id")?,
                    csrf_hash: row.try_get("csrf_hash")?,
                    request: row.try_get("request")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .transpose()
        })
    }

    /// Replaces what a transaction keeps, if it still keeps `expected`: `false` when
    /// another request changed it first (or it is gone), so a step of a transaction —
    /// such as an upstream provider's callback — can be made single-use.
    pub async fn replace_transaction(
        &self,
        id: &str,
        expected: &str,
        request: &str,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let done = sqlx::query(
                "UPDATE login_transactions SET request = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND request = $3",
            )
            .bind(self.tenant)
            .bind(id)
            .bind(expected)
            .bind(request)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Deletes a transaction; `false` when it was gone already (used once, or expired and
    /// purged), so a transaction can be made single-use.
    pub async fn delete_transaction(&self, id: &str) -> StoreResult<bool> {
        each!(self, |pool| {
            let done =
                sqlx::query("DELETE FROM login_transactions WHERE tenant_id = $1 AND id = $2")
                    .bind(self.tenant)
                    .bind(id)
                    .execute(pool)
                    .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
