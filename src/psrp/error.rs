//! The one error type of the PSRP codec, [`PsrpError`].
//!
//! Every variant says where the problem is: a byte offset for framing and XML errors, an
//! object id for defragmentation errors, an element or member path for CLIXML and pipeline
//! errors. Messages are lowercase without a final period. All errors are caused by the
//! peer's data (the caller tags them as client or backend errors); none carries secrets.

use super::message::MessageType;

/// An error from the PSRP codec (fragments, messages, CLIXML, pipelines).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PsrpError {
    /// Fewer than 21 bytes were left where a fragment header should start (MS-PSRP 2.2.4).
    #[error("truncated fragment header at byte {offset}: {available} of 21 bytes")]
    TruncatedFragmentHeader {
        /// Offset of the header in the buffer given to the parser.
        offset: usize,
        /// Bytes left in the buffer from that offset.
        available: usize,
    },
    /// A fragment declares more blob bytes than the buffer holds.
    #[error("truncated fragment blob at byte {offset}: {declared} bytes declared, {available} available")]
    TruncatedFragmentBlob {
        /// Offset of the fragment header.
        offset: usize,
        /// BlobLength from the header.
        declared: usize,
        /// Bytes after the header.
        available: usize,
    },
    /// A blob too long for the 32-bit BlobLength field.
    #[error("fragment blob of {len} bytes does not fit the 32-bit length field")]
    FragmentBlobTooLong {
        /// Blob length.
        len: usize,
    },
    /// A fragment with the Start flag whose FragmentId is not 0.
    #[error("start fragment of object {object_id} has fragment id {fragment_id}, expected 0")]
    StartFragmentNotFirst {
        /// ObjectId of the fragment.
        object_id: u64,
        /// FragmentId of the fragment.
        fragment_id: u64,
    },
    /// A second Start fragment for an object that is still being reassembled.
    #[error("duplicate start fragment for object {object_id}")]
    DuplicateStart {
        /// ObjectId of the fragment.
        object_id: u64,
    },
    /// A continuation fragment for an object that never started (or was discarded).
    #[error("fragment {fragment_id} of object {object_id} arrived without a start fragment")]
    MissingStart {
        /// ObjectId of the fragment.
        object_id: u64,
        /// FragmentId of the fragment.
        fragment_id: u64,
    },
    /// A fragment whose FragmentId is not the next one expected (MS-PSRP 3.1.5.1.2).
    #[error("fragment {got} of object {object_id} arrived out of order, expected {expected}")]
    OutOfOrderFragment {
        /// ObjectId of the fragment.
        object_id: u64,
        /// The FragmentId that should have come next.
        expected: u64,
        /// The FragmentId that came.
        got: u64,
    },
    /// Reassembling this message would exceed the buffered-bytes cap.
    #[error("message of object {object_id} exceeds the limit of {limit} buffered bytes")]
    MessageTooLarge {
        /// ObjectId of the message.
        object_id: u64,
        /// The configured cap.
        limit: usize,
    },
    /// Too many messages are partially received at once.
    #[error("too many partially received messages (limit {limit})")]
    TooManyPendingObjects {
        /// The configured cap.
        limit: usize,
    },
    /// A reassembled message shorter than its 40-byte header (MS-PSRP 2.2.1).
    #[error("truncated message header: {len} of 40 bytes")]
    TruncatedMessageHeader {
        /// Length of the message.
        len: usize,
    },
    /// Message data that is not UTF-8.
    #[error("message data is not utf-8 at byte {offset}")]
    InvalidUtf8 {
        /// Offset in the message (header included).
        offset: usize,
    },
    /// Malformed or over-limit CLIXML (MS-PSRP 2.2.5).
    #[error("clixml error at byte {offset} in {path}: {kind}")]
    Clixml {
        /// Byte offset in the XML text where the problem was noticed.
        offset: u64,
        /// Element path from the root, e.g. `Obj/MS/Obj[N=PowerShell]`.
        path: String,
        /// What went wrong.
        kind: ClixmlErrorKind,
    },
    /// The message is not of the type the caller asked to decode.
    #[error("unexpected message type {found}, expected {expected}")]
    UnexpectedMessageType {
        /// What the caller expected.
        expected: MessageType,
        /// What the message holds.
        found: MessageType,
    },
    /// CLIXML that parsed but does not have the shape of a pipeline (MS-PSRP 2.2.3.11).
    #[error("pipeline at {path}: {kind}")]
    Pipeline {
        /// Member path, e.g. `PowerShell.ExtraCmds[1].Cmds[0].Args[2].V`.
        path: String,
        /// What went wrong.
        kind: PipelineErrorKind,
    },
}

