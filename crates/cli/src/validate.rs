//! Checks of what people type, each returning a message that says what is wrong and what
//! is expected. Nothing is written before every check passed.

use tessera_core::{AppType, GRANT_TYPES, Scope, TokenDialect};
use tessera_jose::Algorithm;
use url::Url;

use crate::error::{CliError, CliResult};

/// Auth0's maximum access-token lifetime for an API: 30 days.
pub const MAX_TOKEN_LIFETIME: i64 = 2_592_000;

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
    let name = name.trim();
    if name.is_empty() {
        return Err(CliError::invalid(format!(
            "the {what} name must not be empty"
        )));
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(CliError::invalid(format!(
            "the {what} name must be at most 200 printable characters"
        )));
    }
    Ok(name.to_string())
}

/// An API identifier (the `aud` of its tokens). Auth0 recommends a URL but accepts any
/// string; we require a non-empty string without whitespace, and a valid URL when it
/// looks like one.
pub fn api_identifier(identifier: &str) -> CliResult<String> {
    let bad =
        |why: &str| CliError::invalid(format!("invalid API identifier {identifier:?}: {why}"));
    if identifier.is_empty() {
        return Err(bad(
            "it must not be empty (use a URI such as https://api.example.com)",
        ));
    }
    if identifier
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("it must not contain spaces"));
    }
    if identifier.len() > 600 {
        return Err(bad("it is longer than 600 characters"));
    }
    if identifier.contains("://") && Url::parse(identifier).is_err() {
        return Err(bad("it is not a valid URI"));
    }
    Ok(identifier.to_string())
}

/// A scope token as RFC 6749 §3.3 defines it: printable ASCII without space, `"` or `\`.
pub fn scope_value(value: &str) -> CliResult<()> {
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if !valid {
        return Err(CliError::invalid(format!(
            "invalid scope {value:?}: scopes are printable ASCII without spaces, quotes or backslashes"
        )));
    }
    Ok(())
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

/// The longest scope description accepted (Auth0 allows 500 characters).
pub const MAX_SCOPE_DESCRIPTION: usize = 500;

/// A scope's description, trimmed: at most [`MAX_SCOPE_DESCRIPTION`] characters on one line.
pub fn scope_description(value: &str, text: &str) -> CliResult<String> {
    let text = text.trim();
    if text.chars().count() > MAX_SCOPE_DESCRIPTION {
        return Err(CliError::invalid(format!(
            "the description of {value:?} is too long: at most {MAX_SCOPE_DESCRIPTION} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(CliError::invalid(format!(
            "the description of {value:?} contains control characters (line breaks, tabs…)"
        )));
    }
    Ok(text.to_string())
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

/// One scope in Auth0's shape, as `--scopes-file` holds it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeJson {
    value: String,
    #[serde(default)]
    description: Option<String>,
}

/// Scopes with descriptions from `--scopes-file`: Auth0's JSON shape, either the list
/// `[{"value": "read:messages", "description": "Read your messages"}, …]` or an object
/// with such a `scopes` member (an API as the Management API or `--json` prints it).
pub fn scopes_json(text: &str, source: &str) -> CliResult<Vec<Scope>> {
    let mut parsed: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| CliError::invalid(format!("{source} is not valid JSON: {error}")))?;
    let list = match parsed.get_mut("scopes") {
        Some(scopes) => scopes.take(),
        None => parsed,
    };
    let items: Vec<ScopeJson> = match list {
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
        let description =
            scope_description(&item.value, item.description.as_deref().unwrap_or(""))?;
        scopes.push(Scope {
            value: item.value,
            description,
        });
    }
    Ok(scopes)
}

pub fn token_lifetime(seconds: i64) -> CliResult<i64> {
    if !(1..=MAX_TOKEN_LIFETIME).contains(&seconds) {
        return Err(CliError::invalid(format!(
            "invalid token lifetime {seconds}: it must be between 1 and {MAX_TOKEN_LIFETIME} seconds (30 days)"
        )));
    }
    Ok(seconds)
}

pub fn signing_alg(alg: &str) -> CliResult<Algorithm> {
    Algorithm::parse(alg).map_err(|_| {
        CliError::invalid(format!(
            "unsupported signing algorithm {alg:?}: use RS256, ES256 or EdDSA"
        ))
    })
}

pub fn token_dialect(dialect: &str) -> CliResult<TokenDialect> {
    TokenDialect::parse(dialect).ok_or_else(|| {
        CliError::invalid(format!(
            "unknown token dialect {dialect:?}: use access_token, access_token_authz, rfc9068_profile or rfc9068_profile_authz"
        ))
    })
}

pub fn app_type(text: &str) -> CliResult<AppType> {
    AppType::parse(text).ok_or_else(|| {
        CliError::invalid(format!(
            "unknown application type {text:?}: use spa, regular, native or m2m"
        ))
    })
}

