//! Client-facing listener: TCP accept loop, TLS handshake, HTTP/1.1 connections, drain.
//!
//! Owns connection-level limits (how many connections, how long a handshake or a request
//! header may take) and graceful shutdown. It knows nothing of WS-Man: each connection gets
//! a service built by the caller from [`ConnInfo`], which carries what only the connection
//! knows (peer address, verified client certificate) to the request pipeline.

pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// What the connection knows about the client.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The leaf certificate, present only when rustls verified it against the client CA.
    pub client_cert: Option<CertificateDer<'static>>,
    /// TLS protocol version negotiated, for the record.
    pub tls_version: Option<&'static str>,
}

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    pub max_connections: usize,
    /// TLS handshake and request-header deadline: slow clients are cut off here.
    pub handshake_timeout: Duration,
    /// How long open connections may finish their requests after shutdown starts.
    pub drain_timeout: Duration,
}

/// Called when a TLS handshake fails (a refused client certificate, a client speaking
/// plain HTTP or an old TLS version), so the caller can record it.
pub type HandshakeHook = Arc<dyn Fn(SocketAddr, &std::io::Error) + Send + Sync>;

/// Accepts connections until `shutdown` resolves, then drains open connections.
pub async fn serve<F, S, Fut>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    limits: ListenerLimits,
    on_handshake_error: HandshakeHook,
    make_service: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(ConnInfo) -> S + Clone + Send + 'static,
    S: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        // Wait for a free slot first: past the limit, new clients queue in the kernel's
        // backlog instead of costing us memory.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(error) => {
                    tracing::warn!(%error, "Accept failed");
                    // EMFILE and friends: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let make = make_service.clone();
        let watcher = graceful.watcher();
        let on_handshake_error = on_handshake_error.clone();
        // The handshake runs on the connection's own task so a slow client never holds up
        // the accept loop.
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
            let tls_stream = match handshake.await {
                Ok(Ok(s)) => s,
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "TLS handshake failed");
                    on_handshake_error(peer, &error);
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let (_, session) = tls_stream.get_ref();
            let info = ConnInfo {
                peer,
                client_cert: session
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.clone().into_owned()),
                tls_version: session.protocol_version().and_then(|v| v.as_str()),
            };
            let service = Arc::new(make(info));
            let svc = hyper::service::service_fn(move |req| {
                let service = service.clone();
                async move { Ok::<_, std::convert::Infallible>(service(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.handshake_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls_stream), svc);
            if let Err(error) = watcher.watch(conn).await {
                tracing::debug!(%peer, %error, "Connection ended with an error");
            }
        });
    }

    tracing::info!("Listener stopped accepting; draining connections");
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Drain timed out; closing remaining connections");
    }
}
