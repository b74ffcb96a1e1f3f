//! `POST /dbconnections/signup`: Auth0's sign-up endpoint for a database connection, as
//! auth0-js `signup()` and the SDKs' `database.signUp` call it — a JSON body, an answer in
//! Auth0's shapes, CORS for the application's registered origins. It creates the account
//! (`crate::accounts`, the same policy as the hosted page) and signs nobody in: the
//! application logs the user in afterwards, as with Auth0. (`change_password`, the other
//! `/dbconnections` endpoint, lives with the reset pages whose mail it sends.)

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tessera_core::{PasswordPolicyError, validate};

use crate::AppState;
use crate::accounts::{self, NewAccount, Refusal};
use crate::actions::{RequestFacts, SignUp, visible_parameters};
use crate::databases;
use crate::edge::client_ip::ClientIp;
use crate::edge::cors;
use crate::edge::params::{self, MAX_PARAMS_LEN};
use crate::error::SignupError;
use crate::hosted::login::USER_EXISTS;

/// The members Auth0 documents for the endpoint that Tessera stores. `username`,
/// `given_name` and `family_name` are refused by name: this connection has no usernames
/// and Tessera keeps no given or family names yet, and dropping them silently would lose
/// what the user typed.
const MEMBERS: [&str; 8] = [
    "client_id",
    "connection",
    "email",
    "password",
    "name",
    "nickname",
    "picture",
    "user_metadata",
];

fn invalid(description: impl Into<String>) -> SignupError {
    SignupError::new(StatusCode::BAD_REQUEST, "invalid_signup", description)
}

/// The password policy's refusal as Auth0 words it: a strength error listing the rules
/// (Tessera's: 8 to 128 characters), or a dictionary error for a common password.
fn weak_password(why: PasswordPolicyError) -> SignupError {
    let (name, message) = match why {
        PasswordPolicyError::TooCommon => ("PasswordDictionaryError", "Password is too common"),
        PasswordPolicyError::TooShort | PasswordPolicyError::TooLong => {
            ("PasswordStrengthError", "Password is too weak")
        }
    };
    let long_enough = !matches!(why, PasswordPolicyError::TooShort);
    let short_enough = !matches!(why, PasswordPolicyError::TooLong);
    SignupError {
        status: StatusCode::BAD_REQUEST,
        body: json!({
            "name": name,
            "message": message,
            "code": "invalid_password",
            "description": {
                "rules": [
                    {"message": "At least %d characters in length", "format": [8],
                     "code": "lengthAtLeast", "verified": long_enough},
                    {"message": "At most %d characters in length", "format": [128],
                     "code": "lengthAtMost", "verified": short_enough},
                ],
                "verified": false,
            },
            "policy": why.to_string(),
            "statusCode": 400,
        }),
        retry_after: None,
    }
}

