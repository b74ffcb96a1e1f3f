//! Access-token claims: the validation policy, and what handlers receive.
//!
//! The hot path parses the payload once into borrowed views of the members the policy
//! reads, and `azp` / `client_id` (everything else is skipped unread, but still checked for
//! duplicates); the full JSON object is built only if a handler asks for it.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use tessera_jose::{Text, VerifiedPayload};

use crate::error::{GuardError, TokenError};
use crate::guard::VerifiedBy;

/// The verified claims of an access token. Cheap to clone (one `Arc`).
///
/// Inserted into the request extensions by the guard's layers; use it as an axum
/// extractor in handlers. Without a guard layer in front, extracting `Claims` fails closed
/// with a 401 (and `Option<Claims>` yields `None`).
#[derive(Clone)]
pub struct Claims(Arc<Inner>);

struct Inner {
    sub: String,
    /// The `scope` claim as issued: space-separated.
    scope: String,
    permissions: Vec<String>,
    /// `azp`, else `client_id`: read in the one pass, so `X-Auth-Client-Id` in `tessera
    /// proxy` does not parse the whole payload again.
    client_id: Option<String>,
    expires_at: f64,
    /// `cnf`: the key the token is bound to (RFC 7800), if any.
    binding: Binding,
    /// The payload JSON, parsed into `raw` on first use.
    payload: Vec<u8>,
    raw: OnceLock<Map<String, Value>>,
    verified_by: VerifiedBy,
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("sub", &self.0.sub)
            .field("scope", &self.0.scope)
            .field("permissions", &self.0.permissions)
            .field("client_id", &self.0.client_id)
            .field("expires_at", &self.0.expires_at)
            .finish_non_exhaustive()
    }
}

impl Claims {
    /// `sub`: the user id (`auth0|…`) or, for machine-to-machine tokens,
    /// `<client_id>@clients`.
    pub fn sub(&self) -> &str {
        &self.0.sub
    }

    /// The `scope` claim as issued: space-separated, empty when absent.
    pub fn scope(&self) -> &str {
        &self.0.scope
    }

    /// The `scope` claim split on spaces (nothing when absent).
    pub fn scopes(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// The `permissions` claim of RBAC tokens (empty when absent).
    pub fn permissions(&self) -> &[String] {
        &self.0.permissions
    }

    /// `aud` as a list (a single string becomes a list of one).
    pub fn audiences(&self) -> Vec<&str> {
        match self.raw().get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    pub fn has_permission(&self, permission: &str) -> bool {
        self.0.permissions.iter().any(|p| p == permission)
    }

    /// The client the token was issued to: `azp`, or `client_id` (RFC 9068 dialect). A
    /// member that is not a string counts as absent.
    pub fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    /// `exp`, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> f64 {
        self.0.expires_at
    }

    /// Any claim, e.g. custom namespaced claims.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.raw().get(name)
    }

    /// All claims as they were in the token.
    pub fn raw(&self) -> &Map<String, Value> {
        self.0.raw.get_or_init(|| {
            // Already parsed once without duplicates, so this cannot fail in practice.
            serde_json::from_slice(&self.0.payload).unwrap_or_default()
        })
    }

    /// `cnf.jkt`: the thumbprint of the DPoP key the token is bound to (RFC 9449 §6).
    pub fn dpop_jkt(&self) -> Option<&str> {
        match &self.0.binding {
            Binding::Jkt(jkt) => Some(jkt),
            _ => None,
        }
    }

    /// Whether the token carries a `cnf` claim: a sender-constrained token, never good
    /// as a bearer token.
    pub fn is_bound(&self) -> bool {
        !matches!(self.0.binding, Binding::None)
    }

    pub(crate) fn verified_by(&self) -> VerifiedBy {
        self.0.verified_by
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = GuardError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Claims>().cloned().ok_or_else(|| {
            tracing::error!(
                "Claims extracted on a route without a tessera-guard layer; refusing the request"
            );
            GuardError::MissingToken
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Claims>().cloned())
    }
}

/// What a token's `cnf` binds it to.
#[derive(Debug)]
enum Binding {
    None,
    Jkt(String),
    Other,
}

/// What a signature-checked token must also satisfy to be accepted as one of our access
/// tokens.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway_secs: f64,
}

