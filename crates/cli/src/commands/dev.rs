//! `tessera dev`: the quickstart's authorization server on a developer's machine, with a
//! seeded API, SPA application and demo user.

use std::net::{Ipv4Addr, SocketAddr};

use tessera_server::{Application, ServerConfig};

use crate::cli::DevArgs;
use crate::commands::open_store;
use crate::commands::serve::shutdown_signal;
use crate::config::master_key_beside_database;
use crate::error::{CliError, CliResult};
use crate::seed::{DEMO_EMAIL, DevSeed, DevSeedOptions, seed_dev_tenant};

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
    let database_url = format!("sqlite://{}", args.data_dir.join("tessera.db").display());
    let store = open_store(&database_url).await?;
    let master_key = master_key_beside_database(&store).await?;

    let mut config = ServerConfig::new(
        SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        master_key,
    );
    // Port 0 (tests): the server derives the issuer from the address it was given.
    config.issuer = (args.port != 0).then(|| format!("http://localhost:{}/", args.port));
    // Bind before seeding: if the port is taken, no demo password is generated unseen.
    let app = Application::build(config, store.clone()).await?;

    let demo_password = std::env::var(DEMO_PASSWORD_VAR)
        .ok()
        .filter(|p| !p.is_empty());
    let seed = seed_dev_tenant(
        &store,
        &DevSeedOptions {
            spa_port: args.spa_port,
            demo_password,
        },
    )
    .await?;
    print!("{}", banner(&args, app.issuer(), &seed));
    app.run_until_stopped(shutdown).await?;
    Ok(())
}

fn banner(args: &DevArgs, issuer: &str, seed: &DevSeed) -> String {
    let base = issuer.trim_end_matches('/');
    let scopes: Vec<&str> = seed.api.scopes.iter().map(|s| s.value.as_str()).collect();
    let password = match &seed.generated_password {
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
    let seeded = if seed.changes.is_empty() {
        "the quickstart tenant was already seeded; nothing changed".to_string()
    } else {
        seed.changes.join("; ")
    };
    let mut out = String::new();
    out.push_str(&format!(
        "\nTessera is running at {base}  (development mode, data in {})\n\n",
        args.data_dir.display()
    ));
    out.push_str(&format!("  Issuer           {base}/\n"));
    out.push_str(&format!(
        "  Discovery        {base}/.well-known/openid-configuration\n"
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
    out.push_str(&format!("  Demo login       {DEMO_EMAIL}\n"));
    out.push_str(&format!("  Demo password    {password}\n"));
    out.push_str(&format!("  Seed             {seeded}\n\n"));
    out.push_str(&format!(
        "  The sample SPA (http://localhost:{}) and API (http://localhost:{}/api) are not started yet: they come in a later release.\n\n",
        args.spa_port, args.api_port
    ));
    out.push_str("Press Ctrl-C to stop.\n");
    out
}
