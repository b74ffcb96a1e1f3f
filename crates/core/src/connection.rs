//! Connections, as Auth0 models them: where a user's identity comes from. The database
//! connection (strategy `auth0`) is Tessera's own user store; an upstream connection sends
//! the user to another identity provider — any OpenID Connect provider (`oidc`), a plain
//! OAuth 2.0 one whose profile is read from a userinfo URL (`oauth2`), or the presets
//! `google-oauth2` (OIDC at Google) and `github` (OAuth 2.0 with GitHub's quirks).
//!
//! This module decides what a connection may be — its name, its options per strategy,
//! which option is a secret — and what its users' ids look like. Upstream URLs are
//! `https`, or `http` to this machine only (a provider under test, a local one): a
//! connection is an administrator's statement of trust, but a token endpoint reached in
//! clear text would hand the upstream's codes and secrets to the network.

use serde_json::{Map, Value};
use url::Url;

use crate::validate::Checked;

/// The longest connection name (Auth0's limit).
pub const MAX_CONNECTION_NAME: usize = 128;
/// The largest `options` object kept, as JSON text.
pub const MAX_OPTIONS_BYTES: usize = 32 * 1024;
/// The longest upstream URL accepted.
pub const MAX_UPSTREAM_URL: usize = 2000;
/// Auth0's limits on a connection's `metadata`: ten members, strings of 255 characters.
pub const MAX_METADATA_MEMBERS: usize = 10;
pub const MAX_METADATA_TEXT: usize = 255;

/// Google's discovery document: the `google-oauth2` preset is OIDC against it.
pub const GOOGLE_DISCOVERY_URL: &str =
    "https://accounts.google.com/.well-known/openid-configuration";
/// Where GitHub's OAuth endpoints and API live unless a connection names a GitHub
/// Enterprise Server (`github_url`, `github_api_url`).
pub const GITHUB_URL: &str = "https://github.com";
pub const GITHUB_API_URL: &str = "https://api.github.com";

/// How a connection authenticates users (Auth0's `strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The database connection: Tessera's users and their passwords.
    Database,
    Oidc,
    OAuth2,
    Google,
    GitHub,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::Database,
        Strategy::Oidc,
        Strategy::OAuth2,
        Strategy::Google,
        Strategy::GitHub,
    ];

    pub fn parse(text: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Database => "auth0",
            Strategy::Oidc => "oidc",
            Strategy::OAuth2 => "oauth2",
            Strategy::Google => "google-oauth2",
            Strategy::GitHub => "github",
        }
    }

    /// Auth0's `isSocial` of an identity: social providers, as opposed to a company's
    /// (enterprise) provider or the database.
    pub fn is_social(self) -> bool {
        matches!(self, Strategy::OAuth2 | Strategy::Google | Strategy::GitHub)
    }

    /// The `provider|id` form of a user id from this connection: `github|123`,
    /// `google-oauth2|1035…`; an `oidc` or `oauth2` connection puts its name between, so
    /// two connections of one strategy never share an id (`oidc|acme|sub`).
    pub fn user_id(self, connection: &str, upstream_id: &str) -> String {
        match self {
            Strategy::Oidc | Strategy::OAuth2 => {
                format!("{}|{connection}|{upstream_id}", self.as_str())
            }
            _ => format!("{}|{upstream_id}", self.as_str()),
        }
    }

    /// The `identities[].user_id` of a user id from this connection: the id without its
    /// provider prefix, as Auth0 shows it.
    pub fn identity_user_id(self, user_id: &str) -> &str {
        user_id
            .strip_prefix(self.as_str())
            .and_then(|rest| rest.strip_prefix('|'))
            .unwrap_or(user_id)
    }
}

/// A connection name as Auth0 restricts it: letters, digits and `-`, starting and ending
/// with a letter or digit, at most [`MAX_CONNECTION_NAME`] characters. Names are ids in
/// users' ids and `/authorize?connection=`, so nothing else is allowed.
pub fn connection_name(text: &str) -> Checked<String> {
    let bytes = text.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_CONNECTION_NAME
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "the connection name must be 1 to {MAX_CONNECTION_NAME} letters, digits or '-', \
             starting and ending with a letter or digit"
        ))
    }
}

