//! What other writers changed, for nodes that keep configuration rows in memory.
//!
//! On PostgreSQL every write to a table a node's caches read (clients and their grants and
//! credentials, APIs, signing keys, connections, Actions, Rules, the tenant's settings and
//! email provider) runs a trigger in the writing transaction (migrations
//! `0032_cache_generation.sql`, `0036_tenant_invalidation.sql` and
//! `0038_email_provider_invalidation.sql`): it bumps the one `cache_generation` row and
//! NOTIFYs [`CHANNEL`]. [`Store::invalidations`] LISTENs on a connection of its own;
//! [`Store::cache_generation`] reads the counter, for the backstop poll that catches what a
//! listener missed. Which cache a change empties is the caller's business: this module
//! only says which table and row.
//!
//! SQLite has no listener (`invalidations` is `None`): its database has one server, and the
//! same triggers (migrations `0037_sqlite_invalidation.sql` and 0038) bump the counter
//! without notifying. The writer's connection sees its own statements bump it (an update
//! hook), and a server polls it for what other processes (the CLI) wrote:
//! [`Store::cache_generation_seen`].

use sqlx::postgres::PgListener;

use super::{Backend, Store};
use crate::{StoreError, StoreResult};

/// The PostgreSQL channel the triggers notify.
pub const CHANNEL: &str = "tessera_invalidate";

/// A committed change to a cached table, as the trigger described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A client, or one of its grants or credentials: the `client_id`.
    Client(String),
    /// An API (resource server): its identifier (audience).
    ResourceServer(String),
    /// A signing key: its kid.
    SigningKey(String),
    /// A connection, or the clients it is enabled for: its id.
    Connection(String),
    /// An action, a version of it, their secrets, or a trigger's bindings.
    Actions,
    /// A rule or a rules configuration value.
    Rules,
    /// The tenant's settings, its Guardian (second factor) settings or its email provider.
    Tenant,
    /// A table this build does not know (a newer release added a trigger): the caller
    /// should forget everything.
    Other(String),
}

/// What a listener heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// One committed change, and the generation it brought the counter to.
    Change { changed: Changed, generation: i64 },
    /// The connection was lost (and has been made again, listening): notifications sent
    /// meanwhile are gone, so whatever was cached may be stale.
    Lost,
}

/// The trigger's payload.
#[derive(serde::Deserialize)]
struct Payload {
    kind: String,
    #[serde(default)]
    id: Option<String>,
    generation: i64,
}

fn changed(kind: &str, id: Option<String>) -> Changed {
    let id = id.unwrap_or_default();
    match kind {
        "clients" | "client_grants" | "client_credentials" => Changed::Client(id),
        "resource_servers" => Changed::ResourceServer(id),
        "signing_keys" => Changed::SigningKey(id),
        "connections" | "connection_clients" => Changed::Connection(id),
        "actions"
        | "action_versions"
        | "action_secrets"
        | "action_version_secrets"
        | "trigger_bindings" => Changed::Actions,
        "rules" | "rules_configs" => Changed::Rules,
        // The email provider is the tenant's (one row per tenant).
        "tenants" | "email_providers" => Changed::Tenant,
        other => Changed::Other(other.to_string()),
    }
}

/// A connection LISTENing on [`CHANNEL`] (it holds one of the pool's connections).
pub struct Invalidations {
    listener: PgListener,
}

impl Invalidations {
    /// The next committed change, or `Lost` when the connection dropped. An error means
    /// the connection could not be made again; calling again retries.
    pub async fn next(&mut self) -> StoreResult<Heard> {
        loop {
            let Some(notification) = self.listener.try_recv().await.map_err(StoreError::from)?
            else {
                return Ok(Heard::Lost);
            };
            match serde_json::from_str::<Payload>(notification.payload()) {
                Ok(payload) => {
                    return Ok(Heard::Change {
                        changed: changed(&payload.kind, payload.id),
                        generation: payload.generation,
                    });
                }
                // Someone else's NOTIFY on our channel: it says nothing we can use, and
                // a forged one could only make a node forget more.
                Err(_) => {
                    tracing::warn!(
                        channel = CHANNEL,
                        "ignored a notification that is not an invalidation"
                    );
                    continue;
                }
            }
        }
    }
}

impl Store {
    /// Whether other processes may change what this one caches without a word but a
    /// notification: PostgreSQL, whose database any number of nodes share.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// A listener for committed changes to cached tables; `None` on SQLite.
    pub async fn invalidations(&self) -> StoreResult<Option<Invalidations>> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool)
            .await
            .map_err(StoreError::from)?;
        listener.listen(CHANNEL).await.map_err(StoreError::from)?;
        Ok(Some(Invalidations { listener }))
    }

    /// How many changes to cached tables were ever committed. A node that reads a number it
    /// has not heard of missed a notification. On SQLite the number read is also recorded
    /// for [`Store::cache_generation_seen`].
    pub async fn cache_generation(&self) -> StoreResult<i64> {
        let generation = each!(self, |pool| {
            let generation: Option<i64> =
                sqlx::query_scalar("SELECT generation FROM cache_generation WHERE id = 1")
                    .fetch_optional(pool)
                    .await?;
            Ok(generation.unwrap_or(0))
        })?;
        if let Backend::Sqlite(db) = &self.backend {
            db.note_cache_generation(generation);
        }
        Ok(generation)
    }

    /// SQLite: a number that moves whenever this process knows of a change to a cached
    /// table, without a round trip — after each of its own commits that made one (before
    /// the writers are answered) and at each [`Store::cache_generation`] that found the
    /// counter elsewhere. What was read from a cached table at another number may be stale. PostgreSQL: always 0 (its nodes are told by notifications).
    pub fn cache_generation_seen(&self) -> i64 {
        match &self.backend {
            Backend::Sqlite(db) => db.cache_generation_seen(),
            Backend::Postgres(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_with_the_trigger_is_known() {
        let migrations = [
            include_str!("../../migrations/postgres/0032_cache_generation.sql"),
            include_str!("../../migrations/postgres/0036_tenant_invalidation.sql"),
            include_str!("../../migrations/postgres/0038_email_provider_invalidation.sql"),
        ];
        let mut tables = 0;
        for line in migrations.iter().flat_map(|migration| migration.lines()) {
            let Some((_, rest)) = line.split_once(" OR DELETE ON ") else {
                continue;
            };
            let table = rest.split_whitespace().next().unwrap();
            tables += 1;
            assert!(
                !matches!(changed(table, None), Changed::Other(_)),
                "{table} has the trigger but no kind"
            );
        }
        assert_eq!(tables, 16);
        assert_eq!(changed("users", None), Changed::Other("users".into()));
    }
}
