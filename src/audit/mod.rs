//! Audit trail: typed events, a hash-chained JSON-lines file, and the writer task.
//!
//! Audit events are data, not log lines: they go through [`AuditHandle`] to a single writer
//! task that owns the file, numbers the events and chains them with SHA-256 so an edit,
//! deletion or reordering is detectable (`chain::verify`). Nothing secret may be put in an
//! event: callers pass principal names, host names and decoded commands, never credentials,
//! and commands go through `redact` (via [`AuditHandle::redact`]) before an event is built.
//!
//! - `event`: the typed events (pure); `chain`: canonical lines, hashing, verification;
//! - `sink`: the writer task, fsync policy, fail-closed health; its child `rotate`:
//!   resuming, rotating `audit.jsonl` and closing files with checkpoints;
//! - `checkpoint`: signed (Ed25519) checkpoint lines and their keys;
//! - `files`: the audit directory's file names and chain order; `lock`: one writer per
//!   directory (`hopgate.lock`);
//! - `verify`: checking a chain across files, with checkpoints and signatures;
//! - `noise`: failed sign-ins counted per source and reason (`authn.failures`);
//! - `output`: `output` events from cmd-shell ReceiveResponses;
//! - `redact`: secrets out of command lines, reasons and echoed output;
//! - `export`: copies of the written lines to syslog and stdout (best effort);
//! - `transcript`: reading a log back (sessions, replay) for `hopgate audit`.

pub mod chain;
pub mod checkpoint;
pub mod event;
pub mod export;
pub mod files;
pub mod lock;
pub mod noise;
pub mod output;
pub mod redact;
pub mod sink;
pub mod transcript;
pub mod verify;

pub use event::{Event, EventKind};
pub use sink::{
    AuditBusy, AuditError, AuditHandle, AuditTask, FsyncPolicy, RotatePolicy, SinkConfig,
};
