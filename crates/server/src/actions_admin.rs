//! What an action, a rule and a rules-config may be, and how their secrets are sealed:
//! the one place the Management API, the dashboard and the CLI take these rules from.
//!
//! Secrets (an action's, a rules-config's value) are sealed with the master key before
//! the store sees them, each bound to what it belongs to (the action's id and the
//! secret's name; the config's key), so a sealed value moved to another row does not
//! open. They are opened only to run code, never to answer a request, never logged.

use std::collections::BTreeMap;

use serde_json::Value;
use tessera_actions::Trigger;
use tessera_core::ids;
use tessera_jose::MasterKey;

/// Largest action code (or rule script), in bytes.
pub const MAX_CODE_BYTES: usize = 100 * 1024;
/// Longest action or rule name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest secret name, in characters.
pub const MAX_SECRET_NAME_CHARS: usize = 128;
/// Largest secret (or rules-config) value, in bytes.
pub const MAX_SECRET_VALUE_BYTES: usize = 4096;
/// Most secrets one action may hold.
pub const MAX_SECRETS: usize = 100;
/// Longest rules-config key (Auth0's limit).
pub const MAX_CONFIG_KEY_CHARS: usize = 127;
/// The runtimes accepted and stored (Tessera runs every action on one engine).
pub const RUNTIMES: &[&str] = &["node12", "node16", "node18", "node18-actions", "node22"];
pub const DEFAULT_RUNTIME: &str = "node22";
/// The only stage Rules have left.
pub const RULE_STAGE: &str = "login_success";

/// What a refused dependency list is told.
pub const NO_DEPENDENCIES: &str =
    "Tessera runs no npm packages yet: bundle your dependencies into the action's code";

fn shown(text: &str) -> String {
    text.chars().take(60).collect()
}

fn printable(text: &str, what: &str, max_chars: usize) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(format!("{what} must be at most {max_chars} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(trimmed.to_string())
}

/// An action's name: 1 to 255 printable characters, trimmed.
pub fn action_name(name: &str) -> Result<String, String> {
    printable(name, "the action's name", MAX_NAME_CHARS)
}

/// The one trigger an action supports, by Auth0's id; the version, when given, must be
/// the one Tessera runs.
pub fn trigger(id: &str, version: Option<&str>) -> Result<Trigger, String> {
    let trigger = Trigger::parse(id).ok_or_else(|| {
        let known: Vec<&str> = Trigger::ALL.iter().map(|t| t.id()).collect();
        format!(
            "Tessera runs actions for the triggers {}: {:?} is not one of them",
            known.join(", "),
            shown(id)
        )
    })?;
    if let Some(version) = version
        && version != trigger.version()
    {
        return Err(format!(
            "the trigger {} runs in version {}, not {:?}",
            trigger.id(),
            trigger.version(),
            shown(version)
        ));
    }
    Ok(trigger)
}

/// Action code or a rule's script: at most 100 kB, no NUL.
pub fn code(code: &str, what: &str) -> Result<(), String> {
    if code.len() > MAX_CODE_BYTES {
        return Err(format!(
            "{what} is {} bytes: at most {MAX_CODE_BYTES} are allowed",
            code.len()
        ));
    }
    if code.contains('\0') {
        return Err(format!("{what} must not contain NUL characters"));
    }
    Ok(())
}

/// `dependencies`: only an empty list.
pub fn dependencies(value: &Value) -> Result<(), String> {
    match value {
        Value::Array(items) if items.is_empty() => Ok(()),
        Value::Array(_) => Err(NO_DEPENDENCIES.to_string()),
        _ => Err("dependencies must be an array".to_string()),
    }
}

/// A runtime Auth0 knows (kept as given; Tessera runs them all on one engine).
pub fn runtime(runtime: &str) -> Result<String, String> {
    if RUNTIMES.contains(&runtime) {
        return Ok(runtime.to_string());
    }
    Err(format!(
        "the runtime must be one of {}, not {:?}",
        RUNTIMES.join(", "),
        shown(runtime)
    ))
}

/// A secret's name: 1 to 128 printable characters, no spaces around.
pub fn secret_name(name: &str) -> Result<String, String> {
    let valid = printable(name, "a secret's name", MAX_SECRET_NAME_CHARS)?;
    if valid != name {
        return Err("a secret's name must not begin or end with spaces".into());
    }
    Ok(valid)
}

/// A secret's value (the message never quotes it): at most 4096 bytes, no NUL.
pub fn secret_value(name: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_SECRET_VALUE_BYTES {
        return Err(format!(
            "the value of the secret {name} is too long: at most {MAX_SECRET_VALUE_BYTES} bytes"
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "the value of the secret {name} must not contain NUL characters"
        ));
    }
    Ok(())
}

/// A rule's name: Auth0's pattern, letters, digits, spaces and `-`, 1 to 255 characters.
pub fn rule_name(name: &str) -> Result<String, String> {
    let name = printable(name, "the rule's name", MAX_NAME_CHARS)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        return Err("the rule's name may contain only letters, digits, spaces and '-'".to_string());
    }
    Ok(name)
}

/// A rule's order: 0 or more.
pub fn rule_order(order: i64) -> Result<i64, String> {
    if order < 0 {
        return Err("the rule's order must be 0 or more".into());
    }
    Ok(order)
}

/// A rules-config key: Auth0's pattern `^[A-Za-z0-9_\-@*+:]*$`, 1 to 127 characters.
pub fn config_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().count() > MAX_CONFIG_KEY_CHARS {
        return Err(format!(
            "a rules-config key has 1 to {MAX_CONFIG_KEY_CHARS} characters"
        ));
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-@*+:".contains(c))
    {
        return Err(
            "a rules-config key may contain only letters, digits and _ - @ * + :".to_string(),
        );
    }
    Ok(())
}

