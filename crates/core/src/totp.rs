//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): what an authenticator
//! app computes from the seed it was given, six digits every 30 seconds, HMAC-SHA-1 as
//! every such app expects. This module checks a code and says which time step it was for;
//! refusing a step used before (a replayed code) is the caller's, who stores the last one.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Seconds per code.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Seed length: 160 bits, RFC 4226's recommendation for HMAC-SHA-1.
pub const SEED_BYTES: usize = 20;
/// Steps either side of now a code may be for: clocks of phones drift, and a code typed
/// at the end of its 30 seconds arrives in the next.
const SKEW_STEPS: i64 = 1;

/// A new random seed.
pub fn new_seed() -> Vec<u8> {
    let mut seed = vec![0u8; SEED_BYTES];
    SystemRandom::new()
        .fill(&mut seed)
        .expect("the system random source works");
    seed
}

/// The seed as users type it: RFC 4648 base32, without padding.
pub fn seed_text(seed: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(seed)
}

/// A seed typed as text ([`seed_text`]'s form; case and spaces do not matter).
pub fn seed_from_text(text: &str) -> Option<Vec<u8>> {
    let text: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    data_encoding::BASE32_NOPAD.decode(text.as_bytes()).ok()
}

/// The `otpauth://` URI an authenticator app reads from the QR code (Google
/// Authenticator's key URI format): the issuer names the service, the account the user.
pub fn key_uri(issuer: &str, account: &str, seed: &[u8]) -> String {
    let encode = |text: &str| {
        url::form_urlencoded::byte_serialize(text.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        encode(issuer),
        encode(account),
        seed_text(seed),
        encode(issuer),
    )
}

/// The time step of a moment (Unix seconds).
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The code of one time step (HOTP with the step as counter, RFC 4226 §5.3).
pub fn code_for_step(seed: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let counter = u64::try_from(step).unwrap_or(0).to_be_bytes();
    let mac = hmac::sign(&key, &counter);
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS as u32),
        width = DIGITS
    )
}

/// The step `code` was computed for, if it is the code of a step within the allowed skew
/// of `unix_seconds` (compared in constant time). Spaces a user typed are ignored.
pub fn matching_step(seed: &[u8], code: &str, unix_seconds: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_seconds);
    // Every candidate is computed and compared, so the time taken says nothing of which.
    let mut found = None;
    for step in now - SKEW_STEPS..=now + SKEW_STEPS {
        let expected = code_for_step(seed, step);
        if verify_slices_are_equal(expected.as_bytes(), code.as_bytes()).is_ok() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B (SHA-1 seed), the last six of its eight digits.
    #[test]
    fn the_rfc_6238_test_vectors() {
        let seed = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code_for_step(seed, step_at(time)), eight[2..], "{time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let seed = new_seed();
        let now = 1_700_000_000;
        let code = code_for_step(&seed, step_at(now));
        assert_eq!(matching_step(&seed, &code, now), Some(step_at(now)));
        assert_eq!(
            matching_step(&seed, &format!("{} {}", &code[..3], &code[3..]), now),
            Some(step_at(now)),
            "typed with a space"
        );
        assert_eq!(
            matching_step(&seed, &code, now + STEP_SECONDS),
            Some(step_at(now))
        );
        assert_eq!(matching_step(&seed, &code, now + 2 * STEP_SECONDS), None);
        assert_eq!(matching_step(&seed, &code, now - 2 * STEP_SECONDS), None);
        assert_eq!(matching_step(&new_seed(), &code, now), None, "another seed");
        let typed = seed_text(&seed).to_lowercase();
        assert_eq!(seed_from_text(&typed).as_deref(), Some(&seed[..]));
        assert_eq!(seed_from_text("not base32!"), None);
        for wrong in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(matching_step(&seed, wrong, now), None, "{wrong:?}");
        }
    }

    #[test]
    fn the_key_uri_names_issuer_account_and_seed() {
        let seed = b"12345678901234567890";
        let uri = key_uri("Tessera at localhost", "ada@example.com", seed);
        assert_eq!(
            uri,
            "otpauth://totp/Tessera%20at%20localhost:ada%40example.com?secret=\
             GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Tessera%20at%20localhost&algorithm=SHA1&\
             digits=6&period=30"
        );
    }
}
