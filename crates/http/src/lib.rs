//! How Tessera's listeners serve connections: the authorization server, `tessera proxy`
//! and `tessera dev`'s sample SPA and API all go through [`serve`], so they share one set
//! of defences against slow or silent clients and one graceful shutdown.
//!
//! - HTTP/1.1, over plain TCP or TLS (rustls on aws-lc-rs).
//! - A client must send each request's header within [`ServeOptions::header_read_timeout`]
//!   (counted from when the server starts waiting for it: a new connection, or an idle
//!   keep-alive one). A client that dribbles a header byte by byte, or opens connections
//!   and sends nothing, is disconnected instead of holding a task forever.
//! - A TLS handshake must finish within [`ServeOptions::tls_handshake_timeout`].
//! - Every request carries the peer address as axum's `ConnectInfo<SocketAddr>`.
//! - On shutdown: stop accepting, let requests in flight finish, close idle connections,
//!   and give up on the rest after [`ServeOptions::shutdown_grace`].
//!
//! This crate knows nothing of OAuth, tokens or routes: it takes any axum `Router`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How a listener treats its connections. `Default` is plain HTTP with the timeouts below.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Serve HTTPS with this configuration; plain HTTP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The time a client has to send a request's whole header (default 30 s). It also
    /// bounds how long an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// The time a client has to complete the TLS handshake (default 10 s).
    pub tls_handshake_timeout: Duration,
    /// After shutdown is asked for, how long open connections may take to finish their
    /// requests before they are dropped (default 10 s).
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            tls: None,
            header_read_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ServeOptions {
    /// The defaults, over TLS when `tls` is given.
    pub fn with_tls(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        ServeOptions {
            tls,
            ..ServeOptions::default()
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits
/// (at most [`ServeOptions::shutdown_grace`]) for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = Arc::new(options);
    let acceptor = options.tls.clone().map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let options = options.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, peer, app, &options, watcher).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(options.tls_handshake_timeout, handshake).await
                    {
                        serve_connection(tls, peer, app, &options, watcher).await;
                    }
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!(grace = ?options.shutdown_grace, "connections still open after the shutdown grace period; closing them");
        }
    }
    Ok(())
}

/// Serves one HTTP/1.1 connection of `app` to its end, the peer address in every request.
async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    options: &ServeOptions,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut request: axum::http::Request<Incoming>| {
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer));
        request
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    // An error here is the client's doing (reset, timeout, bad request): nothing to report.
    let _ = watcher.watch(connection).await;
}
