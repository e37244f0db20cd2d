//! `hopgate audit …` as an operator runs it, on directories the real writer produced.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::run_args;
use crate::audit::checkpoint::SigningKey;
use crate::audit::event::{Event, EventKind};
use crate::audit::files::{self, AUDIT_FILE};
use crate::audit::{chain, AuditTask, RotatePolicy, SinkConfig};

/// Runs `hopgate audit ARGS`; returns (exit code, stdout, stderr).
fn hopgate(args: &[&str]) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_args(args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn session_events(session: &str, host: &str, commands: &[&str]) -> Vec<Event> {
    let mut v = vec![Event {
        session_id: Some(session.into()),
        kind: EventKind::SessionStart {
            principal: "alice@corp.example".into(),
            auth_method: "basic".into(),
            source_ip: "127.0.0.1".into(),
            host: host.into(),
            shell_id: format!("shell-{session}"),
            shell_kind: "cmd".into(),
            backend_user: "svc".into(),
            backend_auth: "ntlm".into(),
        },
    }];
    for c in commands {
        v.push(Event {
            session_id: Some(session.into()),
            kind: EventKind::CommandAllowed {
                principal: "alice@corp.example".into(),
                host: host.into(),
                shell_id: format!("shell-{session}"),
                command_id: None,
                command: vec![(*c).into()],
                decoded: Vec::new(),
                rule: "ops".into(),
            },
        });
    }
    v.push(Event {
        session_id: Some(session.into()),
        kind: EventKind::SessionEnd {
            principal: "alice@corp.example".into(),
            host: host.into(),
            shell_id: format!("shell-{session}"),
            reason: "client closed the shell".into(),
            host_closed: None,
            duration_ms: 5,
            commands_allowed: 1,
            commands_denied: 0,
            output_bytes: 0,
        },
    });
    v
}

/// An audit directory written by the writer with size rotation, signed with `key`.
async fn rotated_dir(dir: &Path, key: Option<SigningKey>) {
    let config = SinkConfig {
        rotate: RotatePolicy {
            daily: false,
            max_bytes: Some(700),
        },
        signing_key: key.map(Arc::new),
        ..SinkConfig::default()
    };
    let (handle, task) = AuditTask::open_with(dir, config).await.unwrap();
    let writer = tokio::spawn(task.run());
    let mut all = session_events("s-one", "web1", &["ipconfig", "hostname", "whoami"]);
    all.extend(session_events(
        "s-two",
        "db1",
        &["tasklist", "netstat", "ver"],
    ));
    for e in all {
        handle.emit(e);
        handle.flush().await;
    }
    drop(handle);
    writer.await.unwrap();
}

fn rotated_files(dir: &Path) -> Vec<PathBuf> {
    files::chain_files(dir)
        .unwrap()
        .into_iter()
        .filter(|f| !f.ends_with(AUDIT_FILE))
        .collect()
}

fn name(f: &Path) -> String {
    f.file_name().unwrap().to_string_lossy().into_owned()
}

#[tokio::test]
async fn verify_sessions_and_replay_read_the_whole_directory() {
    let d = tempfile::tempdir().unwrap();
    let (key, _) = SigningKey::generate().unwrap();
    let pubkey = d.path().join("audit.pub");
    std::fs::write(&pubkey, key.public_key().to_file_text()).unwrap();
    let dir = d.path().join("audit");
    rotated_dir(&dir, Some(key)).await;
    let rotated = rotated_files(&dir);
    assert!(rotated.len() >= 3, "{rotated:?}");

    let (code, out, err) = hopgate(&["verify", p(&dir)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
    assert!(
        out.contains(&format!("in {} file(s), seq 1..=", rotated.len() + 1)),
        "{out}"
    );
    let (code, out, _) = hopgate(&["verify", p(&dir), "--pubkey", p(&pubkey)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("checkpoint signature(s) good"), "{out}");

    // One rotated file on its own verifies, saying where it starts.
    let (code, out, _) = hopgate(&["verify", p(&rotated[1]), "--pubkey", p(&pubkey)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the chain starts at seq"), "{out}");

    // Sessions spread over several files are read whole.
    let (code, out, err) = hopgate(&["sessions", p(&dir)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!((rows[0][0], rows[0][5]), ("s-one", "3"));
    assert_eq!((rows[1][0], rows[1][5]), ("s-two", "3"));
    assert_ne!(rows[1][4], "-", "the end in a later file is found");
    let (code, out, _) = hopgate(&["replay", p(&dir), "s-two"]);
    assert_eq!(code, 0);
    let tasklist = out.find("tasklist").unwrap();
    let ver = out.find("> ver").unwrap();
    assert!(tasklist < ver && out.contains("session ended"), "{out}");

    // A unique prefix of the id is enough; an ambiguous one names the candidates.
    let (code, by_prefix, _) = hopgate(&["replay", p(&dir), "s-t"]);
    assert_eq!((code, by_prefix), (0, out));
    let (code, out, err) = hopgate(&["replay", p(&dir), "s-"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("`s-` begins more than one session id: s-one, s-two"),
        "{err}"
    );
}

#[tokio::test]
async fn deleted_swapped_and_truncated_files_fail_naming_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("audit");
    rotated_dir(&dir, None).await;
    let rotated = rotated_files(&dir);
    let copy = |to: &str| {
        let c = d.path().join(to);
        std::fs::create_dir(&c).unwrap();
        for f in files::chain_files(&dir).unwrap() {
            std::fs::copy(&f, c.join(f.file_name().unwrap())).unwrap();
        }
        c
    };
    let fails = |dir: &Path, expect: &str| {
        let (code, out, err) = hopgate(&["verify", p(dir)]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(out.contains(expect), "expected `{expect}` in {out}");
        let (_, _, err) = hopgate(&["sessions", p(dir)]);
        assert!(
            err.contains("WARNING: this audit log does not verify"),
            "{err}"
        );
    };

    let deleted = copy("deleted");
    std::fs::remove_file(deleted.join(name(&rotated[1]))).unwrap();
    fails(
        &deleted,
        &format!("{}: line 1: lines with sequence numbers", name(&rotated[2])),
    );

    // Pruning the oldest file fails too, unless the operator says the head is gone.
    let pruned = copy("pruned");
    std::fs::remove_file(pruned.join(name(&rotated[0]))).unwrap();
    fails(
        &pruned,
        &format!(
            "{}: line 1: lines with sequence numbers 1..=",
            name(&rotated[1])
        ),
    );
    let (code, out, _) = hopgate(&["verify", "--partial", p(&pruned)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the chain starts at seq"), "{out}");
    // --partial does not excuse a gap later on.
    let (code, _, _) = hopgate(&["verify", "--partial", p(&deleted)]);
    assert_eq!(code, 1);

    let swapped = copy("swapped");
    let (a, b) = (
        swapped.join(name(&rotated[0])),
        swapped.join(name(&rotated[1])),
    );
    let tmp = swapped.join("tmp");
    std::fs::rename(&a, &tmp).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&tmp, &b).unwrap();
    fails(
        &swapped,
        &format!("{}: line 1: out of order", name(&rotated[0])),
    );

    let truncated = copy("truncated");
    let f = truncated.join(name(&rotated[1]));
    let text = std::fs::read_to_string(&f).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&f, kept[..kept.len() - 1].join("\n") + "\n").unwrap();
    fails(
        &truncated,
        &format!(
            "{}: no closing checkpoint after line {}",
            name(&rotated[1]),
            kept.len() - 1
        ),
    );
}

#[tokio::test]
async fn bad_or_missing_signatures_fail_with_the_public_key() {
    let d = tempfile::tempdir().unwrap();
    let (key, _) = SigningKey::generate().unwrap();
    let pubkey = d.path().join("audit.pub");
    std::fs::write(&pubkey, key.public_key().to_file_text()).unwrap();
    let dir = d.path().join("audit");
    rotated_dir(&dir, Some(key)).await;
    let first = rotated_files(&dir).remove(0);

    // Someone re-chains the first file with another key's signature on its checkpoint
    // (re-sealing the line so its own hash is right): the signature gives it away.
    let (other, _) = SigningKey::generate().unwrap();
    let text = std::fs::read_to_string(&first).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    let mut cp: Map<String, Value> = serde_json::from_str(lines[n - 1]).unwrap();
    let forged = crate::audit::checkpoint::Checkpoint::new(
        crate::audit::checkpoint::Reason::Rotate,
        cp["first_seq"].as_u64().unwrap(),
        cp["last_seq"].as_u64().unwrap(),
        cp["covers"].as_str().unwrap(),
        Some(&other),
    );
    cp.insert("signature".into(), Value::from(forged.signature.unwrap()));
    let seq = cp["seq"].as_u64().unwrap();
    let ts = cp["ts"].as_str().unwrap().to_string();
    let prev = cp["prev"].as_str().unwrap().to_string();
    let (line, _) = chain::seal(cp, seq, &ts, &prev);
    std::fs::write(&first, lines[..n - 1].join("\n") + "\n" + &line + "\n").unwrap();
    let (code, out, _) = hopgate(&["verify", p(&dir), "--pubkey", p(&pubkey)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{}: line {n}: bad checkpoint signature",
            name(&first)
        )),
        "{out}"
    );
    // Without the key the forged signature goes unnoticed in this file, but the re-sealed
    // line no longer chains to the next file.
    let (code, out, _) = hopgate(&["verify", p(&dir)]);
    assert_eq!(code, 1, "{out}");

    // Unsigned checkpoints are refused when a key is given.
    let plain = d.path().join("plain");
    rotated_dir(&plain, None).await;
    let (code, out, _) = hopgate(&["verify", p(&plain), "--pubkey", p(&pubkey)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("checkpoint is not signed"), "{out}");
    // A broken public key file is a usage error.
    std::fs::write(&pubkey, "not a key\n").unwrap();
    assert_eq!(hopgate(&["verify", p(&plain), "--pubkey", p(&pubkey)]).0, 2);
}

#[tokio::test]
async fn keygen_stores_the_key_in_the_vault_and_writes_the_public_key() {
    let d = tempfile::tempdir().unwrap();
    for f in ["server.pem", "server.key", "ca.pem"] {
        std::fs::write(d.path().join(f), "x").unwrap();
    }
    crate::vault::generate_key_file(&d.path().join("vault.key")).unwrap();
    let config = d.path().join("hopgate.toml");
    std::fs::write(
        &config,
        "[listener]\naddress = \"127.0.0.1:5986\"\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n\
         [vault]\npath = \"vault.bin\"\nkey_file = \"vault.key\"\n\
         [audit]\ndir = \"audit\"\nsigning_key = \"audit-key\"\n",
    )
    .unwrap();
    let pubkey = d.path().join("audit.pub");
    let (code, out, err) = hopgate(&["keygen", "--config", p(&config), "--pubkey-out", p(&pubkey)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("in vault entry `audit-key`"), "{out}");
    // Not again without --force.
    let (code, _, err) = hopgate(&["keygen", "--config", p(&config)]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");

    // The vaulted key signs what the public key file verifies.
    let cfg = crate::config::Config::load(&config).unwrap();
    let crate::vault::StoreSettings::File(settings) = crate::app::store_settings(&cfg) else {
        panic!("the test config uses a file vault");
    };
    let vault = crate::vault::LocalVault::open(&settings).unwrap();
    let cred = vault.get("audit-key").unwrap();
    let key = SigningKey::from_secret(cred.secret.expose()).unwrap();
    assert_eq!(cred.user, format!("ed25519:{}", key.key_id()));
    assert!(
        !out.contains(cred.secret.expose()),
        "the private key is never printed"
    );
    let dir = d.path().join("audit");
    rotated_dir(&dir, Some(key)).await;
    let (code, out, _) = hopgate(&["verify", p(&dir), "--pubkey", p(&pubkey)]);
    assert_eq!(code, 0, "{out}");
}

/// A chain whose second line is an `audit.gap` (the writer lost 7 events before it).
fn chain_with_gap(dir: &Path) {
    let mut prev = chain::GENESIS.to_string();
    let mut text = String::new();
    let lines = [
        serde_json::json!({"event": "authn.failure", "source_ip": "10.0.0.1", "reason": "no credentials"}),
        serde_json::json!({"event": "audit.gap", "dropped": 7}),
        serde_json::json!({"event": "authn.failure", "source_ip": "10.0.0.2", "reason": "no credentials"}),
    ];
    for (i, v) in lines.into_iter().enumerate() {
        let Value::Object(fields) = v else {
            unreachable!()
        };
        let seq = u64::try_from(i).unwrap() + 1;
        let (line, hash) = chain::seal(fields, seq, "2026-01-01T00:00:00.000Z", &prev);
        text.push_str(&line);
        text.push('\n');
        prev = hash;
    }
    std::fs::write(dir.join(AUDIT_FILE), text).unwrap();
}

#[test]
fn verify_fails_on_gap_lines_with_the_count_unless_told_to_warn() {
    let dir = tempfile::tempdir().unwrap();
    chain_with_gap(dir.path());
    let (code, out, _) = hopgate(&["verify", p(dir.path())]);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("ok:"), "{out}");
    assert!(
        out.contains("FAILED: the chain is intact but incomplete: 1 audit.gap line(s) record 7 lost event(s) (at seq 2)"),
        "{out}"
    );
    let (code, out, _) = hopgate(&["verify", "--allow-gaps", p(dir.path())]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: 3 lines"), "{out}");
    assert!(out.contains("WARNING: the chain is intact but incomplete: 1 audit.gap line(s) record 7 lost event(s)"), "{out}");
}
