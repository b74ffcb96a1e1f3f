//! Second factors (migration 0023): a user's TOTP authenticator and recovery code, and the
//! count of wrong codes that throttles guessing. The store keeps what makes a code
//! single-use — a TOTP step is accepted only above the last one, a recovery code is
//! deleted as it is used — so two nodes racing with the same code cannot both accept it.

use super::Store;
use crate::backend::{BeginWrite as _, Col, Fetch};
use crate::records::Authenticator;
use crate::{StoreError, StoreResult};

/// `kind` of a TOTP authenticator.
pub const TOTP: &str = "totp";
/// `kind` of a recovery code.
pub const RECOVERY_CODE: &str = "recovery-code";
/// The most authenticators one user's list reads (one TOTP and one recovery code today;
/// the bound keeps the read small whatever comes later).
pub const MAX_AUTHENTICATORS: i64 = 20;

fn authenticator_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<Authenticator> {
    Ok(Authenticator {
        id: row.text("id")?,
        user_id: row.text("user_id")?,
        kind: row.text("kind")?,
        secret: row.col("secret")?,
        confirmed: row.col("confirmed")?,
        last_step: row.col("last_step")?,
        created_at: row.col("created_at")?,
        last_auth_at: row.col("last_auth_at")?,
    })
}

/// Inserts a recovery code inside a transaction, after deleting the user's previous one.
macro_rules! replace_recovery_code {
    ($tx:expr, $tenant:expr, $user_id:expr, $id:expr, $hash:expr, $now:expr) => {{
        sqlx::query(
            "DELETE FROM authenticators WHERE tenant_id = $1 AND user_id = $2 AND kind = $3",
        )
        .bind($tenant)
        .bind($user_id)
        .bind(RECOVERY_CODE)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(
            "INSERT INTO authenticators (tenant_id, id, user_id, kind, secret, confirmed, \
             last_step, created_at, last_auth_at) VALUES ($1, $2, $3, $4, $5, TRUE, 0, $6, NULL)",
        )
        .bind($tenant)
        .bind($id)
        .bind($user_id)
        .bind(RECOVERY_CODE)
        .bind($hash)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    }};
}

