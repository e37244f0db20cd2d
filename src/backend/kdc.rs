//! Async KDC transport for the Kerberos client (RFC 4120 7.2.2, Kerberos over TCP).
//!
//! `sspi` does not talk to the KDC itself: its handshake suspends with a
//! [`sspi::generator::NetworkRequest`] (already framed with the 4-byte big-endian length) and
//! expects the framed reply back. This module sends one such request over a tokio TCP socket
//! and reads one framed reply, with a deadline and a size cap, so the runtime is never
//! blocked. It owns nothing else: no UDP (tickets with PACs outgrow datagrams), no KDC proxy,
//! no DNS SRV discovery. The KDC address always comes from the gateway's config, never from a
//! client.

use std::time::Duration;

use sspi::generator::NetworkRequest;
use sspi::network_client::NetworkProtocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest KDC reply accepted (a ticket with a large PAC is a few tens of KiB).
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// Default deadline for one KDC exchange (connect, send, read the reply).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors talking to the KDC.
#[derive(Debug, thiserror::Error)]
pub enum KdcError {
    /// The request asked for a transport this client does not speak.
    #[error("kdc transport {protocol:?} is not supported (tcp only)")]
    Unsupported {
        /// What sspi asked for.
        protocol: NetworkProtocol,
    },
    /// The KDC URL has no host.
    #[error("kdc url {url} names no host")]
    NoHost {
        /// The URL (from config; holds no secrets).
        url: String,
    },
    /// TCP connect, write or read failed.
    #[error("kdc {addr} unreachable")]
    Io {
        /// `host:port` tried.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The exchange took longer than the deadline.
    #[error("kdc {addr} did not answer within {after:?}")]
    Timeout {
        /// `host:port` tried.
        addr: String,
        /// The deadline.
        after: Duration,
    },
    /// The reply announced more bytes than [`MAX_REPLY_BYTES`].
    #[error("kdc {addr} reply of {len} bytes exceeds {MAX_REPLY_BYTES}")]
    TooLarge {
        /// `host:port`.
        addr: String,
        /// Announced length.
        len: usize,
    },
}

/// Sends one framed Kerberos message over TCP and returns the framed reply (length prefix
/// included, as `sspi` expects).
pub async fn send(request: &NetworkRequest, timeout: Duration) -> Result<Vec<u8>, KdcError> {
    if request.protocol != NetworkProtocol::Tcp {
        return Err(KdcError::Unsupported {
            protocol: request.protocol,
        });
    }
    let host = request
        .url
        .host_str()
        .ok_or_else(|| KdcError::NoHost {
            url: request.url.to_string(),
        })?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = request.url.port().unwrap_or(88);
    let addr = format!("{host}:{port}");
    match tokio::time::timeout(timeout, exchange(&host, port, &request.data)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(Exchange::Io(source))) => Err(KdcError::Io { addr, source }),
        Ok(Err(Exchange::TooLarge(len))) => Err(KdcError::TooLarge { addr, len }),
        Err(_elapsed) => Err(KdcError::Timeout {
            addr,
            after: timeout,
        }),
    }
}

enum Exchange {
    Io(std::io::Error),
    TooLarge(usize),
}

impl From<std::io::Error> for Exchange {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

async fn exchange(host: &str, port: u16, framed: &[u8]) -> Result<Vec<u8>, Exchange> {
    let mut stream = TcpStream::connect((host, port)).await?;
    let _ = stream.set_nodelay(true);
    stream.write_all(framed).await?;
    stream.flush().await?;
    let len = stream.read_u32().await?;
    let len = usize::try_from(len).map_err(|_| Exchange::TooLarge(usize::MAX))?;
    if len > MAX_REPLY_BYTES {
        return Err(Exchange::TooLarge(len));
    }
    let mut reply = Vec::with_capacity(len.saturating_add(4));
    reply.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    reply.resize(len.saturating_add(4), 0);
    stream
        .read_exact(reply.get_mut(4..).unwrap_or_default())
        .await?;
    Ok(reply)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn request(port: u16, data: Vec<u8>) -> NetworkRequest {
        NetworkRequest {
            protocol: NetworkProtocol::Tcp,
            url: format!("tcp://127.0.0.1:{port}").parse().unwrap(),
            data,
        }
    }

    #[tokio::test]
    async fn framed_reply_is_returned_with_its_length_prefix() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let len = s.read_u32().await.unwrap();
            let mut body = vec![0; len as usize];
            s.read_exact(&mut body).await.unwrap();
            assert_eq!(body, b"as-req");
            s.write_all(&[0, 0, 0, 6]).await.unwrap();
            s.write_all(b"as-rep").await.unwrap();
        });
        let mut framed = 6u32.to_be_bytes().to_vec();
        framed.extend_from_slice(b"as-req");
        let reply = send(&request(port, framed), DEFAULT_TIMEOUT).await.unwrap();
        assert_eq!(reply, b"\0\0\0\x06as-rep");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn closed_port_is_an_io_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = send(&request(port, vec![0, 0, 0, 0]), DEFAULT_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, KdcError::Io { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn oversized_reply_is_refused_before_reading_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.read_u32().await;
            s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        let err = send(&request(port, vec![0, 0, 0, 0]), DEFAULT_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, KdcError::TooLarge { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn silent_kdc_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (_s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let err = send(&request(port, vec![0, 0, 0, 0]), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, KdcError::Timeout { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn udp_is_refused() {
        let mut req = request(88, vec![]);
        req.protocol = NetworkProtocol::Udp;
        let err = send(&req, DEFAULT_TIMEOUT).await.unwrap_err();
        assert!(matches!(err, KdcError::Unsupported { .. }));
    }
}
