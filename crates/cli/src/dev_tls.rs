//! HTTPS for `tessera dev --tls`: a local certificate authority, and a certificate for
//! localhost signed by it, kept under `<data-dir>/tls/`.
//!
//! The CA is made once and then reused, so a browser or system store that trusts it keeps
//! trusting later runs. It can vouch for nothing but this machine: no intermediates (path
//! length 0), name constraints `localhost`, `127.0.0.0/8` and `::1`, server authentication
//! only. The server's certificate (`localhost`, `127.0.0.1`, `::1`) is issued again when it
//! is missing, unreadable, no longer verifies against the CA for each of those names now and
//! 30 days from now (expiry, other names, another CA), or does not match its key.
//!
//! Private keys are created with mode 0600 (in a 0700 directory) and never printed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, PublicKeyData as _,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{CliError, CliResult};
use crate::private_files::{create_private_dir, warn_if_open_to_others};

/// The CA's common name, as trust stores list it.
pub const CA_NAME: &str = "Tessera Development CA";
/// The names the server's certificate is valid for.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The directory under `--data-dir`, and the files in it.
pub const TLS_DIR: &str = "tls";
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const CERT_FILE: &str = "localhost.pem";
pub const KEY_FILE: &str = "localhost-key.pem";

const DAY: Duration = Duration::from_secs(24 * 3600);
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Within the 825 days Apple platforms accept from a locally trusted CA.
const CERT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// A certificate (or the CA) expiring sooner than this is replaced.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The local CA and the server's certificate, ready to serve.
pub struct DevTls {
    /// `<data-dir>/tls`, absolute when the data directory could be resolved.
    pub dir: PathBuf,
    /// The CA certificate to trust.
    pub ca_cert_path: PathBuf,
    /// The CA certificate (PEM), e.g. for a client that should trust it.
    pub ca_cert_pem: String,
    /// The server's TLS configuration (its certificate and key).
    pub server_config: Arc<rustls::ServerConfig>,
    /// Whether this run created the CA (it must then be trusted, again).
    pub created_ca: bool,
    /// Why the server's certificate was issued on this run; `None` when it was reused.
    pub issued_certificate: Option<String>,
}

impl std::fmt::Debug for DevTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevTls")
            .field("dir", &self.dir)
            .field("created_ca", &self.created_ca)
            .field("issued_certificate", &self.issued_certificate)
            .finish_non_exhaustive()
    }
}

/// The CA and the server's certificate under `<data_dir>/tls`, created or renewed as needed.
pub fn ensure(data_dir: &Path) -> CliResult<DevTls> {
    ensure_at(data_dir, SystemTime::now())
}

/// [`ensure`] as if the clock said `now`.
pub fn ensure_at(data_dir: &Path, now: SystemTime) -> CliResult<DevTls> {
    let dir = data_dir.join(TLS_DIR);
    create_private_dir(&dir)?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let ca_key_path = dir.join(CA_KEY_FILE);
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);

    let (ca, created_ca) = match load_ca(&ca_cert_path, &ca_key_path, now)? {
        Some(ca) => (ca, false),
        None => (create_ca(&ca_cert_path, &ca_key_path, now)?, true),
    };
    let existing = if created_ca {
        Err("the CA is new".to_string())
    } else {
        load_certificate(&cert_path, &key_path, &ca, now)?
    };
    let (cert_pem, key_pem, issued_certificate) = match existing {
        Ok((cert_pem, key_pem)) => (cert_pem, key_pem, None),
        Err(reason) => {
            let (cert_pem, key_pem) = issue_certificate(&ca, &cert_path, &key_path, now)?;
            (cert_pem, key_pem, Some(reason))
        }
    };
    let server_config =
        tessera_server::tls::server_config(cert_pem.as_bytes(), key_pem.as_bytes())?;
    Ok(DevTls {
        dir,
        ca_cert_path,
        ca_cert_pem: ca.cert_pem,
        server_config,
        created_ca,
        issued_certificate,
    })
}

struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
    /// Unix seconds.
    not_after: i64,
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn tls_error(what: &str, error: impl std::fmt::Display) -> CliError {
    CliError::Invalid(format!("{what}: {error}"))
}

/// The CA in `cert_path` + `key_path` if both are there, belong together, are a CA and
/// stay valid for `RENEW_BEFORE`; `None` means "make a new one".
fn load_ca(cert_path: &Path, key_path: &Path, now: SystemTime) -> CliResult<Option<Ca>> {
    let (Some(cert_pem), Some(key_pem)) = (read_optional(cert_path)?, read_optional(key_path)?)
    else {
        return Ok(None);
    };
    warn_if_open_to_others(key_path, "private key file");
    let Ok(cert_der) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return Ok(None);
    };
    let Ok(key) = KeyPair::from_pem(&key_pem) else {
        return Ok(None);
    };
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(&cert_der) else {
        return Ok(None);
    };
    let is_ca = parsed
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    let not_after = parsed.validity().not_after.timestamp();
    let key_matches =
        parsed.tbs_certificate.subject_pki.raw == key.subject_public_key_info().as_slice();
    if !is_ca || !key_matches || not_after < unix_seconds(now + RENEW_BEFORE) {
        return Ok(None);
    }
    Ok(Some(Ca {
        cert_pem,
        cert_der: cert_der.into_owned(),
        key,
        not_after,
    }))
}

