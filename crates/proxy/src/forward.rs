//! Forwarding: the headers the upstream gets and the client that sends them.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body_util::BodyExt as _;
use hyper::upgrade::OnUpgrade;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tessera_guard::{Claims, GuardError, TokenError};

use crate::error::ProxyError;
use crate::forwarded::{self, Origin};

pub(crate) type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

/// The identity headers the proxy sets for the upstream. Any a client sends is removed
/// first, on every request (public ones too), so the upstream can trust them.
pub const IDENTITY_HEADERS: [&str; 4] = [
    "x-auth-subject",
    "x-auth-scope",
    "x-auth-permissions",
    "x-auth-client-id",
];

// The same as `HeaderName`s: a `&str` name is parsed again
// on every insert or remove.
const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
const X_AUTH_SCOPE: HeaderName = HeaderName::from_static("x-auth-scope");
const X_AUTH_PERMISSIONS: HeaderName = HeaderName::from_static("x-auth-permissions");
const X_AUTH_CLIENT_ID: HeaderName = HeaderName::from_static("x-auth-client-id");

/// Headers some stacks route by instead of the request line (IIS URL Rewrite, Symfony
/// before 2.7.49 / 3.4.14, Zend): a path the proxy never judged. Never forwarded.
const PATH_OVERRIDES: [HeaderName; 2] = [
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
];

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the ones deployed before it), never forwarded
/// in either direction. `Expect` belongs to this hop too: the proxy's server has already
/// answered `100-continue` by the time the body is streamed on.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The pooled HTTP/1.1 client for the upstream: http, or https verified against the
/// system's roots.
pub(crate) fn upstream_client(connect_timeout: Duration) -> Result<UpstreamClient, ProxyError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = HttpsConnectorBuilder::new()
        .with_provider_and_platform_verifier(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .map_err(|error| ProxyError::Tls(error.to_string()))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(https))
}

/// Removes the hop-by-hop headers, including those the `Connection` header names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
}

/// Removes every header with `_` in its name, as nginx does by default: CGI, WSGI and
/// Rack servers read `-` and `_` alike (`X_Auth_Subject` and `X-Auth-Subject` both become
/// `HTTP_X_AUTH_SUBJECT`), so such a header could stand in for one the proxy sets.
fn remove_underscored(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| name.as_str().contains('_')) {
        return;
    }
    let underscored: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().contains('_'))
        .cloned()
        .collect();
    for name in underscored {
        headers.remove(name);
    }
}

/// The client's request body, for the upstream: its failures (a malformed chunk, a body
/// cut short) are told apart from the upstream's by [`is_client_body_error`].
pub(crate) fn client_body(body: Body) -> Body {
    Body::new(body.map_err(ClientBodyError))
}

#[derive(Debug, thiserror::Error)]
#[error("the client's request body failed")]
struct ClientBodyError(#[source] axum::Error);

/// Whether the upstream request failed because the client's body did.
pub(crate) fn is_client_body_error(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |error| error.source())
        .any(|error| error.is::<ClientBodyError>())
}

/// Whether the request is a WebSocket handshake: `Connection` lists `upgrade` and
/// `Upgrade` is `websocket` (any case).
pub(crate) fn asks_for_websocket(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && switched_to_websocket(headers)
}

/// Whether `Upgrade` names WebSocket alone.
pub(crate) fn switched_to_websocket(headers: &HeaderMap) -> bool {
    let mut upgrades = headers.get_all(header::UPGRADE).iter();
    matches!(
        (upgrades.next().map(HeaderValue::to_str), upgrades.next()),
        (Some(Ok(protocol)), None) if protocol.trim().eq_ignore_ascii_case("websocket")
    )
}

/// Puts back the two hop-by-hop headers a WebSocket handshake needs.
pub(crate) fn offer_websocket(headers: &mut HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
}

