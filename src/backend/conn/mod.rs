//! One authenticated HTTP/1.1 connection to a host (hyper low-level client).
//!
//! Owns: TCP connect, TLS, choosing the login (the NTLM, Kerberos/Negotiate, delegation and
//! CredSSP handshakes themselves are in `login`), and one request/response exchange at a
//! time with sealing/unsealing of bodies. It does not retry, pool or time out by itself:
//! `client` decides that from the [`ConnError`] it returns. INVARIANT: a `Conn` runs one request at a time (`&mut self`),
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

mod login;

use login::credssp_error;

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

/// Builds `Authorization: Basic base64(user:password)`, marked sensitive.
fn basic_header(credential: &Credential, host: &str) -> Result<HeaderValue, BackendError> {
    let plain = zeroize::Zeroizing::new(format!("{}:{}", credential.user, credential.password()));
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
