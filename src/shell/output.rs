//! What a command printed, read from the host's ReceiveResponse: for cmd shells the
//! decoded streams (the wsman codec already undid the base64), grouped by command, with the
//! exit code once the command is done; for PSRP shells the records `psrp::records` read out
//! of the reassembled messages, grouped by pipeline, with its final state. Each [`Output`]'s
//! text is capped. Pure: it never alters what the client receives and never fails a request.

use std::collections::BTreeMap;

use crate::psrp::{HostEvent, RecordStream};
use crate::wsman::{CommandState, CommandStateKind, Stream};

/// What one command (or pipeline) printed in one ReceiveResponse; the audit's `output`
/// event is built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub command_id: Option<String>,
    /// Decoded stdout (lossy UTF-8), absent when the response carried none.
    pub stdout: Option<String>,
    /// Decoded stderr (lossy UTF-8), absent when the response carried none.
    pub stderr: Option<String>,
    /// True when the text was cut to the cap; `bytes` says how much there was.
    pub truncated: bool,
    /// Bytes of stream data (cmd) or record text (PSRP), before any cut.
    pub bytes: u64,
    /// The command's exit code, when the response says it is done.
    pub exit_code: Option<i64>,
    /// PSRP warning, verbose, debug and information records, in order.
    pub records: Vec<OutputRecord>,
    /// PSRP: the pipeline's final state (`Completed`, `Failed`, `Stopped`).
    pub pipeline_state: Option<String>,
    /// On a command's last event: bytes of its whole output, over every response.
    pub total_bytes: Option<u64>,
    /// On a command's last event: SHA-256 (hex) of the bytes `total_bytes` counts, in the
    /// order the host sent them.
    pub sha256: Option<String>,
}

/// A PSRP record other than output and errors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutputRecord {
    /// `warning`, `verbose`, `debug`, `information`.
    pub stream: &'static str,
    pub text: String,
}

/// Most text (stdout and stderr together) kept in one `output` event. Longer output is cut
/// and flagged `truncated`; `bytes` still says how much there was.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// One command's streams in a response: (position of its first stream, stdout, stderr).
type Collected = (usize, Vec<u8>, Vec<u8>);

/// What one ReceiveResponse of a cmd shell says: one [`Output`] per command that printed
/// something or finished, in the order the commands first appear.
pub fn cmd_outputs(streams: &[Stream], state: Option<&CommandState>, cap: usize) -> Vec<Output> {
    let mut by_cmd: BTreeMap<Option<&str>, Collected> = BTreeMap::new();
    for (i, s) in streams.iter().enumerate() {
        let slot = by_cmd
            .entry(s.command_id.as_deref())
            .or_insert_with(|| (i, Vec::new(), Vec::new()));
        if s.name.eq_ignore_ascii_case("stderr") {
            slot.2.extend_from_slice(&s.data);
        } else if s.name.eq_ignore_ascii_case("stdout") {
            slot.1.extend_from_slice(&s.data);
        }
    }
    let done = state.filter(|s| s.state == CommandStateKind::Done);
    if let Some(d) = done {
        by_cmd
            .entry(d.command_id.as_deref())
            .or_insert_with(|| (usize::MAX, Vec::new(), Vec::new()));
    }
    let mut entries: Vec<_> = by_cmd.into_iter().collect();
    entries.sort_by_key(|(_, (pos, _, _))| *pos);
    entries
        .into_iter()
        .filter_map(|(cmd, (_, out, err))| {
            let exit_code = done
                .filter(|d| d.command_id.as_deref() == cmd)
                .and_then(|d| d.exit_code);
            if out.is_empty() && err.is_empty() && exit_code.is_none() {
                return None;
            }
            let bytes = u64::try_from(out.len() + err.len()).unwrap_or(u64::MAX);
            let (stdout, cut_out) = capped(&out, cap);
            let (stderr, cut_err) = capped(&err, cap.saturating_sub(stdout.len()));
            Some(Output {
                command_id: cmd.map(str::to_string),
                stdout: (!out.is_empty()).then_some(stdout),
                stderr: (!err.is_empty()).then_some(stderr),
                truncated: cut_out || cut_err,
                bytes,
                exit_code,
                records: Vec::new(),
                pipeline_state: None,
                total_bytes: None,
                sha256: None,
            })
        })
        .collect()
}

/// What one PSRP pipeline said in one ReceiveResponse, before it becomes an event.
#[derive(Default)]
struct PsrpCollected {
    first: usize,
    stdout: String,
    stderr: String,
    records: Vec<OutputRecord>,
    state: Option<String>,
    truncated: bool,
    bytes: u64,
}

