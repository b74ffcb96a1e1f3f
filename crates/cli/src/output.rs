//! What the admin commands print. With `--json`, the Management API's own shapes
//! (`tessera_server::wire`): an API, application, grant, user, role or permission prints
//! exactly as `/api/v2/` answers it, so scripts written against Auth0's output keep
//! working. The few shapes here have no Management API route in Tessera (consents, signing
//! keys, a role with its permissions); they too only ever gain members.

use serde::Serialize;
use tessera_core::claims::rfc3339;
use tessera_core::consent::Consent;
use tessera_core::{Client, ClientGrant, Permission, ResourceServer, User};
use tessera_server::wire;
use tessera_store::{KeyState, SigningKeyRecord};

// ---- JSON shapes --------------------------------------------------------------------------

/// A user's consent, as Auth0's `GET /api/v2/grants?user_id=…` lists it (plus the times).
#[derive(Debug, Serialize)]
pub struct ConsentJson<'a> {
    pub id: &'a str,
    #[serde(rename = "clientID")]
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub audience: &'a str,
    pub scope: &'a [String],
    pub created_at: String,
    pub updated_at: String,
}

pub fn consent(consent: &Consent) -> ConsentJson<'_> {
    ConsentJson {
        id: &consent.id,
        client_id: &consent.client_id,
        user_id: &consent.user_id,
        audience: &consent.audience,
        scope: &consent.scopes,
        created_at: rfc3339(consent.created_at),
        updated_at: rfc3339(consent.updated_at),
    }
}

/// `roles show --json`: the role as the Management API shows it, with its permissions as
/// `/roles/{id}/permissions` lists them.
#[derive(Debug, Serialize)]
pub struct RoleWithPermissions {
    #[serde(flatten)]
    pub role: wire::Role,
    pub permissions: Vec<wire::Permission>,
}

/// A signing key: our state name plus the booleans of Auth0's `/api/v2/keys/signing`.
#[derive(Debug, Serialize)]
pub struct SigningKeyJson<'a> {
    pub kid: &'a str,
    pub alg: &'a str,
    pub state: &'static str,
    pub current: bool,
    pub next: bool,
    pub previous: bool,
    pub revoked: bool,
    pub created_at: String,
    pub updated_at: String,
}

pub fn signing_key(key: &SigningKeyRecord) -> SigningKeyJson<'_> {
    SigningKeyJson {
        kid: &key.kid,
        alg: &key.alg,
        state: key.state.as_str(),
        current: key.state == KeyState::Current,
        next: key.state == KeyState::Next,
        previous: key.state == KeyState::Previous,
        revoked: key.state == KeyState::Retired,
        created_at: rfc3339(key.created_at),
        updated_at: rfc3339(key.updated_at),
    }
}

/// Prints a value as pretty JSON on stdout. A closed pipe (`tessera … --json | head`) is
/// not an error worth a panic: the reader has what it wanted.
pub fn print_json<T: Serialize + ?Sized>(value: &T) {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value).expect("output types always serialize");
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

// ---- human-readable forms -----------------------------------------------------------------

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    use std::io::Write as _;
    let _ = write!(std::io::stdout().lock(), "{}", table(header, rows));
}

pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    // Cells may hold what others wrote (a browser's user agent, an action's metadata, a
    // user's name): a control character would redraw the administrator's terminal.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| {
                    cell.chars()
                        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Prints `label: value` lines with the values aligned.
/// Under a table: which rows of how many were shown, and how to see the next ones.
pub fn print_page_footer(args: &crate::cli::PageArgs, shown: usize, total: Option<u64>) {
    let Some(total) = total else { return };
    let first = args.page.saturating_mul(u64::from(args.per_page));
    let last = first + shown as u64;
    if shown > 0 {
        println!("({}–{last} of {total})", first + 1);
    } else {
        println!("(page {} is past the end: {total} in all)", args.page);
    }
    if last < total {
        println!("Next page: --page {}", args.page + 1);
    }
}

pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields
        .iter()
        .map(|(label, _)| label.len() + 1)
        .max()
        .unwrap_or(0);
    for (label, value) in fields {
        println!("{:<width$} {value}", format!("{label}:"));
    }
}

pub fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

