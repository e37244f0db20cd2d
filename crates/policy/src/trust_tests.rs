//! Trusted code by content (`[role.trust]`): a trusted script runs unanalysed, under a
//! role with deny rules; one byte different and it is analysed (and refused) as before.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use super::test_ops::*;
use super::trust::{content_hashes, hex, sha256, TrustedDir, TrustedFile};
use super::*;

/// Code the analyser cannot follow (a loop, variables), like every Ansible wrapper.
const WRAPPER: &str = "$x = foreach ($in in $input) { $in }\r\n  if ($x) { & $x }\r\n\r\n";

fn policy(trust: &str) -> String {
    format!(
        r#"
[[role]]
name = "ops"
principals = {{ users = ["ops"] }}
hosts = {{ names = ["*"] }}
{trust}
[role.psrp]
language = "full"
visible_cmdlets = ["*"]
[role.deny]
cmdlets = ["Stop-Computer"]
"#
    )
}

fn engine(text: &str, dirs: &[TrustedDir]) -> Result<Engine, PolicyError> {
    Engine::from_sources_with_trust(
        &[PolicySource {
            path: "ops.toml".into(),
            text: text.into(),
        }],
        dirs,
    )
}

fn decide(e: &Engine, op: &Op) -> Decision {
    decide_op(e, "ops", &[], "h", &[], op)
}

#[test]
fn a_script_trusted_by_listed_hash_runs_unanalysed_beside_deny_rules() {
    let untrusted = engine(&policy(""), &[]).unwrap();
    let d = decide(&untrusted, &ps(WRAPPER));
    assert!(!d.is_allow(), "unanalysable beside a deny rule: {d:?}");

    let listed = format!(
        "[role.trust]\nsha256 = [\"{}\"]\n",
        hex(&sha256(WRAPPER.as_bytes()))
    );
    let e = engine(&policy(&listed), &[]).unwrap();
    assert!(decide(&e, &ps(WRAPPER)).is_allow());
    // One byte different: another hash, analysed, refused.
    let edited = WRAPPER.replace("$in }", "$in}");
    assert!(!decide(&e, &ps(&edited)).is_allow());
    // Deny rules still judge everything that is not the trusted text.
    assert!(!decide(&e, &ps("Stop-Computer")).is_allow());
}

#[test]
fn every_file_of_a_trusted_directory_is_trusted_in_both_forms_it_travels_in() {
    let dir = TrustedDir {
        dir: "wrappers".into(),
        files: vec![TrustedFile {
            path: "bootstrap_wrapper.ps1".into(),
            hashes: content_hashes(WRAPPER.as_bytes()),
        }],
    };
    let text = policy("[role.trust]\ndirs = [\"wrappers\"]\n");
    let e = engine(&text, core::slice::from_ref(&dir)).unwrap();
    // As a PSRP script, as the file is.
    assert!(decide(&e, &ps(WRAPPER)).is_allow());
    // As Ansible's winrm connection sends it: -EncodedCommand of the trimmed lines.
    let line = format!(
        "powershell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {}",
        enc(&trust::encoded_form(WRAPPER))
    );
    let cmd_role = text.replace(
        "[role.deny]",
        "[role.cmd]\ncommands = [{ pattern = \"powershell .*\" }]\n[role.deny]",
    );
    let e = engine(&cmd_role, core::slice::from_ref(&dir)).unwrap();
    let d = decide(&e, &Op::Skip(line));
    assert!(d.is_allow(), "{d:?}");
    // A script block passed to a trusted script is code, judged as such.
    let inv = Invocation {
        client_input: false,
        statements: vec![vec![InvokedCommand {
            name: WRAPPER.into(),
            is_script: true,
            args: vec![named("x", ArgValue::ScriptBlock("Stop-Computer".into()))],
        }]],
    };
    assert!(!decide(&e, &Op::Inv(inv)).is_allow());
}

#[test]
fn a_trusted_directory_the_gateway_did_not_read_trusts_nothing_and_says_so() {
    let text = policy("[role.trust]\ndirs = [\"missing\"]\n");
    let e = engine(&text, &[]).unwrap();
    assert!(
        e.warnings()
            .iter()
            .any(|w| w.contains("'missing' was not read")),
        "{:?}",
        e.warnings()
    );
    assert!(!decide(&e, &ps(WRAPPER)).is_allow());
    assert_eq!(
        trusted_dirs(&[PolicySource {
            path: "a.toml".into(),
            text
        }]),
        ["missing"]
    );
    let bad = policy("[role.trust]\nsha256 = [\"abc\"]\n");
    assert!(engine(&bad, &[]).is_err());
}

#[test]
fn modules_are_named_by_the_trusted_path_of_their_code() {
    use super::ansible::module_name;
    for (path, name) in [
        (
            "/x/site-packages/ansible_collections/ansible/windows/plugins/modules/win_ping.ps1",
            Some("ansible.windows.win_ping"),
        ),
        (
            "trusted/ansible.windows/plugins/modules/win_service.ps1",
            Some("ansible.windows.win_service"),
        ),
        ("trusted/ansible.windows/plugins/modules/win_ping.py", None),
        (
            "trusted/ansible.windows/plugins/module_utils/Foo.psm1",
            None,
        ),
        ("trusted/windows/plugins/modules/win_ping.ps1", None),
        ("plugins/modules/win_ping.ps1", None),
    ] {
        assert_eq!(module_name(path).as_deref(), name, "{path}");
    }
}

#[test]
fn ansibles_exit_code_epilogue_is_known_and_what_it_follows_is_analysed() {
    let epilogue = "\nIf (-not $?) { If (Get-Variable LASTEXITCODE -ErrorAction SilentlyContinue) \
                    { exit $LASTEXITCODE } Else { exit 1 } }";
    let e = engine(&policy(""), &[]).unwrap();
    let ok = format!("Set-StrictMode -Version Latest\nGet-Service -Name Spooler;{epilogue}");
    assert!(decide(&e, &ps(&ok)).is_allow());
    let denied = format!("Stop-Computer{epilogue}");
    assert!(!decide(&e, &ps(&denied)).is_allow());
    // Anything else after it is not the epilogue.
    let other = format!("Get-Service{epilogue}\nif ($x) {{ & $x }}");
    assert!(!decide(&e, &ps(&other)).is_allow());
}
