//! A command's whole output stream, across every ReceiveResponse it takes: how many bytes
//! and their SHA-256, and how much of its text the record has kept so far.
//!
//! The per-event cap (`OUTPUT_CAP`) bounds one `output` event; the per-command budget
//! ([`COMMAND_RECORD_CAP`]) bounds what a command that prints gigabytes leaves in the
//! record. Past either the text is cut, but the count and the digest still cover every
//! byte, so the record can prove what the client received. Pure.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::output::Output;

/// Most text of one command kept in the record over all its `output` events; later events
/// keep only their byte counts (and are flagged `truncated`).
pub const COMMAND_RECORD_CAP: u64 = 1024 * 1024;

/// Most commands tallied at once in one shell; a command past it gets no digest (its
/// events still carry their byte counts).
const MAX_TALLIED: usize = 256;

/// One command's stream so far.
#[derive(Debug, Default, Clone)]
struct Tally {
    bytes: u64,
    sha: Sha256,
    kept: u64,
}

/// The tallies of a shell's running commands, keyed by command id (upper case; "" for
/// data without one).
#[derive(Debug, Default)]
pub(super) struct Tallies {
    commands: BTreeMap<String, Tally>,
}

fn key(command_id: Option<&str>) -> String {
    command_id.unwrap_or_default().to_ascii_uppercase()
}

// === impl Tallies ===

impl Tallies {
    /// Counts `data` as part of `command_id`'s output (the same bytes its `output` events
    /// count in `bytes`).
    pub(super) fn feed(&mut self, command_id: Option<&str>, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let k = key(command_id);
        if !self.commands.contains_key(&k) && self.commands.len() >= MAX_TALLIED {
            return;
        }
        let t = self.commands.entry(k).or_default();
        t.bytes = t.bytes.saturating_add(data.len() as u64);
        t.sha.update(data);
    }

    /// Applies the per-command budget to `out` and, when `out` is its command's last event
    /// (exit code or final pipeline state), puts the whole stream's count and digest on
    /// it and forgets the command.
    pub(super) fn settle(&mut self, out: &mut Output) {
        let k = key(out.command_id.as_deref());
        let Some(t) = self.commands.get_mut(&k) else {
            return;
        };
        let text = out.stdout.as_ref().map_or(0, String::len)
            + out.stderr.as_ref().map_or(0, String::len)
            + out.records.iter().map(|r| r.text.len()).sum::<usize>();
        let text = text as u64;
        if t.kept.saturating_add(text) > COMMAND_RECORD_CAP {
            // The budget is spent: this event keeps its counts, not its text.
            if text > 0 {
                out.stdout = out.stdout.take().map(|_| String::new());
                out.stderr = out.stderr.take().map(|_| String::new());
                out.records.clear();
                out.truncated = true;
            }
            t.kept = COMMAND_RECORD_CAP;
        } else {
            t.kept += text;
        }
        if out.exit_code.is_some() || out.pipeline_state.is_some() {
            if let Some(t) = self.commands.remove(&k) {
                out.total_bytes = Some(t.bytes);
                out.sha256 = Some(hex::encode(t.sha.finalize()));
            }
        }
    }

    /// Forgets a command that will print no more (terminated).
    pub(super) fn forget(&mut self, command_id: &str) {
        self.commands.remove(&key(Some(command_id)));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn out(cmd: &str, text: &str, bytes: u64, exit: Option<i64>) -> Output {
        Output {
            command_id: Some(cmd.into()),
            stdout: Some(text.into()),
            stderr: None,
            truncated: false,
            bytes,
            exit_code: exit,
            records: Vec::new(),
            pipeline_state: None,
            total_bytes: None,
            sha256: None,
        }
    }

    #[test]
    fn the_last_event_carries_the_whole_stream_and_the_budget_drops_text_not_counts() {
        let mut t = Tallies::default();
        let chunk = vec![b'x'; 600 * 1024];
        let text = String::from_utf8(chunk.clone()).unwrap();
        let mut whole = Sha256::new();
        let mut events = Vec::new();
        for i in 0..3 {
            // Ids in any case name the same command.
            let id = if i % 2 == 0 { "c1" } else { "C1" };
            t.feed(Some(id), &chunk);
            whole.update(&chunk);
            let mut o = out(id, &text, chunk.len() as u64, (i == 2).then_some(0));
            t.settle(&mut o);
            events.push(o);
        }
        // 600 KiB kept, then 1.2 MiB would pass the 1 MiB budget: text dropped.
        assert!(!events[0].truncated);
        assert_eq!(events[0].stdout.as_ref().unwrap().len(), 600 * 1024);
        assert!(events[1].truncated && events[1].stdout.as_deref() == Some(""));
        assert!(events[2].truncated && events[2].stdout.as_deref() == Some(""));
        assert_eq!(events[1].bytes, 600 * 1024, "counts stay");
        assert!(events[0].sha256.is_none() && events[1].total_bytes.is_none());
        assert_eq!(events[2].total_bytes, Some(3 * 600 * 1024));
        assert_eq!(
            events[2].sha256.as_deref(),
            Some(hex::encode(whole.finalize()).as_str())
        );
        // The command is forgotten once done: a new one starts from zero.
        t.feed(Some("C1"), b"ab");
        let mut o = out("C1", "ab", 2, Some(0));
        t.settle(&mut o);
        assert_eq!(o.total_bytes, Some(2));
        assert!(!o.truncated);
        assert_eq!(
            o.sha256.as_deref(),
            Some("fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603")
        );
    }

    #[test]
    fn a_terminated_command_is_forgotten_and_untallied_ones_get_no_digest() {
        let mut t = Tallies::default();
        t.feed(Some("C1"), b"abc");
        t.forget("c1");
        let mut o = out("C1", "", 0, Some(0));
        t.settle(&mut o);
        assert_eq!(o.total_bytes, None);
        assert_eq!(o.sha256, None);
    }
}
