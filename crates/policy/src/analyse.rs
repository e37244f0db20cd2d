//! Turns an operation into role-independent facts ("items"): every command that would
//! run, every cmd line, every piece of script text, and every piece of code that cannot
//! be analysed. Code-carrying parameters (`Invoke-Expression -Command`, script blocks,
//! `Invoke-Command -ScriptBlock`, `Start-Process`, `powershell -EncodedCommand/-Command`,
//! `cmd /c`) are unwrapped and analysed as code, never passed on as opaque strings.

use super::builtin::parameter_alias;
use super::cmdline::{cmd_launch, cmd_metachar, powershell_launch, split_args, Launch};
use super::pattern::fold;
use super::role::{is_path, normalize_line, program_leaf};
use super::{ArgValue, Invocation, InvokedArg, InvokedCommand};
use hopgate_pwsh::{self as pwsh, Arg, Element, Literal, Statement};

/// How deep code may nest (script in `-EncodedCommand` in `cmd /c` in ...).
const MAX_DEPTH: usize = 8;

/// A value as policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    Num(String),
    Bool(bool),
    Null,
    List(Vec<Val>),
    /// Script block text (from PSRP), judged when the command is analysed.
    ScriptBlock(String),
    /// A script block of the safe expression subset (from script text): it changes
    /// nothing, and the commands it runs (`Get-Date`) are recorded as uses.
    Block(Box<pwsh::SafeBlock>),
    /// `@{ ... }` with constant keys.
    Hashtable(Vec<(String, Val)>),
    /// A pure date value (`(Get-Date).AddDays(-1)`); its `Get-Date` is recorded as a use.
    Expr(Box<pwsh::ValueExpr>),
    Secure,
    Other(String),
}

/// An argument of a command use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UseArg {
    /// `-name` with an optional value. `maybe_positional` means the value followed the
    /// parameter token in script text, so if the parameter is a switch the value binds
    /// positionally instead.
    Named {
        name: String,
        written: String,
        value: Option<Val>,
        maybe_positional: bool,
    },
    Positional(Val),
}

/// A PowerShell command that would run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CommandUse {
    /// As written.
    pub(crate) written: String,
    /// Folded command name after alias resolution and module qualification.
    pub(crate) folded: String,
    /// True when resolved through an alias.
    pub(crate) via_alias: bool,
    pub(crate) path_like: bool,
    pub(crate) args: Vec<UseArg>,
    /// True for uses that need no allow rule (wrappers whose payload is judged
    /// separately, and the `Out-String -Stream` of pypsrp's `Invoke-Expression` wrapper);
    /// deny rules still apply.
    pub(crate) implicit: bool,
    /// The names deny rules are matched against: resolved name, name as written, and the
    /// program leaf (computed once, since every applicable role checks them).
    pub(crate) deny_names: [String; 3],
}

/// The names a use is checked against for deny rules.
pub(crate) fn deny_names(written: &str, folded: &str) -> [String; 3] {
    [
        folded.to_string(),
        fold(written.trim()),
        program_leaf(written),
    ]
}

/// One fact about an operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Command(CommandUse),
    /// A cmd line (normalized), with the first live metacharacter if any. `implicit`
    /// marks an interpreter's own line (`powershell -enc ...`, `cmd /c ...`): its payload
    /// is judged separately, so the line needs no allow rule but deny rules apply.
    Line {
        normalized: String,
        folded: String,
        metachar: Option<char>,
        implicit: bool,
    },
    /// An interpreter started to read commands from stdin.
    InterpreterStart {
        powershell: bool,
    },
    /// Script text was given (`label` says where).
    Script {
        label: String,
    },
    /// Code that cannot be analysed.
    Opaque {
        what: String,
    },
    /// Script text (or a script block's text) outside the analysed subset: `label`
    /// says which text, `error` names the construct and where it is.
    Unsupported {
        label: String,
        error: pwsh::PwshError,
    },
}

/// All facts about one operation.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    pub(crate) items: Vec<Item>,
}

// === impl Analysis ===

impl Analysis {
    fn opaque(&mut self, what: impl Into<String>) {
        self.items.push(Item::Opaque { what: what.into() });
    }

    /// A PSRP CREATE_PIPELINE.
    pub(crate) fn pipeline(&mut self, inv: &Invocation) {
        if inv.statements.iter().all(|s| s.is_empty()) {
            self.opaque("empty pipeline");
        }
        for statement in &inv.statements {
            self.psrp_statement(statement);
        }
    }

