//! Verifying a chain that runs through several files, and its checkpoints. Pure.
//!
//! The files of an audit directory (rotated ones in order, then `audit.jsonl`) form one
//! chain: each file's first line chains to the previous file's last line and sequence
//! numbers continue. This module checks that as one stream, reporting a break with the
//! file and its line (a deleted or swapped file shows up as deleted or out-of-order lines
//! at the first line of the file after it), checks that every rotated file ends with its
//! closing `audit.checkpoint` line (or its end was cut off), that each checkpoint matches
//! the lines before it, and, given a public key, each checkpoint's signature.
//!
//! It takes the files' names and text; listing and reading them is the caller's job.

use serde_json::Value;
use thiserror::Error;

use super::chain::{self, ChainError, ChainState};
use super::checkpoint::{Checkpoint, CheckpointError, PublicKey, CHECKPOINT_EVENT};

/// One file of the chain.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Its name, for messages.
    pub name: &'a str,
    pub text: &'a str,
    /// A rotated (closed) file: it must end with a checkpoint.
    pub rotated: bool,
}

/// Where the chain is expected to begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At sequence number 1 after [`chain::GENESIS`]: the whole history is there.
    Genesis,
    /// Wherever the first line says (checking one rotated file on its own).
    FirstLine,
}

/// What an intact chain holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub files: usize,
    pub lines: usize,
    /// `seq` of the first line (0 when there is none).
    pub first_seq: u64,
    /// `seq` and `hash` of the last line (0 and [`chain::GENESIS`] when there is none).
    pub last_seq: u64,
    pub last_hash: String,
    pub checkpoints: usize,
    /// Checkpoints whose signature was checked with the public key.
    pub verified_signatures: usize,
    /// `last_seq` of the last checkpoint whose signature was checked.
    pub last_signed_seq: Option<u64>,
    /// `audit.gap` lines: the chain is intact but events were lost before them.
    pub gaps: Vec<Gap>,
}

/// One `audit.gap` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Its `seq`.
    pub seq: u64,
    /// The events it says were lost.
    pub dropped: u64,
}

// === impl Report ===

impl Report {
    /// Events lost according to the `audit.gap` lines.
    pub fn dropped(&self) -> u64 {
        self.gaps.iter().map(|g| g.dropped).sum()
    }
}

/// Why the files do not verify; every variant names the file.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("{file}: {source}")]
    Chain { file: String, source: ChainError },
    #[error("{file}: line {line}: {source}")]
    Checkpoint {
        file: String,
        line: usize,
        source: CheckpointError,
    },
    #[error("{file}: line {line}: checkpoint does not match the lines before it (`{field}`)")]
    Mismatch {
        file: String,
        line: usize,
        field: &'static str,
    },
    #[error("{file}: no closing checkpoint after line {line}: a rotated file always ends with one, so its end was cut off")]
    Unclosed { file: String, line: usize },
}

/// Per-file progress while walking the stream.
#[derive(Debug, Default)]
struct FileState {
    first_seq: Option<u64>,
    last_line: usize,
    ends_with_checkpoint: bool,
}

