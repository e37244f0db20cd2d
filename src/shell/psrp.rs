//! PowerShell (PSRP) runspace pools: pipelines judged before the host sees them.
//!
//! Pipelines can arrive in pieces (the first fragments in the Command, the rest in later
//! Sends, MS-PSRP 3.1.5.3.3). Nothing of such a pipeline reaches the host until the whole
//! CREATE_PIPELINE is decided: the inspector answers the Command and the Sends itself while
//! it holds them, then releases them in order once policy allows.
//!
//! A refused pipeline is answered as a failed one (`failed`): the Command gets a
//! CommandResponse, a Receive for its CommandId gets PIPELINE_STATE Failed with an error
//! record and `Done`, a Send or Signal for it a plain response. The runspace pool stays
//! open, as it does when a JEA endpoint refuses a command. What is not a pipeline the
//! policy judged (a payload that cannot be read, a pipeline smuggled into a Send) is
//! refused with a fault.

use bytes::Bytes;
use uuid::Uuid;

use super::cmd::{record, refuse};
use super::failed::{self, DeniedPipeline};
use super::output::{psrp_outputs, Output, OUTPUT_CAP};
use super::pipeline::{feed_base64, feed_bytes, invocation, render, ClientMessage};
use super::tally::Tallies;
use super::{Denial, Fact, Input, InputStream, Judge, Request, Verdict};
use crate::audit::redact;
use crate::policy::Operation;
use crate::psrp::{self, Defragmenter, HostEvent, Message};
use crate::wsman::{Action, Body, CommandLine, DesiredStream, SignalCode, Stream};

/// Refused pipelines remembered per shell (until the client's terminate); the oldest is
/// forgotten first, and its Receives then go to the host, which knows no such command.
const MAX_DENIED: usize = 64;
/// Object ids of the messages the gateway writes to the client: far above any the host
/// uses (it counts from 1), so the client's reassembly never confuses the two.
const FIRST_GATEWAY_OBJECT_ID: u64 = 1 << 62;

/// Inspection state of one PSRP shell (runspace pool).
#[derive(Debug)]
pub(super) struct PsrpInspector {
    /// Reassembles client→host messages across Command and Send requests.
    from_client: Defragmenter,
    /// Reassembles host→client messages across Receive responses (for output).
    from_host: Defragmenter,
    /// A Command whose CREATE_PIPELINE is not complete yet: held back, with the Sends
    /// that carry the rest, until the whole pipeline can be decided.
    held: Option<Held>,
    /// Pipelines refused and answered by the gateway, oldest first.
    denied: Vec<DeniedPipeline>,
    next_object_id: u64,
}

/// Requests held back from the host until policy has seen the whole pipeline.
#[derive(Debug)]
struct Held {
    command_id: String,
    /// The Command request, as the host would get it.
    command: Bytes,
    /// Send requests carrying later fragments, in order, as the host would get them.
    sends: Vec<Bytes>,
}

/// What the pipelines among some client messages come to.
#[derive(Debug)]
enum Judged {
    /// No message opens a pipeline.
    Nothing,
    /// Every pipeline was allowed.
    Allowed,
    /// A pipeline was refused (its CommandId still to be filled in).
    Denied(DeniedPipeline),
}

// === impl PsrpInspector ===

impl PsrpInspector {
    /// A pool opened with this Create's `creationXml`: it carries the first client→host
    /// fragments (SESSION_CAPABILITY, INIT_RUNSPACEPOOL), so feeding them keeps the
    /// reassembly exact. Unreadable creation data is left to the host to refuse.
    pub(super) fn open(creation_xml: Option<&[u8]>) -> Self {
        let mut from_client = Defragmenter::new();
        if let Some(bytes) = creation_xml {
            if feed_bytes(&mut from_client, bytes).is_err() {
                from_client.reset();
            }
        }
        Self {
            from_client,
            from_host: Defragmenter::new(),
            held: None,
            denied: Vec::new(),
            next_object_id: FIRST_GATEWAY_OBJECT_ID,
        }
    }