    fn psrp_statement(&mut self, statement: &[InvokedCommand]) {
        let wrapper = is_iex_wrapper(statement.iter().map(|c| {
            (
                c.name.as_str(),
                c.is_script,
                c.args.iter().map(|a| a.name.as_deref()).collect(),
            )
        }));
        for (i, c) in statement.iter().enumerate() {
            if c.is_script {
                if !c.args.is_empty() {
                    self.opaque("arguments passed to a script");
                }
                self.script(&c.name, "script", 0);
                continue;
            }
            let args = c.args.iter().map(psrp_arg).collect();
            let implicit = wrapper && i + 1 == statement.len() && i > 0;
            self.command(&c.name, args, i == 0, implicit, 0);
        }
    }

    /// Script text from any source.
    pub(crate) fn script(&mut self, text: &str, label: &str, depth: usize) {
        self.items.push(Item::Script {
            label: label.to_string(),
        });
        if depth > MAX_DEPTH {
            self.opaque(format!("{label}: code nested too deeply"));
            return;
        }
        let parsed = match pwsh::parse_script(text) {
            Ok(s) => s,
            Err(error) => {
                self.items.push(Item::Unsupported {
                    label: label.to_string(),
                    error,
                });
                return;
            }
        };
        for statement in parsed.statements {
            let Statement::Pipeline(elements) = statement else {
                continue;
            };
            let shape: Vec<(&str, bool, Vec<Option<&str>>)> = elements
                .iter()
                .map(|e| match e {
                    Element::Command(c) => (
                        c.name.as_str(),
                        false,
                        c.args.iter().map(script_arg_name).collect(),
                    ),
                    Element::Value(_) => ("", true, Vec::new()),
                })
                .collect();
            let wrapper = is_iex_wrapper(shape.into_iter());
            let count = elements.len();
            for (i, element) in elements.into_iter().enumerate() {
                match element {
                    Element::Command(c) => {
                        let implicit = wrapper && i + 1 == count && i > 0;
                        self.command(&c.name, script_args(c.args), i == 0, implicit, depth);
                    }
                    // A value that starts a pipeline may run Get-Date.
                    Element::Value(v) => self.script_blocks(&literal(v), "a pipeline", depth),
                }
            }
        }
    }

    /// One command, with code-carrying parameters unwrapped.
    fn command(
        &mut self,
        written: &str,
        args: Vec<UseArg>,
        first: bool,
        implicit: bool,
        depth: usize,
    ) {
        let (folded, via_alias) = resolve_name(written);
        let path_like = is_path(written) && !via_alias && folded == fold(written);
        for v in args.iter().filter_map(arg_value) {
            self.script_blocks(v, written, depth);
        }
        let program = program_leaf(written);
        if args.iter().filter_map(arg_value).any(redefines_commands) {
            self.opaque(format!(
                "{written}: a path on the function: or alias: drive redefines commands"
            ));
        }
        match folded.as_str() {
            "set-alias" | "new-alias" | "import-alias" => {
                self.opaque(format!("{written} redefines what command names run"));
            }
            "invoke-expression" => {
                if !first {
                    self.opaque("Invoke-Expression reading pipeline input");
                    return;
                }
                match code_argument(&args, &["command"], 0) {
                    Ok(Some(Val::Str(code))) => self.script(&code, "Invoke-Expression", depth + 1),
                    Ok(_) => self.opaque("Invoke-Expression without a literal command string"),
                    Err(e) => self.opaque(format!("Invoke-Expression: {e}")),
                }
                // Transparent: the code it carries is what gets judged; the use itself is
                // recorded so that an explicit deny rule still matches it.
                self.push_use(written, folded, via_alias, path_like, args, true);
                return;
            }
            "invoke-command" => {
                if named(&args, "filepath").is_some() {
                    self.opaque(
                        "Invoke-Command -FilePath runs a script file the gateway cannot inspect",
                    );
                }
                match code_argument(&args, &["scriptblock", "command"], 0) {
                    Ok(Some(Val::Str(code))) => self.script(&code, "Invoke-Command", depth + 1),
                    Ok(Some(Val::ScriptBlock(_) | Val::Block(_))) => {}
                    Ok(_) => self.opaque("Invoke-Command without a literal script block"),
                    Err(e) => self.opaque(format!("Invoke-Command: {e}")),
                }
            }
            "start-process" => match start_process_line(&args) {
                Ok(line) => self.line(&line, true, depth + 1),
                Err(e) => self.opaque(format!("Start-Process: {e}")),
            },
            "foreach-object" => {
                // `% Name` binds the name to -MemberName, which reads a property or
                // calls a method: without types the gateway cannot tell which.
                let member = args.iter().find_map(|a| match a {
                    UseArg::Positional(v) => {
                        (!matches!(v, Val::ScriptBlock(_) | Val::Block(_))).then_some(Some(v))
                    }
                    UseArg::Named { name, value, .. } => ("membername".starts_with(name.as_str())
                        && !name.is_empty())
                    .then_some(value.as_ref()),
                });
                match member {
                    Some(Some(Val::Str(name))) => self.opaque(format!(
                        "ForEach-Object member name '{name}' may call a method (without types \
                         the gateway cannot tell a property from a method); to read a \
                         property write `ForEach-Object {{ $_.{name} }}`"
                    )),
                    Some(_) => self.opaque(
                        "ForEach-Object -MemberName may call a method (without types the \
                         gateway cannot tell a property from a method)",
                    ),
                    None => {}
                }
            }
            _ if !via_alias
                && (program == "powershell" || program == "pwsh" || program == "cmd") =>
            {
                if !first {
                    self.opaque(format!("{written} reading pipeline input"));
                    return;
                }
                match native_line(written, &args) {
                    Ok(line) => self.line(&line, true, depth + 1),
                    Err(e) => self.opaque(format!("{written}: {e}")),
                }
                self.push_use(written, folded, via_alias, path_like, args, true);
                return;
            }
            _ => {}
        }
        self.push_use(written, folded, via_alias, path_like, args, implicit);
    }

