//! Typed `s:Body` contents of WinRS / PSRP envelopes (MS-WSMV 2.2.4, MS-PSRP 3.1.5.3) and
//! their decoding.
//!
//! Owns the body types and turning body elements into them, with stream payloads
//! base64-decoded. It must not interpret payloads (PSRP fragments, compression): that is
//! the `psrp` module's job. Unknown elements are skipped; a second copy of an element that
//! may appear once is an error, so that the gateway never reads a different value than the
//! host.

use std::borrow::Cow;
use std::ops::Range;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use super::envelope::{parse_selector_set, Selector};
use super::error::WsmanError;
use super::fault::{parse_fault, Fault};
use super::ns;
use super::reader::{parse_bool, Cursor, Elem, Ns};

/// Standard alphabet; padding optional on input (encoders always pad).
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The body of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No element in `s:Body` (Delete, DeleteResponse, Disconnect/Reconnect responses...).
    Empty,
    /// `rsp:Shell` of a Create request (MS-WSMV 2.2.4.37).
    Shell(Shell),
    /// `x:ResourceCreated` of a CreateResponse, with the `rsp:Shell` Windows echoes after it.
    ResourceCreated {
        /// `a:Address`: the URL of the service.
        address: Option<String>,
        /// `a:ReferenceParameters/w:ResourceURI`.
        resource_uri: Option<String>,
        /// `a:ReferenceParameters/w:SelectorSet` (holds `ShellId`).
        selectors: Vec<Selector>,
        /// The `rsp:Shell` sibling newer Windows sends.
        shell: Option<Box<Shell>>,
    },
    /// `rsp:CommandLine` of a Command request.
    CommandLine(CommandLine),
    /// `rsp:CommandResponse`.
    CommandResponse {
        /// `rsp:CommandId`.
        command_id: String,
    },
    /// `rsp:Send`: the streams, decoded.
    Send(Vec<Stream>),
    /// `rsp:SendResponse`.
    SendResponse,
    /// `rsp:Receive`: the streams asked for.
    Receive(Vec<DesiredStream>),
    /// `rsp:ReceiveResponse`.
    ReceiveResponse {
        /// The `rsp:Stream` elements in order, decoded.
        streams: Vec<Stream>,
        /// `rsp:CommandState`, when present.
        command_state: Option<CommandState>,
    },
    /// `rsp:Signal`.
    Signal {
        /// `@CommandId`; absent for a signal to the shell.
        command_id: Option<String>,
        /// `rsp:Code`.
        code: SignalCode,
    },
    /// `rsp:SignalResponse`.
    SignalResponse,
    /// `rsp:Connect` (MS-PSRP 3.1.5.3.14).
    Connect {
        /// The decoded PSRP `connectXml` payload.
        connect_xml: Option<Vec<u8>>,
    },
    /// `rsp:ConnectResponse` (MS-PSRP 3.1.5.3.15).
    ConnectResponse {
        /// The decoded PSRP `connectResponseXml` payload.
        connect_response_xml: Option<Vec<u8>>,
    },
    /// `s:Fault`.
    Fault(Fault),
    /// Any other first body element (Enumerate, config Get responses...), not decoded.
    Other {
        /// Its namespace URI, if it has one.
        namespace: Option<String>,
        /// Its local name.
        local_name: String,
    },
}

/// `rsp:Shell` (MS-WSMV 2.2.4.37): the request fields and the fields Windows echoes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shell {
    /// `@ShellId` (PSRP: the client-chosen RunspacePool id) or the `rsp:ShellId` child.
    pub shell_id: Option<String>,
    /// `@Name` or `rsp:Name`.
    pub name: Option<String>,
    /// `rsp:ResourceUri` (responses).
    pub resource_uri: Option<String>,
    /// `rsp:Owner` (responses).
    pub owner: Option<String>,
    /// `rsp:ClientIP` (responses).
    pub client_ip: Option<String>,
    /// `rsp:InputStreams`, e.g. `stdin pr`.
    pub input_streams: Option<String>,
    /// `rsp:OutputStreams`, e.g. `stdout stderr`.
    pub output_streams: Option<String>,
    /// `rsp:Environment/rsp:Variable` as (Name, value), in order.
    pub environment: Vec<(String, String)>,
    /// `rsp:WorkingDirectory`, untrimmed.
    pub working_directory: Option<String>,
    /// `rsp:IdleTimeOut`, e.g. `PT7200.000S`.
    pub idle_timeout: Option<String>,
    /// `rsp:CompressionMode` (`XpressCompression` / `NoCompression`), PROTOCOL.md §9.
    pub compression_mode: Option<String>,
    /// The decoded PSRP `creationXml` (SESSION_CAPABILITY + INIT_RUNSPACEPOOL fragments).
    pub creation_xml: Option<Vec<u8>>,
}

