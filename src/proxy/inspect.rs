//! Inspection and decision for commands: WinRS command lines and PSRP pipelines.
//!
//! PSRP pipelines can arrive in pieces (the first fragments in the Command, the rest in
//! later Sends, MS-PSRP 3.1.5.3.3). Nothing of such a pipeline reaches the host until the
//! whole CREATE_PIPELINE is decided: the gateway answers the Command and the Sends itself
//! while it holds them, then releases them in order once policy allows.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::psrp::{feed_base64, feed_bytes, invocation, render, ClientMessage};
use super::relay::{backend_body, SendOutcome};
use super::{Ctx, Gateway};
use crate::audit::{Event, EventKind};
use crate::error::{soap_response, Refusal};
use crate::policy::{Decision, Operation};
use crate::session::{HeldCommand, ShellRecord};
use crate::wsman::{self, Action, Body, CommandLine, Stream};

/// Longest unfinished input line held for inspection.
const MAX_PENDING_INPUT: usize = 64 * 1024;
/// Most running commands remembered per cmd shell.
const MAX_TRACKED_COMMANDS: usize = 256;

// === impl Gateway ===

impl Gateway {
    /// A WinRS command line: allowed (and recorded) or refused.
    pub(super) fn decide_cmd(
        &self,
        ctx: &Ctx<'_>,
        shell: &ShellRecord,
        cl: &CommandLine,
    ) -> Result<(), Refusal> {
        let skip_cmd_shell = ctx
            .envelope
            .option("WINRS_SKIP_CMD_SHELL")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let mut command = vec![cl.command.clone()];
        command.extend(cl.arguments.iter().cloned());
        let decision = ctx.policy.decide(
            &ctx.subject(),
            &ctx.host_ref(),
            &Operation::CmdLine {
                command: &cl.command,
                arguments: &cl.arguments,
                skip_cmd_shell,
            },
        );
        self.record(ctx, shell, cl.command_id.clone(), command, decision)
    }

    /// Input sent to a running command of a cmd shell. Interpreters (`cmd`, `powershell -`)
    /// run what they read, so policy judges the text as the program would see it. A line
    /// split across Sends is judged as far as it has come, and again whole later: a
    /// prefix that is refused on its own refuses the line (fail closed).
    pub(super) fn decide_cmd_stdin(
        &self,
        ctx: &Ctx<'_>,
        shell: &ShellRecord,
        streams: &[Stream],
    ) -> Result<(), Refusal> {
        let state = shell.cmd.as_ref().ok_or(Refusal::Internal)?;
        let mut st = state.lock().map_err(|_| Refusal::Internal)?;
        for s in streams {
            let known = s
                .command_id
                .as_deref()
                .filter(|_| s.name.eq_ignore_ascii_case("stdin"))
                .and_then(|id| st.commands.get_mut(id));
            let Some(program) = known else {
                return Err(self.refuse(
                    ctx,
                    shell,
                    vec![format!("(input on stream {})", s.name)],
                    "input for a command the gateway did not start",
                ));
            };
            let mut text = std::mem::take(&mut program.partial);
            text.push_str(&String::from_utf8_lossy(&s.data));
            if text.len() > MAX_PENDING_INPUT {
                return Err(self.refuse(
                    ctx,
                    shell,
                    vec![format!("(input to {})", program.line)],
                    "an input line longer than the gateway inspects",
                ));
            }
            let shown = vec![format!("{} < {}", program.line, text.trim_end())];
            let decision = ctx.policy.decide(
                &ctx.subject(),
                &ctx.host_ref(),
                &Operation::CmdStdin {
                    program: &program.line,
                    data: &text,
                },
            );
            program.partial = match text.rfind('\n') {
                Some(i) => text.get(i + 1..).unwrap_or_default().to_string(),
                None => text,
            };
            self.record(ctx, shell, s.command_id.clone(), shown, decision)?;
        }
        Ok(())
    }

