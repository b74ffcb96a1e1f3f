//! Users of the database connection, their profile and metadata, and the failed logins
//! counted against them.

use sqlx::Row;
use tessera_core::{
    ACCOUNT_DEACTIVATED, ACCOUNT_DELETED, DATABASE_CONNECTION, Metadata, PASSWORD_CHANGED,
    SESSION_REVOKED, User,
};

use super::{Store, to_json};
use crate::backend::{BeginWrite as _, Col as _, Fetch};
use crate::lists::{
    Bind, Match, Page, Slice, Sql, UserField, UserOrder, UserSearch, UserSort, bound_query,
    prefix_end,
};
use crate::records::{
    FederatedProfile, ImportOutcome, ImportedUser, LinkedProfile, NewUser, UserProfileChange,
};
use crate::{StoreError, StoreResult};

fn json_object(text: &str) -> StoreResult<Metadata> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("JSON object"))
}

/// What a page of users reads.
pub(super) const USER_SELECT: &str = concat!("SELECT ", user_columns!());

/// The column (or the indexed expression) a term searches.
fn user_column(field: UserField) -> &'static str {
    match field {
        UserField::Email => "email",
        UserField::Name => "lower(name)",
        UserField::UserId => "user_id",
        UserField::Connection => "connection",
    }
}

/// ` ORDER BY …` for `order`: each order has an index ending in `user_id`, read forwards
/// or backwards, and `user_id` breaks ties in the same direction.
pub(super) fn user_order(order: UserSort) -> String {
    let column = match order.by {
        UserOrder::CreatedAt => "created_at",
        UserOrder::UpdatedAt => "updated_at",
        UserOrder::LastLogin => "last_login",
        UserOrder::Email => "email",
        UserOrder::Name => "lower(name)",
        UserOrder::UserId => "user_id",
    };
    let direction = if order.descending { "DESC" } else { "ASC" };
    // NULL (never logged in, no email) sorts first ascending, last descending, on both
    // backends: SQLite's own rule, spelled out for PostgreSQL (whose indexes are built
    // that way).
    let nulls = match (order.by, order.descending) {
        (UserOrder::LastLogin | UserOrder::Email, false) => " NULLS FIRST",
        (UserOrder::LastLogin | UserOrder::Email, true) => " NULLS LAST",
        _ => "",
    };
    let tie_break = if order.by == UserOrder::UserId {
        String::new()
    } else {
        format!(", user_id {direction}")
    };
    format!(" ORDER BY {column} {direction}{nulls}{tie_break}")
}

