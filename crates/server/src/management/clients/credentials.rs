//! `/api/v2/clients/{id}/credentials`: an application's public keys for private_key_jwt
//! (Auth0's client credentials of type `public_key`), and the `client_authentication_methods`
//! member that names which of them authenticate it. Only confidential applications (regular
//! web, machine-to-machine) have them; at most `MAX_CLIENT_CREDENTIALS` each.

use serde_json::{Value, json};
use tessera_core::claims::rfc3339;
use tessera_core::{Client, ids};
use tessera_jose::PublicKey;
use tessera_store::{ClientCredential, MAX_CLIENT_CREDENTIALS, StoreError};

use super::super::auth::Principal;
use super::super::body::Fields;
use super::super::error::{ApiError, ApiResult};
use super::find;
use crate::AppState;
use crate::clock::now;

pub(crate) const READ: &[&str] = &["read:client_credentials"];
pub(crate) const CREATE: &[&str] = &["create:client_credentials"];
pub(crate) const UPDATE: &[&str] = &["update:client_credentials"];
pub(crate) const DELETE: &[&str] = &["delete:client_credentials"];

/// The members `POST …/credentials` takes.
pub(crate) const CREATE_FIELDS: &[&str] = &[
    "credential_type",
    "name",
    "pem",
    "alg",
    "parse_expiry_from_cert",
    "expires_at",
];
/// The members `PATCH …/credentials/{id}` takes.
pub(crate) const UPDATE_FIELDS: &[&str] = &["expires_at"];

/// Names are shown in lists; as long as Auth0 allows.
const MAX_NAME_CHARS: usize = 128;

fn not_found() -> ApiError {
    ApiError::not_found("The credential does not exist", "inexistent_credential")
}

/// Auth0's shape of a credential (never the key itself).
pub(crate) fn wire(credential: &ClientCredential) -> Value {
    let mut shown = json!({
        "id": credential.id,
        "name": credential.name,
        "kid": credential.kid,
        "alg": credential.alg,
        "credential_type": "public_key",
        "created_at": rfc3339(credential.created_at),
        "updated_at": rfc3339(credential.updated_at),
    });
    if let Some(end) = credential.expires_at {
        shown["expires_at"] = Value::String(rfc3339(end));
    }
    shown
}

/// Only confidential applications have credentials.
fn confidential(client: &Client) -> ApiResult<()> {
    if client.app_type.is_public() || client.is_public() {
        return Err(ApiError::bad_request(format!(
            "a {} application is a public client: it authenticates with no credential",
            client.app_type.as_str()
        )));
    }
    Ok(())
}

pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
) -> ApiResult<Vec<ClientCredential>> {
    principal.require(READ)?;
    let client = find(state, client_id).await?;
    Ok(state
        .store()
        .client_credentials_of(&client.client_id)
        .await?)
}

pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<ClientCredential> {
    principal.require(READ)?;
    let client = find(state, client_id).await?;
    state
        .store()
        .client_credential(&client.client_id, id)
        .await?
        .ok_or_else(not_found)
}

/// Registers a public key from `fields` (members as in `CREATE_FIELDS`).
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
    mut fields: Fields,
) -> ApiResult<ClientCredential> {
    principal.require(CREATE)?;
    let client = find(state, client_id).await?;
    let kind = Fields::required("credential_type", fields.string("credential_type")?)?;
    if kind != "public_key" {
        return Err(ApiError::invalid_property(
            "credential_type must be public_key: Tessera has no mTLS client authentication",
            "credential_type",
        ));
    }
    let pem = Fields::required("pem", fields.string("pem")?)?;
    let wanted = Wanted {
        alg: fields.string("alg")?,
        name: fields.string("name")?,
        from_cert: fields.boolean("parse_expiry_from_cert")?.unwrap_or(false),
        expires_at: expiry(&mut fields)?,
    };
    register(state.store(), &client, &pem, wanted).await
}

/// What a new credential may state besides its key.
#[derive(Debug, Default)]
pub struct Wanted {
    pub alg: Option<String>,
    pub name: Option<String>,
    /// Take the expiry from the certificate in the PEM.
    pub from_cert: bool,
    pub expires_at: Option<i64>,
}

