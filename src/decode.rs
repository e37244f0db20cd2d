//! `hopgate decode`: turns a recorded WinRM exchange into one JSON object per envelope.
//!
//! Input is either a recording in the corpus format (YAML `messages: [{request, response}]`,
//! each a whole SOAP envelope) or a single envelope as XML. For every envelope it prints the
//! action, resource URI, ShellId, CommandId, the exit code of a finished command, and the
//! PSRP messages the envelope completes, with the commands of CREATE_PIPELINE and the names
//! of GET_COMMAND_METADATA.
//!
//! PSRP fragments are reassembled across envelopes with one [`Defragmenter`] per ShellId and
//! direction: `creationXml`, Command `rsp:Arguments`, Send streams and `connectXml` carry
//! client→server fragments; ReceiveResponse streams and `connectResponseXml` carry
//! server→client ones (MS-PSRP 3.1.5.3). When the shell's Create asked for `xpress`
//! compression and the host did not answer `NoCompression`, stream bytes are decompressed
//! with [`crate::xpress`] first (PROTOCOL.md §9).
//!
//! This is an offline tool over pure codecs: it reads bytes and writes lines to the given
//! writer, nothing else. Bad input is an error or an `"error"` field, never a panic.

use std::collections::HashMap;
use std::io::Write;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::psrp::{self, Defragmenter};
use crate::wsman::{self, Action, Body, Envelope};
use crate::xpress;

/// Largest envelope accepted from a recording (the gateway's own limit is lower).
const MAX_ENVELOPE_BYTES: usize = 16 * 1024 * 1024;
/// Most bytes one compressed stream may expand to.
const MAX_STREAM_BYTES: usize = 16 * 1024 * 1024;
/// Resource URIs of PSRP shells start with this (MS-PSRP 3.1.5.3.1).
const PSRP_RESOURCE_PREFIX: &str = "http://schemas.microsoft.com/powershell/";

/// Accepts padded and unpadded base64, as Windows and the clients write it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a decode run saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Envelopes written as lines (including ones that failed to parse).
    pub envelopes: usize,
    /// Complete PSRP messages decoded.
    pub psrp_messages: usize,
    /// CREATE_PIPELINE messages whose commands were read.
    pub pipelines: usize,
    /// Lines that carry an `"error"` (envelope, fragment, compression or pipeline problems).
    pub errors: usize,
}

/// Why a recording could not be decoded at all.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Empty input.
    #[error("input is empty")]
    Empty,
    /// The input starts like XML but is not a valid envelope.
    #[error("input is not a valid SOAP envelope: {0}")]
    Envelope(#[source] wsman::WsmanError),
    /// Not XML, and not a YAML recording either.
    #[error("input is not a recording (yaml `messages: [{{request, response}}]`): {message}")]
    Recording {
        /// What the YAML reader said, with line and column.
        message: String,
    },
    /// Writing a line failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
}

