//! PowerShell analysis for the policy engine: a tokenizer and parser for the safe subset
//! of the language (pipelines of commands with literal arguments, plus the bounded
//! expression subset of [`SafeBlock`], hashtable literals and [`ValueExpr`]), the default
//! alias table, and a reader for data files (`.psd1`, JEA `.psrc`).
//!
//! Pure: no I/O, no clock, and nothing is ever evaluated. This module extracts structure;
//! `policy` decides. Anything the parser does not understand is an error naming the
//! construct, its text and its position, never a partial result.
// The pure tier: no `std`, so the file system, the network, the environment, processes
// and the clock do not exist here (tests link `std` for their fixtures).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

/// What `std`'s prelude would bring, from `alloc`.
#[allow(unused_imports, reason = "a prelude: each module uses part of it")]
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

use crate::prelude::*;

mod alias;
mod datafile;
mod expr;
mod lex;
mod parse;
#[cfg(test)]
mod tests;
mod value;

use core::fmt;

pub use alias::resolve_alias;
pub use datafile::{parse_data_file, DataValue};
pub use expr::{
    parse_block, BinaryOp, Case, Member, Operator, SafeBlock, SafeExpr, ValueBase, ValueExpr,
    DATE_METHODS, DATE_PROPERTIES, DATE_STATICS,
};
pub use parse::{parse_script, Arg, Command, Element, ExitCode, Literal, Script, Statement};

/// Where something is in a script: the byte offset, and the 1-based line and column.
/// Lines end at `\n`, `\r\n` or a lone `\r` (PowerShell's line breaks); columns count
/// characters (Unicode scalar values), not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Byte offset in the text.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

// === impl Position ===

impl Position {
    /// The position of byte `offset` in `text` (an offset inside a character counts as
    /// that character; past the end, as the end).
    pub fn locate(text: &str, offset: usize) -> Self {
        let mut line = 1;
        let mut column = 1;
        let mut prev_cr = false;
        for (i, c) in text.char_indices() {
            if i >= offset {
                break;
            }
            match c {
                '\n' if prev_cr => {}
                '\n' | '\r' => {
                    line += 1;
                    column = 1;
                }
                _ => column += 1,
            }
            prev_cr = c == '\r';
        }
        Self {
            offset,
            line,
            column,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A construct outside the analysed subset, named so that a caller can say what to
/// change ("allows no variables").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Construct {
    /// `$x`, `$env:X`, `${x}`, automatic variables other than `$_`/`$PSItem` in blocks.
    Variable,
    /// `$( ... )`.
    Subexpression,
    /// `@x` splatting.
    Splatting,
    /// `&`.
    CallOperator,
    /// `&&` / `||`.
    PipelineChain,
    /// `. script`.
    DotSource,
    /// `{ ... }` where no script block can be.
    ScriptBlock,
    /// `( ... )` other than `(Get-Date ...)`.
    Parenthesized,
    /// A command inside an expression (script block, hashtable value, `@( )`,
    /// parentheses), other than `(Get-Date ...)`.
    Command,
    /// `[type]` other than `[datetime]::Now/Today/UtcNow`.
    TypeLiteral,
    /// `::` on something other than `[datetime]`.
    StaticMember,
    /// `.Name(...)` other than the listed date methods.
    MethodCall,
    /// Member access where none is analysed (`'a'.x` in arguments, on arrays).
    MemberAccess,
    /// `x[0]`.
    Index,
    /// `>`, `2>&1`, `<`.
    Redirection,
    /// `=`, `+=`, `++`, ...
    Assignment,
    /// An operator outside the comparison and logical ones.
    Operator,
    /// A language keyword (`if`, `function`, ...).
    Keyword(String),
    /// `$` inside a double-quoted string or here-string.
    StringExpansion,
    /// `--%`.
    StopParsing,
    /// A backtick escape where none is analysed.
    Escape,
    /// A control, invisible or ambiguous whitespace character.
    Character(char),
    /// Nesting beyond the parser's depth limit.
    Nesting,
    /// Anything else, described.
    Other(String),
}

// === impl Construct ===

impl Construct {
    /// The plural form for "allows no ...", with the exceptions the subset makes.
    pub fn plural(&self) -> String {
        match self {
            Construct::Variable => "variables".into(),
            Construct::Subexpression => "subexpressions".into(),
            Construct::Splatting => "splatting".into(),
            Construct::CallOperator => "call operators (&)".into(),
            Construct::PipelineChain => "pipeline chains (&&, ||)".into(),
            Construct::DotSource => "dot-sourcing (.)".into(),
            Construct::ScriptBlock => "script blocks here".into(),
            Construct::Parenthesized => "parenthesized expressions except (Get-Date ...)".into(),
            Construct::Command => "commands inside expressions except (Get-Date ...)".into(),
            Construct::TypeLiteral => {
                "type literals except [datetime]::Now, ::Today and ::UtcNow".into()
            }
            Construct::StaticMember => {
                "static members except [datetime]::Now, ::Today and ::UtcNow".into()
            }
            Construct::MethodCall => "method calls except the listed date methods".into(),
            Construct::MemberAccess => "member access here".into(),
            Construct::Index => "index expressions".into(),
            Construct::Redirection => "redirections".into(),
            Construct::Assignment => "assignments".into(),
            Construct::Operator => "operators other than comparison and logical ones".into(),
            Construct::Keyword(k) => format!("keyword '{k}'"),
            Construct::StringExpansion => "variable expansion in strings".into(),
            Construct::StopParsing => "stop-parsing tokens (--%)".into(),
            Construct::Escape => "escapes here".into(),
            Construct::Character(c) => format!("character U+{:04X}", u32::from(*c)),
            Construct::Nesting => "nesting this deep".into(),
            Construct::Other(what) => what.clone(),
        }
    }
}

impl fmt::Display for Construct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Construct::Variable => f.write_str("variable"),
            Construct::Subexpression => f.write_str("subexpression"),
            Construct::Splatting => f.write_str("splatting"),
            Construct::CallOperator => f.write_str("call operator (&)"),
            Construct::PipelineChain => f.write_str("pipeline chain"),
            Construct::DotSource => f.write_str("dot-source operator (.)"),
            Construct::ScriptBlock => f.write_str("script block"),
            Construct::Parenthesized => f.write_str("parenthesized expression"),
            Construct::Command => f.write_str("command invocation"),
            Construct::TypeLiteral => f.write_str("type literal"),
            Construct::StaticMember => f.write_str("static member access (::)"),
            Construct::MethodCall => f.write_str("method call"),
            Construct::MemberAccess => f.write_str("member access"),
            Construct::Index => f.write_str("index expression"),
            Construct::Redirection => f.write_str("redirection"),
            Construct::Assignment => f.write_str("assignment"),
            Construct::Operator => f.write_str("operator"),
            Construct::Keyword(k) => write!(f, "keyword '{k}'"),
            Construct::StringExpansion => f.write_str("variable expansion in a string"),
            Construct::StopParsing => f.write_str("stop-parsing token (--%)"),
            Construct::Escape => f.write_str("escape character (`)"),
            Construct::Character(c) => write!(
                f,
                "control, invisible or ambiguous character U+{:04X}",
                u32::from(*c)
            ),
            Construct::Nesting => f.write_str("nesting too deep"),
            Construct::Other(what) => f.write_str(what),
        }
    }
}

