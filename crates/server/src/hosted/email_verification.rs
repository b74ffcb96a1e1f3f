//! Email verification: tickets — the link a verification mail carries — and the page the
//! link opens, `/u/email-verification?ticket=…` (Auth0's path).
//!
//! A ticket is 256 random bits; only its SHA-256 is stored (`tessera_store`'s
//! `email_verification_tickets`), for the address the user had when it was issued. Opening
//! the link only shows a button: mail scanners fetch links, so only the page's POST uses
//! the ticket up and marks the address verified. Used, expired, forged tickets and tickets
//! of deleted users or changed addresses all get the same page.

use std::time::Duration;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::clock::now;
use crate::edge::client_ip::ClientIp;
use crate::email_templates::{Part, Stored, VERIFY_EMAIL, Variables, render};
use crate::error::PageError;
use crate::hosted::forms::{csrf_failure, form_params, too_many_attempts};
use crate::hosted::mailer::{DeliveryError, MailContext};
use crate::hosted::session;
use crate::hosted::ticket_links::{self, ticket_hash};
use crate::mail::Outgoing;
use crate::pages;
use crate::verification_tickets::{TICKET_LIFETIME, issue_ticket};

/// The `fv` event's description.
const INVALID_TICKET_EVENT: &str =
    "The verification link was wrong, expired, used already or no longer for this address";

/// The mail worker's job: a link to the user's address, unless it is verified already or
/// the user is gone. The tenant's `verify_email` template, when there is one, gives the
/// subject, body, sender, result URL and link lifetime; otherwise a plain-text mail.
pub(crate) async fn send_mail(
    context: &MailContext,
    user_id: &str,
    application_name: Option<&str>,
) -> Result<(), DeliveryError> {
    let store = &context.store;
    let Some(mail) = context.transport().await? else {
        tracing::info!(%user_id, "no verification mail: no mail transport");
        return Ok(());
    };
    let Some(user) = store.find_user(user_id).await? else {
        return Ok(());
    };
    // No mail to an empty address: an upstream's user may have none.
    let Some(email) = user.email.clone().filter(|email| !email.is_empty()) else {
        tracing::info!(%user_id, "no verification mail: the user has no email address");
        return Ok(());
    };
    if user.email_verified {
        return Ok(());
    }
    let template = store
        .email_template(VERIFY_EMAIL)
        .await?
        .map(|document| Stored::from_document(&document));
    let lifetime = template
        .as_ref()
        .and_then(|template| template.url_lifetime)
        .unwrap_or(TICKET_LIFETIME);
    let result_url = template
        .as_ref()
        .and_then(|template| template.result_url.as_deref());
    let link = issue_ticket(store, &context.issuer, user_id, lifetime, result_url).await?;
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
                user_email: email.clone(),
                user_name: user.name.clone(),
                user_nickname: user.nickname.clone(),
                application_name: application_name.unwrap_or_default().to_string(),
                friendly_name: setting("friendly_name"),
                support_email: setting("support_email"),
                support_url: setting("support_url"),
            };
            let subject = render(&template.subject, Part::Subject, &variables);
            let body = render(&template.body, Part::Body, &variables);
            match (subject, body) {
                (Ok(subject), Ok(body)) => Some((subject, body)),
                // Checked when saved; a template that fails now still leaves the user a link.
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "verify_email template failed; plain mail sent");
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
            plain_body(&context.issuer, &link, lifetime),
            false,
        ),
    };
    let outgoing = Outgoing {
        to: &email,
        from: template
            .as_ref()
            .filter(|_| html)
            .and_then(|template| template.from.as_deref()),
        subject: &subject,
        body,
        html,
    };
    mail.deliver(outgoing).await?;
    tracing::info!(user_id = %user.user_id, "verification mail sent");
    Ok(())
}

const DEFAULT_SUBJECT: &str = "Verify your email address";

fn plain_body(issuer: &str, link: &str, lifetime: Duration) -> String {
    let hours = lifetime.as_secs().div_ceil(3600);
    format!(
        "Hello,\n\n\
         please confirm that this is your email address for your account at {issuer}\n\n\
         Open this link and press the button on the page:\n{link}\n\n\
         The link works once and expires in {hours} hours. If you did not create an account, \
         ignore this email.\n"
    )
}

#[derive(Template)]
#[template(path = "email_verification.html")]
struct ConfirmPage<'a> {
    ticket: &'a str,
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "email_verified.html")]
struct VerifiedPage<'a> {
    email: &'a str,
    result_url: Option<&'a str>,
}

fn invalid_ticket_page() -> Response {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        "The verification link is wrong, has expired or was used already. Ask the \
         application for a new verification email.",
    )
}

/// `GET /u/email-verification?ticket=…`: the button, if the ticket is live. Uses nothing up.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let store = state.store();
    ticket_links::button_page(
        (&state, &headers),
        query,
        |hash| async move { store.email_verification_ticket_live(&hash, now()).await },
        |ticket, csrf| pages::html(StatusCode::OK, &ConfirmPage { ticket, csrf }),
        invalid_ticket_page,
    )
    .await
}

/// `POST /u/email-verification`: uses the ticket up and marks the address verified.
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
        // The audit event of the outcome, `sv` or `fv` (never the ticket): a refused ticket
        // names nobody, since no live ticket led to a user.
        let Some(hash) = ticket_hash(params.get("ticket").unwrap_or("")) else {
            state.record_log(crate::audit::event("fv", INVALID_TICKET_EVENT));
            return Ok(invalid_ticket_page());
        };
        let Some(verified) = state
            .store()
            .redeem_email_verification_ticket(&hash, now())
            .await?
        else {
            state.record_log(crate::audit::event("fv", INVALID_TICKET_EVENT));
            return Ok(invalid_ticket_page());
        };
        tracing::info!(user_id = %verified.user_id, "email address verified");
        let mut event = crate::audit::event("sv", "Email address verified");
        event.user_id = Some(verified.user_id.clone());
        event.user_name = Some(verified.email.clone());
        state.record_log(event);
        let page = VerifiedPage {
            email: &verified.email,
            result_url: verified.result_url.as_deref(),
        };
        Ok::<_, PageError>(pages::html(StatusCode::OK, &page))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
