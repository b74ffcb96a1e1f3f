//! Clients (applications), their grants to APIs, and both read together for the
//! client-credentials grant.

use sqlx::Row;
use tessera_core::{AppType, Client, ClientGrant, DATABASE_CONNECTION_ID, RefreshPolicy};

use super::resource_servers::api_from_row;
use super::{Store, json_list, to_json};
use crate::backend::{BeginWrite as _, Fetch};
use crate::lists::{
    Bind, Checkpoint, CheckpointPage, ClientFilter, ClientGrantFilter, Page, Slice, Sql,
};
use crate::records::{ClientUpdate, MachineAccess};
use crate::{StoreError, StoreResult};

macro_rules! client_columns {
    () => {
        "client_id, name, app_type, secret_hash, token_endpoint_auth_method, callbacks, \
     web_origins, allowed_logout_urls, grant_types, is_first_party, created_at, updated_at, \
         refresh_token_lifetime, refresh_idle_token_lifetime, refresh_reuse_interval, allowed_apis, \
         profile, require_pushed_authorization_requests, private_key_jwt_credentials, oidc_logout"
    };
}

pub(super) const CLIENT_SELECT: &str = concat!("SELECT ", client_columns!());
/// Applications by page: oldest first. By checkpoint: by `client_id`.
pub(super) const CLIENT_ORDER: &str = " ORDER BY created_at, client_id";
pub(super) const CLIENT_KEY: &str = "client_id";
/// Client grants by page: oldest first. By checkpoint: by id.
pub(super) const GRANT_ORDER: &str = " ORDER BY created_at, id";
pub(super) const GRANT_KEY: &str = "id";

fn client_from_row(row: &(impl Fetch + ?Sized), prefix: &str) -> StoreResult<Client> {
    let c = |name: &str| format!("{prefix}{name}");
    let app_type: String = row.col(c("app_type").as_str())?;
    Ok(Client {
        client_id: row.col(c("client_id").as_str())?,
        name: row.col(c("name").as_str())?,
        app_type: AppType::parse(&app_type).ok_or(StoreError::Corrupt("app_type"))?,
        secret_hash: row.col(c("secret_hash").as_str())?,
        token_endpoint_auth_method: row.col(c("token_endpoint_auth_method").as_str())?,
        callbacks: json_list(&row.text(c("callbacks").as_str())?)?,
        web_origins: json_list(&row.text(c("web_origins").as_str())?)?,
        allowed_logout_urls: json_list(&row.text(c("allowed_logout_urls").as_str())?)?,
        grant_types: json_list(&row.text(c("grant_types").as_str())?)?,
        is_first_party: row.col(c("is_first_party").as_str())?,
        allowed_apis: row
            .opt_text(c("allowed_apis").as_str())?
            .map(|text| json_list(&text))
            .transpose()?,
        refresh: RefreshPolicy {
            token_lifetime: row.col(c("refresh_token_lifetime").as_str())?,
            idle_token_lifetime: row.col(c("refresh_idle_token_lifetime").as_str())?,
            reuse_interval: row.col(c("refresh_reuse_interval").as_str())?,
        },
        profile: serde_json::from_str(&row.text(c("profile").as_str())?)
            .map_err(|_| StoreError::Corrupt("profile"))?,
        require_pushed_authorization_requests: row
            .col(c("require_pushed_authorization_requests").as_str())?,
        private_key_jwt_credentials: row
            .opt_text(c("private_key_jwt_credentials").as_str())?
            .map(|text| json_list(&text))
            .transpose()?,
        created_at: row.col(c("created_at").as_str())?,
        updated_at: row.col(c("updated_at").as_str())?,
        oidc_logout: row
            .opt_text(c("oidc_logout").as_str())?
            .map(|text| serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("oidc_logout")))
            .transpose()?,
    })
}

macro_rules! grant_columns {
    () => {
        "id, client_id, audience, scope, created_at"
    };
}

