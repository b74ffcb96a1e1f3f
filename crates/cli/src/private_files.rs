//! Files that hold user data or secrets (the database, the master key, private keys) are
//! readable by their owner only: Tessera creates them 0600 in directories it creates 0700,
//! and warns — without refusing to start — when an existing one is open to other users.

use std::path::Path;

use crate::error::{CliError, CliResult};

/// Creates `dir` and its missing parents with mode 0700; an existing directory is left as is.
pub fn create_private_dir(dir: &Path) -> CliResult<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))
}

/// Warns on stderr when other users may read or write the file at `path` (`what` names it:
/// "master key file"), saying how to fix it.
pub fn warn_if_open_to_others(path: &Path, what: &str) {
    if let Some(mode) = mode(path).filter(|mode| mode & 0o077 != 0) {
        eprintln!(
            "warning: {what} {} has mode {mode:04o}: other users may read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

/// Warns on stderr when other users may add, remove or replace files in `dir`.
pub fn warn_if_writable_by_others(dir: &Path, what: &str) {
    if let Some(mode) = mode(dir).filter(|mode| mode & 0o022 != 0) {
        eprintln!(
            "warning: {what} {} has mode {mode:04o}: other users may replace its files; run `chmod 700 {}`",
            dir.display(),
            dir.display()
        );
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path).ok()?;
    Some(metadata.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode(_path: &Path) -> Option<u32> {
    None
}
