//! `hopgate load`: a WS-Man load generator for benchmarks (issue #16), loopback only.
//!
//! Owns: N concurrent client sessions, each on its own keep-alive connection like a real
//! client, running WinRS cmd shells (Create, M × Command + Receive until Done, Delete) or
//! holding a Receive the way an open PowerShell session does (long-poll mode), and the
//! report: round trips/s, percentiles per WS-Man action, output MB/s, errors, and the
//! target process's CPU per round trip. It refuses any target that is not a loopback
//! address. Envelopes are the ones pywinrm sends (`messages`), answers are read with the
//! gateway's own `wsman` codec.

mod client;
mod hostile;
mod messages;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use self::client::{Auth, ClientError};
pub use self::stats::{Report, Stats};

use self::client::Client;
use crate::wsman::{self, Body, CommandStateKind};

/// What kind of sessions to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every session runs commands back to back.
    Cmd,
    /// `active` sessions run commands; every other one starts `cmd` (which waits on stdin
    /// forever) and keeps a Receive outstanding, as PowerShell does.
    LongPoll { active: usize },
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// `127.0.0.1:5986` (loopback only).
    pub target: SocketAddr,
    /// URL path, e.g. `/wsman/standin`.
    pub path: String,
    /// TLS with this CA (None: plain HTTP).
    pub tls_ca: Option<PathBuf>,
    pub auth: Auth,
    pub sessions: usize,
    /// Commands per shell before it is deleted and a new one created.
    pub commands_per_shell: usize,
    /// The command line each Command runs (e.g. `hostname`, `bench-output 102400`).
    pub command: String,
    pub duration: Duration,
    pub mode: Mode,
    /// OperationTimeout asked for in Receives (seconds).
    pub operation_timeout_secs: u64,
    /// Process whose CPU time is reported per round trip (the gateway), and whose
    /// resident memory is sampled every second.
    pub pid: Option<u32>,
    /// Tasks sending hostile requests beside the load (soak runs); 0 for none.
    pub hostile: usize,
    /// Loopback address the hostile traffic comes from (e.g. 127.0.0.2), so that the
    /// gateway's per-source limits fall on it as they would on an attacker's address.
    pub hostile_source: std::net::IpAddr,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the target {0} is not a loopback address: hopgate load only loads this machine")]
    NotLoopback(SocketAddr),
    #[error("client setup: {0}")]
    Client(#[from] ClientError),
}

