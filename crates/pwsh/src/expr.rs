//! The bounded expression subset whose effect policy can prove: script blocks whose body
//! only reads `$_` and its properties, compares and combines them with constants
//! ([`SafeBlock`]); hashtable and array literals of constants; and pure date values
//! ([`ValueExpr`]: `(Get-Date ...)` or `[datetime]::Now`, followed by the members in
//! [`DATE_METHODS`] and [`DATE_PROPERTIES`]).
//!
//! Everything else inside these (other variables, method calls, subexpressions,
//! assignments, commands, `&`, `.`, other type literals, expandable strings) is an error
//! naming the construct and where it is. Nothing is evaluated, and the only command an
//! expression can run is the `Get-Date` of a [`ValueBase::GetDate`], which
//! [`Literal::commands`] reports so that policy judges it like any other command.
//!
//! Every recursive step counts against `MAX_DEPTH`; chains of operators and members
//! are loops building flat lists, so the tree depth stays bounded too.

use crate::prelude::*;

use super::lex::{is_dash, is_double_quote, is_newline, is_single_quote, Cursor};
use super::parse::{is_keyword, Command, Literal, Parser, MAX_DEPTH};
use super::{Construct, PwshError};

/// Methods allowed on a date value (`(Get-Date).AddDays(-1)`), with constant
/// arguments. Each returns a date or a string and changes nothing.
pub const DATE_METHODS: &[&str] = &[
    "AddDays",
    "AddHours",
    "AddMinutes",
    "AddSeconds",
    "AddMilliseconds",
    "AddMonths",
    "AddYears",
    "ToLocalTime",
    "ToUniversalTime",
    "ToString",
];

/// Properties of a date value after which [`DATE_METHODS`] may still follow. Any other
/// property may be read too, but then no method call follows it (its type is unknown).
pub const DATE_PROPERTIES: &[&str] = &[
    "Date",
    "Year",
    "Month",
    "Day",
    "Hour",
    "Minute",
    "Second",
    "Millisecond",
    "DayOfWeek",
    "DayOfYear",
];

/// Static properties of `[datetime]` (also written `[System.DateTime]`).
pub const DATE_STATICS: &[&str] = &["Now", "Today", "UtcNow"];

/// Longest chain of operators or members in one expression.
pub(crate) const MAX_CHAIN: usize = 256;

/// A script block whose body is in the safe subset: statements of [`SafeExpr`].
#[derive(Debug, Clone, PartialEq)]
pub struct SafeBlock {
    /// The text between the braces, as written.
    pub text: String,
    /// The statements of the body.
    pub statements: Vec<SafeExpr>,
}

/// An expression that reads and compares but changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum SafeExpr {
    /// `$_` or `$PSItem`.
    Item,
    /// A constant (string without expansion, number, `$true`, `$false`, `$null`, or an
    /// array, hashtable or script block of these).
    Literal(Literal),
    /// `a, b, c`.
    List(Vec<SafeExpr>),
    /// `target.A.B`: property reads, never method calls.
    Properties {
        /// What the properties are read from.
        target: Box<SafeExpr>,
        /// Property names in order.
        names: Vec<String>,
    },
    /// `first op x op y ...`, evaluated left to right: either all comparison operators
    /// or all logical ones (PowerShell gives each group a single precedence level).
    Chain {
        /// The first operand.
        first: Box<SafeExpr>,
        /// The operators and the operands that follow them.
        rest: Vec<(Operator, SafeExpr)>,
    },
    /// `-not x` or `!x`.
    Not(Box<SafeExpr>),
    /// A pure date value.
    Value(ValueExpr),
}

/// A binary operator with its case mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    /// Which operator.
    pub op: BinaryOp,
    /// `-c...` / `-i...` prefix.
    pub case: Case,
}

/// The comparison and logical operators of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "the PowerShell operators of the same names")]
pub enum BinaryOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    NotLike,
    Match,
    NotMatch,
    Contains,
    NotContains,
    In,
    NotIn,
    And,
    Or,
}

