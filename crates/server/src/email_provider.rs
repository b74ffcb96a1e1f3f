//! The tenant's email provider (`/api/v2/emails/provider`): when it is enabled, mail goes
//! through its SMTP server instead of the one `ServerConfig::mail` names (`--smtp-url`, or
//! `tessera dev`'s outbox); disabled or absent, the configured one serves. The SMTP password
//! is sealed with the master key before it is stored and opened only to build the
//! transport; it is never shown, logged or quoted in an error.

use tessera_jose::MasterKey;
use tessera_store::{EmailProvider, Store, StoreResult};

use crate::cache::ConfigReads;
use crate::mail::MailConfig;

/// What the sealed password is bound to: a sealed value cannot be moved to another use.
const SEAL_CONTEXT: &[u8] = b"email_provider smtp_pass";

pub(crate) fn seal_password(master_key: &MasterKey, password: &str) -> Vec<u8> {
    master_key.seal(password.as_bytes(), SEAL_CONTEXT)
}

/// Whether the stored provider is enabled.
pub(crate) fn is_enabled(provider: &EmailProvider) -> bool {
    provider.document.get("enabled") == Some(&serde_json::Value::Bool(true))
}

/// The SMTP transport the provider describes, sending from its `default_from_address` or
/// else `fallback_from`. The error says what is missing or wrong, never the password.
pub(crate) fn transport(
    provider: &EmailProvider,
    master_key: &MasterKey,
    fallback_from: Option<&str>,
) -> Result<MailConfig, String> {
    let credentials = provider
        .document
        .get("credentials")
        .and_then(serde_json::Value::as_object);
    let text = |key: &str| {
        credentials
            .and_then(|c| c.get(key))
            .and_then(serde_json::Value::as_str)
            .filter(|value| !value.is_empty())
    };
    let host = text("smtp_host").ok_or("credentials.smtp_host is required")?;
    let port = credentials
        .and_then(|c| c.get("smtp_port"))
        .and_then(serde_json::Value::as_u64)
        .ok_or("credentials.smtp_port is required")?;
    let from = provider
        .document
        .get("default_from_address")
        .and_then(serde_json::Value::as_str)
        .or(fallback_from)
        .ok_or("default_from_address is required (no email_from is configured)")?;
    // Port 465 is TLS from the first byte; any other port, STARTTLS (plaintext to loopback).
    let scheme = if port == 465 { "smtps" } else { "smtp" };
    let mut userinfo = String::new();
    if let Some(user) = text("smtp_user") {
        let password = match &provider.sealed_password {
            Some(sealed) => master_key
                .open(sealed, SEAL_CONTEXT)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or("the stored SMTP password cannot be opened with this master key")?,
            None => String::new(),
        };
        userinfo = format!("{}:{}@", escape(user), escape(&password));
    }
    // `MailConfig::smtp` reads the user and password %-decoded.
    MailConfig::smtp(&format!("{scheme}://{userinfo}{host}:{port}"), from)
        .map_err(|error| error.to_string())
}

/// Every byte but the unreserved ones %-escaped. Written out: `url`'s setters leave `%`
/// alone, which would then be read as an escape.
fn escape(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Where mail goes now: the enabled provider's server, else `configured`. A provider that
/// cannot be used is logged (without its password) and `configured` serves.
pub(crate) async fn current(
    store: &Store,
    master_key: &MasterKey,
    configured: Option<&MailConfig>,
) -> StoreResult<Option<MailConfig>> {
    let Some(provider) = store.email_provider().await?.filter(is_enabled) else {
        return Ok(configured.cloned());
    };
    let fallback_from = configured.map(MailConfig::sender);
    match transport(&provider, master_key, fallback_from.as_deref()) {
        Ok(mail) => Ok(Some(mail)),
        Err(error) => {
            tracing::warn!(%error, "the email provider cannot be used; the configured mail serves");
            Ok(configured.cloned())
        }
    }
}

/// Whether mail can be sent: a configured transport, or an enabled provider.
pub(crate) async fn mail_offered(reads: &ConfigReads, store: &Store, configured: bool) -> bool {
    if configured {
        return true;
    }
    match reads.email_provider(store).await {
        Ok(provider) => provider.is_some_and(|provider| is_enabled(&provider)),
        Err(error) => {
            tracing::warn!(%error, "the email provider could not be read");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_with_url_characters_survive() {
        let master_key = MasterKey::generate();
        let password = "p@ss:w/rd %41 +&=?#";
        let provider = EmailProvider {
            document: serde_json::json!({
                "name": "smtp", "enabled": true,
                "credentials": {"smtp_host": "mail.example.com", "smtp_port": 587,
                                "smtp_user": "me@example.com"}
            })
            .as_object()
            .unwrap()
            .clone(),
            sealed_password: Some(seal_password(&master_key, password)),
        };
        let mail = transport(&provider, &master_key, Some("a@example.com")).unwrap();
        let shown = format!("{mail:?}");
        assert!(shown.contains("mail.example.com:587 (STARTTLS)"), "{shown}");
        assert!(!shown.contains("p@ss"), "{shown}");
        // Another master key cannot open it; the error does not quote it.
        let error = transport(&provider, &MasterKey::generate(), Some("a@example.com"))
            .err()
            .unwrap();
        assert!(!error.contains("p@ss"), "{error}");
    }
}
