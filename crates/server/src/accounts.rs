//! Accounts of the database connections, as every entrance creates them: the hosted sign-up
//! page, Auth0's `POST /dbconnections/signup` and the Management API's `POST /users`. One
//! sign-up policy — a valid address (`tessera_core::validate::email`), the password policy,
//! one account per address — and one shape of user id. Each entrance checks its own
//! parameters and says a refusal in its own words. A user's own sign-up (the hosted page,
//! `/dbconnections/signup`) runs Actions' pre-user-registration here, before the password
//! is hashed and the account written, and post-user-registration after, off the request's
//! path; an administrator's `POST /users` runs neither (as on Auth0, where they belong to
//! sign-ups).
//!
//! Also the one rule of when an account — new, or given a new address by `PATCH /users` —
//! is mailed a verification link: its address is not verified, the caller did not decline
//! (`verify_email: false` on `POST` / `PATCH /users`), and
//! the tenant's `verify_email` template is enabled (`/api/v2/email-templates/verify_email`;
//! on Auth0 that template's status toggle decides the same).

use tessera_core::{
    Client, DATABASE_CONNECTION, Metadata, PasswordPolicyError, User, check_password_policy, ids,
    validate,
};
use tessera_store::{NewUser, StoreError};

use crate::AppState;
use crate::clock::now;
use crate::email_templates::{self, VERIFY_EMAIL};

/// An account to create. The profile members were checked by the entrance (each has its
/// own error shapes); the address and the password are checked here.
#[derive(Default)]
pub(crate) struct NewAccount {
    /// The database connection's name; `None`: the default one.
    pub(crate) connection: Option<String>,
    pub(crate) email: String,
    pub(crate) password: String,
    pub(crate) email_verified: bool,
    pub(crate) name: Option<String>,
    pub(crate) nickname: Option<String>,
    pub(crate) picture: Option<String>,
    pub(crate) user_metadata: Metadata,
    pub(crate) app_metadata: Metadata,
    /// The entrance declined the verification mail (`POST /users` with `verify_email: false`).
    pub(crate) no_verification_mail: bool,
    /// The application signed up to, for the verification mail.
    pub(crate) application_name: Option<String>,
    /// A user's own sign-up through this application: the registration Actions run.
    pub(crate) sign_up: Option<crate::actions::SignUp>,
}

/// Why no account was created.
#[derive(Debug)]
pub(crate) enum Refusal {
    InvalidEmail,
    WeakPassword(PasswordPolicyError),
    /// An account with this address exists (addresses are unique, case-insensitively).
    Exists,
    /// pre-user-registration refused (`api.access.deny`, `api.validation.error`) or failed:
    /// what the user may be shown.
    Denied {
        user_message: String,
    },
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        Refusal::Store(error)
    }
}

/// Creates the account (`auth0|` + 24 hex characters, as Auth0's database users). A
/// user's own sign-up is an audit event here, whichever entrance it came through: `ss`, or
/// `fs` with the reason (never the password).
pub(crate) async fn create(state: &AppState, account: NewAccount) -> Result<User, Refusal> {
    let Some(sign_up) = &account.sign_up else {
        return create_account(state, account).await;
    };
    let mut event = sign_up_event(
        "ss",
        "Successful signup",
        &sign_up.client,
        &sign_up.database.name,
        &account.email,
    );
    let created = create_account(state, account).await;
    match &created {
        Ok(user) => event.user_id = Some(user.user_id.clone()),
        Err(refusal) => {
            event.log_type = "fs".into();
            event.description = Some(match refusal {
                Refusal::InvalidEmail => "The email address is not valid".into(),
                Refusal::WeakPassword(why) => format!("Password is too weak: {why}"),
                Refusal::Exists => "The user already exists".into(),
                Refusal::Denied { user_message } => {
                    format!("Refused by pre-user-registration: {user_message}")
                }
                Refusal::Store(_) => "The account could not be stored".into(),
            });
        }
    }
    state.record_log(event);
    created
}

