//! The tenant's email templates: one JSON document per template name, its shape the
//! Management API's (the store does not read into it).

use sqlx::Row;
use tessera_core::Metadata;

use super::{Store, to_json};
use crate::backend::BeginWrite as _;
use crate::{StoreError, StoreResult};

fn document_from(text: &str) -> StoreResult<Metadata> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("email template"))
}

impl Store {
    /// The template named `name`, if it was ever created.
    pub async fn email_template(&self, name: &str) -> StoreResult<Option<Metadata>> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT document FROM email_templates WHERE tenant_id = $1 AND template = $2",
            )
            .bind(self.tenant)
            .bind(name)
            .fetch_optional(pool)
            .await?;
            row.map(|row| document_from(&row.try_get::<String, _>("document")?))
                .transpose()
        })
    }

    /// Creates the template; `Conflict` if it exists.
    pub async fn create_email_template(&self, name: &str, document: &Metadata) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO email_templates (tenant_id, template, document) VALUES ($1, $2, $3)",
            )
            .bind(self.tenant)
            .bind(name)
            .bind(to_json(document))
            .execute(pool)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("email template"))?;
            Ok(())
        })
    }

    /// Creates or replaces the template.
    pub async fn replace_email_template(&self, name: &str, document: &Metadata) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO email_templates (tenant_id, template, document) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, template) DO UPDATE SET document = excluded.document",
            )
            .bind(self.tenant)
            .bind(name)
            .bind(to_json(document))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Sets the members `patch` names, under the row lock (concurrent patches of different
    /// members both land). `NotFound` if the template was never created. Returns it as it
    /// is now.
    pub async fn patch_email_template(
        &self,
        name: &str,
        patch: &Metadata,
    ) -> StoreResult<Metadata> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(for_update!(
                pg,
                "SELECT document FROM email_templates WHERE tenant_id = $1 AND template = $2"
            ))
            .bind(self.tenant)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("email template"))?;
            let mut document = document_from(&row.try_get::<String, _>("document")?)?;
            for (key, value) in patch {
                document.insert(key.clone(), value.clone());
            }
            sqlx::query(
                "UPDATE email_templates SET document = $1 WHERE tenant_id = $2 AND template = $3",
            )
            .bind(to_json(&document))
            .bind(self.tenant)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(document)
        })
    }
}
