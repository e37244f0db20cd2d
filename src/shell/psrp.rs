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
    /// Most pipeline input held back to judge a pipeline that runs it.
    pub(super) max_held: usize,
}

/// Requests held back from the host until policy has seen the whole pipeline.
#[derive(Debug)]
struct Held {
    command_id: String,
    /// The Command request, as the host would get it.
    command: Bytes,
    /// Send requests carrying later fragments, in order, as the host would get them.
    sends: Vec<Bytes>,
    /// The whole pipeline, when it runs its input (Ansible's bootstrap wrapper): decided
    /// once the input's manifest is whole.
    input: Option<Box<InputWait>>,
}

/// A pipeline waiting for the input it will run.
#[derive(Debug)]
struct InputWait {
    pipeline: crate::policy::Invocation,
    shown: Vec<String>,
    rpid: Uuid,
    pid: Uuid,
    /// String objects so far, each followed by a line break.
    text: String,
    ended: bool,
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
    /// A pipeline that runs its input: to be decided with it.
    AwaitInput(Box<InputWait>),
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
            max_held: super::cmd::DEFAULT_MAX_HELD_INPUT,
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
            Judged::AwaitInput(wait) => {
                let Some(id) = &cl.command_id else {
                    return deny(facts, "(pipeline)", "a pipeline reading input needs an id");
                };
                // Nothing of it reaches the host until its input is judged with it.
                self.held = Some(Held {
                    command_id: id.clone(),
                    command: req.wire.clone(),
                    sends: Vec::new(),
                    input: Some(wait),
                });
                let body = Body::CommandResponse {
                    command_id: id.clone(),
                };
                reply(req, ids, Action::CommandResponse, body)
            }
            Judged::Nothing => match (&cl.command_id, self.from_client.pending_objects()) {
                (Some(id), n) if n > 0 => {
                    self.held = Some(Held {
                        command_id: id.clone(),
                        command: req.wire.clone(),
                        sends: Vec::new(),
                        input: None,
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
        if held.input.is_some() {
            return self.input_for_held(req, &messages, judge, ids, facts);
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
            Judged::AwaitInput(wait) => {
                // The pipeline is whole and runs its input: wait for that too.
                self.held = Some(Held {
                    input: Some(wait),
                    ..held
                });
                if let Some(h) = self.held.as_mut() {
                    h.sends.push(req.wire.clone());
                }
                reply(req, ids, Action::SendResponse, Body::SendResponse)
            }
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

    /// Input for a held pipeline that runs it: collected (the Send held and answered)
    /// until the manifest is whole or the input ends, then the pipeline is decided with
    /// it and released or refused whole.
    fn input_for_held(
        &mut self,
        req: Request<'_>,
        messages: &[ClientMessage],
        judge: &Judge<'_>,
        ids: &mut dyn FnMut() -> Uuid,
        facts: &mut Vec<Fact>,
    ) -> Verdict {
        let max_held = self.max_held;
        let Some(wait) = self.held.as_mut().and_then(|h| h.input.as_mut()) else {
            return forward(req);
        };
        let mut refusal = None;
        for m in messages {
            match m {
                ClientMessage::Input { pid, text, .. } if *pid == wait.pid => match text {
                    Some(t) => {
                        wait.text.push_str(t);
                        wait.text.push('\n');
                    }
                    None => refusal = Some("input that is not text, to a pipeline that runs it"),
                },
                ClientMessage::EndOfInput { pid } if *pid == wait.pid => wait.ended = true,
                ClientMessage::CreatePipeline { .. } | ClientMessage::CommandMetadata { .. } => {
                    refusal = Some("a pipeline may only be opened by a Command")
                }
                _ => {}
            }
        }
        if refusal.is_none() && wait.text.len() > max_held {
            refusal = Some("pipeline input held to judge it exceeds limits.max_held_input_bytes");
        }
        if let Some(reason) = refusal {
            let shown = wait.shown.join("; ");
            self.held = None;
            return deny(facts, &shown, reason);
        }
        let whole = crate::policy::ansible_payload_len(&wait.text, wait.ended)
            .or(wait.ended.then_some(wait.text.len()));
        let Some(len) = whole else {
            if let Some(h) = self.held.as_mut() {
                h.sends.push(req.wire.clone());
            }
            return reply(req, ids, Action::SendResponse, Body::SendResponse);
        };
        let Some(held) = self.held.take() else {
            return forward(req);
        };
        let Some(wait) = held.input else {
            return forward(req);
        };
        let input = wait.text.get(..len).unwrap_or_default();
        let decision = judge.judge(&Operation::PipelineWithInput {
            pipeline: &wait.pipeline,
            input,
        });
        let mut shown = wait.shown.clone();
        shown.push(format!("(input: Ansible payload, {len} bytes)"));
        match conclude(
            decision,
            shown,
            Some(&held.command_id),
            wait.rpid,
            wait.pid,
            facts,
        ) {
            Ok(()) => {
                let mut bodies = Vec::with_capacity(held.sends.len() + 2);
                bodies.push(held.command);
                bodies.extend(held.sends);
                bodies.push(req.wire.clone());
                Verdict::Forward(bodies)
            }
            Err(mut denied) => {
                denied.command_id = held.command_id;
                self.remember(denied);
                reply(req, ids, Action::SendResponse, Body::SendResponse)
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
            record,
            truncated,
            bytes,
            ..
        } => (record.clone(), *truncated, *bytes, false),
        ClientMessage::EndOfInput { .. } => (String::new(), false, 0, true),
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
                if judge.engine.pipeline_reads_code(&inv) {
                    return Judged::AwaitInput(Box::new(InputWait {
                        pipeline: inv,
                        shown: render(pipeline),
                        rpid: *rpid,
                        pid: *pid,
                        text: String::new(),
                        ended: false,
                    }));
                }
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
            ClientMessage::Input { .. }
            | ClientMessage::EndOfInput { .. }
            | ClientMessage::Other => continue,
        };
        if let Err(denied) = conclude(decision, shown, command_id, rpid, pid, facts) {
            return Judged::Denied(denied);
        }
        judged = Judged::Allowed;
    }
    judged
}

/// Records a pipeline's decision; a refusal becomes the failed pipeline the client is
/// answered with (its CommandId still to be filled in).
fn conclude(
    decision: crate::policy::Judgement,
    shown: Vec<String>,
    command_id: Option<&str>,
    rpid: Uuid,
    pid: Uuid,
    facts: &mut Vec<Fact>,
) -> Result<(), DeniedPipeline> {
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
        return Err(DeniedPipeline {
            command_id: String::new(),
            rpid,
            pid,
            message,
            target: redacted.command.join("; "),
            answered: false,
        });
    }
    Ok(())
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
