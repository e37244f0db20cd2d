//! The one accept loop: TCP accept, optional TLS handshake, HTTP/1.1 connections, limits,
//! drain. The gateway, the admin API and the test host all serve through [`Listener`].
//!
//! Owns connection-level limits (how many connections at once, how long a TLS handshake, a
//! request header or an idle keep-alive connection may take), back-off on accept errors,
//! the process's descriptor limit ([`fdlimit`]) and graceful shutdown. It knows nothing of
//! WS-Man: each connection gets a service built by the caller from [`ConnInfo`], which
//! carries what only the connection knows (peer address, verified client certificate) to
//! the request pipeline.
//!
//! * `backoff`: sleeping and logging after accept errors (EMFILE must not spin).
//! * `conn`: one connection: first-byte deadline, handshake, HTTP, idle watchdog, drain.
//! * `per_source`: each source address's share of connections and handshakes.
//! * [`fdlimit`]: raise RLIMIT_NOFILE, refuse to start when it is too low.
//! * [`tls`]: the listener's reloadable rustls configuration.
//!
//! Tower is not used: the limits here are per connection (a semaphore, tokio timers and
//! hyper's header timeout express them directly), and per-request deadlines depend on the
//! WS-Man OperationTimeout, which the proxy knows and a fixed timeout layer would not.

mod backoff;
mod conn;
pub mod fdlimit;
mod per_source;
pub mod tls;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

pub use crate::metrics::ListenerMetrics;
use crate::tls::HandshakeFailure;

use self::backoff::AcceptBackoff;
use self::tls::ServerTls;

/// What the connection knows about the client.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The leaf certificate, present only when rustls verified it against the client CA.
    pub client_cert: Option<CertificateDer<'static>>,
    /// TLS protocol version negotiated, for the record (None over plain HTTP).
    pub tls_version: Option<&'static str>,
}

/// Connection-level limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections open at once; past it, new clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// Deadline of the TLS handshake, from accept.
    pub handshake_timeout: Duration,
    /// Deadline of a request's headers, from their first byte (waiting for a next request
    /// on a keep-alive connection is idleness, not a slow header).
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// How long open connections may finish their requests after shutdown starts.
    pub drain_timeout: Duration,
    /// Connections open at once from one source address; more are closed at accept.
    pub max_connections_per_source: usize,
    /// TLS handshakes in progress at once from one source address; more wait their turn
    /// (within the handshake deadline).
    pub max_handshakes_per_source: usize,
    /// How long a new connection may send nothing (TLS or plain): silent sockets free
    /// their slot long before the handshake or idle timeout.
    pub first_byte_timeout: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(10),
            max_connections_per_source: 64,
            max_handshakes_per_source: 8,
            first_byte_timeout: Duration::from_secs(3),
        }
    }
}

/// Called when a TLS handshake fails, with the peer and why, so the caller can record it.
pub type HandshakeHook = Arc<dyn Fn(SocketAddr, HandshakeFailure) + Send + Sync>;

/// A bound socket and how to serve it; [`Listener::serve`] runs the accept loop.
pub struct Listener {
    tcp: TcpListener,
    /// Names the listener in logs and metrics (`gateway`, `admin`, `testhost`).
    name: &'static str,
    tls: Option<Arc<ServerTls>>,
    limits: ListenerLimits,
    metrics: Arc<ListenerMetrics>,
    on_handshake_error: Option<HandshakeHook>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("name", &self.name)
            .field("local_addr", &self.tcp.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

// === impl Listener ===

impl Listener {
    /// A plain-HTTP listener on `tcp` with `limits`.
    pub fn new(name: &'static str, tcp: TcpListener, limits: ListenerLimits) -> Self {
        Self {
            tcp,
            name,
            tls: None,
            limits,
            metrics: Arc::default(),
            on_handshake_error: None,
        }
    }

    /// Serves HTTPS with `tls` (read at each handshake, so reloads apply to new
    /// connections).
    pub fn with_tls(mut self, tls: Arc<ServerTls>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Counts into `metrics` (e.g. the gateway's, rendered by the admin API).
    pub fn with_metrics(mut self, metrics: Arc<ListenerMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Calls `hook` for every failed TLS handshake.
    pub fn on_handshake_error(mut self, hook: HandshakeHook) -> Self {
        self.on_handshake_error = Some(hook);
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    pub fn limits(&self) -> ListenerLimits {
        self.limits
    }

    /// Accepts connections until `shutdown` resolves, then lets open connections finish
    /// their requests for `drain_timeout` and closes the rest.
    pub async fn serve<F, S, Fut>(self, make_service: F, shutdown: impl Future<Output = ()>)
    where
        F: Fn(ConnInfo) -> S + Send + Sync + 'static,
        S: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let name = self.name;
        let slots = Arc::new(Semaphore::new(self.limits.max_connections));
        let (drain_tx, drain_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut backoff = AcceptBackoff::new(name);
        let per_source = Arc::new(per_source::PerSource::new(
            self.limits.max_connections_per_source,
            self.limits.max_handshakes_per_source,
        ));
        let shared = Arc::new(conn::Shared {
            name,
            tls: self.tls,
            limits: self.limits,
            metrics: self.metrics.clone(),
            on_handshake_error: self.on_handshake_error,
            make_service,
        });
        tokio::pin!(shutdown);

        loop {
            // A free slot first: past the limit, new clients wait in the kernel's backlog
            // instead of costing us memory or descriptors.
            let permit = match slots.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    ListenerMetrics::inc(&self.metrics.at_capacity);
                    tokio::select! {
                        () = &mut shutdown => break,
                        Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
                        p = slots.clone().acquire_owned() => match p {
                            Ok(p) => p,
                            Err(_) => break,
                        },
                    }
                }
            };
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                // Reap finished connection tasks so the set does not grow.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
                r = self.tcp.accept() => r,
            };
            let (tcp, peer) = match accepted {
                Ok(x) => x,
                Err(error) => {
                    ListenerMetrics::inc(&self.metrics.accept_errors);
                    drop(permit);
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = backoff.after_error(&error) => continue,
                    }
                }
            };
            backoff.after_success();
            ListenerMetrics::inc(&self.metrics.accepted);
            // Before any TLS work: one address cannot hold every slot.
            let Some(source) = per_source.connect(peer.ip()) else {
                ListenerMetrics::inc(&self.metrics.source_refused);
                tracing::debug!(listener = name, %peer, "Source holds its share of connections: closed");
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            tasks.spawn(conn::run(
                shared.clone(),
                tcp,
                peer,
                (permit, source),
                drain_rx.clone(),
            ));
        }

        tracing::info!(
            listener = name,
            open = tasks.len(),
            "Listener stopped accepting; draining connections"
        );
        let _ = drain_tx.send(true);
        let drained = tokio::time::timeout(self.limits.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                listener = name,
                open = tasks.len(),
                "Drain timed out; closing remaining connections"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}
