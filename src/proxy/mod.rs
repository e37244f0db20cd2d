//! The request pipeline, top to bottom: authenticate → target → decode (this file) →
//! registry → inspect → audit → forward → observe → reply (`relay`) (ARCHITECTURE.md, "One
//! request, end to end").
//!
//! Each step is a small function returning a [`Refusal`] on failure; `error.rs` alone turns
//! a refusal into what the client sees. Nothing reaches a host before the principal is
//! known, the host is found in the inventory and granted, the shell is the principal's own
//! and the shell's inspector (`crate::shell`) has let the request through.
//!
//! - `relay`: the path past decoding; `forward`: the backend leg; `record`: every audit
//!   event of the path; `inspectors`: the shells' inspection state; `backends`: backend
//!   clients; `route`: the URL path; `terminate`: closing a shell for the admin API;
//!   `limits`: failed sign-ins per source, shells per person and per host account.

pub mod backends;
mod forward;
pub mod inspectors;
pub mod limits;
mod record;
mod relay;
pub mod route;
pub mod terminate;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tracing::Instrument;

use crate::audit::AuditHandle;
use crate::authn::{claimed_basic_user, Authenticator, AuthnFailure, Principal};
use crate::config::{Config, Host};
use crate::error::Refusal;
use crate::listener::ConnInfo;
use crate::metrics::Limit;
use crate::policy::{Engine, HostRef, Subject};
use crate::session::SessionRegistry;
use crate::wsman;

use self::backends::Backends;
use self::inspectors::Inspectors;
use self::route::{choose, parse_path};

/// How long a request refused for its source's failed sign-ins waits for its answer.
const TARPIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Policy snapshot holder: swapped whole on reload; each request keeps the one it started with.
pub type PolicyHandle = Arc<arc_swap::ArcSwap<Engine>>;

/// Everything a request needs; cheap to share.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub config: Arc<Config>,
    pub authn: Arc<Authenticator>,
    pub policy: PolicyHandle,
    pub backends: Backends,
    pub sessions: Arc<dyn SessionRegistry>,
    /// The inspection state of each shell in `sessions`, keyed by the same ShellId.
    pub inspectors: Inspectors,
    pub audit: AuditHandle,
    pub wsman_limits: wsman::Limits,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub limits: limits::RequestLimits,
}

/// One authenticated, targeted, decoded request.
#[derive(Debug)]
struct Ctx<'a> {
    conn: &'a ConnInfo,
    principal: Principal,
    host: &'a Host,
    policy: Arc<Engine>,
    envelope: wsman::Envelope,
    body: Bytes,
}

impl Ctx<'_> {
    fn subject(&self) -> Subject {
        subject(&self.principal)
    }

    fn host_ref(&self) -> HostRef<'_> {
        HostRef {
            name: &self.host.name,
            labels: &self.host.labels,
        }
    }

    /// The policy snapshot, the principal and the host, for the inspector.
    fn judge<'a>(&'a self, subject: &'a Subject) -> crate::shell::Judge<'a> {
        crate::shell::Judge {
            engine: &self.policy,
            subject,
            host: self.host_ref(),
        }
    }

    fn message_id(&self) -> Option<&str> {
        self.envelope.header.message_id.as_deref()
    }
}

fn subject(p: &Principal) -> Subject {
    Subject {
        user: p.name.clone(),
        groups: p.groups.clone(),
    }
}

// === impl Gateway ===

impl Gateway {
    /// Serves one HTTP request from a client connection.
    pub async fn handle(&self, req: Request<Incoming>, conn: &ConnInfo) -> Response<Full<Bytes>> {
        let span = tracing::info_span!(
            "request",
            id = %uuid::Uuid::new_v4(),
            peer = %conn.peer,
            user = tracing::field::Empty,
            host = tracing::field::Empty,
            action = tracing::field::Empty,
        );
        async move {
            let mut action = "none";
            let response = match self.serve(req, conn, &mut action).await {
                Ok(r) => r,
                Err((refusal, relates_to)) => {
                    tracing::info!(refusal = refusal.kind(), "Request refused");
                    refusal.into_response(relates_to.as_deref())
                }
            };
            self.metrics.request(action, response.status().as_u16());
            response
        }
        .instrument(span)
        .await
    }

