//! Constants and pure values in expression mode, shared by script blocks, hashtable
//! values, array literals and command arguments: strings, numbers, `@( )` and `@{ }`
//! of constants, and the date values of [`ValueExpr`] (`(Get-Date ...)` and
//! `[datetime]::Now`, with the members listed in `expr.rs`).
//!
//! Never evaluates anything; every other construct is an error naming it.

use crate::prelude::*;

use super::expr::{
    command_start, listed, Member, SafeExpr, ValueBase, ValueExpr, DATE_METHODS, DATE_STATICS,
    MAX_CHAIN,
};
use super::lex::{is_dash, is_double_quote, is_newline, is_single_quote};
use super::parse::{is_keyword, is_number, Command, Literal, Parser, MAX_DEPTH};
use super::{Construct, PwshError};

/// `Get-Date`, optionally module-qualified.
fn is_get_date(name: &str) -> bool {
    let leaf = match name.rsplit_once('\\') {
        Some((module, leaf)) if module.eq_ignore_ascii_case("Microsoft.PowerShell.Utility") => leaf,
        Some(_) => return false,
        None => name,
    };
    let mut parts = leaf.splitn(2, is_dash);
    parts.next().is_some_and(|v| v.eq_ignore_ascii_case("get"))
        && parts.next().is_some_and(|n| n.eq_ignore_ascii_case("date"))
}

// === impl Parser ===

