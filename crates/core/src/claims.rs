//! The claims of the tokens we issue, in Auth0's shapes (see AUTH0-SURFACE.md).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::{ResourceServer, User, scope};

/// Who an access token is for.
pub enum Subject<'a> {
    User(&'a str),
    /// A machine-to-machine client: `sub` is `<client_id>@clients`, `gty` is set.
    Client,
}

pub struct AccessTokenRequest<'a> {
    pub issuer: &'a str,
    pub api: &'a ResourceServer,
    pub subject: Subject<'a>,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    /// Permissions, for the dialects that carry them.
    pub permissions: &'a [String],
    pub now: i64,
    /// Seconds until `exp` (`ResourceServer::access_token_lifetime`).
    pub lifetime: i64,
    /// A fresh random id; only the RFC 9068 dialects put it in the token.
    pub jti: &'a str,
}

/// Claims of a JWT access token, and the `typ` header value its dialect uses.
pub fn access_token(request: &AccessTokenRequest<'_>) -> (&'static str, Map<String, Value>) {
    let AccessTokenRequest {
        issuer,
        api,
        subject,
        client_id,
        scopes,
        permissions,
        now,
        lifetime,
        jti,
    } = request;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer));
    let sub = match subject {
        Subject::User(user_id) => json!(user_id),
        Subject::Client => json!(format!("{client_id}@clients")),
    };
    claims.insert("sub".into(), sub);
    let wants_userinfo = matches!(subject, Subject::User(_)) && scope::contains(scopes, "openid");
    let aud = if wants_userinfo {
        json!([api.identifier, format!("{issuer}userinfo")])
    } else {
        json!(api.identifier)
    };
    claims.insert("aud".into(), aud);
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime));
    claims.insert("scope".into(), json!(scope::join(scopes)));
    if matches!(subject, Subject::Client) {
        claims.insert("gty".into(), json!("client-credentials"));
    }
    claims.insert("azp".into(), json!(client_id));
    let dialect = api.token_dialect;
    if dialect.is_rfc9068() {
        claims.insert("client_id".into(), json!(client_id));
        claims.insert("jti".into(), json!(jti));
    }
    if dialect.adds_permissions() {
        claims.insert("permissions".into(), json!(permissions));
    }
    let typ = if dialect.is_rfc9068() {
        "at+jwt"
    } else {
        "JWT"
    };
    (typ, claims)
}

/// The algorithm every ID token is signed with (Auth0's default; what the SDKs expect).
/// `at_hash` and `c_hash` use its hash.
pub const ID_TOKEN_ALG: &str = "RS256";

pub struct IdTokenRequest<'a> {
    pub issuer: &'a str,
    pub user: &'a User,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    pub now: i64,
    pub lifetime: i64,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub sid: Option<&'a str>,
    /// The access token issued alongside, for `at_hash`.
    pub access_token: Option<&'a str>,
    /// The authorization code issued alongside (a hybrid response), for `c_hash`.
    pub code: Option<&'a str>,
}

pub fn id_token(request: &IdTokenRequest<'_>) -> Map<String, Value> {
    let mut claims = profile_claims(request.user, request.scopes);
    claims.insert("iss".into(), json!(request.issuer));
    claims.insert("sub".into(), json!(request.user.user_id));
    claims.insert("aud".into(), json!(request.client_id));
    claims.insert("iat".into(), json!(request.now));
    claims.insert("exp".into(), json!(request.now + request.lifetime));
    claims.insert("auth_time".into(), json!(request.auth_time));
    if let Some(sid) = request.sid {
        claims.insert("sid".into(), json!(sid));
    }
    if let Some(nonce) = request.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    if let Some(token) = request.access_token {
        claims.insert("at_hash".into(), json!(at_hash(token)));
    }
    if let Some(code) = request.code {
        claims.insert("c_hash".into(), json!(c_hash(code)));
    }
    claims
}

/// The profile and email claims the scopes allow (OIDC Core §5.4).
pub fn profile_claims(user: &User, scopes: &[String]) -> Map<String, Value> {
    let mut claims = Map::new();
    if scope::contains(scopes, "profile") {
        claims.insert("nickname".into(), json!(user.nickname));
        claims.insert("name".into(), json!(user.name));
        claims.insert("picture".into(), json!(user.picture));
        claims.insert("updated_at".into(), json!(rfc3339(user.updated_at)));
    }
    // A user without an email (an upstream that shared none) has neither claim, as on
    // Auth0.
    if scope::contains(scopes, "email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    claims
}

/// `at_hash` (OIDC Core §3.1.3.6): binds an ID token to the access token issued with it.
pub fn at_hash(access_token: &str) -> String {
    left_half_hash(access_token)
}

/// `c_hash` (OIDC Core §3.3.2.11): binds an ID token to the code issued with it.
pub fn c_hash(code: &str) -> String {
    left_half_hash(code)
}

/// base64url of the left half of the hash of `value`, the hash being the one of the ID
/// token's signing algorithm: SHA-256, for [`ID_TOKEN_ALG`] (RS256).
fn left_half_hash(value: &str) -> String {
    let hash = digest::digest(&digest::SHA256, value.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16])
}

