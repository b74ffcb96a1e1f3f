//! `/api/v2/users` and `/api/v2/users-by-email`: users of the database connection
//! (`Username-Password-Authentication`). Passwords follow the sign-up policy and are
//! hashed with Argon2id by the server's bounded hasher; they are never echoed.
//!
//! The operations (one function each, checking the principal's scope first) serve the
//! routes in `http` and the dashboard alike.

use axum::http::StatusCode;
use tessera_core::{PasswordPolicyError, User, check_password_policy, validate};
use tessera_store::{Page, Slice, StoreError, UserProfileChange, UserSearch};

use super::auth::Principal;
use super::body::Fields;
use super::error::{ApiError, ApiResult};
use crate::AppState;
use crate::accounts::{self, NewAccount, Refusal};
use crate::clock::now;
use crate::databases::{self, Database};

pub(crate) const READ: &[&str] = &["read:users"];
pub(crate) const CREATE: &[&str] = &["create:users"];
pub(crate) const UPDATE: &[&str] = &["update:users"];
pub(crate) const DELETE: &[&str] = &["delete:users"];

pub(crate) const CREATE_FIELDS: &[&str] = &[
    "connection",
    "email",
    "password",
    "email_verified",
    "verify_email",
    "name",
    "nickname",
    "picture",
    "blocked",
    "user_metadata",
    "app_metadata",
];
pub(crate) const UPDATE_FIELDS: &[&str] = &[
    "connection",
    "client_id",
    "email",
    "verify_email",
    "password",
    "blocked",
    "email_verified",
    "name",
    "nickname",
    "picture",
    "verify_password",
    "user_metadata",
    "app_metadata",
];

pub(crate) fn not_found() -> ApiError {
    ApiError::not_found("The user does not exist.", "inexistent_user")
}

pub(crate) async fn find(state: &AppState, user_id: &str) -> ApiResult<User> {
    state
        .store()
        .find_user(user_id)
        .await?
        .ok_or_else(not_found)
}

/// The identities linked to `users` (a page at most), read at once for their wire shapes.
pub(crate) async fn linked_of(
    state: &AppState,
    users: &[User],
) -> ApiResult<Vec<tessera_store::LinkedIdentity>> {
    let ids: Vec<&str> = users.iter().map(|u| u.user_id.as_str()).collect();
    Ok(state.store().linked_identities_of(&ids).await?)
}

/// The database connection `POST /users` creates the user in (`connection`, required).
async fn database_of(state: &AppState, fields: &mut Fields) -> ApiResult<Database> {
    let name = fields
        .string("connection")?
        .ok_or_else(|| ApiError::invalid_body("Missing required property: connection"))?;
    if let Some(database) = databases::named(state, &name).await? {
        return Ok(database);
    }
    let why = match state.store().find_connection_by_name(&name).await? {
        Some(upstream) => format!(
            "Users of connection {name} (strategy {}) sign in through their provider and \
             cannot be created here",
            upstream.strategy
        ),
        None => "The connection does not exist".to_string(),
    };
    Err(ApiError::bad_request(why).about("connection"))
}

/// The password policy of sign-up, in Auth0's words; the password itself is never shown.
fn check_password(password: &str) -> ApiResult<()> {
    check_password_policy(password).map_err(weak_password)
}

fn weak_password(why: PasswordPolicyError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("PasswordStrengthError: {why}"),
        Some("password_strength_error"),
    )
    .about("password")
}

/// `name` / `nickname`: they reach ID tokens and `/userinfo`, so no markup.
fn profile_text(value: Option<String>, what: &str, key: &str) -> ApiResult<Option<String>> {
    value
        .map(|v| {
            validate::person_name(&v, what).map_err(|why| ApiError::bad_request(why).about(key))
        })
        .transpose()
}