/// What the PSRP records of one ReceiveResponse say (`events`: the command id of the
/// stream each came in, and what it said): one [`Output`] per pipeline, in the
/// order the pipelines first appear. Output objects become `stdout` lines, error records
/// (and a failed pipeline's reason) `stderr` lines, other records `records`; a final state
/// other than running is kept. `cap` bounds each event's text.
pub fn psrp_outputs(events: Vec<(Option<String>, HostEvent)>, cap: usize) -> Vec<Output> {
    let mut by_cmd: BTreeMap<Option<String>, PsrpCollected> = BTreeMap::new();
    for (i, (cmd, ev)) in events.into_iter().enumerate() {
        let c = by_cmd.entry(cmd).or_insert_with(|| PsrpCollected {
            first: i,
            ..Default::default()
        });
        let room = |c: &PsrpCollected| {
            let used = c.stdout.len()
                + c.stderr.len()
                + c.records.iter().map(|r| r.text.len()).sum::<usize>();
            cap.saturating_sub(used)
        };
        match ev {
            HostEvent::Record {
                stream,
                text,
                truncated,
                ..
            } => {
                c.bytes = c.bytes.saturating_add(text.len() as u64);
                let (text, cut) = capped(text.as_bytes(), room(c));
                c.truncated |= truncated || cut;
                match stream {
                    RecordStream::Output => {
                        c.stdout.push_str(&text);
                        c.stdout.push('\n');
                    }
                    RecordStream::Error => {
                        c.stderr.push_str(&text);
                        c.stderr.push('\n');
                    }
                    other => c.records.push(OutputRecord {
                        stream: other.name(),
                        text,
                    }),
                }
            }
            HostEvent::State { state, error, .. } => {
                if state.is_final() {
                    c.state = Some(state.name().to_string());
                }
                if let Some(e) = error {
                    c.bytes = c.bytes.saturating_add(e.len() as u64);
                    let (text, cut) = capped(e.as_bytes(), room(c));
                    c.truncated |= cut;
                    c.stderr.push_str(&text);
                    c.stderr.push('\n');
                }
            }
        }
    }
    let mut entries: Vec<_> = by_cmd.into_iter().collect();
    entries.sort_by_key(|(_, c)| c.first);
    entries
        .into_iter()
        .filter(|(_, c)| {
            !(c.stdout.is_empty() && c.stderr.is_empty() && c.records.is_empty())
                || c.state.is_some()
        })
        .map(|(cmd, c)| Output {
            command_id: cmd,
            stdout: (!c.stdout.is_empty()).then_some(c.stdout),
            stderr: (!c.stderr.is_empty()).then_some(c.stderr),
            truncated: c.truncated,
            bytes: c.bytes,
            exit_code: None,
            records: c.records,
            pipeline_state: c.state,
            total_bytes: None,
            sha256: None,
        })
        .collect()
}

