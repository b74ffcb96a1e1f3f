//! The CLI's integration tests: the real `tessera` binary, run as a child process on a
//! temporary database (the runner is `tessera_testkit::process`). One test binary, one
//! module per area; the adversarial suite is a binary of its own (`tests/adversarial/`).

/// The `tessera` binary under test: Cargo tells only this crate's tests where it is.
const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

mod actions;
mod admin;
mod admins;
mod backchannel;
mod backup;
mod cluster;
mod connections;
mod consent;
mod consent_page;
mod deploy;
mod dev;
mod dev_tls;
mod disk_full;
mod import;
mod keys_and_serve;
mod logs;
mod mfa;
mod postgres;
mod proxy;
mod rbac;
mod sessions;
mod sqlite_sync;
