//! `tessera apis …`: resource servers.

use std::fs::File;
use std::io::{IsTerminal as _, Read};
use std::path::Path;

use tessera_core::{
    DEFAULT_ACCESS_TOKEN_LIFETIME, PopMechanism, ProofOfPossession, ResourceServer, Scope, ids,
};
use tessera_server::wire;
use tessera_store::{ResourceServerUpdate, Store, StoreError};

use crate::cli::{ApiCreate, ApiUpdate, ApisAction, PageArgs};
use crate::commands::{Context, now};
use crate::error::{CliError, CliResult};
use crate::{output, validate};

pub async fn run(ctx: &Context, action: ApisAction) -> CliResult<()> {
    match action {
        ApisAction::Create(args) => create(ctx, args).await,
        ApisAction::List(page) => list(ctx, &page).await,
        ApisAction::Show { id } => {
            let api = find(&ctx.store, &id).await?;
            show(ctx, &api);
            Ok(())
        }
        ApisAction::Update(args) => update(ctx, args).await,
        ApisAction::Delete { id } => {
            let api = find(&ctx.store, &id).await?;
            refuse_system(&api)?;
            ctx.store
                .delete_resource_server(&api.id)
                .await
                .map_err(|e| not_found_or(e, &id))?;
            if ctx.json {
                output::print_json(&wire::resource_server(&api));
            } else {
                println!("Deleted API {} ({}).", api.name, api.identifier);
            }
            Ok(())
        }
    }
}

/// The API with this id or identifier, or a "no API with …" error.
pub async fn find(store: &Store, id_or_identifier: &str) -> CliResult<ResourceServer> {
    store
        .find_resource_server(id_or_identifier)
        .await?
        .ok_or_else(|| {
            CliError::NotFound(format!("no API with id or identifier {id_or_identifier}"))
        })
}

/// System APIs (the Management API, which the server registers) are read-only.
fn refuse_system(api: &ResourceServer) -> CliResult<()> {
    if api.is_system() {
        return Err(CliError::invalid(format!(
            "API {} ({}) is a system API: it cannot be changed or deleted (grant applications access to it with `tessera grants create`)",
            api.name, api.identifier
        )));
    }
    Ok(())
}

fn not_found_or(error: StoreError, id: &str) -> CliError {
    match error {
        StoreError::NotFound(_) => CliError::NotFound(format!("no API with id or identifier {id}")),
        other => CliError::Store(other),
    }
}

async fn create(ctx: &Context, args: ApiCreate) -> CliResult<()> {
    let name = validate::api_name(&args.name)?;
    let identifier = validate::api_identifier(&args.identifier)?;
    let mut scopes = match &args.scopes_file {
        Some(path) => read_scopes_file(path)?,
        None => validate::api_scopes(&args.scopes)?,
    };
    validate::describe_scopes(&mut scopes, &args.scope_descriptions)?;
    let alg = validate::signing_alg(&args.signing_alg)?;
    let token_lifetime =
        validate::token_lifetime(args.token_lifetime.unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME))?;
    let token_dialect = validate::token_dialect(&args.token_dialect)?;
    let now = now();
    let api = ResourceServer {
        // Auth0's resource-server ids are 24 hex characters.
        id: ids::hex_id(12),
        name,
        identifier,
        signing_alg: alg.as_str().to_string(),
        token_lifetime,
        token_lifetime_for_web: token_lifetime,
        allow_offline_access: args.allow_offline_access,
        token_dialect,
        enforce_policies: args.enforce_policies,
        scopes,
        proof_of_possession: dpop_setting(args.require_dpop),
        created_at: now,
        updated_at: now,
    };
    ctx.store
        .create_resource_server(&api)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => CliError::Conflict(format!(
                "an API with identifier {} already exists",
                api.identifier
            )),
            other => CliError::Store(other),
        })?;
    if ctx.json {
        output::print_json(&wire::resource_server(&api));
    } else {
        println!("Created API {}.", api.name);
        output::print_fields(&output::resource_server_fields(&api));
    }
    Ok(())
}

async fn list(ctx: &Context, args: &PageArgs) -> CliResult<()> {
    let page = ctx
        .store
        .list_resource_servers(None, args.slice(!ctx.json))
        .await?;
    let apis = page.items;
    if ctx.json {
        let shapes: Vec<_> = apis.iter().map(wire::resource_server).collect();
        output::print_json(&shapes);
    } else if apis.is_empty() && args.page == 0 {
        println!(
            "No APIs yet. Create one with `tessera apis create --name NAME --identifier URI`."
        );
    } else {
        let rows: Vec<Vec<String>> = apis
            .iter()
            .map(|api| {
                let scopes: Vec<String> = api.scopes.iter().map(|s| s.value.clone()).collect();
                vec![
                    api.id.clone(),
                    api.name.clone(),
                    api.identifier.clone(),
                    output::list_or_none(&scopes),
                ]
            })
            .collect();
        output::print_table(&["ID", "NAME", "IDENTIFIER", "SCOPES"], &rows);
        output::print_page_footer(args, apis.len(), page.total);
    }
    Ok(())
}

