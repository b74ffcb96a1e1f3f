//! Housekeeping: expired rows go in batches.

use tessera_core::SESSION_EXPIRED;

use super::Store;
use super::logout_notices::{Ended, queue_for_ended};
use crate::StoreResult;
use crate::backend::{BeginWrite as _, Fetch};
use crate::lists::{Bind, Sql, bound_query};
use crate::records::PurgeCounts;

/// How many rows one purge statement deletes, so a purge never holds the write lock long.
pub const PURGE_BATCH: i64 = 1000;

/// Sessions past their stored end (idle, or absolute as the lifetime was when last used).
const EXPIRED: &str = "expires_at <= ?";

/// Sessions signed in at or before an instant (index `sessions_signed_in`). Not filtered
/// by tenant, as no purge is: a database holds one tenant (`DEFAULT_TENANT`), and a
/// `tenant_id` term would have the planners take a `tenant_id` index instead.
pub(super) const SIGNED_IN_BY: &str = "auth_time <= ?";

/// Batches one purge deletes from a table at most: a table that filled faster than one
/// batch a purge (a flood of sign-in attempts from many networks, each its own throttle
/// window) is emptied within a few purges, while no purge runs for long.
const PURGE_BATCHES: u64 = 20;

impl Store {
    /// Deletes expired rows, `PURGE_BATCH` at a time and at most `PURGE_BATCHES` batches
    /// per table per call, through the expiry indexes. Consumed codes are kept until they expire so a replay is still recognised.
    pub async fn purge_expired(&self, now: i64) -> StoreResult<PurgeCounts> {
        // Sessions before the records of their applications, which end with them: a
        // session's notices are queued from those records.
        let mut counts = PurgeCounts {
            sessions: self.purge_sessions(EXPIRED, &[Bind::Int(now)], now).await?,
            ..PurgeCounts::default()
        };
        let mut families = 0;
        let mut tokens = 0;
        // Families past their absolute end take their tokens with them (ON DELETE CASCADE);
        // tokens idle past their own end go one by one.
        for (table, expiry, slot) in [
            ("authorization_codes", "expires_at", &mut counts.codes),
            ("login_transactions", "expires_at", &mut counts.transactions),
            ("opaque_tokens", "expires_at", &mut counts.opaque_tokens),
            ("refresh_token_families", "expires_at", &mut families),
            ("refresh_tokens", "idle_expires_at", &mut tokens),
            (
                "password_reset_codes",
                "expires_at",
                &mut counts.reset_codes,
            ),
            (
                "email_verification_tickets",
                "expires_at",
                &mut counts.verification_tickets,
            ),
            ("unblock_tickets", "expires_at", &mut counts.unblock_tickets),
            ("admin_sessions", "expires_at", &mut counts.admin_sessions),
            ("jobs", "expires_at", &mut counts.jobs),
            ("pushed_requests", "expires_at", &mut counts.pushed_requests),
            (
                "remembered_browsers",
                "expires_at",
                &mut counts.remembered_browsers,
            ),
            ("device_codes", "expires_at", &mut counts.device_codes),
            ("session_clients", "expires_at", &mut counts.session_clients),
            ("mfa_tokens", "expires_at", &mut counts.mfa_tokens),
            (
                "client_assertion_jtis",
                "expires_at",
                &mut counts.client_assertions,
            ),
            (
                "throttle_windows",
                "expires_at",
                &mut counts.throttle_windows,
            ),
            (
                "upstream_logout_jtis",
                "expires_at",
                &mut counts.upstream_logout_tokens,
            ),
        ] {
            // Table and column names come from the fixed list above, never from input.
            *slot = self
                .delete_in_batches(table, &format!("{expiry} <= $1"), &[now])
                .await?;
        }
        counts.refresh_tokens = families + tokens;
        Ok(counts)
    }

    /// Ends the sessions signed in at or before `signed_in_by` — those the tenant's
    /// absolute lifetime, lowered since they began, has ended though their stored end is
    /// later — as the purge ends expired ones: their applications are told
    /// `session-expired`. The sessions ended.
    pub async fn purge_sessions_signed_in_by(
        &self,
        signed_in_by: i64,
        now: i64,
    ) -> StoreResult<u64> {
        self.purge_sessions(SIGNED_IN_BY, &[Bind::Int(signed_in_by)], now)
            .await
    }

