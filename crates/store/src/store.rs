//! Every method of `Store`, written once for both backends: `each!` expands a body once
//! per backend with `pool` bound to that backend's pool, so the same SQL text (with `$N`
//! placeholders, which SQLite accepts too) runs on both. Where the dialects differ, `pg`
//! picks the statement.

use sqlx::Row;
use tessera_core::consent::Consent;
use tessera_core::{
    AppType, Client, ClientGrant, DATABASE_CONNECTION, Metadata, Permission, RefreshPolicy,
    ResourceServer, Role, Scope, TokenDialect, User,
};

use crate::backend::{BeginWrite as _, Fetch};
use crate::records::*;
use crate::{Backend, PURGE_BATCH, Store, StoreError, StoreResult};

/// `each!(self, |pool| body)` or `each!(self, |pool, pg| body)`: the body once per
/// backend, `pool` being its pool and `pg` whether it is PostgreSQL. The body evaluates
/// to a `StoreResult`; `return` and `?` end it with their value. On PostgreSQL the call
/// passes the circuit breaker first (`breaker.rs`), which then learns from its outcome.
macro_rules! each {
    ($self:ident, |$pool:ident| $body:expr) => {
        each!($self, |$pool, _pg| $body)
    };
    ($self:ident, |$pool:ident, $pg:ident| $body:expr) => {
        match &$self.backend {
            Backend::Sqlite($pool) => {
                let $pg = false;
                $body
            }
            Backend::Postgres($pool) => {
                let $pg = true;
                let call = $self.breaker.admit()?;
                let result: StoreResult<_> = async { $body }.await;
                $self
                    .breaker
                    .record(call, &result, || crate::backend::can_connect($pool))
                    .await;
                result
            }
        }
    };
}

fn json_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("JSON list"))
}

fn json_object(text: &str) -> StoreResult<Metadata> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("JSON object"))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data always serializes")
}

macro_rules! client_columns {
    () => {
        "client_id, name, app_type, secret_hash, token_endpoint_auth_method, callbacks, \
     web_origins, allowed_logout_urls, grant_types, is_first_party, created_at, updated_at, \
         refresh_token_lifetime, refresh_idle_token_lifetime, refresh_reuse_interval, allowed_apis"
    };
}

macro_rules! api_columns {
    () => {
        "id, name, identifier, signing_alg, token_lifetime, allow_offline_access, \
     token_dialect, enforce_policies, scopes, created_at, updated_at"
    };
}

macro_rules! user_columns {
    () => {
        "user_id, connection, email, email_verified, name, nickname, picture, blocked, \
     created_at, updated_at, last_login, logins_count, user_metadata, app_metadata"
    };
}

fn client_from_row(row: &impl Fetch, prefix: &str) -> StoreResult<Client> {
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
        created_at: row.col(c("created_at").as_str())?,
        updated_at: row.col(c("updated_at").as_str())?,
    })
}

fn api_from_row(row: &impl Fetch, prefix: &str) -> StoreResult<ResourceServer> {
    let c = |name: &str| format!("{prefix}{name}");
    let dialect: String = row.col(c("token_dialect").as_str())?;
    let scopes: String = row.col(c("scopes").as_str())?;
    Ok(ResourceServer {
        id: row.col(c("id").as_str())?,
        name: row.col(c("name").as_str())?,
        identifier: row.col(c("identifier").as_str())?,
        signing_alg: row.col(c("signing_alg").as_str())?,
        token_lifetime: row.col(c("token_lifetime").as_str())?,
        allow_offline_access: row.col(c("allow_offline_access").as_str())?,
        token_dialect: TokenDialect::parse(&dialect).ok_or(StoreError::Corrupt("token_dialect"))?,
        enforce_policies: row.col(c("enforce_policies").as_str())?,
        scopes: serde_json::from_str::<Vec<Scope>>(&scopes)
            .map_err(|_| StoreError::Corrupt("scopes"))?,
        created_at: row.col(c("created_at").as_str())?,
        updated_at: row.col(c("updated_at").as_str())?,
    })
}

fn grant_from_row(row: &impl Fetch, prefix: &str) -> StoreResult<ClientGrant> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(ClientGrant {
        id: row.col(c("id").as_str())?,
        client_id: row.col(c("client_id").as_str())?,
        audience: row.col(c("audience").as_str())?,
        scope: json_list(&row.text(c("scope").as_str())?)?,
        created_at: row.col(c("created_at").as_str())?,
    })
}

fn user_from_row(row: &impl Fetch) -> StoreResult<User> {
    Ok(User {
        user_id: row.col("user_id")?,
        connection: row.col("connection")?,
        email: row.col("email")?,
        email_verified: row.col("email_verified")?,
        name: row.col("name")?,
        nickname: row.col("nickname")?,
        picture: row.col("picture")?,
        blocked: row.col("blocked")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
        last_login: row.col("last_login")?,
        logins_count: row.col("logins_count")?,
        user_metadata: json_object(&row.text("user_metadata")?)?,
        app_metadata: json_object(&row.text("app_metadata")?)?,
    })
}

macro_rules! consent_columns {
    () => {
        "id, user_id, client_id, audience, scopes, created_at, updated_at"
    };
}

