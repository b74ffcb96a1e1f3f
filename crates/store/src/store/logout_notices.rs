//! OIDC Back-Channel Logout's outbox: when sessions end, a notice per application they
//! were used with (`session_clients`) is written in the same transaction; the server's
//! delivery task claims, posts and deletes them.

use super::{Store, metadata_from};
use crate::StoreResult;
use crate::backend::Fetch;
use crate::lists::{Bind, Sql, bound_query};
use crate::records::LogoutNotice;

/// `INSERT … SELECT` of the notices for the sessions `s` that `$condition` picks: binds
/// `$1` tenant, `$2` initiator, `$3` now, `$4` the condition's value. Run before the
/// sessions' `DELETE`, in its transaction: a session ends with its notices queued or not
/// at all.
macro_rules! queue_notices {
    ($condition:literal) => {
        concat!(
            "INSERT INTO logout_notices (tenant_id, client_id, user_id, sid, initiator, \
             created_at, next_attempt_at, session_metadata) \
             SELECT s.tenant_id, sc.client_id, s.user_id, s.sid, $2, $3, $3, s.metadata \
             FROM sessions s \
             JOIN session_clients sc ON sc.tenant_id = s.tenant_id AND sc.sid = s.sid \
             WHERE s.tenant_id = $1 AND ",
            $condition
        )
    };
}

/// The browser's session, by its cookie's hash.
pub(super) const QUEUE_FOR_COOKIE: &str = queue_notices!("s.id_hash = $4");
/// A live session, by its id (the `sid` claim).
pub(super) const QUEUE_FOR_SID: &str = queue_notices!("s.sid = $4 AND s.expires_at > $3");
/// Every session of a user.
pub(super) const QUEUE_FOR_USER: &str = queue_notices!("s.user_id = $4");
/// In the write transaction `$tx` of `$store`: queues the notices of every session of
/// the user `$user` (ended by `$initiator` at `$now`), then ends them. The sessions ended.
macro_rules! end_sessions_of_user {
    ($store:expr, $tx:expr, $user:expr, $initiator:expr, $now:expr) => {{
        sqlx::query($crate::store::logout_notices::QUEUE_FOR_USER)
            .bind($store.tenant)
            .bind($initiator)
            .bind($now)
            .bind($user)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
            .bind($store.tenant)
            .bind($user)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
    }};
}

/// The notices of the sessions `s` that `condition` picks (on `sessions s`, its `?`
/// standing for `binds`): `queue_notices!` for a condition assembled at run time.
pub(super) fn queue_for_sessions(
    condition: &str,
    binds: &[Bind],
    initiator: &str,
    now: i64,
) -> Sql {
    let mut sql = Sql::default();
    sql.push(
        "INSERT INTO logout_notices (tenant_id, client_id, user_id, sid, initiator, \
         created_at, next_attempt_at, session_metadata) \
         SELECT s.tenant_id, sc.client_id, s.user_id, s.sid, ?, ?, ?, s.metadata FROM sessions s \
         JOIN session_clients sc ON sc.tenant_id = s.tenant_id AND sc.sid = s.sid WHERE ",
        [Bind::Text(initiator.into()), Bind::Int(now), Bind::Int(now)],
    );
    sql.push(condition, binds.iter().cloned());
    sql
}

/// A session just deleted: its tenant, id, user and metadata (as its column kept it).
pub(super) type Ended = (String, String, String, Option<String>);

