//! Minting tokens: JWT access tokens for APIs, opaque access tokens good only at
//! /userinfo, and ID tokens. Shared by /authorize (implicit and hybrid) and /oauth/token.
//! What they carry was decided before, by the grant pipeline (`crate::grant`); nothing here
//! narrows.

use std::collections::BTreeMap;

use tessera_core::claims::{self, AccessTokenRequest, IdTokenRequest, Subject};
use tessera_core::grant::Grant;
use tessera_core::{
    DEFAULT_ID_TOKEN_LIFETIME, OPAQUE_ACCESS_TOKEN_LIFETIME, ResourceServer, User, ids,
};
use tessera_jose::Algorithm;
use tessera_store::OpaqueTokenRecord;

use crate::AppState;
use crate::clock::now;
use crate::error::OAuthError;

pub(crate) struct AccessToken {
    pub(crate) token: String,
    pub(crate) expires_in: i64,
    /// What the token grants, as the grant pipeline decided.
    pub(crate) scopes: Vec<String>,
    /// Whether the token carries `cnf.jkt` (RFC 9449): its `token_type` is then `DPoP`.
    pub(crate) dpop_bound: bool,
    /// Whether the store keeps it, so it can be revoked: an opaque token does, a JWT not.
    pub(crate) stored: bool,
}

impl AccessToken {
    pub(crate) fn token_type(&self) -> &'static str {
        if self.dpop_bound { "DPoP" } else { "Bearer" }
    }
}

/// Signs on the calling task: one RS256 signature is ~0.4 ms of CPU, and a hop to the
/// blocking pool per token costs more throughput than it saves in latency elsewhere
/// (issuance is bounded by the signature either way).
fn sign(
    state: &AppState,
    alg: &str,
    typ: &str,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, OAuthError> {
    let alg = Algorithm::parse(alg).map_err(|_| OAuthError::server_error())?;
    let keys = state.keys();
    let key = keys.current(alg).ok_or_else(|| {
        tracing::error!(%alg, "no current signing key");
        OAuthError::server_error()
    })?;
    key.sign_jwt(typ, claims).map_err(|error| {
        tracing::error!(%error, "signing failed");
        OAuthError::server_error()
    })
}

/// A JWT access token for `api`, carrying what `grant` decided; handed over in the
/// browser (`in_browser`: an implicit or hybrid response) or at the token endpoint, which
/// decides how long it lives.
pub(crate) fn jwt_access_token(
    state: &AppState,
    api: &ResourceServer,
    subject: Subject<'_>,
    client_id: &str,
    grant: &Grant,
    in_browser: bool,
    dpop_jkt: Option<&str>,
) -> Result<AccessToken, OAuthError> {
    let lifetime = api.access_token_lifetime(in_browser);
    let jti = if api.token_dialect.is_rfc9068() {
        ids::alphanumeric(24)
    } else {
        String::new()
    };
    let (typ, mut claims) = claims::access_token(&AccessTokenRequest {
        issuer: state.issuer(),
        api,
        subject,
        client_id,
        scopes: &grant.scopes,
        permissions: &grant.permissions,
        now: now(),
        lifetime,
        jti: &jti,
    });
    if let Some(jkt) = dpop_jkt {
        // Before the custom claims, so no Action can put its own `cnf` in its place.
        claims.insert("cnf".into(), serde_json::json!({ "jkt": jkt }));
    }
    with_custom_claims(&mut claims, &grant.custom.access_token_claims);
    let token = sign(state, &api.signing_alg, typ, &claims)?;
    Ok(AccessToken {
        token,
        expires_in: lifetime,
        scopes: grant.scopes.clone(),
        dpop_bound: dpop_jkt.is_some(),
        stored: false,
    })
}

/// Adds Actions' custom claims to a token's: never in place of one the token has (the
/// custom-claim rules dropped those names already; this keeps it so).
fn with_custom_claims(
    claims: &mut serde_json::Map<String, serde_json::Value>,
    custom: &serde_json::Map<String, serde_json::Value>,
) {
    for (name, value) in custom {
        claims.entry(name.clone()).or_insert_with(|| value.clone());
    }
}

/// An opaque access token (no audience): a random string whose hash we keep.
async fn opaque_access_token(
    state: &AppState,
    client_id: &str,
    user_id: &str,
    scopes: &[String],
) -> Result<AccessToken, OAuthError> {
    let token = ids::secret_token();
    let now = now();
    let record = OpaqueTokenRecord {
        client_id: client_id.to_string(),
        user_id: user_id.to_string(),
        scope: tessera_core::scope::join(scopes),
        expires_at: now + OPAQUE_ACCESS_TOKEN_LIFETIME,
    };
    state
        .store()
        .create_opaque_token(&ids::secret_hash(&token), &record, now)
        .await?;
    Ok(AccessToken {
        token,
        expires_in: OPAQUE_ACCESS_TOKEN_LIFETIME,
        scopes: scopes.to_vec(),
        // Good only at /userinfo, which takes bearer tokens: not bound (its `token_type`
        // tells the client, as RFC 9449 §5 allows).
        dpop_bound: false,
        stored: true,
    })
}

/// The access token for a user: a JWT when an API is the audience, opaque otherwise.
pub(crate) async fn user_access_token(
    state: &AppState,
    api: Option<&ResourceServer>,
    client_id: &str,
    user_id: &str,
    grant: &Grant,
    in_browser: bool,
    dpop_jkt: Option<&str>,
) -> Result<AccessToken, OAuthError> {
    match api {
        Some(api) => jwt_access_token(
            state,
            api,
            Subject::User(user_id),
            client_id,
            grant,
            in_browser,
            dpop_jkt,
        ),
        None => opaque_access_token(state, client_id, user_id, &grant.scopes).await,
    }
}

/// How the user signed in, as the session recorded it: codes and refresh families keep it
/// for the tokens issued from them (the ID token's `amr` and `acr`, post-login's
/// `event.connection`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SignedIn {
    /// The connection signed in with; `None` for sessions from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) connection: Option<String>,
    /// RFC 8176 methods (`pwd`, `mfa`, `otp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) amr: Vec<String>,
    /// The authentication context class the application asked for and got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) acr: Option<String>,
}

