//! Integration tests of tessera-guard through its public API only: no network beyond
//! loopback servers the tests start themselves.

mod common;
mod dpop;
mod jwks;
mod requirements;
mod responses;
mod security;
