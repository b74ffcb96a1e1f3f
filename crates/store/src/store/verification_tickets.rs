//! Email verification tickets, and the tickets of blocked-account mails.

use sqlx::Row;

use super::Store;
use crate::backend::BeginWrite;
use crate::records::{NewUnblockTicket, NewVerificationTicket, VerifiedEmail};
use crate::{StoreError, StoreResult};

impl Store {
    /// Stores a ticket (hashed) for the user's current address; `NotFound` when the user
    /// is gone or has no address (an upstream's user who shared none).
    pub async fn put_email_verification_ticket(
        &self,
        ticket: &NewVerificationTicket<'_>,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let inserted = sqlx::query(
                "INSERT INTO email_verification_tickets \
                 (tenant_id, ticket_hash, user_id, email, result_url, created_at, expires_at) \
                 SELECT $1, $2, user_id, email, $3, $4, $5 FROM users \
                 WHERE tenant_id = $1 AND user_id = $6 AND email IS NOT NULL",
            )
            .bind(self.tenant)
            .bind(ticket.ticket_hash)
            .bind(ticket.result_url)
            .bind(ticket.now)
            .bind(ticket.expires_at)
            .bind(ticket.user_id)
            .execute(pool)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::NotFound("user"));
            }
            Ok(())
        })
    }

    /// Whether a live ticket has this hash; reads only (the page a link opens must not
    /// use the ticket up: mail scanners fetch links).
    pub async fn email_verification_ticket_live(
        &self,
        ticket_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            Ok(sqlx::query(
                "SELECT 1 FROM email_verification_tickets \
                 WHERE tenant_id = $1 AND ticket_hash = $2 AND expires_at > $3",
            )
            .bind(self.tenant)
            .bind(ticket_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .is_some())
        })
    }

    /// Uses a ticket up and marks its address verified, in one transaction: exactly one of
    /// any number of concurrent presenters gets `Some`. `None`: no such live ticket, or the
    /// user's address is no longer the one it was issued for (the ticket is gone either way).
    pub async fn redeem_email_verification_ticket(
        &self,
        ticket_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<VerifiedEmail>> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let Some(ticket) = sqlx::query(
                "DELETE FROM email_verification_tickets \
                 WHERE tenant_id = $1 AND ticket_hash = $2 AND expires_at > $3 \
                 RETURNING user_id, email, result_url",
            )
            .bind(self.tenant)
            .bind(ticket_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(None);
            };
            let user_id: String = ticket.try_get("user_id")?;
            let email: String = ticket.try_get("email")?;
            let result_url: Option<String> = ticket.try_get("result_url")?;
            let updated = sqlx::query(
                "UPDATE users SET email_verified = TRUE, updated_at = $1 \
                 WHERE tenant_id = $2 AND user_id = $3 AND email = $4",
            )
            .bind(now)
            .bind(self.tenant)
            .bind(&user_id)
            .bind(&email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok((updated == 1).then_some(VerifiedEmail {
                user_id,
                email,
                result_url,
            }))
        })
    }
}

impl Store {
    /// Stores an unblock ticket (hashed).
    pub async fn put_unblock_ticket(&self, ticket: &NewUnblockTicket<'_>) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO unblock_tickets \
                 (tenant_id, ticket_hash, user_id, email, counted_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(self.tenant)
            .bind(ticket.ticket_hash)
            .bind(ticket.user_id)
            .bind(tessera_core::normalize_email(ticket.email))
            .bind(ticket.counted_at)
            .bind(ticket.expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Whether an unblock ticket is live (its page shows the button; nothing is used up).
    pub async fn unblock_ticket_live(&self, ticket_hash: &[u8], now: i64) -> StoreResult<bool> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT 1 FROM unblock_tickets \
                 WHERE tenant_id = $1 AND ticket_hash = $2 AND expires_at > $3",
            )
            .bind(self.tenant)
            .bind(ticket_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            Ok(row.is_some())
        })
    }

    /// Uses an unblock ticket up and forgets the count it was issued for, in one
    /// transaction: exactly one of any number of concurrent presenters gets the user's id
    /// and the address the count was kept for. `None`: no such live ticket.
    pub async fn redeem_unblock_ticket(
        &self,
        ticket_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<(String, String)>> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let Some(ticket) = sqlx::query(
                "DELETE FROM unblock_tickets \
                 WHERE tenant_id = $1 AND ticket_hash = $2 AND expires_at > $3 \
                 RETURNING user_id, email, counted_at",
            )
            .bind(self.tenant)
            .bind(ticket_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(None);
            };
            let user_id: String = ticket.try_get("user_id")?;
            let email: String = ticket.try_get("email")?;
            let counted_at: String = ticket.try_get("counted_at")?;
            sqlx::query(
                "DELETE FROM login_failures WHERE tenant_id = $1 AND email = $2 AND ip = $3",
            )
            .bind(self.tenant)
            .bind(&email)
            .bind(&counted_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some((user_id, email)))
        })
    }
}