    pub(super) fn on_request(
        &mut self,
        req: Request<'_>,
        judge: &Judge<'_>,
        ids: &mut dyn FnMut() -> Uuid,
        facts: &mut Vec<Fact>,
    ) -> Verdict {
        let env = req.envelope;
        match (env.action(), &env.body) {
            (Action::Command, Body::CommandLine(cl)) => self.command(req, cl, judge, ids, facts),
            (Action::Send, Body::Send(streams)) => {
                let mut inputs = Vec::new();
                let verdict = self.send(req, streams, judge, ids, facts, &mut inputs);
                // Input is on the record once it goes to the host (input for a refused
                // or still held pipeline does not, or not yet).
                if matches!(verdict, Verdict::Forward(_)) {
                    facts.extend(inputs);
                }
                verdict
            }
            (Action::Receive, Body::Receive(desired)) => self.receive(req, desired, ids),
            (Action::Connect, Body::Connect { connect_xml }) => {
                if let Some(bytes) = connect_xml {
                    // A client, maybe a new one, takes over the disconnected pool: its
                    // fragments start a new stream in both directions, and a pipeline it
                    // was still sending when it left never reached the host. What the
                    // gateway refused stays refused.
                    self.from_client.reset();
                    self.from_host.reset();
                    self.held = None;
                    if feed_bytes(&mut self.from_client, bytes).is_err() {
                        self.from_client.reset();
                    }
                }
                forward(req)
            }
            (Action::Signal, Body::Signal { command_id, code }) => {
                let Some(i) = command_id.as_deref().and_then(|id| self.denied_index(id)) else {
                    return forward(req);
                };
                if *code == SignalCode::Terminate {
                    // The client closes the pipeline: nothing more will be asked of it.
                    self.denied.remove(i);
                }
                reply(req, ids, Action::SignalResponse, Body::SignalResponse)
            }
            _ => forward(req),
        }
    }

    /// A Command: a whole pipeline is judged now, a partial one is held.
    fn command(
        &mut self,
        req: Request<'_>,
        cl: &CommandLine,
        judge: &Judge<'_>,
        ids: &mut dyn FnMut() -> Uuid,
        facts: &mut Vec<Fact>,
    ) -> Verdict {
        if self.held.is_some() {
            return deny(
                facts,
                "(pipeline)",
                "a previous pipeline is still being received",
            );
        }
        if let Some(i) = cl
            .command_id
            .as_deref()
            .and_then(|id| self.denied_index(id))
        {
            // The client reuses the id of a refused pipeline for a new one.
            self.denied.remove(i);
        }
        let messages = match feed_base64(&mut self.from_client, &cl.arguments) {
            Ok(m) => m,
            Err(error) => return unreadable(facts, &error.to_string()),
        };
        match judge_messages(&messages, cl.command_id.as_deref(), judge, facts) {
            Judged::Allowed => forward(req),
            Judged::Denied(mut denied) => {
                // PSRP clients choose the CommandId (the pipeline id) and use the one the
                // answer names; an id of the gateway's own serves one that did not choose.
                denied.command_id = match &cl.command_id {
                    Some(id) => id.clone(),
                    None => ids().to_string().to_uppercase(),
                };
                let body = Body::CommandResponse {
                    command_id: denied.command_id.clone(),
                };
                self.remember(denied);
                reply(req, ids, Action::CommandResponse, body)
            }
            Judged::Nothing => match (&cl.command_id, self.from_client.pending_objects()) {
                (Some(id), n) if n > 0 => {
                    self.held = Some(Held {
                        command_id: id.clone(),
                        command: req.wire.clone(),
                        sends: Vec::new(),
                    });
                    let body = Body::CommandResponse {
                        command_id: id.clone(),
                    };
                    reply(req, ids, Action::CommandResponse, body)
                }
                // A Command that opens no pipeline runs nothing the gateway could judge.
                _ => deny(facts, "(pipeline)", "PSRP Command without a pipeline"),
            },
        }
    }

