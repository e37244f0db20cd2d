//! SOAP faults: decoding `s:Fault` (with the Windows `f:WSManFault` detail) and building
//! faults in the exact shape a Windows host sends them (SOAP 1.2 5.4, DSP0226 14,
//! MS-WSMV 2.2.4.43).
//!
//! Owns [`Fault`], [`FaultSubcode`], [`FaultSpec`] and [`build_fault`]. The shape of built
//! faults is copied from real Windows replies in the corpus (`w:TimedOut`,
//! `w:InvalidSelectors`, `a:InvalidMessageInformationHeader`). It must not decide which
//! fault a situation deserves: callers do.

use std::io;

use super::build::Out;
use super::error::WsmanError;
use super::ns;
use super::reader::{Cursor, Ev, Ns};

/// A qualified name written as element text (`s:Sender`, `w:TimedOut`), resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualifiedName {
    /// The namespace URI its prefix was bound to, if any.
    pub namespace: Option<String>,
    /// The local part.
    pub local_name: String,
}

// === impl QualifiedName ===

impl QualifiedName {
    /// A name in namespace `ns`.
    pub fn new(ns: &str, local: &str) -> QualifiedName {
        QualifiedName {
            namespace: Some(ns.to_owned()),
            local_name: local.to_owned(),
        }
    }

    /// True when this is `local` in namespace `ns`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.namespace.as_deref() == Some(ns) && self.local_name == local
    }
}

/// A decoded `s:Fault`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `s:Code/s:Value`: `{SOAP}Sender` or `{SOAP}Receiver`.
    pub code: QualifiedName,
    /// `s:Code/s:Subcode/s:Value`, e.g. `{WSMAN}TimedOut`.
    pub subcode: Option<QualifiedName>,
    /// The first `s:Reason/s:Text`, trimmed.
    pub reason: Option<String>,
    /// `s:Detail/w:FaultDetail`, e.g. `.../faultDetail/UnexpectedSelectors`.
    pub fault_detail: Option<String>,
    /// `s:Detail/f:WSManFault/@Code`, e.g. 2150858793 for a Receive timeout.
    pub wsman_code: Option<u32>,
    /// `s:Detail/f:WSManFault/@Machine`.
    pub machine: Option<String>,
    /// The text of `f:WSManFault/f:Message`, including nested `f:ProviderFault` and inner
    /// `f:WSManFault` text, pieces trimmed and joined by one space.
    pub message: Option<String>,
}

// === impl Fault ===

impl Fault {
    /// The subcode as a known [`FaultSubcode`], if it is one.
    pub fn subcode_kind(&self) -> Option<FaultSubcode> {
        let sub = self.subcode.as_ref()?;
        FaultSubcode::ALL
            .iter()
            .copied()
            .find(|k| sub.is(k.namespace(), k.local_name()))
    }

    /// True for `w:TimedOut`: a Receive long poll that simply saw no output; clients poll
    /// again.
    pub fn is_timed_out(&self) -> bool {
        self.subcode_kind() == Some(FaultSubcode::TimedOut)
    }
}

/// The fault subcodes the gateway produces or recognises (DSP0226 Annex A, WS-Addressing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultSubcode {
    /// `w:AccessDenied` (policy denial).
    AccessDenied,
    /// `w:InvalidSelectors` (unknown or closed ShellId).
    InvalidSelectors,
    /// `w:InvalidParameter`.
    InvalidParameter,
    /// `a:ActionNotSupported`.
    ActionNotSupported,
    /// `a:DestinationUnreachable` (unknown host / resource).
    DestinationUnreachable,
    /// `a:InvalidMessageInformationHeader`.
    InvalidMessageInformationHeader,
    /// `w:InternalError`.
    InternalError,
    /// `w:TimedOut` (Receive saw no output within OperationTimeout).
    TimedOut,
    /// `w:EncodingLimit` (envelope too large, too deep).
    EncodingLimit,
    /// `w:SchemaValidationError` (malformed body).
    SchemaValidationError,
    /// `w:QuotaLimit`.
    QuotaLimit,
    /// `w:UnsupportedFeature`.
    UnsupportedFeature,
}

