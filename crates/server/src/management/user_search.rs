//! `GET /api/v2/users?q=…&sort=…`: the part of Auth0's user search (search engine v3,
//! Lucene query syntax) that Tessera answers from an index.
//!
//! - terms `field:value` on `email`, `name`, `user_id` and `identities.connection`,
//!   joined by `AND` (upper-case, as Lucene spells it);
//! - a value is a quoted phrase (`email:"jane@example.com"`, matched exactly; `\"` and
//!   `\\` inside), or a bare word, matched exactly, or a prefix when it ends in `*`
//!   (`name:jo*`, `user_id:auth0|*`); `\` escapes the next character of a bare word;
//! - `email` and `name` ignore case (Auth0's normalized fields; ASCII letters for `name`),
//!   `user_id` and `identities.connection` do not.
//!
//! Everything else Lucene allows — `OR`, `NOT`, grouping, ranges, fuzzy or infix
//! wildcards, bare words without a field, other fields — would need a scan of every user,
//! so it is refused with a 400 that names what Tessera supports.

use tessera_store::{Match, UserField, UserOrder, UserSearch, UserSort, UserTerm};

use super::error::{ApiError, ApiResult};

/// Longer queries are refused: the longest useful one is a few terms of an email's
/// length.
pub(crate) const MAX_QUERY_CHARS: usize = 1024;
/// At most this many terms in one query.
pub(crate) const MAX_TERMS: usize = 8;

const SUPPORTED: &str = "Tessera's user search supports field:value terms on email, name, \
     user_id and identities.connection, exact (quoted or not) or by prefix (value*), \
     joined by AND";

fn refused(why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_query_property(format!("{why}. {SUPPORTED}"), "q").about("q")
}

/// Reads `q` (and the v1 `connection` parameter, which searches
/// `identities.connection`) and `sort` into the store's search.
pub(crate) fn parse(
    q: Option<&str>,
    connection: Option<&str>,
    sort: Option<&str>,
) -> ApiResult<UserSearch> {
    let mut terms = match q {
        Some(q) => terms(q)?,
        None => Vec::new(),
    };
    if let Some(connection) = connection {
        terms.push(UserTerm {
            field: UserField::Connection,
            matches: Match::Exact(connection.to_string()),
        });
    }
    Ok(UserSearch {
        terms,
        sort: sort.map(parse_sort).transpose()?,
    })
}

fn terms(q: &str) -> ApiResult<Vec<UserTerm>> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(refused(format!(
            "The query is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let mut reader = Reader {
        rest: q.trim_start(),
    };
    let mut terms = Vec::new();
    loop {
        if terms.len() == MAX_TERMS {
            return Err(refused(format!("At most {MAX_TERMS} terms are allowed")));
        }
        terms.push(reader.term()?);
        reader.skip_spaces();
        if reader.rest.is_empty() {
            return Ok(terms);
        }
        let word = reader.word();
        if word != "AND" {
            let shown: String = word.chars().take(20).collect();
            return Err(refused(format!("Unsupported operator or term \"{shown}\"")));
        }
        reader.skip_spaces();
    }
}

struct Reader<'a> {
    rest: &'a str,
}

impl Reader<'_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    /// Up to the next space (an operator or a stray word).
    fn word(&mut self) -> &str {
        let end = self
            .rest
            .find(char::is_whitespace)
            .unwrap_or(self.rest.len());
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        word
    }

    fn term(&mut self) -> ApiResult<UserTerm> {
        let Some((name, rest)) = self.rest.split_once(':') else {
            return Err(refused("Every term needs a field (field:value)"));
        };
        let field = match name {
            "email" => UserField::Email,
            "name" => UserField::Name,
            "user_id" => UserField::UserId,
            "identities.connection" => UserField::Connection,
            _ => {
                let shown: String = name.chars().take(40).collect();
                return Err(refused(format!("Unsupported field \"{shown}\"")));
            }
        };
        self.rest = rest;
        let matches = if self.rest.starts_with('"') {
            Match::Exact(self.quoted()?)
        } else {
            self.bare()?
        };
        if field == UserField::Connection && matches!(matches, Match::Prefix(_)) {
            return Err(refused("identities.connection is matched exactly"));
        }
        Ok(UserTerm { field, matches })
    }

    /// `"…"`, with `\"` and `\\` inside.
    fn quoted(&mut self) -> ApiResult<String> {
        let mut value = String::new();
        let mut chars = self.rest.char_indices().skip(1);
        while let Some((index, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[index + 1..];
                    if !self.rest.is_empty() && !self.rest.starts_with(char::is_whitespace) {
                        return Err(refused("A quoted value must end its term"));
                    }
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err(refused("A quoted value is not closed"))
    }

    /// A bare word: exact, or a prefix when it ends in an unescaped `*`.
    fn bare(&mut self) -> ApiResult<Match> {
        let mut value = String::new();
        let mut prefix = false;
        let mut chars = self.rest.char_indices().peekable();
        let mut end = self.rest.len();
        if matches!(chars.peek(), Some((_, '+' | '-' | '!'))) {
            return Err(refused("Operators (+, -, !) are not supported"));
        }
        while let Some((index, c)) = chars.next() {
            if c.is_whitespace() {
                end = index;
                break;
            }
            if prefix {
                // Only the last character may be the wildcard.
                return Err(refused("Only a trailing * (a prefix) is supported"));
            }
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => return Err(refused("A value ends with a lone \\")),
                },
                '*' => prefix = true,
                '?' => return Err(refused("Only a trailing * (a prefix) is supported")),
                '"' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '~' | ':' | '/' => {
                    return Err(refused(format!(
                        "\"{c}\" must be escaped or the value quoted"
                    )));
                }
                c => value.push(c),
            }
        }
        self.rest = &self.rest[end..];
        if prefix {
            return Ok(Match::Prefix(value));
        }
        if value.is_empty() {
            return Err(refused("A term has no value"));
        }
        Ok(Match::Exact(value))
    }
}