impl Policy {
    pub(crate) fn validate(
        &self,
        token: VerifiedPayload,
        now: f64,
        verified_by: VerifiedBy,
    ) -> Result<Claims, TokenError> {
        if let Some(typ) = token.typ.as_deref()
            && !is_access_token_typ(typ)
        {
            return Err(TokenError::WrongType);
        }
        let members = Members::parse(&token.payload)?;

        match &members.iss {
            Some(Member::Text(iss)) if *iss == self.issuer => {}
            None => return Err(TokenError::MissingClaim("iss")),
            Some(_) => return Err(TokenError::WrongIssuer),
        }

        let accepted = |aud: &Cow<'_, str>| self.audiences.iter().any(|ours| ours == aud);
        let audience_matches = match &members.aud {
            Some(Member::Text(aud)) => accepted(aud),
            Some(Member::Texts(values)) => values.iter().any(accepted),
            None => return Err(TokenError::MissingClaim("aud")),
            Some(_) => return Err(TokenError::InvalidClaim("aud")),
        };
        if !audience_matches {
            return Err(TokenError::WrongAudience);
        }

        // ID-token members: an ID token is never an access token, even with our audience.
        if members.id_token_member {
            return Err(TokenError::NotAnAccessToken);
        }

        let expires_at =
            numeric_date(members.exp.as_ref(), "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
        if now >= expires_at + self.leeway_secs {
            return Err(TokenError::Expired);
        }
        if let Some(not_before) = numeric_date(members.nbf.as_ref(), "nbf")?
            && not_before > now + self.leeway_secs
        {
            return Err(TokenError::NotYetValid);
        }
        if let Some(issued_at) = numeric_date(members.iat.as_ref(), "iat")?
            && issued_at > now + self.leeway_secs
        {
            return Err(TokenError::IssuedInFuture);
        }

        let sub = match members.sub {
            Some(Member::Text(sub)) if !sub.is_empty() => sub.into_owned(),
            None => return Err(TokenError::MissingClaim("sub")),
            Some(_) => return Err(TokenError::InvalidClaim("sub")),
        };
        let scope = match members.scope {
            None => String::new(),
            Some(Member::Text(scope)) => scope.into_owned(),
            Some(_) => return Err(TokenError::InvalidClaim("scope")),
        };
        let permissions = match members.permissions {
            None => Vec::new(),
            Some(Member::Texts(values)) => values.into_iter().map(Cow::into_owned).collect(),
            Some(_) => return Err(TokenError::InvalidClaim("permissions")),
        };
        // Not part of the policy: a malformed `azp` is no reason to refuse the token.
        let client_id = match (members.azp, members.client_id) {
            (Some(Member::Text(id)), _) | (_, Some(Member::Text(id))) => Some(id.into_owned()),
            _ => None,
        };

        // A `cnf` that is not an object, or binds with something else than a DPoP key
        // (mTLS's `x5t#S256`), still makes the token sender-constrained: never a bearer.
        let binding = match members.cnf {
            None => Binding::None,
            Some(cnf) => match cnf.get("jkt").and_then(Value::as_str) {
                Some(jkt) if !jkt.is_empty() => Binding::Jkt(jkt.to_owned()),
                _ => Binding::Other,
            },
        };

        Ok(Claims(Arc::new(Inner {
            sub,
            scope,
            permissions,
            client_id,
            expires_at,
            binding,
            payload: token.payload,
            raw: OnceLock::new(),
            verified_by,
        })))
    }
}

/// The claims the policy and [`Claims`] read, borrowed from the payload where JSON allows
/// it.
#[derive(Default)]
struct Members<'a> {
    iss: Option<Member<'a>>,
    sub: Option<Member<'a>>,
    aud: Option<Member<'a>>,
    exp: Option<Member<'a>>,
    nbf: Option<Member<'a>>,
    iat: Option<Member<'a>>,
    scope: Option<Member<'a>>,
    permissions: Option<Member<'a>>,
    azp: Option<Member<'a>>,
    client_id: Option<Member<'a>>,
    /// `cnf` (RFC 7800), rare enough to be read whole.
    cnf: Option<Value>,
    /// `nonce`, `at_hash` or `c_hash` is present.
    id_token_member: bool,
}