    fn push_use(
        &mut self,
        written: &str,
        folded: String,
        via_alias: bool,
        path_like: bool,
        args: Vec<UseArg>,
        implicit: bool,
    ) {
        self.items.push(Item::Command(CommandUse {
            written: written.to_string(),
            deny_names: deny_names(written, &folded),
            folded,
            via_alias,
            path_like,
            args,
            implicit,
        }));
    }

    /// The code inside a value: script block text is analysed (as a block of the
    /// safe subset, else as a script), and the commands of safe blocks, hashtables and
    /// date values are recorded as uses.
    // INVARIANT: values come from the parser (nesting bounded by its depth limit) or
    // from PSRP (lists bounded by the message size); the recursion follows them.
    fn script_blocks(&mut self, v: &Val, owner: &str, depth: usize) {
        match v {
            Val::ScriptBlock(text) => {
                let label = format!("script block passed to {owner}");
                self.block_text(text, &label, depth + 1)
            }
            Val::Block(block) => self.expression_commands(block.commands(), depth),
            Val::Expr(value) => {
                self.expression_commands(value.command().into_iter().collect(), depth)
            }
            Val::Hashtable(entries) => {
                for (_, v) in entries {
                    self.script_blocks(v, owner, depth);
                }
            }
            Val::List(items) => {
                for i in items {
                    self.script_blocks(i, owner, depth);
                }
            }
            Val::Str(_) | Val::Num(_) | Val::Bool(_) | Val::Null | Val::Secure | Val::Other(_) => {}
        }
    }

