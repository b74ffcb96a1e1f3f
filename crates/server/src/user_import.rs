//! Auth0's bulk user import, the one implementation behind `POST
//! /api/v2/jobs/users-imports` and `tessera import auth0`: the file (a JSON array of
//! users in Auth0's import schema), each user checked against that schema and Tessera's
//! own rules (`tessera_core::validate`, `passwords::imported` for the hashes), then the
//! good ones written a batch per transaction (`Store::import_users`).
//!
//! A user that fails is reported in Auth0's job error shape, `{user, errors: [{code,
//! message, path}]}`, the password hashes left out of the echoed user.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value, json};
use tessera_core::{ids, validate};
use tessera_store::{ImportOutcome, ImportedUser, Store, StoreError};

use crate::edge::params::{JsonError, json_value};
use crate::passwords::imported::{self, HashRefusal};

/// The largest users file. Auth0 takes 500 KB; Tessera takes more so that a tenant of
/// ~100,000 users moves in one file, and no more so that a file parsed in memory stays
/// small (imports run one at a time, see the Management API's jobs).
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Users written per transaction: one lookup and one insert statement each.
pub const BATCH: usize = 500;

/// The members of Auth0's import schema Tessera keeps. `username`, `given_name`,
/// `family_name`, `phone_*` and `mfa_factors` are refused by name: users here have no
/// such fields, and dropping them silently would lose data.
const MEMBERS: &[&str] = &[
    "email",
    "email_verified",
    "user_id",
    "name",
    "nickname",
    "picture",
    "blocked",
    "user_metadata",
    "app_metadata",
    "password_hash",
    "custom_password_hash",
];
const UNSUPPORTED: &[&str] = &[
    "username",
    "given_name",
    "family_name",
    "phone_number",
    "phone_verified",
    "mfa_factors",
];

/// Why the whole file is refused (nothing is imported).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the users file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error("the users file is not valid JSON (or is nested deeper than 128 levels)")]
    NotJson,
    #[error("the users file names the member {0:?} twice in one object")]
    Duplicate(String),
    #[error("the users file must be a JSON array of user objects")]
    NotArray,
    #[error("the users file holds no user")]
    Empty,
}

/// Reads a users file: a non-empty JSON array, no object naming a member twice.
pub fn parse_file(bytes: &[u8]) -> Result<Vec<Value>, FileError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    match json_value(bytes) {
        Ok(Value::Array(users)) if users.is_empty() => Err(FileError::Empty),
        Ok(Value::Array(users)) => Ok(users),
        Ok(_) => Err(FileError::NotArray),
        Err(JsonError::Syntax) => Err(FileError::NotJson),
        Err(JsonError::Duplicate(name)) => Err(FileError::Duplicate(name)),
    }
}

/// One error of one user, Auth0's `{code, message, path}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemError {
    pub code: &'static str,
    pub message: String,
    pub path: String,
}

impl From<HashRefusal> for ItemError {
    fn from(refusal: HashRefusal) -> Self {
        ItemError {
            code: refusal.code,
            message: refusal.message,
            path: refusal.path,
        }
    }
}

fn item(code: &'static str, path: &str, message: impl Into<String>) -> ItemError {
    ItemError {
        code,
        message: message.into(),
        path: path.to_string(),
    }
}

fn type_error(path: &str, expected: &str) -> ItemError {
    item("INVALID_TYPE", path, format!("Expected type {expected}"))
}

/// The longest `user_id` taken (without `auth0|`).
const MAX_USER_ID: usize = 128;

/// A `user_id` of the file as Tessera keeps it: `auth0|<id>`. Auth0 prefixes the id
/// with the connection's strategy; an id that already carries `auth0|` (as Auth0's own
/// exports write them) is taken as it is.
fn user_id(id: &str) -> Result<String, String> {
    let bare = id.strip_prefix("auth0|").unwrap_or(id);
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.@+=:".contains(c);
    if bare.is_empty() || bare.len() > MAX_USER_ID || !bare.chars().all(allowed) {
        return Err(format!(
            "must be 1 to {MAX_USER_ID} letters, digits or - _ . @ + = : (after an optional auth0|)"
        ));
    }
    Ok(format!("auth0|{bare}"))
}

