//! `tessera apps …`: applications (OAuth clients).

use tessera_core::{AppType, Client, OidcLogout, RefreshPolicy, ids};
use tessera_server::wire;
use tessera_store::{ClientFilter, ClientUpdate, Store, StoreError};

use crate::cli::{AppCreate, AppUpdate, AppsAction, BackchannelArgs, CredentialsAction, PageArgs};
use crate::commands::{Context, now};
use crate::error::{CliError, CliResult};
use crate::output;
use crate::validate::{self, UrlKind};

pub async fn run(ctx: &Context, action: AppsAction) -> CliResult<()> {
    match action {
        AppsAction::Create(args) => create(ctx, args).await,
        AppsAction::List(page) => list(ctx, &page).await,
        AppsAction::Show { app } => {
            let client = find(&ctx.store, &app).await?;
            print_client(ctx, &client, None);
            Ok(())
        }
        AppsAction::Update(args) => update(ctx, args).await,
        AppsAction::Delete { app } => {
            let client = find(&ctx.store, &app).await?;
            refuse_system_client(&client)?;
            ctx.store
                .delete_client(&client.client_id)
                .await
                .map_err(|e| not_found_or(e, &app))?;
            if ctx.json {
                output::print_json(&wire::client(&client, None));
            } else {
                println!(
                    "Deleted application {} ({}).",
                    client.name, client.client_id
                );
            }
            Ok(())
        }
        AppsAction::RotateSecret { app } => rotate_secret(ctx, &app).await,
        AppsAction::Credentials { action } => credentials(ctx, action).await,
    }
}

