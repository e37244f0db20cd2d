//! One keep-alive HTTP/1.1 connection per session (TLS or plain), as WinRM clients use.

use std::path::PathBuf;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::LoadSettings;
use crate::tls;

/// How sessions sign in.
#[derive(Clone)]
pub enum Auth {
    /// A client certificate (the gateway's mTLS).
    ClientCert { cert: PathBuf, key: PathBuf },
    /// `Authorization: Basic` (the emulated host over HTTPS).
    Basic { user: String, password: String },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password or token.
        match self {
            Self::ClientCert { cert, .. } => write!(f, "ClientCert({})", cert.display()),
            Self::Basic { user, .. } => write!(f, "Basic({user})"),
            Self::Bearer(_) => f.write_str("Bearer"),
        }
    }
}

/// Why the client could not be set up or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("a client certificate needs TLS (--ca)")]
    CertWithoutTls,
}

/// What every session shares: where to connect, TLS, the Authorization value.
pub(super) struct Client {
    target: std::net::SocketAddr,
    path: String,
    tls: Option<tokio_rustls::TlsConnector>,
    /// The same trust, without the client certificate (hostile traffic).
    anonymous_tls: Option<tokio_rustls::TlsConnector>,
    authorization: Option<HeaderValue>,
}

/// One open connection.
pub(super) struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    pub(super) fn new(s: &LoadSettings) -> Result<Self, ClientError> {
        let identity = match &s.auth {
            Auth::ClientCert { cert, key } => {
                if s.tls_ca.is_none() {
                    return Err(ClientError::CertWithoutTls);
                }
                Some((tls::load_certs(cert)?, tls::load_key(key)?))
            }
            _ => None,
        };
        let (tls, anonymous_tls) = match &s.tls_ca {
            Some(ca) => (
                Some(tokio_rustls::TlsConnector::from(tls::client_config(
                    tls::load_roots(ca)?,
                    identity,
                )?)),
                Some(tokio_rustls::TlsConnector::from(tls::client_config(
                    tls::load_roots(ca)?,
                    None,
                )?)),
            ),
            None => (None, None),
        };
        let authorization = match &s.auth {
            Auth::ClientCert { .. } => None,
            Auth::Basic { user, password } => HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ))
            .ok(),
            Auth::Bearer(token) => HeaderValue::from_str(&format!("Bearer {token}")).ok(),
        };
        Ok(Self {
            target: s.target,
            path: s.path.clone(),
            tls,
            anonymous_tls,
            authorization,
        })
    }

    pub(super) fn target(&self) -> std::net::SocketAddr {
        self.target
    }

    /// The sessions' `Authorization` value, if they send one.
    pub(super) fn authorization_str(&self) -> Option<&str> {
        self.authorization.as_ref().and_then(|v| v.to_str().ok())
    }

    pub(super) async fn connect(&self) -> Result<Conn, ClientError> {
        self.connect_as(true, None).await
    }

    /// A connection presenting the client certificate (if any) when `identified`, from
    /// `source` (a loopback address) when given.
    pub(super) async fn connect_as(
        &self,
        identified: bool,
        source: Option<std::net::IpAddr>,
    ) -> Result<Conn, ClientError> {
        let tcp = match source {
            None => TcpStream::connect(self.target).await,
            Some(ip) => {
                let socket = if ip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(ClientError::Connect)?;
                socket
                    .bind(std::net::SocketAddr::new(ip, 0))
                    .map_err(ClientError::Connect)?;
                socket.connect(self.target).await
            }
        }
        .map_err(ClientError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let connector = if identified {
            &self.tls
        } else {
            &self.anonymous_tls
        };
        let sender = match connector {
            Some(connector) => {
                let name = rustls_pki_types::ServerName::try_from("localhost")
                    .map_err(|e| ClientError::Connect(std::io::Error::other(e)))?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(ClientError::Connect)?;
                handshake(TokioIo::new(stream)).await?
            }
            None => handshake(TokioIo::new(tcp)).await?,
        };
        Ok(Conn { sender })
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, ClientError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

impl Conn {
    /// POSTs `body` with exactly this `Authorization` (or none); the HTTP status.
    pub(super) async fn post_raw(
        &mut self,
        client: &Client,
        authorization: Option<&str>,
        body: String,
    ) -> Result<u16, ClientError> {
        let mut req = Request::post(&client.path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/soap+xml;charset=UTF-8")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Connect(std::io::Error::other(e)))?;
        if let Some(a) = authorization.and_then(|a| HeaderValue::from_str(a).ok()) {
            req.headers_mut().insert(header::AUTHORIZATION, a);
        }
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let _ = resp.into_body().collect().await;
        Ok(status)
    }

    /// POSTs one envelope; the answer's body (a 500 carries a SOAP fault and is returned).
    pub(super) async fn post(
        &mut self,
        client: &Client,
        body: String,
    ) -> Result<Bytes, ClientError> {
        let mut req = Request::post(&client.path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/soap+xml;charset=UTF-8")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Connect(std::io::Error::other(e)))?;
        if let Some(a) = &client.authorization {
            req.headers_mut().insert(header::AUTHORIZATION, a.clone());
        }
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if status != 200 && status != 500 {
            return Err(ClientError::Status(status));
        }
        Ok(bytes)
    }
}
