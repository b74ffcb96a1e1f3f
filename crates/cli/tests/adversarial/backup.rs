//! `tessera backup` and `tessera restore` given hostile paths: a target that is a dangling
//! symbolic link (writing through it would put user data wherever it points), a
//! pre-planted temporary file, a directory as the backup, a database whose `-wal` file is
//! still there, a missing directory. Each is refused and nothing is written or left behind.

use tessera_testkit::process::Env;

use crate::TESSERA;
use crate::harness::Tally;

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.contains(".partial-"))
        .collect()
}

#[test]
fn backup_and_restore_write_nothing_through_hostile_paths() {
    let mut tally = Tally::new("backup");
    let env = Env::new(TESSERA);
    env.ok(&["keys", "list"]);
    let dir = env.path();

    // A dangling symbolic link as the backup file: refused, its target never created.
    let elsewhere = dir.join("elsewhere.db");
    let link = dir.join("link.db");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let refused = !env
        .run(&["backup", "--to", link.to_str().unwrap()])
        .status
        .success();
    tally.case(
        "a dangling symlink as the backup file",
        refused && !elsewhere.exists(),
        format!("refused={refused} written={}", elsewhere.exists()),
    );

    // A backup into a directory that does not exist: a clear refusal, nothing left.
    let output = env.run(&[
        "backup",
        "--to",
        dir.join("no/such/dir/b.db").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    tally.case(
        "a backup into a missing directory",
        !output.status.success() && stderr.contains("cannot create"),
        stderr.trim(),
    );
    tally.case(
        "no partial file left",
        leftovers(dir).is_empty(),
        format!("{:?}", leftovers(dir)),
    );

    // A directory as the backup to restore.
    let fresh = Env::new(TESSERA);
    let output = fresh.run(&["restore", "--from", dir.to_str().unwrap()]);
    tally.case(
        "a directory as the backup",
        !output.status.success() && !fresh.path().join("tessera.db").exists(),
        String::from_utf8_lossy(&output.stderr).trim(),
    );

    // A good backup, restored where a database's -wal file remains: refused.
    let backup = dir.join("good.db");
    env.ok(&["backup", "--to", backup.to_str().unwrap()]);
    let wal = fresh.path().join("tessera.db-wal");
    std::fs::write(&wal, b"left over").unwrap();
    let output = fresh.run(&["restore", "--from", backup.to_str().unwrap()]);
    tally.case(
        "a restore beside a leftover -wal file",
        !output.status.success()
            && !fresh.path().join("tessera.db").exists()
            && std::fs::read(&wal).unwrap() == b"left over",
        String::from_utf8_lossy(&output.stderr).trim(),
    );
    std::fs::remove_file(&wal).unwrap();

    // A backup that is the live database itself, given as its own target.
    let live = dir.join("tessera.db");
    let before = std::fs::read(&live).unwrap();
    let output = env.run(&["backup", "--to", live.to_str().unwrap()]);
    tally.case(
        "the live database as the backup file",
        !output.status.success() && std::fs::read(&live).unwrap() == before,
        String::from_utf8_lossy(&output.stderr).trim(),
    );
    tally.finish();
}
