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
    /// How long it may stay unused before the gateway closes it, in milliseconds (the
    /// host's `idle_timeout_secs` or the global default); 0: the registry's default.
    #[serde(default)]
    pub idle_ms: u64,
    /// Until when (milliseconds since the Unix epoch) a request on it may still be waiting
    /// for its host (a long-poll Receive): it is not idle before then, whatever `idle_ms`.
    #[serde(default)]
    pub busy_until_ms: u64,
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

/// Why the registry let a shell go by itself (not through [`SessionRegistry::remove`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// Unused for longer than its idle timeout (a client that vanished ends this way).
    Idle,
    /// Pushed out because the registry was full.
    Evicted,
}

impl EndCause {
    /// The `reason` of the `session.end` it leads to.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Evicted => "evicted",
        }
    }
}

/// A shell the registry let go by itself: the gateway must still close it on its host
/// and record its end.
#[derive(Debug, Clone)]
pub struct Ended {
    pub shell: ShellIdentity,
    pub cause: EndCause,
}

/// Where shell identities are remembered.
pub trait SessionRegistry: Send + Sync + std::fmt::Debug {
    fn insert(&self, shell: ShellIdentity);
    /// Checks that `principal` may use `shell_id` on `host`, refreshing its last activity
    /// (and so its idle timer).
    fn check(&self, shell_id: &str, principal: &str, host: &str) -> Access {
        self.check_busy(shell_id, principal, host, Duration::ZERO)
    }
    /// As `check`, for a request that may wait up to `busy` for the host: the shell does
    /// not expire before that wait is over (the next `check` ends it).
    fn check_busy(&self, shell_id: &str, principal: &str, host: &str, busy: Duration) -> Access;
    /// Removes a shell. INVARIANT: of all the ways a shell leaves the registry (this, idle
    /// expiry, eviction) exactly one happens, so whoever gets it records its one end.
    fn remove(&self, shell_id: &str) -> Option<ShellIdentity>;
    fn list(&self) -> Vec<ShellIdentity>;
    /// Lets shells idle past their timeout go now (reported as [`Ended`]) instead of
    /// whenever the store next gets around to it.
    fn sweep(&self) {}
}

/// In-process registry with per-shell idle expiry (moka: bounded, expiry per entry).
#[derive(Debug, Clone)]
pub struct LocalRegistry {
    shells: moka::sync::Cache<String, ShellIdentity>,
}

/// Each shell's idle timeout, restarted by every insert and refresh.
struct IdleExpiry {
    default: Duration,
}

impl IdleExpiry {
    fn idle(&self, shell: &ShellIdentity) -> Duration {
        let idle = match shell.idle_ms {
            0 => self.default,
            ms => Duration::from_millis(ms),
        };
        idle.max(Duration::from_millis(
            shell.busy_until_ms.saturating_sub(now_ms()),
        ))
    }
}

impl moka::Expiry<String, ShellIdentity> for IdleExpiry {
    fn expire_after_create(
        &self,
        _: &String,
        shell: &ShellIdentity,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.idle(shell))
    }

    fn expire_after_update(
        &self,
        _: &String,
        shell: &ShellIdentity,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.idle(shell))
    }
}

// === impl LocalRegistry ===

impl LocalRegistry {
    /// `idle`: how long an unused shell is remembered when it names no timeout of its own;
    /// `capacity`: the most shells held, so a client opening shells in a loop cannot grow
    /// the gateway's memory without bound. Shells that expire or are evicted are dropped
    /// silently: the gateway uses [`LocalRegistry::with_ends`].
    pub fn new(idle: Duration, capacity: u64) -> Self {
        Self {
            shells: Self::builder(idle, capacity).build(),
        }
    }

    /// As [`LocalRegistry::new`], and every shell that expires or is evicted is sent on
    /// the returned channel (unbounded, but never holding more than the registry held).
    pub fn with_ends(
        idle: Duration,
        capacity: u64,
    ) -> (Self, tokio::sync::mpsc::UnboundedReceiver<Ended>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let shells = Self::builder(idle, capacity)
            .eviction_listener(move |_, shell, cause| {
                let cause = match cause {
                    moka::notification::RemovalCause::Expired => EndCause::Idle,
                    moka::notification::RemovalCause::Size => EndCause::Evicted,
                    // Removed by `remove` (its caller records the end) or replaced.
                    _ => return,
                };
                if tx.send(Ended { shell, cause }).is_err() {
                    tracing::warn!("Shell ended while nobody closes shells");
                }
            })
            .build();
        (Self { shells }, rx)
    }

    fn builder(
        idle: Duration,
        capacity: u64,
    ) -> moka::sync::CacheBuilder<String, ShellIdentity, moka::sync::Cache<String, ShellIdentity>>
    {
        moka::sync::Cache::builder()
            .max_capacity(capacity)
            .expire_after(IdleExpiry { default: idle })
    }
}

impl SessionRegistry for LocalRegistry {
    fn insert(&self, shell: ShellIdentity) {
        self.shells.insert(shell.shell_id.clone(), shell);
    }

    fn check_busy(&self, shell_id: &str, principal: &str, host: &str, busy: Duration) -> Access {
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
                r.busy_until_ms = r
                    .last_activity_ms
                    .saturating_add(u64::try_from(busy.as_millis()).unwrap_or(u64::MAX));
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

    fn sweep(&self) {
        self.shells.run_pending_tasks();
    }
}
