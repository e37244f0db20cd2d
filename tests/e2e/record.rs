//! The record of sessions that do not end with their client's Delete (issue #12): a
//! client killed mid-session, the gateway stopping with shells open. Each gets exactly one
//! `session.end` with its reason, and the gateway deletes the shell on the host.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::support::{repo, Gateway, GatewayOptions, Standin};

/// `hopgate audit verify` (in-process, as tests/e2e/audit.rs does) on the gateway's log.
fn verify(gw_dir: &std::path::Path) {
    let dir = gw_dir.join("audit");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code =
        hopgate::cli::audit::run_args(&["verify", dir.to_str().unwrap()], &mut out, &mut err);
    assert_eq!(
        code,
        0,
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
}

/// A gateway in front of a stand-in whose shells close after `idle_secs` unused (the
/// host's `idle_timeout_secs`), or the global default when None.
async fn gateway(idle_secs: Option<u64>) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start_ntlm(dir.path(), "STANDIN-01").await;
    let mut gw = Gateway::standin_dir(&standin, GatewayOptions::default());
    if let Some(secs) = idle_secs {
        let hosts = gw.hosts.replacen(
            "labels = [\"test\"]",
            &format!("labels = [\"test\"]\nidle_timeout_secs = {secs}"),
            1,
        );
        assert_ne!(hosts, gw.hosts, "the stand-in's [[hosts]] table changed");
        gw.hosts = hosts;
    }
    gw.launch(dir, standin).await
}

/// A pypsrp client that runs `Get-Date` in a runspace pool and then keeps the pool open;
/// returns once the pipeline's result is printed, with the running client.
async fn pypsrp_holding(gw: &Gateway) -> tokio::process::Child {
    let mut args = vec![repo()
        .join("tests/clients/pypsrp_client.py")
        .display()
        .to_string()];
    args.extend(gw.pypsrp_cert_args("wsman/standin"));
    args.extend(["--cmdlet", "Get-Date", "--hold", "120"].map(String::from));
    let mut child = tokio::process::Command::new("python3")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the client ran its pipeline within 60 s")
        .unwrap()
        .expect("the client printed its result");
    let result: Value = serde_json::from_str(&line).unwrap();
    assert!(result.get("error").is_none(), "{result}");
    assert_eq!(result["had_errors"], false, "{result}");
    child
}

/// The one session of the log: its `session.start` and every `session.end`.
fn session(gw: &Gateway) -> (Value, Vec<Value>) {
    let audit = gw.audit();
    let starts: Vec<_> = audit
        .iter()
        .filter(|e| e["event"] == "session.start")
        .collect();
    assert_eq!(starts.len(), 1, "{audit:#?}");
    let ends = audit
        .iter()
        .filter(|e| e["event"] == "session.end")
        .cloned()
        .collect();
    (starts[0].clone(), ends)
}

/// The requests of `action` (a WS-Man action's last path segment) the stand-in received
/// on `shell_id`.
fn host_requests(standin: &Standin, action: &str, shell_id: &str) -> usize {
    standin
        .requests()
        .iter()
        .filter(|r| {
            r["action"]
                .as_str()
                .is_some_and(|a| a.rsplit('/').next() == Some(action))
                && r["shell_id"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(shell_id))
        })
        .count()
}

/// kill -9 of a pypsrp client mid-session: within the host's idle timeout (2 s here) the
/// record has `session.end reason=idle`, once, and the stand-in received the Delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_client_s_shell_ends_idle_and_is_deleted_on_the_host() {
    let gw = gateway(Some(2)).await;
    let mut client = pypsrp_holding(&gw).await;
    client.start_kill().unwrap(); // SIGKILL: no Delete, no goodbye
    client.wait().await.unwrap();
    let killed = Instant::now();

    let ended = crate::support::eventually(Duration::from_secs(15), || {
        gw.audit().iter().any(|e| e["event"] == "session.end")
    })
    .await;
    assert!(ended, "no session.end: {:#?}", gw.audit());
    let elapsed = killed.elapsed();
    let (start, ends) = session(&gw);
    let shell_id = start["shell_id"].as_str().unwrap();
    assert_eq!(ends.len(), 1, "{ends:#?}");
    let end = &ends[0];
    assert_eq!(end["reason"], "idle", "{end}");
    assert_eq!(end["host_closed"], true, "{end}");
    assert_eq!(end["session_id"], start["session_id"]);
    assert_eq!(end["commands_allowed"], 1, "{end}");
    // Idle for 2 s, noticed within the 1 s sweep, closed on the host at once.
    assert!(
        elapsed < Duration::from_secs(6),
        "session.end {elapsed:?} after the kill"
    );
    assert_eq!(host_requests(&gw.standin, "Delete", shell_id), 1);

    // Nothing more comes later, and the log verifies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(session(&gw).1.len(), 1);
    verify(gw.dir.path());
    gw.stop().await;
}

