//! `tessera proxy`: protect an HTTP API in any language (Node, Python, Go, …) with access
//! tokens from Tessera or Auth0. This module only gathers the settings — `--config` file,
//! then `TESSERA_PROXY_*` variables and flags (clap reads both) — and runs [`tessera_proxy::Proxy`], which does the checking and forwarding.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format as _, Toml};
use serde::Deserialize;
use tessera_guard::{ConfigError, Guard};
use tessera_http::tls::TlsError;
use tessera_proxy::{
    DEFAULT_UPSTREAM_TIMEOUT, Proxy, ProxyConfig, ProxyError, RouteRules, TrustedProxies, Upstream,
};

use crate::cli::ProxyArgs;
use crate::commands::serve::shutdown_signal;
use crate::error::{CliError, CliResult};

pub const DEFAULT_PROXY_LISTEN: &str = "127.0.0.1:8081";

/// The `--config` file: the flags' names with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyFile {
    issuer: Option<String>,
    #[serde(default)]
    audience: OneOrMany,
    upstream: Option<String>,
    listen: Option<String>,
    upstream_timeout: Option<u64>,
    #[serde(default)]
    strip_authorization: bool,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    require_dpop: bool,
    public_origin: Option<String>,
    dpop_nonce_key_file: Option<PathBuf>,
    #[serde(default)]
    public: Vec<String>,
    #[serde(default)]
    require: Vec<String>,
    #[serde(default)]
    require_permission: Vec<String>,
}

/// The secret of `--dpop-nonce-key-file`: 32 random bytes written as a master key is
/// (43 base64url characters or 64 hex digits). Errors never quote the file's content.
fn nonce_key(path: &Path) -> CliResult<[u8; 32]> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        CliError::invalid(format!(
            "--dpop-nonce-key-file: cannot read {}: {error}",
            path.display()
        ))
    })?;
    let key = tessera_jose::MasterKey::parse(&text).map_err(|_| {
        CliError::invalid(format!(
            "--dpop-nonce-key-file: {} does not hold a key (expected 43 base64url characters \
             or 64 hex digits, e.g. from openssl rand -hex 32)",
            path.display()
        ))
    })?;
    // Derived, so the file may also be a copy of the master key without exposing it.
    Ok(key.derive("tessera proxy dpop nonces"))
}

/// `audience = "https://api"` or `audience = ["https://a", "https://b"]`.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