/// The notices of sessions just deleted (at most a purge batch): one per application each
/// was used with, ended by `initiator` at `now`.
pub(super) fn queue_for_ended(ended: &[Ended], initiator: &str, now: i64) -> Sql {
    let mut sql = Sql::new(
        "INSERT INTO logout_notices (tenant_id, client_id, user_id, sid, initiator, \
         created_at, next_attempt_at, session_metadata)",
    );
    sql.push(
        " SELECT sc.tenant_id, sc.client_id, v.column3, sc.sid, ?, ?, ?, v.column4 FROM (VALUES ",
        [Bind::Text(initiator.into()), Bind::Int(now), Bind::Int(now)],
    );
    for (n, (tenant_id, sid, user_id, metadata)) in ended.iter().enumerate() {
        // Typed: PostgreSQL cannot tell a column of NULLs' type.
        sql.push(
            if n == 0 {
                "(?, ?, ?, CAST(? AS TEXT))"
            } else {
                ", (?, ?, ?, CAST(? AS TEXT))"
            },
            [
                Bind::Text(tenant_id.clone()),
                Bind::Text(sid.clone()),
                Bind::Text(user_id.clone()),
                Bind::OptText(metadata.clone()),
            ],
        );
    }
    // VALUES' columns are `column1`… on both backends.
    sql.push(
        ") v JOIN session_clients sc ON sc.tenant_id = v.column1 AND sc.sid = v.column2",
        [],
    );
    sql
}

/// Notices read per poll.
const DUE_BATCH: i64 = 50;

fn notice_from_row(row: &dyn Fetch) -> StoreResult<LogoutNotice> {
    Ok(LogoutNotice {
        id: row.col("id")?,
        client_id: row.col("client_id")?,
        user_id: row.col("user_id")?,
        sid: row.col("sid")?,
        initiator: row.col("initiator")?,
        created_at: row.col("created_at")?,
        attempts: row.col("attempts")?,
        session_metadata: metadata_from(row.opt_text("session_metadata")?),
    })
}

impl Store {
    /// Notices due at `now` and claimed by no node, oldest due first (at most 50), but
    /// none of the applications in `skipping` (those a node has enough posts in flight
    /// for: their backlog must not fill the batch and starve the others).
    pub async fn due_logout_notices(
        &self,
        now: i64,
        skipping: &[String],
    ) -> StoreResult<Vec<LogoutNotice>> {
        let sql = self.due_notices_sql(now, skipping);
        each!(self, |pool| {
            let rows = bound_query!(&sql).fetch_all(pool).await?;
            rows.iter().map(|row| notice_from_row(row)).collect()
        })
    }

    /// Through the index `logout_notices_due`.
    pub(super) fn due_notices_sql(&self, now: i64, skipping: &[String]) -> Sql {
        let mut sql = Sql::new(
            "SELECT id, client_id, user_id, sid, initiator, created_at, \
             CAST(attempts AS BIGINT) AS attempts, session_metadata",
        );
        sql.push(
            " FROM logout_notices WHERE tenant_id = ? AND next_attempt_at <= ? \
             AND claimed_until <= ?",
            [
                Bind::Text(self.tenant.into()),
                Bind::Int(now),
                Bind::Int(now),
            ],
        );
        for client_id in skipping {
            sql.push(" AND client_id <> ?", [Bind::Text(client_id.clone())]);
        }
        sql.push(
            " ORDER BY next_attempt_at, id LIMIT ?",
            [Bind::Int(DUE_BATCH)],
        );
        sql
    }

    /// Claims a notice until `until`, if no node holds it at `now`: of several nodes one
    /// posts it at a time.
    pub async fn claim_logout_notice(&self, id: i64, now: i64, until: i64) -> StoreResult<bool> {
        each!(self, |pool| {
            let done = sqlx::query(
                "UPDATE logout_notices SET claimed_until = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND claimed_until <= $4",
            )
            .bind(until)
            .bind(self.tenant)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// A notice delivered, or given up.
    pub async fn delete_logout_notice(&self, id: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("DELETE FROM logout_notices WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// A failed post: counted, released, and tried again at `next_attempt_at`.
    pub async fn retry_logout_notice(&self, id: i64, next_attempt_at: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "UPDATE logout_notices SET attempts = attempts + 1, next_attempt_at = $1, \
                 claimed_until = 0 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(next_attempt_at)
            .bind(self.tenant)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
