//! Audit benchmarks: what one event costs the request that emits it, and how many events
//! per second the writer sustains with fsync at most every 100 ms.
//!
//! The log goes to a temporary directory under the target directory (a real disk, so
//! fsync costs what it costs; set `HOPGATE_BENCH_DIR` to measure another file system).
//!
//! Run: `cargo bench --bench audit -- --warm-up-time 1 --measurement-time 5`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark harness: a panic is a broken setup"
)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hopgate::audit::checkpoint::SigningKey;
use hopgate::audit::{
    AuditHandle, AuditTask, Event, EventKind, FsyncPolicy, RotatePolicy, SinkConfig,
};

/// Where the bench logs go: `$HOPGATE_BENCH_DIR`, else the target directory.
fn bench_root() -> PathBuf {
    std::env::var_os("HOPGATE_BENCH_DIR").map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        },
        PathBuf::from,
    )
}

/// A `command.allowed` as the proxy emits it for a typical cmd-shell command.
fn allowed(command: Vec<String>) -> Event {
    Event {
        session_id: Some("0b6c3f0e-6f2b-4d7a-9b1e-2a6f3c9d8e71".into()),
        kind: EventKind::CommandAllowed {
            principal: "alice@CORP.EXAMPLE".into(),
            host: "web1".into(),
            shell_id: "6E1F2B1C-3C4D-4E5F-8A9B-0C1D2E3F4A5B".into(),
            command_id: Some("A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D".into()),
            command,
            decoded: Vec::new(),
            rule: "ops: allow ipconfig, hostname, Get-Service".into(),
        },
    }
}

fn command() -> Vec<String> {
    vec!["ipconfig".into(), "/all".into()]
}

/// A running writer in `rt`, with a queue large enough that a bench never drops.
fn writer(
    rt: &tokio::runtime::Runtime,
    config: SinkConfig,
) -> (AuditHandle, tempfile::TempDir, tokio::task::JoinHandle<()>) {
    std::fs::create_dir_all(bench_root()).unwrap();
    let dir = tempfile::tempdir_in(bench_root()).unwrap();
    let config = SinkConfig {
        capacity: 1 << 20,
        ..config
    };
    let (handle, task) = rt
        .block_on(AuditTask::open_with(dir.path(), config))
        .unwrap();
    let join = rt.spawn(task.run());
    (handle, dir, join)
}

fn interval_100ms() -> SinkConfig {
    SinkConfig {
        fsync: FsyncPolicy::Interval(Duration::from_millis(100)),
        ..SinkConfig::default()
    }
}

fn finish(rt: &tokio::runtime::Runtime, handle: AuditHandle, join: tokio::task::JoinHandle<()>) {
    rt.block_on(handle.flush());
    assert_eq!(handle.dropped(), 0, "the bench must not lose events");
    drop(handle);
    rt.block_on(join).unwrap();
}

/// The request's share: building and queueing one event (the writer runs meanwhile on
/// another thread, as in the gateway).
fn emit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (handle, _dir, join) = writer(&rt, interval_100ms());
    let mut g = c.benchmark_group("audit_emit");
    g.throughput(Throughput::Elements(1));
    // Only the emits are timed; the queue is drained between samples so it never fills.
    g.bench_function("command.allowed", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                handle.emit(black_box(allowed(command())));
            }
            let took = start.elapsed();
            rt.block_on(handle.flush());
            took
        });
    });
    g.bench_function("command.allowed with redaction", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let cmd = handle.redact("0b6c3f0e-6f2b-4d7a-9b1e-2a6f3c9d8e71", &command());
                handle.emit(black_box(allowed(cmd)));
            }
            let took = start.elapsed();
            rt.block_on(handle.flush());
            took
        });
    });
    g.finish();
    finish(&rt, handle, join);
}

/// Events per second through the writer: queue `n` events, wait until they are written.
fn sustained(c: &mut Criterion) {
    const N: u64 = 20_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (key, _) = SigningKey::generate().unwrap();
    let configs = [
        ("fsync every 100 ms", interval_100ms()),
        (
            "fsync every batch",
            SinkConfig {
                fsync: FsyncPolicy::EveryBatch,
                ..SinkConfig::default()
            },
        ),
        (
            "fsync every 100 ms, rotate every 1 MiB, signed checkpoints",
            SinkConfig {
                rotate: RotatePolicy {
                    daily: false,
                    max_bytes: Some(1 << 20),
                },
                signing_key: Some(Arc::new(key)),
                ..interval_100ms()
            },
        ),
    ];
    let mut g = c.benchmark_group("audit_sustained");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    for (name, config) in configs {
        let (handle, _dir, join) = writer(&rt, config);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for _ in 0..N {
                        handle.emit(allowed(command()));
                    }
                    rt.block_on(handle.flush());
                }
                start.elapsed()
            });
        });
        finish(&rt, handle, join);
    }
    g.finish();
}

criterion_group!(benches, emit, sustained);
criterion_main!(benches);
