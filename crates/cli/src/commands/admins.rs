//! `tessera admins …`: who may use the dashboard. An administrator is a user holding the
//! system role "Tessera Admin" (or, read-only, "Tessera Viewer"); these commands give and
//! take those roles (`tessera_core::system`), which the server registers at start.

use serde::Serialize;
use tessera_core::User;
use tessera_core::system::{ADMIN_ROLE, SYSTEM_ROLES, SystemRole, VIEWER_ROLE};
use tessera_server::wire;

use crate::cli::{AdminsAction, PageArgs};
use crate::commands::{Context, now, users};
use crate::error::CliResult;
use crate::output;

pub async fn run(ctx: &Context, action: AdminsAction) -> CliResult<()> {
    match action {
        AdminsAction::Add { email, viewer } => {
            let role = if viewer { VIEWER_ROLE } else { ADMIN_ROLE };
            add(ctx, &email, role).await
        }
        AdminsAction::Remove { email } => remove(ctx, &email).await,
        AdminsAction::List(page) => list(ctx, &page).await,
        AdminsAction::Mfa { required } => mfa(ctx, required).await,
    }
}

/// Shows, or with `required` changes, the dashboard's second factor for administrators
/// (`tessera_server::admin_identities::require_mfa` decides what that turns on).
async fn mfa(ctx: &Context, required: Option<bool>) -> CliResult<()> {
    if let Some(required) = required {
        tessera_server::admin_identities::require_mfa(&ctx.store, required).await?;
    }
    let required = tessera_server::admin_identities::mfa_required(&ctx.store).await?;
    if ctx.json {
        output::print_json(&serde_json::json!({ "mfa_required": required }));
    } else if required {
        println!("Administrators pass a second factor to sign in to the dashboard.");
    } else {
        println!("Administrators sign in to the dashboard with a password alone.");
    }
    Ok(())
}

/// What `add` and `remove` print with `--json`: the user and the system roles they hold.
#[derive(Serialize)]
struct Administrator {
    user: wire::RoleMember,
    roles: Vec<wire::Role>,
}

/// Gives the user `role` and takes the other system role away: one holds exactly one.
async fn add(ctx: &Context, email: &str, role: SystemRole) -> CliResult<()> {
    // The user first: an unknown email changes nothing.
    let user = users::find(&ctx.store, email).await?;
    let now = now();
    // A server of this version registers the roles at start; one may not have run yet.
    for system_role in SYSTEM_ROLES {
        tessera_server::admin_identities::ensure_role(&ctx.store, system_role, now).await?;
    }
    ctx.store.assign_user_role(&user.user_id, role.id).await?;
    for other in SYSTEM_ROLES.iter().filter(|other| other.id != role.id) {
        ctx.store.remove_user_role(&user.user_id, other.id).await?;
    }
    report(
        ctx,
        &user,
        &format!("{} is now a {}.", user.email_or_id(), role.name),
    )
    .await
}

async fn remove(ctx: &Context, email: &str) -> CliResult<()> {
    let user = users::find(&ctx.store, email).await?;
    for role in SYSTEM_ROLES {
        ctx.store.remove_user_role(&user.user_id, role.id).await?;
    }
    report(
        ctx,
        &user,
        &format!("{} is no longer an administrator.", user.email_or_id()),
    )
    .await
}

async fn report(ctx: &Context, user: &User, message: &str) -> CliResult<()> {
    let roles: Vec<wire::Role> = ctx
        .store
        .user_roles(&user.user_id)
        .await?
        .iter()
        .filter(|role| tessera_core::system::system_role(&role.id).is_some())
        .map(wire::role)
        .collect();
    if ctx.json {
        output::print_json(&Administrator {
            user: wire::role_member(user),
            roles,
        });
    } else {
        println!("{message}");
    }
    Ok(())
}

/// With `--json`: each system role with one page of its holders.
#[derive(Serialize)]
struct Holders {
    role: wire::Role,
    users: Vec<wire::RoleMember>,
}

/// The holders of each system role, one page of each (by `user_id`, paged in SQL).
async fn list(ctx: &Context, page: &PageArgs) -> CliResult<()> {
    let mut all = Vec::new();
    for (index, role) in SYSTEM_ROLES.into_iter().enumerate() {
        let holders = ctx
            .store
            .list_role_users(role.id, page.slice(!ctx.json))
            .await?;
        if ctx.json {
            all.push(Holders {
                role: wire::role(&role.role(0)),
                users: holders.items.iter().map(wire::role_member).collect(),
            });
            continue;
        }
        if index > 0 {
            println!();
        }
        println!("{} ({}):", role.name, role.id);
        let rows: Vec<Vec<String>> = holders
            .items
            .iter()
            .map(|u| {
                vec![
                    u.email.clone().unwrap_or_default(),
                    u.user_id.clone(),
                    u.name.clone(),
                ]
            })
            .collect();
        if rows.is_empty() && page.page == 0 {
            println!("  nobody (tessera admins add EMAIL{})", flag(role));
        } else {
            output::print_table(&["EMAIL", "USER_ID", "NAME"], &rows);
            output::print_page_footer(page, rows.len(), holders.total);
        }
    }
    if ctx.json {
        output::print_json(&all);
    }
    Ok(())
}

fn flag(role: SystemRole) -> &'static str {
    if role.read_only { " --viewer" } else { "" }
}
