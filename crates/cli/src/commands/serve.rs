//! `tessera serve`: the production server.

use tessera_server::{Application, ServerConfig, TrustedProxies};

use crate::cli::ServeArgs;
use crate::commands::open_store;
use crate::config::{Overrides, SecretText, Settings, resolve_master_key};
use crate::error::{CliError, CliResult};

pub async fn run(args: ServeArgs) -> CliResult<()> {
    let overrides = Overrides {
        issuer: args.issuer,
        listen: args.listen,
        database_url: None,
        master_key_file: args.master_key_file,
        smtp_url: args.smtp_url.map(SecretText::from),
        email_from: args.email_from,
        metrics_listen: args.metrics_listen,
        admin: args.admin,
        admin_listen: args.admin_listen,
        admin_url: args.admin_url,
        dpop_nonces: args.dpop_nonces,
    };
    let settings = Settings::load(&args.config, &overrides)?;
    let shutdown = shutdown_signal();
    let listen = settings.listen_addr()?;
    let metrics_listen = settings.metrics_addr()?;
    let admin_listen = settings.admin_addr()?;
    if let Some(issuer) = &settings.issuer {
        // Fail before touching the database.
        tessera_server::normalize_issuer(issuer)?;
    }
    let mail = settings.mail_config()?;
    let store = open_store(&settings.database_url).await?;
    let master_key = resolve_master_key(&settings, &store).await?;
    let mut config = ServerConfig::new(listen, master_key);
    let mail_description = mail.as_ref().map(|mail| mail.describe());
    config.mail = mail;
    config.metrics_listen = metrics_listen;
    config.admin = settings.admin;
    config.admin_listen = admin_listen;
    config.admin_url = settings.admin_url.clone();
    config.dpop_nonces = settings.dpop_nonces;
    config.trusted_proxies =
        TrustedProxies::parse(settings.trusted_proxies.iter().map(String::as_str))
            .map_err(|error| CliError::Config(format!("trusted_proxies: {error}")))?;
    config.issuer = settings.issuer.clone().or_else(|| {
        // Port 0 (tests): the server derives the issuer from the bound address.
        (listen.port() != 0).then(|| format!("http://localhost:{}/", listen.port()))
    });
    if settings.issuer.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(
            "TESSERA_ISSUER is not set: tokens will carry a localhost issuer; set it to the public URL of this server"
        );
    }
    let app = Application::build(config, store).await?;
    let address = app.local_addr();
    eprintln!(
        "tessera listening on http://{address} (issuer {})",
        app.issuer()
    );
    tracing::info!(%address, issuer = app.issuer(), "tessera started");
    match &mail_description {
        Some(described) => eprintln!("tessera password reset by email via {described}"),
        None => eprintln!("tessera password reset is off (no smtp_url / TESSERA_SMTP_URL)"),
    }
    if settings.admin {
        eprintln!("tessera dashboard at {}", app.dashboard_url());
    }
    if let Some(metrics) = app.metrics_addr() {
        eprintln!("tessera metrics at http://{metrics}/metrics");
        tracing::info!(address = %metrics, "metrics listener started");
    }
    app.run_until_stopped(shutdown).await?;
    tracing::info!("tessera stopped");
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM; the server then drains in-flight requests.
/// The handlers are installed when this is called, not when the future is first polled,
/// so a signal sent right after "listening on" was printed is not missed.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate())
            .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        match signals {
            Ok((mut term, mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot install signal handlers; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
