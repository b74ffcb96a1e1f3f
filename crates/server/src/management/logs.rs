//! The audit log, as Auth0 serves it: `GET /logs` by checkpoint (`from` = the last
//! `log_id` read, `take` ≤ 100, oldest first, a `Link: <…>; rel="next"` to follow — what
//! Auth0's log exporters do) or by search (`q`, `page`, `per_page`, `sort=date:-1|1`,
//! `include_totals`, the first 1000 results), `GET /logs/{id}` and
//! `GET /users/{id}/logs`. Scopes `read:logs` (and `read:logs_users` for a user's).
//!
//! `q` takes the part of Auth0's Lucene syntax an index answers: terms `type:X`,
//! `user_id:"…"`, `client_id:"…"` and `date:[A TO B]` (A and B dates — `2026-12-05` or
//! `2026-12-05T10:00:00Z` — or `*`; a date alone in B means to that day's end), joined by
//! `AND`. Anything else is a 400 that says what is supported.
//!
//! Reading first waits for this node's queued events to be written (`crate::audit`): an
//! operator sees what they just did.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tessera_store::{LogEntry, LogSearch, Page, Slice, log_id_number};

use super::auth::Principal;
use super::error::{ApiError, ApiResult};
use crate::AppState;

pub(crate) const READ: &[&str] = &["read:logs"];
pub(crate) const READ_USERS: &[&str] = &["read:logs", "read:logs_users"];

/// At most this many characters of `q`, and of terms in it.
const MAX_QUERY_CHARS: usize = 1024;
const MAX_TERMS: usize = 8;

const SUPPORTED: &str = "Tessera's log search supports the terms type:X, user_id:\"…\", \
     client_id:\"…\" and date:[A TO B] (dates as 2026-12-05 or 2026-12-05T10:00:00Z, or *), \
     joined by AND";

fn refused(why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_query_property(format!("{why}. {SUPPORTED}"), "q").about("q")
}

/// Events after `from` (a `log_id`), oldest first.
pub(crate) async fn after(
    state: &AppState,
    principal: &Principal,
    from: Option<&str>,
    take: u32,
) -> ApiResult<Vec<LogEntry>> {
    principal.require(READ)?;
    let after = match from {
        None => None,
        Some(text) => Some(log_id_number(text).ok_or_else(|| {
            ApiError::invalid_query_property("Expected a log_id", "from").about("from")
        })?),
    };
    state.audit().flush().await;
    Ok(state.store().logs_after(after, take, None).await?)
}

/// One page of a search.
pub(crate) async fn search(
    state: &AppState,
    principal: &Principal,
    search: &LogSearch,
    slice: Slice,
) -> ApiResult<Page<LogEntry>> {
    let needed = if search.user_id.is_some() {
        READ_USERS
    } else {
        READ
    };
    principal.require(needed)?;
    state.audit().flush().await;
    Ok(state.store().search_logs(search, slice).await?)
}

pub(crate) async fn get(state: &AppState, principal: &Principal, id: &str) -> ApiResult<LogEntry> {
    principal.require(READ)?;
    state.audit().flush().await;
    state
        .store()
        .find_log(id)
        .await?
        .ok_or_else(|| ApiError::not_found("The log event does not exist.", "inexistent_log"))
}

