//! The shell inspector: for each request on a shell, what the gateway does with it (a
//! [`Verdict`]) and what the audit must record (typed [`Fact`]s); for each answer of the
//! host, what it printed.
//!
//! One [`Inspector`] per shell, kept by the caller beside the session registry and keyed by
//! ShellId. It owns everything the gateway must remember between requests to judge a shell:
//! PSRP reassembly in both directions, pipelines held until they are whole, pipelines it
//! refused and answers for itself, the programs of a cmd shell whose stdin it judges. It
//! decides through `policy::Engine` ([`Judge`]).
//!
//! Pure: no I/O, no tokio, no clock, no random ids (the caller passes an id source). It
//! never sends anything: the proxy carries out the verdict and turns the facts into audit
//! events (one place), so this module can be tested with recorded envelopes alone.
//!
//! - `cmd`: WinRS cmd shells; `psrp`: PowerShell runspace pools;
//! - `compression`: xpress between a compressing client and the gateway;
//! - `pipeline`: PSRP client messages as policy sees them;
//! - `failed`: a denied pipeline answered as a failed one (the session lives on);
//! - `output`: what the host's answers say commands printed.

mod cmd;
pub mod compression;
mod failed;
mod output;
mod pipeline;
mod psrp;
mod tally;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::policy::{
    DecodedCode, Engine, HostRef, Operation, ShellKind as PolicyShellKind, Subject,
};
use crate::wsman::{Action, Body, Envelope};

pub use cmd::DEFAULT_MAX_HELD_INPUT;
pub use failed::DENIED_ERROR_ID;
pub use output::{cmd_outputs, psrp_outputs, Output, OutputRecord, OUTPUT_CAP};
pub use tally::COMMAND_RECORD_CAP;

use self::cmd::CmdInspector;
use self::psrp::PsrpInspector;
use self::tally::Tallies;

/// Resource URI of WinRS cmd shells.
pub const CMD_RESOURCE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
/// Prefix of PSRP resource URIs; the rest is the session configuration name.
pub const PSRP_RESOURCE_PREFIX: &str = "http://schemas.microsoft.com/powershell/";

/// What kind of shell a ShellId names, from the Create's resource URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ShellKind {
    /// WinRS `cmd` shell.
    Cmd,
    /// PowerShell runspace pool on the named session configuration.
    Psrp { configuration: String },
}

// === impl ShellKind ===

impl ShellKind {
    /// The kind a Create's resource URI asks for; None for resources not relayed.
    pub fn from_resource(uri: &str) -> Option<Self> {
        if uri.eq_ignore_ascii_case(CMD_RESOURCE) {
            return Some(Self::Cmd);
        }
        uri.strip_prefix(PSRP_RESOURCE_PREFIX)
            .map(|conf| Self::Psrp {
                configuration: conf.to_string(),
            })
    }

    /// The resource URI of requests on such a shell.
    pub fn resource_uri(&self) -> String {
        match self {
            Self::Cmd => CMD_RESOURCE.to_string(),
            Self::Psrp { configuration } => format!("{PSRP_RESOURCE_PREFIX}{configuration}"),
        }
    }

    /// Short name for audit records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Cmd => "cmd",
            Self::Psrp { .. } => "psrp",
        }
    }
}

/// Who decides, for whom, on which host: the policy snapshot of the request.
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    pub engine: &'a Engine,
    pub subject: &'a Subject,
    pub host: HostRef<'a>,
}

impl Judge<'_> {
    fn decide(&self, op: &Operation<'_>) -> crate::policy::Decision {
        self.engine.decide(self.subject, &self.host, op)
    }

    /// The decision with the code policy decoded to reach it (for the record).
    fn judge(&self, op: &Operation<'_>) -> crate::policy::Judgement {
        self.engine.decide_with_code(self.subject, &self.host, op)
    }
}

/// One client request on a shell: the decoded envelope and the bytes the host would get
/// (already addressed to the host), which the inspector may hold back.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub envelope: &'a Envelope,
    pub wire: &'a Bytes,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Send these bodies to the host in order and answer the client with the host's
    /// answer to the last one (earlier ones are requests held back until now).
    Forward(Vec<Bytes>),
    /// Answer the client with this envelope; nothing goes to the host.
    Reply(Box<Envelope>),
    /// Refuse with a WS-Man fault; nothing goes to the host.
    Deny(Denial),
}

