//! The files in `deploy/` are what a production install runs, so they are run here: the
//! systemd unit's `ExecStart` (with this build's binary) on the example `tessera.toml`
//! starts a server with the example's issuer, its environment file optional, and SIGTERM —
//! the unit's `KillSignal` — stops it cleanly.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tessera_testkit::process::{Env, Running};

use crate::TESSERA;

fn deploy(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of `key=` in the unit's `[Service]` section.
fn service_setting(unit: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    unit.lines()
        .skip_while(|line| line.trim() != "[Service]")
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in [Service]"))
        .to_string()
}

#[tokio::test]
async fn the_systemd_unit_starts_the_example_settings_and_stops_on_its_signal() {
    let unit = deploy("tessera.service");
    assert_eq!(service_setting(&unit, "KillSignal"), "SIGTERM");
    let exec: Vec<String> = service_setting(&unit, "ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/tessera", "{exec:?}");
    assert_eq!(&exec[1..3], ["serve", "--config"], "{exec:?}");
    assert_eq!(exec[3], "/etc/tessera/tessera.toml");
    assert!(
        service_setting(&unit, "EnvironmentFile").starts_with('-'),
        "the secrets file is optional (a master key may come from elsewhere)"
    );

    // The example settings, with this machine's paths and ports in place of the install's.
    let env = Env::new(TESSERA);
    let settings = deploy("tessera.toml");
    assert!(settings.contains("database_url = \"sqlite:///var/lib/tessera/tessera.db\""));
    let config = env.path().join("tessera.toml");
    std::fs::write(&config, &settings).unwrap();
    let mut command = env.command();
    command.args(&exec[1..3]).arg(&config).args([
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--database-url",
        &env.database_url(),
    ]);
    let mut server = Running::spawn(command);
    let lines = server.wait_for("listening on http://", Duration::from_secs(10));
    let line = lines.last().unwrap();
    assert!(
        line.contains("(issuer https://auth.example.com/)"),
        "{line}"
    );
    let base = server.base_url_in(line);
    let discovery: Value = reqwest::get(format!("{base}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], "https://auth.example.com/");

    let status = server.stop_with_sigterm(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}
