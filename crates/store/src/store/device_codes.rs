//! Device authorizations (RFC 8628, migration 0025). Every change of state is one
//! conditional `UPDATE`: a user code is approved or denied once, and of any number of
//! concurrent polls of an approved code exactly one takes it.

use super::Store;
use crate::StoreResult;
use crate::backend::{Col, Fetch};
use crate::records::{DevicePoll, NewDeviceCode, PendingDeviceCode};

const PENDING: &str = "pending";
const APPROVED: &str = "approved";
const DENIED: &str = "denied";
const REDEEMED: &str = "redeemed";

impl Store {
    /// Stores a new device authorization. `false` when its user code (or device code) is
    /// taken: the caller draws another.
    pub async fn create_device_code(&self, code: &NewDeviceCode) -> StoreResult<bool> {
        each!(self, |pool| {
            let inserted = sqlx::query(
                "INSERT INTO device_codes (tenant_id, device_code_hash, user_code, client_id, \
                 scope, audience, status, poll_interval, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            )
            .bind(self.tenant)
            .bind(&code.device_code_hash)
            .bind(&code.user_code)
            .bind(&code.client_id)
            .bind(&code.scope)
            .bind(&code.audience)
            .bind(PENDING)
            .bind(code.poll_interval)
            .bind(code.created_at)
            .bind(code.expires_at)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(inserted == 1)
        })
    }

    /// The live authorization still waiting for a person, by its (normalized) user code.
    pub async fn pending_device_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> StoreResult<Option<PendingDeviceCode>> {
        each!(self, |pool| {
            sqlx::query(
                "SELECT client_id, scope, audience, expires_at FROM device_codes \
                 WHERE tenant_id = $1 AND user_code = $2 AND status = $3 AND expires_at > $4",
            )
            .bind(self.tenant)
            .bind(user_code)
            .bind(PENDING)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|row| {
                Ok(PendingDeviceCode {
                    client_id: row.text("client_id")?,
                    scope: row.text("scope")?,
                    audience: row.opt_text("audience")?,
                    expires_at: row.col("expires_at")?,
                })
            })
            .transpose()
        })
    }

    /// The person approved: `user_id` and what was granted (`grant`, JSON) are recorded.
    /// `false` if the code is no longer pending for `client_id` (answered, expired, gone).
    pub async fn approve_device_code(
        &self,
        user_code: &str,
        client_id: &str,
        user_id: &str,
        grant: &str,
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let updated = sqlx::query(
                "UPDATE device_codes SET status = $1, user_id = $2, \"grant\" = $3 \
                 WHERE tenant_id = $4 AND user_code = $5 AND client_id = $6 AND status = $7 \
                 AND expires_at > $8",
            )
            .bind(APPROVED)
            .bind(user_id)
            .bind(grant)
            .bind(self.tenant)
            .bind(user_code)
            .bind(client_id)
            .bind(PENDING)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(updated == 1)
        })
    }

    /// The person cancelled. `false` if the code is no longer pending for `client_id`.
    pub async fn deny_device_code(
        &self,
        user_code: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let updated = sqlx::query(
                "UPDATE device_codes SET status = $1 WHERE tenant_id = $2 AND user_code = $3 \
                 AND client_id = $4 AND status = $5 AND expires_at > $6",
            )
            .bind(DENIED)
            .bind(self.tenant)
            .bind(user_code)
            .bind(client_id)
            .bind(PENDING)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(updated == 1)
        })
    }

    /// A poll by `client_id` with the device code whose hash is `device_code_hash`. The
    /// poll is recorded (and the interval grown when it came too early) only if the row is
    /// still as read — a concurrent poll that changed it first makes this one too early
    /// too — and, for an approved code, the same statement takes it: tokens once.
    pub async fn poll_device_code(
        &self,
        device_code_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> StoreResult<DevicePoll> {
        each!(self, |pool| {
            let Some(row) = sqlx::query(
                "SELECT status, user_id, \"grant\", poll_interval, last_polled_at, expires_at \
                 FROM device_codes WHERE tenant_id = $1 AND device_code_hash = $2 \
                 AND client_id = $3",
            )
            .bind(self.tenant)
            .bind(device_code_hash)
            .bind(client_id)
            .fetch_optional(pool)
            .await?
            else {
                return Ok(DevicePoll::Unknown);
            };
            let status = row.text("status")?;
            let interval: i64 = row.col("poll_interval")?;
            let last: Option<i64> = row.col("last_polled_at")?;
            let expires_at: i64 = row.col("expires_at")?;
            if status == REDEEMED {
                return Ok(DevicePoll::Redeemed);
            }
            if expires_at <= now {
                return Ok(DevicePoll::Expired);
            }
            // Only a device still waiting is slowed down; an answer is given at once.
            let too_early = status == PENDING && last.is_some_and(|last| now - last < interval);
            let next_interval = if too_early {
                interval + tessera_core::device::SLOW_DOWN_STEP
            } else {
                interval
            };
            let next_status = if status == APPROVED {
                REDEEMED
            } else {
                status.as_str()
            };
            let updated = sqlx::query(
                "UPDATE device_codes SET last_polled_at = $1, poll_interval = $2, status = $3 \
                 WHERE tenant_id = $4 AND device_code_hash = $5 AND status = $6 \
                 AND COALESCE(last_polled_at, -1) = $7",
            )
            .bind(now)
            .bind(next_interval)
            .bind(next_status)
            .bind(self.tenant)
            .bind(device_code_hash)
            .bind(&status)
            .bind(last.unwrap_or(-1))
            .execute(pool)
            .await?
            .rows_affected();
            if updated == 0 {
                // Another poll changed the row between the read and this write: for an
                // approved code it took the tokens; otherwise it came at the same moment.
                return Ok(if status == APPROVED {
                    DevicePoll::Redeemed
                } else {
                    DevicePoll::SlowDown
                });
            }
            Ok(match status.as_str() {
                _ if too_early => DevicePoll::SlowDown,
                APPROVED => DevicePoll::Approved {
                    user_id: row.opt_text("user_id")?.unwrap_or_default(),
                    grant: row.opt_text("grant")?.unwrap_or_default(),
                },
                DENIED => DevicePoll::Denied,
                _ => DevicePoll::Pending,
            })
        })
    }
}
