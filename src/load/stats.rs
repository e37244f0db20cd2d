//! Latencies per WS-Man action, counts and the report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Samples of one run; shared by every session.
#[derive(Debug, Default)]
pub struct Stats {
    /// Microseconds per action, every sample (a 10-minute run at 10,000/s is 24 MB).
    samples: Mutex<BTreeMap<&'static str, Vec<u32>>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    timed_out: AtomicU64,
    output: AtomicU64,
}

/// Percentiles of one action, microseconds.
#[derive(Debug, Serialize)]
pub struct ActionReport {
    pub count: usize,
    pub p50_us: u32,
    pub p99_us: u32,
    pub p999_us: u32,
    pub max_us: u32,
}

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub seconds: f64,
    /// Answered requests of every kind, held Receives included.
    pub round_trips: usize,
    pub round_trips_per_sec: f64,
    /// Requests not answered, or answered with a fault other than a long poll's TimedOut.
    pub errors: BTreeMap<&'static str, u64>,
    /// Long polls that ended with TimedOut (their normal end).
    pub timed_out_polls: u64,
    pub output_bytes: u64,
    pub output_mb_per_sec: f64,
    pub actions: BTreeMap<&'static str, ActionReport>,
    /// CPU time of `--pid` over the run, per round trip, microseconds.
    pub target_cpu_us_per_round_trip: Option<f64>,
    /// Resident memory of `--pid`, sampled every second.
    pub rss_kb: Option<RssReport>,
    /// Hostile requests sent beside the load, and how they were answered.
    pub hostile: Option<HostileReport>,
}

/// Resident memory over a run, KiB.
#[derive(Debug, Default, Serialize)]
pub struct RssReport {
    pub first: u64,
    pub peak: u64,
    pub last: u64,
    pub samples: usize,
}

impl RssReport {
    pub(super) fn of(samples: &[u64]) -> Option<Self> {
        Some(Self {
            first: *samples.first()?,
            peak: samples.iter().copied().max()?,
            last: *samples.last()?,
            samples: samples.len(),
        })
    }
}

/// Hostile traffic of a run.
#[derive(Debug, Default, Serialize)]
pub struct HostileReport {
    pub sent: u64,
    pub refused: u64,
    /// Must be 0: a hostile request answered 200.
    pub accepted: u64,
    /// Closed without an answer (stalled connections, refused handshakes).
    pub dropped: u64,
}

impl HostileReport {
    pub(super) fn of(h: &super::hostile::HostileStats) -> Option<Self> {
        let sent = h.sent.load(Ordering::Relaxed);
        (sent > 0).then(|| Self {
            sent,
            refused: h.refused.load(Ordering::Relaxed),
            accepted: h.accepted.load(Ordering::Relaxed),
            dropped: h.dropped.load(Ordering::Relaxed),
        })
    }
}

impl Stats {
    pub(super) fn sample(&self, action: &'static str, took: Duration) {
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        if let Ok(mut s) = self.samples.lock() {
            s.entry(action).or_default().push(us);
        }
    }

    pub(super) fn error(&self, action: &'static str) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(action).or_default() += 1;
        }
    }

    pub(super) fn timed_out(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn output(&self, bytes: usize) {
        self.output
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(super) fn report(&self, elapsed: Duration, cpu: Option<Duration>) -> Report {
        let secs = elapsed.as_secs_f64().max(f64::EPSILON);
        let mut actions = BTreeMap::new();
        let mut round_trips = 0;
        if let Ok(mut samples) = self.samples.lock() {
            for (action, v) in samples.iter_mut() {
                v.sort_unstable();
                round_trips += v.len();
                let at = |q: f64| -> u32 {
                    let last = v.len().saturating_sub(1);
                    #[allow(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        clippy::cast_precision_loss,
                        reason = "an index into the sorted samples"
                    )]
                    let i = ((last as f64) * q).round() as usize;
                    v.get(i.min(last)).copied().unwrap_or(0)
                };
                actions.insert(
                    *action,
                    ActionReport {
                        count: v.len(),
                        p50_us: at(0.50),
                        p99_us: at(0.99),
                        p999_us: at(0.999),
                        max_us: v.last().copied().unwrap_or(0),
                    },
                );
            }
        }
        let output = self.output.load(Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss, reason = "report figures")]
        Report {
            seconds: secs,
            round_trips,
            round_trips_per_sec: round_trips as f64 / secs,
            errors: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            timed_out_polls: self.timed_out.load(Ordering::Relaxed),
            output_bytes: output,
            output_mb_per_sec: output as f64 / 1e6 / secs,
            actions,
            target_cpu_us_per_round_trip: cpu
                .filter(|_| round_trips > 0)
                .map(|c| c.as_secs_f64() * 1e6 / round_trips as f64),
            rss_kb: None,
            hostile: None,
        }
    }
}

/// User + system CPU time of a process, from `/proc/<pid>/stat` (Linux).
pub(super) fn process_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Clock ticks: 100 per second on every Linux this runs on (USER_HZ).
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Resident set size of a process, KiB, from `/proc/<pid>/status` (Linux).
pub(super) fn process_rss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
