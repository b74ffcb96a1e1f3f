//! `tessera proxy`: a reverse proxy that protects any HTTP API (Node, Python, Go, …) with
//! access tokens from Tessera or Auth0, through `tessera_guard`.
//!
//! Each request's path is checked first (dot segments, `//`, encoded dots, slashes and
//! backslashes are refused with 400, so no spelling of a path can slip past a rule), then
//! the longest matching prefix rule decides: `--public` (no token), `--require` (a valid
//! token with scopes) or, by default, a valid token. Token failures are answered exactly as
//! the guard answers them and never reach the upstream. CORS preflights are forwarded
//! without a token. Bodies are streamed both ways. The incoming `X-Auth-*` headers are
//! always removed; a verified request gets them from its token's claims.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tessera_guard::{Guard, Requirement, bearer_token};

use crate::cli::ProxyArgs;
use crate::commands::serve::shutdown_signal;
use crate::error::{CliError, CliResult};

/// Headers the proxy owns: removed from every request, set from a verified token's claims.
const AUTH_SUBJECT: &str = "x-auth-subject";
const AUTH_SCOPE: &str = "x-auth-scope";
const AUTH_PERMISSIONS: &str = "x-auth-permissions";
const AUTH_CLIENT_ID: &str = "x-auth-client-id";
const AUTH_HEADERS: [&str; 4] = [AUTH_SUBJECT, AUTH_SCOPE, AUTH_PERMISSIONS, AUTH_CLIENT_ID];

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded in either direction.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

/// What a path prefix needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// No token.
    Public,
    /// A valid token meeting the requirement (an empty one: any valid token).
    Token(Requirement),
}

/// Prefix rules; the longest prefix matching on a segment boundary wins.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Sorted longest first.
    prefixes: Vec<(String, Rule)>,
}

impl Rules {
    pub fn new(public: &[String], require: &[String]) -> CliResult<Rules> {
        let mut prefixes: Vec<(String, Rule)> = Vec::new();
        let mut add = |prefix: String, rule: Rule| -> CliResult<()> {
            if prefixes.iter().any(|(p, _)| *p == prefix) {
                return Err(CliError::invalid(format!(
                    "the prefix {prefix} has more than one rule (--public / --require)"
                )));
            }
            prefixes.push((prefix, rule));
            Ok(())
        };
        for prefix in public {
            add(normalize_prefix(prefix)?, Rule::Public)?;
        }
        for spec in require {
            let (prefix, scopes) = spec.split_once('=').ok_or_else(|| {
                CliError::invalid(format!("--require {spec:?}: expected PREFIX=scope1,scope2"))
            })?;
            let scopes: Vec<&str> = scopes
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if scopes.is_empty() {
                return Err(CliError::invalid(format!(
                    "--require {spec:?}: no scopes after '='"
                )));
            }
            add(
                normalize_prefix(prefix)?,
                Rule::Token(Requirement::all_scopes(scopes)),
            )?;
        }
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(Rules { prefixes })
    }

    /// The rule for a (checked) path: the longest matching prefix, else "any valid token".
    pub fn rule_for(&self, path: &str) -> Option<&Rule> {
        self.prefixes
            .iter()
            .find(|(prefix, _)| prefix_matches(prefix, path))
            .map(|(_, rule)| rule)
    }
}

fn normalize_prefix(prefix: &str) -> CliResult<String> {
    if !prefix.starts_with('/') {
        return Err(CliError::invalid(format!(
            "path prefix {prefix:?} must start with '/'"
        )));
    }
    if !path_is_clean(prefix) {
        return Err(CliError::invalid(format!(
            "path prefix {prefix:?} contains dot segments, '//', a backslash or encoded dots/slashes"
        )));
    }
    let trimmed = prefix.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    })
}

/// `/api/public` matches `/api/public` and `/api/public/x`, not `/api/publicity`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// False for paths that could mean another path after decoding or normalization: `.` or
/// `..` segments, `//`, a backslash, or `%2e` / `%2f` / `%5c` in any case.
pub fn path_is_clean(path: &str) -> bool {
    if path.contains('\\') || path.contains("//") {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2e") || lower.contains("%2f") || lower.contains("%5c") {
        return false;
    }
    !path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
}