/// A gateway stopping with a shell open closes it on the host and records its end
/// (`reason=shutdown`) before it stops; the shell's idle timeout (default, one hour)
/// plays no part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_open_shells_on_their_hosts() {
    let mut gw = gateway(None).await;
    let mut client = pypsrp_holding(&gw).await;
    assert!(session(&gw).1.is_empty());
    // Returns once `run` has: the record is complete by then.
    gw.shut_down().await;
    let (start, ends) = session(&gw);
    assert_eq!(ends.len(), 1, "{ends:#?}");
    assert_eq!(ends[0]["reason"], "shutdown", "{}", ends[0]);
    assert_eq!(ends[0]["host_closed"], true, "{}", ends[0]);
    let shell_id = start["shell_id"].as_str().unwrap();
    assert_eq!(host_requests(&gw.standin, "Delete", shell_id), 1);

    // The gateway's own start and stop frame the record.
    let audit = gw.audit();
    let first = &audit[0];
    assert_eq!(first["event"], "gateway.start", "{first}");
    assert_eq!(first["version"], env!("CARGO_PKG_VERSION"));
    let config = std::fs::read(gw.dir.path().join("hopgate.toml")).unwrap();
    assert_eq!(
        first["config_sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&config)).as_str()
    );
    assert_eq!(
        first["policy_sha256"].as_str().unwrap().len(),
        64,
        "{first}"
    );
    assert!(first["roles"].as_u64().unwrap() >= 1, "{first}");
    assert_eq!(first["hosts"], 2, "{first}");
    let last = audit.last().unwrap();
    assert_eq!(last["event"], "gateway.stop", "{last}");
    assert_eq!(last["sessions_closed"], 1, "{last}");
    assert!(
        audit
            .iter()
            .position(|e| e["event"] == "session.end")
            .unwrap()
            < audit.len() - 1
    );
    verify(gw.dir.path());
    client.start_kill().unwrap();
}

/// The stand-in's `bigout N` output: N bytes of its 64-byte line repeated.
fn bigout(n: usize) -> Vec<u8> {
    let line = b"hopgate large output test line 0123456789 abcdefghijklmnopqrst\r\n";
    assert_eq!(line.len(), 64);
    line.iter().copied().cycle().take(n).collect()
}