// === impl FaultSubcode ===

impl FaultSubcode {
    /// Every variant.
    pub const ALL: [FaultSubcode; 12] = [
        FaultSubcode::AccessDenied,
        FaultSubcode::InvalidSelectors,
        FaultSubcode::InvalidParameter,
        FaultSubcode::ActionNotSupported,
        FaultSubcode::DestinationUnreachable,
        FaultSubcode::InvalidMessageInformationHeader,
        FaultSubcode::InternalError,
        FaultSubcode::TimedOut,
        FaultSubcode::EncodingLimit,
        FaultSubcode::SchemaValidationError,
        FaultSubcode::QuotaLimit,
        FaultSubcode::UnsupportedFeature,
    ];

    /// The namespace of the subcode QName.
    pub fn namespace(self) -> &'static str {
        match self {
            FaultSubcode::ActionNotSupported
            | FaultSubcode::DestinationUnreachable
            | FaultSubcode::InvalidMessageInformationHeader => ns::ADDRESSING,
            _ => ns::WSMAN,
        }
    }

    /// The local part of the subcode QName.
    pub fn local_name(self) -> &'static str {
        match self {
            FaultSubcode::AccessDenied => "AccessDenied",
            FaultSubcode::InvalidSelectors => "InvalidSelectors",
            FaultSubcode::InvalidParameter => "InvalidParameter",
            FaultSubcode::ActionNotSupported => "ActionNotSupported",
            FaultSubcode::DestinationUnreachable => "DestinationUnreachable",
            FaultSubcode::InvalidMessageInformationHeader => "InvalidMessageInformationHeader",
            FaultSubcode::InternalError => "InternalError",
            FaultSubcode::TimedOut => "TimedOut",
            FaultSubcode::EncodingLimit => "EncodingLimit",
            FaultSubcode::SchemaValidationError => "SchemaValidationError",
            FaultSubcode::QuotaLimit => "QuotaLimit",
            FaultSubcode::UnsupportedFeature => "UnsupportedFeature",
        }
    }

    /// True when the fault blames the receiver (`s:Receiver`), false for `s:Sender`
    /// (DSP0226 Annex A; Windows replies in the corpus agree for TimedOut, InternalError,
    /// InvalidSelectors, InvalidParameter, InvalidMessageInformationHeader).
    pub fn is_receiver(self) -> bool {
        matches!(self, FaultSubcode::InternalError | FaultSubcode::TimedOut)
    }

    /// The `a:Action` Windows puts on this fault: the WS-Addressing fault action for
    /// `a:` subcodes, the WS-Management one otherwise.
    pub fn action_uri(self) -> &'static str {
        if self.namespace() == ns::ADDRESSING {
            ns::action::ADDRESSING_FAULT
        } else {
            ns::action::FAULT
        }
    }

    /// The `w:FaultDetail` Windows attaches, where it always does.
    pub fn fault_detail(self) -> Option<&'static str> {
        match self {
            FaultSubcode::InvalidSelectors => Some(ns::fault_detail::UNEXPECTED_SELECTORS),
            FaultSubcode::InvalidParameter => Some(ns::fault_detail::INVALID_VALUE),
            _ => None,
        }
    }

    /// The `f:WSManFault/@Code` Windows uses for this subcode, where one is known from
    /// real replies.
    pub fn default_wsman_code(self) -> Option<u32> {
        match self {
            // ERROR_ACCESS_DENIED
            FaultSubcode::AccessDenied => Some(5),
            // 0x8033805B, corpus test_psrp_is_alive_invalid_selectors.yml
            FaultSubcode::InvalidSelectors => Some(2_150_858_843),
            // ERROR_INVALID_PARAMETER, corpus test_winrs_fail_poll_process.yml
            FaultSubcode::InvalidParameter => Some(87),
            // 0x8033800F, corpus test_psrp_is_alive_other_wsman_error.yml
            FaultSubcode::InvalidMessageInformationHeader => Some(2_150_858_767),
            // 0x80338029, corpus test_winrs_operation_timeout.yml
            FaultSubcode::TimedOut => Some(2_150_858_793),
            // 0x80338041, corpus ironposh tests--error_response.xml
            FaultSubcode::SchemaValidationError => Some(2_150_858_817),
            _ => None,
        }
    }
}

