//! The hash chain: how one audit line is made canonical, hashed and verified. Pure.
//!
//! A line is a JSON object with sorted keys (serde_json's default map) containing `seq`,
//! `ts`, `prev` (the previous line's `hash`, or 64 zeros for the first) and the event's
//! fields. `hash` is the hex SHA-256 of that object serialised compactly *without* the
//! `hash` key. Because keys are sorted and numbers are integers, re-serialising a parsed
//! line reproduces the hashed bytes exactly, so a verifier needs nothing but the file.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The `prev` of the first line of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why a chain does not verify; `line` is 1-based.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("line {line}: not a JSON object")]
    NotJson { line: usize },
    #[error("line {line}: missing or invalid `{field}`")]
    Field { line: usize, field: &'static str },
    #[error("line {line}: content was edited (hash does not match)")]
    Edited { line: usize },
    #[error("line {line}: does not chain to the previous line (a line before it was rewritten or replaced)")]
    Broken { line: usize },
    #[error("line {line}: lines with sequence numbers {first}..={last} were deleted before it")]
    Deleted { line: usize, first: u64, last: u64 },
    #[error("line {line}: out of order (sequence number {found} where {expected} was expected)")]
    Reordered {
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error("line {line}: sequence number {found} where {expected} was expected")]
    Sequence {
        line: usize,
        expected: u64,
        found: u64,
    },
}

/// Builds the final line for `fields` (the event's own fields) as number `seq` after `prev`.
/// Returns the line (without newline) and its hash.
pub fn seal(mut fields: Map<String, Value>, seq: u64, ts: &str, prev: &str) -> (String, String) {
    fields.insert("seq".into(), Value::from(seq));
    fields.insert("ts".into(), Value::from(ts));
    fields.insert("prev".into(), Value::from(prev));
    fields.remove("hash");
    let canonical = Value::Object(fields.clone()).to_string();
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    fields.insert("hash".into(), Value::from(hash.clone()));
    (Value::Object(fields).to_string(), hash)
}

/// The state a verifier carries from line to line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    pub next_seq: u64,
    pub prev: String,
}

impl Default for ChainState {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev: GENESIS.to_string(),
        }
    }
}

/// Checks one line against the state and advances it.
pub fn verify_line(state: &mut ChainState, line_no: usize, line: &str) -> Result<(), ChainError> {
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(line) else {
        return Err(ChainError::NotJson { line: line_no });
    };
    let hash = match fields.remove("hash") {
        Some(Value::String(h)) => h,
        _ => {
            return Err(ChainError::Field {
                line: line_no,
                field: "hash",
            })
        }
    };
    let canonical = Value::Object(fields.clone()).to_string();
    if hex::encode(Sha256::digest(canonical.as_bytes())) != hash {
        return Err(ChainError::Edited { line: line_no });
    }
    let prev = fields
        .get("prev")
        .and_then(Value::as_str)
        .ok_or(ChainError::Field {
            line: line_no,
            field: "prev",
        })?;
    if prev != state.prev {
        return Err(ChainError::Broken { line: line_no });
    }
    let seq = fields
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or(ChainError::Field {
            line: line_no,
            field: "seq",
        })?;
    if seq != state.next_seq {
        return Err(ChainError::Sequence {
            line: line_no,
            expected: state.next_seq,
            found: seq,
        });
    }
    state.next_seq = seq + 1;
    state.prev = hash;
    Ok(())
}

/// What an intact chain ends with: enough to compare against an anchor kept elsewhere
/// (the chain alone cannot show that lines were cut off its end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Lines checked.
    pub lines: usize,
    /// The last line's `seq` (0 for an empty file).
    pub last_seq: u64,
    /// The last line's `hash` ([`GENESIS`] for an empty file).
    pub last_hash: String,
}

/// Verifies a whole file's text; returns the number of lines checked.
pub fn verify_text(text: &str) -> Result<usize, ChainError> {
    verify(text).map(|v| v.lines)
}

