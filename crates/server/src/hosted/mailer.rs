//! The mail the server sends on its own: a queue to one mail worker that looks the
//! recipient up and sends outside the request path (in order, so tests can tell "no mail"
//! from "not yet"), and the per-address throttle of mail anyone may ask for. Each mail goes
//! where `crate::email_provider` says at that moment: the tenant's enabled provider, else the
//! configured transport. What each mail
//! says is beside its feature: `reset_codes.rs` (password reset codes),
//! `email_verification.rs` (verification links), `unblock.rs` (blocked-account links). `AppState` holds this service.

use std::time::Duration;

use tessera_core::normalize_email;
use tessera_jose::MasterKey;
use tessera_store::{Store, StoreError};
use tokio::sync::mpsc;

use crate::ServerConfig;
use crate::cache::ConfigReads;
use crate::edge::throttle::ClusterThrottle;
use crate::email_provider;
use crate::hosted::{email_verification, reset_codes, unblock};
use crate::mail::{MailConfig, MailError};

/// Reset codes one address may be sent per `ADDRESS_WINDOW` (whoever asks).
const CODES_PER_ADDRESS: u32 = 5;
/// Blocked-account mails one account may be sent per `ADDRESS_WINDOW`: a guesser with many
/// networks blocks the account from each, and must not fill its owner's mailbox.
const BLOCKED_MAILS_PER_ACCOUNT: u32 = 5;
const ADDRESS_WINDOW: Duration = Duration::from_secs(3600);
/// Mails waiting for the worker; beyond this they are dropped (and logged).
const QUEUE: usize = 256;

/// One mail for the worker to send.
#[derive(Debug)]
enum MailJob {
    /// A password reset code to the account of this database connection with this
    /// (normalized) address, if there is one.
    ResetCode {
        connection: String,
        email: String,
        /// Who asked, for the audit event (`scpr`) the worker records.
        origin: crate::audit::Origin,
    },
    /// A verification link to this user's address, naming the application signed up to.
    Verification {
        user_id: String,
        application_name: Option<String>,
    },
    /// A link lifting a brute-force block, to the blocked account's owner if there is one.
    BlockedAccount(unblock::Blocked),
}

/// What the worker needs besides the job.
pub(crate) struct MailContext {
    pub(crate) store: Store,
    /// The configured transport (`ServerConfig::mail`), unless a provider is enabled.
    configured: Option<MailConfig>,
    master_key: MasterKey,
    pub(crate) issuer: String,
    pub(crate) reset_code_lifetime: Duration,
    pub(crate) audit: crate::audit::AuditLog,
}

impl MailContext {
    /// Where this mail goes; `None`: nowhere (then it is not sent).
    pub(crate) async fn transport(&self) -> Result<Option<MailConfig>, DeliveryError> {
        Ok(
            email_provider::current(&self.store, &self.master_key, self.configured.as_ref())
                .await?,
        )
    }
}

/// The mail service of one server: the queue to the worker and the per-address throttle.
/// Without a transport (configured, or the tenant's provider) nothing is sent.
pub(crate) struct Mailer {
    queue: mpsc::Sender<MailJob>,
    configured: bool,
    per_address: ClusterThrottle<String>,
    blocked_mails: ClusterThrottle<String>,
    reset_code_lifetime: Duration,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

pub(crate) enum Refused {
    Throttled(u64),
}

impl Mailer {
    /// Starts the mail worker (it ends when the server's state is dropped).
    pub(crate) fn start(
        config: &ServerConfig,
        store: Store,
        issuer: &str,
        audit: crate::audit::AuditLog,
    ) -> Self {
        let reset_code_lifetime = config.reset_code_lifetime;
        let (queue, receiver) = mpsc::channel(QUEUE);
        let context_store = store.clone();
        let context = MailContext {
            store,
            configured: config.mail.clone(),
            master_key: config.master_key.clone(),
            issuer: issuer.to_string(),
            reset_code_lifetime,
            audit,
        };
        tokio::spawn(deliver(receiver, context));
        Mailer {
            queue,
            configured: config.mail.is_some(),
            per_address: ClusterThrottle::new(
                CODES_PER_ADDRESS,
                ADDRESS_WINDOW,
                &context_store,
                "reset_mail",
            ),
            blocked_mails: ClusterThrottle::new(
                BLOCKED_MAILS_PER_ACCOUNT,
                ADDRESS_WINDOW,
                &context_store,
                "blocked_mail",
            ),
            reset_code_lifetime,
        }
    }

