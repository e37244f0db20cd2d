//! The SOAP envelope: limits, header decoding, the top-level [`parse`], and the byte-exact
//! `wsa:To` splice [`rewrite_to`] (MS-WSMV 2.2.4, DSP0226 5).
//!
//! Owns the envelope/header types and the checks that span header and body (required
//! headers, body matching the action, duplicate headers). It must not do I/O or interpret
//! stream payloads.

use std::collections::HashSet;
use std::ops::Range;

use super::action::Action;
use super::body::{parse_body, set_once, Body, BodySpans};
use super::error::WsmanError;
use super::ns;
use super::reader::{parse_bool, Cursor, Ev, Ns};

/// Size and nesting limits applied before and while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input in bytes. Clients announce `MaxEnvelopeSize` 153600 (or up to
    /// 512000 after pypsrp reads `winrm/config`), and base64 stream data can push a body a
    /// little over it, so the default is 512 KiB.
    pub max_bytes: usize,
    /// Deepest accepted element nesting (the Envelope is depth 1). Real envelopes stay
    /// under 12; faults with nested provider detail under 20.
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one element. Real traffic
    /// carries at most 11 (a Windows envelope's `xmlns` list); the cap keeps a start tag
    /// with 100,000 attributes from costing more than a glance (issue #14).
    pub max_attributes: usize,
    /// Longest attribute value in bytes, as written. Real values are ids, names and URIs
    /// under 100 bytes; payloads travel as element text, which this does not limit.
    pub max_attribute_bytes: usize,
    /// Most namespace declarations in scope at once. Every element and attribute name is
    /// resolved by scanning the bindings in scope, so this bounds the cost per name.
    pub max_namespaces: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 512 * 1024,
            max_depth: 64,
            max_attributes: 64,
            max_attribute_bytes: 4096,
            max_namespaces: 128,
        }
    }
}

/// `wsman:Selector` (DSP0226 7.2): `Name` attribute and text value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// `@Name`, e.g. `ShellId`.
    pub name: String,
    /// The trimmed text.
    pub value: String,
}

/// `wsman:Option` (DSP0226 6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionItem {
    /// `@Name`, e.g. `WINRS_SKIP_CMD_SHELL`, `protocolversion`.
    pub name: String,
    /// The trimmed text (empty for `<wsman:Option Name=".."/>`).
    pub value: String,
    /// `@MustComply`, when present.
    pub must_comply: Option<bool>,
}

/// The `s:Header` fields the gateway uses. Text values are trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `wsa:Action`.
    pub action: Action,
    /// `wsa:To`.
    pub to: Option<String>,
    /// `wsa:MessageID`.
    pub message_id: Option<String>,
    /// `wsa:RelatesTo` (responses).
    pub relates_to: Option<String>,
    /// `wsa:ReplyTo/wsa:Address` (requests; the anonymous role in practice).
    pub reply_to: Option<String>,
    /// `wsman:ResourceURI`.
    pub resource_uri: Option<String>,
    /// `wsman:SelectorSet/wsman:Selector`, in order.
    pub selectors: Vec<Selector>,
    /// `wsman:OptionSet/wsman:Option`, in order.
    pub options: Vec<OptionItem>,
    /// `wsman:OperationTimeout`, e.g. `PT20S`.
    pub operation_timeout: Option<String>,
    /// `wsman:MaxEnvelopeSize`.
    pub max_envelope_size: Option<u32>,
    /// `wsman:Locale/@xml:lang`.
    pub locale: Option<String>,
    /// `wsmv:DataLocale/@xml:lang`.
    pub data_locale: Option<String>,
    /// `wsmv:SessionId`.
    pub session_id: Option<String>,
    /// `rsp:CompressionType` (`xpress` from PowerShell clients, PROTOCOL.md §9).
    pub compression_type: Option<String>,
    /// Header elements we do not interpret that carry `s:mustUnderstand="true"`, as
    /// `(namespace, local name)`. SOAP says the receiver must fault on them; the caller
    /// decides.
    pub unknown_must_understand: Vec<(Option<String>, String)>,
}

// === impl Header ===

impl Header {
    /// A header with only the action set.
    pub fn new(action: Action) -> Header {
        Header {
            action,
            to: None,
            message_id: None,
            relates_to: None,
            reply_to: None,
            resource_uri: None,
            selectors: Vec::new(),
            options: Vec::new(),
            operation_timeout: None,
            max_envelope_size: None,
            locale: None,
            data_locale: None,
            session_id: None,
            compression_type: None,
            unknown_must_understand: Vec::new(),
        }
    }

