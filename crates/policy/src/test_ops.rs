//! Test-only: the operations the table-driven suites decide, their builders, and one
//! `decide` for all of them (a PSRP script, command objects, WinRS lines, stdin, metadata
//! requests, shell creation).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use base64::Engine as _;

use super::*;

/// One operation as a client would send it.
#[derive(Debug)]
pub(crate) enum Op {
    /// A WinRS command line through cmd.exe.
    Cmd(String),
    /// A WinRS command line with WINRS_SKIP_CMD_SHELL.
    Skip(String),
    /// WinRS Command plus Arguments.
    Args(&'static str, Vec<String>),
    /// Stdin to a running program.
    Stdin(&'static str, String),
    /// PowerShell script text (a PSRP command with IsScript).
    Ps(String),
    /// A PSRP pipeline of command objects.
    Inv(Invocation),
    /// GET_COMMAND_METADATA names.
    Meta(Vec<String>),
    /// Creating a cmd shell.
    OpenCmd,
    /// Creating a runspace pool on a configuration.
    OpenPsrp(&'static str),
}

pub(crate) fn cmd(line: &str) -> Op {
    Op::Cmd(line.into())
}
pub(crate) fn ps(script: &str) -> Op {
    Op::Ps(script.into())
}
pub(crate) fn s(v: &str) -> ArgValue {
    ArgValue::String(v.into())
}
pub(crate) fn named(n: &str, v: ArgValue) -> InvokedArg {
    InvokedArg {
        name: Some(n.into()),
        value: v,
    }
}
pub(crate) fn pos(v: ArgValue) -> InvokedArg {
    InvokedArg {
        name: None,
        value: v,
    }
}
pub(crate) fn c(name: &str, args: Vec<InvokedArg>) -> InvokedCommand {
    InvokedCommand {
        name: name.into(),
        is_script: false,
        args,
    }
}
pub(crate) fn one(cmd: InvokedCommand) -> Op {
    pipe(vec![vec![cmd]])
}
pub(crate) fn pipe(statements: Vec<Vec<InvokedCommand>>) -> Op {
    Op::Inv(Invocation {
        statements,
        client_input: false,
    })
}
/// pypsrp `Client.execute_ps(script)`.
pub(crate) fn execute_ps(script: &str) -> Op {
    pipe(vec![vec![
        c("Invoke-Expression", vec![named("Command", s(script))]),
        c("Out-String", vec![named("Stream", ArgValue::Bool(true))]),
    ]])
}
pub(crate) fn meta(names: &[&str]) -> Op {
    Op::Meta(names.iter().map(|n| n.to_string()).collect())
}
/// `-EncodedCommand` text: UTF-16LE base64.
pub(crate) fn enc(script: &str) -> String {
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decides `op` for `user` in `groups` on `host` with `labels`.
pub(crate) fn decide_op(
    engine: &Engine,
    user: &str,
    groups: &[&str],
    host: &str,
    labels: &[&str],
    op: &Op,
) -> Decision {
    let subject = Subject {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    let host = HostRef {
        name: host,
        labels: &labels,
    };
    let script_inv;
    let operation = match op {
        Op::Cmd(line) => Operation::CmdLine {
            command: line,
            arguments: &[],
            skip_cmd_shell: false,
        },
        Op::Skip(line) => Operation::CmdLine {
            command: line,
            arguments: &[],
            skip_cmd_shell: true,
        },
        Op::Args(command, args) => Operation::CmdLine {
            command,
            arguments: args,
            skip_cmd_shell: false,
        },
        Op::Stdin(program, data) => Operation::CmdStdin { program, data },
        Op::Ps(script) => {
            script_inv = Invocation {
                client_input: false,
                statements: vec![vec![InvokedCommand {
                    name: script.clone(),
                    is_script: true,
                    args: vec![],
                }]],
            };
            Operation::Pipeline(&script_inv)
        }
        Op::Inv(inv) => Operation::Pipeline(inv),
        Op::Meta(names) => Operation::CommandMetadata { names },
        Op::OpenCmd => Operation::OpenShell {
            kind: ShellKind::Cmd,
        },
        Op::OpenPsrp(configuration) => Operation::OpenShell {
            kind: ShellKind::Psrp { configuration },
        },
    };
    engine.decide(&subject, &host, &operation)
}