/// What to put in a fault built by [`build_fault`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    /// `a:RelatesTo`: the MessageID of the request being answered.
    pub relates_to: Option<String>,
    /// `a:MessageID` of the fault; `None` generates a random `uuid:` id.
    pub message_id: Option<String>,
    /// The subcode; decides `s:Sender`/`s:Receiver`, the action and `w:FaultDetail`.
    pub subcode: FaultSubcode,
    /// `s:Reason/s:Text`.
    pub reason: String,
    /// `f:WSManFault/@Code`.
    pub wsman_code: Option<u32>,
    /// `f:WSManFault/@Machine`.
    pub machine: Option<String>,
    /// `f:WSManFault/f:Message`.
    pub message: String,
}

// === impl FaultSpec ===

impl FaultSpec {
    /// A spec with `reason` = `message`, the subcode's usual WSManFault code, and no
    /// RelatesTo/MessageID/Machine.
    pub fn new(subcode: FaultSubcode, message: impl Into<String>) -> FaultSpec {
        let message = message.into();
        FaultSpec {
            relates_to: None,
            message_id: None,
            subcode,
            reason: message.clone(),
            wsman_code: subcode.default_wsman_code(),
            machine: None,
            message,
        }
    }

    /// The [`Fault`] this spec describes. [`parse`](super::parse) reads back the same,
    /// with `reason` and `message` trimmed.
    pub fn to_fault(&self) -> Fault {
        Fault {
            code: QualifiedName::new(
                ns::SOAP,
                if self.subcode.is_receiver() {
                    "Receiver"
                } else {
                    "Sender"
                },
            ),
            subcode: Some(QualifiedName::new(
                self.subcode.namespace(),
                self.subcode.local_name(),
            )),
            reason: Some(self.reason.clone()),
            fault_detail: self.subcode.fault_detail().map(str::to_owned),
            wsman_code: self.wsman_code,
            machine: self.machine.clone(),
            message: Some(self.message.clone()),
        }
    }
}

/// Builds a whole fault envelope shaped like a Windows reply:
///
/// ```text
/// <s:Envelope xml:lang="en-US" xmlns:s=.. xmlns:a=.. xmlns:x=.. xmlns:e=.. xmlns:n=..
///             xmlns:w=.. xmlns:p=..>
///   <s:Header><a:Action>…/fault</a:Action><a:MessageID>uuid:…</a:MessageID>
///     <a:To>…/role/anonymous</a:To><a:RelatesTo>…</a:RelatesTo></s:Header>
///   <s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode>
///     <s:Value>w:InvalidSelectors</s:Value></s:Subcode></s:Code>
///     <s:Reason><s:Text xml:lang="en-US">…</s:Text></s:Reason>
///     <s:Detail><w:FaultDetail>…</w:FaultDetail>
///       <f:WSManFault xmlns:f=.. Code=".." Machine=".."><f:Message>…</f:Message>
///       </f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>
/// ```
pub fn build_fault(spec: &FaultSpec) -> Vec<u8> {
    let mut out = Out::new();
    let message_id = spec
        .message_id
        .clone()
        .unwrap_or_else(|| format!("uuid:{:X}", uuid::Uuid::new_v4().hyphenated()));
    // Writing into a Vec cannot fail; the io::Result only comes from the Writer API.
    let _ = write_fault_envelope(&mut out, spec, &message_id);
    out.finish()
}

