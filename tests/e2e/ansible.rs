//! Real ansible-core (from PyPI, with the `ansible.windows` collection) through the gateway
//! to the stand-in host, on both of its connections (issue #13). The stand-in runs the small
//! part of Ansible's exec wrapper the modules need (tests/standin/ansible_exec.py), so these
//! tests see what Ansible reports, not only what the gateway decided.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::support::{python, repo, ClientRun, Gateway, GatewayOptions};

const USER: &str = "ansible-runner";

/// Where the controller's ansible-core and ansible.windows are installed.
fn installed() -> (String, String) {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, ansible, ansible_collections.ansible.windows as w; \
             print(os.path.dirname(ansible.__file__)); print(list(w.__path__)[0])",
        ])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(core), Some(windows)) => (core.to_string(), windows.to_string()),
        _ => panic!(
            "ansible-core and ansible.windows must be installed (tests/requirements.txt): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The shipped `policies/ansible-service-ops.toml`, trusting the installed directories,
/// on the stand-in host; plus `extra` roles.
fn service_ops_policy(extra: &str) -> String {
    let (core, windows) = installed();
    let text = std::fs::read_to_string(repo().join("policies/ansible-service-ops.toml")).unwrap();
    let text = text
        .replace(
            r#"dirs = ["trusted/ansible-core", "trusted/ansible.windows"]"#,
            &format!(r#"dirs = ["{core}", "{windows}"]"#),
        )
        .replace(
            r#"hosts = { labels = ["windows"] }"#,
            r#"hosts = { names = ["standin"] }"#,
        );
    assert!(
        text.contains(&core),
        "the shipped policy's trust line changed"
    );
    format!("{text}\n{extra}")
}

/// A break-glass role: every module of the trusted collection, but never Stop-Computer.
fn full_policy() -> String {
    let (core, windows) = installed();
    format!(
        r#"
[[role]]
name = "ansible-full"
principals = {{ groups = ["ansible-full"] }}
hosts = {{ names = ["standin"] }}
[role.trust]
dirs = ["{core}", "{windows}"]
[role.cmd]
allow_metacharacters = true
commands = [{{ pattern = ".*" }}]
[role.psrp]
language = "full"
visible_cmdlets = ["*"]
visible_external_commands = ["*"]
[role.deny]
cmdlets = ["Stop-Computer"]
"#
    )
}

async fn start(policy: String) -> Gateway {
    Gateway::start(GatewayOptions {
        policies: vec![("ansible.toml", policy)],
        default_host: Some("standin"),
    })
    .await
}

async fn ansible(
    gw: &Gateway,
    connection: &str,
    group: &str,
    module: &str,
    args: &str,
    extra: &[&str],
) -> ClientRun {
    let token = gw.token(USER, &[group], None, Duration::from_secs(600));
    let mut a: Vec<String> = [
        "--connection",
        connection,
        "--port",
        &gw.addr.port().to_string(),
        "--path",
        "wsman/standin",
        "--user",
        USER,
        "--password",
        &token,
        "--ca",
        &gw.certs.ca.display().to_string(),
        "--module",
        module,
        "--args",
        args,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    python("tests/clients/ansible_client.py", &a).await
}

/// `hopgate audit ARGS...` in this process: (exit code, stdout).
fn audit_cli(args: &[&str]) -> (i32, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = hopgate::cli::audit::run_args(args, &mut out, &mut err);
    (
        i32::from(code),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        ),
    )
}

/// Session ids `audit sessions --command NAME` lists.
fn sessions_running(gw: &Gateway, name: &str) -> Vec<String> {
    let audit = gw.dir.path().join("audit/audit.jsonl");
    let (code, out) = audit_cli(&["sessions", audit.to_str().unwrap(), "--command", name]);
    assert_eq!(code, 0, "{out}");
    out.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect()
}

fn replay(gw: &Gateway, session: &str) -> String {
    let audit = gw.dir.path().join("audit/audit.jsonl");
    let (code, out) = audit_cli(&["replay", audit.to_str().unwrap(), session]);
    assert_eq!(code, 0, "{out}");
    out
}

#[track_caller]
fn assert_ok(run: &ClientRun) -> &Value {
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json["status"], "ok", "{run:?}");
    &run.json["result"]
}

#[track_caller]
fn assert_denied(run: &ClientRun) {
    assert_eq!(run.code, 0, "{run:?}");
    assert_ne!(run.json["status"], "ok", "{run:?}");
    let text = run.json["result"].to_string();
    assert!(
        text.contains("hopgate") || text.contains("denied"),
        "a clear message: {text}"
    );
}

/// Text the stand-in host received as stdin or PSRP messages.
fn host_input(gw: &Gateway) -> String {
    gw.standin
        .requests()
        .iter()
        .map(|r| format!("{} {}", r["stdin"], r["psrp"]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A copy of win_ping whose code differs by one line, under the same name.
fn edited_win_ping(dir: &std::path::Path) -> PathBuf {
    let (_, windows) = installed();
    let code = std::fs::read_to_string(format!("{windows}/plugins/modules/win_ping.ps1")).unwrap();
    let edited = code.replace(
        "$module.ExitJson()",
        "Stop-Computer -Force\n$module.ExitJson()",
    );
    assert_ne!(code, edited);
    std::fs::write(dir.join("win_ping.ps1"), edited).unwrap();
    dir.to_path_buf()
}

async fn service_ops_on(connection: &str) {
    let gw = start(service_ops_policy("")).await;
    let g = "ansible-service-ops";

    let run = ansible(&gw, connection, g, "ansible.windows.win_ping", "", &[]).await;
    assert_eq!(assert_ok(&run)["ping"], "pong", "{run:?}");
    let run = ansible(
        &gw,
        connection,
        g,
        "ansible.windows.win_service",
        "name=Spooler state=restarted",
        &[],
    )
    .await;
    assert_eq!(assert_ok(&run)["changed"], true, "{run:?}");

    for (module, args) in [
        ("ansible.windows.win_service", "name=WinRM state=stopped"),
        ("ansible.windows.win_shell", "Write-Output from-win-shell"),
        ("ansible.windows.win_command", "whoami.exe /all"),
    ] {
        let run = ansible(&gw, connection, g, module, args, &[]).await;
        assert_denied(&run);
    }
    let tmp = tempfile::tempdir().unwrap();
    let lib = edited_win_ping(tmp.path());
    let run = ansible(
        &gw,
        connection,
        g,
        "win_ping",
        "",
        &["--module-dir", lib.to_str().unwrap()],
    )
    .await;
    assert_denied(&run);

    let seen = host_input(&gw);
    for never in [
        "WinRM",
        "win_shell",
        "win_command",
        "from-win-shell",
        "Stop-Computer",
    ] {
        assert!(!seen.contains(never), "{never} reached the host");
    }
    assert!(
        seen.contains("win_service"),
        "the allowed module did reach it"
    );

    // Check mode, and a password-like argument (refused: not in the role's arguments).
    let run = ansible(
        &gw,
        connection,
        g,
        "ansible.windows.win_ping",
        "",
        &["--check"],
    )
    .await;
    assert_ok(&run);
    let run = ansible(
        &gw,
        connection,
        g,
        "ansible.windows.win_service",
        "name=Spooler state=started password=Sup3rS3cret!",
        &[],
    )
    .await;
    assert_denied(&run);

    // Issue #12: `raw` over winrm is found by the command it ran, and replay shows it
    // decoded (the raw record holds only -EncodedCommand base64).
    if connection == "winrm" {
        let run = ansible(&gw, connection, g, "raw", "Get-Service -Name Spooler", &[]).await;
        assert_ok(&run);
        let sessions = sessions_running(&gw, "Get-Service");
        assert!(!sessions.is_empty(), "audit sessions --command Get-Service");
        let shown: String = sessions.iter().map(|s| replay(&gw, s)).collect();
        assert!(shown.contains("Get-Service -Name Spooler"), "{shown}");
    }

    // The record: one ansible.module event per module decision, with its arguments
    // (redacted), check mode and decision; an ansible.result with what the module said.
    assert!(
        gw.audit_has(|e| e["event"] == "ansible.result"
            && e["module"] == "ansible.windows.win_service"
            && e["changed"] == true)
            .await,
        "{:#?}",
        gw.audit()
    );
    let events = gw.audit();
    let module = |pred: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .find(|e| e["event"] == "ansible.module" && pred(e))
            .cloned()
    };
    let restart = module(&|e| e["args"]["state"] == "restarted").expect("win_service event");
    assert_eq!(restart["module"], "ansible.windows.win_service");
    assert_eq!(restart["args"]["name"], "Spooler");
    assert_eq!(restart["decision"], "allowed");
    assert_eq!(restart["check_mode"], false);
    assert_eq!(restart["principal"], USER);
    let stop = module(&|e| e["args"]["name"] == "WinRM").expect("the denied module");
    assert_eq!(stop["decision"], "denied");
    let shell = module(&|e| e["module"] == "ansible.windows.win_shell").expect("win_shell");
    assert_eq!(shell["decision"], "denied");
    assert!(
        module(&|e| e["module"] == "ansible.windows.win_ping" && e["check_mode"] == true).is_some()
    );
    let secret = module(&|e| e["args"]["state"] == "started").expect("the password run");
    assert_eq!(secret["args"]["password"], "********");
    assert!(!events
        .iter()
        .any(|e| e.to_string().contains("Sup3rS3cret!")));
    assert!(events.iter().any(|e| e["event"] == "ansible.result"
        && e["module"] == "ansible.windows.win_ping"
        && e["changed"] == false));
    // The edited win_ping is no module the gateway knows: refused as code, not named.
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "ansible.module"
                && e["module"] == "ansible.windows.win_ping"
                && e["check_mode"] == false)
            .count(),
        1,
        "only the real win_ping"
    );
    assert!(
        events.iter().any(|e| e["event"] == "command.allowed"
            && e.to_string()
                .contains("ansible.windows.win_service name=Spooler state=restarted")),
        "the decoded form names the module too"
    );
    assert!(!sessions_running(&gw, "ansible.windows.win_service").is_empty());
    let audit = gw.dir.path().join("audit");
    let (code, out) = audit_cli(&["verify", audit.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_service_ops_over_winrm() {
    service_ops_on("winrm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_service_ops_over_psrp() {
    service_ops_on("psrp").await;
}

async fn full_role_on(connection: &str) {
    let gw = start(full_policy()).await;
    let g = "ansible-full";
    let run = ansible(&gw, connection, g, "ansible.windows.win_ping", "", &[]).await;
    assert_eq!(assert_ok(&run)["ping"], "pong", "{run:?}");
    let run = ansible(
        &gw,
        connection,
        g,
        "ansible.windows.win_shell",
        "Get-Service -Name W32Time",
        &[],
    )
    .await;
    assert_eq!(assert_ok(&run)["rc"], 0, "{run:?}");
    // Issue #12: the script win_shell ran is in the record.
    assert!(
        gw.audit_has(|e| e["event"] == "ansible.module"
            && e["module"] == "ansible.windows.win_shell"
            && e["args"]["_raw_params"] == "Get-Service -Name W32Time")
            .await,
        "{:#?}",
        gw.audit()
    );
    let run = ansible(&gw, connection, g, "raw", "Stop-Computer", &[]).await;
    assert_denied(&run);

    // A 1 MB file: winrm sends it as stdin chunks, psrp as pipeline input.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("big.bin");
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let run = ansible(
        &gw,
        connection,
        g,
        "ansible.windows.win_copy",
        &format!("src={} dest=C:/Temp/big.bin", src.display()),
        &[],
    )
    .await;
    let result = assert_ok(&run);
    assert_eq!(result["changed"], true, "{run:?}");
    assert_eq!(result["size"], 1024 * 1024, "{run:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_full_role_over_winrm() {
    full_role_on("winrm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ansible_full_role_over_psrp() {
    full_role_on("psrp").await;
}
