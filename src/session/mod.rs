//! Registry of shells: ShellId → owner, host, kind, audit session.
//!
//! A shell belongs to the principal who created it, on the host it was created on. Every
//! later request that names a ShellId is checked here before anything is forwarded, so one
//! person can never drive, read or close another person's shell, even with a guessed id.
//! The registry is behind a trait so a shared implementation (Redis, etcd) can replace the
//! in-process one when several replicas serve the same clients (ARCHITECTURE.md).

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::psrp::Defragmenter;

/// What kind of shell a ShellId names, from the Create's resource URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellKind {
    /// WinRS `cmd` shell.
    Cmd,
    /// PowerShell runspace pool on the named session configuration.
    Psrp { configuration: String },
}

impl ShellKind {
    /// Short name for audit records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Cmd => "cmd",
            Self::Psrp { .. } => "psrp",
        }
    }
}

/// One live shell.
#[derive(Debug, Clone)]
pub struct ShellRecord {
    pub shell_id: String,
    /// Audit session id: every event of this shell carries it.
    pub session_id: String,
    pub owner: String,
    pub host: String,
    pub kind: ShellKind,
    /// The account the gateway logged in to the host as (vault entry user).
    pub backend_user: String,
    pub created: Instant,
    /// PSRP shells: what the gateway must remember between requests to inspect them.
    pub psrp: Option<Arc<Mutex<PsrpState>>>,
    /// cmd shells: the command line of each running command, to judge its stdin.
    pub cmd: Option<Arc<Mutex<CmdState>>>,
    /// What happened in the shell so far: counts for `session.end`, live commands for a
    /// terminate.
    pub activity: Arc<Activity>,
}

/// Most command ids remembered per shell for a terminate; a shell with more running
/// commands than this is closed by its Delete alone.
const MAX_LIVE_COMMANDS: usize = 256;

/// Counters and live commands of one shell, shared by every request on it.
#[derive(Debug, Default)]
pub struct Activity {
    allowed: AtomicU64,
    denied: AtomicU64,
    output_bytes: AtomicU64,
    live: Mutex<BTreeSet<String>>,
}

/// A snapshot of [`Activity`]'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActivityCounts {
    pub commands_allowed: u64,
    pub commands_denied: u64,
    pub output_bytes: u64,
}

// === impl Activity ===

impl Activity {
    /// Counts one policy decision.
    pub fn decided(&self, allowed: bool) {
        let c = if allowed { &self.allowed } else { &self.denied };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds stream bytes the host sent.
    pub fn output(&self, bytes: u64) {
        self.output_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn counts(&self) -> ActivityCounts {
        ActivityCounts {
            commands_allowed: self.allowed.load(Ordering::Relaxed),
            commands_denied: self.denied.load(Ordering::Relaxed),
            output_bytes: self.output_bytes.load(Ordering::Relaxed),
        }
    }

    /// Remembers a command (or pipeline) the host started, until it is done.
    pub fn started(&self, command_id: &str) {
        if let Ok(mut live) = self.live.lock() {
            if live.len() < MAX_LIVE_COMMANDS {
                live.insert(command_id.to_ascii_uppercase());
            }
        }
    }

    /// Forgets a command the host reported done (or the client signalled to terminate).
    pub fn finished(&self, command_id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(&command_id.to_ascii_uppercase());
        }
    }

    /// Commands started and not yet seen to finish, in id order.
    pub fn live_commands(&self) -> Vec<String> {
        self.live
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Inspection state of one WinRS cmd shell.
#[derive(Debug, Default)]
pub struct CmdState {
    /// CommandId → what it runs, for as long as the client may send it input.
    pub commands: HashMap<String, CmdProgram>,
}

/// A running command of a cmd shell.
#[derive(Debug, Default)]
pub struct CmdProgram {
    /// The command line that started it (Command and Arguments joined by spaces).
    pub line: String,
    /// Input after the last line break: judged again, whole, once the line is complete.
    pub partial: String,
}

/// Inspection state of one PSRP shell (runspace pool).
#[derive(Debug, Default)]
pub struct PsrpState {
    /// Reassembles client→host messages across Command and Send requests.
    pub from_client: Defragmenter,
    /// Reassembles host→client messages across Receive responses (for `output` events).
    pub from_host: Defragmenter,
    /// A Command whose CREATE_PIPELINE is not complete yet: held back, with the Sends
    /// that carry the rest, until the whole pipeline can be decided.
    pub held: Option<HeldCommand>,
}

/// Requests held back from the host until policy has seen the whole pipeline.
#[derive(Debug)]
pub struct HeldCommand {
    pub command_id: String,
    /// The Command request, already rewritten for the backend leg.
    pub command: Bytes,
    /// Send requests carrying later fragments, in order, rewritten for the backend leg.
    pub sends: Vec<Bytes>,
}

/// The outcome of checking a request's ShellId.
#[derive(Debug, Clone)]
pub enum Access {
    Granted(Arc<ShellRecord>),
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

/// Where shells are remembered.
pub trait SessionRegistry: Send + Sync + std::fmt::Debug {
    fn insert(&self, record: ShellRecord);
    /// Checks that `principal` may use `shell_id` on `host`, refreshing its idle timer.
    fn check(&self, shell_id: &str, principal: &str, host: &str) -> Access;
    fn remove(&self, shell_id: &str) -> Option<Arc<ShellRecord>>;
    fn list(&self) -> Vec<Arc<ShellRecord>>;
}

/// In-process registry with idle expiry (moka: bounded, time-to-idle per entry).
#[derive(Debug, Clone)]
pub struct LocalRegistry {
    shells: moka::sync::Cache<String, Arc<ShellRecord>>,
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
    fn insert(&self, record: ShellRecord) {
        self.shells
            .insert(record.shell_id.clone(), Arc::new(record));
    }

    fn check(&self, shell_id: &str, principal: &str, host: &str) -> Access {
        // INVARIANT: `get` refreshes time-to-idle, so a shell in use never expires.
        match self.shells.get(shell_id) {
            None => Access::Unknown,
            Some(r) if r.owner != principal => Access::NotOwner {
                owner: r.owner.clone(),
            },
            Some(r) if r.host != host => Access::WrongHost {
                host: r.host.clone(),
            },
            Some(r) => Access::Granted(r),
        }
    }

    fn remove(&self, shell_id: &str) -> Option<Arc<ShellRecord>> {
        self.shells.remove(shell_id)
    }

    fn list(&self) -> Vec<Arc<ShellRecord>> {
        self.shells.iter().map(|(_, v)| v).collect()
    }
}
