use std::process::ExitCode;

use clap::Parser as _;
use tessera::cli::Cli;

/// mimalloc rather than glibc's malloc: requests allocate on one thread and free on
/// another (the actions workers, hyper, tokio), which glibc's arenas handle poorly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tessera::init_logging(&cli.command);
    let runtime = if tessera::is_server(&cli.command) {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            // Password hashing runs on blocking threads, 19 MiB of Argon2 memory each, and
            // mimalloc gives a thread's freed pages back to the system when the thread ends:
            // idle ones end after a second (tokio's default is ten), so a login burst's
            // memory is returned within seconds of it.
            .thread_keep_alive(std::time::Duration::from_secs(1))
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tessera::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error.message());
            error.exit_code()
        }
    }
}