/// The one rule for registering a key, for `/api/v2` and the CLI alike: a confidential
/// application's, one PEM key (RSA ≥ 2048 bits, P-256, Ed25519) or certificate, the
/// key's own algorithm, a plain name, an expiry in the future, at most
/// `MAX_CLIENT_CREDENTIALS`.
async fn register(
    store: &tessera_store::Store,
    client: &Client,
    pem: &str,
    wanted: Wanted,
) -> ApiResult<ClientCredential> {
    confidential(client)?;
    let key = PublicKey::from_pem(pem).map_err(|_| {
        ApiError::invalid_property(
            "pem must be one PEM public key (SPKI or PKCS#1) or X.509 certificate: RSA of at \
             least 2048 bits, P-256 or Ed25519",
            "pem",
        )
    })?;
    // The algorithm is the key's: RS256 for RSA, ES256 for P-256, EdDSA for Ed25519.
    if let Some(alg) = wanted.alg
        && alg != key.alg()
    {
        return Err(ApiError::invalid_property(
            format!("alg must be {} for this key", key.alg()),
            "alg",
        ));
    }
    let name = match wanted.name {
        Some(name) => {
            let name = name.trim().to_string();
            if name.is_empty()
                || name.chars().count() > MAX_NAME_CHARS
                || name.chars().any(char::is_control)
            {
                return Err(ApiError::invalid_property(
                    format!(
                        "name must be 1 to {MAX_NAME_CHARS} characters, without control characters"
                    ),
                    "name",
                ));
            }
            name
        }
        None => format!("{} key", key.alg()),
    };
    if wanted.from_cert && wanted.expires_at.is_some() {
        return Err(ApiError::bad_request(
            "expires_at and parse_expiry_from_cert cannot both be set",
        ));
    }
    let expires_at = if wanted.from_cert {
        Some(key.not_after.ok_or_else(|| {
            ApiError::invalid_property(
                "parse_expiry_from_cert needs a certificate in pem",
                "parse_expiry_from_cert",
            )
        })?)
    } else {
        wanted.expires_at
    };
    let now = now();
    if expires_at.is_some_and(|end| end <= now) {
        return Err(ApiError::invalid_property(
            "expires_at must be in the future",
            "expires_at",
        ));
    }
    let credential = ClientCredential {
        id: format!("cred_{}", ids::alphanumeric(22)),
        client_id: client.client_id.clone(),
        name,
        kid: key.kid().to_string(),
        alg: key.alg().to_string(),
        public_key: key.spki,
        created_at: now,
        updated_at: now,
        expires_at,
    };
    store
        .add_client_credential(&credential)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => ApiError::conflict(
                format!("An application has at most {MAX_CLIENT_CREDENTIALS} credentials"),
                "too_many_credentials",
            ),
            StoreError::NotFound(_) => super::not_found(),
            other => other.into(),
        })?;
    Ok(credential)
}

/// Changes when a credential expires (`expires_at`, `null` for never).
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
    id: &str,
    mut fields: Fields,
) -> ApiResult<ClientCredential> {
    principal.require(UPDATE)?;
    let client = find(state, client_id).await?;
    let clear = fields.is_null("expires_at");
    let expires_at = expiry(&mut fields)?;
    if !clear && expires_at.is_none() {
        return Err(ApiError::bad_request("expires_at is required"));
    }
    if expires_at.is_some_and(|end| end <= now()) {
        return Err(ApiError::invalid_property(
            "expires_at must be in the future",
            "expires_at",
        ));
    }
    state
        .store()
        .set_client_credential_expiry(&client.client_id, id, expires_at, now())
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })
}

/// Deletes a credential; it authenticates nothing from now on.
pub(crate) async fn delete(
    state: &AppState,
    principal: &Principal,
    client_id: &str,
    id: &str,
) -> ApiResult<()> {
    principal.require(DELETE)?;
    let client = find(state, client_id).await?;
    state
        .store()
        .delete_client_credential(&client.client_id, id)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => not_found(),
            other => other.into(),
        })?;
    state.forget_client(&client.client_id);
    Ok(())
}

