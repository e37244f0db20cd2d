//! One authenticated HTTP/1.1 connection to a host (hyper low-level client).
//!
//! Owns: TCP connect, TLS, the NTLM, Kerberos/Negotiate or CredSSP handshake (401 dance,
//! then the empty POST that finishes it), and one request/response exchange at a time with
//! sealing/unsealing of bodies. It
//! does not retry, pool or time out by itself: `client` decides that from the
//! [`ConnError`] it returns. INVARIANT: a `Conn` runs one request at a time (`&mut self`),
//! so NTLM and Kerberos sequence numbers are used in order.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use super::credssp::{CredSspError, CredSspSession};
use super::crypto::{self, EncryptionProtocol, Sealed};
#[cfg(feature = "delegate")]
use super::delegate::{DelegateClient, DelegateSettings};
use super::kerberos::{KerberosClient, KerberosSettings, Mechanism, Step};
use super::ntlm::{NtlmClient, NtlmError};
use super::target::{BackendAuth, HostTarget};
use super::{BackendError, BackendResponse, Credential, Delivery};

const USER_AGENT: &str = concat!("hopgate/", env!("CARGO_PKG_VERSION"));
const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";
/// The header scheme that carries raw NTLMSSP tokens (what pywinrm/pypsrp send).
const NEGOTIATE: &str = "Negotiate";
/// The header scheme of CredSSP tokens (TLS records, then TSRequests inside them).
pub(super) const CREDSSP: &str = "CredSSP";

/// How a failed exchange affects retrying.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// The request never reached the host; a fresh connection may replay it.
    NotSent(BackendError),
    /// 401 on an established session: the host dropped the security context and did not
    /// process the request; re-authenticate and replay once.
    SessionLost,
    /// Anything else: give up and drop the connection.
    Fatal(BackendError),
}

/// Per-connection authentication state.
enum Session {
    /// `Authorization: Basic` on every request (https only).
    Basic { header: HeaderValue },
    /// Sealing context established by the handshake; over http every body is sealed,
    /// inside TLS bodies go as they are (the handshake is bound to the channel instead).
    Sealing { ctx: SealingContext, seal: bool },
    /// CredSSP: the handshake's TLS tunnel seals bodies over http; inside TLS bodies go as
    /// they are.
    CredSsp {
        ctx: Box<CredSspSession>,
        seal: bool,
    },
}

/// An established NTLM, Kerberos or delegated-Kerberos context.
enum SealingContext {
    Ntlm(Box<NtlmClient>),
    Kerberos(Box<KerberosClient>),
    #[cfg(feature = "delegate")]
    Delegate(Box<DelegateClient>),
}

// === impl SealingContext ===

impl SealingContext {
    fn protocol(&self) -> EncryptionProtocol {
        match self {
            Self::Ntlm(_) => EncryptionProtocol::Spnego,
            Self::Kerberos(ctx) => ctx.mechanism().encryption_protocol(),
            #[cfg(feature = "delegate")]
            Self::Delegate(ctx) => ctx.encryption_protocol(),
        }
    }

    fn seal(&mut self, plaintext: &[u8]) -> Result<Sealed, crypto::CryptoError> {
        match self {
            Self::Ntlm(ctx) => ctx.seal(plaintext),
            Self::Kerberos(ctx) => ctx.seal(plaintext),
            #[cfg(feature = "delegate")]
            Self::Delegate(ctx) => ctx.seal(plaintext),
        }
    }

    fn unseal(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, crypto::CryptoError> {
        match self {
            Self::Ntlm(ctx) => ctx.unseal(header, data),
            Self::Kerberos(ctx) => ctx.unseal(header, data),
            #[cfg(feature = "delegate")]
            Self::Delegate(ctx) => ctx.unseal(header, data),
        }
    }
}

/// An authenticated connection.
pub(crate) struct Conn {
    id: u64,
    host: String,
    authority: HeaderValue,
    path: String,
    sender: SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
    session: Session,
    /// When the connection last went idle (set by the pool).
    pub(crate) idle_since: Instant,
    /// Holds one `max_connections` slot while this connection exists.
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A dropped connection may be mid-request (timeout): close the socket now rather
        // than letting hyper finish a response nobody reads.
        self.task.abort();
    }
}

