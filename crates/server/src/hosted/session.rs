//! The browser session at the hosted login page, and the CSRF cookie of its forms, which
//! also binds each login transaction to the browser that started it.

use axum::http::{HeaderMap, HeaderValue, header};
use tessera_core::{SessionLifetimes, User, ids};
use tessera_store::{SessionOrigin, SessionRecord, StoreError};

use crate::AppState;
use crate::clock::now;

const SESSION_COOKIE: &str = "tessera_session";
const CSRF_COOKIE: &str = "tessera_csrf";
/// A browser the user chose to remember after a second factor (`crate::mfa::Remember`).
const REMEMBERED_COOKIE: &str = "tessera_mfa_remembered";

fn cookie_name(state: &AppState, base: &str) -> String {
    // `__Host-` pins the cookie to this origin (Secure, Path=/, no Domain): only on HTTPS.
    if state.secure_cookies() {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// Reads one cookie from the request.
pub(crate) fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// Both cookies travel alike: silent authentication runs in an iframe on the app's site,
/// and over HTTPS that cross-site request must still carry them.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let same_site = if state.secure_cookies() {
        "None"
    } else {
        "Lax"
    };
    let secure = if state.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    );
    HeaderValue::from_str(&text).expect("cookie values are base64url")
}

/// The tenant's session lifetimes (`session_lifetime`, `idle_session_lifetime`), read
/// as they are now: a change applies to sessions already open.
pub(crate) async fn lifetimes(state: &AppState) -> Result<SessionLifetimes, StoreError> {
    Ok(SessionLifetimes::from_settings(
        &state.config_reads().tenant_settings(state.store()).await?,
    ))
}

/// Ends the sessions the tenant's absolute lifetime has ended though their stored end is
/// later (it was lowered since they began): the purge of expired rows would reach them
/// only then, and their applications are to be told now. The sessions ended.
pub(crate) async fn end_sessions_past_lifetime(state: &AppState) -> Result<u64, StoreError> {
    let lifetimes = lifetimes(state).await?;
    let now = now();
    // Over once `expiry(auth_time, now) <= now`: signed in `absolute` ago or earlier.
    state
        .store()
        .purge_sessions_signed_in_by(now - lifetimes.absolute, now)
        .await
}

/// Where the request being served comes from, as its session records it (an
/// administrator sees it among the user's sessions).
fn origin() -> SessionOrigin {
    let origin = crate::audit::request_origin();
    SessionOrigin {
        ip: origin.ip,
        user_agent: origin.user_agent,
    }
}

/// A session's use is recorded (its end extended, when and where it was used) at most
/// once a minute — or twice per idle lifetime when that is shorter: a burst of silent
/// logins writes once.
const EXTEND_GRANULARITY: i64 = 60;

/// Where a use at `now` moves a session's end: the idle lifetime on, never past the
/// absolute one nor the end a post-login action allowed (`ends_by`).
fn end_if_used(session: &SessionRecord, lifetimes: SessionLifetimes, now: i64) -> i64 {
    let expiry = lifetimes.expiry(session.auth_time, now);
    session
        .ends_by
        .map_or(expiry, |ends_by| expiry.min(ends_by))
}

/// The end to record for a session used at `now`, when a use is due to be written: its
/// idle end would move by more than the granularity, or its last recorded use is a
/// granularity old (the end may not move at all: without an idle lifetime, a session ends
/// at its absolute end however it is used).
fn use_to_record(session: &SessionRecord, lifetimes: SessionLifetimes, now: i64) -> Option<i64> {
    let expiry = end_if_used(session, lifetimes, now);
    let extends = expiry > session.expires_at + EXTEND_GRANULARITY.min(lifetimes.idle / 2);
    let last_use = session.last_interacted_at.unwrap_or(session.auth_time);
    (extends || now - last_use >= EXTEND_GRANULARITY).then_some(expiry)
}

/// The signed-in user of this browser, if the session is live and the user not blocked.
/// Using it extends it by the idle lifetime, never past the absolute one.
pub(crate) async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(SessionRecord, User)>, StoreError> {
    let Some(value) = read_cookie(headers, &cookie_name(state, SESSION_COOKIE)) else {
        return Ok(None);
    };
    if value.len() > 100 {
        return Ok(None);
    }
    let now = now();
    let id_hash = ids::secret_hash(&value);
    let Some((mut session, user)) = state.store().find_session_with_user(&id_hash, now).await?
    else {
        return Ok(None);
    };
    if user.blocked {
        return Ok(None);
    }
    let lifetimes = lifetimes(state).await?;
    if end_if_used(&session, lifetimes, now) <= now {
        // Past the tenant's absolute lifetime (which may have been lowered since).
        return Ok(None);
    }
    if let Some(expiry) = use_to_record(&session, lifetimes, now) {
        state
            .store()
            .record_session_use(&id_hash, expiry, &origin(), now)
            .await?;
        session.expires_at = session.expires_at.max(expiry);
        session.last_interacted_at = Some(now);
    }
    Ok(Some((session, user)))
}