    /// Whether mail can be sent now: a configured transport or the tenant's enabled
    /// provider. What offers password reset.
    pub(crate) async fn offered(&self, reads: &ConfigReads, store: &Store) -> bool {
        email_provider::mail_offered(reads, store, self.configured).await
    }

    pub(crate) fn reset_code_minutes(&self) -> u64 {
        self.reset_code_lifetime.as_secs().div_ceil(60)
    }

    /// Queues a reset code for the account of the database connection `connection` with
    /// `email` (the caller checked that mail is `offered`). Never says whether the
    /// account exists.
    pub(crate) async fn request_reset_code(
        &self,
        connection: &str,
        email: &str,
    ) -> Result<(), Refused> {
        let email = normalize_email(email);
        self.per_address
            .check(email.clone())
            .await
            .map_err(Refused::Throttled)?;
        enqueue(
            &self.queue,
            MailJob::ResetCode {
                connection: connection.to_string(),
                email,
                origin: crate::audit::request_origin(),
            },
        );
        Ok(())
    }

    /// Queues a verification link for the user (not sent when there is no transport).
    pub(crate) fn send_verification(&self, user_id: &str, application_name: Option<&str>) {
        enqueue(
            &self.queue,
            MailJob::Verification {
                user_id: user_id.to_string(),
                application_name: application_name.map(str::to_string),
            },
        );
    }
}

impl Mailer {
    /// Queues the mail telling the owner of the account `email` of the database
    /// connection `connection` (if there is one) that it was blocked after `attempts`
    /// failures counted at `counted_at`. Sent once per block: the caller asks at the first
    /// refusal only; and at most `BLOCKED_MAILS_PER_ACCOUNT` an hour per account.
    pub(crate) async fn notify_blocked(
        &self,
        connection: &str,
        email: &str,
        counted_at: &str,
        attempts: i64,
    ) {
        let email = normalize_email(email);
        if self.blocked_mails.check(email.clone()).await.is_err() {
            tracing::info!("blocked-account mail not sent: this account's hourly limit");
            return;
        }
        enqueue(
            &self.queue,
            MailJob::BlockedAccount(unblock::Blocked {
                connection: connection.to_string(),
                email,
                counted_at: counted_at.to_string(),
                attempts,
            }),
        );
    }
}

fn enqueue(queue: &mpsc::Sender<MailJob>, job: MailJob) {
    if queue.try_send(job).is_err() {
        tracing::warn!("mail queue full; a mail was dropped");
    }
}

/// The mail worker: one mail at a time, in the order they were asked for.
async fn deliver(mut jobs: mpsc::Receiver<MailJob>, context: MailContext) {
    while let Some(job) = jobs.recv().await {
        let result = match &job {
            MailJob::ResetCode {
                connection,
                email,
                origin,
            } => reset_codes::send_code(&context, connection, email, origin).await,
            MailJob::Verification {
                user_id,
                application_name,
            } => {
                email_verification::send_mail(&context, user_id, application_name.as_deref()).await
            }
            MailJob::BlockedAccount(blocked) => unblock::send_mail(&context, blocked).await,
        };
        if let Err(error) = result {
            let kind = match job {
                MailJob::ResetCode { .. } => "password reset",
                MailJob::Verification { .. } => "verification",
                MailJob::BlockedAccount(_) => "blocked-account",
            };
            tracing::warn!(%error, "{kind} mail not sent");
        }
    }
}
