//! Login sessions and login transactions.

use std::collections::BTreeMap;

use sqlx::Row;
use tessera_core::User;

use super::logout_notices::{QUEUE_FOR_COOKIE, QUEUE_FOR_SID, queue_for_sessions};
use super::users::user_from_row;
use super::{Store, metadata_column, metadata_from};
use crate::StoreResult;
use crate::backend::{BeginWrite, Fetch};
use crate::lists::{Bind, Checkpoint, CheckpointPage, Sql, bound_query};
use crate::records::{
    SessionDetails, SessionOrigin, SessionRecord, TransactionRecord, UpstreamLogout,
};
use tessera_core::{IDP_LOGOUT, RP_LOGOUT, SESSION_REVOKED};

/// A session's use: `$1` tenant, `$2` its cookie's hash, `$3` its end when that is
/// later — but never past the end an action allowed (`ends_by`, which a shortening keeps
/// at or after `expires_at`) —, `$4` now, `$5` and `$6` where from.
macro_rules! record_use {
    () => {
        "UPDATE sessions SET \
         expires_at = CASE WHEN expires_at >= $3 THEN expires_at \
         WHEN ends_by IS NOT NULL AND ends_by < $3 THEN ends_by ELSE $3 END, \
         last_interacted_at = $4, last_ip = $5, last_user_agent = $6 \
         WHERE tenant_id = $1 AND id_hash = $2"
    };
}

/// The records of a session's applications (`session_clients`) live at least as long as
/// the session: a session extended past the end they were written with — the tenant's
/// absolute lifetime was raised — still tells them when it ends. SQLite: after
/// [`record_use!`], by the session's cookie hash (`$1` tenant, `$2` the hash), in one
/// transaction sent in one round trip.
const RECORD_USE_AND_KEEP_CLIENTS: &str = concat!(
    record_use!(),
    "; UPDATE session_clients SET expires_at = s.expires_at FROM sessions s \
     WHERE s.tenant_id = $1 AND s.id_hash = $2 AND session_clients.tenant_id = s.tenant_id \
     AND session_clients.sid = s.sid AND session_clients.expires_at < s.expires_at"
);

/// The same on PostgreSQL, as one statement: the use's `RETURNING` feeds the records'.
const RECORD_USE_AND_KEEP_CLIENTS_PG: &str = concat!(
    "WITH s AS (",
    record_use!(),
    " RETURNING tenant_id, sid, expires_at) \
     UPDATE session_clients SET expires_at = s.expires_at FROM s \
     WHERE session_clients.tenant_id = s.tenant_id AND session_clients.sid = s.sid \
     AND session_clients.expires_at < s.expires_at"
);

/// A session record from a row that names its columns as `sessions` does, or, `prefixed`,
/// `session_…` where a user's column has the same name.
fn session_from_row(row: &(impl Fetch + ?Sized), prefixed: bool) -> StoreResult<SessionRecord> {
    let name =
        |column: &'static str, renamed: &'static str| if prefixed { renamed } else { column };
    Ok(SessionRecord {
        sid: row.col("sid")?,
        user_id: row.col(name("user_id", "session_user_id"))?,
        connection: row.col(name("connection", "session_connection"))?,
        amr: row
            .opt_text("amr")?
            .and_then(|amr| serde_json::from_str(&amr).ok())
            .unwrap_or_default(),
        auth_time: row.col("auth_time")?,
        expires_at: row.col(name("expires_at", "session_expires_at"))?,
        last_interacted_at: row.col("last_interacted_at")?,
        upstream_sid: row.col("upstream_sid")?,
        ends_by: row.col("ends_by")?,
    })
}

macro_rules! session_details_select {
    () => {
        "SELECT s.sid, s.user_id, s.connection, s.amr, s.auth_time, s.expires_at, s.created_at, \
         s.initial_ip, s.initial_user_agent, s.last_ip, s.last_user_agent, s.last_interacted_at, \
         s.upstream_sid, s.ends_by, s.metadata"
    };
}

pub(super) const SESSION_DETAILS_SELECT: &str = session_details_select!();

/// A user's page of sessions is ordered by this (index `sessions_user_sid`).
pub(super) const SESSION_DETAILS_KEY: &str = "s.sid";

