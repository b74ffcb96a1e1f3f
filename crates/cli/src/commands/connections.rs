//! `tessera connections …`: the database connection and upstream identity providers,
//! through the operations `/api/v2/connections` runs (`tessera_server::connections_admin`):
//! the same checks, the same refusals. A client secret is read from stdin only, sealed
//! with the master key, and never printed.

use std::io::{BufRead as _, IsTerminal as _};

use serde_json::{Map, Value};
use tessera_server::connections_admin::{self as service, OptionFields, Refusal};
use tessera_store::{ConnectionFilter, ConnectionRecord};

use crate::cli::{ConnectionCreate, ConnectionOptionArgs, ConnectionUpdateArgs, ConnectionsAction};
use crate::commands::Context;
use crate::config::resolve_master_key;
use crate::error::{CliError, CliResult};
use crate::output;

pub async fn run(ctx: &Context, action: ConnectionsAction) -> CliResult<()> {
    match action {
        ConnectionsAction::List {
            strategies,
            name,
            page,
        } => {
            let filter = ConnectionFilter { strategies, name };
            let listed = service::list(&ctx.store, &filter, page.slice(!ctx.json))
                .await
                .map_err(refused)?;
            if ctx.json {
                let shapes: Vec<Value> = listed.items.iter().map(service::wire).collect();
                output::print_json(&shapes);
            } else {
                let rows: Vec<Vec<String>> = listed
                    .items
                    .iter()
                    .map(|c| {
                        vec![
                            c.id.clone(),
                            c.name.clone(),
                            c.strategy.clone(),
                            c.display_name.clone(),
                        ]
                    })
                    .collect();
                output::print_table(&["ID", "NAME", "STRATEGY", "DISPLAY NAME"], &rows);
                output::print_page_footer(&page, listed.items.len(), listed.total);
            }
            Ok(())
        }
        ConnectionsAction::Get { connection } => {
            let found = find(ctx, &connection).await?;
            print(ctx, &found, None);
            Ok(())
        }
        ConnectionsAction::Create(args) => create(ctx, args).await,
        ConnectionsAction::Update(args) => update(ctx, args).await,
        ConnectionsAction::Enable { connection, app } => {
            set_client(ctx, &connection, &app, true).await
        }
        ConnectionsAction::Disable { connection, app } => {
            set_client(ctx, &connection, &app, false).await
        }
        ConnectionsAction::Delete { connection } => {
            let found = find(ctx, &connection).await?;
            service::delete(&ctx.store, &found.id)
                .await
                .map_err(refused)?;
            print(ctx, &found, Some("Deleted"));
            Ok(())
        }
    }
}

/// An operation's refusal as the CLI's error of the same kind, with the API's text.
fn refused(refusal: Refusal) -> CliError {
    match refusal.status {
        404 => CliError::NotFound(refusal.message),
        409 => CliError::Conflict(refusal.message),
        _ => CliError::Invalid(refusal.message),
    }
}

async fn find(ctx: &Context, id_or_name: &str) -> CliResult<ConnectionRecord> {
    service::find(&ctx.store, id_or_name).await.map_err(|r| {
        if r.status == 404 {
            CliError::NotFound(format!("no connection with id or name {id_or_name}"))
        } else {
            refused(r)
        }
    })
}

fn print(ctx: &Context, connection: &ConnectionRecord, done: Option<&str>) {
    let shown = service::wire(connection);
    if ctx.json {
        output::print_json(&shown);
        return;
    }
    if let Some(done) = done {
        println!("{done} connection {} ({}).", connection.name, connection.id);
        if done == "Deleted" {
            return;
        }
    }
    let text = |member: &str| match &shown[member] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut fields = vec![
        ("id", text("id")),
        ("name", text("name")),
        ("display name", text("display_name")),
        ("strategy", text("strategy")),
        ("show as button", text("show_as_button")),
        ("domain connection", text("is_domain_connection")),
        ("options", text("options")),
    ];
    // What to register at the provider, when the issuer is configured (the dashboard
    // knows it always; the CLI from TESSERA_ISSUER or tessera.toml).
    let issuer = ctx.settings.issuer.as_deref();
    let normalized = issuer.and_then(|issuer| tessera_server::normalize_issuer(issuer).ok());
    if let Some(provider) =
        normalized.and_then(|issuer| tessera_server::at_the_provider(&issuer, connection))
    {
        fields.push(("callback", provider.callback));
        if let Some(logout) = provider.backchannel_logout {
            fields.push(("back-channel logout", logout));
        }
    }
    output::print_fields(&fields);
}

