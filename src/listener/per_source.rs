//! Each source address's share of a listener (issue #14): connections open at once (past
//! it, a new connection is closed at accept, before any TLS work) and TLS handshakes in
//! progress at once (past it, a handshake waits for one of the source's own to finish, so
//! one address cannot take all the CPU handshakes cost).
//!
//! Entries live only while the source has a connection open, so the map is bounded by the
//! listener's connection cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
struct Source {
    connections: usize,
    handshakes: Arc<Semaphore>,
}

/// The per-source counts of one listener.
#[derive(Debug)]
pub(super) struct PerSource {
    max_connections: usize,
    max_handshakes: usize,
    sources: Mutex<HashMap<IpAddr, Source>>,
}

/// One connection of a source, counted until dropped.
#[derive(Debug)]
pub(super) struct SourceSlot {
    owner: Arc<PerSource>,
    ip: IpAddr,
    handshakes: Arc<Semaphore>,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut map = self.owner.lock();
        if let Some(s) = map.get_mut(&self.ip) {
            s.connections = s.connections.saturating_sub(1);
            if s.connections == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

// === impl PerSource ===

impl PerSource {
    pub(super) fn new(max_connections: usize, max_handshakes: usize) -> Self {
        Self {
            max_connections: max_connections.max(1),
            max_handshakes: max_handshakes.max(1),
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Source>> {
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip`; None when the source already holds its share.
    pub(super) fn connect(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let mut map = self.lock();
        let max_handshakes = self.max_handshakes;
        let s = map.entry(ip).or_insert_with(|| Source {
            connections: 0,
            handshakes: Arc::new(Semaphore::new(max_handshakes)),
        });
        if s.connections >= self.max_connections {
            return None;
        }
        s.connections += 1;
        Some(SourceSlot {
            owner: self.clone(),
            ip,
            handshakes: s.handshakes.clone(),
        })
    }
}

// === impl SourceSlot ===

impl SourceSlot {
    /// Waits for one of the source's handshake permits (the caller bounds the wait).
    pub(super) async fn handshake(&self) -> Option<OwnedSemaphorePermit> {
        self.handshakes.clone().acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[tokio::test]
    async fn each_source_gets_its_share_and_entries_go_with_the_last_connection() {
        let p = Arc::new(PerSource::new(2, 1));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = p.connect(a).unwrap();
        let a2 = p.connect(a).unwrap();
        assert!(
            p.connect(a).is_none(),
            "a third connection from a is closed"
        );
        let b1 = p.connect(b).unwrap();
        let held = a1.handshake().await.unwrap();
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), a2.handshake()).await;
        assert!(waiting.is_err(), "a's second handshake waits for its first");
        assert!(b1.handshake().await.is_some(), "b does not wait for a");
        drop(held);
        assert!(a2.handshake().await.is_some());
        drop((a1, a2, b1));
        assert!(p.lock().is_empty());
    }
}
