//! Registry of shell identities: ShellId → owner, host, kind, backend identity, audit
//! session, creation time and last activity.
//!
//! A shell belongs to the principal who created it, on the host it was created on. Every
//! later request that names a ShellId is checked here before anything is forwarded, so one
//! person can never drive, read or close another person's shell, even with a guessed id.
//!
//! Identities only: the inspection state of a shell (PSRP reassembly, held pipelines,
//! counters) is `shell::Inspector`, kept beside the registry by the proxy. A
//! [`ShellIdentity`] is plain serialisable data and the registry is a trait, so a shared
//! implementation (Redis, etcd) can replace the in-process one when several replicas serve
//! the same clients (ARCHITECTURE.md).

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use crate::shell::ShellKind;

/// Who and what a shell is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellIdentity {
    pub shell_id: String,
    /// Audit session id: every event of this shell carries it.
    pub session_id: String,
    pub owner: String,
    pub host: String,
    pub kind: ShellKind,
    /// The account the gateway logged in to the host as (vault entry user, or the
    /// delegated person).
    pub backend_user: String,
    /// When the shell was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When a request last used it, in milliseconds since the Unix epoch.
    pub last_activity_ms: u64,
}

// === impl ShellIdentity ===

impl ShellIdentity {
    /// How long ago the shell was created (zero if the clock went back).
    pub fn age(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.created_ms))
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The outcome of checking a request's ShellId.
#[derive(Debug, Clone)]
pub enum Access {
    Granted(ShellIdentity),
    /// No such shell: never created through this gateway, closed, or expired.
    Unknown,
    /// The shell exists but belongs to someone else.
    NotOwner {
        owner: String,
    },
    /// The shell exists but lives on another host than the one this request targets.
    WrongHost {
        host: String,
    },
}

/// Where shell identities are remembered.
pub trait SessionRegistry: Send + Sync + std::fmt::Debug {
    fn insert(&self, shell: ShellIdentity);
    /// Checks that `principal` may use `shell_id` on `host`, refreshing its last activity
    /// (and so its idle timer).
    fn check(&self, shell_id: &str, principal: &str, host: &str) -> Access;
    fn remove(&self, shell_id: &str) -> Option<ShellIdentity>;
    fn list(&self) -> Vec<ShellIdentity>;
}

/// In-process registry with idle expiry (moka: bounded, time-to-idle per entry).
#[derive(Debug, Clone)]
pub struct LocalRegistry {
    shells: moka::sync::Cache<String, ShellIdentity>,
}

// === impl LocalRegistry ===

impl LocalRegistry {
    /// `idle`: how long an unused shell is remembered; `capacity`: the most shells held,
    /// so a client opening shells in a loop cannot grow the gateway's memory without bound.
    pub fn new(idle: Duration, capacity: u64) -> Self {
        Self {
            shells: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(idle)
                .build(),
        }
    }
}

impl SessionRegistry for LocalRegistry {
    fn insert(&self, shell: ShellIdentity) {
        self.shells.insert(shell.shell_id.clone(), shell);
    }

    fn check(&self, shell_id: &str, principal: &str, host: &str) -> Access {
        use moka::ops::compute::Op;
        // One atomic step: a Delete removing the shell meanwhile cannot be undone by the
        // refresh. INVARIANT: the refresh resets time-to-idle, so a shell in use never
        // expires.
        let mut access = Access::Unknown;
        self.shells
            .entry(shell_id.to_string())
            .and_compute_with(|entry| {
                let Some(entry) = entry else {
                    return Op::Nop;
                };
                let mut r = entry.into_value();
                if r.owner != principal {
                    access = Access::NotOwner { owner: r.owner };
                    return Op::Nop;
                }
                if r.host != host {
                    access = Access::WrongHost { host: r.host };
                    return Op::Nop;
                }
                r.last_activity_ms = now_ms();
                access = Access::Granted(r.clone());
                Op::Put(r)
            });
        access
    }

    fn remove(&self, shell_id: &str) -> Option<ShellIdentity> {
        self.shells.remove(shell_id)
    }

    fn list(&self) -> Vec<ShellIdentity> {
        self.shells.iter().map(|(_, v)| v).collect()
    }
}
