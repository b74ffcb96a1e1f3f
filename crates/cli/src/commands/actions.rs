//! `tessera actions …`: Auth0 Actions on the database directly, with the rules and the
//! sealing the Management API uses (`tessera_server::actions_admin`). Secrets are read
//! from `--secret NAME=VALUE`, sealed with the master key, and never printed.

use std::path::Path;

use serde_json::json;
use tessera_actions::{Engine, Job, Limits, Trigger};
use tessera_server::actions_admin as policy;
use tessera_server::wire;
use tessera_store::{
    ActionFilter, ActionRecord, ActionUpdate, NewAction, NewBinding, Slice, Store, StoreError,
};

use crate::cli::{ActionCreate, ActionUpdateArgs, ActionsAction};
use crate::commands::{Context, now};
use crate::config::resolve_master_key;
use crate::error::{CliError, CliResult};
use crate::output;

pub async fn run(ctx: &Context, action: ActionsAction) -> CliResult<()> {
    match action {
        ActionsAction::Create(args) => create(ctx, args).await,
        ActionsAction::Update(args) => update(ctx, args).await,
        ActionsAction::Deploy { action } => {
            let found = find(&ctx.store, &action).await?;
            let version = ctx
                .store
                .deploy_action(&found.id, &policy::new_version_id(), now())
                .await?;
            let found = find(&ctx.store, &found.id).await?;
            if ctx.json {
                output::print_json(&wire::action_version(&version, &found, true));
            } else {
                println!("Deployed {} as version {}.", found.name, version.number);
            }
            Ok(())
        }
        ActionsAction::List { trigger, page } => {
            if let Some(trigger) = &trigger {
                policy::trigger(trigger, None).map_err(CliError::Invalid)?;
            }
            let filter = ActionFilter {
                trigger_id: trigger,
                ..Default::default()
            };
            let listed = ctx
                .store
                .list_actions(&filter, page.slice(!ctx.json))
                .await?;
            if ctx.json {
                output::print_json(&listed.items.iter().map(wire::action).collect::<Vec<_>>());
            } else {
                let rows: Vec<Vec<String>> = listed
                    .items
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.clone(),
                            a.name.clone(),
                            a.trigger_id.clone(),
                            deployed(a),
                        ]
                    })
                    .collect();
                output::print_table(&["ID", "NAME", "TRIGGER", "DEPLOYED"], &rows);
                output::print_page_footer(&page, listed.items.len(), listed.total);
            }
            Ok(())
        }
        ActionsAction::Show { action } => {
            let found = find(&ctx.store, &action).await?;
            if ctx.json {
                output::print_json(&wire::action(&found));
            } else {
                let secrets: Vec<&str> = found.secrets.iter().map(|s| s.name.as_str()).collect();
                output::print_fields(&[
                    ("id", found.id.clone()),
                    ("name", found.name.clone()),
                    ("trigger", found.trigger_id.clone()),
                    ("runtime", found.runtime.clone()),
                    ("deployed", deployed(&found)),
                    (
                        "all changes deployed",
                        found.all_changes_deployed.to_string(),
                    ),
                    ("secrets", secrets.join(", ")),
                ]);
                println!("\n{}", found.code);
            }
            Ok(())
        }
        ActionsAction::Delete { action, force } => {
            let found = find(&ctx.store, &action).await?;
            ctx.store
                .delete_action(&found.id, force)
                .await
                .map_err(|error| match error {
                    StoreError::Conflict(_) => CliError::Conflict(format!(
                        "action {} is bound to a trigger: unbind it (tessera actions bind {} …) or delete with --force",
                        found.name, found.trigger_id
                    )),
                    other => CliError::Store(other),
                })?;
            if ctx.json {
                output::print_json(&wire::action(&found));
            } else {
                println!("Deleted action {}.", found.name);
            }
            Ok(())
        }
        ActionsAction::Bind { trigger, actions } => bind(ctx, &trigger, &actions).await,
        ActionsAction::Test { action, event } => test(ctx, &action, &event).await,
    }
}

fn deployed(action: &ActionRecord) -> String {
    match &action.deployed_version {
        Some(version) => format!("version {}", version.number),
        None => "no".into(),
    }
}

/// The action with this id (`act_…`) or name.
async fn find(store: &Store, id_or_name: &str) -> CliResult<ActionRecord> {
    if let Some(found) = store.find_action(id_or_name).await? {
        return Ok(found);
    }
    store
        .find_action_by_name(id_or_name)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("no action with id or name {id_or_name}")))
}

fn read_code(path: &Path) -> CliResult<String> {
    let code = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    policy::code(&code, "the action's code").map_err(CliError::Invalid)?;
    Ok(code)
}