    /// Sessions go a batch at a time as the other tables' rows do — those `filter` picks
    /// (`?` stand for `binds`) — each batch queuing, in its transaction, a
    /// `session-expired` notice for every application its sessions were used with (OIDC
    /// Back-Channel Logout): the rows deleted are the ones noticed, whatever another node
    /// does meanwhile.
    async fn purge_sessions(&self, filter: &str, binds: &[Bind], now: i64) -> StoreResult<u64> {
        let mut deleted = 0;
        for _ in 0..PURGE_BATCHES {
            let batch = each!(self, |pool, pg| {
                let (head, tail) = if pg {
                    (
                        "DELETE FROM sessions WHERE ctid = ANY(ARRAY(SELECT ctid FROM sessions WHERE ",
                        ")) RETURNING tenant_id, sid, user_id, metadata",
                    )
                } else {
                    (
                        "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE ",
                        ") RETURNING tenant_id, sid, user_id, metadata",
                    )
                };
                let mut sql = Sql::new(head);
                sql.push(filter, binds.iter().cloned());
                sql.push(" LIMIT ?", [Bind::Int(PURGE_BATCH)]);
                sql.push(tail, []);
                let mut tx = pool.begin_write(None).await?;
                let rows = bound_query!(&sql).fetch_all(&mut *tx).await?;
                let ended = rows
                    .iter()
                    .map(|row| {
                        let row: &dyn Fetch = row;
                        Ok((
                            row.col("tenant_id")?,
                            row.col("sid")?,
                            row.col("user_id")?,
                            row.opt_text("metadata")?,
                        ))
                    })
                    .collect::<StoreResult<Vec<Ended>>>()?;
                if !ended.is_empty() {
                    let queue = queue_for_ended(&ended, SESSION_EXPIRED, now);
                    bound_query!(&queue).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(ended.len() as u64)
            })?;
            deleted += batch;
            if batch < PURGE_BATCH as u64 {
                break;
            }
        }
        Ok(deleted)
    }

    /// Forgets failed-login counts of (email, address) pairs that never reached `lockout`
    /// and saw no failure since `before`: a partial count from long ago says nothing (as
    /// Keycloak's failure reset time), and guesses at made-up addresses would otherwise
    /// leave a row each for good. Pairs at the lockout stay until a reset or an unblock.
    pub async fn forget_stale_login_failures(&self, before: i64, lockout: i64) -> StoreResult<u64> {
        self.delete_in_batches(
            "login_failures",
            "updated_at <= $1 AND failures < $2",
            &[before, lockout],
        )
        .await
    }

    /// Deletes the rows of `table` that `filter` picks (`$1`… are `binds`), `PURGE_BATCH` at
    /// a time, at most `PURGE_BATCHES` batches. `table` and `filter` are this module's own
    /// text, never input. PostgreSQL has no DELETE … LIMIT: a batch is picked by row address
    /// (ctid), which it fetches directly (a TID scan).
    async fn delete_in_batches(
        &self,
        table: &str,
        filter: &str,
        binds: &[i64],
    ) -> StoreResult<u64> {
        let limit = format!("${}", binds.len() + 1);
        let mut deleted = 0;
        for _ in 0..PURGE_BATCHES {
            let batch = each!(self, |pool, pg| {
                let sql = if pg {
                    format!(
                        "DELETE FROM {table} WHERE ctid = ANY(ARRAY(\
                         SELECT ctid FROM {table} WHERE {filter} LIMIT {limit}))"
                    )
                } else {
                    format!(
                        "DELETE FROM {table} WHERE rowid IN (\
                         SELECT rowid FROM {table} WHERE {filter} LIMIT {limit})"
                    )
                };
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for bind in binds {
                    query = query.bind(*bind);
                }
                Ok(query.bind(PURGE_BATCH).execute(pool).await?.rows_affected())
            })?;
            deleted += batch;
            if batch < PURGE_BATCH as u64 {
                break;
            }
        }
        Ok(deleted)
    }
}