    /// Script block text (PSRP sends blocks as text): a body of the safe subset is no
    /// code beyond the `Get-Date` it may run; anything else is analysed as a script,
    /// as before. When both fail, the block's own error names the construct, unless
    /// the block is plainly a script (it starts with a command).
    fn block_text(&mut self, text: &str, label: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.items.push(Item::Script {
                label: label.to_string(),
            });
            self.opaque(format!("{label}: code nested too deeply"));
            return;
        }
        let block_error = match pwsh::parse_block(text) {
            Ok(block) => {
                self.items.push(Item::Script {
                    label: label.to_string(),
                });
                self.expression_commands(block.commands(), depth);
                return;
            }
            Err(e) => e,
        };
        if pwsh::parse_script(text).is_ok()
            || block_error.construct() == Some(&pwsh::Construct::Command)
        {
            self.script(text, label, depth);
        } else {
            self.items.push(Item::Script {
                label: label.to_string(),
            });
            self.items.push(Item::Unsupported {
                label: label.to_string(),
                error: block_error,
            });
        }
    }

    /// The commands an expression runs (`(Get-Date)`), judged like any other use.
    fn expression_commands(&mut self, commands: Vec<&pwsh::Command>, depth: usize) {
        for c in commands {
            self.command(&c.name, script_args(c.args.clone()), true, false, depth + 1);
        }
    }

    /// A command line. `skip_cmd_shell` means the line goes to CreateProcess rather than
    /// through cmd.exe.
    pub(crate) fn line(&mut self, line: &str, skip_cmd_shell: bool, depth: usize) {
        if depth > MAX_DEPTH {
            self.opaque("command line nested too deeply");
            return;
        }
        let normalized = normalize_line(line);
        if !skip_cmd_shell {
            if let Some(c) = cmd_metachar(line) {
                let folded = fold(&normalized);
                self.items.push(Item::Line {
                    normalized,
                    folded,
                    metachar: Some(c),
                    implicit: false,
                });
                return;
            }
        }
        match self.launch(line) {
            Some(Ok((powershell, launch))) => {
                let folded = fold(&normalized);
                self.items.push(Item::Line {
                    normalized,
                    folded,
                    metachar: None,
                    implicit: true,
                });
                if let Some(code) = &launch.code {
                    if powershell {
                        self.script(code, "PowerShell command line", depth + 1);
                    } else {
                        self.line(code, false, depth + 1);
                    }
                }
                if launch.reads_stdin {
                    self.items.push(Item::InterpreterStart { powershell });
                }
            }
            Some(Err(e)) => self.opaque(e),
            None if normalized.is_empty() => self.opaque("empty command line"),
            None => {
                let folded = fold(&normalized);
                self.items.push(Item::Line {
                    normalized,
                    folded,
                    metachar: None,
                    implicit: false,
                });
            }
        }
    }

    /// When the line starts an interpreter (cmd, powershell, pwsh): whether it is
    /// PowerShell and what it was asked to do.
    fn launch(&self, line: &str) -> Option<Result<(bool, Launch), String>> {
        let tokens = split_args(line);
        let (program, rest) = tokens.split_first()?;
        match program_leaf(&program.value).as_str() {
            "cmd" => Some(cmd_launch(line, rest).map(|l| (false, l))),
            p @ ("powershell" | "pwsh") => {
                let args: Vec<String> = rest.iter().map(|t| t.value.clone()).collect();
                Some(powershell_launch(&args, p == "pwsh").map(|l| (true, l)))
            }
            _ => None,
        }
    }

    /// Stdin sent to the program started by `program`.
    pub(crate) fn stdin(&mut self, program: &str, data: &str) {
        match self.launch(program) {
            Some(Ok((true, launch))) if launch.reads_stdin => {
                self.script(data, "PowerShell stdin", 0)
            }
            Some(Ok((false, launch))) if launch.reads_stdin => {
                for raw in data.split('\n') {
                    let line = raw.trim_end_matches('\r').trim();
                    if line.is_empty() || is_cmd_exit(line) {
                        continue;
                    }
                    self.line(line, false, 0);
                }
            }
            _ => self.opaque(format!(
                "stdin to '{}', which is not an interactive interpreter",
                normalize_line(program)
            )),
        }
    }
}

/// A value naming the function: or alias: drive (`New-Item function:\Get-Date ...`).
fn redefines_commands(v: &Val) -> bool {
    match v {
        Val::Str(s) => {
            let f = fold(s.trim());
            f.starts_with("function:") || f.starts_with("alias:")
        }
        Val::List(items) => items.iter().any(redefines_commands),
        _ => false,
    }
}

fn is_cmd_exit(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    parts.next().is_some_and(|p| p.eq_ignore_ascii_case("exit"))
        && parts.all(|p| p.eq_ignore_ascii_case("/b") || p.chars().all(|c| c.is_ascii_digit()))
}

/// pypsrp's `execute_ps` shape: `Invoke-Expression <code> | Out-String -Stream`.
fn is_iex_wrapper<'a>(
    mut shape: impl ExactSizeIterator<Item = (&'a str, bool, Vec<Option<&'a str>>)>,
) -> bool {
    if shape.len() != 2 {
        return false;
    }
    let (Some(first), Some(last)) = (shape.next(), shape.next()) else {
        return false;
    };
    let (first_name, first_script, _) = first;
    let (last_name, last_script, last_args) = last;
    !first_script
        && !last_script
        && resolve_name(first_name).0 == "invoke-expression"
        && resolve_name(last_name).0 == "out-string"
        && last_args
            .iter()
            .all(|a| a.is_some_and(|n| fold(n.trim_start_matches('-')) == "stream"))
}

