//! Red-team table for the programs family (issue 11, item 3): a program is judged by
//! what starts, whichever shell starts it and however it is written. Roles: the shipped
//! `policies/` plus the test-only `tests/fixtures/policies/programs.toml` (helpdesk,
//! breakglass-audited, ps-only). Expected outcomes follow cmd.exe (`cmd /?`, `start /?`,
//! `call /?`), CreateProcess and PowerShell's native-command rules, not the engine's
//! output. A denial also names why (a substring of the reason), so that a row denied for
//! the wrong reason fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::program::{canonical_pattern, cmd_command, identify, Mention};
use super::test_ops::*;
use super::test_support::{policies_dir, read_sources, repo_root};
use super::*;

struct Who {
    groups: &'static [&'static str],
    host: &'static str,
    labels: &'static [&'static str],
}

const ALICE: Who = Who {
    groups: &["ops"],
    host: "demo-host",
    labels: &[],
};
const OPER: Who = Who {
    groups: &["operators"],
    host: "srv-01",
    labels: &[],
};
const SVC: Who = Who {
    groups: &["svc-restarters"],
    host: "app-01",
    labels: &["app"],
};
const DNS: Who = Who {
    groups: &["dns-admins"],
    host: "dns-01",
    labels: &["dns"],
};
const HD: Who = Who {
    groups: &["helpdesk"],
    host: "hd-01",
    labels: &[],
};
const BG: Who = Who {
    groups: &["breakglass"],
    host: "bg-01",
    labels: &[],
};
const PSO: Who = Who {
    groups: &["ps-only"],
    host: "ps-01",
    labels: &[],
};