/// Case sensitivity of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// No prefix (case-insensitive).
    Default,
    /// `-c` prefix.
    Sensitive,
    /// `-i` prefix.
    Insensitive,
}

/// A pure date value: a base and the members read or called on it.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueExpr {
    /// Where the value comes from.
    pub base: ValueBase,
    /// Members in order.
    pub members: Vec<Member>,
}

/// The start of a [`ValueExpr`].
#[derive(Debug, Clone, PartialEq)]
pub enum ValueBase {
    /// `(Get-Date ...)`: runs `Get-Date` with these arguments.
    GetDate(Command),
    /// `[datetime]::Now`, `::Today` or `::UtcNow` (the name as listed in
    /// [`DATE_STATICS`]).
    DateTime(&'static str),
}

/// `.Name` or `.Name(args)` on a [`ValueExpr`].
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The member name as written.
    pub name: String,
    /// Constant arguments of a method call; `None` for a property.
    pub args: Option<Vec<Literal>>,
}

const OPERATORS: &[(&str, BinaryOp)] = &[
    ("eq", BinaryOp::Eq),
    ("ne", BinaryOp::Ne),
    ("gt", BinaryOp::Gt),
    ("ge", BinaryOp::Ge),
    ("lt", BinaryOp::Lt),
    ("le", BinaryOp::Le),
    ("like", BinaryOp::Like),
    ("notlike", BinaryOp::NotLike),
    ("match", BinaryOp::Match),
    ("notmatch", BinaryOp::NotMatch),
    ("contains", BinaryOp::Contains),
    ("notcontains", BinaryOp::NotContains),
    ("in", BinaryOp::In),
    ("notin", BinaryOp::NotIn),
];

pub(crate) fn listed(list: &[&'static str], name: &str) -> Option<&'static str> {
    list.iter().copied().find(|m| m.eq_ignore_ascii_case(name))
}

/// The operator a dash word (without the dash) names, if it is in the subset.
fn operator(word: &str) -> Option<Operator> {
    let lower = word.to_ascii_lowercase();
    let find = |w: &str| OPERATORS.iter().find(|(n, _)| *n == w).map(|(_, op)| *op);
    let (op, case) = match lower.as_str() {
        "and" => (BinaryOp::And, Case::Default),
        "or" => (BinaryOp::Or, Case::Default),
        w => {
            if let Some(op) = find(w) {
                (op, Case::Default)
            } else if let Some(op) = w.strip_prefix('c').and_then(find) {
                (op, Case::Sensitive)
            } else if let Some(op) = w.strip_prefix('i').and_then(find) {
                (op, Case::Insensitive)
            } else {
                return None;
            }
        }
    };
    Some(Operator { op, case })
}

/// A character that starts a command name (or an alias such as `?` or `%`).
pub(crate) fn command_start(c: char) -> bool {
    c.is_alphabetic() || matches!(c, '_' | '\\' | '?' | '%')
}

/// Parses the text of a script block (without its braces, as PSRP sends it) as a body
/// in the safe subset. Positions are relative to `text`.
pub fn parse_block(text: &str) -> Result<SafeBlock, PwshError> {
    let mut p = Parser {
        c: Cursor::new(text),
    };
    let statements = p.block_body(0, None).map_err(PwshError::within_block)?;
    Ok(SafeBlock {
        text: text.to_string(),
        statements,
    })
}

// === impl SafeBlock ===

impl SafeBlock {
    /// The commands evaluating the block runs (the `Get-Date` of `(Get-Date)`).
    pub fn commands(&self) -> Vec<&Command> {
        let mut out = Vec::new();
        self.collect_commands(&mut out);
        out
    }

    pub(crate) fn collect_commands<'a>(&'a self, out: &mut Vec<&'a Command>) {
        for s in &self.statements {
            s.collect_commands(out);
        }
    }
}

// === impl SafeExpr ===

impl SafeExpr {
    // INVARIANT: the parser bounds nesting by MAX_DEPTH, so this recursion is bounded.
    fn collect_commands<'a>(&'a self, out: &mut Vec<&'a Command>) {
        match self {
            SafeExpr::Item => {}
            SafeExpr::Literal(l) => l.collect_commands(out),
            SafeExpr::List(items) => items.iter().for_each(|i| i.collect_commands(out)),
            SafeExpr::Properties { target, .. } => target.collect_commands(out),
            SafeExpr::Chain { first, rest } => {
                first.collect_commands(out);
                rest.iter().for_each(|(_, e)| e.collect_commands(out));
            }
            SafeExpr::Not(e) => e.collect_commands(out),
            SafeExpr::Value(v) => out.extend(v.command()),
        }
    }
}

