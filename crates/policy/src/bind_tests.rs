//! Parameter binding against the issue's measured bypasses and the everyday forms next
//! to them: each row is what PowerShell would bind, judged by the shipped roles (and two
//! small roles of the same shape).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::test_ops::{decide_op, ps};
use super::test_support::read_sources;
use super::*;

/// Shipped roles plus roles of the same shape the issue measured with.
fn engine() -> Engine {
    let mut sources = read_sources(&super::test_support::policies_dir()).unwrap();
    sources.push(PolicySource {
        path: "extra.toml".into(),
        text: r#"
[[role]]
name = "winrm-set"
principals = { groups = ["set-ops"] }
hosts = { names = ["*"] }
[role.psrp]
language = "restricted"
visible_cmdlets = [
    { name = "Restart-Service", parameters = [{ name = "Name", validate_set = ["Spooler"] }] },
    { name = "Get-Service", parameters = [{ name = "Name", validate_set = ["Spooler"] }] },
]

[[role]]
name = "piped-restart"
principals = { groups = ["pipe-ops"] }
hosts = { names = ["*"] }
[role.psrp]
language = "restricted"
visible_cmdlets = [
    { name = "Restart-Service", pipeline_input = true, parameters = [{ name = "Name", validate_set = ["Spooler"] }] },
    { name = "Get-Service", parameters = [{ name = "Name", validate_set = ["Spooler"] }] },
]

[[role]]
name = "logs-reader"
principals = { groups = ["log-readers"] }
hosts = { names = ["*"] }
[role.psrp]
language = "restricted"
visible_cmdlets = [
    { name = "Get-ChildItem", parameters = [
        { name = "Path", validate_pattern = 'C:\\Logs(\\.*)?' },
        { name = "Include" }, { name = "Filter" }, { name = "Recurse" },
    ] },
]

[[role]]
name = "no-restart"
principals = { groups = ["no-restart"] }
hosts = { names = ["*"] }
[role.psrp]
language = "restricted"
visible_cmdlets = ["Restart-Computer", "Get-Date"]
[role.deny]
parameters = [{ command = "*", names = ["ComputerName"] }]
"#
        .into(),
    });
    Engine::from_sources(&sources).unwrap()
}

fn decide(engine: &Engine, group: &str, host: &str, labels: &[&str], script: &str) -> Decision {
    decide_op(
        engine,
        "tester@corp.test",
        &[group],
        host,
        labels,
        &ps(script),
    )
}

