//! One accepted connection: TLS handshake (with its deadline), HTTP/1.1 with the header
//! deadline, the idle watchdog, and graceful close when the listener drains.
//!
//! The handshake runs on the connection's own task, so a slow client never holds up the
//! accept loop. The connection holds its slot (a semaphore permit) until it ends.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::per_source::SourceSlot;
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
    (permit, source): (OwnedSemaphorePermit, SourceSlot),
    drain: watch::Receiver<bool>,
) where
    F: Fn(ConnInfo) -> S + Send + Sync + 'static,
    S: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let _permit = permit;
    shared.metrics.active.fetch_add(1, Ordering::Relaxed);
    let _active = Active(shared.metrics.clone());
    let started = Instant::now();
    let limits = shared.limits;
    // A client speaks first (a ClientHello, or a request over plain HTTP), at once: a
    // socket that stays silent gives its slot back long before the handshake or idle
    // deadline. Over TLS the handshake deadline still bounds it.
    let first_byte = match shared.tls {
        Some(_) => limits.first_byte_timeout.min(limits.handshake_timeout),
        None => limits.first_byte_timeout,
    };
    // `peek` and not `readable`: readiness may be reported before any byte is there.
    let mut one = [0u8; 1];
    if tokio::time::timeout(first_byte, tcp.peek(&mut one))
        .await
        .is_err()
    {
        let counter = if shared.tls.is_some() && first_byte == limits.handshake_timeout {
            &shared.metrics.handshake_timeouts
        } else {
            &shared.metrics.first_byte_timeouts
        };
        ListenerMetrics::inc(counter);
        tracing::debug!(listener = shared.name, %peer, "No byte before the first-byte deadline");
        return;
    }
    let Some(tls) = &shared.tls else {
        let info = ConnInfo {
            peer,
            client_cert: None,
            tls_version: None,
        };
        let service = (shared.make_service)(info);
        return serve_http(&shared, tcp, peer, service, drain).await;
    };
    let deadline = started + limits.handshake_timeout;
    // The configuration in force now: a reload during this connection changes nothing here.
    let acceptor = TlsAcceptor::from(tls.config());
    let handshake = async {
        // The source's own handshakes go one share at a time.
        let _turn = source.handshake().await;
        acceptor.accept(tcp).await
    };
    let stream = match tokio::time::timeout_at(deadline, handshake).await {
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

/// HTTP/1.1 keep-alive on `io` until the client closes, the connection idles out, a
/// request's headers take too long, or the listener drains (then the request in flight
/// finishes first).
///
/// The header and idle deadlines are kept here rather than by hyper: hyper's header
/// timeout also runs while a keep-alive connection waits for its next request, so it
/// would close idle connections at the header deadline.
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
    let io = Tracked {
        inner: io,
        activity: activity.clone(),
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let limits = shared.limits;
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
            expiry = activity.expired(limits.header_timeout, limits.idle_timeout), if !closing => {
                match expiry {
                    Expiry::Idle => {
                        ListenerMetrics::inc(&shared.metrics.idle_closed);
                        tracing::debug!(listener = shared.name, %peer, "Closing an idle connection");
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    Expiry::Header => {
                        ListenerMetrics::inc(&shared.metrics.header_timeouts);
                        tracing::info!(listener = shared.name, %peer, "Request headers timed out");
                        return;
                    }
                }
            }
        }
    }
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// No request in flight and nothing received for the idle timeout.
    Idle,
    /// A request began arriving but its headers did not complete in time.
    Header,
}

/// What one connection is doing, for its deadlines.
#[derive(Debug)]
struct Activity {
    state: Mutex<ActivityState>,
    /// Wakes the watchdog when a request's first byte arrives or a request ends.
    wake: Notify,
}

#[derive(Debug)]
struct ActivityState {
    in_flight: usize,
    /// When the last request started or ended (or the connection began).
    last: Instant,
    /// Between requests: bytes of the next one arrived at this time.
    head_started: Option<Instant>,
}

/// Marks a request in flight until dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        {
            let mut s = self.0.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            s.last = Instant::now();
        }
        self.0.wake.notify_one();
    }
}

// === impl Activity ===

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                last: Instant::now(),
                head_started: None,
            }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request's head was read: it is in flight until the returned guard drops.
    fn begin(self: &Arc<Self>) -> Busy {
        let mut s = self.lock();
        s.in_flight += 1;
        s.last = Instant::now();
        s.head_started = None;
        drop(s);
        Busy(self.clone())
    }

    /// Bytes arrived from the client.
    fn received(&self) {
        let mut s = self.lock();
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
            drop(s);
            self.wake.notify_one();
        }
    }

    /// Resolves when a deadline passes: the headers of a request that began arriving
    /// (`header`), or no request in flight and nothing received (`idle`). A request that
    /// waits on its host (a Receive long poll) is not idleness.
    async fn expired(&self, header: Duration, idle: Duration) -> Expiry {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = {
                let s = self.lock();
                let now = Instant::now();
                if s.in_flight > 0 {
                    None
                } else if let Some(t) = s.head_started {
                    if now >= t + header {
                        return Expiry::Header;
                    }
                    Some(t + header)
                } else {
                    if now >= s.last + idle {
                        return Expiry::Idle;
                    }
                    Some(s.last + idle)
                }
            };
            match deadline {
                Some(d) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(d) => {}
                        () = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// The connection's I/O, telling [`Activity`] when bytes arrive.
struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
