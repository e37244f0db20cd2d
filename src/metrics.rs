//! Request, backend and listener metrics for the admin API's `/metrics`: requests by WS-Man
//! action and HTTP status, a latency histogram of the gateway's round trips to hosts by
//! action, and each listener's connection counters ([`ListenerMetrics`]).
//!
//! Label values come from bounded sets only (`Action::label`, status codes), so no client
//! can grow the series. Owns counting and the Prometheus text rendering; no I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the backend latency buckets: NTLM round trips of a few
/// milliseconds up to Receive long polls that wait the client's OperationTimeout.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// Counters shared by the request path and the admin API.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    backend: Mutex<BTreeMap<&'static str, Histogram>>,
    listeners: Mutex<Vec<(&'static str, Arc<ListenerMetrics>)>>,
    /// Requests refused by a per-source or per-person limit, by [`Limit`].
    limits: Mutex<BTreeMap<&'static str, u64>>,
}

/// A limit of the request path that refused a request (issue #14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many failed authentications from one source (HTTP 429).
    UnauthenticatedRate,
    /// The person holds `max_shells_per_user` shells.
    ShellsPerUser,
    /// The host account holds `max_shells_per_credential` shells.
    ShellsPerCredential,
    /// The audit writer did not catch up within `audit_wait`.
    AuditBehind,
    /// The person's shells hold `max_held_bytes_per_user` for inspection.
    HeldBytesPerUser,
}

impl Limit {
    /// The `limit` label.
    pub fn label(self) -> &'static str {
        match self {
            Limit::UnauthenticatedRate => "unauthenticated_rate",
            Limit::ShellsPerUser => "shells_per_user",
            Limit::ShellsPerCredential => "shells_per_credential",
            Limit::AuditBehind => "audit_behind",
            Limit::HeldBytesPerUser => "held_bytes_per_user",
        }
    }
}

/// Connection counters of one listener (gateway, admin, test host), kept by the accept
/// loop. Every field only grows, except `active`.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections open now (TLS handshake included).
    pub active: AtomicU64,
    /// `accept()` failures (EMFILE, ENFILE, ENOBUFS, ...), each followed by a back-off.
    pub accept_errors: AtomicU64,
    /// Times the accept loop waited because `max_connections` were open.
    pub at_capacity: AtomicU64,
    /// TLS handshakes that failed (refused certificate, not TLS, peer hung up).
    pub handshake_failures: AtomicU64,
    /// TLS handshakes cut off by the handshake timeout.
    pub handshake_timeouts: AtomicU64,
    /// Connections closed because a request's headers did not arrive in time.
    pub header_timeouts: AtomicU64,
    /// Connections closed because no request was in flight for the idle timeout.
    pub idle_closed: AtomicU64,
    /// Connections closed at once because their source held its share of connections or
    /// handshakes (`max_connections_per_source`, `max_handshakes_per_source`).
    pub source_refused: AtomicU64,
    /// Connections closed because no byte arrived before the first-byte deadline.
    pub first_byte_timeouts: AtomicU64,
}

impl ListenerMetrics {
    /// Adds one to `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// (metric name suffix, Prometheus type, help, value) of each counter.
    fn rows(&self) -> [(&'static str, &'static str, &'static str, u64); ROWS] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            (
                "accepted_total",
                "counter",
                "Connections accepted.",
                get(&self.accepted),
            ),
            (
                "active",
                "gauge",
                "Connections open now.",
                get(&self.active),
            ),
            (
                "accept_errors_total",
                "counter",
                "accept() failures, each followed by a back-off.",
                get(&self.accept_errors),
            ),
            (
                "at_capacity_total",
                "counter",
                "Waits at the connection cap.",
                get(&self.at_capacity),
            ),
            (
                "handshake_failures_total",
                "counter",
                "TLS handshakes that failed.",
                get(&self.handshake_failures),
            ),
            (
                "handshake_timeouts_total",
                "counter",
                "TLS handshakes cut off by the timeout.",
                get(&self.handshake_timeouts),
            ),
            (
                "header_timeouts_total",
                "counter",
                "Connections closed because request headers did not arrive in time.",
                get(&self.header_timeouts),
            ),
            (
                "idle_closed_total",
                "counter",
                "Connections closed after the idle timeout.",
                get(&self.idle_closed),
            ),
            (
                "source_refused_total",
                "counter",
                "Connections closed because their source address held its share.",
                get(&self.source_refused),
            ),
            (
                "first_byte_timeouts_total",
                "counter",
                "Connections closed because no byte arrived in time.",
                get(&self.first_byte_timeouts),
            ),
        ]
    }
}

/// Counters per listener.
const ROWS: usize = 10;

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Count per bucket of [`LATENCY_BUCKETS`] (not cumulative), then the overflow.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum_secs: f64,
    count: u64,
}

impl Metrics {
    /// The counters of the listener called `name` (created on first use).
    pub fn listener(&self, name: &'static str) -> Arc<ListenerMetrics> {
        let Ok(mut l) = self.listeners.lock() else {
            return Arc::default();
        };
        if let Some((_, m)) = l.iter().find(|(n, _)| *n == name) {
            return m.clone();
        }
        let m = Arc::new(ListenerMetrics::default());
        l.push((name, m.clone()));
        m
    }

