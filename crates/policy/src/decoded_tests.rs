//! The code the engine decodes to judge an operation, as [`Engine::decide_with_code`]
//! returns it for the audit record: `-EncodedCommand`, pypsrp's `Invoke-Expression`
//! wrapper, `cmd /c`, `powershell -c` and interpreter stdin; capped; and the same
//! decision as [`Engine::decide`].
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use base64::Engine as _;

use super::test_support::{load_dir, policies_dir};
use super::*;

fn alice() -> Subject {
    Subject {
        user: "alice@hopgate.test".into(),
        groups: Vec::new(),
    }
}

fn judge(op: &Operation<'_>) -> Judgement {
    let engine = load_dir(&policies_dir()).unwrap();
    let host = HostRef {
        name: "demo-host",
        labels: &[],
    };
    let j = engine.decide_with_code(&alice(), &host, op);
    assert_eq!(j.decision, engine.decide(&alice(), &host, op), "{op:?}");
    j
}

fn pairs(j: &Judgement) -> Vec<(&str, &str)> {
    j.decoded
        .iter()
        .map(|d| (d.via.as_str(), d.text.as_str()))
        .collect()
}

fn encode(script: &str) -> String {
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn cmd_line(command: &str, arguments: &[String]) -> Judgement {
    judge(&Operation::CmdLine {
        command,
        arguments,
        skip_cmd_shell: false,
    })
}

#[test]
fn encoded_command_on_a_cmd_line() {
    // pywinrm's run_ps, Ansible's winrm connection, Go's winrm.Powershell.
    let args = vec!["-EncodedCommand".to_string(), encode("Get-Service")];
    let j = cmd_line("powershell", &args);
    assert!(j.decision.is_allow(), "{:?}", j.decision);
    assert_eq!(pairs(&j), vec![("EncodedCommand", "Get-Service")]);
    // Denied ones carry their decoded code too.
    let args = vec![
        "-NoProfile".to_string(),
        "-enc".to_string(),
        encode("Stop-Computer -Force"),
    ];
    let j = cmd_line("powershell.exe", &args);
    assert!(!j.decision.is_allow());
    assert_eq!(pairs(&j), vec![("EncodedCommand", "Stop-Computer -Force")]);
}

#[test]
fn pypsrp_invoke_expression_wrapper() {
    // pypsrp's execute_ps: Invoke-Expression -Command <script> | Out-String -Stream.
    let inv = Invocation {
        statements: vec![vec![
            InvokedCommand {
                name: "Invoke-Expression".into(),
                is_script: false,
                args: vec![InvokedArg {
                    name: Some("Command".into()),
                    value: ArgValue::String("Get-Service".into()),
                }],
            },
            InvokedCommand {
                name: "Out-String".into(),
                is_script: false,
                args: vec![InvokedArg {
                    name: Some("Stream".into()),
                    value: ArgValue::Bool(true),
                }],
            },
        ]],
        client_input: false,
    };
    let j = judge(&Operation::Pipeline(&inv));
    assert!(j.decision.is_allow(), "{:?}", j.decision);
    assert_eq!(pairs(&j), vec![("Invoke-Expression", "Get-Service")]);
    // The same statement twice (Cmds and its ExtraCmds copy) is recorded once.
    let twice = Invocation {
        statements: vec![inv.statements[0].clone(), inv.statements[0].clone()],
        client_input: false,
    };
    assert_eq!(pairs(&judge(&Operation::Pipeline(&twice))).len(), 1);
    // The same wrapper as script text.
    let script = Invocation {
        statements: vec![vec![InvokedCommand {
            name: "Invoke-Expression -Command 'Get-Service' | Out-String -Stream".into(),
            is_script: true,
            args: Vec::new(),
        }]],
        client_input: false,
    };
    let j = judge(&Operation::Pipeline(&script));
    assert_eq!(pairs(&j), vec![("Invoke-Expression", "Get-Service")]);
}

#[test]
fn cmd_c_and_powershell_c_nested() {
    let args = vec![
        "/c".to_string(),
        "\"powershell -c Get-Service\"".to_string(),
    ];
    let j = cmd_line("cmd", &args);
    assert!(j.decision.is_allow(), "{:?}", j.decision);
    assert_eq!(
        pairs(&j),
        vec![
            ("cmd /c", "powershell -c Get-Service"),
            ("powershell -Command", "Get-Service"),
        ]
    );
}

#[test]
fn plain_commands_carry_nothing() {
    assert!(cmd_line("ipconfig", &["/all".to_string()])
        .decoded
        .is_empty());
    let inv = Invocation {
        statements: vec![vec![InvokedCommand {
            name: "Get-Service".into(),
            is_script: false,
            args: Vec::new(),
        }]],
        client_input: false,
    };
    assert!(judge(&Operation::Pipeline(&inv)).decoded.is_empty());
}

#[test]
fn interpreter_stdin() {
    let j = judge(&Operation::CmdStdin {
        program: "powershell -",
        data: "Get-Service\r\n",
    });
    assert!(j.decision.is_allow(), "{:?}", j.decision);
    assert_eq!(pairs(&j), vec![("PowerShell stdin", "Get-Service")]);
    let j = judge(&Operation::CmdStdin {
        program: "cmd",
        data: "hostname\r\nipconfig\r\n",
    });
    assert_eq!(pairs(&j), vec![("cmd stdin", "hostname\r\nipconfig")]);
}

#[test]
fn decoded_code_is_capped() {
    // One long script: cut at a character boundary, marked.
    let long = format!("Write-Output '{}'", "é".repeat(DECODED_TEXT_CAP));
    let args = vec!["-EncodedCommand".to_string(), encode(&long)];
    let j = cmd_line("powershell", &args);
    let d = &j.decoded[0];
    assert!(d.truncated);
    assert!(d.text.len() <= DECODED_TEXT_CAP && d.text.len() > DECODED_TEXT_CAP - 4);
    assert!(long.starts_with(&d.text));
    // Many pieces of code: at most DECODED_MAX entries.
    let script: Vec<String> = (0..DECODED_MAX + 4)
        .map(|n| format!("Invoke-Expression 'Write-Output {n}'"))
        .collect();
    let inv = Invocation {
        statements: vec![vec![InvokedCommand {
            name: script.join("; "),
            is_script: true,
            args: Vec::new(),
        }]],
        client_input: false,
    };
    let j = judge(&Operation::Pipeline(&inv));
    assert_eq!(j.decoded.len(), DECODED_MAX);
    assert_eq!(pairs(&j)[0], ("Invoke-Expression", "Write-Output 0"));
}
