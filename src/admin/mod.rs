//! Admin API on its own loopback listener: health, readiness, Prometheus metrics, and the
//! list and termination of live sessions.
//!
//! Plain HTTP, so the configuration only accepts a loopback address. `/healthz` and
//! `/readyz` are open (probes); everything else needs `Authorization: Bearer <token>`, the
//! token read from the file named in `[admin] token_file` and compared in constant time.
//! This module reads the session registry and the audit handle. Terminating a session
//! removes the gateway's record of the shell, so every further client request on it is
//! refused, then asks the host to delete the shell through a [`ShellCloser`] (the
//! composition root provides one built on the backend clients; this module never talks to
//! a host itself).

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::audit::{AuditHandle, Event, EventKind};
use crate::listener::Listener;
use crate::policy::Engine;
use crate::session::SessionRegistry;

/// Shortest admin token accepted from the token file.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the admin API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot read admin token file {path}: {source}")]
    TokenFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("admin token in {path} is shorter than {MIN_TOKEN_LEN} characters")]
    TokenTooShort { path: std::path::PathBuf },
}

/// The bearer token, kept out of Debug output and wiped on drop.
#[derive(Clone)]
pub struct AdminToken(Arc<Zeroizing<Vec<u8>>>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

// === impl AdminToken ===

impl AdminToken {
    /// Reads the token file (surrounding whitespace ignored).
    pub fn from_file(path: &std::path::Path) -> Result<Self, AdminError> {
        let raw = Zeroizing::new(std::fs::read(path).map_err(|source| AdminError::TokenFile {
            path: path.to_path_buf(),
            source,
        })?);
        let trimmed = raw.trim_ascii();
        if trimmed.len() < MIN_TOKEN_LEN {
            return Err(AdminError::TokenTooShort {
                path: path.to_path_buf(),
            });
        }
        Ok(Self(Arc::new(Zeroizing::new(trimmed.to_vec()))))
    }

    /// A token from bytes (tests, embedding).
    pub fn new(token: &[u8]) -> Self {
        Self(Arc::new(Zeroizing::new(token.to_vec())))
    }

    /// Whether an `Authorization` header value carries this token as a Bearer credential.
    fn accepts(&self, authorization: Option<&http::HeaderValue>) -> bool {
        let Some(v) = authorization.map(http::HeaderValue::as_bytes) else {
            return false;
        };
        let Some(given) = v
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case(b"bearer "))
            .and_then(|_| v.get(7..))
        else {
            return false;
        };
        // ct_eq on slices of different lengths is false without comparing contents; the
        // length of the token is not a secret worth hiding.
        bool::from(given.trim_ascii().ct_eq(self.0.as_slice()))
    }
}

/// Closes a shell on its host (WS-Man Delete), for the terminate endpoint.
pub trait ShellCloser: Send + Sync + std::fmt::Debug {
    /// Stops the shell's live commands and closes it on its host; forgets its inspection
    /// state.
    fn close(
        &self,
        shell: crate::session::ShellIdentity,
    ) -> std::pin::Pin<Box<dyn Future<Output = Closed> + Send>>;
}

/// What closing a shell came to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Closed {
    /// True when the host confirmed the shell is gone.
    pub host_closed: bool,
    /// The shell's counters, for `session.end`.
    pub counts: crate::shell::ActivityCounts,
}

/// What the admin API reads and acts on; cheap to clone.
#[derive(Debug, Clone)]
pub struct Admin {
    pub sessions: Arc<dyn SessionRegistry>,
    pub audit: AuditHandle,
    pub policy: Arc<arc_swap::ArcSwap<Engine>>,
    pub token: AdminToken,
    /// How terminated shells are closed on their hosts; None leaves them to idle out there.
    pub closer: Option<Arc<dyn ShellCloser>>,
    /// Request counts and backend latency from the request path.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Audit export destinations (syslog, stdout), for their counters.
    pub exporters: Option<Arc<crate::audit::export::Exporters>>,
}

// === impl Admin ===

