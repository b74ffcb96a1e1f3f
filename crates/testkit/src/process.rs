//! The real `tessera` binary as a child process: a fresh temporary database per test
//! (`Env`), and a spawned server whose output is watched for its address (`Running`).
//!
//! The binary's path is a parameter: Cargo tells only the CLI crate's own tests where it is
//! (`env!("CARGO_BIN_EXE_tessera")`), so they pass it in.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Environment variables that would leak the developer's configuration into a test.
const ENV_TO_CLEAR: [&str; 19] = [
    "TESSERA_CONFIG",
    "TESSERA_TRUSTED_PROXIES",
    "TESSERA_METRICS_LISTEN",
    "TESSERA_PROXY_CONFIG",
    "TESSERA_PROXY_ISSUER",
    "TESSERA_PROXY_AUDIENCE",
    "TESSERA_PROXY_UPSTREAM",
    "TESSERA_PROXY_LISTEN",
    "TESSERA_PROXY_UPSTREAM_TIMEOUT",
    "TESSERA_PROXY_STRIP_AUTHORIZATION",
    "TESSERA_PROXY_TLS_CERT",
    "TESSERA_PROXY_TLS_KEY",
    "TESSERA_ISSUER",
    "TESSERA_LISTEN",
    "TESSERA_DATABASE_URL",
    "TESSERA_MASTER_KEY",
    "TESSERA_MASTER_KEY_FILE",
    "TESSERA_DEMO_PASSWORD",
    "RUST_LOG",
];

/// A temporary directory with its own database, and the `tessera` binary to run on it.
pub struct Env {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Env {
    /// `bin`: the path of the `tessera` binary (`env!("CARGO_BIN_EXE_tessera")`).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Env {
            dir: tempfile::tempdir().expect("a temporary directory"),
            bin: bin.into(),
        }
    }

    /// The `tessera` binary this environment runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.path().join("tessera.db").display())
    }

    /// A `tessera` command running in the temp dir with a clean environment and
    /// TESSERA_DATABASE_URL pointing at this test's database.
    pub fn command(&self) -> Command {
        self.prepared(Command::new(&self.bin))
    }

    /// Like `command`, with `tessera` started by `wrapper` (e.g. `["strace", "-f", "--"]`),
    /// which gets the same directory and clean environment and passes them on.
    pub fn command_under(&self, wrapper: &[&str]) -> Command {
        let (program, args) = wrapper.split_first().expect("a wrapper program");
        let mut command = Command::new(program);
        command.args(args).arg(&self.bin);
        self.prepared(command)
    }

    fn prepared(&self, mut command: Command) -> Command {
        command.current_dir(self.path());
        for var in ENV_TO_CLEAR {
            command.env_remove(var);
        }
        command.env("TESSERA_DATABASE_URL", self.database_url());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tessera binary runs");
        {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            if let Some(text) = stdin {
                pipe.write_all(text.as_bytes())
                    .expect("stdin accepts the input");
            }
        }
        child
            .wait_with_output()
            .expect("the tessera binary finishes")
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_success(args, &output);
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Like `ok`, with `stdin` as the command's input (e.g. for `--password-stdin`).
    pub fn ok_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        let output = self.run_with_stdin(args, Some(stdin));
        assert_success(args, &output);
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Runs a command with `--json` that must succeed and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).expect("--json prints JSON")
    }

    /// A machine-to-machine application made with `tessera apps create` and granted `scopes`
    /// (comma-separated) on `audience` with `tessera grants create`: (client_id, secret).
    /// `options` go to both commands (e.g. `--database-url URL`).
    pub fn m2m_app(
        &self,
        name: &str,
        audience: &str,
        scopes: &str,
        options: &[&str],
    ) -> (String, String) {
        let create = [
            &["apps", "create", "--name", name, "--type", "m2m"],
            options,
        ]
        .concat();
        let app = self.json(&create);
        let client_id = app["client_id"].as_str().expect("a client_id");
        let grant = [
            &[
                "grants", "create", "--app", client_id, "--api", audience, "--scopes", scopes,
            ],
            options,
        ]
        .concat();
        self.json(&grant);
        let secret = app["client_secret"].as_str().expect("a client_secret");
        (client_id.to_string(), secret.to_string())
    }

    /// Runs a command that must fail; returns (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        self.fails_with_stdin(args, None)
    }

    pub fn fails_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> (i32, String) {
        let output = self.run_with_stdin(args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(
            !output.status.success(),
            "tessera {args:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        (output.status.code().unwrap_or(-1), stderr)
    }
}

pub fn assert_success(args: &[&str], output: &Output) {
    assert!(
        output.status.success(),
        "tessera {args:?} failed ({:?})\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A child process killed when dropped, with its output lines delivered on a channel.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Running {
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the tessera binary runs");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        for pipe in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let sender = sender.clone();
            // Keeps draining after the test stopped listening, so the child never blocks.
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        Running { child, lines }
    }

    /// Waits (at most `timeout`) for a line containing `needle`; returns the lines seen.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "no line containing {needle:?} within {timeout:?} (exit: {status:?}); output:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    /// Waits for `tessera serve`'s "listening on http://ADDR" line and returns the base URL.
    pub fn wait_listening(&mut self) -> String {
        let lines = self.wait_for("listening on http://", Duration::from_secs(10));
        let line = lines.last().expect("the line was found").clone();
        self.base_url_in(&line)
    }

    /// Sends SIGTERM and waits (at most `timeout`, polling) for the process to exit; its
    /// exit status. Panics when it does not exit in time.
    pub fn stop_with_sigterm(&mut self, timeout: Duration) -> std::process::ExitStatus {
        terminate(&self.child);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit within {timeout:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The base URL in a "listening on http://ADDR" line.
    pub fn base_url_in(&self, line: &str) -> String {
        let start = line.find("http://").expect("a URL");
        line[start..]
            .split_whitespace()
            .next()
            .expect("a URL")
            .to_string()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM (through kill(1): the tests have no libc binding).
pub fn terminate(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}
