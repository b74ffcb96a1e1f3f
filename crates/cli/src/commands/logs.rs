//! `tessera logs tail`: the audit log read from the database by checkpoint, as
//! `GET /api/v2/logs?from=…` reads it — the latest events first, then every new one, each
//! read after the last `log_id` printed (so a restart with `--from` misses nothing).
//! `--json` prints one event a line in the Management API's shape (JSON lines).

use std::time::Duration;

use tessera_server::wire;
use tessera_store::{LogEntry, LogSearch, Slice, log_id_number};

use super::Context;
use crate::cli::LogsAction;
use crate::error::{CliError, CliResult};

/// Events read per query while following.
const TAKE: u32 = 100;

pub async fn run(ctx: &Context, action: LogsAction) -> CliResult<()> {
    match action {
        LogsAction::Tail {
            log_type,
            lines,
            from,
            no_follow,
            interval,
        } => {
            tail(
                ctx,
                log_type.as_deref(),
                (lines, from.as_deref()),
                (!no_follow).then(|| Duration::from_millis(interval)),
            )
            .await
        }
    }
}

async fn tail(
    ctx: &Context,
    log_type: Option<&str>,
    (lines, from): (u32, Option<&str>),
    follow: Option<Duration>,
) -> CliResult<()> {
    if let Some(log_type) = log_type
        && (log_type.is_empty()
            || log_type.len() > 32
            || !log_type
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(CliError::invalid(
            "--type takes an event type such as s, fp or sapi (letters, digits and _)",
        ));
    }
    let mut after = match from {
        Some(text) => Some(log_id_number(text).ok_or_else(|| {
            CliError::invalid("--from takes a log_id (digits, as printed by tessera logs tail)")
        })?),
        None => None,
    };
    if from.is_none() {
        // The latest `lines`, oldest of them first; then on from the newest there is.
        let search = LogSearch {
            log_type: log_type.map(str::to_string),
            ..LogSearch::default()
        };
        let mut latest = ctx
            .store
            .search_logs(&search, Slice::first(lines.max(1)))
            .await?
            .items;
        after = latest
            .first()
            .and_then(|entry| log_id_number(&entry.log_id))
            .or(Some(0));
        latest.truncate(lines as usize);
        latest.reverse();
        print(ctx, &latest);
    }
    if follow.is_some() {
        // On stderr, so that stdout stays the events alone (JSON lines with --json).
        eprintln!(
            "following the audit log after log_id {:020} (Ctrl-C to stop)",
            after.unwrap_or(0)
        );
    }
    loop {
        let page = ctx.store.logs_after(after, TAKE, log_type).await?;
        if let Some(last) = page.last() {
            after = log_id_number(&last.log_id);
        }
        print(ctx, &page);
        if page.len() < TAKE as usize {
            let Some(interval) = follow else {
                return Ok(());
            };
            tokio::time::sleep(interval).await;
        }
    }
}

fn print(ctx: &Context, entries: &[LogEntry]) {
    for entry in entries {
        let event = wire::log_event(entry);
        if ctx.json {
            println!(
                "{}",
                serde_json::to_string(&event).expect("wire shapes serialize")
            );
            continue;
        }
        let mut line = format!("{}  {}  {:<8}", event.date, event.log_id, event.log_type);
        if let Some(description) = &event.description {
            line.push_str(&format!("  {description}"));
        }
        for (name, value) in [
            ("user", &event.user_id),
            ("name", &event.user_name),
            ("client", &event.client_id),
            ("ip", &event.ip),
        ] {
            if let Some(value) = value {
                line.push_str(&format!("  {name}={value}"));
            }
        }
        // One event, one line: no control character from a user agent or a typed name.
        let line: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        println!("{line}");
    }
}
