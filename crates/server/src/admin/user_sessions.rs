//! A user's Sessions tab: the browsers signed in at the hosted pages and the refresh tokens
//! applications hold, each ended on its own or all at once ("sign out everywhere"). Lists
//! and changes are the Management API's operations (`management::sessions`,
//! `management::refresh_tokens`), so the dashboard asks for the same scopes; each list is
//! paged by checkpoint (`sessions_from`, `tokens_from`).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use tessera_core::User;
use tessera_store::Checkpoint;

use super::session::{Admin, AdminForm};
use super::users::{load, tabs, user_path};
use super::views::{self, Frame, Tab};
use super::{notice_of, query_of};
use crate::AppState;
use crate::management::{refresh_tokens, sessions};
use crate::pages::redirect;

const PER_PAGE: u32 = 25;

/// A login session as the tab lists it.
struct SessionRow {
    id: String,
    browser: String,
    address: String,
    signed_in: String,
    last_used: String,
    ends: String,
    /// `key=value` per member of its metadata (`api.session.setMetadata`).
    metadata: Vec<String>,
}

/// A refresh token as the tab lists it.
struct TokenRow {
    id: String,
    client_id: String,
    created: String,
    last_exchanged: String,
    ends: String,
    /// `key=value` per member of its metadata (`api.refreshToken.setMetadata`).
    metadata: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/user_sessions.html")]
struct SessionsPage<'a> {
    frame: Frame<'a>,
    tabs: Vec<Tab>,
    user: User,
    /// `None`: the administrator may not read them.
    sessions: Option<Vec<SessionRow>>,
    sessions_next: Option<String>,
    tokens: Option<Vec<TokenRow>>,
    tokens_next: Option<String>,
    can_end_sessions: bool,
    can_revoke_tokens: bool,
}

fn text(value: &Value, path: &[&str]) -> String {
    path.iter()
        .fold(value, |value, key| &value[*key])
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A metadata object as `key=value` lines.
fn pairs(metadata: &Value) -> Vec<String> {
    metadata
        .as_object()
        .map(|members| {
            members
                .iter()
                .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /admin/users/{id}/sessions`.
pub(crate) async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = match load(&state, &admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let query = query_of(query);
    let checkpoint = |name: &str| Checkpoint {
        from: query.get(name).filter(|from| !from.is_empty()),
        take: PER_PAGE,
    };
    let principal = &admin.principal;
    let user_id = user.user_id.as_str();
    // A list the administrator may not read is left out rather than refusing the tab.
    let (mut sessions, mut sessions_next) = (None, None);
    if admin.may(sessions::READ[0]) {
        match sessions::of_user(&state, principal, user_id, checkpoint("sessions_from")).await {
            Ok(page) => (sessions, sessions_next) = (Some(page.items), page.next),
            Err(error) => return views::operation_refused(&error),
        }
    }
    let (mut tokens, mut tokens_next) = (None, None);
    if admin.may(refresh_tokens::READ[0]) {
        match refresh_tokens::of_user(&state, principal, user_id, checkpoint("tokens_from")).await {
            Ok(page) => (tokens, tokens_next) = (Some(page.items), page.next),
            Err(error) => return views::operation_refused(&error),
        }
    }
    let sessions = sessions.map(|items| {
        items
            .iter()
            .map(|session| SessionRow {
                id: text(session, &["id"]),
                browser: text(session, &["device", "last_user_agent"]),
                address: text(session, &["device", "last_ip"]),
                signed_in: text(session, &["authenticated_at"]),
                last_used: text(session, &["last_interacted_at"]),
                ends: text(session, &["idle_expires_at"]),
                metadata: pairs(&session["session_metadata"]),
            })
            .collect()
    });
    let tokens = tokens.map(|items| {
        items
            .iter()
            .map(|token| TokenRow {
                id: text(token, &["id"]),
                client_id: text(token, &["client_id"]),
                created: text(token, &["created_at"]),
                last_exchanged: text(token, &["last_exchanged_at"]),
                ends: text(token, &["expires_at"]),
                metadata: pairs(&token["refresh_token_metadata"]),
            })
            .collect()
    });
    views::page(&SessionsPage {
        frame: Frame::new(&state, &admin, "users", notice_of(&query)),
        tabs: tabs(&user, "sessions"),
        user,
        sessions,
        sessions_next,
        tokens,
        tokens_next,
        can_end_sessions: admin.may(sessions::DELETE[0]),
        can_revoke_tokens: admin.may(refresh_tokens::DELETE[0]),
    })
}

/// `POST /admin/users/{id}/sessions`: one session of the user ended with the refresh
/// tokens issued in it (`session`), one refresh token of the user revoked
/// (`refresh_token`), or every session and refresh token of the user (`everywhere`).
/// Another user's session or token is not found here.
pub(crate) async fn end(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    let admin = &form.admin;
    let principal = &admin.principal;
    let user = match load(&state, admin, &id).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let params = &form.params;
    let user_id = user.user_id.as_str();
    let (ended, notice) = if let Some(sid) = params.get("session") {
        (
            sessions::end_of_user(&state, principal, user_id, sid).await,
            "signed_out",
        )
    } else if let Some(token) = params.get("refresh_token") {
        (
            refresh_tokens::delete_of_user_one(&state, principal, user_id, token).await,
            "signed_out",
        )
    } else if params.get("everywhere").is_some() {
        let everywhere = async {
            sessions::delete_of_user(&state, principal, user_id).await?;
            refresh_tokens::delete_of_user(&state, principal, user_id).await
        };
        (everywhere.await, "signed_out_everywhere")
    } else {
        return views::refused(StatusCode::BAD_REQUEST, "Nothing was chosen to end.");
    };
    match ended {
        Ok(()) => redirect(&format!("{}?notice={notice}", user_path(&user, "sessions"))),
        Err(error) => views::operation_refused(&error),
    }
}
