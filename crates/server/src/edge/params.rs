//! Request parameters from a query string, a form body or a JSON body, with the checks
//! OAuth asks for: no parameter twice (RFC 6749 §3.1), bounded sizes, and empty values
//! treated as absent. [`json_value`] is the one reading of JSON bodies (here and in the
//! Management API), so a member given twice is refused there as in a form.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use axum::http::{HeaderMap, header};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Longest accepted value of one parameter. Long `state` and `nonce` values (well over
/// 512 characters) work; absurd ones are refused.
pub(crate) const MAX_VALUE_LEN: usize = 4096;
/// Longest accepted parameter set (query string or body).
pub(crate) const MAX_PARAMS_LEN: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParamsError {
    #[error("the request is too large")]
    TooLarge,
    #[error("parameter {0} is too long")]
    ValueTooLong(String),
    #[error("parameter {0} is included more than once")]
    Duplicate(String),
    #[error("the body is not a valid JSON object of strings")]
    BadJson,
    #[error("unsupported content type: use application/x-www-form-urlencoded or application/json")]
    UnsupportedContentType,
}

/// The request's media type: `Content-Type` without its parameters, lower-cased (empty
/// when absent). The one reading of the header for every body parser.
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    values: HashMap<String, String>,
}

fn checked_name(name: &str) -> String {
    // Parameter names appear in error messages: keep them short and printable.
    name.chars().filter(|c| !c.is_control()).take(40).collect()
}

impl Params {
    pub(crate) fn from_urlencoded(bytes: &[u8]) -> Result<Self, ParamsError> {
        Self::from_urlencoded_within(bytes, MAX_PARAMS_LEN, MAX_VALUE_LEN)
    }

    /// [`Params::from_urlencoded`] with other limits, for the few forms that carry a
    /// document (an action's code).
    pub(crate) fn from_urlencoded_within(
        bytes: &[u8],
        max_len: usize,
        max_value_len: usize,
    ) -> Result<Self, ParamsError> {
        if bytes.len() > max_len {
            return Err(ParamsError::TooLarge);
        }
        let mut values = HashMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if value.len() > max_value_len {
                return Err(ParamsError::ValueTooLong(checked_name(&name)));
            }
            if values
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(ParamsError::Duplicate(checked_name(&name)));
            }
        }
        Ok(Params { values })
    }

    /// A JSON object body (Auth0's SDKs may send JSON to /oauth/token). Numbers and
    /// booleans become their text; nested values are refused.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self, ParamsError> {
        if bytes.len() > MAX_PARAMS_LEN {
            return Err(ParamsError::TooLarge);
        }
        let object = match json_value(bytes) {
            Ok(Value::Object(object)) => object,
            Err(JsonError::Duplicate(name)) => {
                return Err(ParamsError::Duplicate(checked_name(&name)));
            }
            Ok(_) | Err(JsonError::Syntax) => return Err(ParamsError::BadJson),
        };
        let mut values = HashMap::new();
        for (name, value) in object {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => return Err(ParamsError::BadJson),
            };
            if text.len() > MAX_VALUE_LEN {
                return Err(ParamsError::ValueTooLong(checked_name(&name)));
            }
            values.insert(name, text);
        }
        Ok(Params { values })
    }

    /// Parses a body according to its `Content-Type`.
    pub(crate) fn from_body(
        headers: &HeaderMap,
        body: &[u8],
        allow_json: bool,
    ) -> Result<Self, ParamsError> {
        match media_type(headers).as_str() {
            "application/x-www-form-urlencoded" => Self::from_urlencoded(body),
            "application/json" if allow_json => Self::from_json(body),
            _ => Err(ParamsError::UnsupportedContentType),
        }
    }

    /// The names that start with `prefix`, without it, sorted: a group of checkboxes
    /// (`scope:read:messages`, `scope:write:messages`), each a parameter of its own since
    /// a name may not repeat.
    pub(crate) fn names_after(&self, prefix: &str) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .values
            .keys()
            .filter_map(|name| name.strip_prefix(prefix))
            .collect();
        names.sort_unstable();
        names
    }

    /// Every parameter, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Sets one parameter (a value the server decided, such as an authenticated client).
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), value.to_string());
    }

    /// Whether the parameter is there, even empty: a flag such as Auth0's `?federated`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The value, or `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Why a JSON body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON, or nested deeper than serde_json's limit (128 levels).
    Syntax,
    /// An object names this member twice.
    Duplicate(String),
}

