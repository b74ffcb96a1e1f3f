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
        self.patch_tenant_column(TenantColumn::Settings, patch)
            .await
    }

    /// The tenant's multi-factor policy and factors (`{}` until something is set).
    pub async fn guardian_settings(&self) -> StoreResult<Metadata> {
        each!(self, |pool| {
            let row = sqlx::query("SELECT guardian FROM tenants WHERE id = $1")
                .bind(self.tenant)
                .fetch_one(pool)
                .await?;
            settings_from(&row.try_get::<String, _>("guardian")?)
        })
    }

    /// [`Self::patch_tenant_settings`] for the multi-factor settings.
    pub async fn patch_guardian_settings(&self, patch: &Metadata) -> StoreResult<Metadata> {
        self.patch_tenant_column(TenantColumn::Guardian, patch)
            .await
    }

    /// The tenant's brute-force protection, as an administrator set it (`{}` until then;
    /// what the members mean is the server's).
    pub async fn brute_force_settings(&self) -> StoreResult<Metadata> {
        each!(self, |pool| {
            let row = sqlx::query("SELECT brute_force FROM tenants WHERE id = $1")
                .bind(self.tenant)
                .fetch_one(pool)
                .await?;
            settings_from(&row.try_get::<String, _>("brute_force")?)
        })
    }

    /// [`Self::patch_tenant_settings`] for the brute-force protection.
    pub async fn patch_brute_force_settings(&self, patch: &Metadata) -> StoreResult<Metadata> {
        self.patch_tenant_column(TenantColumn::BruteForce, patch)
            .await
    }

    async fn patch_tenant_column(
        &self,
        column: TenantColumn,
        patch: &Metadata,
    ) -> StoreResult<Metadata> {
        let name = column.name();
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(column.select_for_update(pg))
                .bind(self.tenant)
                .fetch_one(&mut *tx)
                .await?;
            let mut settings = settings_from(&row.try_get::<String, _>(name)?)?;
            for (key, value) in patch {
                if value.is_null() {
                    settings.remove(key);
                } else {
                    settings.insert(key.clone(), value.clone());
                }
            }
            sqlx::query(column.update())
                .bind(to_json(&settings))
                .bind(self.tenant)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(settings)
        })
    }
}

/// The JSON columns of the tenant's row that are patched member by member.
#[derive(Clone, Copy)]
enum TenantColumn {
    Settings,
    Guardian,
    BruteForce,
}

impl TenantColumn {
    fn name(self) -> &'static str {
        match self {
            TenantColumn::Settings => "settings",
            TenantColumn::Guardian => "guardian",
            TenantColumn::BruteForce => "brute_force",
        }
    }

    fn select_for_update(self, pg: bool) -> &'static str {
        match self {
            TenantColumn::Settings => for_update!(pg, "SELECT settings FROM tenants WHERE id = $1"),
            TenantColumn::Guardian => for_update!(pg, "SELECT guardian FROM tenants WHERE id = $1"),
            TenantColumn::BruteForce => {
                for_update!(pg, "SELECT brute_force FROM tenants WHERE id = $1")
            }
        }
    }

    fn update(self) -> &'static str {
        match self {
            TenantColumn::Settings => "UPDATE tenants SET settings = $1 WHERE id = $2",
            TenantColumn::Guardian => "UPDATE tenants SET guardian = $1 WHERE id = $2",
            TenantColumn::BruteForce => "UPDATE tenants SET brute_force = $1 WHERE id = $2",
        }
    }
}
