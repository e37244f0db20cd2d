//! Reader for PowerShell data files (`.psd1`, JEA role capability `.psrc`): a restricted
//! expression language of hashtables, arrays, strings, numbers and `$true`/`$false`/
//! `$null`. Script blocks are captured as text so that a caller can report the key that
//! holds one; nothing is ever evaluated.

use crate::prelude::*;

use super::lex::{is_blank, is_double_quote, is_newline, is_single_quote, Cursor};
use super::{Construct, PwshError};

/// Nesting limit for hashtables, arrays and script blocks.
const MAX_DEPTH: usize = 32;

/// A value from a data file.
#[derive(Debug, Clone, PartialEq)]
pub enum DataValue {
    /// A quoted string or bare word.
    Str(String),
    /// A number, as written.
    Number(String),
    /// `$true` / `$false`.
    Bool(bool),
    /// `$null`.
    Null,
    /// `a, b` or `@(a; b)`.
    Array(Vec<DataValue>),
    /// `@{ key = value; ... }`, in file order.
    Table(Vec<(String, DataValue)>),
    /// `{ ... }`: the text between the braces, never evaluated.
    ScriptBlock(String),
}

// === impl DataValue ===

impl DataValue {
    /// The value as a list: an array's items, or the value itself.
    pub fn items(&self) -> Vec<&DataValue> {
        match self {
            DataValue::Array(items) => items.iter().collect(),
            other => vec![other],
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            DataValue::Str(_) => "string",
            DataValue::Number(_) => "number",
            DataValue::Bool(_) => "boolean",
            DataValue::Null => "null",
            DataValue::Array(_) => "array",
            DataValue::Table(_) => "hashtable",
            DataValue::ScriptBlock(_) => "script block",
        }
    }
}

/// Parses a data file whose top level is one hashtable.
pub fn parse_data_file(text: &str) -> Result<DataValue, PwshError> {
    let mut r = Reader {
        c: Cursor::new(text),
    };
    r.c.skip_trivia(true)?;
    let value = r.value(0)?;
    r.c.skip_trivia(true)?;
    if !r.c.eof() {
        return Err(r.c.unsupported("text after the top-level value"));
    }
    if !matches!(value, DataValue::Table(_)) {
        return Err(r.c.unsupported_at(
            format!("top-level {} (expected a hashtable)", value.kind()),
            0,
        ));
    }
    Ok(value)
}

struct Reader<'a> {
    c: Cursor<'a>,
}

fn ends_word(c: char) -> bool {
    is_blank(c) || is_newline(c) || matches!(c, ';' | ',' | '=' | '(' | ')' | '{' | '}' | '#')
}

// === impl Reader ===