/// How a user signed in: the connection, the methods (RFC 8176 `amr` values) and,
/// through an upstream OpenID Connect provider, that provider's session id (its ID token's
/// `sid`), which its back-channel logout names.
#[derive(Debug, Clone)]
pub(crate) struct SignedInWith {
    pub(crate) connection: String,
    pub(crate) amr: Vec<String>,
    pub(crate) upstream_sid: Option<String>,
}

impl SignedInWith {
    /// A sign-in of Tessera's own (a password, a passkey): no upstream session.
    pub(crate) fn here(connection: &str, amr: Vec<String>) -> SignedInWith {
        SignedInWith {
            connection: connection.to_string(),
            amr,
            upstream_sid: None,
        }
    }
}

/// Starts a new session (a fresh id on every login) for a user who signed in to the
/// application `client_id` as `how` says, and returns its `Set-Cookie`. Every hosted login
/// ends here: its audit event (`s`) too.
pub(crate) async fn start(
    state: &AppState,
    (user, client_id): (&User, &str),
    how: SignedInWith,
) -> Result<(SessionRecord, HeaderValue), StoreError> {
    let SignedInWith {
        connection,
        amr,
        upstream_sid,
    } = how;
    let user_id = user.user_id.as_str();
    let value = ids::secret_token();
    let now = now();
    let lifetimes = lifetimes(state).await?;
    let record = SessionRecord {
        sid: ids::alphanumeric(32),
        user_id: user_id.to_string(),
        connection: Some(connection.clone()),
        amr,
        auth_time: now,
        expires_at: lifetimes.expiry(now, now),
        last_interacted_at: Some(now),
        upstream_sid,
        ends_by: None,
    };
    state
        .store()
        .create_session(&ids::secret_hash(&value), &record, &origin(), now)
        .await?;
    let mut event = crate::audit::event("s", "Successful login");
    event.user_id = Some(user.user_id.clone());
    event.user_name = Some(user.email.clone().unwrap_or_else(|| user.name.clone()));
    event.client_id = Some(client_id.to_string());
    event.connection = Some(connection);
    event.details = serde_json::json!({ "amr": record.amr });
    state.record_log(event);
    Ok((
        record,
        set_cookie(
            state,
            &cookie_name(state, SESSION_COOKIE),
            &value,
            // The browser keeps the cookie as long as the session could last; the server
            // decides when it ends.
            lifetimes.absolute,
        ),
    ))
}

/// Remembers this browser for `user_id` after a second factor, for `lifetime` seconds at
/// most; returns its `Set-Cookie`. The store keeps the cookie's hash, never the cookie.
pub(crate) async fn remember_browser(
    state: &AppState,
    user_id: &str,
    lifetime: i64,
) -> Result<HeaderValue, StoreError> {
    let token = ids::secret_token();
    let now = now();
    state
        .store()
        .remember_browser(user_id, &ids::secret_hash(&token), now, now + lifetime)
        .await?;
    let name = cookie_name(state, REMEMBERED_COOKIE);
    Ok(set_cookie(state, &name, &token, lifetime))
}

/// Whether this browser was remembered for `user_id` less than `overall` seconds ago and
/// used so less than `inactivity` seconds ago; a yes records this use.
pub(crate) async fn browser_remembered(
    state: &AppState,
    headers: &HeaderMap,
    user_id: &str,
    (inactivity, overall): (i64, i64),
) -> Result<bool, StoreError> {
    let Some(token) =
        read_cookie(headers, &cookie_name(state, REMEMBERED_COOKIE)).filter(|v| v.len() == 43)
    else {
        return Ok(false);
    };
    let now = now();
    state
        .store()
        .use_remembered_browser(
            user_id,
            &ids::secret_hash(&token),
            now,
            (now - overall, now - inactivity),
        )
        .await
}

/// Ends the browser's session (if any), revokes the refresh tokens obtained in it, and
/// returns the `Set-Cookie` that clears it, with the session that ended.
pub(crate) async fn end(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(HeaderValue, Option<SessionRecord>), StoreError> {
    let name = cookie_name(state, SESSION_COOKIE);
    let mut ended = None;
    if let Some(value) = read_cookie(headers, &name) {
        let id_hash = ids::secret_hash(&value);
        // Refresh tokens obtained in this session end with it.
        if let Some(session) = state.store().find_session(&id_hash, now()).await? {
            state
                .store()
                .revoke_refresh_families_of_session(&session.sid, now())
                .await?;
            let mut event = crate::audit::event("slo", "User successfully logged out");
            event.user_id = Some(session.user_id.clone());
            event.connection.clone_from(&session.connection);
            state.record_log(event);
            ended = Some(session);
        }
        state.store().delete_session(&id_hash, now()).await?;
    }
    Ok((set_cookie(state, &name, "", 0), ended))
}

/// The browser's CSRF token, and a `Set-Cookie` when a new one had to be made.
pub(crate) fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let name = cookie_name(state, CSRF_COOKIE);
    match read_cookie(headers, &name).filter(|v| v.len() == 43) {
        Some(existing) => (existing, None),
        None => {
            let token = ids::secret_token();
            let cookie = csrf_cookie(state, &token);
            (token, Some(cookie))
        }
    }
}

