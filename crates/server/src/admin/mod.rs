//! The administration dashboard at `<issuer>admin/`: server-rendered pages (askama, no
//! JavaScript needed; post → redirect → get) over the Management API's operations, so a
//! form is validated, refused and permitted exactly as the same call to `/api/v2` would be.
//!
//! `session.rs` says who is signed in and what they may do (their roles' permissions on
//! the Management API, read at every request) and checks every form; `login.rs` signs in
//! through the hosted login page as the system application [`CLIENT_ID`]; `views.rs` is
//! the frame and the refusals; `form.rs` turns forms into operation input; one file per
//! section of pages. Knows nothing of SQL: reads and changes go through
//! `crate::management`'s operations (lists through the store's paged queries).

mod actions;
mod apis;
mod applications;
mod assets;
mod connections;
mod credentials;
mod form;
mod grants;
mod home;
mod login;
mod logs;
mod roles;
mod session;
mod settings;
mod streams;
mod user_sessions;
mod users;
mod views;

use axum::routing::{get, post};
use tessera_store::Slice;

use crate::Route;
use crate::edge::params::Params;

/// The dashboard's own application, registered at start (`crate::admin_identities`).
pub(crate) const CLIENT_ID: &str = tessera_core::system::DASHBOARD_CLIENT_ID;

/// The dashboard's routes (`crate::router` registers them beside the others when the
/// dashboard is on).
pub(crate) const ROUTES: &[Route] = &[
    ("/admin", || {
        get(|| async { crate::pages::redirect("/admin/") })
    }),
    ("/admin/", || get(home::home)),
    ("/admin/login", || get(login::login)),
    ("/admin/callback", || get(login::callback)),
    ("/admin/logout", || post(login::logout)),
    ("/admin/signed-out", || get(login::signed_out)),
    ("/admin/assets/{file}", || get(assets::asset)),
    ("/admin/apis", || get(apis::list).post(apis::create)),
    ("/admin/apis/new", || get(apis::new)),
    ("/admin/apis/{id}", || get(apis::quickstart)),
    ("/admin/apis/{id}/settings", || {
        get(apis::settings).post(apis::save_settings)
    }),
    ("/admin/apis/{id}/permissions", || {
        get(apis::permissions).post(apis::add_permission)
    }),
    ("/admin/apis/{id}/permissions/remove", || {
        post(apis::remove_permission)
    }),
    ("/admin/apis/{id}/m2m", || {
        get(apis::machines).post(apis::save_machine)
    }),
    ("/admin/apis/{id}/test", || {
        get(apis::test).post(apis::issue_test_token)
    }),
    ("/admin/apis/{id}/delete", || {
        get(apis::confirm_delete).post(apis::delete)
    }),
    ("/admin/applications", || {
        get(applications::list).post(applications::create)
    }),
    ("/admin/applications/new", || get(applications::new)),
    ("/admin/applications/{id}", || {
        get(applications::settings).post(applications::save_settings)
    }),
    ("/admin/applications/{id}/rotate-secret", || {
        post(applications::rotate_secret)
    }),
    ("/admin/applications/{id}/apis", || {
        get(applications::apis).post(applications::save_api)
    }),
    ("/admin/applications/{id}/delete", || {
        get(applications::confirm_delete).post(applications::delete)
    }),
    ("/admin/applications/{id}/credentials", || {
        get(credentials::list).post(credentials::add)
    }),
    (
        "/admin/applications/{id}/credentials/{credential_id}/delete",
        || post(credentials::delete),
    ),
    ("/admin/applications/{id}/connections", || {
        get(applications::connections).post(applications::change_connection)
    }),
    ("/admin/connections", || {
        get(connections::list).post(connections::create)
    }),
    ("/admin/connections/new", || get(connections::new)),
    ("/admin/connections/{id}", || {
        get(connections::settings).post(connections::save_settings)
    }),
    ("/admin/connections/{id}/applications", || {
        get(connections::applications).post(connections::change_application)
    }),
    ("/admin/connections/{id}/delete", || {
        get(connections::confirm_delete).post(connections::delete)
    }),
    ("/admin/users", || get(users::list).post(users::create)),
    ("/admin/users/new", || get(users::new)),
    ("/admin/users/{id}", || {
        get(users::details).post(users::save_details)
    }),
    ("/admin/users/{id}/block", || post(users::block)),
    ("/admin/users/{id}/brute-force/lift", || {
        post(users::lift_brute_force_blocks)
    }),
    ("/admin/users/{id}/password", || post(users::set_password)),
    ("/admin/users/{id}/identities/unlink", || {
        post(users::unlink)
    }),
    ("/admin/users/{id}/delete", || {
        get(users::confirm_delete).post(users::delete)
    }),
    ("/admin/users/{id}/roles", || {
        get(users::user_roles).post(users::change_role)
    }),
    ("/admin/users/{id}/permissions", || {
        get(users::user_permissions).post(users::change_permission)
    }),
    ("/admin/users/{id}/authorized-applications", || {
        get(users::authorized).post(users::revoke)
    }),
    ("/admin/users/{id}/mfa", || get(users::factors)),
    ("/admin/users/{id}/mfa/reset", || {
        get(users::confirm_reset_factors).post(users::reset_factors)
    }),
    ("/admin/users/{id}/sessions", || {
        get(user_sessions::list).post(user_sessions::end)
    }),
    ("/admin/users/{id}/json", || get(users::raw_json)),
    ("/admin/roles", || get(roles::list).post(roles::create)),
    ("/admin/roles/new", || get(roles::new)),
    ("/admin/roles/{id}", || {
        get(roles::settings).post(roles::save_settings)
    }),
    ("/admin/roles/{id}/delete", || post(roles::delete)),
    ("/admin/roles/{id}/permissions", || {
        get(roles::permissions).post(roles::change_permission)
    }),
    ("/admin/roles/{id}/users", || {
        get(roles::role_users).post(roles::change_user)
    }),
    ("/admin/actions", || {
        get(actions::list).post(actions::create)
    }),
    ("/admin/actions/new", || get(actions::new)),
    ("/admin/actions/{id}", || {
        get(actions::code).post(actions::save)
    }),
    ("/admin/actions/{id}/deploy", || post(actions::deploy)),
    ("/admin/actions/{id}/delete", || post(actions::delete)),
    ("/admin/actions/{id}/test", || {
        get(actions::test).post(actions::run_test)
    }),
    ("/admin/actions/{id}/versions", || get(actions::versions)),
    ("/admin/actions/{id}/versions/{version_id}/deploy", || {
        post(actions::roll_back)
    }),
    ("/admin/triggers", || get(actions::trigger_list)),
    ("/admin/triggers/{trigger_id}", || {
        get(actions::trigger).post(actions::change_bindings)
    }),
    ("/admin/logs", || get(logs::list)),
    ("/admin/logs/{id}", || get(logs::detail)),
    ("/admin/log-streams", || {
        get(streams::list).post(streams::create)
    }),
    ("/admin/log-streams/new", || get(streams::new)),
    ("/admin/log-streams/{id}", || {
        get(streams::settings).post(streams::save)
    }),
    ("/admin/log-streams/{id}/status", || {
        post(streams::change_status)
    }),
    ("/admin/log-streams/{id}/delete", || {
        get(streams::confirm_delete).post(streams::delete)
    }),
    ("/admin/settings", || get(settings::settings)),
    ("/admin/settings/keys/rotate", || {
        post(settings::rotate_keys)
    }),
    ("/admin/settings/mfa", || post(settings::require_mfa)),
    ("/admin/settings/brute-force", || {
        post(settings::save_brute_force)
    }),
];

