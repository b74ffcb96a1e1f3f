//! The audit log (migration 0031): events appended in batches, read by checkpoint (the
//! `log_id` order, what Auth0's log exporters and `tessera logs tail` follow), searched
//! by type, user, application and date through indexes, purged past the retention.

use super::{Store, to_json};
use crate::backend::{BeginWrite as _, Fetch};
use crate::lists::{Bind, Page, Slice, Sql, bound_query};
use crate::records::{LogEntry, LogEvent, LogSearch};
use crate::{StoreError, StoreResult};

pub(super) const LOG_SELECT: &str = "SELECT log_id, logged_at, type, description, client_id, \
     client_name, user_id, user_name, connection, ip, user_agent, audience, scope, details";

/// The search's order: by date, ties (events of one millisecond) by `log_id`.
pub(super) fn log_order(search: &LogSearch) -> &'static str {
    if search.oldest_first {
        " ORDER BY logged_at, log_id"
    } else {
        " ORDER BY logged_at DESC, log_id DESC"
    }
}

/// On PostgreSQL, what every append takes first: log writers (one per node) commit one
/// after another, so a `log_id` is committed only after every lower one is. `log_id` comes
/// from a sequence; without this, a batch holding lower ids could commit after a checkpoint
/// reader (`log_id > from`) had already returned a higher one, and the reader — an exporter,
/// a log stream — would never see it. The lock is taken before any id is drawn and held to
/// the commit, so a reader's snapshot always holds a prefix of the ids: the checkpoint read
/// is exact without a settle window. (A transaction id per row compared with the
/// snapshot's `xmin` is not enough alone: two writers can draw their xids and their ids in
/// opposite orders.) It conflicts with inserts and deletes of `logs`, not with reads; a
/// writer holds it for one batch's insert and commit. SQLite has one writer already.
const LOCK_LOGS: &str = "LOCK TABLE logs IN SHARE ROW EXCLUSIVE MODE";

/// Events one `INSERT` writes: 14 values each, well under both backends' limit.
const EVENTS_PER_INSERT: usize = 100;

/// Digits of a `log_id` as shown: every id of a signed 64-bit integer, zero-padded so
/// that ids sort as text as they do as numbers.
const LOG_ID_DIGITS: usize = 20;

/// A `log_id` as shown (`00000000000000000042`).
fn show_log_id(id: i64) -> String {
    format!("{id:0LOG_ID_DIGITS$}")
}