/// `expires_at` as Unix seconds: an ISO 8601 UTC time (`2030-01-01T00:00:00Z`, fraction
/// allowed), or absent / `null`.
fn expiry(fields: &mut Fields) -> ApiResult<Option<i64>> {
    let Some(value) = fields.take("expires_at") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::invalid_property(
            "expires_at must be an ISO 8601 UTC time such as 2030-01-01T00:00:00.000Z",
            "expires_at",
        )
    };
    match value {
        Value::Null => Ok(None),
        Value::String(text) => parse_utc(&text).map(Some).ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn parse_utc(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time_of_day) = text.split_once('T')?;
    let time_of_day = time_of_day
        .split_once('.')
        .map_or(time_of_day, |(whole, fraction)| {
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                ""
            } else {
                whole
            }
        });
    let number = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let mut d = date.split('-');
    let (year, month, day) = (
        number(d.next()?, 4)?,
        number(d.next()?, 2)?,
        number(d.next()?, 2)?,
    );
    let mut t = time_of_day.split(':');
    let (hour, minute, second) = (
        number(t.next()?, 2)?,
        number(t.next()?, 2)?,
        number(t.next()?, 2)?,
    );
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    if month == 0 || month > 12 || day == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm, the inverse of `rfc3339`'s).
    let (year, month, day) = (i64::from(year), i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let unix = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    // A day past the month's end (February 30th) does not survive the round trip.
    rfc3339(unix).starts_with(&text[..19]).then_some(unix)
}

/// `client_authentication_methods` of a `PATCH /clients/{id}`: `{"private_key_jwt":
/// {"credentials": [{"id": "cred_…"}]}}` enables private_key_jwt with these credentials of
/// this application (one or two); `null` disables it. `Some(None)`: disable.
pub(super) async fn authentication_methods(
    state: &AppState,
    fields: &mut Fields,
    client: &Client,
) -> ApiResult<Option<Option<Vec<String>>>> {
    const MEMBER: &str = "client_authentication_methods";
    let Some(value) = fields.take(MEMBER) else {
        return Ok(None);
    };
    let shape = || {
        ApiError::invalid_property(
            "client_authentication_methods must be null or {\"private_key_jwt\": \
             {\"credentials\": [{\"id\": \"cred_…\"}]}}",
            MEMBER,
        )
    };
    let methods = match value {
        Value::Null => return Ok(Some(None)),
        Value::Object(methods) => methods,
        _ => return Err(shape()),
    };
    if methods.keys().any(|method| method != "private_key_jwt") {
        return Err(ApiError::invalid_property(
            "Tessera supports private_key_jwt only among client_authentication_methods",
            MEMBER,
        ));
    }
    let Some(private_key_jwt) = methods.get("private_key_jwt") else {
        return Ok(Some(None));
    };
    let credentials = private_key_jwt
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("credentials"))
        .and_then(Value::as_array)
        .ok_or_else(shape)?;
    if credentials.is_empty() || credentials.len() > MAX_CLIENT_CREDENTIALS as usize {
        return Err(ApiError::invalid_property(
            format!("private_key_jwt names 1 to {MAX_CLIENT_CREDENTIALS} credentials"),
            MEMBER,
        ));
    }
    if client.app_type.is_public() || client.is_public() {
        return Err(ApiError::invalid_property(
            format!(
                "a {} application is a public client: it cannot use private_key_jwt",
                client.app_type.as_str()
            ),
            MEMBER,
        ));
    }
    let registered = state
        .store()
        .client_credentials_of(&client.client_id)
        .await?;
    let mut chosen: Vec<String> = Vec::new();
    for credential in credentials {
        let id = credential
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str)
            .ok_or_else(shape)?;
        // Only this application's own credentials: another's id is unknown here.
        if !registered.iter().any(|c| c.id == id) {
            return Err(ApiError::invalid_property(
                "a credential in client_authentication_methods is not one of this \
                 application's",
                MEMBER,
            ));
        }
        if !chosen.iter().any(|c| c == id) {
            chosen.push(id.to_string());
        }
    }
    Ok(Some(Some(chosen)))
}

/// The same rules for the CLI, on the database directly.
pub mod direct {
    use tessera_core::Client;
    use tessera_store::{ClientCredential, ClientUpdate, Store, StoreError};

    use super::super::super::error::ApiError;
    pub use super::Wanted;