// === impl Conn ===

impl Conn {
    /// Connects, sets up TLS when configured, and authenticates.
    pub(crate) async fn open(
        id: u64,
        target: &HostTarget,
        tls: Option<&Arc<rustls::ClientConfig>>,
        credential: &Credential,
        permit: OwnedSemaphorePermit,
        max_body: usize,
    ) -> Result<Self, BackendError> {
        let addr = target.authority();
        let tcp = TcpStream::connect((target.address.as_str(), target.port))
            .await
            .map_err(|source| BackendError::Connect {
                host: target.name.clone(),
                addr: addr.clone(),
                source,
            })?;
        // WinRM exchanges are small request/response pairs: do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let mut server_cert = None;
        let (sender, task) = match tls {
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let stream = connector
                    .connect(target.server_name()?, tcp)
                    .await
                    .map_err(|source| BackendError::Tls {
                        host: target.name.clone(),
                        source,
                    })?;
                server_cert = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                spawn_http(stream, &target.name, id).await?
            }
            None => spawn_http(tcp, &target.name, id).await?,
        };
        let authority = HeaderValue::from_str(&addr).map_err(|_| BackendError::Config {
            host: target.name.clone(),
            reason: format!("invalid host header {addr:?}"),
        })?;
        let mut conn = Self {
            id,
            host: target.name.clone(),
            authority,
            path: target.path.clone(),
            sender,
            task,
            session: Session::Basic {
                header: HeaderValue::from_static(""),
            },
            idle_since: Instant::now(),
            _permit: permit,
        };
        conn.session = match target.auth {
            BackendAuth::Basic => Session::Basic {
                header: basic_header(credential, &target.name)?,
            },
            BackendAuth::Ntlm => Session::Sealing {
                ctx: SealingContext::Ntlm(Box::new(
                    conn.ntlm_handshake(target, credential, server_cert.as_deref(), max_body)
                        .await?,
                )),
                seal: tls.is_none(),
            },
            BackendAuth::Kerberos | BackendAuth::Negotiate => {
                let ctx = match conn.kerberos_handshake(target, credential, max_body).await {
                    Ok(k) => SealingContext::Kerberos(Box::new(k)),
                    // Kerberos never reached the host (no KDC, no such SPN): the connection
                    // is still fresh for an NTLM login, when the operator allows it.
                    Err(BackendError::Kerberos { source, .. })
                        if target.auth == BackendAuth::Negotiate
                            && target.ntlm_fallback
                            && source.allows_ntlm_fallback() =>
                    {
                        tracing::warn!(host = %target.name, reason = source.reason(), "Kerberos unavailable; logging in with NTLM (ntlm_fallback)");
                        SealingContext::Ntlm(Box::new(
                            conn.ntlm_handshake(
                                target,
                                credential,
                                server_cert.as_deref(),
                                max_body,
                            )
                            .await?,
                        ))
                    }
                    Err(e) => return Err(e),
                };
                Session::Sealing {
                    ctx,
                    seal: tls.is_none(),
                }
            }
            BackendAuth::CredSsp => Session::CredSsp {
                ctx: Box::new(conn.credssp_handshake(target, credential, max_body).await?),
                seal: tls.is_none(),
            },
            BackendAuth::Delegate => Session::Sealing {
                ctx: conn
                    .delegate_handshake(target, credential, server_cert.as_deref(), max_body)
                    .await?,
                seal: tls.is_none(),
            },
        };
        tracing::debug!(host = %conn.host, conn = conn.id, "Backend connection authenticated");
        Ok(conn)
    }

    /// The connection id (for logs).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// False once hyper saw the peer close the connection.
    pub(crate) fn is_usable(&self) -> bool {
        !self.sender.is_closed() && !self.task.is_finished()
    }

    async fn ntlm_handshake(
        &mut self,
        target: &HostTarget,
        credential: &Credential,
        server_cert: Option<&[u8]>,
        max_body: usize,
    ) -> Result<NtlmClient, BackendError> {
        let handshake_err = |reason: &str, source: Option<NtlmError>| BackendError::Handshake {
            host: target.name.clone(),
            reason: reason.to_owned(),
            source: source.map(Box::new),
        };
        let mut ctx = NtlmClient::new(&credential.user, &credential.password, target.tls_name())
            .map_err(|e| handshake_err("preparing the context", Some(e)))?;
        let negotiate = ctx
            .negotiate()
            .map_err(|e| handshake_err("negotiate message", Some(e)))?;
        let resp = self
            .handshake_leg(&negotiate)
            .await
            .map_err(|e| self.leg_error(e))?;
        let status = resp.status();
        let challenge = challenge_token(&resp);
        drain(resp.into_body(), max_body)
            .await
            .map_err(|e| self.leg_error(e))?
            .ok_or_else(|| handshake_err("oversized handshake response body", None))?;
        if status != StatusCode::UNAUTHORIZED {
            return Err(handshake_err(
                &format!("expected 401 with a challenge, got {status}"),
                None,
            ));
        }
        let challenge = challenge
            .ok_or_else(|| handshake_err("host offered no Negotiate/NTLM challenge", None))?;
        if let Some(cert) = server_cert {
            ctx.set_tls_server_end_point(cert);
        }
        let authenticate = ctx
            .authenticate(&challenge)
            .map_err(|e| handshake_err("authenticate message", Some(e)))?;
        let resp = self
            .handshake_leg(&authenticate)
            .await
            .map_err(|e| self.leg_error(e))?;
        let status = resp.status();
        drain(resp.into_body(), max_body)
            .await
            .map_err(|e| self.leg_error(e))?
            .ok_or_else(|| handshake_err("oversized handshake response body", None))?;
        match status {
            s if s.is_success() => Ok(ctx),
            StatusCode::UNAUTHORIZED => Err(BackendError::AuthRejected {
                host: target.name.clone(),
                status,
            }),
            other => Err(handshake_err(
                &format!("unexpected status {other} finishing the handshake"),
                None,
            )),
        }
    }

    async fn kerberos_handshake(
        &mut self,
        target: &HostTarget,
        credential: &Credential,
        max_body: usize,
    ) -> Result<KerberosClient, BackendError> {
        let krb_err = |source| BackendError::Kerberos {
            host: target.name.clone(),
            source: Box::new(source),
        };
        let mechanism = match target.auth {
            BackendAuth::Kerberos => Mechanism::Kerberos,
            _ => Mechanism::Negotiate,
        };
        let settings = KerberosSettings {
            // INVARIANT: HostTarget::validate refuses Kerberos without a KDC.
            kdc_url: target.kdc.clone().unwrap_or_default(),
            spn: target.service_principal(),
            kdc_timeout: super::kdc::DEFAULT_TIMEOUT,
        };
        let ctx = KerberosClient::new(mechanism, &credential.user, &credential.password, settings)
            .map_err(krb_err)?;
        // No channel bindings over https (checked against MIT GSSAPI acceptors): sspi 0.23.1
        // sends KERB_AP_OPTIONS_CBT as bare authenticator authorization data, which MIT
        // refuses (401), whereas the same AP-REQ without bindings is accepted. The ticket is
        // bound to the SPN and the host certificate is verified, so a relay to another
        // service is not possible; hosts with CbtHardeningLevel=Strict would refuse it.
        let mut ctx = SspiToken {
            ctx,
            host: &target.name,
        };
        self.token_handshake(&mut ctx, mechanism.http_scheme(), &target.name, max_body)
            .await?;
        Ok(ctx.ctx)
    }

    /// Logs in as the person through constrained delegation (S4U2Self + S4U2Proxy from the
    /// gateway's keytab); the credential's user is the person's realm principal.
    #[cfg(feature = "delegate")]
    async fn delegate_handshake(
        &mut self,
        target: &HostTarget,
        credential: &Credential,
        server_cert: Option<&[u8]>,
        max_body: usize,
    ) -> Result<SealingContext, BackendError> {
        // INVARIANT: HostTarget::validate refuses Delegate without an impersonator.
        let impersonator = target.impersonator.clone().unwrap_or_default();
        let settings = DelegateSettings {
            service: super::delegate::service_in_realm(&target.service_principal(), &impersonator),
            impersonator,
            user: credential.user.clone(),
        };
        // Over https the AP-REQ is bound to the host's certificate (RFC 5929
        // tls-server-end-point), which MIT GSSAPI sends in the standard checksum field.
        let bindings = server_cert.map(super::ntlm::tls_server_end_point);
        let mut ctx = GssToken {
            ctx: DelegateClient::new(settings, bindings),
            host: &target.name,
        };
        let scheme = ctx.ctx.http_scheme();
        let outcome = self
            .token_handshake(&mut ctx, scheme, &target.name, max_body)
            .await;
        if let Err(BackendError::AuthRejected { .. }) = &outcome {
            // The host refused this ticket: do not hand the same credential out again.
            super::delegate::forget(ctx.ctx.settings());
        }
        outcome?;
        tracing::debug!(host = %target.name, user = %credential.user,
            cached_credential = ctx.ctx.credential_was_cached(), "Delegated login to the host");
        Ok(SealingContext::Delegate(Box::new(ctx.ctx)))
    }

    #[cfg(not(feature = "delegate"))]
    async fn delegate_handshake(
        &mut self,
        target: &HostTarget,
        _credential: &Credential,
        _server_cert: Option<&[u8]>,
        _max_body: usize,
    ) -> Result<SealingContext, BackendError> {
        Err(BackendError::Delegate {
            host: target.name.clone(),
            source: Box::new(super::delegate_env::DelegateError::NotBuilt),
        })
    }

    /// The 401 exchange of a GSS-style context under `scheme`: the first token, then at most
    /// a few continuation legs (a host that keeps asking is broken or hostile), and mutual
    /// authentication checked on the final answer.
    async fn token_handshake(
        &mut self,
        ctx: &mut impl TokenContext,
        scheme: &str,
        host: &str,
        max_body: usize,
    ) -> Result<(), BackendError> {
        let handshake_err = |reason: String| BackendError::Handshake {
            host: host.to_owned(),
            reason,
            source: None,
        };
        let mut step = ctx.next(None).await?;
        for _ in 0..4 {
            let resp = self
                .handshake_leg_with(scheme, &step.token)
                .await
                .map_err(|e| self.leg_error(e))?;
            let status = resp.status();
            let reply = reply_token(resp.headers(), scheme);
            drain(resp.into_body(), max_body)
                .await
                .map_err(|e| self.leg_error(e))?
                .ok_or_else(|| handshake_err("oversized handshake response body".into()))?;
            match status {
                s if s.is_success() => {
                    if !ctx.established() {
                        // Mutual authentication: the AP-REP proves the host holds the key.
                        let reply = reply.ok_or_else(|| {
                            handshake_err(
                                "host accepted without a mutual-authentication token".into(),
                            )
                        })?;
                        step = ctx.next(Some(&reply)).await?;
                        if !step.done {
                            return Err(handshake_err(
                                "host accepted but the context is not complete".into(),
                            ));
                        }
                    }
                    return Ok(());
                }
                StatusCode::UNAUTHORIZED => match reply {
                    Some(reply) if !ctx.established() => {
                        step = ctx.next(Some(&reply)).await?;
                    }
                    _ => {
                        return Err(BackendError::AuthRejected {
                            host: host.to_owned(),
                            status,
                        })
                    }
                },
                other => {
                    return Err(handshake_err(format!(
                        "unexpected status {other} during the {scheme} handshake"
                    )))
                }
            }
        }
        Err(handshake_err(format!("{scheme} handshake did not finish")))
    }

    async fn credssp_handshake(
        &mut self,
        target: &HostTarget,
        credential: &Credential,
        max_body: usize,
    ) -> Result<CredSspSession, BackendError> {
        let host = target.name.clone();
        let handshake_err = |reason: String| BackendError::Handshake {
            host: host.clone(),
            reason,
            source: None,
        };
        let rejected = || BackendError::AuthRejected {
            host: host.clone(),
            status: StatusCode::UNAUTHORIZED,
        };
        let fail = |source: CredSspError| match source {
            CredSspError::Rejected { status } => {
                tracing::warn!(host = %host, ntstatus = format!("{status:#010x}"),
                    "Backend host refused the CredSSP login");
                rejected()
            }
            other => BackendError::CredSsp {
                host: host.clone(),
                source: Box::new(other),
            },
        };
        let mut ctx = CredSspSession::new(
            &credential.user,
            &credential.password,
            &target.service_principal(),
        )
        .map_err(fail)?;
        let mut step = ctx.step(None).await.map_err(fail)?;
        // TLS (2-3 legs), NTLM (2), pubKeyAuth, credentials: a host that keeps asking is
        // broken or hostile.
        for leg in 0..10 {
            let resp = self
                .handshake_leg_with(CREDSSP, &step.token)
                .await
                .map_err(|e| self.leg_error(e))?;
            let status = resp.status();
            let reply = reply_token(resp.headers(), CREDSSP);
            drain(resp.into_body(), max_body)
                .await
                .map_err(|e| self.leg_error(e))?
                .ok_or_else(|| handshake_err("oversized handshake response body".into()))?;
            if step.done {
                // The credentials went out: the host now logs the account on.
                return match status {
                    s if s.is_success() => Ok(ctx),
                    StatusCode::UNAUTHORIZED => Err(rejected()),
                    other => Err(handshake_err(format!(
                        "unexpected status {other} after the delegated credentials"
                    ))),
                };
            }
            match status {
                StatusCode::UNAUTHORIZED if reply.is_none() && leg == 0 => {
                    return Err(handshake_err(
                        "host did not answer the CredSSP handshake (is CredSSP enabled for its WinRM service?)"
                            .into(),
                    ))
                }
                StatusCode::UNAUTHORIZED if reply.is_none() && ctx.is_authenticating() => {
                    return Err(rejected())
                }
                StatusCode::UNAUTHORIZED => {
                    step = ctx.step(reply.as_deref()).await.map_err(fail)?;
                }
                other => {
                    return Err(handshake_err(format!(
                        "unexpected status {other} during the CredSSP handshake"
                    )))
                }
            }
        }
        Err(handshake_err("CredSSP handshake did not finish".into()))
    }

    /// Sends one empty POST carrying an NTLM token.
    async fn handshake_leg(&mut self, token: &[u8]) -> Result<Response<Incoming>, hyper::Error> {
        self.handshake_leg_with(NEGOTIATE, token).await
    }

    /// Sends one empty POST carrying a token under `scheme`.
    async fn handshake_leg_with(
        &mut self,
        scheme: &str,
        token: &[u8],
    ) -> Result<Response<Incoming>, hyper::Error> {
        let req = self.request(
            Bytes::new(),
            SOAP_CONTENT_TYPE,
            Some(auth_header(scheme, token)),
        );
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    fn leg_error(&self, e: hyper::Error) -> BackendError {
        BackendError::Closed {
            host: self.host.clone(),
            delivery: Delivery::NotSent,
            source: Some(e),
        }
    }

    fn request(
        &self,
        body: Bytes,
        content_type: &str,
        auth: Option<HeaderValue>,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = Method::POST;
        // `path` was checked by HostTarget::validate; fall back to the root on a bad value.
        *req.uri_mut() = self.path.parse().unwrap_or_default();
        let headers = req.headers_mut();
        headers.insert(header::HOST, self.authority.clone());
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type)
                .unwrap_or_else(|_| HeaderValue::from_static(SOAP_CONTENT_TYPE)),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        if let Some(auth) = auth {
            headers.insert(header::AUTHORIZATION, auth);
        }
        req
    }

    /// Sends one SOAP body and returns the plaintext response.
    pub(crate) async fn round_trip(
        &mut self,
        body: &Bytes,
        max_body: usize,
    ) -> Result<BackendResponse, ConnError> {
        let (wire, content_type, auth) = match &mut self.session {
            Session::Basic { header } => (
                body.clone(),
                SOAP_CONTENT_TYPE.to_owned(),
                Some(header.clone()),
            ),
            Session::Sealing { seal: false, .. } | Session::CredSsp { seal: false, .. } => {
                (body.clone(), SOAP_CONTENT_TYPE.to_owned(), None)
            }
            Session::CredSsp { ctx, seal: true } => {
                let (wire, content_type) = ctx
                    .encode_body(body)
                    .map_err(|source| ConnError::Fatal(credssp_error(&self.host, source)))?;
                (Bytes::from(wire), content_type, None)
            }
            Session::Sealing { ctx, seal: true } => {
                // Nothing left yet: a context that cannot seal any more (its ticket expired)
                // is replaced by a fresh connection and login.
                let sealed = ctx.seal(body).map_err(|source| {
                    ConnError::NotSent(BackendError::Crypto {
                        host: self.host.clone(),
                        source: Box::new(source),
                    })
                })?;
                let protocol = ctx.protocol();
                let wire = crypto::encode_body(protocol, body.len(), &sealed);
                (Bytes::from(wire), protocol.content_type(), None)
            }
        };
        let req = self.request(wire, &content_type, auth);
        if let Err(e) = self.sender.ready().await {
            return Err(ConnError::NotSent(self.closed(Delivery::NotSent, e)));
        }
        let resp = match self.sender.try_send_request(req).await {
            Ok(resp) => resp,
            Err(mut e) => {
                let delivery = if e.take_message().is_some() {
                    Delivery::NotSent
                } else {
                    Delivery::Maybe
                };
                let err = self.closed(delivery, e.into_error());
                return Err(match delivery {
                    Delivery::NotSent => ConnError::NotSent(err),
                    Delivery::Maybe => ConnError::Fatal(err),
                });
            }
        };
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let raw = drain(resp.into_body(), max_body)
            .await
            .map_err(|e| ConnError::Fatal(self.closed(Delivery::Maybe, e)))?;
        let raw = match raw {
            Some(raw) => raw,
            None => {
                return Err(ConnError::Fatal(
                    self.protocol(format!("response body larger than {max_body} bytes")),
                ))
            }
        };
        if status == StatusCode::UNAUTHORIZED {
            return match &self.session {
                // The host forgot the security context: it did not run the request.
                Session::Sealing { .. } | Session::CredSsp { .. } => Err(ConnError::SessionLost),
                Session::Basic { .. } => Err(ConnError::Fatal(BackendError::AuthRejected {
                    host: self.host.clone(),
                    status,
                })),
            };
        }
        match &mut self.session {
            Session::Basic { .. }
            | Session::Sealing { seal: false, .. }
            | Session::CredSsp { seal: false, .. } => Ok(BackendResponse { status, body: raw }),
            Session::CredSsp { ctx, seal: true } => {
                let plain = match content_type.as_deref() {
                    Some(ct) => ctx
                        .decode_body(&raw, ct)
                        .map_err(|source| ConnError::Fatal(credssp_error(&self.host, source)))?,
                    None => None,
                };
                match plain {
                    Some(plain) => Ok(BackendResponse {
                        status,
                        body: Bytes::from(plain),
                    }),
                    // As for NTLM: an empty error answer carries nothing to protect.
                    None if raw.is_empty() => Ok(BackendResponse { status, body: raw }),
                    None => Err(ConnError::Fatal(self.protocol(format!(
                        "unencrypted {status} response body on an encrypted session"
                    )))),
                }
            }
            Session::Sealing { ctx, seal: true } => {
                let encrypted = content_type
                    .as_deref()
                    .map(crypto::parse_content_type)
                    .transpose()
                    .map_err(|source| {
                        ConnError::Fatal(BackendError::Crypto {
                            host: self.host.clone(),
                            source: Box::new(source),
                        })
                    })?
                    .flatten();
                match encrypted {
                    Some(ct) => {
                        let plain = unseal_body(ctx, &raw, &ct).map_err(|source| {
                            ConnError::Fatal(BackendError::Crypto {
                                host: self.host.clone(),
                                source: Box::new(source),
                            })
                        })?;
                        Ok(BackendResponse {
                            status,
                            body: Bytes::from(plain),
                        })
                    }
                    // An empty error answer (e.g. 400/503 from HTTP.sys) carries nothing to
                    // protect; a plaintext SOAP body on a sealed session would be a downgrade.
                    None if raw.is_empty() => Ok(BackendResponse { status, body: raw }),
                    None => Err(ConnError::Fatal(self.protocol(format!(
                        "unencrypted {status} response body on an encrypted session"
                    )))),
                }
            }
        }
    }

    fn closed(&self, delivery: Delivery, e: hyper::Error) -> BackendError {
        BackendError::Closed {
            host: self.host.clone(),
            delivery,
            source: Some(e),
        }
    }

    fn protocol(&self, reason: String) -> BackendError {
        BackendError::Protocol {
            host: self.host.clone(),
            reason,
        }
    }
}

