//! Authorization codes: single redemption, and replays.

use tessera_core::User;

use super::Store;
use super::users::user_from_row;
use crate::StoreResult;
use crate::backend::{BeginWrite as _, Col, Fetch};
use crate::records::{CodeRecord, CodeRedemption, NewCode, SessionClient};

/// A code: `$1` tenant, `$2` its hash, `$3` client, `$4` user, `$5` redirect URI, `$6`
/// grant, `$7` created, `$8` expires.
macro_rules! insert_code {
    () => {
        "INSERT INTO authorization_codes (tenant_id, code_hash, client_id, user_id, \
         redirect_uri, \"grant\", created_at, expires_at, consumed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)"
    };
}

const INSERT_CODE: &str = insert_code!();

/// A session's application, once: a later code of the same pair keeps the first record
/// (a use of the session moves its end: `sessions.rs`).
const RECORD_SESSION_CLIENT: &str = "INSERT INTO session_clients (tenant_id, sid, client_id, expires_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, sid, client_id) DO NOTHING";

/// [`INSERT_CODE`] and [`RECORD_SESSION_CLIENT`] as one string (SQLite's one round trip):
/// `$9` the session's id, `$10` the record's end.
const INSERT_CODE_AND_SESSION_CLIENT: &str = concat!(
    insert_code!(),
    "; INSERT INTO session_clients (tenant_id, sid, client_id, expires_at) \
     VALUES ($1, $9, $3, $10) ON CONFLICT (tenant_id, sid, client_id) DO NOTHING"
);

fn code_from_row(row: &impl Fetch) -> StoreResult<CodeRecord> {
    Ok(CodeRecord {
        client_id: row.col("client_id")?,
        user_id: row.col("user_id")?,
        redirect_uri: row.col("redirect_uri")?,
        grant: row.col("grant")?,
        expires_at: row.col("expires_at")?,
    })
}