/// Checks one user of the file; every error found, not only the first.
pub fn check_user(value: &Value) -> Result<ImportedUser, Vec<ItemError>> {
    let Some(user) = value.as_object() else {
        return Err(vec![type_error("", "object")]);
    };
    let mut errors = Vec::new();
    for key in user.keys() {
        if UNSUPPORTED.contains(&key.as_str()) {
            errors.push(item(
                "UNSUPPORTED_PROPERTY",
                key,
                format!("{key} is not supported by Tessera: its users have no {key}"),
            ));
        } else if !MEMBERS.contains(&key.as_str()) {
            errors.push(item(
                "OBJECT_ADDITIONAL_PROPERTIES",
                key,
                format!("Additional properties not allowed: {key}"),
            ));
        }
    }
    let text = |key: &str, errors: &mut Vec<ItemError>| match user.get(key) {
        None => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(type_error(key, "string"));
            None
        }
    };
    let flag = |key: &str, errors: &mut Vec<ItemError>| match user.get(key) {
        None => None,
        Some(Value::Bool(flag)) => Some(*flag),
        Some(_) => {
            errors.push(type_error(key, "boolean"));
            None
        }
    };
    let mut imported = ImportedUser::default();
    match text("email", &mut errors) {
        Some(email) => match validate::email(&email) {
            Ok(email) => imported.email = email,
            Err(why) => errors.push(item(
                "INVALID_FORMAT",
                "email",
                format!("Object didn't pass validation for format email: {why}"),
            )),
        },
        None if !user.contains_key("email") => errors.push(item(
            "OBJECT_MISSING_REQUIRED_PROPERTY",
            "",
            "Missing required property: email",
        )),
        None => {}
    }
    imported.email_verified = flag("email_verified", &mut errors);
    imported.blocked = flag("blocked", &mut errors).unwrap_or(false);
    imported.user_id = match text("user_id", &mut errors) {
        Some(id) => user_id(&id).unwrap_or_else(|why| {
            errors.push(item("INVALID_FORMAT", "user_id", why));
            String::new()
        }),
        None => format!("auth0|{}", ids::hex_id(12)),
    };
    for (key, slot) in [
        ("name", &mut imported.name),
        ("nickname", &mut imported.nickname),
    ] {
        if let Some(value) = text(key, &mut errors) {
            match validate::person_name(&value, key) {
                Ok(value) => *slot = Some(value),
                Err(why) => errors.push(item("INVALID_FORMAT", key, why)),
            }
        }
    }
    if let Some(url) = text("picture", &mut errors) {
        match validate::picture_url(&url) {
            Ok(url) => imported.picture = Some(url),
            Err(why) => errors.push(item(
                "INVALID_FORMAT",
                "picture",
                format!("Object didn't pass validation for format url: {why}"),
            )),
        }
    }
    for (key, slot) in [
        ("user_metadata", &mut imported.user_metadata),
        ("app_metadata", &mut imported.app_metadata),
    ] {
        match user.get(key) {
            None => {}
            Some(Value::Object(map)) => match validate::metadata(map, key) {
                Ok(()) => *slot = Some(map.clone()),
                Err(why) => errors.push(item("INVALID_FORMAT", key, why)),
            },
            Some(_) => errors.push(type_error(key, "object")),
        }
    }
    match (user.get("password_hash"), user.get("custom_password_hash")) {
        (Some(_), Some(_)) => errors.push(item(
            "INVALID_FORMAT",
            "custom_password_hash",
            "password_hash and custom_password_hash are mutually exclusive",
        )),
        (Some(Value::String(hash)), None) => match imported::from_bcrypt(hash, "password_hash") {
            Ok(stored) => imported.password_hash = Some(stored),
            Err(refusal) => errors.push(refusal.into()),
        },
        (Some(_), None) => errors.push(type_error("password_hash", "string")),
        (None, Some(custom)) => match imported::from_custom(custom, "custom_password_hash") {
            Ok(stored) => imported.password_hash = Some(stored),
            Err(refusal) => errors.push(refusal.into()),
        },
        (None, None) => {}
    }
    if errors.is_empty() {
        Ok(imported)
    } else {
        Err(errors)
    }
}