impl Parser<'_> {
    /// Members of a date value: the listed methods while its type is known, any
    /// property.
    pub(crate) fn value_members(
        &mut self,
        v: &mut ValueExpr,
        depth: usize,
    ) -> Result<(), PwshError> {
        while let Some(start) = self.member_start()? {
            if v.members.len() >= MAX_CHAIN {
                return Err(self.c.unsupported(Construct::Nesting));
            }
            let name = self.member_name(start)?;
            let args = match self.c.peek() {
                Some('(') => match listed(DATE_METHODS, &name) {
                    Some(_) if v.typed() => Some(self.method_args(depth)?),
                    _ => return Err(self.method_call(start)),
                },
                Some('{') => return Err(self.method_call(start)),
                _ => None,
            };
            v.members.push(Member { name, args });
        }
        Ok(())
    }

    /// `(a, b)` of a method call: constants only. The cursor is on the `(`.
    pub(crate) fn method_args(&mut self, depth: usize) -> Result<Vec<Literal>, PwshError> {
        let open = self.c.offset();
        self.c.bump();
        let mut args = Vec::new();
        loop {
            self.c.skip_trivia(true)?;
            match self.c.peek() {
                None => return Err(self.c.unterminated("method argument list", open)),
                Some(')') if args.is_empty() => break,
                _ => {}
            }
            if args.len() >= MAX_CHAIN {
                return Err(self.c.unsupported(Construct::Nesting));
            }
            let at = self.c.index();
            match self.constant(depth + 1)? {
                l @ (Literal::Str(_) | Literal::Number(_) | Literal::Bool(_) | Literal::Null) => {
                    args.push(l)
                }
                _ => {
                    return Err(self.c.unsupported_span(
                        "method argument other than a constant",
                        at,
                        self.c.index(),
                    ))
                }
            }
            self.c.skip_trivia(true)?;
            match self.c.peek() {
                Some(',') => {
                    self.c.bump();
                }
                Some(')') => break,
                None => return Err(self.c.unterminated("method argument list", open)),
                Some(c) => return Err(self.after_operand(c)),
            }
        }
        self.c.bump();
        Ok(args)
    }

    /// The `)` of a parenthesized expression opened at byte `open`.
    pub(crate) fn close_paren(&mut self, open: usize, open_index: usize) -> Result<(), PwshError> {
        self.c.skip_trivia(true)?;
        match self.c.peek() {
            Some(')') => {
                self.c.bump();
                Ok(())
            }
            None => Err(self.c.unterminated("parenthesized expression", open)),
            Some('|') if self.c.peek_at(1) != Some('|') => {
                Err(self.c.unsupported_at(Construct::Parenthesized, open_index))
            }
            Some(c) => Err(self.after_operand(c)),
        }
    }

    /// `( ... )` in an argument or constant: a date value, with its members. The
    /// cursor is on the `(`.
    pub(crate) fn paren_value(&mut self, depth: usize) -> Result<ValueExpr, PwshError> {
        if depth > MAX_DEPTH {
            return Err(self.c.unsupported(Construct::Nesting));
        }
        let open_index = self.c.index();
        let open = self.c.offset();
        self.c.bump();
        self.c.skip_trivia(true)?;
        let mut v = match self.c.peek() {
            Some('[') => self.type_value(depth + 1)?,
            Some('(') => self.paren_value(depth + 1)?,
            Some(c) if command_start(c) => self.get_date(depth + 1)?,
            None => return Err(self.c.unterminated("parenthesized expression", open)),
            Some(_) => return Err(self.c.unsupported_at(Construct::Parenthesized, open_index)),
        };
        self.close_paren(open, open_index)?;
        self.value_members(&mut v, depth)?;
        Ok(v)
    }

    /// `Get-Date` and its arguments inside parentheses; any other command is an error.
    pub(crate) fn get_date(&mut self, depth: usize) -> Result<ValueExpr, PwshError> {
        let start = self.c.index();
        let word = self.peek_bare_word().unwrap_or_default();
        if is_keyword(&word) {
            return Err(self
                .c
                .unsupported(Construct::Keyword(word.to_ascii_lowercase())));
        }
        let name = self.take_bare_word()?;
        if !is_get_date(&name) {
            return Err(self
                .c
                .unsupported_span(Construct::Command, start, self.c.index()));
        }
        let args = self.arguments(true, depth)?;
        Ok(ValueExpr {
            base: ValueBase::GetDate(Command { name, args }),
            members: Vec::new(),
        })
    }

    /// `[datetime]::Now` (or `::Today`, `::UtcNow`) and its members; the cursor is on
    /// the `[`. Every other type literal, cast or static member is an error.
    pub(crate) fn type_value(&mut self, depth: usize) -> Result<ValueExpr, PwshError> {
        let start = self.c.index();
        self.c.bump();
        let mut name = String::new();
        while let Some(ch) = self.c.peek() {
            if !(ch.is_alphanumeric() || ch == '.' || ch == '_') {
                break;
            }
            name.push(ch);
            self.c.bump();
        }
        let closed = self.c.peek() == Some(']');
        let date = closed
            && (name.eq_ignore_ascii_case("datetime")
                || name.eq_ignore_ascii_case("System.DateTime"));
        if !date {
            return Err(self.c.unsupported_at(Construct::TypeLiteral, start));
        }
        self.c.bump();
        if !(self.c.peek() == Some(':') && self.c.peek_at(1) == Some(':')) {
            return Err(self.c.unsupported_at(Construct::TypeLiteral, start));
        }
        self.c.bump();
        self.c.bump();
        let mut member = String::new();
        while let Some(ch) = self.c.peek() {
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            member.push(ch);
            self.c.bump();
        }
        let called = matches!(self.c.peek(), Some('(' | '{'));
        let Some(member) = listed(DATE_STATICS, &member).filter(|_| !called) else {
            let end = self.c.index();
            return Err(self.c.unsupported_span(Construct::StaticMember, start, end));
        };
        let mut v = ValueExpr {
            base: ValueBase::DateTime(member),
            members: Vec::new(),
        };
        self.value_members(&mut v, depth)?;
        Ok(v)
    }

    /// A constant in expression mode with nothing glued after it (no member access or
    /// indexing): for array items, hashtable values and method arguments.
    pub(crate) fn constant(&mut self, depth: usize) -> Result<Literal, PwshError> {
        let value = match self.c.peek() {
            Some('$') => {
                let start = self.c.index();
                match self.block_variable()? {
                    SafeExpr::Literal(l) => l,
                    _ => return Err(self.c.unsupported_at(Construct::Variable, start)),
                }
            }
            Some(c) if command_start(c) => {
                let word = self.peek_bare_word().unwrap_or_default();
                if is_keyword(&word) {
                    return Err(self
                        .c
                        .unsupported(Construct::Keyword(word.to_ascii_lowercase())));
                }
                return Err(self.c.unsupported(Construct::Command));
            }
            Some('[') => Literal::Expr(self.type_value(depth)?),
            _ => self.item(depth)?,
        };
        match self.c.peek() {
            Some('.') if !matches!(value, Literal::Expr(_)) => {
                Err(self.c.unsupported(Construct::MemberAccess))
            }
            Some('[') => Err(self.c.unsupported(Construct::Index)),
            _ => Ok(value),
        }
    }

    /// A string, number, `@( )`, `@{ }`, `{ }` or `( )` value in expression mode.
    pub(crate) fn item(&mut self, depth: usize) -> Result<Literal, PwshError> {
        if depth > MAX_DEPTH {
            return Err(self.c.unsupported(Construct::Nesting));
        }
        let Some(c) = self.c.peek() else {
            return Err(self.c.unsupported("missing value"));
        };
        let next = self.c.peek_at(1);
        Ok(match c {
            q if is_single_quote(q) => Literal::Str(self.c.read_single_quoted()?),
            q if is_double_quote(q) => Literal::Str(self.c.read_double_quoted()?),
            '@' if next.is_some_and(|q| is_single_quote(q) || is_double_quote(q)) => {
                Literal::Str(self.c.read_here_string()?)
            }
            '@' if next == Some('(') => self.array_literal(depth)?,
            '@' if next == Some('{') => self.hashtable(depth)?,
            '{' => Literal::ScriptBlock(self.script_block(depth)?),
            '(' => Literal::Expr(self.paren_value(depth)?),
            c if c.is_ascii_digit()
                || (is_dash(c) && next.is_some_and(|n| n.is_ascii_digit() || n == '.'))
                || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                Literal::Number(self.number()?)
            }
            '$' => return Err(self.c.unsupported(Construct::Variable)),
            c => return Err(self.unexpected(c)),
        })
    }

    /// A number token in expression mode (`2`, `-1`, `1.5e3`, `0x1F`, `1kb`).
    fn number(&mut self) -> Result<String, PwshError> {
        let start = self.c.index();
        let mut word = String::new();
        let mut prev = ' ';
        while let Some(ch) = self.c.peek() {
            let sign = (is_dash(ch) || ch == '+')
                && (word.is_empty() || (matches!(prev, 'e' | 'E') && !word.contains(['x', 'X'])));
            let dot = ch == '.' && self.c.peek_at(1) != Some('.');
            if !(ch.is_ascii_alphanumeric() || dot || sign) {
                break;
            }
            word.push(ch);
            prev = ch;
            self.c.bump();
        }
        if is_number(&word) {
            Ok(word)
        } else {
            Err(self
                .c
                .unsupported_span("malformed number", start, self.c.index()))
        }
    }

    /// `@( ... )` of constants in expression mode; the cursor is on the `@`.
    pub(crate) fn array_literal(&mut self, depth: usize) -> Result<Literal, PwshError> {
        let open = self.c.offset();
        self.c.bump();
        self.c.bump();
        let mut items = Vec::new();
        loop {
            self.c.skip_trivia(true)?;
            match self.c.peek() {
                Some(')') => {
                    self.c.bump();
                    return Ok(Literal::List(items));
                }
                None => return Err(self.c.unterminated("array literal", open)),
                _ => {}
            }
            if items.len() >= MAX_CHAIN * 16 {
                return Err(self.c.unsupported(Construct::Nesting));
            }
            items.push(self.constant(depth + 1)?);
            self.c.skip_trivia(false)?;
            match self.c.peek() {
                Some(',' | ';') => {
                    self.c.bump();
                }
                Some(')') => {}
                None => return Err(self.c.unterminated("array literal", open)),
                Some(c) if is_newline(c) => {}
                Some(c) => return Err(self.after_operand(c)),
            }
        }
    }

    /// `@{ key = value; ... }`; the cursor is on the `@`.
    pub(crate) fn hashtable(&mut self, depth: usize) -> Result<Literal, PwshError> {
        let open = self.c.offset();
        self.c.bump();
        self.c.bump();
        let mut entries = Vec::new();
        loop {
            loop {
                self.c.skip_trivia(true)?;
                if self.c.peek() != Some(';') {
                    break;
                }
                self.c.bump();
            }
            match self.c.peek() {
                Some('}') => {
                    self.c.bump();
                    return Ok(Literal::Hashtable(entries));
                }
                None => return Err(self.c.unterminated("hashtable literal", open)),
                _ => {}
            }
            if entries.len() >= MAX_CHAIN * 16 {
                return Err(self.c.unsupported(Construct::Nesting));
            }
            let key = self.hashtable_key()?;
            self.c.skip_trivia(false)?;
            if self.c.peek() != Some('=') {
                return Err(self.c.unsupported("missing '=' after a hashtable key"));
            }
            self.c.bump();
            self.c.skip_trivia(true)?;
            let first = self.constant(depth + 1)?;
            self.c.skip_trivia(false)?;
            let value = if self.c.peek() == Some(',') {
                let mut items = vec![first];
                while self.c.peek() == Some(',') {
                    if items.len() >= MAX_CHAIN * 16 {
                        return Err(self.c.unsupported(Construct::Nesting));
                    }
                    self.c.bump();
                    self.c.skip_trivia(true)?;
                    items.push(self.constant(depth + 1)?);
                    self.c.skip_trivia(false)?;
                }
                Literal::List(items)
            } else {
                first
            };
            entries.push((key, value));
            match self.c.peek() {
                Some(';' | '}') => {}
                None => return Err(self.c.unterminated("hashtable literal", open)),
                Some(c) if is_newline(c) => {}
                Some(c) => return Err(self.after_operand(c)),
            }
        }
    }

    /// A hashtable key: an identifier, a constant string or a number.
    fn hashtable_key(&mut self) -> Result<String, PwshError> {
        match self.c.peek() {
            Some(q) if is_single_quote(q) => return self.c.read_single_quoted(),
            Some(q) if is_double_quote(q) => return self.c.read_double_quoted(),
            Some('$') => return Err(self.unexpected('$')),
            Some('(') => return Err(self.c.unsupported(Construct::Parenthesized)),
            _ => {}
        }
        let mut key = String::new();
        while let Some(ch) = self.c.peek() {
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            key.push(ch);
            self.c.bump();
        }
        if key.is_empty() {
            return Err(self.c.unsupported("hashtable key"));
        }
        Ok(key)
    }
}
