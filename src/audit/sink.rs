//! The audit writer: one task owns the file; everyone else holds an [`AuditHandle`].
//!
//! Events travel over a channel to the writer, which stamps `seq`/`ts`, chains each line to the previous one and syncs the file after
//! every batch (or at most every N ms, [`FsyncPolicy`]). On start it resumes the chain from
//! the last line already written; `rotate` (a child module) rotates the file and writes
//! checkpoints. Every chained line is produced by [`AuditTask::seal_into`].
//!
//! Never dropping (issue #14): an event handed to [`AuditHandle::emit`] is always queued
//! while the writer runs. The queue is bounded by admission instead of by dropping: past
//! [`SinkConfig::capacity`] events the handle is unhealthy and [`AuditHandle::admit`],
//! which the proxy calls before serving an authenticated request, waits (bounded) for the
//! writer to catch up or refuses the request. Unauthenticated noise (`authn.failure`)
//! never reaches the queue in bulk: `noise` counts it per source and reason and the writer
//! writes one `authn.failures` line per key and interval.
//!
//! Failing closed: when a write or sync fails, or the file at the audit path is no longer
//! the one the writer opened (deleted, moved, replaced), the writer stops writing for good
//! (a partial line is cut off so what is on disk still verifies) and the handle reports
//! unhealthy. The proxy refuses new sessions while the handle is unhealthy. Events lost
//! while the writer cannot write are counted; an `audit.gap` line records them when it
//! can write again (which `hopgate audit verify` reports as a failure).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use thiserror::Error;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, Notify};

use super::chain::{self, ChainState};
use super::checkpoint::{Reason, SigningKey};
use super::event::{Event, EventKind, EVENT_NAMES};
use super::noise::{Noise, Noted};
use super::redact::{self, SecretMemory};

pub use super::files::AUDIT_FILE;
pub use rotate::RotatePolicy;

#[path = "rotate.rs"]
mod rotate;
const CHANNEL_CAPACITY: usize = 8192;
/// How long failed sign-ins are counted before their `authn.failures` lines are written.
const NOISE_INTERVAL: Duration = Duration::from_secs(10);
/// The housekeeping tick never runs faster than this (a zero interval would spin).
const MIN_TICK: Duration = Duration::from_millis(10);
/// How often an idle writer checks that its file is still in place.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// When the writer makes written lines durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// After every batch, before the next one is taken (the default).
    #[default]
    EveryBatch,
    /// At most once per interval (and on flush): fewer syncs under load, at the risk of
    /// losing up to one interval of lines in a power failure.
    Interval(Duration),
}

/// Writer settings.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub fsync: FsyncPolicy,
    /// Events queued before the handle turns unhealthy and [`AuditHandle::admit`] makes
    /// requests wait (events are still queued past it, never dropped).
    pub capacity: usize,
    /// How often counted sign-in failures are written (`authn.failures`).
    pub noise_interval: Duration,
    /// When `audit.jsonl` is rotated (never by default).
    pub rotate: RotatePolicy,
    /// Signs checkpoints; without it checkpoints are written unsigned, and none is
    /// written at shutdown.
    pub signing_key: Option<Arc<SigningKey>>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::EveryBatch,
            capacity: CHANNEL_CAPACITY,
            noise_interval: NOISE_INTERVAL,
            rotate: RotatePolicy::default(),
            signing_key: None,
        }
    }
}

