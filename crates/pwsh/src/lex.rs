//! Character-level primitives shared by the script parser and the data-file reader:
//! whitespace, comments, line continuations and the three string literal forms.
//!
//! Owns nothing but a cursor over the text; it never decides whether a construct is
//! allowed. Offsets are byte offsets into the original text.

use crate::prelude::*;

use super::{Construct, Position, PwshError};

/// Single-quote characters PowerShell accepts (ASCII and the typographic variants).
pub(crate) fn is_single_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}')
}

/// Double-quote characters PowerShell accepts (ASCII and the typographic variants).
pub(crate) fn is_double_quote(c: char) -> bool {
    matches!(c, '"' | '\u{201C}' | '\u{201D}' | '\u{201E}')
}

/// Dash characters PowerShell treats as `-` (en dash, em dash, horizontal bar).
pub(crate) fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2013}' | '\u{2014}' | '\u{2015}')
}

/// Horizontal whitespace as PowerShell's tokenizer sees it.
pub(crate) fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{000B}' | '\u{000C}' | '\u{00A0}')
}

/// Whitespace and separator characters outside ASCII (other than no-break space) on
/// which tokenizers disagree (is U+0085 a blank or a line break?): a script containing
/// one is refused rather than split differently from PowerShell.
pub(crate) fn is_ambiguous_space(c: char) -> bool {
    !c.is_ascii()
        && c != '\u{00A0}'
        && (c.is_whitespace()
            || c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}'))
}

pub(crate) fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// How far ahead an error snippet looks for the end of its construct.
const SNIPPET_SCAN: usize = 64;

/// Longest snippet quoted in an error, in characters.
const SNIPPET_MAX: usize = 40;

/// A construct's text for an error message: its first line, at most [`SNIPPET_MAX`]
/// characters.
fn snippet(text: &str) -> String {
    let line = text.split(is_newline).next().unwrap_or("");
    let mut out: String = line.chars().take(SNIPPET_MAX).collect();
    if out.len() < text.len() {
        out.push('\u{2026}');
    }
    out
}

/// A cursor over the characters of a script, with byte offsets.

#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    text: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