/// The object a dashboard form posted to `path` (`/admin/{section}/{id}/…`) changes, as
/// the Management API reads it: the template of its `GET` route and the path to read
/// (under `/api/v2`). The audit recorder keeps that read as the change's `before`, as it
/// does for the Management API's own writes; forms that create (no id) have none.
pub(crate) fn object_read(path: &str) -> Option<(&'static str, String)> {
    let mut segments = path.strip_prefix("/admin/")?.split('/');
    let section = segments.next()?;
    let id = segments.next()?;
    // The one settings form whose object the Management API reads whole.
    if (section, id) == ("settings", "brute-force") {
        let read = "/attack-protection/brute-force-protection";
        return Some((read, read.to_string()));
    }
    if id.is_empty() || id == "new" {
        return None;
    }
    let template = match section {
        "apis" => "/resource-servers/{id}",
        "applications" => "/clients/{id}",
        "connections" => "/connections/{id}",
        "users" => "/users/{id}",
        "roles" => "/roles/{id}",
        "actions" => "/actions/actions/{id}",
        "triggers" => "/actions/triggers/{trigger_id}/bindings",
        "log-streams" => "/log-streams/{id}",
        _ => return None,
    };
    let read = template.replace("{id}", id).replace("{trigger_id}", id);
    Some((template, read))
}

pub(crate) use session::principal_of;

