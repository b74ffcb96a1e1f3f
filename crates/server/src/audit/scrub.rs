//! What never enters an audit event: members of a body whose name is a secret's.

use serde_json::Value;

/// Parts of a member's name (lower-cased) that make it a secret: passwords and their
/// hashes, client and signing secrets, every kind of token, codes, keys, credentials,
/// authorization headers, cookies and CSRF values, tickets (an email verification link
/// is one), a job's `location` (an export's download link), and headers (a log stream's
/// custom headers carry API keys as `{header, value}` pairs, named by neither member).
const SECRET_NAMES: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "pass",
    "hash",
    "token",
    "code",
    "private",
    "key",
    "credential",
    "authorization",
    "assertion",
    "cookie",
    "csrf",
    "otp",
    "recovery",
    "seed",
    "salt",
    "jwt",
    "pem",
    "ticket",
    "location",
    "header",
];

/// Whether a member named `name` may hold a secret.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|part| name.contains(part))
}

/// Removes, at every depth, each member whose name is a secret's.
pub(crate) fn scrub(value: &mut Value) {
    match value {
        Value::Object(members) => {
            members.retain(|name, _| !is_secret_name(name));
            members.values_mut().for_each(scrub);
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_go_at_every_depth_and_the_rest_stays() {
        let mut body = json!({
            "name": "App",
            "client_secret": "s3cr3t",
            "callbacks": ["https://app/cb"],
            "Password": "hunter2",
            "user": {"email": "a@b.c", "password_hash": "$2b$…", "app_metadata": {"api_token": "t"}},
            "credentials": [{"smtp_pass": "p"}],
            "signing_keys": [{"pkcs7": "x"}],
            "items": [{"refresh_token": "r", "kept": 1}],
            "code": "function () {}",
            "csrf": "c",
            "ticket": "https://id/u/email-verification?ticket=t",
            "location": "https://id/api/v2/jobs/j/file?token=t",
            "sink": {"httpEndpoint": "https://siem/in", "httpCustomHeaders": [{"header": "X-Api-Key", "value": "k"}]},
        });
        scrub(&mut body);
        assert_eq!(
            body,
            json!({
                "name": "App",
                "callbacks": ["https://app/cb"],
                "user": {"email": "a@b.c", "app_metadata": {}},
                "items": [{"kept": 1}],
                "sink": {"httpEndpoint": "https://siem/in"},
            })
        );
    }
}
