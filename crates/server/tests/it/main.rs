//! The server's integration tests: the real server in process on an ephemeral port, over
//! real HTTP (see `tessera-testkit`). One test binary, one module per area; nextest runs
//! each test in a process of its own, so a test may still set process-wide state (e.g.
//! `password_reset` installs the global tracing subscriber).

mod action_redirects;
mod actions;
mod actions_admin;
mod actions_policies;
mod admin;
mod admin_identities;
mod audit_log;
mod backchannel_logout;
mod conformance;
mod consent;
mod databases;
mod dbconnections;
mod device_flow;
mod dpop;
mod email_provider;
mod email_verification;
mod error_shapes;
mod federation;
mod federation_oauth2;
mod flows;
mod hybrid;
mod introspection;
mod log_streams;
mod log_streams_cluster;
mod logs;
mod management;
mod metrics;
mod mfa;
mod mfa_api;
mod passkeys;
mod password_grant;
mod password_reset;
mod postgres;
mod private_key_jwt;
mod pushed_requests;
mod rbac;
mod refresh;
mod remembered_browsers;
mod security;
mod sessions;
mod sqlite_kept;
mod tenant_cluster;
mod throttles_cluster;
mod tls;
mod webauthn;