    /// Counts one answered client request; `action` is `Action::label()` or `none` when
    /// the request was refused before its envelope was read.
    pub fn request(&self, action: &'static str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((action, status)).or_default() += 1;
        }
    }

    /// Counts one request refused by `limit`.
    pub fn limited(&self, limit: Limit) {
        if let Ok(mut m) = self.limits.lock() {
            *m.entry(limit.label()).or_default() += 1;
        }
    }

    /// Records one round trip to a host.
    pub fn backend(&self, action: &'static str, took: Duration) {
        let secs = took.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Ok(mut m) = self.backend.lock() {
            let h = m.entry(action).or_default();
            if let Some(b) = h.buckets.get_mut(slot) {
                *b += 1;
            }
            h.sum_secs += secs;
            h.count += 1;
        }
    }

    /// The Prometheus text of these metrics (appended to `out`).
    pub fn render(&self, out: &mut String) {
        let listeners: Vec<(&'static str, Arc<ListenerMetrics>)> = match self.listeners.lock() {
            Ok(l) => l.clone(),
            Err(_) => Vec::new(),
        };
        let rows: Vec<_> = listeners.iter().map(|(n, m)| (*n, m.rows())).collect();
        for i in 0..ROWS {
            for (j, (listener, r)) in rows.iter().enumerate() {
                let Some((name, kind, help, v)) = r.get(i) else {
                    continue;
                };
                if j == 0 {
                    let _ = writeln!(out, "# HELP hopgate_listener_{name} {help}");
                    let _ = writeln!(out, "# TYPE hopgate_listener_{name} {kind}");
                }
                let _ = writeln!(
                    out,
                    "hopgate_listener_{name}{{listener=\"{listener}\"}} {v}"
                );
            }
        }
        out.push_str(
            "# HELP hopgate_requests_total Client requests answered, by WS-Man action and HTTP status.\n\
             # TYPE hopgate_requests_total counter\n",
        );
        if let Ok(m) = self.requests.lock() {
            for ((action, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "hopgate_requests_total{{action=\"{action}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP hopgate_limit_refusals_total Requests refused by a per-source or per-person limit.\n\
             # TYPE hopgate_limit_refusals_total counter\n",
        );
        if let Ok(m) = self.limits.lock() {
            for (limit, n) in m.iter() {
                let _ = writeln!(out, "hopgate_limit_refusals_total{{limit=\"{limit}\"}} {n}");
            }
        }
        out.push_str(
            "# HELP hopgate_backend_request_duration_seconds Round trips from the gateway to hosts, by WS-Man action.\n\
             # TYPE hopgate_backend_request_duration_seconds histogram\n",
        );
        let snapshot: Vec<(&'static str, Histogram)> = match self.backend.lock() {
            Ok(m) => m.iter().map(|(a, h)| (*a, h.clone())).collect(),
            Err(_) => Vec::new(),
        };
        for (action, h) in snapshot {
            let mut cumulative = 0u64;
            for (le, n) in LATENCY_BUCKETS.iter().zip(h.buckets.iter()) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "hopgate_backend_request_duration_seconds_bucket{{action=\"{action}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "hopgate_backend_request_duration_seconds_bucket{{action=\"{action}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "hopgate_backend_request_duration_seconds_sum{{action=\"{action}\"}} {}",
                h.sum_secs
            );
            let _ = writeln!(
                out,
                "hopgate_backend_request_duration_seconds_count{{action=\"{action}\"}} {}",
                h.count
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_action_and_status() {
        let m = Metrics::default();
        m.request("Receive", 200);
        m.request("Receive", 200);
        m.request("Command", 500);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("hopgate_requests_total{action=\"Receive\",status=\"200\"} 2\n"));
        assert!(out.contains("hopgate_requests_total{action=\"Command\",status=\"500\"} 1\n"));
    }

    #[test]
    fn the_histogram_is_cumulative_with_sum_and_count() {
        let m = Metrics::default();
        m.backend("Command", Duration::from_millis(3));
        m.backend("Command", Duration::from_millis(40));
        m.backend("Command", Duration::from_secs(120));
        let mut out = String::new();
        m.render(&mut out);
        let line = |le: &str| {
            format!("hopgate_backend_request_duration_seconds_bucket{{action=\"Command\",le=\"{le}\"}} ")
        };
        for (le, n) in [
            ("0.0025", 0),
            ("0.005", 1),
            ("0.05", 2),
            ("60", 2),
            ("+Inf", 3),
        ] {
            assert!(out.contains(&format!("{}{n}\n", line(le))), "{le}: {out}");
        }
        assert!(
            out.contains("hopgate_backend_request_duration_seconds_count{action=\"Command\"} 3\n")
        );
        let sum: f64 = out
            .lines()
            .find_map(|l| {
                l.strip_prefix("hopgate_backend_request_duration_seconds_sum{action=\"Command\"} ")
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        assert!((sum - 120.043).abs() < 1e-9, "{out}");
    }

    #[test]
    fn listener_counters_are_rendered_per_listener() {
        let m = Metrics::default();
        let gw = m.listener("gateway");
        ListenerMetrics::inc(&gw.accept_errors);
        ListenerMetrics::inc(&m.listener("gateway").accept_errors);
        ListenerMetrics::inc(&m.listener("admin").accepted);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("hopgate_listener_accept_errors_total{listener=\"gateway\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("hopgate_listener_accepted_total{listener=\"admin\"} 1\n"),
            "{out}"
        );
        assert_eq!(
            out.matches("# TYPE hopgate_listener_accepted_total counter")
                .count(),
            1
        );
    }
}