/// The first line of the file in use.
#[derive(Debug, Clone, Copy)]
struct FileStart {
    first_seq: u64,
    /// When it was written (names the file when rotated; daily rotation compares dates).
    started: OffsetDateTime,
}

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("cannot open audit log {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("existing audit log {path} does not end in a valid chained line: {reason}")]
    Resume { path: PathBuf, reason: String },
    /// Another gateway writes to this directory (or its lock file is unusable).
    #[error(transparent)]
    Locked(#[from] super::lock::LockError),
}

enum Msg {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
}

/// The writer fell behind and did not catch up within the wait allowed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("the audit writer is {queued} events behind")]
pub struct AuditBusy {
    pub queued: usize,
}

/// Cheap, cloneable way to record events.
#[derive(Clone)]
pub struct AuditHandle {
    // INVARIANT: unbounded, so an event is never dropped while the writer runs; `queued`
    // and `admit` bound it instead.
    tx: mpsc::UnboundedSender<Msg>,
    /// Events sent and not yet taken by the writer.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    /// Signalled by the writer after each batch (wakes `admit`).
    drained: Arc<Notify>,
    noise: Arc<Noise>,
    dropped: Arc<AtomicU64>,
    /// Set by the writer when it stopped writing (write error, file replaced).
    failed: Arc<AtomicBool>,
    /// Events emitted, per [`EVENT_NAMES`] entry (for metrics).
    counts: Arc<[AtomicU64; EVENT_NAMES.len()]>,
    /// Secrets redacted from each session's commands, scrubbed from its output too.
    pub(super) secrets: SecretMemory,
}

impl std::fmt::Debug for AuditHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditHandle")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .field("healthy", &self.healthy())
            .finish()
    }
}

/// The writer task's state; run it with [`AuditTask::run`].
#[derive(Debug)]
pub struct AuditTask {
    rx: mpsc::UnboundedReceiver<Msg>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    noise: Arc<Noise>,
    /// The handle's per-event counters (the writer counts the lines it makes itself).
    counts: Arc<[AtomicU64; EVENT_NAMES.len()]>,
    /// `std`, not `tokio::fs`: each batch is one trip to the blocking pool (check, append,
    /// sync) instead of one per step (issue #16); `&File` writes, so it is shared with it.
    file: Arc<std::fs::File>,
    /// The audit directory and `audit.jsonl` in it.
    dir: PathBuf,
    path: PathBuf,
    state: ChainState,
    /// None while the file in use has no line.
    file_start: Option<FileStart>,
    /// Lines were written after the last checkpoint.
    since_checkpoint: bool,
    config: SinkConfig,
    failed: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    /// Drops already recorded in an `audit.gap` line.
    reported_drops: u64,
    /// File length after the last complete write: a failed write is cut back to it.
    good_len: u64,
    /// Lines written but not yet synced (interval policy).
    dirty: bool,
    last_sync: Instant,
    /// Where copies of written lines go (syslog, stdout); never waited on.
    exporters: Option<Arc<super::export::Exporters>>,
    /// The directory's lock, held while this task (the writer) lives.
    lock: Option<super::lock::DirLock>,
}

// === impl AuditHandle ===

impl AuditHandle {
    /// Queues an event. Never waits and never drops it while the writer runs (the queue
    /// is held near its capacity by [`AuditHandle::admit`]). A failed sign-in is counted
    /// instead when its source, reason and claimed user already failed this interval.
    pub fn emit(&self, event: Event) {
        let name = event.kind.name();
        if let Some(c) = self.counts.get(event.kind.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let (EventKind::SessionEnd { .. }, Some(id)) = (&event.kind, &event.session_id) {
            self.secrets.forget(id);
        }
        if let EventKind::AuthnFailure {
            source_ip,
            reason,
            claimed_user,
        } = &event.kind
        {
            let now = OffsetDateTime::now_utc();
            if self
                .noise
                .note(source_ip, reason, claimed_user.as_deref(), now)
                == Noted::Counted
            {
                return;
            }
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Msg::Event(Box::new(event))).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                event = name,
                dropped_total = n,
                reason = "writer stopped",
                "Audit event dropped"
            );
        }
    }

    /// Waits, at most `wait`, until the writer's queue is below its capacity: called
    /// before serving a request whose events must not be lost, so a writer that falls
    /// behind slows requests down instead of losing their record. A writer that stopped
    /// for good is not waited for (the handle is unhealthy; new sessions are refused).
    pub async fn admit(&self, wait: Duration) -> Result<(), AuditBusy> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the check, so a batch finished in between still wakes it.
            let drained = self.drained.notified();
            let queued = self.queue_depth();
            if queued < self.capacity || self.failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return Err(AuditBusy { queued });
            }
        }
    }

    /// `command` with its secrets redacted, for an allowed command of `session_id`; the
    /// secrets are remembered to scrub the session's output.
    pub fn redact(&self, session_id: &str, command: &[String]) -> Vec<String> {
        let r = redact::command(command);
        self.secrets.remember(session_id, &r);
        r.command
    }

    /// A denied command of `session_id` and the policy's reason (which may quote it), both
    /// redacted.
    pub fn redact_denial(
        &self,
        session_id: &str,
        command: &[String],
        reason: &str,
    ) -> (Vec<String>, String) {
        let r = redact::command(command);
        self.secrets.remember(session_id, &r);
        (r.command.clone(), redact::scrub_words(reason, &r))
    }

    /// Waits until every event queued before this call is on disk.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Events lost because the writer had stopped (or could not write).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether events emitted now will reach the file promptly: the writer runs, has not
    /// failed, and the queue is below its capacity. New sessions must not start while this
    /// is false.
    pub fn healthy(&self) -> bool {
        !self.failed.load(Ordering::Relaxed)
            && !self.tx.is_closed()
            && self.queue_depth() < self.capacity
    }

    /// (event name, events emitted so far) for every event kind.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        EVENT_NAMES
            .iter()
            .zip(self.counts.iter())
            .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Events waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

