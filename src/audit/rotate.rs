//! The writer's file lifecycle: resuming the chain at start-up, rotating `audit.jsonl`
//! (daily and/or by size) and closing files with checkpoints.
//!
//! Rotating closes the file in use with an `audit.checkpoint` line (signed when a key is
//! configured) and syncs it, renames it to `audit-<start>-<first seq>.jsonl`, creates a
//! new `audit.jsonl` and syncs the directory. The chain simply continues: the new file's
//! first line chains to the checkpoint. Every step that fails leaves the writer failed
//! (unhealthy, nothing more written) with what is on disk intact: the old file either
//! still is `audit.jsonl` ending in its checkpoint, or is fully renamed; a restart resumes
//! from whichever file holds the last line.
//!
//! A child module of `sink` (it works on the writer's state); `sink` owns writing lines.

use std::path::{Path, PathBuf};

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{AuditError, AuditTask, FileStart};
use crate::audit::chain::ChainState;
use crate::audit::checkpoint::{Checkpoint, Reason, CHECKPOINT_EVENT};
use crate::audit::files::{self, AUDIT_FILE};

/// When `audit.jsonl` is rotated. The default rotates never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotatePolicy {
    /// When the UTC date differs from the date the file's first line was written.
    pub daily: bool,
    /// Once the file holds at least this many bytes (checked before each line, so a file
    /// ends within one line of it).
    pub max_bytes: Option<u64>,
}

impl RotatePolicy {
    /// Whether any rotation is configured.
    pub fn enabled(&self) -> bool {
        self.daily || self.max_bytes.is_some()
    }
}

/// Where the writer picks the chain up after a (re)start.
#[derive(Debug, Default)]
pub(super) struct Resumed {
    pub(super) state: ChainState,
    /// The first line of a non-empty `audit.jsonl`.
    pub(super) file_start: Option<FileStart>,
    /// Whether `audit.jsonl` has lines after its last checkpoint.
    pub(super) since_checkpoint: bool,
}

/// Reads where the chain stands: the last line of `audit.jsonl`, or, when that file is
/// missing or empty (a stop right after a rotation), of the newest rotated file.
pub(super) async fn resume(dir: &Path) -> Result<Resumed, AuditError> {
    let current = dir.join(AUDIT_FILE);
    let text = read_if_exists(&current).await?;
    if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
        let state = last_state(&text).map_err(|reason| AuditError::Resume {
            path: current.clone(),
            reason,
        })?;
        let first = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        return Ok(Resumed {
            file_start: Some(file_start_of(first, state.next_seq - 1)),
            since_checkpoint: !last.is_some_and(is_checkpoint),
            state,
        });
    }
    let list_dir = dir.to_path_buf();
    let listed = tokio::task::spawn_blocking(move || files::chain_files(&list_dir))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let open_err = |source| AuditError::Open {
        path: dir.to_path_buf(),
        source,
    };
    let Some(newest) = listed
        .map_err(open_err)?
        .into_iter()
        .rfind(|p| !p.ends_with(AUDIT_FILE))
    else {
        return Ok(Resumed::default());
    };
    let text = read_if_exists(&newest).await?.unwrap_or_default();
    if text.trim().is_empty() {
        // A rotated file always ends with its checkpoint; starting over at seq 1 here
        // would fork the chain.
        return Err(AuditError::Resume {
            path: newest,
            reason: "the newest rotated file is empty".into(),
        });
    }
    let state = last_state(&text).map_err(|reason| AuditError::Resume {
        path: newest.clone(),
        reason,
    })?;
    Ok(Resumed {
        state,
        file_start: None,
        since_checkpoint: false,
    })
}

