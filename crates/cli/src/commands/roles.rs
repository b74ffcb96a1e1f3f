//! `tessera roles …`: roles, the permissions they hold, and (from `users`) who has them.

use tessera_core::{Permission, Role, ids};
use tessera_server::wire;
use tessera_store::{Store, StoreError};

use crate::cli::{RolePermissionsAction, RolePermissionsArgs, RolesAction};
use crate::commands::{Context, apis, now};
use crate::error::{CliError, CliResult};
use crate::output;
use crate::validate;

pub async fn run(ctx: &Context, action: RolesAction) -> CliResult<()> {
    match action {
        RolesAction::Create { name, description } => create(ctx, &name, &description).await,
        RolesAction::List(args) => {
            let page = ctx.store.list_roles(None, args.slice(!ctx.json)).await?;
            let roles = page.items;
            if ctx.json {
                output::print_json(&roles.iter().map(wire::role).collect::<Vec<_>>());
            } else {
                let rows: Vec<Vec<String>> = roles
                    .iter()
                    .map(|r| vec![r.id.clone(), r.name.clone(), r.description.clone()])
                    .collect();
                output::print_table(&["ID", "NAME", "DESCRIPTION"], &rows);
                output::print_page_footer(&args, roles.len(), page.total);
            }
            Ok(())
        }
        RolesAction::Show { role } => {
            let role = find(&ctx.store, &role).await?;
            let permissions = ctx.store.role_permissions(&role.id).await?;
            if ctx.json {
                output::print_json(&output::RoleWithPermissions {
                    role: wire::role(&role),
                    permissions: described(&ctx.store, &permissions).await?,
                });
            } else {
                println!(
                    "id:          {}\nname:        {}\ndescription: {}",
                    role.id, role.name, role.description
                );
                output::print_permissions(&permissions);
            }
            Ok(())
        }
        RolesAction::Delete { role } => {
            let role = find(&ctx.store, &role).await?;
            refuse_system_role(&role)?;
            ctx.store.delete_role(&role.id).await?;
            if ctx.json {
                output::print_json(&wire::role(&role));
            } else {
                println!("Deleted role {} ({}).", role.name, role.id);
            }
            Ok(())
        }
        RolesAction::Permissions { action } => permissions(ctx, action).await,
    }
}

async fn create(ctx: &Context, name: &str, description: &str) -> CliResult<()> {
    let name = validate::name(name, "role")?;
    let now = now();
    let role = Role {
        id: format!("rol_{}", ids::alphanumeric(16)),
        name,
        description: description.trim().to_string(),
        created_at: now,
        updated_at: now,
    };
    ctx.store.create_role(&role).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            CliError::Conflict(format!("a role named {} already exists", role.name))
        }
        other => other.into(),
    })?;
    if ctx.json {
        output::print_json(&wire::role(&role));
    } else {
        println!("Created role {} ({}).", role.name, role.id);
    }
    Ok(())
}

async fn permissions(ctx: &Context, action: RolePermissionsAction) -> CliResult<()> {
    let (args, adding) = match action {
        RolePermissionsAction::List { role } => {
            let role = find(&ctx.store, &role).await?;
            let permissions = ctx.store.role_permissions(&role.id).await?;
            if ctx.json {
                output::print_json(&described(&ctx.store, &permissions).await?);
            } else {
                output::print_permissions(&permissions);
            }
            return Ok(());
        }
        RolePermissionsAction::Add(args) => (args, true),
        RolePermissionsAction::Remove(args) => (args, false),
    };
    let RolePermissionsArgs { role, api, scopes } = args;
    let role = find(&ctx.store, &role).await?;
    refuse_system_role(&role)?;
    let api = apis::find(&ctx.store, &api).await?;
    let scopes: Vec<String> = scopes
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.is_empty() {
        return Err(CliError::invalid("--scopes needs at least one scope"));
    }
    if adding {
        if let Some(unknown) = scopes.iter().find(|s| !api.defines_scope(s)) {
            return Err(CliError::invalid(format!(
                "the API {} defines no scope {unknown}: add it with `tessera apis update {} --scopes …` first",
                api.identifier, api.identifier
            )));
        }
        ctx.store
            .add_role_permissions(&role.id, &api.identifier, &scopes)
            .await?;
    } else {
        ctx.store
            .remove_role_permissions(&role.id, &api.identifier, &scopes)
            .await?;
    }
    let permissions = ctx.store.role_permissions(&role.id).await?;
    if ctx.json {
        output::print_json(&described(&ctx.store, &permissions).await?);
    } else {
        println!("Role {} now holds:", role.name);
        output::print_permissions(&permissions);
    }
    Ok(())
}

/// Permissions as the Management API lists them: named and described by their APIs.
pub async fn described(
    store: &Store,
    permissions: &[Permission],
) -> CliResult<Vec<wire::Permission>> {
    let mut audiences: Vec<String> = permissions.iter().map(|p| p.audience.clone()).collect();
    audiences.sort();
    audiences.dedup();
    let apis = store.resource_servers_by_identifier(&audiences).await?;
    Ok(permissions
        .iter()
        .map(|p| {
            let api = apis.iter().find(|api| api.identifier == p.audience);
            wire::permission(p, api)
        })
        .collect())
}

/// Tessera's system roles (who may use the dashboard) keep their permissions; their
/// holders change with `tessera admins`.
fn refuse_system_role(role: &Role) -> CliResult<()> {
    tessera_server::admin_identities::refuse_system_role(&role.id).map_err(CliError::invalid)
}

/// A role by id or exact name.
pub async fn find(store: &Store, id_or_name: &str) -> CliResult<Role> {
    store
        .find_role(id_or_name)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("no role with id or name {id_or_name}")))
}