/// `rsp:CommandLine` (MS-WSMV 2.2.4.7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLine {
    /// `@CommandId`, when the client chooses it (always for PSRP).
    pub command_id: Option<String>,
    /// `rsp:Command`, untrimmed; empty for PSRP.
    pub command: String,
    /// Each `rsp:Arguments`, untrimmed; for PSRP the base64 CREATE_PIPELINE fragments.
    pub arguments: Vec<String>,
}

/// `rsp:Stream` of a Send or ReceiveResponse (MS-WSMV 2.2.4.37).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    /// `@Name`: `stdin`, `stdout`, `stderr`, `pr`.
    pub name: String,
    /// `@CommandId`; absent for shell-level (PSRP runspace pool) data.
    pub command_id: Option<String>,
    /// `@End`.
    pub end: bool,
    /// The payload, base64-decoded.
    pub data: Vec<u8>,
}

/// `rsp:DesiredStream` of a Receive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredStream {
    /// `@CommandId`; absent when receiving for the shell (PSRP pool).
    pub command_id: Option<String>,
    /// The space-separated stream names, e.g. `stdout stderr`.
    pub streams: String,
}

/// `rsp:CommandState` of a ReceiveResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandState {
    /// `@CommandId`.
    pub command_id: Option<String>,
    /// `@State`.
    pub state: CommandStateKind,
    /// `rsp:ExitCode`, present when Done.
    pub exit_code: Option<i64>,
}

/// The `@State` URI of `rsp:CommandState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandStateKind {
    /// `.../CommandState/Running`.
    Running,
    /// `.../CommandState/Pending`.
    Pending,
    /// `.../CommandState/Done`.
    Done,
    /// Anything else, verbatim.
    Other(String),
}

// === impl CommandStateKind ===

impl CommandStateKind {
    /// Maps a state URI.
    pub fn from_uri(uri: &str) -> CommandStateKind {
        match uri {
            ns::command_state::RUNNING => CommandStateKind::Running,
            ns::command_state::PENDING => CommandStateKind::Pending,
            ns::command_state::DONE => CommandStateKind::Done,
            other => CommandStateKind::Other(other.to_owned()),
        }
    }

    /// The state URI.
    pub fn uri(&self) -> &str {
        match self {
            CommandStateKind::Running => ns::command_state::RUNNING,
            CommandStateKind::Pending => ns::command_state::PENDING,
            CommandStateKind::Done => ns::command_state::DONE,
            CommandStateKind::Other(u) => u,
        }
    }
}

/// `rsp:Signal/rsp:Code` (MS-WSMV 2.2.5.6, MS-PSRP 3.1.5.3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalCode {
    /// `.../shell/signal/terminate` (pypsrp sends `Terminate`; Windows accepts it).
    Terminate,
    /// `.../shell/signal/ctrl_c`.
    CtrlC,
    /// `.../shell/signal/ctrl_break`.
    CtrlBreak,
    /// `http://schemas.microsoft.com/powershell/signal/ctrl_c` or the `crtl_c` spelling.
    PsCtrlC,
    /// Anything else, verbatim.
    Other(String),
}

// === impl SignalCode ===