/// Lossy UTF-8 of `data`, cut to at most `cap` bytes on a character boundary.
fn capped(data: &[u8], cap: usize) -> (String, bool) {
    let text = String::from_utf8_lossy(data);
    if text.len() <= cap {
        return (text.into_owned(), false);
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text.get(..end).unwrap_or_default().to_string(), true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use crate::psrp::InvocationState;
    use crate::wsman::{self, Body};

    fn rec(cmd: &str, stream: RecordStream, text: &str) -> (Option<String>, HostEvent) {
        (
            Some(cmd.into()),
            HostEvent::Record {
                pipeline: None,
                stream,
                text: text.into(),
                truncated: false,
            },
        )
    }

    #[test]
    fn psrp_records_group_by_pipeline_with_their_final_state() {
        let events = vec![
            rec("P1", RecordStream::Output, "Running  Spooler"),
            rec("P2", RecordStream::Warning, "careful"),
            rec("P1", RecordStream::Output, "Stopped  W32Time"),
            rec("P1", RecordStream::Error, "access denied"),
            (
                Some("P1".into()),
                HostEvent::State {
                    pipeline: None,
                    state: InvocationState::Completed,
                    error: None,
                },
            ),
            (
                Some("P3".into()),
                HostEvent::State {
                    pipeline: None,
                    state: InvocationState::Running,
                    error: None,
                },
            ),
        ];
        let out = psrp_outputs(events, OUTPUT_CAP);
        assert_eq!(out.len(), 2, "{out:?}");
        let Output {
            command_id,
            stdout,
            stderr,
            pipeline_state,
            records,
            bytes,
            ..
        } = &out[0];
        assert_eq!(command_id.as_deref(), Some("P1"));
        assert_eq!(
            stdout.as_deref(),
            Some("Running  Spooler\nStopped  W32Time\n")
        );
        assert_eq!(stderr.as_deref(), Some("access denied\n"));
        assert_eq!(pipeline_state.as_deref(), Some("Completed"));
        assert!(records.is_empty());
        assert_eq!(*bytes, 45);
        let Output { records, .. } = &out[1];
        assert_eq!(
            records,
            &[OutputRecord {
                stream: "warning",
                text: "careful".into()
            }]
        );
    }

    #[test]
    fn psrp_text_past_the_cap_is_cut_and_flagged() {
        let events = vec![
            rec("P", RecordStream::Output, "0123456789"),
            rec("P", RecordStream::Verbose, "abcdef"),
        ];
        let out = psrp_outputs(events, 13);
        let Output {
            stdout,
            records,
            truncated,
            bytes,
            ..
        } = &out[0];
        assert_eq!(stdout.as_deref(), Some("0123456789\n"));
        assert_eq!(records[0].text, "ab");
        assert!(*truncated);
        assert_eq!(*bytes, 16);
    }

    fn stream(name: &str, cmd: &str, data: &[u8]) -> Stream {
        Stream {
            name: name.into(),
            command_id: Some(cmd.into()),
            end: false,
            data: data.to_vec(),
        }
    }

    /// The ReceiveResponse of pypsrp's `test_winrs_stderr_rc` recording (a real Windows
    /// host): `echo out & echo err 1>&2 & exit 1`.
    fn real_receive_response() -> Vec<u8> {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/corpus/pypsrp-responses/test_winrs_stderr_rc.yml"
        ));
        let doc: serde_norway::Value = serde_norway::from_str(text).unwrap();
        let resp = doc["messages"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|m| m["response"].as_str())
            .find(|r| r.contains("ReceiveResponse"))
            .unwrap();
        resp.as_bytes().to_vec()
    }

    #[test]
    fn real_windows_answer_gives_stdout_stderr_and_exit_code() {
        let env = wsman::parse(&real_receive_response(), &wsman::Limits::default()).unwrap();
        let Body::ReceiveResponse {
            streams,
            command_state,
        } = env.body
        else {
            panic!("not a ReceiveResponse");
        };
        let events = cmd_outputs(&streams, command_state.as_ref(), OUTPUT_CAP);
        assert_eq!(events.len(), 1);
        let Output {
            command_id,
            stdout,
            stderr,
            truncated,
            bytes,
            exit_code,
            ..
        } = &events[0];
        // The base64 in the recording: b3V0IA0K = "out \r\n", ZXJyIA0K = "err \r\n".
        assert_eq!(
            command_id.as_deref(),
            Some("D37A8327-79AD-452F-BE0D-4B99A96B4A0B")
        );
        assert_eq!(stdout.as_deref(), Some("out \r\n"));
        assert_eq!(stderr.as_deref(), Some("err \r\n"));
        assert_eq!((*truncated, *bytes, *exit_code), (false, 12, Some(1)));
    }

    #[test]
    fn long_output_is_cut_on_a_character_boundary() {
        // 'é' is two bytes: a cap of 5 falls inside the third one.
        let data = "ééééé".as_bytes();
        let events = cmd_outputs(&[stream("stdout", "C", data)], None, 5);
        let Output {
            stdout,
            truncated,
            bytes,
            ..
        } = &events[0];
        assert_eq!(stdout.as_deref(), Some("éé"));
        assert!(*truncated);
        assert_eq!(*bytes, 10);
    }

    #[test]
    fn stderr_gets_what_stdout_leaves_of_the_cap() {
        let events = cmd_outputs(
            &[
                stream("stdout", "C", b"12345678"),
                stream("stderr", "C", b"abcdef"),
            ],
            None,
            10,
        );
        let Output {
            stdout,
            stderr,
            truncated,
            ..
        } = &events[0];
        assert_eq!(
            (stdout.as_deref(), stderr.as_deref()),
            (Some("12345678"), Some("ab"))
        );
        assert!(*truncated);
    }

    #[test]
    fn empty_running_answers_record_nothing_and_commands_stay_apart() {
        let running = CommandState {
            command_id: Some("A".into()),
            state: CommandStateKind::Running,
            exit_code: None,
        };
        assert!(cmd_outputs(&[stream("stdout", "A", b"")], Some(&running), 10).is_empty());
        let done = CommandState {
            command_id: Some("B".into()),
            state: CommandStateKind::Done,
            exit_code: Some(0),
        };
        let events = cmd_outputs(
            &[stream("stdout", "A", b"a"), stream("stdout", "B", b"b")],
            Some(&done),
            10,
        );
        let ids: Vec<_> = events
            .iter()
            .map(|e| (e.command_id.clone().unwrap(), e.exit_code))
            .collect();
        assert_eq!(ids, [("A".to_string(), None), ("B".to_string(), Some(0))]);
    }
}
