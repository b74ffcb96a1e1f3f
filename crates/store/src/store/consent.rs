//! Consent: what a user allowed an application for an API.

use tessera_core::consent::Consent;

use super::{Store, json_list, to_json};
use crate::StoreResult;
use crate::backend::{BeginWrite as _, Fetch};
use crate::lists::{Bind, ConsentFilter, Page, Slice, Sql};
use crate::records::ConsentRevocation;

macro_rules! consent_columns {
    () => {
        "id, user_id, client_id, audience, scopes, created_at, updated_at"
    };
}

fn consent_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<Consent> {
    Ok(Consent {
        id: row.col("id")?,
        user_id: row.col("user_id")?,
        client_id: row.col("client_id")?,
        audience: row.col("audience")?,
        scopes: json_list(&row.text("scopes")?)?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

const CONSENT_SELECT: &str = concat!("SELECT ", consent_columns!());
/// By user, application then API: the unique index's order, in which one user's consents
/// are one range.
const CONSENT_ORDER: &str = " ORDER BY user_id, client_id, audience";

/// PostgreSQL: consent is read, merged and written back; one writer at a time, so that
/// concurrent answers both count (and a first answer is not inserted twice).
const LOCK_CONSENTS: &str = "LOCK TABLE consents IN SHARE ROW EXCLUSIVE MODE";

impl Store {
    /// What `user_id` allowed `client_id` for `audience`, if they ever answered.
    pub async fn find_consent(
        &self,
        user_id: &str,
        client_id: &str,
        audience: &str,
    ) -> StoreResult<Option<Consent>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
            "SELECT ",
            consent_columns!(),
            " FROM consents WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3 AND audience = $4"
        ))
        .bind(self.tenant)
        .bind(user_id)
        .bind(client_id)
        .bind(audience)
        .fetch_optional(pool)
        .await?;
            row.map(|r| consent_from_row(&r)).transpose()
        })
    }

    /// Remembers that the user allowed `scopes`, in addition to what they allowed before
    /// (one transaction: concurrent answers both count). Returns the consent as stored.
    pub async fn grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        audience: &str,
        scopes: &[String],
        now: i64,
    ) -> StoreResult<Consent> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(Some(LOCK_CONSENTS)).await?;
            let row = sqlx::query(concat!(
            "SELECT ",
            consent_columns!(),
            " FROM consents WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3 AND audience = $4"
        ))
        .bind(self.tenant)
        .bind(user_id)
        .bind(client_id)
        .bind(audience)
        .fetch_optional(&mut *tx)
        .await?;
            let consent = match row.map(|r| consent_from_row(&r)).transpose()? {
                Some(existing) => {
                    let consent = Consent {
                        scopes: tessera_core::consent::merge(&existing.scopes, scopes),
                        updated_at: now,
                        ..existing
                    };
                    sqlx::query(
                    "UPDATE consents SET scopes = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
                )
                .bind(to_json(&consent.scopes))
                .bind(now)
                .bind(self.tenant)
                .bind(&consent.id)
                .execute(&mut *tx)
                .await?;
                    consent
                }
                None => {
                    let consent = Consent {
                        id: tessera_core::ids::hex_id(12),
                        user_id: user_id.to_string(),
                        client_id: client_id.to_string(),
                        audience: audience.to_string(),
                        scopes: tessera_core::consent::merge(&[], scopes),
                        created_at: now,
                        updated_at: now,
                    };
                    sqlx::query(concat!(
                        "INSERT INTO consents (tenant_id, ",
                        consent_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    ))
                    .bind(self.tenant)
                    .bind(&consent.id)
                    .bind(&consent.user_id)
                    .bind(&consent.client_id)
                    .bind(&consent.audience)
                    .bind(to_json(&consent.scopes))
                    .bind(consent.created_at)
                    .bind(consent.updated_at)
                    .execute(&mut *tx)
                    .await?;
                    consent
                }
            };
            tx.commit().await?;
            Ok(consent)
        })
    }

    /// Every consent a user gave, by application then API.
    pub async fn list_consents(&self, user_id: &str) -> StoreResult<Vec<Consent>> {
        each!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                consent_columns!(),
                " FROM consents WHERE tenant_id = $1 AND user_id = $2 ORDER BY client_id, audience"
            ))
            .bind(self.tenant)
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(consent_from_row).collect()
        })
    }

    /// Forgets the user's consent to `client_id` (for one API, or all of them) and, when
    /// there was any, ends what the application holds for the user: its refresh-token
    /// families and opaque access tokens (Auth0 deletes a grant with its refresh tokens).
    /// JWT access tokens already issued live until they expire.
    pub async fn revoke_consents(
        &self,
        user_id: &str,
        client_id: &str,
        audience: Option<&str>,
        now: i64,
    ) -> StoreResult<ConsentRevocation> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let deleted = match audience {
            Some(audience) => {
                sqlx::query(
                    "DELETE FROM consents WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3 AND audience = $4",
                )
                .bind(self.tenant)
                .bind(user_id)
                .bind(client_id)
                .bind(audience)
                .execute(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(
                    "DELETE FROM consents WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3",
                )
                .bind(self.tenant)
                .bind(user_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?
            }
        };
            let mut revocation = ConsentRevocation {
                consents: deleted.rows_affected(),
                ..ConsentRevocation::default()
            };
            if revocation.consents > 0 {
                revocation.refresh_families = sqlx::query(
                    "UPDATE refresh_token_families SET revoked_at = $1 \
                 WHERE tenant_id = $2 AND user_id = $3 AND client_id = $4 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(self.tenant)
                .bind(user_id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                revocation.opaque_tokens = sqlx::query(
                "DELETE FROM opaque_tokens WHERE tenant_id = $1 AND user_id = $2 AND client_id = $3",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            }
            tx.commit().await?;
            Ok(revocation)
        })
    }

    /// Consents matching `filter`, a page at a time (`CONSENT_ORDER`).
    pub async fn list_consents_page(
        &self,
        filter: ConsentFilter<'_>,
        slice: Slice,
    ) -> StoreResult<Page<Consent>> {
        let mut sql = Sql::default();
        sql.push(
            " FROM consents WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        for (column, value) in [
            ("user_id", filter.user_id),
            ("client_id", filter.client_id),
            ("audience", filter.audience),
        ] {
            if let Some(value) = value {
                sql.push(&format!(" AND {column} = ?"), [Bind::Text(value.into())]);
            }
        }
        self.page_of(CONSENT_SELECT, &sql, CONSENT_ORDER, slice, |row| {
            consent_from_row(row)
        })
        .await
    }

    /// A consent by its id.
    pub async fn find_consent_by_id(&self, id: &str) -> StoreResult<Option<Consent>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                consent_columns!(),
                " FROM consents WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?;
            row.map(|r| consent_from_row(&r)).transpose()
        })
    }
}
