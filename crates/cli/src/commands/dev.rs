//! `tessera dev`: the quickstart's authorization server on a developer's machine, with a
//! seeded API, SPA application and demo user.

use std::net::{Ipv4Addr, SocketAddr};

use tessera_guard::Guard;
use tessera_server::{Application, ServerConfig};

use crate::cli::DevArgs;
use crate::commands::open_store;
use crate::commands::serve::shutdown_signal;
use crate::config::master_key_beside_database;
use crate::error::{CliError, CliResult};
use crate::sample_spa::{self, SpaConfig};
use crate::seed::{
    ADMIN_ROLE, DEMO_EMAIL, DevSeed, DevSeedOptions, QUICKSTART_API_IDENTIFIER, READER_EMAIL,
    READER_ROLE, seed_dev_tenant,
};

/// Environment variable holding the demo user's password.
pub const DEMO_PASSWORD_VAR: &str = "TESSERA_DEMO_PASSWORD";

/// `tessera dev` ignores tessera.toml and TESSERA_* settings (except the demo password):
/// everything lives under `--data-dir`.
pub async fn run(args: DevArgs) -> CliResult<()> {
    if args.tls {
        return Err(CliError::Usage(
            "--tls is not available yet: run `tessera dev` without it (http://localhost)".into(),
        ));
    }
    let spa_dir = sample_spa::locate(args.spa_dir.as_deref())?;
    std::fs::create_dir_all(&args.data_dir).map_err(|e| {
        CliError::io(
            format!(
                "cannot create the data directory {}",
                args.data_dir.display()
            ),
            e,
        )
    })?;
    let shutdown = shutdown_signal();
    // Bind all three first: the real ports (0 picks free ones) go into the issuer, the
    // seeded callbacks and the SPA's configuration. Nothing is seeded if a port is taken.
    let server_listener = bind(args.port, "Tessera").await?;
    let spa_listener = bind(args.spa_port, "the sample SPA").await?;
    let api_listener = bind(args.api_port, "the sample API").await?;
    let port = server_listener
        .local_addr()
        .map_err(|e| CliError::io("listener address", e))?
        .port();
    let spa_port = spa_listener
        .local_addr()
        .map_err(|e| CliError::io("listener address", e))?
        .port();
    let api_port = api_listener
        .local_addr()
        .map_err(|e| CliError::io("listener address", e))?
        .port();
    let base = format!("http://localhost:{port}");
    let spa_origin = format!("http://localhost:{spa_port}");
    let api_url = format!("http://localhost:{api_port}");

    let database_url = format!("sqlite://{}", args.data_dir.join("tessera.db").display());
    let store = open_store(&database_url).await?;
    let master_key = master_key_beside_database(&store).await?;
    let mut config = ServerConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), master_key);
    config.issuer = Some(format!("{base}/"));
    let app = Application::with_listener(config, store.clone(), server_listener).await?;

    let demo_password = std::env::var(DEMO_PASSWORD_VAR)
        .ok()
        .filter(|p| !p.is_empty());
    let seed = seed_dev_tenant(
        &store,
        &DevSeedOptions {
            spa_port,
            demo_password,
        },
    )
    .await?;
    sample_spa::ensure_dependencies(&spa_dir)?;

    let guard = Guard::builder()
        .issuer(app.issuer())
        .audience(QUICKSTART_API_IDENTIFIER)
        .build()
        .map_err(|e| CliError::Config(format!("sample API guard: {e}")))?;
    let api = tessera_sample_api::router(&guard, &spa_origin);
    let spa = sample_spa::router(
        spa_dir,
        &SpaConfig {
            domain: base.clone(),
            client_id: seed.spa.client_id.clone(),
            audience: QUICKSTART_API_IDENTIFIER.into(),
            api_url: api_url.clone(),
            token_issuer: app.issuer().to_string(),
        },
    );

    let urls = Urls {
        server: base.clone(),
        spa: spa_origin.clone(),
        api: api_url.clone(),
    };
    print!("{}", banner(&args, &urls, &seed));
    println!("tessera dev ready: server={base} spa={spa_origin} api={api_url}");

    // One shutdown for all three: the first signal stops every server gracefully.
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let stopped = |stop: &tokio::sync::broadcast::Sender<()>| {
        let mut receiver = stop.subscribe();
        async move {
            let _ = receiver.recv().await;
        }
    };
    let spa_task = tokio::spawn(
        axum::serve(spa_listener, spa)
            .with_graceful_shutdown(stopped(&stop))
            .into_future(),
    );
    let api_task = tokio::spawn(
        axum::serve(api_listener, api)
            .with_graceful_shutdown(stopped(&stop))
            .into_future(),
    );
    let server_task = tokio::spawn(app.run_until_stopped(stopped(&stop)));
    shutdown.await;
    let _ = stop.send(());
    let (server, spa, api) = tokio::join!(server_task, spa_task, api_task);
    server.map_err(|e| CliError::io("server task", std::io::Error::other(e)))??;
    for result in [spa, api] {
        result
            .map_err(|e| CliError::io("sample server task", std::io::Error::other(e)))?
            .map_err(|e| CliError::io("sample server", e))?;
    }
    Ok(())
}

