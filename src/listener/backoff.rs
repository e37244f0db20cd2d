//! What the accept loop does after `accept()` fails.
//!
//! A connection the peer reset before we took it (ECONNABORTED, ECONNRESET) is nobody's
//! problem: try again at once. Anything else (EMFILE, ENFILE, ENOBUFS, ENOMEM) will fail
//! again immediately, so the loop sleeps, doubling the pause up to a ceiling, and logs at
//! most once per interval with the number of errors since the last line: a descriptor
//! shortage must neither spin a core nor flood the log.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

/// First pause after a resource error.
const FIRST_DELAY: Duration = Duration::from_millis(10);
/// Longest pause.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// At most one log line per this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Back-off state of one accept loop.
#[derive(Debug)]
pub(super) struct AcceptBackoff {
    listener: &'static str,
    delay: Duration,
    last_log: Option<Instant>,
    /// Errors not yet reported in a log line.
    unreported: u64,
}

/// Whether an accept error concerns only the connection that was being accepted.
fn per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

// === impl AcceptBackoff ===

impl AcceptBackoff {
    pub(super) fn new(listener: &'static str) -> Self {
        Self {
            listener,
            delay: Duration::ZERO,
            last_log: None,
            unreported: 0,
        }
    }

    /// Logs (rate-limited) and sleeps as `error` deserves.
    pub(super) async fn after_error(&mut self, error: &io::Error) {
        let pause = self.pause_for(error);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }

    /// Records `error`, logs it when the interval allows, and returns the pause it deserves.
    pub(super) fn pause_for(&mut self, error: &io::Error) -> Duration {
        if per_connection(error) {
            tracing::debug!(listener = self.listener, %error, "Accept failed for one connection");
            return Duration::ZERO;
        }
        self.unreported += 1;
        self.delay = (self.delay * 2).clamp(FIRST_DELAY, MAX_DELAY);
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= LOG_INTERVAL)
        {
            tracing::warn!(
                listener = self.listener,
                %error,
                errors = self.unreported,
                backoff_ms = u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX),
                "Accept failing; backing off (raise the descriptor limit or lower max_connections)"
            );
            self.last_log = Some(now);
            self.unreported = 0;
        }
        self.delay
    }

    /// Resets the pause after a successful accept.
    pub(super) fn after_success(&mut self) {
        self.delay = Duration::ZERO;
    }
}
