//! Connections (migration 0017): the database connection, seeded with its fixed id, and
//! upstream identity providers, their options a JSON object the store does not read into
//! and their client secret sealed by the caller; and the applications each upstream
//! connection is enabled for.

use sqlx::Row;

use super::{Store, to_json};
use crate::backend::{BeginWrite as _, Fetch};
use crate::lists::{Bind, Checkpoint, CheckpointPage, Page, Slice, Sql};
use crate::records::{ConnectionFilter, ConnectionRecord, ConnectionUpdate};
use crate::{StoreError, StoreResult};

macro_rules! connection_columns {
    () => {
        "id, name, display_name, strategy, options, sealed_secret, show_as_button, \
         is_domain_connection, metadata, created_at, updated_at"
    };
}

pub(super) const CONNECTION_SELECT: &str = concat!("SELECT ", connection_columns!());
/// Ids are unique in a tenant: they order alone, and checkpoints are ids.
pub(super) const CONNECTION_ORDER: &str = " ORDER BY id";
pub(super) const CONNECTION_KEY: &str = "id";

fn json_object(
    text: &str,
    what: &'static str,
) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt(what))
}

fn connection_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<ConnectionRecord> {
    Ok(ConnectionRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        display_name: row.text("display_name")?,
        strategy: row.text("strategy")?,
        options: json_object(&row.text("options")?, "connection options")?,
        sealed_secret: crate::backend::Col::<Option<Vec<u8>>>::col(row, "sealed_secret")?,
        show_as_button: row.col("show_as_button")?,
        is_domain_connection: row.col("is_domain_connection")?,
        metadata: json_object(&row.text("metadata")?, "connection metadata")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

/// Enables an application for a connection inside a transaction (a repeat changes
/// nothing); a macro because the statement runs on either backend's transaction.
macro_rules! insert_enabled {
    ($tx:expr, $tenant:expr, $connection_id:expr, $client_id:expr) => {
        sqlx::query(
            "INSERT INTO connection_clients (tenant_id, connection_id, client_id) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind($tenant)
        .bind($connection_id)
        .bind($client_id)
        .execute(&mut *$tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::NotFound(_) => StoreError::NotFound("application"),
            other => other,
        })
    };
}

impl Store {
    /// Saves a new connection and the applications it is enabled for, in one
    /// transaction. `Conflict` if its name is taken; `NotFound` if an application is not.
    pub async fn create_connection(
        &self,
        connection: &ConnectionRecord,
        enabled_clients: &[String],
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(concat!(
                "INSERT INTO connections (tenant_id, ",
                connection_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .bind(self.tenant)
            .bind(&connection.id)
            .bind(&connection.name)
            .bind(&connection.display_name)
            .bind(&connection.strategy)
            .bind(to_json(&connection.options))
            .bind(connection.sealed_secret.as_deref())
            .bind(connection.show_as_button)
            .bind(connection.is_domain_connection)
            .bind(to_json(&connection.metadata))
            .bind(connection.created_at)
            .bind(connection.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("a connection with this name"))?;
            for client_id in enabled_clients {
                insert_enabled!(tx, self.tenant, &connection.id, client_id)?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn find_connection(&self, id: &str) -> StoreResult<Option<ConnectionRecord>> {
        each!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                connection_columns!(),
                " FROM connections WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(|row| connection_from_row(&row))
            .transpose()
        })
    }

    pub async fn find_connection_by_name(
        &self,
        name: &str,
    ) -> StoreResult<Option<ConnectionRecord>> {
        each!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                connection_columns!(),
                " FROM connections WHERE tenant_id = $1 AND name = $2"
            ))
            .bind(self.tenant)
            .bind(name)
            .fetch_optional(pool)
            .await?
            .map(|row| connection_from_row(&row))
            .transpose()
        })
    }

    /// The `FROM … WHERE …` of a connections list.
    pub(super) fn connection_filter(&self, filter: &ConnectionFilter) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM connections WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        if !filter.strategies.is_empty() {
            sql.push_in("strategy", &filter.strategies);
        }
        if let Some(name) = &filter.name {
            sql.push(" AND name = ?", [Bind::Text(name.clone())]);
        }
        sql
    }

    /// One page of connections in id order.
    pub async fn list_connections(
        &self,
        filter: &ConnectionFilter,
        slice: Slice,
    ) -> StoreResult<Page<ConnectionRecord>> {
        self.page_of(
            CONNECTION_SELECT,
            &self.connection_filter(filter),
            CONNECTION_ORDER,
            slice,
            |row| connection_from_row(row),
        )
        .await
    }

    /// Connections by checkpoint (`from` = an id).
    pub async fn connections_from(
        &self,
        filter: &ConnectionFilter,
        checkpoint: Checkpoint<'_>,
    ) -> StoreResult<CheckpointPage<ConnectionRecord>> {
        self.checkpoint_of(
            CONNECTION_SELECT,
            self.connection_filter(filter),
            CONNECTION_KEY,
            checkpoint,
            |row| connection_from_row(row),
            |connection: &ConnectionRecord| connection.id.clone(),
        )
        .await
    }

    /// Changes what `update` names, under the row lock; `enabled_clients`, when given,
    /// replaces the list whole. `NotFound` if the connection (or an application) is not.
    pub async fn update_connection(
        &self,
        id: &str,
        update: &ConnectionUpdate,
        now: i64,
    ) -> StoreResult<ConnectionRecord> {
        each!(self, |pool| {
            let mut tx = pool
                // Users are locked too: a user being created for this connection either
                // commits first (and is seen below) or finds the connection gone.
                .begin_write(Some(
                    "LOCK TABLE connections, users IN SHARE ROW EXCLUSIVE MODE",
                ))
                .await?;
            let current = sqlx::query(concat!(
                "SELECT ",
                connection_columns!(),
                " FROM connections WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| connection_from_row(&row))
            .transpose()?
            .ok_or(StoreError::NotFound("connection"))?;
            let mut next = current;
            if let Some(display_name) = &update.display_name {
                next.display_name = display_name.clone();
            }
            if let Some(options) = &update.options {
                next.options = options.clone();
            }
            if let Some(sealed) = &update.sealed_secret {
                next.sealed_secret = Some(sealed.clone());
            }
            if let Some(show) = update.show_as_button {
                next.show_as_button = show;
            }
            if let Some(domain) = update.is_domain_connection {
                next.is_domain_connection = domain;
            }
            if let Some(metadata) = &update.metadata {
                next.metadata = metadata.clone();
            }
            next.updated_at = now;
            sqlx::query(
                "UPDATE connections SET display_name = $3, options = $4, sealed_secret = $5, \
                 show_as_button = $6, is_domain_connection = $7, metadata = $8, \
                 updated_at = $9 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(self.tenant)
            .bind(id)
            .bind(&next.display_name)
            .bind(to_json(&next.options))
            .bind(next.sealed_secret.as_deref())
            .bind(next.show_as_button)
            .bind(next.is_domain_connection)
            .bind(to_json(&next.metadata))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if let Some(clients) = &update.enabled_clients {
                sqlx::query(
                    "DELETE FROM connection_clients WHERE tenant_id = $1 AND connection_id = $2",
                )
                .bind(self.tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                for client_id in clients {
                    insert_enabled!(tx, self.tenant, id, client_id)?;
                }
            }
            tx.commit().await?;
            Ok(next)
        })
    }

    /// Enables (`true`) or disables each application for a connection, in one
    /// transaction. `NotFound` if the connection or an application does not exist.
    pub async fn set_connection_clients(
        &self,
        id: &str,
        changes: &[(String, bool)],
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let exists =
                sqlx::query("SELECT 1 AS one FROM connections WHERE tenant_id = $1 AND id = $2")
                    .bind(self.tenant)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
            if !exists {
                return Err(StoreError::NotFound("connection"));
            }
            for (client_id, enabled) in changes {
                if *enabled {
                    insert_enabled!(tx, self.tenant, id, client_id)?;
                } else {
                    sqlx::query(
                        "DELETE FROM connection_clients WHERE tenant_id = $1 \
                         AND connection_id = $2 AND client_id = $3",
                    )
                    .bind(self.tenant)
                    .bind(id)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The `FROM … WHERE …` of a connection's enabled applications.
    pub(super) fn enabled_clients_filter(&self, id: &str) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM connection_clients WHERE tenant_id = ? AND connection_id = ?",
            [Bind::Text(self.tenant.into()), Bind::Text(id.into())],
        );
        sql
    }

    /// The applications a connection is enabled for, by checkpoint (`from` = a client id).
    pub async fn connection_clients_from(
        &self,
        id: &str,
        checkpoint: Checkpoint<'_>,
    ) -> StoreResult<CheckpointPage<String>> {
        self.checkpoint_of(
            "SELECT client_id",
            self.enabled_clients_filter(id),
            "client_id",
            checkpoint,
            |row| row.text("client_id"),
            String::clone,
        )
        .await
    }

    /// The connections (database and upstream) enabled for an application, by name: its
    /// configuration (who signs in with what is [`Self::connections_for_sign_in`]). Through
    /// the `(tenant_id, client_id, connection_id)` index.
    pub async fn connections_of_client(
        &self,
        client_id: &str,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        each!(self, |pool| {
            sqlx::query(
                "SELECT c.id, c.name, c.display_name, c.strategy, c.options, c.sealed_secret, \
                 c.show_as_button, c.is_domain_connection, c.metadata, c.created_at, \
                 c.updated_at FROM connection_clients cc JOIN connections c \
                 ON c.tenant_id = cc.tenant_id AND c.id = cc.connection_id \
                 WHERE cc.tenant_id = $1 AND cc.client_id = $2 ORDER BY c.name",
            )
            .bind(self.tenant)
            .bind(client_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(connection_from_row)
            .collect()
        })
    }

    /// The connections an application's users may sign in with, by name, as Auth0 decides
    /// it: a first-party application uses the connections enabled for it; a third-party one
    /// only domain connections (`is_domain_connection`), which are open to every third-party
    /// application whether enabled for it or not. An unknown application has none.
    pub async fn connections_for_sign_in(
        &self,
        client_id: &str,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        each!(self, |pool| {
            sqlx::query(
                "SELECT c.id, c.name, c.display_name, c.strategy, c.options, c.sealed_secret, \
                 c.show_as_button, c.is_domain_connection, c.metadata, c.created_at, \
                 c.updated_at FROM clients k JOIN connections c ON c.tenant_id = k.tenant_id \
                 WHERE k.tenant_id = $1 AND k.client_id = $2 AND CASE WHEN k.is_first_party \
                 THEN EXISTS (SELECT 1 FROM connection_clients cc WHERE cc.tenant_id = \
                 k.tenant_id AND cc.client_id = k.client_id AND cc.connection_id = c.id) \
                 ELSE c.is_domain_connection END ORDER BY c.name",
            )
            .bind(self.tenant)
            .bind(client_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(connection_from_row)
            .collect()
        })
    }

    /// Deletes a connection (its enabled applications go with it). `NotFound` if absent;
    /// `Conflict` while users of it exist.
    pub async fn delete_connection(&self, id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool
                // Users are locked too: a user being created for this connection either
                // commits first (and is seen below) or finds the connection gone.
                .begin_write(Some(
                    "LOCK TABLE connections, users IN SHARE ROW EXCLUSIVE MODE",
                ))
                .await?;
            let name: Option<String> =
                sqlx::query("SELECT name FROM connections WHERE tenant_id = $1 AND id = $2")
                    .bind(self.tenant)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| row.try_get("name"))
                    .transpose()?;
            let Some(name) = name else {
                return Err(StoreError::NotFound("connection"));
            };
            let has_users = sqlx::query(
                "SELECT 1 AS one FROM users WHERE tenant_id = $1 AND connection = $2 \
                 UNION ALL SELECT 1 AS one FROM linked_identities \
                 WHERE tenant_id = $1 AND connection = $2 LIMIT 1",
            )
            .bind(self.tenant)
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if has_users {
                return Err(StoreError::Conflict("users of this connection"));
            }
            sqlx::query("DELETE FROM connections WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