/// `NAME=VALUE` pairs, checked; the message never quotes a value.
fn secrets(pairs: &[String]) -> CliResult<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(CliError::Invalid("--secret takes NAME=VALUE".to_string()));
        };
        let name = policy::secret_name(name).map_err(CliError::Invalid)?;
        policy::secret_value(&name, value).map_err(CliError::Invalid)?;
        if out.iter().any(|(seen, _)| *seen == name) {
            return Err(CliError::Invalid(format!(
                "the secret {name} is given twice"
            )));
        }
        out.push((name, value.to_string()));
    }
    if out.len() > policy::MAX_SECRETS {
        return Err(CliError::Invalid(format!(
            "at most {} secrets are allowed",
            policy::MAX_SECRETS
        )));
    }
    Ok(out)
}

async fn create(ctx: &Context, args: ActionCreate) -> CliResult<()> {
    let name = policy::action_name(&args.name).map_err(CliError::Invalid)?;
    let trigger = policy::trigger(&args.trigger, None).map_err(CliError::Invalid)?;
    let code = read_code(&args.code)?;
    let runtime = policy::runtime(&args.runtime).map_err(CliError::Invalid)?;
    let given = secrets(&args.secrets)?;
    let master_key = resolve_master_key(&ctx.settings, &ctx.store).await?;
    let id = policy::new_action_id();
    let sealed = given
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                policy::seal_secret(&master_key, &id, name, value),
            )
        })
        .collect();
    let action = NewAction {
        id: id.clone(),
        name: name.clone(),
        trigger_id: trigger.id().to_string(),
        trigger_version: trigger.version().to_string(),
        code,
        dependencies: json!([]),
        runtime,
        secrets: sealed,
        now: now(),
    };
    ctx.store
        .create_action(&action)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => {
                CliError::Conflict(format!("an action named {name} already exists"))
            }
            other => CliError::Store(other),
        })?;
    let created = find(&ctx.store, &id).await?;
    if ctx.json {
        output::print_json(&wire::action(&created));
    } else {
        println!(
            "Created action {} ({}) for {}. Deploy it with: tessera actions deploy {}",
            created.name, created.id, created.trigger_id, created.name
        );
    }
    Ok(())
}

/// `update NAME [--code FILE] [--secret K=V]… [--remove-secret K]…`: secrets given are
/// set, the others kept unless removed.
async fn update(ctx: &Context, args: ActionUpdateArgs) -> CliResult<()> {
    let found = find(&ctx.store, &args.action).await?;
    let code = args.code.as_deref().map(read_code).transpose()?;
    let name = args
        .name
        .as_deref()
        .map(|n| policy::action_name(n).map_err(CliError::Invalid))
        .transpose()?;
    let given = secrets(&args.secrets)?;
    let secrets = if given.is_empty() && args.remove_secrets.is_empty() {
        None
    } else {
        let master_key = resolve_master_key(&ctx.settings, &ctx.store).await?;
        let mut list: Vec<(String, Option<Vec<u8>>)> = found
            .secrets
            .iter()
            .filter(|s| !args.remove_secrets.contains(&s.name))
            .filter(|s| !given.iter().any(|(name, _)| *name == s.name))
            .map(|s| (s.name.clone(), None))
            .collect();
        for (name, value) in &given {
            list.push((
                name.clone(),
                Some(policy::seal_secret(&master_key, &found.id, name, value)),
            ));
        }
        Some(list)
    };
    let update = ActionUpdate {
        name,
        code,
        secrets,
        ..Default::default()
    };
    let updated = ctx
        .store
        .update_action(&found.id, &update, now())
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => {
                CliError::Conflict("another action already has this name".to_string())
            }
            other => CliError::Store(other),
        })?;
    if ctx.json {
        output::print_json(&wire::action(&updated));
    } else {
        println!(
            "Updated action {}. Deploy it with: tessera actions deploy {}",
            updated.name, updated.name
        );
    }
    Ok(())
}