    /// The value of the selector `name` (case-insensitive, as Windows matches them).
    pub fn selector(&self, name: &str) -> Option<&str> {
        self.selectors
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .map(|s| s.value.as_str())
    }

    /// The option `name` (case-insensitive).
    pub fn option(&self, name: &str) -> Option<&OptionItem> {
        self.options
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
    }
}

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The header fields.
    pub header: Header,
    /// The typed body.
    pub body: Body,
    /// Where some elements sit in the parsed input, for byte-exact splicing. All `None`
    /// for an envelope built by hand.
    pub spans: SourceSpans,
}

/// Byte ranges into the input an [`Envelope`] was parsed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSpans {
    /// The `wsa:To` content (between its tags), for [`rewrite_to`]. `None` when there is
    /// no `wsa:To` or it was written `<wsa:To/>`.
    pub to: Option<Range<usize>>,
    /// The `x:ResourceCreated/a:Address` content of a CreateResponse, for
    /// [`rewrite_address`].
    pub address: Option<Range<usize>>,
    /// The whole `rsp:CompressionType` header element (tags included), for
    /// [`remove_compression_type`].
    pub compression_type: Option<Range<usize>>,
    /// The `rsp:Shell/rsp:CompressionMode` content of a Create or CreateResponse, for
    /// [`rewrite_compression_mode`].
    pub compression_mode: Option<Range<usize>>,
}

// === impl Envelope ===

impl Envelope {
    /// An envelope with the given header and body and no source span.
    pub fn new(header: Header, body: Body) -> Envelope {
        Envelope {
            header,
            body,
            spans: SourceSpans::default(),
        }
    }

    /// The action.
    pub fn action(&self) -> &Action {
        &self.header.action
    }

    /// The `ShellId` selector, or for a CreateResponse the ShellId it announces.
    pub fn shell_id(&self) -> Option<&str> {
        if let Some(id) = self.header.selector("ShellId") {
            return Some(id);
        }
        match &self.body {
            Body::ResourceCreated {
                selectors, shell, ..
            } => selectors
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case("ShellId"))
                .map(|s| s.value.as_str())
                .or_else(|| shell.as_ref().and_then(|s| s.shell_id.as_deref())),
            _ => None,
        }
    }

    /// The value of header option `name` (case-insensitive).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.header.option(name).map(|o| o.value.as_str())
    }
}