pub(super) const GRANT_SELECT: &str = concat!("SELECT ", grant_columns!());

fn grant_from_row(row: &(impl Fetch + ?Sized), prefix: &str) -> StoreResult<ClientGrant> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(ClientGrant {
        id: row.col(c("id").as_str())?,
        client_id: row.col(c("client_id").as_str())?,
        audience: row.col(c("audience").as_str())?,
        scope: json_list(&row.text(c("scope").as_str())?)?,
        created_at: row.col(c("created_at").as_str())?,
    })
}

impl Store {
    /// Creates an application, enabled for the default database connection (as a new
    /// Auth0 application is).
    pub async fn create_client(&self, client: &Client) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(concat!(
            "INSERT INTO clients (tenant_id, ",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        ))
        .bind(self.tenant)
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(client.app_type.as_str())
        .bind(&client.secret_hash)
        .bind(&client.token_endpoint_auth_method)
        .bind(to_json(&client.callbacks))
        .bind(to_json(&client.web_origins))
        .bind(to_json(&client.allowed_logout_urls))
        .bind(to_json(&client.grant_types))
        .bind(client.is_first_party)
        .bind(client.created_at)
        .bind(client.updated_at)
        .bind(client.refresh.token_lifetime)
        .bind(client.refresh.idle_token_lifetime)
        .bind(client.refresh.reuse_interval)
        .bind(client.allowed_apis.as_ref().map(to_json))
        .bind(to_json(&client.profile))
        .bind(client.require_pushed_authorization_requests)
        .bind(client.private_key_jwt_credentials.as_ref().map(to_json))
        .bind(client.oidc_logout.as_ref().map(to_json))
        .execute(&mut *tx)
        .await?;
            sqlx::query(
                "INSERT INTO connection_clients (tenant_id, connection_id, client_id) \
                 VALUES ($1, $2, $3)",
            )
            .bind(self.tenant)
            .bind(DATABASE_CONNECTION_ID)
            .bind(&client.client_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// One page of applications matching `filter`, oldest first (`created_at`, then
    /// `client_id`). Tessera's system applications are never among them.
    pub async fn list_clients(
        &self,
        filter: &ClientFilter,
        slice: Slice,
    ) -> StoreResult<Page<Client>> {
        self.page_of(
            CLIENT_SELECT,
            &self.client_filter(filter),
            CLIENT_ORDER,
            slice,
            |row| client_from_row(row, ""),
        )
        .await
    }

    /// Applications matching `filter` by checkpoint, in `client_id` order.
    pub async fn clients_from(
        &self,
        filter: &ClientFilter,
        checkpoint: Checkpoint<'_>,
    ) -> StoreResult<CheckpointPage<Client>> {
        self.checkpoint_of(
            CLIENT_SELECT,
            self.client_filter(filter),
            CLIENT_KEY,
            checkpoint,
            |row| client_from_row(row, ""),
            |client: &Client| client.client_id.clone(),
        )
        .await
    }

    pub(super) fn client_filter(&self, filter: &ClientFilter) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM clients WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        // Tessera's own applications (the dashboard's) are never listed: Auth0's tools
        // would export, copy or delete them. Left out here, so pages and totals agree.
        let system = tessera_core::system::SYSTEM_CLIENT_IDS;
        let marks = vec!["?"; system.len()].join(", ");
        sql.push(
            &format!(" AND client_id NOT IN ({marks})"),
            system.iter().map(|id| Bind::Text(id.to_string())),
        );
        if let Some(types) = &filter.app_types {
            sql.push_in("app_type", types);
        }
        if let Some(first_party) = filter.is_first_party {
            sql.push(" AND is_first_party = ?", [Bind::Bool(first_party)]);
        }
        if let Some(ids) = &filter.client_ids {
            sql.push_in("client_id", ids);
        }
        sql
    }

