//! Which custom claims an action or a rule may put in a token, by Auth0's rules
//! (`create-custom-claims.mdx`): a claim that may not be set is dropped, never an error,
//! and the caller logs why.

use serde_json::{Map, Value};

/// Auth0 caps the custom claims of one token at 100 KB of JSON.
pub const MAX_TOTAL_BYTES: usize = 100 * 1024;

/// Names Auth0 refuses as custom claims.
const RESTRICTED: &[&str] = &[
    "acr",
    "act",
    "active",
    "amr",
    "at_hash",
    "ath",
    "attest",
    "aud",
    "auth_time",
    "authorization_details",
    "azp",
    "c_hash",
    "client_id",
    "cnf",
    "cty",
    "dest",
    "entitlements",
    "events",
    "exp",
    "groups",
    "gty",
    "htm",
    "htu",
    "iat",
    "internalService",
    "iss",
    "jcard",
    "jku",
    "jti",
    "jwe",
    "jwk",
    "kid",
    "may_act",
    "mky",
    "nbf",
    "nonce",
    "object_id",
    "org_id",
    "org_name",
    "orig",
    "origid",
    "permissions",
    "roles",
    "rph",
    "s_hash",
    "sid",
    "sip_callid",
    "sip_cseq_num",
    "sip_date",
    "sip_from_tag",
    "sip_via_branch",
    "sub",
    "sub_jwk",
    "toe",
    "txn",
    "typ",
    "uuid",
    "vot",
    "vtm",
    "x5t#S256",
];

/// Registered and token-shaping claims the issuer alone sets (beyond [`RESTRICTED`]).
const ISSUER_OWNED: &[&str] = &["scope", "scp", "alg", "crit", "x5c", "x5t", "x5u", "org"];

/// OIDC profile claims allowed anywhere, also without a namespace in access tokens.
const PROFILE: &[&str] = &[
    "address",
    "birthdate",
    "email",
    "email_verified",
    "family_name",
    "gender",
    "given_name",
    "locale",
    "middle_name",
    "name",
    "nickname",
    "phone_number",
    "phone_number_verified",
    "picture",
    "preferred_username",
    "profile",
    "updated_at",
    "website",
    "zoneinfo",
];

/// Hosts whose namespaces belong to Auth0 (and their subdomains).
const RESERVED_HOSTS: &[&str] = &["auth0.com", "webtask.io", "webtask.run"];

/// Keeps the custom claims a token may carry. `issuer_host` (this server's host) is
/// reserved like Auth0's domains. Claims are judged in name order; one that would take the
/// kept ones past [`MAX_TOTAL_BYTES`] is dropped, and smaller ones after it may still fit
/// (so one oversized claim does not take the others with it). Returns what is kept and one line per
/// dropped claim saying why (names only, never values).
pub fn filter(
    issuer_host: &str,
    for_access_token: bool,
    claims: Map<String, Value>,
) -> (Map<String, Value>, Vec<String>) {
    let mut kept = Map::new();
    let mut dropped = Vec::new();
    // `{}` around the members.
    let mut total = 2;
    for (name, value) in claims {
        if let Some(why) = refusal(issuer_host, for_access_token, &name) {
            dropped.push(format!("{name}: {why}"));
            continue;
        }
        // `"name":value,` as it will appear in the payload.
        let size = serde_json::to_string(&name).map_or(0, |text| text.len())
            + serde_json::to_string(&value).map_or(0, |text| text.len())
            + 2;
        if total + size > MAX_TOTAL_BYTES {
            dropped.push(format!(
                "{name}: the custom claims exceed {} KB",
                MAX_TOTAL_BYTES / 1024
            ));
            continue;
        }
        total += size;
        kept.insert(name, value);
    }
    (kept, dropped)
}

/// Why a claim name may not be set, if it may not.
fn refusal(issuer_host: &str, for_access_token: bool, name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("an empty name");
    }
    if RESTRICTED.contains(&name) {
        return Some("a restricted claim name");
    }
    if ISSUER_OWNED.contains(&name) {
        return Some("a claim only the issuer sets");
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("urn:auth0") {
        return Some("the urn:auth0 namespace is reserved");
    }
    if let Some(host) = namespace_host(&lower) {
        let issuer_host = issuer_host.to_ascii_lowercase();
        let reserved = RESERVED_HOSTS
            .iter()
            .copied()
            .chain((!issuer_host.is_empty()).then_some(issuer_host.as_str()))
            .any(|reserved| {
                host == reserved
                    || host
                        .strip_suffix(reserved)
                        .is_some_and(|rest| rest.ends_with('.'))
            });
        if reserved {
            return Some("a reserved namespace");
        }
        return None;
    }
    if for_access_token && !is_namespaced(&lower) && !PROFILE.contains(&name) {
        return Some("access tokens take only namespaced custom claims");
    }
    None
}

