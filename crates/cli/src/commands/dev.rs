//! `tessera dev`: the quickstart's authorization server on a developer's machine, with a
//! seeded API, SPA application and demo user.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tessera_guard::Guard;
use tessera_server::{Application, MailConfig, ServerConfig};

use crate::cli::DevArgs;
use crate::commands::open_store;
use crate::commands::serve::shutdown_signal;
use crate::config::master_key_beside_database;
use crate::dev_tls::{self, DevTls};
use crate::error::{CliError, CliResult};
use crate::private_files::create_private_dir;
use crate::sample_spa::{self, SpaConfig};
use crate::seed::{
    ADMIN_ROLE, DEMO_EMAIL, DevSeed, DevSeedOptions, QUICKSTART_API_IDENTIFIER, READER_EMAIL,
    READER_ROLE, seed_dev_tenant,
};

/// Environment variable holding the demo user's password.
pub const DEMO_PASSWORD_VAR: &str = "TESSERA_DEMO_PASSWORD";

/// Tessera's port: `http://localhost:4000`, or `https://localhost:4443` with `--tls`.
pub const DEFAULT_PORT: u16 = 4000;
pub const DEFAULT_TLS_PORT: u16 = 4443;

/// Mail in development: through `TESSERA_SMTP_URL` when set (a local mail catcher), else
/// `.eml` files in `<data-dir>/outbox/`; the log says where each one went, never its code.
fn dev_mail(data_dir: &std::path::Path) -> CliResult<MailConfig> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let from = var("TESSERA_EMAIL_FROM").unwrap_or_else(|| "Tessera <no-reply@localhost>".into());
    let mail = match var("TESSERA_SMTP_URL") {
        Some(url) => MailConfig::smtp(&url, &from),
        None => MailConfig::outbox(data_dir.join("outbox"), &from),
    };
    mail.map_err(|error| {
        CliError::Config(format!("{error} (TESSERA_SMTP_URL / TESSERA_EMAIL_FROM)"))
    })
}

/// `tessera dev` ignores tessera.toml and TESSERA_* settings (except the demo password and mail):
/// everything lives under `--data-dir`.
pub async fn run(args: DevArgs) -> CliResult<()> {
    let spa_dir = sample_spa::locate(args.spa_dir.as_deref())?;
    // Readable by the developer only: it holds the database, keys and mail.
    create_private_dir(&args.data_dir)?;
    // HTTPS: the local CA and the certificate for localhost, made or renewed before anything
    // listens.
    let tls = if args.tls {
        Some(dev_tls::ensure(&args.data_dir)?)
    } else {
        None
    };
    let shutdown = shutdown_signal();
    // Bind all three first: the real ports (0 picks free ones) go into the issuer, the
    // seeded callbacks and the SPA's configuration. Nothing is seeded if a port is taken.
    let default_port = if tls.is_some() {
        DEFAULT_TLS_PORT
    } else {
        DEFAULT_PORT
    };
    let server_listener = bind(args.port.unwrap_or(default_port), "Tessera").await?;
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
    // With --tls all three are https: the SPA then is same-site with Tessera (the scheme is
    // part of the site), so the silent-authentication iframe's session cookie is first-party;
    // browsers that block third-party cookies would drop it for an http SPA.
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://localhost:{port}");
    let spa_origin = format!("{scheme}://localhost:{spa_port}");
    let api_url = format!("{scheme}://localhost:{api_port}");

    let database_url = format!("sqlite://{}", args.data_dir.join("tessera.db").display());
    let store = open_store(&database_url).await?;
    let master_key = master_key_beside_database(&store).await?;
    let mut config = ServerConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), master_key);
    config.issuer = Some(format!("{base}/"));
    config.tls = tls.as_ref().map(|tls| tls.server_config.clone());
    config.mail = Some(dev_mail(&args.data_dir)?);
    config.dpop_nonces = args.dpop_nonces;
    // The sample API asks for nonces too, the same ones: it belongs to this installation.
    let api_nonces = args
        .dpop_nonces
        .then(|| tessera_server::dpop_nonce_secret(&config.master_key));
    let app = Application::with_listener(config, store.clone(), server_listener).await?;

    let demo_password = std::env::var(DEMO_PASSWORD_VAR)
        .ok()
        .filter(|p| !p.is_empty());
    let seed = seed_dev_tenant(
        &store,
        &DevSeedOptions {
            spa_port,
            https: tls.is_some(),
            demo_password,
        },
    )
    .await?;
    // The demo user is an administrator of the dashboard (the server registered the role).
    store
        .assign_user_role(&seed.demo_user.user_id, tessera_core::system::ADMIN_ROLE.id)
        .await?;
    sample_spa::ensure_dependencies(&spa_dir)?;

    let mut guard = Guard::builder()
        .issuer(app.issuer())
        .audience(QUICKSTART_API_IDENTIFIER);
    if let Some(secret) = api_nonces {
        guard = guard.dpop_nonces(secret);
    }
    if let Some(tls) = &tls {
        // Discovery and JWKS over https, from a server whose certificate only the dev CA
        // vouches for.
        guard = guard.http_client(client_trusting(tls)?);
    }
    let guard = guard
        .build()
        .map_err(|e| CliError::Config(format!("sample API guard: {e}")))?;
    let api = tessera_sample_api::router(&guard, &spa_origin);
    let spa = sample_spa::router(
        spa_dir,
        &SpaConfig {
            // Over https the domain alone, as with Auth0 (`YOUR_DOMAIN`): the SDKs derive
            // https://DOMAIN/ as the issuer. Over http they are told the issuer.
            domain: match tls {
                Some(_) => format!("localhost:{port}"),
                None => base.clone(),
            },
            client_id: seed.spa.client_id.clone(),
            audience: QUICKSTART_API_IDENTIFIER.into(),
            api_url: api_url.clone(),
            token_issuer: tls.is_none().then(|| app.issuer().to_string()),
        },
    );

    let urls = Urls {
        dashboard: app.dashboard_url(),
        server: base.clone(),
        spa: spa_origin.clone(),
        api: api_url.clone(),
    };
    let https = tls
        .as_ref()
        .map(|tls| trust_instructions(tls, &base))
        .unwrap_or_default();
    print!("{}", banner(&args, &urls, &seed, &https));
    println!("tessera dev ready: server={base} spa={spa_origin} api={api_url}");

    // One shutdown for all three: the first signal stops every server gracefully.
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let stopped = |stop: &tokio::sync::broadcast::Sender<()>| {
        let mut receiver = stop.subscribe();
        async move {
            let _ = receiver.recv().await;
        }
    };
    let tls_config = tls.as_ref().map(|tls| tls.server_config.clone());
    let spa_task = tokio::spawn(serve(spa_listener, spa, tls_config.clone(), stopped(&stop)));
    let api_task = tokio::spawn(serve(api_listener, api, tls_config, stopped(&stop)));
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

