//! HTTP side of the test host: accept loop, TLS, per-connection authentication and
//! WinRM message encryption around the emulated WinRS service.
//!
//! Owns what a Windows listener does before SOAP: the 401 Negotiate/NTLM dance on one
//! keep-alive connection (the context belongs to the TCP connection), the empty POST that
//! finishes it, sealing/unsealing bodies over http, and Basic over https. It never logs
//! Authorization headers or bodies.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::backend::crypto::{self, EncryptionProtocol};
use crate::backend::ntlm;
use crate::listener::{ConnInfo, Listener};

use super::auth::{Accounts, NtlmAcceptor, Step};
use super::winrs::WinRs;

/// Largest request body accepted (clients cap envelopes at 512 KB after config reads).
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
const SOAP: &str = "application/soap+xml;charset=UTF-8";
/// Pause before answering a Receive that has nothing to report.
const IDLE_POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// Longest a held Receive waits, whatever the client asked.
const MAX_HOLD: std::time::Duration = std::time::Duration::from_secs(120);

/// Shared state of a running test host.
#[derive(Debug)]
pub(crate) struct HostState {
    pub(crate) accounts: Accounts,
    pub(crate) winrs: WinRs,
    pub(crate) https: bool,
    /// `tls-server-end-point` of the host's certificate (https only).
    pub(crate) channel_binding: Option<Vec<u8>>,
    /// Hold idle Receives for their OperationTimeout (see `TesthostSettings`).
    pub(crate) hold_receives: bool,
}

/// Authentication state of one TCP connection.
#[derive(Debug, Default)]
struct ConnState {
    acceptor: Option<NtlmAcceptor>,
    /// Header scheme the client used for NTLM (`Negotiate` or `NTLM`), echoed back.
    scheme: String,
}

/// Serves the test host on `listener` (the crate's one accept loop) until `shutdown`
/// resolves; each connection gets its own authentication state.
pub(crate) async fn serve(
    listener: Listener,
    host: Arc<HostState>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    listener
        .serve(
            move |info: ConnInfo| {
                let host = host.clone();
                let conn = Arc::new(Mutex::new(ConnState::default()));
                move |req: Request<Incoming>| {
                    let host = host.clone();
                    let conn = conn.clone();
                    async move { handle(req, info.peer, &host, &conn).await }
                }
            },
            shutdown,
        )
        .await;
}

