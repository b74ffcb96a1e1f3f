//! Access-token claims: the validation policy, and what handlers receive.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use serde_json::{Map, Value};
use tessera_jose::VerifiedJws;

use crate::error::{GuardError, TokenError};

/// The verified claims of an access token. Cheap to clone (one `Arc`).
///
/// Inserted into the request extensions by the guard's layers; use it as an axum
/// extractor in handlers. Without a guard layer in front, extracting `Claims` fails closed
/// with a 401 (and `Option<Claims>` yields `None`).
#[derive(Debug, Clone)]
pub struct Claims(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    sub: String,
    scopes: Vec<String>,
    permissions: Vec<String>,
    audiences: Vec<String>,
    expires_at: f64,
    raw: Map<String, Value>,
}

impl Claims {
    /// `sub`: the user id (`auth0|…`) or, for machine-to-machine tokens,
    /// `<client_id>@clients`.
    pub fn sub(&self) -> &str {
        &self.0.sub
    }

    /// The `scope` claim split on spaces (empty when absent).
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// The `permissions` claim of RBAC tokens (empty when absent).
    pub fn permissions(&self) -> &[String] {
        &self.0.permissions
    }

    /// `aud` as a list (a single string becomes a list of one).
    pub fn audiences(&self) -> &[String] {
        &self.0.audiences
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope)
    }

    pub fn has_permission(&self, permission: &str) -> bool {
        self.0.permissions.iter().any(|p| p == permission)
    }

    /// The client the token was issued to: `azp`, or `client_id` (RFC 9068 dialect).
    pub fn client_id(&self) -> Option<&str> {
        self.str_claim("azp")
            .or_else(|| self.str_claim("client_id"))
    }

    /// `exp`, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> f64 {
        self.0.expires_at
    }

    /// Any claim, e.g. custom namespaced claims.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.raw.get(name)
    }

    /// All claims as they were in the token.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.0.raw
    }

    fn str_claim(&self, name: &str) -> Option<&str> {
        self.0.raw.get(name).and_then(Value::as_str)
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

/// What a signature-checked token must also satisfy to be accepted as one of our access
/// tokens.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway_secs: f64,
}

impl Policy {
    pub(crate) fn validate(&self, token: VerifiedJws, now: f64) -> Result<Claims, TokenError> {
        if let Some(typ) = token.header.typ.as_deref()
            && !is_access_token_typ(typ)
        {
            return Err(TokenError::WrongType);
        }
        let claims = token.claims;

        match claims.get("iss") {
            Some(Value::String(iss)) if *iss == self.issuer => {}
            None => return Err(TokenError::MissingClaim("iss")),
            Some(_) => return Err(TokenError::WrongIssuer),
        }

        let audiences = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(TokenError::InvalidClaim("aud"))?,
            None => return Err(TokenError::MissingClaim("aud")),
            Some(_) => return Err(TokenError::InvalidClaim("aud")),
        };
        if !audiences.iter().any(|aud| self.audiences.contains(aud)) {
            return Err(TokenError::WrongAudience);
        }

        // ID-token members: an ID token is never an access token, even with our audience.
        if ["nonce", "at_hash", "c_hash"]
            .iter()
            .any(|member| claims.contains_key(*member))
        {
            return Err(TokenError::NotAnAccessToken);
        }

        let expires_at = numeric_date(&claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
        if now >= expires_at + self.leeway_secs {
            return Err(TokenError::Expired);
        }
        if let Some(not_before) = numeric_date(&claims, "nbf")?
            && not_before > now + self.leeway_secs
        {
            return Err(TokenError::NotYetValid);
        }
        if let Some(issued_at) = numeric_date(&claims, "iat")?
            && issued_at > now + self.leeway_secs
        {
            return Err(TokenError::IssuedInFuture);
        }

        let sub = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            None => return Err(TokenError::MissingClaim("sub")),
            Some(_) => return Err(TokenError::InvalidClaim("sub")),
        };
        let scopes = match claims.get("scope") {
            None => Vec::new(),
            Some(Value::String(scope)) => scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(_) => return Err(TokenError::InvalidClaim("scope")),
        };
        let permissions = match claims.get("permissions") {
            None => Vec::new(),
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(TokenError::InvalidClaim("permissions"))?,
            Some(_) => return Err(TokenError::InvalidClaim("permissions")),
        };

        Ok(Claims(Arc::new(Inner {
            sub,
            scopes,
            permissions,
            audiences,
            expires_at,
            raw: claims,
        })))
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
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or(TokenError::InvalidClaim(name)),
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