/// (group, host, labels, script, allowed, a word the reason must contain)
type Row = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
    bool,
    &'static str,
);

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // -OutVariable takes a value: the string binds to -Command.
    ("ops", "demo-host", &[], "iex -ov exit 'Stop-Computer -Force'", false, "Stop-Computer"),
    ("ops", "demo-host", &[], "Invoke-Expression -OutVariable x 'Stop-Computer'", false, "Stop-Computer"),
    ("ops", "demo-host", &[], "Get-Date", true, ""),
    // Pipeline input is a value.
    ("svc-restarters", "app1", &["app"], "Get-Service | Stop-Service", false, "pipeline input"),
    ("svc-restarters", "app1", &["app"], "Stop-Service -Name Spooler", true, ""),
    ("svc-restarters", "app1", &["app"], "Restart-Service -Name Spooler", true, ""),
    ("svc-restarters", "app1", &["app"], "Restart-Service Spooler", true, ""),
    ("set-ops", "h", &[], "'WinRM' | Restart-Service", false, "WinRM"),
    ("set-ops", "h", &[], "'Spooler' | Restart-Service", true, ""),
    ("set-ops", "h", &[], "Get-Service | Restart-Service", false, "pipeline input"),
    ("set-ops", "h", &[], "Restart-Service WinRM", false, "WinRM"),
    ("pipe-ops", "h", &[], "Get-Service -Name Spooler | Restart-Service", true, ""),
    // The objects a Get- command names by a literal identity are what the same noun acts on.
    ("set-ops", "h", &[], "Get-Service -Name Spooler | Restart-Service", true, ""),
    ("set-ops", "h", &[], "Get-Service Spooler | Restart-Service", true, ""),
    ("svc-restarters", "app1", &["app"], "Get-Service -Name Spooler | Restart-Service -Force", true, ""),
    ("svc-restarters", "app1", &["app"], "Get-Service -Name W32Time | Stop-Service", true, ""),
    ("svc-restarters", "app1", &["app"], "Get-Service -Name Spool* | Restart-Service", false, "Spool*"),
    ("svc-restarters", "app1", &["app"], "Get-Service -Name Spooler -DependentServices | Restart-Service", false, "DependentServices"),
    ("set-ops", "h", &[], "Get-Service -Name Spooler | Get-Service | Restart-Service", false, "InputObject"),
    // Aliases and positions of a denied parameter.
    ("operators", "srv-1", &[], "Get-HotFix -IPAddress dc01", false, "ComputerName"),
    ("operators", "srv-1", &[], "Get-HotFix -CN dc01", false, "ComputerName"),
    ("operators", "srv-1", &[], "Get-HotFix -__Server dc01", false, "ComputerName"),
    ("operators", "srv-1", &[], "Get-HotFix -Comp dc01", false, "ComputerName"),
    ("operators", "srv-1", &[], "Get-HotFix", true, ""),
    ("operators", "srv-1", &[], "Get-HotFix KB5005565", true, ""),
    ("no-restart", "h", &[], "Restart-Computer dc01 -Force", false, "positional argument 1"),
    ("no-restart", "h", &[], "Restart-Computer -Force", true, ""),
    // The second token is the real -Path.
    ("log-readers", "h", &[], r"Get-ChildItem -Include x C:\Users\Administrator", false, "Path"),
    ("log-readers", "h", &[], r"Get-ChildItem C:\Logs", true, ""),
    ("log-readers", "h", &[], r"Get-ChildItem -Include *.log C:\Logs\app", true, ""),
    ("log-readers", "h", &[], r"Get-ChildItem C:\Logs -Filter *.log", true, ""),
    ("log-readers", "h", &[], r"Get-ChildItem C:\Logs *.log", true, ""),
    // Staying on the host.
    ("operators", "srv-1", &[], r"Get-Item '\\dc01\c$\secrets.xlsx'", false, "another machine"),
    ("operators", "srv-1", &[], r"Get-Item \\?\UNC\dc01\share\secrets.xlsx", false, "another machine"),
    ("operators", "srv-1", &[], r"Get-ChildItem 'Microsoft.PowerShell.Core\FileSystem::\\dc01\c$'", false, "another machine"),
    ("operators", "srv-1", &[], r"Get-Item \\dc01\share", false, "another machine"),
    ("operators", "srv-1", &[], r"Get-ChildItem -LiteralPath //dc01/share", false, "another machine"),
    ("operators", "srv-1", &[], r"Get-Item C:\Windows\win.ini", true, ""),
    ("operators", "srv-1", &[], r"Get-Item \\?\C:\Windows\win.ini", true, ""),
    ("operators", "srv-1", &[], "Get-Service -CimSession dc01", false, "Session"),
    ("operators", "srv-1", &[], "Get-Service -Name WinRM", true, ""),
    ("operators", "srv-1", &[], "Get-Service a b c d", false, "do not bind"),
    // The call operator with a literal name runs that command or program.
    ("ops", "demo-host", &[], "& 'Stop-Computer' -Force", false, "Stop-Computer"),
    ("ops", "demo-host", &[], "& Get-Date", true, ""),
    ("operators", "srv-1", &[], r"& 'C:\Windows\System32\ipconfig.exe' /release", false, "ipconfig"),
    ("operators", "srv-1", &[], "& ipconfig /all", true, ""),
    ("operators", "srv-1", &[], "& { Get-Date }", false, "call operator"),
];

