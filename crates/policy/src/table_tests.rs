//! Table-driven allow/deny tests over the shipped example roles in `policies/`,
//! including the bypass attempts a red team tries first. Expected outcomes follow the
//! role files and PowerShell / cmd.exe semantics (about_Parsing, about_Aliases,
//! `cmd /?`, `powershell -?`), not the engine's output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::test_ops::*;
use super::test_support::{lint, load_dir};
use super::*;

struct Who {
    user: &'static str,
    groups: &'static [&'static str],
    host: &'static str,
}

const ALICE: Who = Who {
    user: "alice@hopgate.test",
    groups: &[],
    host: "demo-host",
};
const BOB_OPS: Who = Who {
    user: "bob@hopgate.test",
    groups: &["OPS"],
    host: "demo-host",
};
const MALLORY: Who = Who {
    user: "mallory@hopgate.test",
    groups: &["users"],
    host: "demo-host",
};
const ALICE_ELSEWHERE: Who = Who {
    user: "alice@hopgate.test",
    groups: &[],
    host: "srv-01",
};
const OPER: Who = Who {
    user: "carol",
    groups: &["operators"],
    host: "srv-01",
};
const OPER_LABEL: Who = Who {
    user: "carol",
    groups: &["operators"],
    host: "win-77",
};
const OPER_OTHER: Who = Who {
    user: "carol",
    groups: &["operators"],
    host: "web-01",
};
const SVC: Who = Who {
    user: "dave",
    groups: &["svc-restarters"],
    host: "app-01",
};
const DNS: Who = Who {
    user: "erin",
    groups: &["dns-admins"],
    host: "dns-01",
};
const ADMIN: Who = Who {
    user: "root",
    groups: &["hopgate-admins"],
    host: "db-07",
};
const ADMIN_OPS: Who = Who {
    user: "root",
    groups: &["hopgate-admins", "ops"],
    host: "demo-host",
};

fn labels(host: &str) -> &'static [&'static str] {
    match host {
        "win-77" => &["windows-server"],
        "app-01" => &["app"],
        "dns-01" => &["dns"],
        _ => &[],
    }
}

const A: bool = true;
const D: bool = false;