/// The user as a job error shows it: as the file gave it, less its password hashes.
fn shown(value: &Value) -> Value {
    match value {
        Value::Object(user) => {
            let mut user: Map<String, Value> = user.clone();
            user.remove("password_hash");
            user.remove("custom_password_hash");
            Value::Object(user)
        }
        other => other.clone(),
    }
}

/// A failed user of an import: its position in the file and Auth0's error object.
pub type Failure = (i64, Value);

fn failure(position: usize, value: &Value, errors: &[ItemError]) -> Failure {
    (
        i64::try_from(position).unwrap_or(i64::MAX),
        json!({"user": shown(value), "errors": errors}),
    )
}

/// The users of a file that passed, with their positions, and those that did not —
/// including a repeat of an email or `user_id` seen earlier in the file.
pub struct Checked {
    pub users: Vec<(usize, ImportedUser)>,
    pub failures: Vec<Failure>,
    pub total: usize,
}

pub fn check_all(values: &[Value]) -> Checked {
    let mut emails = HashSet::new();
    let mut ids = HashSet::new();
    let mut checked = Checked {
        users: Vec::with_capacity(values.len()),
        failures: Vec::new(),
        total: values.len(),
    };
    for (position, value) in values.iter().enumerate() {
        match check_user(value) {
            Ok(user) => {
                if !emails.insert(user.email.clone()) {
                    let error = item(
                        "DUPLICATED_USER",
                        "email",
                        "The file holds another user with this email",
                    );
                    checked.failures.push(failure(position, value, &[error]));
                } else if !ids.insert(user.user_id.clone()) {
                    let error = item(
                        "DUPLICATED_USER",
                        "user_id",
                        "The file holds another user with this user_id",
                    );
                    checked.failures.push(failure(position, value, &[error]));
                } else {
                    checked.users.push((position, user));
                }
            }
            Err(errors) => checked.failures.push(failure(position, value, &errors)),
        }
    }
    checked
}

/// Auth0's job summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub failed: usize,
    pub updated: usize,
    pub inserted: usize,
    pub total: usize,
}

