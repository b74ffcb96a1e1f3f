//! The CLI's integration tests: the real `tessera` binary, run as a child process on a
//! temporary database (the runner is `common`). One test binary, one module per area; the
//! adversarial suite is a binary of its own (`tests/adversarial/`).

// The runner of the real `tessera` binary, shared with the adversarial suite.
#[path = "../common/mod.rs"]
mod common;

mod admin;
mod consent;
mod consent_page;
mod dev;
mod dev_tls;
mod disk_full;
mod keys_and_serve;
mod postgres;
mod proxy;
mod rbac;