fn cases() -> Vec<(Who, Op, bool)> {
    vec![
        // ---- demo role, cmd shell ----
        (ALICE, cmd("hostname"), A),
        (ALICE, cmd("whoami"), A),
        (ALICE, cmd("ipconfig"), A),
        (ALICE, cmd("ipconfig /all"), A),
        (ALICE, cmd("IPCONFIG   /ALL"), A),
        (ALICE, cmd("echo hello world"), A),
        (ALICE, cmd("exit 3"), A),
        (ALICE, cmd("hostname "), A),
        (ALICE, cmd("hostname & whoami"), D),
        (ALICE, cmd("hostname && calc"), D),
        (ALICE, cmd("hostname || calc"), D),
        (ALICE, cmd("hostname | findstr x"), D),
        (ALICE, cmd("whoami > C:\\out.txt"), D),
        (ALICE, cmd("whoami < in.txt"), D),
        (ALICE, cmd("echo hi ^& calc"), D),
        (ALICE, cmd("%COMSPEC% /c calc"), D),
        (ALICE, cmd("echo %PATH%"), D),
        (ALICE, cmd("echo !x!"), D),
        (ALICE, cmd("ipconfig /release"), D),
        (ALICE, cmd("hostname\ncalc"), D),
        (ALICE, cmd("hostname\r\ncalc"), D),
        (ALICE, cmd("\"hostname & calc\""), D),
        (ALICE, cmd("cmd /c hostname"), A),
        (ALICE, cmd("cmd /c calc"), D),
        (ALICE, cmd("cmd.exe /c \"hostname & calc\""), D),
        (ALICE, cmd("C:\\Windows\\System32\\cmd.exe /c whoami"), A),
        (ALICE, cmd("cmd /q /c ipconfig /all"), A),
        (ALICE, cmd("cmd /v:on /c echo x"), D),
        (ALICE, cmd("cmd /c cmd /c calc"), D),
        (ALICE, cmd("net user"), D),
        (ALICE, cmd("powershell -Command Get-Service"), A),
        (ALICE, Op::Cmd(format!("powershell -EncodedCommand {}", enc("Get-Process"))), A),
        (ALICE, Op::Cmd(format!("powershell -enc {}", enc("Stop-Computer"))), D),
        (ALICE, Op::Cmd(format!("powershell -e {}", enc("Get-Date; Restart-Computer"))), D),
        (ALICE, Op::Cmd(format!("powershell -ec {}", enc("Get-Service | Stop-Service"))), D),
        (ALICE, Op::Cmd(format!("powershell -EnCoDeD {}", enc("Stop-Computer -Force"))), D),
        (ALICE, Op::Cmd(format!("PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {}", enc("Get-Service"))), A),
        (ALICE, Op::Cmd(format!("powershell -encodedcommand {}", enc("$x = 1"))), D),
        (ALICE, Op::Cmd(format!("powershell -c \"powershell -enc {}\"", enc("Stop-Computer"))), D),
        (ALICE, Op::Cmd(format!("powershell -c \"powershell -enc {}\"", enc("Get-Date"))), A),
        (ALICE, cmd("powershell -c \"cmd /c calc\""), D),
        (ALICE, cmd("powershell -c \"cmd /c hostname\""), A),
        (ALICE, cmd("powershell -c \"Get-Service | Select-Object Name\""), A),
        (ALICE, cmd("powershell -File C:\\x.ps1"), D),
        (ALICE, cmd("powershell -NoProfile -Foo x"), D),
        (ALICE, cmd("powershell -"), A),
        (ALICE, cmd("pwsh -c Get-Date"), A),
        (ALICE, cmd("pwsh C:\\x.ps1"), D),
        (ALICE, Op::Skip("hostname & whoami".into()), D),
        (ALICE, Op::Skip("whoami".into()), A),
        (ALICE, Op::Args("ipconfig", vec!["/all".into()]), A),
        (ALICE, Op::Args("powershell", vec!["-encodedcommand".into(), enc("Get-Service")]), A),
        (ALICE, Op::Args("powershell", vec!["-encodedcommand".into(), enc("iex 'Stop-Computer'")]), D),
        (ALICE, Op::Args("powershell", vec!["-encodedcommand".into(), "%%%not-base64".into()]), D),
        // ---- demo role, stdin-fed interpreters ----
        (ALICE, Op::Stdin("cmd", "hostname\r\nwhoami\r\nexit\r\n".into()), A),
        (ALICE, Op::Stdin("cmd", "hostname\r\ncalc\r\n".into()), D),
        (ALICE, Op::Stdin("cmd", "whoami & calc\r\n".into()), D),
        (ALICE, Op::Stdin("powershell -", "Get-Service\r\n".into()), A),
        (ALICE, Op::Stdin("powershell -NoProfile -Command -", "Stop-Computer\r\n".into()), D),
        (ALICE, Op::Stdin("hostname", "anything\r\n".into()), D),
        (ALICE, Op::Stdin("powershell -c Get-Date", "Stop-Computer\r\n".into()), D),
        (ALICE, Op::Stdin("cmd", format!("powershell -enc {}\r\n", enc("Stop-Computer"))), D),
        (ALICE, Op::Stdin("cmd", format!("powershell -enc {}\r\n", enc("Get-Date"))), A),
        (ALICE, cmd("CMD.EXE /C whoami"), A),
        (ALICE, cmd("cmd /cwhoami"), A),
        (ALICE, cmd("cmd /c\"hostname & calc\""), D),
        (ALICE, cmd("powershell /c Get-Date"), A),
        (ALICE, cmd("powershell -co Get-Date"), A),
        (ALICE, cmd("powershell -c Stop-Computer"), D),
        (ALICE, cmd("powershell -c \"& {Get-Date}\""), D),
        (ALICE, cmd("powershell.exe -NoExit -c Get-Date"), A),
        // ---- demo role, PSRP commands ----
        (ALICE, one(c("Get-Service", vec![])), A),
        (ALICE, one(c("get-service", vec![])), A),
        (ALICE, one(c("GET-PROCESS", vec![named("Name", s("x"))])), A),
        (ALICE, one(c("Stop-Computer", vec![])), D),
        (ALICE, one(c("Microsoft.PowerShell.Management\\Stop-Computer", vec![])), D),
        (ALICE, one(c("Restart-Computer", vec![named("Force", ArgValue::Null)])), D),
        (ALICE, one(c("Stop-Service", vec![pos(s("Spooler"))])), D),
        (ALICE, one(c("gsv", vec![])), A),
        (ALICE, one(c("Get-Command", vec![named("Name", s("*"))])), A),
        (ALICE, one(c("Get-Help", vec![pos(s("Get-Service"))])), A),
        (ALICE, pipe(vec![vec![c("Get-Process", vec![]), c("Select-Object", vec![named("First", ArgValue::Number("5".into()))]), c("Out-Default", vec![])]]), A),
        (ALICE, pipe(vec![vec![c("Get-Service", vec![])], vec![c("Stop-Computer", vec![])]]), D),
        (ALICE, pipe(vec![vec![c("Get-Service", vec![])], vec![c("Get-Service", vec![])], vec![c("Restart-Computer", vec![])]]), D),
        (ALICE, pipe(vec![vec![c("Get-Service", vec![]), c("Stop-Service", vec![])]]), D),
        (ALICE, execute_ps("Get-Service"), A),
        (ALICE, execute_ps("Get-Service; Stop-Computer"), D),
        (ALICE, execute_ps("$env:USERNAME"), D),
        (ALICE, execute_ps("iex 'Restart-Computer'"), D),
        (ALICE, one(c("Invoke-Expression", vec![pos(s("hostname"))])), A),
        // Formatting for interactive clients: a session command like Out-Default.
        (ALICE, one(c("Out-String", vec![])), A),
        (ALICE, one(c("Invoke-Command", vec![named("ScriptBlock", ArgValue::ScriptBlock("Get-Date".into()))])), D),
        (ALICE, one(c("Write-Output", vec![named("InputObject", ArgValue::ScriptBlock("Stop-Computer".into()))])), D),
        (ALICE, one(c("Invoke-Expression", vec![named("Command", ArgValue::Other("Deserialized.System.Object".into()))])), D),
        (ALICE, pipe(vec![vec![c("Write-Output", vec![pos(s("Stop-Computer"))]), c("Invoke-Expression", vec![])]]), D),
        // ---- demo role, scripts (restricted language) ----
        (ALICE, ps("Get-Service | Select-Object Name"), A),
        (ALICE, ps("Get-Service\nexit $LASTEXITCODE"), A),
        (ALICE, ps("Write-Output 'hello', \"world\" 42"), A),
        (ALICE, ps("iex 'Stop-Computer'"), D),
        (ALICE, ps("& (gcm Stop-Computer)"), D),
        (ALICE, ps("&(gcm Stop-*)"), D),
        (ALICE, ps(". { Stop-Computer }"), D),
        (ALICE, ps("Get-Service | % { $_.Stop() }"), D),
        (ALICE, ps("Get-Process | % Kill"), D),
        (ALICE, ps("Get-Service \u{2013}Name Spooler"), A),
        (ALICE, ps("Get-Service \u{2014}Name Spooler"), A),
        (ALICE, ps("Get-Service \u{2015}Name Spooler"), A),
        (ALICE, ps("Stop\u{2015}Computer"), D),
        (ALICE, ps("Stop\u{2013}Computer"), D),
        (ALICE, ps("\u{17F}top-Computer"), D),
        (ALICE, ps("STOP-COMPUTER"), D),
        (ALICE, ps("Get-Date; Restart-Computer"), D),
        (ALICE, ps("Get-Date\r\nRestart-Computer"), D),
        (ALICE, ps("Get-Date | Out-File C:\\x"), D),
        (ALICE, ps("Get-Date > C:\\x"), D),
        (ALICE, Op::Ps(format!("powershell -enc {}", enc("Stop-Computer"))), D),
        (ALICE, ps("powershell -c Get-Date"), A),
        (ALICE, ps("powershell.exe -NoProfile -Command Restart-Computer"), D),
        (ALICE, ps("cmd /c 'hostname & calc'"), D),
        (ALICE, ps("cmd /c hostname"), A),
        (ALICE, ps("Start-Process calc"), D),
        (ALICE, ps("[Diagnostics.Process]::Start('calc')"), D),
        (ALICE, ps("Invoke-Expression -Command 'Get-Date'"), A),
        (ALICE, ps("'Stop-Computer' | iex"), D),
        (ALICE, ps("Write-Output (Stop-Computer)"), D),
        (ALICE, ps("Write-Output $(Stop-Computer)"), D),
        (ALICE, ps("Write-Output \"$(Stop-Computer)\""), D),
        (ALICE, ps("I`nvoke-Expression Stop-Computer"), D),
        (ALICE, ps("Get-Date -Format \"yyyy\"; hostname"), A),
        (ALICE, ps("C:\\Windows\\System32\\hostname.exe"), D),
        (ALICE, ps("whoami"), D),
        (ALICE, ps("Set-Alias Get-Date Stop-Computer; Get-Date"), D),
        (ALICE, ps("function Get-Date { Stop-Computer }; Get-Date"), D),
        (ALICE, ps("Get-Date 2>&1"), D),
        (ALICE, ps("Get-Date --% x"), D),
        (ALICE, ps("& 'Stop-Computer'"), D),
        (ALICE, ps("Get-Date | iex"), D),
        (ALICE, ps("Write-Output 'Stop-Computer' | powershell -"), D),
        (ALICE, ps("Write-Output 'calc' | cmd"), D),
        (ALICE, ps("Get-Service -Name:Spooler"), A),
        (ALICE, ps("Get-Service -Name Spooler | Out-Default"), A),
        (ALICE, ps("ſal x Stop-Computer"), D),
        (ALICE, one(c("Invoke-Expression", vec![named("Command", s("Get-Date")), pos(s("Stop-Computer"))])), D),
        (ALICE, one(c("Invoke-Expression", vec![named("C", s("Restart-Computer"))])), D),
        (ALICE, one(c("Microsoft.PowerShell.Utility\\Invoke-Expression", vec![pos(s("Stop-Computer"))])), D),
        (ALICE, ps("Get-Date\u{0085}Stop-Computer"), D),
        (ALICE, ps("Write-Output a\u{2028}Restart-Computer"), D),
        (ALICE, ps("Get-Date\u{200B}; Get-Date"), D),
        (ALICE, ps("!Stop-Computer"), D),
        (ALICE, one(c("Stop-Comp*", vec![])), D),
        (ALICE, one(c("Get-Servic?", vec![])), D),
        // ---- demo role, metadata and shells ----
        (ALICE, meta(&["Get-Service"]), A),
        (ALICE, meta(&["Stop-Computer"]), D),
        (ALICE, meta(&["*"]), A),
        (ALICE, meta(&["Get-Service", "Invoke-Expression"]), D),
        (ALICE, Op::OpenPsrp("Microsoft.PowerShell"), A),
        (ALICE, Op::OpenCmd, A),
        // ---- principals and hosts ----
        (MALLORY, cmd("hostname"), D),
        (MALLORY, Op::OpenCmd, D),
        (ALICE_ELSEWHERE, cmd("hostname"), D),
        (BOB_OPS, ps("Get-Date"), A),
        (BOB_OPS, cmd("whoami"), A),
        // ---- read-only operator ----
        (OPER, one(c("Get-Service", vec![])), A),
        (OPER, one(c("Get-Service", vec![named("ComputerName", s("dc01"))])), D),
        (OPER, one(c("Get-Service", vec![named("ComputerName:", s("dc01"))])), D),
        (OPER, one(c("Get-Service", vec![named(" -CN ", s("dc01"))])), D),
        (OPER, ps("Get-Service -Comp dc01"), D),
        (OPER, ps("Get-Service -cn dc01"), D),
        (OPER, ps("Get-Service -C dc01"), D),
        (OPER, ps("Get-Service -Name WinRM | Format-List"), A),
        (OPER, ps("Get-WinEvent -LogName System -MaxEvents 10"), A),
        (OPER, ps("Invoke-Command -ScriptBlock { hostname }"), D),
        (OPER, execute_ps("Get-Service -Name WinRM"), A),
        (OPER, execute_ps("Invoke-Command -ScriptBlock { hostname }"), D),
        (OPER, ps("whoami"), A),
        (OPER, ps("C:\\Windows\\System32\\whoami.exe"), A),
        (OPER, ps("C:\\Temp\\whoami.exe"), D),
        (OPER, ps(".\\whoami.exe"), D),
        (OPER, cmd("sc query Spooler"), A),
        (OPER, cmd("sc query Spooler & sc stop Spooler"), D),
        (OPER, cmd("sc stop Spooler"), D),
        (OPER, ps("sc stop spooler"), D),
        (OPER, cmd("dir C:\\Windows"), A),
        (OPER, cmd("dir C:\\Windows > C:\\x.txt"), D),
        (OPER_LABEL, ps("Get-Date"), A),
        (OPER_OTHER, ps("Get-Date"), D),
        // ---- service restarter (parameter rules) ----
        (SVC, one(c("Restart-Service", vec![named("Name", s("Spooler"))])), A),
        (SVC, one(c("Restart-Service", vec![named("Name", s("spooler"))])), A),
        (SVC, one(c("Restart-Service", vec![named("-Name", s("W32Time"))])), A),
        (SVC, one(c("Restart-Service", vec![named("Name", s("WinRM"))])), D),
        (SVC, ps("Restart-Service Spooler"), A),
        (SVC, ps("Restart-Service WinRM"), D),
        (SVC, ps("Restart-Service -N Spooler"), A),
        (SVC, ps("restart-service -NAME:W32Time"), A),
        (SVC, ps("Restart-Service -Name Spooler,W32Time"), A),
        (SVC, ps("Restart-Service -Name Spooler,WinRM"), D),
        (SVC, ps("Restart-Service -Force WinRM"), D),
        (SVC, ps("Restart-Service -Force Spooler"), A),
        (SVC, ps("Restart-Service -Name Spooler -PassThru"), D),
        (SVC, ps("Restart-Service -Name Spooler -ErrorVariable e"), D),
        (SVC, ps("Restart-Service -Name Spooler -ev e"), D),
        (SVC, ps("Restart-Service -Name Spooler -ErrorAction Stop"), A),
        (SVC, ps("Restart-Service -Name Spooler -ea Stop"), A),
        (SVC, ps("Restart-Service -Name 'Spooler; Stop-Computer'"), D),
        (SVC, ps("Restart-Service -Name Spooler; Restart-Service -Name WinRM"), D),
        (SVC, one(c("Restart-Service", vec![named("Name", ArgValue::ScriptBlock("Spooler".into()))])), D),
        (SVC, one(c("Restart-Service", vec![named("Name", ArgValue::Secure)])), D),
        (SVC, one(c("Restart-Service", vec![named("Name", ArgValue::Null)])), D),
        (SVC, one(c("Restart-Service", vec![named("DisplayName", s("Print Spooler"))])), D),
        (SVC, ps("Start-Service -Name Spooler"), A),
        (SVC, ps("Start-Service -Name SpoolerX"), D),
        (SVC, ps("Start-Service -Name xSpooler"), D),
        (SVC, ps("Stop-Service -Name 'Spooler|W32Time'"), D),
        (SVC, ps("Get-Service"), A),
        (SVC, ps("Get-Service -Name Spooler"), A),
        (SVC, cmd("net stop Spooler"), A),
        (SVC, cmd("net stop WinRM"), D),
        (SVC, cmd("net user"), D),
        (SVC, cmd("net user admin P4ss /add"), D),
        (SVC, cmd("cmd /c net user"), D),
        // ---- DNS admin (JEA .psrc import, no scripts) ----
        (DNS, one(c("Get-DnsServerZone", vec![])), A),
        (DNS, one(c("Add-DnsServerResourceRecordA", vec![named("ZoneName", s("ad.corp.example")), named("Name", s("web1")), named("IPv4Address", s("10.1.2.3"))])), A),
        (DNS, one(c("Add-DnsServerResourceRecordA", vec![named("ZoneName", s("ad.corp.example")), named("Name", s("web1")), named("IPv4Address", s("192.168.1.1"))])), D),
        (DNS, one(c("Add-DnsServerResourceRecordA", vec![named("ZoneName", s("evil.com")), named("Name", s("web1")), named("IPv4Address", s("10.1.2.3"))])), D),
        (DNS, one(c("Remove-DnsServerResourceRecord", vec![named("ZoneName", s("a.corp.example")), named("Name", s("web1")), named("RRType", s("A")), named("Force", ArgValue::Bool(true))])), A),
        (DNS, one(c("Remove-DnsServerResourceRecord", vec![named("ZoneName", s("a.corp.example")), named("Name", s("web1")), named("RRType", s("MX"))])), D),
        (DNS, one(c("Get-DnsServerStatistics", vec![])), A),
        (DNS, one(c("DnsServer\\Get-DnsServerStatistics", vec![])), A),
        (DNS, one(c("Get-DnsHealth", vec![])), A),
        (DNS, one(c("nslookup", vec![pos(s("example.com"))])), A),
        (DNS, one(c("Stop-Computer", vec![])), D),
        (DNS, ps("Get-DnsServerZone"), D),
        (DNS, execute_ps("Get-DnsServerZone"), D),
        (DNS, cmd("ipconfig /flushdns"), A),
        (DNS, cmd("nslookup evil.com; calc"), D),
        (DNS, Op::Cmd(format!("powershell -enc {}", enc("Get-DnsServerZone"))), D),
        // ---- full admin, and deny winning over it ----
        (ADMIN, ps("$x = Get-Service; $x | % { $_.Name }"), A),
        (ADMIN, cmd("dir & whoami"), A),
        (ADMIN, one(c("Stop-Computer", vec![])), A),
        (ADMIN, Op::Stdin("diskpart", "list disk\r\n".into()), A),
        (ADMIN, ps("Start-Process notepad -ArgumentList 'x.txt'"), A),
        (OPER, ps("Start-Process notepad"), D),
        (ADMIN_OPS, ps("$x = 1"), D),
        (ADMIN_OPS, one(c("Stop-Computer", vec![])), D),
        (ADMIN_OPS, ps("Get-Date"), A),
    ]
}

