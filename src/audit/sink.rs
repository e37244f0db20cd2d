//! The audit writer: one task owns the file; everyone else holds an [`AuditHandle`].
//!
//! Events travel over a bounded channel so a slow disk can never stall a request; the
//! writer stamps `seq`/`ts`, chains each line to the previous one and syncs the file after
//! every batch. On start it resumes the chain from the last line already in the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::chain::{self, ChainState};
use super::event::{Event, EventKind};
use super::redact::{self, SecretMemory};

/// Name of the audit file inside the audit directory.
pub const AUDIT_FILE: &str = "audit.jsonl";
const CHANNEL_CAPACITY: usize = 8192;

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("cannot open audit log {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("existing audit log {path} does not end in a valid chained line: {reason}")]
    Resume { path: PathBuf, reason: String },
}

enum Msg {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
}

/// Cheap, cloneable way to record events.
#[derive(Clone)]
pub struct AuditHandle {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
    /// Secrets redacted from each session's commands, scrubbed from its output too.
    pub(super) secrets: SecretMemory,
}

impl std::fmt::Debug for AuditHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditHandle")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

/// The writer task's state; run it with [`AuditTask::run`].
#[derive(Debug)]
pub struct AuditTask {
    rx: mpsc::Receiver<Msg>,
    file: tokio::fs::File,
    path: PathBuf,
    state: ChainState,
}

// === impl AuditHandle ===

impl AuditHandle {
    /// Queues an event. Never waits: when the queue is full the event is counted as
    /// dropped and reported through tracing (issue 6 turns this into fail-closed).
    pub fn emit(&self, event: Event) {
        let name = event.kind.name();
        if let (EventKind::SessionEnd { .. }, Some(id)) = (&event.kind, &event.session_id) {
            self.secrets.forget(id);
        }
        if let Err(e) = self.tx.try_send(Msg::Event(Box::new(event))) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "writer stopped",
            };
            tracing::error!(
                event = name,
                dropped_total = n,
                reason = why,
                "Audit event dropped"
            );
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
        (r.command.clone(), redact::scrub(reason, &r))
    }

    /// Waits until every event queued before this call is on disk.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Events lost because the queue was full or the writer had stopped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

// === impl AuditTask ===

impl AuditTask {
    /// Opens (or creates) `dir/audit.jsonl` and resumes its chain.
    pub async fn open(dir: &Path) -> Result<(AuditHandle, AuditTask), AuditError> {
        let path = dir.join(AUDIT_FILE);
        let open_err = |source| AuditError::Open {
            path: path.clone(),
            source,
        };
        tokio::fs::create_dir_all(dir).await.map_err(open_err)?;
        let state = match tokio::fs::read_to_string(&path).await {
            Ok(text) => resume(&text).map_err(|reason| AuditError::Resume {
                path: path.clone(),
                reason,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ChainState::default(),
            Err(e) => return Err(open_err(e)),
        };
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(open_err)?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        Ok((
            AuditHandle {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                secrets: SecretMemory::default(),
            },
            AuditTask {
                rx,
                file,
                path,
                state,
            },
        ))
    }

    /// Writes events until every handle is dropped.
    pub async fn run(mut self) {
        let mut batch = String::new();
        let mut waiters = Vec::new();
        while let Some(first) = self.rx.recv().await {
            self.take(first, &mut batch, &mut waiters);
            // Drain what is already queued so one sync covers the whole batch.
            while let Ok(more) = self.rx.try_recv() {
                self.take(more, &mut batch, &mut waiters);
            }
            if !batch.is_empty() {
                let res = async {
                    self.file.write_all(batch.as_bytes()).await?;
                    self.file.sync_data().await
                }
                .await;
                if let Err(error) = res {
                    tracing::error!(path = %self.path.display(), %error, "Audit write failed");
                }
                batch.clear();
            }
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    fn take(&mut self, msg: Msg, batch: &mut String, waiters: &mut Vec<oneshot::Sender<()>>) {
        match msg {
            Msg::Flush(w) => waiters.push(w),
            Msg::Event(event) => {
                let fields = match serde_json::to_value(&*event) {
                    Ok(Value::Object(m)) => m,
                    // Events are plain structs of strings and integers: this cannot fail,
                    // but if it ever did the loss must be visible.
                    _ => {
                        tracing::error!(event = event.kind.name(), "Audit event not serialisable");
                        return;
                    }
                };
                let ts = now_rfc3339();
                let (line, hash) = chain::seal(fields, self.state.next_seq, &ts, &self.state.prev);
                self.state.next_seq += 1;
                self.state.prev = hash;
                batch.push_str(&line);
                batch.push('\n');
            }
        }
    }
}

/// Chain state after the last line of an existing file.
fn resume(text: &str) -> Result<ChainState, String> {
    let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok(ChainState::default());
    };
    let v: Value = serde_json::from_str(last).map_err(|e| e.to_string())?;
    let seq = v.get("seq").and_then(Value::as_u64).ok_or("no `seq`")?;
    let hash = v.get("hash").and_then(Value::as_str).ok_or("no `hash`")?;
    Ok(ChainState {
        next_seq: seq + 1,
        prev: hash.to_string(),
    })
}

/// RFC 3339 UTC timestamp with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let ms = now.millisecond();
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    match now.format(fmt) {
        Ok(s) => format!("{s}.{ms:03}Z"),
        Err(_) => now.unix_timestamp().to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::audit::event::EventKind;

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