/// Decodes one SOAP 1.2 envelope.
///
/// Checks, in order: size, well-formedness, the root is `{SOAP}Envelope`, a header with
/// `wsa:Action`, a body; then that the body matches the action for actions whose body is
/// mandatory (see [`WsmanError::BodyMismatch`]). Unknown header and body elements are
/// tolerated; repeated singletons are not ([`WsmanError::Duplicate`]).
pub fn parse(input: &[u8], limits: &Limits) -> Result<Envelope, WsmanError> {
    if input.len() > limits.max_bytes {
        return Err(WsmanError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let mut cur = Cursor::new(input, limits);

    // Prolog: declarations and comments are skipped by the cursor; text is not allowed.
    let root = loop {
        match cur.next()? {
            Ev::Start(e) => break e,
            Ev::Text(t) if t.trim().is_empty() => continue,
            Ev::Text(_) | Ev::Eof | Ev::End => return Err(WsmanError::NotAnEnvelope),
        }
    };
    if !root.is(Ns::Soap, "Envelope") {
        return Err(WsmanError::NotAnEnvelope);
    }

    let mut header: Option<(Header, HeaderSpans)> = None;
    let mut body: Option<(Body, BodySpans)> = None;
    while let Some(elem) = cur.next_child()? {
        if elem.is(Ns::Soap, "Header") {
            if header.is_some() {
                return Err(WsmanError::Duplicate { path: cur.path() });
            }
            header = Some(parse_header(&mut cur)?);
        } else if elem.is(Ns::Soap, "Body") {
            if body.is_some() {
                return Err(WsmanError::Duplicate { path: cur.path() });
            }
            body = Some(parse_body(&mut cur)?);
        } else {
            cur.skip()?;
        }
    }
    // Epilog: only whitespace and comments may follow the root element.
    loop {
        match cur.next()? {
            Ev::Eof => break,
            Ev::Text(t) if t.trim().is_empty() => continue,
            Ev::Start(_) | Ev::Text(_) | Ev::End => {
                return Err(WsmanError::Xml {
                    offset: cur.position() as u64,
                    message: "content after the root element".to_owned(),
                })
            }
        }
    }

    let Some((body, body_spans)) = body else {
        return Err(WsmanError::MissingBody);
    };
    let Some((header, header_spans)) = header else {
        return Err(WsmanError::MissingHeader("Header"));
    };
    check_body_matches(&header, &body)?;
    Ok(Envelope {
        header,
        body,
        spans: SourceSpans {
            to: header_spans.to,
            address: body_spans.address,
            compression_mode: body_spans.compression_mode,
            compression_type: header_spans.compression_type,
        },
    })
}

/// Actions whose body element is mandatory: a mismatch would let a message past the
/// gateway's inspection while the host reads something else (or faults), so it is refused.
fn check_body_matches(header: &Header, body: &Body) -> Result<(), WsmanError> {
    let action = &header.action;
    let shell_resource = header
        .resource_uri
        .as_deref()
        .is_some_and(|r| r == ns::RESOURCE_CMD || r.starts_with(ns::RESOURCE_POWERSHELL_PREFIX));
    let expected = match action {
        // Creating a cmd or PowerShell shell needs rsp:Shell (its streams, environment,
        // creationXml are what policy looks at); other resources have other bodies.
        Action::Create if shell_resource && !matches!(body, Body::Shell(_)) => "Shell",
        Action::Command if !matches!(body, Body::CommandLine(_)) => "CommandLine",
        Action::CommandResponse if !matches!(body, Body::CommandResponse { .. }) => {
            "CommandResponse"
        }
        Action::Send if !matches!(body, Body::Send(_)) => "Send",
        Action::Receive if !matches!(body, Body::Receive(_)) => "Receive",
        Action::ReceiveResponse if !matches!(body, Body::ReceiveResponse { .. }) => {
            "ReceiveResponse"
        }
        Action::Signal if !matches!(body, Body::Signal { .. }) => "Signal",
        Action::Connect if !matches!(body, Body::Connect { .. }) => "Connect",
        a if a.is_fault() && !matches!(body, Body::Fault(_)) => "Fault",
        _ => return Ok(()),
    };
    Err(WsmanError::BodyMismatch {
        action: action.uri().to_owned(),
        expected,
        found: describe(body),
    })
}

fn describe(body: &Body) -> String {
    let name = match body {
        Body::Empty => return "empty".to_owned(),
        Body::Other {
            namespace,
            local_name,
        } => {
            return match namespace {
                Some(n) => format!("{{{n}}}{local_name}"),
                None => local_name.clone(),
            }
        }
        Body::Shell(_) => "Shell",
        Body::ResourceCreated { .. } => "ResourceCreated",
        Body::CommandLine(_) => "CommandLine",
        Body::CommandResponse { .. } => "CommandResponse",
        Body::Send(_) => "Send",
        Body::SendResponse => "SendResponse",
        Body::Receive(_) => "Receive",
        Body::ReceiveResponse { .. } => "ReceiveResponse",
        Body::Signal { .. } => "Signal",
        Body::SignalResponse => "SignalResponse",
        Body::Connect { .. } => "Connect",
        Body::ConnectResponse { .. } => "ConnectResponse",
        Body::Fault(_) => "Fault",
    };
    name.to_owned()
}

/// Spans found while decoding the header.
#[derive(Debug, Default)]
struct HeaderSpans {
    to: Option<Range<usize>>,
    compression_type: Option<Range<usize>>,
}

/// After the `s:Header` start tag: decodes it up to and including `</s:Header>`.
fn parse_header(cur: &mut Cursor<'_>) -> Result<(Header, HeaderSpans), WsmanError> {
    let mut action: Option<String> = None;
    let mut h = Header::new(Action::Other(String::new()));
    let mut spans = HeaderSpans::default();
    let mut selectors: Option<Vec<Selector>> = None;
    let mut options: Option<Vec<OptionItem>> = None;
    let mut max_env: Option<u32> = None;
    while let Some(e) = cur.next_child()? {
        let local = e.start.local_name();
        match (e.ns, local.as_ref()) {
            (Ns::Addressing, b"Action") => set_once(&mut action, cur.trimmed()?, cur, "/Action")?,
            (Ns::Addressing, b"To") => {
                let start = cur.position();
                let text = cur.trimmed()?;
                if !e.empty {
                    spans.to = Some(cur.content_span(start));
                }
                set_once(&mut h.to, text, cur, "/To")?;
            }
            (Ns::Addressing, b"MessageID") => {
                set_once(&mut h.message_id, cur.trimmed()?, cur, "/MessageID")?
            }
            (Ns::Addressing, b"RelatesTo") => {
                set_once(&mut h.relates_to, cur.trimmed()?, cur, "/RelatesTo")?
            }
            (Ns::Addressing, b"ReplyTo") => {
                let addr = parse_reply_to(cur)?;
                set_once(&mut h.reply_to, addr, cur, "/ReplyTo")?
            }
            (Ns::Wsman, b"ResourceURI") => {
                set_once(&mut h.resource_uri, cur.trimmed()?, cur, "/ResourceURI")?
            }
            (Ns::Wsman, b"SelectorSet") => {
                let set = parse_selector_set(cur)?;
                set_once(&mut selectors, set, cur, "/SelectorSet")?
            }
            (Ns::Wsman, b"OptionSet") => {
                let set = parse_option_set(cur)?;
                set_once(&mut options, set, cur, "/OptionSet")?
            }
            (Ns::Wsman, b"OperationTimeout") => set_once(
                &mut h.operation_timeout,
                cur.trimmed()?,
                cur,
                "/OperationTimeout",
            )?,
            (Ns::Wsman, b"MaxEnvelopeSize") => {
                let path = cur.path();
                let n: u32 = cur
                    .trimmed()?
                    .parse()
                    .map_err(|_| WsmanError::BadNumber { path })?;
                set_once(&mut max_env, n, cur, "/MaxEnvelopeSize")?
            }
            (Ns::Wsman, b"Locale") => {
                let lang = cur.attr_ns(&e, ns::XML, "lang")?;
                cur.skip()?;
                if let Some(lang) = lang {
                    set_once(&mut h.locale, lang, cur, "/Locale")?
                }
            }
            (Ns::Wsmv, b"DataLocale") => {
                let lang = cur.attr_ns(&e, ns::XML, "lang")?;
                cur.skip()?;
                if let Some(lang) = lang {
                    set_once(&mut h.data_locale, lang, cur, "/DataLocale")?
                }
            }
            (Ns::Wsmv, b"SessionId") => {
                set_once(&mut h.session_id, cur.trimmed()?, cur, "/SessionId")?
            }
            (Ns::Shell, b"CompressionType") => {
                let start = cur.event_start();
                let value = cur.trimmed()?;
                set_once(&mut h.compression_type, value, cur, "/CompressionType")?;
                spans.compression_type = Some(start..cur.position());
            }
            _ => {
                let must = cur.attr_ns(&e, ns::SOAP, "mustUnderstand")?;
                if must.as_deref().and_then(parse_bool) == Some(true) {
                    let local = String::from_utf8_lossy(local.as_ref()).into_owned();
                    h.unknown_must_understand
                        .push((cur.namespace_of(&e), local));
                }
                cur.skip()?;
            }
        }
    }
    let Some(action) = action else {
        return Err(WsmanError::MissingHeader("Action"));
    };
    h.action = Action::from_uri(&action);
    h.selectors = selectors.unwrap_or_default();
    h.options = options.unwrap_or_default();
    h.max_envelope_size = max_env;
    Ok((h, spans))
}

fn parse_reply_to(cur: &mut Cursor<'_>) -> Result<String, WsmanError> {
    let mut address = None;
    while let Some(e) = cur.next_child()? {
        if e.is(Ns::Addressing, "Address") {
            set_once(&mut address, cur.trimmed()?, cur, "/Address")?;
        } else {
            cur.skip()?;
        }
    }
    Ok(address.unwrap_or_default())
}

/// Names already seen in a set, compared ASCII-case-insensitively; a hash set so that a
/// hostile envelope with thousands of entries stays linear.
#[derive(Debug, Default)]
struct SeenNames(HashSet<String>);

impl SeenNames {
    /// False when `name` was already present.
    fn insert(&mut self, name: &str) -> bool {
        self.0.insert(name.to_ascii_lowercase())
    }
}

/// After a `wsman:SelectorSet` start tag: its selectors. Names repeated
/// (case-insensitively) are a [`WsmanError::Duplicate`]: two `ShellId`s would let the
/// gateway check one shell while the host acts on another.
pub(crate) fn parse_selector_set(cur: &mut Cursor<'_>) -> Result<Vec<Selector>, WsmanError> {
    let mut out: Vec<Selector> = Vec::new();
    let mut seen = SeenNames::default();
    while let Some(e) = cur.next_child()? {
        if !e.is(Ns::Wsman, "Selector") {
            cur.skip()?;
            continue;
        }
        let Some(name) = cur.attr(&e, "Name")? else {
            return Err(WsmanError::Missing {
                what: "@Name",
                path: cur.path(),
            });
        };
        let name = name.trim().to_owned();
        let value = cur.trimmed()?;
        if !seen.insert(&name) {
            return Err(WsmanError::Duplicate {
                path: cur.path_with(&format!("/Selector[@Name={name}]")),
            });
        }
        out.push(Selector { name, value });
    }
    Ok(out)
}

/// After a `wsman:OptionSet` start tag: its options (names unique, case-insensitively).
fn parse_option_set(cur: &mut Cursor<'_>) -> Result<Vec<OptionItem>, WsmanError> {
    let mut out: Vec<OptionItem> = Vec::new();
    let mut seen = SeenNames::default();
    while let Some(e) = cur.next_child()? {
        if !e.is(Ns::Wsman, "Option") {
            cur.skip()?;
            continue;
        }
        let Some(name) = cur.attr(&e, "Name")? else {
            return Err(WsmanError::Missing {
                what: "@Name",
                path: cur.path(),
            });
        };
        let name = name.trim().to_owned();
        let must_comply = match cur.attr(&e, "MustComply")? {
            None => None,
            Some(v) => Some(parse_bool(&v).ok_or_else(|| WsmanError::BadBoolean {
                path: cur.path_with("/@MustComply"),
            })?),
        };
        let value = cur.trimmed()?;
        if !seen.insert(&name) {
            return Err(WsmanError::Duplicate {
                path: cur.path_with(&format!("/Option[@Name={name}]")),
            });
        }
        out.push(OptionItem {
            name,
            value,
            must_comply,
        });
    }
    Ok(out)
}

/// Returns `input` with the content of `wsa:To` replaced by `new_to` (XML-escaped), every
/// other byte unchanged. `env` must be the result of parsing exactly `input`.
///
/// When `env` has no [`SourceSpans::to`] (no `wsa:To`, `<wsa:To/>`, or `env` was built
/// by hand) or the span does not fit `input`, `input` is returned unchanged: check
/// `env.spans.to` first if the rewrite is mandatory.
pub fn rewrite_to(input: &[u8], env: &Envelope, new_to: &str) -> Vec<u8> {
    splice(input, env.spans.to.as_ref(), new_to)
}

/// Returns `input` with the content of the CreateResponse's `x:ResourceCreated/a:Address`
/// replaced by `new_address` (XML-escaped), every other byte unchanged; `input` unchanged
/// when `env` has no [`SourceSpans::address`]. `env` must be the parse of `input`.
pub fn rewrite_address(input: &[u8], env: &Envelope, new_address: &str) -> Vec<u8> {
    splice(input, env.spans.address.as_ref(), new_address)
}

/// Returns `input` with the content of `rsp:Shell/rsp:CompressionMode` replaced by `mode`
/// (XML-escaped), every other byte unchanged; `input` unchanged when there is none. The
/// gateway tells a compressing client `XpressCompression` for a shell it opened without
/// compression on the host (PROTOCOL.md §9). `env` must be the parse of `input`.
pub fn rewrite_compression_mode(input: &[u8], env: &Envelope, mode: &str) -> Vec<u8> {
    splice(input, env.spans.compression_mode.as_ref(), mode)
}

/// Returns `input` without its `rsp:CompressionType` header element, every other byte
/// unchanged (`input` unchanged when there is none). Without that header the host answers
/// `NoCompression` and streams plain data (PROTOCOL.md §9). `env` must be the parse of
/// `input`.
pub fn remove_compression_type(input: &[u8], env: &Envelope) -> Vec<u8> {
    splice_raw(input, env.spans.compression_type.as_ref(), b"")
}

/// Replaces the span with `text`, XML-escaped.
fn splice(input: &[u8], span: Option<&Range<usize>>, text: &str) -> Vec<u8> {
    splice_raw(input, span, quick_xml::escape::escape(text).as_bytes())
}

/// Replaces the span with `bytes` as they are.
fn splice_raw(input: &[u8], span: Option<&Range<usize>>, bytes: &[u8]) -> Vec<u8> {
    let Some(span) = span else {
        return input.to_vec();
    };
    let (Some(head), Some(tail)) = (input.get(..span.start), input.get(span.end..)) else {
        return input.to_vec();
    };
    if span.start > span.end {
        return input.to_vec();
    }
    let mut out = Vec::with_capacity(head.len() + bytes.len() + tail.len());
    out.extend_from_slice(head);
    out.extend_from_slice(bytes);
    out.extend_from_slice(tail);
    out
}
