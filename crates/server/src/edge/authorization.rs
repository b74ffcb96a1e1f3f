//! The `Authorization` request header, read one way by every endpoint that takes one
//! (`/oauth/token`'s Basic, `/userinfo`'s and the Management API's Bearer). Each maps the
//! refusal into its own error shape.
//!
//! Strict on purpose: two headers are refused (reading the first while something in front
//! reads the last would let one request carry two identities), and the credentials must be
//! one token68 (RFC 9110 §11.4) after single spaces — no tabs, no second word.

use axum::http::{HeaderMap, header};

/// Why an `Authorization` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// More than one `Authorization` header.
    Repeated,
    /// Not `SCHEME SP token68`.
    Malformed,
}

/// The header's scheme (as sent) and credentials; `None` without the header.
pub(crate) fn credentials(headers: &HeaderMap) -> Result<Option<(&str, &str)>, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::Repeated);
    }
    let text = value.to_str().map_err(|_| Refusal::Malformed)?;
    let (scheme, rest) = text.split_once(' ').ok_or(Refusal::Malformed)?;
    let credentials = rest.trim_start_matches(' ');
    if scheme.is_empty() || !scheme.bytes().all(is_tchar) || !is_token68(credentials) {
        return Err(Refusal::Malformed);
    }
    Ok(Some((scheme, credentials)))
}

/// The credentials when the scheme is `expected` (compared case-insensitively); `Err` for
/// another scheme as for a malformed header.
pub(crate) fn with_scheme<'a>(
    headers: &'a HeaderMap,
    expected: &str,
) -> Result<Option<&'a str>, Refusal> {
    match credentials(headers)? {
        None => Ok(None),
        Some((scheme, credentials)) if scheme.eq_ignore_ascii_case(expected) => {
            Ok(Some(credentials))
        }
        Some(_) => Err(Refusal::Malformed),
    }
}

/// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
fn is_token68(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// tchar of RFC 9110 §5.6.2 (an auth-scheme is a token).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn one_scheme_and_one_token68() {
        assert_eq!(credentials(&headers(&[])), Ok(None));
        assert_eq!(
            credentials(&headers(&["Bearer abc.def-ghi_~+/=="])),
            Ok(Some(("Bearer", "abc.def-ghi_~+/==")))
        );
        assert_eq!(
            with_scheme(&headers(&["bearer  abc"]), "Bearer"),
            Ok(Some("abc"))
        );
        assert_eq!(
            with_scheme(&headers(&["Basic abc"]), "Bearer"),
            Err(Refusal::Malformed)
        );
        for malformed in [
            "Bearer",
            "Bearer ",
            "Bearer \tabc",
            "Bearer abc def",
            "Bearer abc\t",
            "Bearer a=b",
            "Bearer ===",
            " Bearer abc",
            "Bearer abc,",
            "Be@rer abc",
        ] {
            assert_eq!(
                credentials(&headers(&[malformed])),
                Err(Refusal::Malformed),
                "{malformed:?}"
            );
        }
    }

    #[test]
    fn two_headers_are_refused_whatever_they_hold() {
        assert_eq!(
            credentials(&headers(&["Bearer abc", "Bearer abc"])),
            Err(Refusal::Repeated)
        );
        assert_eq!(
            credentials(&headers(&["Basic abc", "Bearer def"])),
            Err(Refusal::Repeated)
        );
    }
}