/// Verifies a whole file's text and says how it ends. A break is classified: a line whose
/// own hash is wrong was edited; a gap in sequence numbers whose lines appear nowhere later
/// is a deletion; a sequence number out of place is a reordering.
pub fn verify(text: &str) -> Result<Verified, ChainError> {
    let mut state = ChainState::default();
    let mut n = 0;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .collect();
    for (pos, &(i, line)) in lines.iter().enumerate() {
        match verify_line(&mut state, i + 1, line) {
            Ok(()) => n += 1,
            Err(ChainError::Broken { line: at } | ChainError::Sequence { line: at, .. }) => {
                let rest = lines.get(pos + 1..).unwrap_or_default();
                return Err(classify(&state, at, line, rest.iter().map(|(_, l)| *l)));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Verified {
        lines: n,
        last_seq: state.next_seq - 1,
        last_hash: state.prev,
    })
}

/// Why `text` (line `line`), whose hash is right, does not follow the line before it:
/// `state` is the chain before it and `rest` the lines after it.
pub fn classify<'a>(
    state: &ChainState,
    line: usize,
    text: &str,
    rest: impl IntoIterator<Item = &'a str>,
) -> ChainError {
    let Some(found) = seq_of(text) else {
        return ChainError::Field { line, field: "seq" };
    };
    let expected = state.next_seq;
    if found < expected {
        return ChainError::Reordered {
            line,
            expected,
            found,
        };
    }
    if found == expected {
        return ChainError::Broken { line };
    }
    // Lines expected..found are missing here: moved further down, or gone.
    let moved = rest
        .into_iter()
        .filter_map(seq_of)
        .any(|s| (expected..found).contains(&s));
    if moved {
        ChainError::Reordered {
            line,
            expected,
            found,
        }
    } else {
        ChainError::Deleted {
            line,
            first: expected,
            last: found - 1,
        }
    }
}

fn seq_of(line: &str) -> Option<u64> {
    serde_json::from_str::<Value>(line)
        .ok()?
        .get("seq")
        .and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn chain(n: u64) -> String {
        let mut prev = GENESIS.to_string();
        let mut out = String::new();
        for seq in 1..=n {
            let mut m = Map::new();
            m.insert("event".into(), Value::from("command.allowed"));
            m.insert("command".into(), Value::from(format!("echo {seq}")));
            let (line, hash) = seal(m, seq, "2026-01-01T00:00:00Z", &prev);
            prev = hash;
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_text(&chain(5)), Ok(5));
    }

    #[test]
    fn edited_byte_is_found_on_its_line() {
        let text = chain(5).replacen("echo 3", "echo 9", 1);
        assert_eq!(verify_text(&text), Err(ChainError::Edited { line: 3 }));
    }

    #[test]
    fn deleted_line_breaks_the_next_one() {
        let full = chain(5);
        let lines: Vec<&str> = full.lines().collect();
        let text = [lines[0], lines[1], lines[3], lines[4]].join("\n");
        assert_eq!(
            verify_text(&text),
            Err(ChainError::Deleted {
                line: 3,
                first: 3,
                last: 3
            })
        );
    }

    #[test]
    fn deleted_first_lines_are_found() {
        let full = chain(5);
        let lines: Vec<&str> = full.lines().collect();
        let text = lines[2..].join("\n");
        assert_eq!(
            verify_text(&text),
            Err(ChainError::Deleted {
                line: 1,
                first: 1,
                last: 2
            })
        );
    }

    #[test]
    fn swapped_lines_are_found() {
        let full = chain(4);
        let lines: Vec<&str> = full.lines().collect();
        let text = [lines[0], lines[2], lines[1], lines[3]].join("\n");
        assert_eq!(
            verify_text(&text),
            Err(ChainError::Reordered {
                line: 2,
                expected: 2,
                found: 3
            })
        );
        // A line moved up from further down.
        let text = [lines[0], lines[1], lines[3], lines[2]].join("\n");
        assert_eq!(
            verify_text(&text),
            Err(ChainError::Reordered {
                line: 3,
                expected: 3,
                found: 4
            })
        );
    }

    #[test]
    fn rewritten_and_rehashed_line_breaks_the_next_one() {
        // An editor who recomputes the edited line's hash still breaks the link to it.
        let full = chain(3);
        let lines: Vec<&str> = full.lines().collect();
        let mut m: Map<String, Value> = serde_json::from_str(lines[1]).unwrap();
        m.insert("command".into(), Value::from("echo forged"));
        let prev = m["prev"].as_str().unwrap().to_string();
        let (forged, _) = seal(m, 2, "2026-01-01T00:00:00Z", &prev);
        let text = [lines[0], forged.as_str(), lines[2]].join("\n");
        assert_eq!(verify_text(&text), Err(ChainError::Broken { line: 3 }));
    }

    #[test]
    fn verified_chain_reports_its_end() {
        let text = chain(3);
        let v = verify(&text).unwrap();
        assert_eq!((v.lines, v.last_seq), (3, 3));
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(v.last_hash, last["hash"].as_str().unwrap());
        assert_eq!(
            verify(""),
            Ok(Verified {
                lines: 0,
                last_seq: 0,
                last_hash: GENESIS.into()
            })
        );
    }
}