/// `q` and `sort` into the store's search.
pub(crate) fn parse(q: Option<&str>, sort: Option<&str>) -> ApiResult<LogSearch> {
    let mut search = LogSearch::default();
    if let Some(sort) = sort {
        search.oldest_first = match sort {
            "date:1" => true,
            "date:-1" => false,
            _ => {
                return Err(ApiError::invalid_query_property(
                    "Logs sort by date only: date:1 or date:-1",
                    "sort",
                )
                .about("sort"));
            }
        };
    }
    let Some(q) = q else {
        return Ok(search);
    };
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(refused(format!(
            "The query is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let mut rest = q.trim();
    let mut seen: Vec<&str> = Vec::new();
    for index in 0.. {
        if index == MAX_TERMS {
            return Err(refused(format!("At most {MAX_TERMS} terms are allowed")));
        }
        let (field, after) = term(rest, &mut search)?;
        if seen.contains(&field) {
            return Err(refused(format!("{field} is given twice")));
        }
        seen.push(field);
        rest = after.trim_start();
        if rest.is_empty() {
            break;
        }
        rest = rest
            .strip_prefix("AND")
            .filter(|after| after.starts_with(char::is_whitespace))
            .ok_or_else(|| {
                let shown: String = rest.chars().take(20).collect();
                refused(format!("Unsupported operator or term \"{shown}\""))
            })?
            .trim_start();
    }
    Ok(search)
}

/// Reads one term at the start of `text` into `search`; returns its field and what
/// follows it.
fn term<'a>(text: &'a str, search: &mut LogSearch) -> ApiResult<(&'a str, &'a str)> {
    let Some((field, rest)) = text.split_once(':') else {
        return Err(refused("Every term needs a field (field:value)"));
    };
    if field == "date" {
        let (from, to, rest) = date_range(rest)?;
        search.from_date = from;
        search.to_date = to;
        return Ok((field, rest));
    }
    let (value, rest) = value(rest)?;
    let slot = match field {
        "type" => &mut search.log_type,
        "user_id" => &mut search.user_id,
        "client_id" => &mut search.client_id,
        _ => {
            let shown: String = field.chars().take(40).collect();
            return Err(refused(format!("Unsupported field \"{shown}\"")));
        }
    };
    *slot = Some(value);
    Ok((field, rest))
}

/// A quoted value (`\"` and `\\` inside) or a bare word, matched exactly.
fn value(text: &str) -> ApiResult<(String, &str)> {
    if let Some(inner) = text.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = inner.char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                '"' => {
                    let rest = &inner[index + 1..];
                    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                        return Err(refused("A quoted value must end its term"));
                    }
                    return Ok((value, rest));
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        return Err(refused("A quoted value is not closed"));
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let (word, rest) = text.split_at(end);
    if word.is_empty() {
        return Err(refused("A term has no value"));
    }
    if let Some(c) = word.chars().find(|c| {
        matches!(
            c,
            '*' | '?' | '"' | '(' | ')' | '[' | ']' | '{' | '}' | '\\' | ':'
        )
    }) {
        return Err(refused(format!(
            "\"{c}\" is not supported in a bare value; quote it"
        )));
    }
    Ok((word.to_string(), rest))
}

/// `[A TO B]`: milliseconds, both inclusive, `*` leaving an end open.
fn date_range(text: &str) -> ApiResult<(Option<i64>, Option<i64>, &str)> {
    let inner = text
        .strip_prefix('[')
        .ok_or_else(|| refused("date takes a range: date:[A TO B]"))?;
    let (inside, rest) = inner
        .split_once(']')
        .ok_or_else(|| refused("A date range is not closed"))?;
    let mut ends = inside.split(" TO ");
    let (Some(from), Some(to), None) = (ends.next(), ends.next(), ends.next()) else {
        return Err(refused("date takes a range: date:[A TO B]"));
    };
    let from = match from.trim() {
        "*" => None,
        text => Some(date_millis(text, false)?),
    };
    let to = match to.trim() {
        "*" => None,
        text => Some(date_millis(text, true)?),
    };
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return Err(refused("A date range must end its term"));
    }
    Ok((from, to, rest))
}

/// `YYYY-MM-DD` (its first or, with `end_of_day`, last millisecond) or
/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`, as milliseconds since the epoch.
fn date_millis(text: &str, end_of_day: bool) -> ApiResult<i64> {
    let bad = || {
        refused(format!(
            "\"{}\" is not a date",
            text.chars().take(40).collect::<String>()
        ))
    };
    let number = |part: &str| -> ApiResult<i64> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let (day, time) = match text.split_once('T') {
        Some((day, time)) => (day, Some(time)),
        None => (text, None),
    };
    let mut parts = day.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (year, month, day) = (number(y)?, number(m)?, number(d)?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return Err(bad());
    }
    let midnight = days_from_civil(year, month, day) * 86_400_000;
    let Some(time) = time else {
        return Ok(if end_of_day {
            midnight + 86_399_999
        } else {
            midnight
        });
    };
    let time = time.strip_suffix('Z').ok_or_else(bad)?;
    let (clock, millis) = match time.split_once('.') {
        Some((clock, fraction)) if fraction.len() == 3 => (clock, number(fraction)?),
        Some(_) => return Err(bad()),
        None => (time, 0),
    };
    let mut parts = clock.split(':');
    let (Some(h), Some(mi), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if h.len() != 2 || mi.len() != 2 || s.len() != 2 {
        return Err(bad());
    }
    let (hours, minutes, seconds) = (number(h)?, number(mi)?, number(s)?);
    if hours > 23 || minutes > 59 || seconds > 59 {
        return Err(bad());
    }
    Ok(midnight + ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `Link` header of a checkpoint page: where the next one starts.
fn next_link(state: &AppState, path: &str, from: Option<&str>, take: u32) -> Option<HeaderValue> {
    let from = from?;
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("from", from)
        .append_pair("take", &take.to_string())
        .finish();
    let base = state.issuer().trim_end_matches('/');
    HeaderValue::from_str(&format!("<{base}{path}?{query}>; rel=\"next\"")).ok()
}

pub(crate) mod http {
    use axum::Json;
    use axum::extract::{Path, RawQuery, State};

    use super::super::auth::require;
    use super::super::paging::Query;
    use super::super::wire;
    use super::*;

    const LIST_PARAMETERS: &[&str] = &[
        "from",
        "take",
        "q",
        "page",
        "per_page",
        "sort",
        "include_totals",
        "fields",
        "include_fields",
    ];

    pub(crate) async fn list(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(query.as_deref(), LIST_PARAMETERS)?;
        let fields = query.field_filter()?;
        if query.by_checkpoint() {
            if let Some(other) = ["q", "page", "per_page", "sort"]
                .into_iter()
                .find(|name| query.get(name).is_some())
            {
                return Err(ApiError::invalid_query_property(
                    "from and take page by checkpoint; they cannot be combined with q, \
                     page, per_page or sort",
                    other,
                ));
            }
            let checkpoint = query.checkpoint()?;
            let events = after(&state, &principal, checkpoint.from, checkpoint.take).await?;
            let last = events.last().map(|e| e.log_id.as_str()).or(checkpoint.from);
            let link = next_link(&state, "/api/v2/logs", last, checkpoint.take);
            let shown: Vec<_> = events
                .iter()
                .map(|e| fields.apply(wire::log_event(e)))
                .collect();
            let mut response = Json(shown).into_response();
            if let Some(link) = link {
                response.headers_mut().insert(header::LINK, link);
            }
            return Ok(response);
        }
        let found = parse(query.get("q"), query.get("sort"))?;
        let paging = query.paging()?;
        let page = search(&state, &principal, &found, paging.capped_slice()?).await?;
        Ok(paging.respond(page.map(|e| fields.apply(wire::log_event(&e))), "logs"))
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let entry = super::get(&state, &principal, &id).await?;
        Ok(Json(wire::log_event(&entry)).into_response())
    }

    pub(crate) async fn of_user(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ_USERS).await?;
        let query = Query::parse(
            query.as_deref(),
            &["page", "per_page", "sort", "include_totals"],
        )?;
        let mut found = parse(None, query.get("sort"))?;
        found.user_id = Some(id);
        let paging = query.paging()?;
        let page = search(&state, &principal, &found, paging.capped_slice()?).await?;
        Ok(paging.respond(page.map(|e| wire::log_event(&e)), "logs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_of_supported_terms_becomes_the_search() {
        let search = parse(
            Some(
                r#"type:fp AND user_id:"auth0|a\"b" AND client_id:abc AND date:[2026-12-05 TO *]"#,
            ),
            Some("date:1"),
        )
        .unwrap();
        assert_eq!(search.log_type.as_deref(), Some("fp"));
        assert_eq!(search.user_id.as_deref(), Some("auth0|a\"b"));
        assert_eq!(search.client_id.as_deref(), Some("abc"));
        assert_eq!(
            search.from_date,
            Some(date_millis("2026-12-05", false).unwrap())
        );
        assert_eq!(search.to_date, None);
        assert!(search.oldest_first);
        let day = parse(Some("date:[2026-12-05 TO 2026-12-05]"), None).unwrap();
        assert_eq!(
            day.to_date.unwrap() - day.from_date.unwrap(),
            86_399_999,
            "a day alone at the end means through that day"
        );
    }

    #[test]
    fn dates_are_read_as_utc_milliseconds() {
        assert_eq!(date_millis("1970-01-01", false).unwrap(), 0);
        assert_eq!(
            date_millis("1970-01-02T00:00:01.500Z", false).unwrap(),
            86_401_500
        );
        assert_eq!(date_millis("2000-02-29", false).unwrap(), 951_782_400_000);
        assert_eq!(
            crate::management::wire::iso_millis(
                date_millis("2026-12-05T21:52:04.123Z", false).unwrap()
            ),
            "2026-12-05T21:52:04.123Z"
        );
        for bad in [
            "2026-13-01",
            "2026-02-29",
            "26-01-01",
            "2026-01-01T25:00:00Z",
            "2026-01-01T10:00:00",
            "x",
        ] {
            assert!(date_millis(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn everything_else_is_refused_with_what_is_supported() {
        for q in [
            "fp",
            "type:fp OR type:s",
            "type:f*",
            "type:fp type:s",
            "type:fp AND type:s",
            "ip:127.0.0.1",
            "user_id:\"open",
            "date:2026-01-01",
            "date:[2026-01-01 TO]",
            "date:[* TO *] AND date:[* TO *]",
            "date:[a TO b]",
            "NOT type:fp",
            "type:",
        ] {
            let error = parse(Some(q), None).unwrap_err();
            assert_eq!(error.status, axum::http::StatusCode::BAD_REQUEST, "{q}");
            assert!(
                error.message.contains("Tessera's log search supports"),
                "{q}: {}",
                error.message
            );
        }
        assert!(parse(None, Some("type:1")).is_err());
    }
}
