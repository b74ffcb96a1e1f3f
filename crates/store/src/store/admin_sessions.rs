//! Sessions of the administration dashboard, and the first sign-in through each
//! application (its getting-started checklist).

use sqlx::Row;

use super::Store;
use crate::StoreResult;
use crate::records::AdminSessionRecord;

impl Store {
    pub async fn create_admin_session(
        &self,
        id_hash: &[u8],
        record: &AdminSessionRecord,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO admin_sessions (tenant_id, id_hash, user_id, csrf_token, auth_time, \
                 created_at, absolute_expires_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(self.tenant)
            .bind(id_hash)
            .bind(&record.user_id)
            .bind(&record.csrf_token)
            .bind(record.auth_time)
            .bind(record.created_at)
            .bind(record.absolute_expires_at)
            .bind(record.expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A live dashboard session (not expired at `now`).
    pub async fn find_admin_session(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT user_id, csrf_token, auth_time, created_at, absolute_expires_at, \
                 expires_at FROM admin_sessions \
                 WHERE tenant_id = $1 AND id_hash = $2 AND expires_at > $3",
            )
            .bind(self.tenant)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.map(|row| {
                Ok(AdminSessionRecord {
                    user_id: row.try_get("user_id")?,
                    csrf_token: row.try_get("csrf_token")?,
                    auth_time: row.try_get("auth_time")?,
                    created_at: row.try_get("created_at")?,
                    absolute_expires_at: row.try_get("absolute_expires_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .transpose()
        })
    }

    /// Moves a dashboard session's end to `expires_at` when that is later, never past its
    /// absolute end.
    pub async fn extend_admin_session(&self, id_hash: &[u8], expires_at: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "UPDATE admin_sessions SET expires_at = \
                 CASE WHEN $3 < absolute_expires_at THEN $3 ELSE absolute_expires_at END \
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

    pub async fn delete_admin_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("DELETE FROM admin_sessions WHERE tenant_id = $1 AND id_hash = $2")
                .bind(self.tenant)
                .bind(id_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}

impl Store {
    /// Records that a user signed in through `client_id` (the first time only).
    pub async fn record_client_login(&self, client_id: &str, now: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO client_logins (tenant_id, client_id, first_login_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (tenant_id, client_id) DO NOTHING",
            )
            .bind(self.tenant)
            .bind(client_id)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Whether a user has signed in through any application but `except`.
    pub async fn has_client_login_except(&self, except: &str) -> StoreResult<bool> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT 1 AS one FROM client_logins WHERE tenant_id = $1 AND client_id <> $2 LIMIT 1",
            )
            .bind(self.tenant)
            .bind(except)
            .fetch_optional(pool)
            .await?;
            Ok(row.is_some())
        })
    }
}