/// Unix seconds as an RFC 3339 UTC timestamp with milliseconds, as Auth0 prints
/// `updated_at` (`2024-01-02T03:04:05.000Z`).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scope, TokenDialect};

    fn api(dialect: TokenDialect) -> ResourceServer {
        ResourceServer {
            id: "rs".into(),
            name: "API".into(),
            identifier: "https://quickstarts/api".into(),
            signing_alg: "RS256".into(),
            token_lifetime: 86_400,
            token_lifetime_for_web: 86_400,
            allow_offline_access: false,
            token_dialect: dialect,
            enforce_policies: false,
            scopes: vec![Scope {
                value: "read:messages".into(),
                description: String::new(),
            }],
            proof_of_possession: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn user() -> User {
        User {
            user_id: "auth0|abc".into(),
            connection: crate::DATABASE_CONNECTION.into(),
            email: Some("demo@example.com".into()),
            email_verified: true,
            name: "demo@example.com".into(),
            nickname: "demo".into(),
            picture: "https://example/p.png".into(),
            blocked: false,
            created_at: 0,
            updated_at: 1_700_000_000,
            last_login: None,
            logins_count: 0,
            user_metadata: Default::default(),
            app_metadata: Default::default(),
        }
    }

    #[test]
    fn user_access_token_with_openid_has_userinfo_audience() {
        let api = api(TokenDialect::AccessToken);
        let scopes = scope::parse("openid profile read:messages");
        let (typ, claims) = access_token(&AccessTokenRequest {
            issuer: "https://t.example/",
            api: &api,
            subject: Subject::User("auth0|abc"),
            client_id: "cid",
            scopes: &scopes,
            permissions: &[],
            now: 100,
            lifetime: 86_400,
            jti: "j",
        });
        assert_eq!(typ, "JWT");
        assert_eq!(
            claims["aud"],
            json!(["https://quickstarts/api", "https://t.example/userinfo"])
        );
        assert_eq!(claims["exp"], json!(86_500));
        assert_eq!(claims["scope"], json!("openid profile read:messages"));
        assert_eq!(claims["azp"], json!("cid"));
        assert!(!claims.contains_key("jti") && !claims.contains_key("gty"));
    }

    #[test]
    fn machine_token_and_rfc9068_dialect() {
        let api = api(TokenDialect::Rfc9068ProfileAuthz);
        let scopes = scope::parse("read:messages");
        let permissions = scopes.clone();
        let (typ, claims) = access_token(&AccessTokenRequest {
            issuer: "https://t.example/",
            api: &api,
            subject: Subject::Client,
            client_id: "cid",
            scopes: &scopes,
            permissions: &permissions,
            now: 100,
            lifetime: 86_400,
            jti: "j1",
        });
        assert_eq!(typ, "at+jwt");
        assert_eq!(claims["sub"], json!("cid@clients"));
        assert_eq!(claims["aud"], json!("https://quickstarts/api"));
        assert_eq!(claims["gty"], json!("client-credentials"));
        assert_eq!(claims["client_id"], json!("cid"));
        assert_eq!(claims["jti"], json!("j1"));
        assert_eq!(claims["permissions"], json!(["read:messages"]));
    }

    #[test]
    fn id_token_claims_follow_scopes() {
        let user = user();
        let scopes = scope::parse("openid profile");
        let claims = id_token(&IdTokenRequest {
            issuer: "https://t.example/",
            user: &user,
            client_id: "cid",
            scopes: &scopes,
            now: 100,
            lifetime: 36_000,
            nonce: Some("n+/="),
            auth_time: 90,
            sid: Some("s"),
            access_token: Some("token"),
            code: None,
        });
        assert_eq!(claims["nonce"], json!("n+/="));
        assert_eq!(claims["nickname"], json!("demo"));
        assert_eq!(claims["updated_at"], json!("2023-11-14T22:13:20.000Z"));
        assert!(!claims.contains_key("email"));
        assert_eq!(claims["at_hash"], json!(at_hash("token")));
        assert!(!claims.contains_key("c_hash"), "no code, no c_hash");
    }

    #[test]
    fn a_user_without_an_email_has_no_email_claims() {
        let scopes = scope::parse("openid profile email");
        let with = profile_claims(&user(), &scopes);
        assert_eq!(with["email"], json!("demo@example.com"));
        assert_eq!(with["email_verified"], json!(true));
        let mut emailless = user();
        emailless.email = None;
        emailless.email_verified = false;
        let without = profile_claims(&emailless, &scopes);
        assert!(!without.contains_key("email"));
        assert!(!without.contains_key("email_verified"));
        assert_eq!(without["nickname"], json!("demo"), "the profile stays");
    }

    #[test]
    fn a_hybrid_id_token_carries_c_hash_and_at_hash() {
        let user = user();
        let scopes = scope::parse("openid");
        let claims = id_token(&IdTokenRequest {
            issuer: "https://t.example/",
            user: &user,
            client_id: "cid",
            scopes: &scopes,
            now: 100,
            lifetime: 36_000,
            nonce: Some("n"),
            auth_time: 90,
            sid: None,
            access_token: Some("token"),
            code: Some("the-code"),
        });
        assert_eq!(claims["c_hash"], json!(c_hash("the-code")));
        assert_eq!(claims["at_hash"], json!(at_hash("token")));
    }

    #[test]
    fn c_hash_matches_oidc_example() {
        // OpenID Connect Core, Appendix A.4 (`code id_token`, RS256).
        assert_eq!(
            c_hash("Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"),
            "LDktKdoQak3Pk0cnXxCltA"
        );
    }

    #[test]
    fn at_hash_matches_oidc_example() {
        // OpenID Connect Core, Appendix A.3 (RS256).
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
    }
}