    /// Remembers what a cmd-shell Command started (for its stdin), once the host accepted it.
    pub(super) fn track_cmd_program(&self, ctx: &Ctx<'_>, shell: &ShellRecord, id: String) {
        let (Some(state), Body::CommandLine(cl)) = (&shell.cmd, &ctx.envelope.body) else {
            return;
        };
        if let Ok(mut st) = state.lock() {
            if st.commands.len() >= MAX_TRACKED_COMMANDS {
                // Oldest ids are unknowable from a HashMap; a shell this busy is odd
                // enough that forgetting all (their input is then refused) is fine.
                st.commands.clear();
            }
            let mut line = cl.command.clone();
            for a in &cl.arguments {
                line.push(' ');
                line.push_str(a);
            }
            st.commands.insert(
                id,
                crate::session::CmdProgram {
                    line,
                    partial: String::new(),
                },
            );
        }
    }

    /// A PSRP Command: returns a reply when the gateway answers it itself (held back).
    pub(super) fn psrp_command(
        &self,
        ctx: &Ctx<'_>,
        shell: &ShellRecord,
        cl: &CommandLine,
    ) -> Result<Option<Response<Full<Bytes>>>, Refusal> {
        let state = shell.psrp.as_ref().ok_or(Refusal::Internal)?;
        let mut st = state.lock().map_err(|_| Refusal::Internal)?;
        if st.held.is_some() {
            return Err(self.refuse(
                ctx,
                shell,
                vec!["(pipeline)".into()],
                "a previous pipeline is still being received",
            ));
        }
        let messages = feed_base64(&mut st.from_client, &cl.arguments)
            .map_err(|e| self.unreadable(ctx, shell, &e.to_string()))?;
        if self.judge(ctx, shell, cl.command_id.clone(), &messages)? {
            return Ok(None);
        }
        match (&cl.command_id, st.from_client.pending_objects()) {
            (Some(id), n) if n > 0 => {
                st.held = Some(HeldCommand {
                    command_id: id.clone(),
                    command: backend_body(ctx),
                    sends: Vec::new(),
                });
                Ok(Some(synthesized(
                    ctx,
                    Action::CommandResponse,
                    Body::CommandResponse {
                        command_id: id.clone(),
                    },
                )))
            }
            // A Command that opens no pipeline runs nothing the gateway could judge.
            _ => Err(self.refuse(
                ctx,
                shell,
                vec!["(pipeline)".into()],
                "PSRP Command without a pipeline",
            )),
        }
    }

    /// A PSRP Send: input and host responses pass; pieces of a held pipeline are held too.
    pub(super) fn psrp_send(
        &self,
        ctx: &Ctx<'_>,
        shell: &ShellRecord,
        streams: &[Stream],
    ) -> Result<SendOutcome, Refusal> {
        let state = shell.psrp.as_ref().ok_or(Refusal::Internal)?;
        let mut st = state.lock().map_err(|_| Refusal::Internal)?;
        let mut messages = Vec::new();
        for s in streams {
            let more = feed_bytes(&mut st.from_client, &s.data)
                .map_err(|e| self.unreadable(ctx, shell, &e.to_string()))?;
            messages.extend(more);
        }
        let for_held = st.held.as_ref().is_some_and(|h| {
            streams
                .iter()
                .any(|s| s.command_id.as_deref() == Some(h.command_id.as_str()))
        });
        let opens_pipeline = messages.iter().any(|m| {
            matches!(
                m,
                ClientMessage::CreatePipeline(_) | ClientMessage::CommandMetadata(_)
            )
        });
        if opens_pipeline && !for_held {
            // Pipelines are opened by Command; one smuggled into a Send is refused.
            return Err(self.refuse(
                ctx,
                shell,
                vec!["(pipeline in Send)".into()],
                "a pipeline may only be opened by a Command",
            ));
        }
        if !for_held {
            return Ok(SendOutcome::Forward);
        }
        let command_id = st.held.as_ref().map(|h| h.command_id.clone());
        if opens_pipeline {
            let decided = self.judge(ctx, shell, command_id, &messages);
            let held = st.held.take();
            decided?;
            return Ok(held.map_or(SendOutcome::Forward, SendOutcome::Release));
        }
        if let Some(h) = st.held.as_mut() {
            h.sends.push(backend_body(ctx));
        }
        Ok(SendOutcome::Reply(synthesized(
            ctx,
            Action::SendResponse,
            Body::SendResponse,
        )))
    }