/// Joins the client's and the upstream's upgraded connections until either side closes.
pub(crate) async fn tunnel(client: OnUpgrade, upstream: OnUpgrade) {
    let (client, upstream) = match tokio::join!(client, upstream) {
        (Ok(client), Ok(upstream)) => (client, upstream),
        (Err(error), _) | (_, Err(error)) => {
            tracing::debug!(%error, "WebSocket upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, "WebSocket tunnel closed");
    }
}

/// Prepares the request headers for the upstream: hop-by-hop, spoofable identity and
/// path-override headers removed, and any with `_` in its name, `Host` left to the client (the
/// upstream's authority), the forwarding headers describing the connection
/// ([`forwarded::describe_connection`]), the identity of a verified token added.
/// Fails only for a claim that cannot be put in a header (a control character in `sub`):
/// the token is then refused.
pub(crate) fn upstream_headers(
    headers: &mut HeaderMap,
    origin: &Origin,
    claims: Option<&Claims>,
    strip_authorization: bool,
) -> Result<(), GuardError> {
    remove_hop_by_hop(headers);
    remove_underscored(headers);
    headers.remove(header::EXPECT);
    headers.remove(header::HOST);
    for name in [
        X_AUTH_SUBJECT,
        X_AUTH_SCOPE,
        X_AUTH_PERMISSIONS,
        X_AUTH_CLIENT_ID,
    ]
    .iter()
    .chain(&PATH_OVERRIDES)
    {
        headers.remove(name);
    }
    if strip_authorization {
        headers.remove(header::AUTHORIZATION);
    }

    forwarded::describe_connection(headers, origin);

    if let Some(claims) = claims {
        let invalid = |claim| GuardError::InvalidToken(TokenError::InvalidClaim(claim));
        if !set(headers, X_AUTH_SUBJECT, claims.sub().into()) {
            return Err(invalid("sub"));
        }
        // Scope and permissions are set even when empty: on an admitted request every
        // identity header comes from the token.
        if !set(headers, X_AUTH_SCOPE, single_spaced(claims)) {
            return Err(invalid("scope"));
        }
        if !set(
            headers,
            X_AUTH_PERMISSIONS,
            claims.permissions().join(" ").into(),
        ) {
            return Err(invalid("permissions"));
        }
        if let Some(client_id) = claims.client_id()
            && !set(headers, X_AUTH_CLIENT_ID, client_id.into())
        {
            return Err(invalid("azp"));
        }
    }
    Ok(())
}

/// The `scope` claim with one space between scopes: as issued when it already is (a
/// token's scope nearly always is), else rebuilt.
fn single_spaced(claims: &Claims) -> Cow<'_, str> {
    let scope = claims.scope();
    if scope.starts_with(' ') || scope.ends_with(' ') || scope.contains("  ") {
        Cow::Owned(claims.scopes().collect::<Vec<_>>().join(" "))
    } else {
        Cow::Borrowed(scope)
    }
}

/// Sets a header; `false` when the value has bytes a header cannot carry. An owned value
/// becomes the header's bytes without a copy.
fn set(headers: &mut HeaderMap, name: HeaderName, value: Cow<'_, str>) -> bool {
    let value = match value {
        Cow::Borrowed(value) => HeaderValue::from_bytes(value.as_bytes()),
        Cow::Owned(value) => HeaderValue::from_maybe_shared(Bytes::from(value)),
    };
    match value {
        Ok(value) => {
            headers.insert(name, value);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarded::TrustedProxies;

    #[test]
    fn hop_by_hop_headers_go_including_those_connection_names() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic eA=="),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key(header::ACCEPT));
    }

    /// Claims of a token with these extra members, verified by a guard with a fixed key.
    fn claims_with(extra: serde_json::Value) -> Claims {
        use tessera_jose::{Algorithm, Jwks, SigningKey};
        let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut claims = serde_json::json!({
            "iss": "https://issuer.test/",
            "aud": "https://api.test",
            "sub": "auth0|42",
            "exp": 4_000_000_000u64,
        });
        for (name, value) in extra.as_object().unwrap() {
            claims[name] = value.clone();
        }
        let token = key.sign_jwt("JWT", &claims).unwrap();
        let guard = tessera_guard::Guard::builder()
            .issuer("https://issuer.test/")
            .audience("https://api.test")
            .jwks(Jwks {
                keys: vec![key.public_jwk().clone()],
            })
            .build()
            .unwrap();
        let verified = std::pin::pin!(guard.verify(&token))
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        match verified {
            std::task::Poll::Ready(claims) => claims.unwrap(),
            std::task::Poll::Pending => unreachable!("a fixed key set never waits"),
        }
    }

    fn identity(claims: &Claims) -> Vec<(String, Option<String>)> {
        let mut headers = HeaderMap::new();
        let origin = Origin {
            peer: "192.0.2.7:5555".parse().unwrap(),
            https: false,
            host: None,
            trusted_proxies: &TrustedProxies::default(),
        };
        upstream_headers(&mut headers, &origin, Some(claims), false).unwrap();
        IDENTITY_HEADERS
            .iter()
            .map(|name| {
                let value = headers.get(*name).map(|v| v.to_str().unwrap().to_owned());
                (name.to_string(), value)
            })
            .collect()
    }

    #[test]
    fn identity_headers_come_from_the_token() {
        let claims = claims_with(serde_json::json!({
            "scope": "read:messages write:messages",
            "permissions": ["admin", "read:users"],
            "azp": "cid",
        }));
        let expected = [
            Some("auth0|42"),
            Some("read:messages write:messages"),
            Some("admin read:users"),
            Some("cid"),
        ];
        let names_and_values: Vec<_> = IDENTITY_HEADERS
            .iter()
            .map(|name| name.to_string())
            .zip(expected.map(|v| v.map(str::to_owned)))
            .collect();
        assert_eq!(identity(&claims), names_and_values);

        // Stray spaces are not passed on; without scope, permissions or client the first
        // two are empty and the last is absent.
        let claims = claims_with(serde_json::json!({"scope": " read:a  write:b "}));
        assert_eq!(identity(&claims)[1].1.as_deref(), Some("read:a write:b"));
        let claims = claims_with(serde_json::json!({}));
        let values: Vec<_> = identity(&claims).into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values,
            [
                Some("auth0|42".into()),
                Some(String::new()),
                Some(String::new()),
                None
            ]
        );

        // A claim a header cannot carry refuses the token.
        let claims = claims_with(serde_json::json!({"permissions": ["a\nb"]}));
        let mut headers = HeaderMap::new();
        let origin = Origin {
            peer: "192.0.2.7:5555".parse().unwrap(),
            https: false,
            host: None,
            trusted_proxies: &TrustedProxies::default(),
        };
        assert!(upstream_headers(&mut headers, &origin, Some(&claims), false).is_err());
    }

    #[test]
    fn forwarded_headers_and_spoofed_identity() {
        let mut headers = HeaderMap::new();
        headers.insert("x-auth-subject", HeaderValue::from_static("admin"));
        headers.insert("X-Auth-Scope", HeaderValue::from_static("everything"));
        // WSGI, CGI and Rack read these as X-Auth-Subject and X-Forwarded-For.
        headers.insert("x_auth_subject", HeaderValue::from_static("admin"));
        headers.insert("x-forwarded_for", HeaderValue::from_static("10.0.0.2"));
        // IIS and old Symfony route by these instead of the judged path.
        headers.insert("x-original-url", HeaderValue::from_static("/api/admin"));
        headers.insert("X-Rewrite-URL", HeaderValue::from_static("/api/admin"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert(header::HOST, HeaderValue::from_static("api.example.com"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        let mut origin = Origin {
            peer: "192.0.2.7:5555".parse().unwrap(),
            https: false,
            host: Some(HeaderValue::from_static("api.example.com")),
            trusted_proxies: &TrustedProxies::default(),
        };
        let spoofed = headers.clone();
        upstream_headers(&mut headers, &origin, None, true).unwrap();
        assert!(!headers.contains_key("x-auth-subject"));
        assert!(!headers.contains_key("x-auth-scope"));
        assert!(!headers.contains_key("x_auth_subject"));
        assert!(!headers.contains_key("x-forwarded_for"));
        assert!(!headers.contains_key("x-original-url"));
        assert!(!headers.contains_key("x-rewrite-url"));
        assert!(!headers.contains_key(header::HOST));
        assert!(!headers.contains_key(header::AUTHORIZATION));
        assert_eq!(headers["x-forwarded-for"], "192.0.2.7");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "api.example.com");

        // Over TLS (`--tls-cert`), whatever the client said.
        origin.https = true;
        let mut headers = spoofed;
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        upstream_headers(&mut headers, &origin, None, true).unwrap();
        assert_eq!(headers["x-forwarded-proto"], "https");
    }
}
