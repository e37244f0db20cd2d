//! `hopgate policy check`: one decision as JSON and an exit code (0 allow, 1 deny,
//! 2 error). The lead wires clap to [`check_cli`].

use std::path::Path;

use serde_json::json;

use super::load_dir;
use hopgate_policy::{Decision, HostRef, Invocation, InvokedCommand, Operation, Subject};

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckInput {
    /// A cmd-shell command line (as `rsp:Command`, cmd.exe interpreting it).
    Cmd(String),
    /// A PowerShell script sent over PSRP (`IsScript`).
    Ps(String),
}

/// Loads `policies`, decides, and returns the JSON document and the exit code.
pub fn check_cli(
    policies: &Path,
    user: &str,
    groups: &[String],
    host: &str,
    labels: &[String],
    input: &CheckInput,
) -> (serde_json::Value, i32) {
    let engine = match load_dir(policies) {
        Ok(e) => e,
        Err(e) => {
            return (
                json!({ "decision": "error", "role": null, "reason": e.to_string() }),
                2,
            )
        }
    };
    let who = Subject {
        user: user.to_string(),
        groups: groups.to_vec(),
    };
    let target = HostRef { name: host, labels };
    let invocation;
    let op = match input {
        CheckInput::Cmd(line) => Operation::CmdLine {
            command: line,
            arguments: &[],
            skip_cmd_shell: false,
        },
        CheckInput::Ps(script) => {
            invocation = Invocation {
                client_input: false,
                statements: vec![vec![InvokedCommand {
                    name: script.clone(),
                    is_script: true,
                    args: Vec::new(),
                }]],
            };
            Operation::Pipeline(&invocation)
        }
    };
    match engine.decide(&who, &target, &op) {
        Decision::Allow { role } => (
            json!({ "decision": "allow", "role": role, "reason": null }),
            0,
        ),
        Decision::Deny { reason, rule } => (
            json!({ "decision": "deny", "role": null, "reason": reason, "rule": rule }),
            1,
        ),
    }
}
