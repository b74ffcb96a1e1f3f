//! Outgoing mail (password reset codes, verification links): SMTP through lettre over rustls, or, for
//! `tessera dev`, `.eml` files in an outbox directory.
//!
//! `smtp://[USER:PASS@]HOST[:PORT]` requires STARTTLS (port 587 by default), except to a
//! loopback host, where it is plaintext (local relays and test mail catchers);
//! `smtps://…` is implicit TLS (port 465). Certificates are checked against the
//! platform's roots. The password never appears in `Debug` output, logs or errors.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// Why mail settings were refused, or a message could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid smtp_url: {0}")]
    BadUrl(&'static str),
    #[error(
        "invalid email_from {0:?}: expected an address such as \"Tessera <no-reply@example.com>\""
    )]
    BadFrom(String),
    #[error("invalid recipient address")]
    BadRecipient,
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("outbox {path}: {source}")]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One message: to whom, from whom (`None`: the configured sender), what.
pub(crate) struct Outgoing<'a> {
    pub(crate) to: &'a str,
    pub(crate) from: Option<&'a str>,
    pub(crate) subject: &'a str,
    pub(crate) body: String,
    /// The body is HTML (an email template's) rather than plain text.
    pub(crate) html: bool,
}

/// Where and how mail is sent. Cheap to clone.
#[derive(Clone)]
pub struct MailConfig {
    from: Mailbox,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Smtp {
        transport: Arc<AsyncSmtpTransport<Tokio1Executor>>,
        /// `smtp[s]://HOST:PORT (mode)`, for messages: no user, no password.
        described: String,
    },
    Outbox(PathBuf),
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("from", &self.from.to_string())
            .field("transport", &self.describe())
            .finish()
    }
}

fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.trim()
        .parse()
        .map_err(|_| MailError::BadFrom(from.to_string()))
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// `%XX` decoding of the user and password in the URL (they may hold `@`, `:`, `/`).
fn percent_decode(text: &str) -> Result<String, MailError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(MailError::BadUrl("bad %-escape in the user or password"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| MailError::BadUrl("user or password is not UTF-8"))
}

impl MailConfig {
    /// Mail through an SMTP server. Errors never quote the URL (it may hold a password).
    pub fn smtp(url: &str, from: &str) -> Result<Self, MailError> {
        let from = parse_from(from)?;
        let parsed = url::Url::parse(url.trim()).map_err(|_| {
            MailError::BadUrl("expected smtp://[USER:PASSWORD@]HOST[:PORT] or smtps://…")
        })?;
        let implicit_tls = match parsed.scheme() {
            "smtps" => true,
            "smtp" => false,
            _ => return Err(MailError::BadUrl("the scheme must be smtp or smtps")),
        };
        if (!parsed.path().is_empty() && parsed.path() != "/")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(MailError::BadUrl(
                "only scheme, user, password, host and port are understood",
            ));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(MailError::BadUrl("no host"))?
            .to_string();
        let plaintext = !implicit_tls && is_loopback(&host);
        let port = parsed
            .port()
            .unwrap_or(if implicit_tls { 465 } else { 587 });
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let builder = if implicit_tls {
            AsyncSmtpTransport::<Tokio1Executor>::relay(bare_host)
        } else if plaintext {
            Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                bare_host,
            ))
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(bare_host)
        }
        .map_err(|_| MailError::BadUrl("TLS could not be set up for this host"))?;
        let mut builder = builder.port(port).timeout(Some(Duration::from_secs(30)));
        if !parsed.username().is_empty() {
            let user = percent_decode(parsed.username())?;
            let password = percent_decode(parsed.password().unwrap_or(""))?;
            builder = builder.credentials(Credentials::new(user, password));
        }
        let mode = if implicit_tls {
            "TLS"
        } else if plaintext {
            "plaintext, loopback"
        } else {
            "STARTTLS"
        };
        Ok(MailConfig {
            from,
            transport: Transport::Smtp {
                transport: Arc::new(builder.build()),
                described: format!("{}://{host}:{port} ({mode})", parsed.scheme()),
            },
        })
    }

    /// Mail written as `.eml` files (mode 0600) into `dir`, for development.
    pub fn outbox(dir: impl Into<PathBuf>, from: &str) -> Result<Self, MailError> {
        Ok(MailConfig {
            from: parse_from(from)?,
            transport: Transport::Outbox(dir.into()),
        })
    }

    /// The configured sender, as a header shows it.
    pub(crate) fn sender(&self) -> String {
        self.from.to_string()
    }

    /// Where mail goes, for the start-up banner: no user, no password.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp { described, .. } => described.clone(),
            Transport::Outbox(dir) => format!("files in {}", dir.display()),
        }
    }

    /// Builds and delivers one plain-text message.
    pub(crate) async fn send(
        &self,
        to: &str,
        subject: &str,
        body: String,
    ) -> Result<(), MailError> {
        self.deliver(Outgoing {
            to,
            from: None,
            subject,
            body,
            html: false,
        })
        .await
    }

    /// Builds and delivers one message.
    pub(crate) async fn deliver(&self, outgoing: Outgoing<'_>) -> Result<(), MailError> {
        let to: Mailbox = outgoing.to.parse().map_err(|_| MailError::BadRecipient)?;
        let recipient = to.email.to_string();
        let from = match outgoing.from {
            Some(from) => parse_from(from)?,
            None => self.from.clone(),
        };
        let content_type = if outgoing.html {
            ContentType::TEXT_HTML
        } else {
            ContentType::TEXT_PLAIN
        };
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(outgoing.subject)
            .header(content_type)
            .body(outgoing.body)
            .map_err(|_| MailError::BadRecipient)?;
        match &self.transport {
            Transport::Smtp { transport, .. } => {
                transport
                    .send(message)
                    .await
                    .map_err(|error| MailError::Smtp(error.to_string()))?;
                tracing::info!(to = %recipient, "mail sent");
            }
            Transport::Outbox(dir) => {
                let path = write_outbox(dir, &message.formatted()).await?;
                // Where the message is, never what it says (it carries a code).
                tracing::info!("mail for {recipient} written to {}", path.display());
            }
        }
        Ok(())
    }
}

