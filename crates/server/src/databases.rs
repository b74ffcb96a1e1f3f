//! Database connections (strategy `auth0`): Tessera's own user stores, of which the
//! default one, `Username-Password-Authentication`, always exists and more may be created.
//! This module decides which of them a request means — the one an application's password
//! form uses, the one a `connection` parameter names — and what its options allow. It
//! knows nothing of how passwords are checked or accounts created (`crate::accounts`).

use tessera_core::DATABASE_CONNECTION;
use tessera_core::connection::Strategy;
use tessera_store::{ConnectionRecord, Store, StoreResult};

/// The options an administrator may set on a database connection (Auth0's names).
pub(crate) const DISABLE_SIGNUP: &str = "disable_signup";
pub(crate) const DISABLE_CHANGE_PASSWORD: &str = "disable_self_service_change_password";
pub(crate) const SETTABLE_OPTIONS: &[&str] = &[DISABLE_SIGNUP, DISABLE_CHANGE_PASSWORD];

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
        Some(Database {
            id: record.id.clone(),
            name: record.name.clone(),
            signup_disabled: flag(DISABLE_SIGNUP),
            change_password_disabled: flag(DISABLE_CHANGE_PASSWORD),
        })
    }
}

/// The database connection named `name`, if there is one.
pub(crate) async fn named(store: &Store, name: &str) -> StoreResult<Option<Database>> {
    Ok(store
        .find_connection_by_name(name)
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
    store: &Store,
    client_id: &str,
    requested: Option<&str>,
) -> StoreResult<Option<Database>> {
    let enabled = store.connections_for_sign_in(client_id).await?;
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
}
