//! Audit export: copies of every chained audit line for a SIEM (syslog RFC 5424 over TCP or
//! TLS) and for container log collectors (JSON lines on stdout), besides the file.
//!
//! The file stays the authoritative record. Export is best effort and must never slow the
//! writer or refuse a session: the writer hands each line it wrote to [`Exporters::offer`],
//! which only tries to put it on a bounded queue per destination; a task per destination
//! drains its queue, connecting and reconnecting (with backoff) as needed. When a queue is
//! full the line is counted as dropped and a warning is logged (never the line itself).
//! Lines are exported exactly as written (with `seq`, `prev` and `hash`) so a receiver can
//! verify the chain.
//!
//! - `rfc5424`: message formatting and octet-counting framing (pure);
//! - `syslog`: the TCP/TLS connection task;
//! - `stdout`: the stdout task.

pub mod rfc5424;
mod stdout;
mod syslog;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, watch};

use crate::config::AuditExportConfig;

/// Lines each destination may hold while it cannot send.
const QUEUE_CAPACITY: usize = 10_000;

/// A problem setting up an export destination (at start-up).
#[derive(Debug, Error)]
pub enum ExportError {
    #[error("syslog ca file {path}: {reason}")]
    CaFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("syslog tls server name {name:?} is not valid")]
    ServerName { name: String },
    #[error("syslog tls setup: {reason}")]
    Tls { reason: String },
}

/// How a destination queues and retries; [`ExportTuning::default`] is what the gateway
/// runs with, tests shorten the waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportTuning {
    /// Lines queued per destination before new ones are dropped.
    pub capacity: usize,
    /// First wait after a failed connection attempt; doubled up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Limit for connecting (TCP and TLS handshake) and for each write.
    pub io_timeout: Duration,
}

impl Default for ExportTuning {
    fn default() -> Self {
        Self {
            capacity: QUEUE_CAPACITY,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            io_timeout: Duration::from_secs(10),
        }
    }
}

/// A Prometheus metric: name, type, help, and its value in a destination's stats.
type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ExportStats) -> u64,
);

/// One destination's counters, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportStats {
    /// `syslog` or `stdout`.
    pub destination: &'static str,
    /// Lines accepted and not yet sent (queued or being retried).
    pub queued: u64,
    /// Lines handed to the connection (TCP/TLS) or written to stdout.
    pub sent: u64,
    /// Lines never sent: the queue was full, or the destination went away for good.
    pub dropped: u64,
    /// Whether the destination is connected (stdout: writable) right now.
    pub connected: bool,
}

/// The export destinations of one gateway. Cheap to share (`Arc`); dropping the last
/// reference lets each task send what is queued (if connected) and end.
#[derive(Debug)]
pub struct Exporters {
    outputs: Vec<Output>,
    /// Dropped with `self`: tells tasks waiting to reconnect to give up.
    _alive: watch::Sender<()>,
}

#[derive(Debug)]
struct Output {
    name: &'static str,
    tx: mpsc::Sender<Arc<str>>,
    counters: Arc<Counters>,
}

/// Shared between a destination's queue and its task.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    sent: AtomicU64,
    /// Dropped because the queue was full.
    overflowed: AtomicU64,
    /// Accepted, but lost (stdout closed, shut down while disconnected).
    lost: AtomicU64,
    connected: AtomicBool,
    /// Set at the first overflow, cleared when the task sends again: one warning per
    /// episode instead of one per line.
    overflowing: AtomicBool,
}

// === impl Exporters ===

impl Exporters {
    /// Starts a task per configured destination; `None` when nothing is configured.
    /// Must be called inside a tokio runtime.
    pub async fn start(
        config: &AuditExportConfig,
        tuning: ExportTuning,
    ) -> Result<Option<Arc<Self>>, ExportError> {
        if !config.stdout && config.syslog.is_none() {
            return Ok(None);
        }
        let (alive, watch) = watch::channel(());
        let mut outputs = Vec::new();
        if let Some(s) = &config.syslog {
            let target = syslog::Target::new(s, &hostname().await).await?;
            let (output, rx, counters) = Output::new("syslog", tuning.capacity);
            tracing::info!(address = %s.address, tls = s.tls.is_some(), "Audit export to syslog");
            tokio::spawn(syslog::run(target, tuning, rx, counters, watch.clone()));
            outputs.push(output);
        }
        if config.stdout {
            let (output, rx, counters) = Output::new("stdout", tuning.capacity);
            tokio::spawn(stdout::run(rx, counters));
            outputs.push(output);
        }
        Ok(Some(Arc::new(Self {
            outputs,
            _alive: alive,
        })))
    }