// === impl AuditTask ===

impl AuditTask {
    /// Opens (or creates) `dir/audit.jsonl` with default settings and resumes its chain.
    pub async fn open(dir: &Path) -> Result<(AuditHandle, AuditTask), AuditError> {
        Self::open_with(dir, SinkConfig::default()).await
    }

    /// Opens (or creates) `dir/audit.jsonl` and resumes the chain from the last line
    /// written (in `audit.jsonl`, or in the newest rotated file when that is empty).
    pub async fn open_with(
        dir: &Path,
        config: SinkConfig,
    ) -> Result<(AuditHandle, AuditTask), AuditError> {
        let path = dir.join(AUDIT_FILE);
        let open_err = |source| AuditError::Open {
            path: path.clone(),
            source,
        };
        tokio::fs::create_dir_all(dir).await.map_err(open_err)?;
        // Before reading the chain: a second gateway must not resume from a line the first
        // is about to follow (issue #14).
        let owned = dir.to_path_buf();
        let lock = tokio::task::spawn_blocking(move || super::lock::DirLock::acquire(&owned))
            .await
            .map_err(|e| open_err(std::io::Error::other(e)))??;
        let resumed = rotate::resume(dir).await?;
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(open_err)?
            .into_std()
            .await;
        let mut task = Self::with_file(file, dir, resumed, config).await;
        task.1.lock = Some(lock);
        Ok(task)
    }

    /// The handle and task for an already open file whose chain is where `resumed` says.
    async fn with_file(
        file: std::fs::File,
        dir: &Path,
        resumed: rotate::Resumed,
        config: SinkConfig,
    ) -> (AuditHandle, AuditTask) {
        let good_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let (tx, rx) = mpsc::unbounded_channel();
        let failed = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let noise = Arc::new(Noise::default());
        let counts: Arc<[AtomicU64; EVENT_NAMES.len()]> =
            Arc::new(std::array::from_fn(|_| AtomicU64::new(0)));
        (
            AuditHandle {
                tx,
                queued: queued.clone(),
                capacity: config.capacity.max(1),
                drained: drained.clone(),
                noise: noise.clone(),
                dropped: dropped.clone(),
                failed: failed.clone(),
                counts: counts.clone(),
                secrets: SecretMemory::default(),
            },
            AuditTask {
                rx,
                queued,
                drained,
                noise,
                counts,
                file: Arc::new(file),
                dir: dir.to_path_buf(),
                path: dir.join(AUDIT_FILE),
                state: resumed.state,
                file_start: resumed.file_start,
                since_checkpoint: resumed.since_checkpoint,
                config,
                failed,
                dropped,
                reported_drops: 0,
                good_len,
                dirty: false,
                last_sync: Instant::now(),
                exporters: None,
                lock: None,
            },
        )
    }

    /// Also offers every line, once written, to `exporters`.
    pub fn with_exporters(mut self, exporters: Option<Arc<super::export::Exporters>>) -> Self {
        self.exporters = exporters;
        self
    }