// === impl ValueExpr ===

impl ValueExpr {
    /// The command evaluating the value runs, if any.
    pub fn command(&self) -> Option<&Command> {
        match &self.base {
            ValueBase::GetDate(c) => Some(c),
            ValueBase::DateTime(_) => None,
        }
    }

    /// True while every member is a listed date member, so that the value is still a
    /// date, a string or a number and the listed methods are the only ones it can call.
    pub(crate) fn typed(&self) -> bool {
        self.members.iter().all(|m| match m.args {
            Some(_) => listed(DATE_METHODS, &m.name).is_some(),
            None => listed(DATE_PROPERTIES, &m.name).is_some(),
        })
    }
}

// === impl Parser ===

impl Parser<'_> {
    /// `{ ... }`; the cursor is on the `{`.
    pub(crate) fn script_block(&mut self, depth: usize) -> Result<SafeBlock, PwshError> {
        if depth > MAX_DEPTH {
            return Err(self.c.unsupported(Construct::Nesting));
        }
        let open = self.c.offset();
        self.c.bump();
        let body_start = self.c.index();
        let statements = self
            .block_body(depth + 1, Some(open))
            .map_err(PwshError::within_block)?;
        let text = self.c.slice(body_start, self.c.index()).to_string();
        self.c.bump();
        Ok(SafeBlock { text, statements })
    }

    /// Statements of a block body up to its closing brace (`braced` holds the offset
    /// of the opening one; the cursor is left on the closing one) or the end.
    pub(crate) fn block_body(
        &mut self,
        depth: usize,
        braced: Option<usize>,
    ) -> Result<Vec<SafeExpr>, PwshError> {
        let mut out = Vec::new();
        loop {
            loop {
                self.c.skip_trivia(true)?;
                if self.c.peek() != Some(';') {
                    break;
                }
                self.c.bump();
            }
            match (self.c.peek(), braced) {
                (None, Some(open)) => return Err(self.c.unterminated("script block", open)),
                (None, None) => return Ok(out),
                (Some('}'), Some(_)) => return Ok(out),
                _ => {}
            }
            out.push(self.block_statement(depth)?);
            self.c.skip_trivia(false)?;
            match self.c.peek() {
                None | Some(';') => {}
                Some('}') if braced.is_some() => {}
                Some(c) if is_newline(c) => {}
                Some(c) => return Err(self.after_operand(c)),
            }
        }
    }

    /// Names what follows an operand where an operator or the end was expected.
    pub(crate) fn after_operand(&self, c: char) -> PwshError {
        let next = self.c.peek_at(1);
        match c {
            '=' => self.c.unsupported(Construct::Assignment),
            '+' | '*' | '/' | '%' if next == Some('=') || (c == '+' && next == Some('+')) => {
                self.c.unsupported(Construct::Assignment)
            }
            '|' if next == Some('|') => self.c.unsupported(Construct::PipelineChain),
            '|' => self.c.unsupported("pipeline in an expression"),
            c if command_start(c) => self.c.unsupported("unexpected word after a value"),
            c => self.unexpected(c),
        }
    }

    /// One statement of a block body: an expression, or an error naming the command,
    /// keyword, `&` or `.` that starts it.
    fn block_statement(&mut self, depth: usize) -> Result<SafeExpr, PwshError> {
        let Some(c) = self.c.peek() else {
            return Err(self.c.unsupported("missing expression"));
        };
        let next = self.c.peek_at(1);
        if command_start(c) || (c == '.' && next.is_some_and(|n| n.is_alphabetic() || n == '\\')) {
            let word = self.peek_bare_word().unwrap_or_default();
            if is_keyword(&word) {
                return Err(self
                    .c
                    .unsupported(Construct::Keyword(word.to_ascii_lowercase())));
            }
            return Err(self.c.unsupported(Construct::Command));
        }
        if c == '.' && !next.is_some_and(|n| n.is_ascii_digit()) {
            return Err(self.c.unsupported(Construct::DotSource));
        }
        if c == '&' {
            return Err(self.c.unsupported(Construct::CallOperator));
        }
        self.logical(depth)
    }

    /// The operator at the cursor: `Ok(None)` when no dash starts here, an error for a
    /// dash token that is not an operator of the subset. Returns the operator and its
    /// length in characters; the cursor does not move.
    fn peek_operator(&self) -> Result<Option<(Operator, usize)>, PwshError> {
        if !self.c.peek().is_some_and(is_dash) {
            return Ok(None);
        }
        let mut n = 1;
        let mut word = String::new();
        while let Some(ch) = self.c.peek_at(n) {
            if !ch.is_alphabetic() {
                break;
            }
            word.push(ch);
            n += 1;
        }
        let glued = self
            .c
            .peek_at(n)
            .is_some_and(|ch| ch.is_alphanumeric() || ch == '_' || ch == ':');
        if word.is_empty() && self.c.peek_at(1) == Some('=') {
            return Err(self.c.unsupported(Construct::Assignment));
        }
        match operator(&word) {
            Some(op) if !glued => Ok(Some((op, n))),
            _ => Err(self.c.unsupported(Construct::Operator)),
        }
    }

    /// `x -and y -or z ...`.
    fn logical(&mut self, depth: usize) -> Result<SafeExpr, PwshError> {
        let first = self.comparison(depth)?;
        let mut rest = Vec::new();
        loop {
            self.c.skip_trivia(false)?;
            let Some((op, len)) = self.peek_operator()? else {
                break;
            };
            if !matches!(op.op, BinaryOp::And | BinaryOp::Or) {
                break;
            }
            self.chain_step(&rest, len)?;
            let right = self.comparison(depth)?;
            rest.push((op, right));
        }
        Ok(chain(first, rest))
    }

    /// `x -eq y ...`.
    fn comparison(&mut self, depth: usize) -> Result<SafeExpr, PwshError> {
        let first = self.unary(depth)?;
        let mut rest = Vec::new();
        loop {
            self.c.skip_trivia(false)?;
            let Some((op, len)) = self.peek_operator()? else {
                break;
            };
            if matches!(op.op, BinaryOp::And | BinaryOp::Or) {
                break;
            }
            self.chain_step(&rest, len)?;
            let right = self.unary(depth)?;
            rest.push((op, right));
        }
        Ok(chain(first, rest))
    }

    /// Consumes an operator of `len` characters (and the line breaks that may follow
    /// it), refusing chains longer than [`MAX_CHAIN`].
    fn chain_step(&mut self, rest: &[(Operator, SafeExpr)], len: usize) -> Result<(), PwshError> {
        if rest.len() >= MAX_CHAIN {
            return Err(self.c.unsupported(Construct::Nesting));
        }
        for _ in 0..len {
            self.c.bump();
        }
        self.c.skip_trivia(true)
    }

    /// `-not x`, `!x` (repeated), then a comma list.
    fn unary(&mut self, depth: usize) -> Result<SafeExpr, PwshError> {
        let mut nots = 0usize;
        loop {
            if self.c.peek() == Some('!') {
                self.c.bump();
            } else if self.c.peek().is_some_and(is_dash)
                && self
                    .c
                    .peek_at(1)
                    .is_some_and(|c| c.eq_ignore_ascii_case(&'n'))
                && self
                    .c
                    .peek_at(2)
                    .is_some_and(|c| c.eq_ignore_ascii_case(&'o'))
                && self
                    .c
                    .peek_at(3)
                    .is_some_and(|c| c.eq_ignore_ascii_case(&'t'))
                && !self
                    .c
                    .peek_at(4)
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            {
                for _ in 0..4 {
                    self.c.bump();
                }
            } else {
                break;
            }
            nots += 1;
            self.c.skip_trivia(true)?;
        }
        let operand = self.list(depth)?;
        // Only the parity matters (and one more for the conversion to a boolean), so
        // the tree does not grow with the number of negations.
        Ok(match nots {
            0 => operand,
            n if n % 2 == 1 => SafeExpr::Not(Box::new(operand)),
            _ => SafeExpr::Not(Box::new(SafeExpr::Not(Box::new(operand)))),
        })
    }

    /// `a, b, c`.
    fn list(&mut self, depth: usize) -> Result<SafeExpr, PwshError> {
        let first = self.postfix(depth)?;
        self.c.skip_trivia(false)?;
        if self.c.peek() != Some(',') {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.c.peek() == Some(',') {
            if items.len() >= MAX_CHAIN {
                return Err(self.c.unsupported(Construct::Nesting));
            }
            self.c.bump();
            self.c.skip_trivia(true)?;
            items.push(self.postfix(depth)?);
            self.c.skip_trivia(false)?;
        }
        Ok(SafeExpr::List(items))
    }

    /// An operand and the members read on it.
    fn postfix(&mut self, depth: usize) -> Result<SafeExpr, PwshError> {
        match self.primary(depth)? {
            SafeExpr::Value(mut v) => {
                self.value_members(&mut v, depth)?;
                Ok(SafeExpr::Value(v))
            }
            target => {
                let mut names = Vec::new();
                while let Some(start) = self.member_start()? {
                    if names.len() >= MAX_CHAIN {
                        return Err(self.c.unsupported(Construct::Nesting));
                    }
                    let name = self.member_name(start)?;
                    if matches!(self.c.peek(), Some('(' | '{')) {
                        return Err(self.method_call(start));
                    }
                    names.push(name);
                }
                if names.is_empty() {
                    Ok(target)
                } else {
                    Ok(SafeExpr::Properties {
                        target: Box::new(target),
                        names,
                    })
                }
            }
        }
    }

    /// A method call refused: from its `.` (at character index `start`) to the end of
    /// its argument list (the cursor is on its opening bracket).
    pub(crate) fn method_call(&self, start: usize) -> PwshError {
        let end = self.c.extent(self.c.index());
        self.c.unsupported_span(Construct::MethodCall, start, end)
    }

    /// At a `.` that starts a member: consumes it and returns its index. Refuses `[`
    /// (indexing), `::` (static members) and `..` (range) glued to an operand.
    pub(crate) fn member_start(&mut self) -> Result<Option<usize>, PwshError> {
        let start = self.c.index();
        match (self.c.peek(), self.c.peek_at(1)) {
            (Some('.'), Some('.')) => {
                Err(self
                    .c
                    .unsupported_span(Construct::Operator, start, start + 2))
            }
            (Some('.'), _) => {
                self.c.bump();
                Ok(Some(start))
            }
            (Some('['), _) => Err(self.c.unsupported(Construct::Index)),
            (Some(':'), Some(':')) => Err(self.c.unsupported(Construct::StaticMember)),
            _ => Ok(None),
        }
    }

    /// A member name after its `.` (at character index `start`): an identifier or a
    /// constant quoted string.
    pub(crate) fn member_name(&mut self, start: usize) -> Result<String, PwshError> {
        let mut name = String::new();
        while let Some(ch) = self.c.peek() {
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.c.bump();
        }
        if !name.is_empty() {
            return Ok(name);
        }
        match self.c.peek() {
            Some(q) if is_single_quote(q) => self.c.read_single_quoted(),
            Some(q) if is_double_quote(q) => self.c.read_double_quoted(),
            Some('$') => Err(self.c.unsupported(Construct::Variable)),
            _ => Err(self.c.unsupported_at(Construct::MemberAccess, start)),
        }
    }

    /// An operand: `$_`, a constant, `( ... )`, or `[datetime]::Now`.
    fn primary(&mut self, depth: usize) -> Result<SafeExpr, PwshError> {
        if depth > MAX_DEPTH {
            return Err(self.c.unsupported(Construct::Nesting));
        }
        let Some(c) = self.c.peek() else {
            return Err(self.c.unsupported("missing operand"));
        };
        match c {
            '$' => self.block_variable(),
            '(' => self.block_paren(depth),
            '[' => Ok(SafeExpr::Value(self.type_value(depth)?)),
            c if command_start(c) => {
                let word = self.peek_bare_word().unwrap_or_default();
                if is_keyword(&word) {
                    Err(self
                        .c
                        .unsupported(Construct::Keyword(word.to_ascii_lowercase())))
                } else {
                    Err(self.c.unsupported(Construct::Command))
                }
            }
            _ => match self.item(depth)? {
                Literal::Expr(v) => Ok(SafeExpr::Value(v)),
                l => Ok(SafeExpr::Literal(l)),
            },
        }
    }

    /// `$_`, `$PSItem`, `$true`, `$false`, `$null`; any other variable is an error.
    pub(crate) fn block_variable(&mut self) -> Result<SafeExpr, PwshError> {
        let start = self.c.index();
        if matches!(self.c.peek_at(1), Some('(')) {
            return Err(self.c.unsupported(Construct::Subexpression));
        }
        let mut n = 1;
        let mut name = String::new();
        while let Some(ch) = self.c.peek_at(n) {
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            n += 1;
        }
        // `$env:x`, `$global:_`, `$_?`, `${x}`, `$$`, `$?`: other variables.
        let scoped = match (self.c.peek_at(n), self.c.peek_at(n + 1)) {
            (Some(':'), Some(':')) => false,
            (Some(':' | '?' | '{' | '$' | '^'), _) => true,
            _ => false,
        };
        let expr = match name.to_ascii_lowercase().as_str() {
            _ if scoped => None,
            "_" | "psitem" => Some(SafeExpr::Item),
            "true" => Some(SafeExpr::Literal(Literal::Bool(true))),
            "false" => Some(SafeExpr::Literal(Literal::Bool(false))),
            "null" => Some(SafeExpr::Literal(Literal::Null)),
            _ => None,
        };
        match expr {
            Some(e) => {
                for _ in 0..n {
                    self.c.bump();
                }
                Ok(e)
            }
            None => Err(self.c.unsupported_at(Construct::Variable, start)),
        }
    }

    /// `( ... )` in a block: `(Get-Date ...)` or a grouped expression.
    fn block_paren(&mut self, depth: usize) -> Result<SafeExpr, PwshError> {
        let open_index = self.c.index();
        let open = self.c.offset();
        self.c.bump();
        self.c.skip_trivia(true)?;
        let inner = match self.c.peek() {
            Some(c) if command_start(c) => SafeExpr::Value(self.get_date(depth + 1)?),
            _ => self.block_statement(depth + 1)?,
        };
        self.close_paren(open, open_index)?;
        Ok(inner)
    }
}

fn chain(first: SafeExpr, rest: Vec<(Operator, SafeExpr)>) -> SafeExpr {
    if rest.is_empty() {
        first
    } else {
        SafeExpr::Chain {
            first: Box::new(first),
            rest,
        }
    }
}