fn consent_from_row(row: &impl Fetch) -> StoreResult<Consent> {
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

fn role_from_row(row: &impl Fetch) -> StoreResult<Role> {
    Ok(Role {
        id: row.col("id")?,
        name: row.col("name")?,
        description: row.col("description")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

fn permission_from_row(row: &impl Fetch) -> StoreResult<Permission> {
    Ok(Permission {
        audience: row.col("audience")?,
        permission: row.col("permission")?,
    })
}

fn key_from_row(row: &impl Fetch) -> StoreResult<SigningKeyRecord> {
    let state: String = row.col("state")?;
    Ok(SigningKeyRecord {
        kid: row.col("kid")?,
        alg: row.col("alg")?,
        state: KeyState::parse(&state).ok_or(StoreError::Corrupt("key state"))?,
        sealed_private_key: row.col("private_key")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

macro_rules! rotation_select {
    () => {
        "SELECT t.rotated_at, t.idle_expires_at, f.family_id, f.client_id, f.user_id, f.\"grant\", \
         f.expires_at, f.revoked_at \
         FROM refresh_tokens t JOIN refresh_token_families f \
         ON f.tenant_id = t.tenant_id AND f.family_id = t.family_id \
         WHERE t.tenant_id = $1 AND t.token_hash = $2"
    };
}

fn code_from_row(row: &impl Fetch) -> StoreResult<CodeRecord> {
    Ok(CodeRecord {
        client_id: row.col("client_id")?,
        user_id: row.col("user_id")?,
        redirect_uri: row.col("redirect_uri")?,
        grant: row.col("grant")?,
        expires_at: row.col("expires_at")?,
    })
}

/// A default avatar, as Auth0 gives users without one: an inline SVG with the initials,
/// so nothing is loaded from a third-party host.
fn default_picture(email: &str) -> String {
    let initials: String = email
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(2)
        .collect::<String>()
        .to_uppercase();
    let svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64'><rect width='64' height='64' fill='%234f46e5'/>\
<text x='50%' y='54%' font-family='sans-serif' font-size='26' fill='white' text-anchor='middle' dominant-baseline='middle'>{initials}</text></svg>"
    );
    format!(
        "data:image/svg+xml;utf8,{}",
        svg.replace('<', "%3C")
            .replace('>', "%3E")
            .replace(' ', "%20")
    )
}

const INSERT_KEY: &str = "INSERT INTO signing_keys \
    (tenant_id, kid, alg, state, private_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// PostgreSQL: what `BEGIN IMMEDIATE` gives SQLite for key changes — one writer at a time
/// across every node (readers go on), so two nodes starting together create one key set.
const LOCK_SIGNING_KEYS: &str = "LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE";

/// PostgreSQL: consent is read, merged and written back; one writer at a time, so that
/// concurrent answers both count (and a first answer is not inserted twice).
const LOCK_CONSENTS: &str = "LOCK TABLE consents IN SHARE ROW EXCLUSIVE MODE";

impl Store {
    /// A cheap liveness probe.
    pub async fn ping(&self) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    // ---- signing keys -------------------------------------------------------------

    /// Keys that are published (next, current, previous), oldest first.
    pub async fn published_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT kid, alg, state, private_key, created_at, updated_at FROM signing_keys \
             WHERE tenant_id = $1 AND state != 'retired' ORDER BY created_at, kid",
            )
            .bind(self.tenant)
            .fetch_all(pool)
            .await?;
            rows.iter().map(key_from_row).collect()
        })
    }

    /// Every key, retired ones included (for `keys list`).
    pub async fn all_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT kid, alg, state, private_key, created_at, updated_at FROM signing_keys \
             WHERE tenant_id = $1 ORDER BY created_at, kid",
            )
            .bind(self.tenant)
            .fetch_all(pool)
            .await?;
            rows.iter().map(key_from_row).collect()
        })
    }

    /// A short fingerprint of the published key set, polled to notice rotations made by
    /// another process (the CLI) without reading the sealed keys.
    pub async fn key_set_version(&self) -> StoreResult<String> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT COALESCE(string_agg(kid || ':' || state, ',' ORDER BY kid), '') AS v \
                 FROM signing_keys WHERE tenant_id = $1 AND state != 'retired'",
            )
            .bind(self.tenant)
            .fetch_one(pool)
            .await?;
            Ok(row.try_get("v")?)
        })
    }

    /// Inserts keys for algorithms that have none yet. Returns how many were inserted;
    /// safe to race with another process doing the same.
    pub async fn insert_keys_if_missing(&self, keys: &[SigningKeyRecord]) -> StoreResult<usize> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(Some(LOCK_SIGNING_KEYS)).await?;
            let mut inserted = 0;
            for key in keys {
                let exists = sqlx::query(
                    "SELECT 1 FROM signing_keys WHERE tenant_id = $1 AND alg = $2 AND state = $3",
                )
                .bind(self.tenant)
                .bind(&key.alg)
                .bind(key.state.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
                if !exists {
                    sqlx::query(INSERT_KEY)
                        .bind(self.tenant)
                        .bind(&key.kid)
                        .bind(&key.alg)
                        .bind(key.state.as_str())
                        .bind(&key.sealed_private_key)
                        .bind(key.created_at)
                        .bind(key.updated_at)
                        .execute(&mut *tx)
                        .await?;
                    inserted += 1;
                }
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    /// Rotates one algorithm's keys: previous → retired, current → previous,
    /// next → current, and `new_next` becomes next. One transaction.
    pub async fn rotate_keys(
        &self,
        alg: &str,
        new_next: &SigningKeyRecord,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(Some(LOCK_SIGNING_KEYS)).await?;
            for (from, to) in [
                ("previous", "retired"),
                ("current", "previous"),
                ("next", "current"),
            ] {
                sqlx::query("UPDATE signing_keys SET state = $1, updated_at = $2 WHERE tenant_id = $3 AND alg = $4 AND state = $5")
                .bind(to)
                .bind(now)
                .bind(self.tenant)
                .bind(alg)
                .bind(from)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(INSERT_KEY)
                .bind(self.tenant)
                .bind(&new_next.kid)
                .bind(&new_next.alg)
                .bind(new_next.state.as_str())
                .bind(&new_next.sealed_private_key)
                .bind(new_next.created_at)
                .bind(new_next.updated_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    // ---- resource servers (APIs) ------------------------------------------------------

    pub async fn create_resource_server(&self, api: &ResourceServer) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO resource_servers (tenant_id, id, name, identifier, signing_alg, token_lifetime, \
             allow_offline_access, token_dialect, enforce_policies, scopes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
        .execute(pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("an API with this identifier"),
            other => other,
        })?;
            Ok(())
        })
    }

    pub async fn list_resource_servers(&self) -> StoreResult<Vec<ResourceServer>> {
        each!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                api_columns!(),
                " FROM resource_servers WHERE tenant_id = $1 ORDER BY created_at, id"
            ))
            .bind(self.tenant)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| api_from_row(r, "")).collect()
        })
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
            let row = sqlx::query(if pg {
                concat!(
                    "SELECT ",
                    api_columns!(),
                    " FROM resource_servers WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
                )
            } else {
                concat!(
                    "SELECT ",
                    api_columns!(),
                    " FROM resource_servers WHERE tenant_id = $1 AND id = $2"
                )
            })
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
            api.updated_at = now;
            sqlx::query(
            "UPDATE resource_servers SET name = $1, scopes = $2, signing_alg = $3, token_lifetime = $4, \
             allow_offline_access = $5, token_dialect = $6, enforce_policies = $7, updated_at = $8 \
             WHERE tenant_id = $9 AND id = $10",
        )
        .bind(&api.name)
        .bind(to_json(&api.scopes))
        .bind(&api.signing_alg)
        .bind(api.token_lifetime)
        .bind(api.allow_offline_access)
        .bind(api.token_dialect.as_str())
        .bind(api.enforce_policies)
        .bind(api.updated_at)
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

    // ---- clients (applications) -------------------------------------------------------

    pub async fn create_client(&self, client: &Client) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(concat!(
            "INSERT INTO clients (tenant_id, ",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
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
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    pub async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        each!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE tenant_id = $1 ORDER BY created_at, client_id"
            ))
            .bind(self.tenant)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| client_from_row(r, "")).collect()
        })
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
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE tenant_id = $1 AND name = $2 ORDER BY created_at LIMIT 1"
            ))
            .bind(self.tenant)
            .bind(name)
            .fetch_optional(pool)
            .await?;
            row.map(|r| client_from_row(&r, "")).transpose()
        })
    }

    pub async fn update_client(
        &self,
        client_id: &str,
        update: &ClientUpdate,
        now: i64,
    ) -> StoreResult<Client> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(if pg {
                concat!(
                    "SELECT ",
                    client_columns!(),
                    " FROM clients WHERE tenant_id = $1 AND client_id = $2 FOR UPDATE"
                )
            } else {
                concat!(
                    "SELECT ",
                    client_columns!(),
                    " FROM clients WHERE tenant_id = $1 AND client_id = $2"
                )
            })
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
            client.updated_at = now;
            sqlx::query(
            "UPDATE clients SET name = $1, callbacks = $2, web_origins = $3, allowed_logout_urls = $4, grant_types = $5, \
             secret_hash = $6, is_first_party = $7, updated_at = $8, refresh_token_lifetime = $9, \
             refresh_idle_token_lifetime = $10, refresh_reuse_interval = $11, allowed_apis = $12 \
             WHERE tenant_id = $13 AND client_id = $14",
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
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("a grant for this application and API"),
            StoreError::NotFound(_) => StoreError::NotFound("application or API"),
            other => other,
        })?;
            Ok(())
        })
    }

    pub async fn list_client_grants(
        &self,
        client_id: Option<&str>,
    ) -> StoreResult<Vec<ClientGrant>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, client_id, audience, scope, created_at FROM client_grants \
             WHERE tenant_id = $1 AND ($2 IS NULL OR client_id = $3) ORDER BY created_at, id",
            )
            .bind(self.tenant)
            .bind(client_id)
            .bind(client_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| grant_from_row(r, "")).collect()
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
               c.refresh_reuse_interval AS c_refresh_reuse_interval, c.allowed_apis AS c_allowed_apis, \
               r.id AS r_id, r.name AS r_name, r.identifier AS r_identifier, r.signing_alg AS r_signing_alg, \
               r.token_lifetime AS r_token_lifetime, r.allow_offline_access AS r_allow_offline_access, \
               r.token_dialect AS r_token_dialect, r.enforce_policies AS r_enforce_policies, r.scopes AS r_scopes, \
               r.created_at AS r_created_at, r.updated_at AS r_updated_at, \
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

    // ---- users ---------------------------------------------------------------------------

    /// Creates a user of the database connection. `user_id` is generated here in Auth0's
    /// `auth0|<hex>` shape.
    pub async fn create_user(&self, new: &NewUser, user_id: &str, now: i64) -> StoreResult<User> {
        each!(self, |pool| {
            let email = tessera_core::normalize_email(&new.email);
            let user = User {
                user_id: user_id.to_string(),
                connection: DATABASE_CONNECTION.to_string(),
                name: new.name.clone().unwrap_or_else(|| email.clone()),
                nickname: new
                    .nickname
                    .clone()
                    .unwrap_or_else(|| User::nickname_from_email(&email)),
                picture: new
                    .picture
                    .clone()
                    .unwrap_or_else(|| default_picture(&email)),
                email,
                email_verified: new.email_verified,
                blocked: false,
                created_at: now,
                updated_at: now,
                last_login: None,
                logins_count: 0,
                user_metadata: new.user_metadata.clone(),
                app_metadata: new.app_metadata.clone(),
            };
            sqlx::query(
            "INSERT INTO users (tenant_id, user_id, connection, email, email_verified, password_hash, name, nickname, \
             picture, blocked, created_at, updated_at, last_login, logins_count, user_metadata, app_metadata) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE, $10, $11, NULL, 0, $12, $13)",
        )
        .bind(self.tenant)
        .bind(&user.user_id)
        .bind(&user.connection)
        .bind(&user.email)
        .bind(user.email_verified)
        .bind(&new.password_hash)
        .bind(&user.name)
        .bind(&user.nickname)
        .bind(&user.picture)
        .bind(now)
        .bind(now)
        .bind(to_json(&user.user_metadata))
        .bind(to_json(&user.app_metadata))
        .execute(pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("a user with this email"),
            other => other,
        })?;
            Ok(user)
        })
    }

    pub async fn find_user(&self, user_id: &str) -> StoreResult<Option<User>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE tenant_id = $1 AND user_id = $2"
            ))
            .bind(self.tenant)
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            row.map(|r| user_from_row(&r)).transpose()
        })
    }

    pub async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        Ok(self
            .find_user_with_password(email)
            .await?
            .map(|(user, _)| user))
    }

    /// The user of the database connection with this email, and their password hash.
    pub async fn find_user_with_password(
        &self,
        email: &str,
    ) -> StoreResult<Option<(User, Option<String>)>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                ", password_hash FROM users WHERE tenant_id = $1 AND connection = $2 AND email = $3"
            ))
            .bind(self.tenant)
            .bind(DATABASE_CONNECTION)
            .bind(tessera_core::normalize_email(email))
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?))),
                None => Ok(None),
            }
        })
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        each!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE tenant_id = $1 ORDER BY created_at, user_id"
            ))
            .bind(self.tenant)
            .fetch_all(pool)
            .await?;
            rows.iter().map(user_from_row).collect()
        })
    }

    pub async fn set_user_blocked(
        &self,
        user_id: &str,
        blocked: bool,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query(
            "UPDATE users SET blocked = $1, updated_at = $2 WHERE tenant_id = $3 AND user_id = $4",
        )
        .bind(blocked)
        .bind(now)
        .bind(self.tenant)
        .bind(user_id)
        .execute(pool)
        .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("user"));
            }
            if blocked {
                self.end_user_sessions(user_id, now).await?;
            }
            Ok(())
        })
    }

    pub async fn set_user_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE tenant_id = $3 AND user_id = $4")
            .bind(password_hash)
            .bind(now)
            .bind(self.tenant)
            .bind(user_id)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("user"));
            }
            self.end_user_sessions(user_id, now).await
        })
    }

    /// Changes the given profile fields of a user and `updated_at`; a new email must not
    /// belong to another user of the connection (`Conflict`).
    pub async fn update_user_profile(
        &self,
        user_id: &str,
        change: &UserProfileChange,
        now: i64,
    ) -> StoreResult<User> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(if pg {
                concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE"
                )
            } else {
                concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE tenant_id = $1 AND user_id = $2"
                )
            })
            .bind(self.tenant)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
            let mut user = user_from_row(&row)?;
            if let Some(email) = &change.email {
                user.email = tessera_core::normalize_email(email);
            }
            if let Some(verified) = change.email_verified {
                user.email_verified = verified;
            }
            if let Some(name) = &change.name {
                user.name = name.clone();
            }
            if let Some(nickname) = &change.nickname {
                user.nickname = nickname.clone();
            }
            if let Some(picture) = &change.picture {
                user.picture = picture.clone();
            }
            // Merged under the row lock, so concurrent patches of different members
            // both land.
            if let Some(patch) = &change.user_metadata {
                tessera_core::merge_metadata(&mut user.user_metadata, patch);
            }
            if let Some(patch) = &change.app_metadata {
                tessera_core::merge_metadata(&mut user.app_metadata, patch);
            }
            user.updated_at = now;
            sqlx::query(
                "UPDATE users SET email = $1, email_verified = $2, name = $3, nickname = $4, \
                 picture = $5, user_metadata = $6, app_metadata = $7, updated_at = $8 \
                 WHERE tenant_id = $9 AND user_id = $10",
            )
            .bind(&user.email)
            .bind(user.email_verified)
            .bind(&user.name)
            .bind(&user.nickname)
            .bind(&user.picture)
            .bind(to_json(&user.user_metadata))
            .bind(to_json(&user.app_metadata))
            .bind(now)
            .bind(self.tenant)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("a user with this email"),
                other => other,
            })?;
            tx.commit().await?;
            Ok(user)
        })
    }

    /// Signs a user out everywhere: login sessions end and refresh tokens are revoked.
    pub async fn end_user_sessions(&self, user_id: &str, now: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
                .bind(self.tenant)
                .bind(user_id)
                .execute(pool)
                .await?;
            self.revoke_refresh_families_of_user(user_id, now).await?;
            Ok(())
        })
    }

    pub async fn delete_user(&self, user_id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND user_id = $2")
                .bind(self.tenant)
                .bind(user_id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("user"));
            }
            Ok(())
        })
    }

    pub async fn record_login(&self, user_id: &str, now: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "UPDATE users SET last_login = $1, logins_count = logins_count + 1 WHERE tenant_id = $2 AND user_id = $3",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(user_id)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    // ---- brute-force protection -------------------------------------------------------

    /// Counts one more consecutive failure for (email, ip); returns the new count.
    pub async fn record_login_failure(&self, email: &str, ip: &str, now: i64) -> StoreResult<i64> {
        each!(self, |pool| {
            let row = sqlx::query(
            "INSERT INTO login_failures (tenant_id, email, ip, failures, updated_at) VALUES ($1, $2, $3, 1, $4) \
             ON CONFLICT (tenant_id, email, ip) DO UPDATE SET failures = login_failures.failures + 1, updated_at = excluded.updated_at \
             RETURNING failures",
        )
        .bind(self.tenant)
        .bind(tessera_core::normalize_email(email))
        .bind(ip)
        .bind(now)
        .fetch_one(pool)
        .await?;
            Ok(row.try_get("failures")?)
        })
    }

    pub async fn login_failures(&self, email: &str, ip: &str) -> StoreResult<i64> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT failures FROM login_failures WHERE tenant_id = $1 AND email = $2 AND ip = $3",
        )
        .bind(self.tenant)
        .bind(tessera_core::normalize_email(email))
        .bind(ip)
        .fetch_optional(pool)
        .await?;
            Ok(match row {
                Some(row) => row.try_get("failures")?,
                None => 0,
            })
        })
    }

    /// Clears the failures of an account: after a successful login (one IP) or an
    /// administrator's unblock (every IP, `ip = None`).
    pub async fn clear_login_failures(&self, email: &str, ip: Option<&str>) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("DELETE FROM login_failures WHERE tenant_id = $1 AND email = $2 AND ($3 IS NULL OR ip = $4)")
            .bind(self.tenant)
            .bind(tessera_core::normalize_email(email))
            .bind(ip)
            .bind(ip)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    // ---- password reset codes ----------------------------------------------------------

    /// Stores the user's reset code (hashed), replacing any earlier one and its tries.
    pub async fn put_password_reset_code(
        &self,
        user_id: &str,
        code_hash: &[u8],
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO password_reset_codes (tenant_id, user_id, code_hash, attempts, created_at, expires_at) \
                 VALUES ($1, $2, $3, 0, $4, $5) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET code_hash = excluded.code_hash, attempts = 0, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(code_hash)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Checks a presented reset code. Each try is counted before the code is compared, so
    /// concurrent tries cannot compare more than `max_attempts` times; the right code is
    /// deleted by exactly one presenter, and the code dies after `max_attempts` tries.
    pub async fn redeem_password_reset_code(
        &self,
        user_id: &str,
        code_hash: &[u8],
        now: i64,
        max_attempts: i64,
    ) -> StoreResult<ResetCodeCheck> {
        each!(self, |pool| {
            // Every try is counted before its code is compared, in one statement: however
            // many tries arrive at once, at most `max_attempts` of them are ever compared.
            let reserved = sqlx::query(
                "UPDATE password_reset_codes SET attempts = attempts + 1 WHERE tenant_id = $1 AND user_id = $2 \
                 AND expires_at > $3 AND attempts < $4 RETURNING code_hash, attempts",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(now)
            .bind(max_attempts)
            .fetch_optional(pool)
            .await?;
            let Some(reserved) = reserved else {
                // Dead codes (expired or out of tries) go now rather than at the next purge.
                sqlx::query(
                    "DELETE FROM password_reset_codes WHERE tenant_id = $1 AND user_id = $2 \
                     AND (expires_at <= $3 OR attempts >= $4)",
                )
                .bind(self.tenant)
                .bind(user_id)
                .bind(now)
                .bind(max_attempts)
                .execute(pool)
                .await?;
                return Ok(ResetCodeCheck::Missing);
            };
            let stored: Vec<u8> = reserved.try_get("code_hash")?;
            let attempts: i64 = reserved.try_get("attempts")?;
            if stored != code_hash {
                // Comparing hashes: their timing tells nothing about the code.
                return Ok(ResetCodeCheck::Wrong {
                    attempts_left: (max_attempts - attempts).max(0),
                });
            }
            // The right code: used up by whichever of its concurrent presenters deletes it.
            let won = sqlx::query(
                "DELETE FROM password_reset_codes WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3 \
                 RETURNING user_id",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(code_hash)
            .fetch_optional(pool)
            .await?;
            Ok(match won {
                Some(_) => ResetCodeCheck::Redeemed,
                None => ResetCodeCheck::Missing,
            })
        })
    }

    // ---- sessions ----------------------------------------------------------------------

    pub async fn create_session(
        &self,
        id_hash: &[u8],
        record: &SessionRecord,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO sessions (tenant_id, id_hash, sid, user_id, auth_time, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.tenant)
        .bind(id_hash)
        .bind(&record.sid)
        .bind(&record.user_id)
        .bind(record.auth_time)
        .bind(now)
        .bind(record.expires_at)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// A live session (not expired at `now`).
    pub async fn find_session(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT sid, user_id, auth_time, expires_at FROM sessions WHERE tenant_id = $1 AND id_hash = $2 AND expires_at > $3",
        )
        .bind(self.tenant)
        .bind(id_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            row.map(|row| {
                Ok(SessionRecord {
                    sid: row.try_get("sid")?,
                    user_id: row.try_get("user_id")?,
                    auth_time: row.try_get("auth_time")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .transpose()
        })
    }

    pub async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND id_hash = $2")
                .bind(self.tenant)
                .bind(id_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    // ---- login transactions ------------------------------------------------------------

    pub async fn create_transaction(
        &self,
        record: &TransactionRecord,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO login_transactions (tenant_id, id, csrf_hash, request, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.tenant)
        .bind(&record.id)
        .bind(&record.csrf_hash)
        .bind(&record.request)
        .bind(now)
        .bind(record.expires_at)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    pub async fn find_transaction(
        &self,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<TransactionRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT id, csrf_hash, request, expires_at FROM login_transactions WHERE tenant_id = $1 AND id = $2 AND expires_at > $3",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            row.map(|row| {
                Ok(TransactionRecord {
                    id: row.try_get("id")?,
                    csrf_hash: row.try_get("csrf_hash")?,
                    request: row.try_get("request")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .transpose()
        })
    }

    /// Deletes a transaction; `false` when it was gone already (used once, or expired and
    /// purged), so a transaction can be made single-use.
    pub async fn delete_transaction(&self, id: &str) -> StoreResult<bool> {
        each!(self, |pool| {
            let done =
                sqlx::query("DELETE FROM login_transactions WHERE tenant_id = $1 AND id = $2")
                    .bind(self.tenant)
                    .bind(id)
                    .execute(pool)
                    .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    // ---- authorization codes -----------------------------------------------------------

    pub async fn create_code(&self, code: &NewCode) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO authorization_codes (tenant_id, code_hash, client_id, user_id, redirect_uri, \"grant\", \
             created_at, expires_at, consumed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
        )
        .bind(self.tenant)
        .bind(&code.code_hash)
        .bind(&code.client_id)
        .bind(&code.user_id)
        .bind(&code.redirect_uri)
        .bind(&code.grant)
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// Marks a code consumed. Exactly one of any number of concurrent callers gets
    /// `Redeemed`: the `consumed_at IS NULL` condition and the update are one statement.
    pub async fn redeem_code(&self, code_hash: &[u8], now: i64) -> StoreResult<CodeRedemption> {
        each!(self, |pool| {
            let won = sqlx::query(
            "UPDATE authorization_codes SET consumed_at = $1 WHERE tenant_id = $2 AND code_hash = $3 AND consumed_at IS NULL \
             RETURNING client_id, user_id, redirect_uri, \"grant\", expires_at",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(code_hash)
        .fetch_optional(pool)
        .await?;
            if let Some(row) = won {
                return Ok(CodeRedemption::Redeemed(code_from_row(&row)?));
            }
            let used = sqlx::query(
            "SELECT client_id, user_id, redirect_uri, \"grant\", expires_at FROM authorization_codes WHERE tenant_id = $1 AND code_hash = $2",
        )
        .bind(self.tenant)
        .bind(code_hash)
        .fetch_optional(pool)
        .await?;
            match used {
                Some(row) => Ok(CodeRedemption::AlreadyUsed(code_from_row(&row)?)),
                None => Ok(CodeRedemption::NotFound),
            }
        })
    }

    /// Records that a consumed code was presented again by its client (a replay). Committed
    /// before the caller revokes what the code issued; see `code_was_replayed`.
    pub async fn mark_code_replayed(&self, code_hash: &[u8], now: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $1) WHERE tenant_id = $2 AND code_hash = $3",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(code_hash)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    /// Whether a replay of the code was recorded. The redemption's winner asks after its
    /// tokens are committed: either it sees the replay, or the replay's revocation (which
    /// runs after the mark is committed) sees its tokens.
    pub async fn code_was_replayed(&self, code_hash: &[u8]) -> StoreResult<bool> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT replayed_at FROM authorization_codes WHERE tenant_id = $1 AND code_hash = $2 AND replayed_at IS NOT NULL",
        )
        .bind(self.tenant)
        .bind(code_hash)
        .fetch_optional(pool)
        .await?;
            Ok(row.is_some())
        })
    }

    // ---- opaque access tokens ----------------------------------------------------------

    pub async fn create_opaque_token(
        &self,
        token_hash: &[u8],
        record: &OpaqueTokenRecord,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
            "INSERT INTO opaque_tokens (tenant_id, token_hash, client_id, user_id, scope, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(&record.client_id)
        .bind(&record.user_id)
        .bind(&record.scope)
        .bind(now)
        .bind(record.expires_at)
        .execute(pool)
        .await?;
            Ok(())
        })
    }

    pub async fn find_opaque_token(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<OpaqueTokenRecord>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT client_id, user_id, scope, expires_at FROM opaque_tokens WHERE tenant_id = $1 AND token_hash = $2 AND expires_at > $3",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            row.map(|row| {
                Ok(OpaqueTokenRecord {
                    client_id: row.try_get("client_id")?,
                    user_id: row.try_get("user_id")?,
                    scope: row.try_get("scope")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .transpose()
        })
    }

    /// Revokes the opaque tokens a user got through one client (a replayed code).
    pub async fn revoke_opaque_tokens(&self, client_id: &str, user_id: &str) -> StoreResult<u64> {
        each!(self, |pool| {
            let done = sqlx::query(
            "DELETE FROM opaque_tokens WHERE tenant_id = $1 AND client_id = $2 AND user_id = $3",
        )
        .bind(self.tenant)
        .bind(client_id)
        .bind(user_id)
        .execute(pool)
        .await?;
            Ok(done.rows_affected())
        })
    }

    // ---- refresh tokens -----------------------------------------------------------

    /// Starts a family with its first token.
    pub async fn create_refresh_family(
        &self,
        family: &NewRefreshFamily,
        token_hash: &[u8],
        idle_expires_at: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(
            "INSERT INTO refresh_token_families (tenant_id, family_id, client_id, user_id, \"grant\", code_hash, sid, \
             created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
        )
        .bind(self.tenant)
        .bind(&family.family_id)
        .bind(&family.client_id)
        .bind(&family.user_id)
        .bind(&family.grant)
        .bind(&family.code_hash)
        .bind(&family.sid)
        .bind(family.created_at)
        .bind(family.expires_at)
        .execute(&mut *tx)
        .await?;
            sqlx::query(
            "INSERT INTO refresh_tokens (tenant_id, token_hash, family_id, created_at, idle_expires_at, rotated_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(&family.family_id)
        .bind(family.created_at)
        .bind(idle_expires_at.min(family.expires_at))
        .execute(&mut *tx)
        .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The live family of a refresh token, read without changing anything (to validate a
    /// request before the token is rotated).
    pub async fn find_refresh_family(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<RefreshFamily>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT f.family_id, f.client_id, f.user_id, f.\"grant\", f.expires_at \
             FROM refresh_tokens t JOIN refresh_token_families f ON f.tenant_id = t.tenant_id AND f.family_id = t.family_id \
             WHERE t.tenant_id = $1 AND t.token_hash = $2 AND f.revoked_at IS NULL AND f.expires_at > $3",
        )
        .bind(self.tenant)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?;
            row.map(|row| {
                Ok(RefreshFamily {
                    family_id: row.try_get("family_id")?,
                    client_id: row.try_get("client_id")?,
                    user_id: row.try_get("user_id")?,
                    grant: row.try_get("grant")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .transpose()
        })
    }

    /// Exchanges `old_hash` for `new_hash`, in one write transaction so that concurrent
    /// presentations of the same token serialize: the first rotates, the others are reuse
    /// (outside the reuse interval) and revoke the family — including the new token.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &[u8],
        new_hash: &[u8],
        client_id: &str,
        timing: RefreshTiming,
        now: i64,
    ) -> StoreResult<RefreshRotation> {
        each!(self, |pool, pg| {
            // SQLite: the write transaction serializes everything. PostgreSQL: the token's
            // and its family's rows are locked; a concurrent use of the same token waits
            // here, then reads it rotated.
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(if pg {
                concat!(rotation_select!(), " FOR UPDATE")
            } else {
                rotation_select!()
            })
            .bind(self.tenant)
            .bind(old_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(RefreshRotation::Invalid);
            };
            let family = RefreshFamily {
                family_id: row.try_get("family_id")?,
                client_id: row.try_get("client_id")?,
                user_id: row.try_get("user_id")?,
                grant: row.try_get("grant")?,
                expires_at: row.try_get("expires_at")?,
            };
            let rotated_at: Option<i64> = row.try_get("rotated_at")?;
            let idle_expires_at: i64 = row.try_get("idle_expires_at")?;
            let revoked_at: Option<i64> = row.try_get("revoked_at")?;
            if family.client_id != client_id || revoked_at.is_some() || family.expires_at <= now {
                return Ok(RefreshRotation::Invalid);
            }
            match rotated_at {
                Some(at) if timing.reuse_interval <= 0 || now - at > timing.reuse_interval => {
                    sqlx::query("UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND family_id = $3")
                    .bind(now)
                    .bind(self.tenant)
                    .bind(&family.family_id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(RefreshRotation::Reused);
                }
                Some(_) => {} // a retry within the reuse interval: issue another token
                None if idle_expires_at <= now => return Ok(RefreshRotation::Invalid),
                None => {
                    sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE tenant_id = $2 AND token_hash = $3")
                    .bind(now)
                    .bind(self.tenant)
                    .bind(old_hash)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            sqlx::query(
            "INSERT INTO refresh_tokens (tenant_id, token_hash, family_id, created_at, idle_expires_at, rotated_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(self.tenant)
        .bind(new_hash)
        .bind(&family.family_id)
        .bind(now)
        .bind((now + timing.idle_lifetime).min(family.expires_at))
        .execute(&mut *tx)
        .await?;
            tx.commit().await?;
            Ok(RefreshRotation::Rotated(family))
        })
    }

    /// Revokes the family a refresh token belongs to, if that token was issued to
    /// `client_id` (RFC 7009: a client revokes only its own tokens). Returns whether
    /// anything was revoked.
    pub async fn revoke_refresh_token(
        &self,
        token_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let done = sqlx::query(
            "UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND client_id = $3 AND revoked_at IS NULL \
             AND family_id = (SELECT family_id FROM refresh_tokens WHERE tenant_id = $4 AND token_hash = $5)",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(client_id)
        .bind(self.tenant)
        .bind(token_hash)
        .execute(pool)
        .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Revokes the families started by a code (the code was replayed).
    pub async fn revoke_refresh_families_of_code(
        &self,
        code_hash: &[u8],
        now: i64,
    ) -> StoreResult<u64> {
        each!(self, |pool| {
            let done = sqlx::query(
            "UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND code_hash = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(code_hash)
        .execute(pool)
        .await?;
            Ok(done.rows_affected())
        })
    }

    /// Revokes the families obtained in one login session (logout).
    pub async fn revoke_refresh_families_of_session(
        &self,
        sid: &str,
        now: i64,
    ) -> StoreResult<u64> {
        each!(self, |pool| {
            let done = sqlx::query(
            "UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND sid = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(sid)
        .execute(pool)
        .await?;
            Ok(done.rows_affected())
        })
    }

    /// Revokes every family of a user (blocked, password changed).
    pub async fn revoke_refresh_families_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> StoreResult<u64> {
        each!(self, |pool| {
            let done = sqlx::query(
            "UPDATE refresh_token_families SET revoked_at = $1 WHERE tenant_id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(user_id)
        .execute(pool)
        .await?;
            Ok(done.rows_affected())
        })
    }

    // ---- consent ------------------------------------------------------------------

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

    // ---- roles and permissions (RBAC) ---------------------------------------------

    pub async fn create_role(&self, role: &Role) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("INSERT INTO roles (tenant_id, id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(self.tenant)
            .bind(&role.id)
            .bind(&role.name)
            .bind(&role.description)
            .bind(role.created_at)
            .bind(role.updated_at)
            .execute(pool)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("a role with this name"),
                other => other,
            })?;
            Ok(())
        })
    }

    pub async fn list_roles(&self) -> StoreResult<Vec<Role>> {
        each!(self, |pool| {
            let rows = sqlx::query(
            "SELECT id, name, description, created_at, updated_at FROM roles WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(self.tenant)
        .fetch_all(pool)
        .await?;
            rows.iter().map(role_from_row).collect()
        })
    }

    /// A role by id or by exact name.
    pub async fn find_role(&self, id_or_name: &str) -> StoreResult<Option<Role>> {
        each!(self, |pool| {
            let row = sqlx::query(
            "SELECT id, name, description, created_at, updated_at FROM roles WHERE tenant_id = $1 AND (id = $2 OR name = $3) \
             ORDER BY id = $4 DESC LIMIT 1",
        )
        .bind(self.tenant)
        .bind(id_or_name)
        .bind(id_or_name)
        .bind(id_or_name)
        .fetch_optional(pool)
        .await?;
            row.map(|r| role_from_row(&r)).transpose()
        })
    }

    /// Renames a role or changes its description (`None` keeps the stored value); the
    /// name stays unique (`Conflict`).
    pub async fn update_role(
        &self,
        role_id: &str,
        name: Option<&str>,
        description: Option<&str>,
        now: i64,
    ) -> StoreResult<Role> {
        each!(self, |pool| {
            let row = sqlx::query(
                "UPDATE roles SET name = COALESCE($1, name), description = COALESCE($2, description), \
                 updated_at = $3 WHERE tenant_id = $4 AND id = $5 \
                 RETURNING id, name, description, created_at, updated_at",
            )
            .bind(name)
            .bind(description)
            .bind(now)
            .bind(self.tenant)
            .bind(role_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict("a role with this name"),
                other => other,
            })?
            .ok_or(StoreError::NotFound("role"))?;
            role_from_row(&row)
        })
    }

    /// The users holding a role, oldest first.
    pub async fn role_users(&self, role_id: &str) -> StoreResult<Vec<User>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT u.user_id, u.connection, u.email, u.email_verified, u.name, u.nickname, \
                 u.picture, u.blocked, u.created_at, u.updated_at, u.last_login, u.logins_count, \
                 u.user_metadata, u.app_metadata \
                 FROM users u JOIN user_roles ur ON ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id \
                 WHERE u.tenant_id = $1 AND ur.role_id = $2 ORDER BY u.created_at, u.user_id",
            )
            .bind(self.tenant)
            .bind(role_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(user_from_row).collect()
        })
    }

    pub async fn delete_role(&self, role_id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant)
                .bind(role_id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("role"));
            }
            Ok(())
        })
    }

    /// Adds permissions of one API to a role (already present ones are kept).
    pub async fn add_role_permissions(
        &self,
        role_id: &str,
        audience: &str,
        permissions: &[String],
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            for permission in permissions {
                sqlx::query(
                "INSERT INTO role_permissions (tenant_id, role_id, audience, permission) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(self.tenant)
            .bind(role_id)
            .bind(audience)
            .bind(permission)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::NotFound(_) => StoreError::NotFound("role or API"),
                other => other,
            })?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn remove_role_permissions(
        &self,
        role_id: &str,
        audience: &str,
        permissions: &[String],
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            for permission in permissions {
                sqlx::query("DELETE FROM role_permissions WHERE tenant_id = $1 AND role_id = $2 AND audience = $3 AND permission = $4")
                .bind(self.tenant)
                .bind(role_id)
                .bind(audience)
                .bind(permission)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn role_permissions(&self, role_id: &str) -> StoreResult<Vec<Permission>> {
        each!(self, |pool| {
            let rows = sqlx::query(
            "SELECT audience, permission FROM role_permissions WHERE tenant_id = $1 AND role_id = $2 ORDER BY audience, permission",
        )
        .bind(self.tenant)
        .bind(role_id)
        .fetch_all(pool)
        .await?;
            rows.iter().map(permission_from_row).collect()
        })
    }

    pub async fn assign_user_role(&self, user_id: &str, role_id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query("INSERT INTO user_roles (tenant_id, user_id, role_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(self.tenant)
            .bind(user_id)
            .bind(role_id)
            .execute(pool)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::NotFound(_) => StoreError::NotFound("user or role"),
                other => other,
            })?;
            Ok(())
        })
    }

    pub async fn remove_user_role(&self, user_id: &str, role_id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "DELETE FROM user_roles WHERE tenant_id = $1 AND user_id = $2 AND role_id = $3",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(role_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn user_roles(&self, user_id: &str) -> StoreResult<Vec<Role>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT r.id, r.name, r.description, r.created_at, r.updated_at FROM roles r \
             JOIN user_roles ur ON ur.tenant_id = r.tenant_id AND ur.role_id = r.id \
             WHERE r.tenant_id = $1 AND ur.user_id = $2 ORDER BY r.name",
            )
            .bind(self.tenant)
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(role_from_row).collect()
        })
    }

    pub async fn add_user_permissions(
        &self,
        user_id: &str,
        audience: &str,
        permissions: &[String],
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            for permission in permissions {
                sqlx::query(
                "INSERT INTO user_permissions (tenant_id, user_id, audience, permission) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(audience)
            .bind(permission)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::NotFound(_) => StoreError::NotFound("user or API"),
                other => other,
            })?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes back permissions given to the user directly (not those a role gives).
    pub async fn remove_user_permissions(
        &self,
        user_id: &str,
        audience: &str,
        permissions: &[String],
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            for permission in permissions {
                sqlx::query(
                    "DELETE FROM user_permissions \
                     WHERE tenant_id = $1 AND user_id = $2 AND audience = $3 AND permission = $4",
                )
                .bind(self.tenant)
                .bind(user_id)
                .bind(audience)
                .bind(permission)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Everything a user may do, through roles and direct grants; `audience` narrows it to
    /// one API. Sorted, without duplicates.
    pub async fn user_permissions(
        &self,
        user_id: &str,
        audience: Option<&str>,
    ) -> StoreResult<Vec<Permission>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT rp.audience, rp.permission FROM role_permissions rp \
               JOIN user_roles ur ON ur.tenant_id = rp.tenant_id AND ur.role_id = rp.role_id \
               WHERE rp.tenant_id = $1 AND ur.user_id = $2 AND ($3 IS NULL OR rp.audience = $4) \
             UNION \
             SELECT audience, permission FROM user_permissions \
               WHERE tenant_id = $5 AND user_id = $6 AND ($7 IS NULL OR audience = $8) \
             ORDER BY 1, 2",
            )
            .bind(self.tenant)
            .bind(user_id)
            .bind(audience)
            .bind(audience)
            .bind(self.tenant)
            .bind(user_id)
            .bind(audience)
            .bind(audience)
            .fetch_all(pool)
            .await?;
            rows.iter().map(permission_from_row).collect()
        })
    }

    // ---- housekeeping ------------------------------------------------------------------

    /// Deletes expired rows, at most `PURGE_BATCH` per table per call, through the expiry
    /// indexes. Consumed codes are kept until they expire so a replay is still recognised.
    pub async fn purge_expired(&self, now: i64) -> StoreResult<PurgeCounts> {
        let mut counts = PurgeCounts::default();
        let mut families = 0;
        let mut tokens = 0;
        // Families past their absolute end take their tokens with them (ON DELETE CASCADE);
        // tokens idle past their own end go one by one.
        for (table, expiry, slot) in [
            ("authorization_codes", "expires_at", &mut counts.codes),
            ("sessions", "expires_at", &mut counts.sessions),
            ("login_transactions", "expires_at", &mut counts.transactions),
            ("opaque_tokens", "expires_at", &mut counts.opaque_tokens),
            ("refresh_token_families", "expires_at", &mut families),
            ("refresh_tokens", "idle_expires_at", &mut tokens),
            (
                "password_reset_codes",
                "expires_at",
                &mut counts.reset_codes,
            ),
        ] {
            // Table and column names come from the fixed list above, never from input.
            // PostgreSQL has no DELETE … LIMIT: the batch is picked by row address (ctid),
            // which it fetches directly (a TID scan).
            *slot = each!(self, |pool, pg| {
                let sql = if pg {
                    format!(
                        "DELETE FROM {table} WHERE ctid = ANY(ARRAY(\
                         SELECT ctid FROM {table} WHERE {expiry} <= $1 LIMIT $2))"
                    )
                } else {
                    format!(
                        "DELETE FROM {table} WHERE rowid IN (\
                         SELECT rowid FROM {table} WHERE {expiry} <= $1 LIMIT $2)"
                    )
                };
                Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(now)
                    .bind(PURGE_BATCH)
                    .execute(pool)
                    .await?
                    .rows_affected())
            })?;
        }
        counts.refresh_tokens = families + tokens;
        Ok(counts)
    }
}
