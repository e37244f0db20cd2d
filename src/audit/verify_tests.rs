#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use serde_json::{Map, Value};

use super::*;
use crate::audit::checkpoint::{Reason, SigningKey};

/// Files of `sizes[i]` event lines each; every file but the last closed by a checkpoint
/// (signed with `key` when given), as the writer rotates them.
fn files(sizes: &[u64], key: Option<&SigningKey>) -> Vec<(String, String)> {
    let mut state = ChainState::default();
    let mut out = Vec::new();
    let mut seal = |fields: Map<String, Value>, text: &mut String| {
        let (line, hash) = chain::seal(
            fields,
            state.next_seq,
            "2026-01-01T00:00:00.000Z",
            &state.prev,
        );
        state.next_seq += 1;
        state.prev = hash;
        text.push_str(&line);
        text.push('\n');
        (state.next_seq - 1, state.prev.clone())
    };
    for (i, n) in sizes.iter().enumerate() {
        let mut text = String::new();
        let mut first = None;
        let mut last = (0, String::new());
        for j in 0..*n {
            let mut m = Map::new();
            m.insert("event".into(), Value::from("command.allowed"));
            m.insert("command".into(), Value::from(format!("echo {i}.{j}")));
            last = seal(m, &mut text);
            first.get_or_insert(last.0);
        }
        let rotated = i + 1 < sizes.len();
        if rotated {
            let cp = Checkpoint::new(Reason::Rotate, first.unwrap(), last.0, &last.1, key);
            seal(cp.fields(), &mut text);
        }
        let name = if rotated {
            format!("audit-20260101T000000Z-{:012}.jsonl", first.unwrap())
        } else {
            "audit.jsonl".to_string()
        };
        out.push((name, text));
    }
    out
}

fn check(files: &[(String, String)], key: Option<&PublicKey>) -> Result<Report, VerifyError> {
    let segs: Vec<Segment<'_>> = files
        .iter()
        .map(|(n, t)| Segment {
            name: n,
            text: t,
            rotated: n != "audit.jsonl",
        })
        .collect();
    verify_segments(&segs, Start::Genesis, key)
}

#[test]
fn chain_across_files_with_signed_checkpoints_verifies() {
    let (key, _) = SigningKey::generate().unwrap();
    let f = files(&[3, 4, 2], Some(&key));
    let r = check(&f, Some(&key.public_key())).unwrap();
    assert_eq!((r.files, r.lines, r.first_seq, r.last_seq), (3, 11, 1, 11));
    assert_eq!((r.checkpoints, r.verified_signatures), (2, 2));
    // The second checkpoint (line 9) covers lines up to 8.
    assert_eq!(r.last_signed_seq, Some(8));
    // Without a key only the chain and the checkpoints' fields are checked.
    assert_eq!(check(&f, None).unwrap().verified_signatures, 0);
}

