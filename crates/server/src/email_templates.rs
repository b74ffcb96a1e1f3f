//! The tenant's email templates (`/api/v2/email-templates/{name}`, stored as the Management
//! API holds them): whether one is enabled, and rendering their Liquid.
//!
//! The Liquid is the `liquid` crate's parser without its standard library: `{{ variable }}`
//! and `{{ object.member }}` only — no tags (`if`, `for`, `assign`…), so no loop can run
//! long, and no filters. A template reads only [`Variables`]: the link, the user's address
//! and profile names, the application's and tenant's names and support contacts — no secret
//! is among them, and a name outside them is refused when the template is saved. Values
//! are HTML-escaped in the body (which is HTML, as on Auth0) and stripped of control
//! characters in the subject (a header).

use std::sync::LazyLock;
use std::time::Duration;

use liquid::model::{Object, Value};
use tessera_core::Metadata;
use tessera_store::{Store, StoreResult};

/// The verification link's template.
pub(crate) const VERIFY_EMAIL: &str = "verify_email";

/// Longest Liquid error shown to an administrator.
const MAX_ERROR: usize = 300;

static PARSER: LazyLock<liquid::Parser> = LazyLock::new(|| {
    liquid::ParserBuilder::new()
        .build()
        .expect("a parser without a library builds")
});

/// Whether the tenant's template `name` exists and is enabled.
pub(crate) async fn enabled(store: &Store, name: &str) -> StoreResult<bool> {
    Ok(store
        .email_template(name)
        .await?
        .is_some_and(|document| document.get("enabled") == Some(&serde_json::Value::Bool(true))))
}

/// A stored template, as the mail worker uses it.
pub(crate) struct Stored {
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) from: Option<String>,
    pub(crate) result_url: Option<String>,
    /// `urlLifetimeInSeconds`; `None` when absent or 0 (the default applies).
    pub(crate) url_lifetime: Option<Duration>,
}

impl Stored {
    pub(crate) fn from_document(document: &Metadata) -> Self {
        let text = |key: &str| {
            document
                .get(key)
                .and_then(serde_json::Value::as_str)
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        };
        Stored {
            subject: text("subject").unwrap_or_default(),
            body: text("body").unwrap_or_default(),
            from: text("from"),
            result_url: text("resultUrl"),
            url_lifetime: document
                .get("urlLifetimeInSeconds")
                .and_then(serde_json::Value::as_u64)
                .filter(|seconds| *seconds > 0)
                .map(Duration::from_secs),
        }
    }
}

/// What a template may read. Nothing else exists for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Variables {
    pub(crate) url: String,
    pub(crate) user_email: String,
    pub(crate) user_name: String,
    pub(crate) user_nickname: String,
    pub(crate) application_name: String,
    pub(crate) friendly_name: String,
    pub(crate) support_email: String,
    pub(crate) support_url: String,
}

impl Variables {
    /// Values for checking a template when it is saved.
    fn sample() -> Self {
        Variables {
            url: "https://id.example.com/u/email-verification?ticket=x".into(),
            user_email: "jane@example.com".into(),
            user_name: "Jane".into(),
            user_nickname: "jane".into(),
            application_name: "App".into(),
            friendly_name: "Example".into(),
            support_email: "support@example.com".into(),
            support_url: "https://example.com/support".into(),
        }
    }

    fn globals(&self, clean: fn(&str) -> String) -> Object {
        let text = |value: &str| Value::scalar(clean(value));
        let mut user = Object::new();
        user.insert("email".into(), text(&self.user_email));
        user.insert("name".into(), text(&self.user_name));
        user.insert("nickname".into(), text(&self.user_nickname));
        let mut application = Object::new();
        application.insert("name".into(), text(&self.application_name));
        let mut globals = Object::new();
        globals.insert("url".into(), text(&self.url));
        globals.insert("user".into(), Value::Object(user));
        globals.insert("application".into(), Value::Object(application));
        globals.insert("friendly_name".into(), text(&self.friendly_name));
        globals.insert("support_email".into(), text(&self.support_email));
        globals.insert("support_url".into(), text(&self.support_url));
        globals
    }
}

/// Where a template is placed: the body is HTML, the subject a mail header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Body,
    Subject,
}

/// Renders `text` with `variables`; the error says what is wrong in the template.
pub(crate) fn render(text: &str, part: Part, variables: &Variables) -> Result<String, String> {
    let shorten = |error: liquid::Error| -> String {
        let message = error.to_string();
        let mut shown: String = message.chars().take(MAX_ERROR).collect();
        if shown.len() < message.len() {
            shown.push('…');
        }
        shown
    };
    let template = PARSER.parse(text).map_err(shorten)?;
    let globals = match part {
        Part::Body => variables.globals(html_escape),
        Part::Subject => variables.globals(without_controls),
    };
    let rendered = template.render(&globals).map_err(shorten)?;
    Ok(match part {
        Part::Body => rendered,
        // The template's own text was checked; this keeps any value from adding a header.
        Part::Subject => without_controls(&rendered),
    })
}

/// Whether a template renders at all: its syntax, and only names of [`Variables`].
pub(crate) fn check(text: &str, part: Part) -> Result<(), String> {
    render(text, part, &Variables::sample()).map(|_| ())
}

/// The five characters that matter in HTML text and attribute values. Written out here:
/// askama's escaper works on its own template types, not on values handed to Liquid.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

fn without_controls(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_render_escaped_in_the_body_and_single_line_in_the_subject() {
        let variables = Variables {
            url: "https://id.example.com/u/email-verification?ticket=a&b".into(),
            user_email: "jane@example.com".into(),
            user_name: "<script>alert(1)</script>".into(),
            application_name: "A\r\nBcc: x@example.com".into(),
            ..Variables::default()
        };
        let body = render(
            "<a href=\"{{ url }}\">{{ user.name }}</a> {{user.email}}",
            Part::Body,
            &variables,
        )
        .unwrap();
        assert_eq!(
            body,
            "<a href=\"https://id.example.com/u/email-verification?ticket=a&amp;b\">\
             &lt;script&gt;alert(1)&lt;/script&gt;</a> jane@example.com"
        );
        let subject = render(
            "Welcome to {{ application.name }}",
            Part::Subject,
            &variables,
        )
        .unwrap();
        assert_eq!(subject, "Welcome to ABcc: x@example.com");
    }

    #[test]
    fn tags_filters_and_unknown_names_are_refused() {
        for bad in [
            "{% for i in (1..100000000) %}x{% endfor %}",
            "{% assign x = 1 %}",
            "{% if user.email %}x{% endif %}",
            "{{ url | upcase }}",
            "{{ user.password_hash }}",
            "{{ client_secret }}",
            "{{ secrets.key }}",
            "{{ user.email ",
        ] {
            assert!(check(bad, Part::Body).is_err(), "{bad}");
        }
        check(
            "Hello {{ user.email }}: {{ url }} — {{ friendly_name }}",
            Part::Body,
        )
        .unwrap();
    }
}
