//! Tokens kept in the database: opaque access tokens, refresh-token families and their
//! tokens (rotation, reuse, revocation).

use std::collections::BTreeMap;

use sqlx::Row;
use tessera_core::User;

use super::users::user_from_row;
use super::{Store, metadata_column, metadata_from};
use crate::backend::{BeginWrite as _, Col as _, Fetch};
use crate::lists::{Bind, Checkpoint, CheckpointPage, Sql};
use crate::records::{
    NewRefreshFamily, OpaqueTokenRecord, RefreshFamily, RefreshRotation, RefreshTiming,
    RefreshTokenRecord,
};
use crate::{StoreError, StoreResult};

/// SQLite: rotates a token that is live (not rotated, not idle past its end, its family
/// neither revoked nor past its end) and issued to client `$4`: marks it rotated, then —
/// only if that changed it (`changes()`) — adds the new token `$5` to its family. Two rows
/// changed: rotated; none: nothing was (`rotate_refresh_token` then decides why).
const ROTATE_LIVE_TOKEN: &str = "UPDATE refresh_tokens SET rotated_at = $1 \
     WHERE tenant_id = $2 AND token_hash = $3 AND rotated_at IS NULL AND idle_expires_at > $1 \
     AND EXISTS (SELECT 1 FROM refresh_token_families f WHERE f.tenant_id = $2 \
     AND f.family_id = refresh_tokens.family_id AND f.client_id = $4 AND f.revoked_at IS NULL \
     AND f.expires_at > $1); \
     INSERT INTO refresh_tokens (tenant_id, token_hash, family_id, created_at, idle_expires_at, rotated_at) \
     SELECT t.tenant_id, $5, t.family_id, $1, MIN($1 + $6, f.expires_at), NULL \
     FROM refresh_tokens t JOIN refresh_token_families f \
     ON f.tenant_id = t.tenant_id AND f.family_id = t.family_id \
     WHERE changes() = 1 AND t.tenant_id = $2 AND t.token_hash = $3";

macro_rules! rotation_select {
    () => {
        "SELECT t.rotated_at, t.idle_expires_at, f.family_id, f.client_id, f.user_id, f.\"grant\", \
         f.created_at, f.expires_at, f.revoked_at, f.metadata \
         FROM refresh_tokens t JOIN refresh_token_families f \
         ON f.tenant_id = t.tenant_id AND f.family_id = t.family_id \
         WHERE t.tenant_id = $1 AND t.token_hash = $2"
    };
}

fn family_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<RefreshFamily> {
    Ok(RefreshFamily {
        family_id: row.col("family_id")?,
        client_id: row.col("client_id")?,
        user_id: row.col("user_id")?,
        grant: row.col("grant")?,
        created_at: row.col("created_at")?,
        expires_at: row.col("expires_at")?,
        metadata: metadata_from(row.opt_text("metadata")?),
    })
}

