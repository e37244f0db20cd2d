//! Serialising an [`Envelope`] to XML with `quick_xml::Writer` (never `format!` XML).
//!
//! Owns the output shape of envelopes the gateway and the test host produce: prefixes
//! `s`, `wsa`, `wsman`, `wsmv`, `rsp` (plus `x` for WS-Transfer), stream data
//! base64-encoded, text and attributes escaped by the writer. A header with
//! [`Header::reply_to`] set is written request-style (pypsrp's `mustUnderstand`
//! attributes); without it, response-style like Windows. It must not decide what an answer
//! says: callers fill the [`Envelope`].

use std::borrow::Cow;
use std::io;

use base64::Engine as _;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use super::body::{Body, CommandLine, CommandState, Shell, Stream, BASE64};
use super::envelope::{Envelope, Header, Selector};
use super::fault::{write_fault, FaultPrefixes};
use super::ns;

/// A thin wrapper over `quick_xml::Writer<Vec<u8>>` for terse element writing.
pub(crate) struct Out {
    w: Writer<Vec<u8>>,
}

// === impl Out ===

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out")
            .field("len", &self.w.get_ref().len())
            .finish()
    }
}

impl Out {
    pub(crate) fn new() -> Out {
        Out {
            w: Writer::new(Vec::with_capacity(2048)),
        }
    }

    pub(crate) fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        self.w.write_event(Event::Start(start))
    }

    pub(crate) fn end(&mut self, name: &str) -> io::Result<()> {
        self.w.write_event(Event::End(BytesEnd::new(name)))
    }

    pub(crate) fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        self.w.write_event(Event::Empty(start))
    }

    /// Text content with `<`, `>` and `&` escaped (quotes stay literal, as Windows
    /// writes them) and `\r` as `&#13;`, since parsers turn a raw CR into LF.
    pub(crate) fn text(&mut self, text: &str) -> io::Result<()> {
        let escaped = quick_xml::escape::partial_escape(text);
        let escaped = if escaped.contains('\r') {
            Cow::Owned(escaped.replace('\r', "&#13;"))
        } else {
            escaped
        };
        self.w
            .write_event(Event::Text(BytesText::from_escaped(escaped)))
    }

    /// `<name attrs>text</name>`.
    pub(crate) fn leaf(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        text: &str,
    ) -> io::Result<()> {
        self.start(name, attrs)?;
        self.text(text)?;
        self.end(name)
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.w.into_inner()
    }
}

/// Serialises `env`. [`parse`](super::parse) of the result gives back `env.header` and
/// `env.body` (except [`Body::Other`], written as an empty element, and
/// `unknown_must_understand`, which is not written).
pub fn build(env: &Envelope) -> Vec<u8> {
    let mut out = Out::new();
    // Writing into a Vec cannot fail; the io::Result only comes from the Writer API.
    let _ = write_envelope(&mut out, env);
    out.finish()
}

fn write_envelope(out: &mut Out, env: &Envelope) -> io::Result<()> {
    out.start(
        "s:Envelope",
        &[
            ("xmlns:s", ns::SOAP),
            ("xmlns:wsa", ns::ADDRESSING),
            ("xmlns:wsman", ns::WSMAN),
            ("xmlns:wsmv", ns::WSMV),
            ("xmlns:rsp", ns::SHELL),
            ("xmlns:x", ns::TRANSFER),
        ],
    )?;
    write_header(out, &env.header)?;
    if env.body == Body::Empty {
        out.empty("s:Body", &[])?;
    } else {
        out.start("s:Body", &[])?;
        write_body(out, &env.body)?;
        out.end("s:Body")?;
    }
    out.end("s:Envelope")
}

