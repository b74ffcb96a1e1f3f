//! `tessera logs tail` through the real binary: the latest events, then new ones as they
//! are written (read by checkpoint from the database), `--type`, `--json` lines,
//! `--from` resuming after a printed id, and bad arguments refused.

use std::time::Duration;

use serde_json::{Value, json};
use tessera_store::{LogEvent, Store};
use tessera_testkit::process::{Env, Running, terminate};

use crate::TESSERA;

fn event(log_type: &str, description: &str) -> LogEvent {
    LogEvent {
        date: 1_764_972_000_000,
        log_type: log_type.into(),
        description: Some(description.into()),
        user_id: Some("auth0|someone".into()),
        user_agent: Some("line\nbreak".into()),
        details: json!({}),
        ..Default::default()
    }
}

fn json_lines(output: &str) -> Vec<Value> {
    output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_prints_the_latest_events_then_follows_new_ones() {
    let env = Env::new(TESSERA);
    // The database with its tables: any admin command creates it.
    env.ok(&["keys", "list"]);
    let store = Store::connect(&env.database_url()).await.unwrap();
    let first: Vec<LogEvent> = (1..=5)
        .map(|n| event(if n % 2 == 0 { "fp" } else { "s" }, &format!("event {n}")))
        .collect();
    store.append_logs(&first).await.unwrap();

    // Without following: the latest N, oldest of them first.
    let printed = json_lines(&env.ok(&["logs", "tail", "--no-follow", "--lines", "3", "--json"]));
    let descriptions: Vec<&str> = printed
        .iter()
        .map(|e| e["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions, ["event 3", "event 4", "event 5"]);
    assert_eq!(printed[0]["type"], "s");
    assert_eq!(printed[0]["date"], "2025-12-05T22:00:00.000Z");
    let failures = json_lines(&env.ok(&["logs", "tail", "--no-follow", "--type", "fp", "--json"]));
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|e| e["type"] == "fp"));
    // Resuming after a printed id prints what followed it.
    let from = printed[0]["log_id"].as_str().unwrap();
    let resumed = json_lines(&env.ok(&["logs", "tail", "--no-follow", "--from", from, "--json"]));
    assert_eq!(resumed.len(), 2);
    assert_eq!(resumed[0]["description"], "event 4");
    // Text: one line per event, no control character from a field.
    let text = env.ok(&["logs", "tail", "--no-follow", "--lines", "1"]);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("event 5") && text.contains("user=auth0|someone"),
        "{text}"
    );

    // Following: new events show up as they are written, only of the type asked for.
    let mut command = env.command();
    command.args([
        "logs",
        "tail",
        "--type",
        "s",
        "--lines",
        "0",
        "--interval",
        "50",
        "--json",
    ]);
    let mut running = Running::spawn(command);
    running.wait_for("following the audit log after", Duration::from_secs(20));
    store
        .append_logs(&[event("fp", "not this one"), event("s", "followed 1")])
        .await
        .unwrap();
    let seen = running.wait_for("followed 1", Duration::from_secs(20));
    store
        .append_logs(&[event("s", "followed 2")])
        .await
        .unwrap();
    let more = running.wait_for("followed 2", Duration::from_secs(20));
    terminate(&running.child);
    let _ = running.child.wait();
    let all: Vec<String> = seen.into_iter().chain(more).collect();
    assert!(
        !all.iter().any(|line| line.contains("not this one")),
        "{all:?}"
    );
    assert!(
        !all.iter().any(|line| line.contains("event ")),
        "--lines 0: {all:?}"
    );
}

#[test]
fn bad_arguments_are_refused() {
    let env = Env::new(TESSERA);
    for args in [
        &["logs", "tail", "--no-follow", "--from", "abc"][..],
        &["logs", "tail", "--no-follow", "--from", "-1"],
        &[
            "logs",
            "tail",
            "--no-follow",
            "--type",
            "s'; DROP TABLE logs",
        ],
        &["logs", "tail", "--no-follow", "--lines", "100000"],
        &["logs", "tail", "--interval", "0"],
    ] {
        let (code, stderr) = env.fails(args);
        assert_ne!(code, 0, "{args:?}");
        assert!(!stderr.is_empty(), "{args:?}");
    }
}
