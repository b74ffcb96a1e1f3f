//! Password hashing: Argon2id with OWASP's parameters, off the async executor, with
//! bounded concurrency so a burst of logins cannot exhaust memory or starve requests.
//! Hashes imported from elsewhere (`imported.rs`) verify here too, and are replaced by
//! Tessera's own at the first login.

pub mod imported;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

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

/// Argon2's working memory (19 MiB each), shared by one hasher's blocking tasks: while
/// hashes follow one another (a burst of logins) each reuses memory a finished one gave
/// back — allocating and zeroing it for every hash cost about a tenth of a login's CPU
/// (a memset and page faults). Argon2 writes every block before it reads it, so what a
/// previous hash left needs no clearing. When the last hash in flight or waiting
/// finishes it frees all of it, on its blocking thread, as a hash used to free its own:
/// memory comes back after a burst as it did (mimalloc returns it by the time the thread
/// ends). Kept per thread instead, it was freed only in the thread's destructors, and
/// mimalloc kept those pages.
#[derive(Default)]
struct WorkingMemory {
    idle: Mutex<Vec<Vec<Block>>>,
    in_flight: AtomicUsize,
    /// Buffers allocated so far (tests read it).
    #[cfg(test)]
    allocations: AtomicUsize,
}

impl WorkingMemory {
    /// Counts a hash in: call before it waits for its turn, and move the lease into its
    /// blocking task.
    fn lease(self: &Arc<Self>) -> MemoryLease {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        MemoryLease {
            pool: self.clone(),
            blocks: Vec::new(),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One hash's hold on the working memory; dropping it gives the memory back.
struct MemoryLease {
    pool: Arc<WorkingMemory>,
    blocks: Vec<Block>,
}

impl MemoryLease {
    /// Memory for one hash: an idle buffer when there is one, else a new one.
    fn blocks(&mut self) -> &mut Vec<Block> {
        if self.blocks.is_empty() {
            let idle = self.pool.idle().pop();
            self.blocks = idle.unwrap_or_else(|| {
                #[cfg(test)]
                self.pool.allocations.fetch_add(1, Ordering::SeqCst);
                vec![Block::default(); M_COST_KIB as usize]
            });
        }
        &mut self.blocks
    }
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        let blocks = std::mem::take(&mut self.blocks);
        if !blocks.is_empty() {
            self.pool.idle().push(blocks);
        }
        if self.pool.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The last hash in flight: nothing is waiting for memory. A hash starting
            // meanwhile allocates its own, as every hash used to.
            let freed = std::mem::take(&mut *self.pool.idle());
            drop(freed);
        }
    }
}

/// Argon2 of `password` and `salt` into `out`, in `memory` (grown to our parameters'
/// size once) when the parameters need no more than ours; an imported hash with higher
/// costs gets memory of its own.
fn argon2_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> argon2::Result<()> {
    let blocks = argon2.params().block_count();
    if blocks > M_COST_KIB as usize {
        return argon2.hash_password_into(password, salt, out);
    }
    if memory.len() < blocks {
        *memory = vec![Block::default(); M_COST_KIB as usize];
    }
    argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
}

/// Hashes a password to a PHC string. Blocking: call from a blocking thread.
pub fn hash_password_blocking(password: &str) -> String {
    hash_in(password, &mut Vec::new())
}

fn hash_in(password: &str, memory: &mut Vec<Block>) -> String {
    hash_with_salt(password, &SaltString::generate(&mut OsRng), memory)
}

fn hash_with_salt(password: &str, salt: &SaltString, memory: &mut Vec<Block>) -> String {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .expect("a generated salt decodes");
    let hasher = argon2();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&hasher, password.as_bytes(), salt_bytes, &mut out, memory)
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
    verify_in(password, stored, &mut Vec::new())
}

fn verify_in(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    if !stored.starts_with("$argon2") {
        return imported::verify_imported(password, stored);
    }
    verify_argon2(password.as_bytes(), stored, memory).unwrap_or(false)
}

