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
//!   clients; `route`: the URL path; `terminate`: closing a shell on its host (admin API,
//!   reaper); `reaper`: shells the gateway ends itself (idle, evicted, shutdown);
//!   `limits`: failed sign-ins per source, shells per person and per host account.

pub mod backends;
mod forward;
mod identify;
pub mod inspectors;
pub mod limits;
mod reaper;
mod record;
mod relay;
pub mod route;
pub mod signin;
pub mod terminate;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tracing::Instrument;

use crate::audit::AuditHandle;
use crate::authn::{claimed_basic_user, AuthMethod, Authenticator, AuthnFailure, Principal};
use crate::config::{Config, Host};
use crate::error::Refusal;
use crate::listener::ConnInfo;
use crate::metrics::Limit;
use crate::policy::{Engine, HostRef, Subject};
use crate::session::SessionRegistry;
use crate::wsman;

pub use self::reaper::SHUTDOWN as SHUTDOWN_REASON;

use self::backends::Backends;
use self::inspectors::Inspectors;
use self::route::{choose, parse_path};
use self::signin::{ConnSignIn, Exchange, StepOutcome};

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
    /// Limits for reading the host's answers for the record: those of requests, but as
    /// large as any answer the backend client accepts (a client announcing a large
    /// MaxEnvelopeSize gets answers past the request limit, and they are recorded too).
    pub answer_limits: wsman::Limits,
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
    /// Serves one HTTP request from a client connection that never signs in with Kerberos
    /// (tests; the listener uses [`Gateway::handle_conn`]).
    pub async fn handle(&self, req: Request<Incoming>, conn: &ConnInfo) -> Response<Full<Bytes>> {
        self.handle_conn(req, conn, &ConnSignIn::default()).await
    }

    /// Serves one HTTP request from a client connection, with the connection's sign-in
    /// state (Kerberos signs in a connection, and seals its bodies).
    pub async fn handle_conn(
        &self,
        req: Request<Incoming>,
        conn: &ConnInfo,
        signin: &ConnSignIn,
    ) -> Response<Full<Bytes>> {
        // A counter, not a UUID: unique within the process, and free.
        static NEXT_REQUEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let span = tracing::info_span!(
            "request",
            id = NEXT_REQUEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            peer = %conn.peer,
            user = tracing::field::Empty,
            host = tracing::field::Empty,
            action = tracing::field::Empty,
        );
        async move {
            let mut action = "none";
            let mut exchange = Exchange {
                plain_http: conn.tls_version.is_none(),
                ..Exchange::default()
            };
            let response = match self
                .serve(req, conn, signin, &mut exchange, &mut action)
                .await
            {
                Ok(r) => r,
                Err((refusal, relates_to)) => {
                    tracing::info!(refusal = refusal.kind(), "Request refused");
                    refusal.into_response(relates_to.as_deref())
                }
            };
            let response = if self.authn.kerberos.is_some() {
                // Only an answer to a sealed request needs its bytes (to seal them); every
                // other answer passes through as it is.
                let (response, plain) = if exchange.seal.is_some() {
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    (
                        Response::from_parts(parts, Full::new(Bytes::new())),
                        Some(body),
                    )
                } else {
                    (response, None)
                };
                exchange.finish(response, plain, signin)
            } else {
                response
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
        signin: &ConnSignIn,
        exchange: &mut Exchange,
        action: &mut &'static str,
    ) -> Result<Response<Full<Bytes>>, (Refusal, Option<String>)> {
        if req.method() != Method::POST {
            return Err((Refusal::MethodNotAllowed, None));
        }
        if req.uri().path() == identify::ANONYMOUS_PATH {
            let answer = self.anonymous_identify(req, Refusal::NotFound).await;
            if answer.is_ok() {
                *action = identify::LABEL;
            }
            return answer.map_err(|r| (r, None));
        }
        if parse_path(req.uri().path()).is_none() {
            return Err((Refusal::NotFound, None));
        }
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
        // `Test-WSMan` without credentials: answered for anyone, naming only hopgate, and
        // not audited (it grants nothing and reaches no host). Without credentials means
        // what the authenticator calls NoCredentials, on a connection not signed in.
        let anonymous = req.headers().get(http::header::AUTHORIZATION).is_none()
            && !(self.authn.allow_client_cert && conn.client_cert.is_some())
            && signin.principal().is_none();
        if anonymous && identify::may_be_anonymous(req.headers()) {
            return match self.anonymous_identify(req, Refusal::Unauthenticated).await {
                Ok(answer) => {
                    *action = identify::LABEL;
                    Ok(answer)
                }
                Err(refusal) => {
                    self.authn_failure(conn, AuthnFailure::NoCredentials.category(), None);
                    self.limits
                        .unauthenticated
                        .charge(ip, std::time::Instant::now());
                    Err((refusal, None))
                }
            };
        }

        let principal = match self.kerberos_sign_in(req.headers(), conn, signin, exchange)? {
            Some(p) => p,
            None => match signin.certificate_principal() {
                // A verified certificate decides before any header (Authenticator's order),
                // and it is the same certificate for the whole connection. A repeated
                // Authorization header is still refused, by the full path.
                Some(p)
                    if req
                        .headers()
                        .get_all(http::header::AUTHORIZATION)
                        .iter()
                        .nth(1)
                        .is_none() =>
                {
                    p
                }
                _ => {
                    let p = self.header_sign_in(req.headers(), conn)?;
                    if p.method == AuthMethod::ClientCertificate {
                        signin.remember_certificate(&p);
                    }
                    p
                }
            },
        };
        tracing::Span::current().record("user", principal.name.as_str());
        // Everything this request does is recorded: when the writer is behind, wait for
        // it (bounded) rather than let the record fall further back.
        if let Err(busy) = self.audit.admit(self.limits.audit_wait).await {
            tracing::warn!(queued = busy.queued, "Audit writer behind: request refused");
            self.metrics.limited(Limit::AuditBehind);
            return Err((Refusal::AuditBehind, None));
        }
        let sealed_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/")
            })
            .map(str::to_string);
        let handshake_only = principal.method == AuthMethod::Kerberos
            && exchange.reply_header.is_some()
            && hyper::body::Body::size_hint(req.body()).exact() == Some(0);
        if handshake_only {
            // pypsrp's empty POST that finishes the handshake before sealed traffic.
            return Ok(Response::new(Full::new(Bytes::new())));
        }
        let who = principal.name.clone();
        let served = self
            .targeted(
                req,
                (conn, signin),
                exchange,
                principal,
                sealed_type,
                action,
            )
            .await;
        if let Err((refusal, _)) = &served {
            if refusal.is_unreadable_request() {
                // A person's client sent what the gateway cannot read: worth a record
                // (a broken client, or someone probing the parser), never its body.
                self.request_rejected(&who, conn, refusal.kind(), action);
            }
        }
        served
    }

    /// The client certificate or the `Authorization` header's token.
    fn header_sign_in(
        &self,
        headers: &http::HeaderMap,
        conn: &ConnInfo,
    ) -> Result<Principal, (Refusal, Option<String>)> {
        if conn.tls_version.is_none() {
            // Plain HTTP: Basic passwords and bearer tokens would cross the network in
            // clear text. Only Kerberos (above) signs in here.
            self.authn_failure(conn, "plain_http_needs_kerberos", None);
            self.limits
                .unauthenticated
                .charge(conn.peer.ip(), std::time::Instant::now());
            return Err((Refusal::Unauthenticated, None));
        }
        let ip = conn.peer.ip();
        self.authn
            .authenticate_headers(conn.client_cert.as_deref(), headers, ip)
            .map_err(|failure| {
                tracing::info!(reason = %failure, "Authentication failed");
                // The user part of a Basic credential, so a failed sign-in names whom it
                // claimed to be (never the password; nothing for a repeated header).
                let claimed = match failure {
                    AuthnFailure::RepeatedHeader => None,
                    _ => headers
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
            })
    }

    /// Kerberos / Negotiate: a token in this request, or the connection's earlier sign-in.
    /// `None` when neither applies (the other methods then decide).
    fn kerberos_sign_in(
        &self,
        headers: &http::HeaderMap,
        conn: &ConnInfo,
        signin: &ConnSignIn,
        exchange: &mut Exchange,
    ) -> Result<Option<Principal>, (Refusal, Option<String>)> {
        let Some(acceptor) = self.authn.kerberos.as_deref() else {
            return Ok(None);
        };
        if headers.get_all(http::header::AUTHORIZATION).iter().count() > 1 {
            self.authn_failure(conn, "repeated_authorization_header", None);
            return Err((Refusal::RepeatedAuthorization, None));
        }
        match signin::negotiate_header(headers) {
            Some(Ok(header)) => match signin.step(acceptor, header, conn.peer.ip()) {
                Ok(StepOutcome::Done { principal, reply }) => {
                    exchange.reply_header = reply;
                    Ok(Some(principal))
                }
                Ok(StepOutcome::Continue(challenge)) => {
                    exchange.reply_header = Some(challenge);
                    Err((Refusal::Unauthenticated, None))
                }
                Err(error) => {
                    tracing::info!(%error, "Kerberos sign-in failed");
                    self.authn_failure(conn, error.reason(), None);
                    self.limits
                        .unauthenticated
                        .charge(conn.peer.ip(), std::time::Instant::now());
                    Err((Refusal::Unauthenticated, None))
                }
            },
            Some(Err(())) => {
                self.authn_failure(conn, "malformed_header", None);
                Err((Refusal::Unauthenticated, None))
            }
            // No header: the connection's sign-in, if any, carries on.
            None if headers.get(http::header::AUTHORIZATION).is_none() => Ok(signin.principal()),
            None => Ok(None),
        }
    }

    /// Everything after sign-in: target, body (unsealed), parse, dispatch.
    async fn targeted(
        &self,
        req: Request<Incoming>,
        (conn, signin): (&ConnInfo, &ConnSignIn),
        exchange: &mut Exchange,
        principal: Principal,
        sealed_type: Option<String>,
        action: &mut &'static str,
    ) -> Result<Response<Full<Bytes>>, (Refusal, Option<String>)> {
        let path = parse_path(req.uri().path()).ok_or((Refusal::NotFound, None))?;
        let policy = self.policy.load_full();
        let name = match choose(
            &path,
            principal.target.as_deref(),
            self.config.default_host.as_deref(),
        ) {
            Ok(name) => name,
            // No host to relay to: an Identify is answered by the gateway itself.
            Err(refusal) => {
                let body = self.read_body(req).await.map_err(|r| (r, None))?;
                return match wsman::parse_identify(&body, &self.wsman_limits) {
                    Ok(true) => {
                        *action = identify::LABEL;
                        Ok(identify::own_answer())
                    }
                    _ => Err((refusal, None)),
                };
            }
        };
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

        let body = self.read_body(req).await.map_err(|r| (r, None))?;
        let body = match sealed_type {
            Some(content_type) => match signin.unseal(&content_type, &body) {
                Ok((plain, protocol)) => {
                    exchange.seal = Some(protocol);
                    plain
                }
                Err(error) => {
                    tracing::info!(%error, "Sealed body refused");
                    return Err((
                        Refusal::Malformed {
                            message: error.to_string(),
                        },
                        None,
                    ));
                }
            },
            None if conn.tls_version.is_none() => {
                // Plain HTTP carries only sealed envelopes.
                return Err((
                    Refusal::Malformed {
                        message: "plain HTTP needs WinRM message encryption".into(),
                    },
                    None,
                ));
            }
            None => body,
        };
        if let Ok(true) = wsman::parse_identify(&body, &self.wsman_limits) {
            *action = identify::LABEL;
            let ctx = Ctx {
                conn,
                principal,
                host,
                policy,
                envelope: identify::envelope(),
                body,
            };
            return self.relay_identify(ctx).await.map_err(|r| (r, None));
        }
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

    /// Reads the request body under the size limit and the request timeout.
    async fn read_body(&self, req: Request<Incoming>) -> Result<Bytes, Refusal> {
        read_limited(
            req,
            self.config.limits.max_body_bytes,
            self.config.limits.request_timeout,
        )
        .await
    }
}

/// Reads a body of at most `limit` bytes within `timeout`.
async fn read_limited(
    req: Request<Incoming>,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, Refusal> {
    match tokio::time::timeout(timeout, Limited::new(req.into_body(), limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) => {
            if error.is::<http_body_util::LengthLimitError>() {
                return Err(Refusal::TooLarge { limit });
            }
            tracing::info!(%error, "Client body read failed");
            Err(Refusal::Malformed {
                message: "the request body could not be read".into(),
            })
        }
        Err(_) => Err(Refusal::Malformed {
            message: "the request body was not received in time".into(),
        }),
    }
}