/// Runs hyper's HTTP/1 client state machine for `io` on its own task.
async fn spawn_http<T>(
    io: T,
    host: &str,
    id: u64,
) -> Result<(SendRequest<Full<Bytes>>, JoinHandle<()>), BackendError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| BackendError::Closed {
            host: host.to_owned(),
            delivery: Delivery::NotSent,
            source: Some(e),
        })?;
    let host = host.to_owned();
    let task = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(host = %host, conn = id, error = %error, "Backend connection ended");
        }
    });
    Ok((sender, task))
}

/// Reads a whole body; `Ok(None)` when it exceeds `max`.
async fn drain(mut body: Incoming, max: usize) -> Result<Option<Bytes>, hyper::Error> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if buf.len().saturating_add(data.len()) > max {
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

fn credssp_error(host: &str, source: CredSspError) -> BackendError {
    BackendError::CredSsp {
        host: host.to_owned(),
        source: Box::new(source),
    }
}

/// Builds `Authorization: Basic base64(user:password)`, marked sensitive.
fn basic_header(credential: &Credential, host: &str) -> Result<HeaderValue, BackendError> {
    let plain = zeroize::Zeroizing::new(format!(
        "{}:{}",
        credential.user,
        credential.password.as_str()
    ));
    let encoded = zeroize::Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(plain.as_bytes())
    ));
    let mut value = HeaderValue::from_str(&encoded).map_err(|_| BackendError::Config {
        host: host.to_owned(),
        reason: "credential cannot be sent in a Basic header".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Finds the NTLM token in `WWW-Authenticate: Negotiate <b64>` or `NTLM <b64>`.
fn challenge_token(resp: &Response<Incoming>) -> Option<Vec<u8>> {
    resp.headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|item| {
            let (scheme, token) = item.trim().split_once(' ')?;
            if scheme.eq_ignore_ascii_case(NEGOTIATE) || scheme.eq_ignore_ascii_case("NTLM") {
                base64::engine::general_purpose::STANDARD
                    .decode(token.trim())
                    .ok()
            } else {
                None
            }
        })
}

/// `Authorization: <scheme> <base64 token>`, marked sensitive so it is never logged.
pub(super) fn auth_header(scheme: &str, token: &[u8]) -> HeaderValue {
    let value = format!(
        "{scheme} {}",
        base64::engine::general_purpose::STANDARD.encode(token)
    );
    // Scheme names are static ASCII and base64 is header-safe: this cannot fail.
    let mut auth = HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""));
    auth.set_sensitive(true);
    auth
}

