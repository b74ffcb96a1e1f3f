//! Request parameters from a query string, a form body or a JSON body, with the checks
//! OAuth asks for: no parameter twice (RFC 6749 §3.1), bounded sizes, and empty values
//! treated as absent.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};

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
    #[error("the body is not valid JSON object of strings")]
    BadJson,
    #[error("unsupported content type: use application/x-www-form-urlencoded or application/json")]
    UnsupportedContentType,
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
        if bytes.len() > MAX_PARAMS_LEN {
            return Err(ParamsError::TooLarge);
        }
        let mut values = HashMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if value.len() > MAX_VALUE_LEN {
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
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(bytes).map_err(|_| ParamsError::BadJson)?;
        let mut values = HashMap::new();
        for (name, value) in object {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
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
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match content_type.as_str() {
            "application/x-www-form-urlencoded" => Self::from_urlencoded(body),
            "application/json" if allow_json => Self::from_json(body),
            _ => Err(ParamsError::UnsupportedContentType),
        }
    }

    /// The value, or `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

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
    }
}