#[test]
fn the_measured_bypasses_are_judged_by_their_bindings() {
    let engine = engine();
    let mut failures = Vec::new();
    for (i, (group, host, labels, script, allowed, word)) in ROWS.iter().enumerate() {
        let d = decide(&engine, group, host, labels, script);
        let ok = match &d {
            Decision::Allow { .. } => *allowed,
            Decision::Deny { reason, .. } => !*allowed && reason.contains(word),
        };
        if !ok {
            failures.push(format!(
                "#{i} {group} `{script}`: expected allow={allowed} ({word}), got {d:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    fn shared() -> &'static Engine {
        static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
        ENGINE.get_or_init(super::engine)
    }

    /// Pieces of the syntax the binder and parser care about, recombined at random.
    const PIECES: &[&str] = &[
        "Get-Service",
        "Restart-Service",
        "iex",
        "Invoke-Expression",
        "Get-HotFix",
        "Restart-Computer",
        "Get-ChildItem",
        "Stop-Computer",
        "net",
        "cmd /c",
        "powershell -c",
        " -ov ",
        " -Name ",
        " -CN ",
        " -Force",
        " -Force:$false",
        " -- ",
        " | ",
        "; ",
        "'x'",
        "'Spooler'",
        "\"WinRM\"",
        " dc01",
        " \\\\dc01\\c$ ",
        " C:\\Logs",
        " -Include ",
        " @(1,2)",
        " { $_.Name }",
        " -ErrorAction Stop",
        " -",
        "–",
        " ",
        "\n",
        "`",
        "$",
        "(",
        ")",
        "@{a=1}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        #[test]
        fn deciding_any_recombination_never_panics(parts in proptest::collection::vec(0..PIECES.len(), 0..12)) {
            let engine = shared();
            let script: String = parts.iter().map(|&i| PIECES[i]).collect();
            for (group, host, labels) in [("ops", "demo-host", &[][..]), ("operators", "srv-1", &[][..]), ("svc-restarters", "app1", &["app"][..]), ("set-ops", "h", &[][..])] {
                let a = decide(engine, group, host, labels, &script);
                prop_assert_eq!(a, decide(engine, group, host, labels, &script));
            }
        }

        #[test]
        fn deciding_arbitrary_text_never_panics(script in "\\PC{0,80}") {
            let engine = shared();
            let _ = decide(engine, "operators", "srv-1", &[], &script);
        }
    }
}

#[test]
fn policy_files_add_metadata_for_site_commands() {
    let text = r#"
[[command]]
name = "Reset-AppPool"
aliases = ["rap"]
parameters = [
    { name = "Name", aliases = ["n"], position = 0, pipeline = "value" },
    { name = "ComputerName", aliases = ["cn"] },
    { name = "Force", switch = true },
]

[[role]]
name = "apps"
principals = { groups = ["apps"] }
hosts = { names = ["*"] }
[role.psrp]
language = "restricted"
visible_functions = [{ name = "Reset-AppPool", parameters = [
    { name = "Name", validate_set = ["Web"] }, { name = "Force" },
] }]
[role.deny]
parameters = [{ command = "*", names = ["ComputerName"] }]
"#;
    let engine = Engine::from_sources(&[PolicySource {
        path: "apps.toml".into(),
        text: text.into(),
    }])
    .unwrap();
    let run = |s: &str| decide(&engine, "apps", "h", &[], s);
    assert!(run("Reset-AppPool Web -Force").is_allow());
    assert!(run("rap -n Web").is_allow());
    assert!(!run("Reset-AppPool Other").is_allow());
    assert!(!run("'Other' | Reset-AppPool").is_allow());
    let Decision::Deny { reason, .. } = run("rap Web -cn dc01") else {
        panic!("a denied parameter through the alias of a site command was allowed");
    };
    assert!(reason.contains("ComputerName"), "{reason}");
    let bad = text.replace("pipeline = \"value\"", "pipeline = \"sideways\"");
    assert!(Engine::from_sources(&[PolicySource {
        path: "apps.toml".into(),
        text: bad,
    }])
    .is_err());
}

#[test]
fn every_remaining_argument_is_judged() {
    let text = r#"
[[role]]
name = "echo"
principals = { groups = ["echo"] }
hosts = { names = ["*"] }
[role.psrp]
language = "restricted"
visible_cmdlets = [{ name = "Write-Output", parameters = [{ name = "InputObject", validate_set = ["a", "b"] }] }]
"#;
    let engine = Engine::from_sources(&[PolicySource {
        path: "echo.toml".into(),
        text: text.into(),
    }])
    .unwrap();
    assert!(decide(&engine, "echo", "h", &[], "Write-Output a b a").is_allow());
    let Decision::Deny { reason, .. } = decide(&engine, "echo", "h", &[], "Write-Output a b c")
    else {
        panic!("the third remaining argument escaped the rule");
    };
    assert!(reason.contains("'c'"), "{reason}");
}
