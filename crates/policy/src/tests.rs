//! Unit tests of the policy building blocks: Windows argument splitting (examples from
//! Microsoft's "Parsing C++ command-line arguments"), cmd.exe metacharacters (`cmd /?`),
//! PowerShell command-line switches (`powershell -?`), patterns, `.psrc` import, lint
//! and the `policy check` CLI.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::cmdline::{cmd_metachar, decode_encoded_command, powershell_launch, split_args};
use super::pattern::{fold, Anchored, Glob, Wildcard};
use super::test_ops::{decide_op, ps};
use super::test_support::lint;
use super::*;

fn values(line: &str) -> Vec<String> {
    split_args(line).into_iter().map(|t| t.value).collect()
}

#[test]
fn windows_argument_splitting_follows_the_crt_rules() {
    assert_eq!(values(r#""abc" d e"#), vec!["abc", "d", "e"]);
    assert_eq!(values(r#"a\\b d"e f"g h"#), vec![r"a\\b", "de fg", "h"]);
    assert_eq!(values(r#"a\\\"b c d"#), vec![r#"a\"b"#, "c", "d"]);
    assert_eq!(values(r#"a\\\\"b c" d e"#), vec![r"a\\b c", "d", "e"]);
    assert_eq!(values(r#"a"b"" c d"#), vec![r#"ab" c d"#]);
    let t = split_args("cmd  /c  whoami");
    assert_eq!((t[1].start, t[1].end), (5, 7));
}

#[test]
fn cmd_metacharacters() {
    for (line, expect) in [
        ("hostname", None),
        ("echo \"a & b\"", None),
        ("echo a & b", Some('&')),
        ("echo a | b", Some('|')),
        ("echo a > b", Some('>')),
        ("echo ^&", Some('^')),
        ("echo \"%PATH%\"", Some('%')),
        ("echo !x!", Some('!')),
        ("echo a\nb", Some('\n')),
        // cmd /c strips the first and last quote: the & becomes live.
        ("\"whoami & calc\"", Some('&')),
    ] {
        assert_eq!(cmd_metachar(line), expect, "{line}");
    }
}

#[test]
fn powershell_switches() {
    let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let enc = "RwBlAHQALQBEAGEAdABlAA=="; // "Get-Date" in UTF-16LE
    assert_eq!(decode_encoded_command(enc).unwrap(), "Get-Date");
    for switch in [
        "-EncodedCommand",
        "-enc",
        "-e",
        "-ec",
        "-En",
        "/encodedcommand",
        "\u{2013}enc",
    ] {
        let l = powershell_launch(&args(&format!("-NoProfile {switch} {enc}")), false).unwrap();
        assert_eq!(l.code.as_deref(), Some("Get-Date"), "{switch}");
        assert!(!l.reads_stdin);
    }
    assert_eq!(
        powershell_launch(&args("-c Get-Service -Name x"), false)
            .unwrap()
            .code
            .as_deref(),
        Some("Get-Service -Name x")
    );
    assert_eq!(
        powershell_launch(&args("Get-Date"), false)
            .unwrap()
            .code
            .as_deref(),
        Some("Get-Date")
    );
    assert!(
        powershell_launch(&args("-Command -"), false)
            .unwrap()
            .reads_stdin
    );
    assert!(
        powershell_launch(&args("-NoExit -c Get-Date"), false)
            .unwrap()
            .reads_stdin
    );
    assert!(powershell_launch(&args("-ExecutionPolicy Bypass -File x.ps1"), false).is_err());
    assert!(powershell_launch(&args("x.ps1"), true).is_err());
    assert!(powershell_launch(&args("-n x"), false).is_err());
    assert!(decode_encoded_command("abc").is_err());
}

#[test]
fn folding_and_patterns() {
    assert_eq!(fold("Stop\u{2013}Computer"), "stop-computer");
    assert_eq!(fold("\u{17F}TOP"), "stop");
    let w = Wildcard::new("Get-*").unwrap();
    assert!(w.matches("get-service"));
    assert!(!w.matches("set-service"));
    let w = Wildcard::new("Get-[ps]*").unwrap();
    assert!(w.matches("get-process") && w.matches("get-service") && !w.matches("get-date"));
    assert!(Wildcard::new("Get-[").is_err());
    let a = Anchored::new("Spooler|W32Time").unwrap();
    assert!(a.is_match("spooler") && a.is_match("W32Time"));
    assert!(!a.is_match("Spooler|W32Time") && !a.is_match("xSpooler") && !a.is_match("Spoolerx"));
    assert!(Anchored::new("(").is_err());
    let g = Glob::new("web-??");
    assert!(g.matches("WEB-01") && !g.matches("web-001"));
    assert!(Glob::new("*").matches("anything"));
    assert!(Glob::new("a*b*c").matches("aXXbYYc") && !Glob::new("a*b*c").matches("aXXbYY"));
}

fn source(path: &str, text: &str) -> PolicySource {
    PolicySource {
        path: path.into(),
        text: text.into(),
    }
}

const ROLE: &str = r#"
[[role]]
name = "r"
principals = { users = ["u"] }
hosts = { names = ["h"] }
psrc = "caps.psrc"
[role.psrp]
language = "restricted"
"#;

#[test]
fn psrc_unknown_keys_are_errors_and_unenforced_keys_warnings() {
    let ok = "@{ VisibleCmdlets = 'Get-Date'; VisibleProviders = 'FileSystem'; Author = 'x' }";
    let engine = Engine::from_sources(&[source("r.toml", ROLE), source("caps.psrc", ok)]).unwrap();
    assert_eq!(engine.warnings().len(), 1, "{:?}", engine.warnings());
    assert!(engine.warnings()[0].contains("VisibleProviders"));
    let bad = "@{ VisibleCmdlets = 'Get-Date'; VisibleCmdlet = 'Stop-Computer' }";
    let err =
        Engine::from_sources(&[source("r.toml", ROLE), source("caps.psrc", bad)]).unwrap_err();
    assert_eq!(
        err,
        PolicyError::Psrc {
            path: "caps.psrc".into(),
            message: "unknown key 'VisibleCmdlet'".into()
        }
    );
    let bad = "@{ VisibleCmdlets = @{ Name = 'Get-Date'; Parameters = @{ Name = 'Format'; ValidateRange = 1 } } }";
    let err =
        Engine::from_sources(&[source("r.toml", ROLE), source("caps.psrc", bad)]).unwrap_err();
    assert!(err.to_string().contains("ValidateRange"), "{err}");
    let err = Engine::from_sources(&[source("r.toml", ROLE)]).unwrap_err();
    assert!(
        err.to_string().contains("psrc file 'caps.psrc' not found"),
        "{err}"
    );
}

#[test]
fn invalid_files_are_rejected_with_location() {
    let err = Engine::from_sources(&[source("a.toml", "[[role]]\nname = \"x\"\nprincpals = {}\n")])
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Toml { path, message } if path == "a.toml" && message.contains("princpals")),
        "{err}"
    );
    let bad_pattern = "[[role]]\nname = \"x\"\n[role.cmd]\ncommands = [{ pattern = \"(\" }]\n";
    let err = Engine::from_sources(&[source("a.toml", bad_pattern)]).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Invalid { role, .. } if role == "x"),
        "{err}"
    );
    let dup = "[[role]]\nname = \"x\"\n";
    let err = Engine::from_sources(&[source("a.toml", dup), source("b.toml", dup)]).unwrap_err();
    assert_eq!(
        err,
        PolicyError::DuplicateRole {
            role: "x".into(),
            first: "a.toml".into(),
            second: "b.toml".into()
        }
    );
}

#[test]
fn lint_reports_every_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[[role]]
name = "wide"
principals = { groups = ["g"] }
hosts = { names = ["h"] }
[role.cmd]
commands = ["hostname", { pattern = "echo .*" }, { pattern = "net (" }]

[[role]]
name = "clash"
principals = { groups = ["g"] }
hosts = { names = ["h"] }
[role.psrp]
visible_cmdlets = ["Stop-Computer"]
[role.deny]
cmdlets = ["Stop-*"]

[[role]]
name = "empty"

[[role]]
name = "trusting"
principals = { groups = ["g"] }
hosts = { names = ["h"] }
[role.psrp]
language = "restricted"
visible_cmdlets = [{ name = "Restart-Service", pipeline_input = true, parameters = [
    { name = "Name", validate_set = ["Spooler"] },
] }]
"#;
    std::fs::write(dir.path().join("a.toml"), text).unwrap();
    std::fs::write(dir.path().join("b.toml"), "this is not toml = = =").unwrap();
    let findings = lint(dir.path());
    let has = |sev: Severity, role: Option<&str>, needle: &str| {
        findings
            .iter()
            .any(|f| f.severity == sev && f.role.as_deref() == role && f.message.contains(needle))
    };
    assert!(
        has(Severity::Warning, Some("wide"), "effectively unanchored"),
        "{findings:#?}"
    );
    assert!(
        has(Severity::Error, Some("wide"), "invalid pattern 'net ('"),
        "{findings:#?}"
    );
    assert!(
        has(Severity::Warning, Some("clash"), "both visible and denied"),
        "{findings:#?}"
    );
    assert!(
        has(Severity::Warning, Some("empty"), "role is empty"),
        "{findings:#?}"
    );
    assert!(
        has(Severity::Warning, Some("trusting"), "pipeline_input = true"),
        "{findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.severity == Severity::Error && f.file.ends_with("b.toml")),
        "{findings:#?}"
    );
}

#[test]
fn psrp_configuration_restriction() {
    let text = r#"
[[role]]
name = "jea-only"
principals = { users = ["u"] }
hosts = { names = ["h"] }
[role.psrp]
configurations = ["JEA*"]
visible_cmdlets = ["Get-Date"]
"#;
    let engine = Engine::from_sources(&[source("a.toml", text)]).unwrap();
    let who = Subject {
        user: "U".into(),
        groups: vec![],
    };
    let host = HostRef {
        name: "H",
        labels: &[],
    };
    let open = |configuration| {
        engine.decide(
            &who,
            &host,
            &Operation::OpenShell {
                kind: ShellKind::Psrp { configuration },
            },
        )
    };
    assert!(open("JEAMaintenance").is_allow());
    assert!(!open("Microsoft.PowerShell").is_allow());
    // A PSRP-only role still opens cmd shells: pywinrm's run_ps runs PowerShell there.
    assert!(engine
        .decide(
            &who,
            &host,
            &Operation::OpenShell {
                kind: ShellKind::Cmd
            }
        )
        .is_allow());
    assert!(!engine
        .decide(
            &who,
            &host,
            &Operation::CmdLine {
                command: "hostname",
                arguments: &[],
                skip_cmd_shell: false
            }
        )
        .is_allow());
}

#[test]
fn command_redefinition_is_refused_even_when_visible() {
    let text = r#"
[[role]]
name = "sloppy"
principals = { users = ["u"] }
hosts = { names = ["h"] }
[role.psrp]
language = "restricted"
visible_cmdlets = ["Set-Alias", "New-Item", "Get-Date"]
"#;
    let engine = Engine::from_sources(&[source("a.toml", text)]).unwrap();
    let run = |script: &str| decide_op(&engine, "u", &[], "h", &[], &ps(script));
    assert!(run("Get-Date").is_allow());
    assert!(run("New-Item -Path C:\\temp\\x -ItemType Directory").is_allow());
    assert!(!run("Set-Alias -Name Get-Date -Value Stop-Computer").is_allow());
    assert!(!run("New-Item -Path function:\\Get-Date -Value x").is_allow());
    assert!(!run("New-Item Alias:Get-Date -Value Stop-Computer").is_allow());
}

#[test]
fn stdin_is_judged_in_whole_lines() {
    assert_eq!(stdin_complete_len("hostname\r\nwho"), 10);
    assert_eq!(stdin_complete_len("who"), 0);
    assert_eq!(stdin_complete_len(""), 0);
}

#[test]
fn explicit_denies_match_transparent_wrappers() {
    let text = r#"
[[role]]
name = "no-wrappers"
principals = { users = ["u"] }
hosts = { names = ["h"] }
[role.psrp]
language = "restricted"
visible_cmdlets = ["Get-Date"]
[role.cmd]
commands = ["hostname"]
[role.deny]
cmdlets = ["Invoke-Expression", "powershell"]
cmd = [{ pattern = "cmd( .*)?" }]
"#;
    let engine = Engine::from_sources(&[source("a.toml", text)]).unwrap();
    let who = Subject {
        user: "u".into(),
        groups: vec![],
    };
    let host = HostRef {
        name: "h",
        labels: &[],
    };
    let run = |script: &str| decide_op(&engine, "u", &[], "h", &[], &ps(script));
    let line = |l: &str| {
        engine.decide(
            &who,
            &host,
            &Operation::CmdLine {
                command: l,
                arguments: &[],
                skip_cmd_shell: false,
            },
        )
    };
    assert!(run("Get-Date").is_allow());
    assert!(!run("Invoke-Expression 'Get-Date'").is_allow());
    assert!(!run("powershell -c Get-Date").is_allow());
    assert!(line("hostname").is_allow());
    let Decision::Deny { rule, .. } = line("cmd /c hostname") else {
        panic!()
    };
    assert_eq!(
        rule.as_deref(),
        Some("no-wrappers: deny.cmd pattern 'cmd( .*)?'")
    );
}

#[test]
fn shipped_policies_lint_clean() {
    let dir = super::test_support::policies_dir();
    let findings = lint(&dir);
    // Only the .psrc key the gateway cannot enforce is reported.
    let messages: Vec<String> = findings
        .iter()
        .map(|f| format!("{:?} {}: {}", f.severity, f.file, f.message))
        .collect();
    assert_eq!(findings.len(), 1, "{messages:#?}");
    assert!(messages[0].contains("ModulesToImport"), "{messages:#?}");
}

#[test]
fn shipped_metadata_parses() {
    let set = metadata::MetadataSet::from_json(include_str!("../data/cmdlets.json")).unwrap();
    assert!(!set.is_empty());
    let hotfix = set.get("get-hotfix").unwrap();
    let cn = hotfix
        .params
        .iter()
        .find(|p| p.name == "ComputerName")
        .unwrap();
    assert_eq!(cn.aliases, ["CN", "__Server", "IPAddress"]);
}