impl Admin {
    /// Answers one request (the body is never read: no endpoint takes one).
    pub async fn respond(
        &self,
        method: &Method,
        path: &str,
        authorization: Option<&http::HeaderValue>,
    ) -> Response<Full<Bytes>> {
        match (method, path) {
            (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
            (&Method::GET, "/readyz") => self.readyz(),
            _ if !self.token.accepts(authorization) => {
                let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"hopgate-admin\""),
                );
                r
            }
            (&Method::GET, "/metrics") => self.metrics(),
            (&Method::GET, "/api/v1/sessions") => self.list(),
            (&Method::DELETE, p) if p.starts_with("/api/v1/sessions/") => {
                let id = p.trim_start_matches("/api/v1/sessions/");
                self.terminate(id).await
            }
            (_, "/healthz" | "/readyz" | "/metrics" | "/api/v1/sessions") => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn readyz(&self) -> Response<Full<Bytes>> {
        let audit = self.audit.healthy();
        let policies = !self.policy.load().role_names().is_empty();
        let body = format!(
            "audit: {}\npolicies: {}\n",
            if audit { "ok" } else { "unavailable" },
            if policies { "loaded" } else { "none" }
        );
        let status = if audit && policies {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        text(status, &body)
    }

    fn metrics(&self) -> Response<Full<Bytes>> {
        let counts = self.audit.counts();
        let count = |name: &str| {
            counts
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, c)| *c)
        };
        let mut m = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, v: u64| {
            m.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        };
        gauge(
            "hopgate_active_sessions",
            "Shells open through the gateway.",
            "gauge",
            u64::try_from(self.sessions.list().len()).unwrap_or(u64::MAX),
        );
        gauge(
            "hopgate_audit_queue_depth",
            "Audit events waiting for the writer.",
            "gauge",
            u64::try_from(self.audit.queue_depth()).unwrap_or(u64::MAX),
        );
        gauge(
            "hopgate_audit_dropped_total",
            "Audit events lost (queue full or writer stopped).",
            "counter",
            self.audit.dropped(),
        );
        gauge(
            "hopgate_audit_healthy",
            "1 when audit events reach the file and new sessions are accepted.",
            "gauge",
            u64::from(self.audit.healthy()),
        );
        m.push_str(
            "# HELP hopgate_decisions_total Policy decisions on commands.\n\
             # TYPE hopgate_decisions_total counter\n",
        );
        m.push_str(&format!(
            "hopgate_decisions_total{{decision=\"allow\"}} {}\n",
            count("command.allowed")
        ));
        m.push_str(&format!(
            "hopgate_decisions_total{{decision=\"deny\"}} {}\n",
            count("command.denied")
        ));
        m.push_str(
            "# HELP hopgate_audit_events_total Audit events emitted, by event.\n\
             # TYPE hopgate_audit_events_total counter\n",
        );
        for (name, c) in &counts {
            m.push_str(&format!(
                "hopgate_audit_events_total{{event=\"{name}\"}} {c}\n"
            ));
        }
        self.metrics.render(&mut m);
        if let Some(x) = &self.exporters {
            m.push_str(&x.prometheus());
        }
        let mut r = text(StatusCode::OK, &m);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        r
    }

    fn list(&self) -> Response<Full<Bytes>> {
        let mut shells = self.sessions.list();
        shells.sort_by_key(|s| s.created_ms);
        let items: Vec<serde_json::Value> = shells
            .iter()
            .map(|s| {
                serde_json::json!({
                    "session_id": s.session_id,
                    "shell_id": s.shell_id,
                    "principal": s.owner,
                    "host": s.host,
                    "kind": s.kind.as_str(),
                    "backend_user": s.backend_user,
                    "age_secs": s.age().as_secs(),
                })
            })
            .collect();
        json(StatusCode::OK, &serde_json::json!({ "sessions": items }))
    }

    /// Ends a session by its audit session id or its ShellId.
    async fn terminate(&self, id: &str) -> Response<Full<Bytes>> {
        let found = self
            .sessions
            .list()
            .into_iter()
            .find(|s| s.session_id == id || s.shell_id.eq_ignore_ascii_case(id));
        let Some(record) = found else {
            return json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": "no such session" }),
            );
        };
        if self.sessions.remove(&record.shell_id).is_none() {
            // Closed by its client in the meantime.
            return json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": "no such session" }),
            );
        }
        tracing::info!(
            session = %record.session_id,
            principal = %record.owner,
            host = %record.host,
            "Session terminated by an administrator"
        );
        let duration_ms = u64::try_from(record.age().as_millis()).unwrap_or(u64::MAX);
        let Closed {
            host_closed,
            counts,
        } = match &self.closer {
            Some(c) => c.close(record.clone()).await,
            None => Closed::default(),
        };
        self.audit.emit(Event {
            session_id: Some(record.session_id.clone()),
            kind: EventKind::AdminTerminate {
                principal: record.owner.clone(),
                host: record.host.clone(),
                shell_id: record.shell_id.clone(),
                by: "admin api".into(),
                host_closed,
            },
        });
        self.audit.emit(Event {
            session_id: Some(record.session_id.clone()),
            kind: EventKind::SessionEnd {
                principal: record.owner.clone(),
                host: record.host.clone(),
                shell_id: record.shell_id.clone(),
                reason: "terminated by an administrator".into(),
                host_closed: Some(host_closed),
                duration_ms,
                commands_allowed: counts.commands_allowed,
                commands_denied: counts.commands_denied,
                output_bytes: counts.output_bytes,
            },
        });
        json(
            StatusCode::OK,
            &serde_json::json!({
                "terminated": record.session_id,
                "shell_id": record.shell_id,
                "host_closed": host_closed,
            }),
        )
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// Serves the admin API on `listener` (the crate's one accept loop, plain HTTP) until
/// `shutdown` resolves.
pub async fn serve(listener: Listener, admin: Admin, shutdown: impl Future<Output = ()>) {
    listener
        .serve(
            move |_conn| {
                let admin = admin.clone();
                move |req: Request<Incoming>| {
                    let admin = admin.clone();
                    async move {
                        admin
                            .respond(
                                req.method(),
                                req.uri().path(),
                                req.headers().get(header::AUTHORIZATION),
                            )
                            .await
                    }
                }
            },
            shutdown,
        )
        .await;
}