    /// A Send: input and host responses pass; pieces of a held pipeline are held too.
    fn send(
        &mut self,
        req: Request<'_>,
        streams: &[Stream],
        judge: &Judge<'_>,
        ids: &mut dyn FnMut() -> Uuid,
        facts: &mut Vec<Fact>,
        inputs: &mut Vec<Fact>,
    ) -> Verdict {
        let mut messages = Vec::new();
        for s in streams {
            match feed_bytes(&mut self.from_client, &s.data) {
                Ok(more) => {
                    inputs.extend(more.iter().filter_map(|m| input_fact(s, m)));
                    messages.extend(more);
                }
                Err(error) => return unreadable(facts, &error.to_string()),
            }
        }
        let names = |id: &str| {
            streams.iter().any(|s| {
                s.command_id
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(id))
            })
        };
        let for_held = self.held.as_ref().is_some_and(|h| names(&h.command_id));
        let opens_pipeline = messages.iter().any(|m| {
            matches!(
                m,
                ClientMessage::CreatePipeline { .. } | ClientMessage::CommandMetadata { .. }
            )
        });
        if opens_pipeline && !for_held {
            // Pipelines are opened by Command; one smuggled into a Send is refused.
            return deny(
                facts,
                "(pipeline in Send)",
                "a pipeline may only be opened by a Command",
            );
        }
        if self.denied.iter().any(|d| names(&d.command_id)) {
            // Input for a refused pipeline: it would run nowhere.
            return reply(req, ids, Action::SendResponse, Body::SendResponse);
        }
        let Some(held) = self.held.as_mut() else {
            return forward(req);
        };
        if !for_held {
            return forward(req);
        }
        if !opens_pipeline {
            held.sends.push(req.wire.clone());
            return reply(req, ids, Action::SendResponse, Body::SendResponse);
        }
        let command_id = held.command_id.clone();
        let judged = judge_messages(&messages, Some(&command_id), judge, facts);
        let Some(held) = self.held.take() else {
            return forward(req);
        };
        match judged {
            Judged::Denied(mut denied) => {
                // The client already has its CommandResponse (given when the Command was
                // held): the refusal reaches it through its Receive.
                denied.command_id = command_id;
                self.remember(denied);
                reply(req, ids, Action::SendResponse, Body::SendResponse)
            }
            Judged::Allowed | Judged::Nothing => {
                // The pipeline is whole and allowed: the host now gets the held Command
                // and Sends in their original order, then this request.
                let mut bodies = Vec::with_capacity(held.sends.len() + 2);
                bodies.push(held.command);
                bodies.extend(held.sends);
                bodies.push(req.wire.clone());
                Verdict::Forward(bodies)
            }
        }
    }

    /// A Receive for a refused pipeline gets its failed state, then only `Done`.
    fn receive(
        &mut self,
        req: Request<'_>,
        desired: &[DesiredStream],
        ids: &mut dyn FnMut() -> Uuid,
    ) -> Verdict {
        let found = desired.iter().find_map(|d| {
            let i = self.denied_index(d.command_id.as_deref()?)?;
            Some((i, d))
        });
        let Some((i, d)) = found else {
            return forward(req);
        };
        let object_id = self.next_object_id;
        let Some(denied) = self.denied.get_mut(i) else {
            return forward(req);
        };
        let data = (!denied.answered).then(|| failed::failed_state_fragments(denied, object_id));
        if data.is_some() {
            denied.answered = true;
            self.next_object_id = self.next_object_id.wrapping_add(1);
        }
        // The stream the client asked for ("stdout" from every client seen).
        let stream = d.streams.split_whitespace().next().unwrap_or("stdout");
        let command_id = denied.command_id.clone();
        Verdict::Reply(Box::new(failed::receive_response(
            req.envelope,
            ids(),
            &command_id,
            stream,
            data,
        )))
    }

    /// Client bytes held: fragments being reassembled and held-back requests.
    pub(super) fn held_bytes(&self) -> usize {
        let held = self.held.as_ref().map_or(0, |h| {
            h.sends
                .iter()
                .fold(h.command.len(), |n, s| n.saturating_add(s.len()))
        });
        self.from_client.buffered_bytes().saturating_add(held)
    }

    fn denied_index(&self, command_id: &str) -> Option<usize> {
        self.denied
            .iter()
            .position(|d| d.command_id.eq_ignore_ascii_case(command_id))
    }

    fn remember(&mut self, denied: DeniedPipeline) {
        if self.denied.len() >= MAX_DENIED {
            self.denied.remove(0);
        }
        self.denied.push(denied);
    }

    /// What the host's PSRP messages in a ReceiveResponse say, per pipeline. Unreadable
    /// data is logged by the caller's absence of output and the reassembly restarted, so
    /// one bad message cannot stop the recording of later ones.
    pub(super) fn outputs(&mut self, streams: &[Stream], tallies: &mut Tallies) -> Vec<Output> {
        let mut events = Vec::new();
        for s in streams.iter().filter(|s| !s.data.is_empty()) {
            let Ok(whole) = self.from_host.push_bytes(&s.data) else {
                self.from_host = Defragmenter::new();
                continue;
            };
            for raw in whole {
                // Read whole (a message is at most the defragmenter's 16 MiB) so `bytes`
                // and the digest count every byte; `psrp_outputs` cuts the text for the
                // event.
                let read = Message::from_vec(raw)
                    .and_then(|msg| psrp::read_host_message(&msg, usize::MAX));
                if let Ok(Some(ev)) = read {
                    // The whole stream's count and digest cover what `bytes` counts.
                    match &ev {
                        HostEvent::Record { text, .. } => {
                            tallies.feed(s.command_id.as_deref(), text.as_bytes())
                        }
                        HostEvent::State { error: Some(e), .. } => {
                            tallies.feed(s.command_id.as_deref(), e.as_bytes())
                        }
                        _ => {}
                    }
                    events.push((s.command_id.clone(), ev));
                }
            }
        }
        psrp_outputs(events, OUTPUT_CAP)
    }
}

