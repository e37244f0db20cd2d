//! The audit directory's layout: which files make up the chain and in what order.
//!
//! The file in use is always `audit.jsonl`; a rotated file is renamed to
//! `audit-<UTC start time>-<first seq>.jsonl` (e.g. `audit-20260131T000000Z-000000004711.jsonl`),
//! so names sort by time and carry the sequence number the file starts at. The chain runs
//! through the rotated files in order of that number, then `audit.jsonl`.
//!
//! Owns the names and listing the directory (blocking `std::fs`, for the CLI and for the
//! writer's start-up); it does not read or check file contents.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

/// Name of the audit file in use inside the audit directory.
pub const AUDIT_FILE: &str = "audit.jsonl";
const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";

/// The name a file starting at `first_seq`, whose first line was written at `started`, gets
/// when it is rotated.
pub fn rotated_name(started: OffsetDateTime, first_seq: u64) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let ts = started
        .to_offset(time::UtcOffset::UTC)
        .format(fmt)
        .unwrap_or_else(|_| started.unix_timestamp().to_string());
    format!("{PREFIX}{ts}-{first_seq:012}{SUFFIX}")
}

/// The first sequence number a rotated file's name carries; None for any other name.
pub fn rotated_seq(name: &str) -> Option<u64> {
    let middle = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (ts, seq) = middle.rsplit_once('-')?;
    if ts.len() != 16 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok()
}

/// The files of the chain in `dir`, in chain order: rotated files by their first sequence
/// number, then `audit.jsonl` when it exists. Other files are ignored.
pub fn chain_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut rotated: Vec<(u64, String)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seq) = rotated_seq(&name) {
            rotated.push((seq, name));
        }
    }
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, n)| dir.join(n)).collect();
    let current = dir.join(AUDIT_FILE);
    if current.is_file() {
        files.push(current);
    }
    Ok(files)
}

/// Whether `dir` holds rotated files.
pub fn has_rotated(dir: &Path) -> bool {
    chain_files(dir).is_ok_and(|f| f.iter().any(|p| !p.ends_with(AUDIT_FILE)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn rotated_names_carry_time_and_first_seq() {
        let t = time::macros::datetime!(2026-01-31 23:59:58.5 UTC);
        let name = rotated_name(t, 4711);
        assert_eq!(name, "audit-20260131T235958Z-000000004711.jsonl");
        assert_eq!(rotated_seq(&name), Some(4711));
        for other in [
            AUDIT_FILE,
            "audit-x-1.jsonl",
            "audit-20260131T235958Z-12a.jsonl",
            "audit-20260131T235958Z-1.json",
        ] {
            assert_eq!(rotated_seq(other), None, "{other}");
        }
    }

    #[test]
    fn chain_files_are_in_sequence_order_with_the_current_file_last() {
        let dir = tempfile::tempdir().unwrap();
        let t = time::macros::datetime!(2026-01-31 00:00 UTC);
        // The later file has an earlier timestamp (clock stepped back): seq decides.
        let later = rotated_name(t, 900);
        let earlier = rotated_name(t + time::Duration::days(1), 1);
        for n in [AUDIT_FILE, later.as_str(), earlier.as_str(), "notes.txt"] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let names: Vec<String> = chain_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [earlier, later, AUDIT_FILE.to_string()]);
        assert!(has_rotated(dir.path()));
    }
}
