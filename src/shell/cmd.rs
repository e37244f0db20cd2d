//! WinRS cmd shells: command lines, and the stdin of the programs they start.
//!
//! Interpreters (`cmd`, `powershell -`) run what they read, so input sent to a running
//! command is judged as the program would see it. A line split across Sends is judged as
//! far as it has come, and again whole later: a prefix that is refused on its own refuses
//! the line (fail closed). Denials here are WS-Man faults: a cmd client has no other way
//! to be told.

use std::collections::HashMap;

use super::{Denial, Fact, Input, Judge, Request, Verdict};
use crate::policy::{Decision, Judgement, Operation};
use crate::wsman::{Action, Body, CommandLine, Stream};

/// Longest unfinished input line held for inspection.
const MAX_PENDING_INPUT: usize = 64 * 1024;
/// Most running commands remembered per cmd shell.
const MAX_TRACKED_COMMANDS: usize = 256;

/// Inspection state of one cmd shell.
#[derive(Debug, Default)]
pub(super) struct CmdInspector {
    /// CommandId → what it runs, for as long as the client may send it input.
    commands: HashMap<String, Program>,
}

/// A running command of a cmd shell.
#[derive(Debug, Default)]
struct Program {
    /// The command line that started it (Command and Arguments joined by spaces).
    line: String,
    /// Input after the last line break: judged again, whole, once the line is complete.
    partial: String,
}

// === impl CmdInspector ===

impl CmdInspector {
    pub(super) fn on_request(
        &mut self,
        req: Request<'_>,
        judge: &Judge<'_>,
        facts: &mut Vec<Fact>,
    ) -> Verdict {
        let env = req.envelope;
        let judged = match (env.action(), &env.body) {
            (Action::Command, Body::CommandLine(cl)) => {
                let skip_cmd_shell = env
                    .option("WINRS_SKIP_CMD_SHELL")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let judged = judge.judge(&Operation::CmdLine {
                    command: &cl.command,
                    arguments: &cl.arguments,
                    skip_cmd_shell,
                });
                let mut command = vec![cl.command.clone()];
                command.extend(cl.arguments.iter().cloned());
                record(facts, cl.command_id.clone(), command, judged)
            }
            (Action::Send, Body::Send(streams)) => self.stdin(streams, judge, facts),
            _ => Ok(()),
        };
        match judged {
            Ok(()) => Verdict::Forward(vec![req.wire.clone()]),
            Err(reason) => Verdict::Deny(Denial::Access(reason)),
        }
    }

    /// Input for running commands; Err(reason) refuses the whole Send.
    fn stdin(
        &mut self,
        streams: &[Stream],
        judge: &Judge<'_>,
        facts: &mut Vec<Fact>,
    ) -> Result<(), String> {
        for s in streams {
            let known = s
                .command_id
                .as_deref()
                .filter(|_| s.name.eq_ignore_ascii_case("stdin"))
                .and_then(|id| self.commands.get_mut(id));
            let Some(program) = known else {
                return Err(refuse(
                    facts,
                    s.command_id.clone(),
                    vec![format!("(input on stream {})", s.name)],
                    "input for a command the gateway did not start",
                ));
            };
            let mut text = std::mem::take(&mut program.partial);
            text.push_str(&String::from_utf8_lossy(&s.data));
            if text.len() > MAX_PENDING_INPUT {
                return Err(refuse(
                    facts,
                    s.command_id.clone(),
                    vec![format!("(input to {})", program.line)],
                    "an input line longer than the gateway inspects",
                ));
            }
            let shown = vec![format!("{} < {}", program.line, text.trim_end())];
            let judged = judge.judge(&Operation::CmdStdin {
                program: &program.line,
                data: &text,
            });
            program.partial = match text.rfind('\n') {
                Some(i) => text.get(i + 1..).unwrap_or_default().to_string(),
                None => text,
            };
            record(facts, s.command_id.clone(), shown, judged)?;
            facts.push(Fact::Input(Input::stdin(s)));
        }
        Ok(())
    }

    /// Remembers what a Command started (for its stdin), once the host accepted it.
    pub(super) fn started(&mut self, command_id: &str, cl: &CommandLine) {
        if self.commands.len() >= MAX_TRACKED_COMMANDS {
            // Oldest ids are unknowable from a HashMap; a shell this busy is odd enough
            // that forgetting all (their input is then refused) is fine.
            self.commands.clear();
        }
        let mut line = cl.command.clone();
        for a in &cl.arguments {
            line.push(' ');
            line.push_str(a);
        }
        self.commands.insert(
            command_id.to_string(),
            Program {
                line,
                partial: String::new(),
            },
        );
    }
}

/// Turns a decision (with the code policy decoded) into a fact; Err(reason) for a denial.
pub(super) fn record(
    facts: &mut Vec<Fact>,
    command_id: Option<String>,
    command: Vec<String>,
    judged: Judgement,
) -> Result<(), String> {
    let decoded = judged.decoded;
    match judged.decision {
        Decision::Allow { role } => {
            facts.push(Fact::Allowed {
                command_id,
                command,
                decoded,
                role,
            });
            Ok(())
        }
        Decision::Deny { reason, .. } => {
            facts.push(Fact::Denied {
                command_id,
                command,
                decoded,
                reason: reason.clone(),
            });
            Err(reason)
        }
    }
}

/// Records a refusal and returns its reason.
pub(super) fn refuse(
    facts: &mut Vec<Fact>,
    command_id: Option<String>,
    command: Vec<String>,
    reason: &str,
) -> String {
    facts.push(Fact::Denied {
        command_id,
        command,
        decoded: Vec::new(),
        reason: reason.to_string(),
    });
    reason.to_string()
}
