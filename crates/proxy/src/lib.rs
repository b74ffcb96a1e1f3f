//! `tessera proxy`: a reverse proxy that protects any HTTP API — Node, Python, Go … —
//! with access tokens from Tessera (or Auth0), the way [`tessera_guard`] protects axum
//! services. Tokens are verified by a [`Guard`]; this crate adds route rules, safe path
//! matching and forwarding.
//!
//! For each request:
//! 1. The request is read as the upstream may read it (`request.rs`): `TRACE`, `TRACK` and
//!    `CONNECT` (405), a method with a lower-case letter, a path spelling that upstreams read differently ([`CanonicalPath`]:
//!    `..`, `//`, encoded slashes, `;` parameters …), a method override that names no
//!    method, a missing or contradictory `Host` or a transfer coding other than `chunked`
//!    is refused (400, 501). Method overrides and format suffixes (`/admin.json`) add
//!    readings: the request must meet the rules of each.
//! 2. A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) is forwarded as it
//!    is; so is a request the [`RouteRules`] make public. Anything else needs a valid
//!    token meeting the matched rules' requirements; failures are answered by the guard
//!    (401 / 400 / 403, RFC 6750) and never reach the upstream.
//! 3. The request is forwarded, its body streamed: hop-by-hop headers and headers with `_`
//!    in their name removed, the client's own forwarding headers (`Forwarded`,
//!    `X-Forwarded-*`, `X-Real-IP` …) replaced by the proxy's (`forwarded.rs`), identity headers
//!    (`X-Auth-Subject`, `-Scope`, `-Permissions`, `-Client-Id`) replaced by the verified
//!    token's — a client's own are always removed. The response comes back streamed,
//!    minus hop-by-hop headers. No answer within the timeout → 504; no connection → 502;
//!    a malformed or cut-short request body → 400.
//!
//! WebSocket handshakes are forwarded as such and, once the upstream switches protocols,
//! the client and upstream connections are joined (after the handshake passed the rules;
//! what flows afterwards is not HTTP and is not inspected). No other upgrade is offered to
//! the upstream: `h2c` would let later requests bypass the rules.
//!
//! The proxy listens on plain HTTP, or HTTPS with [`ProxyConfig::tls`]. Not supported (yet):
//! HTTP/2.

#[cfg(test)]
mod check_cost;
mod error;
mod forward;
mod forwarded;
mod path;
mod request;
mod rules;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::uri::{Authority, Scheme};
use axum::http::{StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use tessera_guard::{Claims, Guard};

pub use error::{ForwardError, ProxyError};
pub use forward::IDENTITY_HEADERS;
pub use forwarded::{InvalidTrustedProxy, TrustedProxies};
pub use path::{CanonicalPath, PathError};
pub use request::RequestError;
pub use rules::{Access, RouteRules, RuleError};

use forward::UpstreamClient;
use forwarded::Origin;
use request::Reading;

/// Default time the upstream has to start answering.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a proxy needs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Verifies tokens (issuer, audiences, keys).
    pub guard: Guard,
    pub upstream: Upstream,
    pub rules: RouteRules,
    /// How long the upstream has to send its response headers (the body may take longer).
    pub upstream_timeout: Duration,
    /// Remove `Authorization` before forwarding. By default it is kept, so the upstream
    /// can verify the token again.
    pub strip_authorization: bool,
    /// Proxies in front whose `X-Forwarded-*` and `Forwarded` are kept and continued; by
    /// default none: the proxy is the edge and describes its peer alone.
    pub trusted_proxies: TrustedProxies,
    /// Serve HTTPS with this configuration (see [`tessera_http::tls::server_config`]);
    /// plain HTTP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Where requests go: `http(s)://host[:port]`, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
}

