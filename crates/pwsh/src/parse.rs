//! Parser for the safe PowerShell subset: statements (`;`, newlines) of pipelines (`|`)
//! of commands with parameters and literal arguments, plus `exit [n | $LASTEXITCODE]`.
//! Argument values may also be the bounded expressions of `expr.rs`: hashtable literals,
//! safe script blocks and pure date expressions.
//!
//! Everything outside the subset (variables other than `$true`/`$false`/`$null`,
//! subexpressions, other script blocks, `&` and `.` invocation, member access,
//! redirection, type literals, keywords, operators, splatting) is an error naming the
//! construct and where it is, so a caller can never mistake an unanalysed script for a
//! harmless one. This module does not resolve aliases or decide anything.

use crate::prelude::*;

use super::expr::{SafeBlock, ValueExpr};
use super::lex::{
    is_ambiguous_space, is_blank, is_dash, is_double_quote, is_newline, is_single_quote, Cursor,
};
use super::{Construct, PwshError};

/// Nesting limit for arrays, hashtables, script blocks, parentheses and the arguments
/// of `(Get-Date ...)`, together: every recursive step of the parser counts one.
pub(crate) const MAX_DEPTH: usize = 32;

/// A parsed script in the safe subset.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Statements in order.
    pub statements: Vec<Statement>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// A pipeline of one or more elements.
    Pipeline(Vec<Element>),
    /// `exit`, `exit <number>` or `exit $LASTEXITCODE`.
    Exit(ExitCode),
}

/// The operand of `exit`.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitCode {
    /// Bare `exit`.
    None,
    /// A number literal, as written.
    Number(String),
    /// `$LASTEXITCODE` (the form Ansible's psrp connection appends).
    LastExitCode,
}

/// A pipeline element.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    /// A command invocation.
    Command(Command),
    /// A literal value as the first element (`'a','b' | Write-Output`).
    Value(Literal),
}

/// A command with its arguments as written (no parameter binding is done here).
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The command name as written (alias, module-qualified name or path).
    pub name: String,
    /// Arguments in order.
    pub args: Vec<Arg>,
}

/// One argument token.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `-Name` (value `None`) or `-Name:value`. The name has no dash; Unicode dashes
    /// count as dashes.
    Param {
        /// Parameter name as written, without the dash.
        name: String,
        /// The value given with the colon form.
        value: Option<Literal>,
    },
    /// A value not attached to a parameter token.
    Value(Literal),
    /// `--`: later dash tokens are values.
    EndOfParams,
}

/// A constant value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A bare word or quoted string.
    Str(String),
    /// A number, as written.
    Number(String),
    /// `$true` / `$false`.
    Bool(bool),
    /// `$null`.
    Null,
    /// `a, b, c` or `@(a, b)`.
    List(Vec<Literal>),
    /// `@{ key = value; ... }`: constant keys, values of this type, in written order.
    Hashtable(Vec<(String, Literal)>),
    /// `{ ... }` whose body is in the safe expression subset (see [`SafeBlock`]).
    ScriptBlock(SafeBlock),
    /// A pure value expression such as `(Get-Date).AddDays(-1)` (see [`ValueExpr`]).
    Expr(ValueExpr),
}

// === impl Literal ===

impl Literal {
    /// The commands evaluating this value runs (the `Get-Date` of `(Get-Date)`), in
    /// written order. Commands inside those commands' own arguments are not included:
    /// they are found the same way from the arguments.
    pub fn commands(&self) -> Vec<&Command> {
        let mut out = Vec::new();
        self.collect_commands(&mut out);
        out
    }

    // INVARIANT: the parser bounds nesting by MAX_DEPTH, so this recursion is bounded.
    pub(crate) fn collect_commands<'a>(&'a self, out: &mut Vec<&'a Command>) {
        match self {
            Literal::Str(_) | Literal::Number(_) | Literal::Bool(_) | Literal::Null => {}
            Literal::List(items) => items.iter().for_each(|i| i.collect_commands(out)),
            Literal::Hashtable(entries) => {
                entries.iter().for_each(|(_, v)| v.collect_commands(out))
            }
            Literal::ScriptBlock(block) => block.collect_commands(out),
            Literal::Expr(e) => out.extend(e.command()),
        }
    }
}