/// A 20 MB command output, through pypsrp announcing an 8 MiB MaxEnvelopeSize (so the
/// host's answers are larger than the 1 MiB request limit): every byte is counted, the
/// command's last `output` event carries the whole stream's byte count and SHA-256, the
/// record keeps at most its per-command budget of text, and `session.end`'s
/// `output_bytes` is the whole output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mb_output_is_counted_and_digested_whole() {
    use sha2::Digest as _;
    const N: usize = 20_000_000;
    let gw = gateway(None).await;
    let mut args = gw.pypsrp_cert_args("wsman/standin");
    args.extend([
        "--cmd".into(),
        format!("bigout {N}"),
        "--max-envelope".into(),
        (8 * 1024 * 1024).to_string(),
        "--digest".into(),
    ]);
    let run = crate::support::python("tests/clients/pypsrp_client.py", &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let sha = hex::encode(sha2::Sha256::digest(bigout(N)));
    assert_eq!(
        run.stdout(),
        format!("{N} {sha}"),
        "what the client received"
    );
    let ended = crate::support::eventually(Duration::from_secs(10), || {
        gw.audit().iter().any(|e| e["event"] == "session.end")
    })
    .await;
    assert!(ended);

    let audit = gw.audit();
    let outputs: Vec<_> = audit.iter().filter(|e| e["event"] == "output").collect();
    let counted: u64 = outputs.iter().map(|e| e["bytes"].as_u64().unwrap()).sum();
    assert_eq!(counted, N as u64);
    assert!(
        outputs
            .iter()
            .any(|e| e["bytes"].as_u64().unwrap() > 1024 * 1024),
        "no answer larger than the request limit was read: {}",
        outputs.len()
    );
    let last = outputs.last().unwrap();
    assert_eq!(last["exit_code"], 0, "{last}");
    assert_eq!(last["truncated"], true, "{last}");
    assert_eq!(last["total_bytes"], N as u64, "{last}");
    assert_eq!(last["sha256"], sha.as_str(), "{last}");
    let kept: usize = outputs
        .iter()
        .map(|e| e["stdout"].as_str().map_or(0, str::len))
        .sum();
    assert!(
        kept > 0 && kept as u64 <= hopgate::shell::COMMAND_RECORD_CAP,
        "{kept}"
    );
    let end = audit.iter().find(|e| e["event"] == "session.end").unwrap();
    assert_eq!(end["output_bytes"], N as u64, "{end}");

    let file = gw.dir.path().join("audit/audit.jsonl");
    let session = end["session_id"].as_str().unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hopgate::cli::audit::run_args(
        &["replay", file.to_str().unwrap(), session],
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(&format!("[output in all: {N} bytes, sha256 {sha}]")),
        "{}",
        &out[out.len().saturating_sub(600)..]
    );
    assert!(out.contains("(exit code 0)"));
    verify(gw.dir.path());
    gw.stop().await;
}

