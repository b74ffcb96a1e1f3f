//! `tessera users …`: users of the database connection.

use tessera_core::{User, ids};
use tessera_server::wire;
use tessera_store::{NewUser, Store, StoreError, UserSearch};

use crate::cli::{PageArgs, UserConsentsAction, UserRolesAction, UsersAction};
use crate::commands::{
    Context, apis, apps, check_password, hash_password, now, read_password_stdin,
    roles as role_commands,
};
use crate::error::{CliError, CliResult};
use crate::output;

pub async fn run(ctx: &Context, action: UsersAction) -> CliResult<()> {
    match action {
        UsersAction::Create {
            email,
            password_stdin: _,
            name,
            email_verified,
        } => create(ctx, &email, name, email_verified).await,
        UsersAction::List(page) => list(ctx, &page).await,
        UsersAction::Roles { action } => roles(ctx, action).await,
        UsersAction::Consents { action } => consents(ctx, action).await,
        UsersAction::Factors { user } => factors(ctx, &user).await,
        UsersAction::ResetFactors { user } => reset_factors(ctx, &user).await,
        UsersAction::Sessions { user, from, take } => {
            sessions(ctx, &user, from.as_deref(), take).await
        }
        UsersAction::SignOut { user, session } => sign_out(ctx, &user, session.as_deref()).await,
        UsersAction::Permissions { user, api } => {
            let user = find(&ctx.store, &user).await?;
            let audience = match api {
                Some(api) => Some(apis::find(&ctx.store, &api).await?.identifier),
                None => None,
            };
            let permissions = ctx
                .store
                .user_permissions(&user.user_id, audience.as_deref())
                .await?;
            if ctx.json {
                output::print_json(&role_commands::described(&ctx.store, &permissions).await?);
            } else {
                output::print_permissions(&permissions);
            }
            Ok(())
        }
        UsersAction::Show { user } => {
            let user = find(&ctx.store, &user).await?;
            print_user(ctx, &user, None).await?;
            Ok(())
        }
        UsersAction::Delete { user: key } => {
            let user = find(&ctx.store, &key).await?;
            ctx.store
                .delete_user(&user.user_id, now())
                .await
                .map_err(|e| not_found_or(e, &key))?;
            if ctx.json {
                // Its linked identities went with it.
                output::print_json(&wire::user(&user, &[]));
            } else {
                println!("Deleted user {} ({}).", user.email_or_id(), user.user_id);
            }
            Ok(())
        }
        UsersAction::Block { user: key } => {
            let user = find(&ctx.store, &key).await?;
            ctx.store
                .set_user_blocked(&user.user_id, true, now())
                .await
                .map_err(|e| not_found_or(e, &key))?;
            let user = find(&ctx.store, &user.user_id).await?;
            print_user(ctx, &user, Some("Blocked user; their sessions have ended.")).await?;
            Ok(())
        }
        UsersAction::Unblock { user: key } => {
            let user = find(&ctx.store, &key).await?;
            ctx.store
                .set_user_blocked(&user.user_id, false, now())
                .await
                .map_err(|e| not_found_or(e, &key))?;
            // Also lift brute-force lockouts, from every IP.
            // Counted per email: a user without one (an upstream's) has none.
            if let Some(email) = &user.email {
                ctx.store.clear_login_failures(email, None).await?;
            }
            let user = find(&ctx.store, &user.user_id).await?;
            print_user(
                ctx,
                &user,
                Some("Unblocked user (failed-login lockouts cleared)."),
            )
            .await?;
            Ok(())
        }
        UsersAction::Blocks { user: key, lift } => blocks(ctx, &key, lift).await,
        UsersAction::SetPassword {
            user: key,
            password_stdin: _,
        } => {
            let user = find(&ctx.store, &key).await?;
            let password = read_password_stdin()?;
            check_password(&password)?;
            let hash = hash_password(password).await;
            ctx.store
                .set_user_password(&user.user_id, &hash, now())
                .await
                .map_err(|e| not_found_or(e, &key))?;
            let user = find(&ctx.store, &user.user_id).await?;
            print_user(ctx, &user, Some("Password changed.")).await?;
            Ok(())
        }
    }
}

