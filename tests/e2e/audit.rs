//! The audit trail as its readers use it: `hopgate audit verify|sessions|replay` on the log
//! a real client session produced, output transcripts, secrets kept off disk, and the
//! gateway refusing new sessions when it cannot record them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::{Path, PathBuf};

use crate::support::{python, ClientRun, Gateway, GatewayOptions, ALICE};

/// Runs `hopgate audit …` (the CLI's own parser and code, in-process: the binary in a
/// shared target directory may belong to another build); returns (exit code, stdout, stderr).
fn hopgate(args: &[&str]) -> (i32, String, String) {
    assert_eq!(args[0], "audit");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hopgate::cli::audit::run_args(&args[1..], &mut out, &mut err);
    (
        i32::from(code),
        String::from_utf8_lossy(&out).to_string(),
        String::from_utf8_lossy(&err).to_string(),
    )
}

fn audit_dir(gw: &Gateway) -> PathBuf {
    gw.dir.path().join("audit")
}

fn audit_file(gw: &Gateway) -> PathBuf {
    audit_dir(gw).join("audit.jsonl")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// pywinrm with alice's client certificate: one command in its own shell.
async fn pywinrm(gw: &Gateway, cmd: &str, args: &[&str]) -> ClientRun {
    let mut a = vec![
        "--endpoint".to_string(),
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
        cmd.into(),
    ];
    for x in args {
        // `--arg=-Password`: argparse would take a separate `-Password` for an option.
        a.push(format!("--arg={x}"));
    }
    python("tests/clients/pywinrm_client.py", &a).await
}

/// Waits until the session with `session.end` for `principal` count reaches `n`.
async fn sessions_ended(gw: &Gateway, n: usize) {
    let ok = crate::support::eventually(std::time::Duration::from_secs(5), || {
        gw.audit()
            .iter()
            .filter(|e| e["event"] == "session.end")
            .count()
            >= n
    })
    .await;
    assert!(ok, "{} session.end events expected: {:#?}", n, gw.audit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_cli_verifies_lists_and_replays_a_real_session() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let run = pywinrm(&gw, "ipconfig", &["/all"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let denied = pywinrm(&gw, "shutdown", &["/s", "/t", "0"]).await;
    assert_eq!(denied.code, 2, "{denied:?}");
    // The denied client never closes its shell; wait for the first session's end and the
    // denial.
    sessions_ended(&gw, 1).await;
    assert!(gw.audit_has(|e| e["event"] == "command.denied").await);
    // What the client printed is what the audit recorded.
    let outputs: Vec<_> = gw
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "output")
        .collect();
    let recorded: String = outputs
        .iter()
        .filter_map(|e| e["stdout"].as_str())
        .collect();
    assert_eq!(recorded, run.stdout(), "{outputs:#?}");
    assert!(outputs.iter().any(|e| e["exit_code"] == 0), "{outputs:#?}");
    assert!(outputs.iter().all(|e| e["truncated"] == false));

    // verify: intact.
    let (code, out, err) = hopgate(&["audit", "verify", p(&audit_dir(&gw))]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");

    // sessions: two sessions for alice on standin, one with a denial.
    let (code, out, err) = hopgate(&["audit", "sessions", p(&audit_file(&gw))]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    let first = &rows[0];
    assert_eq!(&first[1..3], [ALICE, "standin"], "{out}");
    assert_ne!(first[4], "-", "the first session ended: {out}");
    assert_eq!(&first[5..7], ["1", "0"], "{out}");
    assert_eq!(&rows[1][5..7], ["0", "1"], "{out}");

    let (_, out, _) = hopgate(&[
        "audit",
        "sessions",
        p(&audit_file(&gw)),
        "--command",
        "SHUTDOWN",
    ]);
    assert_eq!(out.lines().count(), 2, "header and one session: {out}");
    assert!(out.contains(rows[1][0]), "{out}");
    let (_, out, _) = hopgate(&["audit", "sessions", p(&audit_file(&gw)), "--user", "bob"]);
    assert_eq!(out.lines().count(), 1, "no session for bob: {out}");
    let (_, out, _) = hopgate(&[
        "audit",
        "sessions",
        p(&audit_file(&gw)),
        "--host",
        "standin",
        "--since",
        "2000-01-01",
    ]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let (_, out, _) = hopgate(&[
        "audit",
        "sessions",
        p(&audit_file(&gw)),
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let (code, _, err) = hopgate(&["audit", "sessions", p(&audit_file(&gw)), "--since", "soon"]);
    assert_eq!(code, 2, "{err}");

    // replay: prompt lines, the host's output and the denial.
    let (code, out, err) = hopgate(&["audit", "replay", p(&audit_file(&gw)), rows[0][0]]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alice@standin> ipconfig /all"), "{out}");
    assert!(
        out.contains("Windows IP Configuration"),
        "the host's output: {out}"
    );
    assert!(out.contains("(exit code 0)"), "{out}");
    let ipconfig = out.find("ipconfig /all").unwrap();
    let printed = out.find("Windows IP Configuration").unwrap();
    let ended = out.find("session ended").unwrap();
    assert!(
        ipconfig < printed && printed < ended,
        "in time order: {out}"
    );
    assert!(
        out.contains("session ended: client closed the shell"),
        "{out}"
    );
    let (_, out, _) = hopgate(&["audit", "replay", p(&audit_file(&gw)), rows[1][0]]);
    assert!(
        out.contains("alice@standin> shutdown /s /t 0\nDENIED ("),
        "{out}"
    );
    let (code, _, _) = hopgate(&["audit", "replay", p(&audit_file(&gw)), "no-such-session"]);
    assert_eq!(code, 2);

    // Tampering with a copy: each kind of change is named with its line.
    let text = std::fs::read_to_string(audit_file(&gw)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 5, "{text}");
    let copy = gw.dir.path().join("copy.jsonl");
    let check = |body: String, expect: &str| {
        std::fs::write(&copy, body).unwrap();
        let (code, out, err) = hopgate(&["audit", "verify", p(&copy)]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(out.contains(expect), "expected `{expect}` in {out}");
    };
    check(
        text.replacen("ipconfig", "ipconfog", 1),
        "content was edited",
    );
    let mut deleted = lines.clone();
    deleted.remove(2);
    check(
        deleted.join("\n"),
        "line 3: lines with sequence numbers 3..=3 were deleted",
    );
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    check(swapped.join("\n"), "line 2: out of order");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_command_lines_never_reach_the_audit_file() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    // Allowed (the e2e role allows echo): the host echoes the secret back, so it is in the
    // command and in the output.
    let run = pywinrm(&gw, "echo", &["-Password", "hunter2"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout().contains("hunter2"),
        "the client itself sees it: {run:?}"
    );
    // Denied, in the forms people type.
    for (cmd, args) in [
        ("net", &["user", "bob", "hunter2", "/add"][..]),
        ("mytool", &["/p:hunter2"][..]),
        ("mytool", &["--password=hunter2"][..]),
        ("New-Thing", &["-Credential", "hunter2"][..]),
    ] {
        let r = pywinrm(&gw, cmd, args).await;
        assert_eq!(r.code, 2, "{cmd} {args:?} must be denied: {r:?}");
    }
    // run_ps: the secret is inside -EncodedCommand's base64 and in the decoded script.
    let mut a = vec![
        "--endpoint".to_string(),
        gw.url("/wsman/standin"),
        "--transport".into(),
        "certificate".into(),
        "--cert".into(),
        gw.certs.client_cert.display().to_string(),
        "--key".into(),
        gw.certs.client_key.display().to_string(),
        "--ca".into(),
        gw.certs.ca.display().to_string(),
    ];
    a.extend(["--ps".into(), "Set-Thing -Password hunter2".into()]);
    let r = python("tests/clients/pywinrm_client.py", &a).await;
    assert_eq!(r.code, 2, "run_ps of Set-Thing must be denied: {r:?}");
    assert!(
        gw.audit_has(|e| e["event"] == "output"
            && e["stdout"]
                .as_str()
                .is_some_and(|s| s.contains("-Password [redacted]")))
            .await,
        "{:#?}",
        gw.audit()
    );
    let denied = crate::support::eventually(std::time::Duration::from_secs(5), || {
        gw.audit()
            .iter()
            .filter(|e| e["event"] == "command.denied")
            .count()
            == 5
    })
    .await;
    assert!(denied, "{:#?}", gw.audit());
    gw.audit_has(|e| e["event"] == "session.end").await;

    let text = std::fs::read_to_string(audit_file(&gw)).unwrap();
    assert!(
        !text.to_lowercase().contains("hunter2"),
        "a secret reached the audit file:\n{text}"
    );
    // pywinrm sends the arguments as one rsp:Arguments string.
    assert!(
        text.contains(r#""command":["echo","-Password [redacted]"]"#),
        "{text}"
    );
    assert!(
        text.contains(r#""command":["net","user bob [redacted] /add"]"#),
        "{text}"
    );
    assert!(
        text.contains("'net user bob [redacted] /add' is not allowed"),
        "{text}"
    );
    assert!(text.contains("--password=[redacted]"), "{text}");
    assert!(text.contains("/p:[redacted]"), "{text}");
    // The decoded script is redacted like a raw command, and the base64 that carried the
    // secret is gone from the raw form.
    assert!(
        text.contains(
            r#""decoded":[{"text":"Set-Thing -Password [redacted]","via":"EncodedCommand"}]"#
        ),
        "{text}"
    );
    let b64 = {
        use base64::Engine as _;
        let utf16: Vec<u8> = "Set-Thing -Password hunter2"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        base64::engine::general_purpose::STANDARD.encode(utf16)
    };
    assert!(!text.contains(&b64), "{text}");
    assert!(
        text.contains(r#""command":["powershell","-encodedcommand [redacted]"]"#),
        "{text}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sessions_are_refused_when_the_audit_file_is_replaced() {
    use crate::support::raw::{command, create_cmd_shell, shell_id};
    let gw = Gateway::start(GatewayOptions::default()).await;
    let alice = gw.alice_client();
    let to = "https://gw/wsman/standin";
    let r = alice
        .post("/wsman/standin", None, &create_cmd_shell(to))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = shell_id(&r.body).unwrap();
    let r = alice
        .post("/wsman/standin", None, &command(to, &sid, "hostname"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(gw.audit_has(|e| e["event"] == "command.allowed").await);

    // Mid-session, the audit file is moved away and a directory takes its place.
    let moved = audit_dir(&gw).join("moved.jsonl");
    std::fs::rename(audit_file(&gw), &moved).unwrap();
    std::fs::create_dir(audit_file(&gw)).unwrap();

    // Within the writer's check interval, new shells are refused with a clear fault.
    let r = refused_create(&alice, to)
        .await
        .expect("a Create must be refused once the audit file is gone");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("AccessDenied"), "{}", r.body);
    assert!(r.body.contains("audit log is unavailable"), "{}", r.body);

    // What was written before is intact.
    let (code, out, err) = hopgate(&["audit", "verify", p(&moved)]);
    assert_eq!(code, 0, "{out}{err}");
    gw.stop().await;
}

/// Sends Creates for up to 5 s (the writer notices a failure within its check interval);
/// the first one refused, or None when every Create was accepted.
async fn refused_create(
    client: &crate::support::raw::RawClient,
    to: &str,
) -> Option<crate::support::raw::RawResponse> {
    use crate::support::raw::create_cmd_shell;
    for _ in 0..50 {
        let r = client
            .post("/wsman/standin", None, &create_cmd_shell(to))
            .await
            .unwrap();
        if r.status != 200 {
            return Some(r);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

/// Sends one plain HTTP request to the admin listener; returns (status, body).
async fn admin_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("{method} {path} HTTP/1.1\r\nHost: admin\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (status, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_lists_and_terminates_a_live_session() {
    use crate::support::raw::{command, create_cmd_shell, element_text, shell_id, RawClient};
    // The support gateway has no admin listener: start a second gateway from its config
    // with `[admin]` added (own audit directory, same stand-in host).
    let base = Gateway::start(GatewayOptions::default()).await;
    let d = base.dir.path();
    let token = "e2e-admin-token-0123456789";
    std::fs::write(d.join("admin.token"), format!("{token}\n")).unwrap();
    let text = std::fs::read_to_string(d.join("hopgate.toml"))
        .unwrap()
        .replace("dir = \"audit\"", "dir = \"audit-admin\"");
    let text = format!("{text}\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n");
    std::fs::write(d.join("hopgate-admin.toml"), text).unwrap();
    let config = hopgate::config::Config::load(&d.join("hopgate-admin.toml")).unwrap();
    let bound = hopgate::app::bind(config).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let admin = bound.admin_addr().expect("admin listener bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));

    assert_eq!(admin_request(admin, "GET", "/healthz", None).await.0, 200);
    let (status, body) = admin_request(admin, "GET", "/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        admin_request(admin, "GET", "/api/v1/sessions", None)
            .await
            .0,
        401
    );

    let alice = RawClient::new(
        addr,
        &base.certs.ca,
        Some((&base.certs.client_cert, &base.certs.client_key)),
    );
    let to = "https://gw/wsman/standin";
    let r = alice
        .post("/wsman/standin", None, &create_cmd_shell(to))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = shell_id(&r.body).unwrap();

    let (status, body) = admin_request(admin, "GET", "/api/v1/sessions", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let s = &v["sessions"][0];
    assert_eq!(s["shell_id"], sid.as_str(), "{body}");
    assert_eq!(s["principal"], ALICE);
    let session_id = s["session_id"].as_str().unwrap().to_string();

    let (status, body) = admin_request(admin, "GET", "/metrics", Some(token)).await;
    assert_eq!(status, 200);
    assert!(
        body.lines().any(|l| l == "hopgate_active_sessions 1"),
        "{body}"
    );
    // The Create is counted by action and status, and its round trip to the host timed.
    assert!(
        body.lines()
            .any(|l| l == "hopgate_requests_total{action=\"Create\",status=\"200\"} 1"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l == "hopgate_backend_request_duration_seconds_count{action=\"Create\"} 1"),
        "{body}"
    );

    // A long-running command the host is busy with when the administrator steps in.
    let r = alice
        .post(
            "/wsman/standin",
            None,
            &command(to, &sid, "ping -t 127.0.0.1"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let command_id = element_text(&r.body, "CommandId").unwrap();
    assert!(base.standin.saw_command("ping"));

    let path = format!("/api/v1/sessions/{session_id}");
    let asked = std::time::Instant::now();
    let (status, body) = admin_request(admin, "DELETE", &path, Some(token)).await;
    let took = asked.elapsed();
    assert_eq!(status, 200, "{body}");
    // The host was told to terminate the command, and it had stopped before it answered;
    // all within the 2 s the issue gives.
    let signalled = base.standin.requests().into_iter().find(|r| {
        r["action"]
            .as_str()
            .is_some_and(|a| a.ends_with("/shell/Signal"))
            && r["command_id"] == command_id.to_uppercase().as_str()
    });
    let signalled = signalled.unwrap_or_else(|| panic!("{:#?}", base.standin.requests()));
    assert_eq!(signalled["status"], 200, "{signalled}");
    assert!(
        signalled["signal"]
            .as_str()
            .is_some_and(|c| c.ends_with("/terminate")),
        "{signalled}"
    );
    assert_eq!(signalled["command_done"], true, "{signalled}");
    assert!(
        took < std::time::Duration::from_secs(2),
        "terminate took {took:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["host_closed"], true, "{body}");
    // The host itself got a Delete for the shell, as the vaulted account.
    let deleted = base.standin.requests().into_iter().any(|r| {
        r["action"]
            .as_str()
            .is_some_and(|a| a.ends_with("/transfer/Delete"))
            && r["shell_id"] == sid.to_uppercase().as_str()
            && r["status"] == 200
    });
    assert!(deleted, "{:#?}", base.standin.requests());

    // The client's next request on that shell is refused and never reaches the host.
    let r = alice
        .post("/wsman/standin", None, &command(to, &sid, "whoami"))
        .await
        .unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("InvalidSelectors"), "{}", r.body);
    assert!(!base.standin.saw_command("whoami"));

    let log = d.join("audit-admin/audit.jsonl");
    let ok = crate::support::eventually(std::time::Duration::from_secs(5), || {
        crate::support::read_jsonl(&log)
            .iter()
            .any(|e| e["event"] == "admin.terminate" && e["session_id"] == session_id.as_str())
    })
    .await;
    assert!(ok, "{:#?}", crate::support::read_jsonl(&log));
    let (code, out, err) = hopgate(&["audit", "replay", p(&log), &session_id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("TERMINATED by admin api"), "{out}");
    assert!(
        out.contains("session ended: terminated by an administrator"),
        "{out}"
    );

    let _ = stop.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), task).await;
    base.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psrp_replay_shows_what_the_client_saw() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let mut a = gw.pypsrp_cert_args("wsman/standin");
    a.extend(["--ps".to_string(), "Get-Service -Name WinRM".to_string()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout().contains("WinRM"), "{run:?}");

    let mut a = gw.pypsrp_cert_args("wsman/standin");
    a.extend([
        "--pipeline".to_string(),
        r#"[[{"name": "Write-Warning", "params": {"Message": "disk almost full"}}], [{"name": "Write-Output", "params": {"InputObject": "after the warning"}}]]"#.to_string(),
    ]);
    let second = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(second.code, 0, "{second:?}");
    sessions_ended(&gw, 2).await;

    let psrp_sessions: Vec<String> = gw
        .audit()
        .iter()
        .filter(|e| e["event"] == "session.start" && e["shell_kind"] == "psrp")
        .map(|e| e["session_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(psrp_sessions.len(), 2, "{:#?}", gw.audit());

    // The first session's replay prints exactly the lines execute_ps returned.
    let (code, out, err) = hopgate(&["audit", "replay", p(&audit_file(&gw)), &psrp_sessions[0]]);
    assert_eq!(code, 0, "{err}");
    let printed: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with('[') && !l.starts_with('#'))
        .collect();
    let seen: Vec<&str> = run.stdout().split('\n').collect();
    assert_eq!(printed, seen, "replay:\n{out}");
    assert!(out.contains("(pipeline Completed)"), "{out}");

    // The second shows the warning as PowerShell prints it, and the output after it.
    let (code, out, err) = hopgate(&["audit", "replay", p(&audit_file(&gw)), &psrp_sessions[1]]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\nWARNING: disk almost full\n"), "{out}");
    assert!(out.contains("\nafter the warning\n"), "{out}");
    assert_eq!(second.stdout(), "after the warning", "{second:?}");

    // session.end carries the session's counts.
    let ends: Vec<_> = gw
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "session.end" && e["session_id"] == psrp_sessions[1].as_str())
        .collect();
    assert_eq!(ends.len(), 1, "{ends:#?}");
    assert_eq!(ends[0]["commands_allowed"], 1, "{ends:#?}");
    assert_eq!(ends[0]["commands_denied"], 0);
    assert!(ends[0]["output_bytes"].as_u64().unwrap() > 0, "{ends:#?}");
    gw.stop().await;
}

/// A tmpfs of `size` mounted at `dir` for one test, unmounted on drop.
struct TinyDisk(PathBuf);

impl TinyDisk {
    /// None when this machine does not let the tests mount (not root): the caller skips,
    /// except in CI, where the test must run.
    fn mount(dir: &Path, size: &str) -> Option<TinyDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("CI").is_err(),
                "CI must be able to mount a tmpfs (runs as root)"
            );
            eprintln!("skipped: cannot mount a tmpfs here (not root)");
            return None;
        }
        Some(TinyDisk(dir.to_path_buf()))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_new_sessions_and_keeps_what_was_written() {
    use crate::support::raw::{command, create_cmd_shell, shell_id, RawClient};
    let base = Gateway::start(GatewayOptions::default()).await;
    let d = base.dir.path();
    let audit = d.join("audit-full");
    let Some(_disk) = TinyDisk::mount(&audit, "256k") else {
        base.stop().await;
        return;
    };
    let text = std::fs::read_to_string(d.join("hopgate.toml"))
        .unwrap()
        .replace("dir = \"audit\"", "dir = \"audit-full\"");
    std::fs::write(d.join("hopgate-full.toml"), text).unwrap();
    let config = hopgate::config::Config::load(&d.join("hopgate-full.toml")).unwrap();
    let bound = hopgate::app::bind(config).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));

    let alice = RawClient::new(
        addr,
        &base.certs.ca,
        Some((&base.certs.client_cert, &base.certs.client_key)),
    );
    let to = "https://gw/wsman/standin";
    let r = alice
        .post("/wsman/standin", None, &create_cmd_shell(to))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = shell_id(&r.body).unwrap();
    let log = audit.join("audit.jsonl");
    let ok = crate::support::eventually(std::time::Duration::from_secs(5), || {
        crate::support::read_jsonl(&log)
            .iter()
            .any(|e| e["event"] == "session.start")
    })
    .await;
    assert!(ok);

    // The disk fills up (something else on the machine wrote a big file).
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(audit.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while filler.write_all(&block).is_ok() {}
    }
    // The session goes on: its next command needs an audit line that no longer fits.
    // Allowed or refused, the audit write behind it fails.
    alice
        .post("/wsman/standin", None, &command(to, &sid, "hostname"))
        .await
        .unwrap();

    // New sessions are refused with a clear fault once the writer has failed.
    let r = refused_create(&alice, to)
        .await
        .expect("a Create must be refused once the audit disk is full");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("AccessDenied"), "{}", r.body);
    assert!(r.body.contains("audit log is unavailable"), "{}", r.body);

    // Everything already on disk still verifies: no half line was left behind.
    let (code, out, err) = hopgate(&["audit", "verify", p(&log)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(crate::support::read_jsonl(&log)
        .iter()
        .any(|e| e["event"] == "session.start"));

    let _ = stop.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), task).await;
    base.stop().await;
}

/// The sessions `audit sessions --command NAME` lists (first column).
fn sessions_running(gw: &Gateway, name: &str) -> Vec<String> {
    let (code, out, err) = hopgate(&["audit", "sessions", p(&audit_file(gw)), "--command", name]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(str::to_string)
        .collect()
}

/// pywinrm's `run_ps` (`powershell -encodedcommand <base64>` in a cmd shell), pypsrp's
/// `execute_ps` (`Invoke-Expression -Command <script> | Out-String -Stream`) and the Go
/// client's `winrm.Powershell` line each leave the decoded script in the record:
/// `audit sessions --command Get-Service` finds the session and `audit replay <prefix>`
/// shows the script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoded_commands_are_searched_and_replayed() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let mut a = vec![
        "--endpoint".to_string(),
        gw.url("/wsman/standin"),
        "--transport".into(),
        "certificate".into(),
        "--cert".into(),
        gw.certs.client_cert.display().to_string(),
        "--key".into(),
        gw.certs.client_key.display().to_string(),
        "--ca".into(),
        gw.certs.ca.display().to_string(),
    ];
    a.extend(["--ps".to_string(), "Get-Service".to_string()]);
    let run_ps = python("tests/clients/pywinrm_client.py", &a).await;
    assert_eq!(run_ps.code, 0, "{run_ps:?}");
    sessions_ended(&gw, 1).await;

    let mut a = gw.pypsrp_cert_args("wsman/standin");
    a.extend(["--ps".to_string(), "Get-Service".to_string()]);
    let execute_ps = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(execute_ps.code, 0, "{execute_ps:?}");
    sessions_ended(&gw, 2).await;

    let audit = gw.audit();
    let allowed: Vec<_> = audit
        .iter()
        .filter(|e| e["event"] == "command.allowed")
        .collect();
    let by_via = |via: &str| {
        allowed
            .iter()
            .find(|e| {
                e["decoded"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["via"] == via))
            })
            .unwrap_or_else(|| panic!("no {via} in {allowed:#?}"))
    };
    let encoded = by_via("EncodedCommand");
    assert_eq!(encoded["decoded"][0]["text"], "Get-Service", "{encoded:#?}");
    assert!(
        !encoded["command"].to_string().contains("Get-Service"),
        "the raw form is base64: {encoded:#?}"
    );
    let iex = by_via("Invoke-Expression");
    assert_eq!(iex["decoded"][0]["text"], "Get-Service", "{iex:#?}");

    // Both sessions are found by the decoded command's name.
    let found = sessions_running(&gw, "Get-Service");
    let ids: Vec<String> = [encoded, iex]
        .iter()
        .map(|e| e["session_id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        assert!(found.contains(id), "{id} not in {found:?}");
    }
    assert!(sessions_running(&gw, "Stop-Computer").is_empty());

    // replay takes a unique prefix and shows the decoded script under its raw form.
    for (id, via) in ids.iter().zip(["EncodedCommand", "Invoke-Expression"]) {
        let prefix = &id[..id.len() - 4];
        let (code, out, err) = hopgate(&["audit", "replay", p(&audit_file(&gw)), prefix]);
        assert_eq!(code, 0, "{err}");
        assert!(out.starts_with(&format!("# session {id}:")), "{out}");
        assert!(out.contains(&format!("   {via}> Get-Service\n")), "{out}");
    }
    // A prefix both ids begin with is refused, naming both.
    let common: String = ids[0]
        .chars()
        .zip(ids[1].chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    if !common.is_empty() {
        let (code, _, err) = hopgate(&["audit", "replay", p(&audit_file(&gw)), &common]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&ids[0]) && err.contains(&ids[1]), "{err}");
    }
    let (code, _, err) = hopgate(&["audit", "replay", p(&audit_file(&gw)), "no-such"]);
    assert_eq!(code, 2, "{err}");

    // The log these sessions wrote verifies.
    let (code, out, err) = hopgate(&["audit", "verify", p(&audit_dir(&gw))]);
    assert_eq!(code, 0, "{out}{err}");
    gw.stop().await;
}

/// The Go client's `winrm.Powershell(script)` line (`powershell.exe -EncodedCommand
/// <base64>`, run with `RunWithString`) is found by the decoded command's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_winrm_powershell_is_found_by_its_decoded_command() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let bin_dir = gw.dir.path().join("gobin");
    let build = tokio::process::Command::new("bash")
        .arg(crate::support::repo().join("tests/clients/go/build.sh"))
        .arg(&bin_dir)
        .output()
        .await
        .unwrap();
    assert!(
        build.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let b64 = {
        use base64::Engine as _;
        let utf16: Vec<u8> = "Get-Service"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        base64::engine::general_purpose::STANDARD.encode(utf16)
    };
    let args: Vec<String> = vec![
        "-host".into(),
        "127.0.0.1".into(),
        "-port".into(),
        gw.addr.port().to_string(),
        "-https".into(),
        "-cacert".into(),
        gw.certs.ca.display().to_string(),
        "-cert".into(),
        gw.certs.client_cert.display().to_string(),
        "-key".into(),
        gw.certs.client_key.display().to_string(),
        "-cmd".into(),
        format!("powershell.exe -EncodedCommand {b64}"),
    ];
    let bin = bin_dir.join("winrm_client");
    let run = crate::support::run_client(bin.to_str().unwrap(), &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    sessions_ended(&gw, 1).await;
    let id = gw
        .audit()
        .iter()
        .find(|e| e["event"] == "command.allowed")
        .map(|e| e["session_id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{:#?}", gw.audit()));
    assert_eq!(
        sessions_running(&gw, "Get-Service"),
        std::slice::from_ref(&id)
    );
    let (code, out, err) = hopgate(&["audit", "replay", p(&audit_file(&gw)), &id[..8]]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("   EncodedCommand> Get-Service\n"), "{out}");
    let (code, out, err) = hopgate(&["audit", "verify", p(&audit_dir(&gw))]);
    assert_eq!(code, 0, "{out}{err}");
    gw.stop().await;
}
