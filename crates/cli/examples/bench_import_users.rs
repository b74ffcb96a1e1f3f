//! Writes the users file of `bench/imports.sh`: COUNT users in Auth0's bulk-import
//! format, each with a bcrypt hash (cost COST, 4 by default so that 100,000 hashes take
//! a minute, not hours) of the password `bench-password-<i>`.
//!
//! Usage: cargo run --release -p tessera --example bench_import_users -- COUNT OUT [COST]

use std::io::Write as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(count), Some(out)) = (
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
        args.get(2),
    ) else {
        eprintln!("usage: bench_import_users COUNT OUT [COST]");
        std::process::exit(2);
    };
    let cost: u32 = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(4);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_thread = count.div_ceil(threads);
    let lines: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t * per_thread..((t + 1) * per_thread).min(count))
                        .map(|i| {
                            let hash = bcrypt::hash(format!("bench-password-{i}"), cost)
                                .expect("bcrypt hashes");
                            // What an Auth0 import of a migrated database typically
                            // holds, kept short so 100,000 users fit in one 16 MiB file.
                            serde_json::json!({
                                "email": format!("user{i:07}@bench.example"),
                                "email_verified": true,
                                "user_id": format!("b{i:07}"),
                                "password_hash": hash,
                            })
                            .to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker finishes"))
            .collect()
    });
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).expect("OUT can be written"));
    writeln!(file, "[{}]", lines.join(",")).expect("OUT can be written");
    file.flush().expect("OUT can be written");
}
