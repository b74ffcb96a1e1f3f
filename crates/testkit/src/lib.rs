//! The test harness every Tessera suite shares (a dev-dependency only):
//!
//! - the real server in process on an ephemeral port with a fresh SQLite file, seeded with the
//!   quickstart tenant, a browser-like HTTP client and an independent JWT verifier (the crate
//!   root, from `server.rs`);
//! - `dpop`: a DPoP client's key and proofs;
//! - `logs`: a tracing subscriber whose output the test reads back;
//! - `pg`: a throwaway PostgreSQL server started by the test;
//! - `process`: the real `tessera` binary as a child process, on a temporary database;
//! - `smtp`: an SMTP receiver that hands the test every mail;
//! - `client_key`: an application's key pair for private_key_jwt and its assertions.
//!
//! Real parts only: nothing here mocks what the project owns.

pub mod client_key;
pub mod dpop;
pub mod logs;
pub mod pg;
pub mod process;
mod server;
pub mod smtp;

pub use server::*;