fn details_from_row(row: &dyn Fetch) -> StoreResult<SessionDetails> {
    let origin = |ip: &str, user_agent: &str| -> StoreResult<SessionOrigin> {
        Ok(SessionOrigin {
            ip: row.col(ip)?,
            user_agent: row.col(user_agent)?,
        })
    };
    Ok(SessionDetails {
        session: session_from_row(row, false)?,
        created_at: row.col("created_at")?,
        initial: origin("initial_ip", "initial_user_agent")?,
        last: origin("last_ip", "last_user_agent")?,
        metadata: metadata_from(row.opt_text("metadata")?),
    })
}

impl Store {
    /// Records a new session, started from `origin`.
    pub async fn create_session(
        &self,
        id_hash: &[u8],
        record: &SessionRecord,
        origin: &SessionOrigin,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (tenant_id, id_hash, sid, user_id, auth_time, created_at, \
                 expires_at, connection, amr, initial_ip, initial_user_agent, last_ip, \
                 last_user_agent, last_interacted_at, upstream_sid) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10, $11, $6, $12)",
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
            .bind(&origin.ip)
            .bind(&origin.user_agent)
            .bind(&record.upstream_sid)
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
            "SELECT sid, user_id, connection, amr, auth_time, expires_at, last_interacted_at, upstream_sid, \
             ends_by FROM sessions \
             WHERE tenant_id = $1 AND id_hash = $2 AND expires_at > $3",
        )
        .bind(self.tenant)
        .bind(id_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            row.map(|row| session_from_row(&row, false)).transpose()
        })
    }

    /// A live session and its user, in one read: signing in silently needs both, and
    /// each read is a round trip. (A session goes with its user.)
    pub async fn find_session_with_user(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<(SessionRecord, User)>> {
        each!(self, |pool| {
            // The session's columns a user also has are renamed, so `user_columns!` reads
            // the user's own.
            let row = sqlx::query(concat!(
                "SELECT s.*, ",
                user_columns!(),
                " FROM (SELECT sid, user_id AS session_user_id, connection AS session_connection, \
                 amr, auth_time, expires_at AS session_expires_at, last_interacted_at, upstream_sid, \
                 ends_by FROM sessions \
                 WHERE tenant_id = $1 AND id_hash = $2 AND expires_at > $3) s \
                 JOIN users ON users.tenant_id = $1 AND users.user_id = s.session_user_id"
            ))
            .bind(self.tenant)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.map(|row| Ok((session_from_row(&row, true)?, user_from_row(&row)?)))
                .transpose()
        })
    }

    /// Records a use of a session: at `now`, from `origin`, and its end moved to
    /// `expires_at` when that is later (a session used within its idle lifetime lives on;
    /// a concurrent use that extended it further wins).
    pub async fn record_session_use(
        &self,
        id_hash: &[u8],
        expires_at: i64,
        origin: &SessionOrigin,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool, pg| {
            let query = sqlx::query(if pg {
                RECORD_USE_AND_KEEP_CLIENTS_PG
            } else {
                RECORD_USE_AND_KEEP_CLIENTS
            })
            .bind(self.tenant)
            .bind(id_hash)
            .bind(expires_at)
            .bind(now)
            .bind(&origin.ip)
            .bind(&origin.user_agent);
            if pg {
                query.execute(pool).await?;
            } else {
                pool.write_together(query).await?;
            }
            Ok(())
        })
    }

    /// Ends the browser's session (it logged out: `rp-logout`), queuing its logout
    /// notices.
    pub async fn delete_session(&self, id_hash: &[u8], now: i64) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(QUEUE_FOR_COOKIE)
                .bind(self.tenant)
                .bind(RP_LOGOUT)
                .bind(now)
                .bind(id_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND id_hash = $2")
                .bind(self.tenant)
                .bind(id_hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The live sessions of a user — not expired at `now`, signed in after
    /// `signed_in_after` (the tenant's absolute lifetime may have been lowered since) — by
    /// checkpoint (`from` = a session id, the `sid` claim).
    pub async fn sessions_of_user(
        &self,
        user_id: &str,
        (now, signed_in_after): (i64, i64),
        checkpoint: Checkpoint<'_>,
    ) -> StoreResult<CheckpointPage<SessionDetails>> {
        self.checkpoint_of(
            SESSION_DETAILS_SELECT,
            self.user_sessions(user_id, (now, signed_in_after)),
            SESSION_DETAILS_KEY,
            checkpoint,
            details_from_row,
            |details: &SessionDetails| details.session.sid.clone(),
        )
        .await
    }

    /// A user's live sessions, through the `(tenant_id, user_id, sid)` index.
    pub(super) fn user_sessions(&self, user_id: &str, (now, signed_in_after): (i64, i64)) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM sessions s WHERE s.tenant_id = ? AND s.user_id = ? AND s.expires_at > ? \
             AND s.auth_time > ?",
            [
                Bind::Text(self.tenant.into()),
                Bind::Text(user_id.into()),
                Bind::Int(now),
                Bind::Int(signed_in_after),
            ],
        );
        sql
    }

    /// One live session by its id (the `sid` claim); live as in `sessions_of_user`.
    pub async fn find_session_by_sid(
        &self,
        sid: &str,
        (now, signed_in_after): (i64, i64),
    ) -> StoreResult<Option<SessionDetails>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                session_details_select!(),
                " FROM sessions s WHERE s.tenant_id = $1 AND s.sid = $2 AND s.expires_at > $3 \
                 AND s.auth_time > $4"
            ))
            .bind(self.tenant)
            .bind(sid)
            .bind(now)
            .bind(signed_in_after)
            .fetch_optional(pool)
            .await?;
            row.map(|row| details_from_row(&row)).transpose()
        })
    }

    /// Shortens a live session as a post-login action asked (`api.session.setExpiresAt`
    /// and `setIdleExpiresAt`, in seconds): it ends by `ends_by` however it is used, and
    /// at `idle_end` unless it is used before. Neither ever lengthens it — the earliest
    /// end asked holds — and an end already past leaves it expired. Whether a live
    /// session was there.
    pub async fn shorten_session(
        &self,
        sid: &str,
        (ends_by, idle_end): (Option<i64>, Option<i64>),
        now: i64,
    ) -> StoreResult<bool> {
        let end = match (ends_by, idle_end) {
            (Some(a), Some(b)) => a.min(b),
            (Some(end), None) | (None, Some(end)) => end,
            (None, None) => return Ok(true),
        };
        each!(self, |pool| {
            // `expires_at` never after `ends_by`: a use (`record_use!`) relies on it.
            let done = match ends_by {
                Some(ends_by) => sqlx::query(
                    "UPDATE sessions SET \
                     ends_by = CASE WHEN ends_by IS NOT NULL AND ends_by <= $3 THEN ends_by ELSE $3 END, \
                     expires_at = CASE WHEN expires_at <= $4 THEN expires_at ELSE $4 END \
                     WHERE tenant_id = $1 AND sid = $2 AND expires_at > $5",
                )
                .bind(self.tenant)
                .bind(sid)
                .bind(ends_by)
                .bind(end)
                .bind(now),
                None => sqlx::query(
                    "UPDATE sessions SET \
                     expires_at = CASE WHEN expires_at <= $3 THEN expires_at ELSE $3 END \
                     WHERE tenant_id = $1 AND sid = $2 AND expires_at > $4",
                )
                .bind(self.tenant)
                .bind(sid)
                .bind(end)
                .bind(now),
            }
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Replaces a live session's metadata (`api.session.setMetadata`, `PATCH
    /// /api/v2/sessions/{id}`; the callers check its bounds); empty removes it. Live as in
    /// [`Self::find_session_by_sid`]: not expired, signed in after `signed_in_after` (the
    /// tenant's absolute lifetime). Whether such a session was there.
    pub async fn set_session_metadata(
        &self,
        sid: &str,
        metadata: &BTreeMap<String, String>,
        (now, signed_in_after): (i64, i64),
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let done = sqlx::query(
                "UPDATE sessions SET metadata = $3 \
                 WHERE tenant_id = $1 AND sid = $2 AND expires_at > $4 AND auth_time > $5",
            )
            .bind(self.tenant)
            .bind(sid)
            .bind(metadata_column(metadata))
            .bind(now)
            .bind(signed_in_after)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Ends one session by its id (an administrator: `session-revoked`): the browser
    /// holding it signs in afresh. With `with_refresh_tokens`, the refresh tokens issued
    /// in it are revoked in the same transaction. Whether a live session was there to end.
    pub async fn end_session(
        &self,
        sid: &str,
        with_refresh_tokens: bool,
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(QUEUE_FOR_SID)
                .bind(self.tenant)
                .bind(SESSION_REVOKED)
                .bind(now)
                .bind(sid)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query(
                "DELETE FROM sessions WHERE tenant_id = $1 AND sid = $2 AND expires_at > $3",
            )
            .bind(self.tenant)
            .bind(sid)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            if with_refresh_tokens {
                sqlx::query(
                    "UPDATE refresh_token_families SET revoked_at = $1 \
                     WHERE tenant_id = $2 AND sid = $3 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(self.tenant)
                .bind(sid)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Ends every login session of a user (an administrator: `session-revoked`; their
    /// refresh tokens live on: see `end_user_sessions` for both).
    pub async fn delete_sessions_of_user(&self, user_id: &str, now: i64) -> StoreResult<u64> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let ended = end_sessions_of_user!(self, tx, user_id, SESSION_REVOKED, now);
            tx.commit().await?;
            Ok(ended)
        })
    }

    /// Ends the sessions an upstream provider's logout token names (`idp-logout`), as
    /// `/v2/logout` ends one: their refresh tokens revoked and their notices queued, in one
    /// transaction. The sessions ended.
    pub async fn end_upstream_sessions(
        &self,
        connection: &str,
        named: &UpstreamLogout<'_>,
        now: i64,
    ) -> StoreResult<u64> {
        let (condition, binds) = self.upstream_sessions(connection, named);
        let mut revoke = Sql::default();
        revoke.push(
            "UPDATE refresh_token_families SET revoked_at = ? WHERE tenant_id = ? \
             AND revoked_at IS NULL AND sid IN (SELECT s.sid FROM sessions s WHERE ",
            [Bind::Int(now), Bind::Text(self.tenant.into())],
        );
        revoke.push(&condition, binds.iter().cloned());
        revoke.push(")", []);
        let queue = queue_for_sessions(&condition, &binds, IDP_LOGOUT, now);
        let mut delete = Sql::new("DELETE FROM sessions AS s WHERE ");
        delete.push(&condition, binds);
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            bound_query!(&revoke).execute(&mut *tx).await?;
            bound_query!(&queue).execute(&mut *tx).await?;
            let ended = bound_query!(&delete)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(ended)
        })
    }

    /// The sessions (`sessions s`) a logout token names, as a condition whose `?` stand for
    /// the values returned: with the provider's session id, the sessions signed in through
    /// `connection` during that session (only the identity's user's, when the token names
    /// one too; index `sessions_upstream_sid`); with only an identity
    /// (`strategy|connection|sub`), every session its user signed in through `connection`
    /// (index `sessions_user_sid`). A linked identity's sessions are its primary user's.
    pub(super) fn upstream_sessions(
        &self,
        connection: &str,
        named: &UpstreamLogout<'_>,
    ) -> (String, Vec<Bind>) {
        let mut condition = String::from("s.tenant_id = ? AND s.connection = ?");
        let mut binds = vec![
            Bind::Text(self.tenant.into()),
            Bind::Text(connection.into()),
        ];
        let identity = match *named {
            UpstreamLogout::Session { sid, identity } => {
                condition.push_str(" AND s.upstream_sid = ?");
                binds.push(Bind::Text(sid.into()));
                identity
            }
            UpstreamLogout::User { identity } => Some(identity),
        };
        if let Some(identity) = identity {
            condition.push_str(
                " AND s.user_id IN (?, (SELECT primary_user_id FROM linked_identities \
                 WHERE tenant_id = ? AND user_id = ?))",
            );
            binds.extend([
                Bind::Text(identity.into()),
                Bind::Text(self.tenant.into()),
                Bind::Text(identity.into()),
            ]);
        }
        (condition, binds)
    }

    /// Records that a logout token with this `jti` was accepted from the connection's
    /// provider, until `expires_at`: `false` when one was already (on any node).
    pub async fn use_upstream_logout_token(
        &self,
        connection_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> StoreResult<bool> {
        self.take_jti(
            "INSERT INTO upstream_logout_jtis (tenant_id, connection_id, jti, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            connection_id,
            jti,
            expires_at,
        )
        .await
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