fn csrf_cookie(state: &AppState, token: &str) -> HeaderValue {
    set_cookie(
        state,
        &cookie_name(state, CSRF_COOKIE),
        token,
        tessera_core::LOGIN_TRANSACTION_LIFETIME,
    )
}

/// The CSRF token a new login transaction is bound to (its hash is stored with it), and
/// the `Set-Cookie` that keeps the cookie at least as long as the transaction.
pub(crate) fn transaction_binding(state: &AppState, headers: &HeaderMap) -> (String, HeaderValue) {
    let (token, _) = csrf_token(state, headers);
    let cookie = csrf_cookie(state, &token);
    (token, cookie)
}

/// Whether this browser started the transaction whose binding is `transaction_hash`: it
/// holds the CSRF cookie the transaction was created with.
pub(crate) fn started_here(state: &AppState, headers: &HeaderMap, transaction_hash: &[u8]) -> bool {
    read_cookie(headers, &cookie_name(state, CSRF_COOKIE))
        .is_some_and(|cookie| ids::secret_matches(&cookie, transaction_hash))
}

/// Double-submit check without a transaction (password reset reached from a mail): the
/// form's token equals the cookie's.
pub(crate) fn csrf_cookie_matches(state: &AppState, headers: &HeaderMap, submitted: &str) -> bool {
    match read_cookie(headers, &cookie_name(state, CSRF_COOKIE)) {
        Some(cookie) => !submitted.is_empty() && ids::constant_time_eq(&cookie, submitted),
        None => false,
    }
}

/// Double-submit check: the form's token equals the cookie's and the transaction's.
pub(crate) fn csrf_valid(
    state: &AppState,
    headers: &HeaderMap,
    submitted: &str,
    transaction_hash: &[u8],
) -> bool {
    csrf_cookie_matches(state, headers, submitted) && started_here(state, headers, transaction_hash)
}

#[cfg(test)]
mod tests {
    use tessera_core::SessionLifetimes;
    use tessera_store::SessionRecord;

    use super::{EXTEND_GRANULARITY, use_to_record};

    fn session(expires_at: i64, last_interacted_at: Option<i64>) -> SessionRecord {
        SessionRecord {
            sid: "s".into(),
            user_id: "u".into(),
            connection: None,
            amr: vec![],
            auth_time: 1_000,
            expires_at,
            last_interacted_at,
            upstream_sid: None,
            ends_by: None,
        }
    }

    #[test]
    fn a_use_is_recorded_at_most_once_a_minute_whether_or_not_the_end_moves() {
        // No idle lifetime: the end never moves, the use is still recorded once a minute.
        let fixed = SessionLifetimes {
            absolute: 86_400,
            idle: 86_400,
        };
        let end = 1_000 + 86_400;
        assert_eq!(
            use_to_record(&session(end, Some(1_000)), fixed, 1_030),
            None
        );
        assert_eq!(
            use_to_record(
                &session(end, Some(1_000)),
                fixed,
                1_000 + EXTEND_GRANULARITY
            ),
            Some(end)
        );
        // Sessions from before uses were kept count from their sign-in.
        assert_eq!(use_to_record(&session(end, None), fixed, 1_100), Some(end));
        // An idle lifetime: a use that moves the end by more than the granularity is
        // written even within the minute; one that moves it by less is not.
        let idle = SessionLifetimes {
            absolute: 86_400,
            idle: 3_600,
        };
        assert_eq!(
            use_to_record(&session(1_000 + 3_600, Some(1_000)), idle, 1_030),
            None
        );
        assert_eq!(
            use_to_record(&session(1_000 + 3_600, Some(1_059)), idle, 1_100),
            Some(1_100 + 3_600)
        );
        // A short idle lifetime: twice per idle lifetime.
        let short = SessionLifetimes {
            absolute: 86_400,
            idle: 20,
        };
        assert_eq!(
            use_to_record(&session(1_020, Some(1_000)), short, 1_011),
            Some(1_031)
        );
        assert_eq!(
            use_to_record(&session(1_020, Some(1_000)), short, 1_009),
            None
        );
    }
}
