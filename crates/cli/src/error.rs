//! The one error type of the `tessera` binary, and how each kind maps to an exit code.
//!
//! Messages are one line, meant for the person at the terminal, and never contain
//! secrets (master key, client secrets, passwords).

use std::error::Error as _;
use std::process::ExitCode;

use tessera_jose::JoseError;
use tessera_server::ServerError;
use tessera_server::keys::KeyError;
use tessera_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line itself is wrong in a way clap could not see (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// A value given on the command line, on stdin or in the configuration is invalid.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    MasterKey(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Server(#[from] ServerError),
}

pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    pub fn invalid(message: impl Into<String>) -> Self {
        CliError::Invalid(message.into())
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }

    /// 2 for usage errors (as clap uses), 1 for everything else.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::from(1),
        }
    }

    /// The one line printed after `error: `. Storage and key errors carry their causes
    /// (driver messages never contain row contents); key-decryption failures get advice.
    pub fn message(&self) -> String {
        if let Some(kid) = self.undecryptable_key() {
            return format!(
                "cannot decrypt signing key {kid}: the master key is not the one this database was \
                 created with (check TESSERA_MASTER_KEY / master_key_file / master.key)"
            );
        }
        if let CliError::Server(ServerError::Bind { addr, source }) = self {
            return format!(
                "cannot listen on {addr}: {source} (is another server running there? choose another port)"
            );
        }
        let mut text = self.to_string();
        if matches!(
            self,
            CliError::Store(_) | CliError::Keys(_) | CliError::Server(_)
        ) {
            let mut source = self.source();
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
        }
        text
    }

    fn undecryptable_key(&self) -> Option<&str> {
        let key_error = match self {
            CliError::Keys(error) | CliError::Server(ServerError::Keys(error)) => error,
            _ => return None,
        };
        match key_error {
            KeyError::Key {
                kid,
                source: JoseError::Decrypt,
            } => Some(kid),
            _ => None,
        }
    }
}