fn create_ca(cert_path: &Path, key_path: &Path, now: SystemTime) -> CliResult<Ca> {
    let key = KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, CA_NAME);
    // Each CA gets its own subject, so two data directories' CAs in one trust store stay
    // distinguishable.
    name.push(
        DnType::OrganizationalUnitName,
        format!(
            "tessera dev, local use only, {}",
            tessera_core::ids::hex_id(4)
        ),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 0], [255, 0, 0, 0])),
            GeneralSubtree::IpAddress(CidrSubnet::V6(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                [0xff; 16],
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    params.not_before = (now - DAY).into();
    params.not_after = (now + CA_LIFETIME).into();
    let cert = params
        .self_signed(&key)
        .map_err(|e| tls_error("CA certificate", e))?;
    // Key first: a CA certificate never exists without its key.
    write_file(key_path, &key.serialize_pem(), 0o600)?;
    let cert_pem = cert.pem();
    write_file(cert_path, &cert_pem, 0o644)?;
    Ok(Ca {
        cert_pem,
        cert_der: cert.der().clone(),
        key,
        not_after: unix_seconds(now + CA_LIFETIME),
    })
}

/// The server's certificate and key (PEM) if they can be reused, else why not.
#[allow(clippy::type_complexity)]
fn load_certificate(
    cert_path: &Path,
    key_path: &Path,
    ca: &Ca,
    now: SystemTime,
) -> CliResult<Result<(String, String), String>> {
    let (Some(cert_pem), Some(key_pem)) = (read_optional(cert_path)?, read_optional(key_path)?)
    else {
        return Ok(Err("there was none".into()));
    };
    warn_if_open_to_others(key_path, "private key file");
    match check_certificate(&cert_pem, &key_pem, &ca.cert_der, now) {
        Ok(()) => Ok(Ok((cert_pem, key_pem))),
        Err(reason) => Ok(Err(reason)),
    }
}

/// Whether `cert_pem` verifies against the CA for every name in [`SERVER_NAMES`], now and
/// `RENEW_BEFORE` from now, as a rustls client would check it, and matches `key_pem`.
fn check_certificate(
    cert_pem: &str,
    key_pem: &str,
    ca_der: &CertificateDer<'static>,
    now: SystemTime,
) -> Result<(), String> {
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|_| "the certificate file could not be read".to_string())?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| "the key file could not be read".to_string())?;
    let signing_key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|_| "the key file could not be read".to_string())?;
    rustls::sign::CertifiedKey::new(vec![cert.clone()], signing_key)
        .keys_match()
        .map_err(|_| "the certificate does not match its key".to_string())?;
    let verifier = ca_verifier(ca_der).map_err(|e| e.to_string())?;
    for time in [now, now + RENEW_BEFORE] {
        let time = UnixTime::since_unix_epoch(
            time.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        for name in SERVER_NAMES {
            let server_name = ServerName::try_from(name).expect("the names are valid");
            verifier
                .verify_server_cert(&cert, &[], &server_name, &[], time)
                .map_err(|e| format!("the previous one did not verify for {name}: {e}"))?;
        }
    }
    Ok(())
}

/// A rustls (webpki) verifier that trusts `ca_der` and nothing else.
fn ca_verifier(ca_der: &CertificateDer<'static>) -> CliResult<Arc<WebPkiServerVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca_der.clone())
        .map_err(|e| tls_error("the CA certificate", e))?;
    WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .map_err(|e| tls_error("the CA certificate", e))
}

fn issue_certificate(
    ca: &Ca,
    cert_path: &Path,
    key_path: &Path,
    now: SystemTime,
) -> CliResult<(String, String)> {
    let key = KeyPair::generate().map_err(|e| tls_error("certificate key", e))?;
    let names: Vec<String> = SERVER_NAMES.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).map_err(|e| tls_error("certificate", e))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "localhost");
    name.push(DnType::OrganizationName, CA_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = (now - Duration::from_secs(3600)).into();
    let not_after = unix_seconds(now + CERT_LIFETIME).min(ca.not_after);
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after)
        .map_err(|e| tls_error("certificate validity", e))?;
    let issuer = Issuer::from_ca_cert_der(&ca.cert_der, &ca.key)
        .map_err(|e| tls_error("the CA certificate", e))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| tls_error("certificate", e))?;
    let key_pem = key.serialize_pem();
    let cert_pem = cert.pem();
    write_file(key_path, &key_pem, 0o600)?;
    write_file(cert_path, &cert_pem, 0o644)?;
    Ok((cert_pem, key_pem))
}