#[derive(Debug, Clone, Copy)]
enum Expect {
    Allow,
    /// Denied, with this text in the reason.
    Deny(&'static str),
}
use Expect::{Allow, Deny};

/// A denial by a deny.cmd rule that found the `net` program.
const NET: Expect = Deny("program 'net'");
/// A denial because deny rules cannot see through something.
const UNVERIFIABLE: Expect = Deny("cannot verify the deny rules");
/// Code a full role could run but whose deny rules cannot be checked against it.
const OUTSIDE: Expect = Deny("outside what the gateway can analyse");

fn stdin(program: &'static str, data: &str) -> Op {
    Op::Stdin(program, data.into())
}

type Row = (Who, Op, Expect, &'static str);

/// Attempts that must be denied.
fn attacks() -> Vec<Row> {
    vec![
        // ---- service-restarter: deny.cmd net (user|localgroup|share).*, cmd shell ----
        (SVC, cmd("net user x y /add"), NET, "the rule as written"),
        (SVC, cmd("net.exe user x y /add"), NET, "extension"),
        (SVC, cmd("net1 user x y /add"), NET, "net1 is net's twin"),
        (SVC, cmd("n^et user x y /add"), NET, "caret escape inside the name"),
        (SVC, cmd("%SystemRoot%\\System32\\net.exe user x y /add"), NET, "%SystemRoot% is known"),
        (SVC, cmd("%windir%\\system32\\net.exe user x y /add"), NET, "%windir% is known"),
        (SVC, cmd("\"net\" user x y /add"), NET, "quoted name (cmd /c strips the outer quotes)"),
        (SVC, cmd("cmd /c \"net user x y /add\""), NET, "cmd /c strips the quotes"),
        (SVC, cmd("NET USER"), NET, "case"),
        (SVC, cmd("net.exe  user"), NET, "extension and two blanks"),
        (SVC, cmd("\"C:\\Windows\\system32\\net.exe\" user"), NET, "quoted system path"),
        (SVC, cmd("C:\\Windows\\System32\\NET1.EXE user"), NET, "system path to the twin"),
        (SVC, cmd("%ComSpec% /c net user"), NET, "%ComSpec% is cmd"),
        (SVC, cmd("cmd.exe /k net user"), NET, "/k runs the line too"),
        (SVC, cmd("cmd /s /c \"net user\""), NET, "/s strips the quotes"),
        (SVC, cmd("start net user"), NET, "start runs its payload"),
        (SVC, cmd("start \"\" /b /wait net user x /add"), NET, "start with a title and switches"),
        (SVC, cmd("call net user"), NET, "call runs its payload"),
        (SVC, cmd("for /f %i in ('net user') do echo %i"), UNVERIFIABLE, "for runs commands the gateway cannot follow"),
        (SVC, cmd("net localgroup administrators x /add"), NET, "localgroup"),
        (SVC, cmd("net share x=C:\\ /grant:everyone,full"), NET, "share"),
        (SVC, cmd("net start Spooler & net user x y /add"), NET, "second command after &"),
        (SVC, cmd("net start Spooler && net user x y /add"), NET, "second command after &&"),
        (SVC, cmd("net start Spooler || net user x y /add"), NET, "second command after ||"),
        (SVC, cmd("net start Spooler | net user"), NET, "second command in a pipe"),
        (SVC, cmd("net user x y /add > C:\\x.txt"), NET, "redirection"),
        (SVC, cmd("net^1 user"), NET, "caret inside the twin"),
        (SVC, cmd("net.exe. user"), NET, "trailing dot dropped by Win32"),
        (SVC, cmd("\"net \" user"), NET, "trailing blank dropped by Win32"),
        (SVC, cmd(".\\net user"), NET, "a copy in the current directory is still net to deny rules"),
        (SVC, cmd("C:\\Windows\\SysWOW64\\net.exe user"), NET, "32-bit system directory"),
        (SVC, Op::Skip("\"c:/windows/system32/net.exe\" user".into()), NET, "forward slashes (CreateProcess accepts them)"),
        (SVC, cmd("c:/windows/system32/net.exe user"), Deny("program 'c:'"), "cmd ends the name at '/': not net, and not analysable"),
        (SVC, cmd("C:\\Windows\\System32\\..\\System32\\.\\net.exe user"), NET, "dot segments"),
        (SVC, cmd("n\"e\"t user"), NET, "quotes inside the name"),
        (SVC, cmd("@net user"), NET, "@ echo-off prefix"),
        (SVC, cmd(";net user"), NET, "leading delimiter"),
        (SVC, cmd("net,user x"), NET, "comma delimiter"),
        (SVC, cmd("\\\\?\\C:\\Windows\\System32\\net.exe user"), Deny("UNC and device paths"), "device path cannot be resolved"),
        (SVC, cmd("\\\\dc01\\share\\net.exe user"), Deny("UNC and device paths"), "program on another machine"),
        (SVC, cmd("%TEMP%\\net.exe user"), UNVERIFIABLE, "unknown variable in the program"),
        (SVC, cmd("C:\\Windows\\System32\\NET~1.EXE user"), Deny("8.3 short names"), "short names cannot be resolved"),
        (SVC, cmd("net us%COMPUTERNAME:~0,0%er x y /add"), UNVERIFIABLE, "empty substring expansion splices the argument"),
        (SVC, cmd("cmd /c cmd /c net user"), NET, "nested cmd"),
        (SVC, cmd("cmd /c \"call net user\""), NET, "call inside cmd /c"),
        (SVC, cmd("powershell -c \"net user x y /add\""), NET, "powershell -c runs a native command"),
        (SVC, Op::Cmd(format!("powershell -enc {}", enc("net user x y /add"))), NET, "encoded command"),
        (SVC, cmd("pwsh -c net user"), NET, "pwsh"),
        (SVC, Op::Skip("net1.exe user x y /add".into()), NET, "WINRS_SKIP_CMD_SHELL: CreateProcess"),
        (SVC, Op::Args("net", vec!["user".into(), "x".into(), "/add".into()]), NET, "Command plus Arguments"),
        (SVC, stdin("cmd", "net user x y /add\r\n"), NET, "stdin of an interactive cmd"),
        (SVC, stdin("cmd", "n^et user x\r\n"), NET, "stdin with a caret"),
        // ---- service-restarter: net typed in PowerShell ----
        (SVC, ps("net user x y /add"), NET, "native command in PowerShell"),
        (SVC, ps("net.exe user x y /add"), NET, "with extension"),
        (SVC, ps("NET1 user"), NET, "twin, upper case"),
        (SVC, ps("C:\\Windows\\System32\\net.exe user"), NET, "system path"),
        (SVC, ps("Start-Process net -ArgumentList 'user','x'"), NET, "Start-Process"),
        (SVC, ps("Start-Process -FilePath:C:\\Windows\\System32\\net1.exe -ArgumentList:'user x y /add'"), NET, "Start-Process, twin by path"),
        (SVC, ps("Start-Process -FilePath C:\\Windows\\System32\\net1.exe -ArgumentList 'user x y /add'"), Deny("Start-Process"), "ambiguous binding without metadata: refused"),
        (SVC, ps("cmd /c 'net user x y /add'"), NET, "cmd /c from PowerShell"),
        (SVC, ps("& net user"), Deny("service-restarter"), "call operator: refused today, judged once the parser resolves it"),
        (SVC, ps("& 'C:\\Windows\\System32\\net.exe' user"), Deny("service-restarter"), "call operator with a quoted path"),
        (SVC, one(c("net", vec![pos(s("user")), pos(s("x")), pos(s("/add"))])), NET, "PSRP command object"),
        (SVC, one(c("Start-Process", vec![named("FilePath", s("net.exe")), named("ArgumentList", ArgValue::List(vec![s("user"), s("x")]))])), NET, "PSRP Start-Process"),
        (SVC, execute_ps("net user x y /add"), NET, "pypsrp execute_ps wrapper"),
        // ---- read-only-operator: cmd rules allow only ipconfig and ipconfig /all ----
        (OPER, ps("ipconfig /release"), Deny("its cmd rules for program 'ipconfig'"), "visible program, arguments no rule allows"),
        (OPER, ps("ipconfig.exe /release"), Deny("its cmd rules for program 'ipconfig'"), "with extension"),
        (OPER, ps("IPCONFIG /RENEW"), Deny("its cmd rules for program 'ipconfig'"), "case"),
        (OPER, cmd("powershell -c ipconfig /release"), Deny("its cmd rules for program 'ipconfig'"), "powershell -c in cmd"),
        (OPER, Op::Cmd(format!("powershell -enc {}", enc("ipconfig /release"))), Deny("its cmd rules for program 'ipconfig'"), "encoded"),
        (OPER, one(c("ipconfig", vec![pos(s("/release"))])), Deny("its cmd rules for program 'ipconfig'"), "PSRP command object"),
        (OPER, cmd("ipconfig /release"), Deny("program 'ipconfig' line 'ipconfig /release' is not allowed"), "cmd"),
        (OPER, cmd("cmd /c ipconfig /release"), Deny("is not allowed by role"), "cmd /c"),
        (OPER, cmd("ipconfig.exe /release"), Deny("is not allowed by role"), "extension"),
        (OPER, cmd("ipconfig/release"), Deny("line 'ipconfig /release'"), "cmd ends the name at '/'"),
        (OPER, ps("whoami /priv"), Deny("its cmd rules for program 'whoami'"), "only bare whoami is a rule"),
        (OPER, ps("C:\\Temp\\whoami.exe"), Deny("not visible"), "a copy elsewhere is not the visible path"),
        (OPER, cmd("C:\\Temp\\whoami.exe"), Deny("program 'whoami' (written 'C:\\Temp\\whoami.exe') line 'c:\\temp\\whoami'"), "a copy elsewhere is not the whoami rule"),
        (OPER, cmd(".\\whoami"), Deny("is not allowed by role"), "a copy in the current directory"),
        (ALICE, cmd("powershell -c ipconfig /release"), Deny("not visible"), "demo shows no ipconfig to PowerShell"),
        (ALICE, cmd("%ComSpec% /c hostname"), Deny("cmd metacharacter '%'"), "demo allows no metacharacters (still denied, for that reason)"),
        (ALICE, cmd("C:\\Temp\\cmd.exe /c whoami"), Deny("line 'c:\\temp\\cmd /c whoami' is not allowed"), "a copy of cmd elsewhere is not the interpreter's own line"),
        (ALICE, cmd(".\\powershell -c Get-Date"), Deny("is not allowed by role 'demo'"), "a copy of powershell in the current directory"),
        (ALICE, cmd("IPCONFIG.EXE /RELEASE"), Deny("is not allowed by role 'demo'"), "demo cmd rules"),
        // ---- helpdesk: net visible in PowerShell, cmd rules for net ----
        (HD, ps("net user x y /add"), NET, "visible program, denied line"),
        (HD, ps("net localgroup administrators x /add"), NET, "localgroup"),
        (HD, ps("net stop WinRM"), Deny("its cmd rules for program 'net'"), "visible program, arguments no rule allows"),
        (HD, ps("net1 user x"), NET, "twin counts as the visible net"),
        (HD, ps("Start-Process net -ArgumentList 'user','x','y','/add'"), NET, "Start-Process"),
        (HD, cmd("net user x"), NET, "cmd"),
        (HD, stdin("cmd", "n^et user x\r\n"), NET, "stdin with a caret"),
        (HD, ps("ipconfig /release"), Deny("its cmd rules for program 'ipconfig'"), "ipconfig arguments"),
        // ---- breakglass-audited: everything allowed, deny rules must still hold ----
        (BG, cmd("hostname & net user x /add"), NET, "second command"),
        (BG, cmd("echo x | net user x /add"), NET, "pipe"),
        (BG, cmd("net user x /add 2>nul"), NET, "redirection"),
        (BG, cmd("(net user x /add)"), OUTSIDE, "parenthesised block"),
        (BG, cmd("wmic process call create \"net user x /add\""), UNVERIFIABLE, "wmic starts the program its arguments name"),
        (BG, cmd("schtasks /create /tn x /tr \"net user x /add\" /sc once /st 00:00"), UNVERIFIABLE, "schtasks /tr"),
        (BG, cmd("forfiles /p C:\\ /m x /c \"cmd /c net user x /add\""), UNVERIFIABLE, "forfiles /c"),
        (BG, cmd("runas /user:admin \"net user x /add\""), UNVERIFIABLE, "runas"),
        (BG, cmd("conhost net user x /add"), UNVERIFIABLE, "conhost starts its arguments"),
        (BG, cmd("rundll32 shell32.dll,ShellExec_RunDLL net user x /add"), UNVERIFIABLE, "rundll32"),
        (BG, cmd("if 1==1 net user x /add"), OUTSIDE, "if runs a command"),
        (BG, cmd("for /f %i in (x) do net user"), UNVERIFIABLE, "for runs a command"),
        (BG, cmd("n%x%et user"), UNVERIFIABLE, "unknown variable in the name"),
        (BG, cmd("net !x! x /add"), UNVERIFIABLE, "delayed expansion in the arguments"),
        (BG, cmd("cmd /v:on /c \"set x=net&& !x! user\""), UNVERIFIABLE, "delayed expansion switched on"),
        (BG, ps("net user x y /add"), NET, "PowerShell"),
        (BG, ps("Start-Process cmd -ArgumentList '/c net user x y /add'"), NET, "Start-Process cmd"),
        (BG, cmd("ipconfig /release"), Deny("program 'ipconfig'"), "second deny rule"),
        (BG, cmd("ipconfig/release"), Deny("program 'ipconfig'"), "no blank before the switch"),
        (BG, ps("ipconfig /release"), Deny("program 'ipconfig'"), "PowerShell"),
        (BG, cmd("start /b net user x /add"), NET, "start"),
        (BG, cmd("\"net user x /add\""), NET, "whole line quoted (cmd /c strips the quotes)"),
        (BG, Op::Skip("\"C:\\Windows\\System32\\net.exe\" user x".into()), NET, "CreateProcess with a quoted path"),
        (BG, cmd("net^ user x"), Deny("line 'net user x' is denied"), "escaped blank"),
        (BG, cmd("cmd /c \"ipconfig /release & hostname\""), Deny("program 'ipconfig'"), "inside cmd /c with an operator"),
        (BG, Op::Cmd(format!("hostname & powershell -enc {}", enc("net user x y /add"))), NET, "encoded PowerShell after an operator"),
    ]
}

/// Everyday forms that must stay allowed.
fn everyday() -> Vec<Row> {
    vec![
        (ALICE, cmd("ipconfig /all"), Allow, "demo rule"),
        (ALICE, cmd("hostname"), Allow, "demo rule"),
        (ALICE, cmd("whoami"), Allow, "demo rule"),
        (ALICE, cmd("ipconfig"), Allow, "demo rule"),
        (ALICE, cmd("call hostname"), Allow, "call runs an allowed command"),
        (ALICE, cmd("\"hostname\""), Allow, "quoted name"),
        (ALICE, cmd("C:\\Windows\\System32\\HOSTNAME.EXE"), Allow, "the system's own hostname"),
        (ALICE, cmd("echo hello"), Allow, "echo rule"),
        (ALICE, ps("hostname"), Allow, "visible program with a matching cmd rule"),
        (ALICE, Op::Args("powershell", vec!["-encodedcommand".into(), enc("Get-Service")]), Allow, "pywinrm run_ps"),
        (ALICE, Op::Cmd(format!("PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {}", enc("Get-Service"))), Allow, "Ansible winrm"),
        (ALICE, stdin("cmd", "hostname\r\nexit\r\n"), Allow, "interactive cmd"),
        (ALICE, Op::Cmd(format!("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NoProfile -EncodedCommand {}", enc("Get-Date"))), Allow, "powershell by its full path"),
        (OPER, cmd("C:\\Windows\\System32\\whoami.exe"), Allow, "system path to an allowed program"),
        (OPER, ps("C:\\Windows\\System32\\whoami.exe"), Allow, "visible path, rule whoami"),
        (OPER, ps("ipconfig"), Allow, "rule ipconfig"),
        (OPER, ps("ipconfig /all"), Allow, "rule ipconfig /all"),
        (OPER, ps("IPCONFIG /ALL"), Allow, "case"),
        (OPER, ps("whoami"), Allow, "rule whoami"),
        (OPER, ps("hostname"), Allow, "rule hostname"),
        (OPER, cmd("sc query Spooler"), Allow, "sc rule"),
        (OPER, cmd("ipconfig.exe /all"), Allow, "extension"),
        (OPER, cmd("ipconfig/all"), Allow, "no blank before the switch"),
        (OPER, cmd("\"C:\\Windows\\System32\\ipconfig.exe\" /all"), Allow, "quoted system path"),
        (OPER, cmd("powershell -c ipconfig /all"), Allow, "powershell -c with an allowed line"),
        (OPER, cmd("cmd /c ipconfig /all"), Allow, "cmd /c"),
        (OPER, cmd("cmd /c \"C:\\Windows\\System32\\whoami.exe\""), Allow, "cmd /c with a quoted system path"),
        (OPER, one(c("ipconfig", vec![pos(s("/all"))])), Allow, "PSRP command object"),
        (SVC, cmd("net start Spooler"), Allow, "service-restarter rule"),
        (SVC, cmd("net stop W32Time"), Allow, "service-restarter rule"),
        (SVC, cmd("net.exe start Spooler"), Allow, "extension"),
        (SVC, cmd("NET START spooler"), Allow, "case"),
        (SVC, cmd("C:\\Windows\\System32\\net.exe stop Spooler"), Allow, "system path"),
        (SVC, cmd("sc query Spooler"), Allow, "sc rule"),
        (SVC, cmd("sc.exe start W32Time"), Allow, "sc.exe"),
        (SVC, cmd("cmd /c net start Spooler"), Allow, "cmd /c"),
        (DNS, one(c("nslookup", vec![pos(s("example.com"))])), Allow, "visible program, matching pattern"),
        (DNS, cmd("nslookup example.com"), Allow, "dns-admin pattern"),
        (HD, ps("net start Spooler"), Allow, "visible net, matching rule"),
        (HD, ps("net stop W32Time"), Allow, "visible net, matching rule"),
        (HD, ps("net.exe start Spooler"), Allow, "extension"),
        (HD, ps("ipconfig /all"), Allow, "rule ipconfig /all"),
        (HD, cmd("net start Spooler"), Allow, "cmd"),
        (HD, ps("Start-Process net -ArgumentList 'start','Spooler'"), Allow, "Start-Process with an allowed line"),
        (HD, ps("C:\\Windows\\System32\\sc.exe query Spooler"), Allow, "no cmd rule names sc: any arguments (documented)"),
        (HD, stdin("cmd", "net start Spooler\r\nexit\r\n"), Allow, "interactive cmd"),
        (PSO, ps("ipconfig /release"), Allow, "no cmd block: a visible program takes any arguments (documented)"),
        (BG, cmd("net start Spooler & net stop Spooler"), Allow, "two allowed commands"),
        (BG, cmd("schtasks /query /tn x"), Allow, "schtasks without /tr starts nothing"),
        (BG, cmd("wmic os get caption"), Allow, "wmic without process call create starts nothing"),
        (BG, cmd("dir C:\\ > C:\\x.txt"), Allow, "redirection"),
        (BG, ps("net start Spooler"), Allow, "PowerShell"),
        (BG, cmd("net view \\\\dc01"), Allow, "net view is not denied"),
        (BG, cmd("ipconfig /all"), Allow, "ipconfig /all is not denied"),
    ]
}

fn engine() -> Engine {
    let mut sources = read_sources(&policies_dir()).unwrap();
    let fixture = repo_root().join("tests/fixtures/policies/programs.toml");
    sources.push(PolicySource {
        text: std::fs::read_to_string(&fixture).unwrap(),
        path: fixture.display().to_string(),
    });
    Engine::from_sources(&sources).unwrap()
}

fn decide(engine: &Engine, who: &Who, op: &Op) -> Decision {
    decide_op(engine, "tester", who.groups, who.host, who.labels, op)
}

fn run(rows: &[Row]) -> Vec<String> {
    let engine = engine();
    let mut failures = Vec::new();
    for (i, (who, op, expect, why)) in rows.iter().enumerate() {
        let d = decide(&engine, who, op);
        let ok = match (expect, &d) {
            (Allow, Decision::Allow { .. }) => true,
            (Deny(text), Decision::Deny { reason, .. }) => reason.contains(text),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "#{i} {:?} {op:?} ({why}): expected {expect:?}, got {d:?}",
                who.groups
            ));
        }
    }
    failures
}