pub(crate) struct IdTokenInput<'a> {
    pub(crate) user: &'a User,
    pub(crate) client_id: &'a str,
    pub(crate) scopes: &'a [String],
    pub(crate) nonce: Option<&'a str>,
    pub(crate) auth_time: i64,
    pub(crate) sid: Option<&'a str>,
    pub(crate) access_token: Option<&'a str>,
    /// The code of a hybrid response, for `c_hash`.
    pub(crate) code: Option<&'a str>,
    /// Actions' `api.idToken.setCustomClaim`s.
    pub(crate) custom_claims: &'a serde_json::Map<String, serde_json::Value>,
    pub(crate) signed_in: &'a SignedIn,
}

/// An ID token, signed with [`claims::ID_TOKEN_ALG`].
pub(crate) fn id_token(state: &AppState, input: &IdTokenInput<'_>) -> Result<String, OAuthError> {
    let mut claims = claims::id_token(&IdTokenRequest {
        issuer: state.issuer(),
        user: input.user,
        client_id: input.client_id,
        scopes: input.scopes,
        now: now(),
        lifetime: DEFAULT_ID_TOKEN_LIFETIME,
        nonce: input.nonce,
        auth_time: input.auth_time,
        sid: input.sid,
        access_token: input.access_token,
        code: input.code,
    });
    if !input.signed_in.amr.is_empty() {
        claims.insert("amr".into(), serde_json::json!(input.signed_in.amr));
    }
    if let Some(acr) = &input.signed_in.acr {
        claims.insert("acr".into(), serde_json::json!(acr));
    }
    with_custom_claims(&mut claims, input.custom_claims);
    sign(state, claims::ID_TOKEN_ALG, "JWT", &claims)
}

/// How long a logout token is accepted: long enough for a receiver's clock to differ,
/// short enough that one caught in transit soon says nothing.
pub(crate) const LOGOUT_TOKEN_LIFETIME: i64 = 120;

/// A logout token (OIDC Back-Channel Logout 1.0 §2.4) for `client_id`: the session `sid`
/// of `sub` ended, with its metadata when given. Signed as ID tokens are, typed
/// `logout+jwt` so it cannot pass for one; never a `nonce`.
pub(crate) fn logout_token(
    state: &AppState,
    client_id: &str,
    (sub, sid): (&str, &str),
    session_metadata: Option<&BTreeMap<String, String>>,
) -> Result<String, OAuthError> {
    let now = now();
    let claims = serde_json::json!({
        "iss": state.issuer(),
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_LIFETIME,
        "jti": ids::hex_id(16),
        "sub": sub,
        "sid": sid,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    let serde_json::Value::Object(mut claims) = claims else {
        unreachable!("a JSON object literal")
    };
    // The application asked for it (`backchannel_logout_session_metadata`): named as the
    // Management API names it.
    if let Some(metadata) = session_metadata {
        claims.insert("session_metadata".into(), serde_json::json!(metadata));
    }
    sign(state, claims::ID_TOKEN_ALG, "logout+jwt", &claims)
}

/// What an `id_token_hint` tells: an ID token we issued (our key, our `iss`), expired or
/// not — OIDC Core §3.1.2.1 lets a hint be expired.
pub(crate) struct IdTokenHint {
    pub(crate) sub: String,
    /// The client it was issued to (`aud`).
    pub(crate) client_id: String,
    /// `exp`: a hint may be expired, a token that proves an account now (`link_with`) not.
    pub(crate) expires_at: Option<i64>,
}

/// Reads an `id_token_hint`; `None` when it is not an ID token of ours.
pub(crate) fn read_id_token_hint(state: &AppState, hint: &str) -> Option<IdTokenHint> {
    let keys = state.keys();
    let verified = tessera_jose::verify_with(hint, |kid| keys.verifying_key(kid)).ok()?;
    // An ID token is typed `JWT`: a logout token (`logout+jwt`, with `events`) is signed
    // by the same key and names a user and an application, but is no hint.
    if verified.header.typ.as_deref() != Some("JWT") || verified.claims.contains_key("events") {
        return None;
    }
    let claims = verified.claims;
    if claims.get("iss").and_then(|v| v.as_str()) != Some(state.issuer()) {
        return None;
    }
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Some(IdTokenHint {
        sub: text("sub")?,
        client_id: text("aud")?,
        expires_at: claims.get("exp").and_then(serde_json::Value::as_i64),
    })
}
