//! What every request passes through and every endpoint shares at the wire: parameters and
//! the `Authorization` header, CORS, security headers, the request deadline, the client's
//! address and throttles, metrics, error shapes for the framework's own refusals, TLS.
//! Knows no flow.

pub(crate) mod authorization;
pub(crate) mod client_ip;
pub(crate) mod cors;
pub(crate) mod deadline;
pub(crate) mod headers;
pub(crate) mod metrics;
pub(crate) mod params;
pub(crate) mod rejections;
pub(crate) mod throttle;
pub mod tls;
