//! PowerShell Remoting Protocol codec (MS-PSRP): fragments and their reassembly, the
//! message header, CLIXML, and the read-out of pipelines for policy.
//!
//! Layering, bottom up: [`fragment`] (21-byte framing) → [`defrag`] (one
//! [`Defragmenter`] per direction, keyed by ObjectId, bounded memory) → [`message`]
//! (40-byte header, message types, .NET GUIDs) → [`clixml`] (values) → [`pipeline`]
//! (CREATE_PIPELINE / GET_COMMAND_METADATA → commands) and [`summary`] (for `hopgate
//! decode`).
//!
//! Pure: no I/O, no clock, no tokio; it never imports `wsman`. The caller takes the base64
//! payloads out of the SOAP envelopes (`creationXml`, Command `Arguments`, `Stream`,
//! `connectXml`) and feeds the decoded bytes of one direction, in order, to one
//! defragmenter. Errors are [`PsrpError`], always with a byte offset, object id or path.

pub mod clixml;
pub mod defrag;
mod error;
pub mod fragment;
pub mod message;
pub mod pipeline;
pub mod summary;

#[cfg(test)]
mod tests;

pub use defrag::{DefragLimits, Defragmenter};
pub use error::{ClixmlErrorKind, PipelineErrorKind, PsrpError};
pub use fragment::{
    fragment_message, fragment_refs, parse_fragments, Fragment, FragmentRef, FRAGMENT_HEADER_LEN,
};
pub use message::{
    guid_from_dotnet_bytes, guid_to_dotnet_bytes, Destination, Message, MessageType,
    MESSAGE_HEADER_LEN,
};
pub use pipeline::{
    extract_create_pipeline, extract_get_command_metadata, Arg, ArgValue, Command, DictEntry,
    Pipeline, Redacted,
};
pub use summary::{decode_message_summary, MessageSummary};