fn engine() -> Engine {
    load_dir(&super::test_support::policies_dir()).unwrap()
}

fn decide(engine: &Engine, who: &Who, op: &Op) -> Decision {
    decide_op(engine, who.user, who.groups, who.host, labels(who.host), op)
}

#[test]
fn example_roles_table() {
    let engine = engine();
    let cases = cases();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (i, (who, op, allow)) in cases.iter().enumerate() {
        let d = decide(&engine, who, op);
        if d.is_allow() != *allow {
            failures.push(format!(
                "#{i} {} {:?}: expected {}, got {d:?}",
                who.user,
                op,
                if *allow { "allow" } else { "deny" }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn deny_reasons_name_the_rule_or_construct() {
    let engine = engine();
    let d = decide(&engine, &ALICE, &one(c("Stop-Computer", vec![])));
    assert_eq!(
        d,
        Decision::Deny {
            reason: "command 'Stop-Computer' is denied by role 'demo'".into(),
            rule: Some("demo: deny.cmdlets 'Stop-Computer'".into())
        }
    );
    let Decision::Deny { reason, .. } = decide(&engine, &ALICE, &ps("Get-Date | % { $_.Kill() }"))
    else {
        panic!()
    };
    assert!(reason.contains("script block"), "{reason}");
    let Decision::Deny { reason, .. } = decide(&engine, &ALICE, &cmd("hostname & calc")) else {
        panic!()
    };
    assert!(reason.contains("metacharacter '&'"), "{reason}");
    let Decision::Deny { reason, .. } = decide(&engine, &MALLORY, &cmd("hostname")) else {
        panic!()
    };
    assert_eq!(
        reason,
        "no role grants 'mallory@hopgate.test' access to host 'demo-host'"
    );
    assert_eq!(
        decide(&engine, &SVC, &ps("Restart-Service Spooler")),
        Decision::Allow {
            role: "service-restarter".into()
        }
    );
}

#[test]
fn every_example_file_loads_and_lints_without_errors() {
    let dir = super::test_support::policies_dir();
    let engine = engine();
    let names = engine.role_names();
    for expected in [
        "demo",
        "dns-admin",
        "full-admin",
        "read-only-operator",
        "service-restarter",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    // The .psrc's ModulesToImport is read but cannot be enforced by the gateway.
    assert!(
        engine
            .warnings()
            .iter()
            .any(|w| w.contains("ModulesToImport")),
        "{:?}",
        engine.warnings()
    );
    let findings = lint(&dir);
    assert!(
        findings.iter().all(|f| f.severity != Severity::Error),
        "{findings:?}"
    );
}

#[test]
fn grants_host_and_roles_for() {
    let engine = engine();
    let who = Subject {
        user: "root".into(),
        groups: vec!["hopgate-admins".into(), "ops".into()],
    };
    let host = HostRef {
        name: "demo-host",
        labels: &[],
    };
    assert!(engine.grants_host(&who, &host));
    assert_eq!(engine.roles_for(&who, &host), vec!["demo", "full-admin"]);
    let nobody = Subject {
        user: "x".into(),
        groups: vec![],
    };
    assert!(!engine.grants_host(&nobody, &host));
}
