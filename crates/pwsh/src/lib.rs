//! PowerShell analysis for the policy engine: a tokenizer and parser for the safe subset
//! of the language (pipelines of commands with literal arguments), the default alias
//! table, and a reader for data files (`.psd1`, JEA `.psrc`).
//!
//! Pure: no I/O, no clock, and nothing is ever evaluated. This module extracts structure;
//! `policy` decides. Anything the parser does not understand is an error naming the
//! construct, never a partial result.

mod alias;
mod datafile;
mod lex;
mod parse;
#[cfg(test)]
mod tests;

pub use alias::resolve_alias;
pub use datafile::{parse_data_file, DataValue};
pub use parse::{parse_script, Arg, Command, Element, ExitCode, Literal, Script, Statement};

/// Why a script or data file could not be analysed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PwshError {
    /// A construct outside the analysed subset.
    #[error("{what} at byte {offset}")]
    Unsupported {
        /// The construct, e.g. "variable" or "script block".
        what: String,
        /// Byte offset in the text.
        offset: usize,
    },
    /// A string, comment or bracket that never ends.
    #[error("unterminated {what} starting at byte {offset}")]
    Unterminated {
        /// What was left open.
        what: &'static str,
        /// Byte offset where it started.
        offset: usize,
    },
}