/// Reads the client secret: one line from stdin, its line ending removed.
fn read_secret_stdin() -> CliResult<String> {
    if std::io::stdin().is_terminal() {
        eprint!("Client secret (one line; it is visible as you type, pipe it in to avoid that): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| CliError::io("cannot read the client secret from stdin", error))?;
    let secret = line.strip_suffix('\n').unwrap_or(&line);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(CliError::invalid(
            "no client secret on stdin: pipe it in, e.g. `printf '%s\\n' \"$SECRET\" | tessera connections create ... --client-secret-stdin`",
        ));
    }
    Ok(secret.to_string())
}

/// Whether any option flag was given.
fn changes_options(args: &ConnectionOptionArgs) -> bool {
    args.options_json.is_some()
        || args.client_id.is_some()
        || args.client_secret_stdin
        || args.discovery_url.is_some()
        || args.issuer.is_some()
        || args.scopes.is_some()
}

/// The options the flags describe on top of `base`.
fn options(
    strategy: &str,
    mut base: Map<String, Value>,
    args: &ConnectionOptionArgs,
) -> CliResult<Map<String, Value>> {
    if let Some(text) = &args.options_json {
        let Ok(Value::Object(given)) = serde_json::from_str::<Value>(text) else {
            return Err(CliError::invalid("--options-json must be a JSON object"));
        };
        if given.contains_key("client_secret") {
            return Err(CliError::invalid(
                "--options-json must not hold client_secret: pipe it in with --client-secret-stdin",
            ));
        }
        base.extend(given);
    }
    let secret = if args.client_secret_stdin {
        Some(read_secret_stdin()?)
    } else {
        None
    };
    Ok(service::options_with(
        strategy,
        base,
        &OptionFields {
            client_id: args.client_id.as_deref(),
            client_secret: secret.as_deref(),
            discovery_url: args.discovery_url.as_deref(),
            issuer: args.issuer.as_deref(),
            scopes: args.scopes.as_deref(),
        },
    ))
}

async fn create(ctx: &Context, args: ConnectionCreate) -> CliResult<()> {
    let mut body = Map::new();
    body.insert("name".into(), Value::String(args.name.clone()));
    body.insert("strategy".into(), Value::String(args.strategy.clone()));
    if let Some(display_name) = &args.display_name {
        body.insert("display_name".into(), Value::String(display_name.clone()));
    }
    if let Some(show) = args.show_as_button {
        body.insert("show_as_button".into(), Value::Bool(show));
    }
    if let Some(domain) = args.domain_connection {
        body.insert("is_domain_connection".into(), Value::Bool(domain));
    }
    if !args.enable_for.is_empty() {
        body.insert(
            "enabled_clients".into(),
            Value::Array(args.enable_for.iter().cloned().map(Value::String).collect()),
        );
    }
    let options = options(&args.strategy, Map::new(), &args.options)?;
    body.insert("options".into(), Value::Object(options));
    let master_key = resolve_master_key(&ctx.settings, &ctx.store).await?;
    let created = service::create(&ctx.store, &master_key, body)
        .await
        .map_err(refused)?;
    print(ctx, &created, Some("Created"));
    Ok(())
}

async fn update(ctx: &Context, args: ConnectionUpdateArgs) -> CliResult<()> {
    let current = find(ctx, &args.connection).await?;
    let mut body = Map::new();
    if let Some(display_name) = &args.display_name {
        body.insert("display_name".into(), Value::String(display_name.clone()));
    }
    if let Some(show) = args.show_as_button {
        body.insert("show_as_button".into(), Value::Bool(show));
    }
    if let Some(domain) = args.domain_connection {
        body.insert("is_domain_connection".into(), Value::Bool(domain));
    }
    if changes_options(&args.options) {
        let options = options(&current.strategy, current.options.clone(), &args.options)?;
        body.insert("options".into(), Value::Object(options));
    }
    if body.is_empty() {
        return Err(CliError::Usage(
            "nothing to change: give --display-name, --show-as-button, --domain-connection or an \
             option"
                .into(),
        ));
    }
    let master_key = resolve_master_key(&ctx.settings, &ctx.store).await?;
    let updated = service::update(&ctx.store, &master_key, &current.id, body)
        .await
        .map_err(refused)?;
    print(ctx, &updated, Some("Updated"));
    Ok(())
}

async fn set_client(ctx: &Context, connection: &str, app: &str, enabled: bool) -> CliResult<()> {
    let found = find(ctx, connection).await?;
    service::set_client(&ctx.store, &found.id, app, enabled)
        .await
        .map_err(refused)?;
    if ctx.json {
        output::print_json(&serde_json::json!({
            "connection_id": found.id,
            "client_id": app,
            "status": enabled,
        }));
    } else if enabled {
        println!(
            "Application {app} may now sign users in with {}.",
            found.name
        );
    } else {
        println!(
            "Application {app} no longer signs users in with {}.",
            found.name
        );
    }
    Ok(())
}
