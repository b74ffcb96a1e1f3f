//! Legacy Rules: the `user` and `context` a rule sees, built from the post-login event,
//! and the tokens' changes read back from the `context` the last rule passed on.

use serde_json::{Map, Value, json};

use crate::Multifactor;

/// `user` and `context` in Auth0's Rules shape (reference A3).
pub(crate) fn initial_state(event: &Value) -> (Value, Value) {
    let user = event.get("user").cloned().unwrap_or_else(|| json!({}));
    let field = |path: &[&str]| -> Value {
        let mut value = event;
        for key in path {
            match value.get(key) {
                Some(next) => value = next,
                None => return Value::Null,
            }
        }
        value.clone()
    };
    let object_or_empty = |value: Value| if value.is_object() { value } else { json!({}) };
    let mut query = object_or_empty(field(&["request", "query"]));
    // Rules read the audience from the query; an event may carry it only as the resource
    // server (token-endpoint flows).
    if let (Some(query), Value::String(audience)) = (
        query.as_object_mut(),
        field(&["resource_server", "identifier"]),
    ) {
        query.entry("audience").or_insert(Value::String(audience));
    }
    let roles = match field(&["authorization", "roles"]) {
        Value::Array(roles) => Value::Array(roles),
        _ => json!([]),
    };
    let context = json!({
        "clientID": field(&["client", "client_id"]),
        "clientName": field(&["client", "name"]),
        "clientMetadata": object_or_empty(field(&["client", "metadata"])),
        "connection": field(&["connection", "name"]),
        "connectionID": field(&["connection", "id"]),
        "connectionStrategy": field(&["connection", "strategy"]),
        "connectionMetadata": object_or_empty(field(&["connection", "metadata"])),
        "protocol": field(&["transaction", "protocol"]),
        "request": {
            "ip": field(&["request", "ip"]),
            "userAgent": field(&["request", "user_agent"]),
            "hostname": field(&["request", "hostname"]),
            "query": query,
            "body": object_or_empty(field(&["request", "body"])),
            "geoip": object_or_empty(field(&["request", "geoip"])),
        },
        "stats": { "loginsCount": field(&["stats", "logins_count"]) },
        "authentication": object_or_empty(field(&["authentication"])),
        "authorization": { "roles": roles },
        "tenant": field(&["tenant", "id"]),
        "idToken": {},
        "accessToken": {},
    });
    (user, context)
}

/// What the rules' final `context` asks of the tokens.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RuleEffects {
    pub id_token_claims: Map<String, Value>,
    pub access_token_claims: Map<String, Value>,
    /// `context.accessToken.scope`, when a rule set it: the scopes to grant instead.
    pub scope: Option<Vec<String>>,
    /// `context.multifactor = {provider, allowRememberBrowser}`.
    pub multifactor: Option<Multifactor>,
}

pub(crate) fn effects(context: &Value) -> Result<RuleEffects, String> {
    let mut effects = RuleEffects::default();
    // A rule asking for a redirect must not be let through without it.
    if context
        .get("redirect")
        .is_some_and(|value| !value.is_null() && value != &Value::Bool(false))
    {
        return Err("context.redirect is not supported yet".to_string());
    }
    match context.get("multifactor") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Object(asked)) => {
            let Some(provider) = asked.get("provider").and_then(Value::as_str) else {
                return Err("context.multifactor.provider must be a string".to_string());
            };
            let remember = asked
                .get("allowRememberBrowser")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            effects.multifactor = Multifactor::of(provider, remember);
        }
        Some(_) => return Err("context.multifactor must be an object".to_string()),
    }
    if let Some(Value::Object(claims)) = context.get("idToken") {
        effects.id_token_claims = claims.clone();
    }
    if let Some(Value::Object(claims)) = context.get("accessToken") {
        for (name, value) in claims {
            if name == "scope" {
                effects.scope = Some(scope_list(value)?);
            } else {
                effects
                    .access_token_claims
                    .insert(name.clone(), value.clone());
            }
        }
    }
    Ok(effects)
}

fn scope_list(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(text) => Ok(text.split_whitespace().map(str::to_string).collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "context.accessToken.scope must be strings".to_string())
            })
            .collect(),
        _ => Err("context.accessToken.scope must be a string or an array of strings".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_maps_the_post_login_event() {
        let event = json!({
            "user": {"user_id": "auth0|1", "app_metadata": {}, "user_metadata": {}},
            "client": {"client_id": "c1", "name": "App", "metadata": {"tier": "gold"}},
            "connection": {"id": "con_1", "name": "Username-Password-Authentication", "strategy": "auth0"},
            "request": {"ip": "192.0.2.1", "user_agent": "UA", "query": {"x": "1"}},
            "resource_server": {"identifier": "https://api"},
            "transaction": {"protocol": "oidc-basic-profile"},
            "stats": {"logins_count": 3},
            "authorization": {"roles": ["admin"]},
        });
        let (user, context) = initial_state(&event);
        assert_eq!(user["user_id"], "auth0|1");
        assert_eq!(context["clientID"], "c1");
        assert_eq!(context["clientMetadata"]["tier"], "gold");
        assert_eq!(context["connectionStrategy"], "auth0");
        assert_eq!(context["protocol"], "oidc-basic-profile");
        assert_eq!(context["request"]["userAgent"], "UA");
        assert_eq!(context["request"]["query"]["audience"], "https://api");
        assert_eq!(context["stats"]["loginsCount"], 3);
        assert_eq!(context["authorization"]["roles"], json!(["admin"]));
    }

    #[test]
    fn effects_split_claims_and_scope() {
        let context = json!({
            "idToken": {"https://x/roles": ["a"]},
            "accessToken": {"https://x/k": 1, "scope": "read:a write:a"},
        });
        let found = effects(&context).unwrap();
        assert_eq!(found.id_token_claims["https://x/roles"], json!(["a"]));
        assert_eq!(found.access_token_claims["https://x/k"], json!(1));
        assert_eq!(found.scope, Some(vec!["read:a".into(), "write:a".into()]));
        assert!(effects(&json!({"redirect": {"url": "https://x"}})).is_err());
    }

    #[test]
    fn multifactor_is_read_from_the_context() {
        let asked =
            effects(&json!({"multifactor": {"provider": "any", "allowRememberBrowser": true}}));
        assert_eq!(
            asked.unwrap().multifactor,
            Some(Multifactor {
                provider: "any".into(),
                allow_remember_browser: true
            })
        );
        let none = effects(&json!({"multifactor": {"provider": "none"}})).unwrap();
        assert_eq!(none.multifactor, None);
        assert!(effects(&json!({"multifactor": "any"})).is_err());
        assert!(effects(&json!({"multifactor": {"provider": 3}})).is_err());
    }
}
