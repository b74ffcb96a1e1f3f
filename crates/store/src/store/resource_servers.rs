//! Resource servers (APIs).

use sqlx::Row;
use tessera_core::{ResourceServer, Scope, TokenDialect};

use super::{Store, to_json};
use crate::backend::{BeginWrite as _, Fetch};
use crate::lists::{Bind, Page, Slice, Sql};
use crate::records::ResourceServerUpdate;
use crate::{StoreError, StoreResult};

macro_rules! api_columns {
    () => {
        "id, name, identifier, signing_alg, token_lifetime, allow_offline_access, \
     token_dialect, enforce_policies, scopes, created_at, updated_at, token_lifetime_for_web, \
     proof_of_possession"
    };
}

pub(super) fn api_from_row(
    row: &(impl Fetch + ?Sized),
    prefix: &str,
) -> StoreResult<ResourceServer> {
    let c = |name: &str| format!("{prefix}{name}");
    let dialect: String = row.col(c("token_dialect").as_str())?;
    let scopes: String = row.col(c("scopes").as_str())?;
    let pop: Option<String> = row.col(c("proof_of_possession").as_str())?;
    let proof_of_possession = pop
        .map(|text| {
            serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("proof_of_possession"))
        })
        .transpose()?;
    Ok(ResourceServer {
        id: row.col(c("id").as_str())?,
        name: row.col(c("name").as_str())?,
        identifier: row.col(c("identifier").as_str())?,
        signing_alg: row.col(c("signing_alg").as_str())?,
        token_lifetime: row.col(c("token_lifetime").as_str())?,
        token_lifetime_for_web: row.col(c("token_lifetime_for_web").as_str())?,
        allow_offline_access: row.col(c("allow_offline_access").as_str())?,
        token_dialect: TokenDialect::parse(&dialect).ok_or(StoreError::Corrupt("token_dialect"))?,
        enforce_policies: row.col(c("enforce_policies").as_str())?,
        scopes: serde_json::from_str::<Vec<Scope>>(&scopes)
            .map_err(|_| StoreError::Corrupt("scopes"))?,
        proof_of_possession,
        created_at: row.col(c("created_at").as_str())?,
        updated_at: row.col(c("updated_at").as_str())?,
    })
}