pub(super) fn user_from_row(row: &(impl Fetch + ?Sized)) -> StoreResult<User> {
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

/// A default avatar, as Auth0 gives users without one: an inline SVG with the initials
/// of `seed` (the email, else the name), so nothing is loaded from a third-party host.
fn default_picture(seed: &str) -> String {
    let initials: String = seed
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

/// An upstream's profile of the user `user_id` with the defaults a user row gets for
/// what it leaves out. Without an email (the provider shared none) the nickname is the
/// provider's, else its name, else the user id; the name is the provider's, else the
/// nickname; `email_verified` is false.
pub(super) fn profile_as_stored(profile: &FederatedProfile, user_id: &str) -> LinkedProfile {
    let email = profile
        .email
        .as_deref()
        .map(tessera_core::normalize_email)
        .filter(|email| !email.is_empty());
    let nickname = profile.nickname.clone().unwrap_or_else(|| match &email {
        Some(email) => User::nickname_from_email(email),
        None => profile.name.clone().unwrap_or_else(|| user_id.to_string()),
    });
    let name = profile
        .name
        .clone()
        .unwrap_or_else(|| email.clone().unwrap_or_else(|| nickname.clone()));
    LinkedProfile {
        picture: profile
            .picture
            .clone()
            .unwrap_or_else(|| default_picture(email.as_deref().unwrap_or(&name))),
        name,
        nickname,
        email_verified: profile.email_verified && email.is_some(),
        email,
    }
}

/// How many users `users_with_email` answers at most: one per connection, and a tenant
/// has few connections.
pub const MAX_USERS_BY_EMAIL: i64 = 100;

impl Store {
    /// Creates a user of the default database connection (see [`Store::create_user_in`]).
    pub async fn create_user(&self, new: &NewUser, user_id: &str, now: i64) -> StoreResult<User> {
        self.create_user_in(DATABASE_CONNECTION, new, user_id, now)
            .await
    }

    /// Creates a user of the database connection named `connection`; `user_id` is in
    /// Auth0's `auth0|<hex>` shape. `NotFound` when no database connection has that name
    /// (checked in the insert itself, so a connection deleted meanwhile takes no user);
    /// `Conflict` when the connection has a user with the email.
    pub async fn create_user_in(
        &self,
        connection: &str,
        new: &NewUser,
        user_id: &str,
        now: i64,
    ) -> StoreResult<User> {
        each!(self, |pool| {
            let email = tessera_core::normalize_email(&new.email);
            let user = User {
                user_id: user_id.to_string(),
                connection: connection.to_string(),
                name: new.name.clone().unwrap_or_else(|| email.clone()),
                nickname: new
                    .nickname
                    .clone()
                    .unwrap_or_else(|| User::nickname_from_email(&email)),
                picture: new
                    .picture
                    .clone()
                    .unwrap_or_else(|| default_picture(&email)),
                email: Some(email),
                email_verified: new.email_verified,
                blocked: false,
                created_at: now,
                updated_at: now,
                last_login: None,
                logins_count: 0,
                user_metadata: new.user_metadata.clone(),
                app_metadata: new.app_metadata.clone(),
            };
            let inserted = sqlx::query(
            "INSERT INTO users (tenant_id, user_id, connection, email, email_verified, password_hash, name, nickname, \
             picture, blocked, created_at, updated_at, last_login, logins_count, user_metadata, app_metadata) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE, $10, $11, NULL, 0, $12, $13 \
             WHERE EXISTS (SELECT 1 FROM connections WHERE tenant_id = $1 AND name = $3 \
             AND strategy = 'auth0')",
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
        .map_err(|e| StoreError::from(e).conflict_is("a user with this email"))?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::NotFound("database connection"));
            }
            Ok(user)
        })
    }

    /// Writes one batch of a bulk import in one transaction: a user whose email is new
    /// (and whose `user_id` is free) is inserted; one whose email exists is updated when
    /// `upsert` — only the fields Auth0 upserts (profile, `email_verified`, metadata),
    /// never the password or `blocked` — or refused. One query finds the users that
    /// exist, one statement inserts the new ones; a row a concurrent writer took in
    /// between is skipped by `ON CONFLICT DO NOTHING` and reported as a duplicate.
    /// The outcomes are in `users`' order; `users` must not repeat an email or id.
    pub async fn import_users(
        &self,
        users: &[ImportedUser],
        upsert: bool,
        now: i64,
    ) -> StoreResult<Vec<ImportOutcome>> {
        self.import_users_into(DATABASE_CONNECTION, users, upsert, now)
            .await
    }

    /// [`Store::import_users`] into the database connection named `connection`;
    /// `NotFound` when there is none.
    pub async fn import_users_into(
        &self,
        connection: &str,
        users: &[ImportedUser],
        upsert: bool,
        now: i64,
    ) -> StoreResult<Vec<ImportOutcome>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let emails: Vec<String> = users
            .iter()
            .map(|u| tessera_core::normalize_email(&u.email))
            .collect();
        let ids: Vec<String> = users.iter().map(|u| u.user_id.clone()).collect();
        // The users of the batch's emails (in the connection) and of its ids: one query,
        // each half searching its own unique index.
        let mut existing = Sql::default();
        existing.push(
            "SELECT user_id, email, connection FROM users WHERE tenant_id = ? AND connection = ?",
            [
                Bind::Text(self.tenant.into()),
                Bind::Text(connection.into()),
            ],
        );
        existing.push_in("email", &emails);
        existing.push(
            " UNION ALL SELECT user_id, email, connection FROM users WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        existing.push_in("user_id", &ids);
        each!(self, |pool, pg| {
            let mut tx = pool.begin_write(None).await?;
            // The connection's row stays until this commits (a delete waits for it and then
            // sees these users); SQLite's one writer gives the same.
            let found = sqlx::query(if pg {
                "SELECT 1 AS one FROM connections WHERE tenant_id = $1 AND name = $2 \
                 AND strategy = 'auth0' FOR SHARE"
            } else {
                "SELECT 1 AS one FROM connections WHERE tenant_id = $1 AND name = $2 \
                 AND strategy = 'auth0'"
            })
            .bind(self.tenant)
            .bind(connection)
            .fetch_optional(&mut *tx)
            .await?;
            if found.is_none() {
                return Err(StoreError::NotFound("database connection"));
            }
            let rows = bound_query!(&existing).fetch_all(&mut *tx).await?;
            let mut by_email = std::collections::HashMap::new();
            let mut taken_ids = std::collections::HashSet::new();
            for row in &rows {
                let user_id: String = row.col("user_id")?;
                let row_connection: String = row.col("connection")?;
                // A user found by id may have no email (an upstream's).
                if let (true, Some(email)) = (row_connection == connection, row.opt_text("email")?)
                {
                    by_email.insert(email, user_id.clone());
                }
                taken_ids.insert(user_id);
            }
            let mut outcomes = Vec::with_capacity(users.len());
            let mut insert = Sql::new(
                "INSERT INTO users (tenant_id, user_id, connection, email, email_verified, \
                 password_hash, name, nickname, picture, blocked, created_at, updated_at, \
                 last_login, logins_count, user_metadata, app_metadata) VALUES ",
            );
            let mut inserting = 0;
            for (user, email) in users.iter().zip(&emails) {
                if let Some(existing_id) = by_email.get(email) {
                    if !upsert {
                        outcomes.push(ImportOutcome::DuplicateEmail);
                        continue;
                    }
                    sqlx::query(
                        "UPDATE users SET email_verified = COALESCE($1, email_verified), \
                         name = COALESCE($2, name), nickname = COALESCE($3, nickname), \
                         picture = COALESCE($4, picture), user_metadata = COALESCE($5, user_metadata), \
                         app_metadata = COALESCE($6, app_metadata), updated_at = $7 \
                         WHERE tenant_id = $8 AND user_id = $9",
                    )
                    .bind(user.email_verified)
                    .bind(&user.name)
                    .bind(&user.nickname)
                    .bind(&user.picture)
                    .bind(user.user_metadata.as_ref().map(to_json))
                    .bind(user.app_metadata.as_ref().map(to_json))
                    .bind(now)
                    .bind(self.tenant)
                    .bind(existing_id)
                    .execute(&mut *tx)
                    .await?;
                    outcomes.push(ImportOutcome::Updated);
                    continue;
                }
                if taken_ids.contains(&user.user_id) {
                    outcomes.push(ImportOutcome::DuplicateUserId);
                    continue;
                }
                let separator = if inserting == 0 { "" } else { ", " };
                inserting += 1;
                insert.push(
                    &format!("{separator}(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, ?, ?)"),
                    [
                        Bind::Text(self.tenant.into()),
                        Bind::Text(user.user_id.clone()),
                        Bind::Text(connection.into()),
                        Bind::Text(email.clone()),
                        Bind::Bool(user.email_verified.unwrap_or(false)),
                        Bind::OptText(user.password_hash.clone()),
                        Bind::Text(user.name.clone().unwrap_or_else(|| email.clone())),
                        Bind::Text(
                            user.nickname
                                .clone()
                                .unwrap_or_else(|| User::nickname_from_email(email)),
                        ),
                        Bind::Text(
                            user.picture
                                .clone()
                                .unwrap_or_else(|| default_picture(email)),
                        ),
                        Bind::Bool(user.blocked),
                        Bind::Int(now),
                        Bind::Int(now),
                        Bind::Text(to_json(&user.user_metadata.clone().unwrap_or_default())),
                        Bind::Text(to_json(&user.app_metadata.clone().unwrap_or_default())),
                    ],
                );
                outcomes.push(ImportOutcome::Inserted);
            }
            if inserting > 0 {
                insert
                    .text
                    .push_str(" ON CONFLICT DO NOTHING RETURNING user_id");
                let inserted: std::collections::HashSet<String> = bound_query!(&insert)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|row| row.col("user_id"))
                    .collect::<StoreResult<_>>()?;
                for (user, outcome) in users.iter().zip(outcomes.iter_mut()) {
                    if *outcome == ImportOutcome::Inserted && !inserted.contains(&user.user_id) {
                        *outcome = ImportOutcome::DuplicateEmail;
                    }
                }
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }

    /// A sign-in through an upstream connection: creates the user `user_id` of
    /// `connection` from `profile`, or brings an existing one's profile up to date (as
    /// the provider says it now), in one statement. `Conflict` if another user of the
    /// connection has the email.
    pub async fn upsert_federated_user(
        &self,
        user_id: &str,
        connection: &str,
        profile: &FederatedProfile,
        now: i64,
    ) -> StoreResult<User> {
        let LinkedProfile {
            email,
            email_verified,
            name,
            nickname,
            picture,
        } = profile_as_stored(profile, user_id);
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                "INSERT INTO users (tenant_id, user_id, connection, email, email_verified, \
                 password_hash, name, nickname, picture, blocked, created_at, updated_at, \
                 last_login, logins_count, user_metadata, app_metadata) \
                 VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8, FALSE, $9, $9, NULL, 0, '{}', '{}') \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET email = $4, email_verified = $5, \
                 name = $6, nickname = $7, picture = $8, updated_at = $9 RETURNING ",
                user_columns!()
            ))
            .bind(self.tenant)
            .bind(user_id)
            .bind(connection)
            .bind(&email)
            .bind(email_verified)
            .bind(&name)
            .bind(&nickname)
            .bind(&picture)
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(|e| StoreError::from(e).conflict_is("a user with this email"))?;
            user_from_row(&row)
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

    /// The user of the default database connection with this email.
    pub async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.find_user_by_email_in(DATABASE_CONNECTION, email).await
    }

    /// The user of `connection` with this email.
    pub async fn find_user_by_email_in(
        &self,
        connection: &str,
        email: &str,
    ) -> StoreResult<Option<User>> {
        Ok(self
            .find_user_with_password_in(connection, email)
            .await?
            .map(|(user, _)| user))
    }

    /// The user of the default database connection with this email, and their password
    /// hash.
    pub async fn find_user_with_password(
        &self,
        email: &str,
    ) -> StoreResult<Option<(User, Option<String>)>> {
        self.find_user_with_password_in(DATABASE_CONNECTION, email)
            .await
    }

    /// Every user with this email, one per connection at most (Auth0's users-by-email),
    /// through the `users_email` index: at most [`MAX_USERS_BY_EMAIL`] of them.
    pub async fn users_with_email(&self, email: &str) -> StoreResult<Vec<User>> {
        each!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE tenant_id = $1 AND email = $2 ORDER BY user_id LIMIT $3"
            ))
            .bind(self.tenant)
            .bind(tessera_core::normalize_email(email))
            .bind(MAX_USERS_BY_EMAIL)
            .fetch_all(pool)
            .await?;
            rows.iter().map(user_from_row).collect()
        })
    }

    /// The user of `connection` with this email, and their password hash.
    pub async fn find_user_with_password_in(
        &self,
        connection: &str,
        email: &str,
    ) -> StoreResult<Option<(User, Option<String>)>> {
        each!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                ", password_hash FROM users WHERE tenant_id = $1 AND connection = $2 AND email = $3"
            ))
            .bind(self.tenant)
            .bind(connection)
            .bind(tessera_core::normalize_email(email))
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?))),
                None => Ok(None),
            }
        })
    }

    /// Up to `limit` users after `after` (a `user_id`; `None`: from the first), in
    /// `user_id` order through the primary key: a whole-tenant read (an export) one
    /// bounded query at a time, never by offset.
    /// With `connection`, only its users: still the primary key's order, skipping the
    /// others (an export's background read, not a page someone waits for).
    pub async fn users_after(
        &self,
        connection: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        each!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE tenant_id = $1 AND user_id > $2 \
                 AND ($4 = '' OR connection = $4) ORDER BY user_id LIMIT $3"
            ))
            .bind(self.tenant)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .bind(connection.unwrap_or(""))
            .fetch_all(pool)
            .await?;
            rows.iter().map(user_from_row).collect()
        })
    }

    /// One page of users matching `search`, in its order (see [`UserSearch`]); every
    /// term and order is served by an index, so the page costs the same at any size.
    pub async fn list_users(&self, search: &UserSearch, slice: Slice) -> StoreResult<Page<User>> {
        self.page_of(
            USER_SELECT,
            &self.user_filter(search),
            &user_order(search.order()),
            slice,
            |row| user_from_row(row),
        )
        .await
    }

    /// ` FROM users WHERE …` for `search`'s terms.
    pub(super) fn user_filter(&self, search: &UserSearch) -> Sql {
        let mut sql = Sql::default();
        sql.push(
            " FROM users WHERE tenant_id = ?",
            [Bind::Text(self.tenant.into())],
        );
        for term in &search.terms {
            let column = user_column(term.field);
            let folded = |value: &str| match term.field {
                UserField::Email => value.to_lowercase(),
                UserField::Name => value.to_ascii_lowercase(),
                UserField::UserId | UserField::Connection => value.to_string(),
            };
            match &term.matches {
                Match::Exact(value) => {
                    sql.push(&format!(" AND {column} = ?"), [Bind::Text(folded(value))]);
                }
                Match::Prefix(prefix) => {
                    let prefix = folded(prefix);
                    match prefix_end(&prefix) {
                        Some(end) => sql.push(
                            &format!(" AND {column} >= ? AND {column} < ?"),
                            [Bind::Text(prefix), Bind::Text(end)],
                        ),
                        None => sql.push(&format!(" AND {column} >= ?"), [Bind::Text(prefix)]),
                    }
                }
            }
        }
        sql
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
                self.sign_out_everywhere(user_id, ACCOUNT_DEACTIVATED, now)
                    .await?;
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
            self.sign_out_everywhere(user_id, PASSWORD_CHANGED, now)
                .await
        })
    }

    /// Replaces a password hash by a stronger one of the same password (an imported
    /// hash after the first login): only if the stored hash is still `old`, so a password
    /// changed meanwhile stays. Sessions are untouched: the password did not change.
    /// Returns whether it was replaced.
    pub async fn upgrade_password_hash(
        &self,
        user_id: &str,
        old: &str,
        new: &str,
    ) -> StoreResult<bool> {
        each!(self, |pool| {
            let done = sqlx::query(
                "UPDATE users SET password_hash = $1 \
                 WHERE tenant_id = $2 AND user_id = $3 AND password_hash = $4",
            )
            .bind(new)
            .bind(self.tenant)
            .bind(user_id)
            .bind(old)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
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
            let row = sqlx::query(for_update!(
                pg,
                "SELECT ",
                user_columns!(),
                " FROM users WHERE tenant_id = $1 AND user_id = $2"
            ))
            .bind(self.tenant)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
            let mut user = user_from_row(&row)?;
            if let Some(email) = &change.email {
                user.email = Some(tessera_core::normalize_email(email));
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
            .map_err(|e| StoreError::from(e).conflict_is("a user with this email"))?;
            tx.commit().await?;
            Ok(user)
        })
    }

    /// Signs a user out everywhere (an administrator: `session-revoked`): login sessions
    /// end and refresh tokens are revoked.
    pub async fn end_user_sessions(&self, user_id: &str, now: i64) -> StoreResult<()> {
        self.sign_out_everywhere(user_id, SESSION_REVOKED, now)
            .await
    }

    /// Ends a user's sessions, `initiator` telling the applications why, and revokes their
    /// refresh tokens.
    async fn sign_out_everywhere(
        &self,
        user_id: &str,
        initiator: &str,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            end_sessions_of_user!(self, tx, user_id, initiator, now);
            tx.commit().await?;
            self.revoke_refresh_families_of_user(user_id, now).await?;
            Ok(())
        })
    }

    /// Deletes a user, their sessions queuing `account-deleted` notices first.
    pub async fn delete_user(&self, user_id: &str, now: i64) -> StoreResult<()> {
        each!(self, |pool| {
            let mut tx = pool.begin_write(None).await?;
            end_sessions_of_user!(self, tx, user_id, ACCOUNT_DELETED, now);
            let done = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND user_id = $2")
                .bind(self.tenant)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("user"));
            }
            tx.commit().await?;
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

    /// A password sign-in from the network `ip` succeeded: the account's failures counted
    /// from there are forgotten and the user's login is counted (as [`Self::record_login`]),
    /// in one transaction — one commit, one round trip, where a login writes several.
    pub async fn record_password_login(
        &self,
        email: &str,
        ip: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        each!(self, |pool, pg| {
            let query = sqlx::query(if pg {
                "WITH cleared AS (DELETE FROM login_failures \
                 WHERE tenant_id = $1 AND email = $2 AND ip = $3) \
                 UPDATE users SET last_login = $4, logins_count = logins_count + 1 \
                 WHERE tenant_id = $1 AND user_id = $5"
            } else {
                "DELETE FROM login_failures WHERE tenant_id = $1 AND email = $2 AND ip = $3; \
                 UPDATE users SET last_login = $4, logins_count = logins_count + 1 \
                 WHERE tenant_id = $1 AND user_id = $5"
            })
            .bind(self.tenant)
            .bind(tessera_core::normalize_email(email))
            .bind(ip)
            .bind(now)
            .bind(user_id);
            if pg {
                query.execute(pool).await?;
            } else {
                pool.write_together(query).await?;
            }
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

    /// The networks `email` is locked out from: its counts of at least `lockout` failures,
    /// by address, at most `limit` of them (a guesser spread over many networks could leave
    /// any number). The key's index (the primary key) finds them.
    pub async fn login_blocks(
        &self,
        email: &str,
        lockout: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        each!(self, |pool| {
            let rows = sqlx::query(
                "SELECT ip FROM login_failures WHERE tenant_id = $1 AND email = $2 \
                 AND failures >= $3 ORDER BY ip LIMIT $4",
            )
            .bind(self.tenant)
            .bind(tessera_core::normalize_email(email))
            .bind(lockout)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|row| Ok(row.try_get("ip")?)).collect()
        })
    }

    /// Clears the failures of an account: an administrator's unblock, a password reset
    /// (every network, `ip = None`), or one network's.
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
}