/// One output line. Field order is the print order.
#[derive(Debug, Default, Serialize)]
struct Line {
    /// Position of the `{request, response}` pair in a recording.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    dir: &'static str,
    action: Option<String>,
    resource_uri: Option<String>,
    shell_id: Option<String>,
    command_id: Option<String>,
    /// WinRS: the `rsp:Command` text and `rsp:Arguments` of a cmd shell's Command.
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    arguments: Vec<String>,
    /// WinRS: text sent to a cmd shell's stdin (interpreters read commands there).
    #[serde(skip_serializing_if = "Option::is_none")]
    stdin: Option<String>,
    /// `rsp:CompressionMode` of a CreateResponse.
    #[serde(skip_serializing_if = "Option::is_none")]
    compression_mode: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    psrp: Vec<PsrpLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One PSRP message of a line.
#[derive(Debug, Serialize)]
struct PsrpLine {
    #[serde(rename = "type")]
    message_type: &'static str,
    rpid: String,
    pid: Option<String>,
    /// CREATE_PIPELINE: statements, each a chain of piped commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline: Option<Vec<Vec<psrp::Command>>>,
    /// GET_COMMAND_METADATA: the name patterns.
    #[serde(skip_serializing_if = "Option::is_none")]
    command_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The corpus recording format.
#[derive(Debug, Deserialize)]
struct Recording {
    messages: Option<Vec<Exchange>>,
}

#[derive(Debug, Deserialize)]
struct Exchange {
    request: Option<String>,
    response: Option<String>,
}

/// Decodes a recording (or one envelope) and writes one JSON line per envelope to `out`.
pub fn decode_recording(input: &[u8], out: &mut impl Write) -> Result<DecodeStats, DecodeError> {
    let text = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    let mut decoder = Decoder::default();
    match first {
        None => Err(DecodeError::Empty),
        Some(b'<') => {
            let env = wsman::parse(text, &limits()).map_err(DecodeError::Envelope)?;
            let line = decoder.envelope(&env, Dir::guess(&env), &mut Exchanged::default());
            decoder.write(out, line)?;
            Ok(decoder.stats)
        }
        Some(_) => {
            let recording: Recording =
                serde_norway::from_slice(text).map_err(|e| DecodeError::Recording {
                    message: e.to_string(),
                })?;
            for (index, exchange) in recording.messages.unwrap_or_default().iter().enumerate() {
                let mut pair = Exchanged::default();
                for (dir, xml) in [
                    (Dir::Request, &exchange.request),
                    (Dir::Response, &exchange.response),
                ] {
                    let Some(xml) = xml else { continue };
                    let mut line = match wsman::parse(xml.as_bytes(), &limits()) {
                        Ok(env) => decoder.envelope(&env, dir, &mut pair),
                        Err(e) => Line {
                            dir: dir.name(),
                            error: Some(format!("envelope: {e}")),
                            ..Line::default()
                        },
                    };
                    line.index = Some(index);
                    decoder.write(out, line)?;
                }
            }
            Ok(decoder.stats)
        }
    }
}

fn limits() -> wsman::Limits {
    wsman::Limits {
        max_bytes: MAX_ENVELOPE_BYTES,
        ..wsman::Limits::default()
    }
}

/// Which way an envelope travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Request,
    Response,
}

// === impl Dir ===

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Request => "request",
            Dir::Response => "response",
        }
    }

    /// For a lone envelope: responses carry a `*Response` or fault action.
    fn guess(env: &Envelope) -> Dir {
        let uri = env.action().uri().to_owned();
        if env.action().is_fault() || uri.ends_with("Response") {
            Dir::Response
        } else {
            Dir::Request
        }
    }
}

/// What a request tells its response (a response names neither shell nor command).
#[derive(Debug, Default)]
struct Exchanged {
    resource_uri: Option<String>,
    shell_id: Option<String>,
    command_id: Option<String>,
    /// A Create request's shell, waiting for the ShellId in the response.
    created: Option<ShellState>,
}

/// Per-shell decoding state.
#[derive(Debug, Default)]
struct ShellState {
    psrp: bool,
    /// The Create asked for xpress compression.
    asked_xpress: bool,
    /// Stream bytes are framed and compressed (asked, and not refused in the response).
    compressed: bool,
    to_server: Defragmenter,
    to_client: Defragmenter,
}

#[derive(Debug, Default)]
struct Decoder {
    shells: HashMap<String, ShellState>,
    stats: DecodeStats,
}

/// Whether a shell speaks PSRP, as far as the recording tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Psrp,
    Winrs,
    /// A lone response, or a recording that starts mid-session: payloads are tried as
    /// PSRP, and data that does not parse as fragments is not reported.
    Unknown,
}

/// What one envelope produced.
#[derive(Debug, Default)]
struct Found {
    psrp: Vec<PsrpLine>,
    errors: Vec<String>,
}

/// Where a payload came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    /// `creationXml`, `rsp:Arguments`, `connectXml`...: never compressed.
    Plain,
    /// `rsp:Stream` data: framed and compressed when the shell negotiated xpress.
    Stream,
}

// === impl Decoder ===

impl Decoder {
    fn write(&mut self, out: &mut impl Write, line: Line) -> std::io::Result<()> {
        self.stats.envelopes += 1;
        if line.error.is_some() {
            self.stats.errors += 1;
        }
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")
    }