/// `tessera apps credentials …`: the rules of `/api/v2/clients/{id}/credentials`
/// (`tessera_server::client_credentials_admin`).
async fn credentials(ctx: &Context, action: CredentialsAction) -> CliResult<()> {
    use tessera_server::client_credentials_admin::{self as service, Refusal, Wanted};
    let refused = |refusal: Refusal| match refusal.status {
        404 => CliError::NotFound(refusal.message),
        409 => CliError::Conflict(refusal.message),
        _ => CliError::Invalid(refusal.message),
    };
    match action {
        CredentialsAction::Add {
            app,
            pem,
            name,
            expiry_from_cert,
        } => {
            let client = find(&ctx.store, &app).await?;
            refuse_system_client(&client)?;
            let text = std::fs::read_to_string(&pem)
                .map_err(|e| CliError::io(format!("reading {}", pem.display()), e))?;
            let wanted = Wanted {
                name,
                from_cert: expiry_from_cert,
                ..Wanted::default()
            };
            let credential = service::add(&ctx.store, &client, &text, wanted)
                .await
                .map_err(refused)?;
            if ctx.json {
                output::print_json(&service::wire(&credential));
            } else {
                println!(
                    "Added credential {} (kid {}, {}) to {}; it authenticates with \
                     private_key_jwt from now on, not with its secret.",
                    credential.id, credential.kid, credential.alg, client.name
                );
            }
            Ok(())
        }
        CredentialsAction::List { app } => {
            let client = find(&ctx.store, &app).await?;
            let listed = ctx.store.client_credentials_of(&client.client_id).await?;
            if ctx.json {
                let shown: Vec<serde_json::Value> = listed.iter().map(service::wire).collect();
                output::print_json(&shown);
                return Ok(());
            }
            if listed.is_empty() {
                println!("{} has no credentials.", client.name);
            }
            let enabled = client.private_key_jwt_credentials.unwrap_or_default();
            for credential in listed {
                let expiry = credential
                    .expires_at
                    .map_or_else(|| "never".to_string(), tessera_core::claims::rfc3339);
                println!(
                    "{}  {}  kid {}  {}  expires {}{}",
                    credential.id,
                    credential.name,
                    credential.kid,
                    credential.alg,
                    expiry,
                    if enabled.contains(&credential.id) {
                        "  (authenticates)"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        CredentialsAction::Remove { app, id } => {
            let client = find(&ctx.store, &app).await?;
            refuse_system_client(&client)?;
            let back_to_secret = service::remove(&ctx.store, &client, &id)
                .await
                .map_err(refused)?;
            if !ctx.json {
                println!("Deleted credential {id} of {}.", client.name);
                if back_to_secret {
                    println!("No credential left: it authenticates with its client secret again.");
                }
            }
            Ok(())
        }
    }
}

/// Tessera's own applications (the dashboard's) are shown but never changed.
fn refuse_system_client(client: &Client) -> CliResult<()> {
    tessera_server::admin_identities::refuse_system_client(&client.client_id)
        .map_err(CliError::invalid)
}

/// The application with this client_id or, failing that, the one application with
/// exactly this name.
pub async fn find(store: &Store, client_id_or_name: &str) -> CliResult<Client> {
    if let Some(client) = store.find_client(client_id_or_name).await? {
        return Ok(client);
    }
    let mut named = store.clients_named(client_id_or_name, 2).await?;
    match named.len() {
        0 => Err(CliError::NotFound(format!(
            "no application with client_id {client_id_or_name}"
        ))),
        1 => Ok(named.remove(0)),
        _ => Err(CliError::invalid(format!(
            "several applications are named {client_id_or_name:?}: use the client_id (see `tessera apps list`)"
        ))),
    }
}

fn not_found_or(error: StoreError, app: &str) -> CliError {
    match error {
        StoreError::NotFound(_) => {
            CliError::NotFound(format!("no application with client_id {app}"))
        }
        other => CliError::Store(other),
    }
}

/// The application's `oidc_logout` from the flags, checked as the Management API checks
/// it: `None` when no flag is given, `Some(None)` for an empty URL. Initiators or the
/// session-metadata choice alone change those of the `current` URL; what a flag does not
/// name stays as it was.
fn oidc_logout(
    args: &BackchannelArgs,
    current: Option<&OidcLogout>,
) -> CliResult<Option<Option<OidcLogout>>> {
    let url = match (
        &args.backchannel_logout_url,
        current.and_then(OidcLogout::url),
    ) {
        (None, _)
            if args.backchannel_logout_initiators.is_none()
                && args.backchannel_logout_session_metadata.is_none() =>
        {
            return Ok(None);
        }
        (Some(url), _) if url.is_empty() => return Ok(Some(None)),
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url.to_string(),
        (None, None) => {
            return Err(CliError::invalid(
                "--backchannel-logout-initiators and --backchannel-logout-session-metadata \
                 need --backchannel-logout-url: the application has none",
            ));
        }
    };
    let initiators = match args.backchannel_logout_initiators.as_deref() {
        None => current.map(|c| serde_json::json!(c.backchannel_logout_initiators)),
        Some([all]) if all == "all" => Some(serde_json::json!({ "mode": "all" })),
        Some(names) => Some(serde_json::json!({ "mode": "custom", "selected_initiators": names })),
    };
    let mut given = serde_json::json!({ "backchannel_logout_urls": [url] });
    if let Some(initiators) = initiators {
        given["backchannel_logout_initiators"] = initiators;
    }
    // Whether tokens carry the session's metadata: as the flag says, else as it was.
    let metadata = match args.backchannel_logout_session_metadata {
        Some(include) => Some(serde_json::json!({ "include": include })),
        None => current
            .and_then(|c| c.backchannel_logout_session_metadata)
            .map(|metadata| serde_json::json!(metadata)),
    };
    if let Some(metadata) = metadata {
        given["backchannel_logout_session_metadata"] = metadata;
    }
    tessera_core::validate::oidc_logout(&given)
        .map(Some)
        .map_err(CliError::invalid)
}

async fn create(ctx: &Context, args: AppCreate) -> CliResult<()> {
    let name = validate::name(&args.name, "application")?;
    let app_type = validate::app_type(&args.app_type)?;
    let callbacks = validate::urls(&args.callbacks, UrlKind::Callback, app_type)?;
    let web_origins = validate::urls(&args.origins, UrlKind::WebOrigin, app_type)?;
    let allowed_logout_urls = validate::urls(&args.logout_urls, UrlKind::LogoutUrl, app_type)?;
    let grant_types = match &args.grant_types {
        Some(list) => validate::grant_types(list, app_type)?,
        None => app_type.default_grant_types(),
    };
    let allowed_apis = match &args.allowed_apis {
        Some(list) => Some(api_identifiers(&ctx.store, list).await?),
        None => None,
    };
    let secret = (!app_type.is_public()).then(ids::client_secret);
    let now = now();
    let client = Client {
        client_id: ids::alphanumeric(32),
        name,
        app_type,
        secret_hash: secret.as_deref().map(ids::secret_hash),
        token_endpoint_auth_method: app_type.default_auth_method().to_string(),
        callbacks,
        web_origins,
        allowed_logout_urls,
        grant_types,
        is_first_party: !args.third_party,
        allowed_apis,
        refresh: RefreshPolicy::default(),
        profile: Default::default(),
        require_pushed_authorization_requests: false,
        private_key_jwt_credentials: None,
        created_at: now,
        updated_at: now,
        oidc_logout: oidc_logout(&args.backchannel, None)?.flatten(),
    };
    ctx.store.create_client(&client).await?;
    if !ctx.json {
        println!("Created application {}.", client.name);
    }
    print_client(ctx, &client, secret.as_deref());
    Ok(())
}

/// Prints an application; `secret` only by the commands that just generated it.
fn print_client(ctx: &Context, client: &Client, secret: Option<&str>) {
    if ctx.json {
        output::print_json(&wire::client(client, secret));
        return;
    }
    let mut fields = output::client_fields(client);
    if let Some(secret) = secret {
        fields.insert(1, ("client_secret", secret.to_string()));
    }
    output::print_fields(&fields);
    if secret.is_some() {
        println!(
            "\nCopy the client secret now: it is shown only this once (`tessera apps rotate-secret` makes a new one)."
        );
    }
}

async fn list(ctx: &Context, args: &PageArgs) -> CliResult<()> {
    let page = ctx
        .store
        .list_clients(&ClientFilter::default(), args.slice(!ctx.json))
        .await?;
    let clients = page.items;
    if ctx.json {
        let shapes: Vec<_> = clients.iter().map(|c| wire::client(c, None)).collect();
        output::print_json(&shapes);
    } else if clients.is_empty() && args.page == 0 {
        println!(
            "No applications yet. Create one with `tessera apps create --name NAME --type spa|regular|native|m2m`."
        );
    } else {
        let rows: Vec<Vec<String>> = clients
            .iter()
            .map(|c| {
                vec![
                    c.client_id.clone(),
                    c.name.clone(),
                    c.app_type.as_str().to_string(),
                ]
            })
            .collect();
        output::print_table(&["CLIENT ID", "NAME", "TYPE"], &rows);
        output::print_page_footer(args, clients.len(), page.total);
    }
    Ok(())
}

async fn update(ctx: &Context, args: AppUpdate) -> CliResult<()> {
    let client = find(&ctx.store, &args.app).await?;
    refuse_system_client(&client)?;
    let app_type = client.app_type;
    let update = ClientUpdate {
        name: args
            .name
            .as_deref()
            .map(|n| validate::name(n, "application"))
            .transpose()?,
        callbacks: args
            .callbacks
            .as_deref()
            .map(|l| validate::urls(l, UrlKind::Callback, app_type))
            .transpose()?,
        web_origins: args
            .origins
            .as_deref()
            .map(|l| validate::urls(l, UrlKind::WebOrigin, app_type))
            .transpose()?,
        allowed_logout_urls: args
            .logout_urls
            .as_deref()
            .map(|l| validate::urls(l, UrlKind::LogoutUrl, app_type))
            .transpose()?,
        grant_types: args
            .grant_types
            .as_deref()
            .map(|l| validate::grant_types(l, app_type))
            .transpose()?,
        secret_hash: None,
        is_first_party: args.first_party,
        allowed_apis: match &args.allowed_apis {
            Some(list) => Some(Some(api_identifiers(&ctx.store, list).await?)),
            None if args.allow_all_apis => Some(None),
            None => None,
        },
        refresh: refresh_policy(&args, client.refresh),
        token_endpoint_auth_method: None,
        profile: None,
        require_pushed_authorization_requests: args.require_par,
        private_key_jwt_credentials: None,
        oidc_logout: oidc_logout(&args.backchannel, client.oidc_logout.as_ref())?,
    };
    let client = ctx
        .store
        .update_client(&client.client_id, &update, now())
        .await
        .map_err(|e| not_found_or(e, &args.app))?;
    if !ctx.json {
        println!("Updated application {}.", client.name);
    }
    print_client(ctx, &client, None);
    Ok(())
}

/// The identifiers of the APIs named (by identifier or id) in `--allowed-apis`; each must
/// exist. Empty items are dropped, so `""` restricts the application to no API at all.
async fn api_identifiers(store: &Store, names: &[String]) -> CliResult<Vec<String>> {
    let mut identifiers: Vec<String> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let api = crate::commands::apis::find(store, name).await?;
        if !identifiers.contains(&api.identifier) {
            identifiers.push(api.identifier);
        }
    }
    Ok(identifiers)
}

/// The application's refresh policy with the flags applied, or `None` when no flag was given.
fn refresh_policy(args: &AppUpdate, current: RefreshPolicy) -> Option<RefreshPolicy> {
    if args.refresh_token_lifetime.is_none()
        && args.refresh_idle_lifetime.is_none()
        && args.refresh_reuse_interval.is_none()
    {
        return None;
    }
    Some(RefreshPolicy {
        token_lifetime: args
            .refresh_token_lifetime
            .unwrap_or(current.token_lifetime),
        idle_token_lifetime: args
            .refresh_idle_lifetime
            .unwrap_or(current.idle_token_lifetime),
        reuse_interval: args
            .refresh_reuse_interval
            .unwrap_or(current.reuse_interval),
    })
}

async fn rotate_secret(ctx: &Context, app: &str) -> CliResult<()> {
    let client = find(&ctx.store, app).await?;
    refuse_system_client(&client)?;
    if client.app_type.is_public() || client.is_public() {
        return Err(CliError::invalid(format!(
            "application {} is a {} application: public clients have no client secret",
            client.client_id,
            describe(client.app_type)
        )));
    }
    let secret = ids::client_secret();
    let update = ClientUpdate {
        secret_hash: Some(ids::secret_hash(&secret)),
        ..ClientUpdate::default()
    };
    let client = ctx
        .store
        .update_client(&client.client_id, &update, now())
        .await
        .map_err(|e| not_found_or(e, app))?;
    if !ctx.json {
        println!(
            "New client secret for {}; the old one no longer works.",
            client.name
        );
    }
    print_client(ctx, &client, Some(&secret));
    Ok(())
}

pub fn describe(app_type: AppType) -> &'static str {
    match app_type {
        AppType::Spa => "single-page (spa)",
        AppType::RegularWeb => "regular web",
        AppType::Native => "native",
        AppType::NonInteractive => "machine-to-machine (m2m)",
    }
}
