//! Email verification tickets: how one is made, for the mail that carries it
//! (`hosted/email_verification.rs`, which also serves the page its link opens) and for
//! `POST /api/v2/tickets/email-verification`. A ticket is 256 random bits; only its
//! SHA-256 is stored, for the address the user has when it is issued.

use std::time::Duration;

use tessera_core::ids;
use tessera_store::{NewVerificationTicket, Store, StoreResult};

use crate::clock::now;

/// How long a ticket lives unless its issuer says otherwise: Auth0's five days.
pub(crate) const TICKET_LIFETIME: Duration = Duration::from_secs(5 * 24 * 3600);
/// The hosted page's path; the ticket follows in its query.
const PAGE: &str = "u/email-verification";

/// Issues a ticket for the user's current address and returns the link that carries it.
pub(crate) async fn issue_ticket(
    store: &Store,
    issuer: &str,
    user_id: &str,
    lifetime: Duration,
    result_url: Option<&str>,
) -> StoreResult<String> {
    let ticket = ids::secret_token();
    let now = now();
    store
        .put_email_verification_ticket(&NewVerificationTicket {
            ticket_hash: &ids::secret_hash(&ticket),
            user_id,
            result_url,
            now,
            expires_at: now.saturating_add(lifetime.as_secs().min(i64::MAX as u64) as i64),
        })
        .await?;
    Ok(format!("{issuer}{PAGE}?ticket={ticket}"))
}
