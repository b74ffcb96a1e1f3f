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
//! - Protocol upgrades (WebSocket) are allowed, for handlers that take the connection over
//!   (`tessera proxy` tunnels them to its upstream).
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
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub mod tls;

/// How a listener treats its connections. `Default` is plain HTTP with the timeouts below.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Serve HTTPS with this configuration; plain HTTP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The time a client has to send a request's whole header (default 75 s). It also
    /// bounds how long an idle keep-alive connection stays open, which is why it is not
    /// shorter: hyper has one timer for both, and a client that blocks its event loop
    /// between two requests (a0deploy compiles its JSON schemas for half a minute on a slow
    /// machine) sends the next one on a socket the server has closed, which undici reports
    /// as "other side closed" without retrying. 75 s is nginx's keep-alive default.
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
            header_read_timeout: Duration::from_secs(75),
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
    // Every connection task holds a `Connection`; shutdown is announced through `stopping`
    // and is over when the last `Connection` is dropped.
    let (stopping, _) = watch::channel(false);
    let (open, all_closed) = watch::channel(());
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
        let connection = Connection {
            peer,
            app: app.clone(),
            options: options.clone(),
            stopping: stopping.subscribe(),
            _open: all_closed.clone(),
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => connection.serve(stream).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(connection.options.tls_handshake_timeout, handshake)
                            .await
                    {
                        connection.serve(tls).await;
                    }
                }
            }
        });
    }
    drop(listener);
    drop(all_closed);
    let _ = stopping.send(true);
    tokio::select! {
        () = open.closed() => {}
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!(grace = ?options.shutdown_grace, "connections still open after the shutdown grace period; closing them");
        }
    }
    Ok(())
}

/// One accepted connection, before and while it is served.
struct Connection {
    peer: SocketAddr,
    app: Router,
    options: Arc<ServeOptions>,
    /// Turns `true` when the server shuts down.
    stopping: watch::Receiver<bool>,
    /// Held until the connection ends: the server waits for all of these on shutdown.
    _open: watch::Receiver<()>,
}

impl Connection {
    /// Serves HTTP/1.1 on `stream` to its end, with the peer address in every request.
    /// Protocol upgrades (WebSocket) are allowed: a handler may take the connection over
    /// with `hyper::upgrade::on`; the server then no longer tracks it.
    async fn serve<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let service =
            self.app
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    request
                });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.options.header_read_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        tokio::pin!(connection);
        let mut asked_to_stop = *self.stopping.borrow();
        loop {
            if asked_to_stop {
                // Finish the request in flight, then close; an idle connection closes now.
                connection.as_mut().graceful_shutdown();
                let _ = connection.as_mut().await;
                return;
            }
            tokio::select! {
                // An error here is the client's doing (reset, timeout, bad request).
                _ = connection.as_mut() => return,
                changed = self.stopping.changed() => {
                    // A dropped sender means the server is gone: stop as well.
                    asked_to_stop = changed.is_err() || *self.stopping.borrow();
                }
            }
        }
    }
}
