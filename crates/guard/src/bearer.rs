//! Reading the bearer token from the `Authorization` header (RFC 6750 §2.1).

use axum::http::{HeaderMap, header};

use crate::error::{GuardError, RequestError};

/// The bearer token of a request.
///
/// - no `Authorization` header, or a scheme other than `Bearer` (e.g. `Basic`):
///   [`GuardError::MissingToken`] (401 with a bare challenge, as express-oauth2-jwt-bearer);
/// - two `Authorization` headers, `Bearer` without a token, a token with spaces or other
///   characters outside RFC 6750's `b64token`: [`GuardError::InvalidRequest`] (400).
///
/// The scheme name is case-insensitive; one or more spaces may follow it.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, GuardError> {
    match presented_token(headers)? {
        Presented::Bearer(token) => Ok(token),
        Presented::Dpop(_) => Err(GuardError::MissingToken),
    }
}

/// An access token as the request presents it: under the `Bearer` scheme (RFC 6750) or
/// the `DPoP` scheme (RFC 9449 §7.1), which needs a proof beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    Bearer(&'a str),
    Dpop(&'a str),
}

impl<'a> Presented<'a> {
    pub fn token(&self) -> &'a str {
        match self {
            Presented::Bearer(token) | Presented::Dpop(token) => token,
        }
    }
}

/// The access token of a request under either scheme; the errors of [`bearer_token`].
pub fn presented_token(headers: &HeaderMap) -> Result<Presented<'_>, GuardError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(GuardError::MissingToken);
    };
    if values.next().is_some() {
        return Err(RequestError::MultipleAuthorizationHeaders.into());
    }
    // The checks below admit only ASCII, so reading the bytes is enough; a header with
    // other bytes fails them as it would fail `to_str`.
    let value = value.as_bytes();
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &[][..]),
    };
    let dpop = scheme.eq_ignore_ascii_case(b"dpop");
    if !dpop && !scheme.eq_ignore_ascii_case(b"bearer") {
        if !value.is_ascii() {
            return Err(RequestError::UnreadableHeader.into());
        }
        return Err(GuardError::MissingToken);
    }
    let start = rest.iter().position(|b| *b != b' ').unwrap_or(rest.len());
    let token = &rest[start..];
    if token.is_empty() {
        return Err(RequestError::EmptyToken.into());
    }
    if !is_b64token(token) {
        if !token.is_ascii() {
            return Err(RequestError::UnreadableHeader.into());
        }
        return Err(RequestError::InvalidTokenSyntax.into());
    }
    // A b64token is ASCII.
    let token = std::str::from_utf8(token).map_err(|_| RequestError::UnreadableHeader)?;
    Ok(if dpop {
        Presented::Dpop(token)
    } else {
        Presented::Bearer(token)
    })
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &[u8]) -> bool {
    let body = match token.iter().rposition(|b| *b != b'=') {
        Some(last) => &token[..=last],
        None => return false,
    };
    // Whole chunks are checked without early exits so the compiler can vectorise: tokens
    // are most of a request's bytes, and every request is checked.
    let mut chunks = body.chunks_exact(32);
    for chunk in &mut chunks {
        if !chunk.iter().fold(true, |ok, b| ok & is_token_byte(*b)) {
            return false;
        }
    }
    chunks.remainder().iter().all(|b| is_token_byte(*b))
}

/// Whether a byte may appear in a b64token before its padding.
fn is_token_byte(b: u8) -> bool {
    // `| 0x20` folds ASCII upper case onto lower case and maps nothing else into a..=z.
    (b | 0x20).wrapping_sub(b'a') < 26
        || b.wrapping_sub(b'0') < 10
        || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn check(values: &[&[u8]]) -> Result<String, GuardError> {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        bearer_token(&headers).map(str::to_owned)
    }

    #[test]
    fn token_bytes_are_exactly_the_b64token_alphabet() {
        for b in 0..=255u8 {
            let expected =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_token_byte(b), expected, "byte {b:#04x}");
        }
        // Long tokens take the chunked path: one bad byte anywhere is found.
        let long = vec![b'a'; 100];
        assert!(is_b64token(&long));
        for at in [0, 31, 32, 63, 64, 99] {
            let mut bad = long.clone();
            bad[at] = b',';
            assert!(!is_b64token(&bad), "bad byte at {at}");
        }
    }

    #[test]
    fn bearer_header_parsing_follows_rfc_6750() {
        assert_eq!(check(&[]), Err(GuardError::MissingToken));
        assert_eq!(
            check(&[b"Basic dXNlcjpwYXNz"]),
            Err(GuardError::MissingToken)
        );
        assert_eq!(check(&[b"Bearertoken"]), Err(GuardError::MissingToken));
        assert_eq!(check(&[b"Bearer abc.def.ghi"]).unwrap(), "abc.def.ghi");
        assert_eq!(check(&[b"bearer abc"]).unwrap(), "abc");
        assert_eq!(check(&[b"BEARER   abc"]).unwrap(), "abc");
        assert_eq!(check(&[b"Bearer a+/~_-.b=="]).unwrap(), "a+/~_-.b==");
        let invalid = |e| Err(GuardError::InvalidRequest(e));
        assert_eq!(check(&[b"Bearer"]), invalid(RequestError::EmptyToken));
        assert_eq!(check(&[b"Bearer    "]), invalid(RequestError::EmptyToken));
        assert_eq!(
            check(&[b"Bearer a b"]),
            invalid(RequestError::InvalidTokenSyntax)
        );
        assert_eq!(
            check(&[b"Bearer a,b"]),
            invalid(RequestError::InvalidTokenSyntax)
        );
        assert_eq!(
            check(&[b"Bearer a\"b"]),
            invalid(RequestError::InvalidTokenSyntax)
        );
        assert_eq!(
            check(&[b"Bearer ==="]),
            invalid(RequestError::InvalidTokenSyntax)
        );
        assert_eq!(
            check(&[b"Bearer a=b"]),
            invalid(RequestError::InvalidTokenSyntax)
        );
        assert_eq!(
            check(&[b"Bearer \xff\xfe"]),
            invalid(RequestError::UnreadableHeader)
        );
        assert_eq!(
            check(&[b"Bearer a", b"Bearer b"]),
            invalid(RequestError::MultipleAuthorizationHeaders)
        );
    }
}