/// Finds the token in `WWW-Authenticate: <scheme> <b64>` (several headers, or several
/// challenges in one header separated by commas; scheme names ignore case).
pub(super) fn reply_token(headers: &http::HeaderMap, scheme: &str) -> Option<Vec<u8>> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|item| {
            let (name, token) = item.trim().split_once(' ')?;
            if name.eq_ignore_ascii_case(scheme) {
                base64::engine::general_purpose::STANDARD
                    .decode(token.trim())
                    .ok()
            } else {
                None
            }
        })
}

/// Unseals an encrypted response body and checks `Length=`.
fn unseal_body(
    ctx: &mut SealingContext,
    raw: &[u8],
    ct: &crypto::EncryptedContentType,
) -> Result<Vec<u8>, crypto::CryptoError> {
    let expected = ctx.protocol();
    if ct.protocol != expected {
        return Err(crypto::CryptoError::ProtocolMismatch {
            expected: expected.as_str().to_owned(),
            found: ct.protocol.as_str().to_owned(),
        });
    }
    let part = crypto::decode_body(raw, &ct.boundary)?;
    if part.protocol != ct.protocol {
        return Err(crypto::CryptoError::ProtocolMismatch {
            expected: ct.protocol.as_str().to_owned(),
            found: part.protocol.as_str().to_owned(),
        });
    }
    let plain = ctx.unseal(part.header, part.data)?;
    part.check_length(plain.len(), 0)?;
    Ok(plain)
}