/// A connection's `metadata`: at most ten members, each a string of at most 255
/// characters (Auth0's rule).
pub fn connection_metadata(metadata: &Map<String, Value>) -> Checked<()> {
    if metadata.len() > MAX_METADATA_MEMBERS {
        return Err(format!(
            "metadata may have at most {MAX_METADATA_MEMBERS} members"
        ));
    }
    for (name, value) in metadata {
        let text = value.as_str().ok_or("metadata values must be strings")?;
        if name.is_empty()
            || name.chars().count() > MAX_METADATA_TEXT
            || text.chars().count() > MAX_METADATA_TEXT
            || name.chars().chain(text.chars()).any(char::is_control)
        {
            return Err(format!(
                "metadata names and values must be printable, names not empty, each at most \
                 {MAX_METADATA_TEXT} characters"
            ));
        }
    }
    Ok(())
}

/// An upstream connection's options, checked: what is kept as the connection's `options`
/// (never the secret) and the client secret, to be sealed apart.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamOptions {
    pub options: Map<String, Value>,
    pub client_secret: Option<String>,
}

/// Checks `options` for a new or changed upstream connection of `strategy`. The secret
/// may be left out when one is stored already (`has_secret`): tools send back the
/// options they read, which never hold it. Members Tessera does not read are kept as
/// given (Auth0's exports carry many); the ones it reads must be right.
pub fn upstream_options(
    strategy: Strategy,
    options: &Map<String, Value>,
    has_secret: bool,
) -> Checked<UpstreamOptions> {
    let size = serde_json::to_string(options).map_or(usize::MAX, |text| text.len());
    if size > MAX_OPTIONS_BYTES {
        return Err(format!(
            "options are too large: {size} bytes of JSON (at most {MAX_OPTIONS_BYTES})"
        ));
    }
    let mut kept = options.clone();
    let client_secret = match kept.remove("client_secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(secret)) => Some(secret),
        Some(_) => return Err("options.client_secret must be a string".into()),
    };
    if let Some(secret) = &client_secret
        && (secret.is_empty() || secret.len() > 1000 || secret.chars().any(char::is_control))
    {
        return Err("options.client_secret must be 1 to 1000 printable characters".into());
    }
    required_text(&kept, "client_id")?;
    if client_secret.is_none() && !has_secret {
        return Err("options.client_secret is required".into());
    }
    match strategy {
        Strategy::Database => {
            return Err("a database connection has no upstream options".into());
        }
        Strategy::Oidc => oidc_options(&kept)?,
        Strategy::OAuth2 => oauth2_options(&kept)?,
        Strategy::Google => {
            for member in ["discovery_url", "issuer", "authorization_endpoint"] {
                if kept.contains_key(member) {
                    return Err(format!(
                        "options.{member}: the google-oauth2 connection always uses Google's \
                         endpoints"
                    ));
                }
            }
            scope_list(&kept, "scope")?;
            if let Some(audiences) = kept.get("allowed_audiences") {
                text_list(audiences, "allowed_audiences")?;
            }
        }
        Strategy::GitHub => {
            optional_url(&kept, "github_url")?;
            optional_url(&kept, "github_api_url")?;
            scope_list(&kept, "scope")?;
        }
    }
    if let Some(aliases) = kept.get("domain_aliases") {
        for alias in text_list(aliases, "domain_aliases")? {
            domain(alias)?;
        }
    }
    Ok(UpstreamOptions {
        options: kept,
        client_secret,
    })
}

fn oidc_options(options: &Map<String, Value>) -> Checked<()> {
    match options.get("type") {
        None => {}
        Some(Value::String(kind)) if kind == "back_channel" => {}
        Some(Value::String(kind)) if kind == "front_channel" => {
            return Err(
                "options.type: Tessera signs in with the code flow (back_channel); \
                 front_channel is not supported"
                    .into(),
            );
        }
        Some(_) => return Err("options.type must be back_channel".into()),
    }
    let explicit = [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
    ];
    if options.contains_key("discovery_url") {
        optional_url(options, "discovery_url")?;
    } else if explicit.iter().all(|member| options.contains_key(*member)) {
        for member in explicit {
            optional_url(options, member)?;
        }
    } else {
        return Err(
            "options needs discovery_url, or issuer, authorization_endpoint, token_endpoint \
             and jwks_uri"
                .into(),
        );
    }
    for member in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        optional_url(options, member)?;
    }
    if let Some(scopes) = options.get("scopes") {
        let scopes = scopes.as_str().ok_or("options.scopes must be a string")?;
        scope_words(scopes, "scopes")?;
        if !scopes.split(' ').any(|scope| scope == "openid") {
            return Err("options.scopes must include openid".into());
        }
    }
    if let Some(settings) = options.get("connection_settings") {
        let pkce = settings
            .as_object()
            .ok_or("options.connection_settings must be an object")?
            .get("pkce");
        match pkce.map(|value| value.as_str()) {
            None | Some(Some("auto" | "s256")) => {}
            _ => {
                return Err(
                    "options.connection_settings.pkce: Tessera always sends PKCE with S256 \
                     (auto or s256)"
                        .into(),
                );
            }
        }
    }
    Ok(())
}

