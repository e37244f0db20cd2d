//! CLIXML, the PowerShell object serialization PSRP message data is written in
//! (MS-PSRP 2.2.5): a value model, a reader and a writer.
//!
//! Owns the generic format only; what particular objects mean (pipelines, host info) lives
//! in `pipeline.rs`. Pure: no I/O. The reader is written for hostile input: no panics,
//! depth and value-count limits ([`ClixmlLimits`]), references shared rather than copied.

mod escape;
mod reader;
mod value;
mod writer;

pub use escape::{decode as decode_escapes, encode as encode_escapes};
pub use reader::{parse_clixml, parse_clixml_with, ClixmlLimits, CLIXML_NAMESPACE};
pub use value::{eq_ignore_case, ListKind, Object, ObjectContent, Value, ValueKind};
pub use writer::{write_clixml, write_clixml_values};
