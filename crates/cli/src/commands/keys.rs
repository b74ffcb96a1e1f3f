//! `tessera keys …`: signing keys. `rotate` (and `list` on a database without keys)
//! needs the master key, resolved as `serve` resolves it; keys are created when missing,
//! and the master key must open the existing ones before anything is changed.

use serde::Serialize;
use tessera_core::claims::rfc3339;
use tessera_jose::MasterKey;
use tessera_server::keys;
use tessera_store::KeyState;

use crate::cli::KeysAction;
use crate::commands::{Context, now};
use crate::config::resolve_master_key;
use crate::error::CliResult;
use crate::{output, validate};

pub async fn run(ctx: &Context, action: KeysAction) -> CliResult<()> {
    match action {
        KeysAction::List => {
            // Listing needs no secret; only a database without keys needs the master
            // key, to create them.
            if ctx.store.all_keys().await?.is_empty() {
                prepare(ctx).await?;
            }
            list(ctx).await
        }
        KeysAction::Rotate { alg } => {
            let alg = validate::signing_alg(&alg)?;
            let master = prepare(ctx).await?;
            keys::rotate(&ctx.store, &master, alg, now()).await?;
            let published = ctx.store.published_keys().await?;
            let kid_in = |state: KeyState| {
                published
                    .iter()
                    .find(|k| k.alg == alg.as_str() && k.state == state)
                    .map(|k| k.kid.clone())
            };
            let rotated = Rotation {
                alg: alg.as_str(),
                current: kid_in(KeyState::Current),
                next: kid_in(KeyState::Next),
                previous: kid_in(KeyState::Previous),
            };
            if ctx.json {
                output::print_json(&rotated);
            } else {
                println!(
                    "Rotated the {} signing keys; running servers pick this up within a second.",
                    rotated.alg
                );
                let show = |kid: &Option<String>| kid.clone().unwrap_or_else(|| "(none)".into());
                output::print_fields(&[
                    ("current", show(&rotated.current)),
                    ("next", show(&rotated.next)),
                    ("previous", show(&rotated.previous)),
                ]);
            }
            Ok(())
        }
    }
}

#[derive(Debug, Serialize)]
struct Rotation {
    alg: &'static str,
    current: Option<String>,
    next: Option<String>,
    previous: Option<String>,
}

/// Resolves the master key, creates missing keys, and proves the master key opens the
/// published ones (so a rotation never mixes keys sealed with different master keys).
async fn prepare(ctx: &Context) -> CliResult<MasterKey> {
    let master = resolve_master_key(&ctx.settings, &ctx.store).await?;
    keys::ensure_signing_keys(&ctx.store, &master, now()).await?;
    keys::load_key_set(&ctx.store, &master).await?;
    Ok(master)
}

async fn list(ctx: &Context) -> CliResult<()> {
    let mut all = ctx.store.all_keys().await?;
    // RS256 first (the default), then by algorithm; within one: current, next, previous, retired.
    let rank = |state: KeyState| match state {
        KeyState::Current => 0,
        KeyState::Next => 1,
        KeyState::Previous => 2,
        KeyState::Retired => 3,
    };
    all.sort_by(|a, b| {
        (
            a.alg != "RS256",
            &a.alg,
            rank(a.state),
            std::cmp::Reverse(a.created_at),
        )
            .cmp(&(
                b.alg != "RS256",
                &b.alg,
                rank(b.state),
                std::cmp::Reverse(b.created_at),
            ))
    });
    if ctx.json {
        let shapes: Vec<_> = all.iter().map(output::signing_key).collect();
        output::print_json(&shapes);
    } else {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|k| {
                vec![
                    k.kid.clone(),
                    k.alg.clone(),
                    k.state.as_str().to_string(),
                    rfc3339(k.created_at),
                ]
            })
            .collect();
        output::print_table(&["KID", "ALG", "STATE", "CREATED"], &rows);
    }
    Ok(())
}