struct Proxy {
    guard: Guard,
    rules: Rules,
    client: Client<HttpConnector, Body>,
    /// scheme://authority, no trailing slash.
    upstream_origin: String,
    /// The upstream URL's path without its trailing slash ("" for none).
    upstream_base: String,
    upstream_authority: HeaderValue,
    timeout: Duration,
}

pub async fn run(args: ProxyArgs) -> CliResult<()> {
    let shutdown = shutdown_signal();
    let rules = Rules::new(&args.public, &args.require)?;
    let upstream: Uri = args
        .upstream
        .parse()
        .map_err(|error| CliError::invalid(format!("--upstream {:?}: {error}", args.upstream)))?;
    match upstream.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(CliError::invalid(
                "--upstream: https upstreams are not supported yet; the proxy usually sits next to the API (http://127.0.0.1:PORT)",
            ));
        }
        _ => {
            return Err(CliError::invalid(format!(
                "--upstream {:?}: expected http://HOST:PORT",
                args.upstream
            )));
        }
    }
    let authority = upstream
        .authority()
        .ok_or_else(|| CliError::invalid("--upstream: no host"))?
        .clone();
    if upstream.query().is_some() {
        return Err(CliError::invalid("--upstream: a query is not allowed"));
    }
    if args.upstream_timeout == 0 {
        return Err(CliError::invalid("--upstream-timeout must be at least 1"));
    }
    let guard = Guard::builder()
        .issuer(&args.issuer)
        .audience(&args.audience)
        .build()
        .map_err(|error| CliError::invalid(format!("guard configuration: {error}")))?;
    let listen: SocketAddr = args
        .listen
        .parse()
        .map_err(|error| CliError::invalid(format!("--listen {:?}: {error}", args.listen)))?;

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(args.upstream_timeout)));
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let proxy = Arc::new(Proxy {
        guard: guard.clone(),
        rules,
        client,
        upstream_origin: format!("http://{authority}"),
        upstream_base: upstream.path().trim_end_matches('/').to_string(),
        upstream_authority: HeaderValue::from_str(authority.as_str())
            .map_err(|_| CliError::invalid("--upstream: invalid host"))?,
        timeout: Duration::from_secs(args.upstream_timeout),
    });

    // Fail-soft key discovery: the issuer may start after the proxy; keys are then
    // fetched on first use.
    match guard.refresh_keys().await {
        Ok(count) => tracing::info!(keys = count, issuer = guard.issuer(), "JWKS loaded"),
        Err(error) => {
            tracing::warn!(%error, issuer = guard.issuer(), "cannot load the JWKS yet; retrying on the first request")
        }
    }

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| CliError::io(format!("cannot listen on {listen}"), error))?;
    let address = listener
        .local_addr()
        .map_err(|error| CliError::io("cannot read the bound address", error))?;
    let app = Router::new().fallback(handle).with_state(proxy);
    println!(
        "tessera proxy ready: listen=http://{address} upstream={}",
        args.upstream
    );
    tracing::info!(%address, upstream = %args.upstream, "tessera proxy started");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|error| CliError::io("the proxy stopped", error))?;
    tracing::info!("tessera proxy stopped");
    Ok(())
}

async fn handle(
    State(proxy): State<Arc<Proxy>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = handle_inner(&proxy, client, request).await;
    // Never the query string nor any header: they may carry tokens.
    tracing::info!(%method, path = %path, status = response.status().as_u16(), "proxied");
    response
}

async fn handle_inner(proxy: &Proxy, client: SocketAddr, mut request: Request) -> Response {
    if !path_is_clean(request.uri().path()) {
        return error_json(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the path contains dot segments, '//', a backslash or encoded dots/slashes",
        );
    }
    for name in AUTH_HEADERS {
        request.headers_mut().remove(name);
    }
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let rule = proxy.rules.rule_for(request.uri().path());
    if !preflight && rule != Some(&Rule::Public) {
        let token = match bearer_token(request.headers()) {
            Ok(token) => token,
            Err(error) => return proxy.guard.error_response(&error),
        };
        let claims = match proxy.guard.verify(token).await {
            Ok(claims) => claims,
            Err(error) => return proxy.guard.error_response(&error),
        };
        if let Some(Rule::Token(requirement)) = rule
            && let Err(error) = requirement.check(&claims)
        {
            return proxy.guard.error_response(&error);
        }
        let headers = request.headers_mut();
        set_header(headers, AUTH_SUBJECT, claims.sub());
        set_header(
            headers,
            AUTH_SCOPE,
            &claims.scopes().collect::<Vec<_>>().join(" "),
        );
        set_header(headers, AUTH_PERMISSIONS, &claims.permissions().join(" "));
        if let Some(client_id) = claims.client_id() {
            set_header(headers, AUTH_CLIENT_ID, client_id);
        }
    }
    forward(proxy, client, request).await
}