/// Why a request is refused with a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Policy or inspection said no; the text is for the client's fault.
    Access(String),
    /// A Create of a resource the gateway does not relay.
    Resource(String),
    /// A Create asking for compression the gateway cannot decode (a cmd shell, or a type
    /// other than xpress).
    Compression,
}

/// Something the audit must record, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// Policy let a command (cmd line, stdin, PSRP pipeline) through to the host.
    Allowed {
        command_id: Option<String>,
        /// One element per argv entry (cmd) or statement (PSRP), not yet redacted.
        command: Vec<String>,
        /// The code policy decoded from it (`-EncodedCommand`, `Invoke-Expression`,
        /// `cmd /c`, stdin), not yet redacted.
        decoded: Vec<DecodedCode>,
        role: String,
    },
    /// A command was refused; it never reached the host.
    Denied {
        command_id: Option<String>,
        command: Vec<String>,
        /// The code policy decoded from it, not yet redacted.
        decoded: Vec<DecodedCode>,
        /// The policy's reason, not yet redacted.
        reason: String,
    },
    /// A request refused before any command (a Create), for `access.denied`.
    Refused { action: String, reason: String },
    /// What the host said a command printed.
    Output(Output),
    /// Input the client sent a running command (relayed to the host).
    Input(Input),
    /// An Ansible module a decision was about (after its `Allowed`/`Denied`).
    AnsibleModule {
        command_id: Option<String>,
        run: crate::policy::ModuleRun,
        allowed: bool,
    },
    /// What an allowed Ansible module reported when its command ended.
    AnsibleResult {
        command_id: Option<String>,
        module: String,
        result: crate::policy::ModuleResult,
    },
}

/// Input to a running command: a Send's stdin (cmd) or PIPELINE_INPUT (PSRP), not yet
/// redacted, its text cut to [`INPUT_CAP`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub command_id: Option<String>,
    pub stream: InputStream,
    pub text: String,
    pub truncated: bool,
    /// Bytes sent (cmd: stream bytes; PSRP: the message's CLIXML bytes), before any cut.
    pub bytes: u64,
    /// The client said the input ends here.
    pub end: bool,
}

/// Where input goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputStream {
    /// A cmd command's stdin.
    Stdin,
    /// A PSRP pipeline's input objects.
    Pipeline,
}

impl InputStream {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdin => "stdin",
            Self::Pipeline => "pipeline",
        }
    }
}

/// Most text of one input event.
pub const INPUT_CAP: usize = pipeline::INPUT_CAP;

impl Input {
    /// A cmd Send's stdin stream.
    fn stdin(s: &crate::wsman::Stream) -> Self {
        let text = String::from_utf8_lossy(&s.data);
        let mut end = text.len().min(INPUT_CAP);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            command_id: s.command_id.clone(),
            stream: InputStream::Stdin,
            text: text.get(..end).unwrap_or_default().to_string(),
            truncated: end < text.len(),
            bytes: s.data.len() as u64,
            end: s.end,
        }
    }
}

/// Counters of a shell, for `session.end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActivityCounts {
    /// Commands (or pipelines) policy let through.
    pub commands_allowed: u64,
    /// Commands (or pipelines) refused.
    pub commands_denied: u64,
    /// Output bytes the host sent (cmd stream bytes; PSRP record text).
    pub output_bytes: u64,
}

/// Most command ids remembered per shell for a terminate; a shell with more running
/// commands than this is closed by its Delete alone.
const MAX_LIVE_COMMANDS: usize = 256;

/// The inspection state of one shell.
#[derive(Debug)]
pub struct Inspector {
    kind: ShellKind,
    shell: Shell,
    /// The client frames its streams with xpress (`compression`).
    compressed: bool,
    /// The host agreed to frame its streams too (its CreateResponse said so).
    host_compressed: bool,
    counts: ActivityCounts,
    /// Commands the host started and has not been seen to finish (upper case), so an
    /// administrator's terminate can stop them.
    live: std::collections::BTreeSet<String>,
    /// Each running command's whole output: count, digest, text kept so far.
    tallies: Tallies,
    /// Allowed Ansible module runs (CommandId, upper case) → module and output so far,
    /// read for the module's result when the command ends.
    ansible: std::collections::HashMap<String, (String, String)>,
}

