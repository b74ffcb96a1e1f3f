//! Tessera's domain: resource servers (APIs), applications, users, grants, scope
//! resolution, PKCE, redirect-URI matching and the claims of the tokens we issue.
//!
//! Architecture invariant: this crate does no IO. It does not know HTTP, SQL or the
//! clock; callers pass `now` (Unix seconds) and hand it what storage returned.
//! Randomness comes from the operating system through `ids`.

pub mod claims;
pub mod connection;
pub mod consent;
pub mod custom_claims;
pub mod device;
pub mod grant;
pub mod ids;
pub mod model;
pub mod pkce;
pub mod redirect;
pub mod request;
pub mod scope;
pub mod system;
pub mod totp;
pub mod validate;
pub mod webauthn;

pub use model::*;
