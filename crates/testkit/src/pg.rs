//! A throwaway PostgreSQL server for tests — a real one, never a mock.
//!
//! `PgServer::start()` runs `initdb` into a temporary directory and `postgres` on a free port
//! of 127.0.0.1 (`fsync=off`: nothing here needs to survive a power cut, but commits are
//! synchronous, so `crash()` loses no acknowledged write), waits until it
//! accepts connections, and `database()` creates a fresh database (`createdb`) for each caller. Dropping
//! the server stops it and deletes its directory; the server also gets `SIGKILL` if the
//! thread that started it dies first (`setpriv --pdeathsig`), so no test leaves one behind.
//! Start it from the test's own thread, not from `spawn_blocking`.
//!
//! The binaries are looked up on `PATH`, then in `/usr/lib/postgresql/*/bin` (Debian). As
//! root — here and in CI — they run as the `postgres` user, since PostgreSQL refuses root.
//! Without PostgreSQL the test fails and says how to install it.
//!
//! Shared by the store, server and CLI tests through `tessera-testkit`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    tls: bool,
}

const INSTALL_HINT: &str = "PostgreSQL is not installed, but these tests need a real PostgreSQL \
server: install it (Debian/Ubuntu: `apt-get install postgresql`; scripts/test.sh does it) or put \
the directory holding `initdb` and `postgres` on PATH";

impl PgServer {
    /// A new, empty, running cluster. Panics (the test fails) when PostgreSQL is missing or
    /// does not start, with the reason.
    pub fn start() -> PgServer {
        PgServer::start_with(None)
    }

    /// A running cluster that accepts TCP connections only over TLS (`hostssl` in
    /// `pg_hba.conf`; a plaintext client is refused), with this certificate chain and key.
    pub fn start_with_tls(certificate_pem: &str, key_pem: &str) -> PgServer {
        PgServer::start_with(Some((certificate_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> PgServer {
        let bin = find_bin_dir().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
        let run_as = if effective_uid() == Some(0) {
            Some(postgres_user().unwrap_or_else(|| {
                panic!(
                    "running as root, and PostgreSQL refuses to run as root: these tests run it \
                     as the `postgres` user, which does not exist here (the Debian package \
                     `postgresql` creates it)"
                )
            }))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("tessera-pg-")
            .tempdir()
            .expect("a temporary directory");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the temporary directory to postgres");
        }
        let port = free_port();
        let mut server = PgServer {
            bin,
            dir,
            port,
            run_as,
            child: None,
            tls: tls.is_some(),
        };
        server.initdb();
        if let Some((certificate_pem, key_pem)) = tls {
            server.install_tls(certificate_pem, key_pem);
        }
        std::fs::create_dir(server.dir.path().join("sock")).expect("socket directory");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(server.dir.path().join("sock"), Some(uid), Some(gid))
                .expect("chown the socket directory");
        }
        server.resume();
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the server's Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a fresh database (with `createdb`) and returns its URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("tessera_test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let output = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg(&name)
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .output()
            .expect("run createdb");
        assert!(
            output.status.success(),
            "createdb failed: {}{}",
            String::from_utf8_lossy(&output.stderr),
            self.log_tail()
        );
        self.url(&name)
    }

    /// Fast shutdown (what a restart or failover does to clients: their sessions end with
    /// `57P01 admin_shutdown`), waiting until the server is gone.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A crash (the OOM killer, `kill -9`): SIGKILL to the postmaster and every process it
    /// started, waiting until they are gone. `resume()` then starts with crash recovery.
    pub fn crash(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Stopped first, the postmaster forks no new backend while its children are listed.
        let postmaster = child.id().to_string();
        let _ = Command::new("kill").args(["-STOP", &postmaster]).status();
        let mut doomed = children_of(child.id());
        doomed.push(child.id());
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(doomed.iter().map(u32::to_string))
            .status();
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(30);
        while doomed.iter().any(|&pid| is_alive(pid)) {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL's processes outlived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same directory and port; returns once it is ready.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "the server is running already");
        let data = self.dir.path().join("data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .expect("log file");
        let child = self
            .command(&self.bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(self.dir.path().join("sock"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=60"])
            .args(if self.tls {
                &["-c", "ssl=on"][..]
            } else {
                &[][..]
            })
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        self.child = Some(child);
        self.wait_ready(&data);
    }

    fn wait_ready(&mut self, data: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The postmaster writes "ready" into postmaster.pid once it accepts connections.
            let status = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
            if status.lines().any(|line| line.trim() == "ready") {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                self.child = None;
                panic!(
                    "the test PostgreSQL did not start ({}): {}",
                    exited.map_or("timeout".to_string(), |status| status.to_string()),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn initdb(&self) {
        let output = self
            .command(&self.bin.join("initdb"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .args(["--encoding=UTF8", "--no-locale"])
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Puts the certificate and key in the data directory (where `ssl=on` looks for them;
    /// the key readable by the server's user only, or PostgreSQL refuses it) and lets TCP
    /// clients in over TLS only.
    fn install_tls(&self, certificate_pem: &str, key_pem: &str) {
        let data = self.dir.path().join("data");
        for (name, contents) in [("server.crt", certificate_pem), ("server.key", key_pem)] {
            let path = data.join(name);
            std::fs::write(&path, contents).expect("write the server's TLS files");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod the server's TLS files");
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .expect("chown the server's TLS files");
            }
        }
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
    }

    /// `program` as the `postgres` user when we are root, killed if our thread dies.
    fn command(&self, program: &Path) -> Command {
        let mut command = if has_setpriv() {
            let mut command = Command::new("setpriv");
            if let Some((uid, gid)) = self.run_as {
                command.args([
                    format!("--reuid={uid}"),
                    format!("--regid={gid}"),
                    "--clear-groups".into(),
                ]);
            }
            command.args(["--pdeathsig=KILL", "--"]).arg(program);
            command
        } else {
            assert!(
                self.run_as.is_none(),
                "running as root: `setpriv` (util-linux) is needed to run PostgreSQL as `postgres`"
            );
            Command::new(program)
        };
        command.current_dir(self.dir.path());
        command
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: the postmaster takes its backends with it.
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn find_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "createdb"]
            .iter()
            .all(|program| dir.join(program).is_file())
    };
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            // /usr/local/bin/initdb may be a link into the real directory.
            if let Ok(initdb) = std::fs::canonicalize(dir.join("initdb"))
                && let Some(real) = initdb.parent()
                && complete(real)
            {
                return Some(real.to_path_buf());
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|line| line.starts_with("postgres:"))?;
    let mut fields = line.split(':').skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn has_setpriv() -> bool {
    Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The processes whose parent is `parent` (from `/proc`).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `PID (COMM) STATE PPID …`; COMM may hold spaces and parentheses.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid.parse::<u32>().ok()? == parent).then_some(pid)
        })
        .collect()
}

/// Whether `pid` is a live process (not gone, not a zombie waiting to be reaped).
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}