pub fn resource_server_fields(api: &ResourceServer) -> Vec<(&'static str, String)> {
    // "read:messages (Read your messages), write:messages": the description when there is one.
    let scopes: Vec<String> = api
        .scopes
        .iter()
        .map(|s| match s.description.as_str() {
            "" => s.value.clone(),
            description => format!("{} ({description})", s.value),
        })
        .collect();
    vec![
        ("id", api.id.clone()),
        ("name", api.name.clone()),
        ("identifier", api.identifier.clone()),
        ("scopes", list_or_none(&scopes)),
        ("signing alg", api.signing_alg.clone()),
        ("token lifetime", format!("{} s", api.token_lifetime)),
        ("offline access", yes_no(api.allow_offline_access)),
        ("token dialect", api.token_dialect.as_str().to_string()),
        ("DPoP required", yes_no(api.requires_dpop())),
    ]
}

pub fn client_fields(client: &Client) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", client.client_id.clone()),
        ("name", client.name.clone()),
        ("type", client.app_type.as_str().to_string()),
        (
            "auth method",
            match &client.private_key_jwt_credentials {
                Some(ids) => format!("private_key_jwt ({})", ids.join(", ")),
                None => client.token_endpoint_auth_method.clone(),
            },
        ),
        (
            "require PAR",
            client.require_pushed_authorization_requests.to_string(),
        ),
        ("callbacks", list_or_none(&client.callbacks)),
        ("web origins", list_or_none(&client.web_origins)),
        ("logout URLs", list_or_none(&client.allowed_logout_urls)),
        (
            "back-channel",
            match client
                .oidc_logout
                .as_ref()
                .and_then(|l| l.url().map(|url| (url, l)))
            {
                None => "none".to_string(),
                Some((url, logout)) => {
                    let initiators = &logout.backchannel_logout_initiators;
                    let told = match initiators.mode {
                        tessera_core::InitiatorMode::All => format!("{url} (every session end)"),
                        // rp-logout notifies whether selected or not.
                        tessera_core::InitiatorMode::Custom => {
                            let mut named = vec![tessera_core::RP_LOGOUT];
                            named.extend(
                                initiators
                                    .selected_initiators
                                    .iter()
                                    .map(String::as_str)
                                    .filter(|name| *name != tessera_core::RP_LOGOUT),
                            );
                            format!("{url} ({})", named.join(", "))
                        }
                    };
                    if logout.includes_session_metadata() {
                        format!("{told}, with the session's metadata")
                    } else {
                        told
                    }
                }
            },
        ),
        ("grant types", list_or_none(&client.grant_types)),
        (
            "party",
            if client.is_first_party {
                "first (no consent page)"
            } else {
                "third (users consent)"
            }
            .to_string(),
        ),
        (
            "allowed APIs",
            client
                .allowed_apis
                .as_deref()
                .map_or_else(|| "all".to_string(), list_or_none),
        ),
    ]
}

pub fn grant_fields(grant: &ClientGrant) -> Vec<(&'static str, String)> {
    vec![
        ("id", grant.id.clone()),
        ("client_id", grant.client_id.clone()),
        ("audience", grant.audience.clone()),
        ("scope", list_or_none(&grant.scope)),
    ]
}

pub fn user_fields(user: &User) -> Vec<(&'static str, String)> {
    vec![
        ("user_id", user.user_id.clone()),
        // Empty for a user without an email (an upstream's).
        ("email", user.email.clone().unwrap_or_default()),
        (
            "email verified",
            user.email
                .as_ref()
                .map_or_else(String::new, |_| yes_no(user.email_verified)),
        ),
        ("name", user.name.clone()),
        ("nickname", user.nickname.clone()),
        ("blocked", yes_no(user.blocked)),
        ("created", rfc3339(user.created_at)),
        (
            "last login",
            user.last_login
                .map(rfc3339)
                .unwrap_or_else(|| "never".into()),
        ),
        ("logins", user.logins_count.to_string()),
    ]
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

/// Permissions as an aligned table (API, permission).
pub fn print_permissions(permissions: &[Permission]) {
    let rows: Vec<Vec<String>> = permissions
        .iter()
        .map(|p| vec![p.audience.clone(), p.permission.clone()])
        .collect();
    print_table(&["API", "PERMISSION"], &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let text = table(
            &["ID", "NAME"],
            &[
                vec!["a".into(), "first".into()],
                vec!["long-id".into(), "x".into()],
            ],
        );
        assert_eq!(text, "ID       NAME\na        first\nlong-id  x\n");
    }
}