impl Reader<'_> {
    /// A value, possibly a comma-separated array.
    fn value(&mut self, depth: usize) -> Result<DataValue, PwshError> {
        let first = self.single(depth)?;
        self.c.skip_trivia(false)?;
        if self.c.peek() != Some(',') {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.c.peek() == Some(',') {
            self.c.bump();
            self.c.skip_trivia(true)?;
            items.push(self.single(depth)?);
            self.c.skip_trivia(false)?;
        }
        Ok(DataValue::Array(items))
    }

    fn single(&mut self, depth: usize) -> Result<DataValue, PwshError> {
        if depth > MAX_DEPTH {
            return Err(self.c.unsupported("value nested too deeply"));
        }
        match (self.c.peek(), self.c.peek_at(1)) {
            (None, _) => Err(self.c.unsupported("missing value")),
            (Some(q), _) if is_single_quote(q) => Ok(DataValue::Str(self.c.read_single_quoted()?)),
            (Some(q), _) if is_double_quote(q) => Ok(DataValue::Str(self.c.read_double_quoted()?)),
            (Some('@'), Some(q)) if is_single_quote(q) || is_double_quote(q) => {
                Ok(DataValue::Str(self.c.read_here_string()?))
            }
            (Some('@'), Some('{')) => self.table(depth),
            (Some('@'), Some('(')) => self.array(depth),
            (Some('{'), _) => self.script_block(),
            (Some('$'), _) => {
                let start = self.c.index();
                self.c.bump();
                let name = self.word();
                match name.to_ascii_lowercase().as_str() {
                    "true" => Ok(DataValue::Bool(true)),
                    "false" => Ok(DataValue::Bool(false)),
                    "null" => Ok(DataValue::Null),
                    _ => Err(self.c.unsupported_at(Construct::Variable, start)),
                }
            }
            (Some(c), _) if ends_word(c) || c == '@' || c == '[' => {
                Err(self.c.unsupported(format!("unexpected '{c}'")))
            }
            (Some(_), _) => {
                let word = self.word();
                if word
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '.')
                {
                    Ok(DataValue::Number(word))
                } else {
                    Ok(DataValue::Str(word))
                }
            }
        }
    }

    fn word(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.c.peek() {
            if ends_word(c) {
                break;
            }
            out.push(c);
            self.c.bump();
        }
        out
    }

    fn table(&mut self, depth: usize) -> Result<DataValue, PwshError> {
        let start = self.c.offset();
        self.c.bump();
        self.c.bump();
        let mut entries = Vec::new();
        loop {
            self.c.skip_trivia(true)?;
            match self.c.peek() {
                None => return Err(self.c.unterminated("hashtable", start)),
                Some('}') => {
                    self.c.bump();
                    return Ok(DataValue::Table(entries));
                }
                Some(';') => {
                    self.c.bump();
                }
                Some(q) => {
                    let key = if is_single_quote(q) {
                        self.c.read_single_quoted()?
                    } else if is_double_quote(q) {
                        self.c.read_double_quoted()?
                    } else {
                        self.word()
                    };
                    if key.is_empty() {
                        return Err(self
                            .c
                            .unsupported(format!("unexpected '{q}' where a key was expected")));
                    }
                    self.c.skip_trivia(false)?;
                    if self.c.peek() != Some('=') {
                        return Err(self.c.unsupported(format!("missing '=' after key '{key}'")));
                    }
                    self.c.bump();
                    self.c.skip_trivia(true)?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    self.c.skip_trivia(false)?;
                    match self.c.peek() {
                        Some(';') | Some('}') => {}
                        Some(c) if is_newline(c) => {}
                        None => return Err(self.c.unterminated("hashtable", start)),
                        Some(c) => {
                            return Err(self
                                .c
                                .unsupported(format!("unexpected '{c}' after a hashtable value")))
                        }
                    }
                }
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<DataValue, PwshError> {
        let start = self.c.offset();
        self.c.bump();
        self.c.bump();
        let mut items = Vec::new();
        loop {
            self.c.skip_trivia(true)?;
            match self.c.peek() {
                None => return Err(self.c.unterminated("array", start)),
                Some(')') => {
                    self.c.bump();
                    return Ok(DataValue::Array(items));
                }
                Some(',') | Some(';') => {
                    self.c.bump();
                }
                Some(_) => match self.value(depth + 1)? {
                    DataValue::Array(inner) => items.extend(inner),
                    other => items.push(other),
                },
            }
        }
    }

    /// Captures a script block's text by brace matching, skipping strings and comments
    /// so that braces inside them do not count.
    fn script_block(&mut self) -> Result<DataValue, PwshError> {
        let start = self.c.offset();
        self.c.bump();
        let body_start = self.c.index();
        let mut level = 1usize;
        loop {
            self.c.skip_trivia(true)?;
            match self.c.peek() {
                None => return Err(self.c.unterminated("script block", start)),
                Some('{') => {
                    level += 1;
                    if level > MAX_DEPTH {
                        return Err(self.c.unsupported("script block nested too deeply"));
                    }
                    self.c.bump();
                }
                Some('}') => {
                    level -= 1;
                    let end = self.c.index();
                    self.c.bump();
                    if level == 0 {
                        return Ok(DataValue::ScriptBlock(
                            self.c.slice(body_start, end).to_string(),
                        ));
                    }
                }
                Some(q) if is_single_quote(q) => {
                    self.c.read_single_quoted()?;
                }
                Some(q) if is_double_quote(q) => {
                    // Skip to the closing quote; a backtick escapes the next character.
                    self.c.bump();
                    loop {
                        match self.c.bump() {
                            None => {
                                return Err(self.c.unterminated("string in a script block", start))
                            }
                            Some('`') => {
                                self.c.bump();
                            }
                            Some(c) if is_double_quote(c) => break,
                            Some(_) => {}
                        }
                    }
                }
                Some('`') => {
                    self.c.bump();
                    self.c.bump();
                }
                Some(_) => {
                    self.c.bump();
                }
            }
        }
    }
}