async fn read_if_exists(path: &Path) -> Result<Option<String>, AuditError> {
    match tokio::fs::read_to_string(path).await {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AuditError::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Chain state after the last line of a file's text.
fn last_state(text: &str) -> Result<ChainState, String> {
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

/// The file's first line's `seq` and `ts` (falling back to `fallback_seq` and now).
fn file_start_of(first_line: &str, fallback_seq: u64) -> FileStart {
    let v: Value = serde_json::from_str(first_line).unwrap_or(Value::Null);
    FileStart {
        first_seq: v.get("seq").and_then(Value::as_u64).unwrap_or(fallback_seq),
        started: v
            .get("ts")
            .and_then(Value::as_str)
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .unwrap_or_else(OffsetDateTime::now_utc),
    }
}

fn is_checkpoint(line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .ok()
        .is_some_and(|v| v.get("event").and_then(Value::as_str) == Some(CHECKPOINT_EVENT))
}

// === impl AuditTask (rotation) ===

impl AuditTask {
    /// Whether the file in use must be rotated before a line is added at `now`, with
    /// `pending` bytes sealed but not yet written.
    pub(super) fn rotation_due(&self, now: OffsetDateTime, pending: usize) -> bool {
        let size = self.good_len + u64::try_from(pending).unwrap_or(u64::MAX);
        self.file_start.is_some()
            && (self.day_over(now) || self.config.rotate.max_bytes.is_some_and(|max| size >= max))
    }

    /// Whether daily rotation is on and the file in use was started before `now`'s date.
    /// (Checked when idle too; a full file waits for its next line, so the file in use is
    /// never left empty by a size rotation.)
    pub(super) fn day_over(&self, now: OffsetDateTime) -> bool {
        self.config.rotate.daily
            && self
                .file_start
                .is_some_and(|start| start.started.date() != now.date())
    }

    /// Closes the file in use with a checkpoint and starts a new `audit.jsonl`. Written
    /// lines must already be on disk (or in no batch) when this is called.
    pub(super) async fn rotate(&mut self) {
        let Some(start) = self.file_start else {
            return;
        };
        if self.is_failed() {
            return;
        }
        if self.since_checkpoint {
            self.checkpoint(Reason::Rotate).await;
            if self.is_failed() {
                return;
            }
        }
        let target = self
            .dir
            .join(files::rotated_name(start.started, start.first_seq));
        if let Err(error) = self.rename_and_reopen(&target).await {
            tracing::error!(path = %self.path.display(), target = %target.display(), %error, "Audit log rotation failed");
            self.fail("rotation failed");
            return;
        }
        tracing::info!(rotated = %target.display(), first_seq = start.first_seq, "Audit log rotated");
    }

    /// Appends a checkpoint covering the file so far and syncs it.
    pub(super) async fn checkpoint(&mut self, reason: Reason) {
        let Some(start) = self.file_start else {
            return;
        };
        let cp = Checkpoint::new(
            reason,
            start.first_seq,
            self.state.next_seq - 1,
            &self.state.prev,
            self.config.signing_key.as_deref(),
        );
        let mut line = String::new();
        self.seal_into(cp.fields(), OffsetDateTime::now_utc(), &mut line);
        self.write(&line, true).await;
    }

    async fn rename_and_reopen(&mut self, target: &PathBuf) -> std::io::Result<()> {
        // Never replace an existing file: that would destroy part of the record.
        if tokio::fs::symlink_metadata(target).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the rotated file name is taken",
            ));
        }
        tokio::fs::rename(&self.path, target).await?;
        let file = tokio::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&self.path)
            .await?
            .into_std()
            .await;
        // Make the rename and the new file durable before writing to it.
        if let Err(error) = sync_dir(&self.dir).await {
            tracing::warn!(dir = %self.dir.display(), %error, "Audit directory sync failed");
        }
        self.file = std::sync::Arc::new(file);
        self.good_len = 0;
        self.file_start = None;
        self.since_checkpoint = false;
        self.dirty = false;
        Ok(())
    }
}

async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

#[cfg(test)]
#[path = "rotate_tests.rs"]
mod tests;
