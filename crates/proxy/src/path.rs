//! The request path as the route rules see it.
//!
//! The rules must judge the path the upstream will act on. Upstreams disagree on how to
//! read unusual spellings — dot segments, doubled slashes, encoded slashes, matrix
//! parameters, upper case (Express routes ignore case) — so instead of guessing one
//! reading, the proxy refuses every spelling two upstreams could read differently and
//! matches what is left on decoded, case-folded segments. The path is then forwarded
//! exactly as received: what was judged is what the upstream gets.

use std::fmt;

/// Why a request path is refused (400, before any token check or forwarding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request target is not an absolute path")]
    NotAbsolute,
    #[error("the path has an empty segment (//)")]
    EmptySegment,
    #[error("the path has a . or .. segment")]
    DotSegment,
    #[error("the path has a malformed percent-encoding")]
    BadPercentEncoding,
    #[error("the path has an encoded slash, backslash, percent sign or control character")]
    AmbiguousCharacter,
    #[error("the path has a ; parameter")]
    Parameter,
    #[error("the path is not UTF-8")]
    NotUtf8,
}

/// A path split into percent-decoded, ASCII-lower-cased segments; a trailing slash is
/// ignored. `/` has no segments.
#[derive(Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    segments: Vec<String>,
}

impl CanonicalPath {
    /// Parses a path (without the query), refusing ambiguous spellings (see the module docs).
    pub fn parse(path: &str) -> Result<CanonicalPath, PathError> {
        let rest = path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Ok(CanonicalPath {
                segments: Vec::new(),
            });
        }
        let segments = rest
            .split('/')
            .map(decode_segment)
            .collect::<Result<_, _>>()?;
        Ok(CanonicalPath { segments })
    }

    /// Whether `prefix` is this path or one of its ancestors, segment by segment:
    /// `/api/public` is a prefix of `/api/public/x`, not of `/api/publicity`.
    pub fn starts_with(&self, prefix: &CanonicalPath) -> bool {
        self.segments.starts_with(&prefix.segments)
    }

    /// How many segments: the longer of two matching prefixes is the more specific.
    pub fn depth(&self) -> usize {
        self.segments.len()
    }
}

impl fmt::Display for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.segments {
            write!(f, "/{segment}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanonicalPath({self})")
    }
}

fn decode_segment(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::EmptySegment);
    }
    let raw = raw.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'%' => {
                let high = raw.get(i + 1).and_then(|b| hex_value(*b));
                let low = raw.get(i + 2).and_then(|b| hex_value(*b));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(PathError::BadPercentEncoding);
                };
                i += 3;
                let byte = (high << 4) | low;
                // Encoded separators are where upstreams disagree most (some decode before
                // routing, some after); an encoded `%` invites double decoding.
                if matches!(byte, b'/' | b'\\' | b'%') || byte.is_ascii_control() {
                    return Err(PathError::AmbiguousCharacter);
                }
                byte
            }
            raw_byte => {
                i += 1;
                raw_byte
            }
        };
        match byte {
            // Windows servers and some frameworks treat `\` as a separator.
            b'\\' => return Err(PathError::AmbiguousCharacter),
            // Servlet containers (and Spring) cut `;…` off a segment before routing.
            b';' => return Err(PathError::Parameter),
            _ => decoded.push(byte.to_ascii_lowercase()),
        }
    }
    if decoded == b"." || decoded == b".." {
        return Err(PathError::DotSegment);
    }
    String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str) -> Result<String, PathError> {
        CanonicalPath::parse(path).map(|p| p.to_string())
    }

    #[test]
    fn plain_paths_are_decoded_and_case_folded() {
        assert_eq!(check("/").unwrap(), "/");
        assert_eq!(check("/api/Public/").unwrap(), "/api/public");
        assert_eq!(check("/api/priv%61te").unwrap(), "/api/private");
        assert_eq!(check("/API/PRIVATE").unwrap(), "/api/private");
        assert_eq!(check("/files/a%20b.txt").unwrap(), "/files/a b.txt");
        assert_eq!(check("/caf%C3%A9").unwrap(), "/café");
        assert_eq!(check("/a/.../b").unwrap(), "/a/.../b");
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        for (path, error) in [
            ("api/x", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("//api/private", PathError::EmptySegment),
            ("/api//private", PathError::EmptySegment),
            ("/api/public/../private", PathError::DotSegment),
            ("/api/public/./x", PathError::DotSegment),
            ("/api/public/..", PathError::DotSegment),
            ("/api/public/%2e%2e/private", PathError::DotSegment),
            ("/api/public/%2E./private", PathError::DotSegment),
            ("/api/public%2f..%2fprivate", PathError::AmbiguousCharacter),
            ("/api/public%2F..%2Fprivate", PathError::AmbiguousCharacter),
            ("/api/public%5c..%5cprivate", PathError::AmbiguousCharacter),
            ("/api/public\\..\\private", PathError::AmbiguousCharacter),
            (
                "/api/public/%252e%252e/private",
                PathError::AmbiguousCharacter,
            ),
            ("/api/private%00", PathError::AmbiguousCharacter),
            ("/api/private%0a", PathError::AmbiguousCharacter),
            ("/api/private;jsessionid=1", PathError::Parameter),
            ("/api/public;/../private", PathError::Parameter),
            ("/api/private%3b", PathError::Parameter),
            ("/api/%zz", PathError::BadPercentEncoding),
            ("/api/%2", PathError::BadPercentEncoding),
            ("/api/%ff", PathError::NotUtf8),
        ] {
            assert_eq!(check(path), Err(error), "{path}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let prefix = CanonicalPath::parse("/api/public").unwrap();
        let matches = |path: &str| CanonicalPath::parse(path).unwrap().starts_with(&prefix);
        assert!(matches("/api/public"));
        assert!(matches("/api/public/"));
        assert!(matches("/api/public/x/y"));
        assert!(matches("/API/Public"));
        assert!(!matches("/api/publicity"));
        assert!(!matches("/api"));
        assert!(
            CanonicalPath::parse("/x")
                .unwrap()
                .starts_with(&CanonicalPath::parse("/").unwrap())
        );
    }
}