/// What went wrong in CLIXML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClixmlErrorKind {
    /// The XML itself is malformed.
    #[error("malformed xml: {0}")]
    Xml(String),
    /// A DOCTYPE declaration, which CLIXML never has (and which could declare entities).
    #[error("doctype is not allowed")]
    DocType,
    /// An entity reference other than the five XML ones or a character reference.
    #[error("unknown entity reference &{0};")]
    UnknownEntity(String),
    /// An element CLIXML does not define here.
    #[error("unexpected element <{0}>")]
    UnexpectedElement(String),
    /// An element in a namespace other than none or the PowerShell 2004/04 one.
    #[error("element <{0}> is in an unknown namespace")]
    UnknownNamespace(String),
    /// Non-whitespace text where only elements may appear.
    #[error("unexpected text")]
    UnexpectedText,
    /// A required attribute is missing.
    #[error("missing attribute {0}")]
    MissingAttribute(&'static str),
    /// An attribute that could not be read.
    #[error("malformed attribute: {0}")]
    BadAttribute(String),
    /// A primitive whose text is not a valid value of its type.
    #[error("invalid <{element}> value {text:?}")]
    InvalidValue {
        /// The primitive's element name.
        element: &'static str,
        /// The text (truncated to 64 characters).
        text: String,
    },
    /// `<Ref RefId>` naming no earlier object.
    #[error("reference to unknown object RefId {0:?}")]
    UnknownRefId(String),
    /// Two objects with the same RefId.
    #[error("duplicate object RefId {0:?}")]
    DuplicateRefId(String),
    /// `<TNRef RefId>` naming no earlier type-name list.
    #[error("reference to unknown type name list RefId {0:?}")]
    UnknownTypeNameRef(String),
    /// An object with two of the same section (two `<MS>`, two contents, two `<TN>`...).
    #[error("duplicate <{0}> in one object")]
    DuplicateSection(&'static str),
    /// A dictionary entry without its `Key` or `Value`, or with extra children.
    #[error("dictionary entry needs exactly one Key and one Value")]
    BadDictEntry,
    /// Elements nested deeper than the limit.
    #[error("nesting deeper than {0} elements")]
    TooDeep(usize),
    /// More values than the limit.
    #[error("more than {0} values")]
    TooManyValues(usize),
    /// More attributes on one element than the limit.
    #[error("more than {0} attributes on one element")]
    TooManyAttributes(usize),
    /// The document ended inside an element.
    #[error("unexpected end of document")]
    UnexpectedEof,
}

/// What went wrong when reading a pipeline out of CLIXML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineErrorKind {
    /// The message has no CLIXML object at the top.
    #[error("message data holds no object")]
    NoObject,
    /// The message holds more than the one top-level value it should.
    #[error("message data holds more than one value")]
    ExtraValues,
    /// A required member is absent.
    #[error("missing member {0}")]
    MissingMember(&'static str),
    /// A member appears more than once (the server might read another copy than we did).
    #[error("member {0} appears more than once")]
    DuplicateMember(String),
    /// A member has a value of the wrong type.
    #[error("expected {0}")]
    WrongType(&'static str),
    /// The pipeline has no command at all.
    #[error("no command")]
    Empty,
    /// An argument value is nested or shared too much to display.
    #[error("argument value too complex (more than {0} nodes)")]
    ValueTooComplex(usize),
}
