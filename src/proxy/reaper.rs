//! Shells the gateway ends by itself: those the registry lets go (idle past their host's
//! timeout, which is how a vanished client's shell ends; evicted when the registry is
//! full) and, at shutdown, every shell still open. Each is closed on its host like an
//! administrator's terminate (Signal terminate to its running commands, then Delete) and
//! gets its one `session.end`, with the reason.
//!
//! Exactly one end per shell: a shell reaches this file only after it left the registry
//! (moka reports an expired or evicted entry once; shutdown takes each with `remove`),
//! and every other way out (the client's Delete, the admin API) also goes through a
//! `remove` that only one caller can win.

use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::terminate::HostCloser;
use super::Gateway;
use crate::admin::ShellCloser as _;
use crate::session::{Ended, ShellIdentity};

/// How often the registry is asked to let idle shells go: the idle timeout is honoured to
/// within this.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How long the reaper waits for a host to confirm closing an idle or evicted shell.
const HOST_CLOSE: Duration = Duration::from_secs(15);

/// The `reason` of the `session.end` of shells closed because the gateway stops.
pub const SHUTDOWN: &str = "shutdown";

// === impl Gateway ===

impl Gateway {
    /// A closer for this gateway's shells (also the admin API's).
    pub fn host_closer(&self) -> HostCloser {
        HostCloser::new(
            self.backends.clone(),
            self.config.clone(),
            self.inspectors.clone(),
        )
    }

    /// Closes a shell already out of the registry on its host and records its end, also
    /// when the host does not confirm within `within` (then `host_closed` is false).
    async fn end_shell(self, shell: ShellIdentity, reason: &'static str, within: Duration) {
        // Read now: the closer takes the inspector, and a host too slow to answer must
        // not cost the record its counters. Nothing changes them any more (the shell is
        // out of the registry, so no request on it is relayed).
        let counts = self
            .inspectors
            .get(&shell.shell_id)
            .and_then(|i| i.lock().ok().map(|i| i.counts()))
            .unwrap_or_default();
        let host_closed =
            match tokio::time::timeout(within, self.host_closer().close(shell.clone())).await {
                Ok(closed) => closed.host_closed,
                Err(_) => false,
            };
        tracing::info!(
            session = %shell.session_id,
            host = %shell.host,
            reason,
            host_closed,
            "Shell closed by the gateway"
        );
        self.session_end_closed(&shell, counts, reason, host_closed);
    }

    /// Closes every shell still open (at shutdown, once the listener has drained), each
    /// on its host, waiting at most `within` for each host; returns how many it closed
    /// (each with its `session.end`).
    pub async fn close_all(&self, reason: &'static str, within: Duration) -> u64 {
        let mut closing = JoinSet::new();
        for shell in self.sessions.list() {
            if let Some(shell) = self.sessions.remove(&shell.shell_id) {
                closing.spawn(self.clone().end_shell(shell, reason, within));
            }
        }
        let n = closing.len() as u64;
        while closing.join_next().await.is_some() {}
        n
    }

    /// Ends the shells the registry lets go, until `stop`; then finishes the ends already
    /// started (and any reported meanwhile) and returns.
    pub async fn reap(self, mut ended: UnboundedReceiver<Ended>, mut stop: oneshot::Receiver<()>) {
        let mut closing = JoinSet::new();
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = sweep.tick() => self.sessions.sweep(),
                Some(e) = ended.recv() => {
                    closing.spawn(self.clone().end_shell(e.shell, e.cause.reason(), HOST_CLOSE));
                }
                Some(_) = closing.join_next(), if !closing.is_empty() => {}
            }
        }
        self.sessions.sweep();
        while let Ok(e) = ended.try_recv() {
            closing.spawn(
                self.clone()
                    .end_shell(e.shell, e.cause.reason(), HOST_CLOSE),
            );
        }
        while closing.join_next().await.is_some() {}
    }
}
