//! Reading dashboard forms in the Management API's terms: a form becomes the JSON object
//! `/api/v2` would receive, so the same operation validates it with the same texts, and
//! its refusal is shown next to the field it names.

use serde_json::{Map, Value};

use crate::edge::params::Params;
use crate::management::ApiError;

/// A JSON object under construction from form fields.
#[derive(Default)]
pub(crate) struct Body(Map<String, Value>);

impl Body {
    pub(crate) fn new() -> Self {
        Body::default()
    }

    /// A text field, trimmed (empty stays empty: the operation says if it may be).
    pub(crate) fn text(mut self, params: &Params, name: &str) -> Self {
        let value = params.get(name).unwrap_or("").trim().to_string();
        self.0.insert(name.to_string(), Value::String(value));
        self
    }

    /// A checkbox: present means true.
    pub(crate) fn checkbox(mut self, params: &Params, name: &str) -> Self {
        self.0
            .insert(name.to_string(), Value::Bool(params.get(name).is_some()));
        self
    }

    /// A number field: a whole number, or the API's type error about it.
    pub(crate) fn integer(mut self, params: &Params, name: &str) -> Result<Self, ApiError> {
        let text = params.get(name).unwrap_or("").trim();
        let number: i64 = text.parse().map_err(|_| {
            ApiError::invalid_property("Expected type integer but found type string", name)
        })?;
        self.0.insert(name.to_string(), Value::from(number));
        Ok(self)
    }

    /// Lines of a textarea (or commas), one value each, blanks dropped.
    pub(crate) fn lines(mut self, params: &Params, name: &str) -> Self {
        let values: Vec<Value> = params
            .get(name)
            .unwrap_or("")
            .split(['\n', ','])
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| Value::String(v.to_string()))
            .collect();
        self.0.insert(name.to_string(), Value::Array(values));
        self
    }

    /// A JSON value as given.
    pub(crate) fn value(mut self, name: &str, value: Value) -> Self {
        self.0.insert(name.to_string(), value);
        self
    }

    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// A refusal to show on a form: the message, and the field it is about when it names one.
pub(crate) struct FormError {
    pub(crate) message: String,
    pub(crate) property: Option<String>,
}

impl From<ApiError> for FormError {
    fn from(error: ApiError) -> Self {
        FormError {
            message: error.message,
            property: error.property,
        }
    }
}

impl FormError {
    /// The message if it is about `field`.
    pub(crate) fn on(&self, field: &str) -> Option<&str> {
        (self.property.as_deref() == Some(field)).then_some(self.message.as_str())
    }
}

/// The error of a form, if about `field` (for templates: `error_on(error, "name")`).
pub(crate) fn error_on<'a>(error: &'a Option<FormError>, field: &str) -> Option<&'a str> {
    error.as_ref().and_then(|e| e.on(field))
}