/// Parses a JSON document, refusing an object that names a member twice, at any depth.
/// serde_json alone keeps the last value, so `{"a": 1, "a": 2}` would mean what the last
/// writer wanted while a form with `a` twice is refused: here both are refused.
pub(crate) fn json_value(bytes: &[u8]) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = UniqueMembers {
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (_, Some(name)) => Err(JsonError::Duplicate(name)),
        (Ok(value), None) => Ok(value),
        (Err(_), None) => Err(JsonError::Syntax),
    }
}

/// Builds a `serde_json::Value` like its own deserializer does, noting the first member
/// name an object repeats (and failing there).
#[derive(Clone, Copy)]
struct UniqueMembers<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for UniqueMembers<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueMembers<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON without a member named twice in one object")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = items.next_element_seed(self)? {
            out.push(item);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(name) = members.next_key::<String>()? {
            if out.contains_key(&name) {
                *self.duplicate.borrow_mut() = Some(name);
                return Err(de::Error::custom("a member is named twice"));
            }
            let value = members.next_value_seed(self)?;
            out.insert(name, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_duplicates_and_oversize() {
        let p = Params::from_urlencoded(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert_eq!(
            Params::from_urlencoded(b"a=1&a=2").unwrap_err(),
            ParamsError::Duplicate("a".into())
        );
        let long = format!("state={}", "x".repeat(MAX_VALUE_LEN + 1));
        assert_eq!(
            Params::from_urlencoded(long.as_bytes()).unwrap_err(),
            ParamsError::ValueTooLong("state".into())
        );
        assert!(Params::from_urlencoded(format!("state={}", "x".repeat(600)).as_bytes()).is_ok());
    }

    #[test]
    fn json_bodies() {
        let p =
            Params::from_json(br#"{"grant_type":"client_credentials","n":5,"z":null}"#).unwrap();
        assert_eq!(p.get("grant_type"), Some("client_credentials"));
        assert_eq!(p.get("n"), Some("5"));
        assert_eq!(p.get("z"), None);
        assert_eq!(Params::from_json(b"[1]").unwrap_err(), ParamsError::BadJson);
        assert_eq!(
            Params::from_json(br#"{"a":{"b":1}}"#).unwrap_err(),
            ParamsError::BadJson
        );
        assert_eq!(
            Params::from_json(b"{not json").unwrap_err(),
            ParamsError::BadJson
        );
        assert_eq!(
            Params::from_json(br#"{"client_id":"a","client_id":"b"}"#).unwrap_err(),
            ParamsError::Duplicate("client_id".into())
        );
    }

    #[test]
    fn json_members_named_twice_are_refused_at_any_depth() {
        let value =
            json_value(br#"{"a": [1, -2, 3.5, true, null, "x", {"b": {}}], "c": {"a": 1}}"#);
        assert_eq!(
            value,
            Ok(serde_json::json!({"a": [1, -2, 3.5, true, null, "x", {"b": {}}], "c": {"a": 1}}))
        );
        for (text, name) in [
            (r#"{"a": 1, "a": 1}"#, "a"),
            (r#"{"a": {"b": 1, "c": 2, "b": 3}}"#, "b"),
            (r#"{"list": [{"v": 1}, {"v": 2, "v": 3}]}"#, "v"),
            (r#"[{"x": null, "x": null}]"#, "x"),
            (r#"{"\u0061": 1, "a": 2}"#, "a"),
        ] {
            assert_eq!(
                json_value(text.as_bytes()),
                Err(JsonError::Duplicate(name.into())),
                "{text}"
            );
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(json_value(deep.as_bytes()), Err(JsonError::Syntax));
        for bad in ["", "{", r#"{"a": 1} x"#, r#"{"a": NaN}"#, "[1,]"] {
            assert_eq!(json_value(bad.as_bytes()), Err(JsonError::Syntax), "{bad}");
        }
    }
}