/// `hopgate audit replay` of a session, as text.
fn replay(gw: &Gateway, session: &str) -> String {
    let file = gw.dir.path().join("audit/audit.jsonl");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hopgate::cli::audit::run_args(
        &["replay", file.to_str().unwrap(), session],
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    String::from_utf8(out).unwrap()
}

/// PSRP pipeline input (pypsrp `invoke(input=[...])`: PIPELINE_INPUT and
/// END_OF_PIPELINE_INPUT in Sends) and cmd stdin (pywinrm `send_command_input`) are
/// `input` events tied to their pipeline or command, with byte counts, shown by replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_input_and_stdin_are_in_the_record() {
    let gw = gateway(None).await;
    let mut args = gw.pypsrp_cert_args("wsman/standin");
    args.extend(
        [
            "--cmdlet",
            "Write-Output",
            "--input",
            "alpha-input",
            "--input",
            "beta-input",
        ]
        .map(String::from),
    );
    let run = crate::support::python("tests/clients/pypsrp_client.py", &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout().contains("beta-input"), "{run:?}");

    let args: Vec<String> = vec![
        "--endpoint".into(),
        gw.url("/wsman/standin"),
        "--transport".into(),
        "certificate".into(),
        "--cert".into(),
        gw.certs.client_cert.display().to_string(),
        "--key".into(),
        gw.certs.client_key.display().to_string(),
        "--ca".into(),
        gw.certs.ca.display().to_string(),
        "--cmd".into(),
        "cmd".into(),
        "--stdin".into(),
        "hostname\r\nexit 0\r\n".into(),
    ];
    let run = crate::support::python("tests/clients/pywinrm_client.py", &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    let ended = crate::support::eventually(Duration::from_secs(10), || {
        gw.audit()
            .iter()
            .filter(|e| e["event"] == "session.end")
            .count()
            == 2
    })
    .await;
    assert!(ended, "{:#?}", gw.audit());

    let audit = gw.audit();
    let inputs: Vec<_> = audit.iter().filter(|e| e["event"] == "input").collect();
    let pipeline: Vec<_> = inputs
        .iter()
        .filter(|e| e["stream"] == "pipeline")
        .collect();
    let allowed = audit
        .iter()
        .find(|e| e["event"] == "command.allowed" && e["command"][0] == "Write-Output")
        .unwrap_or_else(|| panic!("{audit:#?}"));
    for word in ["alpha-input", "beta-input"] {
        let e = pipeline
            .iter()
            .find(|e| e["text"].as_str().unwrap().contains(word))
            .unwrap_or_else(|| panic!("no input {word}: {inputs:#?}"));
        assert!(e["bytes"].as_u64().unwrap() > word.len() as u64, "{e}");
        assert_eq!(e["session_id"], allowed["session_id"]);
        assert_eq!(
            e["command_id"].as_str().unwrap().to_uppercase(),
            allowed["command_id"].as_str().unwrap().to_uppercase()
        );
    }
    assert!(pipeline.iter().any(|e| e["end"] == true), "{pipeline:#?}");

    let stdin = inputs
        .iter()
        .find(|e| e["stream"] == "stdin")
        .unwrap_or_else(|| panic!("{inputs:#?}"));
    assert_eq!(stdin["text"], "hostname\r\nexit 0\r\n", "{stdin}");
    assert_eq!(stdin["bytes"], 18);
    assert_eq!(stdin["end"], true);

    let psrp = replay(&gw, allowed["session_id"].as_str().unwrap());
    assert!(psrp.contains("pipeline< alpha-input\n"), "{psrp}");
    let cmd = replay(&gw, stdin["session_id"].as_str().unwrap());
    assert!(cmd.contains("stdin< hostname\n"), "{cmd}");
    assert!(cmd.contains("stdin< exit 0\n"), "{cmd}");
    verify(gw.dir.path());
    gw.stop().await;
}

/// A PSRP output object larger than the per-event cap (and its input, larger than the
/// input cap): the events are cut, but `bytes`, `total_bytes` and `sha256` cover the whole
/// object's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_psrp_object_is_counted_whole() {
    use sha2::Digest as _;
    // Under the 128 KiB a single argv string may hold, over the 64 KiB caps.
    let big: String = "0123456789abcdef".repeat(120_000 / 16);
    let gw = gateway(None).await;
    let mut args = gw.pypsrp_cert_args("wsman/standin");
    args.extend(["--cmdlet", "Write-Output", "--input", &big].map(String::from));
    let run = crate::support::python("tests/clients/pypsrp_client.py", &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout(), big, "what the client received");
    let ended = crate::support::eventually(Duration::from_secs(10), || {
        gw.audit().iter().any(|e| e["event"] == "session.end")
    })
    .await;
    assert!(ended);
    let audit = gw.audit();
    let outputs: Vec<_> = audit.iter().filter(|e| e["event"] == "output").collect();
    let last = outputs
        .iter()
        .find(|e| e["pipeline_state"] == "Completed")
        .unwrap_or_else(|| panic!("{outputs:#?}"));
    let counted: u64 = outputs.iter().map(|e| e["bytes"].as_u64().unwrap()).sum();
    assert_eq!(counted, big.len() as u64, "{outputs:#?}");
    assert_eq!(last["total_bytes"], big.len() as u64, "{last}");
    assert_eq!(
        last["sha256"],
        hex::encode(sha2::Sha256::digest(big.as_bytes())).as_str()
    );
    assert!(outputs.iter().any(|e| e["truncated"] == true));
    let kept: usize = outputs
        .iter()
        .map(|e| e["stdout"].as_str().map_or(0, str::len))
        .sum();
    assert!(kept <= hopgate::shell::OUTPUT_CAP + 1, "{kept}");
    let input = audit
        .iter()
        .find(|e| e["event"] == "input" && e["stream"] == "pipeline" && e["end"] != true)
        .unwrap_or_else(|| panic!("{audit:#?}"));
    assert_eq!(input["truncated"], true, "{input}");
    assert!(
        input["bytes"].as_u64().unwrap() > big.len() as u64,
        "{input}"
    );
    let end = audit.iter().find(|e| e["event"] == "session.end").unwrap();
    assert_eq!(end["output_bytes"], big.len() as u64, "{end}");
    verify(gw.dir.path());
    gw.stop().await;
}