/// `tessera users factors`: the user's confirmed second factors, in the Management API's
/// `authentication-methods` shape with `--json`.
async fn factors(ctx: &Context, key: &str) -> CliResult<()> {
    let user = find(&ctx.store, key).await?;
    let factors = tessera_server::mfa_admin::factors(&ctx.store, &user.user_id).await?;
    if ctx.json {
        output::print_json(&factors);
        return Ok(());
    }
    if factors.is_empty() {
        println!("{} has no second factor.", user.email_or_id());
        return Ok(());
    }
    let text =
        |factor: &serde_json::Value, name: &str| factor[name].as_str().unwrap_or("-").to_string();
    let rows: Vec<Vec<String>> = factors
        .iter()
        .map(|f| {
            vec![
                text(f, "type"),
                text(f, "name"),
                text(f, "created_at"),
                text(f, "last_auth_at"),
                text(f, "id"),
            ]
        })
        .collect();
    output::print_table(&["TYPE", "NAME", "CREATED", "LAST USED", "ID"], &rows);
    Ok(())
}

/// `tessera users reset-factors`: every second factor of the user goes (and the count of
/// wrong codes); the user enrolls again at their next login that needs one.
async fn reset_factors(ctx: &Context, key: &str) -> CliResult<()> {
    let user = find(&ctx.store, key).await?;
    let removed = tessera_server::mfa_admin::reset(&ctx.store, &user.user_id).await?;
    if ctx.json {
        output::print_json(&serde_json::json!({"user_id": user.user_id, "removed": removed}));
    } else {
        println!(
            "Reset the second factors of {} ({removed} removed): they enroll again at their \
             next login that needs one.",
            user.email_or_id()
        );
    }
    Ok(())
}

/// `tessera users sessions`: the user's live login sessions, a page at a time by id.
async fn sessions(ctx: &Context, key: &str, from: Option<&str>, take: u32) -> CliResult<()> {
    let user = find(&ctx.store, key).await?;
    let page = tessera_server::sessions_admin::of_user(
        &ctx.store,
        &user.user_id,
        tessera_store::Checkpoint { from, take },
    )
    .await?;
    if ctx.json {
        let mut body = serde_json::json!({ "sessions": page.items });
        if let Some(next) = &page.next {
            body["next"] = serde_json::json!(next);
        }
        output::print_json(&body);
        return Ok(());
    }
    if page.items.is_empty() {
        println!(
            "{} is not signed in at the login page anywhere.",
            user.email_or_id()
        );
        return Ok(());
    }
    let text = |value: &serde_json::Value, path: &[&str]| {
        path.iter()
            .fold(value, |value, key| &value[*key])
            .as_str()
            .unwrap_or("-")
            .to_string()
    };
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|s| {
            vec![
                text(s, &["id"]),
                text(s, &["device", "last_user_agent"]),
                text(s, &["device", "last_ip"]),
                text(s, &["authenticated_at"]),
                text(s, &["last_interacted_at"]),
                text(s, &["idle_expires_at"]),
                text(s, &["expires_at"]),
                metadata(&s["session_metadata"]),
            ]
        })
        .collect();
    // When it ends if not used again, and however it is used (the tenant's absolute
    // lifetime, or an earlier end a post-login action set).
    output::print_table(
        &[
            "SESSION",
            "BROWSER",
            "ADDRESS",
            "SIGNED IN",
            "LAST USED",
            "ENDS IF IDLE",
            "ENDS BY",
            "METADATA",
        ],
        &rows,
    );
    if let Some(next) = page.next {
        println!("More: tessera users sessions {key} --from {next}");
    }
    Ok(())
}

/// A session's metadata in a table cell: `key=value` pairs, or `-`.
fn metadata(value: &serde_json::Value) -> String {
    let pairs: Vec<String> = value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect();
    if pairs.is_empty() {
        "-".to_string()
    } else {
        pairs.join(", ")
    }
}

/// `tessera users sign-out`: every session and refresh token of the user, or one session
/// and the refresh tokens issued in it.
async fn sign_out(ctx: &Context, key: &str, session: Option<&str>) -> CliResult<()> {
    let user = find(&ctx.store, key).await?;
    let what = match session {
        Some(sid) => {
            if !tessera_server::sessions_admin::end_one(&ctx.store, &user.user_id, sid).await? {
                return Err(CliError::NotFound(format!(
                    "{} has no live session {sid}",
                    user.email_or_id()
                )));
            }
            format!("the session {sid}")
        }
        None => {
            ctx.store.end_user_sessions(&user.user_id, now()).await?;
            "every session and refresh token".to_string()
        }
    };
    if ctx.json {
        output::print_json(
            &serde_json::json!({"user_id": user.user_id, "signed_out": session.unwrap_or("everywhere")}),
        );
    } else {
        println!(
            "Signed {} out of {what}: they sign in again.",
            user.email_or_id()
        );
    }
    Ok(())
}

