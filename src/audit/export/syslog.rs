//! The syslog destination's task: one TCP (or TLS, RFC 5425) connection to the collector,
//! RFC 5424 messages in RFC 6587 octet-counting frames.
//!
//! It takes lines off its queue in batches, connects when it has something to send,
//! reconnects with exponential backoff while the collector is away (the queue fills
//! meanwhile; see `Exporters::offer`), and resends a batch whose write failed on the new
//! connection. A receiver never sends anything, so reading EOF while idle means it went
//! away: the task notices that before the next write instead of losing it into a dead
//! socket. Delivery is at least once for what a failed write held (a receiver may see a
//! line twice; `seq`/`hash` identify it); TCP has no acknowledgement, so lines in the
//! kernel's buffer when a collector crashes can still be lost: the file is the record.
//! It must not log line content or block the audit writer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsConnector;

use super::rfc5424::{octet_counted, Rfc5424};
use super::{Counters, ExportError, ExportTuning};
use crate::config::SyslogConfig;

/// Bytes gathered into one write.
const MAX_BATCH_BYTES: usize = 256 * 1024;
const NAME: &str = "syslog";

/// Where and how to send.
pub(super) struct Target {
    address: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    format: Rfc5424,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("address", &self.address)
            .field("tls", &self.tls.as_ref().map(|(_, n)| n))
            .finish()
    }
}

/// A connection, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
type Conn = Box<dyn Stream>;

// === impl Target ===

impl Target {
    /// Reads the CA file and builds the TLS client (TLS 1.2 and 1.3, ring) when configured.
    pub(super) async fn new(cfg: &SyslogConfig, hostname: &str) -> Result<Self, ExportError> {
        let tls = match &cfg.tls {
            None => None,
            Some(t) => {
                let ca_err = |reason: String| ExportError::CaFile {
                    path: t.ca_file.clone(),
                    reason,
                };
                let pem = tokio::fs::read(&t.ca_file)
                    .await
                    .map_err(|e| ca_err(e.to_string()))?;
                let roots = crate::tls::roots_from_pem(&pem, &t.ca_file)
                    .map_err(|e| ca_err(e.to_string()))?;
                let config =
                    crate::tls::client_config(roots, None).map_err(|e| ExportError::Tls {
                        reason: e.to_string(),
                    })?;
                let name = ServerName::try_from(t.server_name.clone()).map_err(|_| {
                    ExportError::ServerName {
                        name: t.server_name.clone(),
                    }
                })?;
                Some((TlsConnector::from(config), name))
            }
        };
        Ok(Self {
            address: cfg.address.clone(),
            tls,
            format: Rfc5424::new(
                cfg.facility,
                hostname,
                &cfg.app_name,
                &std::process::id().to_string(),
            ),
        })
    }

    async fn connect(&self, limit: Duration) -> std::io::Result<Conn> {
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let tcp = tokio::time::timeout(limit, TcpStream::connect(self.address.as_str()))
            .await
            .map_err(|_| timed_out())??;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(limit, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| timed_out())??;
                Ok(Box::new(tls))
            }
        }
    }
}

/// What ended waiting for the next line.
enum Idle {
    Line(Option<Arc<str>>),
    PeerGone(String),
}

/// Sends queued lines until the queue's senders are gone and it is empty, or the gateway
/// shuts down while the collector is unreachable.
pub(super) async fn run(
    target: Target,
    tuning: ExportTuning,
    mut rx: mpsc::Receiver<Arc<str>>,
    counters: Arc<Counters>,
    mut alive: watch::Receiver<()>,
) {
    let mut conn: Option<Conn> = None;
    let mut batch: Vec<u8> = Vec::new();
    let mut lines: u64 = 0;
    let mut backoff = tuning.backoff_min;
    let mut failures: u32 = 0;
    loop {
        if lines == 0 {
            let idle = match conn.as_mut() {
                Some(c) => tokio::select! {
                    m = rx.recv() => Idle::Line(m),
                    why = peer_gone(c) => Idle::PeerGone(why),
                },
                None => Idle::Line(rx.recv().await),
            };
            let line = match idle {
                Idle::Line(Some(line)) => line,
                Idle::Line(None) => break,
                Idle::PeerGone(reason) => {
                    tracing::warn!(address = %target.address, %reason, "Audit syslog receiver went away; reconnecting");
                    conn = None;
                    counters.connected.store(false, Ordering::Relaxed);
                    continue;
                }
            };
            octet_counted(&target.format.message(&line), &mut batch);
            lines = 1;
            while batch.len() < MAX_BATCH_BYTES {
                let Ok(line) = rx.try_recv() else { break };
                octet_counted(&target.format.message(&line), &mut batch);
                lines += 1;
            }
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match target.connect(tuning.io_timeout).await {
                Ok(c) => {
                    tracing::info!(address = %target.address, "Audit syslog connected");
                    counters.connected.store(true, Ordering::Relaxed);
                    conn.insert(c)
                }
                Err(error) => {
                    failures += 1;
                    // The first failure, then once per longest wait: visible, not a flood.
                    if failures == 1 || backoff >= tuning.backoff_max {
                        tracing::warn!(
                            address = %target.address,
                            %error,
                            failures,
                            queued = lines + rx.len() as u64,
                            "Audit syslog receiver unreachable; retrying"
                        );
                    }
                    if pause(&mut backoff, &tuning, &mut alive).await {
                        // Shutting down with the receiver away: what is left is lost to
                        // it (it is in the file).
                        counters.lost(lines + rx.len() as u64);
                        break;
                    }
                    continue;
                }
            },
        };
        let write = async {
            c.write_all(&batch).await?;
            c.flush().await
        };
        match tokio::time::timeout(tuning.io_timeout, write).await {
            Ok(Ok(())) => {
                counters.sent(NAME, lines);
                batch.clear();
                lines = 0;
                // Only a delivered batch proves the receiver healthy again.
                backoff = tuning.backoff_min;
                failures = 0;
                continue;
            }
            Ok(Err(error)) => {
                tracing::warn!(address = %target.address, %error, "Audit syslog write failed; resending after reconnecting");
            }
            Err(_) => {
                tracing::warn!(address = %target.address, "Audit syslog write timed out; resending after reconnecting");
            }
        }
        conn = None;
        counters.connected.store(false, Ordering::Relaxed);
        // A receiver that accepts and then fails every write must not be hammered.
        if pause(&mut backoff, &tuning, &mut alive).await {
            counters.lost(lines + rx.len() as u64);
            break;
        }
    }
    if let Some(mut c) = conn {
        let _ = tokio::time::timeout(tuning.io_timeout, c.shutdown()).await;
    }
    counters.connected.store(false, Ordering::Relaxed);
}

/// Waits `backoff` (then doubles it, up to the maximum); true when the gateway is shutting
/// down instead.
async fn pause(
    backoff: &mut Duration,
    tuning: &ExportTuning,
    alive: &mut watch::Receiver<()>,
) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(tuning.backoff_max);
    tokio::select! {
        () = tokio::time::sleep(wait) => false,
        _ = alive.changed() => true,
    }
}

/// Resolves when the receiver closes the connection (it never sends anything itself).
async fn peer_gone(c: &mut Conn) -> String {
    let mut buf = [0u8; 256];
    loop {
        match c.read(&mut buf).await {
            Ok(0) => return "connection closed".into(),
            Ok(_) => continue,
            Err(e) => return e.to_string(),
        }
    }
}
