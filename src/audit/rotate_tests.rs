#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::audit::chain::{self, GENESIS};
use crate::audit::checkpoint::{PublicKey, SigningKey};
use crate::audit::event::{Event, EventKind};
use crate::audit::files::{self, AUDIT_FILE};
use crate::audit::sink::{AuditHandle, AuditTask, SinkConfig};
use crate::audit::verify::{self, Report, Segment, Start, VerifyError};

use super::RotatePolicy;

fn allowed(n: usize) -> Event {
    Event {
        session_id: Some(format!("s{}", n % 3)),
        kind: EventKind::CommandAllowed {
            principal: "alice@corp.example".into(),
            host: "web1".into(),
            shell_id: "6E1F2B1C-0000-4000-8000-000000000001".into(),
            command_id: None,
            command: vec!["ipconfig".into(), "/all".into(), format!("#{n}")],
            decoded: Vec::new(),
            rule: "ops: ipconfig".into(),
        },
    }
}

fn by_size(max_bytes: u64) -> SinkConfig {
    SinkConfig {
        rotate: RotatePolicy {
            daily: false,
            max_bytes: Some(max_bytes),
        },
        ..SinkConfig::default()
    }
}

/// The chain files of `dir`, as (name, text).
fn read_dir(dir: &Path) -> Vec<(String, String)> {
    files::chain_files(dir)
        .unwrap()
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(p).unwrap(),
            )
        })
        .collect()
}

fn verify_dir(dir: &Path, key: Option<&PublicKey>) -> Result<Report, VerifyError> {
    let files = read_dir(dir);
    let segs: Vec<Segment<'_>> = files
        .iter()
        .map(|(n, t)| Segment {
            name: n,
            text: t,
            rotated: files::rotated_seq(n).is_some(),
        })
        .collect();
    verify::verify_segments(&segs, Start::Genesis, key)
}

async fn run_writer(dir: &Path, config: SinkConfig, emit: impl AsyncFnOnce(&AuditHandle)) {
    let (handle, task) = AuditTask::open_with(dir, config).await.unwrap();
    let writer = tokio::spawn(task.run());
    emit(&handle).await;
    handle.flush().await;
    drop(handle);
    writer.await.unwrap();
}

fn last_line(text: &str) -> Value {
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[tokio::test]
async fn size_rotation_mid_stream_keeps_one_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    run_writer(dir.path(), by_size(2000), async |h| {
        // Some events one by one, then a burst the writer takes as one batch.
        for i in 0..10 {
            h.emit(allowed(i));
            h.flush().await;
        }
        for i in 10..40 {
            h.emit(allowed(i));
        }
    })
    .await;
    let files = read_dir(dir.path());
    assert!(
        files.len() >= 5,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let r = verify_dir(dir.path(), None).unwrap();
    assert_eq!(r.checkpoints, files.len() - 1);
    assert_eq!(r.lines, 40 + r.checkpoints);
    let (cur_name, current) = files.last().unwrap();
    assert_eq!(cur_name, AUDIT_FILE);
    for (name, text) in &files[..files.len() - 1] {
        // Each rotated file stops within one line of the limit and ends with its checkpoint.
        let lines: Vec<&str> = text.lines().collect();
        let before_last: usize = lines[..lines.len() - 2].iter().map(|l| l.len() + 1).sum();
        assert!(before_last < 2000, "{name}: {} bytes", text.len());
        assert!(
            before_last + lines[lines.len() - 2].len() + 1 >= 2000,
            "{name}"
        );
        let last = last_line(text);
        assert_eq!(last["event"], "audit.checkpoint", "{name}");
        assert_eq!(last["reason"], "rotate");
        assert!(last.get("signature").is_none(), "no key: unsigned");
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(files::rotated_seq(name), first["seq"].as_u64(), "{name}");
        assert_eq!(last["first_seq"], first["seq"]);
    }
    // The current file's first line chains to the last rotated file's checkpoint.
    let first: Value = serde_json::from_str(current.lines().next().unwrap()).unwrap();
    let closing = last_line(&files[files.len() - 2].1);
    assert_eq!(first["prev"], closing["hash"]);
    assert_eq!(
        first["seq"].as_u64().unwrap(),
        closing["seq"].as_u64().unwrap() + 1
    );
}

#[tokio::test]
async fn restart_after_rotation_resumes_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        run_writer(dir.path(), by_size(1500), async |h| {
            for i in 0..7 {
                h.emit(allowed(round * 10 + i));
            }
        })
        .await;
    }
    let r = verify_dir(dir.path(), None).unwrap();
    assert_eq!(r.lines, 21 + r.checkpoints);
    assert!(r.checkpoints >= 2);

    // A stop between renaming the closed file and creating the new one: no audit.jsonl.
    std::fs::remove_file(dir.path().join(AUDIT_FILE)).unwrap();
    let before = verify_dir(dir.path(), None).unwrap();
    run_writer(dir.path(), by_size(1500), async |h| h.emit(allowed(99))).await;
    let after = verify_dir(dir.path(), None).unwrap();
    assert_eq!(after.last_seq, before.last_seq + 1);
    let current = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
    let first: Value = serde_json::from_str(current.lines().next().unwrap()).unwrap();
    assert_eq!(first["prev"].as_str().unwrap(), before.last_hash);
    // An emptied newest rotated file with no audit.jsonl: refuse to start rather than
    // begin a second chain at seq 1.
    std::fs::remove_file(dir.path().join(AUDIT_FILE)).unwrap();
    let newest = files::chain_files(dir.path()).unwrap().pop().unwrap();
    std::fs::write(&newest, "").unwrap();
    let err = AuditTask::open_with(dir.path(), by_size(1500))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rotated file is empty"), "{err}");
}

