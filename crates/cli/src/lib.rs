//! The `tessera` binary's library: command-line parsing, configuration, the admin
//! commands, `serve` and `dev`. `main.rs` only parses, runs and maps errors to exit codes.
//!
//! The admin commands write to the same database a running server reads per request
//! (and whose signing keys it polls), so their changes are live without a restart.

pub mod cli;
pub mod commands;
pub mod config;
pub mod dev_tls;
pub mod error;
pub mod output;
pub mod private_files;
pub mod sample_spa;
pub mod seed;
pub mod validate;

use cli::{Cli, Command};
use commands::Context;
use error::CliResult;
use std::io::IsTerminal as _;
use tracing_subscriber::EnvFilter;

/// Whether the command runs the server (multi-threaded runtime, `info` logs).
pub fn is_server(command: &Command) -> bool {
    matches!(
        command,
        Command::Serve(_) | Command::Dev(_) | Command::Proxy(_)
    )
}

/// Logs go to stderr; `RUST_LOG` filters them (default `info` for the server, `warn`
/// for admin commands so their output stays clean).
pub fn init_logging(command: &Command) {
    let default = if is_server(command) { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

pub async fn run(cli: Cli) -> CliResult<()> {
    match cli.command {
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Dev(args) => commands::dev::run(args).await,
        Command::Proxy(args) => commands::proxy::run(args).await,
        Command::Apis { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::apis::run(&ctx, action).await).await
        }
        Command::Apps { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::apps::run(&ctx, action).await).await
        }
        Command::Grants { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::grants::run(&ctx, action).await).await
        }
        Command::Users { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::users::run(&ctx, action).await).await
        }
        Command::Roles { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::roles::run(&ctx, action).await).await
        }
        Command::Connections { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::connections::run(&ctx, action).await)
                .await
        }
        Command::Admins { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::admins::run(&ctx, action).await).await
        }
        Command::Import { action, common } => match action {
            crate::cli::ImportAction::Auth0(args) => {
                let ctx = Context::open(&common).await?;
                ctx.finish(commands::import::auth0(&ctx, args).await).await
            }
        },
        Command::Actions { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::actions::run(&ctx, action).await).await
        }
        Command::Logs { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::logs::run(&ctx, action).await).await
        }
        Command::Keys { action, common } => {
            let ctx = Context::open(&common).await?;
            ctx.finish(commands::keys::run(&ctx, action).await).await
        }
        Command::Backup { to, common } => commands::backup::backup(&common, &to).await,
        Command::Restore { from, common } => commands::backup::restore(&common, &from).await,
    }
}