struct Urls {
    server: String,
    spa: String,
    api: String,
}

async fn bind(port: u16, what: &str) -> CliResult<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|e| CliError::io(format!("cannot listen on 127.0.0.1:{port} for {what}"), e))
}

fn banner(args: &DevArgs, urls: &Urls, seed: &DevSeed) -> String {
    let scopes: Vec<&str> = seed.api.scopes.iter().map(|s| s.value.as_str()).collect();
    let describe = |generated: &Option<String>| match generated {
        Some(password) => format!(
            "{password}\n                   (generated: shown this once and never again; set {DEMO_PASSWORD_VAR} to choose one)"
        ),
        None if std::env::var_os(DEMO_PASSWORD_VAR).is_some() => {
            format!("the value of ${DEMO_PASSWORD_VAR}")
        }
        None => format!(
            "shown when it was created; set {DEMO_PASSWORD_VAR} to choose a new one, or delete {} to start over",
            args.data_dir.display()
        ),
    };
    let password = describe(&seed.generated_password);
    let reader_password = describe(&seed.reader_generated_password);
    let seeded = if seed.changes.is_empty() {
        "the quickstart tenant was already seeded; nothing changed".to_string()
    } else {
        seed.changes.join("; ")
    };
    let mut out = String::new();
    out.push_str(&format!(
        "\nOpen {} and log in as {DEMO_EMAIL}.\n\n",
        urls.spa
    ));
    out.push_str(&format!(
        "  Sample SPA       {}  (jQuery + auth0-js)\n",
        urls.spa
    ));
    out.push_str(&format!(
        "  spa-js sample    {}/spa-js/  (@auth0/auth0-spa-js)\n",
        urls.spa
    ));
    out.push_str(&format!(
        "  Sample API       {}/api/public, /api/private, /api/private-scoped, /api/admin\n",
        urls.api
    ));
    out.push_str(&format!(
        "  Tessera          {}  (data in {})\n",
        urls.server,
        args.data_dir.display()
    ));
    out.push_str(&format!(
        "  Discovery        {}/.well-known/openid-configuration\n",
        urls.server
    ));
    out.push_str(&format!(
        "  SPA client_id    {}  ({})\n",
        seed.spa.client_id, seed.spa.name
    ));
    out.push_str(&format!(
        "  Audience         {}  (scopes: {})\n",
        seed.api.identifier,
        scopes.join(" ")
    ));
    out.push_str(&format!(
        "  Demo login       {DEMO_EMAIL}  (role {ADMIN_ROLE}: read and write messages)\n"
    ));
    out.push_str(&format!("  Demo password    {password}\n"));
    out.push_str(&format!(
        "  Second user      {READER_EMAIL}  (role {READER_ROLE}: read messages only)\n"
    ));
    out.push_str(&format!("  Its password     {reader_password}\n"));
    out.push_str(&format!("  Seed             {seeded}\n\n"));
    out.push_str("Press Ctrl-C to stop.\n");
    out
}
