//! The rustls configuration of an HTTPS listener, from PEM (rustls on aws-lc-rs, the
//! workspace's one crypto backend). Shared by `tessera serve`/`dev` and `tessera proxy`.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What is wrong with the certificate or the key. The messages never quote the key file:
/// a malformed PEM line could hold key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// The certificate chain PEM has no usable certificate.
    Certificate(String),
    /// The private key PEM has no usable key.
    PrivateKey(String),
    /// rustls refused the pair, e.g. the key does not belong to the certificate.
    Refused(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Certificate(reason) => write!(f, "certificate: {reason}"),
            TlsError::PrivateKey(reason) => write!(f, "private key: {reason}"),
            TlsError::Refused(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for TlsError {}

/// A TLS server configuration (HTTP/1.1 by ALPN) from a PEM certificate chain, leaf first,
/// and a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate(pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(TlsError::Certificate(
            "no certificate in the PEM file (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::PrivateKey(
            "no private key in the PEM file (-----BEGIN PRIVATE KEY-----, or RSA / EC PRIVATE KEY)"
                .into(),
        ),
        other => TlsError::PrivateKey(pem_problem(&other)),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Refused(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                TlsError::Refused("the private key is not the certificate's".into())
            }
            other => TlsError::Refused(other.to_string()),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A PEM parse error in words, without the offending line (rustls' message quotes it).
fn pem_problem(error: &pem::Error) -> String {
    match error {
        pem::Error::NoItemsFound => "nothing in PEM format".into(),
        pem::Error::IllegalSectionStart { .. } => "a malformed -----BEGIN line".into(),
        pem::Error::MissingSectionEnd { .. } => "a PEM section without its -----END line".into(),
        pem::Error::Base64Decode(_) => "a PEM section that is not valid base64".into(),
        pem::Error::SectionTooLarge => "a PEM section too large to be a certificate or key".into(),
        _ => "not a valid PEM file".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (certified.cert.pem(), certified.signing_key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_make_a_configuration() {
        let (cert, key) = pair();
        let config = server_config(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_material_is_named_without_quoting_the_key() {
        let (cert, key) = pair();
        let secret_line = format!("-----BEGIN PRIVATE KEY----- {}\n", &key[28..60]);
        let cases = [
            (
                b"garbage".to_vec(),
                key.clone().into_bytes(),
                "certificate: no certificate",
            ),
            (
                cert.clone().into_bytes(),
                b"garbage".to_vec(),
                "private key: no private key",
            ),
            (
                key.clone().into_bytes(),
                cert.clone().into_bytes(),
                "certificate: no certificate",
            ),
            (
                cert.clone().into_bytes(),
                secret_line.into_bytes(),
                "private key: a malformed",
            ),
            (
                cert.clone().into_bytes(),
                key.as_bytes()[..key.len() - 30].to_vec(),
                "private key: a PEM section without",
            ),
            (
                cert.clone().into_bytes(),
                pair().1.into_bytes(),
                "the private key is not the certificate's",
            ),
        ];
        for (cert_pem, key_pem, expected) in cases {
            let error = server_config(&cert_pem, &key_pem).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error}");
            assert!(!error.contains(&key[28..60]), "{error}");
        }
    }
}