#[test]
fn deleted_rotated_file_fails_at_the_next_file() {
    let mut f = files(&[3, 4, 2], None);
    f.remove(1);
    let e = check(&f, None).unwrap_err();
    assert_eq!(
        e,
        VerifyError::Chain {
            file: "audit.jsonl".into(),
            source: ChainError::Deleted {
                line: 1,
                first: 5,
                last: 9
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "audit.jsonl: line 1: lines with sequence numbers 5..=9 were deleted before it"
    );
}

#[test]
fn swapped_files_are_out_of_order() {
    let mut f = files(&[3, 4, 2, 1], None);
    // Swap the contents of the second and third file under their names.
    let (a, b) = (f[1].1.clone(), f[2].1.clone());
    f[1].1 = b;
    f[2].1 = a;
    let e = check(&f, None).unwrap_err();
    assert_eq!(
        e,
        VerifyError::Chain {
            file: f[1].0.clone(),
            source: ChainError::Reordered {
                line: 1,
                expected: 5,
                found: 10
            }
        }
    );
}

#[test]
fn truncated_rotated_file_is_named() {
    let mut f = files(&[3, 4, 2], None);
    let kept: Vec<&str> = f[1].1.lines().take(3).collect();
    f[1].1 = kept.join("\n");
    let e = check(&f, None).unwrap_err();
    assert_eq!(
        e,
        VerifyError::Unclosed {
            file: f[1].0.clone(),
            line: 3
        }
    );
    // An emptied rotated file too.
    let mut f = files(&[3, 4, 2], None);
    f[1].1.clear();
    assert!(matches!(
        check(&f, None).unwrap_err(),
        VerifyError::Unclosed { line: 0, .. }
    ));
}

#[test]
fn edited_signature_is_a_bad_checkpoint_signature_on_its_line() {
    let (key, _) = SigningKey::generate().unwrap();
    let f = files(&[3, 2], Some(&key));
    let public = key.public_key();
    // Re-seal the checkpoint with another signature so only the signature is wrong
    // (a plain edit would already break the line's hash).
    let (other, _) = SigningKey::generate().unwrap();
    let lines: Vec<&str> = f[0].1.lines().collect();
    let mut m: Map<String, Value> = serde_json::from_str(lines[3]).unwrap();
    let forged = Checkpoint::new(
        Reason::Rotate,
        1,
        3,
        m["covers"].as_str().unwrap(),
        Some(&other),
    );
    m.insert("signature".into(), Value::from(forged.signature.unwrap()));
    let (line, _) = chain::seal(m, 4, "2026-01-01T00:00:00.000Z", m_prev(lines[3]).as_str());
    let text = format!("{}\n{}\n{}\n{line}\n", lines[0], lines[1], lines[2]);
    let mut g = f.clone();
    g[0].1 = text;
    // The re-sealed checkpoint has a new hash, so the next file no longer chains: the
    // signature is found first, at the checkpoint.
    let e = check(&g, Some(&public)).unwrap_err();
    assert_eq!(
        e,
        VerifyError::Checkpoint {
            file: g[0].0.clone(),
            line: 4,
            source: CheckpointError::BadSignature
        }
    );
    assert!(
        e.to_string().ends_with("line 4: bad checkpoint signature"),
        "{e}"
    );

    // Editing the signature in place breaks the line's hash instead.
    let mut h = f.clone();
    let sig = m_field(lines[3], "signature");
    h[0].1 = h[0].1.replacen(&sig, &format!("A{}", &sig[1..]), 1);
    assert!(matches!(
        check(&h, Some(&public)).unwrap_err(),
        VerifyError::Chain {
            source: ChainError::Edited { line: 4 },
            ..
        }
    ));
}

#[test]
fn unsigned_or_foreign_checkpoints_fail_with_a_key() {
    let unsigned = files(&[2, 2], None);
    let (key, _) = SigningKey::generate().unwrap();
    assert!(matches!(
        check(&unsigned, Some(&key.public_key())).unwrap_err(),
        VerifyError::Checkpoint {
            line: 3,
            source: CheckpointError::Unsigned,
            ..
        }
    ));
    let (other, _) = SigningKey::generate().unwrap();
    let foreign = files(&[2, 2], Some(&other));
    assert!(matches!(
        check(&foreign, Some(&key.public_key())).unwrap_err(),
        VerifyError::Checkpoint {
            source: CheckpointError::OtherKey { .. },
            ..
        }
    ));
}

#[test]
fn copied_checkpoint_from_another_place_does_not_match() {
    // A validly signed checkpoint pasted (and re-chained) after other lines still names
    // the hash it covered, which is not the line before it.
    let (key, _) = SigningKey::generate().unwrap();
    let f = files(&[3, 2], Some(&key));
    let lines: Vec<&str> = f[0].1.lines().collect();
    let cp: Map<String, Value> = serde_json::from_str(lines[3]).unwrap();
    let mut text = String::new();
    let mut prev = chain::GENESIS.to_string();
    for (seq, l) in [lines[0], lines[1]].iter().enumerate() {
        let m: Map<String, Value> = serde_json::from_str(l).unwrap();
        let (line, hash) = chain::seal(m, seq as u64 + 1, "2026-01-01T00:00:00.000Z", &prev);
        text.push_str(&line);
        text.push('\n');
        prev = hash;
    }
    let (line, _) = chain::seal(cp, 3, "2026-01-01T00:00:00.000Z", &prev);
    text.push_str(&line);
    let g = vec![("audit.jsonl".to_string(), text)];
    assert!(matches!(
        check(&g, Some(&key.public_key())).unwrap_err(),
        VerifyError::Mismatch { line: 3, .. }
    ));
}

#[test]
fn a_rotated_file_alone_starts_where_its_first_line_says() {
    let f = files(&[3, 4, 2], None);
    let seg = [Segment {
        name: &f[1].0,
        text: &f[1].1,
        rotated: true,
    }];
    let r = verify_segments(&seg, Start::FirstLine, None).unwrap();
    assert_eq!((r.first_seq, r.last_seq, r.checkpoints), (5, 9, 1));
    assert!(verify_segments(&seg, Start::Genesis, None).is_err());
}

fn m_prev(line: &str) -> String {
    m_field(line, "prev")
}

fn m_field(line: &str, field: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    v[field].as_str().unwrap().to_string()
}