/// True for a keyword that starts a language construct outside the subset.
pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Keywords that start language constructs outside the subset.
const KEYWORDS: &[&str] = &[
    "begin",
    "break",
    "catch",
    "class",
    "configuration",
    "continue",
    "data",
    "define",
    "do",
    "dynamicparam",
    "else",
    "elseif",
    "end",
    "enum",
    "filter",
    "finally",
    "for",
    "foreach",
    "from",
    "function",
    "hidden",
    "if",
    "in",
    "inlinescript",
    "parallel",
    "param",
    "process",
    "return",
    "sequence",
    "static",
    "switch",
    "throw",
    "trap",
    "try",
    "until",
    "using",
    "var",
    "while",
    "workflow",
];

/// Parses `text` as a script in the safe subset.
pub fn parse_script(text: &str) -> Result<Script, PwshError> {
    let mut p = Parser {
        c: Cursor::new(text),
    };
    p.script()
}

pub(crate) struct Parser<'a> {
    pub(crate) c: Cursor<'a>,
}

/// Characters that end a generic (bare word) token.
pub(crate) fn ends_word(c: char) -> bool {
    is_blank(c)
        || is_newline(c)
        || matches!(c, ';' | '|' | '&' | '(' | ')' | '{' | '}' | ',' | '<' | '>')
}

pub(crate) fn is_number(word: &str) -> bool {
    let w = word.strip_prefix(is_dash).unwrap_or(word);
    let lower = w.to_ascii_lowercase();
    let body = ["kb", "mb", "gb", "tb", "pb"]
        .iter()
        .find_map(|s| lower.strip_suffix(s))
        .unwrap_or(&lower);
    let body = body.strip_suffix(['l', 'd']).unwrap_or(body);
    if let Some(hex) = body.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    let mut digits = 0;
    let mut seen_dot = false;
    let mut seen_exp = false;
    let mut prev = ' ';
    for ch in body.chars() {
        match ch {
            '0'..='9' => digits += 1,
            '.' if !seen_dot && !seen_exp => seen_dot = true,
            'e' if digits > 0 && !seen_exp => seen_exp = true,
            '+' | '-' if prev == 'e' => {}
            _ => return false,
        }
        prev = ch;
    }
    digits > 0 && prev != 'e'
}

// === impl Parser ===

