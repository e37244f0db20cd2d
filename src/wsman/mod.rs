//! WS-Management SOAP envelopes (MS-WSMV, DSP0226): parse and build by namespace URI,
//! never by prefix; typed actions, headers, WinRS/PSRP bodies and faults.
//!
//! Pure: no I/O, no tasks, no clock. Owns the envelope layer only; stream payloads come out
//! base64-decoded but uninterpreted (PSRP fragments and compression belong to `psrp`).
//!
//! * [`parse`] decodes bytes into an [`Envelope`] under [`Limits`]; malformed input is a
//!   typed [`WsmanError`] with a byte offset or element path, never a panic.
//! * [`build`] serialises an [`Envelope`]; [`build_fault`] writes a fault shaped exactly
//!   like a Windows reply.
//! * [`parse_identify`] recognises an Identify request (no `wsa:Action`), and
//!   [`build_identify_response`] answers it (`Test-WSMan`).
//! * [`rewrite_to`] splices a new `wsa:To` into the original bytes, leaving every other
//!   byte as it was (the gateway's backend leg); [`rewrite_address`] does the same for a
//!   CreateResponse's `a:Address`, [`remove_compression_type`] drops the
//!   `rsp:CompressionType` header (PROTOCOL.md §9).
//!
//! Deliberately strict where a lenient reader could see something other than the host
//! (each is a typed error): a repeated singleton (second `wsa:To`, second `ShellId`
//! selector, second `rsp:CommandLine`...), a body that does not fit the action (Command
//! without `rsp:CommandLine`, an empty ReceiveResponse), an element inside a text-only
//! element, a DTD, an unknown entity. Unknown header and body elements are skipped;
//! unknown headers marked `s:mustUnderstand="true"` are listed in
//! [`Header::unknown_must_understand`] for the caller to refuse.
//!
//! ```
//! use hopgate::wsman::{self, Action, Body, Limits};
//! let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
//!   xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
//!   xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">
//!   <s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal</a:Action></s:Header>
//!   <s:Body><rsp:Signal CommandId="C1"><rsp:Code>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate</rsp:Code></rsp:Signal></s:Body>
//! </s:Envelope>"#;
//! let env = wsman::parse(xml, &Limits::default()).expect("valid envelope");
//! assert_eq!(env.header.action, Action::Signal);
//! assert!(matches!(env.body, Body::Signal { code: wsman::SignalCode::Terminate, .. }));
//! ```

mod action;
mod body;
mod build;
mod duration;
mod enumeration;
mod envelope;
mod error;
mod fault;
mod identify;
pub mod ns;
mod reader;

pub use action::Action;
pub use body::{
    Body, CommandLine, CommandState, CommandStateKind, DesiredStream, Shell, SignalCode, Stream,
};
pub use build::build;
pub use duration::parse_xs_duration;
pub use enumeration::{
    enumerate_filter_shell_id, enumerated_shells, remove_ranges, EnumeratedShell,
};
pub use envelope::{
    parse, remove_compression_type, rewrite_address, rewrite_compression_mode, rewrite_to,
    Envelope, Header, Limits, OptionItem, Selector, SourceSpans,
};
pub use error::WsmanError;
pub use fault::{
    build_fault, build_must_understand_fault, Fault, FaultSpec, FaultSubcode, QualifiedName,
};
pub use identify::{build_identify_response, parse_identify, IdentifyResponse};

#[cfg(test)]
mod tests;