fn write_header(out: &mut Out, h: &Header) -> io::Result<()> {
    let request = h.reply_to.is_some();
    let must: &[(&str, &str)] = if request {
        &[("s:mustUnderstand", "true")]
    } else {
        &[]
    };
    out.start("s:Header", &[])?;
    out.leaf("wsa:Action", must, h.action.uri())?;
    if let Some(l) = &h.data_locale {
        out.empty(
            "wsmv:DataLocale",
            &[("s:mustUnderstand", "false"), ("xml:lang", l)],
        )?;
    }
    if let Some(l) = &h.locale {
        out.empty(
            "wsman:Locale",
            &[("s:mustUnderstand", "false"), ("xml:lang", l)],
        )?;
    }
    if let Some(n) = h.max_envelope_size {
        out.leaf("wsman:MaxEnvelopeSize", must, &n.to_string())?;
    }
    if let Some(id) = &h.message_id {
        out.leaf("wsa:MessageID", &[], id)?;
    }
    if let Some(t) = &h.operation_timeout {
        out.leaf("wsman:OperationTimeout", &[], t)?;
    }
    if let Some(r) = &h.reply_to {
        out.start("wsa:ReplyTo", &[])?;
        out.leaf("wsa:Address", &[("s:mustUnderstand", "true")], r)?;
        out.end("wsa:ReplyTo")?;
    }
    if let Some(r) = &h.resource_uri {
        out.leaf("wsman:ResourceURI", must, r)?;
    }
    if let Some(s) = &h.session_id {
        out.leaf("wsmv:SessionId", &[("s:mustUnderstand", "false")], s)?;
    }
    if let Some(t) = &h.to {
        out.leaf("wsa:To", &[], t)?;
    }
    if let Some(r) = &h.relates_to {
        out.leaf("wsa:RelatesTo", &[], r)?;
    }
    if let Some(c) = &h.compression_type {
        out.leaf("rsp:CompressionType", &[("s:mustUnderstand", "true")], c)?;
    }
    if !h.options.is_empty() {
        out.start("wsman:OptionSet", must)?;
        for o in &h.options {
            let mut attrs: Vec<(&str, &str)> = Vec::with_capacity(2);
            if let Some(m) = o.must_comply {
                attrs.push(("MustComply", if m { "true" } else { "false" }));
            }
            attrs.push(("Name", &o.name));
            out.leaf("wsman:Option", &attrs, &o.value)?;
        }
        out.end("wsman:OptionSet")?;
    }
    write_selector_set(out, &h.selectors)?;
    out.end("s:Header")
}

fn write_selector_set(out: &mut Out, selectors: &[Selector]) -> io::Result<()> {
    if selectors.is_empty() {
        return Ok(());
    }
    out.start("wsman:SelectorSet", &[])?;
    for s in selectors {
        out.leaf("wsman:Selector", &[("Name", &s.name)], &s.value)?;
    }
    out.end("wsman:SelectorSet")
}

fn write_body(out: &mut Out, body: &Body) -> io::Result<()> {
    match body {
        Body::Empty => Ok(()),
        Body::Shell(shell) => write_shell(out, shell, ShellShape::Request),
        Body::ResourceCreated {
            address,
            resource_uri,
            selectors,
            shell,
        } => {
            out.start("x:ResourceCreated", &[])?;
            if let Some(a) = address {
                out.leaf("wsa:Address", &[], a)?;
            }
            out.start("wsa:ReferenceParameters", &[])?;
            if let Some(r) = resource_uri {
                out.leaf("wsman:ResourceURI", &[], r)?;
            }
            write_selector_set(out, selectors)?;
            out.end("wsa:ReferenceParameters")?;
            out.end("x:ResourceCreated")?;
            match shell {
                Some(s) => write_shell(out, s, ShellShape::Response),
                None => Ok(()),
            }
        }
        Body::CommandLine(c) => write_command_line(out, c),
        Body::CommandResponse { command_id } => {
            out.start("rsp:CommandResponse", &[])?;
            out.leaf("rsp:CommandId", &[], command_id)?;
            out.end("rsp:CommandResponse")
        }
        Body::Send(streams) => {
            out.start("rsp:Send", &[])?;
            write_streams(out, streams)?;
            out.end("rsp:Send")
        }
        Body::SendResponse => out.empty("rsp:SendResponse", &[]),
        Body::Receive(desired) => {
            out.start("rsp:Receive", &[])?;
            for d in desired {
                let attrs: Vec<(&str, &str)> = d
                    .command_id
                    .as_deref()
                    .map(|c| ("CommandId", c))
                    .into_iter()
                    .collect();
                out.leaf("rsp:DesiredStream", &attrs, &d.streams)?;
            }
            out.end("rsp:Receive")
        }
        Body::ReceiveResponse {
            streams,
            command_state,
        } => {
            out.start("rsp:ReceiveResponse", &[])?;
            write_streams(out, streams)?;
            if let Some(state) = command_state {
                write_command_state(out, state)?;
            }
            out.end("rsp:ReceiveResponse")
        }
        Body::Signal { command_id, code } => {
            let attrs: Vec<(&str, &str)> = command_id
                .as_deref()
                .map(|c| ("CommandId", c))
                .into_iter()
                .collect();
            out.start("rsp:Signal", &attrs)?;
            out.leaf("rsp:Code", &[], code.uri())?;
            out.end("rsp:Signal")
        }
        Body::SignalResponse => out.empty("rsp:SignalResponse", &[]),
        Body::Connect { connect_xml } => {
            out.start("rsp:Connect", &[])?;
            if let Some(x) = connect_xml {
                out.leaf(
                    "connectXml",
                    &[("xmlns", ns::POWERSHELL)],
                    &BASE64.encode(x),
                )?;
            }
            out.end("rsp:Connect")
        }
        Body::ConnectResponse {
            connect_response_xml,
        } => {
            out.start("rsp:ConnectResponse", &[])?;
            if let Some(x) = connect_response_xml {
                out.leaf(
                    "connectResponseXml",
                    &[("xmlns", ns::POWERSHELL)],
                    &BASE64.encode(x),
                )?;
            }
            out.end("rsp:ConnectResponse")
        }
        Body::Fault(f) => write_fault(
            out,
            f,
            &FaultPrefixes {
                soap: "s",
                addressing: "wsa",
                wsman: "wsman",
            },
        ),
        Body::Other {
            namespace,
            local_name,
        } => match namespace {
            Some(n) => out.empty(local_name, &[("xmlns", n)]),
            None => out.empty(local_name, &[]),
        },
    }
}