/// Writes the checked users into the database connection `connection`, a batch per
/// transaction. `on_batch` receives each batch's
/// failures (users the store refused: an email or id already taken) as they happen, so
/// a caller can record them as it goes. A store error stops the import: the batches
/// written so far stay.
pub async fn write<F, Fut>(
    store: &Store,
    connection: &str,
    values: &[Value],
    checked: &Checked,
    upsert: bool,
    now: i64,
    mut on_batch: F,
) -> Result<Summary, StoreError>
where
    F: FnMut(Vec<Failure>) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut summary = Summary {
        failed: checked.failures.len(),
        total: checked.total,
        ..Default::default()
    };
    for batch in checked.users.chunks(BATCH) {
        let users: Vec<ImportedUser> = batch.iter().map(|(_, user)| user.clone()).collect();
        let outcomes = store
            .import_users_into(connection, &users, upsert, now)
            .await?;
        let mut failures = Vec::new();
        for ((position, _), outcome) in batch.iter().zip(outcomes) {
            let error = match outcome {
                ImportOutcome::Inserted => {
                    summary.inserted += 1;
                    continue;
                }
                ImportOutcome::Updated => {
                    summary.updated += 1;
                    continue;
                }
                ImportOutcome::DuplicateEmail => item(
                    "DUPLICATED_USER",
                    "",
                    "The user already exist and upsert parameter is false",
                ),
                ImportOutcome::DuplicateUserId => item(
                    "DUPLICATED_USER",
                    "user_id",
                    "Another user already has this user_id",
                ),
            };
            summary.failed += 1;
            failures.push(failure(*position, &values[*position], &[error]));
        }
        if !failures.is_empty() {
            on_batch(failures).await?;
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_an_array_of_users_are_refused_whole() {
        assert_eq!(parse_file(b"{}"), Err(FileError::NotArray));
        assert_eq!(parse_file(b"[]"), Err(FileError::Empty));
        assert_eq!(parse_file(b"[{\"email\": 1"), Err(FileError::NotJson));
        assert_eq!(parse_file(b"email,name\na@b.c,x"), Err(FileError::NotJson));
        let deep = format!("[{}{}]", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse_file(deep.as_bytes()), Err(FileError::NotJson));
        assert_eq!(
            parse_file(br#"[{"email": "a@x.io", "email": "b@x.io"}]"#),
            Err(FileError::Duplicate("email".into()))
        );
        assert_eq!(
            parse_file(&vec![b' '; MAX_FILE_BYTES + 1]),
            Err(FileError::TooLarge)
        );
        assert_eq!(parse_file(br#"[{"email": "a@x.io"}]"#).unwrap().len(), 1);
    }

    #[test]
    fn users_are_checked_member_by_member() {
        let good = json!({"email": "A@X.io", "user_id": "abc", "email_verified": true, "name": "A", "app_metadata": {"plan": "pro"}});
        let user = check_user(&good).unwrap();
        assert_eq!(user.email, "a@x.io");
        assert_eq!(user.user_id, "auth0|abc");
        assert_eq!(user.email_verified, Some(true));
        assert_eq!(user.password_hash, None);
        assert_eq!(
            check_user(&json!({"email": "a@x.io", "user_id": "auth0|abc"}))
                .unwrap()
                .user_id,
            "auth0|abc"
        );
        assert!(
            check_user(&json!({"email": "a@x.io"}))
                .unwrap()
                .user_id
                .starts_with("auth0|")
        );

        let codes = |value: Value| -> Vec<(&'static str, String)> {
            check_user(&value)
                .unwrap_err()
                .into_iter()
                .map(|e| (e.code, e.path))
                .collect()
        };
        assert_eq!(codes(json!("a@x.io")), [("INVALID_TYPE", String::new())]);
        assert_eq!(
            codes(json!({})),
            [("OBJECT_MISSING_REQUIRED_PROPERTY", String::new())]
        );
        assert_eq!(
            codes(json!({"email": "not an email"})),
            [("INVALID_FORMAT", "email".into())]
        );
        assert_eq!(
            codes(json!({"email": "a@x.io", "given_name": "A", "role": "x"})),
            [
                ("UNSUPPORTED_PROPERTY", "given_name".into()),
                ("OBJECT_ADDITIONAL_PROPERTIES", "role".into())
            ]
        );
        assert_eq!(
            codes(json!({"email": "a@x.io", "blocked": "yes", "name": "<b>", "user_id": "a|b"})),
            [
                ("INVALID_TYPE", "blocked".into()),
                ("INVALID_FORMAT", "user_id".into()),
                ("INVALID_FORMAT", "name".into())
            ]
        );
        assert_eq!(
            codes(json!({"email": "a@x.io", "password_hash": "$1$md5crypt"})),
            [("INVALID_FORMAT", "password_hash".into())]
        );
        assert_eq!(
            codes(json!({"email": "a@x.io", "password_hash": "x", "custom_password_hash": {}})),
            [("INVALID_FORMAT", "custom_password_hash".into())]
        );
        assert_eq!(
            codes(json!({"email": "a@x.io", "user_metadata": {"a.b": 1}})),
            [("INVALID_FORMAT", "user_metadata".into())]
        );
    }

    #[test]
    fn a_repeated_email_or_id_fails_after_its_first_appearance() {
        let values = vec![
            json!({"email": "a@x.io", "user_id": "1", "password_hash": "$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"}),
            json!({"email": "A@x.io", "user_id": "2", "password_hash": "$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"}),
            json!({"email": "b@x.io", "user_id": "1"}),
            json!({"email": "c@x.io"}),
        ];
        let checked = check_all(&values);
        assert_eq!(checked.total, 4);
        let positions: Vec<usize> = checked.users.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, [0, 3]);
        assert_eq!(checked.failures.len(), 2);
        let (position, error) = &checked.failures[0];
        assert_eq!(*position, 1);
        assert_eq!(error["errors"][0]["code"], "DUPLICATED_USER");
        // The echoed user never carries its hash.
        assert_eq!(error["user"], json!({"email": "A@x.io", "user_id": "2"}));
    }
}
