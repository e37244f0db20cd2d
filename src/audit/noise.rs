//! Unauthenticated noise, aggregated: failed sign-ins are counted per source, reason and
//! claimed user, so a flood can fill neither the writer's queue nor the disk (issue #14).
//!
//! The first failure of each key in an interval is written as it happens (an
//! `authn.failure` line, unchanged); the ones after it are only counted, and when the
//! interval is over the writer writes one `authn.failures` line per key that repeated,
//! with the count. At most [`MAX_KEYS`] keys are tracked per interval; failures of further
//! keys are counted per reason under the source `*`, so a flood from many addresses costs
//! a bounded number of lines too. Owns no I/O and no clock: callers pass the time.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::event::{Event, EventKind};

/// Keys (source, reason, claimed user) tracked individually per interval.
pub const MAX_KEYS: usize = 1024;

/// The source written for failures counted past [`MAX_KEYS`].
pub const OVERFLOW_SOURCE: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source_ip: String,
    reason: String,
    claimed_user: Option<String>,
}

/// What the caller does with a failure it reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// The first of its key this interval: write it now.
    Write,
    /// Counted; it appears in the interval's `authn.failures` line.
    Counted,
}

#[derive(Debug)]
struct Window {
    started: OffsetDateTime,
    /// Failures after the first, per key.
    repeats: HashMap<Key, u64>,
    /// Failures of keys past the cap, per reason.
    overflow: HashMap<String, u64>,
}

/// The failures of the current interval; shared by the handle (counting) and the writer
/// (writing the summary).
#[derive(Debug)]
pub struct Noise {
    window: Mutex<Window>,
}

impl Default for Noise {
    fn default() -> Self {
        Self {
            window: Mutex::new(Window {
                started: OffsetDateTime::UNIX_EPOCH,
                repeats: HashMap::new(),
                overflow: HashMap::new(),
            }),
        }
    }
}

// === impl Noise ===

impl Noise {
    /// Counts one failed sign-in at `now`.
    pub fn note(
        &self,
        source_ip: &str,
        reason: &str,
        claimed_user: Option<&str>,
        now: OffsetDateTime,
    ) -> Noted {
        // A poisoned lock only means another thread panicked mid-count: the counts are
        // still usable.
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.repeats.is_empty() && w.overflow.is_empty() {
            w.started = now;
        }
        let key = Key {
            source_ip: source_ip.to_string(),
            reason: reason.to_string(),
            claimed_user: claimed_user.map(str::to_string),
        };
        if let Some(n) = w.repeats.get_mut(&key) {
            *n += 1;
            return Noted::Counted;
        }
        if w.repeats.len() < MAX_KEYS {
            w.repeats.insert(key, 0);
            return Noted::Write;
        }
        *w.overflow.entry(key.reason).or_insert(0) += 1;
        Noted::Counted
    }

    /// When the current interval began, if it holds any failure.
    pub fn started(&self) -> Option<OffsetDateTime> {
        let w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        (!w.repeats.is_empty() || !w.overflow.is_empty()).then_some(w.started)
    }

    /// Ends the interval: one `authn.failures` event per key with failures not yet
    /// written, in a stable order; every count starts again from zero.
    pub fn take(&self, now: OffsetDateTime) -> Vec<Event> {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let repeats = std::mem::take(&mut w.repeats);
        let overflow = std::mem::take(&mut w.overflow);
        let seconds = u64::try_from((now - w.started).whole_seconds()).unwrap_or(0);
        drop(w);
        let mut keyed: Vec<(Key, u64)> = repeats.into_iter().filter(|(_, n)| *n > 0).collect();
        keyed.extend(overflow.into_iter().map(|(reason, n)| {
            (
                Key {
                    source_ip: OVERFLOW_SOURCE.to_string(),
                    reason,
                    claimed_user: None,
                },
                n,
            )
        }));
        keyed.sort_by(|a, b| {
            (&a.0.source_ip, &a.0.reason, &a.0.claimed_user).cmp(&(
                &b.0.source_ip,
                &b.0.reason,
                &b.0.claimed_user,
            ))
        });
        keyed
            .into_iter()
            .map(|(k, count)| Event {
                session_id: None,
                kind: EventKind::AuthnFailures {
                    source_ip: k.source_ip,
                    reason: k.reason,
                    claimed_user: k.claimed_user,
                    count,
                    seconds,
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_000_000 + s)
    }

    fn summary(e: &Event) -> (&str, &str, Option<&str>, u64, u64) {
        match &e.kind {
            EventKind::AuthnFailures {
                source_ip,
                reason,
                claimed_user,
                count,
                seconds,
            } => (source_ip, reason, claimed_user.as_deref(), *count, *seconds),
            other => panic!("not a summary: {other:?}"),
        }
    }

    #[test]
    fn first_of_each_key_is_written_and_the_rest_counted() {
        let n = Noise::default();
        assert_eq!(
            n.note("10.0.0.1", "no credentials", None, at(0)),
            Noted::Write
        );
        for _ in 0..999 {
            assert_eq!(
                n.note("10.0.0.1", "no credentials", None, at(1)),
                Noted::Counted
            );
        }
        assert_eq!(
            n.note("10.0.0.1", "bad token", Some("bob"), at(2)),
            Noted::Write
        );
        assert_eq!(
            n.note("10.0.0.2", "no credentials", None, at(3)),
            Noted::Write
        );
        assert_eq!(n.started(), Some(at(0)));
        let out = n.take(at(10));
        // Keys that did not repeat need no summary: their one line is already written.
        assert_eq!(out.len(), 1);
        assert_eq!(
            summary(&out[0]),
            ("10.0.0.1", "no credentials", None, 999, 10)
        );
        assert_eq!(n.started(), None);
        // A new interval writes the first failure again.
        assert_eq!(
            n.note("10.0.0.1", "no credentials", None, at(11)),
            Noted::Write
        );
    }

    #[test]
    fn keys_past_the_cap_are_counted_per_reason() {
        let n = Noise::default();
        let mut written = 0;
        for i in 0..(MAX_KEYS + 500) {
            if n.note(
                &format!("10.1.{}.{}", i / 256, i % 256),
                "no credentials",
                None,
                at(0),
            ) == Noted::Write
            {
                written += 1;
            }
        }
        assert_eq!(written, MAX_KEYS);
        let out = n.take(at(5));
        assert_eq!(out.len(), 1);
        assert_eq!(summary(&out[0]), ("*", "no credentials", None, 500, 5));
    }
}