/// Grant types for an application of type `app_type`.
pub fn grant_types(values: &[String], app_type: AppType) -> CliResult<Vec<String>> {
    let grants = items(values);
    for grant in &grants {
        if !GRANT_TYPES.contains(&grant.as_str()) {
            return Err(CliError::invalid(format!(
                "unknown grant type {grant:?}: use {}",
                GRANT_TYPES.join(", ")
            )));
        }
        if grant == "client_credentials" && app_type.is_public() {
            return Err(CliError::invalid(format!(
                "a {} application cannot use client_credentials: it is a public client without a secret",
                app_type.as_str()
            )));
        }
    }
    Ok(grants)
}

/// Which list a URL is for; each has its own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    Callback,
    WebOrigin,
    LogoutUrl,
}

impl UrlKind {
    fn label(self) -> &'static str {
        match self {
            UrlKind::Callback => "callback URL",
            UrlKind::WebOrigin => "web origin",
            UrlKind::LogoutUrl => "logout URL",
        }
    }
}

/// Validates URLs and returns them exactly as given (redirect URIs are compared as
/// strings, so we never rewrite them). Callbacks of native apps may use a private-use
/// scheme (`com.example.app:/callback`, RFC 8252 §7.1); everything else is http(s).
pub fn urls(values: &[String], kind: UrlKind, app_type: AppType) -> CliResult<Vec<String>> {
    let list = items(values);
    for text in &list {
        url(text, kind, app_type)?;
    }
    Ok(list)
}

fn url(text: &str, kind: UrlKind, app_type: AppType) -> CliResult<()> {
    let bad = |why: &str| CliError::invalid(format!("invalid {} {text:?}: {why}", kind.label()));
    let parsed = Url::parse(text)
        .map_err(|_| bad("it must be an absolute URL such as https://app.example.com/callback"))?;
    let custom_scheme_ok = kind == UrlKind::Callback && app_type == AppType::Native;
    let web = matches!(parsed.scheme(), "http" | "https");
    if !web && !custom_scheme_ok {
        return Err(bad(
            "it must be an absolute http(s) URL such as https://app.example.com/callback",
        ));
    }
    if web && parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it must not contain spaces"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("it must not contain credentials"));
    }
    if text.contains('*') {
        return Err(bad("wildcards are not supported: list each URL"));
    }
    match kind {
        UrlKind::Callback if parsed.fragment().is_some() => {
            Err(bad("a callback URL must not have a #fragment"))
        }
        UrlKind::WebOrigin
            if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() =>
        {
            Err(bad(
                "a web origin is scheme://host[:port] without a path, query or fragment",
            ))
        }
        _ => Ok(()),
    }
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
    fn url_rules() {
        let spa = AppType::Spa;
        assert!(
            urls(
                &list(&["http://localhost:3000", "https://app.example/cb?x=1"]),
                UrlKind::Callback,
                spa
            )
            .is_ok()
        );
        for bad in [
            "localhost:3000",
            "/callback",
            "ftp://x.example/",
            "https://app.example/cb#frag",
            "https://*.example.com/cb",
            "https://u:p@x.example/",
        ] {
            assert!(
                urls(&list(&[bad]), UrlKind::Callback, spa).is_err(),
                "{bad}"
            );
        }
        assert!(
            urls(
                &list(&["com.example.app:/callback"]),
                UrlKind::Callback,
                AppType::Native
            )
            .is_ok()
        );
        assert!(
            urls(
                &list(&["com.example.app:/callback"]),
                UrlKind::Callback,
                spa
            )
            .is_err()
        );
        assert!(
            urls(
                &list(&["http://localhost:3000", "http://localhost:3000/"]),
                UrlKind::WebOrigin,
                spa
            )
            .is_ok()
        );
        assert!(
            urls(
                &list(&["http://localhost:3000/app"]),
                UrlKind::WebOrigin,
                spa
            )
            .is_err()
        );
        assert!(
            urls(
                &list(&["http://localhost:3000/bye#x"]),
                UrlKind::LogoutUrl,
                spa
            )
            .is_ok()
        );
    }

    #[test]
    fn scope_and_identifier_rules() {
        assert!(api_scopes(&list(&["read:messages,write:messages"])).is_ok());
        assert!(api_scopes(&list(&["read messages"])).is_err());
        assert!(api_scopes(&list(&["say\"hi\""])).is_err());
        assert!(api_identifier("https://quickstarts/api").is_ok());
        assert!(api_identifier("urn:my-api").is_ok());
        assert!(api_identifier("").is_err());
        assert!(api_identifier("my api").is_err());
        assert!(
            token_lifetime(0).is_err()
                && token_lifetime(2_592_001).is_err()
                && token_lifetime(60).is_ok()
        );
    }

    #[test]
    fn grant_type_rules() {
        assert!(grant_types(&list(&["client_credentials"]), AppType::Spa).is_err());
        assert!(grant_types(&list(&["client_credentials"]), AppType::NonInteractive).is_ok());
        assert!(grant_types(&list(&["password"]), AppType::RegularWeb).is_err());
    }
}
