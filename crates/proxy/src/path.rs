//! The request path as the route rules see it.
//!
//! The rules must judge the path the upstream will act on. Upstreams disagree on how to
//! read unusual spellings — dot segments, doubled slashes, encoded slashes, matrix
//! parameters, upper case (Express routes ignore case) — so instead of guessing one
//! reading, the proxy refuses every spelling two upstreams could read differently and
//! matches what is left on decoded, case-folded segments. The path is then forwarded
//! exactly as received: what was judged is what the upstream gets.
//!
//! Refused: `.` and `..` segments (also encoded), `//`, `;` parameters (servlet containers
//! cut them off), encoded `/` `\` `%` (decoded before or after routing, or twice), encoded
//! `#` and `?` (stacks that decode and re-parse the target cut the path there), control
//! characters, a segment ending in `.` or starting or ending with white space (Windows and
//! IIS drop them: `/admin.` and `/admin%20` are `/admin`), and the four non-ASCII letters
//! whose simple case mapping is ASCII (`ſ` `ı` `İ` `K`: Java's `equalsIgnoreCase` and Go's
//! `EqualFold` match them to `s` `i` `i` `k`).

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
    #[error(
        "the path has an encoded slash, backslash, percent sign, # or ?, or a control character"
    )]
    AmbiguousCharacter,
    #[error("a path segment ends with a dot or starts or ends with a space")]
    SegmentEdge,
    #[error("the path has a letter that case-folds to ASCII (ſ ı İ K)")]
    FoldsToAscii,
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

    /// The same path with its last segment's extension cut off, at each dot after the first
    /// character: `/a/b.tar.gz` gives `/a/b` and `/a/b.tar`. Rails (`(.:format)`) and Spring
    /// up to 5.2 (suffix patterns) route `/a/b.json` to `/a/b`'s handler.
    pub fn stems(&self) -> impl Iterator<Item = CanonicalPath> + '_ {
        let (last, parents) = self
            .segments
            .split_last()
            .map_or(("", &[][..]), |(last, parents)| (last.as_str(), parents));
        last.match_indices('.')
            .filter(|(at, _)| *at > 0)
            .map(move |(at, _)| {
                let mut segments = parents.to_vec();
                segments.push(last[..at].to_owned());
                CanonicalPath { segments }
            })
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
        let (byte, encoded) = match raw[i] {
            b'%' => {
                let high = raw.get(i + 1).and_then(|b| hex_value(*b));
                let low = raw.get(i + 2).and_then(|b| hex_value(*b));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(PathError::BadPercentEncoding);
                };
                i += 3;
                ((high << 4) | low, true)
            }
            raw_byte => {
                i += 1;
                (raw_byte, false)
            }
        };
        match byte {
            // Encoded separators are where upstreams disagree most (some decode before
            // routing, some after); an encoded `%` invites double decoding.
            b'/' | b'%' if encoded => return Err(PathError::AmbiguousCharacter),
            // Windows servers and some frameworks treat `\` as a separator; stacks that
            // decode, then parse the target again, end the path at `#` or `?`.
            b'\\' | b'#' | b'?' => return Err(PathError::AmbiguousCharacter),
            _ if byte.is_ascii_control() => return Err(PathError::AmbiguousCharacter),
            // Servlet containers (and Spring) cut `;…` off a segment before routing.
            b';' => return Err(PathError::Parameter),
            _ => decoded.push(byte.to_ascii_lowercase()),
        }
    }
    if decoded == b"." || decoded == b".." {
        return Err(PathError::DotSegment);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)?;
    for c in decoded.chars() {
        // C1 controls (the C0 ones and DEL were refused above).
        if c.is_control() {
            return Err(PathError::AmbiguousCharacter);
        }
        if FOLDS_TO_ASCII.contains(&c) {
            return Err(PathError::FoldsToAscii);
        }
    }
    // Windows (IIS, and anything mapping paths to files there) drops trailing dots and
    // spaces; frameworks trim white space.
    if decoded.ends_with('.')
        || decoded.starts_with(char::is_whitespace)
        || decoded.ends_with(char::is_whitespace)
    {
        return Err(PathError::SegmentEdge);
    }
    Ok(decoded)
}

