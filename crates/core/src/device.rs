//! RFC 8628 device authorization: the user code's shape — what a person types, how it is
//! read back — and the flow's timing.

/// Auth0's user-code alphabet: consonants only.
pub const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a user code (shown as two groups of four).
pub const USER_CODE_LEN: usize = 8;
/// How long a device code and its user code live (Auth0's 15 minutes).
pub const DEVICE_CODE_LIFETIME: i64 = 900;
/// The polling interval a device is told to keep, in seconds.
pub const POLL_INTERVAL: i64 = 5;
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: i64 = 5;
/// Longer input than this is not a user code, whatever it holds; read no further.
const MAX_TYPED_LEN: usize = 32;

/// The stored form of what a person typed: upper-cased, without the dash and spaces, if it
/// can be a user code at all. Case and separators are forgiven, nothing else.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    if typed.len() > MAX_TYPED_LEN {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// The user code as shown to people: `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    match code.split_at_checked(USER_CODE_LEN / 2) {
        Some((head, tail)) if code.len() == USER_CODE_LEN => format!("{head}-{tail}"),
        _ => code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids;

    #[test]
    fn user_codes_are_read_as_typed_or_shown() {
        let code = ids::user_code();
        assert_eq!(code.len(), USER_CODE_LEN);
        assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        let shown = display_user_code(&code);
        assert_eq!(shown.len(), 9);
        assert_eq!(normalize_user_code(&shown).as_deref(), Some(code.as_str()));
        assert_eq!(
            normalize_user_code(&shown.to_lowercase()).as_deref(),
            Some(code.as_str())
        );
        assert_eq!(
            normalize_user_code(" bcdf ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
        for bad in [
            "",
            "BCDFGHJ",
            "BCDFGHJKL",
            "ABCDEFGH",
            "BCDF-GHJ1",
            "BCDFGHJ\u{e9}",
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
        assert_eq!(normalize_user_code(&"B".repeat(10_000)), None);
    }
}
