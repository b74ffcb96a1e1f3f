//! The bounds of a session's or a refresh token's metadata, one rule for what actions
//! write (`api.session.setMetadata`, `api.refreshToken.setMetadata`) and what
//! administrators write (`PATCH /api/v2/sessions/{id}`, `PATCH /api/v2/refresh-tokens/{id}`):
//! Auth0's — string keys and values of at most 255 characters, at most 25 keys. Characters
//! are Unicode code points (the prelude counts a surrogate pair once).

use std::collections::BTreeMap;

/// The most keys a metadata holds.
pub const MOST_KEYS: usize = 25;
/// The most characters in a key or a value.
pub const MOST_CHARACTERS: usize = 255;

/// Whether `text` may be a key: 1 to [`MOST_CHARACTERS`] characters.
pub fn is_key(text: &str) -> bool {
    (1..=MOST_CHARACTERS).contains(&text.chars().count())
}

/// Whether `text` may be a value: at most [`MOST_CHARACTERS`] characters.
pub fn is_value(text: &str) -> bool {
    text.chars().count() <= MOST_CHARACTERS
}

/// Whether a whole metadata may be kept; why not, when it may not.
pub fn check(metadata: &BTreeMap<String, String>) -> Result<(), String> {
    if metadata.len() > MOST_KEYS {
        return Err(format!(
            "metadata holds at most {MOST_KEYS} keys ({} asked)",
            metadata.len()
        ));
    }
    match metadata
        .iter()
        .find(|(key, value)| !is_key(key) || !is_value(value))
    {
        Some(_) => Err(format!(
            "metadata keys are 1 to {MOST_CHARACTERS} characters and its values at most \
             {MOST_CHARACTERS}"
        )),
        None => Ok(()),
    }
}