/// Sets a header from claim text; text that is not a valid header value is left out.
fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

async fn forward(proxy: &Proxy, client: SocketAddr, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let target = format!(
        "{}{}{}",
        proxy.upstream_origin, proxy.upstream_base, path_and_query
    );
    parts.uri = match target.parse() {
        Ok(uri) => uri,
        Err(_) => {
            return error_json(StatusCode::BAD_REQUEST, "invalid_request", "invalid URI");
        }
    };
    parts.version = axum::http::Version::HTTP_11;

    let headers = &mut parts.headers;
    remove_hop_by_hop(headers);
    let original_host = headers.remove(header::HOST);
    headers.insert(header::HOST, proxy.upstream_authority.clone());
    let ip = client.ip().to_string();
    let forwarded_for = match headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
    {
        previous if previous.is_empty() => ip,
        previous => format!("{}, {ip}", previous.join(", ")),
    };
    headers.remove("x-forwarded-for");
    set_header(headers, "x-forwarded-for", &forwarded_for);
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    match original_host {
        Some(host) => {
            headers.insert("x-forwarded-host", host);
        }
        None => {
            headers.remove("x-forwarded-host");
        }
    }

    let upstream_request = Request::from_parts(parts, body);
    match tokio::time::timeout(proxy.timeout, proxy.client.request(upstream_request)).await {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            remove_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "the upstream did not answer");
            error_json(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the upstream did not answer",
            )
        }
        Err(_) => error_json(
            StatusCode::GATEWAY_TIMEOUT,
            "gateway_timeout",
            "the upstream did not answer in time",
        ),
    }
}

/// Removes the hop-by-hop headers and those the `Connection` header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn error_json(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_mean_another_path_are_refused() {
        for bad in [
            "/api/public/../private",
            "/api/./x",
            "/api/..",
            "/api//x",
            "/api/%2e%2e/x",
            "/api/%2E/x",
            "/api%2fx",
            "/api%5Cx",
            "/api\\x",
        ] {
            assert!(!path_is_clean(bad), "{bad}");
        }
        for good in ["/", "/api/public", "/api/a.b/..c/...", "/api/x%20y"] {
            assert!(path_is_clean(good), "{good}");
        }
    }

    #[test]
    fn the_longest_prefix_on_a_segment_boundary_wins() {
        let rules = Rules::new(
            &["/api/public".into(), "/health/".into()],
            &["/api=read:all".into(), "/api/admin=admin,write:x".into()],
        )
        .unwrap();
        assert_eq!(rules.rule_for("/api/public"), Some(&Rule::Public));
        assert_eq!(rules.rule_for("/api/public/x"), Some(&Rule::Public));
        assert_eq!(rules.rule_for("/health"), Some(&Rule::Public));
        assert_eq!(
            rules.rule_for("/api/publicity"),
            Some(&Rule::Token(Requirement::all_scopes(["read:all"])))
        );
        assert_eq!(
            rules.rule_for("/api/admin/users"),
            Some(&Rule::Token(Requirement::all_scopes(["admin", "write:x"])))
        );
        assert_eq!(rules.rule_for("/other"), None);
        assert!(Rules::new(&["/a".into()], &["/a/=x".into()]).is_err());
        assert!(Rules::new(&["a".into()], &[]).is_err());
        assert!(Rules::new(&[], &["/a=".into()]).is_err());
        assert!(Rules::new(&[], &["/a".into()]).is_err());
    }

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert("keep-alive", HeaderValue::from_static("5"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }
}
