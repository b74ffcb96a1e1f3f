//! Checks of what people type, each returning a message that says what is wrong and what
//! is expected. Nothing is written before every check passed.

use tessera_core::validate as rules;
pub use tessera_core::validate::{MAX_SCOPE_DESCRIPTION, MAX_TOKEN_LIFETIME, UrlKind};
use tessera_core::{AppType, Scope, TokenDialect};
use tessera_jose::Algorithm;
use tessera_server::wire;

use crate::error::{CliError, CliResult};

/// Splits comma-separated flag values into items: trimmed, empty ones dropped (so `""`
/// means an empty list), duplicates removed, order kept.
pub fn items(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in values.iter().flat_map(|v| v.split(',')) {
        let value = value.trim();
        if !value.is_empty() && !out.iter().any(|o| o == value) {
            out.push(value.to_string());
        }
    }
    out
}

pub fn name(name: &str, what: &str) -> CliResult<String> {
    rules::name(name, what).map_err(CliError::invalid)
}

/// An API's name: see `tessera_core::validate::api_name`.
pub fn api_name(name: &str) -> CliResult<String> {
    rules::api_name(name).map_err(CliError::invalid)
}

/// A user's name: see `tessera_core::validate::person_name`.
pub fn person_name(name: &str, what: &str) -> CliResult<String> {
    rules::person_name(name, what).map_err(CliError::invalid)
}

/// An email address, normalized: see `tessera_core::validate::email`.
pub fn email(address: &str) -> CliResult<String> {
    rules::email(address).map_err(CliError::invalid)
}

/// An API identifier (the `aud` of its tokens): see `tessera_core::validate::api_identifier`.
pub fn api_identifier(identifier: &str) -> CliResult<String> {
    rules::api_identifier(identifier).map_err(CliError::invalid)
}

/// A scope token as RFC 6749 §3.3 defines it: printable ASCII without space, `"` or `\`.
pub fn scope_value(value: &str) -> CliResult<()> {
    rules::scope_value(value).map_err(CliError::invalid)
}

/// Scopes an API defines, from `--scopes a,b`.
pub fn api_scopes(values: &[String]) -> CliResult<Vec<Scope>> {
    let values = items(values);
    for value in &values {
        scope_value(value)?;
    }
    Ok(values
        .into_iter()
        .map(|value| Scope {
            value,
            description: String::new(),
        })
        .collect())
}

/// A scope's description, trimmed: at most `MAX_SCOPE_DESCRIPTION` characters on one line.
pub fn scope_description(value: &str, text: &str) -> CliResult<String> {
    rules::scope_description(value, text).map_err(CliError::invalid)
}

/// Applies `--scope-description SCOPE=TEXT` items to `scopes`; each must name one of them.
/// SCOPE ends at the first `=` after which the rest is a description of a defined scope, so
/// scopes containing `=` can be described too.
pub fn describe_scopes(scopes: &mut [Scope], descriptions: &[String]) -> CliResult<()> {
    for item in descriptions {
        let Some((first, _)) = item.split_once('=') else {
            // Echo only the start: the value may be a pasted paragraph.
            let shown: String = item.chars().take(60).collect();
            let more = if shown.len() < item.len() { "…" } else { "" };
            return Err(CliError::invalid(format!(
                "invalid --scope-description {shown:?}{more}: write SCOPE=DESCRIPTION, e.g. 'read:messages=Read your messages'"
            )));
        };
        let found = item.match_indices('=').find_map(|(at, _)| {
            let value = &item[..at];
            let index = scopes.iter().position(|scope| scope.value == value)?;
            Some((index, &item[at + 1..]))
        });
        let Some((index, text)) = found else {
            return Err(CliError::invalid(format!(
                "--scope-description names {first:?}, which is not one of the API's scopes"
            )));
        };
        scopes[index].description = scope_description(&scopes[index].value, text)?;
    }
    Ok(())
}

/// Scopes with descriptions from `--scopes-file`: Auth0's JSON shape, either the list
/// `[{"value": "read:messages", "description": "Read your messages"}, …]` (`wire::Scope`)
/// or an object with such a `scopes` member (an API as the Management API or `--json`
/// prints it).
pub fn scopes_json(text: &str, source: &str) -> CliResult<Vec<Scope>> {
    let mut parsed: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| CliError::invalid(format!("{source} is not valid JSON: {error}")))?;
    let list = match parsed.get_mut("scopes") {
        Some(scopes) => scopes.take(),
        None => parsed,
    };
    let items: Vec<wire::Scope> = match list {
        serde_json::Value::Array(_) => serde_json::from_value(list).map_err(|error| {
            CliError::invalid(format!(
                "{source}: each scope is {{\"value\": \"read:messages\", \"description\": \"Read your messages\"}}: {error}"
            ))
        })?,
        _ => {
            return Err(CliError::invalid(format!(
                "{source} does not hold scopes: expected a list [{{\"value\": …, \"description\": …}}, …] or an object with such a \"scopes\" list"
            )));
        }
    };
    let mut scopes: Vec<Scope> = Vec::with_capacity(items.len());
    for item in items {
        scope_value(&item.value)?;
        if scopes.iter().any(|scope| scope.value == item.value) {
            return Err(CliError::invalid(format!(
                "{source} lists the scope {:?} twice",
                item.value
            )));
        }
        let description = scope_description(&item.value, &item.description)?;
        scopes.push(Scope {
            value: item.value,
            description,
        });
    }
    Ok(scopes)
}

pub fn token_lifetime(seconds: i64) -> CliResult<i64> {
    rules::token_lifetime(seconds).map_err(CliError::invalid)
}

pub fn signing_alg(alg: &str) -> CliResult<Algorithm> {
    Algorithm::parse(alg).map_err(|_| {
        CliError::invalid(format!(
            "unsupported signing algorithm {alg:?}: use RS256, ES256 or EdDSA"
        ))
    })
}

pub fn token_dialect(dialect: &str) -> CliResult<TokenDialect> {
    rules::token_dialect(dialect).map_err(CliError::invalid)
}

pub fn app_type(text: &str) -> CliResult<AppType> {
    rules::app_type(text).map_err(CliError::invalid)
}

/// Grant types for an application of type `app_type`.
pub fn grant_types(values: &[String], app_type: AppType) -> CliResult<Vec<String>> {
    let grants = items(values);
    rules::grant_types(&grants, app_type).map_err(CliError::invalid)?;
    Ok(grants)
}

/// Validates URLs and returns them exactly as given (redirect URIs are compared as
/// strings, so we never rewrite them).
pub fn urls(values: &[String], kind: UrlKind, app_type: AppType) -> CliResult<Vec<String>> {
    let list = items(values);
    rules::urls(&list, kind, app_type).map_err(CliError::invalid)?;
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn items_split_trim_and_dedupe() {
        assert_eq!(items(&list(&["a, b", "a", ""])), list(&["a", "b"]));
        assert!(items(&list(&[""])).is_empty());
    }

    #[test]
    fn flags_are_split_before_the_shared_rules() {
        assert!(api_scopes(&list(&["read:messages,write:messages"])).is_ok());
        assert!(api_scopes(&list(&["read messages"])).is_err());
        assert_eq!(
            grant_types(
                &list(&["client_credentials, refresh_token"]),
                AppType::RegularWeb
            )
            .unwrap(),
            list(&["client_credentials", "refresh_token"])
        );
        assert!(grant_types(&list(&["client_credentials"]), AppType::Spa).is_err());
        assert!(
            urls(
                &list(&["http://localhost:3000/app"]),
                UrlKind::WebOrigin,
                AppType::Spa
            )
            .is_err()
        );
    }
}
