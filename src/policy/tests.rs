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