#[test]
fn program_attacks_are_denied() {
    let rows = attacks();
    assert!(rows.len() >= 60, "only {} attacks", rows.len());
    let failures = run(&rows);
    assert!(
        failures.is_empty(),
        "{} of {} attacks:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn everyday_programs_stay_allowed() {
    let rows = everyday();
    assert!(rows.len() >= 30, "only {} everyday forms", rows.len());
    let failures = run(&rows);
    assert!(
        failures.is_empty(),
        "{} of {} everyday forms:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn a_denial_names_the_program_the_spelling_and_the_rule() {
    let engine = engine();
    assert_eq!(
        decide(&engine, &SVC, &cmd("n^et user x y /add")),
        Decision::Deny {
            reason: "program 'net' (written 'n^et') line 'net user x y /add' is denied by role \
                     'service-restarter' (deny.cmd pattern 'net (user|localgroup|share).*')"
                .into(),
            rule: Some(
                "service-restarter: deny.cmd pattern 'net (user|localgroup|share).*'".into()
            ),
        }
    );
    let Decision::Deny { reason, .. } = decide(&engine, &SVC, &ps("net user x y /add")) else {
        panic!()
    };
    assert!(
        reason.starts_with("program 'net' line 'net user x y /add' is denied"),
        "{reason}"
    );
    let Decision::Deny { reason, .. } = decide(&engine, &OPER, &ps("ipconfig /release")) else {
        panic!()
    };
    assert_eq!(
        reason,
        "program 'ipconfig' line 'ipconfig /release' is not allowed by role \
         'read-only-operator': its cmd rules for program 'ipconfig' do not match"
    );
}

#[test]
fn one_identity_however_written() {
    for written in [
        "net",
        "NET",
        "net.exe",
        "Net.EXE.",
        "net ",
        "net1",
        "NET1.exe",
        "C:\\Windows\\System32\\net.exe",
        "c:/windows/system32/net.exe",
        "%SystemRoot%\\System32\\net.exe",
        "%WINDIR%\\SysWOW64\\net1.exe",
        "%SystemDrive%\\Windows\\System32\\net.exe",
        "\\Windows\\System32\\net.exe",
        "C:\\Windows\\System32\\..\\System32\\net.exe",
    ] {
        let p = identify(written, written).unwrap();
        assert_eq!(
            (p.id.as_str(), p.word.as_str()),
            ("net", "net"),
            "{written}"
        );
    }
    let cmd = identify("%ComSpec%", "%ComSpec%").unwrap();
    assert_eq!(cmd.word, "cmd");
    let elsewhere = identify(".\\net.exe", ".\\net.exe").unwrap();
    assert_eq!(
        (elsewhere.id.as_str(), elsewhere.word.as_str()),
        ("net", ".\\net")
    );
    let temp = identify("C:\\Temp\\Net.exe", "C:\\Temp\\Net.exe").unwrap();
    assert_eq!(
        (temp.id.as_str(), temp.word.as_str()),
        ("net", "c:\\temp\\net")
    );
    // Scripts and other hosts' files keep their extension: they are not the program.
    assert_eq!(identify("net.ps1", "net.ps1").unwrap().id, "net.ps1");
    assert_eq!(identify("pwsh.exe", "pwsh.exe").unwrap().id, "pwsh");
    assert_eq!(
        identify("powershell", "powershell").unwrap().id,
        "powershell"
    );
    for refused in [
        "%TEMP%\\net.exe",
        "!x!",
        "\\\\dc01\\c$\\net.exe",
        "\\\\?\\C:\\Windows\\System32\\net.exe",
        "C:\\PROGRA~1\\net.exe",
        "net.exe:stream",
        "ne*",
        "%SystemRoot",
    ] {
        assert!(identify(refused, refused).is_err(), "{refused}");
    }
}

#[test]
fn cmd_reads_the_program_word_like_cmd() {
    let p = cmd_command("@ n^et^1.exe user ^& x").unwrap();
    assert_eq!(
        (p.text.as_str(), p.rest.as_str()),
        ("net1.exe", " user & x")
    );
    let p = cmd_command("\"C:\\Program Files\\x.exe\" /y").unwrap();
    assert_eq!(
        (p.text.as_str(), p.rest.as_str()),
        ("C:\\Program Files\\x.exe", " /y")
    );
    let p = cmd_command("ipconfig/all").unwrap();
    assert_eq!((p.text.as_str(), p.rest.as_str()), ("ipconfig", "/all"));
    assert!(cmd_command("(net user)").is_err());
}

#[test]
fn rule_patterns_name_their_programs() {
    let (p, m) = canonical_pattern("net (start|stop) (Spooler|W32Time)");
    assert_eq!(p, "net (start|stop) (Spooler|W32Time)");
    assert_eq!(m, Mention::Programs(vec!["net".into()]));
    let (p, m) =
        canonical_pattern("C:\\\\Windows\\\\System32\\\\NET\\.EXE user.*|net1 localgroup.*");
    assert_eq!(p, "net user.*|net localgroup.*");
    assert_eq!(m, Mention::Programs(vec!["net".into()]));
    let (_, m) = canonical_pattern("echo( [A-Za-z0-9 _.,:=+@?'/-]*)?");
    assert_eq!(m, Mention::Programs(vec!["echo".into()]));
    for any in [".*", "(net|sc) query .*", "net[1]? user", "ne.* user"] {
        assert_eq!(canonical_pattern(any).1, Mention::Any, "{any}");
    }
}
