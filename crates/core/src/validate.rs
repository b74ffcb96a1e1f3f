//! Rules for what administrators register (APIs, applications, scopes, URLs), shared by the
//! CLI and the Management API. Each check returns a message that says what is wrong and
//! what is expected; callers wrap it in their own error type. A message never repeats a
//! value that may hold a secret (URLs with credentials are not echoed).

use url::Url;

use crate::{
    AppType, DEVICE_CODE_GRANT, GRANT_TYPES, MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT,
    PASSWORD_GRANT, PASSWORD_REALM_GRANT, TokenDialect,
};

/// The message of a refused value.
pub type Checked<T> = Result<T, String>;

/// Auth0's maximum access-token lifetime for an API: 30 days.
pub const MAX_TOKEN_LIFETIME: i64 = 2_592_000;

/// The longest scope description accepted (Auth0 allows 500 characters).
pub const MAX_SCOPE_DESCRIPTION: usize = 500;

/// The longest name of an API, application, user or role.
pub const MAX_NAME: usize = 200;

/// The largest `user_metadata` or `app_metadata`, as JSON text (Auth0 allows 16 MB per
/// user in all; ours sit in the user's row and travel with every user read).
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Metadata names as Auth0 restricts them: not empty, no `.`, not starting with `$`
/// (at every level, since nested names are queried by path too). `what` names the field.
pub fn metadata(value: &crate::Metadata, what: &str) -> Checked<()> {
    fn check_names(members: &crate::Metadata, what: &str) -> Checked<()> {
        for (name, member) in members {
            if name.is_empty() || name.contains('.') || name.starts_with('$') {
                let shown: String = name.chars().take(60).collect();
                return Err(format!(
                    "{what}: the name {shown:?} is not allowed (names may not be empty, \
                     contain '.' or start with '$')"
                ));
            }
            check_nested(member, what)?;
        }
        Ok(())
    }
    fn check_nested(value: &serde_json::Value, what: &str) -> Checked<()> {
        match value {
            serde_json::Value::Object(members) => check_names(members, what),
            serde_json::Value::Array(items) => {
                items.iter().try_for_each(|item| check_nested(item, what))
            }
            _ => Ok(()),
        }
    }
    check_names(value, what)?;
    let size = serde_json::to_string(value).map_or(usize::MAX, |text| text.len());
    if size > MAX_METADATA_BYTES {
        return Err(format!(
            "{what} is too large: {size} bytes of JSON (at most {MAX_METADATA_BYTES})"
        ));
    }
    Ok(())
}

/// A display name: trimmed, not empty, at most [`MAX_NAME`] printable characters.
pub fn name(name: &str, what: &str) -> Checked<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("the {what} name must not be empty"));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(format!(
            "the {what} name must be at most {MAX_NAME} printable characters"
        ));
    }
    Ok(name.to_string())
}

/// An API's display name: [`name`], and not the Management API's name, which Auth0's
/// tools take to mean the system API (an API of that name would be skipped by an
/// auth0-deploy-cli export or import without a word).
pub fn api_name(text: &str) -> Checked<String> {
    let checked = name(text, "API")?;
    if checked.eq_ignore_ascii_case(crate::system::MANAGEMENT_API_NAME) {
        return Err(format!(
            "the API name {:?} is reserved for the system API",
            crate::system::MANAGEMENT_API_NAME
        ));
    }
    Ok(checked)
}

/// An API identifier (the `aud` of its tokens). Auth0 recommends a URL but accepts any
/// string; we require a non-empty string without whitespace, and a valid URL when it
/// looks like one. Identifiers shaped like a system API's id (`sys_…`, any case) are
/// reserved: `/resource-servers/{id}` takes an id or an identifier, and an identifier
/// equal to the Management API's id would shadow it there.
pub fn api_identifier(identifier: &str) -> Checked<String> {
    let bad = |why: &str| {
        let shown: String = identifier.chars().take(100).collect();
        format!("invalid API identifier {shown:?}: {why}")
    };
    if identifier.is_empty() {
        return Err(bad(
            "it must not be empty (use a URI such as https://api.example.com)",
        ));
    }
    if identifier
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("it must not contain spaces"));
    }
    if identifier.len() > 600 {
        return Err(bad("it is longer than 600 characters"));
    }
    let prefix = crate::system::SYSTEM_API_ID_PREFIX;
    if identifier
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    {
        return Err(bad(&format!(
            "identifiers starting with {prefix} are reserved for system APIs"
        )));
    }
    if identifier.contains("://") && Url::parse(identifier).is_err() {
        return Err(bad("it is not a valid URI"));
    }
    Ok(identifier.to_string())
}

/// The longest local part of an address (RFC 5321 §4.5.3.1.1).
pub const MAX_EMAIL_LOCAL_PART: usize = 64;
/// The longest address (RFC 5321 §4.5.3.1.3 with its erratum: a path of 256 octets less
/// the angle brackets).
pub const MAX_EMAIL: usize = 254;

/// An email address, for every place an address is written or asked about (sign-up, the
/// Management API, the CLI, the password-reset forms), returned normalized (trimmed,
/// lower-cased). As Auth0, a syntactically valid address and nothing that could be
/// markup or a header: `local@domain`, at most [`MAX_EMAIL`] bytes; the local part a
/// dot-atom (RFC 5322 §3.2.3, non-ASCII letters and digits allowed as in RFC 6531) of at
/// most [`MAX_EMAIL_LOCAL_PART`] bytes; the domain a host name of two labels or more.
///
/// Quoted local parts (`"a b"@example.com`) and address literals (`a@[192.0.2.1]`) are
/// refused outright: they are the only syntax that lets spaces, quotes, angle brackets,
/// `@` or `\` into an address, providers do not hand them out, and an address that
/// carries them would travel into ID tokens, mail headers and pages. Users stored before
/// this rule keep signing in: it applies when an address is written, not at login.
pub fn email(text: &str) -> Checked<String> {
    let address = crate::normalize_email(text);
    let bad = |why: &str| format!("invalid email address: {why}");
    let Some((local, domain)) = address.split_once('@') else {
        return Err(bad("it must be local@domain, such as jane@example.com"));
    };
    if address.len() > MAX_EMAIL {
        return Err(bad(&format!("it is longer than {MAX_EMAIL} characters")));
    }
    if local.is_empty() || local.len() > MAX_EMAIL_LOCAL_PART {
        return Err(bad(&format!(
            "the part before @ must have 1 to {MAX_EMAIL_LOCAL_PART} characters"
        )));
    }
    let atom_char = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~".contains(c)
            || (!c.is_ascii() && c.is_alphanumeric())
    };
    let dot_atom = local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atom_char));
    if !dot_atom {
        return Err(bad(
            "the part before @ may hold letters, digits, single dots and !#$%&'*+-/=?^_`{|}~, \
             but no spaces, quotes, angle brackets, ( ) [ ] \\ , ; : or @",
        ));
    }
    let label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
            })
    };
    let labels: Vec<&str> = domain.split('.').collect();
    let top_level = labels.last().copied().unwrap_or_default();
    if labels.len() < 2
        || !labels.iter().all(|l| label(l))
        || top_level.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad(
            "the part after @ must be a domain name such as example.com",
        ));
    }
    Ok(address)
}