/// The members of a userinfo answer the `oauth2` strategy's `profile_map` may name, and
/// whether one is required.
pub const PROFILE_MAP_MEMBERS: [(&str, bool); 8] = [
    ("user_id", true),
    ("email", false),
    ("email_verified", false),
    ("name", false),
    ("nickname", false),
    ("picture", false),
    ("given_name", false),
    ("family_name", false),
];

fn oauth2_options(options: &Map<String, Value>) -> Checked<()> {
    if options.contains_key("scripts") {
        return Err(
            "options.scripts: Tessera does not run fetchUserProfile scripts; name the \
             profile's source with userinfo_url and profile_map"
                .into(),
        );
    }
    for member in ["authorizationURL", "tokenURL", "userinfo_url"] {
        required_text(options, member)?;
        optional_url(options, member)?;
    }
    if let Some(pkce) = options.get("pkce_enabled")
        && !pkce.is_boolean()
    {
        return Err("options.pkce_enabled must be a boolean".into());
    }
    scope_list(options, "scope")?;
    let map = options
        .get("profile_map")
        .and_then(Value::as_object)
        .ok_or(
            "options.profile_map is required: an object naming where user_id (and email, \
                name, picture…) are in the userinfo answer, as JSON pointers such as \"/id\"",
        )?;
    for (member, required) in PROFILE_MAP_MEMBERS {
        match map.get(member) {
            None if required => {
                return Err(format!("options.profile_map.{member} is required"));
            }
            None => {}
            Some(Value::String(pointer))
                if (pointer.starts_with('/') && pointer.len() <= 200)
                    && !pointer.chars().any(char::is_control) => {}
            Some(_) => {
                return Err(format!(
                    "options.profile_map.{member} must be a JSON pointer such as \"/id\""
                ));
            }
        }
    }
    if let Some(unknown) = map
        .keys()
        .find(|key| !PROFILE_MAP_MEMBERS.iter().any(|(member, _)| member == key))
    {
        let shown: String = unknown.chars().take(60).collect();
        return Err(format!(
            "options.profile_map: {shown:?} is not a profile member Tessera fills"
        ));
    }
    Ok(())
}

fn required_text<'a>(options: &'a Map<String, Value>, member: &str) -> Checked<&'a str> {
    match options.get(member) {
        Some(Value::String(text))
            if !text.is_empty() && text.len() <= 1000 && !text.chars().any(char::is_control) =>
        {
            Ok(text)
        }
        Some(_) => Err(format!(
            "options.{member} must be 1 to 1000 printable characters"
        )),
        None => Err(format!("options.{member} is required")),
    }
}

fn optional_url(options: &Map<String, Value>, member: &str) -> Checked<()> {
    match options.get(member) {
        None => Ok(()),
        Some(Value::String(text)) => upstream_url(text)
            .map(|_| ())
            .map_err(|why| format!("options.{member}: {why}")),
        Some(_) => Err(format!("options.{member} must be a URL")),
    }
}

/// An upstream provider's URL: `https`, or `http` to a loopback host; no credentials, no
/// fragment. No whitespace or control character either: the URL parser drops tabs and
/// line breaks silently, so the text kept (and shown) would not be the URL called.
pub fn upstream_url(text: &str) -> Checked<Url> {
    let refused = || {
        format!(
            "must be an https URL (http only to localhost) of at most {MAX_UPSTREAM_URL} \
             characters, without credentials, fragment, spaces or control characters"
        )
    };
    if text.len() > MAX_UPSTREAM_URL || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refused());
    }
    let url = Url::parse(text).map_err(|_| refused())?;
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return Err(refused());
    }
    Ok(url)
}

/// `scope` as a string of space-separated scopes or an array of them.
fn scope_list(options: &Map<String, Value>, member: &str) -> Checked<()> {
    match options.get(member) {
        None => Ok(()),
        Some(Value::String(scopes)) => scope_words(scopes, member),
        Some(list @ Value::Array(_)) => {
            for scope in text_list(list, member)? {
                scope_words(scope, member)?;
            }
            Ok(())
        }
        Some(_) => Err(format!(
            "options.{member} must be a string or an array of strings"
        )),
    }
}

fn scope_words(scopes: &str, member: &str) -> Checked<()> {
    let valid = scopes.len() <= 1000
        && scopes.split(' ').all(|scope| {
            !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "options.{member}: scopes are printable ASCII words separated by one space"
        ))
    }
}

