//! WinRS cmd shells: command lines, and the stdin of the programs they start.
//!
//! Interpreters (`cmd`, `powershell -`) run what they read, so input sent to a running
//! command is judged as the program would see it. A line split across Sends is judged as
//! far as it has come, and again whole later: a prefix that is refused on its own refuses
//! the line (fail closed). The unfinished line is what the gateway must hold to decide, and
//! that is what the input limit bounds. Input of any other program is data that nothing
//! executes: judged once (the decision cannot depend on its content) and then streamed,
//! whatever its size, holding nothing. Denials here are WS-Man faults: a cmd client has no
//! other way to be told.

use std::collections::HashMap;

use super::{Denial, Fact, Input, Judge, Request, Verdict};
use crate::policy::{Decision, Judgement, Operation, StdinKind};
use crate::wsman::{Action, Body, CommandLine, Stream};

/// Most input the gateway holds back per command to judge it (an unfinished interpreter
/// line), unless configured (`[limits] max_held_input_bytes`).
pub const DEFAULT_MAX_HELD_INPUT: usize = 8 * 1024 * 1024;
/// Most running commands remembered per cmd shell.
const MAX_TRACKED_COMMANDS: usize = 256;

/// Inspection state of one cmd shell.
#[derive(Debug)]
pub(super) struct CmdInspector {
    /// CommandId → what it runs, for as long as the client may send it input.
    commands: HashMap<String, Program>,
    /// Most input held back per command to judge it.
    max_held: usize,
}

/// A running command of a cmd shell.
#[derive(Debug, Default)]
struct Program {
    /// The command line that started it (Command and Arguments joined by spaces).
    line: String,
    /// Input after the last line break: judged again, whole, once the line is complete.
    partial: String,
    /// How its input is inspected, once the first input has been judged.
    input: InputState,
}

/// Where a command's input stream stands.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum InputState {
    /// No input judged yet.
    #[default]
    New,
    /// Code for an interpreter: every chunk is judged with the held unfinished line.
    Code,
    /// Data, allowed when the first chunk was judged: the rest streams.
    DataAllowed,
    /// An Ansible payload being collected: its text so far and the Sends held back.
    Payload {
        text: String,
        held: Vec<bytes::Bytes>,
    },
    /// An Ansible payload was refused (why): nothing more goes to this command, and the
    /// gateway answers its Receives.
    Refused(String),
}

/// What to do with a Send whose input was judged.
enum Flow {
    /// Forward it.
    Pass,
    /// Hold it; the gateway answers the client.
    Hold,
    /// Forward these held Sends, then it.
    Release(Vec<bytes::Bytes>),
}

impl Default for CmdInspector {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_HELD_INPUT)
    }
}

// === impl CmdInspector ===

impl CmdInspector {
    /// An inspector holding at most `max_held` bytes of input per command.
    pub(super) fn new(max_held: usize) -> Self {
        Self {
            commands: HashMap::new(),
            max_held,
        }
    }