/// Verifies `segments` as one chain.
pub fn verify_segments(
    segments: &[Segment<'_>],
    start: Start,
    key: Option<&PublicKey>,
) -> Result<Report, VerifyError> {
    let items: Vec<(usize, usize, &str)> = segments
        .iter()
        .enumerate()
        .flat_map(|(fi, s)| {
            s.text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.is_empty())
                .map(move |(i, l)| (fi, i + 1, l))
        })
        .collect();
    let name = |fi: usize| segments.get(fi).map_or("", |s| s.name).to_string();
    let mut state = match (start, items.first()) {
        (Start::FirstLine, Some((_, _, line))) => resume_before(line).unwrap_or_default(),
        _ => ChainState::default(),
    };
    let mut report = Report {
        files: segments.len(),
        lines: 0,
        first_seq: 0,
        last_seq: 0,
        last_hash: state.prev.clone(),
        checkpoints: 0,
        verified_signatures: 0,
        last_signed_seq: None,
        gaps: Vec::new(),
    };
    // Files before `current` have been checked for their closing checkpoint.
    let mut current = 0;
    let mut file = FileState::default();
    for (pos, &(fi, line_no, line)) in items.iter().enumerate() {
        if fi != current {
            close(segments, current, &file)?;
            for empty in current + 1..fi {
                close(segments, empty, &FileState::default())?;
            }
            current = fi;
            file = FileState::default();
        }
        let prev = state.prev.clone();
        if let Err(e) = chain::verify_line(&mut state, line_no, line) {
            let e = match e {
                ChainError::Broken { line: at } | ChainError::Sequence { line: at, .. } => {
                    let rest = items.get(pos + 1..).unwrap_or_default();
                    chain::classify(&state, at, line, rest.iter().map(|(_, _, l)| *l))
                }
                e => e,
            };
            return Err(VerifyError::Chain {
                file: name(fi),
                source: e,
            });
        }
        let seq = state.next_seq - 1;
        if report.lines == 0 {
            report.first_seq = seq;
        }
        report.lines += 1;
        let first_seq = *file.first_seq.get_or_insert(seq);
        file.last_line = line_no;
        file.ends_with_checkpoint = false;
        // Cheap pre-filters: only gap and checkpoint lines are parsed a second time.
        if line.contains(GAP_EVENT) {
            if let Some(dropped) = gap_dropped(line) {
                report.gaps.push(Gap { seq, dropped });
                continue;
            }
        }
        if !line.contains(CHECKPOINT_EVENT) {
            continue;
        }
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(cp) = Checkpoint::from_fields(&fields) else {
            continue;
        };
        let at = |source| VerifyError::Checkpoint {
            file: name(fi),
            line: line_no,
            source,
        };
        let cp = cp.map_err(at)?;
        let mismatch = |field| VerifyError::Mismatch {
            file: name(fi),
            line: line_no,
            field,
        };
        if cp.first_seq != first_seq {
            return Err(mismatch("first_seq"));
        }
        if cp.last_seq + 1 != seq {
            return Err(mismatch("last_seq"));
        }
        if cp.covers != prev {
            return Err(mismatch("covers"));
        }
        if let Some(key) = key {
            key.verify(&cp).map_err(at)?;
            report.verified_signatures += 1;
            report.last_signed_seq = Some(cp.last_seq);
        }
        report.checkpoints += 1;
        file.ends_with_checkpoint = true;
    }
    close(segments, current, &file)?;
    for empty in current + 1..segments.len() {
        close(segments, empty, &FileState::default())?;
    }
    report.last_seq = state.next_seq.saturating_sub(1);
    report.last_hash = state.prev;
    Ok(report)
}

/// The `event` of a gap line.
const GAP_EVENT: &str = "audit.gap";

/// The `dropped` count of an `audit.gap` line (None for any other line).
fn gap_dropped(line: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(line).ok()?;
    if v.get("event")?.as_str()? != GAP_EVENT {
        return None;
    }
    Some(v.get("dropped").and_then(Value::as_u64).unwrap_or(0))
}

/// A rotated file must end with its checkpoint.
fn close(segments: &[Segment<'_>], fi: usize, file: &FileState) -> Result<(), VerifyError> {
    match segments.get(fi) {
        Some(s) if s.rotated && !file.ends_with_checkpoint => Err(VerifyError::Unclosed {
            file: s.name.to_string(),
            line: file.last_line,
        }),
        _ => Ok(()),
    }
}

/// The chain state a line expects before it (its own `seq` and `prev`).
fn resume_before(line: &str) -> Option<ChainState> {
    let v: Value = serde_json::from_str(line).ok()?;
    Some(ChainState {
        next_seq: v.get("seq")?.as_u64()?,
        prev: v.get("prev")?.as_str()?.to_string(),
    })
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