pub(crate) async fn signup(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = match sign_up(&state, client_ip, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    cors::allow_registered(&state, &headers, response).await
}

async fn sign_up(
    state: &AppState,
    client_ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, SignupError> {
    // Each sign-up costs a password hash: the login throttle of the network applies.
    state
        .login_throttle()
        .check(client_ip)
        .await
        .map_err(|retry_after| {
            let mut error = SignupError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "Too many sign-up attempts from your network. Wait a minute and try again.",
            );
            error.retry_after = Some(retry_after);
            error
        })?;
    let mut members = json_object(headers, body)?;
    if let Some(unknown) = members.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        let shown: String = unknown.chars().take(60).collect();
        return Err(invalid(format!(
            "{shown} is not accepted: Tessera takes {}",
            MEMBERS.join(", ")
        )));
    }
    let text = |members: &mut Map<String, Value>, key: &str| match members.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(invalid(format!("{key} must be a string"))),
    };
    let client_id =
        text(&mut members, "client_id")?.ok_or_else(|| invalid("client_id is required"))?;
    let connection = text(&mut members, "connection")?;
    let email = text(&mut members, "email")?.ok_or_else(|| invalid("email is required"))?;
    let password =
        text(&mut members, "password")?.ok_or_else(|| invalid("password is required"))?;
    let name = text(&mut members, "name")?
        .map(|v| validate::person_name(&v, "user").map_err(invalid))
        .transpose()?;
    let nickname = text(&mut members, "nickname")?
        .map(|v| validate::person_name(&v, "nickname").map_err(invalid))
        .transpose()?;
    let picture = text(&mut members, "picture")?
        .map(|v| validate::picture_url(&v).map_err(invalid))
        .transpose()?;
    let user_metadata = match members.remove("user_metadata") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(map)) => {
            validate::metadata(&map, "user_metadata").map_err(invalid)?;
            map
        }
        Some(_) => return Err(invalid("user_metadata must be an object")),
    };
    let Some(connection) = connection else {
        return Err(invalid("connection is required"));
    };
    let client = if client_id.len() <= 128 {
        state.store().find_client(&client_id).await?
    } else {
        None
    };
    let Some(client) = client else {
        return Err(invalid("Unknown client"));
    };
    // The database connection named, when the application may use it (Auth0 refuses
    // one that is not enabled for the client as it refuses an unknown one).
    let Some(database) = databases::of_client(state, &client.client_id, Some(&connection)).await?
    else {
        return Err(invalid(
            "connection must be a database connection enabled for this application",
        ));
    };
    if database.signup_disabled {
        accounts::record_refused_sign_up(
            state,
            &client,
            &database.name,
            &email,
            "Public signup is disabled",
        );
        return Err(SignupError::new(
            StatusCode::BAD_REQUEST,
            "operation_not_allowed",
            "Public signup is disabled",
        ));
    }

    // Auth0 answers with what was given, beside the id and the address.
    let given: Vec<(&str, String)> = [
        ("name", name.clone()),
        ("nickname", nickname.clone()),
        ("picture", picture.clone()),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|value| (key, value)))
    .collect();
    let account = NewAccount {
        connection: Some(database.name.clone()),
        email,
        password,
        name,
        nickname,
        picture,
        user_metadata: user_metadata.clone(),
        application_name: Some(client.name.clone()),
        sign_up: Some(SignUp {
            database: database.clone(),
            request: RequestFacts::of(
                client_ip,
                "POST",
                headers,
                visible_parameters([("client_id", client_id.as_str())].into_iter()),
            ),
            client,
        }),
        ..Default::default()
    };
    let user = accounts::create(state, account)
        .await
        .map_err(|refusal| match refusal {
            Refusal::InvalidEmail => invalid("email is not a valid address"),
            Refusal::WeakPassword(why) => weak_password(why),
            Refusal::Exists => {
                SignupError::new(StatusCode::BAD_REQUEST, "user_exists", USER_EXISTS)
            }
            // Auth0's code for a sign-up an Action refused.
            Refusal::Denied { user_message } => {
                SignupError::new(StatusCode::BAD_REQUEST, "extensibility_error", user_message)
            }
            Refusal::Store(error) => error.into(),
        })?;
    state.metrics().signup();
    tracing::info!(user_id = %user.user_id, %client_id, "user signed up through /dbconnections/signup");

    // The id without its connection prefix, as Auth0 answers.
    let id = user.user_id.trim_start_matches("auth0|");
    let mut answer = json!({
        "_id": id,
        "email": user.email,
        "email_verified": user.email_verified,
    });
    for (key, value) in given {
        answer[key] = json!(value);
    }
    if !user_metadata.is_empty() {
        answer["user_metadata"] = Value::Object(user_metadata);
    }
    Ok(Json(answer).into_response())
}

/// The body as a JSON object (duplicate members refused, as everywhere).
fn json_object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, SignupError> {
    if params::media_type(headers) != "application/json" {
        return Err(invalid("Send the sign-up as application/json"));
    }
    if body.len() > MAX_PARAMS_LEN {
        return Err(invalid("The request is too large"));
    }
    match params::json_value(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid("The body must be a JSON object")),
        Err(params::JsonError::Duplicate(name)) => {
            let shown: String = name.chars().take(60).collect();
            Err(invalid(format!("{shown} is given more than once")))
        }
        Err(_) => Err(invalid("The body is not valid JSON")),
    }
}