fn picture(value: Option<String>) -> ApiResult<Option<String>> {
    value
        .map(|url| {
            validate::picture_url(&url).map_err(|why| {
                ApiError::invalid_property(
                    format!("Object didn't pass validation for format url: {why}"),
                    "picture",
                )
            })
        })
        .transpose()
}

/// The one email rule (`tessera_core::validate::email`), in Auth0's words.
fn email(value: &str) -> ApiResult<String> {
    validate::email(value).map_err(|_| invalid_email())
}

fn invalid_email() -> ApiError {
    ApiError::invalid_property("Object didn't pass validation for format email", "email")
}

/// A page of users, searched and sorted in SQL (`user_search::parse` reads Auth0's `q`
/// and `sort` into a search).
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    search: &UserSearch,
    slice: Slice,
) -> ApiResult<Page<User>> {
    principal.require(READ)?;
    Ok(state.store().list_users(search, slice).await?)
}

/// The users with this address, one per connection at most.
pub(crate) async fn by_email(
    state: &AppState,
    principal: &Principal,
    email: &str,
) -> ApiResult<Vec<User>> {
    principal.require(READ)?;
    Ok(state.store().users_with_email(email).await?)
}

pub(crate) async fn get(state: &AppState, principal: &Principal, id: &str) -> ApiResult<User> {
    principal.require(READ)?;
    find(state, id).await
}

/// Creates a user of a database connection (members as in `CREATE_FIELDS`), through
/// `crate::accounts` as a sign-up does.
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    mut fields: Fields,
) -> ApiResult<User> {
    principal.require(CREATE)?;
    let database = database_of(state, &mut fields).await?;
    let email = Fields::required("email", fields.string("email")?)?;
    let password = Fields::required("password", fields.string("password")?)?;
    let email_verified = fields.boolean("email_verified")?.unwrap_or(false);
    // As on Auth0: a verification mail unless declined or the address is verified (and,
    // as every new account's, when the tenant's verify_email template is enabled).
    let verify_email = fields.boolean("verify_email")?.unwrap_or(true);
    let name = profile_text(fields.string("name")?, "user", "name")?;
    let nickname = profile_text(fields.string("nickname")?, "nickname", "nickname")?;
    let picture = picture(fields.string("picture")?)?;
    let blocked = fields.boolean("blocked")?.unwrap_or(false);
    let user_metadata = fields.metadata("user_metadata")?.unwrap_or_default();
    let app_metadata = fields.metadata("app_metadata")?.unwrap_or_default();
    let account = NewAccount {
        connection: Some(database.name),
        email,
        password,
        email_verified,
        name,
        nickname,
        picture,
        user_metadata,
        app_metadata,
        no_verification_mail: !verify_email,
        application_name: None,
        // An administrator's creation is not a sign-up: no registration Actions.
        sign_up: None,
    };
    let mut user = accounts::create(state, account)
        .await
        .map_err(|refusal| match refusal {
            Refusal::InvalidEmail => invalid_email(),
            Refusal::WeakPassword(why) => weak_password(why),
            Refusal::Exists => {
                ApiError::conflict("The user already exists.", "auth0_idp_error").about("email")
            }
            // Only sign-ups run pre-user-registration, and this is none.
            Refusal::Denied { user_message } => ApiError::bad_request(user_message),
            Refusal::Store(error) => error.into(),
        })?;
    if blocked {
        state
            .store()
            .set_user_blocked(&user.user_id, true, now())
            .await?;
        user.blocked = true;
    }
    Ok(user)
}

fn email_exists() -> ApiError {
    ApiError::conflict("The specified new email already exists", "auth0_idp_error").about("email")
}

