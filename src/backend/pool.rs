//! Idle authenticated connections of one `BackendClient` (one host + one credential).
//!
//! Owns: a bounded LIFO of idle connections with an idle timeout. It never opens
//! connections itself and never hands the same connection to two callers (a connection is
//! moved out while in use, which keeps each NTLM sealing context single-user and in order).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::conn::Conn;

/// Idle connections, newest at the back.
#[derive(Debug)]
pub(crate) struct Pool {
    idle: Mutex<VecDeque<Conn>>,
    max_idle: usize,
    idle_timeout: Duration,
    /// Wakes one caller waiting for a connection when one is returned.
    returned: Notify,
}

// === impl Pool ===

impl Pool {
    pub(crate) fn new(max_idle: usize, idle_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(VecDeque::new()),
            max_idle,
            idle_timeout,
            returned: Notify::new(),
        }
    }

    /// Completes when a connection was returned since the last waiter was woken (a
    /// return with nobody waiting is remembered, so no wake-up is lost).
    pub(crate) async fn returned(&self) {
        self.returned.notified().await;
    }

    /// Takes the most recently used live connection, closing stale ones on the way.
    pub(crate) fn take(&self) -> Option<Conn> {
        let now = Instant::now();
        let mut stale = Vec::new();
        let found = {
            // A poisoned lock only means another task panicked mid-push/pop; the queue is
            // still a valid queue.
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut found = None;
            while let Some(conn) = idle.pop_back() {
                if conn.is_usable() && now.duration_since(conn.idle_since) < self.idle_timeout {
                    found = Some(conn);
                    break;
                }
                stale.push(conn);
            }
            // Older entries behind an expired one are older still.
            idle.retain(|c| now.duration_since(c.idle_since) < self.idle_timeout);
            found
        };
        // Dropped outside the lock: dropping aborts the connection task.
        drop(stale);
        found
    }

    /// Returns a connection after a clean exchange.
    pub(crate) fn put(&self, mut conn: Conn) {
        if !conn.is_usable() || self.max_idle == 0 {
            return;
        }
        conn.idle_since = Instant::now();
        let evicted = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.push_back(conn);
            if idle.len() > self.max_idle {
                idle.pop_front()
            } else {
                None
            }
        };
        drop(evicted);
        self.returned.notify_one();
    }

    /// Number of idle connections (for tests and metrics).
    pub(crate) fn idle_len(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Closes every idle connection.
    pub(crate) fn clear(&self) {
        let drained: Vec<Conn> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.drain(..).collect()
        };
        drop(drained);
    }
}