pub async fn run(args: ProxyArgs) -> CliResult<()> {
    let shutdown = shutdown_signal();
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => ProxyFile::default(),
    };

    let missing = |what: &str| {
        CliError::Usage(format!(
            "--{what} is required (on the command line, as TESSERA_PROXY_{}, or in the --config file)",
            what.to_uppercase()
        ))
    };
    let issuer = args
        .issuer
        .or(file.issuer)
        .ok_or_else(|| missing("issuer"))?;
    let audiences = if args.audience.is_empty() {
        file.audience.into_vec()
    } else {
        args.audience
    };
    if audiences.is_empty() {
        return Err(missing("audience"));
    }
    let upstream_url = args
        .upstream
        .or(file.upstream)
        .ok_or_else(|| missing("upstream"))?;
    let upstream = Upstream::parse(&upstream_url).map_err(invalid)?;
    let listen = listen_addr(
        args.listen
            .or(file.listen)
            .as_deref()
            .unwrap_or(DEFAULT_PROXY_LISTEN),
    )?;
    let upstream_timeout = match args.upstream_timeout.or(file.upstream_timeout) {
        Some(0) => return Err(CliError::invalid("--upstream-timeout must be at least 1")),
        Some(secs) => Duration::from_secs(secs),
        None => DEFAULT_UPSTREAM_TIMEOUT,
    };
    let trusted_proxies = if args.trusted_proxies.is_empty() {
        file.trusted_proxies
    } else {
        args.trusted_proxies
    };
    let trusted_proxies = TrustedProxies::parse(trusted_proxies.iter().map(String::as_str))
        .map_err(|error| CliError::invalid(format!("--trusted-proxy: {error}")))?;
    let tls = match (
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
    ) {
        (Some(cert), Some(key)) => Some(tls_config(&cert, &key)?),
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(
                "--tls-cert and --tls-key go together: give both (flags, TESSERA_PROXY_TLS_CERT / \
                 TESSERA_PROXY_TLS_KEY or the --config file), or neither for plain HTTP"
                    .into(),
            ));
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };

    // The file's rules first, then the flags'; a conflict between them is an error.
    let mut rules = RouteRules::new();
    for rule in file.public.iter().chain(&args.public) {
        rules.add_public(rule).map_err(invalid)?;
    }
    for rule in file.require.iter().chain(&args.require) {
        rules.add_required_scopes(rule).map_err(invalid)?;
    }
    for rule in file
        .require_permission
        .iter()
        .chain(&args.require_permission)
    {
        rules.add_required_permissions(rule).map_err(invalid)?;
    }

    let mut guard = Guard::builder()
        .issuer(&issuer)
        .audiences(audiences)
        .dpop_required(args.require_dpop || file.require_dpop);
    if let Some(origin) = args.public_origin.or(file.public_origin) {
        guard = guard.public_origin(origin);
    }
    if let Some(path) = args.dpop_nonce_key_file.or(file.dpop_nonce_key_file) {
        guard = guard.dpop_nonces(nonce_key(&path)?);
    }
    let guard = guard.build().map_err(|error| match error {
        ConfigError::InvalidPublicOrigin => CliError::invalid(format!("--public-origin: {error}")),
        other => CliError::invalid(format!("--issuer / --audience: {other}")),
    })?;
    // Fail soft: the issuer may start after the proxy; keys are then fetched on first use.
    match guard.refresh_keys().await {
        Ok(keys) => tracing::info!(keys, issuer = guard.issuer(), "JWKS loaded"),
        Err(error) => tracing::warn!(
            %error,
            issuer = guard.issuer(),
            "cannot load the issuer's keys yet; trying again on the first request"
        ),
    }

    let config = ProxyConfig {
        guard,
        upstream: upstream.clone(),
        rules,
        upstream_timeout,
        strip_authorization: args.strip_authorization || file.strip_authorization,
        trusted_proxies,
        tls,
    };
    let proxy = Proxy::bind(config, listen)
        .await
        .map_err(|error| match error {
            ProxyError::Bind { addr, source } => {
                CliError::io(format!("cannot listen on {addr}"), source)
            }
            other => invalid(other),
        })?;
    let address = proxy.local_addr();
    println!("tessera proxy ready: listen={scheme}://{address} upstream={upstream}");
    tracing::info!(%address, %upstream, "tessera proxy started");
    proxy
        .run_until_stopped(shutdown)
        .await
        .map_err(|error| CliError::io("the proxy stopped", error))?;
    tracing::info!("tessera proxy stopped");
    Ok(())
}

fn read_file(path: &Path) -> CliResult<ProxyFile> {
    if !path.is_file() {
        return Err(CliError::Config(format!(
            "proxy config file {} does not exist",
            path.display()
        )));
    }
    Figment::from(Toml::file_exact(path))
        .extract()
        .map_err(|error| CliError::Config(format!("{}: {error}", path.display())))
}

/// The HTTPS configuration from the two PEM files; errors name the file at fault.
fn tls_config(cert: &Path, key: &Path) -> CliResult<Arc<rustls::ServerConfig>> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path)
            .map_err(|error| CliError::io(format!("cannot read {what} {}", path.display()), error))
    };
    let cert_pem = read(cert, "the TLS certificate (--tls-cert)")?;
    let key_pem = read(key, "the TLS private key (--tls-key)")?;
    tessera_http::tls::server_config(&cert_pem, &key_pem).map_err(|error| {
        CliError::invalid(match error {
            TlsError::Certificate(reason) => format!("--tls-cert {}: {reason}", cert.display()),
            TlsError::PrivateKey(reason) => format!("--tls-key {}: {reason}", key.display()),
            TlsError::Refused(reason) => format!(
                "--tls-cert {} with --tls-key {}: {reason}",
                cert.display(),
                key.display()
            ),
        })
    })
}

fn listen_addr(listen: &str) -> CliResult<SocketAddr> {
    let invalid = || CliError::invalid(format!("--listen {listen:?} is not host:port"));
    listen
        .to_socket_addrs()
        .map_err(|_| invalid())?
        .next()
        .ok_or_else(invalid)
}

fn invalid(error: impl std::fmt::Display) -> CliError {
    CliError::invalid(error.to_string())
}