/// A user by `auth0|…` id or by email.
pub async fn find(store: &Store, user_id_or_email: &str) -> CliResult<User> {
    if let Some(user) = store.find_user(user_id_or_email).await? {
        return Ok(user);
    }
    if user_id_or_email.contains('@')
        && let Some(user) = store.find_user_by_email(user_id_or_email).await?
    {
        return Ok(user);
    }
    Err(CliError::NotFound(format!(
        "no user with id or email {user_id_or_email}"
    )))
}

/// `tessera users roles assign|remove|list`. Changes show in the user's next token.
async fn roles(ctx: &Context, action: UserRolesAction) -> CliResult<()> {
    let (user, change) = match action {
        UserRolesAction::List { user } => (user, None),
        UserRolesAction::Assign { user, role } => (user, Some((role, true))),
        UserRolesAction::Remove { user, role } => (user, Some((role, false))),
    };
    let user = find(&ctx.store, &user).await?;
    if let Some((role, assign)) = change {
        let role = role_commands::find(&ctx.store, &role).await?;
        if assign {
            ctx.store.assign_user_role(&user.user_id, &role.id).await?;
        } else {
            ctx.store.remove_user_role(&user.user_id, &role.id).await?;
        }
        if !ctx.json {
            let verb = if assign { "Gave" } else { "Took" };
            let preposition = if assign { "to" } else { "from" };
            println!(
                "{verb} role {} {preposition} {}.",
                role.name,
                user.email_or_id()
            );
        }
    }
    let roles = ctx.store.user_roles(&user.user_id).await?;
    if ctx.json {
        output::print_json(&roles.iter().map(wire::role).collect::<Vec<_>>());
    } else {
        let rows: Vec<Vec<String>> = roles
            .iter()
            .map(|r| vec![r.id.clone(), r.name.clone()])
            .collect();
        output::print_table(&["ROLE ID", "NAME"], &rows);
    }
    Ok(())
}

/// `tessera users consents list|revoke`. Revoking shows the consent page again at the
/// application's next authorization request and ends its refresh tokens for the user.
async fn consents(ctx: &Context, action: UserConsentsAction) -> CliResult<()> {
    let user = match &action {
        UserConsentsAction::List { user } | UserConsentsAction::Revoke { user, .. } => {
            find(&ctx.store, user).await?
        }
    };
    if let UserConsentsAction::Revoke { app, api, .. } = &action {
        let client = apps::find(&ctx.store, app).await?;
        // An API by identifier or id; otherwise the audience as listed (the userinfo
        // audience of consent given without an API).
        let audience = match api {
            Some(api) => Some(match ctx.store.find_resource_server(api).await? {
                Some(found) => found.identifier,
                None => api.clone(),
            }),
            None => None,
        };
        let revoked = ctx
            .store
            .revoke_consents(&user.user_id, &client.client_id, audience.as_deref(), now())
            .await?;
        if revoked.consents == 0 {
            let what = audience.map_or(String::new(), |a| format!(" for {a}"));
            return Err(CliError::NotFound(format!(
                "{} has no consent to {} ({}){what}",
                user.email_or_id(),
                client.name,
                client.client_id
            )));
        }
        if !ctx.json {
            println!(
                "Revoked {} consent(s) of {} to {}; {} refresh token famil{} ended.",
                revoked.consents,
                user.email_or_id(),
                client.name,
                revoked.refresh_families,
                if revoked.refresh_families == 1 {
                    "y"
                } else {
                    "ies"
                }
            );
        }
    }
    let consents = ctx.store.list_consents(&user.user_id).await?;
    if ctx.json {
        output::print_json(&consents.iter().map(output::consent).collect::<Vec<_>>());
    } else if consents.is_empty() {
        println!(
            "{} has not consented to any third-party application.",
            user.email_or_id()
        );
    } else {
        let rows: Vec<Vec<String>> = consents
            .iter()
            .map(|c| {
                vec![
                    c.client_id.clone(),
                    c.audience.clone(),
                    c.scopes.join(" "),
                    tessera_core::claims::rfc3339(c.updated_at),
                ]
            })
            .collect();
        output::print_table(&["CLIENT ID", "API", "SCOPES", "UPDATED"], &rows);
    }
    Ok(())
}

