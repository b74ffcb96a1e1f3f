//! Getting started: the quickstart's steps, each checked from the tenant's real state.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tessera_core::AppType;
use tessera_store::{ClientFilter, ClientGrantFilter, Slice};

use super::session::Admin;
use super::views::{self, Frame};
use crate::AppState;
use crate::management::resource_servers;

struct Step {
    title: &'static str,
    detail: &'static str,
    href: &'static str,
    action: &'static str,
    done: bool,
}

#[derive(Template)]
#[template(path = "admin/home.html")]
struct HomePage<'a> {
    frame: Frame<'a>,
    steps: Vec<Step>,
    issuer: &'a str,
    done: usize,
}

/// What the checklist reads: each answer from a query that stops at the first row.
struct Progress {
    api_created: bool,
    permission_added: bool,
    app_created: bool,
    logged_in: bool,
    api_called: bool,
}

async fn progress(
    state: &AppState,
    admin: &Admin,
) -> Result<Progress, crate::management::ApiError> {
    // Ordinary APIs only: the system Management API is always there.
    let apis = resource_servers::list(state, &admin.principal, None, Slice::first(2)).await?;
    let own: Vec<_> = apis.items.iter().filter(|api| !api.is_system()).collect();
    let api_created = !own.is_empty();
    let permission_added = own.iter().any(|api| !api.scopes.is_empty());
    admin.principal.require(&["read:clients"])?;
    let interactive = ClientFilter {
        app_types: Some(
            [AppType::Spa, AppType::RegularWeb, AppType::Native]
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
        ),
        ..ClientFilter::default()
    };
    let app_created = !state
        .store()
        .list_clients(&interactive, Slice::first(1))
        .await?
        .items
        .is_empty();
    let logged_in = state
        .store()
        .has_client_login_except(super::CLIENT_ID)
        .await?;
    let api_called = !state
        .store()
        .list_client_grants(ClientGrantFilter::default(), Slice::first(1))
        .await?
        .items
        .is_empty();
    Ok(Progress {
        api_created,
        permission_added,
        app_created,
        logged_in,
        api_called,
    })
}

/// `GET /admin/`.
pub(crate) async fn home(State(state): State<AppState>, admin: Admin) -> Response {
    let progress = match progress(&state, &admin).await {
        Ok(progress) => progress,
        Err(error) => return views::operation_refused(&error),
    };
    let steps = vec![
        Step {
            title: "Create an API",
            detail: "Give it a name and an identifier: the identifier is the audience of its access tokens.",
            href: "/admin/apis/new",
            action: "Create API",
            done: progress.api_created,
        },
        Step {
            title: "Add a permission",
            detail: "In the API's Permissions tab, add a scope such as read:messages.",
            href: "/admin/apis",
            action: "Open APIs",
            done: progress.permission_added,
        },
        Step {
            title: "Create an application",
            detail: "A single-page, regular web or native application that signs users in.",
            href: "/admin/applications/new",
            action: "Create Application",
            done: progress.app_created,
        },
        Step {
            title: "Log in with the sample",
            detail: "Set the application's callback URL, then sign in through it once.",
            href: "/admin/applications",
            action: "Open Applications",
            done: progress.logged_in,
        },
        Step {
            title: "Call the API",
            detail: "Authorize a machine-to-machine application for the API and get a token in its Test tab.",
            href: "/admin/apis",
            action: "Open APIs",
            done: progress.api_called,
        },
    ];
    let done = steps.iter().filter(|s| s.done).count();
    views::page(&HomePage {
        frame: Frame::new(&state, &admin, "home", None),
        steps,
        issuer: state.issuer(),
        done,
    })
}
