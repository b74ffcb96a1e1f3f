//! Settings, layered as zero2prod does it: defaults < `tessera.toml` < `TESSERA_*`
//! environment variables < command-line flags. And the master key's resolution.
//!
//! Relative paths (in `database_url`, `master_key_file`) are relative to the working
//! directory, not to the configuration file.

use std::fmt;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use tessera_jose::MasterKey;
use tessera_store::Store;

use crate::cli::ConfigArgs;
use crate::error::{CliError, CliResult};
use crate::private_files::warn_if_open_to_others;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./tessera.db";
pub const DEFAULT_CONFIG_FILE: &str = "tessera.toml";
/// Name of the master key file kept beside an SQLite database when no key is configured.
pub const MASTER_KEY_FILE_NAME: &str = "master.key";

/// A secret read from the configuration. `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretText {
    fn from(text: String) -> Self {
        SecretText(text)
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(redacted)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Public base URL (`TESSERA_ISSUER`). Unset: `http://localhost:PORT/`.
    pub issuer: Option<String>,
    /// `TESSERA_LISTEN`, `host:port`.
    pub listen: String,
    /// `TESSERA_DATABASE_URL`.
    pub database_url: String,
    /// `TESSERA_MASTER_KEY`: 43 base64url characters or 64 hex digits.
    pub master_key: Option<SecretText>,
    /// `TESSERA_MASTER_KEY_FILE`: a file holding the master key.
    pub master_key_file: Option<PathBuf>,
    /// `TESSERA_TRUSTED_PROXIES`: reverse proxies (addresses or CIDR ranges) whose
    /// `X-Forwarded-For` names the client. A list in the file; comma-separated in the variable.
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub trusted_proxies: Vec<String>,
    /// `TESSERA_SMTP_URL`: `smtp://USER:PASS@HOST:587` (STARTTLS), `smtps://…:465` (TLS),
    /// plaintext only to a loopback host. Unset: no mail, so no password reset.
    pub smtp_url: Option<SecretText>,
    /// `TESSERA_EMAIL_FROM`: the sender of Tessera's mail, e.g. `Tessera <no-reply@example.com>`.
    pub email_from: Option<String>,
    /// `TESSERA_METRICS_LISTEN`, `host:port`: serve Prometheus metrics at `/metrics` there
    /// (a port of its own, never `listen`). Unset: no metrics listener.
    pub metrics_listen: Option<String>,
    /// `TESSERA_ADMIN`: serve the dashboard at `<issuer>admin/` (default true).
    pub admin: bool,
    /// `TESSERA_ADMIN_LISTEN`, `host:port`: serve the dashboard there instead, on a listener
    /// of its own (then `<issuer>admin/` is 404). Unset: the dashboard is under the issuer.
    pub admin_listen: Option<String>,
    /// `TESSERA_ADMIN_URL`: the public base URL of `admin_listen` (where browsers reach
    /// it), e.g. `https://admin.example.com/`. Default `http://<admin_listen>/`.
    pub admin_url: Option<String>,
    /// `TESSERA_DPOP_NONCES`: require server-provided nonces in DPoP proofs at the token
    /// endpoint (default false).
    pub dpop_nonces: bool,
}

/// A list, or one string of comma-separated items (as environment variables give them).
fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        List(Vec<String>),
    }
    Ok(match Given::deserialize(deserializer)? {
        Given::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
        Given::List(items) => items,
    })
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            issuer: None,
            listen: DEFAULT_LISTEN.to_string(),
            database_url: DEFAULT_DATABASE_URL.to_string(),
            master_key: None,
            master_key_file: None,
            trusted_proxies: Vec::new(),
            smtp_url: None,
            email_from: None,
            metrics_listen: None,
            admin: true,
            admin_listen: None,
            admin_url: None,
            dpop_nonces: false,
        }
    }
}

/// What the flags override. `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<SecretText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_nonces: Option<bool>,
}

