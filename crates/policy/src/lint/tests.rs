//! Breadth findings of `policy lint`: one test per finding, each with the shapes that
//! must not be reported next to the ones that must.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::breadth::{matches_everything, open_side};
use super::{lint_sources, LintFinding, Severity};
use crate::PolicySource;

fn lint_text(text: &str) -> Vec<LintFinding> {
    lint_sources(&[PolicySource {
        path: "t.toml".into(),
        text: text.into(),
    }])
}

fn warnings<'a>(findings: &'a [LintFinding], role: &str, needle: &str) -> Vec<&'a LintFinding> {
    findings
        .iter()
        .filter(|f| {
            f.severity == Severity::Warning
                && f.role.as_deref() == Some(role)
                && f.message.contains(needle)
        })
        .collect()
}

#[test]
fn patterns_open_in_effect() {
    for open in [
        "echo .*",
        "echo .+",
        r"echo [\s\S]*",
        r"sc query \S+",
        r".*\bipconfig",
        r"\S+ /all",
        "hostname|.*",
        "net (start|stop) (Spooler|.*)",
        r"dir( .*)?",
        r"type (C:\\Logs\\.*)",
        "x(?:a|b.+)",
        "echo [^&|]*",
    ] {
        assert!(open_side(open).is_some(), "{open} should be open");
    }
    for closed in [
        "hostname",
        "sc query [A-Za-z0-9_.-]+",
        "echo( [A-Za-z0-9 _.,:=+@?'/-]*)?",
        r"dir [A-Za-z]:\\[A-Za-z0-9_. \\-]*",
        "net (start|stop) (Spooler|W32Time)",
        r"10\.\d{1,3}\.\d{1,3}\.\d{1,3}",
        "exit [0-9]{1,5}",
        r"C:\\Logs(\\[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)*",
        r"\w+",
    ] {
        assert_eq!(open_side(closed), None, "{closed} should be closed");
    }
    for everything in [".*", ".+", r"[\s\S]*", "(?:.*)"] {
        assert!(matches_everything(everything), "{everything}");
    }
    assert!(!matches_everything("echo .*"));
    assert!(!matches_everything("a|.*"));
}

#[test]
fn open_allow_patterns_are_reported_and_deny_patterns_are_not() {
    let findings = lint_text(
        r#"
[[role]]
name = "r"
principals = { groups = ["g"] }
hosts = { names = ["h"] }
[role.psrp]
visible_cmdlets = [{ name = "Get-Item", parameters = [{ name = "Path", validate_pattern = "C:\\\\Logs\\\\.+" }] }]
[role.cmd]
commands = ["hostname", { pattern = "sc query \\S+" }, { pattern = "whoami|.*" }, { pattern = ".*" }]
[role.deny]
cmd = [{ pattern = "net user.*" }]
"#,
    );
    assert!(
        !warnings(&findings, "r", "'sc query \\S+' is effectively unanchored").is_empty(),
        "{findings:#?}"
    );
    assert!(
        !warnings(
            &findings,
            "r",
            "'whoami|.*' is effectively unanchored: a branch"
        )
        .is_empty(),
        "{findings:#?}"
    );
    assert!(
        !warnings(
            &findings,
            "r",
            "'C:\\\\Logs\\\\.+' is effectively unanchored"
        )
        .is_empty(),
        "{findings:#?}"
    );
    assert!(
        warnings(&findings, "r", "'.*' is effectively").is_empty(),
        "{findings:#?}"
    );
    assert!(
        warnings(&findings, "r", "net user").is_empty(),
        "{findings:#?}"
    );
}

#[test]
fn everything_granted_to_a_broad_group() {
    let findings = lint_text(
        r#"
[[role]]
name = "wide"
principals = { groups = ["Domain Users"] }
hosts = { names = ["*"] }
[role.psrp]
language = "full"
visible_cmdlets = ["*"]

[[role]]
name = "cmd-all"
principals = { groups = ["Everyone"] }
hosts = { labels = ["web"] }
[role.cmd]
allow_metacharacters = true
commands = [{ pattern = ".*" }]

[[role]]
name = "break-glass"
principals = { groups = ["hopgate-admins"] }
hosts = { names = ["*"] }
[role.psrp]
language = "full"
visible_cmdlets = ["*"]
visible_external_commands = ["*"]

[[role]]
name = "narrow"
principals = { groups = ["Domain Users"] }
hosts = { names = ["web-*"] }
[role.psrp]
language = "restricted"
visible_cmdlets = ["Get-Service"]
"#,
    );
    let wide = warnings(&findings, "wide", "to the broad group 'domain users'");
    assert_eq!(wide.len(), 1, "{findings:#?}");
    assert!(wide[0].message.contains("every cmdlet") && wide[0].message.contains("every host"));
    assert_eq!(
        warnings(&findings, "cmd-all", "every cmd line (pattern '.*')").len(),
        1,
        "{findings:#?}"
    );
    assert!(
        warnings(&findings, "break-glass", "broad group").is_empty(),
        "{findings:#?}"
    );
    assert!(
        warnings(&findings, "narrow", "broad group").is_empty(),
        "{findings:#?}"
    );
}