/// Most module runs awaited per shell, and most output kept per run to find its result.
const MAX_ANSIBLE_RUNS: usize = 64;
const MAX_ANSIBLE_OUTPUT: usize = 256 * 1024;

#[derive(Debug)]
enum Shell {
    Cmd(CmdInspector),
    Psrp(Box<PsrpInspector>),
}

// === impl Inspector ===

impl Inspector {
    /// Judges a Create: the resource, the compression header and the policy's OpenShell.
    /// On success, the inspector for the shell the host is about to create (the proxy
    /// keeps it once the host has answered with a ShellId).
    pub fn open(env: &Envelope, judge: &Judge<'_>) -> (Result<Inspector, Denial>, Vec<Fact>) {
        let refused = |reason: &str| {
            vec![Fact::Refused {
                action: Action::Create.uri().to_string(),
                reason: reason.to_string(),
            }]
        };
        let resource = env.header.resource_uri.as_deref().unwrap_or_default();
        let Some(kind) = ShellKind::from_resource(resource) else {
            return (
                Err(Denial::Resource(resource.to_string())),
                refused("resource not relayed"),
            );
        };
        // Only PowerShell clients compress (PROTOCOL.md §9), and only xpress is decoded: any
        // other request for compression fails closed rather than relay what cannot be read.
        let compressed = match (&kind, env.header.compression_type.as_deref()) {
            (_, None) => false,
            (ShellKind::Psrp { .. }, Some(c)) if compression::is_supported(c) => true,
            (_, Some(_)) => {
                return (
                    Err(Denial::Compression),
                    refused("shell compression not supported"),
                )
            }
        };
        let op_kind = match &kind {
            ShellKind::Cmd => PolicyShellKind::Cmd,
            ShellKind::Psrp { configuration } => PolicyShellKind::Psrp { configuration },
        };
        if let crate::policy::Decision::Deny { reason, .. } =
            judge.decide(&Operation::OpenShell { kind: op_kind })
        {
            let facts = refused(&reason);
            return (Err(Denial::Access(reason)), facts);
        }
        let shell = match &kind {
            ShellKind::Cmd => Shell::Cmd(CmdInspector::default()),
            ShellKind::Psrp { .. } => {
                let creation = match &env.body {
                    Body::Shell(s) => s.creation_xml.as_deref(),
                    _ => None,
                };
                Shell::Psrp(Box::new(PsrpInspector::open(creation)))
            }
        };
        let inspector = Inspector {
            kind,
            shell,
            compressed,
            host_compressed: false,
            counts: ActivityCounts::default(),
            live: Default::default(),
            tallies: Tallies::default(),
            ansible: Default::default(),
        };
        (Ok(inspector), Vec::new())
    }

    /// Bounds the input held back per command to judge it (`[limits]
    /// max_held_input_bytes`); [`DEFAULT_MAX_HELD_INPUT`] unless set.
    pub fn with_max_held_input(mut self, bytes: usize) -> Self {
        match &mut self.shell {
            Shell::Cmd(c) => *c = CmdInspector::new(bytes),
            Shell::Psrp(p) => p.max_held = bytes,
        }
        self
    }

    /// The kind of shell.
    pub fn kind(&self) -> &ShellKind {
        &self.kind
    }

    /// Whether the client compresses this shell's streams (the gateway decodes its Sends
    /// and frames its ReceiveResponses, `compression`).
    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// Whether the host frames this shell's streams (and expects framed Sends).
    pub fn host_compressed(&self) -> bool {
        self.host_compressed
    }

    /// Records what the host's CreateResponse said: `XpressCompression` on a shell whose
    /// client compresses. A host never compresses a shell whose client does not.
    pub fn host_agreed_to_compression(&mut self, agreed: bool) {
        self.host_compressed = agreed && self.compressed;
    }

