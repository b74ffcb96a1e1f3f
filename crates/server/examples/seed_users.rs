//! The seeder of `bench/tenant.sh`: writes USERS users into a Tessera database through the
//! store's own bulk path, `Store::import_users` (what `POST /api/v2/jobs/users-imports`
//! writes with), BATCH users per transaction — real rows, every column as the import writes
//! them (ids `auth0|<24 hex>` as the product makes them, normalized emails, the default
//! name, nickname and picture, empty metadata).
//!
//! Real hashes: HASHES distinct Argon2id hashes are made first with Tessera's own
//! `hash_password_blocking` (its parameters, its crate), on every core; user `i` is
//! `user{i:07}@bench.example` with the password `bench-password-{i % HASHES}` and that
//! password's hash, so every stored hash is a real one of its user's password and a login
//! pays the real verification. (The import stores an Argon2 PHC string as it is: a
//! Tessera hash is what it would make itself, so nothing is rewritten at the first login.)
//!
//! The database is opened the way `tessera serve` opens it (`Store::connect`, which
//! applies the migrations); the database connection `Username-Password-Authentication`
//! must exist: start `tessera serve` on the database once first (bench/tenant.sh does).
//!
//! Usage: seed_users DATABASE_URL USERS [HASHES=1000] [BATCH=500]
//! Prints one JSON line: {"users":…,"hashes":…,"hash_seconds":…,"write_seconds":…,
//! "rows_per_second":…}. Progress goes to stderr.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tessera_core::ids;
use tessera_server::passwords::hash_password_blocking;
use tessera_store::{ImportOutcome, ImportedUser, Store};

/// The import's own batch (`user_import::BATCH`) by default; an insert statement binds 14
/// values a user, under SQLite's 32,766.
const MAX_BATCH: usize = 2000;

fn usage(why: &str) -> ! {
    eprintln!("usage: seed_users DATABASE_URL USERS [HASHES=1000] [BATCH=500] ({why})");
    std::process::exit(2)
}

fn number(text: Option<String>, default: usize, name: &str) -> usize {
    match text {
        None => default,
        Some(text) => text
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or_else(|| usage(&format!("{name} must be a positive number"))),
    }
}

/// The password of user `i` of a database seeded with `hashes` hashes.
fn password(i: usize, hashes: usize) -> String {
    format!("bench-password-{}", i % hashes)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| usage("no DATABASE_URL"));
    let users = args
        .next()
        .map(|text| {
            text.parse::<usize>()
                .unwrap_or_else(|_| usage("USERS must be a number"))
        })
        .unwrap_or_else(|| usage("no USERS"));
    let hashes = number(args.next(), 1000, "HASHES").min(users.max(1));
    let batch = number(args.next(), user_import_batch(), "BATCH");
    if batch > MAX_BATCH {
        usage(&format!("BATCH must be at most {MAX_BATCH}"));
    }

    // The hashes, on every core.
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = AtomicUsize::new(0);
    let mut made: Vec<(usize, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= hashes {
                            break mine;
                        }
                        mine.push((k, hash_password_blocking(&password(k, hashes))));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("hashing does not panic"))
            .collect()
    });
    made.sort_unstable_by_key(|(k, _)| *k);
    let phc: Vec<String> = made.into_iter().map(|(_, hash)| hash).collect();
    let hash_seconds = started.elapsed().as_secs_f64();
    eprintln!("seed_users: {hashes} Argon2id hashes in {hash_seconds:.1} s on {threads} threads");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime starts");
    let write_seconds = runtime.block_on(async {
        let store = Store::connect(&url).await.unwrap_or_else(|error| {
            eprintln!("seed_users: the database does not open: {error}");
            std::process::exit(1)
        });
        let started = Instant::now();
        let mut done = 0;
        let mut reported = Instant::now();
        while done < users {
            let upto = (done + batch).min(users);
            let rows: Vec<ImportedUser> = (done..upto)
                .map(|i| ImportedUser {
                    user_id: format!("auth0|{}", ids::hex_id(12)),
                    email: format!("user{i:07}@bench.example"),
                    email_verified: Some(true),
                    password_hash: Some(phc[i % hashes].clone()),
                    name: None,
                    nickname: None,
                    picture: None,
                    blocked: false,
                    user_metadata: None,
                    app_metadata: None,
                })
                .collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("the clock is after 1970")
                .as_secs() as i64;
            let outcomes = store
                .import_users(&rows, false, now)
                .await
                .unwrap_or_else(|error| {
                    eprintln!("seed_users: writing users {done}..{upto} failed: {error}");
                    std::process::exit(1)
                });
            if let Some(position) = outcomes.iter().position(|o| *o != ImportOutcome::Inserted) {
                eprintln!(
                    "seed_users: user {} was not inserted ({:?}): seed a fresh database",
                    done + position,
                    outcomes[position]
                );
                std::process::exit(1);
            }
            done = upto;
            if reported.elapsed().as_secs() >= 10 {
                reported = Instant::now();
                eprintln!(
                    "seed_users: {done} users, {:.0} rows/s",
                    done as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        started.elapsed().as_secs_f64()
    });
    println!(
        "{{\"users\":{users},\"hashes\":{hashes},\"batch\":{batch},\"hash_seconds\":{hash_seconds:.1},\
         \"write_seconds\":{write_seconds:.1},\"rows_per_second\":{:.0}}}",
        users as f64 / write_seconds.max(1e-9)
    );
}

fn user_import_batch() -> usize {
    tessera_server::user_import::BATCH
}