    pub async fn find_client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE tenant_id = $1 AND client_id = $2"
            ))
            .bind(self.tenant)
            .bind(client_id)
            .fetch_optional(pool)
            .await?;
            row.map(|r| client_from_row(&r, "")).transpose()
        })
    }

    /// Finds a client by exact name (CLI convenience; names are not unique, the oldest wins).
    pub async fn find_client_by_name(&self, name: &str) -> StoreResult<Option<Client>> {
        Ok(self.clients_named(name, 1).await?.into_iter().next())
    }

    /// Up to `limit` clients with exactly this name, oldest first.
    pub async fn clients_named(&self, name: &str, limit: u32) -> StoreResult<Vec<Client>> {
        let mut filter = Sql::default();
        filter.push(
            " FROM clients WHERE tenant_id = ? AND name = ?",
            [Bind::Text(self.tenant.into()), Bind::Text(name.into())],
        );
        let page = self
            .page_of(
                concat!("SELECT ", client_columns!()),
                &filter,
                " ORDER BY created_at, client_id",
                Slice::first(limit),
                |row| client_from_row(row, ""),
            )
            .await?;
        Ok(page.items)
    }

    pub async fn update_client(
        &self,
        client_id: &str,
        update: &ClientUpdate,
        now: i64,
    ) -> StoreResult<Client> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(for_update!(
                pg,
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE tenant_id = $1 AND client_id = $2"
            ))
            .bind(self.tenant)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("application"))?;
            let mut client = client_from_row(&row, "")?;
            if let Some(name) = &update.name {
                client.name = name.clone();
            }
            if let Some(list) = &update.callbacks {
                client.callbacks = list.clone();
            }
            if let Some(list) = &update.web_origins {
                client.web_origins = list.clone();
            }
            if let Some(list) = &update.allowed_logout_urls {
                client.allowed_logout_urls = list.clone();
            }
            if let Some(list) = &update.grant_types {
                client.grant_types = list.clone();
            }
            if let Some(hash) = &update.secret_hash {
                client.secret_hash = Some(hash.clone());
            }
            if let Some(first_party) = update.is_first_party {
                client.is_first_party = first_party;
            }
            if let Some(refresh) = update.refresh {
                client.refresh = refresh;
            }
            if let Some(allowed) = &update.allowed_apis {
                client.allowed_apis = allowed.clone();
            }
            if let Some(method) = &update.token_endpoint_auth_method {
                client.token_endpoint_auth_method = method.clone();
            }
            if let Some(profile) = &update.profile {
                client.profile = profile.clone();
            }
            if let Some(required) = update.require_pushed_authorization_requests {
                client.require_pushed_authorization_requests = required;
            }
            if let Some(credentials) = &update.private_key_jwt_credentials {
                client.private_key_jwt_credentials = credentials.clone();
            }
            if let Some(logout) = &update.oidc_logout {
                client.oidc_logout = logout.clone();
            }
            client.updated_at = now;
            sqlx::query(
            "UPDATE clients SET name = $1, callbacks = $2, web_origins = $3, allowed_logout_urls = $4, grant_types = $5, \
             secret_hash = $6, is_first_party = $7, updated_at = $8, refresh_token_lifetime = $9, \
             refresh_idle_token_lifetime = $10, refresh_reuse_interval = $11, allowed_apis = $12, \
             token_endpoint_auth_method = $13, profile = $14, \
             require_pushed_authorization_requests = $15, private_key_jwt_credentials = $16, \
             oidc_logout = $17 WHERE tenant_id = $18 AND client_id = $19",
        )
        .bind(&client.name)
        .bind(to_json(&client.callbacks))
        .bind(to_json(&client.web_origins))
        .bind(to_json(&client.allowed_logout_urls))
        .bind(to_json(&client.grant_types))
        .bind(&client.secret_hash)
        .bind(client.is_first_party)
        .bind(client.updated_at)
        .bind(client.refresh.token_lifetime)
        .bind(client.refresh.idle_token_lifetime)
        .bind(client.refresh.reuse_interval)
        .bind(client.allowed_apis.as_ref().map(to_json))
        .bind(&client.token_endpoint_auth_method)
        .bind(to_json(&client.profile))
        .bind(client.require_pushed_authorization_requests)
        .bind(client.private_key_jwt_credentials.as_ref().map(to_json))
        .bind(client.oidc_logout.as_ref().map(to_json))
        .bind(self.tenant)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
            tx.commit().await?;
            Ok(client)
        })
    }

    pub async fn delete_client(&self, client_id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query("DELETE FROM clients WHERE tenant_id = $1 AND client_id = $2")
                .bind(self.tenant)
                .bind(client_id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("application"));
            }
            Ok(())
        })
    }

    /// Whether `origin` is an allowed web origin of any application (CORS for the
    /// browser-facing endpoints; trailing slashes in registrations are tolerated).
    pub async fn origin_registered(&self, origin: &str) -> StoreResult<bool> {
        each!(self, |pool, pg| {
            let row = sqlx::query(if pg {
                "SELECT EXISTS (SELECT 1 FROM clients, \
                 jsonb_array_elements_text(clients.web_origins::jsonb) AS o(value) \
                 WHERE clients.tenant_id = $1 AND (o.value = $2 OR o.value = $2 || '/')) AS found"
            } else {
                "SELECT EXISTS (SELECT 1 FROM clients, json_each(clients.web_origins) AS o \
                 WHERE clients.tenant_id = $1 AND (o.value = $2 OR o.value = $2 || '/')) AS found"
            })
            .bind(self.tenant)
            .bind(origin)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get::<bool, _>("found")?)
        })
    }

    // ---- client grants -----------------------------------------------------------------

    pub async fn create_client_grant(&self, grant: &ClientGrant) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO client_grants (tenant_id, id, client_id, audience, scope, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.tenant)
        .bind(&grant.id)
        .bind(&grant.client_id)
        .bind(&grant.audience)
        .bind(to_json(&grant.scope))
        .bind(grant.created_at)
        .execute(pool)
        .await
        .map_err(|e| {
            StoreError::from(e)
                .conflict_is("a grant for this application and API")
                .not_found_is("application or API")
        })?;
            Ok(())
        })
    }

    /// One page of client grants matching `filter`, oldest first (`created_at`, then id).
    pub async fn list_client_grants(
        &self,
        filter: ClientGrantFilter<'_>,
        slice: Slice,
    ) -> StoreResult<Page<ClientGrant>> {
        self.page_of(
            GRANT_SELECT,
            &self.grant_filter(filter),
            GRANT_ORDER,
            slice,
            |row| grant_from_row(row, ""),
        )
        .await
    }

    /// Client grants matching `filter` by checkpoint, in id order.
    pub async fn client_grants_from(
        &self,
        filter: ClientGrantFilter<'_>,
        checkpoint: Checkpoint<'_>,
    ) -> StoreResult<CheckpointPage<ClientGrant>> {
        self.checkpoint_of(
            GRANT_SELECT,
            self.grant_filter(filter),
            GRANT_KEY,
            checkpoint,
            |row| grant_from_row(row, ""),
            |grant: &ClientGrant| grant.id.clone(),
        )
        .await
    }

    pub(super) fn grant_filter(&self, filter: ClientGrantFilter<'_>) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM client_grants WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        if let Some(client_id) = filter.client_id {
            sql.push(" AND client_id = ?", [Bind::Text(client_id.into())]);
        }
        if let Some(audience) = filter.audience {
            sql.push(" AND audience = ?", [Bind::Text(audience.into())]);
        }
        sql
    }

    pub async fn find_client_grant(&self, id: &str) -> StoreResult<Option<ClientGrant>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                grant_columns!(),
                " FROM client_grants WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?;
            row.map(|r| grant_from_row(&r, "")).transpose()
        })
    }

    pub async fn update_client_grant(
        &self,
        id: &str,
        scope: &[String],
    ) -> StoreResult<ClientGrant> {
        each!(self, |pool| {
            let row = sqlx::query(
                "UPDATE client_grants SET scope = $1 WHERE tenant_id = $2 AND id = $3 \
             RETURNING id, client_id, audience, scope, created_at",
            )
            .bind(to_json(&scope))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NotFound("client grant"))?;
            grant_from_row(&row, "")
        })
    }

    pub async fn delete_client_grant(&self, id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query("DELETE FROM client_grants WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant)
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("client grant"));
            }
            Ok(())
        })
    }

    /// The client, the API named by `audience` and the grant between them, in one query:
    /// this is the hot path of the client-credentials grant.
    pub async fn machine_access(
        &self,
        client_id: &str,
        audience: &str,
    ) -> StoreResult<Option<MachineAccess>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT c.client_id AS c_client_id, c.name AS c_name, c.app_type AS c_app_type, \
               c.secret_hash AS c_secret_hash, c.token_endpoint_auth_method AS c_token_endpoint_auth_method, \
               c.callbacks AS c_callbacks, c.web_origins AS c_web_origins, c.allowed_logout_urls AS c_allowed_logout_urls, \
               c.grant_types AS c_grant_types, c.is_first_party AS c_is_first_party, c.created_at AS c_created_at, \
               c.updated_at AS c_updated_at, c.refresh_token_lifetime AS c_refresh_token_lifetime, \
               c.refresh_idle_token_lifetime AS c_refresh_idle_token_lifetime, \
               c.refresh_reuse_interval AS c_refresh_reuse_interval, c.allowed_apis AS c_allowed_apis, c.profile AS c_profile, \
               c.require_pushed_authorization_requests AS c_require_pushed_authorization_requests, \
               c.private_key_jwt_credentials AS c_private_key_jwt_credentials, c.oidc_logout AS c_oidc_logout, \
               r.id AS r_id, r.name AS r_name, r.identifier AS r_identifier, r.signing_alg AS r_signing_alg, \
               r.token_lifetime AS r_token_lifetime, r.token_lifetime_for_web AS r_token_lifetime_for_web, r.allow_offline_access AS r_allow_offline_access, \
               r.token_dialect AS r_token_dialect, r.enforce_policies AS r_enforce_policies, r.scopes AS r_scopes, \
               r.created_at AS r_created_at, r.updated_at AS r_updated_at, \
               r.proof_of_possession AS r_proof_of_possession, \
               g.id AS g_id, g.client_id AS g_client_id, g.audience AS g_audience, g.scope AS g_scope, \
               g.created_at AS g_created_at \
             FROM clients c \
             LEFT JOIN resource_servers r ON r.tenant_id = c.tenant_id AND r.identifier = $1 \
             LEFT JOIN client_grants g ON g.tenant_id = c.tenant_id AND g.client_id = c.client_id AND g.audience = $2 \
             WHERE c.tenant_id = $3 AND c.client_id = $4",
        )
        .bind(audience)
        .bind(audience)
        .bind(self.tenant)
        .bind(client_id)
        .fetch_optional(pool)
        .await?;
            let Some(row) = row else { return Ok(None) };
            let client = client_from_row(&row, "c_")?;
            let api_id: Option<String> = row.try_get("r_id")?;
            let api = match api_id {
                Some(_) => Some(api_from_row(&row, "r_")?),
                None => None,
            };
            let grant_id: Option<String> = row.try_get("g_id")?;
            let grant = match grant_id {
                Some(_) => Some(grant_from_row(&row, "g_")?),
                None => None,
            };
            Ok(Some(MachineAccess { client, api, grant }))
        })
    }
}