impl Store {
    /// Stores a code; with a `session_client`, records in the same transaction that the
    /// application was used with the session (written once per session and application).
    pub async fn create_code(&self, code: &NewCode) -> StoreResult<()> {
        each!(self, |pool, pg| {
            let insert = |sql| {
                sqlx::query(sql)
                    .bind(self.tenant)
                    .bind(&code.code_hash)
                    .bind(&code.client_id)
                    .bind(&code.user_id)
                    .bind(&code.redirect_uri)
                    .bind(&code.grant)
                    .bind(code.created_at)
                    .bind(code.expires_at)
            };
            let Some(session) = &code.session_client else {
                insert(INSERT_CODE).execute(pool).await?;
                return Ok(());
            };
            if !pg {
                // Both statements in one round trip to the writer.
                pool.write_together(
                    insert(INSERT_CODE_AND_SESSION_CLIENT)
                        .bind(&session.sid)
                        .bind(session.expires_at),
                )
                .await?;
                return Ok(());
            }
            let mut tx = pool.begin_write(None).await?;
            insert(INSERT_CODE).execute(&mut *tx).await?;
            sqlx::query(RECORD_SESSION_CLIENT)
                .bind(self.tenant)
                .bind(&session.sid)
                .bind(&code.client_id)
                .bind(session.expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records that an application was used with a session (an /authorize answered without
    /// a code, as `id_token` alone).
    pub async fn record_session_client(
        &self,
        client_id: &str,
        session: &SessionClient,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(RECORD_SESSION_CLIENT)
                .bind(self.tenant)
                .bind(&session.sid)
                .bind(client_id)
                .bind(session.expires_at)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Marks a code consumed. Exactly one of any number of concurrent callers gets
    /// `Redeemed`: the `consumed_at IS NULL` condition and the update are one statement.
    pub async fn redeem_code(&self, code_hash: &[u8], now: i64) -> StoreResult<CodeRedemption> {
        let won = each!(self, |pool| {
            let row = sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $1 WHERE tenant_id = $2 AND code_hash = $3 AND consumed_at IS NULL \
             RETURNING client_id, user_id, redirect_uri, \"grant\", expires_at",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(code_hash)
        .fetch_optional(pool)
        .await?;
            row.map(|row| code_from_row(&row)).transpose()
        })?;
        match won {
            Some(record) => Ok(CodeRedemption::Redeemed(record)),
            None => self.not_won(code_hash).await,
        }
    }

    /// What a redemption that did not win meets: a code spent before (a replay), or none.
    async fn not_won(&self, code_hash: &[u8]) -> StoreResult<CodeRedemption> {
        each!(self, |pool| {
            let used = sqlx::query(
            "SELECT client_id, user_id, redirect_uri, \"grant\", expires_at FROM authorization_codes WHERE tenant_id = $1 AND code_hash = $2",
        )
        .bind(self.tenant)
        .bind(code_hash)
        .fetch_optional(pool)
        .await?;
            match used {
                Some(row) => Ok(CodeRedemption::AlreadyUsed(code_from_row(&row)?)),
                None => Ok(CodeRedemption::NotFound),
            }
        })
    }

    /// [`Store::redeem_code`], and the code's user when this caller won it (`None`: the user
    /// no longer exists), in one round trip. PostgreSQL: the redemption is a data-modifying
    /// `WITH` joined to the user. SQLite: two statements sent together, the redemption
    /// (`RETURNING` the code) then the user's row when it won — read on the writer's
    /// connection, where the redemption already is, rather than in a second round trip to
    /// a reading one.
    pub async fn redeem_code_with_user(
        &self,
        code_hash: &[u8],
        now: i64,
    ) -> StoreResult<(CodeRedemption, Option<User>)> {
        let won = each!(self, |pool, pg| {
            if !pg {
                let rows = sqlx::query(concat!(
                    "UPDATE authorization_codes SET consumed_at = $1 \
                     WHERE tenant_id = $2 AND code_hash = $3 AND consumed_at IS NULL \
                     RETURNING client_id, user_id, redirect_uri, \"grant\", expires_at; \
                     SELECT ",
                    user_columns!(),
                    " FROM users WHERE changes() = 1 AND tenant_id = $2 AND user_id = \
                     (SELECT user_id FROM authorization_codes \
                     WHERE tenant_id = $2 AND code_hash = $3)"
                ))
                .bind(now)
                .bind(self.tenant)
                .bind(code_hash)
                .fetch_all(pool)
                .await?;
                let mut rows = rows.iter();
                let Some(code) = rows.next() else {
                    return Ok(None);
                };
                let user = rows.next().map(user_from_row).transpose()?;
                return Ok(Some((code_from_row(code)?, user)));
            }
            // The code's columns a user also has are renamed, so `user_columns!` reads the
            // user's own; a user gone leaves them NULL (the code is still spent).
            let row = sqlx::query(concat!(
                "WITH won AS (UPDATE authorization_codes SET consumed_at = $1 \
                 WHERE tenant_id = $2 AND code_hash = $3 AND consumed_at IS NULL \
                 RETURNING client_id, user_id AS code_user_id, redirect_uri, \"grant\", \
                 expires_at AS code_expires_at) \
                 SELECT won.*, ",
                user_columns!(),
                " FROM won LEFT JOIN users \
                 ON users.tenant_id = $2 AND users.user_id = won.code_user_id"
            ))
            .bind(now)
            .bind(self.tenant)
            .bind(code_hash)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let record = CodeRecord {
                client_id: row.col("client_id")?,
                user_id: row.col("code_user_id")?,
                redirect_uri: row.col("redirect_uri")?,
                grant: row.col("grant")?,
                expires_at: row.col("code_expires_at")?,
            };
            let user_id: Option<String> = row.col("user_id")?;
            let user = user_id.map(|_| user_from_row(&row)).transpose()?;
            Ok(Some((record, user)))
        })?;
        match won {
            Some((record, user)) => Ok((CodeRedemption::Redeemed(record), user)),
            None => Ok((self.not_won(code_hash).await?, None)),
        }
    }

    /// Records that a consumed code was presented again by its client (a replay). Committed
    /// before the caller revokes what the code issued; see `code_was_replayed`.
    pub async fn mark_code_replayed(&self, code_hash: &[u8], now: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $1) WHERE tenant_id = $2 AND code_hash = $3",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(code_hash)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// Whether a replay of the code was recorded. The redemption's winner asks after its
    /// tokens are committed: either it sees the replay, or the replay's revocation (which
    /// runs after the mark is committed) sees its tokens.
    pub async fn code_was_replayed(&self, code_hash: &[u8]) -> StoreResult<bool> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT replayed_at FROM authorization_codes WHERE tenant_id = $1 AND code_hash = $2 AND replayed_at IS NOT NULL",
        )
        .bind(self.tenant)
        .bind(code_hash)
        .fetch_optional(pool)
        .await?;
            Ok(row.is_some())
        })
    }
}