fn read_optional(path: &Path) -> CliResult<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // Not UTF-8: not a PEM file we wrote; replace it.
        Err(error) if error.kind() == std::io::ErrorKind::InvalidData => Ok(None),
        Err(error) => Err(CliError::io(
            format!("cannot read {}", path.display()),
            error,
        )),
    }
}

/// Replaces `path` with `contents`: written to a new file created with `mode` (so a key
/// is never readable by others, not even for a moment), then renamed over `path`.
fn write_file(path: &Path, contents: &str, mode: u32) -> CliResult<()> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let error = |e| CliError::io(format!("cannot write {}", path.display()), e);
    // A leftover of an interrupted run.
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&temporary, path)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn read(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(TLS_DIR).join(file)).unwrap()
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn roots(ca_pem: &str) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        Arc::new(roots)
    }

    /// A full TLS handshake, in memory, between `server` and a rustls client that trusts
    /// only `ca_pem` and connects to `name`.
    fn handshake(
        server: Arc<rustls::ServerConfig>,
        ca_pem: &str,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let client_config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(ca_pem))
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut client = ClientConnection::new(Arc::new(client_config), name)?;
        let mut server = ServerConnection::new(server)?;
        for _ in 0..10 {
            let mut buffer = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buffer).unwrap();
            }
            server.read_tls(&mut buffer.as_slice()).unwrap();
            server.process_new_packets()?;
            let mut buffer = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut buffer).unwrap();
            }
            client.read_tls(&mut buffer.as_slice()).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not finish");
    }

    /// webpki's verdict on `cert_pem` for `name` at `time`, trusting only `ca_pem`.
    fn verify_at(
        cert_pem: &str,
        ca_pem: &str,
        name: &str,
        time: SystemTime,
    ) -> Result<(), rustls::Error> {
        let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca_pem), provider())
            .build()
            .unwrap();
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let time = UnixTime::since_unix_epoch(time.duration_since(SystemTime::UNIX_EPOCH).unwrap());
        verifier
            .verify_server_cert(
                &cert,
                &[],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                time,
            )
            .map(|_| ())
    }

    /// A certificate for `names` signed with the CA's key from the files on disk.
    fn sign_with_ca(data_dir: &Path, names: &[&str]) -> (String, String) {
        let ca_key = KeyPair::from_pem(&read(data_dir, CA_KEY_FILE)).unwrap();
        let issuer = Issuer::from_ca_cert_pem(&read(data_dir, CA_CERT_FILE), ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = (SystemTime::now() - DAY).into();
        params.not_after = (SystemTime::now() + 100 * DAY).into();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn creates_a_ca_and_a_localhost_certificate_with_private_keys_0600() {
        let data = tempfile::tempdir().unwrap();
        let tls = ensure(data.path()).unwrap();
        assert!(tls.created_ca);
        assert!(tls.issued_certificate.is_some());
        let dir = data.path().join(TLS_DIR);
        assert_eq!(
            tls.ca_cert_path,
            dir.canonicalize().unwrap().join(CA_CERT_FILE)
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.join(CA_CERT_FILE)) & 0o600, 0o600);
        assert_eq!(tls.ca_cert_pem, read(data.path(), CA_CERT_FILE));
        assert!(read(data.path(), CA_KEY_FILE).contains("PRIVATE KEY"));
        assert!(read(data.path(), KEY_FILE).contains("PRIVATE KEY"));
        assert!(!format!("{tls:?}").contains("PRIVATE"));
        // Nothing else is left in the directory (no temporary files).
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [CA_KEY_FILE, CA_CERT_FILE, KEY_FILE, CERT_FILE]);

        let ca_der = CertificateDer::from_pem_slice(tls.ca_cert_pem.as_bytes()).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let subject = ca.subject().to_string();
        assert!(subject.contains(&format!("CN={CA_NAME}")), "{subject}");
        let constraints = ca.basic_constraints().unwrap().unwrap().value;
        assert!(constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));
    }

    #[test]
    fn the_certificate_passes_a_real_handshake_for_each_name_against_the_ca_only() {
        let data = tempfile::tempdir().unwrap();
        let tls = ensure(data.path()).unwrap();
        for name in SERVER_NAMES {
            handshake(tls.server_config.clone(), &tls.ca_cert_pem, name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let other_name = handshake(tls.server_config.clone(), &tls.ca_cert_pem, "example.com");
        assert!(other_name.is_err(), "{other_name:?}");
        // Another data directory's CA does not vouch for this certificate.
        let elsewhere = tempfile::tempdir().unwrap();
        let other_ca = ensure(elsewhere.path()).unwrap().ca_cert_pem;
        assert_ne!(other_ca, tls.ca_cert_pem);
        let untrusted = handshake(tls.server_config.clone(), &other_ca, "localhost");
        assert!(untrusted.is_err(), "{untrusted:?}");
    }

    #[test]
    fn the_ca_can_only_vouch_for_this_machine() {
        let data = tempfile::tempdir().unwrap();
        let ca = ensure(data.path()).unwrap().ca_cert_pem;
        let (allowed, _) = sign_with_ca(data.path(), &["localhost", "127.0.0.2"]);
        verify_at(&allowed, &ca, "127.0.0.2", SystemTime::now()).unwrap();
        for name in ["example.com", "10.0.0.1", "localhost.example.com"] {
            let (cert, _) = sign_with_ca(data.path(), &[name]);
            let verdict = verify_at(&cert, &ca, name, SystemTime::now());
            assert!(verdict.is_err(), "{name}: {verdict:?}");
        }
    }

    #[test]
    fn a_second_run_reuses_the_ca_and_the_certificate() {
        let data = tempfile::tempdir().unwrap();
        ensure(data.path()).unwrap();
        let files =
            || [CA_CERT_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE].map(|f| read(data.path(), f));
        let before = files();
        let again = ensure(data.path()).unwrap();
        assert!(!again.created_ca);
        assert_eq!(again.issued_certificate, None);
        assert_eq!(files(), before);
    }

    #[test]
    fn a_certificate_close_to_expiry_is_issued_again_by_the_same_ca() {
        let data = tempfile::tempdir().unwrap();
        ensure(data.path()).unwrap();
        let ca = read(data.path(), CA_CERT_FILE);
        let cert = read(data.path(), CERT_FILE);
        let later = SystemTime::now() + 340 * DAY;
        // Still valid then, but not 30 days after.
        verify_at(&cert, &ca, "localhost", later).unwrap();

        let renewed = ensure_at(data.path(), later).unwrap();
        assert!(!renewed.created_ca);
        assert!(renewed.issued_certificate.is_some());
        assert_eq!(read(data.path(), CA_CERT_FILE), ca);
        let new_cert = read(data.path(), CERT_FILE);
        assert_ne!(new_cert, cert);
        for name in SERVER_NAMES {
            verify_at(&new_cert, &ca, name, later + 300 * DAY).unwrap();
        }
        assert_eq!(mode(&data.path().join(TLS_DIR).join(KEY_FILE)), 0o600);
        let again = ensure_at(data.path(), later).unwrap();
        assert_eq!(again.issued_certificate, None);
    }

    #[test]
    fn a_certificate_for_other_names_or_with_another_key_is_issued_again() {
        let data = tempfile::tempdir().unwrap();
        ensure(data.path()).unwrap();
        let dir = data.path().join(TLS_DIR);
        let (cert, key) = sign_with_ca(data.path(), &["localhost"]);
        std::fs::write(dir.join(CERT_FILE), &cert).unwrap();
        std::fs::write(dir.join(KEY_FILE), &key).unwrap();
        let reason = ensure(data.path()).unwrap().issued_certificate.unwrap();
        assert!(reason.contains("127.0.0.1"), "{reason}");
        verify_at(
            &read(data.path(), CERT_FILE),
            &read(data.path(), CA_CERT_FILE),
            "::1",
            SystemTime::now(),
        )
        .unwrap();

        std::fs::write(
            dir.join(KEY_FILE),
            KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let reason = ensure(data.path()).unwrap().issued_certificate.unwrap();
        assert!(reason.contains("does not match its key"), "{reason}");
        assert!(ensure(data.path()).unwrap().issued_certificate.is_none());
    }

    #[test]
    fn a_missing_broken_or_expiring_ca_is_replaced_with_its_certificate() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join(TLS_DIR);
        let first = ensure(data.path()).unwrap().ca_cert_pem;

        std::fs::remove_file(dir.join(CA_KEY_FILE)).unwrap();
        let second = ensure(data.path()).unwrap();
        assert!(second.created_ca);
        assert_ne!(second.ca_cert_pem, first);
        for name in SERVER_NAMES {
            handshake(second.server_config.clone(), &second.ca_cert_pem, name).unwrap();
        }

        std::fs::write(dir.join(CA_CERT_FILE), "not a certificate").unwrap();
        let third = ensure(data.path()).unwrap();
        assert!(third.created_ca);
        assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);

        let near_its_end = SystemTime::now() + CA_LIFETIME - 10 * DAY;
        assert!(ensure_at(data.path(), near_its_end).unwrap().created_ca);
    }
}