fn script_arg_name(a: &Arg) -> Option<&str> {
    match a {
        Arg::Param { name, .. } => Some(name.as_str()),
        _ => None,
    }
}

/// Resolves aliases and module qualification to a folded command name.
pub(crate) fn resolve_name(written: &str) -> (String, bool) {
    let trimmed = written.trim();
    // Folded first, so that case variants PowerShell equates (`ſal`) resolve too.
    if let Some(target) = pwsh::resolve_alias(&fold(trimmed)) {
        return (fold(target), true);
    }
    // `Module.Name\Verb-Noun` names the command; other names with separators are paths.
    if let Some((module, leaf)) = trimmed.rsplit_once('\\') {
        let module_like = module.chars().next().is_some_and(char::is_alphabetic)
            && module
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && leaf.contains(['-', '\u{2013}', '\u{2014}', '\u{2015}'])
            && !leaf.contains('.');
        if module_like {
            return (fold(leaf), false);
        }
    }
    (fold(trimmed), false)
}

fn psrp_value(v: &ArgValue) -> Val {
    match v {
        ArgValue::String(s) => Val::Str(s.clone()),
        ArgValue::Number(n) => Val::Num(n.clone()),
        ArgValue::Bool(b) => Val::Bool(*b),
        ArgValue::Null => Val::Null,
        ArgValue::List(items) => Val::List(items.iter().map(psrp_value).collect()),
        ArgValue::ScriptBlock(s) => Val::ScriptBlock(s.clone()),
        ArgValue::Secure => Val::Secure,
        ArgValue::Other(t) => Val::Other(t.clone()),
    }
}

/// A parameter name folded, with well-known aliases (`-cn`, `-ea`) replaced by the
/// parameter they stand for, once per argument rather than once per role.
fn param_name(written: &str) -> String {
    let folded = fold(written);
    match parameter_alias(&folded) {
        Some(p) => p.to_string(),
        None => folded,
    }
}

fn psrp_arg(a: &InvokedArg) -> UseArg {
    match &a.name {
        Some(n) => {
            let stripped = n
                .trim()
                .trim_start_matches(['-', '\u{2013}', '\u{2014}', '\u{2015}'])
                .trim_end_matches(':')
                .trim();
            UseArg::Named {
                name: param_name(stripped),
                written: n.clone(),
                value: Some(psrp_value(&a.value)),
                maybe_positional: false,
            }
        }
        None => UseArg::Positional(psrp_value(&a.value)),
    }
}

fn literal(l: Literal) -> Val {
    match l {
        Literal::Str(s) => Val::Str(s),
        Literal::Number(n) => Val::Num(n),
        Literal::Bool(b) => Val::Bool(b),
        Literal::Null => Val::Null,
        Literal::List(items) => Val::List(items.into_iter().map(literal).collect()),
        Literal::Hashtable(entries) => {
            Val::Hashtable(entries.into_iter().map(|(k, v)| (k, literal(v))).collect())
        }
        Literal::ScriptBlock(block) => Val::Block(Box::new(block)),
        Literal::Expr(value) => Val::Expr(Box::new(value)),
    }
}

/// Script arguments to uses: `-p v` becomes a named argument whose value may be
/// positional (when `p` is a switch).
fn script_args(args: Vec<Arg>) -> Vec<UseArg> {
    let mut out = Vec::new();
    let mut iter = args.into_iter().peekable();
    while let Some(a) = iter.next() {
        match a {
            Arg::Param {
                name,
                value: Some(v),
            } => out.push(UseArg::Named {
                name: param_name(&name),
                written: format!("-{name}:"),
                value: Some(literal(v)),
                maybe_positional: false,
            }),
            Arg::Param { name, value: None } => {
                let value = match iter.peek() {
                    Some(Arg::Value(_)) => match iter.next() {
                        Some(Arg::Value(v)) => Some(literal(v)),
                        _ => None,
                    },
                    _ => None,
                };
                let maybe_positional = value.is_some();
                out.push(UseArg::Named {
                    name: param_name(&name),
                    written: format!("-{name}"),
                    value,
                    maybe_positional,
                });
            }
            Arg::Value(v) => out.push(UseArg::Positional(literal(v))),
            Arg::EndOfParams => {}
        }
    }
    out
}

