//! One module per command group. Each admin command opens the store named by the
//! settings, does its checks, writes, and prints (JSON through `output`).

pub mod actions;
pub mod admins;
pub mod apis;
pub mod apps;
pub mod backup;
pub mod connections;
pub mod dev;
pub mod grants;
pub mod import;
pub mod keys;
pub mod logs;
pub mod proxy;
pub mod roles;
pub mod serve;
pub mod users;

use std::io::{BufRead as _, IsTerminal as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tessera_store::Store;

use crate::cli::AdminArgs;
use crate::config::{Overrides, Settings};
use crate::error::{CliError, CliResult};
use crate::private_files;

/// Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What an admin command works with.
pub struct Context {
    pub settings: Settings,
    pub store: Store,
    pub json: bool,
    /// The SQLite file this command's opening made (there was none).
    made_database: Option<std::path::PathBuf>,
}

impl Context {
    pub async fn open(args: &AdminArgs) -> CliResult<Context> {
        let settings = Settings::load(&args.config, &Overrides::default())?;
        let made_database = missing_sqlite_file(&settings.database_url);
        let store = open_store(&settings.database_url).await?;
        Ok(Context {
            settings,
            store,
            json: args.json,
            made_database,
        })
    }

    /// A command's outcome, on a database opened for it just now: when it succeeded, says
    /// so (made on purpose before a first `serve` — `apis create`… — or at a mistyped path,
    /// where a listing would answer "none yet" and the typo go unseen); when it was refused,
    /// removes it, so a refused command leaves nothing behind, as it changes nothing in a
    /// database that was there.
    pub async fn finish(&self, outcome: CliResult<()>) -> CliResult<()> {
        let Some(path) = &self.made_database else {
            return outcome;
        };
        match &outcome {
            Ok(()) => eprintln!(
                "note: there was no database at {}: a new one was made there \
                 (is the database URL the one you meant?)",
                path.display()
            ),
            Err(_) => {
                self.store.close().await;
                for file in self.store.database_files() {
                    if let Err(error) = std::fs::remove_file(&file) {
                        eprintln!("warning: cannot remove {}: {error}", file.display());
                    }
                }
            }
        }
        outcome
    }
}

/// The file of an SQLite database URL when there is none there yet.
pub fn missing_sqlite_file(database_url: &str) -> Option<std::path::PathBuf> {
    tessera_store::sqlite_path(database_url)
        .ok()
        .filter(|path| !path.exists())
}

/// Opens the database; warns when other users may read an SQLite database's files or
/// write to their directory.
pub async fn open_store(database_url: &str) -> CliResult<Store> {
    let store = Store::connect(database_url)
        .await
        .map_err(|error| match error {
            // The URL is not repeated: a PostgreSQL URL may hold a password.
            tessera_store::StoreError::BadUrl(why) => {
                CliError::Config(format!("invalid database URL: {why}"))
            }
            other => CliError::Store(other),
        })?;
    for file in store.database_files() {
        private_files::warn_if_open_to_others(&file, "database file");
    }
    if let Some(dir) = store.path().and_then(std::path::Path::parent) {
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        private_files::warn_if_writable_by_others(dir, "database directory");
    }
    Ok(store)
}

/// Reads one line from stdin as a password: the trailing newline (LF or CRLF) is
/// removed, nothing else (spaces are legal in passwords).
pub fn read_password_stdin() -> CliResult<String> {
    if std::io::stdin().is_terminal() {
        eprint!("Password (one line; it is visible as you type, pipe it in to avoid that): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| CliError::io("cannot read the password from stdin", error))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(CliError::invalid(
            "no password on stdin: pipe it in, e.g. `printf '%s\\n' \"$PASSWORD\" | tessera users create ... --password-stdin`",
        ));
    }
    Ok(password.to_string())
}

/// Applies the password policy (the same as sign-up's).
pub fn check_password(password: &str) -> CliResult<()> {
    tessera_core::check_password_policy(password)
        .map_err(|why| CliError::invalid(format!("password refused: {why}")))
}

/// Argon2id, on the blocking pool.
pub async fn hash_password(password: String) -> String {
    tokio::task::spawn_blocking(move || {
        tessera_server::passwords::hash_password_blocking(&password)
    })
    .await
    .expect("password hashing does not panic")
}
