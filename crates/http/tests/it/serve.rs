//! `tessera_http::serve` against real sockets: requests, slow and silent clients, TLS,
//! graceful shutdown. Every wait is bounded; timeouts under test are short.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use tessera_http::{ServeOptions, serve};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Long enough for any test to notice a connection that is not closed.
const BOUND: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(300);

struct Running {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// `GET /echo` with `Upgrade: echo`: answers 101 and then echoes whatever the client sends
/// on the taken-over connection.
async fn echo_upgrade(mut request: axum::extract::Request) -> axum::response::Response {
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let mut buf = [0u8; 1024];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    axum::response::Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(axum::body::Body::empty())
        .unwrap()
}

/// Serves `GET /` (answers the peer address), `GET /slow` (after 500 ms) and `/echo` (an
/// upgrade).
async fn start(options: ServeOptions) -> Running {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let slow_counted = calls.clone();
    let app = Router::new()
        .route(
            "/",
            get(move |ConnectInfo(peer): ConnectInfo<SocketAddr>| {
                counted.fetch_add(1, Ordering::SeqCst);
                async move { format!("peer={peer}") }
            }),
        )
        .route(
            "/slow",
            get(move || {
                slow_counted.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    "finished"
                }
            }),
        )
        .route("/echo", get(echo_upgrade));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, options, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        calls,
        stop: Some(stop),
        task,
    }
}

fn short_timeouts(tls: Option<Arc<rustls::ServerConfig>>) -> ServeOptions {
    ServeOptions {
        tls,
        header_read_timeout: SHORT,
        tls_handshake_timeout: SHORT,
        shutdown_grace: Duration::from_secs(5),
    }
}

/// Reads until the peer closes (or resets) the connection; `None` if it stays open.
async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(BOUND, read_all).await.ok()?;
    Some(received)
}

/// Reads one response (header, then `content-length` bytes of body) and returns it whole.
async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .expect("a response without content-length");
                if received.len() >= end + 4 + length {
                    return text;
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before the response was complete");
            received.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("no complete response")
}

async fn get_over<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

#[tokio::test]
async fn answers_with_the_peer_address() {
    let server = start(ServeOptions::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let response = get_over(&mut stream, "/").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let local = stream.local_addr().unwrap();
    assert!(response.ends_with(&format!("peer={local}")), "{response}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_header_is_disconnected() {
    let server = start(short_timeouts(None)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut stream)
        .await
        .expect("the connection stayed open after the header read timeout");
    assert!(
        !String::from_utf8_lossy(&received).contains("peer="),
        "the handler answered an incomplete request"
    );
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_client_dribbling_its_header_is_disconnected() {
    let server = start(short_timeouts(None)).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 50 ms: data keeps arriving, but the header is never complete in time.
    let dribble = tokio::spawn(async move {
        let header = b"GET / HTTP/1.1\r\nHost: test\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        for byte in header {
            if writer.write_all(&[*byte]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    });
    read_until_closed(&mut reader)
        .await
        .expect("a dribbling client kept its connection past the header read timeout");
    dribble.abort();
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let server = start(short_timeouts(None)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let received = read_until_closed(&mut stream)
        .await
        .expect("a silent connection stayed open");
    // hyper may answer 408 before closing; it must never be a handler's answer.
    assert!(!String::from_utf8_lossy(&received).contains("peer="));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let server = start(short_timeouts(None)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let first = get_over(&mut stream, "/").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // A second request right away still works on the same connection …
    let second = get_over(&mut stream, "/").await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    // … and then, idle, the connection is closed.
    read_until_closed(&mut stream)
        .await
        .expect("an idle keep-alive connection stayed open");
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

fn tls_pair() -> (Arc<rustls::ServerConfig>, tokio_rustls::TlsConnector) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().clone();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        Arc::new(server),
        tokio_rustls::TlsConnector::from(Arc::new(client)),
    )
}

#[tokio::test]
async fn serves_tls_with_the_peer_address() {
    let (server_tls, connector) = tls_pair();
    let server = start(short_timeouts(Some(server_tls))).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let response = get_over(&mut tls, "/").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(&format!("peer={local}")), "{response}");
}

#[tokio::test]
async fn a_client_that_never_completes_the_tls_handshake_is_dropped() {
    let (server_tls, _) = tls_pair();
    let server = start(short_timeouts(Some(server_tls))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Nothing sent: no ClientHello.
    let received = read_until_closed(&mut stream)
        .await
        .expect("a client without a handshake kept its connection");
    assert!(received.is_empty());
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_then_stops_accepting() {
    let mut server = start(ServeOptions::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    // The handler has started before shutdown is asked for.
    let started = async {
        while server.calls.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(BOUND, started)
        .await
        .expect("the handler never ran");
    let _ = server.stop.take().unwrap().send(());
    let response = read_response(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("finished"), "{response}");
    tokio::time::timeout(BOUND, &mut server.task)
        .await
        .expect("serve did not return after shutdown")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_connections_at_once() {
    let mut server = start(ServeOptions {
        shutdown_grace: Duration::from_secs(60),
        ..ServeOptions::default()
    })
    .await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let response = get_over(&mut idle, "/").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let _ = server.stop.take().unwrap().send(());
    // Well before the 60 s grace period: nothing was in flight.
    tokio::time::timeout(BOUND, &mut server.task)
        .await
        .expect("serve waited for an idle keep-alive connection")
        .unwrap()
        .unwrap();
    read_until_closed(&mut idle)
        .await
        .expect("the idle connection was left open");
}

#[tokio::test]
async fn a_handler_may_take_the_connection_over() {
    let server = start(ServeOptions::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: test\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(BOUND, async {
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
    })
    .await
    .expect("no 101 answer");
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream.write_all(b"not HTTP any more").await.unwrap();
    let mut echoed = [0u8; 17];
    tokio::time::timeout(BOUND, stream.read_exact(&mut echoed))
        .await
        .expect("nothing echoed")
        .unwrap();
    assert_eq!(&echoed, b"not HTTP any more");
}