/// An Argon2 PHC string verifies with the algorithm, version and parameters it names;
/// `None` when it does not parse. The outputs are compared in constant time (`Output`'s
/// equality).
fn verify_argon2(password: &[u8], stored: &str, memory: &mut Vec<Block>) -> Option<bool> {
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
        argon2_into(&hasher, password, salt_bytes, out, memory).map_err(Into::into)
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
    memory: Arc<WorkingMemory>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(OnceLock::new()),
            memory: Arc::default(),
        }
    }

    pub async fn hash(&self, password: String) -> String {
        // Counted in before it queues for a permit: a burst keeps its memory while
        // hashes wait for their turn.
        let mut memory = self.memory.lease();
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(move || hash_in(&password, memory.blocks()))
            .await
            .expect("hashing does not panic")
    }

    /// `None` as the stored hash means "no such account": a dummy verification runs
    /// so the response time does not tell. A right password against a hash this
    /// version would not make (an imported one) comes back with its replacement, made
    /// in the same blocking task.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Verification {
        let mut lease = self.memory.lease();
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let dummy = self.dummy.clone();
        tokio::task::spawn_blocking(move || {
            let memory = lease.blocks();
            let dummy_verification = |password: &str, memory: &mut Vec<Block>| {
                let phc =
                    dummy.get_or_init(|| hash_in(&tessera_core::ids::secret_token(), &mut *memory));
                verify_in(password, phc, memory);
            };
            match stored {
                Some(stored) if verify_in(&password, &stored, memory) => {
                    if stored.starts_with(CURRENT_PREFIX) {
                        Verification::Right
                    } else {
                        Verification::RightButOutdated {
                            outdated: stored,
                            replacement: hash_in(&password, memory),
                        }
                    }
                }
                Some(stored) => {
                    // An imported hash may be far cheaper than Argon2id (bcrypt cost 4, a
                    // salted SHA-256): a wrong password against it also pays one Argon2id,
                    // so the time does not tell an imported account from an unknown one.
                    if !stored.starts_with(CURRENT_PREFIX) {
                        dummy_verification(&password, memory);
                    }
                    Verification::Wrong
                }
                None => {
                    dummy_verification(&password, memory);
                    Verification::Wrong
                }
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
        // The memory first holds another hash's blocks (other parameters), then ours.
        let other = Argon2::new(
            Algorithm::Argon2d,
            Version::V0x10,
            Params::new(1024, 1, 2, None).unwrap(),
        );
        let other_phc = crate_hash(&other, "something else", &salt);
        let mut memory = Vec::new();
        assert!(verify_in("something else", &other_phc, &mut memory));
        assert_eq!(hash_with_salt("correct horse", &salt, &mut memory), fresh);
        assert_eq!(hash_with_salt("correct horse", &salt, &mut memory), fresh);
        assert_ne!(hash_with_salt("correct horsf", &salt, &mut memory), fresh);
        assert!(verify_in("correct horse", &fresh, &mut memory));
    }

    #[test]
    fn memory_is_reused_during_a_burst_and_freed_after_it() {
        let pool = Arc::new(WorkingMemory::default());
        let (mut first, mut second) = (pool.lease(), pool.lease());
        hash_in("one", first.blocks());
        hash_in("two", second.blocks());
        let address = first.blocks().as_ptr();
        drop(first);
        assert_eq!(pool.idle().len(), 1, "given back while a hash is in flight");
        let mut third = pool.lease();
        assert_eq!(third.blocks().as_ptr(), address, "the next hash reuses it");
        drop(third);
        drop(second);
        assert!(
            pool.idle().is_empty(),
            "the last hash in flight frees it all"
        );
        assert_eq!(pool.in_flight.load(Ordering::SeqCst), 0);
    }

    /// Hashes waiting for their turn keep the memory: a burst behind one permit
    /// allocates once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_burst_reuses_one_buffer() {
        let hasher = PasswordHasher::new(1);
        let stored = hash_password_blocking("pw");
        let turn = hasher.permits.clone().acquire_owned().await.unwrap();
        let burst: Vec<_> = (0..5)
            .map(|_| {
                let (hasher, stored) = (hasher.clone(), stored.clone());
                tokio::spawn(async move { hasher.verify("pw".into(), Some(stored)).await })
            })
            .collect();
        // Bounded wait until all five queue behind the held permit.
        for _ in 0..5_000 {
            if hasher.memory.in_flight.load(Ordering::SeqCst) == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(hasher.memory.in_flight.load(Ordering::SeqCst), 5);
        drop(turn);
        for verification in burst {
            assert!(verification.await.unwrap().is_right());
        }
        assert_eq!(hasher.memory.allocations.load(Ordering::SeqCst), 1);
        assert!(hasher.memory.idle().is_empty(), "freed after the burst");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hasher_frees_its_memory_after_a_burst() {
        let hasher = PasswordHasher::new(2);
        let stored = hasher.hash("pw".into()).await;
        let burst: Vec<_> = (0..6)
            .map(|i| {
                let hasher = hasher.clone();
                let (attempt, stored) = (if i % 2 == 0 { "pw" } else { "no" }, stored.clone());
                tokio::spawn(async move { hasher.verify(attempt.into(), Some(stored)).await })
            })
            .collect();
        for (i, verification) in burst.into_iter().enumerate() {
            assert_eq!(verification.await.unwrap().is_right(), i % 2 == 0);
        }
        assert!(hasher.memory.idle().is_empty());
        assert_eq!(hasher.memory.in_flight.load(Ordering::SeqCst), 0);
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
