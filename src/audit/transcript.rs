//! Reading an audit log back: sessions and their transcripts. Pure (takes the file's text).
//!
//! A session is everything carrying one `session_id`: its `session.start`, the commands
//! allowed and denied, their `output`, an `admin.terminate` and its `session.end`. This
//! module groups lines into sessions, filters them and renders one as a readable
//! transcript in file (= time) order. It does not verify the chain (`chain` does) and never
//! touches the file system or the clock.

use std::collections::HashMap;

use serde_json::Value;
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Why a log cannot be read back.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TranscriptError {
    #[error("line {line}: not a JSON object")]
    NotJson { line: usize },
    #[error("no session `{id}` in the log")]
    NoSession { id: String },
    #[error("`{prefix}` begins more than one session id: {candidates}")]
    Ambiguous { prefix: String, candidates: String },
    #[error("`{value}` is not a time: use RFC 3339 (2026-01-31T08:00:00Z) or a date (2026-01-31)")]
    BadTime { value: String },
}

/// One session as `hopgate audit sessions` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSummary {
    pub session_id: String,
    pub principal: String,
    pub host: String,
    /// `cmd` or `psrp`.
    pub shell_kind: String,
    pub shell_id: String,
    pub source_ip: String,
    pub backend_user: String,
    /// `ts` of `session.start` (or of the first line seen when the start is missing).
    pub start: String,
    /// `ts` of `session.end`; None while the session is open (or the end was not logged).
    pub end: Option<String>,
    pub end_reason: Option<String>,
    /// Commands allowed.
    pub commands: usize,
    /// Commands denied.
    pub denied: usize,
    /// Names of the commands run or attempted (lower case, without `.exe`), in the raw
    /// command and in the code decoded from it.
    pub command_names: Vec<String>,
    /// `ts` of the session's last line.
    pub last: String,
}

/// What `hopgate audit sessions` filters on; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Principal, case-insensitive; a name without `@` also matches `name@realm`.
    pub user: Option<String>,
    /// Inventory host name, case-insensitive.
    pub host: Option<String>,
    /// A command name run or attempted in the session (case-insensitive, `.exe` optional).
    pub command: Option<String>,
    /// Sessions with a line (any activity) at or after this time.
    pub since: Option<OffsetDateTime>,
}

/// Parses `--since`: RFC 3339, or a bare date meaning midnight UTC.
pub fn parse_since(value: &str) -> Result<OffsetDateTime, TranscriptError> {
    let bad = || TranscriptError::BadTime {
        value: value.to_string(),
    };
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(value, fmt).map_err(|_| bad())?;
    Ok(date.midnight().assume_utc())
}

/// One parsed line.
type Record = serde_json::Map<String, Value>;

/// The log's lines as JSON objects, with their 1-based line numbers.
fn records(text: &str) -> Result<Vec<(usize, Record)>, TranscriptError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(m)) => Ok((i + 1, m)),
            _ => Err(TranscriptError::NotJson { line: i + 1 }),
        })
        .collect()
}

