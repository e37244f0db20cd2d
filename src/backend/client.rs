//! [`BackendClient`]: sends WS-Man bodies to one host as one account.
//!
//! Owns: choosing a pooled or new authenticated connection, timeouts, and the single
//! transparent retry: a request is replayed once on a fresh connection only when it cannot
//! have run on the host (never sent, or refused with 401 because the host dropped the
//! security context). It does not parse SOAP and never logs bodies or credentials.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::conn::{Conn, ConnError};
use super::pool::Pool;
use super::target::HostTarget;
use super::{BackendError, BackendSettings, Credential, TimeoutPhase};

/// A plaintext response from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendResponse {
    /// HTTP status: 200, or 500 for a SOAP fault (body holds the fault).
    pub status: http::StatusCode,
    /// The SOAP envelope, decrypted when the session is encrypted.
    pub body: Bytes,
}

/// Client for one (host, credential) pair with its own keep-alive pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BackendClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    target: HostTarget,
    tls: Option<Arc<rustls::ClientConfig>>,
    credential: Credential,
    settings: BackendSettings,
    /// Short requests.
    short: Lane,
    /// Receives: held by the host up to their OperationTimeout.
    long_poll: Lane,
    next_id: AtomicU64,
}

/// Connections of one kind of request: their own idle pool and their own cap.
#[derive(Debug)]
struct Lane {
    pool: Pool,
    slots: Arc<Semaphore>,
}

/// Which lane a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LaneKind {
    Short,
    LongPoll,
}

// === impl BackendClient ===

impl BackendClient {
    /// A client with default [`BackendSettings`]. Fails on unusable settings (Basic over
    /// http, unreadable CA file, ...). Reads the CA file synchronously: call at startup.
    pub fn new(target: HostTarget, credential: Credential) -> Result<Self, BackendError> {
        Self::with_settings(target, credential, BackendSettings::default())
    }

    /// A client with explicit settings.
    pub fn with_settings(
        target: HostTarget,
        credential: Credential,
        settings: BackendSettings,
    ) -> Result<Self, BackendError> {
        target.validate()?;
        let tls = target.client_tls_config()?;
        let short = Lane {
            pool: Pool::new(settings.max_idle, settings.idle_timeout),
            slots: Arc::new(Semaphore::new(settings.max_connections.max(1))),
        };
        let long_poll = Lane {
            pool: Pool::new(settings.max_long_polls, settings.idle_timeout),
            slots: Arc::new(Semaphore::new(settings.max_long_polls.max(1))),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                target,
                tls,
                credential,
                settings,
                short,
                long_poll,
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The host this client talks to.
    pub fn target(&self) -> &HostTarget {
        &self.inner.target
    }

    /// Idle authenticated connections currently pooled (both lanes).
    pub fn idle_connections(&self) -> usize {
        self.inner.short.pool.idle_len() + self.inner.long_poll.pool.idle_len()
    }

    /// Closes all idle connections (e.g. after a credential rotation).
    pub fn close_idle(&self) {
        self.inner.short.pool.clear();
        self.inner.long_poll.pool.clear();
    }

    /// Sends one SOAP envelope with the default response timeout.
    pub async fn send(&self, body: Bytes) -> Result<BackendResponse, BackendError> {
        self.send_with_timeout(body, self.inner.settings.response_timeout)
            .await
    }

    /// Sends one SOAP envelope; `response_timeout` covers sending it and reading the whole
    /// response (a Receive long poll needs OperationTimeout plus a margin).
    pub async fn send_with_timeout(
        &self,
        body: Bytes,
        response_timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        self.send_on(LaneKind::Short, body, response_timeout).await
    }

    /// Sends a Receive, which the host may hold up to its OperationTimeout: on the
    /// long-poll lane, so held polls never wait for or take a short request's connection.
    pub async fn send_long_poll(
        &self,
        body: Bytes,
        response_timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        self.send_on(LaneKind::LongPoll, body, response_timeout)
            .await
    }

    async fn send_on(
        &self,
        kind: LaneKind,
        body: Bytes,
        response_timeout: Duration,
    ) -> Result<BackendResponse, BackendError> {
        let inner = &self.inner;
        let lane = match kind {
            LaneKind::Short => &inner.short,
            LaneKind::LongPoll => &inner.long_poll,
        };
        let mut retried = false;
        loop {
            // The retry always uses a fresh connection: the failure suggests the pooled ones
            // are stale too.
            let (mut conn, fresh) = self.checkout(lane, !retried).await?;
            let outcome = tokio::time::timeout(
                response_timeout,
                conn.round_trip(&body, inner.settings.max_response_bytes),
            )
            .await;
            match outcome {
                Err(_elapsed) => {
                    // The sealing context of this connection is now out of step: drop it.
                    return Err(BackendError::Timeout {
                        host: inner.target.name.clone(),
                        phase: TimeoutPhase::Response,
                        after: response_timeout,
                    });
                }
                Ok(Ok(resp)) => {
                    lane.pool.put(conn);
                    return Ok(resp);
                }
                Ok(Err(ConnError::NotSent(error))) => {
                    if retried {
                        return Err(error);
                    }
                    tracing::debug!(host = %inner.target.name, conn = conn.id(), error = %error,
                        "Backend connection unusable before the request left; retrying on a new one");
                    lane.pool.clear();
                }
                Ok(Err(ConnError::SessionLost)) => {
                    if fresh || retried {
                        return Err(BackendError::AuthRejected {
                            host: inner.target.name.clone(),
                            status: http::StatusCode::UNAUTHORIZED,
                        });
                    }
                    tracing::info!(host = %inner.target.name, conn = conn.id(),
                        "Backend host dropped the security context; re-authenticating");
                    lane.pool.clear();
                }
                Ok(Err(ConnError::Fatal(error))) => return Err(error),
            }
            retried = true;
        }
    }

    /// A pooled connection (when `use_pool`) or a new one, waiting at most the connect
    /// timeout for a free slot. Returns the connection and whether it is new.
    async fn checkout(&self, lane: &Lane, use_pool: bool) -> Result<(Conn, bool), BackendError> {
        let inner = &self.inner;
        let limit = inner.settings.connect_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if use_pool {
                if let Some(conn) = lane.pool.take() {
                    return Ok((conn, false));
                }
            }
            // INVARIANT: idle connections hold slots, so waiting only for a slot could wait
            // forever while a connection sits in the pool; wait for either.
            tokio::select! {
                permit = lane.slots.clone().acquire_owned() => {
                    let permit = permit.map_err(|_| BackendError::Protocol {
                        host: inner.target.name.clone(),
                        reason: "connection limiter closed".into(),
                    })?;
                    return Ok((self.open(permit).await?, true));
                }
                () = lane.pool.returned(), if use_pool => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(BackendError::Timeout {
                        host: inner.target.name.clone(),
                        phase: TimeoutPhase::PoolWait,
                        after: limit,
                    });
                }
            }
        }
    }

    /// Opens and authenticates a new connection within the connect timeout.
    async fn open(&self, permit: tokio::sync::OwnedSemaphorePermit) -> Result<Conn, BackendError> {
        let inner = &self.inner;
        let limit = inner.settings.connect_timeout;
        let timeout = |phase| BackendError::Timeout {
            host: inner.target.name.clone(),
            phase,
            after: limit,
        };
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = tokio::time::timeout(
            limit,
            Conn::open(
                id,
                &inner.target,
                inner.tls.as_ref(),
                &inner.credential,
                permit,
                inner.settings.max_response_bytes,
            ),
        )
        .await
        .map_err(|_| timeout(TimeoutPhase::Connect))??;
        Ok(conn)
    }
}