impl Store {
    pub async fn create_resource_server(&self, api: &ResourceServer) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO resource_servers (tenant_id, id, name, identifier, signing_alg, token_lifetime, \
             allow_offline_access, token_dialect, enforce_policies, scopes, created_at, updated_at, \
             token_lifetime_for_web, proof_of_possession) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(self.tenant)
        .bind(&api.id)
        .bind(&api.name)
        .bind(&api.identifier)
        .bind(&api.signing_alg)
        .bind(api.token_lifetime)
        .bind(api.allow_offline_access)
        .bind(api.token_dialect.as_str())
        .bind(api.enforce_policies)
        .bind(to_json(&api.scopes))
        .bind(api.created_at)
        .bind(api.updated_at)
        .bind(api.token_lifetime_for_web)
        .bind(api.proof_of_possession.as_ref().map(to_json))
        .execute(pool)
        .await
        .map_err(|e| StoreError::from(e).conflict_is("an API with this identifier"))?;
            Ok(())
        })
    }

    /// One page of APIs, oldest first (`created_at`, then id); `identifiers` keeps
    /// those with one of these identifiers.
    pub async fn list_resource_servers(
        &self,
        identifiers: Option<&[String]>,
        slice: Slice,
    ) -> StoreResult<Page<ResourceServer>> {
        let mut filter = Sql::default();
        filter.push(
            " FROM resource_servers WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        if let Some(identifiers) = identifiers {
            filter.push_in("identifier", identifiers);
        }
        self.page_of(
            concat!("SELECT ", api_columns!()),
            &filter,
            " ORDER BY created_at, id",
            slice,
            |row| api_from_row(row, ""),
        )
        .await
    }

    /// The APIs with these identifiers (those that exist), to name and describe
    /// permissions.
    pub async fn resource_servers_by_identifier(
        &self,
        identifiers: &[String],
    ) -> StoreResult<Vec<ResourceServer>> {
        let limit = u32::try_from(identifiers.len()).unwrap_or(u32::MAX);
        Ok(self
            .list_resource_servers(Some(identifiers), Slice::first(limit))
            .await?
            .items)
    }

    /// Looks an API up by its identifier (audience) or by its id.
    pub async fn find_resource_server(
        &self,
        id_or_identifier: &str,
    ) -> StoreResult<Option<ResourceServer>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                api_columns!(),
                " FROM resource_servers WHERE tenant_id = $1 AND (identifier = $2 OR id = $3) \
             ORDER BY identifier = $4 DESC LIMIT 1"
            ))
            .bind(self.tenant)
            .bind(id_or_identifier)
            .bind(id_or_identifier)
            .bind(id_or_identifier)
            .fetch_optional(pool)
            .await?;
            row.map(|r| api_from_row(&r, "")).transpose()
        })
    }

    pub async fn update_resource_server(
        &self,
        id: &str,
        update: &ResourceServerUpdate,
        now: i64,
    ) -> StoreResult<ResourceServer> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(for_update!(
                pg,
                "SELECT ",
                api_columns!(),
                " FROM resource_servers WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("API"))?;
            let mut api = api_from_row(&row, "")?;
            if let Some(name) = &update.name {
                api.name = name.clone();
            }
            if let Some(scopes) = &update.scopes {
                api.scopes = scopes.clone();
            }
            if let Some(alg) = &update.signing_alg {
                api.signing_alg = alg.clone();
            }
            if let Some(lifetime) = update.token_lifetime_for_web {
                api.token_lifetime_for_web = lifetime;
            }
            if let Some(lifetime) = update.token_lifetime {
                api.token_lifetime = lifetime;
            }
            if let Some(offline) = update.allow_offline_access {
                api.allow_offline_access = offline;
            }
            if let Some(dialect) = update.token_dialect {
                api.token_dialect = dialect;
            }
            if let Some(enforce) = update.enforce_policies {
                api.enforce_policies = enforce;
            }
            if let Some(pop) = update.proof_of_possession {
                api.proof_of_possession = pop;
            }
            api.updated_at = now;
            sqlx::query(
            "UPDATE resource_servers SET name = $1, scopes = $2, signing_alg = $3, token_lifetime = $4, \
             allow_offline_access = $5, token_dialect = $6, enforce_policies = $7, updated_at = $8, \
             token_lifetime_for_web = $9, proof_of_possession = $10 WHERE tenant_id = $11 AND id = $12",
        )
        .bind(&api.name)
        .bind(to_json(&api.scopes))
        .bind(&api.signing_alg)
        .bind(api.token_lifetime)
        .bind(api.allow_offline_access)
        .bind(api.token_dialect.as_str())
        .bind(api.enforce_policies)
        .bind(api.updated_at)
        .bind(api.token_lifetime_for_web)
        .bind(api.proof_of_possession.as_ref().map(to_json))
        .bind(self.tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
            tx.commit().await?;
            Ok(api)
        })
    }

    /// Deletes an API; client grants and permissions go by cascade, consent for it here.
    pub async fn delete_resource_server(&self, id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(
                "DELETE FROM consents WHERE tenant_id = $1 AND audience = \
             (SELECT identifier FROM resource_servers WHERE tenant_id = $2 AND id = $3)",
            )
            .bind(self.tenant)
            .bind(self.tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query("DELETE FROM resource_servers WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("API"));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The signing algorithms APIs are set to use, each once, in order. Polled with the
    /// key set (what the JWKS publishes depends on it): the resource servers of one tenant
    /// are few, and the primary key's tenant prefix bounds the scan to them.
    pub async fn signing_algorithms_in_use(&self) -> StoreResult<Vec<String>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT DISTINCT signing_alg FROM resource_servers WHERE tenant_id = $1 \
                 ORDER BY signing_alg",
            )
            .bind(self.tenant)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| Ok(row.try_get("signing_alg")?))
                .collect()
        })
    }
}
