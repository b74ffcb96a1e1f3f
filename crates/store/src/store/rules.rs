//! Legacy Rules and the `configuration` they share (rules-configs, values sealed by the
//! server, bound to their key).

use sqlx::Row;

use super::Store;
use crate::backend::{BeginWrite as _, Fetch};
use crate::lists::{Bind, Page, Slice, Sql};
use crate::records::{RuleRecord, RuleUpdate};
use crate::{StoreError, StoreResult};

macro_rules! rule_columns {
    () => {
        "id, name, script, ord, enabled, stage, created_at, updated_at"
    };
}

pub(super) const RULE_SELECT: &str = concat!("SELECT ", rule_columns!());
/// `ord` is unique in a tenant: it orders alone.
pub(super) const RULE_ORDER: &str = " ORDER BY ord";

fn rule_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<RuleRecord> {
    Ok(RuleRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        script: row.text("script")?,
        order: row.col("ord")?,
        enabled: row.col("enabled")?,
        stage: row.text("stage")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

/// Unique violations of `rules`: the name or the order is taken.
fn rule_conflict(error: sqlx::Error) -> StoreError {
    let is_order = error
        .as_database_error()
        .map(|db| {
            let text = db.message().to_string() + db.constraint().unwrap_or_default();
            text.contains("ord")
        })
        .unwrap_or(false);
    let what = if is_order {
        "a rule with this order"
    } else {
        "a rule with this name"
    };
    StoreError::from(error).conflict_is(what)
}

impl Store {
    /// Saves a new rule; `order: None` puts it after the others. `Conflict` if its name
    /// or order is taken.
    pub async fn create_rule(&self, rule: &RuleRecord, order: Option<i64>) -> StoreResult<i64> {
        each!(self, |pool| {
            let mut tx = pool
                .begin_write(Some("LOCK TABLE rules IN SHARE ROW EXCLUSIVE MODE"))
                .await?;
            let order = match order {
                Some(order) => order,
                None => sqlx::query(
                    "SELECT coalesce(max(ord), 0) + 1 AS n FROM rules WHERE tenant_id = $1",
                )
                .bind(self.tenant)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?,
            };
            sqlx::query(
                "INSERT INTO rules (tenant_id, id, name, script, ord, enabled, stage, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(self.tenant)
            .bind(&rule.id)
            .bind(&rule.name)
            .bind(&rule.script)
            .bind(order)
            .bind(rule.enabled)
            .bind(&rule.stage)
            .bind(rule.created_at)
            .bind(rule.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(rule_conflict)?;
            tx.commit().await?;
            Ok(order)
        })
    }

    pub async fn find_rule(&self, id: &str) -> StoreResult<Option<RuleRecord>> {
        each!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                rule_columns!(),
                " FROM rules WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(|row| rule_from_row(&row))
            .transpose()
        })
    }

    /// The `FROM … WHERE …` of a rules list.
    pub(super) fn rule_filter(&self, enabled: Option<bool>) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM rules WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        if let Some(enabled) = enabled {
            sql.push(" AND enabled = ?", [Bind::Bool(enabled)]);
        }
        sql
    }

    /// One page of rules in the order they run; `enabled` keeps the enabled (or the
    /// disabled) ones.
    pub async fn list_rules(
        &self,
        enabled: Option<bool>,
        slice: Slice,
    ) -> StoreResult<Page<RuleRecord>> {
        self.page_of(
            RULE_SELECT,
            &self.rule_filter(enabled),
            RULE_ORDER,
            slice,
            |row| rule_from_row(row),
        )
        .await
    }

    /// The enabled rules, in order: what post-login runs before its actions.
    pub async fn enabled_rules(&self) -> StoreResult<Vec<RuleRecord>> {
        each!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                rule_columns!(),
                " FROM rules WHERE tenant_id = $1 AND enabled = $2 ORDER BY ord"
            ))
            .bind(self.tenant)
            .bind(true)
            .fetch_all(pool)
            .await?
            .iter()
            .map(rule_from_row)
            .collect()
        })
    }

    /// Changes what `update` names. `NotFound`, or `Conflict` for a taken name or order.
    pub async fn update_rule(
        &self,
        id: &str,
        update: &RuleUpdate,
        now: i64,
    ) -> StoreResult<RuleRecord> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(for_update!(
                pg,
                "SELECT ",
                rule_columns!(),
                " FROM rules WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("rule"))?;
            let mut rule = rule_from_row(&row)?;
            if let Some(name) = &update.name {
                rule.name = name.clone();
            }
            if let Some(script) = &update.script {
                rule.script = script.clone();
            }
            if let Some(order) = update.order {
                rule.order = order;
            }
            if let Some(enabled) = update.enabled {
                rule.enabled = enabled;
            }
            rule.updated_at = now;
            sqlx::query(
                "UPDATE rules SET name = $1, script = $2, ord = $3, enabled = $4, updated_at = $5 \
                 WHERE tenant_id = $6 AND id = $7",
            )
            .bind(&rule.name)
            .bind(&rule.script)
            .bind(rule.order)
            .bind(rule.enabled)
            .bind(rule.updated_at)
            .bind(self.tenant)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(rule_conflict)?;
            tx.commit().await?;
            Ok(rule)
        })
    }

    pub async fn delete_rule(&self, id: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query("DELETE FROM rules WHERE tenant_id = $1 AND id = $2")
                .bind(self.tenant)
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("rule"));
            }
            Ok(())
        })
    }

    /// The rules-configs' keys, sorted (Auth0 lists them all, unpaged).
    pub async fn rules_config_keys(&self) -> StoreResult<Vec<String>> {
        each!(self, |pool| {
            sqlx::query("SELECT key FROM rules_configs WHERE tenant_id = $1 ORDER BY key")
                .bind(self.tenant)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok(row.try_get("key")?))
                .collect()
        })
    }

    /// Sets a key's sealed value (created or replaced).
    pub async fn set_rules_config(&self, key: &str, sealed: &[u8], now: i64) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO rules_configs (tenant_id, key, sealed, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, key) \
                 DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
            )
            .bind(self.tenant)
            .bind(key)
            .bind(sealed)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn delete_rules_config(&self, key: &str) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query("DELETE FROM rules_configs WHERE tenant_id = $1 AND key = $2")
                .bind(self.tenant)
                .bind(key)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("rules config"));
            }
            Ok(())
        })
    }

    /// Every rules-config with its sealed value: the Rules' `configuration`.
    pub async fn rules_configs_sealed(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        each!(self, |pool| {
            sqlx::query("SELECT key, sealed FROM rules_configs WHERE tenant_id = $1 ORDER BY key")
                .bind(self.tenant)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok((row.try_get("key")?, row.try_get("sealed")?)))
                .collect()
        })
    }
}
