//! Minimal PSRP server for the test host (MS-PSRP 3.2.5): opens a RunspacePool and answers
//! each pipeline with emulated output.
//!
//! Owns one PowerShell shell's protocol state: the client→server defragmenter, the
//! server→client object ids, and the fragments waiting for a Receive (pool level or per
//! pipeline). The server messages copy what Windows sends (see the pypsrp corpus,
//! `test_psrp_open_runspace.yml`, `test_client_execute_ps.yml`), with the UTF-8 BOM. A
//! pipeline's commands are not run: `Invoke-Expression` scripts and command lines go through
//! the same emulated command table as cmd shells. Pure: no I/O, no clock.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use quick_xml::events::{BytesText, Event};
use uuid::Uuid;

use crate::psrp::clixml::{encode_escapes, parse_clixml, Value, ValueKind};
use crate::psrp::{
    extract_create_pipeline, fragment_message, fragment_refs, ArgValue, Defragmenter, Destination,
    Message, MessageType, Pipeline,
};
use crate::wsman::{CommandState, CommandStateKind, FaultSubcode, Stream};

use super::commands::{self, CommandContext};

/// A fault to send: subcode and Windows' message.
pub(crate) type Failure = (FaultSubcode, &'static str);

const BAD_DATA: Failure = (
    FaultSubcode::InvalidParameter,
    "The PSRP data sent by the client could not be decoded.",
);
const UNKNOWN_PIPELINE: Failure = (
    FaultSubcode::InvalidSelectors,
    "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier.",
);
/// Largest fragment we emit (Windows' default MaxEnvelopeSize is 150 KiB; stay well below).
const MAX_FRAGMENT: usize = 32 * 1024;
const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

const SESSION_CAPABILITY: &str = r#"<Obj RefId="0"><MS><Version N="protocolversion">2.3</Version><Version N="PSVersion">2.0</Version><Version N="SerializationVersion">1.1.0.1</Version></MS></Obj>"#;
const APPLICATION_PRIVATE_DATA: &str = r#"<Obj RefId="0"><MS><Obj N="ApplicationPrivateData" RefId="1"><TN RefId="0"><T>System.Management.Automation.PSPrimitiveDictionary</T><T>System.Collections.Hashtable</T><T>System.Object</T></TN><DCT><En><S N="Key">PSVersionTable</S><Obj N="Value" RefId="2"><TNRef RefId="0" /><DCT><En><S N="Key">PSVersion</S><Version N="Value">5.1.14393.2248</Version></En><En><S N="Key">PSEdition</S><S N="Value">Desktop</S></En><En><S N="Key">PSCompatibleVersions</S><Obj N="Value" RefId="3"><TN RefId="1"><T>System.Version[]</T><T>System.Array</T><T>System.Object</T></TN><LST><Version>1.0</Version><Version>2.0</Version><Version>3.0</Version><Version>4.0</Version><Version>5.0</Version><Version>5.1.14393.2248</Version></LST></Obj></En><En><S N="Key">CLRVersion</S><Version N="Value">4.0.30319.42000</Version></En><En><S N="Key">BuildVersion</S><Version N="Value">10.0.14393.2248</Version></En><En><S N="Key">WSManStackVersion</S><Version N="Value">3.0</Version></En><En><S N="Key">PSRemotingProtocolVersion</S><Version N="Value">2.3</Version></En><En><S N="Key">SerializationVersion</S><Version N="Value">1.1.0.1</Version></En></DCT></Obj></En></DCT></Obj></MS></Obj>"#;
/// RunspacePoolState 2 = Opened.
const RUNSPACEPOOL_OPENED: &str = r#"<Obj RefId="0"><MS><I32 N="RunspaceState">2</I32></MS></Obj>"#;
/// PSInvocationState 4 = Completed.
const PIPELINE_COMPLETED: &str = r#"<Obj RefId="0"><MS><I32 N="PipelineState">4</I32></MS></Obj>"#;

#[derive(Debug, Default)]
struct PipelineOut {
    fragments: VecDeque<Vec<u8>>,
    done: bool,
    finished: bool,
}

/// Protocol state of one PowerShell (PSRP) shell.
#[derive(Debug)]
pub(crate) struct PsrpShell {
    rpid: Uuid,
    ctx: CommandContext,
    inbound: Defragmenter,
    next_object_id: u64,
    pool_out: VecDeque<Vec<u8>>,
    pipelines: HashMap<String, PipelineOut>,
}

// === impl PsrpShell ===

impl PsrpShell {
    /// Opens the pool from the Create's `creationXml` (SESSION_CAPABILITY +
    /// INIT_RUNSPACEPOOL). Returns the shell and the descriptions of what ran (none here).
    pub(crate) fn open(ctx: CommandContext, creation_xml: &[u8]) -> Result<Self, Failure> {
        let mut shell = Self {
            rpid: Uuid::nil(),
            ctx,
            inbound: Defragmenter::new(),
            next_object_id: 1,
            pool_out: VecDeque::new(),
            pipelines: HashMap::new(),
        };
        shell.feed(creation_xml)?;
        Ok(shell)
    }

    /// A Command: `arguments` are base64 fragments of CREATE_PIPELINE (the rest may follow
    /// in Sends). Returns descriptions of pipelines that ran.
    pub(crate) fn command(
        &mut self,
        command_id: &str,
        arguments: &[String],
    ) -> Result<Vec<String>, Failure> {
        self.pipelines
            .entry(command_id.to_ascii_uppercase())
            .or_default();
        let mut ran = Vec::new();
        for arg in arguments {
            let data = base64::engine::general_purpose::STANDARD
                .decode(arg.trim())
                .map_err(|_| BAD_DATA)?;
            ran.extend(self.feed(&data)?);
        }
        Ok(ran)
    }

    /// A Send on `stdin`/`pr` (pipeline input, host responses, rest of a CREATE_PIPELINE).
    pub(crate) fn send(&mut self, data: &[u8]) -> Result<Vec<String>, Failure> {
        self.feed(data)
    }

    /// A Receive: pool-level messages without `command_id`, else that pipeline's output.
    /// `Err(TimedOut)` when there is nothing to say (Windows holds the poll instead).
    pub(crate) fn receive(
        &mut self,
        command_id: Option<&str>,
    ) -> Result<(Vec<Stream>, Option<CommandState>), Failure> {
        let stream = |data, command_id: Option<&str>| Stream {
            name: "stdout".into(),
            command_id: command_id.map(str::to_owned),
            end: false,
            data,
        };
        let Some(id) = command_id else {
            if self.pool_out.is_empty() {
                return Err(TIMED_OUT);
            }
            // One rsp:Stream per fragment, as Windows sends them.
            return Ok((
                self.pool_out.drain(..).map(|f| stream(f, None)).collect(),
                None,
            ));
        };
        let pipeline = self
            .pipelines
            .get_mut(&id.to_ascii_uppercase())
            .ok_or(UNKNOWN_PIPELINE)?;
        let streams: Vec<Stream> = pipeline
            .fragments
            .drain(..)
            .map(|f| stream(f, Some(id)))
            .collect();
        if pipeline.done && !pipeline.finished {
            pipeline.finished = true;
            let state = CommandState {
                command_id: Some(id.to_owned()),
                state: CommandStateKind::Done,
                exit_code: Some(0),
            };
            return Ok((streams, Some(state)));
        }
        if streams.is_empty() {
            return Err(TIMED_OUT);
        }
        Ok((streams, None))
    }

    /// Signal terminate / ctrl_c on a pipeline: forget it.
    pub(crate) fn signal(&mut self, command_id: &str) {
        self.pipelines.remove(&command_id.to_ascii_uppercase());
    }

    fn feed(&mut self, data: &[u8]) -> Result<Vec<String>, Failure> {
        let mut ran = Vec::new();
        for fragment in fragment_refs(data) {
            let fragment = fragment.map_err(|_| BAD_DATA)?;
            if let Some(bytes) = self.inbound.push_ref(fragment).map_err(|_| BAD_DATA)? {
                let message = Message::from_vec(bytes).map_err(|_| BAD_DATA)?;
                ran.extend(self.handle(&message)?);
            }
        }
        Ok(ran)
    }

    fn handle(&mut self, msg: &Message) -> Result<Option<String>, Failure> {
        match msg.message_type {
            MessageType::SessionCapability => {
                self.rpid = msg.rpid;
                Ok(None)
            }
            MessageType::InitRunspacePool => {
                self.rpid = msg.rpid;
                self.queue(
                    None,
                    MessageType::SessionCapability,
                    SESSION_CAPABILITY.into(),
                );
                self.queue(
                    None,
                    MessageType::ApplicationPrivateData,
                    APPLICATION_PRIVATE_DATA.into(),
                );
                self.queue(
                    None,
                    MessageType::RunspacePoolState,
                    RUNSPACEPOOL_OPENED.into(),
                );
                Ok(None)
            }
            MessageType::CreatePipeline => {
                let pipeline = extract_create_pipeline(msg).map_err(|_| BAD_DATA)?;
                let (description, lines) = self.evaluate(&pipeline);
                for line in lines {
                    self.queue(
                        Some(msg.pid),
                        MessageType::PipelineOutput,
                        clixml_string(&line),
                    );
                }
                self.complete(msg.pid);
                Ok(Some(description))
            }
            MessageType::GetCommandMetadata => {
                // Lists commands; the emulated host has none to describe.
                self.complete(msg.pid);
                Ok(Some("Get-Command (metadata)".into()))
            }
            // MS-PSRP 2.2.2.5-2.2.2.7: answer with the same call id (`ci`).
            MessageType::SetMaxRunspaces | MessageType::SetMinRunspaces => {
                let ci = call_id(msg)?;
                self.queue(
                    None,
                    MessageType::RunspaceAvailability,
                    availability_xml("B", "true", ci),
                );
                Ok(None)
            }
            MessageType::GetAvailableRunspaces => {
                let ci = call_id(msg)?;
                self.queue(
                    None,
                    MessageType::RunspaceAvailability,
                    availability_xml("I64", "1", ci),
                );
                Ok(None)
            }
            // Pipeline input, host responses and the key exchange are accepted and ignored by
            // this emulation.
            _ => Ok(None),
        }
    }

    fn complete(&mut self, pid: Uuid) {
        self.queue(
            Some(pid),
            MessageType::PipelineState,
            PIPELINE_COMPLETED.into(),
        );
        self.pipelines.entry(command_key(pid)).or_default().done = true;
    }

    /// Encodes a server message and queues its fragments for the pool or a pipeline.
    fn queue(&mut self, pid: Option<Uuid>, message_type: MessageType, xml: String) {
        let mut data = BOM.to_vec();
        data.extend_from_slice(xml.as_bytes());
        let message = Message {
            destination: Destination::Client,
            message_type,
            rpid: self.rpid,
            pid: pid.unwrap_or_else(Uuid::nil),
            data,
        };
        let object_id = self.next_object_id;
        self.next_object_id += 1;
        let fragments = fragment_message(object_id, &message.to_bytes(), MAX_FRAGMENT);
        let target = match pid {
            None => &mut self.pool_out,
            Some(pid) => {
                &mut self
                    .pipelines
                    .entry(command_key(pid))
                    .or_default()
                    .fragments
            }
        };
        for fragment in fragments {
            // Encoding a fragment we just cut cannot fail (blobs are far below u32::MAX).
            if let Ok(bytes) = fragment.to_bytes() {
                target.push_back(bytes);
            }
        }
    }

    /// Turns a pipeline into a description (for the journal) and output lines.
    fn evaluate(&self, pipeline: &Pipeline) -> (String, Vec<String>) {
        let mut scripts = Vec::new();
        for statement in &pipeline.statements {
            let Some(first) = statement.first() else {
                continue;
            };
            // pypsrp execute_ps: `Invoke-Expression -Command <script> | Out-String -Stream`.
            if first.name.eq_ignore_ascii_case("Invoke-Expression") {
                if let Some(ArgValue::String(script)) = first
                    .args
                    .iter()
                    .find(|a| {
                        a.name
                            .as_deref()
                            .is_none_or(|n| n.eq_ignore_ascii_case("Command"))
                    })
                    .map(|a| &a.value)
                {
                    scripts.push(script.clone());
                    continue;
                }
            }
            let mut line = first.name.clone();
            if !first.is_script {
                for arg in &first.args {
                    if let Some(name) = &arg.name {
                        line.push_str(" -");
                        line.push_str(name);
                    }
                    if let ArgValue::String(s) = &arg.value {
                        line.push(' ');
                        line.push_str(s);
                    }
                }
            }
            scripts.push(line);
        }
        let mut lines = Vec::new();
        for script in &scripts {
            for piece in script
                .split(['\n', ';'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                lines.extend(self.run_piece(piece));
            }
        }
        (scripts.join("; "), lines)
    }

    fn run_piece(&self, piece: &str) -> Vec<String> {
        let (word, rest) = piece.split_once(' ').unwrap_or((piece, ""));
        let unquote = |s: &str| s.trim().trim_matches(['"', '\'']).to_owned();
        match word.to_ascii_lowercase().as_str() {
            "write-output" | "write-host" => vec![unquote(rest)],
            "$env:computername" => vec![self.ctx.hostname.clone()],
            "exit" => Vec::new(),
            _ => {
                let out = commands::run(&self.ctx, piece, &[]);
                if out.exit_code != 0 && out.stdout.is_empty() {
                    return vec![format!("{word}: not emulated by the hopgate test host")];
                }
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect()
            }
        }
    }
}

const TIMED_OUT: Failure = (
    FaultSubcode::TimedOut,
    "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
);

/// Windows writes CommandIds as upper-case GUIDs; pypsrp uses the pipeline id.
fn command_key(pid: Uuid) -> String {
    pid.hyphenated().to_string().to_ascii_uppercase()
}

/// The `ci` (call id) member of a runspace request.
fn call_id(msg: &Message) -> Result<i64, Failure> {
    let xml = msg.data_xml().map_err(|_| BAD_DATA)?;
    let values = parse_clixml(xml).map_err(|_| BAD_DATA)?;
    values
        .first()
        .and_then(Value::as_object)
        // pypsrp writes `CI` in SET_MAX_RUNSPACES and `ci` elsewhere; PowerShell compares
        // member names case-insensitively.
        .and_then(|o| o.members_ignore_case("ci").next())
        .and_then(|v| match v.primitive() {
            ValueKind::I64(ci) => Some(*ci),
            _ => None,
        })
        .ok_or(BAD_DATA)
}

/// RUNSPACE_AVAILABILITY (MS-PSRP 2.2.2.8): `SetMinMaxRunspacesResponse` as a `<B>` for
/// Set* requests or an `<I64>` count for GET_AVAILABLE_RUNSPACES, and the call id. Only
/// fixed element names and numbers go in, so no escaping is involved.
fn availability_xml(tag: &str, value: &str, ci: i64) -> String {
    format!(
        r#"<Obj RefId="0"><MS><{tag} N="SetMinMaxRunspacesResponse">{value}</{tag}><I64 N="ci">{ci}</I64></MS></Obj>"#
    )
}

/// `<S>text</S>`: PowerShell's `_xHHHH_` escapes, then XML escaping (MS-PSRP 2.2.5.1.1).
fn clixml_string(text: &str) -> String {
    let mut writer = quick_xml::Writer::new(Vec::new());
    let encoded = encode_escapes(text);
    let _ = writer.write_event(Event::Start(quick_xml::events::BytesStart::new("S")));
    let _ = writer.write_event(Event::Text(BytesText::new(&encoded)));
    let _ = writer.write_event(Event::End(quick_xml::events::BytesEnd::new("S")));
    String::from_utf8_lossy(&writer.into_inner()).into_owned()
}