    /// Judges one request on the shell. `ids` draws the ids of gateway-made answers.
    pub fn on_request(
        &mut self,
        req: Request<'_>,
        judge: &Judge<'_>,
        ids: &mut dyn FnMut() -> Uuid,
    ) -> (Verdict, Vec<Fact>) {
        let mut facts = Vec::new();
        let verdict = match &mut self.shell {
            Shell::Cmd(c) => c.on_request(req, judge, ids, &mut facts),
            Shell::Psrp(p) => p.on_request(req, judge, ids, &mut facts),
        };
        for f in &facts {
            match f {
                Fact::Allowed { .. } => self.counts.commands_allowed += 1,
                Fact::Denied { .. } => self.counts.commands_denied += 1,
                Fact::AnsibleModule {
                    command_id: Some(id),
                    run,
                    allowed: true,
                } if self.ansible.len() < MAX_ANSIBLE_RUNS => {
                    self.ansible
                        .insert(id.to_ascii_uppercase(), (run.name.clone(), String::new()));
                }
                _ => {}
            }
        }
        (verdict, facts)
    }

    /// Reads the host's 200 answer to `request`: output facts, and which commands started
    /// and finished. An answer the inspector cannot read is not an error (it was sent on
    /// unchanged); it only records nothing.
    pub fn on_answer(&mut self, request: &Envelope, answer: &Envelope) -> Vec<Fact> {
        if let Body::Signal {
            command_id: Some(id),
            code: crate::wsman::SignalCode::Terminate,
        } = &request.body
        {
            // A terminated command is over whatever the host says later.
            self.live.remove(&id.to_ascii_uppercase());
            self.tallies.forget(id);
        }
        let outputs = match (&mut self.shell, &answer.body) {
            (shell, Body::CommandResponse { command_id }) => {
                if self.live.len() < MAX_LIVE_COMMANDS {
                    self.live.insert(command_id.to_ascii_uppercase());
                }
                if let (Shell::Cmd(c), Body::CommandLine(cl)) = (shell, &request.body) {
                    c.started(command_id, cl);
                }
                Vec::new()
            }
            (
                shell,
                Body::ReceiveResponse {
                    streams,
                    command_state,
                },
            ) => {
                if let Some(id) = command_state
                    .as_ref()
                    .filter(|s| s.state == crate::wsman::CommandStateKind::Done)
                    .and_then(|s| s.command_id.as_deref())
                {
                    self.live.remove(&id.to_ascii_uppercase());
                }
                match shell {
                    Shell::Cmd(_) => {
                        for s in streams.iter().filter(|s| {
                            s.name.eq_ignore_ascii_case("stdout")
                                || s.name.eq_ignore_ascii_case("stderr")
                        }) {
                            self.tallies.feed(s.command_id.as_deref(), &s.data);
                        }
                        cmd_outputs(streams, command_state.as_ref(), OUTPUT_CAP)
                    }
                    Shell::Psrp(p) => p.outputs(streams, &mut self.tallies),
                }
            }
            _ => Vec::new(),
        };
        let mut outputs = outputs;
        let mut results = Vec::new();
        for o in &mut outputs {
            self.counts.output_bytes = self.counts.output_bytes.saturating_add(o.bytes);
            // An Ansible module's result is read from its whole output, before the record's
            // cut of the text (`settle`).
            if let Some(id) = o.command_id.as_deref().map(str::to_ascii_uppercase) {
                if let Some((_, text)) = self.ansible.get_mut(&id) {
                    if let Some(out) = &o.stdout {
                        if text.len() + out.len() <= MAX_ANSIBLE_OUTPUT {
                            text.push_str(out);
                        }
                    }
                    if o.exit_code.is_some() || o.pipeline_state.is_some() {
                        if let Some((module, text)) = self.ansible.remove(&id) {
                            if let Some(result) = crate::policy::ansible_result(&text) {
                                results.push(Fact::AnsibleResult {
                                    command_id: o.command_id.clone(),
                                    module,
                                    result,
                                });
                            }
                        }
                    }
                }
            }
            self.tallies.settle(o);
        }
        let mut facts: Vec<Fact> = outputs.into_iter().map(Fact::Output).collect();
        facts.extend(results);
        facts
    }

    /// The shell's counters so far.
    pub fn counts(&self) -> ActivityCounts {
        self.counts
    }

    /// Bytes this shell holds for inspection: PSRP fragments being reassembled and
    /// requests held back until their pipeline is whole (the per-person cap, issue #14).
    pub fn held_bytes(&self) -> usize {
        match &self.shell {
            Shell::Cmd(_) => 0,
            Shell::Psrp(p) => p.held_bytes(),
        }
    }

    /// Commands started and not yet seen to finish, in id order.
    pub fn live_commands(&self) -> Vec<String> {
        self.live.iter().cloned().collect()
    }
}