fn arg_value(a: &UseArg) -> Option<&Val> {
    match a {
        UseArg::Named { value, .. } => value.as_ref(),
        UseArg::Positional(v) => Some(v),
    }
}

/// The value of the first named argument that is a prefix of `param`.
fn named<'a>(args: &'a [UseArg], param: &str) -> Option<&'a UseArg> {
    args.iter().find(|a| matches!(a, UseArg::Named { name, .. } if !name.is_empty() && param.starts_with(name.as_str())))
}

/// The code argument of a code-carrying command: a named argument matching one of
/// `params` (by prefix), or the positional argument at `position`. More than one
/// candidate is an error, since PowerShell's binding would be ambiguous to us.
fn code_argument(args: &[UseArg], params: &[&str], position: usize) -> Result<Option<Val>, String> {
    let mut found = Vec::new();
    let mut positional = 0usize;
    for a in args {
        match a {
            UseArg::Named {
                name,
                value,
                maybe_positional,
                ..
            } => {
                if !name.is_empty() && params.iter().any(|p| p.starts_with(name.as_str())) {
                    found.push(value.clone().unwrap_or(Val::Null));
                } else if *maybe_positional {
                    if positional == position {
                        found.push(value.clone().unwrap_or(Val::Null));
                    }
                    positional += 1;
                }
            }
            UseArg::Positional(v) => {
                if positional == position {
                    found.push(v.clone());
                }
                positional += 1;
            }
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err("more than one code argument".into()),
    }
}

fn native_arg(v: &Val) -> Result<String, String> {
    let s = match v {
        Val::Str(s) | Val::Num(s) => s.clone(),
        Val::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        other => return Err(format!("{} argument to a native command", kind(other))),
    };
    if s.contains('"') {
        return Err("double quote inside a native command argument".into());
    }
    if s.contains([' ', '\t']) {
        if s.ends_with('\\') {
            return Err("argument ending in a backslash".into());
        }
        return Ok(format!("\"{s}\""));
    }
    if s.is_empty() {
        return Ok("\"\"".into());
    }
    Ok(s)
}

pub(crate) fn kind(v: &Val) -> &'static str {
    match v {
        Val::Str(_) => "string",
        Val::Num(_) => "number",
        Val::Bool(_) => "boolean",
        Val::Null => "null",
        Val::List(_) => "list",
        Val::ScriptBlock(_) | Val::Block(_) => "script block",
        Val::Hashtable(_) => "hashtable",
        Val::Expr(_) => "expression",
        Val::Secure => "secure string",
        Val::Other(_) => "object",
    }
}

/// The command line PowerShell builds for a native command.
fn native_line(program: &str, args: &[UseArg]) -> Result<String, String> {
    let mut parts = vec![native_arg(&Val::Str(program.to_string()))?];
    for a in args {
        match a {
            UseArg::Named {
                written,
                value,
                maybe_positional,
                ..
            } => {
                if *maybe_positional {
                    parts.push(written.clone());
                    parts.push(native_arg(value.as_ref().unwrap_or(&Val::Null))?);
                } else if let Some(v) = value {
                    if written.ends_with(':') {
                        parts.push(format!("{written}{}", native_arg(v)?));
                    } else {
                        parts.push(format!("-{}", written.trim_start_matches('-')));
                        parts.push(native_arg(v)?);
                    }
                } else {
                    parts.push(written.clone());
                }
            }
            UseArg::Positional(Val::List(_)) => {
                return Err("array argument to a native command".into())
            }
            UseArg::Positional(v) => parts.push(native_arg(v)?),
        }
    }
    Ok(parts.join(" "))
}

fn start_process_line(args: &[UseArg]) -> Result<String, String> {
    let file = code_argument(args, &["filepath", "path", "pspath", "lp"], 0)?;
    let list = code_argument(args, &["argumentlist", "args"], 1)?;
    let Some(Val::Str(file)) = file else {
        return Err("no literal -FilePath".into());
    };
    let mut line = native_arg(&Val::Str(file))?;
    match list {
        None => {}
        Some(Val::Str(s)) => {
            line.push(' ');
            line.push_str(&s);
        }
        Some(Val::List(items)) => {
            for i in items {
                let Val::Str(s) = i else {
                    return Err("non-string -ArgumentList item".into());
                };
                line.push(' ');
                line.push_str(&s);
            }
        }
        Some(other) => return Err(format!("{} -ArgumentList", kind(&other))),
    }
    Ok(line)
}
