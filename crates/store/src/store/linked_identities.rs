//! Linked identities (migration 0018), Auth0's account linking: linking moves a secondary
//! account into its primary user as an identity (the secondary's user row goes, with its
//! sessions, tokens, roles and grants); signing in through that identity signs the primary
//! in; unlinking gives the identity its own user row back, from the profile it last had.

use super::users::profile_as_stored;
use super::{Store, to_json};
use crate::backend::{BeginWrite as _, Col, Fetch};
use crate::lists::{Bind, Sql, bound_query};
use crate::records::{FederatedProfile, LinkedIdentity, LinkedProfile};
use crate::{StoreError, StoreResult};

/// The most identities one user may have linked: a user's identities are read whole with
/// the user, so they stay few.
pub const MAX_LINKED_IDENTITIES: i64 = 20;

/// The most primaries one [`Store::linked_identities_of`] reads: a page of users, or a
/// chunk of an export.
const MAX_PRIMARIES: usize = 500;

macro_rules! linked_columns {
    () => {
        "user_id, primary_user_id, connection, profile, linked_at"
    };
}

fn linked_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<LinkedIdentity> {
    let profile = serde_json::from_str(&row.text("profile")?)
        .map_err(|_| StoreError::Corrupt("linked identity profile"))?;
    Ok(LinkedIdentity {
        user_id: row.text("user_id")?,
        primary_user_id: row.text("primary_user_id")?,
        connection: row.text("connection")?,
        profile,
        linked_at: row.col("linked_at")?,
    })
}

