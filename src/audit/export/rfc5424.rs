//! RFC 5424 syslog messages built from chained audit lines, and RFC 6587 octet-counting
//! framing (the framing RFC 5425 prescribes for TLS and that receivers use over TCP).
//!
//! Pure: no clock, no I/O. The message carries the audit line unchanged as MSG (so a SIEM
//! can check `hash` and `prev` against it) and repeats `session_id`, `seq` and `hash` as
//! structured data for searching. Every header field is forced into the grammar's
//! alphabet and length here, so a strange host name or event name can never produce a
//! message a receiver would misparse.

use std::fmt::Write as _;

use serde::Deserialize;

/// SD-ID of the structured-data element (`name@<private enterprise number>`; 32473 is the
/// number RFC 5612 reserves for documentation and examples).
pub const SD_ID: &str = "hopgate@32473";
/// Byte order mark that starts a UTF-8 MSG (RFC 5424 §6.4).
const BOM: char = '\u{feff}';
const NIL: &str = "-";
const MAX_HOSTNAME: usize = 255;
const MAX_APP_NAME: usize = 48;
const MAX_PROCID: usize = 128;
const MAX_MSGID: usize = 32;

/// Syslog severities (RFC 5424 §6.2.1, table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error = 3,
    Warning = 4,
    Notice = 5,
    Informational = 6,
}

/// The severity an audit event is sent with: refusals and failures are warnings, losing
/// audit events is an error, an administrator's intervention is a notice.
pub fn severity(event: &str) -> Severity {
    match event {
        "authn.failure" | "command.denied" | "access.denied" | "backend.auth"
        | "request.rejected" => Severity::Warning,
        "audit.gap" => Severity::Error,
        "session.start" | "session.end" | "command.allowed" | "output" | "input" => {
            Severity::Informational
        }
        // admin.terminate, config.reload, gateway.start/stop and whatever is added later.
        _ => Severity::Notice,
    }
}

/// The fixed HEADER fields of every message one gateway sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc5424 {
    facility: u8,
    hostname: String,
    app_name: String,
    procid: String,
}

/// The audit line's fields the header and structured data repeat.
#[derive(Debug, Default, Deserialize)]
struct Fields {
    event: Option<String>,
    ts: Option<String>,
    session_id: Option<String>,
    seq: Option<u64>,
    hash: Option<String>,
}

// === impl Rfc5424 ===

impl Rfc5424 {
    /// `facility` is the numeric code (0–23; larger values are clamped to 23, local7);
    /// the names are made to fit the grammar (printable US-ASCII, length limits).
    pub fn new(facility: u8, hostname: &str, app_name: &str, procid: &str) -> Self {
        Self {
            facility: facility.min(23),
            hostname: header_field(hostname, MAX_HOSTNAME),
            app_name: header_field(app_name, MAX_APP_NAME),
            procid: header_field(procid, MAX_PROCID),
        }
    }

    /// The SYSLOG-MSG for one audit line (without a trailing newline): PRI from the
    /// facility and the event's severity, TIMESTAMP from `ts`, MSGID the event name,
    /// `[hopgate@32473 session_id seq hash]`, then BOM and the line itself.
    pub fn message(&self, line: &str) -> String {
        // A line that is not JSON (never written by the writer) still goes out whole,
        // with nil header fields.
        let f: Fields = serde_json::from_str(line).unwrap_or_default();
        let event = f.event.as_deref().unwrap_or(NIL);
        let prival = u16::from(self.facility) * 8 + severity(event) as u16;
        let ts =
            f.ts.as_deref()
                .filter(|t| valid_timestamp(t))
                .unwrap_or(NIL);
        let mut out = String::with_capacity(line.len() + 160);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "<{prival}>1 {ts} {} {} {} {} ",
            self.hostname,
            self.app_name,
            self.procid,
            header_field(event, MAX_MSGID)
        );
        let mut params = Vec::new();
        if let Some(s) = &f.session_id {
            params.push(("session_id", s.clone()));
        }
        if let Some(s) = f.seq {
            params.push(("seq", s.to_string()));
        }
        if let Some(h) = &f.hash {
            params.push(("hash", h.clone()));
        }
        if params.is_empty() {
            out.push_str(NIL);
        } else {
            out.push('[');
            out.push_str(SD_ID);
            for (name, value) in params {
                out.push(' ');
                out.push_str(name);
                out.push_str("=\"");
                escape_param(&value, &mut out);
                out.push('"');
            }
            out.push(']');
        }
        out.push(' ');
        out.push(BOM);
        out.push_str(line);
        out
    }
}

/// RFC 6587 §3.4.1 octet-counting: `MSG-LEN SP SYSLOG-MSG`, the length in octets.
pub fn octet_counted(msg: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg.as_bytes());
}

/// A HEADER field: printable US-ASCII (%d33-126) only, at most `max` characters, NILVALUE
/// when nothing is left.
fn header_field(value: &str, max: usize) -> String {
    let s: String = value
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if s.is_empty() {
        NIL.to_owned()
    } else {
        s
    }
}

/// PARAM-VALUE escaping (RFC 5424 §6.3.3): `"`, `\` and `]` get a backslash.
fn escape_param(value: &str, out: &mut String) {
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether `ts` matches the TIMESTAMP grammar (RFC 5424 §6.2.3): FULL-DATE "T"
/// PARTIAL-TIME with at most 6 fraction digits, then "Z" or a numeric offset.
fn valid_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let n = b
            .get(i + 1..)
            .map_or(0, |s| s.iter().take_while(|c| c.is_ascii_digit()).count());
        if !(1..=6).contains(&n) {
            return false;
        }
        i += 1 + n;
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3) && at(i + 3, b':') && digits(i + 4..i + 6) && i + 6 == b.len()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
