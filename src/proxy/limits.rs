//! Limits of the request path that no single connection can see (issue #14): failed
//! authentications per source address (a token bucket, checked before authentication),
//! shells per person and per host account (checked at Create against the registry), and
//! bytes held for inspection per person (PSRP pipelines not yet whole).
//!
//! Owns the counting only; the proxy decides what the client is told (`Refusal`) and the
//! metrics. No I/O; the clock is passed in so the buckets test without waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session::ShellIdentity;

/// Sources tracked at once; past it, full (idle) buckets are forgotten first, and a new
/// source is refused nothing (an attacker with many addresses gets no more than this many
/// buckets' worth of memory).
const MAX_SOURCES: usize = 16_384;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Failed authentications per source: `rate` per second, bursts of twice that.
#[derive(Debug)]
pub struct SourceRate {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

// === impl SourceRate ===

impl SourceRate {
    pub fn new(per_sec: u64) -> Self {
        // Counts of requests per second: far inside f64's exact range.
        #[allow(clippy::cast_precision_loss, reason = "small counts")]
        let rate = per_sec.max(1) as f64;
        Self {
            rate,
            burst: rate * 2.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
    }

    /// Before authenticating a request from `ip`: `Some(seconds to wait)` when the source
    /// has used up its failures.
    pub fn refused(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.get_mut(&ip)?;
        self.refill(b, now);
        if b.tokens >= 1.0 {
            return None;
        }
        let wait = ((1.0 - b.tokens) / self.rate).ceil();
        // At most a few seconds: the burst refills in two.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "0 < wait <= 2"
        )]
        Some((wait as u64).max(1))
    }

    /// A request from `ip` failed authentication.
    pub fn charge(&self, ip: IpAddr, now: Instant) {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(&ip) && map.len() >= MAX_SOURCES {
            let full = self.burst;
            let rate = self.rate;
            // Forget sources whose bucket has refilled: they hold no debt.
            map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < full
            });
            if map.len() >= MAX_SOURCES {
                return;
            }
        }
        let burst = self.burst;
        let b = map.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        self.refill(b, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }
}

/// Which shell limit a Create would pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellLimit {
    PerUser { max: usize },
    PerCredential { max: usize },
}

/// Shells per person and per host account, counted from the registry plus the Creates in
/// flight (so parallel Creates cannot all slip under the limit).
#[derive(Debug)]
pub struct ShellQuota {
    per_user: usize,
    per_credential: usize,
    /// Creates between the check and the registry insert: (owner, host, backend user).
    pending: Mutex<Vec<(String, String, String)>>,
}

/// A Create counted until it is in the registry or failed; drop it after `insert`.
#[derive(Debug)]
pub struct Pending {
    quota: Arc<ShellQuota>,
    key: (String, String, String),
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut p = self.quota.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = p.iter().position(|k| *k == self.key) {
            p.swap_remove(i);
        }
    }
}

// === impl ShellQuota ===

impl ShellQuota {
    pub fn new(per_user: usize, per_credential: usize) -> Self {
        Self {
            per_user,
            per_credential,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Whether `owner` may open one more shell on `host` as `backend_user`, given the
    /// shells open now; on success the Create is counted until the guard drops.
    pub fn reserve(
        self: &Arc<Self>,
        open: &[ShellIdentity],
        owner: &str,
        host: &str,
        backend_user: &str,
    ) -> Result<Pending, ShellLimit> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let user = open.iter().filter(|s| s.owner == owner).count()
            + pending.iter().filter(|k| k.0 == owner).count();
        if user >= self.per_user {
            return Err(ShellLimit::PerUser { max: self.per_user });
        }
        let same_account = |h: &str, u: &str| h == host && u.eq_ignore_ascii_case(backend_user);
        let account = open
            .iter()
            .filter(|s| same_account(&s.host, &s.backend_user))
            .count()
            + pending.iter().filter(|k| same_account(&k.1, &k.2)).count();
        if account >= self.per_credential {
            return Err(ShellLimit::PerCredential {
                max: self.per_credential,
            });
        }
        let key = (
            owner.to_string(),
            host.to_string(),
            backend_user.to_string(),
        );
        pending.push(key.clone());
        Ok(Pending {
            quota: self.clone(),
            key,
        })
    }
}

/// Bytes each person's shells hold for inspection, as of their last request.
#[derive(Debug)]
pub struct HeldBytes {
    max: usize,
    /// person → (ShellId → bytes held); only shells holding something.
    by_person: Mutex<HashMap<String, HashMap<String, usize>>>,
}

// === impl HeldBytes ===

impl HeldBytes {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            by_person: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `owner` may send a request of `adding` bytes that a shell could hold;
    /// `Err(max)` past the cap. Shells `alive` no longer knows are forgotten first (an
    /// expired or deleted shell holds nothing).
    pub fn check(
        &self,
        owner: &str,
        adding: usize,
        alive: impl Fn(&str) -> bool,
    ) -> Result<(), usize> {
        let mut map = self.by_person.lock().unwrap_or_else(|p| p.into_inner());
        let Some(shells) = map.get_mut(owner) else {
            return if adding > self.max {
                Err(self.max)
            } else {
                Ok(())
            };
        };
        shells.retain(|id, _| alive(id));
        let held = shells.values().fold(0usize, |n, b| n.saturating_add(*b));
        if shells.is_empty() {
            map.remove(owner);
        }
        if held.saturating_add(adding) > self.max {
            return Err(self.max);
        }
        Ok(())
    }