    /// A refusal: the status `/api/v2` would answer and its message.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Refusal {
        pub status: u16,
        pub message: String,
    }

    impl From<ApiError> for Refusal {
        fn from(error: ApiError) -> Self {
            Refusal {
                status: error.status.as_u16(),
                message: error.message,
            }
        }
    }

    impl From<StoreError> for Refusal {
        fn from(error: StoreError) -> Self {
            ApiError::from(error).into()
        }
    }

    pub fn wire(credential: &ClientCredential) -> serde_json::Value {
        super::wire(credential)
    }

    /// Registers `pem` for `client` and adds it to the credentials that authenticate it
    /// (turning private_key_jwt on).
    pub async fn add(
        store: &Store,
        client: &Client,
        pem: &str,
        wanted: Wanted,
    ) -> Result<ClientCredential, Refusal> {
        let credential = super::register(store, client, pem, wanted).await?;
        let mut enabled = client
            .private_key_jwt_credentials
            .clone()
            .unwrap_or_default();
        enabled.push(credential.id.clone());
        let update = ClientUpdate {
            private_key_jwt_credentials: Some(Some(enabled)),
            ..ClientUpdate::default()
        };
        store
            .update_client(&client.client_id, &update, crate::clock::now())
            .await?;
        Ok(credential)
    }

    /// Deletes the credential; when it was the last that authenticated the application,
    /// the application authenticates with its secret again. Returns whether it did.
    pub async fn remove(store: &Store, client: &Client, id: &str) -> Result<bool, Refusal> {
        store
            .delete_client_credential(&client.client_id, id)
            .await
            .map_err(|error| match error {
                StoreError::NotFound(_) => super::not_found().into(),
                other => Refusal::from(other),
            })?;
        let Some(enabled) = &client.private_key_jwt_credentials else {
            return Ok(false);
        };
        let left: Vec<String> = enabled.iter().filter(|c| *c != id).cloned().collect();
        let back_to_secret = left.is_empty();
        let update = ClientUpdate {
            private_key_jwt_credentials: Some((!back_to_secret).then_some(left)),
            ..ClientUpdate::default()
        };
        store
            .update_client(&client.client_id, &update, crate::clock::now())
            .await?;
        Ok(back_to_secret)
    }
}

/// The routes.
pub(crate) mod http {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use serde_json::Value;

    use super::super::super::auth::require;
    use super::super::super::body;
    use super::super::super::error::ApiResult;
    use super::{CREATE, CREATE_FIELDS, DELETE, READ, UPDATE, UPDATE_FIELDS, wire};
    use crate::AppState;

    /// `GET /api/v2/clients/{id}/credentials`.
    pub(crate) async fn list(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let listed = super::list(&state, &principal, &id).await?;
        Ok(Json(listed.iter().map(wire).collect::<Vec<Value>>()).into_response())
    }

    /// `POST /api/v2/clients/{id}/credentials`.
    pub(crate) async fn create(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path(id): Path<String>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, CREATE).await?;
        let fields = body::object(&headers, body, CREATE_FIELDS)?;
        let created = super::create(&state, &principal, &id, fields).await?;
        Ok((StatusCode::CREATED, Json(wire(&created))).into_response())
    }

    /// `GET /api/v2/clients/{id}/credentials/{credential_id}`.
    pub(crate) async fn get(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path((id, credential_id)): Path<(String, String)>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, READ).await?;
        let credential = super::get(&state, &principal, &id, &credential_id).await?;
        Ok(Json(wire(&credential)).into_response())
    }

    /// `PATCH /api/v2/clients/{id}/credentials/{credential_id}`: `expires_at`.
    pub(crate) async fn update(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path((id, credential_id)): Path<(String, String)>,
        body: Result<Bytes, BytesRejection>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, UPDATE).await?;
        let fields = body::object(&headers, body, UPDATE_FIELDS)?;
        let credential = super::update(&state, &principal, &id, &credential_id, fields).await?;
        Ok(Json(wire(&credential)).into_response())
    }

    /// `DELETE /api/v2/clients/{id}/credentials/{credential_id}`.
    pub(crate) async fn delete(
        State(state): State<AppState>,
        headers: HeaderMap,
        Path((id, credential_id)): Path<(String, String)>,
    ) -> ApiResult<Response> {
        let principal = require(&state, &headers, DELETE).await?;
        super::delete(&state, &principal, &id, &credential_id).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_utc;

    #[test]
    fn expiry_times_are_iso_8601_utc() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2030-01-01T00:00:00.000Z"), Some(1_893_456_000));
        for bad in [
            "2030-01-01",
            "2030-01-01T00:00:00",
            "2030-01-01T00:00:00+01:00",
            "2030-13-01T00:00:00Z",
            "2030-01-01T00:00:00.Z",
            "2030-1-01T00:00:00Z",
            "+2030-01-01T00:00:00Z",
            "2030-01-01T00:00:00:00Z",
            "2030-02-30T00:00:00Z",
            "2030-01-01T24:00:00Z",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }
}