/// `bind TRIGGER NAME…`: the trigger runs these actions, in this order (none: nothing).
async fn bind(ctx: &Context, trigger: &str, names: &[String]) -> CliResult<()> {
    let trigger = policy::trigger(trigger, None).map_err(CliError::Invalid)?;
    let mut bindings: Vec<NewBinding> = Vec::with_capacity(names.len());
    for name in names {
        let found = find(&ctx.store, name).await?;
        if found.trigger_id != trigger.id() {
            return Err(CliError::Invalid(format!(
                "action {} supports {}, not {}",
                found.name,
                found.trigger_id,
                trigger.id()
            )));
        }
        if found.deployed_version.is_none() {
            return Err(CliError::Invalid(format!(
                "action {} is not deployed: tessera actions deploy {}",
                found.name, found.name
            )));
        }
        if bindings.iter().any(|b| b.action_id == found.id) {
            return Err(CliError::Invalid(format!(
                "action {} is named twice",
                found.name
            )));
        }
        bindings.push(NewBinding {
            action_id: found.id.clone(),
            display_name: found.name.clone(),
        });
    }
    ctx.store
        .replace_trigger_bindings(trigger.id(), &bindings, &mut policy::new_binding_id, now())
        .await?;
    let bound = ctx
        .store
        .list_trigger_bindings(trigger.id(), Slice::first(100))
        .await?;
    if ctx.json {
        output::print_json(&bound.items.iter().map(wire::binding).collect::<Vec<_>>());
    } else if bound.items.is_empty() {
        println!("{} runs no action.", trigger.id());
    } else {
        let shown: Vec<&str> = bound.items.iter().map(|b| b.action.name.as_str()).collect();
        println!("{} runs, in order: {}.", trigger.id(), shown.join(", "));
    }
    Ok(())
}

/// `test NAME --event FILE`: runs the draft on the event, changes nothing.
async fn test(ctx: &Context, action: &str, event: &Path) -> CliResult<()> {
    let found = find(&ctx.store, action).await?;
    let text = std::fs::read_to_string(event).map_err(|source| CliError::Io {
        context: format!("reading {}", event.display()),
        source,
    })?;
    let mut event: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Invalid(format!("{} is not JSON: {e}", event.display())))?;
    let Some(members) = event.as_object_mut() else {
        return Err(CliError::Invalid("the event must be a JSON object".into()));
    };
    members.remove("secrets");
    let trigger = Trigger::parse(&found.trigger_id)
        .ok_or_else(|| CliError::Invalid("the action's trigger is not one Tessera runs".into()))?;
    let master_key = resolve_master_key(&ctx.settings, &ctx.store).await?;
    let sealed = ctx.store.action_draft_secrets(&found.id).await?;
    let engine = Engine::start(Limits::default());
    let job = Job {
        trigger,
        event,
        rules: Vec::new(),
        configuration: Default::default(),
        actions: vec![tessera_actions::Action {
            id: found.id.clone(),
            name: found.name.clone(),
            code: found.code.clone(),
            secrets: policy::open_secrets_with(&master_key, &found.id, &sealed),
        }],
        redirect: None,
    };
    let outcome = engine
        .run(job)
        .await
        .map_err(|error| CliError::Invalid(format!("the action could not be tested: {error}")))?;
    let logs: String = outcome.logs.iter().map(|l| l.stdout.as_str()).collect();
    let mut result = json!({
        "logs": logs,
        "access_token_claims": outcome.access_token_claims,
        "id_token_claims": outcome.id_token_claims,
        "added_scopes": outcome.added_scopes,
        "removed_scopes": outcome.removed_scopes,
        "app_metadata": outcome.app_metadata,
        "user_metadata": outcome.user_metadata,
        "denied": outcome.denied.as_ref().map(|d| {
            // What a denial ends besides the login, as the Management API's test says it.
            let mut denied = json!({"code": d.code, "reason": d.reason});
            if d.revoke_refresh_token {
                denied["refresh_token_revoked"] = json!(true);
            }
            if let Some(keep) = d.end_session {
                denied["session_revoked"] = json!({ "preserve_refresh_tokens": keep });
            }
            denied
        }),
        "failed": outcome.failed.as_ref().map(|f| f.message.clone()),
    });
    // The ends an action asked (milliseconds, as given): they only ever shorten.
    for (name, asked) in [
        ("session_expires_at", outcome.session_expires_at),
        ("session_idle_expires_at", outcome.session_idle_expires_at),
        ("refresh_token_expires_at", outcome.refresh_token_expires_at),
        (
            "refresh_token_idle_expires_at",
            outcome.refresh_token_idle_expires_at,
        ),
    ] {
        if let Some(at) = asked {
            result[name] = json!(at);
        }
    }
    // The session's metadata as the action leaves it, when it changed it (the event must
    // have a `session` for that).
    if let Some(metadata) = &outcome.session_metadata {
        result["session_metadata"] = json!(metadata);
    }
    // The refresh token's: the exchanged one's (the event has a `refresh_token`) or the one
    // a login issues.
    if let Some(metadata) = &outcome.refresh_token_metadata {
        result["refresh_token_metadata"] = json!(metadata);
    }
    output::print_json(&result);
    if outcome.failed.is_some() {
        return Err(CliError::Invalid(format!("action {} failed", found.name)));
    }
    Ok(())
}
