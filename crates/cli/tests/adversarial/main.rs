//! Tessera's adversarial suite: attacks a hostile client, user, upstream or operator mistake
//! would make, each with the refusal expected. One module per category (see `README.md` here);
//! every category prints how many of its cases held.
//!
//! Run it alone: `cargo nextest run -p tessera -E 'binary(adversarial)'`.

/// The `tessera` binary under test: Cargo tells only this crate's tests where it is.
const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

mod harness;
mod html;

mod action_redirects;
mod actions_admin;
mod actions_flows;
mod admin_identities;
mod audit_log;
mod backchannel_logout;
mod backup;
mod brute_force;
mod client_credentials;
mod connections;
mod csrf;
mod dashboard;
mod dashboard_streams;
mod databases;
mod device_flow;
mod dpop;
mod durability;
mod email_verification;
mod fuzz;
mod hosted_xss;
mod imports;
mod introspection;
mod invalidation;
mod linking;
mod log_streams;
mod management;
mod mfa;
mod mfa_api;
mod parsers;
mod passkeys;
mod password_grant;
mod private_key_jwt;
mod proxy;
mod pushed_requests;
mod races;
mod redirect;
mod remembered_browsers;
mod secrets;
mod upstream;
mod upstream_logout;
mod webauthn;