/// What the authentication phase decided for one request.
enum Next {
    /// Answer now (401, 400, the empty 200 that ends a handshake...).
    Answer(Response<Full<Bytes>>),
    /// Hand this plaintext SOAP to the WinRS service as `user`; `seal` the reply when the
    /// request came sealed.
    Soap {
        user: String,
        plain: Bytes,
        seal: bool,
    },
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    host: &HostState,
    conn: &Mutex<ConnState>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Some(body) = read_body(body).await else {
        return empty(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let header_str = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header_str(header::AUTHORIZATION);
    let content_type = header_str(header::CONTENT_TYPE);
    let next = {
        // INVARIANT: the lock is never held across an await.
        let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
        authenticate(host, &mut conn, peer, authorization, content_type, body)
    };
    let Next::Soap { user, plain, seal } = next else {
        return match next {
            Next::Answer(resp) => resp,
            Next::Soap { .. } => empty(StatusCode::INTERNAL_SERVER_ERROR),
        };
    };
    let reply = host.winrs.handle(&user, &peer.ip().to_string(), &plain);
    if reply.idle {
        // A Receive with nothing to report: Windows holds it for OperationTimeout (when
        // asked to, so does this host); otherwise a short pause keeps polling clients from
        // spinning.
        let pause = match reply.hold {
            Some(timeout) if host.hold_receives => timeout.min(MAX_HOLD),
            _ => IDLE_POLL,
        };
        tokio::time::sleep(pause).await;
    }
    if !seal {
        return soap(reply.status, reply.body);
    }
    let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ctx) = conn.acceptor.as_mut().and_then(NtlmAcceptor::context) else {
        return challenge(host, None);
    };
    match ntlm::seal(ctx, &reply.body) {
        Ok(sealed) => {
            let wire = crypto::encode_body(EncryptionProtocol::Spnego, reply.body.len(), &sealed);
            let mut resp = Response::new(Full::new(Bytes::from(wire)));
            *resp.status_mut() = reply.status;
            set(
                &mut resp,
                header::CONTENT_TYPE,
                &EncryptionProtocol::Spnego.content_type(),
            );
            resp
        }
        Err(error) => {
            tracing::warn!(error = %error, "Test host could not seal a reply");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Runs the connection's authentication for one request and unseals its body.
fn authenticate(
    host: &HostState,
    conn: &mut ConnState,
    peer: SocketAddr,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Bytes,
) -> Next {
    if let Some(auth) = authorization {
        let (scheme, value) = auth.split_once(' ').unwrap_or((auth.as_str(), ""));
        if scheme.eq_ignore_ascii_case("Basic") {
            return basic(host, value.trim(), body);
        }
        if scheme.eq_ignore_ascii_case("Negotiate") || scheme.eq_ignore_ascii_case("NTLM") {
            let Ok(token) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
                return Next::Answer(challenge(host, None));
            };
            match ntlm_leg(host, conn, scheme, &token) {
                Leg::Reply(resp) => return Next::Answer(resp),
                // Authenticated: an empty body finishes the handshake (PROTOCOL.md §10).
                Leg::Authenticated if body.is_empty() => {
                    return Next::Answer(empty(StatusCode::OK))
                }
                Leg::Authenticated => {}
            }
        } else {
            return Next::Answer(challenge(host, None));
        }
    }

    let Some(acceptor) = conn.acceptor.as_mut() else {
        return Next::Answer(challenge(host, None));
    };
    let Some(user) = acceptor.user().map(str::to_owned) else {
        return Next::Answer(challenge(host, None));
    };
    let encrypted = match content_type.as_deref().map(crypto::parse_content_type) {
        Some(Ok(ct)) => ct,
        Some(Err(_)) => return Next::Answer(empty(StatusCode::BAD_REQUEST)),
        None => None,
    };
    let Some(ct) = encrypted else {
        // Plaintext is fine inside TLS; over http Windows insists on encryption.
        if host.https {
            return Next::Soap {
                user,
                plain: body,
                seal: false,
            };
        }
        return Next::Answer(empty(StatusCode::BAD_REQUEST));
    };
    let Some(ctx) = acceptor.context() else {
        return Next::Answer(challenge(host, None));
    };
    match crypto::decode_body(&body, &ct.boundary).and_then(|part| {
        let plain = ntlm::unseal(ctx, part.header, part.data)?;
        part.check_length(plain.len(), 0)?;
        Ok(plain)
    }) {
        Ok(plain) => Next::Soap {
            user,
            plain: Bytes::from(plain),
            seal: true,
        },
        Err(error) => {
            tracing::info!(peer = %peer, error = %error, "Test host could not unseal a request");
            // The context is out of step now: make the client start over.
            conn.acceptor = None;
            Next::Answer(challenge(host, None))
        }
    }
}

enum Leg {
    Reply(Response<Full<Bytes>>),
    Authenticated,
}

fn ntlm_leg(host: &HostState, conn: &mut ConnState, scheme: &str, token: &[u8]) -> Leg {
    // Choose by the token, not the header scheme (PROTOCOL.md §10). Only raw NTLMSSP here.
    let Some(kind) = token
        .strip_prefix(b"NTLMSSP\0".as_slice())
        .and_then(|rest| rest.first())
    else {
        return Leg::Reply(challenge(host, None));
    };
    if *kind == 1 {
        conn.acceptor = match NtlmAcceptor::new(host.channel_binding.as_deref()) {
            Ok(a) => Some(a),
            Err(_) => return Leg::Reply(empty(StatusCode::INTERNAL_SERVER_ERROR)),
        };
        conn.scheme = scheme.to_owned();
    }
    let Some(acceptor) = conn.acceptor.as_mut() else {
        return Leg::Reply(challenge(host, None));
    };
    match acceptor.step(token, &host.accounts) {
        Ok(Step::Challenge(out)) => {
            let value = format!(
                "{} {}",
                conn.scheme,
                base64::engine::general_purpose::STANDARD.encode(out)
            );
            Leg::Reply(challenge(host, Some(value)))
        }
        Ok(Step::Done(user)) => {
            tracing::info!(user = %user, "Test host authenticated a user with NTLM");
            Leg::Authenticated
        }
        Err(error) => {
            tracing::info!(error = %error, "Test host rejected an NTLM logon");
            conn.acceptor = None;
            Leg::Reply(challenge(host, None))
        }
    }
}

fn basic(host: &HostState, value: &str, body: Bytes) -> Next {
    // Basic sends the password in clear: a Windows listener refuses it on http by default.
    if !host.https {
        return Next::Answer(challenge(host, None));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(zeroize::Zeroizing::new);
    let user = decoded.as_ref().and_then(|d| {
        let (user, password) = d.split_once(':')?;
        host.accounts.check_basic(user, password)
    });
    match user {
        Some(user) => Next::Soap {
            user,
            plain: body,
            seal: false,
        },
        None => {
            tracing::info!("Test host rejected a Basic logon");
            Next::Answer(challenge(host, None))
        }
    }
}

/// 401 with the schemes a Windows listener offers, or with the next NTLM token.
fn challenge(host: &HostState, token: Option<String>) -> Response<Full<Bytes>> {
    let mut resp = empty(StatusCode::UNAUTHORIZED);
    let headers = resp.headers_mut();
    match token {
        Some(value) => {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.append(header::WWW_AUTHENTICATE, v);
            }
        }
        None => {
            headers.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Negotiate"),
            );
            headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("NTLM"));
            if host.https {
                headers.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"WSMAN\""),
                );
            }
        }
    }
    resp
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    // Every 401 needs Content-Length: 0 and keep-alive (PROTOCOL.md §10).
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    set(&mut resp, header::SERVER, "Microsoft-HTTPAPI/2.0");
    resp
}

fn soap(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    set(&mut resp, header::CONTENT_TYPE, SOAP);
    set(&mut resp, header::SERVER, "Microsoft-HTTPAPI/2.0");
    resp
}

fn set(resp: &mut Response<Full<Bytes>>, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Reads a request body; `None` when it exceeds the limit.
async fn read_body(mut body: Incoming) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.ok()?;
        if let Ok(data) = frame.into_data() {
            if buf.len().saturating_add(data.len()) > MAX_REQUEST_BYTES {
                return None;
            }
            buf.extend_from_slice(&data);
        }
    }
    Some(buf.freeze())
}
