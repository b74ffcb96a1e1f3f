//! Database connections (strategy `auth0`): Tessera's own user stores, of which the
//! default one, `Username-Password-Authentication`, always exists and more may be created.
//! This module decides which of them a request means — the one an application's password
//! form uses, the one a `connection` parameter names — and what its options allow. It
//! knows nothing of how passwords are checked or accounts created (`crate::accounts`).

use serde_json::{Value, json};
use tessera_core::DATABASE_CONNECTION;
use tessera_core::connection::Strategy;
use tessera_store::{ConnectionRecord, StoreResult};

use crate::AppState;

/// The options an administrator may set on a database connection (Auth0's names).
pub(crate) const DISABLE_SIGNUP: &str = "disable_signup";
pub(crate) const DISABLE_CHANGE_PASSWORD: &str = "disable_self_service_change_password";
pub(crate) const SETTABLE_OPTIONS: &[&str] = &[DISABLE_SIGNUP, DISABLE_CHANGE_PASSWORD];
/// Which ways of signing in the connection offers: `{"password":{"enabled":true},
/// "passkey":{"enabled":…}}`. Passwords stay on; passkeys are the administrator's choice.
pub(crate) const AUTHENTICATION_METHODS: &str = "authentication_methods";
/// How passkeys are offered: `progressive_enrollment_enabled` (offer one after a sign-in)
/// is settable; the login page shows a button (`challenge_ui: "button"`) and there is no
/// cross-device prompt (`local_enrollment_enabled: false`).
pub(crate) const PASSKEY_OPTIONS: &str = "passkey_options";
/// The structured options above, checked by [`authentication_methods`] and
/// [`passkey_options`].
pub(crate) const STRUCTURED_OPTIONS: &[&str] = &[AUTHENTICATION_METHODS, PASSKEY_OPTIONS];

/// A database connection, as the flows need it.
#[derive(Debug, Clone)]
pub(crate) struct Database {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Users may not sign themselves up (the hosted page, `/dbconnections/signup`); an
    /// administrator still creates users.
    pub(crate) signup_disabled: bool,
    /// Users may not ask for a password reset themselves.
    pub(crate) change_password_disabled: bool,
    /// Users may sign in with a passkey ("Continue with a passkey").
    pub(crate) passkeys: bool,
    /// A user without a passkey is offered one after signing in (with passkeys on).
    pub(crate) passkey_enrollment: bool,
}

impl Database {
    /// `record` when it is a database connection.
    pub(crate) fn of(record: &ConnectionRecord) -> Option<Database> {
        if Strategy::parse(&record.strategy) != Some(Strategy::Database) {
            return None;
        }
        let flag = |name: &str| {
            record
                .options
                .get(name)
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
        };
        let nested = |option: &str, path: &str| {
            record
                .options
                .get(option)
                .and_then(|value| value.pointer(path))
                .and_then(serde_json::Value::as_bool)
        };
        let passkeys = nested(AUTHENTICATION_METHODS, "/passkey/enabled").unwrap_or(false);
        Some(Database {
            id: record.id.clone(),
            name: record.name.clone(),
            signup_disabled: flag(DISABLE_SIGNUP),
            change_password_disabled: flag(DISABLE_CHANGE_PASSWORD),
            passkeys,
            passkey_enrollment: passkeys
                && nested(PASSKEY_OPTIONS, "/progressive_enrollment_enabled").unwrap_or(true),
        })
    }
}

/// The structured options as Tessera enforces them when nothing is set.
pub(crate) fn default_structured_options() -> Value {
    json!({
        AUTHENTICATION_METHODS: {"password": {"enabled": true}, "passkey": {"enabled": false}},
        PASSKEY_OPTIONS: {
            "challenge_ui": "button",
            "progressive_enrollment_enabled": true,
            "local_enrollment_enabled": false,
        },
    })
}

/// `authentication_methods` as given, completed; or why it cannot be.
pub(crate) fn authentication_methods(given: &Value) -> Result<Value, String> {
    let given = given
        .as_object()
        .ok_or("options.authentication_methods must be an object")?;
    let mut methods = default_structured_options()[AUTHENTICATION_METHODS].clone();
    for (method, value) in given {
        let enabled = value
            .as_object()
            .filter(|object| object.len() == 1)
            .and_then(|object| object.get("enabled"))
            .and_then(Value::as_bool);
        let Some(enabled) = enabled else {
            return Err(format!(
                "options.authentication_methods.{} must be {{\"enabled\": true|false}}",
                shown(method)
            ));
        };
        match method.as_str() {
            "passkey" => methods["passkey"]["enabled"] = json!(enabled),
            "password" if enabled => {}
            "password" => {
                return Err("Tessera does not turn passwords off: \
                     options.authentication_methods.password.enabled must be true"
                    .into());
            }
            other => {
                return Err(format!(
                    "options.authentication_methods.{} is not a sign-in method of Tessera",
                    shown(other)
                ));
            }
        }
    }
    Ok(methods)
}