/// `sort=field:1` (ascending) or `field:-1` (descending), on a column with an index.
fn parse_sort(sort: &str) -> ApiResult<UserSort> {
    let invalid = |why: &str| {
        ApiError::invalid_query_property(
            format!(
                "{why}: sort is field:1 or field:-1, field one of created_at, updated_at, \
                 last_login, email, name, user_id"
            ),
            "sort",
        )
        .about("sort")
    };
    let (field, direction) = sort
        .split_once(':')
        .ok_or_else(|| invalid("Expected field:order"))?;
    let by = match field {
        "created_at" => UserOrder::CreatedAt,
        "updated_at" => UserOrder::UpdatedAt,
        "last_login" => UserOrder::LastLogin,
        "email" => UserOrder::Email,
        "name" => UserOrder::Name,
        "user_id" => UserOrder::UserId,
        _ => return Err(invalid("Tessera cannot sort users by this field")),
    };
    let descending = match direction {
        "1" => false,
        "-1" => true,
        _ => return Err(invalid("The order must be 1 or -1")),
    };
    Ok(UserSort { by, descending })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(field: UserField, value: &str) -> UserTerm {
        UserTerm {
            field,
            matches: Match::Exact(value.into()),
        }
    }

    fn prefix(field: UserField, value: &str) -> UserTerm {
        UserTerm {
            field,
            matches: Match::Prefix(value.into()),
        }
    }

    fn terms_of(q: &str) -> Vec<UserTerm> {
        parse(Some(q), None, None).unwrap().terms
    }

    #[test]
    fn exact_and_prefix_terms_joined_by_and() {
        assert_eq!(
            terms_of(r#"email:"Jane@Example.com""#),
            [exact(UserField::Email, "Jane@Example.com")]
        );
        assert_eq!(
            terms_of("email:jane@example.com"),
            [exact(UserField::Email, "jane@example.com")]
        );
        assert_eq!(terms_of("name:jo*"), [prefix(UserField::Name, "jo")]);
        assert_eq!(
            terms_of(r#"  user_id:auth0|*   AND  name:"Jane Doe" AND identities.connection:"c" "#),
            [
                prefix(UserField::UserId, "auth0|"),
                exact(UserField::Name, "Jane Doe"),
                exact(UserField::Connection, "c"),
            ]
        );
        assert_eq!(
            terms_of(r#"name:"a \"b\" \\ *""#),
            [exact(UserField::Name, r#"a "b" \ *"#)]
        );
        assert_eq!(terms_of(r"name:a\*b\:c"), [exact(UserField::Name, "a*b:c")]);
        assert_eq!(terms_of(r"name:a\ b*"), [prefix(UserField::Name, "a b")]);
        assert_eq!(terms_of("email:*"), [prefix(UserField::Email, "")]);
    }

    #[test]
    fn what_would_need_a_scan_is_refused() {
        for q in [
            "jane",
            "email:a OR email:b",
            "email:a AND NOT name:b",
            "email:a and name:b",
            "email:a && name:b",
            "(email:a)",
            "email:(a b)",
            "name:*ane",
            "name:j*ne",
            "name:j?ne",
            "name:jane~",
            "created_at:[2020 TO *]",
            "logins_count:3",
            "app_metadata.plan:gold",
            "email:",
            "email:\"unclosed",
            "email:\"a\"b",
            "email:-a",
            "identities.connection:Username*",
            "email:a AND",
            "name:a\\",
        ] {
            let error = parse(Some(q), None, None).expect_err(q);
            assert_eq!(error.status, 400, "{q}");
            assert!(
                error.message.ends_with("on property q."),
                "{q}: {}",
                error.message
            );
        }
        let long = format!("email:{}", "a".repeat(MAX_QUERY_CHARS));
        assert!(parse(Some(&long), None, None).is_err());
        let many = ["name:a"; MAX_TERMS + 1].join(" AND ");
        assert!(parse(Some(&many), None, None).is_err());
        let enough = ["name:a"; MAX_TERMS].join(" AND ");
        assert_eq!(
            parse(Some(&enough), None, None).unwrap().terms.len(),
            MAX_TERMS
        );
    }

    #[test]
    fn sort_names_an_indexed_field_and_a_direction() {
        let sort = |s: &str| parse(None, None, Some(s)).map(|search| search.sort.unwrap());
        assert_eq!(
            sort("created_at:-1").unwrap(),
            UserSort {
                by: UserOrder::CreatedAt,
                descending: true
            }
        );
        assert_eq!(sort("email:1").unwrap().by, UserOrder::Email);
        for bad in ["logins_count:1", "email", "email:2", "email:asc", ":1"] {
            let error = sort(bad).expect_err(bad);
            assert!(error.message.ends_with("on property sort."), "{bad}");
        }
    }

    #[test]
    fn the_connection_parameter_searches_identities_connection() {
        let search = parse(Some("email:a*"), Some("db"), None).unwrap();
        assert_eq!(
            search.terms,
            [
                prefix(UserField::Email, "a"),
                exact(UserField::Connection, "db")
            ]
        );
    }
}
