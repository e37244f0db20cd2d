//! The directory loader and `policy check`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::Path;

use super::*;

#[test]
fn check_cli_prints_decisions_and_exit_codes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let (v, code) = check_cli(
        &dir,
        "alice@hopgate.test",
        &[],
        "demo-host",
        &[],
        &CheckInput::Cmd("ipconfig /all".into()),
    );
    assert_eq!(code, 0);
    assert_eq!(
        v,
        serde_json::json!({ "decision": "allow", "role": "demo", "reason": null })
    );
    let (v, code) = check_cli(
        &dir,
        "bob",
        &["ops".into()],
        "demo-host",
        &[],
        &CheckInput::Ps("Stop-Computer".into()),
    );
    assert_eq!(code, 1);
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["rule"], "demo: deny.cmdlets 'Stop-Computer'");
    let (v, code) = check_cli(
        Path::new("/nonexistent/policies"),
        "u",
        &[],
        "h",
        &[],
        &CheckInput::Cmd("x".into()),
    );
    assert_eq!(code, 2);
    assert_eq!(v["decision"], "error");
}

/// A role trusting a directory: every file under it (recursively) is read and trusted;
/// a reload after a file changed trusts the new content and no longer the old.
#[test]
fn trusted_directories_are_read_at_load_and_again_on_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let policies = tmp.path().join("policies");
    let wrappers = tmp.path().join("wrappers/sub");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::create_dir_all(&wrappers).unwrap();
    std::fs::write(
        policies.join("ops.toml"),
        r#"
[[role]]
name = "ops"
principals = { users = ["ops"] }
hosts = { names = ["*"] }
[role.trust]
dirs = ["../wrappers"]
[role.psrp]
language = "full"
visible_cmdlets = ["*"]
[role.deny]
cmdlets = ["Stop-Computer"]
"#,
    )
    .unwrap();
    let code = "foreach ($i in $input) { & $i }";
    std::fs::write(wrappers.join("w.ps1"), code).unwrap();
    let decide = |script: &str| {
        let engine = load_dir(&policies).unwrap();
        let subject = Subject {
            user: "ops".into(),
            groups: vec![],
        };
        let inv = Invocation {
            client_input: false,
            statements: vec![vec![InvokedCommand {
                name: script.into(),
                is_script: true,
                args: vec![],
            }]],
        };
        let host = HostRef {
            name: "h",
            labels: &[],
        };
        engine
            .decide(&subject, &host, &Operation::Pipeline(&inv))
            .is_allow()
    };
    assert!(decide(code));
    let edited = "foreach ($i in $input) { & $i } # changed";
    assert!(!decide(edited));
    std::fs::write(wrappers.join("w.ps1"), edited).unwrap();
    assert!(decide(edited));
    assert!(!decide(code));
    std::fs::remove_dir_all(tmp.path().join("wrappers")).unwrap();
    let engine = load_dir(&policies).unwrap();
    assert!(
        engine.warnings().iter().any(|w| w.contains("was not read")),
        "a trusted directory that is gone: {:?}",
        engine.warnings()
    );
    assert!(!decide(edited));
}
