//! Actions: drafts, their sealed secrets, the versions deploys snapshot, and the ordered
//! bindings of each trigger — with the one read every login makes, [`Store::trigger_program`].

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, to_json};
use crate::backend::{BeginWrite as _, Fetch};
use crate::lists::{Bind, Page, Slice, Sql, bound_query};
use crate::records::{
    ActionFilter, ActionRecord, ActionUpdate, ActionVersionRecord, BindingRecord, DeployedAction,
    NewAction, NewBinding, SecretInfo,
};
use crate::{StoreError, StoreResult};

macro_rules! action_columns {
    () => {
        "id, name, trigger_id, trigger_version, code, dependencies, runtime, \
         deployed_version_id, all_changes_deployed, created_at, updated_at"
    };
}

macro_rules! version_columns {
    () => {
        "id, action_id, number, code, dependencies, runtime, deployed, created_at"
    };
}

pub(super) const ACTION_SELECT: &str = concat!("SELECT ", action_columns!());
pub(super) const ACTION_ORDER: &str = " ORDER BY created_at, id";
pub(super) const VERSION_SELECT: &str = concat!("SELECT ", version_columns!());
pub(super) const VERSION_ORDER: &str = " ORDER BY number DESC";
pub(super) const BINDING_SELECT: &str = "SELECT b.id AS binding_id, \
     b.trigger_id AS binding_trigger, b.display_name, b.created_at AS bound_at, \
     b.updated_at AS rebound_at, a.id, a.name, a.trigger_id, a.trigger_version, a.code, \
     a.dependencies, a.runtime, a.deployed_version_id, a.all_changes_deployed, \
     a.created_at, a.updated_at";
pub(super) const BINDING_ORDER: &str = " ORDER BY b.position";

fn json_value(text: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("action dependencies"))
}

/// An action row; its secrets and deployed version are attached by [`Store::complete`].
fn action_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<(ActionRecord, Option<String>)> {
    let deployed_version_id: Option<String> = row.opt_text("deployed_version_id")?;
    Ok((
        ActionRecord {
            id: row.text("id")?,
            name: row.text("name")?,
            trigger_id: row.text("trigger_id")?,
            trigger_version: row.text("trigger_version")?,
            code: row.text("code")?,
            dependencies: json_value(&row.text("dependencies")?)?,
            runtime: row.text("runtime")?,
            secrets: Vec::new(),
            deployed_version: None,
            all_changes_deployed: row.col("all_changes_deployed")?,
            created_at: row.col("created_at")?,
            updated_at: row.col("updated_at")?,
        },
        deployed_version_id,
    ))
}

fn version_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<ActionVersionRecord> {
    Ok(ActionVersionRecord {
        id: row.text("id")?,
        action_id: row.text("action_id")?,
        number: row.col("number")?,
        code: row.text("code")?,
        dependencies: json_value(&row.text("dependencies")?)?,
        runtime: row.text("runtime")?,
        deployed: row.col("deployed")?,
        created_at: row.col("created_at")?,
    })
}

/// `SELECT … WHERE tenant_id = ? AND <column> IN (…)` for the rows of a page.
fn rows_of(select: &str, tenant: &str, column: &str, ids: &[String], order: &str) -> Sql {
    let mut sql = Sql::new(select);
    sql.push(" WHERE tenant_id = ?", [Bind::Text(tenant.into())]);
    sql.push_in(column, ids);
    sql.text.push_str(order);
    sql
}