/// Serves a sample (SPA or API) over https with `tls`, else over http, until `shutdown`.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tessera_http::serve(
        listener,
        app,
        tessera_http::ServeOptions::with_tls(tls),
        shutdown,
    )
    .await
}

struct Urls {
    server: String,
    /// `<issuer>admin/`.
    dashboard: String,
    spa: String,
    api: String,
}

/// An HTTP client for the sample API's guard that trusts the dev CA and nothing else.
fn client_trusting(tls: &DevTls) -> CliResult<reqwest::Client> {
    let error = |e: reqwest::Error| CliError::Config(format!("sample API guard: {e}"));
    let ca = reqwest::Certificate::from_pem(tls.ca_cert_pem.as_bytes()).map_err(error)?;
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(error)
}

/// Where the CA is and how to trust it, for browsers, the system, Node.js and curl.
fn trust_instructions(tls: &DevTls, base: &str) -> String {
    let ca = tls.ca_cert_path.display();
    let status = if tls.created_ca {
        "created now: trust it once, as below"
    } else {
        "the same as before: if you trusted it then, there is nothing to do"
    };
    let mut out = String::new();
    out.push_str(&format!(
        "HTTPS: Tessera, the SPA and the API present a certificate for localhost, 127.0.0.1 and ::1\n\
         from a local CA, \"{}\", made for this data directory (it can vouch for this\n\
         machine only).\n\n",
        dev_tls::CA_NAME
    ));
    out.push_str(&format!("  CA certificate   {ca}\n"));
    out.push_str(&format!("                   ({status})\n"));
    if let Some(reason) = &tls.issued_certificate {
        out.push_str(&format!(
            "  Certificate      issued for localhost now ({reason})\n"
        ));
    }
    out.push_str("\nTo trust the CA:\n");
    out.push_str(&format!(
        "  Chrome/Chromium on Linux  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n \"{}\" -i {ca}\n\
         \x20                           (certutil is in libnss3-tools), or Settings > Privacy and security >\n\
         \x20                           Security > Manage certificates > Authorities > Import; restart Chrome\n",
        dev_tls::CA_NAME
    ));
    out.push_str(
        "  Firefox                   Settings > Privacy & Security > Certificates > View Certificates >\n\
         \x20                           Authorities > Import..., tick \"Trust this CA to identify websites\"\n",
    );
    out.push_str(&format!(
        "  Debian/Ubuntu (system)    sudo cp {ca} /usr/local/share/ca-certificates/tessera-dev-ca.crt\n\
         \x20                           && sudo update-ca-certificates   (curl, Rust and OpenSSL programs)\n"
    ));
    out.push_str(&format!(
        "  macOS (system, Chrome)    sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}\n"
    ));
    out.push_str(&format!(
        "  Node.js (an Express API)  NODE_EXTRA_CA_CERTS={ca} node server.js\n"
    ));
    out.push_str(&format!(
        "  curl                      curl --cacert {ca} {base}/.well-known/openid-configuration\n"
    ));
    out.push_str(&format!(
        "\nIts private key ({}) stays in {}: never share it.\n\n",
        dev_tls::CA_KEY_FILE,
        tls.dir.display()
    ));
    out
}

async fn bind(port: u16, what: &str) -> CliResult<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|e| CliError::io(format!("cannot listen on 127.0.0.1:{port} for {what}"), e))
}

/// What runs where, the demo logins, then `extra` (the HTTPS section, if any).
fn banner(args: &DevArgs, urls: &Urls, seed: &DevSeed, extra: &str) -> String {
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
    out.push_str(&format!("  Dashboard        {}\n", urls.dashboard));
    out.push_str(&format!(
        "  Administrator    {DEMO_EMAIL}  (role {}: the dashboard, in full)\n",
        tessera_core::system::ADMIN_ROLE.name
    ));
    out.push_str(&format!("  Seed             {seeded}\n\n"));
    out.push_str(extra);
    out.push_str("Press Ctrl-C to stop.\n");
    out
}