    async fn serve(
        &self,
        req: Request<Incoming>,
        conn: &ConnInfo,
        action: &mut &'static str,
    ) -> Result<Response<Full<Bytes>>, (Refusal, Option<String>)> {
        if req.method() != Method::POST {
            return Err((Refusal::MethodNotAllowed, None));
        }
        let path = parse_path(req.uri().path()).ok_or((Refusal::NotFound, None))?;

        // A source that keeps failing to sign in is answered before the authenticator
        // (and the audit writer) spend anything on it.
        let ip = conn.peer.ip();
        if let Some(retry_after_secs) = self
            .limits
            .unauthenticated
            .refused(ip, std::time::Instant::now())
        {
            self.metrics.limited(Limit::UnauthenticatedRate);
            self.authn_failure(conn, "rate_limited", None);
            // Answered slowly: a connection that keeps sending gets one answer a second,
            // so a flood costs the gateway next to nothing (and holds only its own
            // source's share of connections).
            tokio::time::sleep(TARPIT.min(std::time::Duration::from_secs(retry_after_secs))).await;
            return Err((Refusal::RateLimited { retry_after_secs }, None));
        }
        let principal = self
            .authn
            .authenticate_headers(conn.client_cert.as_deref(), req.headers(), conn.peer.ip())
            .map_err(|failure| {
                tracing::info!(reason = %failure, "Authentication failed");
                // The user part of a Basic credential, so a failed sign-in names whom it
                // claimed to be (never the password; nothing for a repeated header).
                let claimed = match failure {
                    AuthnFailure::RepeatedHeader => None,
                    _ => req
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .and_then(claimed_basic_user),
                };
                self.authn_failure(conn, failure.category(), claimed);
                self.limits
                    .unauthenticated
                    .charge(ip, std::time::Instant::now());
                let refusal = match failure {
                    AuthnFailure::RepeatedHeader => Refusal::RepeatedAuthorization,
                    _ => Refusal::Unauthenticated,
                };
                (refusal, None)
            })?;
        tracing::Span::current().record("user", principal.name.as_str());
        // Everything this request does is recorded: when the writer is behind, wait for
        // it (bounded) rather than let the record fall further back.
        if let Err(busy) = self.audit.admit(self.limits.audit_wait).await {
            tracing::warn!(queued = busy.queued, "Audit writer behind: request refused");
            self.metrics.limited(Limit::AuditBehind);
            return Err((Refusal::AuditBehind, None));
        }

        let policy = self.policy.load_full();
        let name = choose(
            &path,
            principal.target.as_deref(),
            self.config.default_host.as_deref(),
        )
        .map_err(|r| (r, None))?;
        // A host that is not in the inventory and one the principal holds no role for look
        // the same to the client, so probing cannot map the inventory.
        let host = match self.config.inventory.get(name) {
            Some(h)
                if policy.grants_host(
                    &subject(&principal),
                    &HostRef {
                        name: &h.name,
                        labels: &h.labels,
                    },
                ) =>
            {
                h
            }
            found => {
                let reason = if found.is_some() {
                    "no role grants this host"
                } else {
                    "host not in inventory"
                };
                self.access_denied(&principal, conn, Some(name), None, "-", reason);
                return Err((
                    Refusal::UnknownHost {
                        name: name.to_string(),
                    },
                    None,
                ));
            }
        };
        tracing::Span::current().record("host", host.name.as_str());

        let limit = self.config.limits.max_body_bytes;
        let body = match tokio::time::timeout(
            self.config.limits.request_timeout,
            Limited::new(req.into_body(), limit).collect(),
        )
        .await
        {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(error)) => {
                if error.is::<http_body_util::LengthLimitError>() {
                    return Err((Refusal::TooLarge { limit }, None));
                }
                tracing::info!(%error, "Client body read failed");
                return Err((
                    Refusal::Malformed {
                        message: "the request body could not be read".into(),
                    },
                    None,
                ));
            }
            Err(_) => {
                return Err((
                    Refusal::Malformed {
                        message: "the request body was not received in time".into(),
                    },
                    None,
                ))
            }
        };
        let envelope = wsman::parse(&body, &self.wsman_limits).map_err(|e| {
            (
                Refusal::Malformed {
                    message: e.to_string(),
                },
                None,
            )
        })?;
        *action = envelope.action().label();
        tracing::Span::current().record("action", *action);
        if !envelope.header.unknown_must_understand.is_empty() {
            return Err((
                Refusal::MustUnderstand {
                    headers: envelope.header.unknown_must_understand,
                },
                envelope.header.message_id,
            ));
        }

        let ctx = Ctx {
            conn,
            principal,
            host,
            policy,
            envelope,
            body,
        };
        let relates_to = ctx.message_id().map(str::to_string);
        self.dispatch(ctx).await.map_err(|r| (r, relates_to))
    }
}
