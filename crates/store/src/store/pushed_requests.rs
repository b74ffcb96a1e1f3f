//! Pushed authorization requests (migration 0027): stored by the back channel, taken once
//! by the front. Taking deletes in the same statement, so two nodes cannot both use one.

use super::Store;
use crate::StoreResult;
use crate::backend::Fetch;

impl Store {
    /// Stores `client_id`'s pushed request (form-encoded) under `uri_hash` until `expires_at`.
    pub async fn push_request(
        &self,
        uri_hash: &[u8],
        client_id: &str,
        params: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO pushed_requests (tenant_id, uri_hash, client_id, params, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(self.tenant)
            .bind(uri_hash)
            .bind(client_id)
            .bind(params)
            .bind(expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Takes (deletes and returns) `client_id`'s live pushed request under `uri_hash`.
    /// `None`: never pushed, another client's, expired, or taken already.
    pub async fn take_pushed_request(
        &self,
        uri_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> StoreResult<Option<String>> {
        each!(self, |pool| {
            let row = sqlx::query(
                "DELETE FROM pushed_requests WHERE tenant_id = $1 AND uri_hash = $2 \
                 AND client_id = $3 AND expires_at > $4 RETURNING params",
            )
            .bind(self.tenant)
            .bind(uri_hash)
            .bind(client_id)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(|row| row.text("params")).transpose()
        })
    }
}