impl SignalCode {
    /// Maps a signal URI; the last segment is compared case-insensitively.
    pub fn from_uri(uri: &str) -> SignalCode {
        if let Some(last) = uri.strip_prefix(ns::signal::SHELL_PREFIX) {
            if last.eq_ignore_ascii_case("terminate") {
                return SignalCode::Terminate;
            }
            if last.eq_ignore_ascii_case("ctrl_c") {
                return SignalCode::CtrlC;
            }
            if last.eq_ignore_ascii_case("ctrl_break") {
                return SignalCode::CtrlBreak;
            }
        } else if let Some(last) = uri.strip_prefix(ns::signal::POWERSHELL_PREFIX) {
            if last.eq_ignore_ascii_case("ctrl_c") || last.eq_ignore_ascii_case("crtl_c") {
                return SignalCode::PsCtrlC;
            }
        }
        SignalCode::Other(uri.to_owned())
    }

    /// The canonical URI (MS-WSMV spelling).
    pub fn uri(&self) -> &str {
        match self {
            SignalCode::Terminate => ns::signal::TERMINATE,
            SignalCode::CtrlC => ns::signal::CTRL_C,
            SignalCode::CtrlBreak => ns::signal::CTRL_BREAK,
            SignalCode::PsCtrlC => ns::signal::PS_CTRL_C,
            SignalCode::Other(u) => u,
        }
    }
}

// === decoding ===

/// Stores `value` in an empty slot, or fails with [`WsmanError::Duplicate`].
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    cur: &Cursor<'_>,
    suffix: &str,
) -> Result<(), WsmanError> {
    if slot.is_some() {
        return Err(WsmanError::Duplicate {
            path: cur.path_with(suffix),
        });
    }
    *slot = Some(value);
    Ok(())
}

/// After the `s:Body` start tag: decodes its children up to and including `</s:Body>`.
///
/// The first known element decides the variant; `rsp:Shell` after `x:ResourceCreated`
/// joins it; unknown elements are skipped; a second known element is a
/// [`WsmanError::Duplicate`].
///
/// Also returns the byte range of `x:ResourceCreated/a:Address` content, if any.
pub(crate) fn parse_body(cur: &mut Cursor<'_>) -> Result<(Body, BodySpans), WsmanError> {
    let mut body: Option<Body> = None;
    let mut spans = BodySpans::default();
    let mut first_unknown: Option<Body> = None;
    while let Some(elem) = cur.next_child()? {
        let Some(parsed) = parse_known(cur, &elem, &mut spans)? else {
            if first_unknown.is_none() {
                first_unknown = Some(Body::Other {
                    namespace: cur.namespace_of(&elem),
                    local_name: String::from_utf8_lossy(elem.start.local_name().as_ref())
                        .into_owned(),
                });
            }
            cur.skip()?;
            continue;
        };
        body = Some(match (body, parsed) {
            (None, b) => b,
            (
                Some(Body::ResourceCreated {
                    address,
                    resource_uri,
                    selectors,
                    shell: None,
                }),
                Body::Shell(s),
            ) => Body::ResourceCreated {
                address,
                resource_uri,
                selectors,
                shell: Some(Box::new(s)),
            },
            (Some(_), _) => {
                let local = String::from_utf8_lossy(elem.start.local_name().as_ref()).into_owned();
                return Err(WsmanError::Duplicate {
                    path: cur.path_with(&format!("/{local}")),
                });
            }
        });
    }
    let body = body.or(first_unknown).unwrap_or(Body::Empty);
    Ok((body, spans))
}

/// Where some body elements' content sits in the input, for byte-exact splicing.
#[derive(Debug, Default)]
pub(crate) struct BodySpans {
    /// `x:ResourceCreated/a:Address`.
    pub(crate) address: Option<Range<usize>>,
    /// `rsp:Shell/rsp:CompressionMode`.
    pub(crate) compression_mode: Option<Range<usize>>,
}

