//! Serving HTTPS: the same server behind rustls, with the cookie and header changes HTTPS
//! brings (`__Host-` cookies, `Secure`, HSTS unless the issuer is this machine).

use std::sync::Arc;

use serde_json::Value;
use tessera_testkit::*;

/// A minimal HTTPS client (tokio-rustls, HTTP/1.1, `Connection: close`): enough to
/// check what the server answers without giving the workspace's reqwest a TLS stack.
struct Https {
    connector: tokio_rustls::TlsConnector,
    addr: String,
    cookies: Vec<String>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl Https {
    fn new(ca_pem: &str, base: &str) -> Self {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Https {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            addr: base.trim_start_matches("https://").to_string(),
            cookies: Vec::new(),
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, String)]>,
    ) -> Reply {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
            .unwrap()
            .to_owned();
        let mut tls = self.connector.connect(name, tcp).await.unwrap();
        let body = form.map(|pairs| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                s.append_pair(k, v);
            }
            s.finish()
        });
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if !self.cookies.is_empty() {
            head.push_str(&format!("Cookie: {}\r\n", self.cookies.join("; ")));
        }
        if let Some(body) = &body {
            head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(body.as_deref().unwrap_or(""));
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let reply = Reply {
            status,
            headers,
            body: body.to_string(),
        };
        for cookie in reply.set_cookies() {
            let pair = cookie.split(';').next().unwrap().to_string();
            let name = pair.split('=').next().unwrap().to_string();
            self.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            self.cookies.push(pair);
        }
        reply
    }
}

#[tokio::test]
async fn https_serves_the_same_endpoints_with_secure_cookies() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let tls = tessera_server::tls::server_config(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let server = spawn_with(|config| config.tls = Some(tls)).await;
    assert!(
        server.issuer.starts_with("https://127.0.0.1:"),
        "{}",
        server.issuer
    );
    let mut client = Https::new(&cert_pem, &server.base);

    let discovery = client
        .request("GET", "/.well-known/openid-configuration", None)
        .await;
    assert_eq!(discovery.status, 200);
    // HSTS would hold for 127.0.0.1 on every port: not for a loopback issuer.
    assert_eq!(discovery.header("strict-transport-security"), None);
    let doc: Value = serde_json::from_str(&discovery.body).unwrap();
    assert_eq!(doc["issuer"], serde_json::json!(server.issuer));

    // The login page sets __Host- cookies with Secure; the session cookie and the CSRF
    // cookie binding the login transaction allow the cross-site iframe of silent
    // authentication (SameSite=None).
    let url = server.authorize_url(&[("response_type", "token"), ("scope", "openid")]);
    let path = url.trim_start_matches(&server.base).to_string();
    let response = client.request("GET", &path, None).await;
    assert_eq!(response.status, 302);
    let csrf_cookie = response.set_cookies()[0].to_string();
    assert!(
        csrf_cookie.starts_with("__Host-tessera_csrf=")
            && csrf_cookie.contains("; Secure")
            && csrf_cookie.contains("SameSite=None"),
        "{csrf_cookie}"
    );
    let login = response.header("location").unwrap().to_string();
    let page = client.request("GET", &login, None).await.body;
    let form = [
        ("state", hidden_field(&page, "state")),
        ("csrf", hidden_field(&page, "csrf")),
        ("username", server.user_email.clone()),
        ("password", PASSWORD.to_string()),
    ];
    let response = client.request("POST", "/u/login", Some(&form)).await;
    assert_eq!(response.status, 303);
    let session_cookie = response.set_cookies()[0].to_string();
    assert!(
        session_cookie.starts_with("__Host-tessera_session="),
        "{session_cookie}"
    );
    assert!(
        session_cookie.contains("SameSite=None")
            && session_cookie.contains("; Secure")
            && session_cookie.contains("HttpOnly")
    );
    let resume = response.header("location").unwrap().to_string();
    let response = client.request("GET", &resume, None).await;
    let params = params_of(response.header("location").unwrap());
    assert!(params.contains_key("access_token"));

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(server.url("/healthz").replace("https://", "http://"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test]
async fn hsts_for_a_public_issuer_not_for_localhost() {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    for (host, hsts) in [
        ("auth.example.test", true),
        ("localhost", false),
        ("dev.localhost", false),
        ("[::1]", false),
    ] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tls =
            tessera_server::tls::server_config(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
        let server = spawn_with(|config| {
            config.tls = Some(tls);
            config.listen = format!("127.0.0.1:{port}").parse().unwrap();
            config.issuer = Some(format!("https://{host}:{port}/"));
        })
        .await;
        assert_eq!(server.issuer, format!("https://{host}:{port}/"));
        let mut client = Https::new(&cert_pem, &format!("https://127.0.0.1:{port}"));
        for path in ["/.well-known/openid-configuration", "/healthz"] {
            let header = client
                .request("GET", path, None)
                .await
                .header("strict-transport-security")
                .map(str::to_string);
            if hsts {
                assert_eq!(header.as_deref(), Some("max-age=31536000"), "{host}{path}");
            } else {
                assert_eq!(header, None, "{host}{path}");
            }
        }
    }
}

#[test]
fn bad_certificate_material_is_a_clear_error() {
    let error = tessera_server::tls::server_config(b"not a certificate", b"not a key").unwrap_err();
    assert!(error.to_string().starts_with("TLS: "), "{error}");
}