/// A user's `name` or `nickname`: the rules of [`name`], and no `<` or `>`. These travel
/// in ID tokens and `/userinfo` to applications that may show them; nobody's name needs
/// markup.
pub fn person_name(text: &str, what: &str) -> Checked<String> {
    let text = name(text, what)?;
    if text.contains(['<', '>']) {
        return Err(format!("the {what} name must not contain < or >"));
    }
    Ok(text)
}

/// The longest profile picture URL accepted.
pub const MAX_PICTURE_URL: usize = 2000;

/// A user's `picture`: an absolute http(s) URL with a host, at most [`MAX_PICTURE_URL`]
/// characters, written only with the characters RFC 3986 allows in a URL less `'` (so it
/// cannot end an HTML attribute or start markup); other characters are percent-encoded.
pub fn picture_url(text: &str) -> Checked<String> {
    web_url(text, "the picture", &["http", "https"])
}

/// A URL shown to people or followed by browsers (a picture, a logo, a login page): one
/// of `schemes`, a host, no credentials, nothing but RFC 3986 characters (so no markup).
fn web_url(text: &str, what: &str, schemes: &[&str]) -> Checked<String> {
    let rfc3986 = |b: u8| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&()*+,;=%".contains(&b);
    let valid = text.len() <= MAX_PICTURE_URL
        && text.bytes().all(rfc3986)
        && Url::parse(text).is_ok_and(|url| {
            schemes.contains(&url.scheme())
                && url.host_str().is_some_and(|host| !host.is_empty())
                && url.username().is_empty()
                && url.password().is_none()
        });
    if !valid {
        let kind = if schemes.contains(&"http") {
            "an http(s)"
        } else {
            "an https"
        };
        return Err(format!(
            "{what} must be {kind} URL of at most {MAX_PICTURE_URL} characters, \
             without credentials, spaces, quotes or angle brackets (percent-encode them)"
        ));
    }
    Ok(text.to_string())
}

/// A `result_url` / `resultUrl`: where a page sends the user on after a mailed link was
/// used; an http(s) URL, as a picture's.
pub fn result_url(text: &str, what: &str) -> Checked<String> {
    web_url(text, what, &["http", "https"])
}

/// Auth0's email template names (`/api/v2/email-templates/{templateName}`); the last two
/// are its legacy names.
pub const EMAIL_TEMPLATE_NAMES: [&str; 14] = [
    "verify_email",
    "verify_email_by_code",
    "auth_email_by_code",
    "reset_email",
    "reset_email_by_code",
    "welcome_email",
    "blocked_account",
    "stolen_credentials",
    "enrollment_email",
    "mfa_oob_code",
    "user_invitation",
    "async_approval",
    "change_password",
    "password_reset",
];

/// The members of an email template, as Auth0 names them.
pub const EMAIL_TEMPLATE_MEMBERS: [&str; 9] = [
    "template",
    "body",
    "from",
    "resultUrl",
    "subject",
    "syntax",
    "urlLifetimeInSeconds",
    "includeEmailInRedirect",
    "enabled",
];

/// The longest template body and subject Tessera stores.
pub const MAX_EMAIL_TEMPLATE_BODY: usize = 60_000;
pub const MAX_EMAIL_SUBJECT: usize = 255;

