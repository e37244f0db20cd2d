//! What the host answered, read after the answer is on its way back unchanged: commands it
//! started and finished (for a terminate and the session's counts) and what they printed
//! (`output` events). Nothing here can fail a request: an answer the gateway cannot read
//! is only logged.

use super::{Ctx, Gateway};
use crate::audit::output::{output_events, psrp_output_events, OUTPUT_CAP};
use crate::session::{ShellKind, ShellRecord};
use crate::wsman::{self, Action, Body, CommandStateKind, SignalCode};

impl Gateway {
    /// Reads the host's 200 answer to `action` on `shell`.
    pub(super) fn observe_answer(
        &self,
        ctx: &Ctx<'_>,
        shell: &ShellRecord,
        action: &Action,
        answer: &[u8],
    ) {
        match action {
            Action::Command | Action::Receive => {}
            Action::Signal => {
                // A terminated command is over whatever the host says later.
                if let Body::Signal {
                    command_id: Some(id),
                    code: SignalCode::Terminate,
                } = &ctx.envelope.body
                {
                    shell.activity.finished(id);
                }
                return;
            }
            _ => return,
        }
        let body = match wsman::parse(answer, &self.wsman_limits) {
            Ok(env) => env.body,
            Err(error) => {
                tracing::warn!(%error, ?action, "Host answer not readable; not recorded");
                return;
            }
        };
        match body {
            Body::CommandResponse { command_id } => {
                shell.activity.started(&command_id);
                self.track_cmd_program(ctx, shell, command_id);
            }
            Body::ReceiveResponse {
                streams,
                command_state,
            } => {
                let events = match &shell.kind {
                    ShellKind::Cmd => output_events(
                        &shell.shell_id,
                        &streams,
                        command_state.as_ref(),
                        OUTPUT_CAP,
                    ),
                    ShellKind::Psrp { .. } => {
                        let read = shell.psrp.as_ref().and_then(|state| {
                            let mut st = state.lock().ok()?;
                            Some(super::psrp::host_events(
                                &mut st.from_host,
                                &streams,
                                OUTPUT_CAP,
                            ))
                        });
                        psrp_output_events(&shell.shell_id, read.unwrap_or_default(), OUTPUT_CAP)
                    }
                };
                let bytes = self.audit.emit_outputs(&shell.session_id, events);
                shell.activity.output(bytes);
                if let Some(done) = command_state.filter(|s| s.state == CommandStateKind::Done) {
                    if let Some(id) = &done.command_id {
                        shell.activity.finished(id);
                    }
                }
            }
            _ => {}
        }
    }
}