impl<'a> Members<'a> {
    /// Parses a JSON object, refusing duplicate member names (RFC 7519 §4 lets us) and
    /// anything that is not exactly one object.
    fn parse(payload: &'a [u8]) -> Result<Self, TokenError> {
        let mut deserializer = serde_json::Deserializer::from_slice(payload);
        let members = serde::Deserializer::deserialize_map(&mut deserializer, MembersVisitor)
            .map_err(|_| TokenError::Malformed)?;
        deserializer.end().map_err(|_| TokenError::Malformed)?;
        Ok(members)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object without duplicate members")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut members = Members::default();
        let mut seen = SeenNames::default();
        while let Some(Text(name)) = access.next_key::<Text<'de>>()? {
            let slot = match name.as_ref() {
                "iss" => &mut members.iss,
                "sub" => &mut members.sub,
                "aud" => &mut members.aud,
                "exp" => &mut members.exp,
                "nbf" => &mut members.nbf,
                "iat" => &mut members.iat,
                "scope" => &mut members.scope,
                "permissions" => &mut members.permissions,
                "azp" => &mut members.azp,
                "client_id" => &mut members.client_id,
                "cnf" => {
                    if members.cnf.is_some() {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                    members.cnf = Some(access.next_value::<Value>()?);
                    continue;
                }
                other => {
                    members.id_token_member |= matches!(other, "nonce" | "at_hash" | "c_hash");
                    if !seen.insert(name) {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                    access.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(serde::de::Error::custom("duplicate member"));
            }
            *slot = Some(access.next_value::<Member<'de>>()?);
        }
        Ok(members)
    }
}

/// Names of the members the policy does not read, to refuse duplicates among them without
/// a map or, for the usual handful, any allocation: a linear scan wins at this size.
struct SeenNames<'a> {
    inline: [Cow<'a, str>; 16],
    len: usize,
    spill: Vec<Cow<'a, str>>,
}

impl Default for SeenNames<'_> {
    fn default() -> Self {
        SeenNames {
            inline: std::array::from_fn(|_| Cow::Borrowed("")),
            len: 0,
            spill: Vec::new(),
        }
    }
}

impl<'a> SeenNames<'a> {
    fn insert(&mut self, name: Cow<'a, str>) -> bool {
        if self.inline[..self.len].contains(&name) || self.spill.contains(&name) {
            return false;
        }
        if self.len < self.inline.len() {
            self.inline[self.len] = name;
            self.len += 1;
        } else {
            self.spill.push(name);
        }
        true
    }
}

/// A member's value as far as the policy cares: a string, a number, a list of strings,
/// or something else (which is an error wherever the policy looks).
enum Member<'a> {
    Text(Cow<'a, str>),
    Number(f64),
    Texts(Vec<Cow<'a, str>>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Member<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Owned(text)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Member::Number(value as f64))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Member::Number(value as f64))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Member::Number(value))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut texts = Vec::with_capacity(access.size_hint().unwrap_or(4));
        let mut all_texts = true;
        while let Some(element) = access.next_element::<Member<'de>>()? {
            match element {
                Member::Text(text) if all_texts => texts.push(text),
                _ => all_texts = false,
            }
        }
        Ok(if all_texts {
            Member::Texts(texts)
        } else {
            Member::Other
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        while access.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Member::Other)
    }
}

/// `typ` absent, `JWT` or `at+jwt` (RFC 9068), with or without `application/`, any case.
fn is_access_token_typ(typ: &str) -> bool {
    let typ = typ
        .get(..12)
        .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case("jwt") || typ.eq_ignore_ascii_case("at+jwt")
}

/// A NumericDate claim: a JSON number (integer or not), or absent.
fn numeric_date(
    member: Option<&Member<'_>>,
    name: &'static str,
) -> Result<Option<f64>, TokenError> {
    match member {
        None => Ok(None),
        Some(Member::Number(n)) if n.is_finite() => Ok(Some(*n)),
        Some(_) => Err(TokenError::InvalidClaim(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_values_of_access_tokens_are_recognised() {
        for ok in [
            "JWT",
            "jwt",
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/JWT",
        ] {
            assert!(is_access_token_typ(ok), "{ok}");
        }
        for bad in [
            "",
            "JWS",
            "id_token",
            "logout+jwt",
            "dpop+jwt",
            "application/",
            "JWT ",
            "é",
        ] {
            assert!(!is_access_token_typ(bad), "{bad}");
        }
    }
}