    /// Decodes one envelope into its line, updating shell state.
    fn envelope(&mut self, env: &Envelope, dir: Dir, pair: &mut Exchanged) -> Line {
        let mut line = Line {
            dir: dir.name(),
            action: Some(action_name(env.action())),
            ..Line::default()
        };
        let mut found = Found::default();

        let resource_uri = env
            .header
            .resource_uri
            .clone()
            .or_else(|| pair.resource_uri.clone());
        let mut shell_id = env.shell_id().map(str::to_owned);
        let mut command_id = body_command_id(&env.body);
        if dir == Dir::Request {
            if let Body::Shell(shell) = &env.body {
                shell_id = shell_id.or_else(|| shell.shell_id.clone());
            }
            pair.resource_uri = resource_uri.clone();
            pair.shell_id = shell_id.clone();
            pair.command_id = command_id.clone();
        } else {
            shell_id = shell_id.or_else(|| pair.shell_id.clone());
            command_id = command_id.or_else(|| pair.command_id.clone());
        }
        let key = shell_id.clone().unwrap_or_default();
        let kind = match (&resource_uri, self.shells.get(&key)) {
            (Some(uri), _) if uri.starts_with(PSRP_RESOURCE_PREFIX) => Kind::Psrp,
            (Some(_), _) => Kind::Winrs,
            (None, Some(state)) if state.psrp => Kind::Psrp,
            (None, Some(_)) => Kind::Winrs,
            (None, None) => Kind::Unknown,
        };

        match (&env.body, dir) {
            (Body::Shell(shell), Dir::Request) => {
                let asked_xpress = env
                    .header
                    .compression_type
                    .as_deref()
                    .is_some_and(|c| c.trim().eq_ignore_ascii_case("xpress"));
                let mut state = ShellState {
                    psrp: kind == Kind::Psrp,
                    asked_xpress,
                    compressed: asked_xpress,
                    ..ShellState::default()
                };
                if let (Kind::Psrp, Some(data)) = (kind, &shell.creation_xml) {
                    self.feed(&mut state, data, true, &mut found);
                }
                match &shell_id {
                    Some(id) => {
                        self.shells.insert(id.clone(), state);
                    }
                    None => pair.created = Some(state),
                }
            }
            (Body::ResourceCreated { shell, .. }, Dir::Response) => {
                let mode = shell.as_ref().and_then(|s| s.compression_mode.clone());
                if let Some(id) = &shell_id {
                    if let Some(state) = pair.created.take() {
                        self.shells.insert(id.clone(), state);
                    }
                    if let Some(state) = self.shells.get_mut(id) {
                        // The host compresses only when asked, and says so (MS-WSMV 2.2.4.37).
                        let refused = mode
                            .as_deref()
                            .is_some_and(|m| m.trim().eq_ignore_ascii_case("NoCompression"));
                        state.compressed = state.asked_xpress && !refused;
                    }
                }
                line.compression_mode = mode.map(|m| m.trim().to_owned());
            }
            (Body::CommandLine(cl), Dir::Request) if kind == Kind::Winrs => {
                line.command = Some(cl.command.trim().to_owned());
                line.arguments = cl.arguments.iter().map(|a| a.trim().to_owned()).collect();
            }
            (Body::CommandLine(cl), Dir::Request) => {
                for arg in &cl.arguments {
                    match BASE64.decode(arg.trim()) {
                        Ok(data) => {
                            self.payload(&key, kind, &data, true, Payload::Plain, &mut found)
                        }
                        Err(e) => found
                            .errors
                            .push(format!("rsp:Arguments is not base64: {e}")),
                    }
                }
            }
            (Body::Send(streams), Dir::Request) if kind == Kind::Winrs => {
                let text: Vec<u8> = streams
                    .iter()
                    .flat_map(|s| s.data.iter().copied())
                    .collect();
                line.stdin = Some(String::from_utf8_lossy(&text).into_owned());
            }
            (Body::Send(streams), Dir::Request) => {
                for stream in streams.iter().filter(|s| !s.data.is_empty()) {
                    self.payload(&key, kind, &stream.data, true, Payload::Stream, &mut found);
                }
            }
            (Body::ReceiveResponse { streams, .. }, Dir::Response) => {
                for stream in streams.iter().filter(|s| !s.data.is_empty()) {
                    self.payload(&key, kind, &stream.data, false, Payload::Stream, &mut found);
                }
            }
            (
                Body::Connect {
                    connect_xml: Some(data),
                },
                Dir::Request,
            ) => self.payload(&key, kind, data, true, Payload::Plain, &mut found),
            (
                Body::ConnectResponse {
                    connect_response_xml: Some(data),
                },
                Dir::Response,
            ) => self.payload(&key, kind, data, false, Payload::Plain, &mut found),
            (Body::Fault(fault), _) => {
                line.fault = Some(json!({
                    "subcode": fault.subcode.as_ref().map(|q| q.local_name.clone()),
                    "wsman_code": fault.wsman_code,
                    "reason": fault.reason,
                }));
            }
            _ => {}
        }
        if env.header.action == Action::DeleteResponse {
            self.shells.remove(&key);
        }

        line.resource_uri = resource_uri;
        line.shell_id = shell_id;
        line.command_id = command_id;
        line.psrp = found.psrp;
        if let Body::ReceiveResponse {
            command_state: Some(state),
            ..
        } = &env.body
        {
            line.exit_code = state.exit_code;
        }
        if !found.errors.is_empty() {
            line.error = Some(found.errors.join("; "));
        }
        line
    }

