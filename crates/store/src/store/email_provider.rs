//! The tenant's email provider: one row at most, its members a JSON document the store does
//! not read into, and the SMTP password already sealed by the caller.

use sqlx::Row;
use tessera_core::Metadata;

use super::{Store, to_json};
use crate::backend::BeginWrite as _;
use crate::records::EmailProvider;
use crate::{StoreError, StoreResult};

fn provider_from(document: &str, sealed_password: Option<Vec<u8>>) -> StoreResult<EmailProvider> {
    Ok(EmailProvider {
        document: serde_json::from_str(document)
            .map_err(|_| StoreError::Corrupt("email provider"))?,
        sealed_password,
    })
}

impl Store {
    /// The provider, if one is configured.
    pub async fn email_provider(&self) -> StoreResult<Option<EmailProvider>> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT document, sealed_password FROM email_providers WHERE tenant_id = $1",
            )
            .bind(self.tenant)
            .fetch_optional(pool)
            .await?;
            row.map(|row| {
                provider_from(
                    &row.try_get::<String, _>("document")?,
                    row.try_get("sealed_password")?,
                )
            })
            .transpose()
        })
    }

    /// Configures the provider; `Conflict` if one is.
    pub async fn create_email_provider(&self, provider: &EmailProvider) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO email_providers (tenant_id, document, sealed_password) \
                 VALUES ($1, $2, $3)",
            )
            .bind(self.tenant)
            .bind(to_json(&provider.document))
            .bind(provider.sealed_password.as_deref())
            .execute(pool)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("email provider"))?;
            Ok(())
        })
    }

    /// Sets the members `patch` names (a member replaces the stored one whole) and, when
    /// given, the sealed password, under the row lock. `NotFound` if none is configured.
    pub async fn patch_email_provider(
        &self,
        patch: &Metadata,
        sealed_password: Option<&[u8]>,
    ) -> StoreResult<EmailProvider> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(for_update!(
                pg,
                "SELECT document, sealed_password FROM email_providers WHERE tenant_id = $1"
            ))
            .bind(self.tenant)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("email provider"))?;
            let mut provider = provider_from(
                &row.try_get::<String, _>("document")?,
                row.try_get("sealed_password")?,
            )?;
            for (key, value) in patch {
                provider.document.insert(key.clone(), value.clone());
            }
            if let Some(sealed) = sealed_password {
                provider.sealed_password = Some(sealed.to_vec());
            }
            sqlx::query(
                "UPDATE email_providers SET document = $1, sealed_password = $2 WHERE tenant_id = $3",
            )
            .bind(to_json(&provider.document))
            .bind(provider.sealed_password.as_deref())
            .bind(self.tenant)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(provider)
        })
    }

    /// Removes the provider; `NotFound` if none is configured.
    pub async fn delete_email_provider(&self) -> StoreResult<()> {
        each!(self, |pool| {
            let deleted = sqlx::query("DELETE FROM email_providers WHERE tenant_id = $1")
                .bind(self.tenant)
                .execute(pool)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound("email provider"));
            }
            Ok(())
        })
    }
}
