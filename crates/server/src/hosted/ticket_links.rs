//! What the pages mailed links open share (email verification, unblocking): a ticket is 256
//! random bits of which only the SHA-256 is stored, and opening the link only shows a
//! button — mail scanners fetch links — whose POST uses the ticket up.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tessera_core::ids;
use tessera_store::StoreResult;

use crate::AppState;
use crate::error::PageError;
use crate::hosted::forms::query_params;
use crate::hosted::session;
use crate::hosted::transaction::with_cookie;

/// A ticket is 43 base64url characters; anything much longer is not worth hashing.
const MAX_TICKET_LEN: usize = 64;

/// The hash a ticket is stored by, or `None` for what cannot be a ticket.
pub(crate) fn ticket_hash(ticket: &str) -> Option<Vec<u8>> {
    (!ticket.is_empty() && ticket.len() <= MAX_TICKET_LEN).then(|| ids::secret_hash(ticket))
}

/// `GET` of a link's page: the page `button` renders (given the ticket and a CSRF token)
/// when `live` finds the ticket live, `invalid` otherwise. Uses nothing up.
pub(crate) async fn button_page<Live>(
    (state, headers): (&AppState, &HeaderMap),
    query: Option<String>,
    live: impl FnOnce(Vec<u8>) -> Live,
    button: impl FnOnce(&str, &str) -> Response,
    invalid: fn() -> Response,
) -> Response
where
    Live: Future<Output = StoreResult<bool>>,
{
    let result = async {
        let params = query_params(query)?;
        let ticket = params.get("ticket").unwrap_or("");
        let Some(hash) = ticket_hash(ticket) else {
            return Ok(invalid());
        };
        if !live(hash).await? {
            return Ok(invalid());
        }
        let (csrf, cookie) = session::csrf_token(state, headers);
        Ok::<_, PageError>(with_cookie(button(ticket, &csrf), cookie))
    }
    .await;
    // The page's own URL holds the ticket; `edge::headers` gives every HTML page
    // `Referrer-Policy: no-referrer`, so no Referer carries it on.
    result.unwrap_or_else(IntoResponse::into_response)
}