fn text<'a>(m: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Every session in the log, in order of their first line.
pub fn sessions(log: &str) -> Result<Vec<SessionSummary>, TranscriptError> {
    let mut order: Vec<String> = Vec::new();
    let mut by_id: HashMap<String, SessionSummary> = HashMap::new();
    for (_, r) in records(log)? {
        let Some(id) = r.get("session_id").and_then(Value::as_str) else {
            continue;
        };
        let ts = text(&r, "ts");
        let s = by_id.entry(id.to_string()).or_insert_with(|| {
            order.push(id.to_string());
            SessionSummary {
                session_id: id.to_string(),
                start: ts.to_string(),
                ..SessionSummary::default()
            }
        });
        s.last = ts.to_string();
        for key in ["principal", "host", "shell_id"] {
            let v = text(&r, key);
            let slot = match key {
                "principal" => &mut s.principal,
                "host" => &mut s.host,
                _ => &mut s.shell_id,
            };
            if slot.is_empty() && !v.is_empty() {
                *slot = v.to_string();
            }
        }
        match text(&r, "event") {
            "session.start" => {
                s.start = ts.to_string();
                s.shell_kind = text(&r, "shell_kind").to_string();
                s.source_ip = text(&r, "source_ip").to_string();
                s.backend_user = text(&r, "backend_user").to_string();
            }
            "session.end" => {
                s.end = Some(ts.to_string());
                s.end_reason = Some(text(&r, "reason").to_string());
            }
            ev @ ("command.allowed" | "command.denied") => {
                if ev == "command.allowed" {
                    s.commands += 1;
                } else {
                    s.denied += 1;
                }
                let raw = command_names(&s.shell_kind, r.get("command"));
                for name in raw.into_iter().chain(decoded_names(r.get("decoded"))) {
                    if !s.command_names.contains(&name) {
                        s.command_names.push(name);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect())
}

/// The names of the commands in a `command` field: the program of a cmd command line, or
/// the first word of each element of each PSRP pipeline statement.
fn command_names(shell_kind: &str, command: Option<&Value>) -> Vec<String> {
    let parts: Vec<&str> = command
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let norm = |w: &str| {
        let w = w.trim().to_lowercase();
        w.strip_suffix(".exe").map(str::to_string).unwrap_or(w)
    };
    if shell_kind == "psrp" {
        parts
            .iter()
            .flat_map(|st| st.split(" | "))
            .filter_map(|el| el.split_whitespace().find(|w| *w != "{script}").map(&norm))
            .collect()
    } else {
        parts
            .first()
            .and_then(|p| p.split_whitespace().next())
            .map(norm)
            .into_iter()
            .collect()
    }
}

/// The decoded code of a command event: (via, text, truncated).
fn decoded(r: &Record) -> Vec<(&str, &str, bool)> {
    r.get("decoded")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|d| {
            let cut = d.get("truncated").and_then(Value::as_bool) == Some(true);
            (text(d, "via"), text(d, "text"), cut)
        })
        .collect()
}

/// The names of the commands in decoded code (PowerShell script or cmd lines): the first
/// word of every piece between statement, pipeline, block and assignment separators,
/// where a command stands. Arguments are not names; a word in a piece that is not a
/// command (`$x`, `-Name`) matches no command name anyway.
fn decoded_names(decoded: Option<&Value>) -> Vec<String> {
    let texts = decoded
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("text").and_then(Value::as_str));
    let mut names = Vec::new();
    for t in texts {
        let pieces = t.split([';', '|', '&', '\n', '\r', '{', '}', '(', ')', '=']);
        for piece in pieces {
            let Some(word) = piece.split_whitespace().next() else {
                continue;
            };
            let word = word
                .trim_matches(['\'', '"', '`', '.'])
                .trim()
                .to_lowercase();
            if word.is_empty() || word.starts_with(['$', '-', '#', '@', '[']) {
                continue;
            }
            let word = word
                .strip_suffix(".exe")
                .map(str::to_string)
                .unwrap_or(word);
            if !names.contains(&word) {
                names.push(word);
            }
        }
    }
    names
}

impl SessionFilter {
    /// Whether `s` passes every set condition.
    pub fn matches(&self, s: &SessionSummary) -> bool {
        if let Some(u) = &self.user {
            let p = s.principal.to_lowercase();
            let u = u.to_lowercase();
            let short = p.split('@').next().unwrap_or_default();
            if p != u && (u.contains('@') || short != u) {
                return false;
            }
        }
        if let Some(h) = &self.host {
            if !s.host.eq_ignore_ascii_case(h) {
                return false;
            }
        }
        if let Some(c) = &self.command {
            let c = c.to_lowercase();
            let c = c.strip_suffix(".exe").unwrap_or(&c);
            if !s.command_names.iter().any(|n| n == c) {
                return false;
            }
        }
        if let Some(since) = self.since {
            // A session whose timestamps cannot be read is shown rather than hidden.
            if let Ok(t) = OffsetDateTime::parse(&s.last, &Rfc3339) {
                if t < since {
                    return false;
                }
            }
        }
        true
    }
}

/// Most candidates an ambiguous prefix error lists.
const MAX_CANDIDATES: usize = 10;

/// The session id `prefix` names: an id equal to it, else the only id that begins with it.
fn resolve_session(all: &[(usize, Record)], prefix: &str) -> Result<String, TranscriptError> {
    let mut candidates: Vec<&str> = Vec::new();
    for (_, r) in all {
        let Some(id) = r.get("session_id").and_then(Value::as_str) else {
            continue;
        };
        if id == prefix {
            return Ok(id.to_string());
        }
        if id.starts_with(prefix) && !candidates.contains(&id) {
            candidates.push(id);
        }
    }
    match candidates.as_slice() {
        [] => Err(TranscriptError::NoSession {
            id: prefix.to_string(),
        }),
        [one] => Ok((*one).to_string()),
        many => {
            let mut listed = many
                .iter()
                .take(MAX_CANDIDATES)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            if many.len() > MAX_CANDIDATES {
                listed.push_str(&format!(" and {} more", many.len() - MAX_CANDIDATES));
            }
            Err(TranscriptError::Ambiguous {
                prefix: prefix.to_string(),
                candidates: listed,
            })
        }
    }
}

/// The session as a readable transcript, one line per entry, in log order. `session_id`
/// may be a unique prefix of the id.
pub fn replay(log: &str, session_id: &str) -> Result<Vec<String>, TranscriptError> {
    let all = records(log)?;
    if session_id.is_empty() {
        return Err(TranscriptError::NoSession { id: String::new() });
    }
    let full = resolve_session(&all, session_id)?;
    let session_id = full.as_str();
    let mine: Vec<_> = all
        .iter()
        .filter(|(_, r)| r.get("session_id").and_then(Value::as_str) == Some(session_id))
        .map(|(_, r)| r)
        .collect();
    if mine.is_empty() {
        return Err(TranscriptError::NoSession {
            id: session_id.to_string(),
        });
    }
    let mut kind = String::new();
    // The last output line printed was an "[output cut]" of events that kept no text.
    let mut elided = false;
    let mut prompt = String::new();
    let mut out = Vec::new();
    for r in mine {
        let ts = text(r, "ts");
        let clock = clock(ts);
        if prompt.is_empty() {
            prompt = prompt_of(text(r, "principal"), text(r, "host"));
        }
        match text(r, "event") {
            "session.start" => {
                kind = text(r, "shell_kind").to_string();
                out.push(format!(
                    "# session {session_id}: {} on {} ({} shell {}, as {}) from {} at {ts}",
                    text(r, "principal"),
                    text(r, "host"),
                    kind,
                    text(r, "shell_id"),
                    text(r, "backend_user"),
                    text(r, "source_ip"),
                ));
            }
            "command.allowed" => {
                for line in command_lines(&kind, r.get("command")) {
                    out.push(format!("[{clock}] {prompt}{line}"));
                }
                decoded_lines(r, clock, &mut out);
            }
            "command.denied" => {
                for line in command_lines(&kind, r.get("command")) {
                    out.push(format!("[{clock}] {prompt}{line}"));
                }
                decoded_lines(r, clock, &mut out);
                out.push(format!("DENIED ({})", text(r, "reason")));
            }
            "output" => {
                for stream in ["stdout", "stderr"] {
                    let Some(t) = r.get(stream).and_then(Value::as_str) else {
                        continue;
                    };
                    for l in t.lines() {
                        out.push(if stream == "stderr" {
                            format!("stderr: {l}")
                        } else {
                            l.to_string()
                        });
                    }
                }
                let records = r.get("records").and_then(Value::as_array);
                for rec in records.into_iter().flatten().filter_map(Value::as_object) {
                    let stream = text(rec, "stream");
                    for l in text(rec, "text").lines() {
                        // PowerShell's own prefixes; information records print plainly.
                        out.push(match stream {
                            "warning" => format!("WARNING: {l}"),
                            "verbose" => format!("VERBOSE: {l}"),
                            "debug" => format!("DEBUG: {l}"),
                            _ => l.to_string(),
                        });
                    }
                }
                let bytes = r.get("bytes").and_then(Value::as_u64).unwrap_or_default();
                let cut = r.get("truncated").and_then(Value::as_bool) == Some(true);
                let kept_text = ["stdout", "stderr"].iter().any(|s| {
                    r.get(*s)
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.is_empty())
                });
                // Past the command's record budget the events keep no text: one line for
                // the whole run of them is enough (the totals below say how much).
                if cut && (kept_text || !elided) {
                    out.push(format!("[output cut: {bytes} bytes in this response]"));
                }
                elided = cut && !kept_text;
                let total = r.get("total_bytes").and_then(Value::as_u64);
                let sha = r.get("sha256").and_then(Value::as_str);
                if let (Some(total), Some(sha)) = (total, sha) {
                    if cut || total != bytes {
                        out.push(format!("[output in all: {total} bytes, sha256 {sha}]"));
                    }
                    elided = false;
                }
                if let Some(code) = r.get("exit_code").and_then(Value::as_i64) {
                    out.push(format!("[{clock}] (exit code {code})"));
                }
                if let Some(state) = r.get("pipeline_state").and_then(Value::as_str) {
                    out.push(format!("[{clock}] (pipeline {state})"));
                }
            }
            "input" => {
                let stream = text(r, "stream");
                let data = text(r, "text");
                for l in data.lines() {
                    out.push(format!("[{clock}] {stream}< {l}"));
                }
                if r.get("truncated").and_then(Value::as_bool) == Some(true) {
                    out.push(format!(
                        "[input cut: {} bytes in this request]",
                        r.get("bytes").and_then(Value::as_u64).unwrap_or_default()
                    ));
                }
                if data.is_empty() && r.get("end").and_then(Value::as_bool) == Some(true) {
                    out.push(format!("[{clock}] {stream}< (end of input)"));
                }
            }
            "admin.terminate" => out.push(format!(
                "[{clock}] TERMINATED by {} (host closed the shell: {})",
                text(r, "by"),
                r.get("host_closed")
                    .and_then(Value::as_bool)
                    .unwrap_or_default()
            )),
            "session.end" => out.push(format!(
                "[{clock}] session ended: {} after {} ms",
                text(r, "reason"),
                r.get("duration_ms")
                    .and_then(Value::as_u64)
                    .unwrap_or_default()
            )),
            other => out.push(format!("[{clock}] {other}")),
        }
    }
    Ok(out)
}

/// The decoded code under its command, each line stamped like the command and labelled
/// with where it came from: `[10:00:01.000]   EncodedCommand> Get-Service`.
fn decoded_lines(r: &Record, clock: &str, out: &mut Vec<String>) {
    for (via, code, cut) in decoded(r) {
        for l in code.lines() {
            out.push(format!("[{clock}]   {via}> {l}"));
        }
        if cut {
            out.push(format!("[{clock}]   ({via}: code cut)"));
        }
    }
}

/// `alice@web1> ` from `alice@example.com` on `web1`: the realm is in the header line.
fn prompt_of(principal: &str, host: &str) -> String {
    let user = principal.split('@').next().unwrap_or_default();
    format!("{user}@{host}> ")
}

/// `HH:MM:SS.mmm` of an RFC 3339 timestamp, or the timestamp itself.
fn clock(ts: &str) -> &str {
    ts.split_once('T')
        .map(|(_, t)| t.trim_end_matches('Z'))
        .unwrap_or(ts)
}

/// A cmd command line is argv joined by spaces; a PSRP command is one line per statement.
fn command_lines(kind: &str, command: Option<&Value>) -> Vec<String> {
    let parts: Vec<String> = command
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if kind == "psrp" {
        parts.into_iter().map(|p| format!("PS {p}")).collect()
    } else {
        vec![parts.join(" ")]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    /// A log as the writer produces it (chain fields left out: this module ignores them).
    const LOG: &str = r#"{"event":"authn.failure","seq":1,"ts":"2026-03-01T09:59:00.000Z","source_ip":"10.0.0.9","reason":"no_credentials"}
{"event":"session.start","seq":2,"ts":"2026-03-01T10:00:00.000Z","session_id":"s1","principal":"alice@corp.test","host":"web1","shell_id":"SH1","shell_kind":"cmd","auth_method":"certificate","source_ip":"10.0.0.1","backend_user":"CORP\\svc","backend_auth":"ntlm"}
{"event":"session.start","seq":3,"ts":"2026-03-01T10:00:01.000Z","session_id":"s2","principal":"bob","host":"db1","shell_id":"SH2","shell_kind":"psrp","auth_method":"jwt","source_ip":"10.0.0.2","backend_user":"svc","backend_auth":"ntlm"}
{"event":"command.allowed","seq":4,"ts":"2026-03-01T10:00:02.000Z","session_id":"s1","principal":"alice@corp.test","host":"web1","shell_id":"SH1","command_id":"C1","command":["ipconfig","/all"],"rule":"ops"}
{"event":"output","seq":5,"ts":"2026-03-01T10:00:02.500Z","session_id":"s1","shell_id":"SH1","command_id":"C1","stdout":"Windows IP Configuration\r\n\r\n   Host Name . . : WEB1\r\n","truncated":false,"bytes":52}
{"event":"command.allowed","seq":6,"ts":"2026-03-01T10:00:03.000Z","session_id":"s2","principal":"bob","host":"db1","shell_id":"SH2","command":["Get-Service -Name \"w32time\" | Select-Object"],"rule":"ops"}
{"event":"output","seq":7,"ts":"2026-03-01T10:00:03.000Z","session_id":"s1","shell_id":"SH1","command_id":"C1","stderr":"warning","truncated":false,"bytes":7,"exit_code":0}
{"event":"command.denied","seq":8,"ts":"2026-03-01T10:00:04.000Z","session_id":"s1","principal":"alice@corp.test","host":"web1","shell_id":"SH1","command":["net","user","bob","[redacted]","/add"],"reason":"no role allows `net`"}
{"event":"session.end","seq":9,"ts":"2026-03-01T10:00:05.000Z","session_id":"s1","principal":"alice@corp.test","host":"web1","shell_id":"SH1","reason":"client closed the shell","duration_ms":5000}
"#;

    #[test]
    fn sessions_are_grouped_and_counted() {
        let all = sessions(LOG).unwrap();
        assert_eq!(all.len(), 2);
        let s1 = &all[0];
        assert_eq!(s1.session_id, "s1");
        assert_eq!(s1.principal, "alice@corp.test");
        assert_eq!(s1.host, "web1");
        assert_eq!(s1.start, "2026-03-01T10:00:00.000Z");
        assert_eq!(s1.end.as_deref(), Some("2026-03-01T10:00:05.000Z"));
        assert_eq!((s1.commands, s1.denied), (1, 1));
        assert_eq!(s1.command_names, ["ipconfig", "net"]);
        let s2 = &all[1];
        assert_eq!(s2.end, None);
        assert_eq!(s2.command_names, ["get-service", "select-object"]);
    }

    #[test]
    fn filters_select_sessions() {
        let all = sessions(LOG).unwrap();
        let pick = |f: SessionFilter| -> Vec<String> {
            all.iter()
                .filter(|s| f.matches(s))
                .map(|s| s.session_id.clone())
                .collect()
        };
        let f = |user: Option<&str>, host: Option<&str>, command: Option<&str>| SessionFilter {
            user: user.map(Into::into),
            host: host.map(Into::into),
            command: command.map(Into::into),
            since: None,
        };
        assert_eq!(pick(f(Some("alice"), None, None)), ["s1"]);
        assert_eq!(pick(f(Some("ALICE@corp.test"), None, None)), ["s1"]);
        assert!(pick(f(Some("alice@other.test"), None, None)).is_empty());
        assert_eq!(pick(f(None, Some("DB1"), None)), ["s2"]);
        assert_eq!(pick(f(None, None, Some("net.exe"))), ["s1"]);
        assert_eq!(pick(f(None, None, Some("Get-Service"))), ["s2"]);
        assert!(
            pick(f(None, None, Some("all"))).is_empty(),
            "arguments are not names"
        );
        let since = |t: &str| SessionFilter {
            since: Some(parse_since(t).unwrap()),
            ..SessionFilter::default()
        };
        // Activity means any line: s2 is open but last did something at 10:00:03.
        assert_eq!(pick(since("2026-03-01T10:00:02.500Z")), ["s1", "s2"]);
        assert_eq!(pick(since("2026-03-01T10:00:04Z")), ["s1"]);
        assert!(
            pick(since("2026-03-01T11:00:05+01:00")).len() == 1,
            "offsets count"
        );
        assert!(pick(since("2026-03-01T10:00:06Z")).is_empty());
        assert!(pick(since("2026-03-02")).is_empty());
        assert_eq!(pick(since("2026-03-01")).len(), 2);
    }

    #[test]
    fn bad_since_is_an_error() {
        assert!(matches!(
            parse_since("yesterday"),
            Err(TranscriptError::BadTime { .. })
        ));
    }

    #[test]
    fn replay_reads_like_a_terminal() {
        let lines = replay(LOG, "s1").unwrap();
        assert!(lines[0].starts_with("# session s1: alice@corp.test on web1 (cmd shell SH1"));
        let body: Vec<&str> = lines[1..].iter().map(String::as_str).collect();
        assert_eq!(
            body,
            [
                "[10:00:02.000] alice@web1> ipconfig /all",
                "Windows IP Configuration",
                "",
                "   Host Name . . : WEB1",
                "stderr: warning",
                "[10:00:03.000] (exit code 0)",
                "[10:00:04.000] alice@web1> net user bob [redacted] /add",
                "DENIED (no role allows `net`)",
                "[10:00:05.000] session ended: client closed the shell after 5000 ms",
            ]
        );
        let psrp = replay(LOG, "s2").unwrap();
        assert_eq!(
            psrp[1],
            "[10:00:03.000] bob@db1> PS Get-Service -Name \"w32time\" | Select-Object"
        );
    }

    #[test]
    fn psrp_output_replays_with_powershell_prefixes() {
        let log = r#"{"event":"session.start","seq":1,"ts":"2026-03-01T10:00:00.000Z","session_id":"p1","principal":"bob","host":"db1","shell_id":"SH","shell_kind":"psrp","auth_method":"jwt","source_ip":"10.0.0.2","backend_user":"svc","backend_auth":"ntlm"}
{"event":"command.allowed","seq":2,"ts":"2026-03-01T10:00:01.000Z","session_id":"p1","principal":"bob","host":"db1","shell_id":"SH","command":["Get-Service -Name spooler"],"rule":"ops"}
{"event":"output","seq":3,"ts":"2026-03-01T10:00:01.500Z","session_id":"p1","shell_id":"SH","command_id":"P","stdout":"Running  Spooler\n","stderr":"Access denied\n","truncated":false,"bytes":30,"records":[{"stream":"warning","text":"careful"},{"stream":"information","text":"hi"}],"pipeline_state":"Completed"}"#;
        let lines = replay(log, "p1").unwrap();
        assert_eq!(
            lines[2..],
            [
                "Running  Spooler",
                "stderr: Access denied",
                "WARNING: careful",
                "hi",
                "[10:00:01.500] (pipeline Completed)",
            ],
            "{lines:#?}"
        );
    }

    #[test]
    fn unknown_session_and_garbage_are_errors() {
        assert_eq!(
            replay(LOG, "nope"),
            Err(TranscriptError::NoSession { id: "nope".into() })
        );
        assert_eq!(
            sessions("{\"event\":\"x\"}\nnot json\n"),
            Err(TranscriptError::NotJson { line: 2 })
        );
    }

    /// pywinrm's run_ps (cmd shell, base64) and pypsrp's execute_ps (Invoke-Expression).
    const DECODED_LOG: &str = r#"{"event":"session.start","seq":1,"ts":"2026-03-01T10:00:00.000Z","session_id":"ab12-1","principal":"alice","host":"web1","shell_id":"SH1","shell_kind":"cmd","auth_method":"jwt","source_ip":"10.0.0.1","backend_user":"svc","backend_auth":"ntlm"}
{"event":"command.allowed","seq":2,"ts":"2026-03-01T10:00:01.000Z","session_id":"ab12-1","principal":"alice","host":"web1","shell_id":"SH1","command":["powershell","-encodedcommand","RwBlAHQALQBTAGUAcgB2AGkAYwBlAA=="],"decoded":[{"via":"EncodedCommand","text":"$x = Get-Service\r\n$x | Stop-Service -Force"}],"rule":"ops"}
{"event":"session.start","seq":3,"ts":"2026-03-01T10:00:02.000Z","session_id":"ab34-2","principal":"bob","host":"web1","shell_id":"SH2","shell_kind":"psrp","auth_method":"jwt","source_ip":"10.0.0.2","backend_user":"svc","backend_auth":"ntlm"}
{"event":"command.denied","seq":4,"ts":"2026-03-01T10:00:03.000Z","session_id":"ab34-2","principal":"bob","host":"web1","shell_id":"SH2","command":["Invoke-Expression -Command \"Stop-Computer -Force\" | Out-String -Stream"],"decoded":[{"via":"Invoke-Expression","text":"Stop-Computer -Force","truncated":true}],"reason":"denied"}
"#;

    #[test]
    fn decoded_code_is_searched_and_replayed() {
        let all = sessions(DECODED_LOG).unwrap();
        let pick = |c: &str| -> Vec<String> {
            let f = SessionFilter {
                command: Some(c.into()),
                ..SessionFilter::default()
            };
            all.iter()
                .filter(|s| f.matches(s))
                .map(|s| s.session_id.clone())
                .collect()
        };
        assert_eq!(pick("Get-Service"), ["ab12-1"]);
        assert_eq!(pick("stop-service"), ["ab12-1"]);
        assert_eq!(pick("Stop-Computer"), ["ab34-2"]);
        assert!(pick("-Force").is_empty(), "arguments are not names");
        assert!(pick("x").is_empty(), "variables are not names");
        let lines = replay(DECODED_LOG, "ab12").unwrap();
        assert_eq!(
            lines[1..],
            [
                "[10:00:01.000] alice@web1> powershell -encodedcommand RwBlAHQALQBTAGUAcgB2AGkAYwBlAA==",
                "[10:00:01.000]   EncodedCommand> $x = Get-Service",
                "[10:00:01.000]   EncodedCommand> $x | Stop-Service -Force",
            ]
        );
        let lines = replay(DECODED_LOG, "ab34").unwrap();
        assert_eq!(
            lines[2..],
            [
                "[10:00:03.000]   Invoke-Expression> Stop-Computer -Force",
                "[10:00:03.000]   (Invoke-Expression: code cut)",
                "DENIED (denied)",
            ]
        );
    }

    #[test]
    fn replay_takes_a_unique_prefix() {
        assert!(replay(DECODED_LOG, "ab12-1").unwrap()[0].starts_with("# session ab12-1:"));
        assert!(replay(DECODED_LOG, "ab3").unwrap()[0].starts_with("# session ab34-2:"));
        let err = replay(DECODED_LOG, "ab").unwrap_err();
        assert_eq!(
            err,
            TranscriptError::Ambiguous {
                prefix: "ab".into(),
                candidates: "ab12-1, ab34-2".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "`ab` begins more than one session id: ab12-1, ab34-2"
        );
        assert!(matches!(
            replay(DECODED_LOG, ""),
            Err(TranscriptError::NoSession { .. })
        ));
        assert!(matches!(
            replay(DECODED_LOG, "b"),
            Err(TranscriptError::NoSession { .. })
        ));
        // An exact id wins over longer ids it begins.
        let log = format!(
            "{}{}",
            DECODED_LOG,
            DECODED_LOG.replace("ab12-1", "ab12-10")
        );
        assert!(replay(&log, "ab12-1").unwrap()[0].starts_with("# session ab12-1:"));
    }

    #[test]
    fn replay_shows_input_and_the_totals_of_cut_output_once() {
        let log = r#"{"event":"session.start","seq":1,"ts":"2026-03-01T10:00:00.000Z","session_id":"i1","principal":"alice","host":"web1","shell_id":"SH","shell_kind":"cmd","backend_user":"svc","source_ip":"10.0.0.1"}
{"event":"command.allowed","seq":2,"ts":"2026-03-01T10:00:01.000Z","session_id":"i1","principal":"alice","host":"web1","shell_id":"SH","command_id":"C","command":["cmd"],"rule":"r"}
{"event":"input","seq":3,"ts":"2026-03-01T10:00:01.500Z","session_id":"i1","shell_id":"SH","command_id":"C","stream":"stdin","text":"hostname\r\nbigout 9\r\n","truncated":false,"bytes":20,"end":true}
{"event":"output","seq":4,"ts":"2026-03-01T10:00:02.000Z","session_id":"i1","shell_id":"SH","command_id":"C","stdout":"WEB1","truncated":true,"bytes":100}
{"event":"output","seq":5,"ts":"2026-03-01T10:00:02.100Z","session_id":"i1","shell_id":"SH","command_id":"C","stdout":"","truncated":true,"bytes":100}
{"event":"output","seq":6,"ts":"2026-03-01T10:00:02.200Z","session_id":"i1","shell_id":"SH","command_id":"C","stdout":"","truncated":true,"bytes":100}
{"event":"output","seq":7,"ts":"2026-03-01T10:00:02.300Z","session_id":"i1","shell_id":"SH","command_id":"C","stdout":"","truncated":true,"bytes":50,"exit_code":0,"total_bytes":350,"sha256":"ab"}
{"event":"input","seq":8,"ts":"2026-03-01T10:00:03.000Z","session_id":"i1","shell_id":"SH","command_id":"C","stream":"stdin","text":"","truncated":false,"bytes":0,"end":true}"#;
        let lines = replay(log, "i1").unwrap();
        let body: Vec<&str> = lines[1..].iter().map(String::as_str).collect();
        assert_eq!(
            body,
            [
                "[10:00:01.000] alice@web1> cmd",
                "[10:00:01.500] stdin< hostname",
                "[10:00:01.500] stdin< bigout 9",
                "WEB1",
                "[output cut: 100 bytes in this response]",
                "[output cut: 100 bytes in this response]",
                "[output in all: 350 bytes, sha256 ab]",
                "[10:00:02.300] (exit code 0)",
                "[10:00:03.000] stdin< (end of input)",
            ]
        );
    }
}