#[test]
fn code_running_commands_visible_outside_full() {
    let findings = lint_text(
        r#"
[[role]]
name = "leaky"
principals = { groups = ["ops"] }
hosts = { names = ["h"] }
[role.psrp]
language = "restricted"
visible_cmdlets = [
    "Get-Service",
    "Invoke-Expression",
    "Add-Type",
    "Register-ScheduledTask",
    { name = "New-Object", parameters = [{ name = "TypeName" }] },
    { name = "Start-Process", parameters = [{ name = "FilePath", validate_set = ["notepad"] }] },
    "Invoke-Cim*",
]
visible_external_commands = ["powershell", "C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\System32\\mshta.exe"]

[[role]]
name = "com"
principals = { groups = ["ops"] }
hosts = { names = ["h"] }
[role.psrp]
visible_cmdlets = [{ name = "New-Object", parameters = [{ name = "ComObject" }] }]

[[role]]
name = "denylist"
principals = { groups = ["ops"] }
hosts = { names = ["h"] }
[role.psrp]
language = "restricted"
visible_cmdlets = ["*"]
[role.deny]
cmdlets = ["Invoke-*", "Add-Type"]

[[role]]
name = "full"
principals = { groups = ["ops"] }
hosts = { names = ["h"] }
[role.psrp]
language = "full"
visible_cmdlets = ["Invoke-Expression", "Add-Type"]
"#,
    );
    let leaky = warnings(
        &findings,
        "leaky",
        "code-running commands are visible in a 'restricted' role",
    );
    assert_eq!(leaky.len(), 1, "{findings:#?}");
    let m = &leaky[0].message;
    for expected in [
        "Invoke-Expression",
        "Add-Type",
        "Register-ScheduledTask",
        "Invoke-CimMethod through 'Invoke-Cim*'",
        "program 'powershell'",
        "mshta.exe",
    ] {
        assert!(m.contains(expected), "{expected} missing: {m}");
    }
    for not_expected in ["New-Object", "Start-Process", "whoami", "Get-Service"] {
        assert!(!m.contains(not_expected), "{not_expected} reported: {m}");
    }
    let com = warnings(
        &findings,
        "com",
        "'no_scripts' role: New-Object (-ComObject)",
    );
    assert_eq!(com.len(), 1, "{findings:#?}");
    let denylist = warnings(&findings, "denylist", "code-running");
    assert_eq!(denylist.len(), 1, "{findings:#?}");
    assert!(
        denylist[0].message.contains("Start-Process through '*'"),
        "{}",
        denylist[0].message
    );
    assert!(
        !denylist[0].message.contains("Invoke-Expression"),
        "{}",
        denylist[0].message
    );
    assert!(
        !denylist[0].message.contains("Add-Type"),
        "{}",
        denylist[0].message
    );
    assert!(
        warnings(&findings, "full", "code-running").is_empty(),
        "{findings:#?}"
    );
}

#[test]
fn deny_rules_a_permissive_role_makes_meaningless() {
    let findings = lint_text(
        r#"
[[role]]
name = "restarter"
principals = { groups = ["svc"] }
hosts = { labels = ["app"] }
[role.psrp]
language = "restricted"
visible_cmdlets = ["Get-Service"]
[role.cmd]
commands = ["net stop Spooler"]
[role.deny]
cmd = [{ pattern = "net user.*" }]
cmdlets = ["Stop-Computer"]

[[role]]
name = "admin"
principals = { groups = ["svc", "admins"] }
hosts = { names = ["*"] }
[role.psrp]
language = "full"
visible_cmdlets = ["*"]
visible_external_commands = ["*"]
[role.cmd]
allow_metacharacters = true
commands = [{ pattern = ".*" }]
"#,
    );
    let hits = warnings(&findings, "restarter", "meaningless for group 'svc'");
    assert_eq!(hits.len(), 3, "{findings:#?}");
    assert!(hits.iter().any(|f| f
        .message
        .contains("deny.cmd pattern 'net user.*' is meaningless for group 'svc' in cmd shells")));
    assert!(hits.iter().any(|f| f
        .message
        .contains("deny.cmdlets and deny.parameters are meaningless")));
    assert!(hits.iter().any(|f| f
        .message
        .contains("in PowerShell: role 'admin' makes every program visible")));
}

#[test]
fn deny_rules_that_still_hold_are_not_reported() {
    // A full-language role without metacharacters or every program: the engine denies
    // unanalysable code when any applicable role has deny rules, so the deny holds.
    // Different groups, or hosts that do not overlap, are not the same people's roles.
    let findings = lint_text(
        r#"
[[role]]
name = "demo"
principals = { groups = ["ops"] }
hosts = { names = ["demo-host"] }
[role.psrp]
language = "restricted"
visible_cmdlets = ["Get-Service"]
[role.deny]
cmdlets = ["Stop-Computer"]
cmd = [{ pattern = "net user.*" }]

[[role]]
name = "full-ps"
principals = { groups = ["ops"] }
hosts = { names = ["demo-*"] }
[role.psrp]
language = "full"
visible_cmdlets = ["*"]
[role.cmd]
commands = [{ pattern = "sc query [A-Za-z]+" }]

[[role]]
name = "other-people"
principals = { groups = ["admins"] }
hosts = { names = ["*"] }
[role.cmd]
allow_metacharacters = true
commands = [{ pattern = ".*" }]

[[role]]
name = "other-hosts"
principals = { groups = ["ops"] }
hosts = { names = ["db-*"] }
[role.cmd]
allow_metacharacters = true
commands = [{ pattern = ".*" }]
"#,
    );
    assert!(
        warnings(&findings, "demo", "meaningless").is_empty(),
        "{findings:#?}"
    );
}

#[test]
fn shipped_policies_have_no_breadth_findings() {
    let findings = crate::test_support::lint(&crate::test_support::policies_dir());
    let breadth: Vec<&LintFinding> = findings
        .iter()
        .filter(|f| {
            ["unanchored", "broad group", "code-running", "meaningless"]
                .iter()
                .any(|n| f.message.contains(n))
        })
        .collect();
    assert!(breadth.is_empty(), "{breadth:#?}");
}