    pub(super) fn on_request(
        &mut self,
        req: Request<'_>,
        judge: &Judge<'_>,
        ids: &mut dyn FnMut() -> uuid::Uuid,
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
                record(facts, cl.command_id.clone(), command, judged).map(|()| Flow::Pass)
            }
            (Action::Send, Body::Send(streams)) => self.stdin(req, streams, judge, facts),
            (Action::Receive, Body::Receive(desired)) => {
                if let Some(answer) = self.refused_receive(env, desired, ids) {
                    return answer;
                }
                Ok(Flow::Pass)
            }
            _ => Ok(Flow::Pass),
        };
        match judged {
            Ok(Flow::Pass) => Verdict::Forward(vec![req.wire.clone()]),
            Ok(Flow::Release(mut held)) => {
                held.push(req.wire.clone());
                Verdict::Forward(held)
            }
            Ok(Flow::Hold) => Verdict::Reply(Box::new(super::failed::reply(
                env,
                ids(),
                Action::SendResponse,
                Body::SendResponse,
            ))),
            Err(reason) => Verdict::Deny(Denial::Access(reason)),
        }
    }

    /// Input for running commands; Err(reason) refuses the whole Send (and whatever was
    /// held for it).
    fn stdin(
        &mut self,
        req: Request<'_>,
        streams: &[Stream],
        judge: &Judge<'_>,
        facts: &mut Vec<Fact>,
    ) -> Result<Flow, String> {
        let mut flow = Flow::Pass;
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
            if program.input == InputState::New {
                program.input = match judge.engine.stdin_kind(&program.line) {
                    StdinKind::Code => InputState::Code,
                    StdinKind::AnsiblePayload => InputState::Payload {
                        text: String::new(),
                        held: Vec::new(),
                    },
                    StdinKind::Data => {
                        // What the program reads is not executed: the decision is the
                        // same for every byte, so it is made once, on no content.
                        let judged = judge.judge(&Operation::CmdStdin {
                            program: &program.line,
                            data: "",
                        });
                        let shown = vec![format!("{} < (input data)", program.line)];
                        record(facts, s.command_id.clone(), shown, judged)?;
                        InputState::DataAllowed
                    }
                };
            }
            if program.input == InputState::DataAllowed {
                continue;
            }
            if let InputState::Payload { text, held } = &mut program.input {
                text.push_str(&String::from_utf8_lossy(&s.data));
                let whole =
                    crate::policy::ansible_payload_len(text, s.end).or(s.end.then_some(text.len()));
                let Some(len) = whole else {
                    if text.len() > self.max_held {
                        let size = text.len();
                        let reason = refuse(
                            facts,
                            s.command_id.clone(),
                            vec![format!("(Ansible payload to {})", program.line)],
                            &format!(
                                "an Ansible payload of more than {size} bytes before its \
                                 manifest ends, more than the {} bytes the gateway holds to \
                                 judge it (limits.max_held_input_bytes)",
                                self.max_held
                            ),
                        );
                        program.input = InputState::Refused(reason.clone());
                        return Err(reason);
                    }
                    // Nothing of it reaches the host before the whole manifest is judged.
                    held.push(req.wire.clone());
                    flow = Flow::Hold;
                    continue;
                };
                let payload = text.get(..len).unwrap_or_default();
                let judged = judge.judge(&Operation::CmdStdin {
                    program: &program.line,
                    data: payload,
                });
                let shown = vec![format!("{} < (Ansible payload, {len} bytes)", program.line)];
                let released = std::mem::take(held);
                // Refused: the held Sends are dropped with it; allowed: the rest is data
                // for the action the manifest runs.
                program.input = InputState::DataAllowed;
                if let Err(reason) = record(facts, s.command_id.clone(), shown, judged) {
                    program.input = InputState::Refused(reason.clone());
                    return Err(reason);
                }
                flow = Flow::Release(released);
                continue;
            }
            if let InputState::Refused(_) = program.input {
                return Err(refuse(
                    facts,
                    s.command_id.clone(),
                    vec![format!("(input to {})", program.line)],
                    "input after a refused Ansible payload",
                ));
            }
            let mut text = std::mem::take(&mut program.partial);
            text.push_str(&String::from_utf8_lossy(&s.data));
            let held = text.len() - crate::policy::stdin_complete_len(&text);
            if held > self.max_held {
                return Err(refuse(
                    facts,
                    s.command_id.clone(),
                    vec![format!("(input to {})", program.line)],
                    &format!(
                        "an unfinished input line of {held} bytes, more than the {} bytes \
                         the gateway holds to judge it (limits.max_held_input_bytes)",
                        self.max_held
                    ),
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
        Ok(flow)
    }

    /// A Receive for a command whose Ansible payload was refused: the bootstrap wrapper on
    /// the host still waits for input that will never come, so the gateway answers that
    /// the command failed, with the reason on stderr (Ansible shows it as the module's
    /// failure), instead of letting the client poll until its timeout. The client's
    /// terminate then goes to the host and ends the waiting process.
    fn refused_receive(
        &self,
        env: &crate::wsman::Envelope,
        desired: &[crate::wsman::DesiredStream],
        ids: &mut dyn FnMut() -> uuid::Uuid,
    ) -> Option<Verdict> {
        let (command_id, reason) = desired.iter().find_map(|d| {
            let id = d.command_id.as_deref()?;
            match &self.commands.get(id)?.input {
                InputState::Refused(reason) => Some((id, reason)),
                _ => None,
            }
        })?;
        let body = Body::ReceiveResponse {
            streams: vec![Stream {
                name: "stderr".into(),
                command_id: Some(command_id.to_string()),
                end: true,
                data: format!("Access is denied by hopgate: {reason}\r\n").into_bytes(),
            }],
            command_state: Some(crate::wsman::CommandState {
                command_id: Some(command_id.to_string()),
                state: crate::wsman::CommandStateKind::Done,
                exit_code: Some(1),
            }),
        };
        Some(Verdict::Reply(Box::new(super::failed::reply(
            env,
            ids(),
            Action::ReceiveResponse,
            body,
        ))))
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
                ..Program::default()
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
    let allowed = judged.decision.is_allow();
    let modules = judged.modules.into_iter().map(|run| Fact::AnsibleModule {
        command_id: command_id.clone(),
        run,
        allowed,
    });
    let modules: Vec<Fact> = modules.collect();
    match judged.decision {
        Decision::Allow { role } => {
            facts.push(Fact::Allowed {
                command_id,
                command,
                decoded,
                role,
            });
            facts.extend(modules);
            Ok(())
        }
        Decision::Deny { reason, .. } => {
            facts.push(Fact::Denied {
                command_id,
                command,
                decoded,
                reason: reason.clone(),
            });
            facts.extend(modules);
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
