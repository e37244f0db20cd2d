//! [`WsmanError`]: everything that can go wrong decoding an envelope.
//!
//! Owns the error type only. Every variant says where (byte offset or element path, e.g.
//! `/Envelope/Body/Send/Stream`). All of these are client (or backend) errors: the input
//! was bad, never our state.

/// A decoding failure. Messages are lowercase with no final period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsmanError {
    /// Not well-formed XML (syntax, mismatched tags, bad entity, unknown prefix, bad UTF-8).
    #[error("malformed xml at byte {offset}: {message}")]
    Xml {
        /// Byte offset into the input where the reader stopped.
        offset: u64,
        /// What the XML reader reported.
        message: String,
    },
    /// The input ended inside an element.
    #[error("input ended inside {path}")]
    UnexpectedEof {
        /// Path of the innermost open element.
        path: String,
    },
    /// The input is larger than [`Limits::max_bytes`](super::Limits::max_bytes).
    #[error("envelope larger than {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// Elements nest deeper than [`Limits::max_depth`](super::Limits::max_depth).
    #[error("xml nested deeper than {limit} elements")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// An element carries more attributes than
    /// [`Limits::max_attributes`](super::Limits::max_attributes).
    #[error("more than {limit} attributes on {path}")]
    TooManyAttributes {
        /// The configured limit.
        limit: usize,
        /// Path of the element.
        path: String,
    },
    /// An attribute value is longer than
    /// [`Limits::max_attribute_bytes`](super::Limits::max_attribute_bytes).
    #[error("attribute value longer than {limit} bytes on {path}")]
    AttributeTooLarge {
        /// The configured limit.
        limit: usize,
        /// Path of the element.
        path: String,
    },
    /// More namespace declarations in scope than
    /// [`Limits::max_namespaces`](super::Limits::max_namespaces).
    #[error("more than {limit} namespace declarations in scope at {path}")]
    TooManyNamespaces {
        /// The configured limit.
        limit: usize,
        /// Path of the element.
        path: String,
    },
    /// The root element is not a SOAP 1.2 `Envelope` (or there is no root element).
    #[error("root element is not a soap 1.2 envelope")]
    NotAnEnvelope,
    /// The envelope has no `s:Body`.
    #[error("envelope has no body")]
    MissingBody,
    /// A required header (or the `s:Header` itself) is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// An element that may appear once appeared again (e.g. a second `wsa:To`, a second
    /// `ShellId` selector): refused so that the gateway and the host cannot read different
    /// values from the same message.
    #[error("duplicate {path}")]
    Duplicate {
        /// Path of the repeated element (or `.../Selector[@Name=X]`).
        path: String,
    },
    /// An element appeared inside one that holds only text (e.g. inside `rsp:Command`).
    #[error("unexpected element {path}")]
    UnexpectedElement {
        /// Path of the unexpected element.
        path: String,
    },
    /// Text that must be base64 is not.
    #[error("bad base64 in {path}")]
    BadBase64 {
        /// Path of the element holding the text.
        path: String,
    },
    /// Text or an attribute that must be a number is not.
    #[error("bad number in {path}")]
    BadNumber {
        /// Path of the element or attribute.
        path: String,
    },
    /// Text that must be an `xs:QName` (`prefix:Local` with a bound prefix) is not.
    #[error("bad qualified name in {path}")]
    BadQName {
        /// Path of the element holding the text.
        path: String,
    },
    /// Text or an attribute that must be an `xs:boolean` is not.
    #[error("bad boolean in {path}")]
    BadBoolean {
        /// Path of the element or attribute.
        path: String,
    },
    /// A required attribute or child element is absent.
    #[error("missing {what} in {path}")]
    Missing {
        /// The attribute (`@Name`) or element that is absent.
        what: &'static str,
        /// Path of the element that should hold it.
        path: String,
    },
    /// The body does not match the action (e.g. a Command whose body is not
    /// `rsp:CommandLine`, or a ReceiveResponse with an empty body).
    #[error("action {action} needs body {expected}, found {found}")]
    BodyMismatch {
        /// The action URI.
        action: String,
        /// The element the action requires.
        expected: &'static str,
        /// What the body held (`{namespace}local` or `empty`).
        found: String,
    },
}

// === impl WsmanError ===

impl WsmanError {
    /// The fault subcode a WS-Management service answers this input with: the size and
    /// depth limits are `w:EncodingLimit`, missing or repeated headers
    /// `a:InvalidMessageInformationHeader`, everything else `w:SchemaValidationError`.
    pub fn fault_subcode(&self) -> super::FaultSubcode {
        use super::FaultSubcode as F;
        match self {
            WsmanError::TooLarge { .. }
            | WsmanError::TooDeep { .. }
            | WsmanError::TooManyAttributes { .. }
            | WsmanError::AttributeTooLarge { .. }
            | WsmanError::TooManyNamespaces { .. } => F::EncodingLimit,
            WsmanError::MissingHeader(_) => F::InvalidMessageInformationHeader,
            WsmanError::Duplicate { path } if path.starts_with("/Envelope/Header/") => {
                F::InvalidMessageInformationHeader
            }
            _ => F::SchemaValidationError,
        }
    }
}