/// Decodes a known body element (consuming it), or returns `None` without consuming.
fn parse_known(
    cur: &mut Cursor<'_>,
    e: &Elem<'_>,
    spans: &mut BodySpans,
) -> Result<Option<Body>, WsmanError> {
    let local = e.start.local_name();
    let body = match (e.ns, local.as_ref()) {
        (Ns::Shell, b"Shell") => Body::Shell(parse_shell(cur, e, &mut spans.compression_mode)?),
        (Ns::Transfer, b"ResourceCreated") => parse_resource_created(cur, &mut spans.address)?,
        (Ns::Shell, b"CommandLine") => Body::CommandLine(parse_command_line(cur, e)?),
        (Ns::Shell, b"CommandResponse") => parse_command_response(cur)?,
        (Ns::Shell, b"Send") => Body::Send(parse_streams(cur)?.0),
        (Ns::Shell, b"SendResponse") => {
            cur.skip()?;
            Body::SendResponse
        }
        (Ns::Shell, b"Receive") => Body::Receive(parse_desired_streams(cur)?),
        (Ns::Shell, b"ReceiveResponse") => {
            let (streams, command_state) = parse_streams(cur)?;
            Body::ReceiveResponse {
                streams,
                command_state,
            }
        }
        (Ns::Shell, b"Signal") => parse_signal(cur, e)?,
        (Ns::Shell, b"SignalResponse") => {
            cur.skip()?;
            Body::SignalResponse
        }
        (Ns::Shell, b"Connect") => Body::Connect {
            connect_xml: parse_psrp_payload(cur, "connectXml")?,
        },
        (Ns::Shell, b"ConnectResponse") => Body::ConnectResponse {
            connect_response_xml: parse_psrp_payload(cur, "connectResponseXml")?,
        },
        (Ns::Soap, b"Fault") => Body::Fault(parse_fault(cur)?),
        _ => return Ok(None),
    };
    Ok(Some(body))
}