    /// Decides every pipeline among `messages`; Ok(true) when at least one was allowed
    /// and none refused.
    fn judge(
        &self,
        ctx: &Ctx<'_>,
        shell: &ShellRecord,
        command_id: Option<String>,
        messages: &[ClientMessage],
    ) -> Result<bool, Refusal> {
        let mut judged = false;
        for m in messages {
            let (op_inv, names);
            let (op, shown) = match m {
                ClientMessage::CreatePipeline(p) => {
                    op_inv = invocation(p);
                    (Operation::Pipeline(&op_inv), render(p))
                }
                ClientMessage::CommandMetadata(n) => {
                    names = n.clone();
                    (
                        Operation::CommandMetadata { names: &names },
                        vec![format!("Get-Command {}", names.join(", "))],
                    )
                }
                ClientMessage::Other => continue,
            };
            let decision = ctx.policy.decide(&ctx.subject(), &ctx.host_ref(), &op);
            self.record(ctx, shell, command_id.clone(), shown, decision)?;
            judged = true;
        }
        Ok(judged)
    }

    /// Records a decision; Err for a denial (with the refusal to send).
    fn record(
        &self,
        ctx: &Ctx<'_>,
        shell: &ShellRecord,
        command_id: Option<String>,
        command: Vec<String>,
        decision: Decision,
    ) -> Result<(), Refusal> {
        match decision {
            Decision::Allow { role } => {
                shell.activity.decided(true);
                self.audit.emit(Event {
                    session_id: Some(shell.session_id.clone()),
                    kind: EventKind::CommandAllowed {
                        principal: ctx.principal.name.clone(),
                        host: ctx.host.name.clone(),
                        shell_id: shell.shell_id.clone(),
                        command_id,
                        command: self.audit.redact(&shell.session_id, &command),
                        rule: role,
                    },
                });
                Ok(())
            }
            Decision::Deny { reason, .. } => Err(self.refuse(ctx, shell, command, &reason)),
        }
    }

    fn refuse(
        &self,
        ctx: &Ctx<'_>,
        shell: &ShellRecord,
        command: Vec<String>,
        reason: &str,
    ) -> Refusal {
        shell.activity.decided(false);
        let (command, logged_reason) =
            self.audit
                .redact_denial(&shell.session_id, &command, reason);
        self.audit.emit(Event {
            session_id: Some(shell.session_id.clone()),
            kind: EventKind::CommandDenied {
                principal: ctx.principal.name.clone(),
                host: ctx.host.name.clone(),
                shell_id: shell.shell_id.clone(),
                command,
                reason: logged_reason,
            },
        });
        Refusal::AccessDenied {
            message: reason.to_string(),
        }
    }

    /// PSRP bytes the gateway cannot read are never forwarded.
    fn unreadable(&self, ctx: &Ctx<'_>, shell: &ShellRecord, why: &str) -> Refusal {
        tracing::info!(error = why, "PSRP payload not understood");
        self.refuse(
            ctx,
            shell,
            vec!["(unreadable PSRP payload)".into()],
            "the PowerShell payload could not be inspected",
        )
    }
}

/// A response the gateway writes itself, shaped like the host's.
fn synthesized(ctx: &Ctx<'_>, action: Action, body: Body) -> Response<Full<Bytes>> {
    let mut header = wsman::Header::new(action);
    header.to = Some(wsman::ns::ANONYMOUS.to_string());
    header.message_id = Some(format!(
        "uuid:{}",
        uuid::Uuid::new_v4().to_string().to_uppercase()
    ));
    header.relates_to = ctx.envelope.header.message_id.clone();
    let env = wsman::Envelope::new(header, body);
    soap_response(StatusCode::OK, Bytes::from(wsman::build(&env)))
}