    /// Writes events until every handle is dropped.
    pub async fn run(mut self) {
        let mut batch = String::new();
        let mut waiters = Vec::new();
        let every = match self.config.fsync {
            FsyncPolicy::Interval(d) => d.min(CHECK_EVERY),
            FsyncPolicy::EveryBatch => CHECK_EVERY,
        };
        let mut tick = tokio::time::interval(every.min(self.config.noise_interval).max(MIN_TICK));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let first = tokio::select! {
                m = self.rx.recv() => match m {
                    Some(m) => m,
                    None => break,
                },
                _ = tick.tick() => {
                    self.housekeeping().await;
                    continue;
                }
            };
            self.take(first, &mut batch, &mut waiters).await;
            // Drain what is already queued so one write and sync cover the whole batch, up
            // to the queue's capacity: a backlog is written in pieces, each one waking the
            // requests that wait for room (`admit`).
            let mut taken = 1usize;
            while taken < self.config.capacity {
                let Ok(more) = self.rx.try_recv() else { break };
                self.take(more, &mut batch, &mut waiters).await;
                taken += 1;
            }
            self.note_gap(&mut batch);
            if !batch.is_empty() {
                self.write(&batch, !waiters.is_empty()).await;
                batch.clear();
            } else if !waiters.is_empty() && self.dirty {
                self.sync().await;
            }
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
            self.drained.notify_waiters();
        }
        // What was counted so far is part of the record too.
        self.write_noise().await;
        // A clean stop: vouch for what this run wrote (only worth it when signed).
        if self.config.signing_key.is_some() && self.since_checkpoint && !self.is_failed() {
            self.checkpoint(Reason::Shutdown).await;
        }
        if self.dirty {
            self.sync().await;
        }
    }

    /// Periodic work: the interval sync, daily rotation of an idle file, and noticing a
    /// replaced file without waiting for the next event.
    async fn housekeeping(&mut self) {
        if self.is_failed() {
            return;
        }
        if !self.file_in_place().await {
            self.fail("the audit file was moved, deleted or replaced");
            return;
        }
        let now = OffsetDateTime::now_utc();
        if self.day_over(now) {
            self.rotate().await;
        }
        let interval =
            time::Duration::try_from(self.config.noise_interval).unwrap_or(time::Duration::MAX);
        if self.noise.started().is_some_and(|s| now - s >= interval) {
            self.write_noise().await;
        }
        if self.dirty {
            self.sync().await;
        }
    }

    /// Writes the interval's `authn.failures` lines (if any failure repeated).
    async fn write_noise(&mut self) {
        let now = OffsetDateTime::now_utc();
        let events = self.noise.take(now);
        if events.is_empty() {
            return;
        }
        let mut batch = String::new();
        for e in &events {
            if let Some(c) = self.counts.get(e.kind.index()) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            self.push(e, now, &mut batch);
        }
        if !batch.is_empty() {
            self.write(&batch, false).await;
        }
    }

    fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Adds an `audit.gap` line for events dropped since the last one.
    fn note_gap(&mut self, batch: &mut String) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_drops && !self.failed.load(Ordering::Relaxed) {
            let n = dropped - self.reported_drops;
            self.reported_drops = dropped;
            self.push(
                &Event {
                    session_id: None,
                    kind: EventKind::AuditGap { dropped: n },
                },
                OffsetDateTime::now_utc(),
                batch,
            );
        }
    }

    /// Appends `batch` (whole lines); syncs per the policy or when someone waits on it.
    async fn write(&mut self, batch: &str, force_sync: bool) {
        if self.failed.load(Ordering::Relaxed) {
            self.lose(batch);
            return;
        }
        let due = match self.config.fsync {
            FsyncPolicy::EveryBatch => true,
            FsyncPolicy::Interval(d) => self.last_sync.elapsed() >= d,
        };
        let (file, path) = (self.file.clone(), self.path.clone());
        let (bytes, good_len) = (batch.as_bytes().to_vec(), self.good_len);
        let sync = due || force_sync;
        let outcome = tokio::task::spawn_blocking(move || {
            append_blocking(&file, &path, &bytes, good_len, sync)
        })
        .await
        .unwrap_or_else(|e| Err(Append::Write(std::io::Error::other(e))));
        match outcome {
            Ok(()) => {}
            Err(Append::Moved) => {
                self.fail("the audit file was moved, deleted or replaced");
                self.lose(batch);
                return;
            }
            Err(Append::Write(error)) => {
                tracing::error!(path = %self.path.display(), %error, "Audit write failed");
                self.fail("write failed");
                self.lose(batch);
                return;
            }
            Err(Append::Sync(error)) => {
                // The lines are in the file (not yet durable): nothing was lost yet.
                tracing::error!(path = %self.path.display(), %error, "Audit sync failed");
                self.good_len += u64::try_from(batch.len()).unwrap_or(u64::MAX);
                self.fail("sync failed");
                return;
            }
        }
        self.good_len += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        if let Some(x) = &self.exporters {
            batch.lines().for_each(|l| x.offer(l));
        }
        if sync {
            self.dirty = false;
            self.last_sync = Instant::now();
        } else {
            self.dirty = true;
        }
    }

    /// Counts the lines of a batch that will never be written.
    fn lose(&self, batch: &str) {
        let lost = u64::try_from(batch.lines().count()).unwrap_or(u64::MAX);
        self.dropped.fetch_add(lost, Ordering::Relaxed);
    }

    async fn sync(&mut self) {
        let file = self.file.clone();
        let synced = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(error) = synced {
            tracing::error!(path = %self.path.display(), %error, "Audit sync failed");
            self.fail("sync failed");
            return;
        }
        self.dirty = false;
        self.last_sync = Instant::now();
    }

    fn fail(&mut self, why: &str) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::error!(
                path = %self.path.display(),
                reason = why,
                "Audit log unavailable: no further events are written and new sessions are refused"
            );
        }
    }

    /// Whether the audit path still names the file this writer has open.
    async fn file_in_place(&self) -> bool {
        let (file, path) = (self.file.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || in_place(&file, &path))
            .await
            .unwrap_or(false)
    }

    /// Adds one message to the batch; rotates first when the next line is due in a new
    /// file (writing what the batch holds so far to the old one).
    async fn take(&mut self, msg: Msg, batch: &mut String, waiters: &mut Vec<oneshot::Sender<()>>) {
        match msg {
            Msg::Flush(w) => waiters.push(w),
            Msg::Event(event) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                let now = OffsetDateTime::now_utc();
                if self.rotation_due(now, batch.len()) && !self.is_failed() {
                    if !batch.is_empty() {
                        self.write(batch, false).await;
                        batch.clear();
                    }
                    self.rotate().await;
                }
                self.push(&event, now, batch);
            }
        }
    }

    /// Seals `event` as the next line of the chain and appends it to `batch`.
    fn push(&mut self, event: &Event, now: OffsetDateTime, batch: &mut String) {
        if self.is_failed() {
            // Nothing more is written: do not advance the chain either.
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let fields = match serde_json::to_value(event) {
            Ok(Value::Object(m)) => m,
            // Events are plain structs of strings and integers: this cannot fail, but if
            // it ever did the loss must be visible.
            _ => {
                tracing::error!(event = event.kind.name(), "Audit event not serialisable");
                return;
            }
        };
        self.seal_into(fields, now, batch);
    }

    /// Seals `fields` as the next line of the chain, stamped `now`, and appends it to
    /// `batch`: the one place a chained line is produced.
    fn seal_into(&mut self, fields: Map<String, Value>, now: OffsetDateTime, batch: &mut String) {
        let seq = self.state.next_seq;
        let (line, hash) = chain::seal(fields, seq, &format_ts(now), &self.state.prev);
        self.state.next_seq += 1;
        self.state.prev = hash;
        self.file_start.get_or_insert(FileStart {
            first_seq: seq,
            started: now,
        });
        self.since_checkpoint = true;
        batch.push_str(&line);
        batch.push('\n');
    }
}