/// Changes what `fields` names (members as in `UPDATE_FIELDS`): `email` (a new address
/// is unverified unless `email_verified` says otherwise, as on Auth0), `email_verified`,
/// `name`, `nickname`, `picture`, `blocked` (unblocking lifts brute-force lockouts too),
/// `password`, and `user_metadata` / `app_metadata` (merged at the first level; `null`
/// removes a member, `{}` clears). `connection` may be given (it must be the user's
/// own); `verify_email` (default true) asks for a verification mail to a new
/// address (`crate::accounts`); `client_id` and `verify_password` are accepted and have
/// no effect.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    id: &str,
    mut fields: Fields,
) -> ApiResult<User> {
    principal.require(UPDATE)?;
    let connection = fields.string("connection")?;
    fields.string("client_id")?;
    let verify_email = fields.boolean("verify_email")?.unwrap_or(true);
    let mut change = UserProfileChange {
        email: fields.string("email")?.as_deref().map(email).transpose()?,
        email_verified: fields.boolean("email_verified")?,
        name: profile_text(fields.string("name")?, "user", "name")?,
        nickname: profile_text(fields.string("nickname")?, "nickname", "nickname")?,
        picture: picture(fields.string("picture")?)?,
        user_metadata: fields.metadata("user_metadata")?,
        app_metadata: fields.metadata("app_metadata")?,
    };
    let password = fields.string("password")?;
    if let Some(password) = &password {
        check_password(password)?;
    }
    fields.boolean("verify_password")?;
    let blocked = fields.boolean("blocked")?;
    let user = find(state, id).await?;
    if let Some(name) = connection
        && name != user.connection
    {
        return Err(ApiError::bad_request(format!(
            "connection must be the user's connection, {}",
            user.connection
        ))
        .about("connection"));
    }
    if change.email.is_some() && change.email == user.email {
        change.email = None;
    }
    // A user without an email (an upstream's) has no address to be verified.
    if user.email.is_none() && change.email.is_none() && change.email_verified == Some(true) {
        return Err(
            ApiError::bad_request("The user has no email address to verify.")
                .about("email_verified"),
        );
    }
    if change.email.is_some() && change.email_verified.is_none() {
        change.email_verified = Some(false);
    }
    let now = now();
    let gone = |error| match error {
        StoreError::NotFound(_) => not_found(),
        other => ApiError::from(other),
    };
    if let Some(email) = &change.email
        && state
            .store()
            .find_user_by_email_in(&user.connection, email)
            .await?
            .is_some()
    {
        return Err(email_exists());
    }
    let changes_profile = change.email.is_some()
        || change.email_verified.is_some()
        || change.name.is_some()
        || change.nickname.is_some()
        || change.picture.is_some()
        || change.user_metadata.is_some()
        || change.app_metadata.is_some();
    if changes_profile {
        let changed = state
            .store()
            .update_user_profile(&user.user_id, &change, now)
            .await
            .map_err(|error| match error {
                StoreError::Conflict(_) => email_exists(),
                StoreError::NotFound(_) => not_found(),
                other => ApiError::from(other),
            })?;
        // A new address: a link to it, as for a new account.
        if change.email.is_some() {
            accounts::mail_verification_link(state, &changed, !verify_email, None).await?;
        }
    }
    if let Some(password) = password {
        let hash = state.hasher().hash(password).await;
        state
            .store()
            .set_user_password(&user.user_id, &hash, now)
            .await
            .map_err(gone)?;
    }
    if let Some(blocked) = blocked {
        state
            .store()
            .set_user_blocked(&user.user_id, blocked, now)
            .await
            .map_err(gone)?;
        if !blocked {
            // As `tessera users unblock`: brute-force lockouts are lifted too.
            if let Some(email) = &user.email {
                state.store().clear_login_failures(email, None).await?;
            }
        }
    }
    find(state, &user.user_id).await
}

pub(crate) async fn delete(state: &AppState, principal: &Principal, id: &str) -> ApiResult<()> {
    principal.require(DELETE)?;
    state
        .store()
        .delete_user(id, crate::clock::now())
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })
}

