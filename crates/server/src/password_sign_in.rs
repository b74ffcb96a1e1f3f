//! The one password check every entrance signs users in through: the hosted login form
//! and the token endpoint's password grants. Brute-force protection (`crate::brute_force`,
//! as the tenant set it) counts the attempt before the password is looked at, an unknown account costs what a known one does, a
//! blocked user is refused, an imported hash gives way to Tessera's own, and a success
//! clears the count. Each entrance answers the outcome in its own shape (a page, OAuth
//! JSON) and throttles requests per network first, as it did before this existed.

use std::net::IpAddr;

use tessera_core::User;
use tessera_store::StoreResult;

use crate::AppState;
use crate::clock::now;
use crate::edge::metrics::Login;
use crate::passwords::Verification;

/// A count of failures that never reached the lockout is forgotten after this long (seconds)
/// without another failure: a day, as Keycloak's failure reset time is about half of.
/// Counts at the lockout stay until a reset or an unblock.
pub(crate) const FAILURES_FORGOTTEN_AFTER: i64 = 24 * 60 * 60;

/// What a password attempt comes to.
#[derive(Debug)]
pub(crate) enum Checked {
    SignedIn(Box<User>),
    /// Too many consecutive failures for this account from this network (or from any, as
    /// the tenant set it): refused even with the right password, until an administrator
    /// unblocks.
    Locked,
    /// An unknown account or a wrong password (the same answer, the same time).
    Wrong,
    /// The right password of a blocked user.
    Blocked,
}

/// Checks `username` and `password` against the database connection `database`, for a
/// client at `client_ip` signing in to the application `client` (id and name). Every
/// refusal is an audit event here: `fu` (unknown account), `fp` (wrong password),
/// `limit_wc` (locked out by brute-force protection), `f` (blocked user); the success is
/// the entrance's to record (a session, a token).
pub(crate) async fn check(
    state: &AppState,
    (client_ip, client): (IpAddr, (&str, &str)),
    database: &str,
    username: &str,
    password: String,
) -> StoreResult<Checked> {
    let refused = |log_type: &str, description: &str, user: Option<&User>| {
        let mut event = crate::audit::event(log_type, description);
        event.client_id = Some(client.0.to_string());
        event.client_name = Some(client.1.to_string());
        event.connection = Some(database.to_string());
        event.ip = Some(client_ip.to_string());
        event.user_name = Some(username.chars().take(256).collect());
        event.user_id = user.map(|user| user.user_id.clone());
        state.record_log(event);
    };
    let protection = crate::brute_force::settings(state).await?;
    // Counted per network (as the throttles are) or per account, as the tenant set it.
    let counted_at = protection.counted_at(client_ip);
    // Every attempt counts as a failure before the password is checked, and a success
    // clears the count: one atomic increment per attempt, so guesses sent in parallel
    // cannot all pass this check before any of them is counted.
    if !protection.exempts(client_ip) {
        let attempt = state
            .store()
            .record_login_failure(username, &counted_at, now())
            .await?;
        if protection.locks_out(attempt) {
            if protection.notifies(attempt) {
                state
                    .mailer()
                    .notify_blocked(database, username, &counted_at, attempt - 1)
                    .await;
            }
            state.metrics().login(Login::Locked);
            refused(
                "limit_wc",
                "Too many failed login attempts: the account is blocked for this network.",
                None,
            );
            return Ok(Checked::Locked);
        }
    }
    let found = state
        .store()
        .find_user_with_password_in(database, username)
        .await?;
    let (user, stored_hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, None),
    };
    // Unknown accounts run a dummy verification: same answer, same timing.
    let verification = state.hasher().verify(password, stored_hash).await;
    let user = match user {
        Some(user) if verification.is_right() => user,
        Some(user) => {
            state.metrics().login(Login::WrongCredentials);
            refused("fp", "Wrong email or password.", Some(&user));
            return Ok(Checked::Wrong);
        }
        None => {
            state.metrics().login(Login::WrongCredentials);
            refused("fu", "Wrong email or password.", None);
            return Ok(Checked::Wrong);
        }
    };
    if user.blocked {
        state.metrics().login(Login::Blocked);
        refused("f", "user is blocked", Some(&user));
        return Ok(Checked::Blocked);
    }
    if let Verification::RightButOutdated {
        outdated,
        replacement,
    } = &verification
    {
        state
            .store()
            .upgrade_password_hash(&user.user_id, outdated, replacement)
            .await?;
    }
    state
        .store()
        .record_password_login(username, &counted_at, &user.user_id, now())
        .await?;
    state.metrics().login(Login::Success);
    Ok(Checked::SignedIn(Box::new(user)))
}
