//! `output` events: the [`crate::shell::Output`]s the inspector read from a host's answer,
//! with the session's known secrets scrubbed from their text, onto the audit trail.

use super::event::{Event, EventKind};
use super::sink::AuditHandle;

// === impl AuditHandle ===

impl AuditHandle {
    /// Records `output` events of a session, with the session's known secrets scrubbed
    /// from their text; returns the output bytes they describe (before any cut).
    pub fn emit_outputs(&self, session_id: &str, events: Vec<EventKind>) -> u64 {
        let mut total = 0u64;
        for mut kind in events {
            if let EventKind::Output {
                stdout,
                stderr,
                records,
                bytes,
                ..
            } = &mut kind
            {
                total = total.saturating_add(*bytes);
                for text in [stdout, stderr] {
                    *text = text.take().map(|t| self.secrets.scrub(session_id, t));
                }
                for r in records.iter_mut() {
                    r.text = self.secrets.scrub(session_id, std::mem::take(&mut r.text));
                }
            }
            self.emit(Event {
                session_id: Some(session_id.to_string()),
                kind,
            });
        }
        total
    }
}
