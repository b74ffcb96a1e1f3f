//! Password hashing: Argon2id with OWASP's parameters, off the async executor, with
//! bounded concurrency so a burst of logins cannot exhaust memory or starve requests.
//! Hashes imported from elsewhere (`imported.rs`) verify here too, and are replaced by
//! Tessera's own at the first login.

pub mod imported;

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// How every hash this version makes begins: a stored hash that does not is rehashed at
/// the next successful login (an imported hash, or weaker parameters of the past).
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19_456, 2, 1, None).expect("constant parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password to a PHC string. Blocking: call from a blocking thread.
pub fn hash_password_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashing of a bounded input succeeds")
        .to_string()
}

/// Verifies against a stored hash: an Argon2 PHC string — Tessera's own, or imported
/// with bounded costs — or another imported form (`imported.rs`). Blocking.
/// Unparseable hashes never verify.
pub fn verify_password_blocking(password: &str, stored: &str) -> bool {
    if !stored.starts_with("$argon2") {
        return imported::verify_imported(password, stored);
    }
    // An Argon2 PHC string verifies with the parameters it names.
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// What a password check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Wrong,
    Right,
    /// Right, against a hash Tessera would not make today: `replacement` (Argon2id of the
    /// same password) should take the place of `outdated`.
    RightButOutdated {
        outdated: String,
        replacement: String,
    },
}

impl Verification {
    pub fn is_right(&self) -> bool {
        !matches!(self, Verification::Wrong)
    }
}

/// Runs hashing on the blocking pool, at most `permits` at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the account does not exist
    /// so that unknown and known accounts take the same time. Made on first use.
    dummy: Arc<OnceLock<String>>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(OnceLock::new()),
        }
    }

    pub async fn hash(&self, password: String) -> String {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || hash_password_blocking(&password))
            .await
            .expect("hashing does not panic")
    }

    /// `None` as the stored hash means "no such account": a dummy verification runs
    /// so the response time does not tell. A right password against a hash this
    /// version would not make (an imported one) comes back with its replacement, made
    /// in the same blocking task.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Verification {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let dummy = self.dummy.clone();
        let dummy_verification = move |password: &str| {
            let phc =
                dummy.get_or_init(|| hash_password_blocking(&tessera_core::ids::secret_token()));
            verify_password_blocking(password, phc);
        };
        tokio::task::spawn_blocking(move || match stored {
            Some(stored) if verify_password_blocking(&password, &stored) => {
                if stored.starts_with(CURRENT_PREFIX) {
                    Verification::Right
                } else {
                    Verification::RightButOutdated {
                        outdated: stored,
                        replacement: hash_password_blocking(&password),
                    }
                }
            }
            Some(stored) => {
                // An imported hash may be far cheaper than Argon2id (bcrypt cost 4, a salted
                // SHA-256): a wrong password against it also pays one Argon2id, so the time
                // does not tell an imported account from an unknown one.
                if !stored.starts_with(CURRENT_PREFIX) {
                    dummy_verification(&password);
                }
                Verification::Wrong
            }
            None => {
                dummy_verification(&password);
                Verification::Wrong
            }
        })
        .await
        .expect("verification does not panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let phc = hash_password_blocking("correct horse");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password_blocking("correct horse", &phc));
        assert!(!verify_password_blocking("wrong horse", &phc));
        assert!(!verify_password_blocking("x", "not a phc string"));
        assert!(phc.starts_with(CURRENT_PREFIX));
    }
}