/// A new action's id.
pub fn new_action_id() -> String {
    format!("act_{}", ids::alphanumeric(16))
}

/// A new action version's id.
pub fn new_version_id() -> String {
    format!("actv_{}", ids::alphanumeric(16))
}

/// A new binding's id.
pub fn new_binding_id() -> String {
    format!("bnd_{}", ids::alphanumeric(16))
}

/// A new rule's id.
pub fn new_rule_id() -> String {
    format!("rul_{}", ids::alphanumeric(16))
}

fn secret_context(action_id: &str, name: &str) -> Vec<u8> {
    format!("tessera action secret\0{action_id}\0{name}").into_bytes()
}

fn config_context(key: &str) -> Vec<u8> {
    format!("tessera rules config\0{key}").into_bytes()
}

/// Seals one secret of an action.
pub fn seal_secret(master_key: &MasterKey, action_id: &str, name: &str, value: &str) -> Vec<u8> {
    master_key.seal(value.as_bytes(), &secret_context(action_id, name))
}

/// Opens an action's sealed secrets (`event.secrets`). One that does not open (another
/// master key, a value moved from another action) is left out and logged by name only.
pub fn open_secrets_with(
    master_key: &MasterKey,
    action_id: &str,
    sealed: &[(String, Vec<u8>)],
) -> BTreeMap<String, String> {
    sealed
        .iter()
        .filter_map(|(name, value)| {
            let opened = master_key
                .open(value, &secret_context(action_id, name))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            if opened.is_none() {
                tracing::error!(
                    action_id,
                    secret = %name,
                    "an action's secret does not open with this master key; left out"
                );
            }
            opened.map(|value| (name.clone(), value))
        })
        .collect()
}

/// Seals a rules-config value.
pub fn seal_config(master_key: &MasterKey, key: &str, value: &str) -> Vec<u8> {
    master_key.seal(value.as_bytes(), &config_context(key))
}

/// Opens the rules-configs (the Rules' `configuration`); as [`open_secrets_with`].
pub fn open_configs_with(
    master_key: &MasterKey,
    sealed: &[(String, Vec<u8>)],
) -> BTreeMap<String, String> {
    sealed
        .iter()
        .filter_map(|(key, value)| {
            let opened = master_key
                .open(value, &config_context(key))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            if opened.is_none() {
                tracing::error!(key = %key, "a rules-config does not open with this master key; left out");
            }
            opened.map(|value| (key.clone(), value))
        })
        .collect()
}

/// [`open_secrets_with`] with the server's master key.
pub(crate) fn open_secrets(
    state: &crate::AppState,
    action_id: &str,
    sealed: &[(String, Vec<u8>)],
) -> BTreeMap<String, String> {
    open_secrets_with(&state.config().master_key, action_id, sealed)
}

/// [`open_configs_with`] with the server's master key.
pub(crate) fn open_rules_configs(
    state: &crate::AppState,
    sealed: &[(String, Vec<u8>)],
) -> BTreeMap<String, String> {
    open_configs_with(&state.config().master_key, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_opens_only_for_its_action_and_name() {
        let key = MasterKey::generate();
        let sealed = seal_secret(&key, "act_a", "TOKEN", "s3cret");
        let opened = open_secrets_with(&key, "act_a", &[("TOKEN".into(), sealed.clone())]);
        assert_eq!(opened.get("TOKEN").map(String::as_str), Some("s3cret"));
        assert!(open_secrets_with(&key, "act_b", &[("TOKEN".into(), sealed.clone())]).is_empty());
        assert!(open_secrets_with(&key, "act_a", &[("OTHER".into(), sealed.clone())]).is_empty());
        let other = MasterKey::generate();
        assert!(open_secrets_with(&other, "act_a", &[("TOKEN".into(), sealed)]).is_empty());
    }

    #[test]
    fn a_rules_config_opens_only_under_its_key() {
        let key = MasterKey::generate();
        let sealed = seal_config(&key, "API_KEY", "v");
        assert_eq!(
            open_configs_with(&key, &[("API_KEY".into(), sealed.clone())])["API_KEY"],
            "v"
        );
        assert!(open_configs_with(&key, &[("OTHER".into(), sealed)]).is_empty());
    }

    #[test]
    fn only_tesseras_triggers_and_no_dependencies() {
        assert_eq!(trigger("post-login", Some("v3")), Ok(Trigger::PostLogin));
        assert!(
            trigger("send-phone-message", None)
                .unwrap_err()
                .contains("post-login")
        );
        assert!(trigger("post-login", Some("v1")).is_err());
        assert!(dependencies(&serde_json::json!([])).is_ok());
        assert_eq!(
            dependencies(&serde_json::json!([{"name": "lodash", "version": "4"}])),
            Err(NO_DEPENDENCIES.to_string())
        );
    }

    #[test]
    fn limits_are_refused_without_quoting_the_value() {
        let long = "x".repeat(MAX_SECRET_VALUE_BYTES + 1);
        let error = secret_value("TOKEN", &long).unwrap_err();
        assert!(!error.contains("xxxx"));
        assert!(code(&"a".repeat(MAX_CODE_BYTES + 1), "code").is_err());
        assert!(secret_name(&"n".repeat(129)).is_err());
        assert!(config_key("a b").is_err());
        assert!(rule_name("ok name-1").is_ok());
        assert!(rule_name("'; DROP TABLE rules; --").is_err());
    }
}
