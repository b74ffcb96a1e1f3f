//! Roles, their permissions and holders, and permissions given to users directly (RBAC).

use tessera_core::{Permission, Role, User};

use super::Store;
use super::users::user_from_row;
use crate::backend::{BeginWrite as _, Fetch};
use crate::lists::{Bind, Checkpoint, CheckpointPage, Page, Slice, Sql};

/// A user's columns read through a join with `user_roles` (aliased `u`).
pub(super) const ROLE_MEMBER_COLUMNS: &str = "SELECT u.user_id, u.connection, u.email, u.email_verified, \
     u.name, u.nickname, u.picture, u.blocked, u.created_at, u.updated_at, u.last_login, \
     u.logins_count, u.user_metadata, u.app_metadata";

/// A role's members, by page and by checkpoint: by `user_id`.
pub(super) const MEMBER_ORDER: &str = " ORDER BY ur.user_id";
pub(super) const MEMBER_KEY: &str = "ur.user_id";

/// `text` with `\`, `%` and `_` escaped for `LIKE … ESCAPE '\'`.
fn like_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
use crate::{StoreError, StoreResult};

fn role_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<Role> {
    Ok(Role {
        id: row.col("id")?,
        name: row.col("name")?,
        description: row.col("description")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
    })
}

fn permission_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<Permission> {
    Ok(Permission {
        audience: row.col("audience")?,
        permission: row.col("permission")?,
    })
}

/// What holds permissions directly: a role, or a user without a role. The statements of
/// each, side by side (the tables differ only in the holder's column).
#[derive(Clone, Copy)]
enum Holder {
    Role,
    User,
}

impl Holder {
    fn insert(self) -> &'static str {
        match self {
            Holder::Role => {
                "INSERT INTO role_permissions (tenant_id, role_id, audience, permission) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            }
            Holder::User => {
                "INSERT INTO user_permissions (tenant_id, user_id, audience, permission) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            }
        }
    }

    fn delete(self) -> &'static str {
        match self {
            Holder::Role => {
                "DELETE FROM role_permissions \
                 WHERE tenant_id = $1 AND role_id = $2 AND audience = $3 AND permission = $4"
            }
            Holder::User => {
                "DELETE FROM user_permissions \
                 WHERE tenant_id = $1 AND user_id = $2 AND audience = $3 AND permission = $4"
            }
        }
    }

    /// What a foreign-key failure of its insert names.
    fn missing(self) -> &'static str {
        match self {
            Holder::Role => "role or API",
            Holder::User => "user or API",
        }
    }
}