/// Reads the rest of the element as base64 and decodes it.
pub(crate) fn base64_text(cur: &mut Cursor<'_>) -> Result<Vec<u8>, WsmanError> {
    // Take the path first: `text` consumes the end tag and pops it.
    let path = cur.path();
    let text = cur.text()?;
    let raw = text.as_bytes();
    // Pretty-printed replies wrap base64 in whitespace; only copy when there is some.
    let compact: Cow<'_, [u8]> = if raw.iter().any(u8::is_ascii_whitespace) {
        Cow::Owned(
            raw.iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    BASE64
        .decode(compact.as_ref())
        .map_err(|_| WsmanError::BadBase64 { path })
}

fn parse_shell(
    cur: &mut Cursor<'_>,
    e: &Elem<'_>,
    compression_mode_span: &mut Option<Range<usize>>,
) -> Result<Shell, WsmanError> {
    let mut shell = Shell {
        shell_id: cur.attr(e, "ShellId")?.map(|s| s.trim().to_owned()),
        name: cur.attr(e, "Name")?.map(|s| s.trim().to_owned()),
        ..Shell::default()
    };
    while let Some(child) = cur.next_child()? {
        let local = child.start.local_name();
        match (child.ns, local.as_ref()) {
            (Ns::Shell, b"ShellId") => {
                set_once(&mut shell.shell_id, cur.trimmed()?, cur, "/ShellId")?
            }
            (Ns::Shell, b"Name") => set_once(&mut shell.name, cur.trimmed()?, cur, "/Name")?,
            (Ns::Shell, b"ResourceUri") => {
                set_once(&mut shell.resource_uri, cur.trimmed()?, cur, "/ResourceUri")?
            }
            (Ns::Shell, b"Owner") => set_once(&mut shell.owner, cur.trimmed()?, cur, "/Owner")?,
            (Ns::Shell, b"ClientIP") => {
                set_once(&mut shell.client_ip, cur.trimmed()?, cur, "/ClientIP")?
            }
            (Ns::Shell, b"InputStreams") => set_once(
                &mut shell.input_streams,
                cur.trimmed()?,
                cur,
                "/InputStreams",
            )?,
            (Ns::Shell, b"OutputStreams") => set_once(
                &mut shell.output_streams,
                cur.trimmed()?,
                cur,
                "/OutputStreams",
            )?,
            (Ns::Shell, b"WorkingDirectory") => {
                let dir = cur.text()?.into_owned();
                set_once(&mut shell.working_directory, dir, cur, "/WorkingDirectory")?
            }
            (Ns::Shell, b"IdleTimeOut") => {
                set_once(&mut shell.idle_timeout, cur.trimmed()?, cur, "/IdleTimeOut")?
            }
            (Ns::Shell, b"CompressionMode") => {
                let start = cur.position();
                let text = cur.trimmed()?;
                set_once(&mut shell.compression_mode, text, cur, "/CompressionMode")?;
                if !child.empty {
                    *compression_mode_span = Some(cur.content_span(start));
                }
            }
            (Ns::Shell, b"Environment") => parse_environment(cur, &mut shell.environment)?,
            (Ns::PowerShell, b"creationXml") => {
                let data = base64_text(cur)?;
                set_once(&mut shell.creation_xml, data, cur, "/creationXml")?
            }
            _ => cur.skip()?,
        }
    }
    Ok(shell)
}

fn parse_environment(
    cur: &mut Cursor<'_>,
    env: &mut Vec<(String, String)>,
) -> Result<(), WsmanError> {
    loop {
        let Some(var) = cur.next_child()? else {
            return Ok(());
        };
        if !var.is(Ns::Shell, "Variable") {
            cur.skip()?;
            continue;
        }
        let Some(name) = cur.attr(&var, "Name")? else {
            return Err(WsmanError::Missing {
                what: "@Name",
                path: cur.path(),
            });
        };
        // Values are kept verbatim: leading/trailing spaces can matter in a variable.
        let value = cur.text()?.into_owned();
        env.push((name, value));
    }
}

fn parse_resource_created(
    cur: &mut Cursor<'_>,
    address_span: &mut Option<Range<usize>>,
) -> Result<Body, WsmanError> {
    let mut address = None;
    let mut resource_uri = None;
    let mut selectors: Option<Vec<Selector>> = None;
    while let Some(child) = cur.next_child()? {
        if child.is(Ns::Addressing, "Address") {
            let start = cur.position();
            let text = cur.trimmed()?;
            set_once(&mut address, text, cur, "/Address")?;
            if !child.empty {
                *address_span = Some(cur.content_span(start));
            }
        } else if child.is(Ns::Addressing, "ReferenceParameters") {
            while let Some(param) = cur.next_child()? {
                if param.is(Ns::Wsman, "ResourceURI") {
                    set_once(&mut resource_uri, cur.trimmed()?, cur, "/ResourceURI")?;
                } else if param.is(Ns::Wsman, "SelectorSet") {
                    let set = parse_selector_set(cur)?;
                    set_once(&mut selectors, set, cur, "/SelectorSet")?;
                } else {
                    cur.skip()?;
                }
            }
        } else {
            cur.skip()?;
        }
    }
    Ok(Body::ResourceCreated {
        address,
        resource_uri,
        selectors: selectors.unwrap_or_default(),
        shell: None,
    })
}

fn parse_command_line(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<CommandLine, WsmanError> {
    let command_id = cur.attr(e, "CommandId")?.map(|s| s.trim().to_owned());
    let mut command: Option<String> = None;
    let mut arguments = Vec::new();
    while let Some(child) = cur.next_child()? {
        if child.is(Ns::Shell, "Command") {
            let text = cur.text()?.into_owned();
            set_once(&mut command, text, cur, "/Command")?;
        } else if child.is(Ns::Shell, "Arguments") {
            arguments.push(cur.text()?.into_owned());
        } else {
            cur.skip()?;
        }
    }
    Ok(CommandLine {
        command_id,
        command: command.unwrap_or_default(),
        arguments,
    })
}

fn parse_command_response(cur: &mut Cursor<'_>) -> Result<Body, WsmanError> {
    let mut command_id = None;
    while let Some(child) = cur.next_child()? {
        if child.is(Ns::Shell, "CommandId") {
            set_once(&mut command_id, cur.trimmed()?, cur, "/CommandId")?;
        } else {
            cur.skip()?;
        }
    }
    match command_id {
        Some(command_id) => Ok(Body::CommandResponse { command_id }),
        None => Err(WsmanError::Missing {
            what: "CommandId",
            path: cur.path_with("/CommandResponse"),
        }),
    }
}

/// Children of `rsp:Send` or `rsp:ReceiveResponse`: streams and (for the latter) the
/// command state.
fn parse_streams(cur: &mut Cursor<'_>) -> Result<(Vec<Stream>, Option<CommandState>), WsmanError> {
    let mut streams = Vec::new();
    let mut state = None;
    while let Some(child) = cur.next_child()? {
        if child.is(Ns::Shell, "Stream") {
            streams.push(parse_stream(cur, &child)?);
        } else if child.is(Ns::Shell, "CommandState") {
            let s = parse_command_state(cur, &child)?;
            set_once(&mut state, s, cur, "/CommandState")?;
        } else {
            cur.skip()?;
        }
    }
    Ok((streams, state))
}

fn parse_stream(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Stream, WsmanError> {
    let Some(name) = cur.attr(e, "Name")? else {
        return Err(WsmanError::Missing {
            what: "@Name",
            path: cur.path(),
        });
    };
    let command_id = cur.attr(e, "CommandId")?.map(|s| s.trim().to_owned());
    let end = match cur.attr(e, "End")? {
        None => false,
        Some(v) => parse_bool(&v).ok_or_else(|| WsmanError::BadBoolean {
            path: cur.path_with("/@End"),
        })?,
    };
    let data = base64_text(cur)?;
    Ok(Stream {
        name: name.trim().to_owned(),
        command_id,
        end,
        data,
    })
}

fn parse_command_state(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<CommandState, WsmanError> {
    let command_id = cur.attr(e, "CommandId")?.map(|s| s.trim().to_owned());
    let Some(state) = cur.attr(e, "State")? else {
        return Err(WsmanError::Missing {
            what: "@State",
            path: cur.path(),
        });
    };
    let mut exit_code = None;
    while let Some(child) = cur.next_child()? {
        if child.is(Ns::Shell, "ExitCode") {
            let path = cur.path();
            let code: i64 = cur
                .trimmed()?
                .parse()
                .map_err(|_| WsmanError::BadNumber { path })?;
            set_once(&mut exit_code, code, cur, "/ExitCode")?;
        } else {
            cur.skip()?;
        }
    }
    Ok(CommandState {
        command_id,
        state: CommandStateKind::from_uri(state.trim()),
        exit_code,
    })
}

fn parse_desired_streams(cur: &mut Cursor<'_>) -> Result<Vec<DesiredStream>, WsmanError> {
    let mut out = Vec::new();
    while let Some(child) = cur.next_child()? {
        if child.is(Ns::Shell, "DesiredStream") {
            let command_id = cur.attr(&child, "CommandId")?.map(|s| s.trim().to_owned());
            let streams = cur.trimmed()?;
            out.push(DesiredStream {
                command_id,
                streams,
            });
        } else {
            cur.skip()?;
        }
    }
    Ok(out)
}

fn parse_signal(cur: &mut Cursor<'_>, e: &Elem<'_>) -> Result<Body, WsmanError> {
    let command_id = cur.attr(e, "CommandId")?.map(|s| s.trim().to_owned());
    let mut code = None;
    while let Some(child) = cur.next_child()? {
        if child.is(Ns::Shell, "Code") {
            let uri = cur.trimmed()?;
            set_once(&mut code, SignalCode::from_uri(&uri), cur, "/Code")?;
        } else {
            cur.skip()?;
        }
    }
    match code {
        Some(code) => Ok(Body::Signal { command_id, code }),
        None => Err(WsmanError::Missing {
            what: "Code",
            path: cur.path_with("/Signal"),
        }),
    }
}

/// Children of `rsp:Connect` / `rsp:ConnectResponse`: the PSRP payload element `name`.
fn parse_psrp_payload(cur: &mut Cursor<'_>, name: &str) -> Result<Option<Vec<u8>>, WsmanError> {
    let mut payload = None;
    while let Some(child) = cur.next_child()? {
        if child.is(Ns::PowerShell, name) {
            let data = base64_text(cur)?;
            set_once(&mut payload, data, cur, &format!("/{name}"))?;
        } else {
            cur.skip()?;
        }
    }
    Ok(payload)
}
