//! What a list asks for and what it gets back. Every list is paged in SQL through an
//! index (migration 0008): a [`Slice`] is `LIMIT`/`OFFSET` over a stable order, a
//! [`Checkpoint`] is a keyset (`id >= from`), and the total is counted only when asked.

/// One page of a list by position: at most `limit` rows after skipping `offset`, and
/// the number of every matching row when `count` is set (a second, index-only query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub offset: u64,
    pub limit: u32,
    pub count: bool,
}

impl Slice {
    /// The first `limit` rows, without a total.
    pub fn first(limit: u32) -> Slice {
        Slice {
            offset: 0,
            limit,
            count: false,
        }
    }

    /// `OFFSET` as SQL binds it (both backends take a signed 64-bit integer).
    pub(crate) fn offset_sql(&self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }

    pub(crate) fn limit_sql(&self) -> i64 {
        i64::from(self.limit)
    }
}

/// A page of a list: the rows, and the total when the [`Slice`] asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// The same page with each row turned into something else (its wire shape).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
        }
    }
}

/// One page of a list by checkpoint (Auth0's `from` / `take`): at most `take` rows whose
/// id is `from` or after it, in id order. A `from` that names no row (deleted since)
/// still resumes at the right place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint<'a> {
    pub from: Option<&'a str>,
    pub take: u32,
}

/// A page by checkpoint, and the id to pass as `from` for the next one (`None`: the
/// list ends here).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointPage<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> CheckpointPage<T> {
    /// The same page with each row turned into something else (its wire shape).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> CheckpointPage<U> {
        CheckpointPage {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// A searchable column of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    /// Stored lower-case: the value is compared lower-cased.
    Email,
    /// Compared case-insensitively (ASCII letters), through the `lower(name)` index.
    Name,
    /// Case-sensitive, as Auth0 compares it.
    UserId,
    /// `identities.connection`; exact only.
    Connection,
}

/// How a search term matches its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Exact(String),
    Prefix(String),
}

/// One `field:value` of a user search; terms are joined by AND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTerm {
    pub field: UserField,
    pub matches: Match,
}

/// A column users can be sorted by (each has an index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOrder {
    CreatedAt,
    UpdatedAt,
    LastLogin,
    Email,
    Name,
    UserId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSort {
    pub by: UserOrder,
    pub descending: bool,
}

/// What `GET /api/v2/users` (and `tessera users list`) asks for. Without a sort, users
/// come oldest first (`created_at`), or — when searching — in the order of the first
/// term's column (by `user_id` when that term is exact), so the index that finds them
/// also orders them. Ties are broken by `user_id` in the same direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSearch {
    pub terms: Vec<UserTerm>,
    pub sort: Option<UserSort>,
}

impl UserSearch {
    /// The order the page is read in.
    pub fn order(&self) -> UserSort {
        self.sort.unwrap_or_else(|| {
            let by = match self.terms.first() {
                Some(UserTerm {
                    field: UserField::Connection,
                    ..
                })
                | None => UserOrder::CreatedAt,
                Some(UserTerm {
                    matches: Match::Exact(_),
                    ..
                }) => UserOrder::UserId,
                Some(UserTerm { field, .. }) => match field {
                    UserField::Email => UserOrder::Email,
                    UserField::Name => UserOrder::Name,
                    UserField::UserId | UserField::Connection => UserOrder::UserId,
                },
            };
            UserSort {
                by,
                descending: false,
            }
        })
    }
}

/// Filters of `GET /api/v2/clients`, each applied in SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFilter {
    /// Any of these types (`app_type=spa,native`).
    pub app_types: Option<Vec<String>>,
    pub is_first_party: Option<bool>,
    /// Any of these ids (`client_ids=a,b`).
    pub client_ids: Option<Vec<String>>,
}

/// Filters of `GET /api/v2/client-grants`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientGrantFilter<'a> {
    pub client_id: Option<&'a str>,
    pub audience: Option<&'a str>,
}

/// Filters of `GET /api/v2/grants` (users' consents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentFilter<'a> {
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub audience: Option<&'a str>,
}

/// The smallest string greater than every string that starts with `prefix`, in byte
/// (= code point) order, which both backends use for these columns: a prefix search is
/// then the index range `prefix <= column < end`. `None` when no such string exists
/// (the prefix is all U+10FFFF): every string at or after the prefix starts with it.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// SQL text assembled from fixed pieces, with its values bound in order: lists build
/// their `WHERE` from the filters given. Values are always bound, never written into
/// the text.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) binds: Vec<Bind>,
}

#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Bool(bool),
}

impl Sql {
    pub(crate) fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            binds: Vec::new(),
        }
    }

    /// Appends `piece`, whose `?` stand for `values` in order (numbered `$N` here).
    pub(crate) fn push(&mut self, piece: &str, values: impl IntoIterator<Item = Bind>) {
        let mut values = values.into_iter();
        for (index, part) in piece.split('?').enumerate() {
            if index > 0 {
                let value = values.next().expect("a value for every placeholder");
                self.binds.push(value);
                self.text.push_str(&format!("${}", self.binds.len()));
            }
            self.text.push_str(part);
        }
        assert!(values.next().is_none(), "a placeholder for every value");
    }

    /// `column IN (?, ?, …)`, or a condition that is never true for an empty list.
    pub(crate) fn push_in(&mut self, column: &str, values: &[String]) {
        if values.is_empty() {
            self.text.push_str(" AND 1 = 0");
            return;
        }
        let marks = vec!["?"; values.len()].join(", ");
        self.push(
            &format!(" AND {column} IN ({marks})"),
            values.iter().cloned().map(Bind::Text),
        );
    }
}

/// A query of either backend from an [`Sql`]: its text (assembled from fixed pieces
/// only, hence safe to assert) with its values bound.
macro_rules! bound_query {
    ($sql:expr) => {{
        let sql: &$crate::lists::Sql = $sql;
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.text.clone()));
        for bind in &sql.binds {
            query = match bind {
                $crate::lists::Bind::Text(text) => query.bind(text.clone()),
                $crate::lists::Bind::OptText(text) => query.bind(text.clone()),
                $crate::lists::Bind::Int(number) => query.bind(*number),
                $crate::lists::Bind::Bool(flag) => query.bind(*flag),
            };
        }
        query
    }};
}
pub(crate) use bound_query;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_prefix_range_is_the_next_string_of_that_length() {
        assert_eq!(prefix_end("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_end("az").as_deref(), Some("a{"));
        assert_eq!(prefix_end("").as_deref(), None);
        // Surrogates are skipped; the last code point carries into the previous one.
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        for prefix in ["jo", "a@b", "é", "名前"] {
            let end = prefix_end(prefix).unwrap();
            let inside = format!("{prefix}\u{10FFFF}\u{10FFFF}");
            assert!(prefix.as_bytes() <= inside.as_bytes());
            assert!(inside.as_bytes() < end.as_bytes(), "{prefix}");
        }
    }

    #[test]
    fn placeholders_are_numbered_in_the_order_values_are_bound() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE tenant_id = $1");
        sql.binds.push(Bind::Text("default".into()));
        sql.push(" AND a >= ? AND a < ?", [Bind::Int(1), Bind::Int(2)]);
        sql.push_in("b", &["x".into(), "y".into()]);
        assert_eq!(
            sql.text,
            "SELECT 1 FROM t WHERE tenant_id = $1 AND a >= $2 AND a < $3 AND b IN ($4, $5)"
        );
        assert_eq!(sql.binds.len(), 5);
    }
}