impl From<&str> for Construct {
    fn from(what: &str) -> Self {
        Construct::Other(what.to_string())
    }
}

impl From<String> for Construct {
    fn from(what: String) -> Self {
        Construct::Other(what)
    }
}

/// Why a script or data file could not be analysed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PwshError {
    /// A construct outside the analysed subset.
    #[error("{construct} `{snippet}`{} at {at}", if *.in_block { " in a script block" } else { "" })]
    Unsupported {
        /// What it is.
        construct: Construct,
        /// The text of the construct (shortened, one line).
        snippet: String,
        /// Where it starts.
        at: Position,
        /// True when it is inside a script block (whose body must be a safe expression).
        in_block: bool,
    },
    /// A string, comment or bracket that never ends.
    #[error("unterminated {what} starting at {at}")]
    Unterminated {
        /// What was left open.
        what: &'static str,
        /// Where it started.
        at: Position,
    },
}

// === impl PwshError ===

impl PwshError {
    /// Where the error is.
    pub fn position(&self) -> Position {
        match self {
            PwshError::Unsupported { at, .. } | PwshError::Unterminated { at, .. } => *at,
        }
    }

    /// The construct, for [`PwshError::Unsupported`].
    pub fn construct(&self) -> Option<&Construct> {
        match self {
            PwshError::Unsupported { construct, .. } => Some(construct),
            PwshError::Unterminated { .. } => None,
        }
    }

    /// Marks an error as found inside a script block.
    pub(crate) fn within_block(self) -> Self {
        match self {
            PwshError::Unsupported {
                construct,
                snippet,
                at,
                ..
            } => PwshError::Unsupported {
                construct,
                snippet,
                at,
                in_block: true,
            },
            other => other,
        }
    }
}