#[tokio::test]
async fn checkpoints_are_signed_at_rotation_and_at_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = SigningKey::generate().unwrap();
    let public = key.public_key();
    let config = SinkConfig {
        signing_key: Some(Arc::new(key)),
        ..by_size(1500)
    };
    run_writer(dir.path(), config.clone(), async |h| {
        for i in 0..12 {
            h.emit(allowed(i));
        }
    })
    .await;
    let r = verify_dir(dir.path(), Some(&public)).unwrap();
    assert!(r.verified_signatures >= 2, "{r:?}");
    let current = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
    let last = last_line(&current);
    assert_eq!(last["event"], "audit.checkpoint");
    assert_eq!(last["reason"], "shutdown");
    assert_eq!(
        r.last_signed_seq,
        Some(r.last_seq - 1),
        "the stop vouches for everything"
    );

    // A restart without new events adds no second checkpoint.
    run_writer(dir.path(), config.clone(), async |_| {}).await;
    assert_eq!(verify_dir(dir.path(), Some(&public)).unwrap(), r);

    // Another key's public key does not vouch for them.
    let (other, _) = SigningKey::generate().unwrap();
    assert!(matches!(
        verify_dir(dir.path(), Some(&other.public_key())).unwrap_err(),
        VerifyError::Checkpoint { .. }
    ));
}

#[tokio::test]
async fn daily_rotation_closes_yesterdays_file() {
    let dir = tempfile::tempdir().unwrap();
    // A file whose lines were written yesterday.
    let yesterday = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let ts = yesterday
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut text = String::new();
    let mut prev = GENESIS.to_string();
    for seq in 1..=3 {
        let mut m = Map::new();
        m.insert("event".into(), Value::from("authn.failure"));
        m.insert("source_ip".into(), Value::from("127.0.0.1"));
        m.insert("reason".into(), Value::from("no credentials"));
        let (line, hash) = chain::seal(m, seq, &ts, &prev);
        prev = hash;
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(dir.path().join(AUDIT_FILE), &text).unwrap();
    let config = SinkConfig {
        rotate: RotatePolicy {
            daily: true,
            max_bytes: None,
        },
        ..SinkConfig::default()
    };
    run_writer(dir.path(), config, async |h| {
        h.emit(allowed(1));
        h.emit(allowed(2));
    })
    .await;
    let files = read_dir(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let day = format!(
        "audit-{:04}{:02}{:02}T",
        yesterday.year(),
        u8::from(yesterday.month()),
        yesterday.day()
    );
    assert!(files[0].0.starts_with(&day), "{} vs {day}", files[0].0);
    assert!(files[0].0.ends_with("-000000000001.jsonl"));
    assert_eq!(
        files[1].1.lines().count(),
        2,
        "today's events in the new file"
    );
    let r = verify_dir(dir.path(), None).unwrap();
    assert_eq!((r.lines, r.checkpoints), (6, 1));
}

/// Whether the directory really refuses writes (not when running as root).
fn read_only_is_effective(dir: &Path) -> bool {
    std::fs::write(dir.join("probe"), "x").is_err()
}

#[cfg(unix)]
#[tokio::test]
async fn failed_rotation_is_unhealthy_and_keeps_the_files_intact() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = AuditTask::open_with(dir.path(), by_size(1000))
        .await
        .unwrap();
    let writer = tokio::spawn(task.run());
    for i in 0..3 {
        handle.emit(allowed(i));
    }
    handle.flush().await;
    assert!(handle.healthy());

    // The directory becomes read-only, so the file cannot be renamed. Where that does
    // not stop us (root), the rotated file's name is taken instead, which must fail the
    // same way and not overwrite it.
    let mode = std::fs::metadata(dir.path()).unwrap().permissions();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let read_only = read_only_is_effective(dir.path());
    let mut squatter = None;
    if !read_only {
        std::fs::set_permissions(dir.path(), mode.clone()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let started = time::OffsetDateTime::parse(
            first["ts"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let name = dir.path().join(files::rotated_name(started, 1));
        std::fs::write(&name, "someone else's file\n").unwrap();
        squatter = Some(name);
    }
    for i in 3..10 {
        handle.emit(allowed(i));
        handle.flush().await;
    }
    assert!(!handle.healthy(), "a failed rotation must fail closed");
    assert!(handle.dropped() > 0);
    std::fs::set_permissions(dir.path(), mode).unwrap();

    // audit.jsonl is still there, whole, closed by its checkpoint; nothing was replaced.
    let text = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
    let v = chain::verify(&text).unwrap();
    assert_eq!(last_line(&text)["event"], "audit.checkpoint");
    if let Some(name) = squatter {
        assert_eq!(
            std::fs::read_to_string(&name).unwrap(),
            "someone else's file\n"
        );
        std::fs::remove_file(name).unwrap();
        std::fs::remove_file(dir.path().join("probe")).unwrap();
    }
    drop(handle);
    writer.await.unwrap();

    // After the fault is fixed a restart continues the chain in audit.jsonl and rotates.
    run_writer(dir.path(), by_size(1000), async |h| h.emit(allowed(42))).await;
    let r = verify_dir(dir.path(), None).unwrap();
    assert_eq!(r.last_seq, v.last_seq + 1);
    assert_eq!(read_dir(dir.path()).len(), 2);
}
