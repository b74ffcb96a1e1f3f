//! Reset codes by mail: the service behind "Forgot password?" — a queue to one mail worker
//! that looks the address up and sends the code outside the request path (in order, so tests
//! can tell "no mail" from "not yet"), and the per-address throttle. The pages that ask for
//! and check codes are `password_reset.rs`; `AppState` holds this service.

use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use tessera_core::{ids, normalize_email};
use tessera_store::{Store, StoreError};
use tokio::sync::mpsc;

use crate::ServerConfig;
use crate::clock::now;
use crate::edge::throttle::Throttle;
use crate::mail::{MailConfig, MailError};

/// Mails one address may be sent per `ADDRESS_WINDOW` (whoever asks).
const CODES_PER_ADDRESS: u32 = 5;
const ADDRESS_WINDOW: Duration = Duration::from_secs(3600);
/// Requests waiting for the mail worker; beyond this they are dropped (and logged).
const QUEUE: usize = 256;

/// The reset service of one server: the queue to the mail worker and the per-address
/// throttle. Without mail settings nothing is offered.
pub(crate) struct PasswordReset {
    queue: Option<mpsc::Sender<String>>,
    per_address: Throttle<String>,
    lifetime: Duration,
}

#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

pub(crate) enum Refused {
    Unavailable,
    Throttled(u64),
}

impl PasswordReset {
    /// Starts the mail worker (it ends when the server's state is dropped).
    pub(crate) fn start(config: &ServerConfig, store: Store, issuer: &str) -> Self {
        let lifetime = config.reset_code_lifetime;
        let queue = config.mail.clone().map(|mail| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(deliver(receiver, store, mail, issuer.to_string(), lifetime));
            sender
        });
        PasswordReset {
            queue,
            per_address: Throttle::new(CODES_PER_ADDRESS, ADDRESS_WINDOW),
            lifetime,
        }
    }

    pub(crate) fn offered(&self) -> bool {
        self.queue.is_some()
    }

    pub(crate) fn minutes(&self) -> u64 {
        self.lifetime.as_secs().div_ceil(60)
    }

    /// Queues a code for `email`. Never says whether the account exists.
    pub(crate) fn request(&self, email: &str) -> Result<(), Refused> {
        let queue = self.queue.as_ref().ok_or(Refused::Unavailable)?;
        let email = normalize_email(email);
        self.per_address
            .check(email.clone())
            .map_err(Refused::Throttled)?;
        if queue.try_send(email).is_err() {
            tracing::warn!("password reset queue full; a request was dropped");
        }
        Ok(())
    }
}

/// The mail worker: one request at a time, in the order they came.
async fn deliver(
    mut requests: mpsc::Receiver<String>,
    store: Store,
    mail: MailConfig,
    issuer: String,
    lifetime: Duration,
) {
    while let Some(email) = requests.recv().await {
        if let Err(error) = send_code(&store, &mail, &issuer, lifetime, &email).await {
            tracing::warn!(%error, "password reset mail not sent");
        }
    }
}

async fn send_code(
    store: &Store,
    mail: &MailConfig,
    issuer: &str,
    lifetime: Duration,
    email: &str,
) -> Result<(), DeliveryError> {
    let Some(user) = store.find_user_by_email(email).await? else {
        return Ok(());
    };
    if user.blocked {
        return Ok(());
    }
    let code = new_code();
    let now = now();
    store
        .put_password_reset_code(
            &user.user_id,
            &code_hash(&user.user_id, &code),
            now,
            now + lifetime.as_secs() as i64,
        )
        .await?;
    let minutes = lifetime.as_secs().div_ceil(60);
    let body = format!(
        "Hello,\n\n\
         someone, probably you, asked to reset the password of your account at {issuer}\n\n\
         Your code: {code}\n\n\
         It expires in {minutes} minutes. Enter it with your new password on the page where \
         you asked for it, or at {issuer}u/reset-password/code\n\n\
         If you did not ask for this, ignore this email: your password stays as it is.\n"
    );
    mail.send(&user.email, "Your password reset code", body)
        .await?;
    tracing::info!(user_id = %user.user_id, "password reset code sent");
    Ok(())
}

/// Eight uniformly random digits.
fn new_code() -> String {
    let random = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 4];
        random
            .fill(&mut bytes)
            .expect("the system random source works");
        let value = u32::from_le_bytes(bytes);
        // 4_200_000_000 = 42 * 10^8: values above would favour the low codes.
        if value < 4_200_000_000 {
            return format!("{:08}", value % 100_000_000);
        }
    }
}

/// Bound to the user, so equal codes of two users hash differently.
pub(crate) fn code_hash(user_id: &str, code: &str) -> Vec<u8> {
    ids::secret_hash(&format!("{user_id}:{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| new_code()).collect();
        assert!(codes.len() > 45);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert_ne!(code_hash("a", "12345678"), code_hash("b", "12345678"));
    }
}
