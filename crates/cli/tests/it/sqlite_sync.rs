//! SQLite commits are made durable with `fdatasync`, never `fsync`: the bundled SQLite is
//! built with `HAVE_FDATASYNC` (`.cargo/config.toml`). Without it SQLite calls `fsync`,
//! which also writes the WAL file's inode for its new mtime on every commit and waits for
//! that second write (BENCHMARKS.md, "Write paths on SQLite"). `strace` shows which call a
//! commit makes; the test fails, saying so, without it (`scripts/test.sh` installs it).

use std::process::Stdio;

use tessera_testkit::process::Env;

use crate::TESSERA;

/// The sync calls `strace -y` logged on files of the test's database: (call, path) pairs.
fn database_syncs(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|line| {
            // "1234 fdatasync(7</tmp/.tmpX/tessera.db-wal>) = 0" (-o FILE with -f) or
            // "[pid 1234] fdatasync(…": the call is the word before the first parenthesis.
            let (before, args) = line.split_once('(')?;
            let call = before.split_whitespace().last()?;
            let path = args.split_once('<')?.1.split_once('>')?.0;
            let file = path.rsplit('/').next()?;
            file.starts_with("tessera.db")
                .then(|| (call.to_string(), file.to_string()))
        })
        .collect()
}

#[test]
fn commits_sync_the_database_with_fdatasync_not_fsync() {
    let env = Env::new(TESSERA);
    // The database, its migrations and WAL exist before the traced write.
    env.ok(&[
        "apis",
        "create",
        "--name",
        "Before",
        "--identifier",
        "https://before.example/",
    ]);
    let trace = env.path().join("syncs.strace");
    let trace_arg = trace.to_str().expect("a UTF-8 path");
    let output = env
        .command_under(&[
            "strace",
            "-f",
            "-y",
            "-e",
            "trace=fsync,fdatasync",
            "-o",
            trace_arg,
            "--",
        ])
        .args([
            "apis",
            "create",
            "--name",
            "Traced",
            "--identifier",
            "https://traced.example/",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "strace could not be started ({e}): apt-get install strace (scripts/test.sh does)"
            )
        });
    assert!(
        output.status.success(),
        "tessera under strace failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = std::fs::read_to_string(&trace).expect("strace wrote its log");
    let syncs = database_syncs(&log);
    assert!(
        syncs
            .iter()
            .any(|(call, file)| call == "fdatasync" && file == "tessera.db-wal"),
        "the commit did not fdatasync the WAL; syncs on the database: {syncs:?}\n{log}"
    );
    let fsyncs: Vec<_> = syncs.iter().filter(|(call, _)| call == "fsync").collect();
    assert!(
        fsyncs.is_empty(),
        "SQLite called fsync (built without HAVE_FDATASYNC?): {fsyncs:?}"
    );
    // The write the trace watched is there.
    let listed = env.ok(&["apis", "list"]);
    assert!(listed.contains("https://traced.example/"), "{listed}");
}

#[test]
fn the_strace_log_reader_finds_calls_and_files() {
    let log = "101 fdatasync(7</tmp/x/tessera.db-wal>) = 0\n\
               101 fsync(9</tmp/x/master.key>) = 0\n\
               [pid 102] fsync(8</tmp/x/tessera.db>) = 0\n\
               102 +++ exited with 0 +++\n";
    assert_eq!(
        database_syncs(log),
        vec![
            ("fdatasync".to_string(), "tessera.db-wal".to_string()),
            ("fsync".to_string(), "tessera.db".to_string()),
        ]
    );
}