/// Runs the load and returns the report.
pub async fn run(settings: LoadSettings) -> Result<Report, LoadError> {
    if !settings.target.ip().is_loopback() {
        return Err(LoadError::NotLoopback(settings.target));
    }
    if !settings.hostile_source.is_loopback() {
        return Err(LoadError::NotLoopback(std::net::SocketAddr::new(
            settings.hostile_source,
            0,
        )));
    }
    let client = Arc::new(Client::new(&settings)?);
    let stats = Arc::new(Stats::default());
    let cpu_before = settings.pid.and_then(stats::process_cpu);
    let started = Instant::now();
    let deadline = started + settings.duration;
    let hostile = Arc::new(hostile::HostileStats::default());
    let rss = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..settings.hostile {
        let client = client.clone();
        let hostile = hostile.clone();
        let source = settings.hostile_source;
        tasks.spawn(async move { hostile::run(&client, &hostile, deadline, i, source).await });
    }
    if let Some(pid) = settings.pid {
        let rss = rss.clone();
        tasks.spawn(async move {
            while Instant::now() < deadline {
                if let (Some(kb), Ok(mut v)) = (stats::process_rss_kb(pid), rss.lock()) {
                    v.push(kb);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    for i in 0..settings.sessions {
        let client = client.clone();
        let stats = stats.clone();
        let s = settings.clone();
        let long_poll = matches!(s.mode, Mode::LongPoll { active } if i >= active);
        tasks.spawn(async move {
            if long_poll {
                hold_receives(&client, &stats, &s, deadline).await;
            } else {
                run_commands(&client, &stats, &s, deadline).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let cpu = match (cpu_before, settings.pid.and_then(stats::process_cpu)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let mut report = stats.report(elapsed, cpu);
    report.rss_kb = rss
        .lock()
        .map(|v| stats::RssReport::of(&v))
        .unwrap_or_default();
    report.hostile = stats::HostileReport::of(&hostile);
    Ok(report)
}

/// Sessions that run commands until the deadline.
async fn run_commands(client: &Client, stats: &Stats, s: &LoadSettings, deadline: Instant) {
    while Instant::now() < deadline {
        let mut conn = match client.connect().await {
            Ok(c) => c,
            Err(_) => {
                stats.error("connect");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(shell) = create(&mut conn, client, stats).await else {
            continue;
        };
        for _ in 0..s.commands_per_shell {
            if Instant::now() >= deadline {
                break;
            }
            if run_one(&mut conn, client, stats, s, &shell).await.is_none() {
                break;
            }
        }
        let _ = call(&mut conn, client, stats, "Delete", messages::delete(&shell)).await;
    }
}

/// A session that keeps one Receive outstanding on a command that never ends.
async fn hold_receives(client: &Client, stats: &Stats, s: &LoadSettings, deadline: Instant) {
    let Ok(mut conn) = client.connect().await else {
        stats.error("connect");
        return;
    };
    let Some(shell) = create(&mut conn, client, stats).await else {
        return;
    };
    let body = messages::command(&shell, "cmd");
    let Ok(Body::CommandResponse { command_id }) =
        call(&mut conn, client, stats, "Command", body).await
    else {
        return;
    };
    while Instant::now() < deadline {
        let receive = messages::receive(&shell, &command_id, s.operation_timeout_secs);
        // A held poll ends with a TimedOut fault: that is its normal answer, not an error.
        if call(&mut conn, client, stats, "Receive(held)", receive).await == Err(Failed::Error) {
            break;
        }
    }
    let _ = call(
        &mut conn,
        client,
        stats,
        "Signal",
        messages::signal_terminate(&shell, &command_id),
    )
    .await;
    let _ = call(&mut conn, client, stats, "Delete", messages::delete(&shell)).await;
}

async fn create(conn: &mut client::Conn, client: &Client, stats: &Stats) -> Option<String> {
    match call(conn, client, stats, "Create", messages::create_cmd_shell())
        .await
        .ok()?
    {
        Body::ResourceCreated { selectors, .. } => selectors
            .into_iter()
            .find(|s| s.name.eq_ignore_ascii_case("ShellId"))
            .map(|s| s.value),
        _ => {
            stats.error("Create");
            None
        }
    }
}

/// One Command and its Receives until Done; counts the output bytes.
async fn run_one(
    conn: &mut client::Conn,
    client: &Client,
    stats: &Stats,
    s: &LoadSettings,
    shell: &str,
) -> Option<()> {
    let body = messages::command(shell, &s.command);
    let Body::CommandResponse { command_id } =
        call(conn, client, stats, "Command", body).await.ok()?
    else {
        stats.error("Command");
        return None;
    };
    loop {
        let receive = messages::receive(shell, &command_id, s.operation_timeout_secs);
        let (streams, command_state) = match call(conn, client, stats, "Receive", receive).await {
            Ok(Body::ReceiveResponse {
                streams,
                command_state,
            }) => (streams, command_state),
            // Nothing within the OperationTimeout: poll again, as clients do.
            Err(Failed::TimedOut) => continue,
            Ok(_) => {
                stats.error("Receive");
                return None;
            }
            Err(Failed::Error) => return None,
        };
        stats.output(streams.iter().map(|st| st.data.len()).sum());
        if command_state.is_some_and(|c| c.state == CommandStateKind::Done) {
            return Some(());
        }
    }
}

/// How a call went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failed {
    /// A long poll's normal end: WS-Man TimedOut.
    TimedOut,
    /// Anything else (counted as an error).
    Error,
}

/// Sends one envelope and decodes the answer; faults and failures are counted.
async fn call(
    conn: &mut client::Conn,
    client: &Client,
    stats: &Stats,
    action: &'static str,
    body: String,
) -> Result<Body, Failed> {
    let start = Instant::now();
    let answer = conn.post(client, body).await;
    let took = start.elapsed();
    let Ok(bytes) = answer else {
        stats.error(action);
        // The connection may be unusable now: reconnect for the next call.
        if let Ok(c) = client.connect().await {
            *conn = c;
        }
        return Err(Failed::Error);
    };
    stats.sample(action, took);
    match wsman::parse(&bytes, &wsman::Limits::default()) {
        Ok(env) => match env.body {
            Body::Fault(f)
                if f.subcode
                    .as_ref()
                    .is_some_and(|q| q.local_name == "TimedOut") =>
            {
                stats.timed_out();
                Err(Failed::TimedOut)
            }
            Body::Fault(_) => {
                stats.error(action);
                Err(Failed::Error)
            }
            other => Ok(other),
        },
        Err(_) => {
            stats.error(action);
            Err(Failed::Error)
        }
    }
}