/// Why an append did not complete.
#[derive(Debug)]
enum Append {
    /// The audit path no longer names the open file.
    Moved,
    /// Writing failed; the file was cut back to its last whole line.
    Write(std::io::Error),
    /// The lines are written but could not be made durable.
    Sync(std::io::Error),
}

/// Whether `path` still names `file`.
fn in_place(file: &std::fs::File, path: &Path) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(on_path), Ok(open)) => same_file(&on_path, &open),
        _ => false,
    }
}

/// One batch, on a blocking thread: the file is still in place, the bytes are appended,
/// and synced when `sync`. A failed write is cut back to `good_len`, so the file still
/// verifies up to its last whole line.
fn append_blocking(
    file: &std::fs::File,
    path: &Path,
    bytes: &[u8],
    good_len: u64,
    sync: bool,
) -> Result<(), Append> {
    use std::io::Write as _;
    if !in_place(file, path) {
        return Err(Append::Moved);
    }
    let mut w = file;
    if let Err(e) = w.write_all(bytes) {
        let _ = file.set_len(good_len);
        return Err(Append::Write(e));
    }
    if sync {
        file.sync_data().map_err(Append::Sync)?;
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.is_file() && a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, _b: &std::fs::Metadata) -> bool {
    a.is_file()
}

/// RFC 3339 UTC timestamp with millisecond precision.
pub fn now_rfc3339() -> String {
    format_ts(OffsetDateTime::now_utc())
}

/// `now` as an RFC 3339 UTC timestamp with millisecond precision.
fn format_ts(now: OffsetDateTime) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    let ms = now.millisecond();
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    match now.format(fmt) {
        Ok(s) => format!("{s}.{ms:03}Z"),
        Err(_) => now.unix_timestamp().to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use crate::audit::event::EventKind;
    use std::path::Path;

    fn failure(ip: &str) -> Event {
        Event {
            session_id: None,
            kind: EventKind::AuthnFailure {
                source_ip: ip.into(),
                reason: "no credentials".into(),
                claimed_user: None,
            },
        }
    }

    async fn lines(dir: &Path) -> String {
        tokio::fs::read_to_string(dir.join(AUDIT_FILE))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn replaced_file_fails_closed_and_keeps_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, task) = AuditTask::open(dir.path()).await.unwrap();
        let writer = tokio::spawn(task.run());
        handle.emit(failure("10.0.0.1"));
        handle.emit(failure("10.0.0.2"));
        handle.flush().await;
        assert!(handle.healthy());

        // Someone moves the log away and puts a directory in its place.
        let moved = dir.path().join("moved.jsonl");
        std::fs::rename(dir.path().join(AUDIT_FILE), &moved).unwrap();
        std::fs::create_dir(dir.path().join(AUDIT_FILE)).unwrap();
        handle.emit(failure("10.0.0.3"));
        handle.flush().await;
        assert!(
            !handle.healthy(),
            "the writer must notice at the next write"
        );
        assert_eq!(handle.dropped(), 1);
        handle.emit(failure("10.0.0.4"));
        handle.flush().await;
        assert_eq!(handle.dropped(), 2);

        let kept = std::fs::read_to_string(&moved).unwrap();
        assert_eq!(chain::verify_text(&kept), Ok(2), "{kept}");
        assert!(!kept.contains("10.0.0.3"));
        drop(handle);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn deleted_file_is_noticed_without_new_events() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, task) = AuditTask::open(dir.path()).await.unwrap();
        let writer = tokio::spawn(task.run());
        handle.emit(failure("10.0.0.1"));
        handle.flush().await;
        assert!(handle.healthy());
        std::fs::remove_file(dir.path().join(AUDIT_FILE)).unwrap();
        let start = Instant::now();
        while handle.healthy() && start.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!handle.healthy(), "the periodic check must notice");
        drop(handle);
        writer.await.unwrap();
    }

    fn denied(i: usize) -> Event {
        Event {
            session_id: Some(format!("s{i}")),
            kind: EventKind::AccessDenied {
                principal: "alice".into(),
                source_ip: "10.0.0.9".into(),
                host: None,
                shell_id: None,
                action: "-".into(),
                reason: "test".into(),
            },
        }
    }

    #[tokio::test]
    async fn a_full_queue_is_unhealthy_makes_requests_wait_and_drops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = SinkConfig {
            capacity: 2,
            ..SinkConfig::default()
        };
        let (handle, task) = AuditTask::open_with(dir.path(), config).await.unwrap();
        // The writer is not running yet: the queue fills past its capacity.
        handle.emit(denied(1));
        assert!(handle.healthy());
        assert_eq!(handle.admit(Duration::ZERO).await, Ok(()));
        for i in 2..=5 {
            handle.emit(denied(i));
        }
        assert_eq!(handle.queue_depth(), 5);
        assert_eq!(
            handle.dropped(),
            0,
            "authenticated events are never dropped"
        );
        assert!(!handle.healthy(), "a full queue refuses new sessions");
        assert_eq!(
            handle.admit(Duration::from_millis(50)).await,
            Err(AuditBusy { queued: 5 }),
            "a request waits a bounded time, then is refused"
        );

        // A request waiting when the writer starts is let through once it catches up.
        let waiting = tokio::spawn({
            let h = handle.clone();
            async move { h.admit(Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let writer = tokio::spawn(task.run());
        assert_eq!(waiting.await.unwrap(), Ok(()));
        handle.flush().await;
        assert!(handle.healthy(), "healthy again once the queue drains");
        let text = lines(dir.path()).await;
        assert_eq!(chain::verify_text(&text), Ok(5), "{text}");
        assert!(!text.contains("audit.gap"), "{text}");
        drop(handle);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_flood_of_failed_sign_ins_is_counted_not_queued() {
        let dir = tempfile::tempdir().unwrap();
        let config = SinkConfig {
            capacity: 16,
            noise_interval: Duration::from_millis(50),
            ..SinkConfig::default()
        };
        let (handle, task) = AuditTask::open_with(dir.path(), config).await.unwrap();
        let writer = tokio::spawn(task.run());
        for _ in 0..100_000 {
            handle.emit(failure("10.0.0.1"));
        }
        handle.emit(denied(1));
        assert!(handle.queue_depth() <= 2, "{}", handle.queue_depth());
        assert!(handle.healthy());
        handle.flush().await;
        // The interval ends: the repeats are written as one line.
        let start = Instant::now();
        while !lines(dir.path()).await.contains("authn.failures")
            && start.elapsed() < Duration::from_secs(5)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let counts = handle.counts();
        drop(handle);
        writer.await.unwrap();
        let text = lines(dir.path()).await;
        assert_eq!(chain::verify_text(&text), Ok(3), "{text}");
        let all: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(all[0]["event"], "authn.failure");
        assert_eq!(all[1]["event"], "access.denied");
        assert_eq!(all[2]["event"], "authn.failures");
        assert_eq!(all[2]["source_ip"], "10.0.0.1");
        assert_eq!(all[2]["reason"], "no credentials");
        assert_eq!(all[2]["count"], 99_999);
        let counted = |name: &str| counts.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
        assert_eq!(
            counted("authn.failure"),
            Some(100_000),
            "every failure counted"
        );
        assert_eq!(counted("authn.failures"), Some(1), "one summary line");
    }

    #[tokio::test]
    async fn events_lost_to_a_stopped_writer_are_counted_and_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, task) = AuditTask::open(dir.path()).await.unwrap();
        let writer = tokio::spawn(task.run());
        handle.emit(denied(1));
        handle.flush().await;
        std::fs::remove_file(dir.path().join(AUDIT_FILE)).unwrap();
        handle.emit(denied(2));
        handle.flush().await;
        assert_eq!(handle.dropped(), 1);
        assert!(!handle.healthy());
        assert_eq!(
            handle.admit(Duration::from_secs(5)).await,
            Ok(()),
            "a writer that stopped for good is not waited for"
        );
        drop(handle);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn interval_policy_still_writes_and_flush_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let config = SinkConfig {
            fsync: FsyncPolicy::Interval(Duration::from_secs(3600)),
            ..SinkConfig::default()
        };
        let (handle, task) = AuditTask::open_with(dir.path(), config).await.unwrap();
        let writer = tokio::spawn(task.run());
        for i in 0..50 {
            handle.emit(failure(&format!("10.0.0.{i}")));
        }
        handle.flush().await;
        assert_eq!(chain::verify_text(&lines(dir.path()).await), Ok(50));
        drop(handle);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn events_are_chained_and_the_chain_resumes_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..2 {
            let (handle, task) = AuditTask::open(dir.path()).await.unwrap();
            let writer = tokio::spawn(task.run());
            handle.emit(failure(&format!("127.0.0.{round}")));
            handle.emit(failure("::1"));
            handle.flush().await;
            drop(handle);
            writer.await.unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
        assert_eq!(chain::verify_text(&text), Ok(4));
        assert!(text.contains("\"event\":\"authn.failure\""));
        assert!(text.contains("\"source_ip\":\"127.0.0.1\""));
    }
}