async fn write_outbox(dir: &Path, bytes: &[u8]) -> Result<PathBuf, MailError> {
    let dir = dir.to_path_buf();
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let name = format!(
            "{}-{}.eml",
            crate::clock::now(),
            tessera_core::ids::hex_id(6)
        );
        let path = dir.join(name);
        let fail = |source| MailError::Outbox {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(fail)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(fail)?;
        file.write_all(&bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        Ok(path)
    })
    .await
    .map_err(|_| MailError::Smtp("the outbox writer failed".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "Tessera <no-reply@example.com>";

    #[test]
    fn urls_pick_the_transport_and_the_password_stays_hidden() {
        let config = MailConfig::smtp("smtp://user:s3cr%40t@mail.example.com", FROM).unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("mail.example.com:587 (STARTTLS)"), "{shown}");
        assert!(
            !shown.contains("s3cr") && !shown.contains("user"),
            "{shown}"
        );
        let shown = format!(
            "{:?}",
            MailConfig::smtp("smtps://u:p@mail.example.com", FROM).unwrap()
        );
        assert!(shown.contains(":465 (TLS)"), "{shown}");
        let shown = format!(
            "{:?}",
            MailConfig::smtp("smtp://127.0.0.1:2525", FROM).unwrap()
        );
        assert!(
            shown.contains("127.0.0.1:2525 (plaintext, loopback)"),
            "{shown}"
        );
        let shown = format!("{:?}", MailConfig::smtp("smtp://[::1]:2525", FROM).unwrap());
        assert!(shown.contains("plaintext"), "{shown}");
    }

    #[test]
    fn bad_settings_are_refused_without_quoting_the_url() {
        for url in [
            "http://u:hunter2@mail.example.com",
            "smtp://u:hunter2@mail.example.com/path",
            "smtp://u:hunter2@mail.example.com?tls=no",
            "smtp://u:hunter2%zz@mail.example.com",
            "not a url hunter2",
        ] {
            let error = MailConfig::smtp(url, FROM).unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
        }
        assert!(matches!(
            MailConfig::smtp("smtp://127.0.0.1", "not an address"),
            Err(MailError::BadFrom(_))
        ));
    }

    #[test]
    fn loopback_hosts() {
        for host in ["127.0.0.1", "127.1.2.3", "[::1]", "localhost", "LOCALHOST"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["10.0.0.1", "mail.example.com", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