/// `passkey_options` as given, completed; or why it cannot be.
pub(crate) fn passkey_options(given: &Value) -> Result<Value, String> {
    let given = given
        .as_object()
        .ok_or("options.passkey_options must be an object")?;
    let mut options = default_structured_options()[PASSKEY_OPTIONS].clone();
    for (name, value) in given {
        match name.as_str() {
            "progressive_enrollment_enabled" => {
                if !value.is_boolean() {
                    return Err(format!("options.passkey_options.{name} must be a boolean"));
                }
                options[name.as_str()] = value.clone();
            }
            // Autofill (conditional UI) and the cross-device prompt are not offered.
            "challenge_ui" | "local_enrollment_enabled" if options[name.as_str()] != *value => {
                return Err(format!(
                    "options.passkey_options.{name} cannot be {}: Tessera's is {}",
                    shown(&value.to_string()),
                    options[name.as_str()]
                ));
            }
            "challenge_ui" | "local_enrollment_enabled" => {}
            other => {
                return Err(format!(
                    "options.passkey_options.{} is not a passkey option of Tessera",
                    shown(other)
                ));
            }
        }
    }
    Ok(options)
}

/// A name from a request, short enough to repeat in an error.
fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The database connection named `name`, if there is one.
pub(crate) async fn named(state: &AppState, name: &str) -> StoreResult<Option<Database>> {
    Ok(state
        .config_reads()
        .connection_named(state.store(), name)
        .await?
        .as_ref()
        .and_then(Database::of))
}

/// The database connection an application's password form signs users in and up with:
/// the one `requested` names (`/authorize?connection=`) when the application may use it;
/// without a request, the default database connection when enabled for the application,
/// else its first enabled database connection by name. `None`: no password form (the
/// application signs users in through upstream providers only, or the request named a
/// connection the application may not use).
pub(crate) async fn of_client(
    state: &AppState,
    client_id: &str,
    requested: Option<&str>,
) -> StoreResult<Option<Database>> {
    let enabled = state
        .config_reads()
        .sign_in_connections(state.store(), client_id)
        .await?;
    Ok(pick(&enabled, requested))
}

/// [`of_client`] among an application's enabled connections, read already.
pub(crate) fn pick(enabled: &[ConnectionRecord], requested: Option<&str>) -> Option<Database> {
    let mut databases = enabled.iter().filter_map(Database::of);
    match requested {
        Some(name) => databases.find(|database| database.name == name),
        None => {
            let databases: Vec<Database> = databases.collect();
            let default = databases
                .iter()
                .position(|database| database.name == DATABASE_CONNECTION);
            databases.into_iter().nth(default.unwrap_or(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(name: &str, strategy: &str) -> ConnectionRecord {
        ConnectionRecord {
            id: format!("con_{name}"),
            name: name.into(),
            display_name: name.into(),
            strategy: strategy.into(),
            options: serde_json::Map::new(),
            sealed_secret: None,
            show_as_button: true,
            is_domain_connection: false,
            metadata: serde_json::Map::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn picked(enabled: &[ConnectionRecord], requested: Option<&str>) -> Option<String> {
        pick(enabled, requested).map(|database| database.name)
    }

    #[test]
    fn the_default_comes_first_then_the_first_by_name_and_a_request_must_be_enabled() {
        let both = [
            connection("alpha", "auth0"),
            connection("github", "github"),
            connection(DATABASE_CONNECTION, "auth0"),
        ];
        assert_eq!(picked(&both, None).as_deref(), Some(DATABASE_CONNECTION));
        assert_eq!(picked(&both, Some("alpha")).as_deref(), Some("alpha"));
        assert_eq!(picked(&both, Some("beta")), None);
        assert_eq!(
            picked(&both, Some("github")),
            None,
            "an upstream is no database"
        );
        let others = [connection("alpha", "auth0"), connection("beta", "auth0")];
        assert_eq!(picked(&others, None).as_deref(), Some("alpha"));
        assert_eq!(picked(&[connection("github", "github")], None), None);
    }

    #[test]
    fn passkeys_are_off_until_enabled_and_their_options_are_checked() {
        let mut record = connection("db", "auth0");
        let off = Database::of(&record).unwrap();
        assert!(!off.passkeys && !off.passkey_enrollment);
        let on = authentication_methods(&json!({"passkey": {"enabled": true}})).unwrap();
        assert_eq!(
            on,
            json!({"password": {"enabled": true}, "passkey": {"enabled": true}})
        );
        record.options.insert(AUTHENTICATION_METHODS.into(), on);
        let database = Database::of(&record).unwrap();
        assert!(database.passkeys && database.passkey_enrollment);
        let quiet = passkey_options(&json!({"progressive_enrollment_enabled": false})).unwrap();
        record.options.insert(PASSKEY_OPTIONS.into(), quiet);
        assert!(!Database::of(&record).unwrap().passkey_enrollment);

        for refused in [
            json!({"password": {"enabled": false}}),
            json!({"passkey": {"enabled": "yes"}}),
            json!({"passkey": true}),
            json!({"passkey": {"enabled": true, "extra": 1}}),
            json!({"sms": {"enabled": true}}),
            json!([]),
        ] {
            assert!(authentication_methods(&refused).is_err(), "{refused}");
        }
        for refused in [
            json!({"challenge_ui": "autofill"}),
            json!({"local_enrollment_enabled": true}),
            json!({"progressive_enrollment_enabled": "no"}),
            json!({"unknown": 1}),
            json!("button"),
        ] {
            assert!(passkey_options(&refused).is_err(), "{refused}");
        }
        assert!(passkey_options(&json!({"challenge_ui": "button"})).is_ok());
    }
}