/// Where an `rsp:Shell` is written: a Create body (ids as attributes) or the echo after
/// `ResourceCreated` (ids as children, Windows order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShellShape {
    Request,
    Response,
}

fn write_shell(out: &mut Out, s: &Shell, shape: ShellShape) -> io::Result<()> {
    let mut attrs: Vec<(&str, &str)> = Vec::new();
    if shape == ShellShape::Request {
        if let Some(id) = &s.shell_id {
            attrs.push(("ShellId", id));
        }
        if let Some(n) = &s.name {
            attrs.push(("Name", n));
        }
    }
    out.start("rsp:Shell", &attrs)?;
    if shape == ShellShape::Response {
        opt_leaf(out, "rsp:ShellId", s.shell_id.as_deref())?;
        opt_leaf(out, "rsp:Name", s.name.as_deref())?;
        opt_leaf(out, "rsp:ResourceUri", s.resource_uri.as_deref())?;
        opt_leaf(out, "rsp:Owner", s.owner.as_deref())?;
        opt_leaf(out, "rsp:ClientIP", s.client_ip.as_deref())?;
        opt_leaf(out, "rsp:IdleTimeOut", s.idle_timeout.as_deref())?;
    } else {
        opt_leaf(out, "rsp:ResourceUri", s.resource_uri.as_deref())?;
        opt_leaf(out, "rsp:Owner", s.owner.as_deref())?;
        opt_leaf(out, "rsp:ClientIP", s.client_ip.as_deref())?;
    }
    opt_leaf(out, "rsp:InputStreams", s.input_streams.as_deref())?;
    opt_leaf(out, "rsp:OutputStreams", s.output_streams.as_deref())?;
    opt_leaf(out, "rsp:WorkingDirectory", s.working_directory.as_deref())?;
    if !s.environment.is_empty() {
        out.start("rsp:Environment", &[])?;
        for (name, value) in &s.environment {
            out.leaf("rsp:Variable", &[("Name", name)], value)?;
        }
        out.end("rsp:Environment")?;
    }
    if shape == ShellShape::Request {
        opt_leaf(out, "rsp:IdleTimeOut", s.idle_timeout.as_deref())?;
    }
    opt_leaf(out, "rsp:CompressionMode", s.compression_mode.as_deref())?;
    if let Some(x) = &s.creation_xml {
        out.leaf(
            "creationXml",
            &[("xmlns", ns::POWERSHELL)],
            &BASE64.encode(x),
        )?;
    }
    out.end("rsp:Shell")
}

fn opt_leaf(out: &mut Out, name: &str, value: Option<&str>) -> io::Result<()> {
    match value {
        Some(v) => out.leaf(name, &[], v),
        None => Ok(()),
    }
}

fn write_command_line(out: &mut Out, c: &CommandLine) -> io::Result<()> {
    let attrs: Vec<(&str, &str)> = c
        .command_id
        .as_deref()
        .map(|id| ("CommandId", id))
        .into_iter()
        .collect();
    out.start("rsp:CommandLine", &attrs)?;
    out.leaf("rsp:Command", &[], &c.command)?;
    for a in &c.arguments {
        out.leaf("rsp:Arguments", &[], a)?;
    }
    out.end("rsp:CommandLine")
}

fn write_streams(out: &mut Out, streams: &[Stream]) -> io::Result<()> {
    for s in streams {
        let mut attrs: Vec<(&str, &str)> = vec![("Name", &s.name)];
        if let Some(c) = &s.command_id {
            attrs.push(("CommandId", c));
        }
        if s.end {
            attrs.push(("End", "true"));
        }
        out.leaf("rsp:Stream", &attrs, &BASE64.encode(&s.data))?;
    }
    Ok(())
}

fn write_command_state(out: &mut Out, state: &CommandState) -> io::Result<()> {
    let mut attrs: Vec<(&str, &str)> = Vec::with_capacity(2);
    if let Some(c) = &state.command_id {
        attrs.push(("CommandId", c));
    }
    attrs.push(("State", state.state.uri()));
    match state.exit_code {
        Some(code) => {
            out.start("rsp:CommandState", &attrs)?;
            out.leaf("rsp:ExitCode", &[], &code.to_string())?;
            out.end("rsp:CommandState")
        }
        None => out.empty("rsp:CommandState", &attrs),
    }
}