fn write_fault_envelope(out: &mut Out, spec: &FaultSpec, message_id: &str) -> io::Result<()> {
    out.start(
        "s:Envelope",
        &[
            ("xml:lang", "en-US"),
            ("xmlns:s", ns::SOAP),
            ("xmlns:a", ns::ADDRESSING),
            ("xmlns:x", ns::TRANSFER),
            ("xmlns:e", ns::EVENTING),
            ("xmlns:n", ns::ENUMERATION),
            ("xmlns:w", ns::WSMAN),
            ("xmlns:p", ns::WSMV),
        ],
    )?;
    out.start("s:Header", &[])?;
    out.leaf("a:Action", &[], spec.subcode.action_uri())?;
    out.leaf("a:MessageID", &[], message_id)?;
    out.leaf("a:To", &[], ns::ANONYMOUS)?;
    if let Some(r) = &spec.relates_to {
        out.leaf("a:RelatesTo", &[], r)?;
    }
    out.end("s:Header")?;
    out.start("s:Body", &[])?;
    write_fault(out, &spec.to_fault(), &FaultPrefixes::WINDOWS)?;
    out.end("s:Body")?;
    out.end("s:Envelope")
}

/// Builds the SOAP 1.2 `MustUnderstand` fault (SOAP 1.2 part 1, 5.4.8): code
/// `s:MustUnderstand` with no subcode, and one `s:NotUnderstood qname=".."` header block per
/// header the gateway refused, as `(namespace, local name)` from
/// [`Header::unknown_must_understand`](super::Header::unknown_must_understand).
pub fn build_must_understand_fault(
    relates_to: Option<&str>,
    not_understood: &[(Option<String>, String)],
) -> Vec<u8> {
    let mut out = Out::new();
    let message_id = format!("uuid:{:X}", uuid::Uuid::new_v4().hyphenated());
    // Writing into a Vec cannot fail; the io::Result only comes from the Writer API.
    let _ = write_must_understand(&mut out, relates_to, not_understood, &message_id);
    out.finish()
}

fn write_must_understand(
    out: &mut Out,
    relates_to: Option<&str>,
    not_understood: &[(Option<String>, String)],
    message_id: &str,
) -> io::Result<()> {
    out.start(
        "s:Envelope",
        &[
            ("xml:lang", "en-US"),
            ("xmlns:s", ns::SOAP),
            ("xmlns:a", ns::ADDRESSING),
        ],
    )?;
    out.start("s:Header", &[])?;
    out.leaf("a:Action", &[], ns::action::ADDRESSING_FAULT)?;
    out.leaf("a:MessageID", &[], message_id)?;
    out.leaf("a:To", &[], ns::ANONYMOUS)?;
    if let Some(r) = relates_to {
        out.leaf("a:RelatesTo", &[], r)?;
    }
    for (namespace, local) in not_understood {
        match namespace {
            Some(uri) => out.empty(
                "s:NotUnderstood",
                &[("xmlns:q", uri), ("qname", &format!("q:{local}"))],
            )?,
            None => out.empty("s:NotUnderstood", &[("qname", local)])?,
        }
    }
    out.end("s:Header")?;
    let names: Vec<String> = not_understood
        .iter()
        .map(|(namespace, local)| match namespace {
            Some(uri) => format!("{{{uri}}}{local}"),
            None => local.clone(),
        })
        .collect();
    let reason = format!(
        "hopgate does not understand the header {} marked mustUnderstand",
        names.join(", ")
    );
    out.start("s:Body", &[])?;
    let fault = Fault {
        code: QualifiedName::new(ns::SOAP, "MustUnderstand"),
        subcode: None,
        reason: Some(reason),
        fault_detail: None,
        wsman_code: None,
        machine: None,
        message: None,
    };
    write_fault(out, &fault, &FaultPrefixes::WINDOWS)?;
    out.end("s:Body")?;
    out.end("s:Envelope")
}

/// Prefixes in effect where a fault element is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultPrefixes {
    pub(crate) soap: &'static str,
    pub(crate) addressing: &'static str,
    pub(crate) wsman: &'static str,
}

impl FaultPrefixes {
    /// The prefixes Windows declares on fault envelopes.
    pub(crate) const WINDOWS: FaultPrefixes = FaultPrefixes {
        soap: "s",
        addressing: "a",
        wsman: "w",
    };
}

