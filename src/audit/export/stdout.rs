//! The stdout destination's task: each audit line as one JSON line on standard output, for
//! container log collectors. Logs (tracing) go to stderr, so stdout carries nothing else
//! while this is on. When stdout cannot be written (closed pipe) the task keeps draining
//! its queue and counts the lines as dropped, so the writer never notices.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::Counters;

/// Lines gathered into one write.
const MAX_BATCH_LINES: u64 = 512;
const NAME: &str = "stdout";

/// Writes queued lines to stdout until the queue's senders are gone and it is empty.
pub(super) async fn run(rx: mpsc::Receiver<Arc<str>>, counters: Arc<Counters>) {
    run_to(tokio::io::stdout(), rx, counters).await;
}

/// [`run`] for any writer (tests use a pipe).
pub(super) async fn run_to<W: tokio::io::AsyncWrite + Unpin>(
    mut out: W,
    mut rx: mpsc::Receiver<Arc<str>>,
    counters: Arc<Counters>,
) {
    counters.connected.store(true, Ordering::Relaxed);
    let mut broken = false;
    let mut buf = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut lines = 0;
        let mut next = Some(first);
        while let Some(line) = next {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            lines += 1;
            next = if lines < MAX_BATCH_LINES {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if broken {
            counters.lost(lines);
        } else {
            let write = async {
                out.write_all(&buf).await?;
                out.flush().await
            };
            match write.await {
                Ok(()) => counters.sent(NAME, lines),
                Err(error) => {
                    tracing::warn!(%error, "Audit export to stdout failed; no further lines are written there");
                    broken = true;
                    counters.connected.store(false, Ordering::Relaxed);
                    counters.lost(lines);
                }
            }
        }
        buf.clear();
    }
    counters.connected.store(false, Ordering::Relaxed);
}
