//! Parser for the safe PowerShell subset: statements (`;`, newlines) of pipelines (`|`)
//! of commands with parameters and literal arguments, plus `exit [n | $LASTEXITCODE]`.
//!
//! Everything outside the subset (variables other than `$true`/`$false`/`$null`,
//! subexpressions, script blocks, `&` and `.` invocation, member access, redirection,
//! type literals, keywords, operators, splatting, hashtables) is an error naming the
//! construct, so a caller can never mistake an unanalysed script for a harmless one.
//! This module does not resolve aliases or decide anything.

use super::lex::{
    is_ambiguous_space, is_blank, is_dash, is_double_quote, is_newline, is_single_quote, Cursor,
};
use super::PwshError;

/// Nesting limit for `@( … )` array literals.
const MAX_DEPTH: usize = 32;

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

struct Parser<'a> {
    c: Cursor<'a>,
}

/// Characters that end a generic (bare word) token.
fn ends_word(c: char) -> bool {
    is_blank(c)
        || is_newline(c)
        || matches!(c, ';' | '|' | '&' | '(' | ')' | '{' | '}' | ',' | '<' | '>')
}

fn is_number(word: &str) -> bool {
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
    fn unexpected(&self, c: char) -> PwshError {
        let next = self.c.peek_at(1);
        let what = match c {
            '$' if next == Some('(') => "subexpression ($(...))",
            '$' => "variable",
            '@' if next == Some('(') => "array subexpression with non-literal content",
            '@' if next == Some('{') => "hashtable literal",
            '@' => "splatting",
            '&' => "call operator (&) or pipeline chain (&&)",
            '.' => "dot-source operator (.)",
            '{' | '}' => "script block",
            '(' | ')' => "parenthesized expression",
            '[' | ']' => "type literal or index expression",
            '>' | '<' => "redirection",
            '|' => "empty pipeline element or pipeline chain (||)",
            ',' => "unary comma (array) operator",
            '=' => "assignment",
            '+' | '*' | '/' | '%' | '!' => "operator",
            _ if is_dash(c) => "operator",
            _ => "unexpected character",
        };
        self.c.unsupported(what)
    }

    fn statement(&mut self) -> Result<Statement, PwshError> {
        let start = self.c.index();
        if let Some(word) = self.peek_bare_word() {
            if word.eq_ignore_ascii_case("exit") {
                self.take_bare_word()?;
                return self.exit();
            }
            if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&word)) {
                return Err(self
                    .c
                    .unsupported(format!("keyword '{}'", word.to_ascii_lowercase())));
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
                return Err(self.c.unsupported("pipeline chain (||)"));
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
                let word = self.variable_name();
                if word.eq_ignore_ascii_case("lastexitcode") {
                    Ok(Statement::Exit(ExitCode::LastExitCode))
                } else {
                    Err(self.c.unsupported("variable"))
                }
            }
            Some(_) => {
                let word = self.take_bare_word()?;
                if is_number(&word) {
                    Ok(Statement::Exit(ExitCode::Number(word)))
                } else {
                    Err(self.c.unsupported("expression after exit"))
                }
            }
        }
    }

    /// Reads `$name` (identifier characters only) and returns the name; the cursor is
    /// left after it.
    fn variable_name(&mut self) -> String {
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
        let array = c == '@' && self.c.peek_at(1) == Some('(');
        let number = c.is_ascii_digit();
        if quoted || here || array || number || c == '$' {
            if !first {
                return Err(self
                    .c
                    .unsupported("expression after the first pipeline element"));
            }
            let value = self.value(0)?;
            self.expect_value_end()?;
            return Ok(Element::Value(value));
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
            return Err(self.c.unsupported("dot-source operator (.)"));
        }
        // A command name starts like an identifier, a path, or one of the `%` / `?`
        // aliases; anything else (`!`, `+`, `=`, ...) starts an expression.
        let name_start = c.is_alphanumeric() || matches!(c, '_' | '.' | '\\' | '%' | '?');
        if !name_start || ends_word(c) {
            return Err(self.unexpected(c));
        }
        let name = self.take_bare_word()?;
        if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&name))
            || name.eq_ignore_ascii_case("exit")
        {
            return Err(self
                .c
                .unsupported(format!("keyword '{}'", name.to_ascii_lowercase())));
        }
        let mut args = Vec::new();
        let mut end_of_params = false;
        loop {
            self.c.skip_trivia(false)?;
            let Some(c) = self.c.peek() else { break };
            if is_newline(c) || c == ';' || c == '|' {
                break;
            }
            if !end_of_params && is_dash(c) {
                if let Some(arg) = self.parameter()? {
                    if arg == Arg::EndOfParams {
                        end_of_params = true;
                    }
                    args.push(arg);
                    continue;
                }
            }
            let value = self.value(0)?;
            args.push(Arg::Value(value));
        }
        Ok(Element::Command(Command { name, args }))
    }

    /// After a literal expression only a pipe or a statement end may follow.
    fn expect_value_end(&mut self) -> Result<(), PwshError> {
        self.c.skip_trivia(false)?;
        match self.c.peek() {
            None | Some(';') | Some('|') => Ok(()),
            Some(c) if is_newline(c) => Ok(()),
            Some(_) => Err(self.c.unsupported("expression")),
        }
    }

    /// Parses a dash token in argument position. Returns `None` when the token is not a
    /// parameter (a negative number or a lone dash), leaving the cursor unchanged.
    fn parameter(&mut self) -> Result<Option<Arg>, PwshError> {
        let next = self.c.peek_at(1);
        if next.is_some_and(is_dash) {
            let after = self.c.peek_at(2);
            if after == Some('%') {
                return Err(self.c.unsupported("stop-parsing token (--%)"));
            }
            if after.is_none_or(ends_word) {
                self.c.bump();
                self.c.bump();
                return Ok(Some(Arg::EndOfParams));
            }
            return Err(self.c.unsupported("operator or malformed parameter"));
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
                Some(_) => Some(self.value(0)?),
            }
        } else {
            None
        };
        Ok(Some(Arg::Param { name, value }))
    }

    /// A literal value, possibly a comma list.
    fn value(&mut self, depth: usize) -> Result<Literal, PwshError> {
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
            return Err(self.c.unsupported("array literal nested too deeply"));
        }
        let Some(c) = self.c.peek() else {
            return Err(self.c.unsupported("missing value"));
        };
        let value = if is_single_quote(c) {
            Literal::Str(self.c.read_single_quoted()?)
        } else if is_double_quote(c) {
            Literal::Str(self.c.read_double_quoted()?)
        } else if c == '@'
            && self
                .c
                .peek_at(1)
                .is_some_and(|q| is_single_quote(q) || is_double_quote(q))
        {
            Literal::Str(self.c.read_here_string()?)
        } else if c == '@' && self.c.peek_at(1) == Some('(') {
            return self.array_literal(depth);
        } else if c == '$' {
            if !self.c.peek_at(1).is_some_and(char::is_alphabetic) {
                return Err(self.unexpected('$'));
            }
            let name = self.variable_name();
            match name.to_ascii_lowercase().as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "null" => Literal::Null,
                _ => return Err(self.unexpected('$')),
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
        // A value glued to a following token (`'a'b`, `"x"$y`) is a concatenation.
        if self.c.peek().is_some_and(|n| !ends_word(n)) {
            return Err(self.c.unsupported("concatenated argument"));
        }
        Ok(value)
    }

    fn array_literal(&mut self, depth: usize) -> Result<Literal, PwshError> {
        self.c.bump();
        self.c.bump();
        let mut items = Vec::new();
        loop {
            self.c.skip_trivia(true)?;
            match self.c.peek() {
                Some(')') => {
                    self.c.bump();
                    break;
                }
                Some(',') | Some(';') if !items.is_empty() => {
                    self.c.bump();
                }
                None => {
                    return Err(PwshError::Unterminated {
                        what: "array literal",
                        offset: self.c.offset(),
                    })
                }
                Some(_) => match self.value(depth + 1)? {
                    Literal::List(inner) => items.extend(inner),
                    other => items.push(other),
                },
            }
        }
        if self.c.peek().is_some_and(|n| !ends_word(n)) {
            return Err(self.c.unsupported("member access or index on an array"));
        }
        Ok(Literal::List(items))
    }

    fn peek_bare_word(&self) -> Option<String> {
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
    fn take_bare_word(&mut self) -> Result<String, PwshError> {
        let start = self.c.index();
        let mut word = String::new();
        while let Some(ch) = self.c.peek() {
            if ends_word(ch) {
                break;
            }
            if ch == '$' {
                return Err(self.c.unsupported("variable in a bare word"));
            }
            if ch == '`' {
                return Err(self.c.unsupported("escape character (`) in a bare word"));
            }
            if is_single_quote(ch) || is_double_quote(ch) {
                return Err(self.c.unsupported("quoted text glued to a bare word"));
            }
            if (ch == ':' && self.c.peek_at(1) == Some(':')) || (ch == '.' && word.ends_with(']')) {
                return Err(self.c.unsupported("static member access (::)"));
            }
            if (ch.is_control() && !is_blank(ch)) || is_ambiguous_space(ch) {
                return Err(self.c.unsupported(format!(
                    "control or invisible character U+{:04X}",
                    u32::from(ch)
                )));
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