/// The non-ASCII letters whose simple case mapping is an ASCII letter: ſ → S, ı → I,
/// İ → i, Kelvin sign → k. Case-insensitive matching that maps one character at a time
/// (Java, .NET, Go's `EqualFold`) reads `/admın` as `/admin`.
const FOLDS_TO_ASCII: [char; 4] = ['\u{17F}', '\u{131}', '\u{130}', '\u{212A}'];

pub(crate) fn hex_value(byte: u8) -> Option<u8> {
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
        assert_eq!(check("/.well-known/x.json").unwrap(), "/.well-known/x.json");
        assert_eq!(check("/a/..b/c").unwrap(), "/a/..b/c");
        assert_eq!(check("/stra%C3%9Fe").unwrap(), "/straße");
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
            // Overlong UTF-8 for `.` and `/`.
            ("/api/%c0%ae%c0%ae/x", PathError::NotUtf8),
            ("/api%c0%afadmin", PathError::NotUtf8),
            // Stacks that decode, then parse the target again, cut at `#` or `?`.
            ("/api/admin%23", PathError::AmbiguousCharacter),
            ("/api/admin%23/x", PathError::AmbiguousCharacter),
            ("/api/admin%3f", PathError::AmbiguousCharacter),
            ("/api/admin%3Fx=1", PathError::AmbiguousCharacter),
            ("/api/admin%7f", PathError::AmbiguousCharacter),
            ("/api/admin%c2%85", PathError::AmbiguousCharacter),
            // Windows drops trailing dots and spaces; frameworks trim white space.
            ("/api/admin.", PathError::SegmentEdge),
            ("/api/admin%2e", PathError::SegmentEdge),
            ("/api/admin%2E/x", PathError::SegmentEdge),
            ("/api/admin%20", PathError::SegmentEdge),
            ("/api/admin%20/x", PathError::SegmentEdge),
            ("/api/%20admin", PathError::SegmentEdge),
            ("/api/admin%c2%a0", PathError::SegmentEdge),
            ("/api/admin.%20", PathError::SegmentEdge),
            ("/a/.../b", PathError::SegmentEdge),
            // Letters that simple case folding maps to ASCII: ı ſ İ K.
            ("/api/adm%c4%b1n", PathError::FoldsToAscii),
            ("/api/admın", PathError::FoldsToAscii),
            ("/api/%c5%bfecret", PathError::FoldsToAscii),
            ("/api/adm%c4%b0n", PathError::FoldsToAscii),
            ("/api/%e2%84%aaeys", PathError::FoldsToAscii),
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

    #[test]
    fn stems_cut_the_last_segments_extensions() {
        let stems = |path: &str| -> Vec<String> {
            let path = CanonicalPath::parse(path).unwrap();
            path.stems().map(|stem| stem.to_string()).collect()
        };
        assert_eq!(stems("/api/admin.json"), ["/api/admin"]);
        assert_eq!(
            stems("/api/Admin.tar.GZ/"),
            ["/api/admin", "/api/admin.tar"]
        );
        assert_eq!(stems("/api/a..b"), ["/api/a", "/api/a."]);
        assert!(stems("/api/admin").is_empty());
        assert!(stems("/api/.env").is_empty());
        assert!(stems("/api.v1/admin").is_empty());
        assert!(stems("/").is_empty());
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Segments as a canonical path holds them: lower case, no edge dot or space.
        fn segment() -> impl Strategy<Value = String> {
            "[a-z0-9é~_-]([a-z0-9é~_. -]{0,6}[a-z0-9é~_-])?"
        }

        /// One way to write `text` in a request target: each byte as it is, percent-encoded
        /// (either hex case) or, for a letter, in upper case.
        fn spelling(text: String) -> impl Strategy<Value = String> {
            let bytes = text.into_bytes();
            let choices = proptest::collection::vec(0u8..4, bytes.len());
            choices.prop_map(move |choices| {
                let mut spelled = String::new();
                for (byte, choice) in bytes.iter().zip(choices) {
                    match choice {
                        0 => spelled.push_str(&format!("%{byte:02X}")),
                        1 => spelled.push_str(&format!("%{byte:02x}")),
                        2 if byte.is_ascii_alphabetic() => {
                            spelled.push(byte.to_ascii_uppercase() as char)
                        }
                        _ if *byte == b' ' || !byte.is_ascii() => {
                            spelled.push_str(&format!("%{byte:02X}"))
                        }
                        _ => spelled.push(*byte as char),
                    }
                }
                spelled
            })
        }

        fn spelled_path() -> impl Strategy<Value = (Vec<String>, String)> {
            proptest::collection::vec(segment(), 1..5).prop_flat_map(|segments| {
                let spelled: Vec<_> = segments.iter().cloned().map(spelling).collect();
                (Just(segments), spelled, any::<bool>()).prop_map(
                    |(segments, spelled, trailing_slash)| {
                        let mut path = format!("/{}", spelled.join("/"));
                        if trailing_slash {
                            path.push('/');
                        }
                        (segments, path)
                    },
                )
            })
        }

        /// Any target path, weighted towards ones that are accepted: plain characters,
        /// separators and dots, any escape, and the characters and escapes the parser
        /// refuses.
        fn any_path() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                24 => "[a-zA-Z0-9_~ -]",
                6 => Just("/".to_owned()),
                3 => Just(".".to_owned()),
                2 => "%[2-7][0-9a-fA-F]",
                1 => "%[0-9a-fA-F]{2}",
                1 => "%(2[eEfF035]|5[cC]|3[bBfF]|[cC][0245]%[89aAbB][0-9a-fA-F]|[eE]2%84%[aA][aA])",
                1 => "[ ;#?\\\\\u{80}-\u{17f}\u{212a}]",
            ];
            proptest::collection::vec(piece, 0..16)
                .prop_map(|pieces| format!("/{}", pieces.concat()))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever is accepted holds only segments no upstream reads differently,
            /// and reads the same once written out again.
            #[test]
            fn accepted_paths_are_unambiguous_and_stable(path in any_path()) {
                let Ok(parsed) = CanonicalPath::parse(&path) else {
                    return Ok(());
                };
                for segment in &parsed.segments {
                    prop_assert!(!segment.is_empty());
                    prop_assert!(segment != "." && segment != "..");
                    prop_assert!(!segment.ends_with('.'), "{segment:?}");
                    prop_assert!(!segment.starts_with(char::is_whitespace));
                    prop_assert!(!segment.ends_with(char::is_whitespace));
                    prop_assert!(
                        !segment.chars().any(|c| "/\\#?;%".contains(c)
                            || c.is_control()
                            || c.is_ascii_uppercase()
                            || FOLDS_TO_ASCII.contains(&c)),
                        "{segment:?}"
                    );
                }
                let again = CanonicalPath::parse(&parsed.to_string());
                prop_assert_eq!(again, Ok(parsed));
            }

            /// Every spelling of a path reads as that path, so a prefix covers all of them or
            /// none, and so does its `.ext` form.
            #[test]
            fn every_spelling_is_covered_alike(
                (segments, spelled) in spelled_path(),
                depth in 0usize..5,
            ) {
                let plain = CanonicalPath::parse(&format!("/{}", segments.join("/"))).unwrap();
                let parsed = CanonicalPath::parse(&spelled);
                prop_assert_eq!(parsed.as_ref(), Ok(&plain), "{}", spelled);
                let prefix = CanonicalPath {
                    segments: segments[..depth.min(segments.len())].to_vec(),
                };
                prop_assert!(parsed.unwrap().starts_with(&prefix));
                let json = format!("{}.json", spelled.trim_end_matches('/'));
                let json = CanonicalPath::parse(&json).unwrap();
                prop_assert!(json.stems().any(|stem| stem == plain));
            }
        }
    }
}