impl Store {
    /// Links `secondary` (a user) to `primary` as an identity, in one transaction: the
    /// secondary's profile is kept with the identity and its user row is deleted. `NotFound`
    /// when either user is missing; `Conflict` when the secondary has identities of its
    /// own (they would go with its row) or the primary has the most it may have.
    pub async fn link_identity(&self, primary: &str, secondary: &str, now: i64) -> StoreResult<()> {
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            let rows = sqlx::query(for_update!(
                pg,
                "SELECT user_id, connection, email, email_verified, name, nickname, picture \
                 FROM users WHERE tenant_id = $1 AND user_id IN ($2, $3)"
            ))
            .bind(self.tenant)
            .bind(primary)
            .bind(secondary)
            .fetch_all(&mut *tx)
            .await?;
            let mut secondary_row = None;
            let mut primary_found = false;
            for row in &rows {
                let id = row.text("user_id")?;
                if id == primary {
                    primary_found = true;
                }
                if id == secondary {
                    secondary_row = Some(row);
                }
            }
            let secondary_row = match secondary_row {
                Some(row) if primary_found && primary != secondary => row,
                _ => return Err(StoreError::NotFound("user")),
            };
            let profile = LinkedProfile {
                email: secondary_row.opt_text("email")?,
                email_verified: secondary_row.col("email_verified")?,
                name: secondary_row.text("name")?,
                nickname: secondary_row.text("nickname")?,
                picture: secondary_row.text("picture")?,
            };
            let connection = secondary_row.text("connection")?;
            let counts = sqlx::query(
                "SELECT \
                   (SELECT COUNT(*) FROM linked_identities WHERE tenant_id = $1 AND primary_user_id = $2) AS of_secondary, \
                   (SELECT COUNT(*) FROM linked_identities WHERE tenant_id = $1 AND primary_user_id = $3) AS of_primary",
            )
            .bind(self.tenant)
            .bind(secondary)
            .bind(primary)
            .fetch_one(&mut *tx)
            .await?;
            let of_secondary: i64 = counts.col("of_secondary")?;
            let of_primary: i64 = counts.col("of_primary")?;
            if of_secondary > 0 {
                return Err(StoreError::Conflict(
                    "identities linked to the secondary user",
                ));
            }
            if of_primary >= MAX_LINKED_IDENTITIES {
                return Err(StoreError::Conflict("the most identities a user may have"));
            }
            sqlx::query(
                "INSERT INTO linked_identities (tenant_id, user_id, primary_user_id, connection, \
                 profile, linked_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(self.tenant)
            .bind(secondary)
            .bind(primary)
            .bind(&connection)
            .bind(to_json(&profile))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND user_id = $2")
                .bind(self.tenant)
                .bind(secondary)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Unlinks `secondary` from `primary`, in one transaction: it becomes a user again, with
    /// the profile it last had, as new (no login yet). `NotFound("identity")` when it is not
    /// linked to `primary`.
    pub async fn unlink_identity(
        &self,
        primary: &str,
        secondary: &str,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            let row = sqlx::query(
                "DELETE FROM linked_identities WHERE tenant_id = $1 AND user_id = $2 \
                 AND primary_user_id = $3 RETURNING connection, profile",
            )
            .bind(self.tenant)
            .bind(secondary)
            .bind(primary)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("identity"))?;
            let profile: LinkedProfile = serde_json::from_str(&row.text("profile")?)
                .map_err(|_| StoreError::Corrupt("linked identity profile"))?;
            sqlx::query(
                "INSERT INTO users (tenant_id, user_id, connection, email, email_verified, \
                 password_hash, name, nickname, picture, blocked, created_at, updated_at, \
                 last_login, logins_count, user_metadata, app_metadata) \
                 VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, FALSE, $9, $9, NULL, 0, '{}', '{}')",
            )
            .bind(self.tenant)
            .bind(secondary)
            .bind(row.text("connection")?)
            .bind(&profile.email)
            .bind(profile.email_verified)
            .bind(&profile.name)
            .bind(&profile.nickname)
            .bind(&profile.picture)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("a user with this email"))?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The identities linked to `primary`, in id order (at most
    /// [`MAX_LINKED_IDENTITIES`]).
    pub async fn linked_identities(&self, primary: &str) -> StoreResult<Vec<LinkedIdentity>> {
        self.linked_identities_of(&[primary]).await
    }

    /// The identities linked to any of `primaries` (a page of users, at most 500), by
    /// primary then id.
    pub async fn linked_identities_of(
        &self,
        primaries: &[&str],
    ) -> StoreResult<Vec<LinkedIdentity>> {
        if primaries.is_empty() {
            return Ok(Vec::new());
        }
        if primaries.len() > MAX_PRIMARIES {
            return Err(StoreError::Corrupt("more primaries than a page of users"));
        }
        let ids: Vec<String> = primaries.iter().map(|id| (*id).to_owned()).collect();
        let sql = self.linked_of_sql(&ids);
        let mut linked = each!(self, |pool| {
            bound_query!(&sql)
                .fetch_all(pool)
                .await?
                .iter()
                .map(linked_from_row)
                .collect::<StoreResult<Vec<_>>>()
        })?;
        // Sorted here, not in SQL: an ORDER BY over an IN list leads PostgreSQL to walk the
        // whole tenant's index in order; the result is bounded (a page × 20).
        linked.sort_by(|a, b| {
            (&a.primary_user_id, &a.user_id).cmp(&(&b.primary_user_id, &b.user_id))
        });
        Ok(linked)
    }

    /// The query of [`Store::linked_identities_of`] (its plan is checked in `plans.rs`).
    pub(super) fn linked_of_sql(&self, primaries: &[String]) -> Sql {
        let mut sql = Sql::new(concat!(
            "SELECT ",
            linked_columns!(),
            " FROM linked_identities"
        ));
        sql.push(
            " WHERE tenant_id = ?",
            [Bind::Text(self.tenant.to_string())],
        );
        sql.push_in("primary_user_id", primaries);
        sql
    }

    /// A sign-in through an identity: when it is linked, keeps the upstream's new profile
    /// with it and answers its primary user's id; `None` when it is not linked.
    pub async fn sign_in_linked(
        &self,
        user_id: &str,
        profile: &FederatedProfile,
    ) -> StoreResult<Option<String>> {
        let profile = to_json(&profile_as_stored(profile, user_id));
        each!(self, |pool| {
            let row = sqlx::query(
                "UPDATE linked_identities SET profile = $1 WHERE tenant_id = $2 AND user_id = $3 \
                 RETURNING primary_user_id",
            )
            .bind(&profile)
            .bind(self.tenant)
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            row.map(|r| r.text("primary_user_id")).transpose()
        })
    }
}