/// The `input` fact of a PIPELINE_INPUT (or END_OF_PIPELINE_INPUT) message sent on `s`.
fn input_fact(s: &Stream, m: &ClientMessage) -> Option<Fact> {
    let (text, truncated, bytes, end) = match m {
        ClientMessage::Input {
            text,
            truncated,
            bytes,
        } => (text.clone(), *truncated, *bytes, false),
        ClientMessage::EndOfInput => (String::new(), false, 0, true),
        _ => return None,
    };
    Some(Fact::Input(Input {
        command_id: s.command_id.clone(),
        stream: InputStream::Pipeline,
        text,
        truncated,
        bytes,
        end,
    }))
}

/// Decides every pipeline among `messages`, recording each decision; stops at the first
/// refusal.
fn judge_messages(
    messages: &[ClientMessage],
    command_id: Option<&str>,
    judge: &Judge<'_>,
    facts: &mut Vec<Fact>,
) -> Judged {
    let mut judged = Judged::Nothing;
    for m in messages {
        let (decision, shown, rpid, pid) = match m {
            ClientMessage::CreatePipeline {
                pipeline,
                rpid,
                pid,
            } => {
                let inv = invocation(pipeline);
                let d = judge.judge(&Operation::Pipeline(&inv));
                (d, render(pipeline), *rpid, *pid)
            }
            ClientMessage::CommandMetadata { names, rpid, pid } => {
                let d = judge.judge(&Operation::CommandMetadata { names });
                (
                    d,
                    vec![format!("Get-Command {}", names.join(", "))],
                    *rpid,
                    *pid,
                )
            }
            ClientMessage::Input { .. } | ClientMessage::EndOfInput | ClientMessage::Other => {
                continue
            }
        };
        let id = command_id.map(str::to_string);
        let decoded: Vec<String> = decision.decoded.iter().map(|d| d.text.clone()).collect();
        if let Err(reason) = record(facts, id, shown.clone(), decision) {
            // What the client is told is what the audit records: the reason with any
            // secret the command (or the code decoded from it) carried scrubbed out
            // (audit::redact).
            let redacted = redact::command(&shown);
            let mut scrubbed = redact::scrub_words(&reason, &redacted);
            for text in decoded {
                scrubbed = redact::scrub_words(&scrubbed, &redact::command(&[text]));
            }
            let message = format!("Access is denied by hopgate: {scrubbed}");
            return Judged::Denied(DeniedPipeline {
                command_id: String::new(),
                rpid,
                pid,
                message,
                target: redacted.command.join("; "),
                answered: false,
            });
        }
        judged = Judged::Allowed;
    }
    judged
}

fn forward(req: Request<'_>) -> Verdict {
    Verdict::Forward(vec![req.wire.clone()])
}

fn reply(req: Request<'_>, ids: &mut dyn FnMut() -> Uuid, action: Action, body: Body) -> Verdict {
    Verdict::Reply(Box::new(failed::reply(req.envelope, ids(), action, body)))
}

/// A refusal that is not a judged pipeline: a fault.
fn deny(facts: &mut Vec<Fact>, shown: &str, reason: &str) -> Verdict {
    let reason = refuse(facts, None, vec![shown.to_string()], reason);
    Verdict::Deny(Denial::Access(reason))
}

/// PSRP bytes the gateway cannot read are never forwarded.
fn unreadable(facts: &mut Vec<Fact>, why: &str) -> Verdict {
    tracing::info!(error = why, "PSRP payload not understood");
    deny(
        facts,
        "(unreadable PSRP payload)",
        "the PowerShell payload could not be inspected",
    )
}
