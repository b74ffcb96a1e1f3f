//! Signing keys: the published set, its version, and rotation.

use sqlx::Row;

use super::Store;
use crate::backend::{BeginWrite as _, Fetch};
use crate::records::{KeyState, SigningKeyRecord};
use crate::{StoreError, StoreResult};

fn key_from_row(row: &impl Fetch) -> StoreResult<SigningKeyRecord> {
    let state: String = row.col("state")?;
    Ok(SigningKeyRecord {
        kid: row.col("kid")?,
        alg: row.col("alg")?,
        state: KeyState::parse(&state).ok_or(StoreError::Corrupt("key state"))?,
        sealed_private_key: row.col("private_key")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

const INSERT_KEY: &str = "INSERT INTO signing_keys \
    (tenant_id, kid, alg, state, private_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// PostgreSQL: what `BEGIN IMMEDIATE` gives SQLite for key changes — one writer at a time
/// across every node (readers go on), so two nodes starting together create one key set.
const LOCK_SIGNING_KEYS: &str = "LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE";

impl Store {
    /// Keys that are published (next, current, previous), oldest first.
    pub async fn published_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT kid, alg, state, private_key, created_at, updated_at FROM signing_keys \
             WHERE tenant_id = $1 AND state != 'retired' ORDER BY created_at, kid",
            )
            .bind(self.tenant)
            .fetch_all(pool)
            .await?;
            rows.iter().map(key_from_row).collect()
        })
    }

    /// Every key, retired ones included (for `keys list`).
    pub async fn all_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT kid, alg, state, private_key, created_at, updated_at FROM signing_keys \
             WHERE tenant_id = $1 ORDER BY created_at, kid",
            )
            .bind(self.tenant)
            .fetch_all(pool)
            .await?;
            rows.iter().map(key_from_row).collect()
        })
    }

    /// A short fingerprint of the published key set, polled to notice rotations made by
    /// another process (the CLI) without reading the sealed keys.
    pub async fn key_set_version(&self) -> StoreResult<String> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT COALESCE(string_agg(kid || ':' || state, ',' ORDER BY kid), '') AS v \
                 FROM signing_keys WHERE tenant_id = $1 AND state != 'retired'",
            )
            .bind(self.tenant)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get("v")?)
        })
    }

    /// Inserts keys for algorithms that have none yet. Returns how many were inserted;
    /// safe to race with another process doing the same.
    pub async fn insert_keys_if_missing(&self, keys: &[SigningKeyRecord]) -> StoreResult<usize> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(Some(LOCK_SIGNING_KEYS)).await?;
            let mut inserted = 0;
            for key in keys {
                let exists = sqlx::query(
                    "SELECT 1 FROM signing_keys WHERE tenant_id = $1 AND alg = $2 AND state = $3",
                )
                .bind(self.tenant)
                .bind(&key.alg)
                .bind(key.state.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
                if !exists {
                    sqlx::query(INSERT_KEY)
                        .bind(self.tenant)
                        .bind(&key.kid)
                        .bind(&key.alg)
                        .bind(key.state.as_str())
                        .bind(&key.sealed_private_key)
                        .bind(key.created_at)
                        .bind(key.updated_at)
                        .execute(&mut *tx)
                        .await?;
                    inserted += 1;
                }
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    /// Rotates one algorithm's keys: previous → retired, current → previous,
    /// next → current, and `new_next` becomes next. One transaction.
    pub async fn rotate_keys(
        &self,
        alg: &str,
        new_next: &SigningKeyRecord,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(Some(LOCK_SIGNING_KEYS)).await?;
            for (from, to) in [
                ("previous", "retired"),
                ("current", "previous"),
                ("next", "current"),
            ] {
                sqlx::query("UPDATE signing_keys SET state = $1, updated_at = $2 WHERE tenant_id = $3 AND alg = $4 AND state = $5")
                .bind(to)
                .bind(now)
                .bind(self.tenant)
                .bind(alg)
                .bind(from)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(INSERT_KEY)
                .bind(self.tenant)
                .bind(&new_next.kid)
                .bind(&new_next.alg)
                .bind(new_next.state.as_str())
                .bind(&new_next.sealed_private_key)
                .bind(new_next.created_at)
                .bind(new_next.updated_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
