//! Brute-force protection's `user_notification` shield: when an account is first refused
//! for too many failed sign-ins from a network, its owner is mailed (the tenant's
//! `blocked_account` template when enabled, else plain text) a link that lifts that one
//! block, `/u/unblock?ticket=…`. Only the ticket's SHA-256 is stored; opening the link
//! only shows a button (mail scanners fetch links) and the page's POST uses it up, lifting
//! the count the mail was about and no other. Nobody is mailed about an account that does
//! not exist, and the answer to the guess that blocked it is the same either way.

use std::time::Duration;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::ids;
use tessera_store::NewUnblockTicket;

use crate::AppState;
use crate::brute_force::address_of;
use crate::clock::now;
use crate::edge::client_ip::ClientIp;
use crate::email_templates::{Part, Stored, Variables, render};
use crate::error::PageError;
use crate::hosted::forms::{csrf_failure, form_params, too_many_attempts};
use crate::hosted::mailer::{DeliveryError, MailContext};
use crate::hosted::session;
use crate::hosted::ticket_links::{self, ticket_hash};
use crate::mail::Outgoing;
use crate::pages;

/// The tenant's template for this mail, as Auth0 names it.
pub(crate) const BLOCKED_ACCOUNT: &str = "blocked_account";
/// How long the link works unless the template says otherwise: Auth0's five days, as for
/// verification links.
const TICKET_LIFETIME: Duration = Duration::from_secs(5 * 24 * 3600);
/// The page's path; the ticket follows in its query.
const PAGE: &str = "u/unblock";
const DEFAULT_SUBJECT: &str = "Your account was blocked";

/// What the mail worker was asked: the account of the database connection `connection`
/// with the (normalized) address `email` was blocked after `attempts` failures counted at
/// `counted_at` (a network, or `""` for every network).
#[derive(Debug)]
pub(crate) struct Blocked {
    pub(crate) connection: String,
    pub(crate) email: String,
    pub(crate) counted_at: String,
    pub(crate) attempts: i64,
}

/// The mail worker's job: a link lifting the block, to the account's owner, if there is
/// such an account (with an address) and it is not blocked by an administrator anyway.
pub(crate) async fn send_mail(
    context: &MailContext,
    blocked: &Blocked,
) -> Result<(), DeliveryError> {
    let store = &context.store;
    let Some(mail) = context.transport().await? else {
        tracing::info!("no blocked-account mail: no mail transport");
        return Ok(());
    };
    let Some(user) = store
        .find_user_by_email_in(&blocked.connection, &blocked.email)
        .await?
    else {
        return Ok(());
    };
    let Some(to) = user.email.clone().filter(|email| !email.is_empty()) else {
        return Ok(());
    };
    if user.blocked {
        return Ok(());
    }
    let template = if crate::email_templates::enabled(store, BLOCKED_ACCOUNT).await? {
        store
            .email_template(BLOCKED_ACCOUNT)
            .await?
            .map(|document| Stored::from_document(&document))
    } else {
        None
    };
    let lifetime = template
        .as_ref()
        .and_then(|template| template.url_lifetime)
        .unwrap_or(TICKET_LIFETIME);
    let ticket = ids::secret_token();
    let expires_at = now().saturating_add(lifetime.as_secs().min(i64::MAX as u64) as i64);
    store
        .put_unblock_ticket(&NewUnblockTicket {
            ticket_hash: &ids::secret_hash(&ticket),
            user_id: &user.user_id,
            email: &blocked.email,
            counted_at: &blocked.counted_at,
            expires_at,
        })
        .await?;
    let link = format!("{}{PAGE}?ticket={ticket}", context.issuer);
    let rendered = match &template {
        Some(template) => {
            let settings = store.tenant_settings().await?;
            let setting = |key: &str| {
                settings
                    .get(key)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let variables = Variables {
                url: link.clone(),
                user_email: to.clone(),
                user_name: user.name.clone(),
                user_nickname: user.nickname.clone(),
                application_name: String::new(),
                friendly_name: setting("friendly_name"),
                support_email: setting("support_email"),
                support_url: setting("support_url"),
            };
            match (
                render(&template.subject, Part::Subject, &variables),
                render(&template.body, Part::Body, &variables),
            ) {
                (Ok(subject), Ok(body)) => Some((subject, body)),
                // Checked when saved; a template that fails now still leaves the user a link.
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "blocked_account template failed; plain mail sent");
                    None
                }
            }
        }
        None => None,
    };
    let (subject, body, html) = match rendered {
        Some((subject, body)) if !subject.trim().is_empty() => (subject, body, true),
        Some((_, body)) => (DEFAULT_SUBJECT.to_string(), body, true),
        None => (
            DEFAULT_SUBJECT.to_string(),
            plain_body(&context.issuer, blocked, &link, lifetime),
            false,
        ),
    };
    mail.deliver(Outgoing {
        to: &to,
        from: template
            .as_ref()
            .filter(|_| html)
            .and_then(|template| template.from.as_deref()),
        subject: &subject,
        body,
        html,
    })
    .await?;
    tracing::info!(user_id = %user.user_id, "blocked-account mail sent");
    Ok(())
}

fn plain_body(issuer: &str, blocked: &Blocked, link: &str, lifetime: Duration) -> String {
    let from = match address_of(&blocked.counted_at) {
        Some(network) => format!("from the network {network}"),
        None => "from any network".to_string(),
    };
    let hours = lifetime.as_secs().div_ceil(3600);
    format!(
        "Hello,\n\n\
         your account at {issuer} was blocked {from} after {attempts} failed sign-in attempts \
         in a row.\n\n\
         If it was you, open this link and press the button on the page to unblock it:\n\
         {link}\n\n\
         The link works once and expires in {hours} hours. If it was not you, someone may be \
         guessing your password: consider changing it (\"Forgot password?\" on the sign-in \
         page does).\n",
        attempts = blocked.attempts,
    )
}

#[derive(Template)]
#[template(path = "unblock.html")]
struct ConfirmPage<'a> {
    ticket: &'a str,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "unblocked.html")]
struct UnblockedPage;

fn invalid_ticket_page() -> Response {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        "The unblock link is wrong, has expired or was used already.",
    )
}

/// `GET /u/unblock?ticket=…`: the button, if the ticket is live. Uses nothing up.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let store = state.store();
    ticket_links::button_page(
        (&state, &headers),
        query,
        |hash| async move { store.unblock_ticket_live(&hash, now()).await },
        |ticket, csrf| pages::html(StatusCode::OK, &ConfirmPage { ticket, csrf }),
        invalid_ticket_page,
    )
    .await
}

/// `POST /u/unblock`: uses the ticket up and lifts its block.
pub(crate) async fn submit(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        if let Err(retry_after) = state.login_throttle().check(client_ip).await {
            return Ok(too_many_attempts(retry_after));
        }
        let params = form_params(&headers, &body)?;
        if !session::csrf_cookie_matches(&state, &headers, params.get("csrf").unwrap_or("")) {
            return Err(csrf_failure());
        }
        let Some(hash) = ticket_hash(params.get("ticket").unwrap_or("")) else {
            return Ok(invalid_ticket_page());
        };
        let Some((user_id, _)) = state.store().redeem_unblock_ticket(&hash, now()).await? else {
            return Ok(invalid_ticket_page());
        };
        tracing::info!(%user_id, "a brute-force block lifted by its owner's link");
        Ok::<_, PageError>(pages::html(StatusCode::OK, &UnblockedPage))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