/// Whether a delete form may go ahead. The one rule for every deletion in the dashboard:
/// the administrator signed in within the last minutes (else they sign in again and come
/// back to `confirm_page`), and typed `typed_again` — the object's name, identifier or
/// email, which the page shows — exactly.
pub(crate) enum Deletion {
    Confirmed,
    SignInAgain(axum::response::Response),
    Mistyped,
}

impl Deletion {
    pub(crate) fn of(form: &session::AdminForm, confirm_page: &str, typed_again: &str) -> Self {
        if let Some(again) = sign_in_again(&form.admin, confirm_page) {
            Deletion::SignInAgain(again)
        } else if form.params.get("confirm") != Some(typed_again) {
            Deletion::Mistyped
        } else {
            Deletion::Confirmed
        }
    }
}

/// What deletes, resets or rotates asks for a password entered within the last minutes
/// (`session::FRESH_LOGIN`): the redirect to sign in again and come back to `page`, if the
/// administrator's is older.
pub(crate) fn sign_in_again(
    admin: &session::Admin,
    page: &str,
) -> Option<axum::response::Response> {
    (!admin.is_fresh()).then(|| login::sign_in_redirect(page, true))
}

/// A page's query string (an unreadable one reads as empty: pages only take hints from
/// it — page numbers, a search, a notice key).
pub(crate) fn query_of(query: Option<String>) -> Params {
    Params::from_urlencoded(query.unwrap_or_default().as_bytes()).unwrap_or_default()
}

/// The notice a redirect asked for.
pub(crate) fn notice_of(query: &Params) -> Option<&str> {
    query.get("notice")
}

/// Which page of a list is shown (`?page=N`, from 0), and how many there are — or, for
/// a list read looking ahead, how many as far as this page knows.
pub(crate) struct Paging {
    pub(crate) page: u64,
    pub(crate) per_page: u32,
    pub(crate) total: u64,
    /// The total is not known ([`Paging::slice_looking_ahead`]): the range shows no "of".
    open_ended: bool,
}

/// Pages beyond this are not offered (a search narrows better than paging that deep).
const MAX_PAGE: u64 = 10_000;

impl Paging {
    pub(crate) fn from_query(query: &Params, per_page: u32) -> Self {
        let page = query
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
            .min(MAX_PAGE);
        Paging {
            page,
            per_page,
            total: 0,
            open_ended: false,
        }
    }

    pub(crate) fn first(per_page: u32) -> Self {
        Paging {
            page: 0,
            per_page,
            total: 0,
            open_ended: false,
        }
    }

    /// The rows to read, counting the total.
    pub(crate) fn slice(&self) -> Slice {
        Slice {
            offset: self.page.saturating_mul(u64::from(self.per_page)),
            limit: self.per_page,
            count: true,
        }
    }

    /// The rows to read for a list that grows with the tenant (users, logs), without
    /// counting them: one more than a page, to know whether another follows. Counting
    /// every row on each view grows with the list (0.1 s at a million users,
    /// BENCHMARKS.md "Large tenants"); reading a page through an index does not.
    pub(crate) fn slice_looking_ahead(&self) -> Slice {
        Slice {
            offset: self.offset(),
            limit: self.per_page.saturating_add(1),
            count: false,
        }
    }

    /// Takes the rows [`Paging::slice_looking_ahead`] read: keeps the page's own and
    /// notes whether more follow.
    pub(crate) fn looked_ahead<T>(mut self, rows: &mut Vec<T>) -> Self {
        let more = rows.len() > self.per_page as usize;
        rows.truncate(self.per_page as usize);
        self.total = self.offset() + rows.len() as u64 + u64::from(more);
        self.open_ended = true;
        self
    }

    fn offset(&self) -> u64 {
        self.page.saturating_mul(u64::from(self.per_page))
    }

    pub(crate) fn with_total(mut self, total: Option<u64>) -> Self {
        self.total = total.unwrap_or(0);
        self
    }

    pub(crate) fn has_previous(&self) -> bool {
        self.page > 0
    }

    pub(crate) fn has_next(&self) -> bool {
        (self.page + 1).saturating_mul(u64::from(self.per_page)) < self.total
            && self.page < MAX_PAGE
    }

    pub(crate) fn previous(&self) -> u64 {
        self.page.saturating_sub(1)
    }

    pub(crate) fn next(&self) -> u64 {
        self.page + 1
    }

    /// "21–40 of 57".
    pub(crate) fn range(&self) -> String {
        if self.total <= self.offset() {
            return "none".into();
        }
        let first = self.offset() + 1;
        let last = (first + u64::from(self.per_page) - 1).min(self.total);
        if self.open_ended {
            format!("{first}–{last}")
        } else {
            format!("{first}–{last} of {}", self.total)
        }
    }
}