    /// Queues a copy of `line` (one chained audit line, no newline) for every destination.
    /// Never waits.
    pub fn offer(&self, line: &str) {
        let line: Arc<str> = Arc::from(line);
        for o in &self.outputs {
            o.offer(line.clone());
        }
    }

    /// Counters of every destination, in a fixed order (syslog, stdout).
    pub fn stats(&self) -> Vec<ExportStats> {
        self.outputs.iter().map(Output::stats).collect()
    }

    /// The counters as Prometheus text (HELP/TYPE and one sample per destination), for
    /// `/metrics`: `hopgate_audit_export_{sent,dropped}_total` counters and
    /// `hopgate_audit_export_{queued,connected}` gauges, labelled `destination`.
    pub fn prometheus(&self) -> String {
        let stats = self.stats();
        let metrics: [Metric; 4] = [
            (
                "hopgate_audit_export_sent_total",
                "counter",
                "Audit lines sent to an export destination.",
                |s| s.sent,
            ),
            (
                "hopgate_audit_export_dropped_total",
                "counter",
                "Audit lines an export destination never got (queue full, or gone at shutdown); the file has them.",
                |s| s.dropped,
            ),
            (
                "hopgate_audit_export_queued",
                "gauge",
                "Audit lines waiting for an export destination.",
                |s| s.queued,
            ),
            (
                "hopgate_audit_export_connected",
                "gauge",
                "1 while an export destination is connected (stdout: writable).",
                |s| u64::from(s.connected),
            ),
        ];
        let mut m = String::new();
        for (name, kind, help, value) in metrics {
            let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for s in &stats {
                let _ = writeln!(
                    m,
                    "{name}{{destination=\"{}\"}} {}",
                    s.destination,
                    value(s)
                );
            }
        }
        m
    }

    /// Waits until every destination has sent what it accepted, at most `timeout`; true
    /// when nothing is left (for shutdown and tests).
    pub async fn drain(&self, timeout: Duration) -> bool {
        let done = || self.stats().iter().all(|s| s.queued == 0);
        let start = tokio::time::Instant::now();
        while !done() {
            if start.elapsed() >= timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

// === impl Output ===

impl Output {
    fn new(name: &'static str, capacity: usize) -> (Self, mpsc::Receiver<Arc<str>>, Arc<Counters>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        (
            Self {
                name,
                tx,
                counters: counters.clone(),
            },
            rx,
            counters,
        )
    }

    fn offer(&self, line: Arc<str>) {
        let c = &self.counters;
        match self.tx.try_send(line) {
            Ok(()) => {
                c.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                let n = c.overflowed.fetch_add(1, Ordering::Relaxed) + 1;
                if !c.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        destination = self.name,
                        dropped_total = n,
                        "Audit export queue full: lines are dropped for this destination \
                         (the audit file still has them)"
                    );
                }
            }
        }
    }

    fn stats(&self) -> ExportStats {
        let c = &self.counters;
        let accepted = c.accepted.load(Ordering::Relaxed);
        let sent = c.sent.load(Ordering::Relaxed);
        let lost = c.lost.load(Ordering::Relaxed);
        ExportStats {
            destination: self.name,
            queued: accepted.saturating_sub(sent + lost),
            sent,
            dropped: c.overflowed.load(Ordering::Relaxed) + lost,
            connected: c.connected.load(Ordering::Relaxed),
        }
    }
}

// === impl Counters ===

impl Counters {
    /// `n` lines went out; ends an overflow episode.
    fn sent(&self, name: &'static str, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        if self.overflowing.swap(false, Ordering::Relaxed) {
            tracing::info!(
                destination = name,
                dropped_total = self.overflowed.load(Ordering::Relaxed),
                "Audit export queue has room again"
            );
        }
    }

    fn lost(&self, n: u64) {
        self.lost.fetch_add(n, Ordering::Relaxed);
    }
}

/// This machine's name for the HOSTNAME field; `-` (nil) when it cannot be read.
async fn hostname() -> String {
    for path in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(s) = tokio::fs::read_to_string(path).await {
            let s = s.trim();
            if !s.is_empty() {
                return s.to_owned();
            }
        }
    }
    "-".to_owned()
}

#[cfg(test)]
mod tests;