impl Store {
    /// A user's authenticators, oldest first (at most [`MAX_AUTHENTICATORS`]).
    pub async fn authenticators_of(&self, user_id: &str) -> StoreResult<Vec<Authenticator>> {
        each!(self, |pool| {
            sqlx::query(
                "SELECT id, user_id, kind, secret, confirmed, last_step, created_at, \
                 last_auth_at FROM authenticators WHERE tenant_id = $1 AND user_id = $2 \
                 ORDER BY created_at, id LIMIT $3",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(MAX_AUTHENTICATORS)
            .fetch_all(pool)
            .await?
            .iter()
            .map(authenticator_from_row)
            .collect()
        })
    }

    /// Starts a TOTP enrollment: an unconfirmed authenticator with this sealed seed, in
    /// place of any unconfirmed one before it. `Conflict` when the user has a confirmed
    /// TOTP authenticator already (checked in the insert: two enrollments cannot race
    /// past it).
    pub async fn begin_totp_enrollment(
        &self,
        user_id: &str,
        id: &str,
        sealed_seed: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(
                "DELETE FROM authenticators WHERE tenant_id = $1 AND user_id = $2 \
                 AND kind = $3 AND NOT confirmed",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(TOTP)
            .execute(&mut *tx)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO authenticators (tenant_id, id, user_id, kind, secret, confirmed, \
                 last_step, created_at, last_auth_at) SELECT $1, $2, $3, $4, $5, FALSE, 0, $6, \
                 NULL WHERE NOT EXISTS (SELECT 1 FROM authenticators WHERE tenant_id = $1 \
                 AND user_id = $3 AND kind = $4 AND confirmed)",
            )
            .bind(self.tenant)
            .bind(id)
            .bind(user_id)
            .bind(TOTP)
            .bind(sealed_seed)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("an authenticator"))?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::Conflict("an authenticator"));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Confirms an unconfirmed TOTP authenticator with the step of its first code, and
    /// gives the user a new recovery code (its hash; the code is shown once) in the same
    /// transaction. `false` when there was no such authenticator to confirm (confirmed
    /// already by a racing request, or replaced).
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        id: &str,
        step: i64,
        recovery: (&str, &[u8]),
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let confirmed = sqlx::query(
                "UPDATE authenticators SET confirmed = TRUE, last_step = $1, last_auth_at = $2 \
                 WHERE tenant_id = $3 AND id = $4 AND user_id = $5 AND kind = $6 \
                 AND NOT confirmed",
            )
            .bind(step)
            .bind(now)
            .bind(self.tenant)
            .bind(id)
            .bind(user_id)
            .bind(TOTP)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if confirmed == 0 {
                return Ok(false);
            }
            replace_recovery_code!(tx, self.tenant, user_id, recovery.0, recovery.1, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Accepts a TOTP code's step for a confirmed authenticator if it is later than every
    /// step accepted before; `false` for a replayed (or older) code.
    pub async fn accept_totp_step(
        &self,
        user_id: &str,
        id: &str,
        step: i64,
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let updated = sqlx::query(
                "UPDATE authenticators SET last_step = $1, last_auth_at = $2 \
                 WHERE tenant_id = $3 AND id = $4 AND user_id = $5 AND kind = $6 \
                 AND confirmed AND last_step < $1",
            )
            .bind(step)
            .bind(now)
            .bind(self.tenant)
            .bind(id)
            .bind(user_id)
            .bind(TOTP)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(updated == 1)
        })
    }

    /// Uses a recovery code (by its hash): deletes it and stores the next one, in one
    /// transaction. `false` when the user has no recovery code with this hash.
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        hash: &[u8],
        next: (&str, &[u8]),
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let used = sqlx::query(
                "DELETE FROM authenticators WHERE tenant_id = $1 AND user_id = $2 \
                 AND kind = $3 AND secret = $4",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(RECOVERY_CODE)
            .bind(hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if used == 0 {
                return Ok(false);
            }
            replace_recovery_code!(tx, self.tenant, user_id, next.0, next.1, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Replaces the user's recovery code (regeneration). `NotFound` for an unknown user.
    pub async fn regenerate_recovery_code(
        &self,
        user_id: &str,
        next: (&str, &[u8]),
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            replace_recovery_code!(tx, self.tenant, user_id, next.0, next.1, now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes one of the user's authenticators or WebAuthn credentials; `NotFound` if the
    /// user has none by `id`.
    pub async fn delete_authenticator(&self, user_id: &str, id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let mut deleted = 0;
            for query in [
                "DELETE FROM authenticators WHERE tenant_id = $1 AND user_id = $2 AND id = $3",
                "DELETE FROM webauthn_credentials WHERE tenant_id = $1 AND user_id = $2 \
                 AND id = $3",
            ] {
                deleted += sqlx::query(query)
                    .bind(self.tenant)
                    .bind(user_id)
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected();
            }
            if deleted == 0 {
                return Err(StoreError::NotFound("authentication method"));
            }
            Ok(())
        })
    }

    /// Deletes every second factor of the user — authenticators, security keys and
    /// platform authenticators — in one transaction (Auth0's "reset MFA"); how many went.
    /// Passkeys stay: they sign the user in, as a password does, and are deleted one by one.
    pub async fn delete_authenticators_of(&self, user_id: &str) -> StoreResult<u64> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let codes =
                sqlx::query("DELETE FROM authenticators WHERE tenant_id = $1 AND user_id = $2")
                    .bind(self.tenant)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            let keys = sqlx::query(
                "DELETE FROM webauthn_credentials WHERE tenant_id = $1 AND user_id = $2 \
                 AND kind <> $3",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(crate::PASSKEY)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let deleted = codes + keys;
            tx.commit().await?;
            Ok(deleted)
        })
    }

    /// Counts one more consecutive wrong second-factor code; returns the new count.
    pub async fn record_mfa_failure(&self, user_id: &str, now: i64) -> StoreResult<i64> {
        each!(self, |pool| {
            let row = sqlx::query(
                "INSERT INTO mfa_failures (tenant_id, user_id, failures, updated_at) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT (tenant_id, user_id) DO UPDATE SET \
                 failures = mfa_failures.failures + 1, updated_at = excluded.updated_at \
                 RETURNING failures",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(now)
            .fetch_one(pool)
            .await?;
            row.col("failures")
        })
    }

    /// The user's consecutive wrong codes and when the last one was: `(0, 0)` for none.
    pub async fn mfa_failures(&self, user_id: &str) -> StoreResult<(i64, i64)> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT failures, updated_at FROM mfa_failures \
                 WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(self.tenant)
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok((row.col("failures")?, row.col("updated_at")?)),
                None => Ok((0, 0)),
            }
        })
    }

    /// Forgets the user's wrong codes (after a right one, or an administrator's reset).
    pub async fn clear_mfa_failures(&self, user_id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("DELETE FROM mfa_failures WHERE tenant_id = $1 AND user_id = $2")
                .bind(self.tenant)
                .bind(user_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