/// The number of a `log_id` as [`LogEntry::log_id`] shows it; `None` unless it is 1 to 20
/// decimal digits of a non-negative 64-bit integer.
pub fn log_id_number(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > LOG_ID_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn log_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<LogEntry> {
    let id: i64 = row.col("log_id")?;
    Ok(LogEntry {
        log_id: show_log_id(id),
        event: LogEvent {
            date: row.col("logged_at")?,
            log_type: row.text("type")?,
            description: row.opt_text("description")?,
            client_id: row.opt_text("client_id")?,
            client_name: row.opt_text("client_name")?,
            user_id: row.opt_text("user_id")?,
            user_name: row.opt_text("user_name")?,
            connection: row.opt_text("connection")?,
            ip: row.opt_text("ip")?,
            user_agent: row.opt_text("user_agent")?,
            audience: row.opt_text("audience")?,
            scope: row.opt_text("scope")?,
            details: serde_json::from_str(&row.text("details")?)
                .map_err(|_| StoreError::Corrupt("log details"))?,
        },
    })
}

impl Store {
    /// Appends `events` in one transaction (one commit, one fsync for the batch), in order:
    /// each gets a `log_id` above every earlier one, committed after every earlier one
    /// ([`LOCK_LOGS`]).
    pub async fn append_logs(&self, events: &[LogEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let statements: Vec<Sql> = events
            .chunks(EVENTS_PER_INSERT)
            .map(|chunk| self.insert_logs_sql(chunk))
            .collect();
        each!(self, |pool| {
            let mut tx = pool.begin_write(Some(LOCK_LOGS)).await?;
            for sql in &statements {
                bound_query!(sql).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn insert_logs_sql(&self, events: &[LogEvent]) -> Sql {
        let mut sql = Sql::new(
            "INSERT INTO logs (tenant_id, logged_at, type, description, client_id, client_name, \
             user_id, user_name, connection, ip, user_agent, audience, scope, details) VALUES ",
        );
        for (index, event) in events.iter().enumerate() {
            let separator = if index == 0 { "" } else { ", " };
            let text = |value: &Option<String>| Bind::OptText(value.clone());
            sql.push(
                &format!("{separator}(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                [
                    Bind::Text(self.tenant.into()),
                    Bind::Int(event.date),
                    Bind::Text(event.log_type.clone()),
                    text(&event.description),
                    text(&event.client_id),
                    text(&event.client_name),
                    text(&event.user_id),
                    text(&event.user_name),
                    text(&event.connection),
                    text(&event.ip),
                    text(&event.user_agent),
                    text(&event.audience),
                    text(&event.scope),
                    Bind::Text(to_json(&event.details)),
                ],
            );
        }
        sql
    }

    /// Up to `take` events after the one numbered `after` (`None`: from the oldest kept),
    /// in `log_id` order; only of type `log_type` when given.
    pub async fn logs_after(
        &self,
        after: Option<i64>,
        take: u32,
        log_type: Option<&str>,
    ) -> StoreResult<Vec<LogEntry>> {
        let sql = self.logs_after_sql(after, take, log_type);
        each!(self, |pool| {
            let rows = bound_query!(&sql).fetch_all(pool).await?;
            rows.iter().map(log_from_row).collect()
        })
    }

    pub(super) fn logs_after_sql(
        &self,
        after: Option<i64>,
        take: u32,
        log_type: Option<&str>,
    ) -> Sql {
        let mut sql = Sql::new(LOG_SELECT);
        sql.push(
            " FROM logs WHERE tenant_id = ? AND log_id > ?",
            [
                Bind::Text(self.tenant.into()),
                Bind::Int(after.unwrap_or(0)),
            ],
        );
        if let Some(log_type) = log_type {
            sql.push(" AND type = ?", [Bind::Text(log_type.into())]);
        }
        sql.push(" ORDER BY log_id LIMIT ?", [Bind::Int(i64::from(take))]);
        sql
    }

    /// The `WHERE` of a search: the tenant, then each term given.
    pub(super) fn log_filter(&self, search: &LogSearch) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM logs WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        if let Some(log_type) = &search.log_type {
            sql.push(" AND type = ?", [Bind::Text(log_type.clone())]);
        }
        if let Some(user_id) = &search.user_id {
            sql.push(" AND user_id = ?", [Bind::Text(user_id.clone())]);
        }
        if let Some(client_id) = &search.client_id {
            sql.push(" AND client_id = ?", [Bind::Text(client_id.clone())]);
        }
        // With a term of its own, the search reads that term's index, whose order is the
        // date's: SQLite, without statistics, would rather take a date range to the date
        // index and filter a whole period for the term. `+logged_at` (no index) tells it.
        let by_term =
            search.log_type.is_some() || search.user_id.is_some() || search.client_id.is_some();
        let date = if by_term && matches!(self.backend, super::Backend::Sqlite(_)) {
            "+logged_at"
        } else {
            "logged_at"
        };
        if let Some(from) = search.from_date {
            sql.push(&format!(" AND {date} >= ?"), [Bind::Int(from)]);
        }
        if let Some(to) = search.to_date {
            sql.push(&format!(" AND {date} <= ?"), [Bind::Int(to)]);
        }
        sql
    }

    /// One page of a search, by date.
    pub async fn search_logs(
        &self,
        search: &LogSearch,
        slice: Slice,
    ) -> StoreResult<Page<LogEntry>> {
        self.page_of(
            LOG_SELECT,
            &self.log_filter(search),
            log_order(search),
            slice,
            |row| log_from_row(row),
        )
        .await
    }

    /// The event `log_id` names, if it is kept.
    pub async fn find_log(&self, log_id: &str) -> StoreResult<Option<LogEntry>> {
        let Some(id) = log_id_number(log_id) else {
            return Ok(None);
        };
        each!(self, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{LOG_SELECT} FROM logs WHERE tenant_id = $1 AND log_id = $2"
            )))
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(pool)
            .await?;
            row.map(|row| log_from_row(&row)).transpose()
        })
    }

    /// Deletes up to `PURGE_BATCH` events logged before `before` (milliseconds), oldest
    /// first through the date index; returns how many went.
    pub async fn purge_logs(&self, before: i64) -> StoreResult<u64> {
        each!(self, |pool, pg| {
            let sql = if pg {
                "DELETE FROM logs WHERE log_id = ANY(ARRAY(SELECT log_id FROM logs \
                 WHERE tenant_id = $1 AND logged_at < $2 ORDER BY logged_at LIMIT $3))"
            } else {
                "DELETE FROM logs WHERE log_id IN (SELECT log_id FROM logs \
                 WHERE tenant_id = $1 AND logged_at < $2 ORDER BY logged_at LIMIT $3)"
            };
            Ok(sqlx::query(sql)
                .bind(self.tenant)
                .bind(before)
                .bind(super::PURGE_BATCH)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }
}
