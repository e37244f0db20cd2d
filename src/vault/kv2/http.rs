//! One HTTP/1.1 exchange with the secret server (hyper low-level client, rustls on ring).
//!
//! Owns connecting (TCP, then TLS trusting only the configured CA file), sending one
//! request with the token and namespace headers, and reading a bounded answer, all under
//! one timeout. A new connection per exchange: reads are cached, so exchanges are rare, and
//! there is no pooled state to go stale. It never logs a token or a body.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use super::settings::{Kv2Address, Kv2Settings};
use crate::secret::Secret;
use crate::vault::error::VaultError;

/// Largest answer accepted from the server.
const MAX_BODY: usize = 1024 * 1024;

/// An answer: status and body (wiped on drop: it may hold secrets).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

/// Sends requests to one server.
#[derive(Clone)]
pub(crate) struct HttpClient {
    address: Kv2Address,
    /// `address` as text, for errors.
    display: String,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    namespace: Option<HeaderValue>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("address", &self.display)
            .finish_non_exhaustive()
    }
}

// === impl HttpClient ===

impl HttpClient {
    /// Builds the client: loads the CA file for https; refuses plain http to anything but a
    /// loopback address.
    pub(crate) fn new(settings: &Kv2Settings) -> Result<Self, VaultError> {
        let address = settings.address.clone();
        let display = address.to_string();
        let bad = |why: String| VaultError::Settings { why };
        let tls = if address.tls {
            let ca_file = settings
                .ca_file
                .as_ref()
                .ok_or_else(|| bad(format!("{display} is https: set vault.ca_file")))?;
            let roots = crate::tls::load_roots(ca_file).map_err(|e| bad(e.to_string()))?;
            let config = crate::tls::client_config(roots, None).map_err(|e| bad(e.to_string()))?;
            let name = ServerName::try_from(address.host.clone())
                .map_err(|_| bad(format!("invalid tls server name {:?}", address.host)))?;
            Some((config, name))
        } else if address.is_loopback() {
            None
        } else {
            return Err(bad(format!(
                "{display}: plain http is only allowed to a loopback address"
            )));
        };
        let namespace = settings
            .namespace
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| bad("invalid namespace".to_owned()))?;
        Ok(Self {
            address,
            display,
            tls,
            namespace,
            timeout: settings.timeout,
        })
    }

    /// The server address as text.
    pub(crate) fn address(&self) -> &str {
        &self.display
    }

    /// Sends `method /v1/<path_and_query>` with the token (if any) and a JSON body (if any).
    pub(crate) async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        token: Option<&Secret>,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Reply, VaultError> {
        let unreachable = |why: String| VaultError::Unreachable {
            address: self.display.clone(),
            why,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/v1/{path_and_query}"))
            .header(HOST, self.address.authority())
            .header("X-Vault-Request", "true");
        if let Some(token) = token {
            let mut value =
                HeaderValue::from_str(token.expose()).map_err(|_| VaultError::Login {
                    method: "token",
                    why: "the token has characters not allowed in a header".to_owned(),
                })?;
            value.set_sensitive(true);
            builder = builder.header("X-Vault-Token", value);
        }
        if let Some(ns) = &self.namespace {
            builder = builder.header("X-Vault-Namespace", ns.clone());
        }
        let payload = match body {
            Some(b) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                // hyper needs owned bytes; the copy is released (not wiped) after sending.
                Bytes::copy_from_slice(&b)
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| unreachable(format!("cannot build the request: {e}")))?;
        tokio::time::timeout(self.timeout, self.exchange(request))
            .await
            .map_err(|_| {
                unreachable(format!("no answer within {} s", self.timeout.as_secs_f32()))
            })?
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Reply, VaultError> {
        let tcp = TcpStream::connect((self.address.host.as_str(), self.address.port))
            .await
            .map_err(|e| VaultError::Unreachable {
                address: self.display.clone(),
                why: format!("connect: {e}"),
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some((config, name)) => {
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| VaultError::Unreachable {
                        address: self.display.clone(),
                        why: format!("tls: {e}"),
                    })?;
                self.roundtrip(stream, request).await
            }
            None => self.roundtrip(tcp, request).await,
        }
    }

    async fn roundtrip<T>(&self, io: T, request: Request<Full<Bytes>>) -> Result<Reply, VaultError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let failed = |what: &str, e: hyper::Error| VaultError::Unreachable {
            address: self.display.clone(),
            why: format!("{what}: {e}"),
        };
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake::<_, Full<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| failed("http handshake", e))?;
        // The connection task must not outlive the exchange, even when the timeout drops
        // this future half-way.
        let task = AbortOnDrop(tokio::spawn(connection));
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| failed("request", e))?;
        let status = response.status().as_u16();
        // Sized up front where possible: a growing buffer leaves unwiped copies behind.
        let expected = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(4096)
            .min(MAX_BODY);
        let mut body = response.into_body();
        let mut buf = Zeroizing::new(Vec::with_capacity(expected));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| failed("reading the answer", e))?;
            if let Ok(data) = frame.into_data() {
                if buf.len().saturating_add(data.len()) > MAX_BODY {
                    return Err(VaultError::Malformed {
                        path: "answer".to_owned(),
                        why: format!("longer than {MAX_BODY} bytes"),
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
        drop((sender, task));
        Ok(Reply { status, body: buf })
    }
}

/// Aborts the connection task when the exchange ends or is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