/// Writes `<s:Fault>…</s:Fault>` (the prefixes in `p` must be declared by the caller).
pub(crate) fn write_fault(out: &mut Out, f: &Fault, p: &FaultPrefixes) -> io::Result<()> {
    let soap = p.soap;
    out.start(&format!("{soap}:Fault"), &[])?;
    out.start(&format!("{soap}:Code"), &[])?;
    write_qname_value(out, soap, &f.code, p)?;
    if let Some(sub) = &f.subcode {
        out.start(&format!("{soap}:Subcode"), &[])?;
        write_qname_value(out, soap, sub, p)?;
        out.end(&format!("{soap}:Subcode"))?;
    }
    out.end(&format!("{soap}:Code"))?;
    if let Some(reason) = &f.reason {
        out.start(&format!("{soap}:Reason"), &[])?;
        out.leaf(&format!("{soap}:Text"), &[("xml:lang", "en-US")], reason)?;
        out.end(&format!("{soap}:Reason"))?;
    }
    let has_wsman_fault = f.wsman_code.is_some() || f.machine.is_some() || f.message.is_some();
    if f.fault_detail.is_some() || has_wsman_fault {
        out.start(&format!("{soap}:Detail"), &[])?;
        if let Some(detail) = &f.fault_detail {
            out.leaf(&format!("{}:FaultDetail", p.wsman), &[], detail)?;
        }
        if has_wsman_fault {
            let code = f.wsman_code.map(|c| c.to_string());
            let mut attrs: Vec<(&str, &str)> = vec![("xmlns:f", ns::WSMAN_FAULT)];
            if let Some(c) = &code {
                attrs.push(("Code", c));
            }
            if let Some(m) = &f.machine {
                attrs.push(("Machine", m));
            }
            out.start("f:WSManFault", &attrs)?;
            out.leaf("f:Message", &[], f.message.as_deref().unwrap_or(""))?;
            out.end("f:WSManFault")?;
        }
        out.end(&format!("{soap}:Detail"))?;
    }
    out.end(&format!("{soap}:Fault"))
}

/// `<s:Value>prefix:Local</s:Value>`, declaring a prefix for unusual namespaces.
fn write_qname_value(
    out: &mut Out,
    soap: &str,
    q: &QualifiedName,
    p: &FaultPrefixes,
) -> io::Result<()> {
    let value = format!("{soap}:Value");
    let known = match q.namespace.as_deref() {
        Some(ns::SOAP) => Some(p.soap),
        Some(ns::WSMAN) => Some(p.wsman),
        Some(ns::ADDRESSING) => Some(p.addressing),
        _ => None,
    };
    match (known, q.namespace.as_deref()) {
        (Some(prefix), _) => out.leaf(&value, &[], &format!("{prefix}:{}", q.local_name)),
        (None, Some(uri)) => out.leaf(&value, &[("xmlns:q", uri)], &format!("q:{}", q.local_name)),
        (None, None) => out.leaf(&value, &[], &q.local_name),
    }
}

// === decoding ===

/// After the `s:Fault` start tag: decodes it up to and including its end tag.
pub(crate) fn parse_fault(cur: &mut Cursor<'_>) -> Result<Fault, WsmanError> {
    let fault_path = cur.path();
    let mut code = None;
    let mut subcode = None;
    let mut reason = None;
    let mut fault_detail = None;
    let mut wsman: Option<(Option<u32>, Option<String>, Option<String>)> = None;
    while let Some(e) = cur.next_child()? {
        if e.is(Ns::Soap, "Code") {
            let (c, s) = parse_code(cur)?;
            code = c;
            subcode = s;
        } else if e.is(Ns::Soap, "Reason") {
            reason = first_child_text(cur, Ns::Soap, "Text")?;
        } else if e.is(Ns::Soap, "Detail") {
            while let Some(d) = cur.next_child()? {
                if d.is(Ns::Wsman, "FaultDetail") && fault_detail.is_none() {
                    fault_detail = Some(cur.trimmed()?);
                } else if d.is(Ns::WsmanFault, "WSManFault") && wsman.is_none() {
                    let code = match cur.attr(&d, "Code")? {
                        None => None,
                        Some(c) => {
                            Some(c.trim().parse::<u32>().map_err(|_| WsmanError::BadNumber {
                                path: cur.path_with("/@Code"),
                            })?)
                        }
                    };
                    let machine = cur.attr(&d, "Machine")?;
                    let message = wsman_fault_message(cur)?;
                    wsman = Some((code, machine, message));
                } else {
                    cur.skip()?;
                }
            }
        } else {
            cur.skip()?;
        }
    }
    let Some(code) = code else {
        return Err(WsmanError::Missing {
            what: "Code/Value",
            path: fault_path,
        });
    };
    let (wsman_code, machine, message) = wsman.unwrap_or((None, None, None));
    Ok(Fault {
        code,
        subcode,
        reason,
        fault_detail,
        wsman_code,
        machine,
        message,
    })
}