impl Store {
    /// Gives each action its secrets' names and its deployed version: two indexed queries
    /// for a whole page.
    async fn complete(
        &self,
        rows: Vec<(ActionRecord, Option<String>)>,
    ) -> StoreResult<Vec<ActionRecord>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = rows.iter().map(|(a, _)| a.id.clone()).collect();
        let version_ids: Vec<String> = rows.iter().filter_map(|(_, v)| v.clone()).collect();
        let secrets_sql = rows_of(
            "SELECT action_id, name, updated_at FROM action_secrets",
            self.tenant,
            "action_id",
            &ids,
            " ORDER BY action_id, name",
        );
        let versions_sql = rows_of(
            concat!("SELECT ", version_columns!(), " FROM action_versions"),
            self.tenant,
            "id",
            &version_ids,
            "",
        );
        let (mut secrets, mut versions) = each!(self, |pool| {
            let mut secrets: HashMap<String, Vec<SecretInfo>> = HashMap::new();
            for row in bound_query!(&secrets_sql).fetch_all(pool).await? {
                secrets
                    .entry(row.try_get("action_id")?)
                    .or_default()
                    .push(SecretInfo {
                        name: row.try_get("name")?,
                        updated_at: row.try_get("updated_at")?,
                    });
            }
            let mut versions: HashMap<String, ActionVersionRecord> = HashMap::new();
            if !version_ids.is_empty() {
                for row in bound_query!(&versions_sql).fetch_all(pool).await? {
                    let version = version_from_row(&row)?;
                    versions.insert(version.id.clone(), version);
                }
            }
            Ok((secrets, versions))
        })?;
        Ok(rows
            .into_iter()
            .map(|(mut action, version_id)| {
                action.secrets = secrets.remove(&action.id).unwrap_or_default();
                action.deployed_version = version_id.and_then(|id| versions.remove(&id));
                action
            })
            .collect())
    }

    /// Saves a new action and its sealed secrets; `Conflict` if the name is taken.
    pub async fn create_action(&self, action: &NewAction) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            sqlx::query(
                "INSERT INTO actions (tenant_id, id, name, trigger_id, trigger_version, code, \
                 dependencies, runtime, deployed_version_id, all_changes_deployed, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $11)",
            )
            .bind(self.tenant)
            .bind(&action.id)
            .bind(&action.name)
            .bind(&action.trigger_id)
            .bind(&action.trigger_version)
            .bind(&action.code)
            .bind(to_json(&action.dependencies))
            .bind(&action.runtime)
            .bind(false)
            .bind(action.now)
            .bind(action.now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("an action with this name"))?;
            for (name, sealed) in &action.secrets {
                sqlx::query(
                    "INSERT INTO action_secrets (tenant_id, action_id, name, sealed, updated_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(self.tenant)
                .bind(&action.id)
                .bind(name)
                .bind(sealed.as_slice())
                .bind(action.now)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from(e).conflict_is("a secret with this name"))?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The action with this id.
    pub async fn find_action(&self, id: &str) -> StoreResult<Option<ActionRecord>> {
        self.find_action_by("id", id).await
    }

    /// The action with this name.
    pub async fn find_action_by_name(&self, name: &str) -> StoreResult<Option<ActionRecord>> {
        self.find_action_by("name", name).await
    }

    async fn find_action_by(&self, column: &str, value: &str) -> StoreResult<Option<ActionRecord>> {
        let mut sql = Sql::new(concat!("SELECT ", action_columns!(), " FROM actions"));
        sql.push(" WHERE tenant_id = ?", [Bind::Text(self.tenant.into())]);
        let piece = match column {
            "name" => " AND name = ?",
            _ => " AND id = ?",
        };
        sql.push(piece, [Bind::Text(value.into())]);
        let row = each!(self, |pool| {
            bound_query!(&sql)
                .fetch_optional(pool)
                .await?
                .map(|row| action_from_row(&row))
                .transpose()
        })?;
        Ok(self.complete(row.into_iter().collect()).await?.pop())
    }

    /// The `FROM … WHERE …` of an actions list.
    pub(super) fn action_filter(&self, filter: &ActionFilter) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM actions WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        if let Some(trigger) = &filter.trigger_id {
            sql.push(" AND trigger_id = ?", [Bind::Text(trigger.clone())]);
        }
        if let Some(name) = &filter.name {
            sql.push(" AND name = ?", [Bind::Text(name.clone())]);
        }
        match filter.deployed {
            Some(true) => sql.text.push_str(" AND deployed_version_id IS NOT NULL"),
            Some(false) => sql.text.push_str(" AND deployed_version_id IS NULL"),
            None => {}
        }
        sql
    }

    /// One page of actions, oldest first; the filter keeps one trigger's, one name, or
    /// the deployed (or never deployed) ones.
    pub async fn list_actions(
        &self,
        filter: &ActionFilter,
        slice: Slice,
    ) -> StoreResult<Page<ActionRecord>> {
        let page = self
            .page_of(
                ACTION_SELECT,
                &self.action_filter(filter),
                ACTION_ORDER,
                slice,
                |row| action_from_row(row),
            )
            .await?;
        Ok(Page {
            items: self.complete(page.items).await?,
            total: page.total,
        })
    }

    /// Changes the draft (and, when given, replaces its secrets as [`ActionUpdate`] says).
    /// `NotFound` if there is no such action, `Conflict` if the new name is taken.
    pub async fn update_action(
        &self,
        id: &str,
        update: &ActionUpdate,
        now: i64,
    ) -> StoreResult<ActionRecord> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(for_update!(
                pg,
                "SELECT ",
                action_columns!(),
                " FROM actions WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("action"))?;
            let (mut action, _) = action_from_row(&row)?;
            if let Some(name) = &update.name {
                action.name = name.clone();
            }
            if let Some((trigger, version)) = &update.trigger {
                action.trigger_id = trigger.clone();
                action.trigger_version = version.clone();
            }
            if let Some(code) = &update.code {
                action.code = code.clone();
            }
            if let Some(dependencies) = &update.dependencies {
                action.dependencies = dependencies.clone();
            }
            if let Some(runtime) = &update.runtime {
                action.runtime = runtime.clone();
            }
            sqlx::query(
                "UPDATE actions SET name = $1, trigger_id = $2, trigger_version = $3, code = $4, \
                 dependencies = $5, runtime = $6, all_changes_deployed = $7, updated_at = $8 \
                 WHERE tenant_id = $9 AND id = $10",
            )
            .bind(&action.name)
            .bind(&action.trigger_id)
            .bind(&action.trigger_version)
            .bind(&action.code)
            .bind(to_json(&action.dependencies))
            .bind(&action.runtime)
            .bind(false)
            .bind(now)
            .bind(self.tenant)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("an action with this name"))?;
            if let Some(secrets) = &update.secrets {
                let kept: Vec<String> = secrets.iter().map(|(name, _)| name.clone()).collect();
                let mut remove = Sql::new("DELETE FROM action_secrets");
                remove.push(
                    " WHERE tenant_id = ? AND action_id = ?",
                    [Bind::Text(self.tenant.into()), Bind::Text(id.into())],
                );
                if !kept.is_empty() {
                    let marks = vec!["?"; kept.len()].join(", ");
                    remove.push(
                        &format!(" AND name NOT IN ({marks})"),
                        kept.iter().cloned().map(Bind::Text),
                    );
                }
                bound_query!(&remove).execute(&mut *tx).await?;
                for (name, sealed) in secrets {
                    let Some(sealed) = sealed else { continue };
                    sqlx::query(
                        "INSERT INTO action_secrets (tenant_id, action_id, name, sealed, \
                         updated_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (tenant_id, action_id, name) \
                         DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                    )
                    .bind(self.tenant)
                    .bind(id)
                    .bind(name)
                    .bind(sealed.as_slice())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })?;
        self.find_action(id)
            .await?
            .ok_or(StoreError::NotFound("action"))
    }

    /// Deletes an action with its versions and secrets. A bound action is refused
    /// (`Conflict("a binding of this action")`) unless `force`, which unbinds it first.
    pub async fn delete_action(&self, id: &str, force: bool) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let bound: i64 = sqlx::query(
                "SELECT count(*) AS n FROM trigger_bindings WHERE tenant_id = $1 AND action_id = $2",
            )
            .bind(self.tenant)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if bound > 0 && !force {
                return Err(StoreError::Conflict("a binding of this action"));
            }
            sqlx::query("DELETE FROM trigger_bindings WHERE tenant_id = $1 AND action_id = $2")
                .bind(self.tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM actions WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("action"));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deploys the draft: a new version `n + 1` with the draft's code and secrets, the
    /// only one deployed. `version_id` is the new version's id.
    pub async fn deploy_action(
        &self,
        action_id: &str,
        version_id: &str,
        now: i64,
    ) -> StoreResult<ActionVersionRecord> {
        self.snapshot(action_id, None, version_id, now).await
    }

    /// Rollback: `from_version`'s content becomes a new version, deployed.
    pub async fn redeploy_action_version(
        &self,
        action_id: &str,
        from_version: &str,
        version_id: &str,
        now: i64,
    ) -> StoreResult<ActionVersionRecord> {
        self.snapshot(action_id, Some(from_version), version_id, now)
            .await
    }

    /// A new deployed version of `action_id`, copied from its draft (`from: None`) or
    /// from one of its versions, in one transaction.
    async fn snapshot(
        &self,
        action_id: &str,
        from: Option<&str>,
        version_id: &str,
        now: i64,
    ) -> StoreResult<ActionVersionRecord> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let action = sqlx::query(for_update!(
                pg,
                "SELECT ",
                action_columns!(),
                " FROM actions WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(action_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("action"))?;
            let (action, _) = action_from_row(&action)?;
            let (code, dependencies, runtime, secrets_sql) = match from {
                None => {
                    let mut secrets =
                        Sql::new("SELECT name, sealed, updated_at FROM action_secrets");
                    secrets.push(
                        " WHERE tenant_id = ? AND action_id = ?",
                        [Bind::Text(self.tenant.into()), Bind::Text(action_id.into())],
                    );
                    (
                        action.code.clone(),
                        action.dependencies.clone(),
                        action.runtime.clone(),
                        secrets,
                    )
                }
                Some(from) => {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        version_columns!(),
                        " FROM action_versions WHERE tenant_id = $1 AND action_id = $2 AND id = $3"
                    ))
                    .bind(self.tenant)
                    .bind(action_id)
                    .bind(from)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound("action version"))?;
                    let version = version_from_row(&row)?;
                    let mut secrets =
                        Sql::new("SELECT name, sealed, updated_at FROM action_version_secrets");
                    secrets.push(
                        " WHERE tenant_id = ? AND version_id = ?",
                        [Bind::Text(self.tenant.into()), Bind::Text(from.into())],
                    );
                    (version.code, version.dependencies, version.runtime, secrets)
                }
            };
            let secrets: Vec<(String, Vec<u8>, i64)> = bound_query!(&secrets_sql)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get("name")?,
                        row.try_get("sealed")?,
                        row.try_get("updated_at")?,
                    ))
                })
                .collect::<StoreResult<_>>()?;
            let number: i64 = sqlx::query(
                "SELECT coalesce(max(number), 0) + 1 AS n FROM action_versions \
                 WHERE tenant_id = $1 AND action_id = $2",
            )
            .bind(self.tenant)
            .bind(action_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            sqlx::query(
                "UPDATE action_versions SET deployed = $1 WHERE tenant_id = $2 AND action_id = $3",
            )
            .bind(false)
            .bind(self.tenant)
            .bind(action_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO action_versions (tenant_id, id, action_id, number, code, \
                 dependencies, runtime, deployed, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(self.tenant)
            .bind(version_id)
            .bind(action_id)
            .bind(number)
            .bind(&code)
            .bind(to_json(&dependencies))
            .bind(&runtime)
            .bind(true)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("an action version with this id"))?;
            for (name, sealed, updated_at) in &secrets {
                sqlx::query(
                    "INSERT INTO action_version_secrets (tenant_id, version_id, name, sealed, \
                     updated_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(self.tenant)
                .bind(version_id)
                .bind(name)
                .bind(sealed.as_slice())
                .bind(*updated_at)
                .execute(&mut *tx)
                .await?;
            }
            // A rollback deploys something other than the draft.
            sqlx::query(
                "UPDATE actions SET deployed_version_id = $1, all_changes_deployed = $2 \
                 WHERE tenant_id = $3 AND id = $4",
            )
            .bind(version_id)
            .bind(from.is_none())
            .bind(self.tenant)
            .bind(action_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(ActionVersionRecord {
                id: version_id.to_string(),
                action_id: action_id.to_string(),
                number,
                code,
                dependencies,
                runtime,
                deployed: true,
                created_at: now,
            })
        })
    }

    /// The draft's sealed secrets (for the Test panel, which runs the draft).
    pub async fn action_draft_secrets(
        &self,
        action_id: &str,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        each!(self, |pool| {
            sqlx::query(
                "SELECT name, sealed FROM action_secrets WHERE tenant_id = $1 AND action_id = $2 \
                 ORDER BY name",
            )
            .bind(self.tenant)
            .bind(action_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("name")?, row.try_get("sealed")?)))
            .collect()
        })
    }

    /// The `FROM … WHERE …` of an action's versions.
    pub(super) fn version_filter(&self, action_id: &str) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM action_versions WHERE tenant_id = ? AND action_id = ?",
            [Bind::Text(self.tenant.into()), Bind::Text(action_id.into())],
        );
        sql
    }

    /// One page of an action's versions, newest first.
    pub async fn list_action_versions(
        &self,
        action_id: &str,
        slice: Slice,
    ) -> StoreResult<Page<ActionVersionRecord>> {
        self.page_of(
            VERSION_SELECT,
            &self.version_filter(action_id),
            VERSION_ORDER,
            slice,
            |row| version_from_row(row),
        )
        .await
    }

    /// One version of an action.
    pub async fn find_action_version(
        &self,
        action_id: &str,
        version_id: &str,
    ) -> StoreResult<Option<ActionVersionRecord>> {
        each!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM action_versions WHERE tenant_id = $1 AND action_id = $2 AND id = $3"
            ))
            .bind(self.tenant)
            .bind(action_id)
            .bind(version_id)
            .fetch_optional(pool)
            .await?
            .map(|row| version_from_row(&row))
            .transpose()
        })
    }

    /// The `FROM … WHERE …` of a trigger's bindings (with their actions).
    pub(super) fn binding_filter(&self, trigger_id: &str) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM trigger_bindings b JOIN actions a \
             ON a.tenant_id = b.tenant_id AND a.id = b.action_id \
             WHERE b.tenant_id = ? AND b.trigger_id = ?",
            [
                Bind::Text(self.tenant.into()),
                Bind::Text(trigger_id.into()),
            ],
        );
        sql
    }

    /// One page of a trigger's bindings, in the order they run.
    pub async fn list_trigger_bindings(
        &self,
        trigger_id: &str,
        slice: Slice,
    ) -> StoreResult<Page<BindingRecord>> {
        let page = self
            .page_of(
                BINDING_SELECT,
                &self.binding_filter(trigger_id),
                BINDING_ORDER,
                slice,
                |row| {
                    let (action, version) = action_from_row(row)?;
                    let bound_at: i64 = row.col("bound_at")?;
                    let rebound_at: i64 = row.col("rebound_at")?;
                    Ok((
                        (
                            row.text("binding_id")?,
                            row.text("binding_trigger")?,
                            row.text("display_name")?,
                            bound_at,
                            rebound_at,
                        ),
                        (action, version),
                    ))
                },
            )
            .await?;
        let (heads, actions): (Vec<_>, Vec<_>) = page.items.into_iter().unzip();
        let actions = self.complete(actions).await?;
        Ok(Page {
            items: heads
                .into_iter()
                .zip(actions)
                .map(
                    |((id, trigger_id, display_name, created_at, updated_at), action)| {
                        BindingRecord {
                            id,
                            trigger_id,
                            display_name,
                            action,
                            created_at,
                            updated_at,
                        }
                    },
                )
                .collect(),
            total: page.total,
        })
    }

    /// Replaces a trigger's bindings with `bindings`, in order, in one transaction. A
    /// binding of an action kept from the old list keeps its id and creation time; ids
    /// for the others come from `new_id`. Every action must be deployed and support the
    /// trigger: otherwise `NotFound("a deployed action of this trigger")` and nothing
    /// changes.
    pub async fn replace_trigger_bindings(
        &self,
        trigger_id: &str,
        bindings: &[NewBinding],
        new_id: &mut (dyn FnMut() -> String + Send),
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            // PostgreSQL: two writers replacing the same list would otherwise interleave.
            let mut tx = pool
                .begin_write(Some(
                    "LOCK TABLE trigger_bindings IN SHARE ROW EXCLUSIVE MODE",
                ))
                .await?;
            let old: HashMap<String, (String, i64)> = sqlx::query(
                "SELECT action_id, id, created_at FROM trigger_bindings \
                 WHERE tenant_id = $1 AND trigger_id = $2",
            )
            .bind(self.tenant)
            .bind(trigger_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("action_id")?,
                    (row.try_get("id")?, row.try_get("created_at")?),
                ))
            })
            .collect::<StoreResult<_>>()?;
            sqlx::query("DELETE FROM trigger_bindings WHERE tenant_id = $1 AND trigger_id = $2")
                .bind(self.tenant)
                .bind(trigger_id)
                .execute(&mut *tx)
                .await?;
            for (position, binding) in bindings.iter().enumerate() {
                let (id, created_at) = old
                    .get(&binding.action_id)
                    .cloned()
                    .unwrap_or_else(|| (new_id(), now));
                let done = sqlx::query(
                    "INSERT INTO trigger_bindings (tenant_id, trigger_id, position, id, \
                     action_id, display_name, created_at, updated_at) \
                     SELECT $1, $2, $3, $4, id, $5, $6, $7 FROM actions \
                     WHERE tenant_id = $8 AND id = $9 AND trigger_id = $10 \
                     AND deployed_version_id IS NOT NULL",
                )
                .bind(self.tenant)
                .bind(trigger_id)
                .bind(position as i64)
                .bind(&id)
                .bind(&binding.display_name)
                .bind(created_at)
                .bind(now)
                .bind(self.tenant)
                .bind(&binding.action_id)
                .bind(trigger_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from(e).conflict_is("a binding of this action"))?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound("a deployed action of this trigger"));
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// What a trigger runs: each bound action's deployed code and sealed secrets, in
    /// binding order. Two indexed queries; every login makes them.
    pub async fn trigger_program(&self, trigger_id: &str) -> StoreResult<Vec<DeployedAction>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT a.id AS action_id, a.name, v.id AS version_id, v.code \
                 FROM trigger_bindings b \
                 JOIN actions a ON a.tenant_id = b.tenant_id AND a.id = b.action_id \
                 JOIN action_versions v ON v.tenant_id = a.tenant_id \
                 AND v.id = a.deployed_version_id \
                 WHERE b.tenant_id = $1 AND b.trigger_id = $2 ORDER BY b.position",
            )
            .bind(self.tenant)
            .bind(trigger_id)
            .fetch_all(pool)
            .await?;
            let mut program = Vec::with_capacity(rows.len());
            let mut version_ids = Vec::with_capacity(rows.len());
            for row in &rows {
                version_ids.push(row.try_get::<String, _>("version_id")?);
                program.push(DeployedAction {
                    action_id: row.try_get("action_id")?,
                    name: row.try_get("name")?,
                    code: row.try_get("code")?,
                    secrets: Vec::new(),
                });
            }
            if program.is_empty() {
                return Ok(program);
            }
            let sql = rows_of(
                "SELECT version_id, name, sealed FROM action_version_secrets",
                self.tenant,
                "version_id",
                &version_ids,
                " ORDER BY version_id, name",
            );
            let mut secrets: HashMap<String, Vec<(String, Vec<u8>)>> = HashMap::new();
            for row in bound_query!(&sql).fetch_all(pool).await? {
                secrets
                    .entry(row.try_get("version_id")?)
                    .or_default()
                    .push((row.try_get("name")?, row.try_get("sealed")?));
            }
            for (action, version_id) in program.iter_mut().zip(&version_ids) {
                action.secrets = secrets.get(version_id).cloned().unwrap_or_default();
            }
            Ok(program)
        })
    }
}
