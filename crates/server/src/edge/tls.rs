//! HTTPS configuration: rustls on aws-lc-rs (the workspace's one crypto backend). The
//! loader lives in `tessera-http`, shared with `tessera proxy`; the connections themselves
//! are served by `tessera_http::serve`, as plain HTTP is.

use std::sync::Arc;

use crate::ServerError;

/// A TLS server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    tessera_http::tls::server_config(cert_chain_pem, key_pem)
        .map_err(|error| ServerError::Tls(error.to_string()))
}
