//! PowerShell Remoting Protocol codec (MS-PSRP): fragments and their reassembly, the
//! message header, CLIXML, and the read-out of pipelines for policy.
//!
//! Layering, bottom up: [`fragment`] (21-byte framing) → [`defrag`] (one
//! [`Defragmenter`] per direction, keyed by ObjectId, bounded memory) → [`message`]
//! (40-byte header, message types, .NET GUIDs) → [`clixml`] (values) → [`pipeline`]
//! (CREATE_PIPELINE / GET_COMMAND_METADATA → commands), [`records`] (host output as
//! text) and [`summary`] (for `hopgate
//! decode`).
//!
//! Pure: no I/O, no clock, no tokio; it never imports `wsman`. The caller takes the base64
//! payloads out of the SOAP envelopes (`creationXml`, Command `Arguments`, `Stream`,
//! `connectXml`) and feeds the decoded bytes of one direction, in order, to one
//! defragmenter. Errors are [`PsrpError`], always with a byte offset, object id or path.
//!
//! ```
//! use hopgate::psrp::{
//!     extract_create_pipeline, fragment_message, Defragmenter, Destination, Message, MessageType,
//! };
//!
//! // What a client sends: a CREATE_PIPELINE message cut into fragments (here built locally).
//! let xml = r#"<Obj RefId="0"><MS><Obj N="PowerShell" RefId="1"><MS><Obj N="Cmds" RefId="2"><LST><Obj RefId="3"><MS><S N="Cmd">Get-Service</S><B N="IsScript">false</B><Obj N="Args" RefId="4"><LST><Obj RefId="5"><MS><S N="N">Name</S><S N="V">winrm</S></MS></Obj></LST></Obj></MS></Obj></LST></Obj></MS></Obj></MS></Obj>"#;
//! let msg = Message {
//!     destination: Destination::Server,
//!     message_type: MessageType::CreatePipeline,
//!     rpid: uuid::Uuid::nil(),
//!     pid: uuid::Uuid::from_u128(1),
//!     data: xml.as_bytes().to_vec(),
//! };
//! let mut wire = Vec::new();
//! for f in fragment_message(7, &msg.to_bytes(), 200) {
//!     f.write_to(&mut wire)?;
//! }
//!
//! // What the gateway does with the decoded base64 of Arguments/Stream payloads.
//! let mut client_to_server = Defragmenter::new();
//! for whole in client_to_server.push_bytes(&wire)? {
//!     let msg = Message::from_vec(whole)?;
//!     let pipeline = extract_create_pipeline(&msg)?;
//!     let cmd = &pipeline.statements[0][0];
//!     assert_eq!((cmd.name.as_str(), cmd.is_script), ("Get-Service", false));
//!     assert_eq!(cmd.args[0].name.as_deref(), Some("Name"));
//! }
//! assert!(client_to_server.is_idle());
//! # Ok::<(), hopgate::psrp::PsrpError>(())
//! ```

pub mod clixml;
pub mod defrag;
mod error;
pub mod fragment;
pub mod message;
pub mod pipeline;
pub mod records;
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
pub use records::{read_host_message, read_input_text, HostEvent, InvocationState, RecordStream};
pub use summary::{decode_message_summary, MessageSummary};
