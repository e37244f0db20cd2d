//! One accepted connection: TLS handshake (with its deadline), HTTP/1.1 with the header
//! deadline, the idle watchdog, and graceful close when the listener drains.
//!
//! The handshake runs on the connection's own task, so a slow client never holds up the
//! accept loop. The connection holds its slot (a semaphore permit) until it ends.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::tls::ServerTls;
use super::{ConnInfo, HandshakeHook, ListenerLimits, ListenerMetrics};
use crate::tls::HandshakeFailure;

/// What every connection of one listener shares.
pub(super) struct Shared<F> {
    pub(super) name: &'static str,
    pub(super) tls: Option<Arc<ServerTls>>,
    pub(super) limits: ListenerLimits,
    pub(super) metrics: Arc<ListenerMetrics>,
    pub(super) on_handshake_error: Option<HandshakeHook>,
    pub(super) make_service: F,
}

/// Decrements `active` when the connection ends, however it ends.
struct Active(Arc<ListenerMetrics>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection until it closes, times out or the listener drains.
pub(super) async fn run<F, S, Fut>(
    shared: Arc<Shared<F>>,
    tcp: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    drain: watch::Receiver<bool>,
) where
    F: Fn(ConnInfo) -> S + Send + Sync + 'static,
    S: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let _permit = permit;
    shared.metrics.active.fetch_add(1, Ordering::Relaxed);
    let _active = Active(shared.metrics.clone());
    let Some(tls) = &shared.tls else {
        let info = ConnInfo {
            peer,
            client_cert: None,
            tls_version: None,
        };
        let service = (shared.make_service)(info);
        return serve_http(&shared, tcp, peer, service, drain).await;
    };
    // The configuration in force now: a reload during this connection changes nothing here.
    let acceptor = TlsAcceptor::from(tls.config());
    let stream = match tokio::time::timeout(shared.limits.handshake_timeout, acceptor.accept(tcp))
        .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(error)) => {
            ListenerMetrics::inc(&shared.metrics.handshake_failures);
            let failure = HandshakeFailure::classify(&error);
            tracing::info!(listener = shared.name, %peer, %error, ?failure, "TLS handshake failed");
            if let Some(hook) = &shared.on_handshake_error {
                hook(peer, failure);
            }
            return;
        }
        Err(_) => {
            ListenerMetrics::inc(&shared.metrics.handshake_timeouts);
            tracing::info!(listener = shared.name, %peer, "TLS handshake timed out");
            return;
        }
    };
    let (_, session) = stream.get_ref();
    let info = ConnInfo {
        peer,
        client_cert: session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned()),
        tls_version: session.protocol_version().and_then(|v| v.as_str()),
    };
    let service = (shared.make_service)(info);
    serve_http(&shared, stream, peer, service, drain).await;
}

/// HTTP/1.1 keep-alive on `io` until the client closes, the connection idles out or the
/// listener drains (then the request in flight finishes first).
async fn serve_http<F, S, Fut, T>(
    shared: &Shared<F>,
    io: T,
    peer: SocketAddr,
    service: S,
    mut drain: watch::Receiver<bool>,
) where
    S: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = Arc::new(service);
    let svc = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req| {
            let busy = activity.begin();
            let answer = service(req);
            async move {
                let r = answer.await;
                drop(busy);
                Ok::<_, std::convert::Infallible>(r)
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(error) = r {
                    tracing::debug!(listener = shared.name, %peer, %error, "Connection ended with an error");
                }
                return;
            }
            _ = drain.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(shared.limits.idle_timeout), if !closing => {
                ListenerMetrics::inc(&shared.metrics.idle_closed);
                tracing::debug!(listener = shared.name, %peer, "Closing an idle connection");
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Requests in flight on one connection and when the last one started or ended.
#[derive(Debug)]
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `start` of the last request start or end.
    last_ms: AtomicU64,
}

/// Marks a request in flight until dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

// === impl Activity ===

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Release);
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Busy(self.clone())
    }

    /// Resolves once no request has been in flight for `limit`. A request that waits on
    /// its host (a Receive long poll) is not idleness.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Acquire));
            let deadline = last + limit;
            if self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= deadline {
                return;
            }
            // Busy or not yet due: look again at the deadline (or a full period later
            // when a request is in flight and the deadline has passed).
            let wake = if Instant::now() >= deadline {
                Instant::now() + limit
            } else {
                deadline
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}