/// A client context the 401 exchange drives (sspi Kerberos/Negotiate, GSSAPI delegation).
trait TokenContext {
    /// One handshake step; `None` on the first.
    async fn next(&mut self, input: Option<&[u8]>) -> Result<Step, BackendError>;
    /// Whether the context is complete.
    fn established(&self) -> bool;
}

/// An sspi Kerberos/Negotiate context with the host name for its errors.
struct SspiToken<'a> {
    ctx: KerberosClient,
    host: &'a str,
}

impl TokenContext for SspiToken<'_> {
    async fn next(&mut self, input: Option<&[u8]>) -> Result<Step, BackendError> {
        self.ctx
            .step(input)
            .await
            .map_err(|source| BackendError::Kerberos {
                host: self.host.to_owned(),
                source: Box::new(source),
            })
    }

    fn established(&self) -> bool {
        self.ctx.is_established()
    }
}

/// A GSSAPI delegation context with the host name for its errors.
#[cfg(feature = "delegate")]
struct GssToken<'a> {
    ctx: DelegateClient,
    host: &'a str,
}

#[cfg(feature = "delegate")]
impl TokenContext for GssToken<'_> {
    async fn next(&mut self, input: Option<&[u8]>) -> Result<Step, BackendError> {
        self.ctx
            .step(input)
            .await
            .map_err(|source| BackendError::Delegate {
                host: self.host.to_owned(),
                source: Box::new(source),
            })
    }

    fn established(&self) -> bool {
        self.ctx.is_established()
    }
}
