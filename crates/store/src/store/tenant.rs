//! The tenant's own row: its settings (`/api/v2/tenants/settings`).

use sqlx::Row;
use tessera_core::Metadata;

use super::{Store, to_json};
use crate::backend::BeginWrite as _;
use crate::{StoreError, StoreResult};

fn settings_from(text: &str) -> StoreResult<Metadata> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("tenant settings"))
}

impl Store {
    /// The tenant's settings (`{}` until something is set).
    pub async fn tenant_settings(&self) -> StoreResult<Metadata> {
        each!(self, |pool| {
            let row = sqlx::query("SELECT settings FROM tenants WHERE id = $1")
                .bind(self.tenant)
                .fetch_one(pool)
                .await?;
            settings_from(&row.try_get::<String, _>("settings")?)
        })
    }

    /// Applies `patch` to the settings under the row lock, so concurrent patches of
    /// different members both land: a member set to `null` is removed, any other replaces
    /// the stored one. Returns the settings as they are now.
    pub async fn patch_tenant_settings(&self, patch: &Metadata) -> StoreResult<Metadata> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(for_update!(
                pg,
                "SELECT settings FROM tenants WHERE id = $1"
            ))
            .bind(self.tenant)
            .fetch_one(&mut *tx)
            .await?;
            let mut settings = settings_from(&row.try_get::<String, _>("settings")?)?;
            for (key, value) in patch {
                if value.is_null() {
                    settings.remove(key);
                } else {
                    settings.insert(key.clone(), value.clone());
                }
            }
            sqlx::query("UPDATE tenants SET settings = $1 WHERE id = $2")
                .bind(to_json(&settings))
                .bind(self.tenant)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(settings)
        })
    }
}