    /// What `shell_id` of `owner` holds after a request.
    pub fn set(&self, owner: &str, shell_id: &str, bytes: usize) {
        let mut map = self.by_person.lock().unwrap_or_else(|p| p.into_inner());
        if bytes == 0 {
            if let Some(shells) = map.get_mut(owner) {
                shells.remove(shell_id);
                if shells.is_empty() {
                    map.remove(owner);
                }
            }
            return;
        }
        map.entry(owner.to_string())
            .or_default()
            .insert(shell_id.to_string(), bytes);
    }
}

/// The request path's limits, shared by every request.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    pub unauthenticated: Arc<SourceRate>,
    pub shells: Arc<ShellQuota>,
    pub held: Arc<HeldBytes>,
    /// How long an authenticated request waits for the audit writer.
    pub audit_wait: Duration,
}

// === impl RequestLimits ===

impl RequestLimits {
    pub fn new(limits: &crate::config::LimitsConfig) -> Self {
        Self {
            unauthenticated: Arc::new(SourceRate::new(limits.unauthenticated_per_source_per_sec)),
            shells: Arc::new(ShellQuota::new(
                limits.max_shells_per_user,
                limits.max_shells_per_credential,
            )),
            held: Arc::new(HeldBytes::new(limits.max_held_bytes_per_user)),
            audit_wait: limits.audit_wait,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::shell::ShellKind;

    #[test]
    fn a_source_gets_a_burst_of_failures_then_waits_for_the_refill() {
        let r = SourceRate::new(10);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..20 {
            assert_eq!(r.refused(ip, t0), None);
            r.charge(ip, t0);
        }
        assert_eq!(r.refused(ip, t0), Some(1));
        assert_eq!(r.refused(other, t0), None, "other sources are not affected");
        // 100 ms later one failure's worth has come back.
        assert_eq!(r.refused(ip, t0 + Duration::from_millis(100)), None);
        r.charge(ip, t0 + Duration::from_millis(100));
        assert_eq!(r.refused(ip, t0 + Duration::from_millis(100)), Some(1));
    }

    fn shell(owner: &str, host: &str, backend_user: &str) -> ShellIdentity {
        ShellIdentity {
            shell_id: format!("{owner}-{host}-{backend_user}"),
            session_id: "s".into(),
            owner: owner.into(),
            host: host.into(),
            kind: ShellKind::Cmd,
            backend_user: backend_user.into(),
            created_ms: 0,
            last_activity_ms: 0,
            idle_ms: 60_000,
            busy_until_ms: 0,
        }
    }

    #[test]
    fn held_bytes_are_capped_per_person_across_shells() {
        let h = HeldBytes::new(100);
        let all = |_: &str| true;
        assert_eq!(h.check("alice", 100, all), Ok(()));
        assert_eq!(h.check("alice", 101, all), Err(100));
        h.set("alice", "s1", 60);
        h.set("alice", "s2", 30);
        h.set("bob", "s3", 90);
        assert_eq!(h.check("alice", 10, all), Ok(()));
        assert_eq!(h.check("alice", 11, all), Err(100), "both shells count");
        assert_eq!(h.check("bob", 10, all), Ok(()), "bob's own budget");
        // A shell released its pipeline; another was deleted.
        h.set("alice", "s1", 0);
        assert_eq!(h.check("alice", 70, all), Ok(()));
        assert_eq!(h.check("alice", 100, |id| id != "s2"), Ok(()));
        assert!(h.by_person.lock().unwrap().get("alice").is_none());
    }

    #[test]
    fn shells_are_limited_per_person_and_per_host_account() {
        let q = Arc::new(ShellQuota::new(2, 3));
        let open = vec![shell("alice", "web1", "svc"), shell("bob", "web1", "svc")];
        let held = q.reserve(&open, "alice", "web1", "svc").unwrap();
        assert_eq!(
            q.reserve(&open, "alice", "db1", "other").unwrap_err(),
            ShellLimit::PerUser { max: 2 },
            "the Create in flight counts"
        );
        assert_eq!(
            q.reserve(&open, "carol", "web1", "SVC").unwrap_err(),
            ShellLimit::PerCredential { max: 3 },
            "everyone mapped to web1's svc shares its quota"
        );
        assert!(q.reserve(&open, "carol", "db1", "svc").is_ok());
        drop(held);
        assert!(q.reserve(&open, "carol", "web1", "svc").is_ok());
    }
}