fn show(ctx: &Context, api: &ResourceServer) {
    if ctx.json {
        output::print_json(&wire::resource_server(api));
    } else {
        output::print_fields(&output::resource_server_fields(api));
    }
}

async fn update(ctx: &Context, args: ApiUpdate) -> CliResult<()> {
    let api = find(&ctx.store, &args.id).await?;
    refuse_system(&api)?;
    let token_lifetime = args
        .token_lifetime
        .map(validate::token_lifetime)
        .transpose()?;
    let update = ResourceServerUpdate {
        name: args.name.as_deref().map(validate::api_name).transpose()?,
        scopes: new_scopes(
            &api,
            args.scopes.as_deref(),
            args.scopes_file.as_deref(),
            &args.scope_descriptions,
        )?,
        signing_alg: args
            .signing_alg
            .as_deref()
            .map(|a| validate::signing_alg(a).map(|a| a.as_str().to_string()))
            .transpose()?,
        token_lifetime,
        // Browser tokens never outlive the API's tokens (the Management API sets this one).
        token_lifetime_for_web: token_lifetime
            .filter(|lifetime| *lifetime < api.token_lifetime_for_web),
        allow_offline_access: args.allow_offline_access,
        token_dialect: args
            .token_dialect
            .as_deref()
            .map(validate::token_dialect)
            .transpose()?,
        enforce_policies: args.enforce_policies,
        proof_of_possession: args.require_dpop.map(dpop_setting),
    };
    let api = ctx
        .store
        .update_resource_server(&api.id, &update, now())
        .await
        .map_err(|e| not_found_or(e, &args.id))?;
    if ctx.json {
        output::print_json(&wire::resource_server(&api));
    } else {
        println!("Updated API {}.", api.name);
        output::print_fields(&output::resource_server_fields(&api));
    }
    Ok(())
}

/// `--require-dpop`: Auth0's `proof_of_possession` requiring DPoP, or none (not required).
fn dpop_setting(required: bool) -> Option<ProofOfPossession> {
    required.then_some(ProofOfPossession {
        mechanism: PopMechanism::Dpop,
        required: true,
    })
}

/// The scopes after `apis update`: `None` when neither the list nor a description changes.
/// `--scopes` keeps the descriptions of the scopes that stay; `--scopes-file` replaces them.
fn new_scopes(
    api: &ResourceServer,
    replacement: Option<&[String]>,
    file: Option<&Path>,
    descriptions: &[String],
) -> CliResult<Option<Vec<Scope>>> {
    let mut scopes = match (replacement, file) {
        (_, Some(path)) => read_scopes_file(path)?,
        (Some(values), None) => merge_descriptions(api, validate::api_scopes(values))?,
        (None, None) if descriptions.is_empty() => return Ok(None),
        (None, None) => api.scopes.clone(),
    };
    validate::describe_scopes(&mut scopes, descriptions)?;
    Ok(Some(scopes))
}

/// The largest `--scopes-file` read: far more than any API's scopes.
const MAX_SCOPES_FILE: u64 = 1 << 20;

/// Scopes in Auth0's JSON shape from a file, or from stdin for `-`.
fn read_scopes_file(path: &Path) -> CliResult<Vec<Scope>> {
    let (source, reader): (String, Box<dyn Read>) = if path == Path::new("-") {
        if std::io::stdin().is_terminal() {
            return Err(CliError::invalid(
                "--scopes-file -: pipe the JSON in, e.g. `tessera apis show OTHER --json | tessera apis update ID --scopes-file -`",
            ));
        }
        ("stdin".into(), Box::new(std::io::stdin()))
    } else {
        let file = File::open(path)
            .map_err(|error| CliError::io(format!("cannot read {}", path.display()), error))?;
        (path.display().to_string(), Box::new(file))
    };
    let mut text = String::new();
    reader
        .take(MAX_SCOPES_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|error| CliError::io(format!("cannot read {source}"), error))?;
    if text.len() as u64 > MAX_SCOPES_FILE {
        return Err(CliError::invalid(format!(
            "{source} is larger than {MAX_SCOPES_FILE} bytes"
        )));
    }
    validate::scopes_json(&text, &source)
}

/// Scopes that the API already had keep their descriptions when the list is replaced.
fn merge_descriptions(
    api: &ResourceServer,
    scopes: CliResult<Vec<Scope>>,
) -> CliResult<Vec<Scope>> {
    let mut scopes = scopes?;
    for scope in &mut scopes {
        if let Some(old) = api.scopes.iter().find(|old| old.value == scope.value) {
            scope.description = old.description.clone();
        }
    }
    Ok(scopes)
}