impl Parser<'_> {
    fn script(&mut self) -> Result<Script, PwshError> {
        let mut statements = Vec::new();
        loop {
            self.skip_separators()?;
            if self.c.eof() {
                return Ok(Script { statements });
            }
            statements.push(self.statement()?);
            self.c.skip_trivia(false)?;
            match self.c.peek() {
                None => {}
                Some(';') => {}
                Some(c) if is_newline(c) => {}
                Some(c) => return Err(self.unexpected(c)),
            }
        }
    }

    fn skip_separators(&mut self) -> Result<(), PwshError> {
        loop {
            self.c.skip_trivia(true)?;
            if self.c.peek() == Some(';') {
                self.c.bump();
            } else {
                return Ok(());
            }
        }
    }

    /// Names the construct that starts with `c` at the current position.
    pub(crate) fn unexpected(&self, c: char) -> PwshError {
        let next = self.c.peek_at(1);
        let what = match c {
            '$' if next == Some('(') => Construct::Subexpression,
            '$' => Construct::Variable,
            '@' if next == Some('(') => "array subexpression".into(),
            '@' if next == Some('{') => "hashtable literal".into(),
            '@' => Construct::Splatting,
            '&' if next == Some('&') => Construct::PipelineChain,
            '&' => Construct::CallOperator,
            '.' => Construct::DotSource,
            '{' => Construct::ScriptBlock,
            '}' => "unmatched '}'".into(),
            '(' => Construct::Parenthesized,
            ')' => "unmatched ')'".into(),
            '[' => Construct::TypeLiteral,
            ']' => "unmatched ']'".into(),
            '>' | '<' => Construct::Redirection,
            '|' if next == Some('|') => Construct::PipelineChain,
            '|' => "empty pipeline element".into(),
            ',' => "unary comma (array) operator".into(),
            '=' => Construct::Assignment,
            '+' | '*' | '/' | '%' | '!' => Construct::Operator,
            '`' => Construct::Escape,
            _ if is_dash(c) => Construct::Operator,
            _ if c.is_control() || is_ambiguous_space(c) => Construct::Character(c),
            _ => "unexpected character".into(),
        };
        if what == Construct::PipelineChain {
            let at = self.c.index();
            return self.c.unsupported_span(what, at, at + 2);
        }
        self.c.unsupported(what)
    }

    fn statement(&mut self) -> Result<Statement, PwshError> {
        let start = self.c.index();
        if let Some(word) = self.peek_bare_word() {
            if word.eq_ignore_ascii_case("exit") {
                self.take_bare_word()?;
                return self.exit();
            }
            if is_keyword(&word) {
                return Err(self
                    .c
                    .unsupported(Construct::Keyword(word.to_ascii_lowercase())));
            }
        }
        let mut elements = vec![self.element(true)?];
        loop {
            self.c.skip_trivia(false)?;
            if self.c.peek() != Some('|') {
                break;
            }
            self.c.bump();
            if self.c.peek() == Some('|') {
                let at = self.c.index() - 1;
                return Err(self
                    .c
                    .unsupported_span(Construct::PipelineChain, at, at + 2));
            }
            self.c.skip_trivia(true)?;
            elements.push(self.element(false)?);
        }
        debug_assert!(self.c.index() > start);
        Ok(Statement::Pipeline(elements))
    }

    fn exit(&mut self) -> Result<Statement, PwshError> {
        self.c.skip_trivia(false)?;
        match self.c.peek() {
            None | Some(';') => Ok(Statement::Exit(ExitCode::None)),
            Some(c) if is_newline(c) => Ok(Statement::Exit(ExitCode::None)),
            Some('$') => {
                let start = self.c.index();
                let word = self.variable_name();
                if word.eq_ignore_ascii_case("lastexitcode") {
                    Ok(Statement::Exit(ExitCode::LastExitCode))
                } else {
                    Err(self.c.unsupported_at(Construct::Variable, start))
                }
            }
            Some(_) => {
                let start = self.c.index();
                let word = self.take_bare_word()?;
                if is_number(&word) {
                    Ok(Statement::Exit(ExitCode::Number(word)))
                } else {
                    Err(self.c.unsupported_at("expression after exit", start))
                }
            }
        }
    }

    /// Reads `$name` and returns the name; the cursor is left after it. A name with
    /// characters beyond identifier ones (`$env:x`, `$a?`) or that does not end at a
    /// token boundary is returned empty (so it matches no allowed variable) and the
    /// cursor is not moved.
    pub(crate) fn variable_name(&mut self) -> String {
        let mut probe = 1;
        let mut name = String::new();
        while let Some(ch) = self.c.peek_at(probe) {
            if ch.is_alphanumeric() || ch == '_' {
                name.push(ch);
                probe += 1;
            } else {
                break;
            }
        }
        // Only consume when the variable ends at a token boundary.
        if self.c.peek_at(probe).is_none_or(ends_word) {
            for _ in 0..probe {
                self.c.bump();
            }
            name
        } else {
            String::new()
        }
    }

    fn element(&mut self, first: bool) -> Result<Element, PwshError> {
        let Some(c) = self.c.peek() else {
            return Err(self.c.unsupported("empty pipeline element"));
        };
        let quoted = is_single_quote(c) || is_double_quote(c);
        let here = c == '@'
            && self
                .c
                .peek_at(1)
                .is_some_and(|q| is_single_quote(q) || is_double_quote(q));
        let array = c == '@' && matches!(self.c.peek_at(1), Some('(' | '{'));
        let number = c.is_ascii_digit();
        if quoted || here || array || number || c == '$' || c == '(' {
            if !first {
                return Err(self
                    .c
                    .unsupported("expression after the first pipeline element"));
            }
            let value = self.value(0)?;
            self.expect_value_end()?;
            return Ok(Element::Value(value));
        }
        // `& name args` / `& 'C:\path\prog.exe' args`: the call operator with a literal
        // command name runs that command, so it is the command. A script block, a
        // variable or an expression after `&` stays outside the subset.
        if c == '&' && self.c.peek_at(1) != Some('&') {
            let at = self.c.index();
            self.c.bump();
            self.c.skip_trivia(false)?;
            let name = match self.c.peek() {
                Some(q) if is_single_quote(q) || is_double_quote(q) => match self.value(0)? {
                    Literal::Str(name) => name,
                    _ => return Err(self.c.unsupported_at(Construct::CallOperator, at)),
                },
                Some(n)
                    if (n.is_alphanumeric() || matches!(n, '_' | '.' | '\\')) && !ends_word(n) =>
                {
                    self.take_bare_word()?
                }
                _ => return Err(self.c.unsupported_at(Construct::CallOperator, at)),
            };
            if name.trim().is_empty() {
                return Err(self.c.unsupported_at(Construct::CallOperator, at));
            }
            let args = self.arguments(false, 0)?;
            return Ok(Element::Command(Command { name, args }));
        }
        if c == '.'
            && self.c.peek_at(1).is_none_or(|n| {
                is_blank(n)
                    || n == '('
                    || n == '$'
                    || n == '{'
                    || n == '&'
                    || is_single_quote(n)
                    || is_double_quote(n)
            })
        {
            return Err(self.c.unsupported(Construct::DotSource));
        }
        // A command name starts like an identifier, a path, or one of the `%` / `?`
        // aliases; anything else (`!`, `+`, `=`, ...) starts an expression.
        let name_start = c.is_alphanumeric() || matches!(c, '_' | '.' | '\\' | '%' | '?');
        if !name_start || ends_word(c) {
            return Err(self.unexpected(c));
        }
        let start = self.c.index();
        let name = self.take_bare_word()?;
        if is_keyword(&name) || name.eq_ignore_ascii_case("exit") {
            return Err(self
                .c
                .unsupported_at(Construct::Keyword(name.to_ascii_lowercase()), start));
        }
        let args = self.arguments(false, 0)?;
        Ok(Element::Command(Command { name, args }))
    }

    /// A command's arguments, up to the end of the pipeline element (a newline, `;`,
    /// `|` or the end; with `in_parens` also `)`). `depth` is the nesting so far.
    pub(crate) fn arguments(
        &mut self,
        in_parens: bool,
        depth: usize,
    ) -> Result<Vec<Arg>, PwshError> {
        let mut args = Vec::new();
        let mut end_of_params = false;
        loop {
            self.c.skip_trivia(false)?;
            let Some(c) = self.c.peek() else { break };
            if is_newline(c) || c == ';' || c == '|' || (in_parens && c == ')') {
                break;
            }
            if !end_of_params && is_dash(c) {
                if let Some(arg) = self.parameter(depth)? {
                    if arg == Arg::EndOfParams {
                        end_of_params = true;
                    }
                    args.push(arg);
                    continue;
                }
            }
            let value = self.value(depth)?;
            args.push(Arg::Value(value));
        }
        Ok(args)
    }

    /// After a literal expression only a pipe or a statement end may follow.
    fn expect_value_end(&mut self) -> Result<(), PwshError> {
        self.c.skip_trivia(false)?;
        match self.c.peek() {
            None | Some(';') | Some('|') => Ok(()),
            Some(c) if is_newline(c) => Ok(()),
            Some(_) => Err(self.c.unsupported("expression after a value")),
        }
    }

    /// Parses a dash token in argument position. Returns `None` when the token is not a
    /// parameter (a negative number or a lone dash), leaving the cursor unchanged.
    fn parameter(&mut self, depth: usize) -> Result<Option<Arg>, PwshError> {
        let next = self.c.peek_at(1);
        if next.is_some_and(is_dash) {
            let after = self.c.peek_at(2);
            if after == Some('%') {
                let at = self.c.index();
                return Err(self.c.unsupported_span(Construct::StopParsing, at, at + 3));
            }
            if after.is_none_or(ends_word) {
                self.c.bump();
                self.c.bump();
                return Ok(Some(Arg::EndOfParams));
            }
            return Err(self.c.unsupported(Construct::Operator));
        }
        if !next.is_some_and(|n| n.is_alphabetic() || n == '_' || n == '?') {
            return Ok(None);
        }
        self.c.bump();
        let mut name = String::new();
        let mut colon = false;
        while let Some(ch) = self.c.peek() {
            if ends_word(ch) {
                break;
            }
            if ch == ':' {
                self.c.bump();
                colon = true;
                break;
            }
            if ch == '$'
                || ch == '`'
                || ch == '.'
                || ch == '['
                || is_single_quote(ch)
                || is_double_quote(ch)
            {
                return Err(self.c.unsupported("expression in a parameter name"));
            }
            name.push(ch);
            self.c.bump();
        }
        let value = if colon {
            self.c.skip_trivia(false)?;
            match self.c.peek() {
                None | Some(';') | Some('|') => {
                    return Err(self.c.unsupported("missing value after a parameter colon"))
                }
                Some(c) if is_newline(c) => {
                    return Err(self.c.unsupported("missing value after a parameter colon"))
                }
                Some(_) => Some(self.value(depth)?),
            }
        } else {
            None
        };
        Ok(Some(Arg::Param { name, value }))
    }

    /// A literal value, possibly a comma list.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Literal, PwshError> {
        let first = self.single_value(depth)?;
        self.c.skip_trivia(false)?;
        if self.c.peek() != Some(',') {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.c.peek() == Some(',') {
            self.c.bump();
            self.c.skip_trivia(true)?;
            items.push(self.single_value(depth)?);
            self.c.skip_trivia(false)?;
        }
        Ok(Literal::List(items))
    }

    fn single_value(&mut self, depth: usize) -> Result<Literal, PwshError> {
        if depth > MAX_DEPTH {
            return Err(self.c.unsupported(Construct::Nesting));
        }
        let Some(c) = self.c.peek() else {
            return Err(self.c.unsupported("missing value"));
        };
        let next = self.c.peek_at(1);
        let value = if is_single_quote(c) {
            Literal::Str(self.c.read_single_quoted()?)
        } else if is_double_quote(c) {
            Literal::Str(self.c.read_double_quoted()?)
        } else if c == '@' && next.is_some_and(|q| is_single_quote(q) || is_double_quote(q)) {
            Literal::Str(self.c.read_here_string()?)
        } else if c == '@' && next == Some('(') {
            self.array_literal(depth)?
        } else if c == '@' && next == Some('{') {
            self.hashtable(depth)?
        } else if c == '{' {
            Literal::ScriptBlock(self.script_block(depth)?)
        } else if c == '(' {
            Literal::Expr(self.paren_value(depth)?)
        } else if c == '$' {
            let start = self.c.index();
            if !next.is_some_and(char::is_alphabetic) {
                return Err(self.unexpected('$'));
            }
            let name = self.variable_name();
            match name.to_ascii_lowercase().as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "null" => Literal::Null,
                _ => return Err(self.c.unsupported_at(Construct::Variable, start)),
            }
        } else if ends_word(c) || c == '@' || c == '[' || c == '`' || c == '=' {
            return Err(self.unexpected(c));
        } else {
            let word = self.take_bare_word()?;
            if is_number(&word) {
                Literal::Number(word)
            } else {
                Literal::Str(word)
            }
        };
        // A value glued to a following token (`'a'b`, `"x"$y`) is a concatenation;
        // `.x` or `[0]` after a value is member access or indexing.
        match self.c.peek() {
            Some('.') => Err(self.c.unsupported(Construct::MemberAccess)),
            Some('[') => Err(self.c.unsupported(Construct::Index)),
            Some(n) if !ends_word(n) && (n.is_control() || is_ambiguous_space(n)) => {
                Err(self.c.unsupported(Construct::Character(n)))
            }
            Some(n) if !ends_word(n) => Err(self.c.unsupported("concatenated argument")),
            _ => Ok(value),
        }
    }

    pub(crate) fn peek_bare_word(&self) -> Option<String> {
        let mut n = 0;
        let mut word = String::new();
        while let Some(ch) = self.c.peek_at(n) {
            if ends_word(ch) {
                break;
            }
            word.push(ch);
            n += 1;
        }
        (!word.is_empty()).then_some(word)
    }

    /// Reads a bare word. Words containing expansion, escapes, quotes or other
    /// non-literal syntax are unsupported.
    pub(crate) fn take_bare_word(&mut self) -> Result<String, PwshError> {
        let start = self.c.index();
        let mut word = String::new();
        while let Some(ch) = self.c.peek() {
            if ends_word(ch) {
                break;
            }
            if ch == '$' {
                return Err(self.c.unsupported(Construct::Variable));
            }
            if ch == '`' {
                return Err(self.c.unsupported(Construct::Escape));
            }
            if is_single_quote(ch) || is_double_quote(ch) {
                return Err(self.c.unsupported("quoted text glued to a bare word"));
            }
            if (ch == ':' && self.c.peek_at(1) == Some(':')) || (ch == '.' && word.ends_with(']')) {
                return Err(self.c.unsupported(Construct::StaticMember));
            }
            if (ch.is_control() && !is_blank(ch)) || is_ambiguous_space(ch) {
                return Err(self.c.unsupported(Construct::Character(ch)));
            }
            word.push(ch);
            self.c.bump();
        }
        if word.is_empty() {
            return Err(self.c.unsupported("missing word"));
        }
        debug_assert_eq!(self.c.slice(start, self.c.index()), word);
        Ok(word)
    }
}