impl Settings {
    /// Loads the settings: defaults, then the config file (`--config`, or `./tessera.toml`
    /// when it exists), then `TESSERA_*` variables, then `overrides`.
    pub fn load(config: &ConfigArgs, overrides: &Overrides) -> CliResult<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match &config.config {
            Some(path) => {
                if !path.is_file() {
                    return Err(CliError::Config(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => {
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    figment = figment.merge(Toml::file_exact(default));
                }
            }
        }
        let env = Env::prefixed("TESSERA_").only(&[
            "issuer",
            "listen",
            "database_url",
            "master_key",
            "master_key_file",
            "trusted_proxies",
            "smtp_url",
            "email_from",
            "metrics_listen",
            "admin",
            "admin_listen",
            "admin_url",
            "dpop_nonces",
        ]);
        let mut overrides = overrides.clone();
        if overrides.database_url.is_none() {
            overrides.database_url = config.database_url.clone();
        }
        figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract::<Settings>()
            .map_err(|error| CliError::Config(error.to_string()))
    }

    /// The listen address, resolving a host name (`localhost:4000`) if needed.
    pub fn listen_addr(&self) -> CliResult<SocketAddr> {
        let invalid =
            || CliError::Config(format!("listen address {:?} is not host:port", self.listen));
        self.listen
            .to_socket_addrs()
            .map_err(|_| invalid())?
            .next()
            .ok_or_else(invalid)
    }

    /// The metrics listener's address, if one is configured; like `listen`, a host name
    /// is resolved. It may not be the main listener's address.
    pub fn metrics_addr(&self) -> CliResult<Option<SocketAddr>> {
        let Some(text) = &self.metrics_listen else {
            return Ok(None);
        };
        let addr = extra_listener(
            text,
            "metrics_listen (TESSERA_METRICS_LISTEN, --metrics-listen)",
        )?;
        if addr.port() != 0 && addr == self.listen_addr()? {
            return Err(CliError::Config(format!(
                "metrics_listen {text:?} is the listen address: metrics need a port of their own"
            )));
        }
        Ok(Some(addr))
    }

    /// The dashboard's own listener, if `admin_listen` asks for one: a port of its own
    /// (neither `listen` nor `metrics_listen`), with the dashboard on; `admin_url` only
    /// beside it, an absolute http(s) URL.
    pub fn admin_addr(&self) -> CliResult<Option<SocketAddr>> {
        let Some(text) = &self.admin_listen else {
            if self.admin_url.is_some() {
                return Err(CliError::Config(
                    "admin_url (TESSERA_ADMIN_URL) is set but admin_listen is not: the \
                     dashboard is served under the issuer unless it has a listener of its own"
                        .into(),
                ));
            }
            return Ok(None);
        };
        if !self.admin {
            return Err(CliError::Config(
                "admin_listen is set but the dashboard is off (admin = false)".into(),
            ));
        }
        let addr = extra_listener(text, "admin_listen (TESSERA_ADMIN_LISTEN, --admin-listen)")?;
        if addr.port() != 0 && (addr == self.listen_addr()? || Some(addr) == self.metrics_addr()?) {
            return Err(CliError::Config(format!(
                "admin_listen {text:?} is already in use by listen or metrics_listen: the \
                 dashboard needs a port of its own"
            )));
        }
        if let Some(url) = &self.admin_url {
            tessera_server::normalize_issuer(url).map_err(|_| {
                CliError::Config(format!(
                    "admin_url (TESSERA_ADMIN_URL) {url:?} is not an absolute http(s) URL \
                     without query or fragment"
                ))
            })?;
        }
        Ok(Some(addr))
    }
}

/// A listener's `host:port` (a host name resolved); `setting` names it in the error.
fn extra_listener(text: &str, setting: &str) -> CliResult<SocketAddr> {
    let invalid = || CliError::Config(format!("{setting} {text:?} is not host:port"));
    text.to_socket_addrs()
        .map_err(|_| invalid())?
        .next()
        .ok_or_else(invalid)
}

impl Settings {
    /// Where mail goes: `smtp_url` needs `email_from`. Errors never quote the URL (it may
    /// hold the SMTP password).
    pub fn mail_config(&self) -> CliResult<Option<tessera_server::MailConfig>> {
        let Some(url) = &self.smtp_url else {
            return Ok(None);
        };
        let from = self.email_from.as_deref().ok_or_else(|| {
            CliError::Config(
                "smtp_url is set but email_from (TESSERA_EMAIL_FROM) is not: name the sender, \
                 e.g. \"Tessera <no-reply@example.com>\""
                    .into(),
            )
        })?;
        tessera_server::MailConfig::smtp(url.expose(), from)
            .map(Some)
            .map_err(|error| CliError::Config(format!("{error} (TESSERA_SMTP_URL / smtp_url)")))
    }
}

/// Where the master key comes from, in order: `master_key`, `master_key_file`, then
/// `master.key` beside an SQLite database (created at first use). With PostgreSQL there is
/// no such file: every node needs the same key, so it must be configured.
pub async fn resolve_master_key(settings: &Settings, store: &Store) -> CliResult<MasterKey> {
    if let Some(text) = &settings.master_key {
        return MasterKey::parse(text.expose())
            .map_err(|_| CliError::MasterKey("TESSERA_MASTER_KEY / master_key is not a valid master key (expected 43 base64url characters or 64 hex digits)".into()));
    }
    if let Some(path) = &settings.master_key_file {
        return read_master_key_file(path)?.ok_or_else(|| {
            CliError::MasterKey(format!("master key file {} does not exist", path.display()))
        });
    }
    master_key_beside_database(store).await
}

/// The master key in `master.key` next to the database file, created (mode 0600) when
/// missing — unless the database already holds keys sealed with some other master key.
pub async fn master_key_beside_database(store: &Store) -> CliResult<MasterKey> {
    let Some(database_file) = store.path() else {
        return Err(CliError::MasterKey(
            "no master key configured: with PostgreSQL, set TESSERA_MASTER_KEY or master_key_file \
             (every Tessera node sharing the database needs the same key; \
             generate one with: openssl rand -hex 32)"
                .into(),
        ));
    };
    let path = master_key_path_for(database_file);
    if let Some(key) = read_master_key_file(&path)? {
        return Ok(key);
    }
    if !store.all_keys().await?.is_empty() {
        return Err(CliError::MasterKey(format!(
            "the database has signing keys but there is no master key: {} is missing; \
             restore it, or set TESSERA_MASTER_KEY / master_key_file",
            path.display()
        )));
    }
    let key = MasterKey::generate();
    match write_new_secret_file(&path, &format!("{}\n", key.to_text())) {
        Ok(()) => {
            eprintln!(
                "Created a new master key in {} (mode 0600). Back it up: without it the signing keys \
                 in the database cannot be used.",
                path.display()
            );
            Ok(key)
        }
        // Another process created it between our read and our write: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            read_master_key_file(&path)?.ok_or_else(|| {
                CliError::MasterKey(format!("master key file {} vanished", path.display()))
            })
        }
        Err(error) => Err(CliError::io(
            format!("cannot create master key file {}", path.display()),
            error,
        )),
    }
}