impl Store {
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
            .map_err(|e| StoreError::from(e).conflict_is("a role with this name"))?;
            Ok(())
        })
    }

    /// One page of roles by name, Tessera's system roles left out; `name_filter` keeps
    /// those whose name contains it, ignoring the case of ASCII letters. (Roles are few — configuration, not users —
    /// so the filter reads the tenant's roles through the name index.)
    pub async fn list_roles(
        &self,
        name_filter: Option<&str>,
        slice: Slice,
    ) -> StoreResult<Page<Role>> {
        let mut filter = Sql::default();
        filter.push(
            " FROM roles WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        // Tessera's system roles (who may use the dashboard) are never listed: Auth0's
        // tools would rewrite their permissions (auth0-deploy-cli deletes and re-adds a
        // role's permissions on every import) or delete them. Left out here, so pages and
        // totals agree; they are read by id and `tessera admins list` shows their holders.
        let system = tessera_core::system::SYSTEM_ROLES;
        let marks = vec!["?"; system.len()].join(", ");
        filter.push(
            &format!(" AND id NOT IN ({marks})"),
            system.iter().map(|role| Bind::Text(role.id.to_string())),
        );
        if let Some(part) = name_filter {
            let pattern = format!("%{}%", like_escaped(&part.to_ascii_lowercase()));
            filter.push(" AND lower(name) LIKE ? ESCAPE '\\'", [Bind::Text(pattern)]);
        }
        self.page_of(
            "SELECT id, name, description, created_at, updated_at",
            &filter,
            " ORDER BY name",
            slice,
            |row| role_from_row(row),
        )
        .await
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
            .map_err(|e| StoreError::from(e).conflict_is("a role with this name"))?
            .ok_or(StoreError::NotFound("role"))?;
            role_from_row(&row)
        })
    }

    /// One page of the users holding a role, by `user_id`.
    pub async fn list_role_users(&self, role_id: &str, slice: Slice) -> StoreResult<Page<User>> {
        self.page_of(
            ROLE_MEMBER_COLUMNS,
            &self.role_members(role_id),
            MEMBER_ORDER,
            slice,
            |row| user_from_row(row),
        )
        .await
    }

    /// The users holding a role by checkpoint (`from` = a `user_id`).
    pub async fn role_users_from(
        &self,
        role_id: &str,
        checkpoint: Checkpoint<'_>,
    ) -> StoreResult<CheckpointPage<User>> {
        self.checkpoint_of(
            ROLE_MEMBER_COLUMNS,
            self.role_members(role_id),
            MEMBER_KEY,
            checkpoint,
            |row| user_from_row(row),
            |user: &User| user.user_id.clone(),
        )
        .await
    }

    /// A role's members, through the `(tenant_id, role_id, user_id)` index.
    pub(super) fn role_members(&self, role_id: &str) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM user_roles ur JOIN users u ON u.tenant_id = ur.tenant_id AND u.user_id = ur.user_id \
             WHERE ur.tenant_id = ? AND ur.role_id = ?",
            [Bind::Text(self.tenant.into()), Bind::Text(role_id.into())],
        );
        sql
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
        self.add_permissions(Holder::Role, role_id, audience, permissions)
            .await
    }

    pub async fn remove_role_permissions(
        &self,
        role_id: &str,
        audience: &str,
        permissions: &[String],
    ) -> StoreResult<()> {
        self.remove_permissions(Holder::Role, role_id, audience, permissions)
            .await
    }

    /// One page of a role's permissions, by API identifier then name.
    pub async fn list_role_permissions(
        &self,
        role_id: &str,
        slice: Slice,
    ) -> StoreResult<Page<Permission>> {
        let mut filter = Sql::default();
        filter.push(
            " FROM role_permissions WHERE tenant_id = ? AND role_id = ?",
            [Bind::Text(self.tenant.into()), Bind::Text(role_id.into())],
        );
        self.page_of(
            "SELECT audience, permission",
            &filter,
            " ORDER BY audience, permission",
            slice,
            |row| permission_from_row(row),
        )
        .await
    }

    /// Every permission of one role (bounded by what an administrator gave it).
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
            .map_err(|e| StoreError::from(e).not_found_is("user or role"))?;
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

    /// One page of a user's roles, by name.
    pub async fn list_user_roles(&self, user_id: &str, slice: Slice) -> StoreResult<Page<Role>> {
        let mut filter = Sql::default();
        filter.push(
            " FROM roles r JOIN user_roles ur ON ur.tenant_id = r.tenant_id AND ur.role_id = r.id \
             WHERE r.tenant_id = ? AND ur.user_id = ?",
            [Bind::Text(self.tenant.into()), Bind::Text(user_id.into())],
        );
        self.page_of(
            "SELECT r.id, r.name, r.description, r.created_at, r.updated_at",
            &filter,
            " ORDER BY r.name",
            slice,
            |row| role_from_row(row),
        )
        .await
    }

    /// Every role of one user (bounded by what an administrator assigned).
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

    /// Gives the user permissions of one API directly (already present ones are kept).
    pub async fn add_user_permissions(
        &self,
        user_id: &str,
        audience: &str,
        permissions: &[String],
    ) -> StoreResult<()> {
        self.add_permissions(Holder::User, user_id, audience, permissions)
            .await
    }

    /// Takes back permissions given to the user directly (not those a role gives).
    pub async fn remove_user_permissions(
        &self,
        user_id: &str,
        audience: &str,
        permissions: &[String],
    ) -> StoreResult<()> {
        self.remove_permissions(Holder::User, user_id, audience, permissions)
            .await
    }

    /// Adds permissions of one API to `holder` `id` in one transaction.
    async fn add_permissions(
        &self,
        holder: Holder,
        id: &str,
        audience: &str,
        permissions: &[String],
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            for permission in permissions {
                sqlx::query(holder.insert())
                    .bind(self.tenant)
                    .bind(id)
                    .bind(audience)
                    .bind(permission)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from(e).not_found_is(holder.missing()))?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes permissions of one API from `holder` `id` in one transaction.
    async fn remove_permissions(
        &self,
        holder: Holder,
        id: &str,
        audience: &str,
        permissions: &[String],
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            for permission in permissions {
                sqlx::query(holder.delete())
                    .bind(self.tenant)
                    .bind(id)
                    .bind(audience)
                    .bind(permission)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// One page of what a user may do, through roles and direct grants, by API
    /// identifier then name, without duplicates.
    pub async fn list_user_permissions(
        &self,
        user_id: &str,
        slice: Slice,
    ) -> StoreResult<Page<Permission>> {
        let mut filter = Sql::default();
        filter.push(
            " FROM (SELECT rp.audience, rp.permission FROM role_permissions rp \
               JOIN user_roles ur ON ur.tenant_id = rp.tenant_id AND ur.role_id = rp.role_id \
               WHERE rp.tenant_id = ? AND ur.user_id = ? \
             UNION \
             SELECT audience, permission FROM user_permissions \
               WHERE tenant_id = ? AND user_id = ?) AS p",
            [
                Bind::Text(self.tenant.into()),
                Bind::Text(user_id.into()),
                Bind::Text(self.tenant.into()),
                Bind::Text(user_id.into()),
            ],
        );
        self.page_of(
            "SELECT audience, permission",
            &filter,
            " ORDER BY audience, permission",
            slice,
            |row| permission_from_row(row),
        )
        .await
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
}
