//! `tessera backup --to FILE` and `tessera restore --from FILE`, for an SQLite database.
//!
//! A backup is taken while the server serves (`Store::backup_into`: one consistent
//! snapshot), into a private temporary file beside the target, checked page by page,
//! flushed to disk, and only then given its name — a file named FILE is always a whole,
//! checked backup. A restore checks the backup the same way, refuses to overwrite a
//! database, and places the copy as durably before opening it (which applies the
//! migrations of this version, so an older backup restores into a newer Tessera).
//!
//! The master key is not in the backup, on purpose: a stolen backup then holds no usable
//! signing key. It is kept and restored beside it (`master.key`, or the configured one).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tessera_server::keys;
use tessera_store::{CopyCheck, Store, check_sqlite_copy, sqlite_files, sqlite_path};

use crate::cli::AdminArgs;
use crate::commands::open_store;
use crate::config::{
    Overrides, Settings, master_key_path_for, read_master_key_file, resolve_master_key,
};
use crate::error::{CliError, CliResult};
use crate::output;

#[derive(Serialize)]
struct Report<'a> {
    file: &'a Path,
    bytes: u64,
    migrations: i64,
    users: i64,
    clients: i64,
}

fn report(file: &Path, check: CopyCheck, json: bool, headline: &str) -> CliResult<()> {
    let bytes = fs::metadata(file)
        .map_err(|e| CliError::io(format!("cannot read {}", file.display()), e))?
        .len();
    let report = Report {
        file,
        bytes,
        migrations: check.migrations,
        users: check.users,
        clients: check.clients,
    };
    if json {
        output::print_json(&report);
    } else {
        println!("{headline}");
        output::print_fields(&[
            ("file", file.display().to_string()),
            ("bytes", bytes.to_string()),
            ("migrations", check.migrations.to_string()),
            ("users", check.users.to_string()),
            ("applications", check.clients.to_string()),
        ]);
    }
    Ok(())
}

/// `tessera backup --to FILE`.
pub async fn backup(common: &AdminArgs, target: &Path) -> CliResult<()> {
    let settings = Settings::load(&common.config, &Overrides::default())?;
    if sqlite_path(&settings.database_url).is_err() {
        return Err(CliError::invalid(
            "tessera backup copies an SQLite database; back up PostgreSQL with pg_dump \
             (and keep the master key apart from it): see OPERATIONS.md",
        ));
    }
    if let Some(path) = super::missing_sqlite_file(&settings.database_url) {
        return Err(CliError::invalid(format!(
            "there is no database at {} to back up (is the database URL the one you meant?)",
            path.display()
        )));
    }
    refuse_existing(target, "the backup file")?;
    let store = open_store(&settings.database_url).await?;
    let partial = partial_name(target);
    let result = async {
        // SQLite fills an empty file; created here first so that it is private (0600).
        create_private_file(&partial)?;
        store.backup_into(&partial).await?;
        let check = check_sqlite_copy(&partial).await?;
        sync_file(&partial)?;
        place(&partial, target)?;
        Ok::<_, CliError>(check)
    }
    .await;
    let _ = fs::remove_file(&partial);
    let check = result?;
    let master = store
        .path()
        .map(master_key_path_for)
        .filter(|path| path.exists());
    report(target, check, common.json, "Backed up and checked.")?;
    if !common.json {
        match master {
            Some(path) => eprintln!(
                "The master key is not in the backup: keep a copy of {} apart from it; a \
                 restore needs both.",
                path.display()
            ),
            None => eprintln!(
                "The master key is not in the backup: keep the configured one (TESSERA_MASTER_KEY \
                 or master_key_file) apart from it; a restore needs both."
            ),
        }
    }
    Ok(())
}

/// `tessera restore --from FILE`: into the configured SQLite database, which must not
/// exist yet.
pub async fn restore(common: &AdminArgs, source: &Path) -> CliResult<()> {
    let settings = Settings::load(&common.config, &Overrides::default())?;
    let Ok(target) = sqlite_path(&settings.database_url) else {
        return Err(CliError::invalid(
            "tessera restore writes an SQLite database; restore PostgreSQL with pg_restore or \
             psql: see OPERATIONS.md",
        ));
    };
    if !source.is_file() {
        return Err(CliError::NotFound(format!(
            "no backup file at {}",
            source.display()
        )));
    }
    for existing in sqlite_files(&target) {
        refuse_existing(&existing, "the database")?;
    }
    check_sqlite_copy(source).await.map_err(|error| {
        CliError::invalid(format!(
            "{} is not a usable backup: {error}",
            source.display()
        ))
    })?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let partial = partial_name(&target);
    let result = (|| {
        copy_private(source, &partial)?;
        sync_file(&partial)?;
        place(&partial, &target)
    })();
    let _ = fs::remove_file(&partial);
    result?;
    let store = open_store(&settings.database_url).await?;
    let check = check_sqlite_copy(&target).await?;
    report(&target, check, common.json, "Restored and checked.")?;
    check_master_key(&settings, &store, &target).await
}

/// Whether the master key a server would use opens the restored signing keys; says what
/// to do when there is none.
async fn check_master_key(settings: &Settings, store: &Store, target: &Path) -> CliResult<()> {
    let configured = settings.master_key.is_some() || settings.master_key_file.is_some();
    let beside = master_key_path_for(target);
    if !configured && read_master_key_file(&beside)?.is_none() {
        eprintln!(
            "Now put the master key back before starting Tessera: copy the old master.key to \
             {} (mode 0600), or set TESSERA_MASTER_KEY / master_key_file.",
            beside.display()
        );
        return Ok(());
    }
    let master = resolve_master_key(settings, store).await?;
    keys::load_key_set(store, &master).await.map_err(|_| {
        CliError::MasterKey(
            "the master key does not open the restored signing keys: use the master key the \
             backup was taken with"
                .into(),
        )
    })?;
    Ok(())
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `FILE.partial-PID`: beside the target (the same file system, so placing it is a link),
/// and never a name a finished file has.
fn partial_name(target: &Path) -> PathBuf {
    beside(target, &format!(".partial-{}", std::process::id()))
}

fn refuse_existing(path: &Path, what: &str) -> CliResult<()> {
    if path.exists() {
        return Err(CliError::Conflict(format!(
            "{what} {} exists already; nothing was overwritten",
            path.display()
        )));
    }
    Ok(())
}

fn create_private_file(path: &Path) -> CliResult<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| CliError::io(format!("cannot create {}", path.display()), e))
}

fn create_private_dir(dir: &Path) -> CliResult<()> {
    let mut builder = fs::DirBuilder::new();
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

fn copy_private(source: &Path, target: &Path) -> CliResult<()> {
    let mut to = create_private_file(target)?;
    let mut from = File::open(source)
        .map_err(|e| CliError::io(format!("cannot read {}", source.display()), e))?;
    io::copy(&mut from, &mut to)
        .map_err(|e| CliError::io(format!("cannot write {}", target.display()), e))?;
    Ok(())
}

fn sync_file(path: &Path) -> CliResult<()> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| CliError::io(format!("cannot flush {} to disk", path.display()), e))
}

/// Gives the finished file its name without replacing anything (a hard link fails when
/// the name exists), then makes the name durable (the directory flushed).
fn place(partial: &Path, target: &Path) -> CliResult<()> {
    fs::hard_link(partial, target).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            CliError::Conflict(format!(
                "{} appeared meanwhile; nothing was overwritten",
                target.display()
            ))
        } else {
            CliError::io(format!("cannot create {}", target.display()), e)
        }
    })?;
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CliError::io(format!("cannot flush {}", dir.display()), e))
}