/// `master.key` in the directory of the database file.
pub fn master_key_path_for(database_file: &Path) -> PathBuf {
    let dir = database_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(MASTER_KEY_FILE_NAME)
}

/// Reads a master key file; `Ok(None)` when it does not exist. Warns (on stderr) when
/// other users may read it.
pub fn read_master_key_file(path: &Path) -> CliResult<Option<MasterKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(CliError::io(
                format!("cannot read master key file {}", path.display()),
                error,
            ));
        }
    };
    warn_if_open_to_others(path, "master key file");
    MasterKey::parse(&text).map(Some).map_err(|_| {
        CliError::MasterKey(format!(
            "master key file {} does not hold a valid master key (expected 43 base64url characters or 64 hex digits)",
            path.display()
        ))
    })
}

/// Creates `path` (failing if it exists), readable by its owner only, with `contents`.
fn write_new_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_path_is_beside_the_database() {
        assert_eq!(
            master_key_path_for(Path::new("/data/tessera.db")),
            Path::new("/data/master.key")
        );
        assert_eq!(
            master_key_path_for(Path::new("tessera.db")),
            Path::new("./master.key")
        );
        assert_eq!(
            master_key_path_for(Path::new("./x/t.db")),
            Path::new("./x/master.key")
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let settings = Settings {
            master_key: Some(SecretText("s3cr3t".into())),
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("s3cr3t"));
    }

    #[test]
    fn metrics_listen_is_off_by_default_and_checked() {
        let settings = Settings::default();
        assert_eq!(settings.metrics_addr().unwrap(), None);
        let settings = Settings {
            metrics_listen: Some("127.0.0.1:9464".into()),
            ..Settings::default()
        };
        assert_eq!(
            settings.metrics_addr().unwrap(),
            Some("127.0.0.1:9464".parse().unwrap())
        );
        let settings = Settings {
            metrics_listen: Some("9464".into()),
            ..Settings::default()
        };
        let error = settings.metrics_addr().unwrap_err().to_string();
        assert!(error.contains("metrics_listen"), "{error}");
        let settings = Settings {
            metrics_listen: Some(DEFAULT_LISTEN.into()),
            ..Settings::default()
        };
        let error = settings.metrics_addr().unwrap_err().to_string();
        assert!(error.contains("port of their own"), "{error}");
    }

    #[test]
    fn flags_override_defaults() {
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            ..Overrides::default()
        };
        let config = ConfigArgs {
            config: None,
            database_url: Some("sqlite://x.db".into()),
        };
        // The environment of the test process may hold TESSERA_* variables; flags win anyway.
        let settings = Settings::load(&config, &overrides).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:0");
        assert_eq!(settings.database_url, "sqlite://x.db");
    }

    #[test]
    fn the_dashboard_is_on_by_default_and_a_flag_turns_it_off() {
        assert!(Settings::default().admin);
        let config = ConfigArgs {
            config: None,
            database_url: None,
        };
        let overrides = Overrides {
            admin: Some(false),
            ..Overrides::default()
        };
        assert!(!Settings::load(&config, &overrides).unwrap().admin);
    }

    #[test]
    fn admin_listen_needs_a_port_of_its_own_and_the_dashboard_on() {
        let with = |admin_listen: Option<&str>, admin_url: Option<&str>, admin: bool| Settings {
            admin_listen: admin_listen.map(str::to_owned),
            admin_url: admin_url.map(str::to_owned),
            admin,
            metrics_listen: Some("127.0.0.1:9464".into()),
            ..Settings::default()
        };
        assert_eq!(with(None, None, true).admin_addr().unwrap(), None);
        assert_eq!(
            with(
                Some("127.0.0.1:4001"),
                Some("https://admin.example.com"),
                true
            )
            .admin_addr()
            .unwrap(),
            Some("127.0.0.1:4001".parse().unwrap())
        );
        let refused = [
            (
                with(None, Some("https://admin.example.com/"), true),
                "admin_listen is not",
            ),
            (
                with(Some("127.0.0.1:4001"), None, false),
                "dashboard is off",
            ),
            (with(Some("4001"), None, true), "not host:port"),
            (with(Some(DEFAULT_LISTEN), None, true), "port of its own"),
            (with(Some("127.0.0.1:9464"), None, true), "port of its own"),
            (
                with(Some("127.0.0.1:4001"), Some("admin.example.com"), true),
                "absolute http(s) URL",
            ),
            (
                with(
                    Some("127.0.0.1:4001"),
                    Some("https://a.example.com/?x=1"),
                    true,
                ),
                "absolute http(s) URL",
            ),
        ];
        for (settings, expected) in refused {
            let error = settings.admin_addr().unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