/// After `s:Code` (or `s:Subcode`): its `s:Value` and the first-level `s:Subcode/s:Value`.
fn parse_code(
    cur: &mut Cursor<'_>,
) -> Result<(Option<QualifiedName>, Option<QualifiedName>), WsmanError> {
    let mut value = None;
    let mut sub = None;
    while let Some(e) = cur.next_child()? {
        if e.is(Ns::Soap, "Value") && value.is_none() {
            // Resolve while the Value element's bindings are still in scope.
            let text = cur.text()?.trim().to_owned();
            let (namespace, local_name) = cur
                .resolve_qname(&text)
                .ok_or_else(|| WsmanError::BadQName { path: cur.path() })?;
            value = Some(QualifiedName {
                namespace,
                local_name,
            });
        } else if e.is(Ns::Soap, "Subcode") && sub.is_none() {
            sub = parse_code(cur)?.0;
        } else {
            cur.skip()?;
        }
    }
    Ok((value, sub))
}

/// After an element start: the trimmed text of its first `ns:local` child.
fn first_child_text(
    cur: &mut Cursor<'_>,
    ns: Ns,
    local: &str,
) -> Result<Option<String>, WsmanError> {
    let mut found = None;
    while let Some(e) = cur.next_child()? {
        if e.is(ns, local) && found.is_none() {
            found = Some(cur.trimmed()?);
        } else {
            cur.skip()?;
        }
    }
    Ok(found)
}

/// After an `f:WSManFault` start: the text of its `f:Message`, descending into
/// `f:ProviderFault` and nested `f:WSManFault`/`f:Message` but not into elements of other
/// namespaces (WMI extended status).
fn wsman_fault_message(cur: &mut Cursor<'_>) -> Result<Option<String>, WsmanError> {
    let base = cur.depth();
    let mut pieces: Vec<String> = Vec::new();
    // Text between two tags arrives in several events (entity references split it), so
    // it is gathered in `run` and flushed at each tag.
    let mut run = String::new();
    let mut in_message = 0usize;
    // One entry per open f: element: whether it is an f:Message.
    let mut stack: Vec<bool> = Vec::new();
    let flush = |run: &mut String, pieces: &mut Vec<String>| {
        let t = run.trim();
        if !t.is_empty() {
            pieces.push(t.to_owned());
        }
        run.clear();
    };
    while cur.depth() >= base {
        match cur.next()? {
            Ev::Start(e) => {
                flush(&mut run, &mut pieces);
                if e.ns != Ns::WsmanFault {
                    cur.skip()?;
                    continue;
                }
                let is_message = e.is(Ns::WsmanFault, "Message");
                if is_message {
                    in_message += 1;
                }
                stack.push(is_message);
            }
            Ev::Text(t) => {
                if in_message > 0 {
                    run.push_str(&t);
                }
            }
            Ev::End => {
                flush(&mut run, &mut pieces);
                if stack.pop() == Some(true) {
                    in_message = in_message.saturating_sub(1);
                }
            }
            Ev::Eof => return Err(WsmanError::UnexpectedEof { path: cur.path() }),
        }
    }
    Ok(if pieces.is_empty() {
        None
    } else {
        Some(pieces.join(" "))
    })
}