/// A namespaced name is a URI: `https://example.com/roles`, `urn:example:roles`.
fn is_namespaced(lower: &str) -> bool {
    lower.contains("://") || lower.starts_with("urn:")
}

/// The host of a URL-shaped claim name, without port or credentials.
fn namespace_host(lower: &str) -> Option<&str> {
    let rest = &lower[lower.find("://")? + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    Some(host.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn namespaced_claims_pass_in_both_tokens() {
        let input =
            claims(json!({"https://app.example.com/roles": ["admin"], "urn:example:tier": "gold"}));
        for access in [false, true] {
            let (kept, dropped) = filter("tessera.example.net", access, input.clone());
            assert_eq!(kept, input);
            assert!(dropped.is_empty());
        }
    }

    #[test]
    fn restricted_and_registered_names_are_dropped() {
        let input = claims(
            json!({"sub": "x", "roles": [], "permissions": [], "scope": "a", "iss": "x", "x5t#S256": "", "https://ok.example/a": 1}),
        );
        let (kept, dropped) = filter("tessera.example.net", false, input);
        assert_eq!(kept, claims(json!({"https://ok.example/a": 1})));
        assert_eq!(dropped.len(), 6);
        assert!(
            dropped
                .iter()
                .any(|line| line == "roles: a restricted claim name")
        );
        assert!(
            dropped
                .iter()
                .any(|line| line == "scope: a claim only the issuer sets")
        );
    }

    #[test]
    fn reserved_namespaces_are_dropped() {
        let input = claims(json!({
            "https://auth0.com/x": 1,
            "https://tenant.eu.auth0.com/x": 1,
            "http://sandbox.webtask.io/x": 1,
            "https://WEBTASK.RUN/x": 1,
            "urn:auth0:x": 1,
            "https://Tessera.Example.NET:443/x": 1,
            "https://notauth0.com/x": 1,
        }));
        let (kept, dropped) = filter("tessera.example.net", false, input);
        assert_eq!(kept, claims(json!({"https://notauth0.com/x": 1})));
        assert_eq!(dropped.len(), 6);
        assert!(
            dropped
                .iter()
                .all(|line| line.ends_with("reserved namespace") || line.ends_with("is reserved"))
        );
    }

    #[test]
    fn plain_names_are_id_token_only_except_profile_claims() {
        let input =
            claims(json!({"department": "R&D", "email": "a@example.com", "nickname": "ada"}));
        let (kept, _) = filter("tessera.example.net", false, input.clone());
        assert_eq!(kept, input);
        let (kept, dropped) = filter("tessera.example.net", true, input);
        assert_eq!(
            kept,
            claims(json!({"email": "a@example.com", "nickname": "ada"}))
        );
        assert_eq!(
            dropped,
            vec!["department: access tokens take only namespaced custom claims".to_string()]
        );
    }

    #[test]
    fn a_claim_past_100_kb_is_dropped_and_smaller_ones_still_fit() {
        let big = "x".repeat(60 * 1024);
        let input = claims(json!({
            "https://a.example/1": big,
            "https://a.example/2": big,
            "https://a.example/3": "small",
        }));
        let (kept, dropped) = filter("tessera.example.net", true, input);
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            ["https://a.example/1", "https://a.example/3"]
        );
        assert_eq!(dropped.len(), 1);
        assert!(dropped[0].starts_with("https://a.example/2: the custom claims exceed 100 KB"));
        let size = serde_json::to_string(&kept).unwrap().len();
        assert!(size <= MAX_TOTAL_BYTES);
    }

    #[test]
    fn dropped_lines_never_carry_values() {
        let (_, dropped) = filter(
            "h",
            true,
            claims(json!({"sub": "secret-value", "plain": "secret-value"})),
        );
        assert!(dropped.iter().all(|line| !line.contains("secret-value")));
    }
}
