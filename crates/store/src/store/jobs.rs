//! Jobs of the Management API and the errors of their items: written by the server's
//! background tasks, read by `GET /api/v2/jobs/{id}` and `…/errors`.

use super::{Store, to_json};
use crate::backend::{Col as _, Fetch};
use crate::lists::{Bind, Sql, bound_query};
use crate::records::{Job, JobStatus};
use crate::{StoreError, StoreResult};

fn job_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<Job> {
    let status = row.text("status")?;
    let summary = row
        .opt_text("summary")?
        .map(|text| serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("job summary")))
        .transpose()?;
    Ok(Job {
        id: row.col("id")?,
        job_type: row.col("type")?,
        status: JobStatus::parse(&status).ok_or(StoreError::Corrupt("job status"))?,
        connection_id: row.opt_text("connection_id")?,
        external_id: row.opt_text("external_id")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
        expires_at: row.col("expires_at")?,
        summary,
        details: serde_json::from_str(&row.text("details")?)
            .map_err(|_| StoreError::Corrupt("job details"))?,
    })
}

/// Rows of errors one statement inserts: 4 values each, well under both backends'
/// limit on bound values.
const ERRORS_PER_INSERT: usize = 500;

impl Store {
    pub async fn create_job(&self, job: &Job) -> StoreResult<()> {
        each!(self, |pool| {
            sqlx::query(
                "INSERT INTO jobs (tenant_id, id, type, status, connection_id, external_id, \
                 created_at, updated_at, expires_at, summary, details) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(self.tenant)
            .bind(&job.id)
            .bind(&job.job_type)
            .bind(job.status.as_str())
            .bind(&job.connection_id)
            .bind(&job.external_id)
            .bind(job.created_at)
            .bind(job.updated_at)
            .bind(job.expires_at)
            .bind(job.summary.as_ref().map(to_json))
            .bind(to_json(&job.details))
            .execute(pool)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("a job with this id"))?;
            Ok(())
        })
    }

    /// The job, unless it does not exist or has expired.
    pub async fn find_job(&self, id: &str, now: i64) -> StoreResult<Option<Job>> {
        each!(self, |pool| {
            let row = sqlx::query(
                "SELECT id, type, status, connection_id, external_id, created_at, updated_at, \
                 expires_at, summary, details FROM jobs \
                 WHERE tenant_id = $1 AND id = $2 AND expires_at > $3",
            )
            .bind(self.tenant)
            .bind(id)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.map(|row| job_from_row(&row)).transpose()
        })
    }

    /// Moves a job on: its status and, when given, its summary.
    pub async fn set_job_status(
        &self,
        id: &str,
        status: JobStatus,
        summary: Option<&serde_json::Value>,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let done = sqlx::query(
                "UPDATE jobs SET status = $1, summary = COALESCE($2, summary), updated_at = $3 \
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(status.as_str())
            .bind(summary.map(to_json))
            .bind(now)
            .bind(self.tenant)
            .bind(id)
            .execute(pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("job"));
            }
            Ok(())
        })
    }

    /// Records errors of a job's items, `(position in the input, error object)`, a few
    /// hundred rows per statement.
    pub async fn add_job_errors(
        &self,
        job_id: &str,
        errors: &[(i64, serde_json::Value)],
    ) -> StoreResult<()> {
        for chunk in errors.chunks(ERRORS_PER_INSERT) {
            let mut sql =
                Sql::new("INSERT INTO job_errors (tenant_id, job_id, position, error) VALUES ");
            for (index, (position, error)) in chunk.iter().enumerate() {
                let separator = if index == 0 { "" } else { ", " };
                sql.push(
                    &format!("{separator}(?, ?, ?, ?)"),
                    [
                        Bind::Text(self.tenant.into()),
                        Bind::Text(job_id.into()),
                        Bind::Int(*position),
                        Bind::Text(to_json(error)),
                    ],
                );
            }
            each!(self, |pool| {
                bound_query!(&sql).execute(pool).await?;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Up to `limit` errors of a job after `after` (a position; `None`: from the first),
    /// in input order, keyset-paged on the primary key.
    pub async fn job_errors(
        &self,
        job_id: &str,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, serde_json::Value)>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT position, error FROM job_errors \
                 WHERE tenant_id = $1 AND job_id = $2 AND position > $3 \
                 ORDER BY position LIMIT $4",
            )
            .bind(self.tenant)
            .bind(job_id)
            .bind(after.unwrap_or(-1))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    let error = serde_json::from_str(&row.text("error")?)
                        .map_err(|_| StoreError::Corrupt("job error"))?;
                    Ok((row.col("position")?, error))
                })
                .collect()
        })
    }
}