fn text_list<'a>(value: &'a Value, member: &str) -> Checked<Vec<&'a str>> {
    let refused = || format!("options.{member} must be an array of at most 1000 strings");
    let items = value.as_array().ok_or_else(refused)?;
    if items.len() > 1000 {
        return Err(refused());
    }
    items
        .iter()
        .map(|item| item.as_str().ok_or_else(refused))
        .collect()
}

/// Whether an upstream connection's `domain_aliases` (its options) name the domain of
/// `email` — home realm discovery: that address signs in at that provider. Domains
/// compare without case; the address's domain is what follows its last `@`.
pub fn serves_address(options: &Map<String, Value>, email: &str) -> bool {
    let Some((_, domain)) = email.trim().rsplit_once('@') else {
        return false;
    };
    options
        .get("domain_aliases")
        .and_then(Value::as_array)
        .is_some_and(|aliases| {
            aliases
                .iter()
                .filter_map(Value::as_str)
                .any(|alias| !domain.is_empty() && alias.eq_ignore_ascii_case(domain))
        })
}

fn domain(text: &str) -> Checked<()> {
    let valid = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(())
    } else {
        Err("options.domain_aliases must be domain names such as example.com".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_url_is_the_text_given_or_refused() {
        assert!(upstream_url("https://idp.example/x?a=b").is_ok());
        assert!(upstream_url("http://127.0.0.1:8080/in").is_ok());
        // The parser would drop these and call another URL than the one kept.
        for text in [
            "https://127.0.0.1/x\r\nX-Injected: 1",
            "https://idp.example/a\tb",
            "https://idp.example/a b",
            " https://idp.example/x",
            "https://idp.example/x\n",
            "https://idp.example/\u{0}",
            "https://idp.example/\u{85}",
        ] {
            assert!(upstream_url(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn an_address_is_served_by_the_connection_aliasing_its_domain() {
        let options = |aliases: Value| match json!({ "domain_aliases": aliases }) {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let acme = options(json!(["acme.example", "Acme.Test"]));
        assert!(serves_address(&acme, "jo@acme.example"));
        assert!(serves_address(&acme, " JO@ACME.TEST "));
        assert!(serves_address(&acme, "odd@name@acme.example"));
        assert!(
            !serves_address(&acme, "jo@sub.acme.example"),
            "no subdomains"
        );
        assert!(!serves_address(&acme, "jo@acme.example.evil"));
        assert!(!serves_address(&acme, "acme.example"), "not an address");
        assert!(!serves_address(&acme, "jo@"));
        assert!(!serves_address(&Map::new(), "jo@acme.example"));
        assert!(!serves_address(
            &options(json!("acme.example")),
            "jo@acme.example"
        ));
    }
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(members) => members,
            _ => unreachable!(),
        }
    }

    #[test]
    fn names_follow_auth0s_rule() {
        for good in ["acme", "Acme-OIDC-2", "a", &"x".repeat(128)] {
            assert_eq!(connection_name(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "-acme",
            "acme-",
            "ac me",
            "acme|x",
            "acmé",
            &"x".repeat(129),
        ] {
            assert!(connection_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_ids_carry_the_connection_where_two_could_collide() {
        assert_eq!(Strategy::GitHub.user_id("github", "123"), "github|123");
        assert_eq!(Strategy::Oidc.user_id("acme", "u1"), "oidc|acme|u1");
        assert_eq!(Strategy::Oidc.identity_user_id("oidc|acme|u1"), "acme|u1");
        assert_eq!(Strategy::GitHub.identity_user_id("github|123"), "123");
        assert!(Strategy::GitHub.is_social() && !Strategy::Oidc.is_social());
        for strategy in Strategy::ALL {
            assert_eq!(Strategy::parse(strategy.as_str()), Some(strategy));
        }
        assert_eq!(Strategy::parse("samlp"), None);
    }

    #[test]
    fn oidc_needs_its_endpoints_a_client_and_openid() {
        let good = object(json!({
            "discovery_url": "https://idp.example/.well-known/openid-configuration",
            "client_id": "tessera",
            "client_secret": "s3cret",
            "scopes": "openid email",
        }));
        let checked = upstream_options(Strategy::Oidc, &good, false).unwrap();
        assert_eq!(checked.client_secret.as_deref(), Some("s3cret"));
        assert!(!checked.options.contains_key("client_secret"));

        let mut without_secret = good.clone();
        without_secret.remove("client_secret");
        assert!(upstream_options(Strategy::Oidc, &without_secret, false).is_err());
        assert!(upstream_options(Strategy::Oidc, &without_secret, true).is_ok());

        let refused = [
            json!({"client_id": "c", "client_secret": "s"}),
            json!({"discovery_url": "http://idp.example/", "client_id": "c", "client_secret": "s"}),
            json!({"discovery_url": "https://u:p@idp.example/", "client_id": "c", "client_secret": "s"}),
            json!({"discovery_url": "https://idp.example/", "client_secret": "s"}),
            json!({"discovery_url": "https://idp.example/", "client_id": "c", "client_secret": "s", "scopes": "email"}),
            json!({"discovery_url": "https://idp.example/", "client_id": "c", "client_secret": "s", "type": "front_channel"}),
            json!({"discovery_url": "https://idp.example/", "client_id": "c", "client_secret": 5}),
            json!({"discovery_url": "https://idp.example/", "client_id": "c", "client_secret": "s",
                   "connection_settings": {"pkce": "disabled"}}),
            json!({"issuer": "https://idp.example/", "client_id": "c", "client_secret": "s"}),
            json!({"discovery_url": "https://idp.example/", "client_id": "c", "client_secret": "s",
                   "end_session_endpoint": "javascript:alert(1)"}),
            json!({"discovery_url": "https://idp.example/", "client_id": "c", "client_secret": "s",
                   "end_session_endpoint": "http://10.0.0.1/logout"}),
        ];
        for options in refused {
            assert!(
                upstream_options(Strategy::Oidc, &object(options.clone()), false).is_err(),
                "{options}"
            );
        }
        let loopback = object(json!({
            "issuer": "http://127.0.0.1:4010/",
            "authorization_endpoint": "http://localhost:4010/auth",
            "token_endpoint": "http://[::1]:4010/token",
            "jwks_uri": "http://127.0.0.1:4010/jwks",
            "end_session_endpoint": "http://127.0.0.1:4010/session/end",
            "client_id": "c",
            "client_secret": "s",
        }));
        assert!(upstream_options(Strategy::Oidc, &loopback, false).is_ok());
    }

    #[test]
    fn oauth2_maps_its_profile_declaratively() {
        let good = object(json!({
            "authorizationURL": "https://idp.example/authorize",
            "tokenURL": "https://idp.example/token",
            "userinfo_url": "https://idp.example/me",
            "client_id": "c",
            "client_secret": "s",
            "scope": ["read:user", "email"],
            "profile_map": {"user_id": "/id", "email": "/contact/email"},
        }));
        assert!(upstream_options(Strategy::OAuth2, &good, false).is_ok());
        for (member, value) in [
            ("profile_map", json!({"email": "/email"})),
            ("profile_map", json!({"user_id": "id"})),
            (
                "profile_map",
                json!({"user_id": "/id", "is_admin": "/admin"}),
            ),
            ("scripts", json!({"fetchUserProfile": "function () {}"})),
            ("tokenURL", json!("ftp://idp.example/token")),
            ("scope", json!("a  b")),
        ] {
            let mut options = good.clone();
            options.insert(member.into(), value.clone());
            assert!(
                upstream_options(Strategy::OAuth2, &options, false).is_err(),
                "{member}: {value}"
            );
        }
    }

    #[test]
    fn presets_keep_their_endpoints() {
        let google = object(json!({"client_id": "c", "client_secret": "s"}));
        assert!(upstream_options(Strategy::Google, &google, false).is_ok());
        let mut moved = google.clone();
        moved.insert("discovery_url".into(), json!("https://evil.example/"));
        assert!(upstream_options(Strategy::Google, &moved, false).is_err());
        let github = object(json!({
            "client_id": "c", "client_secret": "s",
            "github_url": "https://github.corp.example",
            "github_api_url": "https://github.corp.example/api/v3",
        }));
        assert!(upstream_options(Strategy::GitHub, &github, false).is_ok());
        assert!(upstream_options(Strategy::Database, &github, false).is_err());
    }

    #[test]
    fn metadata_and_aliases_are_bounded() {
        assert!(connection_metadata(&object(json!({"team": "identity"}))).is_ok());
        assert!(connection_metadata(&object(json!({"n": 1}))).is_err());
        let many: Map<String, Value> = (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(connection_metadata(&many).is_err());
        let mut options = object(json!({"client_id": "c", "client_secret": "s"}));
        options.insert(
            "domain_aliases".into(),
            json!(["corp.example", "bad domain"]),
        );
        assert!(upstream_options(Strategy::Google, &options, false).is_err());
    }
}
