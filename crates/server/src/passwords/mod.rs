//! Password hashing: Argon2id with OWASP's parameters, off the async executor, with
//! bounded concurrency so a burst of logins cannot exhaust memory or starve requests.
//! Hashes imported from elsewhere (`imported.rs`) verify here too, and are replaced by
//! Tessera's own at the first login.

pub mod imported;

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// How every hash this version makes begins: a stored hash that does not is rehashed at
/// the next successful login (an imported hash, or weaker parameters of the past).
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// OWASP Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1.
const M_COST_KIB: u32 = 19_456;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, 2, 1, None).expect("constant parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

thread_local! {
    /// Argon2's working memory (19 MiB), kept by each thread that hashes: allocating and
    /// zeroing it for every hash cost about a tenth of a login's CPU (a memset and page
    /// faults). Argon2 writes every block before it reads it, so what a previous hash
    /// left needs no clearing. Hashing runs on tokio's blocking threads, which end after
    /// a second idle (`crates/cli/src/main.rs`), so the memory goes back after a burst.
    static WORKING_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 of `password` and `salt` into `out`, in this thread's kept working memory when
/// the parameters need no more than ours (an imported hash with other costs gets its own).
fn argon2_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    let blocks = argon2.params().block_count();
    if blocks > M_COST_KIB as usize {
        return argon2.hash_password_into(password, salt, out);
    }
    WORKING_MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            *memory = vec![Block::default(); M_COST_KIB as usize];
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// Hashes a password to a PHC string. Blocking: call from a blocking thread.
pub fn hash_password_blocking(password: &str) -> String {
    hash_with_salt(password, &SaltString::generate(&mut OsRng))
}

fn hash_with_salt(password: &str, salt: &SaltString) -> String {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .expect("a generated salt decodes");
    let hasher = argon2();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&hasher, password.as_bytes(), salt_bytes, &mut out)
        .expect("Argon2 hashing of a bounded input succeeds");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(hasher.params()).expect("constant parameters encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("a 32-byte output is valid")),
    }
    .to_string()
}

/// Verifies against a stored hash: an Argon2 PHC string — Tessera's own, or imported
/// with bounded costs — or another imported form (`imported.rs`). Blocking.
/// Unparseable hashes never verify.
pub fn verify_password_blocking(password: &str, stored: &str) -> bool {
    if !stored.starts_with("$argon2") {
        return imported::verify_imported(password, stored);
    }
    verify_argon2(password.as_bytes(), stored).unwrap_or(false)
}

/// An Argon2 PHC string verifies with the algorithm, version and parameters it names;
/// `None` when it does not parse. The outputs are compared in constant time (`Output`'s
/// equality).
fn verify_argon2(password: &[u8], stored: &str) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let (salt, expected) = (parsed.salt?, parsed.hash?);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).ok()?;
    let hasher = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        argon2_into(&hasher, password, salt_bytes, out).map_err(Into::into)
    })
    .ok()?;
    Some(computed == expected)
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

    /// The crate's own hasher and verifier, which allocate fresh memory for every hash:
    /// what our kept-memory path must agree with.
    fn crate_hash(argon2: &Argon2<'_>, password: &str, salt: &SaltString) -> String {
        use argon2::password_hash::PasswordHasher as _;
        argon2
            .hash_password(password.as_bytes(), salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn kept_memory_hashes_as_fresh_memory_does() {
        let salt = SaltString::generate(&mut OsRng);
        let fresh = crate_hash(&argon2(), "correct horse", &salt);
        // This thread's memory first holds another hash's blocks (other parameters), then ours.
        let other = Argon2::new(
            Algorithm::Argon2d,
            Version::V0x10,
            Params::new(1024, 1, 2, None).unwrap(),
        );
        let other_phc = crate_hash(&other, "something else", &salt);
        assert!(verify_password_blocking("something else", &other_phc));
        assert_eq!(hash_with_salt("correct horse", &salt), fresh);
        assert_eq!(hash_with_salt("correct horse", &salt), fresh);
        assert_ne!(hash_with_salt("correct horsf", &salt), fresh);
    }

    #[test]
    fn other_argon2_hashes_verify_as_the_crate_verifies_them() {
        use argon2::password_hash::PasswordVerifier as _;
        let cases = [
            (Algorithm::Argon2i, Version::V0x13, 2048, 3, 1, Some(16)),
            (Algorithm::Argon2d, Version::V0x10, 4096, 1, 2, Some(64)),
            (Algorithm::Argon2id, Version::V0x13, 8192, 1, 1, None),
            // More memory than ours: hashed in memory of its own.
            (Algorithm::Argon2id, Version::V0x13, 32_768, 1, 1, None),
        ];
        for (algorithm, version, m, t, p, len) in cases {
            let argon2 = Argon2::new(algorithm, version, Params::new(m, t, p, len).unwrap());
            let phc = crate_hash(&argon2, "pw one", &SaltString::generate(&mut OsRng));
            let parsed = PasswordHash::new(&phc).unwrap();
            for attempt in ["pw one", "pw two", ""] {
                assert_eq!(
                    verify_password_blocking(attempt, &phc),
                    argon2.verify_password(attempt.as_bytes(), &parsed).is_ok(),
                    "{phc} with {attempt:?}"
                );
            }
            assert!(verify_password_blocking("pw one", &phc), "{phc}");
            // A changed output character never verifies.
            let at = phc.len() - 5;
            let changed = if &phc[at..=at] == "A" { "B" } else { "A" };
            let tampered = format!("{}{changed}{}", &phc[..at], &phc[at + 1..]);
            assert!(!verify_password_blocking("pw one", &tampered), "{tampered}");
        }
    }
}