fn not_found_or(error: StoreError, key: &str) -> CliError {
    match error {
        StoreError::NotFound(_) => CliError::NotFound(format!("no user with id or email {key}")),
        other => CliError::Store(other),
    }
}

async fn create(
    ctx: &Context,
    email: &str,
    name: Option<String>,
    email_verified: bool,
) -> CliResult<()> {
    let email = crate::validate::email(email)?;
    let name = name
        .map(|n| crate::validate::person_name(&n, "user"))
        .transpose()?;
    if ctx.store.find_user_by_email(&email).await?.is_some() {
        return Err(CliError::Conflict(format!(
            "a user with email {email} already exists"
        )));
    }
    let password = read_password_stdin()?;
    check_password(&password)?;
    let password_hash = hash_password(password).await;
    let new = NewUser {
        email: email.clone(),
        password_hash,
        email_verified,
        name,
        nickname: None,
        picture: None,
        ..Default::default()
    };
    let user_id = format!("auth0|{}", ids::hex_id(12));
    let user = ctx
        .store
        .create_user(&new, &user_id, now())
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => {
                CliError::Conflict(format!("a user with email {email} already exists"))
            }
            other => CliError::Store(other),
        })?;
    print_user(ctx, &user, Some("Created user.")).await?;
    Ok(())
}

/// Prints a user; as JSON with the identities linked to it.
async fn print_user(ctx: &Context, user: &User, headline: Option<&str>) -> CliResult<()> {
    if ctx.json {
        let linked = ctx.store.linked_identities(&user.user_id).await?;
        output::print_json(&wire::user(user, &linked));
        return Ok(());
    }
    if let Some(headline) = headline {
        println!("{headline}");
    }
    output::print_fields(&output::user_fields(user));
    Ok(())
}

async fn list(ctx: &Context, args: &PageArgs) -> CliResult<()> {
    let page = ctx
        .store
        .list_users(&UserSearch::default(), args.slice(!ctx.json))
        .await?;
    let users = page.items;
    if ctx.json {
        let ids: Vec<&str> = users.iter().map(|u| u.user_id.as_str()).collect();
        let linked = ctx.store.linked_identities_of(&ids).await?;
        let shapes: Vec<_> = users.iter().map(|u| wire::user(u, &linked)).collect();
        output::print_json(&shapes);
    } else if users.is_empty() && args.page == 0 {
        println!(
            "No users yet. Create one with `tessera users create --email EMAIL --password-stdin`."
        );
    } else {
        let rows: Vec<Vec<String>> = users
            .iter()
            .map(|u| {
                vec![
                    u.user_id.clone(),
                    // Empty for a user without an email (an upstream's).
                    u.email.clone().unwrap_or_default(),
                    match (&u.email, u.email_verified) {
                        (None, _) => "",
                        (Some(_), true) => "yes",
                        (Some(_), false) => "no",
                    }
                    .to_string(),
                    if u.blocked { "blocked" } else { "" }.to_string(),
                ]
            })
            .collect();
        output::print_table(&["USER ID", "EMAIL", "VERIFIED", "STATUS"], &rows);
        output::print_page_footer(args, users.len(), page.total);
    }
    Ok(())
}

/// `users blocks USER [--lift]`: the user's brute-force lockouts (counted per email: a user
/// without one, an upstream's, has none), lifted first when asked.
async fn blocks(ctx: &Context, key: &str, lift: bool) -> CliResult<()> {
    let user = find(&ctx.store, key).await?;
    let Some(email) = &user.email else {
        return Err(CliError::Invalid(format!(
            "{} has no email address: there is nothing to lock out",
            user.user_id
        )));
    };
    if lift {
        ctx.store.clear_login_failures(email, None).await?;
    }
    let blocks = tessera_server::user_blocks_admin::blocks(&ctx.store, email).await?;
    if ctx.json {
        output::print_json(&blocks);
        return Ok(());
    }
    let networks: Vec<&str> = blocks["blocked_for"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|block| block["ip"].as_str().unwrap_or("every network"))
        .collect();
    match (lift, networks.is_empty()) {
        (true, _) => println!("Lifted the brute-force blocks of {email}."),
        (false, true) => println!("{email} is not locked out from any network."),
        (false, false) => {
            println!("{email} is locked out after too many failed logins from:");
            for network in networks {
                println!("  {network}");
            }
            println!("Lift with: tessera users blocks {email} --lift");
        }
    }
    Ok(())
}