/// The routes: wire formats around the operations above.
pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};

    use super::super::auth::require;
    use super::super::body;
    use super::super::error::{ApiError, ApiResult};
    use super::super::paging::Query;
    use super::super::{user_search, wire};
    use super::{CREATE, CREATE_FIELDS, DELETE, READ, UPDATE, UPDATE_FIELDS};
    use crate::AppState;

    /// `GET /api/v2/users`: a page of users, searched and sorted in SQL (`user_search.rs`
    /// says what `q` and `sort` understand), within Auth0's first 1000 results.
    pub(crate) async fn list(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(
            query.as_deref(),
            &[
                "page",
                "per_page",
                "include_totals",
                "q",
                "search_engine",
                "fields",
                "include_fields",
                "sort",
                "connection",
                "primary_order",
            ],
        )?;
        let paging = query.paging()?;
        let slice = paging.capped_slice()?;
        let fields = query.field_filter()?;
        search_engine(query.get("search_engine"))?;
        // Results are always in a deterministic order: `primary_order=false` only allows
        // Auth0 to skip that work, so it changes nothing here.
        query.boolean("primary_order")?;
        let search =
            user_search::parse(query.get("q"), query.get("connection"), query.get("sort"))?;
        let page = super::list(&state, &principal, &search, slice).await?;
        let linked = super::linked_of(&state, &page.items).await?;
        Ok(paging.respond(page.map(|u| fields.apply(wire::user(&u, &linked))), "users"))
    }

    /// Tessera is search engine v3; v1 and v2 are refused as Auth0 refuses them since their
    /// end of life.
    fn search_engine(engine: Option<&str>) -> ApiResult<()> {
        match engine {
            None | Some("v3") => Ok(()),
            Some(old @ ("v1" | "v2")) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "The User Search Engine {old} (search_engine={old}) is not available for your \
                     tenant because it is deprecated. Please use the User Search Engine v3 instead \
                     (search_engine=v3)."
                ),
                Some("operation_not_supported"),
            )),
            Some(_) => Err(ApiError::invalid_query_property(
                "No enum match for: search_engine",
                "search_engine",
            )),
        }
    }

    /// `GET /api/v2/users-by-email?email=`: an array (empty or of one user).
    pub(crate) async fn by_email(
        State(state): State<AppState>,
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let query = Query::parse(query.as_deref(), &["email", "fields", "include_fields"])?;
        let email = query
            .get("email")
            .ok_or_else(|| ApiError::invalid_query("Missing required property: email"))?;
        // As Auth0: an address or 400. An empty one must never find the users who have
        // none (the store never matches NULL, and this keeps it from being asked).
        if tessera_core::validate::email(email).is_err() {
            return Err(ApiError::invalid_query_property(
                "Object didn't pass validation for format email",
                "email",
            ));
        }
        let fields = query.field_filter()?;
        let users = super::by_email(&state, &principal, email).await?;
        let linked = super::linked_of(&state, users.as_slice()).await?;
        let users: Vec<_> = users
            .iter()
            .map(|u| fields.apply(wire::user(u, &linked)))
            .collect();
        Ok(Json(users).into_response())
    }

    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        RawQuery(query): RawQuery,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let fields =
            Query::parse(query.as_deref(), &["fields", "include_fields"])?.field_filter()?;
        let user = super::get(&state, &principal, &id).await?;
        let linked = state.store().linked_identities(&user.user_id).await?;
        Ok(Json(fields.apply(wire::user(&user, &linked))).into_response())
    }

    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, CREATE_FIELDS)?;
        let user = super::create(&state, &principal, fields).await?;
        // A new user has nothing linked to it.
        Ok((StatusCode::CREATED, Json(wire::user(&user, &[]))).into_response())
    }

    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, UPDATE_FIELDS)?;
        let user = super::update(&state, &principal, &id, fields).await?;
        let linked = state.store().linked_identities(&user.user_id).await?;
        Ok(Json(wire::user(&user, &linked)).into_response())
    }

    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::delete(&state, &principal, &id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}