impl Upstream {
    /// Parses `http://127.0.0.1:8080` (a trailing `/` is fine; other paths, queries and
    /// credentials are refused).
    pub fn parse(url: &str) -> Result<Upstream, ProxyError> {
        let invalid = |reason| ProxyError::InvalidUpstream {
            url: url.into(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let scheme = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS => scheme.clone(),
            _ => return Err(invalid("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?.clone();
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid(
                "give only scheme, host and port: the request path is kept",
            ));
        }
        Ok(Upstream { scheme, authority })
    }

    fn uri_for(&self, path_and_query: &str) -> Option<Uri> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .ok()
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// A proxy bound to its address, not yet serving.
pub struct Proxy {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    config: ProxyConfig,
    client: UpstreamClient,
}

impl Proxy {
    /// Binds `listen` (port 0 picks a free port) and builds the upstream client.
    pub async fn bind(config: ProxyConfig, listen: SocketAddr) -> Result<Proxy, ProxyError> {
        let client = forward::upstream_client(config.upstream_timeout)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ProxyError::Bind {
                addr: listen,
                source,
            })?;
        Ok(Proxy {
            listener,
            shared: Arc::new(Shared { config, client }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // A bound TCP listener always has a local address.
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let options = tessera_http::ServeOptions::with_tls(self.shared.config.tls.clone());
        tessera_http::serve(self.listener, router(self.shared), options, shutdown).await
    }
}

fn router(shared: Arc<Shared>) -> Router {
    // No routes: every request, whatever its method or path, goes through `proxy`.
    Router::new().fallback(proxy).with_state(shared)
}

async fn proxy(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = decide_and_forward(&shared, peer, request).await;
    // Method, path and status only: never headers (tokens) or query strings.
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "proxied"
    );
    response
}

async fn decide_and_forward(shared: &Shared, peer: SocketAddr, request: Request) -> Response {
    let config = &shared.config;
    let reading = match Reading::of(&request) {
        Ok(reading) => reading,
        Err(error) => return ForwardError::Refused(error).into_response(),
    };
    let claims = match reading.access(&config.rules) {
        Access::Public => None,
        Access::Token(requirements) => {
            let verdict = match dpop_target(&request, config.tls.is_some()) {
                // A DPoP proof names the URL the client used: this proxy's.
                Some(uri) => {
                    config
                        .guard
                        .authenticate_request(request.method(), &uri, request.headers())
                        .await
                }
                None => config.guard.authenticate(request.headers()).await,
            };
            let claims = match verdict {
                Ok(claims) => claims,
                Err(error) => return config.guard.error_response(&error),
            };
            if let Some(error) = requirements
                .iter()
                .find_map(|requirement| requirement.check(&claims).err())
            {
                return config.guard.error_response(&error);
            }
            Some(claims)
        }
    };
    forward(shared, peer, request, claims.as_ref()).await
}

/// For a request presenting its token under the `DPoP` scheme, the absolute URI the
/// client addressed (this proxy's scheme, its `Host`), which the proof's `htu` must name;
/// the guard's public origin, when configured, takes precedence. `None` for other schemes.
fn dpop_target(request: &Request, https: bool) -> Option<axum::http::Uri> {
    let authorization = request.headers().get(header::AUTHORIZATION)?.as_bytes();
    if authorization.len() < 5 || !authorization[..5].eq_ignore_ascii_case(b"dpop ") {
        return None;
    }
    let uri = request.uri();
    if uri.scheme().is_some() && uri.authority().is_some() {
        return Some(uri.clone());
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("invalid");
    let scheme = if https { "https" } else { "http" };
    // An unparsable Host yields a URI no proof names: the guard refuses it.
    format!("{scheme}://{host}{}", uri.path())
        .parse()
        .ok()
        .or_else(|| Some(axum::http::Uri::from_static("http://invalid/")))
}

async fn forward(
    shared: &Shared,
    peer: SocketAddr,
    request: Request,
    claims: Option<&Claims>,
) -> Response {
    let config = &shared.config;
    let mut request = request;
    // A WebSocket handshake: kept as such for the upstream, and, if it switches
    // protocols, the two connections are joined. Other upgrades (h2c above all, which
    // would let later requests bypass the rules) are not offered to the upstream.
    let client_upgrade =
        forward::asks_for_websocket(request.headers()).then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let Some(uri) = config.upstream.uri_for(&path_and_query) else {
        return ForwardError::Refused(PathError::NotAbsolute.into()).into_response();
    };
    let origin = Origin {
        peer,
        https: config.tls.is_some(),
        host: parts
            .headers
            .get(header::HOST)
            .cloned()
            .or_else(|| parts.uri.authority().and_then(|a| a.as_str().parse().ok())),
        trusted_proxies: &config.trusted_proxies,
    };
    if let Err(error) = forward::upstream_headers(
        &mut parts.headers,
        &origin,
        claims,
        config.strip_authorization,
    ) {
        return config.guard.error_response(&error);
    }
    if client_upgrade.is_some() {
        forward::offer_websocket(&mut parts.headers);
    }
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let upstream_request = Request::from_parts(parts, forward::client_body(body));

    let mut response = match tokio::time::timeout(
        config.upstream_timeout,
        shared.client.request(upstream_request),
    )
    .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(error)) if forward::is_client_body_error(&error) => {
            // The client's doing (a malformed chunk, a body cut short), not the upstream's.
            tracing::debug!(error = %error_chain(&error), "the request body failed");
            return ForwardError::MalformedBody.into_response();
        }
        Ok(Err(error)) => {
            // hyper's messages name the failure (refused, reset…), never request data.
            tracing::warn!(upstream = %config.upstream, error = %error_chain(&error), "upstream request failed");
            return ForwardError::UpstreamUnavailable.into_response();
        }
        Err(_) => {
            tracing::warn!(upstream = %config.upstream, timeout = ?config.upstream_timeout, "upstream did not answer in time");
            return ForwardError::UpstreamTimeout.into_response();
        }
    };
    if let Some(client_upgrade) = client_upgrade
        && response.status() == StatusCode::SWITCHING_PROTOCOLS
        && forward::switched_to_websocket(response.headers())
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let (mut parts, _) = response.into_parts();
        forward::remove_hop_by_hop(&mut parts.headers);
        forward::offer_websocket(&mut parts.headers);
        tokio::spawn(forward::tunnel(client_upgrade, upstream_upgrade));
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = response.into_parts();
    forward::remove_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let upstream = Upstream::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(upstream.to_string(), "http://127.0.0.1:8080");
        assert_eq!(
            upstream.uri_for("/a/b?x=1").unwrap().to_string(),
            "http://127.0.0.1:8080/a/b?x=1"
        );
        assert!(Upstream::parse("https://api.internal").is_ok());
        for bad in [
            "127.0.0.1:8080",
            "ftp://x",
            "http://x/v1",
            "http://u:p@x",
            "http://x/?a=1",
            "/x",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }
}