impl Store {
    pub async fn create_opaque_token(
        &self,
        token_hash: &[u8],
        record: &OpaqueTokenRecord,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO opaque_tokens (tenant_id, token_hash, client_id, user_id, scope, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(&record.client_id)
        .bind(&record.user_id)
        .bind(&record.scope)
        .bind(now)
        .bind(record.expires_at)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    pub async fn find_opaque_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<OpaqueTokenRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT client_id, user_id, scope, expires_at FROM opaque_tokens WHERE tenant_id = $1 AND token_hash = $2 AND expires_at > $3",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            row.map(|row| {
                Ok(OpaqueTokenRecord {
                    client_id: row.try_get("client_id")?,
                    user_id: row.try_get("user_id")?,
                    scope: row.try_get("scope")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .transpose()
        })
    }

    /// Revokes the opaque tokens a user got through one client (a replayed code).
    pub async fn revoke_opaque_tokens(&self, client_id: &str, user_id: &str) -> StoreResult<u64> {
        each!(self, |pool| {
            let done = sqlx::query(
            "DELETE FROM opaque_tokens WHERE tenant_id = $1 AND client_id = $2 AND user_id = $3",
        )
        .bind(self.tenant)
        .bind(client_id)
        .bind(user_id)
        .execute(pool)
        .await?;
            Ok(done.rows_affected())
        })
    }

    // ---- refresh tokens -----------------------------------------------------------

    /// Starts a family with its first token.
    pub async fn create_refresh_family(
        &self,
        family: &NewRefreshFamily,
        token_hash: &[u8],
        idle_expires_at: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(
            "INSERT INTO refresh_token_families (tenant_id, family_id, client_id, user_id, \"grant\", code_hash, sid, \
             created_at, expires_at, revoked_at, metadata) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)",
        )
        .bind(self.tenant)
        .bind(&family.family_id)
        .bind(&family.client_id)
        .bind(&family.user_id)
        .bind(&family.grant)
        .bind(&family.code_hash)
        .bind(&family.sid)
        .bind(family.created_at)
        .bind(family.expires_at)
        .bind(metadata_column(&family.metadata))
        .execute(&mut *tx)
        .await?;
            sqlx::query(
            "INSERT INTO refresh_tokens (tenant_id, token_hash, family_id, created_at, idle_expires_at, rotated_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(&family.family_id)
        .bind(family.created_at)
        .bind(idle_expires_at.min(family.expires_at))
        .execute(&mut *tx)
        .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Replaces a live refresh family's metadata (`api.refreshToken.setMetadata`, `PATCH
    /// /api/v2/refresh-tokens/{id}`; the callers check its bounds); empty removes it.
    /// Whether a live family — not revoked, not past its end — was there.
    pub async fn set_refresh_family_metadata(
        &self,
        family_id: &str,
        metadata: &BTreeMap<String, String>,
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let done = sqlx::query(
                "UPDATE refresh_token_families SET metadata = $3 WHERE tenant_id = $1 \
                 AND family_id = $2 AND revoked_at IS NULL AND expires_at > $4",
            )
            .bind(self.tenant)
            .bind(family_id)
            .bind(metadata_column(metadata))
            .bind(now)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Brings a refresh family's absolute end and one of its tokens' idle end forward to
    /// `expires_at` / `idle_expires_at` where those are earlier (an Action's
    /// `api.refreshToken.setExpiresAt` / `setIdleExpiresAt`); never later.
    pub async fn shorten_refresh_family(
        &self,
        family_id: &str,
        token_hash: &[u8],
        expires_at: Option<i64>,
        idle_expires_at: Option<i64>,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            if let Some(at) = expires_at {
                sqlx::query(
                    "UPDATE refresh_token_families SET expires_at = $1 \
                     WHERE tenant_id = $2 AND family_id = $3 AND expires_at > $1",
                )
                .bind(at)
                .bind(self.tenant)
                .bind(family_id)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(at) = idle_expires_at {
                sqlx::query(
                    "UPDATE refresh_tokens SET idle_expires_at = $1 \
                     WHERE tenant_id = $2 AND token_hash = $3 AND family_id = $4 \
                     AND idle_expires_at > $1",
                )
                .bind(at)
                .bind(self.tenant)
                .bind(token_hash)
                .bind(family_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The live family of a refresh token, read without changing anything (to validate a
    /// request before the token is rotated).
    pub async fn find_refresh_family(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<RefreshFamily>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT f.family_id, f.client_id, f.user_id, f.\"grant\", f.created_at, f.expires_at, \
             f.metadata FROM refresh_tokens t JOIN refresh_token_families f ON f.tenant_id = t.tenant_id AND f.family_id = t.family_id \
             WHERE t.tenant_id = $1 AND t.token_hash = $2 AND f.revoked_at IS NULL AND f.expires_at > $3",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            row.map(|row| family_from_row(&row)).transpose()
        })
    }

    /// The live family of a refresh token and its user, in one read: the refresh grant
    /// needs both, and each read is a round trip. (A family goes with its user.)
    pub async fn find_refresh_family_with_user(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<(RefreshFamily, User)>> {
        each!(self, |pool| {
            // The family's columns under names no user column has, so `user_columns!` reads
            // the user's own.
            let row = sqlx::query(concat!(
                "SELECT fam.*, ",
                user_columns!(),
                " FROM (SELECT f.family_id, f.client_id, f.user_id AS family_user_id, f.\"grant\", \
                 f.created_at AS family_created_at, f.expires_at AS family_expires_at, f.metadata \
                 FROM refresh_tokens t JOIN refresh_token_families f \
                 ON f.tenant_id = t.tenant_id AND f.family_id = t.family_id \
                 WHERE t.tenant_id = $1 AND t.token_hash = $2 AND f.revoked_at IS NULL \
                 AND f.expires_at > $3) fam \
                 JOIN users ON users.tenant_id = $1 AND users.user_id = fam.family_user_id"
            ))
            .bind(self.tenant)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let user = user_from_row(&row)?;
            let family = RefreshFamily {
                family_id: row.col("family_id")?,
                client_id: row.col("client_id")?,
                user_id: user.user_id.clone(),
                grant: row.col("grant")?,
                created_at: row.col("family_created_at")?,
                expires_at: row.col("family_expires_at")?,
                metadata: metadata_from(row.opt_text("metadata")?),
            };
            Ok(Some((family, user)))
        })
    }

    /// The family of a refresh token that can be used now — not rotated, not idle past its
    /// end, its family neither revoked nor past its absolute end — and when it stops being
    /// usable. For introspection: unlike `find_refresh_family`, a rotated token is not live.
    pub async fn live_refresh_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<(RefreshFamily, i64)>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT f.family_id, f.client_id, f.user_id, f.\"grant\", f.created_at, f.expires_at, f.metadata, t.idle_expires_at \
             FROM refresh_tokens t JOIN refresh_token_families f ON f.tenant_id = t.tenant_id AND f.family_id = t.family_id \
             WHERE t.tenant_id = $1 AND t.token_hash = $2 AND t.rotated_at IS NULL \
             AND t.idle_expires_at > $3 AND f.revoked_at IS NULL AND f.expires_at > $3",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            match row {
                Some(row) => {
                    let family = family_from_row(&row)?;
                    let idle_end: i64 = row.try_get("idle_expires_at")?;
                    let ends = idle_end.min(family.expires_at);
                    Ok(Some((family, ends)))
                }
                None => Ok(None),
            }
        })
    }

    /// Exchanges `old_hash` for `new_hash`, in one write transaction so that concurrent
    /// presentations of the same token serialize: the first rotates, the others are reuse
    /// (outside the reuse interval) and revoke the family — including the new token.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &[u8],
        new_hash: &[u8],
        client_id: &str,
        timing: RefreshTiming,
        now: i64,
    ) -> StoreResult<RefreshRotation> {
        each!(self, |pool, pg| {
            // SQLite: the write transaction serializes everything. PostgreSQL: the token's
            // and its family's rows are locked; a concurrent use of the same token waits
            // here, then reads it rotated.
            if !pg {
                // The usual case on SQLite in one transaction of its own — one round trip
                // to its connection's thread when the writer is free: a live token rotated
                // by its own client. Anything else changes nothing here and is decided by
                // the statements below, in a transaction of their own (a token once not
                // live never is again).
                let changed = pool
                    .write_together(
                        sqlx::query(ROTATE_LIVE_TOKEN)
                            .bind(now)
                            .bind(self.tenant)
                            .bind(old_hash)
                            .bind(client_id)
                            .bind(new_hash)
                            .bind(timing.idle_lifetime),
                    )
                    .await?;
                match changed {
                    0 => {}
                    2 => return Ok(RefreshRotation::Rotated),
                    // The insert takes the row the update changed: one without the other
                    // cannot happen (a failed insert fails the transaction).
                    _ => return Err(StoreError::Corrupt("refresh token rotation")),
                }
            }
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(for_update!(pg, rotation_select!()))
                .bind(self.tenant)
                .bind(old_hash)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Ok(RefreshRotation::Invalid);
            };
            let family = family_from_row(&row)?;
            let rotated_at: Option<i64> = row.try_get("rotated_at")?;
            let idle_expires_at: i64 = row.try_get("idle_expires_at")?;
            let revoked_at: Option<i64> = row.try_get("revoked_at")?;
            if family.client_id != client_id || revoked_at.is_some() || family.expires_at <= now {
                return Ok(RefreshRotation::Invalid);
            }
            match rotated_at {
                Some(at) if timing.reuse_interval <= 0 || now - at > timing.reuse_interval => {
                    sqlx::query("UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND family_id = $3")
                    .bind(now)
                    .bind(self.tenant)
                    .bind(&family.family_id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(RefreshRotation::Reused);
                }
                Some(_) => {} // a retry within the reuse interval: issue another token
                None if idle_expires_at <= now => return Ok(RefreshRotation::Invalid),
                None => {
                    sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE tenant_id = $2 AND token_hash = $3")
                    .bind(now)
                    .bind(self.tenant)
                    .bind(old_hash)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            sqlx::query(
            "INSERT INTO refresh_tokens (tenant_id, token_hash, family_id, created_at, idle_expires_at, rotated_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(self.tenant)
        .bind(new_hash)
        .bind(&family.family_id)
        .bind(now)
        .bind((now + timing.idle_lifetime).min(family.expires_at))
        .execute(&mut *tx)
        .await?;
            tx.commit().await?;
            Ok(RefreshRotation::Rotated)
        })
    }

    /// Revokes the family a refresh token belongs to, if that token was issued to
    /// `client_id` (RFC 7009: a client revokes only its own tokens). Returns whether
    /// anything was revoked.
    pub async fn revoke_refresh_token(
        &self,
        token_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let done = sqlx::query(
            "UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND client_id = $3 AND revoked_at IS NULL \
             AND family_id = (SELECT family_id FROM refresh_tokens WHERE tenant_id = $4 AND token_hash = $5)",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(client_id)
        .bind(self.tenant)
        .bind(token_hash)
        .execute(pool)
        .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Revokes the families started by a code (the code was replayed).
    pub async fn revoke_refresh_families_of_code(
        &self,
        code_hash: &[u8],
        now: i64,
    ) -> StoreResult<u64> {
        each!(self, |pool| {
            let done = sqlx::query(
            "UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND code_hash = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(code_hash)
        .execute(pool)
        .await?;
            Ok(done.rows_affected())
        })
    }

    /// Revokes the families obtained in one login session (logout).
    pub async fn revoke_refresh_families_of_session(
        &self,
        sid: &str,
        now: i64,
    ) -> StoreResult<u64> {
        each!(self, |pool| {
            let done = sqlx::query(
            "UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND sid = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(sid)
        .execute(pool)
        .await?;
            Ok(done.rows_affected())
        })
    }

    /// Revokes every family of a user (blocked, password changed).
    pub async fn revoke_refresh_families_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> StoreResult<u64> {
        each!(self, |pool| {
            let done = sqlx::query(
            "UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(user_id)
        .execute(pool)
        .await?;
            Ok(done.rows_affected())
        })
    }
}

/// A family as the Management API shows it: the family's columns, its live token's idle
/// end, and its newest token's issue time once it has been exchanged (a second token, or
/// one newer than the family: an exchange rotated it), each through `refresh_tokens_family`.
macro_rules! refresh_record_select {
    () => {
        "SELECT f.family_id, f.client_id, f.user_id, f.\"grant\", f.created_at, f.expires_at, \
         f.metadata, (SELECT MAX(t.idle_expires_at) FROM refresh_tokens t WHERE t.tenant_id = f.tenant_id \
         AND t.family_id = f.family_id AND t.rotated_at IS NULL) AS live_idle_expires_at, \
         (SELECT CASE WHEN COUNT(*) > 1 OR MAX(t.created_at) > f.created_at \
         THEN MAX(t.created_at) END FROM refresh_tokens t WHERE t.tenant_id = f.tenant_id \
         AND t.family_id = f.family_id) AS last_exchanged_at"
    };
}

pub(super) const REFRESH_RECORD_SELECT: &str = refresh_record_select!();

/// A user's page of refresh tokens is ordered by this (index `refresh_token_families_user_id`).
pub(super) const REFRESH_RECORD_KEY: &str = "f.family_id";

fn record_from_row(row: &dyn Fetch) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        family: family_from_row(row)?,
        idle_expires_at: row.col("live_idle_expires_at")?,
        last_exchanged_at: row.col("last_exchanged_at")?,
    })
}

impl Store {
    /// The live refresh-token families of a user (neither revoked nor past their end), by
    /// checkpoint (`from` = a family id).
    pub async fn refresh_tokens_of_user(
        &self,
        user_id: &str,
        now: i64,
        checkpoint: Checkpoint<'_>,
    ) -> StoreResult<CheckpointPage<RefreshTokenRecord>> {
        self.checkpoint_of(
            REFRESH_RECORD_SELECT,
            self.user_refresh_families(user_id, now),
            REFRESH_RECORD_KEY,
            checkpoint,
            record_from_row,
            |record: &RefreshTokenRecord| record.family.family_id.clone(),
        )
        .await
    }

    /// A user's live families, through the `(tenant_id, user_id, family_id)` index.
    pub(super) fn user_refresh_families(&self, user_id: &str, now: i64) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM refresh_token_families f WHERE f.tenant_id = ? AND f.user_id = ? \
             AND f.revoked_at IS NULL AND f.expires_at > ?",
            [
                Bind::Text(self.tenant.into()),
                Bind::Text(user_id.into()),
                Bind::Int(now),
            ],
        );
        sql
    }

    /// One live refresh-token family by its id.
    pub async fn find_refresh_token(
        &self,
        family_id: &str,
        now: i64,
    ) -> StoreResult<Option<RefreshTokenRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                refresh_record_select!(),
                " FROM refresh_token_families f WHERE f.tenant_id = $1 \
                 AND f.family_id = $2 AND f.revoked_at IS NULL AND f.expires_at > $3"
            ))
            .bind(self.tenant)
            .bind(family_id)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.map(|row| record_from_row(&row)).transpose()
        })
    }

    /// Revokes one refresh-token family (every token rotated out of its sign-in). Whether
    /// a live one was there to revoke.
    pub async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> StoreResult<bool> {
        each!(self, |pool| {
            let done = sqlx::query(
                "UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 \
                 AND family_id = $3 AND revoked_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(self.tenant)
            .bind(family_id)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
