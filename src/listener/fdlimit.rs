//! The process's open-descriptor limit (RLIMIT_NOFILE) against the configured connection
//! caps.
//!
//! At start-up the soft limit is raised to the hard limit (an unprivileged process may do
//! that; the usual soft default of 1024 is far below what a gateway with 1024 client
//! connections needs), and start-up is refused with a clear message when even the hard
//! limit is below what the caps need: running out of descriptors at peak would stop every
//! listener from accepting. Uses rustix's safe `getrlimit`/`setrlimit` (the crate forbids
//! `unsafe`, which `libc::setrlimit` would need).

use thiserror::Error;

/// Descriptors kept for everything that is not a connection: audit and vault files, the
/// config, stdio, the runtime's epoll and signal descriptors, syslog, KDC connections.
pub const RESERVED: u64 = 64;

/// How many descriptors the caps need: each gateway connection may hold one connection to
/// a host besides its own socket; admin and other listeners hold only their own.
pub fn needed(gateway_connections: usize, other_connections: usize) -> u64 {
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    n(gateway_connections)
        .saturating_mul(2)
        .saturating_add(n(other_connections))
        .saturating_add(RESERVED)
}

/// The limit after start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// Soft limit found at start (None: unlimited).
    pub soft_before: Option<u64>,
    /// Soft limit now.
    pub soft: Option<u64>,
    /// Hard limit (None: unlimited).
    pub hard: Option<u64>,
    /// What the caps need.
    pub needed: u64,
}

/// The limit is too low for the caps.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "the open-file limit is {soft} (hard limit {hard}) but the connection caps need {needed} \
     descriptors (2 x limits.max_connections + admin.max_connections + {RESERVED}); raise the \
     hard limit (ulimit -Hn, systemd LimitNOFILE=) or lower limits.max_connections"
)]
pub struct FdLimitError {
    pub soft: u64,
    pub hard: String,
    pub needed: u64,
}

/// Raises the soft limit to the hard limit and checks it covers `needed`.
#[cfg(unix)]
pub fn raise(needed: u64) -> Result<FdLimit, FdLimitError> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    // The hard limit first; macOS refuses an unlimited soft limit, so then what is needed.
    for target in [before.maximum, Some(needed)] {
        let below = match (before.current, target) {
            (Some(c), Some(t)) => c < t,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !below {
            break;
        }
        let raised = Rlimit {
            current: target,
            maximum: before.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => break,
            Err(error) => {
                tracing::debug!(%error, ?target, "Cannot raise the open-file soft limit");
            }
        }
    }
    let after = getrlimit(Resource::Nofile);
    judge(before.current, after.current, after.maximum, needed)
}

/// Descriptor limits are a Unix matter.
#[cfg(not(unix))]
pub fn raise(needed: u64) -> Result<FdLimit, FdLimitError> {
    Ok(FdLimit {
        soft_before: None,
        soft: None,
        hard: None,
        needed,
    })
}

/// Whether the soft limit in force covers `needed`.
fn judge(
    soft_before: Option<u64>,
    soft: Option<u64>,
    hard: Option<u64>,
    needed: u64,
) -> Result<FdLimit, FdLimitError> {
    match soft {
        Some(s) if s < needed => Err(FdLimitError {
            soft: s,
            hard: hard.map_or_else(|| "unlimited".to_owned(), |h| h.to_string()),
            needed,
        }),
        _ => Ok(FdLimit {
            soft_before,
            soft,
            hard,
            needed,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn the_caps_are_judged_against_the_soft_limit_in_force() {
        assert_eq!(needed(1024, 64), 2048 + 64 + RESERVED);
        let ok = judge(Some(1024), Some(4096), Some(4096), 2200).unwrap();
        assert_eq!(ok.soft, Some(4096));
        assert!(judge(None, None, None, u64::MAX).is_ok(), "unlimited");
        let e = judge(Some(1024), Some(1024), Some(1024), 2200).unwrap_err();
        assert_eq!(e.needed, 2200);
        let text = e.to_string();
        assert!(text.contains("limits.max_connections"), "{text}");
        assert!(text.contains("1024"), "{text}");
    }

    #[cfg(unix)]
    #[test]
    fn raising_leaves_soft_at_hard() {
        let l = raise(1).unwrap();
        assert_eq!(l.soft, l.hard);
    }
}
