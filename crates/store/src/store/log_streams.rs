//! Log streams (migration 0033): the settings the Management API keeps, and the delivery
//! state the server's delivery task moves — a cursor in the audit log's checkpoint order,
//! consecutive failures and when to try again, and a lease so that one node at a time
//! delivers a stream. Every change of the delivery state names the lease it holds: a node
//! whose lease ran out (and was taken by another) changes nothing.

use sqlx::Row;

use super::{Store, to_json};
use crate::backend::{BeginWrite as _, Fetch};
use crate::records::{LogStream, LogStreamUpdate};
use crate::{StoreError, StoreResult};

/// At most this many streams per tenant (Auth0 allows a handful too): the delivery task
/// reads them all every tick.
pub const MAX_LOG_STREAMS: i64 = 10;

macro_rules! stream_columns {
    () => {
        "id, name, type, status, sink, sealed_authorization, filters, is_priority, \
         cursor_log_id, failures, last_error, next_attempt_at, created_at, updated_at"
    };
}

fn stream_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<LogStream> {
    Ok(LogStream {
        id: row.text("id")?,
        name: row.text("name")?,
        stream_type: row.text("type")?,
        status: row.text("status")?,
        sink: serde_json::from_str(&row.text("sink")?)
            .map_err(|_| StoreError::Corrupt("log stream sink"))?,
        sealed_authorization: crate::backend::Col::<Option<Vec<u8>>>::col(
            row,
            "sealed_authorization",
        )?,
        filters: serde_json::from_str(&row.text("filters")?)
            .map_err(|_| StoreError::Corrupt("log stream filters"))?,
        is_priority: row.col("is_priority")?,
        cursor: row.col("cursor_log_id")?,
        failures: row.col("failures")?,
        last_error: row.opt_text("last_error")?,
        next_attempt_at: row.col("next_attempt_at")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

impl Store {
    /// Saves a new stream, its cursor at the newest event written: it delivers what
    /// happens from now on. `Conflict` when the tenant has [`MAX_LOG_STREAMS`] already.
    pub async fn create_log_stream(&self, stream: &LogStream) -> StoreResult<LogStream> {
        each!(self, |pool| {
            let mut tx = pool
                .begin_write(Some("LOCK TABLE log_streams IN SHARE ROW EXCLUSIVE MODE"))
                .await?;
            let count: i64 =
                sqlx::query("SELECT count(*) AS n FROM log_streams WHERE tenant_id = $1")
                    .bind(self.tenant)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
            if count >= MAX_LOG_STREAMS {
                return Err(StoreError::Conflict("the tenant's limit of log streams"));
            }
            let cursor: i64 =
                sqlx::query("SELECT coalesce(max(log_id), 0) AS n FROM logs WHERE tenant_id = $1")
                    .bind(self.tenant)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("n")?;
            sqlx::query(
                "INSERT INTO log_streams (tenant_id, id, name, type, status, sink, \
                 sealed_authorization, filters, is_priority, cursor_log_id, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(self.tenant)
            .bind(&stream.id)
            .bind(&stream.name)
            .bind(&stream.stream_type)
            .bind(&stream.status)
            .bind(to_json(&stream.sink))
            .bind(&stream.sealed_authorization)
            .bind(to_json(&stream.filters))
            .bind(stream.is_priority)
            .bind(cursor)
            .bind(stream.created_at)
            .bind(stream.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|error| StoreError::from(error).conflict_is("a log stream with this id"))?;
            tx.commit().await?;
            Ok(LogStream {
                cursor,
                failures: 0,
                last_error: None,
                next_attempt_at: 0,
                ..stream.clone()
            })
        })
    }

    pub async fn find_log_stream(&self, id: &str) -> StoreResult<Option<LogStream>> {
        each!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                stream_columns!(),
                " FROM log_streams WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(|row| stream_from_row(&row))
            .transpose()
        })
    }

    /// Every stream of the tenant (at most [`MAX_LOG_STREAMS`]), oldest first.
    pub async fn list_log_streams(&self) -> StoreResult<Vec<LogStream>> {
        each!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                stream_columns!(),
                " FROM log_streams WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2"
            ))
            .bind(self.tenant)
            .bind(MAX_LOG_STREAMS)
            .fetch_all(pool)
            .await?
            .iter()
            .map(stream_from_row)
            .collect()
        })
    }

    /// Applies `update` under the row's lock. Setting `status` to `active` forgets the
    /// failures, so delivery resumes from the cursor at once.
    pub async fn update_log_stream(
        &self,
        id: &str,
        update: &LogStreamUpdate,
        now: i64,
    ) -> StoreResult<LogStream> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(for_update!(
                pg,
                "SELECT ",
                stream_columns!(),
                " FROM log_streams WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("log stream"))?;
            let mut stream = stream_from_row(&row)?;
            if let Some(name) = &update.name {
                stream.name.clone_from(name);
            }
            if let Some(status) = &update.status {
                if status == "active" {
                    stream.failures = 0;
                    stream.last_error = None;
                    stream.next_attempt_at = 0;
                }
                stream.status.clone_from(status);
            }
            if let Some(sink) = &update.sink {
                stream.sink.clone_from(sink);
            }
            if let Some(sealed) = &update.sealed_authorization {
                stream.sealed_authorization.clone_from(sealed);
            }
            if let Some(filters) = &update.filters {
                stream.filters.clone_from(filters);
            }
            if let Some(is_priority) = update.is_priority {
                stream.is_priority = is_priority;
            }
            stream.updated_at = now;
            sqlx::query(
                "UPDATE log_streams SET name = $3, status = $4, sink = $5, \
                 sealed_authorization = $6, filters = $7, is_priority = $8, failures = $9, \
                 last_error = $10, next_attempt_at = $11, updated_at = $12 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant)
            .bind(id)
            .bind(&stream.name)
            .bind(&stream.status)
            .bind(to_json(&stream.sink))
            .bind(&stream.sealed_authorization)
            .bind(to_json(&stream.filters))
            .bind(stream.is_priority)
            .bind(stream.failures)
            .bind(&stream.last_error)
            .bind(stream.next_attempt_at)
            .bind(stream.updated_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(stream)
        })
    }

    pub async fn delete_log_stream(&self, id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let gone = sqlx::query("DELETE FROM log_streams WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected();
            if gone == 0 {
                return Err(StoreError::NotFound("log stream"));
            }
            Ok(())
        })
    }

    /// Claims the stream for `owner` until `lease_until` (milliseconds) if it is active,
    /// due (`next_attempt_at` passed) and nobody holds it: one conditional `UPDATE`, so of
    /// several nodes one wins. The stream as claimed, or `None`.
    pub async fn claim_log_stream(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<LogStream>> {
        each!(self, |pool| {
            sqlx::query(concat!(
                "UPDATE log_streams SET lease_owner = $3, lease_until = $5 \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'active' \
                 AND next_attempt_at <= $4 AND lease_until < $4 RETURNING ",
                stream_columns!()
            ))
            .bind(self.tenant)
            .bind(id)
            .bind(owner)
            .bind(now)
            .bind(lease_until)
            .fetch_optional(pool)
            .await?
            .map(|row| stream_from_row(&row))
            .transpose()
        })
    }

    /// Ends `owner`'s lease after a delivery up to `cursor` (or with nothing to deliver):
    /// the cursor moves forward only, the failures are forgotten. `false` if the lease was
    /// no longer `owner`'s (it ran out, the stream was deleted).
    pub async fn log_stream_delivered(
        &self,
        id: &str,
        owner: &str,
        cursor: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let changed = sqlx::query(
                "UPDATE log_streams SET cursor_log_id = CASE WHEN cursor_log_id < $4 THEN $4 \
                 ELSE cursor_log_id END, failures = 0, last_error = NULL, next_attempt_at = 0, \
                 lease_owner = NULL, lease_until = 0 \
                 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3",
            )
            .bind(self.tenant)
            .bind(id)
            .bind(owner)
            .bind(cursor)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(changed == 1)
        })
    }

    /// Ends `owner`'s lease after a failed delivery: one more consecutive failure, `error`
    /// kept, tried again at `next_attempt_at`; the stream `suspended` when the failures
    /// reach `suspend_after`. The cursor stays. Returns the failures counted, or `None`
    /// if the lease was no longer `owner`'s.
    pub async fn log_stream_failed(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        next_attempt_at: i64,
        suspend_after: i64,
    ) -> StoreResult<Option<i64>> {
        each!(self, |pool| {
            let row = sqlx::query(
                "UPDATE log_streams SET failures = failures + 1, last_error = $4, \
                 next_attempt_at = $5, status = CASE WHEN failures + 1 >= $6 \
                 AND status = 'active' THEN 'suspended' ELSE status END, \
                 lease_owner = NULL, lease_until = 0 \
                 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 RETURNING failures",
            )
            .bind(self.tenant)
            .bind(id)
            .bind(owner)
            .bind(error)
            .bind(next_attempt_at)
            .bind(suspend_after)
            .fetch_optional(pool)
            .await?;
            row.map(|row| row.try_get("failures").map_err(StoreError::from))
                .transpose()
        })
    }
}