// === impl Cursor ===

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            chars: text.char_indices().collect(),
            i: 0,
        }
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|c| c.1)
    }

    pub(crate) fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).map(|c| c.1)
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.i += 1;
        }
        c
    }

    pub(crate) fn eof(&self) -> bool {
        self.i >= self.chars.len()
    }

    /// Byte offset of the current position.
    pub(crate) fn offset(&self) -> usize {
        self.chars.get(self.i).map_or(self.text.len(), |c| c.0)
    }

    /// Byte offset of the character at index `i`.
    pub(crate) fn offset_of(&self, i: usize) -> usize {
        self.chars.get(i).map_or(self.text.len(), |c| c.0)
    }

    pub(crate) fn index(&self) -> usize {
        self.i
    }

    /// Source text between two character indices.
    pub(crate) fn slice(&self, from: usize, to: usize) -> &'a str {
        self.text
            .get(self.offset_of(from)..self.offset_of(to))
            .unwrap_or("")
    }

    /// The construct starting at the current position.
    pub(crate) fn unsupported(&self, construct: impl Into<Construct>) -> PwshError {
        self.unsupported_at(construct, self.i)
    }

    /// The construct starting at character index `from`, its extent guessed from its
    /// first characters (see [`Cursor::extent`]).
    pub(crate) fn unsupported_at(&self, construct: impl Into<Construct>, from: usize) -> PwshError {
        let to = self.extent(from);
        self.unsupported_span(construct, from, to)
    }

    /// The construct between character indices `from` and `to`.
    pub(crate) fn unsupported_span(
        &self,
        construct: impl Into<Construct>,
        from: usize,
        to: usize,
    ) -> PwshError {
        PwshError::Unsupported {
            construct: construct.into(),
            snippet: snippet(self.slice(from, to.max(from))),
            at: self.position(self.offset_of(from)),
            in_block: false,
        }
    }

    /// Something left open at byte `offset`.
    pub(crate) fn unterminated(&self, what: &'static str, offset: usize) -> PwshError {
        PwshError::Unterminated {
            what,
            at: self.position(offset),
        }
    }

    /// Line and column of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> Position {
        Position::locate(self.text, offset)
    }

    /// Where the construct starting at character index `from` probably ends, for error
    /// snippets: a bracketed construct at its closing bracket, a variable at the end of
    /// its name, a member at the end of its name (and argument list), anything else at
    /// the end of the word. Looks at most [`SNIPPET_SCAN`] characters ahead.
    pub(crate) fn extent(&self, from: usize) -> usize {
        let at = |i: usize| self.chars.get(i).map(|c| c.1);
        let limit = from.saturating_add(SNIPPET_SCAN).min(self.chars.len());
        let scan = |mut i: usize, keep: &dyn Fn(char) -> bool| {
            while i < limit && at(i).is_some_and(keep) {
                i += 1;
            }
            i
        };
        let matching = |open: usize| {
            let mut level = 0usize;
            for i in open..limit {
                match at(i) {
                    Some('(' | '{' | '[') => level += 1,
                    Some(')' | '}' | ']') => {
                        level = level.saturating_sub(1);
                        if level == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
            }
            limit
        };
        let word = |c: char| c.is_alphanumeric() || c == '_';
        let end = match (at(from), at(from + 1)) {
            (None, _) => return from,
            (Some('(' | '{' | '['), _) => matching(from),
            (Some('$' | '@'), Some('(' | '{')) => matching(from + 1),
            (Some('$'), _) => scan(from + 1, &|c| word(c) || matches!(c, ':' | '?')),
            (Some('.'), _) => {
                let end = scan(from + 1, &word);
                if matches!(at(end), Some('(' | '{')) {
                    matching(end)
                } else {
                    end
                }
            }
            (Some(c), _) if is_dash(c) => scan(from + 1, &|c| word(c) || c == '%'),
            (Some(_), _) => scan(from, &|c| {
                !is_blank(c)
                    && !is_newline(c)
                    && !matches!(c, ';' | '|' | '(' | ')' | '{' | '}' | ',')
            }),
        };
        end.max(from + 1).min(self.chars.len())
    }

    /// Skips blanks, comments and backtick line continuations; with `newlines` also
    /// skips line breaks. Returns an error for an unterminated block comment.
    pub(crate) fn skip_trivia(&mut self, newlines: bool) -> Result<(), PwshError> {
        loop {
            match self.peek() {
                Some(c) if is_blank(c) => {
                    self.i += 1;
                }
                Some(c) if is_ambiguous_space(c) && !(self.i == 0 && c == '\u{FEFF}') => {
                    return Err(self.unsupported(Construct::Character(c)));
                }
                Some(c) if newlines && is_newline(c) => {
                    self.i += 1;
                }
                Some('`') if self.peek_at(1).is_some_and(is_newline) => {
                    // Line continuation: the backtick escapes the line break.
                    self.i += 1;
                    if self.peek() == Some('\r') && self.peek_at(1) == Some('\n') {
                        self.i += 2;
                    } else {
                        self.i += 1;
                    }
                }
                Some('#') => {
                    while self.peek().is_some_and(|c| !is_newline(c)) {
                        self.i += 1;
                    }
                }
                Some('<') if self.peek_at(1) == Some('#') => {
                    let start = self.offset();
                    self.i += 2;
                    loop {
                        match self.bump() {
                            None => return Err(self.unterminated("block comment", start)),
                            Some('#') if self.peek() == Some('>') => {
                                self.i += 1;
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Reads a single-quoted string; the cursor is on the opening quote.
    pub(crate) fn read_single_quoted(&mut self) -> Result<String, PwshError> {
        let start = self.offset();
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.unterminated("single-quoted string", start)),
                Some(c) if is_single_quote(c) => {
                    // A doubled quote is an escaped quote.
                    if self.peek().is_some_and(is_single_quote) {
                        self.i += 1;
                        out.push('\'');
                    } else {
                        return Ok(out);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// Reads a double-quoted string whose content must be constant: any `$` that is not
    /// escaped would expand a variable or subexpression and is reported as unsupported.
    pub(crate) fn read_double_quoted(&mut self) -> Result<String, PwshError> {
        let start = self.offset();
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.unterminated("double-quoted string", start)),
                Some(c) if is_double_quote(c) => {
                    if self.peek().is_some_and(is_double_quote) {
                        self.i += 1;
                        out.push('"');
                    } else {
                        return Ok(out);
                    }
                }
                Some('`') => self.read_escape(&mut out, start)?,
                Some('$') => {
                    self.i -= 1;
                    return Err(self.unsupported(Construct::StringExpansion));
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn read_escape(&mut self, out: &mut String, start: usize) -> Result<(), PwshError> {
        match self.bump() {
            None => Err(self.unterminated("escape sequence", start)),
            Some('0') => {
                out.push('\0');
                Ok(())
            }
            Some('a') => {
                out.push('\u{7}');
                Ok(())
            }
            Some('b') => {
                out.push('\u{8}');
                Ok(())
            }
            Some('e') => {
                out.push('\u{1b}');
                Ok(())
            }
            Some('f') => {
                out.push('\u{c}');
                Ok(())
            }
            Some('n') => {
                out.push('\n');
                Ok(())
            }
            Some('r') => {
                out.push('\r');
                Ok(())
            }
            Some('t') => {
                out.push('\t');
                Ok(())
            }
            Some('v') => {
                out.push('\u{b}');
                Ok(())
            }
            Some('u') => {
                // Back to the backtick.
                self.i -= 2;
                Err(self.unsupported(Construct::Escape))
            }
            Some(c) => {
                out.push(c);
                Ok(())
            }
        }
    }

    /// Reads a here-string (`@'…'@` or `@"…"@`); the cursor is on the `@`.
    pub(crate) fn read_here_string(&mut self) -> Result<String, PwshError> {
        let start = self.offset();
        let expandable = self.peek_at(1).is_some_and(is_double_quote);
        self.i += 2;
        // Only blanks may follow the opening token on its line.
        while self.peek().is_some_and(is_blank) {
            self.i += 1;
        }
        match self.bump() {
            Some('\n') => {}
            Some('\r') => {
                if self.peek() == Some('\n') {
                    self.i += 1;
                }
            }
            _ => return Err(self.unterminated("here-string header", start)),
        }
        let mut out = String::new();
        let mut at_line_start = true;
        loop {
            let Some(c) = self.bump() else {
                return Err(self.unterminated("here-string", start));
            };
            let closes = if expandable {
                is_double_quote(c)
            } else {
                is_single_quote(c)
            };
            if at_line_start && closes && self.peek() == Some('@') {
                self.i += 1;
                // The line break before the terminator is not part of the value.
                if out.ends_with('\n') {
                    out.pop();
                }
                if out.ends_with('\r') {
                    out.pop();
                }
                return Ok(out);
            }
            at_line_start = is_newline(c);
            if expandable && c == '`' {
                self.read_escape(&mut out, start)?;
            } else if expandable && c == '$' {
                self.i -= 1;
                return Err(self.unsupported(Construct::StringExpansion));
            } else {
                out.push(c);
            }
        }
    }
}