/// A sign-up refused before any account could be created — the connection does not let
/// users sign themselves up — as the same `fs` event a refused account is.
pub(crate) fn record_refused_sign_up(
    state: &AppState,
    client: &Client,
    connection: &str,
    email: &str,
    description: &str,
) {
    state.record_log(sign_up_event("fs", description, client, connection, email));
}

fn sign_up_event(
    log_type: &str,
    description: &str,
    client: &Client,
    connection: &str,
    email: &str,
) -> tessera_store::LogEvent {
    let mut event = crate::audit::event(log_type, description);
    event.client_id = Some(client.client_id.clone());
    event.client_name = Some(client.name.clone());
    event.connection = Some(connection.to_string());
    event.user_name = Some(email.chars().take(256).collect());
    event
}

async fn create_account(state: &AppState, mut account: NewAccount) -> Result<User, Refusal> {
    let email = validate::email(&account.email).map_err(|_| Refusal::InvalidEmail)?;
    check_password_policy(&account.password).map_err(Refusal::WeakPassword)?;
    // Checked before hashing so that a taken address costs no hash; the store's unique
    // index decides a race.
    let connection = account
        .connection
        .take()
        .unwrap_or_else(|| DATABASE_CONNECTION.to_string());
    if state
        .store()
        .find_user_by_email_in(&connection, &email)
        .await?
        .is_some()
    {
        return Err(Refusal::Exists);
    }
    if let Some(sign_up) = &account.sign_up {
        let profile = crate::actions::NewProfile {
            email: &email,
            name: account.name.as_deref(),
            nickname: account.nickname.as_deref(),
            picture: account.picture.as_deref(),
            user_metadata: &account.user_metadata,
            app_metadata: &account.app_metadata,
        };
        let changes = crate::actions::pre_user_registration(state, sign_up, &profile)
            .await
            .map_err(|stopped| match stopped {
                crate::actions::RegistrationStopped::Denied { user_message } => {
                    Refusal::Denied { user_message }
                }
                crate::actions::RegistrationStopped::Store(error) => Refusal::Store(error),
            })?;
        // An empty patch would clear the object (`merge_metadata` is PATCH's rule).
        if !changes.user_metadata.is_empty() {
            tessera_core::merge_metadata(&mut account.user_metadata, &changes.user_metadata);
        }
        if !changes.app_metadata.is_empty() {
            tessera_core::merge_metadata(&mut account.app_metadata, &changes.app_metadata);
        }
    }
    let password_hash = state.hasher().hash(account.password).await;
    let new = NewUser {
        email,
        password_hash,
        email_verified: account.email_verified,
        name: account.name,
        nickname: account.nickname,
        picture: account.picture,
        user_metadata: account.user_metadata,
        app_metadata: account.app_metadata,
    };
    let user_id = format!("auth0|{}", ids::hex_id(12));
    let user = match state
        .store()
        .create_user_in(&connection, &new, &user_id, now())
        .await
    {
        Ok(user) => user,
        Err(StoreError::Conflict(_)) => return Err(Refusal::Exists),
        Err(other) => return Err(other.into()),
    };
    mail_verification_link(
        state,
        &user,
        account.no_verification_mail,
        account.application_name.as_deref(),
    )
    .await?;
    if let Some(sign_up) = account.sign_up {
        crate::actions::post_user_registration(state, sign_up, &user);
    }
    Ok(user)
}

/// Queues a verification link for `user` (new, or with a new address) when the rule above
/// says so: the address is not verified, the caller did not decline, the tenant's
/// `verify_email` template is enabled.
pub(crate) async fn mail_verification_link(
    state: &AppState,
    user: &User,
    declined: bool,
    application_name: Option<&str>,
) -> Result<(), StoreError> {
    if !user.email_verified
        && !declined
        && email_templates::enabled(state.store(), VERIFY_EMAIL).await?
    {
        state
            .mailer()
            .send_verification(&user.user_id, application_name);
    }
    Ok(())
}
