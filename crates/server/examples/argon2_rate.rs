//! The password-hash limit for `bench/writes.sh`: how many Argon2id verifications per
//! second this machine does with Tessera's own parameters and crate, on THREADS threads
//! at once (one per core), for SECONDS. A login costs one verification, so this is the
//! most logins per second any server with these parameters could serve here.
//!
//! Usage: cargo run --release -p tessera-server --example argon2_rate -- THREADS SECONDS
//! Prints one JSON line: {"threads":…,"seconds":…,"verifications":…,"per_second":…}.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tessera_server::passwords::{hash_password_blocking, verify_password_blocking};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut number = |name: &str| -> u64 {
        args.next()
            .and_then(|text| text.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| {
                eprintln!("usage: argon2_rate THREADS SECONDS ({name} must be a positive number)");
                std::process::exit(2)
            })
    };
    let threads = number("THREADS");
    let seconds = number("SECONDS");
    let stored = hash_password_blocking("bench-password");
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    assert!(verify_password_blocking("bench-password", &stored));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    // Verifications that finished after the stop count over the time they took.
    let elapsed = started.elapsed().as_secs_f64();
    let verifications = done.load(Ordering::Relaxed);
    println!(
        "{{\"threads\":{threads},\"seconds\":{elapsed:.3},\"verifications\":{verifications},\"per_second\":{:.2}}}",
        verifications as f64 / elapsed
    );
}