/// Members of an email template ([`EMAIL_TEMPLATE_MEMBERS`]) of Auth0's types: a known
/// `template` name, `syntax` "liquid", a `from` address (`jane@example.com` or
/// `Name <jane@example.com>`) and a `subject` that cannot break out of their mail headers,
/// a `resultUrl` as [`result_url`], a lifetime in seconds. Whether the Liquid in `body` and
/// `subject` renders is the server's to check. Says which member is wrong and why.
pub fn email_template(members: &serde_json::Map<String, serde_json::Value>) -> Checked<()> {
    for (key, value) in members {
        // The optional members may be cleared.
        let optional = [
            "from",
            "resultUrl",
            "urlLifetimeInSeconds",
            "includeEmailInRedirect",
        ];
        if value.is_null() && optional.contains(&key.as_str()) {
            continue;
        }
        let text = || value.as_str().ok_or(format!("{key} must be a string"));
        match key.as_str() {
            "template" => {
                let name = text()?;
                if !EMAIL_TEMPLATE_NAMES.contains(&name) {
                    return Err(format!(
                        "template must be one of {}",
                        EMAIL_TEMPLATE_NAMES.join(", ")
                    ));
                }
            }
            "body" => {
                if text()?.len() > MAX_EMAIL_TEMPLATE_BODY {
                    return Err(format!(
                        "body must be at most {MAX_EMAIL_TEMPLATE_BODY} bytes"
                    ));
                }
            }
            "subject" => {
                let subject = text()?;
                if subject.chars().count() > MAX_EMAIL_SUBJECT
                    || subject.chars().any(char::is_control)
                {
                    return Err(format!(
                        "subject must be at most {MAX_EMAIL_SUBJECT} characters, none of them \
                         line breaks or other control characters"
                    ));
                }
            }
            "from" => {
                let from = text()?;
                if !from.is_empty() {
                    mail_from(from)?;
                }
            }
            "resultUrl" => {
                let url = text()?;
                if !url.is_empty() {
                    result_url(url, "resultUrl")?;
                }
            }
            "syntax" => {
                if text()? != "liquid" {
                    return Err("syntax must be \"liquid\"".into());
                }
            }
            "urlLifetimeInSeconds" => match value.as_i64() {
                Some(seconds) if (0..=MAX_URL_LIFETIME).contains(&seconds) => {}
                _ => {
                    return Err(format!(
                        "urlLifetimeInSeconds must be a whole number of seconds, 0 to {MAX_URL_LIFETIME}"
                    ));
                }
            },
            "includeEmailInRedirect" | "enabled" => {
                if !value.is_boolean() {
                    return Err(format!("{key} must be a boolean"));
                }
            }
            other => {
                let shown: String = other.chars().filter(|c| !c.is_control()).take(60).collect();
                return Err(format!(
                    "{shown}: not a member of an email template ({})",
                    EMAIL_TEMPLATE_MEMBERS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The members of the email provider (`/api/v2/emails/provider`), as Auth0 names them.
pub const EMAIL_PROVIDER_MEMBERS: [&str; 5] = [
    "name",
    "enabled",
    "default_from_address",
    "credentials",
    "settings",
];

/// The members of an SMTP provider's `credentials`.
pub const SMTP_CREDENTIALS: [&str; 4] = ["smtp_host", "smtp_port", "smtp_user", "smtp_pass"];

/// Members of the email provider of Auth0's types: `name` "smtp" (the only transport
/// Tessera has), `enabled`, a `default_from_address` as [`mail_from`], `credentials` with
/// a host name or address, a port, a user and a password, `settings` an object (kept,
/// unused). Says which member is wrong and why, never quoting `smtp_pass`.
pub fn email_provider(members: &serde_json::Map<String, serde_json::Value>) -> Checked<()> {
    for (key, value) in members {
        match key.as_str() {
            "name" => {
                if value.as_str() != Some("smtp") {
                    return Err("name must be \"smtp\": Tessera sends mail over SMTP only".into());
                }
            }
            "enabled" => {
                if !value.is_boolean() {
                    return Err("enabled must be a boolean".into());
                }
            }
            "default_from_address" => {
                let from = value
                    .as_str()
                    .ok_or("default_from_address must be a string")?;
                mail_from(from).map_err(|why| why.replacen("from", "default_from_address", 1))?;
            }
            "settings" => {
                if !value.is_object() {
                    return Err("settings must be an object".into());
                }
            }
            "credentials" => {
                let credentials = value.as_object().ok_or("credentials must be an object")?;
                smtp_credentials(credentials)?;
            }
            other => {
                let shown: String = other.chars().filter(|c| !c.is_control()).take(60).collect();
                return Err(format!(
                    "{shown}: not a member of the email provider ({})",
                    EMAIL_PROVIDER_MEMBERS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

fn smtp_credentials(credentials: &serde_json::Map<String, serde_json::Value>) -> Checked<()> {
    for (key, value) in credentials {
        match key.as_str() {
            "smtp_host" => {
                let host = value
                    .as_str()
                    .ok_or("credentials.smtp_host must be a string")?;
                let allowed = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
                if host.is_empty() || host.len() > 253 || !host.chars().all(allowed) {
                    return Err("credentials.smtp_host must be a host name or an IP address".into());
                }
            }
            "smtp_port" => match value.as_u64() {
                Some(port) if (1..=65535).contains(&port) => {}
                _ => return Err("credentials.smtp_port must be a port number, 1 to 65535".into()),
            },
            "smtp_user" | "smtp_pass" => {
                // The value is never quoted: it may be a password.
                let fits = value
                    .as_str()
                    .is_some_and(|text| text.len() <= 255 && !text.chars().any(char::is_control));
                if !fits {
                    return Err(format!(
                        "credentials.{key} must be a string of at most 255 characters, none of \
                         them control characters"
                    ));
                }
            }
            other => {
                let shown: String = other.chars().filter(|c| !c.is_control()).take(60).collect();
                return Err(format!(
                    "credentials.{shown}: not an SMTP credential ({})",
                    SMTP_CREDENTIALS.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The longest lifetime of a mailed link: 30 days.
pub const MAX_URL_LIFETIME: i64 = 30 * 24 * 3600;

/// A sender: `jane@example.com` or `Display Name <jane@example.com>`, the name printable
/// and free of the characters that would need quoting in a mail header.
pub fn mail_from(text: &str) -> Checked<()> {
    let bad = || {
        format!(
            "from must be an address such as no-reply@example.com or \
             \"Example <no-reply@example.com>\" (at most {MAX_EMAIL_SUBJECT} characters, no \
             quotes, angle brackets in the name, or control characters)"
        )
    };
    if text.chars().count() > MAX_EMAIL_SUBJECT || text.chars().any(char::is_control) {
        return Err(bad());
    }
    let address = match text.split_once('<') {
        Some((name, rest)) => {
            let address = rest.strip_suffix('>').ok_or_else(bad)?;
            if name.contains(['"', '>', '\\', ',', ';', ':', '@', '(', ')']) {
                return Err(bad());
            }
            address
        }
        None => text,
    };
    email(address).map(|_| ()).map_err(|_| bad())
}

/// How long the audit log keeps an event when the tenant's `log_retention_days` (a
/// setting of Tessera's own; Auth0's retention is its plan's) does not say.
pub const LOG_RETENTION_DAYS: i64 = 30;
/// The longest retention that may be set: ten years.
pub const MAX_LOG_RETENTION_DAYS: i64 = 3650;

/// The audit log's retention in days, as the tenant's settings say.
pub fn log_retention_days(settings: &serde_json::Map<String, serde_json::Value>) -> i64 {
    settings
        .get("log_retention_days")
        .and_then(serde_json::Value::as_i64)
        .filter(|days| (1..=MAX_LOG_RETENTION_DAYS).contains(days))
        .unwrap_or(LOG_RETENTION_DAYS)
}

/// The members of the tenant's settings (`/api/v2/tenants/settings`) Tessera keeps, as Auth0
/// names them, and `log_retention_days`, Tessera's. Only `default_audience` and
/// `log_retention_days` change what Tessera does (the audience of a request
/// that names none); the others are kept for the tools that write them (auth0-deploy-cli's
/// `tenant`).
pub const TENANT_SETTINGS: [&str; 20] = [
    "allowed_logout_urls",
    "change_password",
    "default_audience",
    "default_directory",
    "default_redirection_uri",
    "enabled_locales",
    "ephemeral_session_lifetime",
    "error_page",
    "flags",
    "friendly_name",
    "guardian_mfa_page",
    "idle_ephemeral_session_lifetime",
    "idle_session_lifetime",
    "log_retention_days",
    "picture_url",
    "sandbox_version",
    "session_cookie",
    "session_lifetime",
    "support_email",
    "support_url",
];

/// A patch of the tenant's settings: known members ([`TENANT_SETTINGS`]) of Auth0's types,
/// or `null` to remove one. Says which member is wrong and why.
pub fn tenant_settings(patch: &serde_json::Map<String, serde_json::Value>) -> Checked<()> {
    for (key, value) in patch {
        if !TENANT_SETTINGS.contains(&key.as_str()) {
            let shown: String = key.chars().filter(|c| !c.is_control()).take(60).collect();
            return Err(format!(
                "{shown}: not a tenant setting Tessera keeps ({})",
                TENANT_SETTINGS.join(", ")
            ));
        }
        if value.is_null() {
            continue;
        }
        // Every message names the member (the shared rules speak of "the address").
        tenant_setting(key, value).map_err(|why| {
            if why.starts_with(key.as_str()) {
                why
            } else {
                format!("{key}: {why}")
            }
        })?;
    }
    Ok(())
}

/// One member of the tenant's settings, of its type.
fn tenant_setting(key: &str, value: &serde_json::Value) -> Checked<()> {
    use serde_json::Value;
    let text = || value.as_str().ok_or(format!("{key} must be a string"));
    let hours = || match value.as_f64() {
        Some(h) if h > 0.0 && h <= 8760.0 => Ok(()),
        _ => Err(format!(
            "{key} must be a number of hours, more than 0 and at most 8760"
        )),
    };
    let object_of = |members: &[(&str, &str)]| -> Checked<()> {
        let Some(object) = value.as_object() else {
            return Err(format!("{key} must be an object"));
        };
        for (name, member) in object {
            let Some((_, kind)) = members.iter().find(|(known, _)| known == name) else {
                let shown: String = name.chars().take(60).collect();
                return Err(format!("{key}.{shown} is not a member Tessera keeps"));
            };
            let fits = match *kind {
                "boolean" => member.is_boolean(),
                "url" => member
                    .as_str()
                    .is_some_and(|url| web_url(url, key, &["https", "http"]).is_ok()),
                _ => member.as_str().is_some_and(|t| t.len() <= 100_000),
            };
            if !fits {
                return Err(format!("{key}.{name} must be a {kind}"));
            }
        }
        Ok(())
    };
    match key {
        "friendly_name" | "sandbox_version" => {
            let text = text()?;
            if text.chars().count() > 255 || text.chars().any(char::is_control) {
                return Err(format!("{key} must be at most 255 printable characters"));
            }
        }
        "picture_url" | "support_url" => {
            web_url(text()?, key, &["http", "https"])?;
        }
        "default_redirection_uri" => {
            web_url(text()?, key, &["https"])?;
        }
        "support_email" => {
            email(text()?)?;
        }
        "default_audience" => {
            let audience = text()?;
            if !audience.is_empty() {
                api_identifier(audience)?;
            }
        }
        "default_directory" => {
            let directory = text()?;
            if !directory.is_empty() && directory != crate::DATABASE_CONNECTION {
                return Err(format!(
                    "default_directory must be {} (the one database connection) or empty",
                    crate::DATABASE_CONNECTION
                ));
            }
        }
        "session_lifetime"
        | "idle_session_lifetime"
        | "ephemeral_session_lifetime"
        | "idle_ephemeral_session_lifetime" => hours()?,
        "log_retention_days" => match value.as_i64() {
            Some(days) if (1..=MAX_LOG_RETENTION_DAYS).contains(&days) => {}
            _ => {
                return Err(format!(
                    "{key} must be a whole number of days, 1 to {MAX_LOG_RETENTION_DAYS}"
                ));
            }
        },
        "enabled_locales" => {
            let locales = value
                .as_array()
                .filter(|list| !list.is_empty() && list.len() <= 100);
            let valid = locales.is_some_and(|list| {
                list.iter().all(|locale| {
                    locale.as_str().is_some_and(|l| {
                        (2..=10).contains(&l.len())
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
                })
            });
            if !valid {
                return Err(format!(
                    "{key} must be a list of 1 to 100 language tags (such as \"en\")"
                ));
            }
        }
        "allowed_logout_urls" => {
            let urls = value
                .as_array()
                .ok_or(format!("{key} must be a list of URLs"))?;
            for url in urls {
                let url = url
                    .as_str()
                    .ok_or(format!("{key} must be a list of URLs"))?;
                web_url(url, key, &["http", "https"])?;
            }
        }
        "flags" => {
            let flags = value
                .as_object()
                .ok_or(format!("{key} must be an object"))?;
            if flags.len() > 100
                || flags.iter().any(|(name, flag)| {
                    // Auth0's flag names; a leading letter keeps `__proto__` and the
                    // like out of what JavaScript tools read back.
                    !flag.is_boolean()
                        || name.len() > 100
                        || !name.starts_with(|c: char| c.is_ascii_lowercase())
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
            {
                return Err(format!(
                    "{key} must be an object of at most 100 boolean flags named with \
                         lower-case letters, digits and _, starting with a letter"
                ));
            }
        }
        "error_page" => object_of(&[
            ("html", "string"),
            ("show_log_link", "boolean"),
            ("url", "url"),
        ])?,
        "change_password" | "guardian_mfa_page" => {
            object_of(&[("enabled", "boolean"), ("html", "string")])?
        }
        "session_cookie" => {
            let mode = value.get("mode").and_then(Value::as_str);
            let only_mode = value.as_object().is_some_and(|o| o.len() == 1);
            if !only_mode || !matches!(mode, Some("persistent" | "non-persistent")) {
                return Err(format!(
                    "{key} must be {{\"mode\": \"persistent\" or \"non-persistent\"}}"
                ));
            }
        }
        _ => unreachable!("every member of TENANT_SETTINGS has a rule"),
    }
    Ok(())
}

/// The longest application description, and the most `client_metadata` members and their
/// longest keys and values (Auth0's limits).
pub const MAX_CLIENT_DESCRIPTION: usize = 140;
pub const MAX_CLIENT_METADATA_MEMBERS: usize = 10;
pub const MAX_CLIENT_METADATA_TEXT: usize = 255;

/// An application's `description`: at most 140 characters, none of them control ones.
pub fn client_description(text: &str) -> Checked<String> {
    if text.chars().count() > MAX_CLIENT_DESCRIPTION || text.chars().any(char::is_control) {
        return Err(format!(
            "the description must be at most {MAX_CLIENT_DESCRIPTION} printable characters"
        ));
    }
    Ok(text.to_string())
}

/// An application's `logo_uri`: an http(s) URL, as a user's picture.
pub fn logo_uri(text: &str) -> Checked<String> {
    web_url(text, "logo_uri", &["http", "https"])
}

/// An application's `initiate_login_uri`: HTTPS, as OpenID Connect's third-party initiated
/// login (and Auth0) require.
pub fn initiate_login_uri(text: &str) -> Checked<String> {
    web_url(text, "initiate_login_uri", &["https"])
}

/// An application's `oidc_logout` (OIDC Back-Channel Logout, Auth0's shape): `null`
/// clears it; otherwise an object of `backchannel_logout_urls` (at most one URL, https or
/// http to loopback, as every URL Tessera calls) and optional
/// `backchannel_logout_initiators` (`mode` `custom` or `all`, `selected_initiators` of
/// Auth0's names). Any other member is refused, so a misspelt one is not silently lost.
pub fn oidc_logout(value: &serde_json::Value) -> Checked<Option<crate::OidcLogout>> {
    use serde_json::Value;
    let members = match value {
        Value::Null => return Ok(None),
        Value::Object(members) => members,
        _ => return Err("oidc_logout must be an object or null".into()),
    };
    if let Some(unknown) = members.keys().find(|k| {
        !matches!(
            k.as_str(),
            "backchannel_logout_urls"
                | "backchannel_logout_initiators"
                | "backchannel_logout_session_metadata"
        )
    }) {
        return Err(format!(
            "oidc_logout has no member {:?}: it takes backchannel_logout_urls, \
             backchannel_logout_initiators and backchannel_logout_session_metadata",
            unknown.chars().take(64).collect::<String>()
        ));
    }
    let urls = match members.get("backchannel_logout_urls") {
        Some(Value::Array(urls)) if urls.len() <= 1 => urls
            .iter()
            .map(|url| {
                let text = url
                    .as_str()
                    .ok_or("backchannel_logout_urls holds strings")?;
                crate::connection::upstream_url(text)
                    .map(|_| text.to_string())
                    .map_err(|why| format!("a back-channel logout URL {why}"))
            })
            .collect::<Checked<Vec<String>>>()?,
        Some(Value::Array(_)) => return Err("backchannel_logout_urls holds one URL at most".into()),
        Some(_) => return Err("backchannel_logout_urls must be an array".into()),
        None => return Err("oidc_logout needs backchannel_logout_urls".into()),
    };
    let initiators = match members.get("backchannel_logout_initiators") {
        None | Some(Value::Null) => crate::LogoutInitiators::default(),
        Some(Value::Object(given)) => logout_initiators(given)?,
        Some(_) => return Err("backchannel_logout_initiators must be an object".into()),
    };
    let session_metadata = match members.get("backchannel_logout_session_metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(given)) => match (given.len(), given.get("include")) {
            (1, Some(Value::Bool(include))) => {
                Some(crate::LogoutSessionMetadata { include: *include })
            }
            _ => {
                return Err(
                    "backchannel_logout_session_metadata takes include (true or false) only".into(),
                );
            }
        },
        Some(_) => {
            return Err("backchannel_logout_session_metadata must be an object or null".into());
        }
    };
    Ok(Some(crate::OidcLogout {
        backchannel_logout_urls: urls,
        backchannel_logout_initiators: initiators,
        backchannel_logout_session_metadata: session_metadata,
    }))
}

fn logout_initiators(
    given: &serde_json::Map<String, serde_json::Value>,
) -> Checked<crate::LogoutInitiators> {
    use crate::InitiatorMode;
    if given
        .keys()
        .any(|k| !matches!(k.as_str(), "mode" | "selected_initiators"))
    {
        return Err("backchannel_logout_initiators takes mode and selected_initiators only".into());
    }
    let mode = match given.get("mode").and_then(|m| m.as_str()) {
        Some("custom") => InitiatorMode::Custom,
        Some("all") => InitiatorMode::All,
        _ => return Err("backchannel_logout_initiators.mode is custom or all".into()),
    };
    let selected = match given.get("selected_initiators") {
        None | Some(serde_json::Value::Null) if mode == InitiatorMode::All => Vec::new(),
        Some(serde_json::Value::Array(names)) if names.len() <= crate::LOGOUT_INITIATORS.len() => {
            let mut selected: Vec<String> = Vec::new();
            for name in names {
                match name.as_str() {
                    Some(name) if crate::LOGOUT_INITIATORS.contains(&name) => {
                        if !selected.iter().any(|s| s == name) {
                            selected.push(name.to_string());
                        }
                    }
                    _ => {
                        return Err(format!(
                            "selected_initiators are among {}",
                            crate::LOGOUT_INITIATORS.join(", ")
                        ));
                    }
                }
            }
            selected
        }
        _ => {
            return Err(
                "backchannel_logout_initiators.selected_initiators must list initiators \
                 when the mode is custom"
                    .into(),
            );
        }
    };
    Ok(crate::LogoutInitiators {
        mode,
        selected_initiators: selected,
    })
}

/// An application's `client_metadata`: at most 10 members, keys of letters, digits, `_`
/// and `-`, string values, each at most 255 characters.
pub fn client_metadata(
    members: &serde_json::Map<String, serde_json::Value>,
) -> Checked<std::collections::BTreeMap<String, String>> {
    if members.len() > MAX_CLIENT_METADATA_MEMBERS {
        return Err(format!(
            "client_metadata has at most {MAX_CLIENT_METADATA_MEMBERS} members"
        ));
    }
    let mut checked = std::collections::BTreeMap::new();
    for (key, value) in members {
        let key_ok = !key.is_empty()
            && key.len() <= MAX_CLIENT_METADATA_TEXT
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !key_ok {
            let shown: String = key.chars().filter(|c| !c.is_control()).take(60).collect();
            return Err(format!(
                "client_metadata key {shown:?}: at most {MAX_CLIENT_METADATA_TEXT} letters, \
                 digits, _ or -"
            ));
        }
        let Some(text) = value.as_str() else {
            return Err(format!("client_metadata.{key} must be a string"));
        };
        if text.chars().count() > MAX_CLIENT_METADATA_TEXT || text.chars().any(char::is_control) {
            return Err(format!(
                "client_metadata.{key} must be at most {MAX_CLIENT_METADATA_TEXT} printable \
                 characters"
            ));
        }
        checked.insert(key.clone(), text.to_string());
    }
    Ok(checked)
}

/// A scope token as RFC 6749 §3.3 defines it: printable ASCII without space, `"` or `\`.
pub fn scope_value(value: &str) -> Checked<()> {
    let valid = !value.is_empty()
        && value.len() <= 280
        && value
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if !valid {
        let shown: String = value.chars().take(100).collect();
        return Err(format!(
            "invalid scope {shown:?}: scopes are printable ASCII without spaces, quotes or backslashes"
        ));
    }
    Ok(())
}

/// A scope's description, trimmed: at most [`MAX_SCOPE_DESCRIPTION`] characters on one line.
pub fn scope_description(value: &str, text: &str) -> Checked<String> {
    let text = text.trim();
    if text.chars().count() > MAX_SCOPE_DESCRIPTION {
        return Err(format!(
            "the description of {value:?} is too long: at most {MAX_SCOPE_DESCRIPTION} characters"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!(
            "the description of {value:?} contains control characters (line breaks, tabs…)"
        ));
    }
    Ok(text.to_string())
}

pub fn token_lifetime(seconds: i64) -> Checked<i64> {
    if !(1..=MAX_TOKEN_LIFETIME).contains(&seconds) {
        return Err(format!(
            "invalid token lifetime {seconds}: it must be between 1 and {MAX_TOKEN_LIFETIME} seconds (30 days)"
        ));
    }
    Ok(seconds)
}

pub fn token_dialect(dialect: &str) -> Checked<TokenDialect> {
    TokenDialect::parse(dialect).ok_or_else(|| {
        let shown: String = dialect.chars().take(60).collect();
        format!(
            "unknown token dialect {shown:?}: use access_token, access_token_authz, rfc9068_profile or rfc9068_profile_authz"
        )
    })
}

pub fn app_type(text: &str) -> Checked<AppType> {
    AppType::parse(text).ok_or_else(|| {
        let shown: String = text.chars().take(60).collect();
        format!("unknown application type {shown:?}: use spa, regular, native or m2m")
    })
}

/// Grant types for an application of type `app_type`: each known, and no
/// `client_credentials` for a public client.
pub fn grant_types(grants: &[String], app_type: AppType) -> Checked<()> {
    for grant in grants {
        if !GRANT_TYPES.contains(&grant.as_str()) {
            let shown: String = grant.chars().take(60).collect();
            return Err(format!(
                "unknown grant type {shown:?}: use {}",
                GRANT_TYPES.join(", ")
            ));
        }
        if grant == "client_credentials" && app_type.is_public() {
            return Err(format!(
                "a {} application cannot use client_credentials: it is a public client without a secret",
                app_type.as_str()
            ));
        }
        // A page's script would hold users' passwords: single-page applications sign in
        // through the hosted login page only.
        if (grant == PASSWORD_GRANT || grant == PASSWORD_REALM_GRANT) && app_type == AppType::Spa {
            return Err(format!(
                "a single-page application cannot use {grant}: users sign in on the hosted login page"
            ));
        }
        // As on Auth0: the device flow is for native applications (CLIs, TVs); a browser
        // application signs in on the hosted page directly, a machine has no user.
        if grant == DEVICE_CODE_GRANT && app_type != AppType::Native {
            return Err(format!(
                "a {} application cannot use {grant}: the device flow is for native applications",
                app_type.as_str()
            ));
        }
        // The MFA grants finish a user's sign-in; a machine-to-machine application has
        // no users.
        if (grant == MFA_OTP_GRANT || grant == MFA_RECOVERY_CODE_GRANT)
            && app_type == AppType::NonInteractive
        {
            return Err(format!(
                "a {} application cannot use {grant}: it signs no users in",
                app_type.as_str()
            ));
        }
    }
    Ok(())
}

/// Client grants (machine-to-machine access) are for applications that keep a secret:
/// machine-to-machine and regular web applications.
pub fn client_grant_app_type(app_type: AppType) -> Checked<()> {
    if matches!(app_type, AppType::NonInteractive | AppType::RegularWeb) {
        return Ok(());
    }
    Err(format!(
        "a {} application cannot have client grants: client grants are for machine-to-machine (m2m) or regular web applications, which can keep a secret",
        app_type.as_str()
    ))
}

/// Scopes a client grant gives: each must be defined by the API.
pub fn granted_scopes(scopes: &[String], api: &crate::ResourceServer) -> Checked<()> {
    for scope in scopes {
        if !api.defines_scope(scope) {
            let shown: String = scope.chars().take(100).collect();
            let defined: Vec<&str> = api.scopes.iter().map(|s| s.value.as_str()).collect();
            let defined = if defined.is_empty() {
                "none".to_string()
            } else {
                defined.join(", ")
            };
            return Err(format!(
                "scope {shown} is not defined by API {} (it defines: {defined})",
                api.identifier
            ));
        }
    }
    Ok(())
}

/// Which list a URL is for; each has its own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    Callback,
    WebOrigin,
    LogoutUrl,
}

impl UrlKind {
    fn label(self) -> &'static str {
        match self {
            UrlKind::Callback => "callback URL",
            UrlKind::WebOrigin => "web origin",
            UrlKind::LogoutUrl => "logout URL",
        }
    }
}

/// Schemes that run code, read local files or reach browser internals: never a callback,
/// web origin or logout URL, whatever the application.
const DANGEROUS_SCHEMES: &[&str] = &[
    "javascript",
    "vbscript",
    "data",
    "file",
    "blob",
    "filesystem",
    "about",
    "view-source",
    "chrome",
    "chrome-extension",
    "intent",
];

/// Validates URLs, which are kept exactly as given (redirect URIs are compared as
/// strings, so they are never rewritten). Callbacks of native apps may use a private-use
/// scheme (`com.example.app:/callback`, RFC 8252 §7.1); everything else is http(s).
pub fn urls(list: &[String], kind: UrlKind, app_type: AppType) -> Checked<()> {
    for text in list {
        url(text, kind, app_type)?;
    }
    Ok(())
}

/// Whether a non-http(s) scheme may carry an authorization response: a native app's
/// private-use scheme in reverse-domain form (RFC 8252 §7.1, `com.example.app`), never
/// one of the [`DANGEROUS_SCHEMES`]. Checked at registration, and again before delivering
/// to a callback registered under older rules.
pub fn private_use_scheme(scheme: &str) -> Checked<()> {
    never_allowed(scheme)?;
    if !scheme.contains('.') {
        return Err(format!(
            "the {scheme}: scheme is not a private-use scheme: use the reverse of a domain \
             you own, such as com.example.app:/callback (RFC 8252 §7.1)"
        ));
    }
    Ok(())
}

fn never_allowed(scheme: &str) -> Checked<()> {
    if DANGEROUS_SCHEMES.contains(&scheme) {
        return Err(format!("the {scheme}: scheme is never allowed"));
    }
    Ok(())
}

fn url(text: &str, kind: UrlKind, app_type: AppType) -> Checked<()> {
    let shown: String = text.chars().take(200).collect();
    let bad = |why: &str| format!("invalid {} {shown:?}: {why}", kind.label());
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "it must be printable ASCII without spaces (write an international domain name \
             in its xn-- form)",
        ));
    }
    if text.contains('\\') {
        // Browsers read `\` as `/` in http(s) URLs: what is registered must be what is meant.
        return Err(bad("it must not contain backslashes"));
    }
    let parsed = Url::parse(text)
        .map_err(|_| bad("it must be an absolute URL such as https://app.example.com/callback"))?;
    let scheme = parsed.scheme();
    // The text starts with the scheme (printable ASCII: nothing was trimmed by parsing).
    let authority = text[scheme.len()..]
        .strip_prefix("://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    let credentials = authority.is_some_and(|authority| authority.contains('@'))
        || !parsed.username().is_empty()
        || parsed.password().is_some();
    if credentials {
        // Not echoed: the credentials may be real.
        return Err(format!(
            "invalid {}: it must not contain credentials (user@host)",
            kind.label()
        ));
    }
    let web = matches!(scheme, "http" | "https");
    if web {
        // `http:evil.test` and `http:/evil.test` parse as http://evil.test/ but are
        // relative references to a browser.
        if authority.is_none() {
            return Err(bad(&format!("write it as {scheme}://host/path")));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
    } else if kind == UrlKind::Callback && app_type == AppType::Native {
        private_use_scheme(scheme).map_err(|why| bad(&why))?;
    } else {
        never_allowed(scheme).map_err(|why| bad(&why))?;
        return Err(bad(
            "it must be an absolute http(s) URL such as https://app.example.com/callback",
        ));
    }
    if text.contains('*') {
        return Err(bad("wildcards are not supported: list each URL"));
    }
    match kind {
        // RFC 6749 §3.1.2: the redirection endpoint URI must not include a fragment.
        UrlKind::Callback if parsed.fragment().is_some() => {
            Err(bad("a callback URL must not have a #fragment"))
        }
        UrlKind::WebOrigin
            if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() =>
        {
            Err(bad(
                "a web origin is scheme://host[:port] without a path, query or fragment",
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_names_and_size_are_checked() {
        let ok = serde_json::json!({"theme": "dark", "list": [{"a": 1}], "deep": {"x": null}});
        assert!(super::metadata(ok.as_object().unwrap(), "user_metadata").is_ok());
        for bad in [
            serde_json::json!({"a.b": 1}),
            serde_json::json!({"$set": 1}),
            serde_json::json!({"": 1}),
            serde_json::json!({"deep": {"x.y": 1}}),
            serde_json::json!({"list": [{"$where": 1}]}),
        ] {
            let message = super::metadata(bad.as_object().unwrap(), "app_metadata").unwrap_err();
            assert!(message.starts_with("app_metadata: the name"), "{message}");
        }
        let big = serde_json::json!({"blob": "x".repeat(super::MAX_METADATA_BYTES)});
        let message = super::metadata(big.as_object().unwrap(), "user_metadata").unwrap_err();
        assert!(message.contains("too large"), "{message}");
    }

    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn url_rules() {
        let spa = AppType::Spa;
        assert!(
            urls(
                &list(&["http://localhost:3000", "https://app.example/cb?x=1"]),
                UrlKind::Callback,
                spa
            )
            .is_ok()
        );
        for bad in [
            "localhost:3000",
            "/callback",
            "ftp://x.example/",
            "https://app.example/cb#frag",
            "https://*.example.com/cb",
            "https://u:p@x.example/",
        ] {
            assert!(
                urls(&list(&[bad]), UrlKind::Callback, spa).is_err(),
                "{bad}"
            );
        }
        let message = urls(
            &list(&["https://u:hunter2@x.example/"]),
            UrlKind::Callback,
            spa,
        )
        .unwrap_err();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            urls(
                &list(&["com.example.app:/callback"]),
                UrlKind::Callback,
                AppType::Native
            )
            .is_ok()
        );
        assert!(
            urls(
                &list(&["com.example.app:/callback"]),
                UrlKind::Callback,
                spa
            )
            .is_err()
        );
        assert!(
            urls(
                &list(&["http://localhost:3000", "http://localhost:3000/"]),
                UrlKind::WebOrigin,
                spa
            )
            .is_ok()
        );
        assert!(
            urls(
                &list(&["http://localhost:3000/app"]),
                UrlKind::WebOrigin,
                spa
            )
            .is_err()
        );
        assert!(
            urls(
                &list(&["http://localhost:3000/bye#x"]),
                UrlKind::LogoutUrl,
                spa
            )
            .is_ok()
        );
    }

    #[test]
    fn dangerous_and_ambiguous_urls_are_refused_for_every_list() {
        let dangerous = [
            "javascript:alert(1)",
            "JavaScript:alert(1)//",
            "javascript://app.example/%0aalert(1)",
            "vbscript:msgbox(1)",
            "data:text/html,<script>alert(1)</script>",
            "data:text/html;base64,PHNjcmlwdD4=",
            "file:///etc/passwd",
            "file://host/share",
            "blob:https://app.example/uuid",
            "about:blank",
            "view-source:https://app.example/",
            "chrome://settings",
            "intent://scan/#Intent;scheme=zxing;end",
            "http:evil.test",
            "http:evil.test/callback",
            "https:/evil.test/callback",
            "https:\\\\evil.test\\callback",
            "https://app.example\\@evil.test/",
            "https://user@evil.test/",
            "https://@evil.test/",
            "https://app.example:@evil.test/",
            "http:user:pw@evil.test/",
            "https://xn--pp-8cd.example/ok but spaced",
            "https://\u{0430}pp.example/callback",
            "https://app.example/cb\u{0000}",
            "https://app.example/\u{202e}bc",
        ];
        for kind in [UrlKind::Callback, UrlKind::WebOrigin, UrlKind::LogoutUrl] {
            for app_type in [AppType::Native, AppType::Spa, AppType::RegularWeb] {
                for bad in dangerous {
                    assert!(
                        urls(&list(&[bad]), kind, app_type).is_err(),
                        "{bad} as {kind:?} of {app_type:?}"
                    );
                }
            }
        }
        for secret in [
            "https://admin:hunter2@x.example/",
            "http:admin:hunter2@x.example/",
        ] {
            let message = urls(&list(&[secret]), UrlKind::LogoutUrl, AppType::Spa).unwrap_err();
            assert!(!message.contains("hunter2"), "{message}");
        }
        let message =
            urls(&list(&["http:evil.test"]), UrlKind::Callback, AppType::Spa).unwrap_err();
        assert!(message.contains("http://host/path"), "{message}");
    }

    #[test]
    fn native_callbacks_use_reverse_domain_private_schemes_or_loopback() {
        let native = AppType::Native;
        for good in [
            "com.example.app:/callback",
            "com.example.app://callback",
            "io.tessera.cli:/oauth2redirect/provider?x=1",
            "http://127.0.0.1/callback",
            "http://[::1]/callback",
            "http://localhost/callback",
            "https://app.example/ios/callback",
        ] {
            assert!(
                urls(&list(&[good]), UrlKind::Callback, native).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "myapp:/callback",
            "myapp://callback",
            "ftp://x.example/",
            "ws://x.example/",
            "com.example.app:/callback#frag",
        ] {
            assert!(
                urls(&list(&[bad]), UrlKind::Callback, native).is_err(),
                "{bad}"
            );
        }
        // A private-use scheme is a native app's callback, never an origin or a logout URL.
        for kind in [UrlKind::WebOrigin, UrlKind::LogoutUrl] {
            assert!(urls(&list(&["com.example.app:/x"]), kind, native).is_err());
        }
        assert!(private_use_scheme("com.example.app").is_ok());
        assert!(private_use_scheme("javascript").is_err());
        assert!(private_use_scheme("myapp").is_err());
    }

    #[test]
    fn scope_and_identifier_rules() {
        assert!(scope_value("read:messages").is_ok());
        assert!(scope_value("read messages").is_err());
        assert!(scope_value("say\"hi\"").is_err());
        assert!(api_identifier("https://quickstarts/api").is_ok());
        assert!(api_identifier("urn:my-api").is_ok());
        assert!(api_identifier("").is_err());
        assert!(api_identifier("my api").is_err());
        assert!(
            token_lifetime(0).is_err()
                && token_lifetime(2_592_001).is_err()
                && token_lifetime(60).is_ok()
        );
    }

    #[test]
    fn email_rules() {
        for (given, stored) in [
            ("demo@example.com", "demo@example.com"),
            (
                " Jane.Doe+tag@Mail.Example.COM ",
                "jane.doe+tag@mail.example.com",
            ),
            ("o'brien@example.ie", "o'brien@example.ie"),
            (
                "x_y-z!#$%&*/=?^`{|}~@sub-domain.example.org",
                "x_y-z!#$%&*/=?^`{|}~@sub-domain.example.org",
            ),
            ("jürgen@bücher.example", "jürgen@bücher.example"),
            ("a@xn--bcher-kva.example", "a@xn--bcher-kva.example"),
        ] {
            assert_eq!(email(given).as_deref(), Ok(stored), "{given}");
        }
        let long_local = format!("{}@example.com", "a".repeat(MAX_EMAIL_LOCAL_PART + 1));
        let long = format!("a@{}.example.com", vec!["b".repeat(60); 5].join("."));
        for bad in [
            "",
            "demo",
            "@example.com",
            "demo@",
            "demo@example",
            "a b@example.com",
            "a@b@c.com",
            "<script>alert(1)</script>@test.example",
            "<a@example.com>",
            "Jane <jane@example.com>",
            "\"quoted local\"@example.com",
            "\"a\"@example.com",
            "a@[192.0.2.1]",
            "a@192.0.2.1",
            "a(comment)@example.com",
            "a,b@example.com",
            "a;b@example.com",
            "a:b@example.com",
            "a\\b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "a@example..com",
            "a@-example.com",
            "a@example-.com",
            "a@exa_mple.com",
            "a@example.com.",
            "a\tb@example.com",
            "a\u{0}b@example.com",
            "a\nb@example.com",
            "a\u{202e}b@example.com",
            "a@exam\u{202e}ple.com",
            "a@example.com\r\nBcc: x@example.com",
            &long_local,
            &long,
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(email(&long).unwrap_err().contains("longer than 254"));
    }

    #[test]
    fn person_names_and_pictures() {
        assert_eq!(
            person_name(" Jane O'Brien & co ", "user").as_deref(),
            Ok("Jane O'Brien & co")
        );
        assert!(person_name("<script>alert(1)</script>", "user").is_err());
        assert!(person_name("a > b", "nickname").is_err());
        assert!(person_name("", "user").is_err());
        assert!(picture_url("https://cdn.example.com/a/b.png?s=480&d=mp").is_ok());
        assert!(picture_url("http://example.com/%3Cx%3E.png").is_ok());
        for bad in [
            "javascript:alert(1)",
            "data:image/svg+xml,<svg onload=alert(1)>",
            "ftp://example.com/a.png",
            "https://",
            "//example.com/a.png",
            "https://example.com/\"><script>alert(1)</script>",
            "https://example.com/'onerror='alert(1)",
            "https://example.com/a b.png",
            "https://u:p@example.com/a.png",
            "https://example.com/ä.png",
        ] {
            assert!(picture_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_PICTURE_URL));
        assert!(picture_url(&long).is_err());
    }

    #[test]
    fn system_api_ids_are_reserved_as_identifiers() {
        let system = crate::system::management_api("https://id.example.com/", 1);
        assert!(api_identifier(&system.id).is_err());
        for reserved in ["sys_", "sys_abc", "SYS_abc", "Sys_0123456789abcdef0123"] {
            let message = api_identifier(reserved).unwrap_err();
            assert!(message.contains("reserved"), "{message}");
        }
        assert!(api_identifier("system-api").is_ok());
        assert!(api_identifier("https://example.com/sys_x").is_ok());
    }

    #[test]
    fn application_profile_rules() {
        assert!(client_description(&"x".repeat(140)).is_ok());
        assert!(client_description(&"x".repeat(141)).is_err());
        assert!(client_description("line\nbreak").is_err());
        assert!(logo_uri("https://cdn.example.com/logo.png").is_ok());
        for bad in [
            "javascript:alert(1)",
            "data:image/png;base64,AA",
            "https://a.example/\"x",
        ] {
            assert!(logo_uri(bad).is_err(), "{bad}");
        }
        assert!(initiate_login_uri("https://app.example/login").is_ok());
        assert!(initiate_login_uri("http://app.example/login").is_err());
        let metadata = |value: serde_json::Value| client_metadata(value.as_object().unwrap());
        assert_eq!(
            metadata(serde_json::json!({"team": "billing", "tier-1_x": ""}))
                .unwrap()
                .len(),
            2
        );
        let eleven: serde_json::Map<String, serde_json::Value> = (0..11)
            .map(|i| (format!("k{i}"), serde_json::json!("v")))
            .collect();
        assert!(client_metadata(&eleven).is_err());
        for bad in [
            serde_json::json!({"a.b": "x"}),
            serde_json::json!({"$where": "x"}),
            serde_json::json!({"": "x"}),
            serde_json::json!({"n": 1}),
            serde_json::json!({"n": {"nested": "x"}}),
            serde_json::json!({"n": "x".repeat(256)}),
        ] {
            assert!(metadata(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn tenant_settings_rules() {
        let check = |value: serde_json::Value| tenant_settings(value.as_object().unwrap());
        assert!(check(serde_json::json!({
            "friendly_name": "Acme", "support_email": "help@acme.example",
            "support_url": "https://acme.example/help", "default_audience": "https://api.acme/",
            "session_lifetime": 168, "idle_session_lifetime": 72.5, "enabled_locales": ["en", "pt-BR"],
            "flags": {"enable_client_connections": false}, "default_directory": "",
            "error_page": {"html": "", "show_log_link": false, "url": "https://acme.example/error"},
            "session_cookie": {"mode": "non-persistent"}, "friendly_name ": null
        }))
        .is_err(), "an unknown member (a trailing space) is refused");
        assert!(
            check(serde_json::json!({
                "friendly_name": "Acme", "support_email": "help@acme.example",
                "session_lifetime": 168, "enabled_locales": ["en"], "flags": {"a_b": true},
                "default_audience": null
            }))
            .is_ok()
        );
        for bad in [
            serde_json::json!({"friendly_name": "<a>\n"}),
            serde_json::json!({"support_email": "<script>@x.example"}),
            serde_json::json!({"support_url": "javascript:alert(1)"}),
            serde_json::json!({"default_redirection_uri": "http://acme.example/"}),
            serde_json::json!({"session_lifetime": 0}),
            serde_json::json!({"session_lifetime": "168"}),
            serde_json::json!({"enabled_locales": []}),
            serde_json::json!({"enabled_locales": ["<b>"]}),
            serde_json::json!({"flags": {"x": "true"}}),
            serde_json::json!({"flags": {"a.b": true}}),
            serde_json::json!({"flags": {"__proto__": true}}),
            serde_json::json!({"flags": {"Enable": true}}),
            serde_json::json!({"default_directory": "google-oauth2"}),
            serde_json::json!({"default_audience": "has space"}),
            serde_json::json!({"error_page": {"url": "javascript:x"}}),
            serde_json::json!({"error_page": {"other": true}}),
            serde_json::json!({"session_cookie": {"mode": "forever"}}),
            serde_json::json!({"tenant_id": "other"}),
        ] {
            assert!(check(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_management_apis_name_is_reserved() {
        for reserved in [
            "Auth0 Management API",
            " auth0 management api ",
            "AUTH0 MANAGEMENT API",
        ] {
            let message = api_name(reserved).unwrap_err();
            assert!(message.contains("reserved"), "{message}");
        }
        assert_eq!(api_name(" Messages API ").unwrap(), "Messages API");
        assert!(api_name("Auth0 Management API v2").is_ok());
        assert!(api_name("").is_err());
    }

    #[test]
    fn grant_type_rules() {
        assert!(grant_types(&list(&["client_credentials"]), AppType::Spa).is_err());
        assert!(grant_types(&list(&["client_credentials"]), AppType::NonInteractive).is_ok());
        assert!(grant_types(&list(&["password"]), AppType::RegularWeb).is_ok());
        assert!(grant_types(&list(&[PASSWORD_REALM_GRANT]), AppType::Native).is_ok());
        assert!(grant_types(&list(&["password"]), AppType::Spa).is_err());
        assert!(grant_types(&list(&[PASSWORD_REALM_GRANT]), AppType::Spa).is_err());
        assert!(grant_types(&list(&[DEVICE_CODE_GRANT]), AppType::Native).is_ok());
        for app_type in [AppType::Spa, AppType::RegularWeb, AppType::NonInteractive] {
            assert!(grant_types(&list(&[DEVICE_CODE_GRANT]), app_type).is_err());
        }
        assert!(grant_types(&list(&["urn:made-up"]), AppType::RegularWeb).is_err());
        for grant in [MFA_OTP_GRANT, MFA_RECOVERY_CODE_GRANT] {
            assert!(grant_types(&list(&[grant]), AppType::RegularWeb).is_ok());
            assert!(grant_types(&list(&[grant]), AppType::Native).is_ok());
            assert!(grant_types(&list(&[grant]), AppType::NonInteractive).is_err());
        }
    }
}

#[cfg(test)]
mod email_template_tests {
    use super::*;
    use serde_json::json;

    fn check(value: serde_json::Value) -> Checked<()> {
        email_template(value.as_object().unwrap())
    }

    #[test]
    fn members_of_auth0s_types_pass() {
        check(json!({
            "template": "verify_email", "body": "<p>{{ url }}</p>", "from": "Acme <no-reply@acme.example>",
            "subject": "Verify", "syntax": "liquid", "resultUrl": "https://app.example/done",
            "urlLifetimeInSeconds": 3600, "includeEmailInRedirect": false, "enabled": true
        }))
        .unwrap();
        check(json!({"from": "no-reply@acme.example", "resultUrl": ""})).unwrap();
    }

    #[test]
    fn header_breaking_and_unknown_members_are_refused() {
        for bad in [
            json!({"template": "bogus"}),
            json!({"subject": "Hi\r\nBcc: victim@example.com"}),
            json!({"subject": "Hi\nthere"}),
            json!({"from": "a@b.example\r\nBcc: victim@example.com"}),
            json!({"from": "Evil \"quote\" <a@b.example>"}),
            json!({"from": "Two <a@b.example>, <c@d.example>"}),
            json!({"from": "not an address"}),
            json!({"syntax": "handlebars"}),
            json!({"resultUrl": "javascript:alert(1)"}),
            json!({"urlLifetimeInSeconds": -1}),
            json!({"urlLifetimeInSeconds": 1.5}),
            json!({"enabled": "yes"}),
            json!({"secret": "x"}),
            json!({"body": "x".repeat(MAX_EMAIL_TEMPLATE_BODY + 1)}),
        ] {
            assert!(check(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn email_providers_are_smtp_and_never_quote_the_password() {
        let provider = |value: serde_json::Value| email_provider(value.as_object().unwrap());
        provider(json!({
            "name": "smtp", "enabled": true, "default_from_address": "Acme <no-reply@acme.example>",
            "credentials": {"smtp_host": "smtp.acme.example", "smtp_port": 587,
                            "smtp_user": "mailer", "smtp_pass": "hunter2"},
            "settings": {}
        }))
        .unwrap();
        for bad in [
            json!({"name": "sendgrid"}),
            json!({"credentials": {"smtp_host": "a b"}}),
            json!({"credentials": {"smtp_host": "user@host"}}),
            json!({"credentials": {"smtp_port": 0}}),
            json!({"credentials": {"smtp_port": 70000}}),
            json!({"credentials": {"api_key": "x"}}),
            json!({"credentials": {"smtp_pass": "hunter2\r\nQUIT"}}),
            json!({"default_from_address": "a@example.com\r\nBcc: b@example.com"}),
            json!({"enabled": "yes"}),
        ] {
            let why = provider(bad.clone()).unwrap_err();
            assert!(!why.contains("hunter2"), "{why}");
        }
    }
}
