//! `tessera grants …`: client grants (machine-to-machine access of an app to an API).

use tessera_core::{ClientGrant, ResourceServer, ids};
use tessera_server::wire;
use tessera_store::{ClientGrantFilter, Slice, Store, StoreError};

use crate::cli::{GrantsAction, PageArgs};
use crate::commands::{Context, apis, apps, now};
use crate::error::{CliError, CliResult};
use crate::{output, validate};

pub async fn run(ctx: &Context, action: GrantsAction) -> CliResult<()> {
    match action {
        GrantsAction::Create { app, api, scopes } => create(ctx, &app, &api, &scopes).await,
        GrantsAction::List { app, page } => list(ctx, app.as_deref(), &page).await,
        GrantsAction::Update { id, scopes } => {
            let grant = find(&ctx.store, &id).await?;
            let api = apis::find(&ctx.store, &grant.audience).await?;
            let scopes = granted_scopes(&scopes, &api)?;
            let grant = ctx
                .store
                .update_client_grant(&grant.id, &scopes)
                .await
                .map_err(|e| not_found_or(e, &id))?;
            print_grant(ctx, &grant, "Updated");
            Ok(())
        }
        GrantsAction::Delete { id } => {
            let grant = find(&ctx.store, &id).await?;
            ctx.store
                .delete_client_grant(&grant.id)
                .await
                .map_err(|e| not_found_or(e, &id))?;
            if ctx.json {
                output::print_json(&wire::client_grant(&grant));
            } else {
                println!(
                    "Deleted client grant {} ({} → {}).",
                    grant.id, grant.client_id, grant.audience
                );
            }
            Ok(())
        }
    }
}

async fn find(store: &Store, id: &str) -> CliResult<ClientGrant> {
    store
        .find_client_grant(id)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("no client grant with id {id}")))
}

fn not_found_or(error: StoreError, id: &str) -> CliError {
    match error {
        StoreError::NotFound(_) => CliError::NotFound(format!("no client grant with id {id}")),
        other => CliError::Store(other),
    }
}

/// The requested scopes, each of which the API must define.
fn granted_scopes(values: &[String], api: &ResourceServer) -> CliResult<Vec<String>> {
    let scopes = validate::items(values);
    tessera_core::validate::granted_scopes(&scopes, api).map_err(|why| {
        CliError::invalid(format!(
            "{why}; add it with `tessera apis update {} --scopes ...`",
            api.identifier
        ))
    })?;
    Ok(scopes)
}

async fn create(ctx: &Context, app: &str, api: &str, scopes: &[String]) -> CliResult<()> {
    let client = apps::find(&ctx.store, app).await?;
    tessera_core::validate::client_grant_app_type(client.app_type)
        .map_err(|why| CliError::invalid(format!("application {}: {why}", client.client_id)))?;
    let api = apis::find(&ctx.store, api).await?;
    let scopes = granted_scopes(scopes, &api)?;
    let filter = ClientGrantFilter {
        client_id: Some(&client.client_id),
        audience: Some(&api.identifier),
    };
    if let Some(existing) = ctx
        .store
        .list_client_grants(filter, Slice::first(1))
        .await?
        .items
        .into_iter()
        .next()
    {
        return Err(CliError::Conflict(format!(
            "application {} already has a grant for API {} ({}); change it with `tessera grants update {} --scopes ...`",
            client.client_id, api.identifier, existing.id, existing.id
        )));
    }
    let grant = ClientGrant {
        id: format!("cgr_{}", ids::alphanumeric(16)),
        client_id: client.client_id.clone(),
        audience: api.identifier.clone(),
        scope: scopes,
        created_at: now(),
    };
    ctx.store
        .create_client_grant(&grant)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => CliError::Conflict(format!(
                "application {} already has a grant for API {}",
                client.client_id, api.identifier
            )),
            StoreError::NotFound(_) => {
                CliError::NotFound("the application or the API was deleted meanwhile".into())
            }
            other => CliError::Store(other),
        })?;
    if !client.allows_grant("client_credentials") {
        eprintln!(
            "warning: application {} does not allow the client_credentials grant; enable it with \
             `tessera apps update {} --grant-types ...,client_credentials`",
            client.client_id, client.client_id
        );
    }
    print_grant(ctx, &grant, "Created");
    Ok(())
}

fn print_grant(ctx: &Context, grant: &ClientGrant, verb: &str) {
    if ctx.json {
        output::print_json(&wire::client_grant(grant));
    } else {
        println!("{verb} client grant {}.", grant.id);
        output::print_fields(&output::grant_fields(grant));
    }
}

async fn list(ctx: &Context, app: Option<&str>, args: &PageArgs) -> CliResult<()> {
    let client_id = match app {
        Some(app) => Some(apps::find(&ctx.store, app).await?.client_id),
        None => None,
    };
    let filter = ClientGrantFilter {
        client_id: client_id.as_deref(),
        audience: None,
    };
    let page = ctx
        .store
        .list_client_grants(filter, args.slice(!ctx.json))
        .await?;
    let grants = page.items;
    if ctx.json {
        let shapes: Vec<_> = grants.iter().map(wire::client_grant).collect();
        output::print_json(&shapes);
    } else if grants.is_empty() && args.page == 0 {
        println!(
            "No client grants yet. Create one with `tessera grants create --app CLIENT_ID --api IDENTIFIER --scopes a,b`."
        );
    } else {
        let rows: Vec<Vec<String>> = grants
            .iter()
            .map(|g| {
                vec![
                    g.id.clone(),
                    g.client_id.clone(),
                    g.audience.clone(),
                    g.scope.join(" "),
                ]
            })
            .collect();
        output::print_table(&["ID", "CLIENT ID", "AUDIENCE", "SCOPE"], &rows);
        output::print_page_footer(args, grants.len(), page.total);
    }
    Ok(())
}