    /// Feeds one payload to the shell's defragmenter for its direction, decompressing
    /// stream data first when the shell negotiated xpress.
    fn payload(
        &mut self,
        key: &str,
        kind: Kind,
        data: &[u8],
        to_server: bool,
        payload: Payload,
        found: &mut Found,
    ) {
        if kind == Kind::Winrs {
            return;
        }
        let mut state = self.shells.remove(key).unwrap_or(ShellState {
            psrp: true,
            ..ShellState::default()
        });
        let mut attempt = Found::default();
        let plain = if payload == Payload::Stream && state.compressed {
            xpress::decompress_stream(data, MAX_STREAM_BYTES)
                .map_err(|e| attempt.errors.push(format!("compressed stream: {e}")))
                .ok()
        } else {
            Some(data.to_vec())
        };
        if let Some(plain) = plain {
            self.feed(&mut state, &plain, to_server, &mut attempt);
        }
        found.psrp.append(&mut attempt.psrp);
        if kind == Kind::Psrp {
            found.errors.append(&mut attempt.errors);
            self.shells.insert(key.to_owned(), state);
        } else if attempt.errors.is_empty() {
            // Unknown shell whose data parsed as PSRP: remember it as one.
            self.shells.insert(key.to_owned(), state);
        }
    }

    fn feed(&mut self, state: &mut ShellState, data: &[u8], to_server: bool, found: &mut Found) {
        let defrag = if to_server {
            &mut state.to_server
        } else {
            &mut state.to_client
        };
        let messages = match defrag.push_bytes(data) {
            Ok(m) => m,
            Err(e) => {
                found.errors.push(format!("psrp fragments: {e}"));
                return;
            }
        };
        for bytes in messages {
            self.stats.psrp_messages += 1;
            match psrp::Message::from_vec(bytes) {
                Ok(msg) => {
                    let line = self.message_line(&msg, found);
                    found.psrp.push(line);
                }
                Err(e) => found.errors.push(format!("psrp message: {e}")),
            }
        }
    }

    fn message_line(&mut self, msg: &psrp::Message, found: &mut Found) -> PsrpLine {
        let summary = psrp::decode_message_summary(msg);
        if summary.pipeline.is_some() {
            self.stats.pipelines += 1;
        }
        if let Some(e) = &summary.error {
            found.errors.push(format!("{}: {e}", summary.message_type));
        }
        PsrpLine {
            message_type: summary.message_type,
            rpid: summary.rpid,
            pid: summary.pid,
            pipeline: summary.pipeline.map(|p| p.statements),
            command_names: summary.command_names,
            error: summary.error,
        }
    }
}

/// The CommandId a body names, if any.
fn body_command_id(body: &Body) -> Option<String> {
    match body {
        Body::CommandLine(cl) => cl.command_id.clone(),
        Body::CommandResponse { command_id } => Some(command_id.clone()),
        Body::Send(streams) => streams.iter().find_map(|s| s.command_id.clone()),
        Body::Receive(desired) => desired.iter().find_map(|d| d.command_id.clone()),
        Body::ReceiveResponse {
            streams,
            command_state,
        } => command_state
            .as_ref()
            .and_then(|c| c.command_id.clone())
            .or_else(|| streams.iter().find_map(|s| s.command_id.clone())),
        Body::Signal { command_id, .. } => command_id.clone(),
        _ => None,
    }
}

/// Short name of a known action (`Command`, `ReceiveResponse`...), else its URI.
fn action_name(action: &Action) -> String {
    match action {
        Action::Other(uri) => uri.clone(),
        // Debug of a unit variant is exactly its name.
        known => format!("{known:?}"),
    }
}
