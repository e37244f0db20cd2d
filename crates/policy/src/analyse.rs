//! Turns an operation into role-independent facts ("items"): every command that would
//! run, every cmd line, every piece of script text, and every piece of code that cannot
//! be analysed. Code-carrying parameters (`Invoke-Expression -Command`, script blocks,
//! `Invoke-Command -ScriptBlock`, `Start-Process`, `powershell -EncodedCommand/-Command`,
//! `cmd /c`) are unwrapped and analysed as code, never passed on as opaque strings.

use crate::prelude::*;

use super::bind::{bind, identified_output, written_output, BindError, Binding, Upstream};
use super::builtin::parameter_alias;
use super::cmdline::{cmd_c_quotes, cmd_metachar};
use super::metadata::MetadataSet;
use super::pattern::fold;
use super::program::{
    self, interpreter_launch, is_interpreter, launch, whole_line, Parsed, Program, ProgramLine,
};
use super::role::{is_path, normalize_line, program_leaf};
use super::{ArgValue, DecodedCode, Invocation, InvokedArg, InvokedCommand};
use super::{DECODED_MAX, DECODED_TEXT_CAP};
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
    /// What the command receives from the pipeline.
    pub(crate) upstream: Upstream,
    /// How its arguments bind, when the command's metadata is known (`None`: unknown, so
    /// only named arguments can be judged).
    pub(crate) bindings: Option<Result<Vec<Binding>, BindError>>,
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
    /// A program that would start, with its canonical line, and the first live cmd
    /// metacharacter if any (then the line is the whole cmd line as written, judged as
    /// one by allow rules; the commands in it follow as implicit lines). `implicit`
    /// marks a line that needs no allow rule: an interpreter's own line (`powershell
    /// -enc ...`, `cmd /c ...`, `call`, `start`), whose payload is judged separately, and
    /// the commands of a line with metacharacters; deny rules apply to every line.
    Line {
        line: ProgramLine,
        metachar: Option<char>,
        implicit: bool,
        origin: Origin,
    },
    /// An interpreter started to read commands from stdin.
    InterpreterStart {
        powershell: bool,
    },
    /// Script text was given (`label` says where).
    Script {
        label: String,
    },
    /// A script trusted by content: run without analysis, allowed by the roles that
    /// trust it (`path` names it for messages).
    Trusted {
        sha256: crate::trust::Sha256,
        path: String,
    },
    /// An Ansible module identified by its trusted code, with its arguments.
    AnsibleModule(crate::ansible::ModuleCall),
    /// Another trusted exec-wrapper script an Ansible payload runs as an action (by the
    /// file name of its trusted code: `winrm_put_file.ps1`).
    AnsibleAction(String),
    /// Code that cannot be analysed.
    Opaque {
        what: String,
    },
    /// Something whose effect allow rules have already judged (a cmd line with
    /// metacharacters) but that deny rules cannot see through (a `%VAR%` expansion, a
    /// parenthesised block): denied when an applicable role has deny rules.
    Unverifiable {
        what: String,
    },
    /// Script text (or a script block's text) outside the analysed subset: `label`
    /// says which text, `error` names the construct and where it is.
    Unsupported {
        label: String,
        error: pwsh::PwshError,
    },
}

/// Which shell starts a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// cmd.exe, or CreateProcess for a WinRS command, `Start-Process` and the payload of
    /// an interpreter: the line needs a `[role.cmd]` rule.
    Cmd,
    /// An external command typed in PowerShell: visibility is the PowerShell rules'
    /// business; the line must match one of the role's cmd rules for that program when
    /// it has any.
    PowerShell,
}

/// All facts about one operation.
#[derive(Debug)]
pub(crate) struct Analysis<'m> {
    pub(crate) items: Vec<Item>,
    /// Code unwrapped from another form, outermost first (for the audit record).
    pub(crate) decoded: Vec<DecodedCode>,
    /// Cmdlet metadata for parameter binding.
    meta: &'m MetadataSet,
    /// Scripts trusted by content (not parsed).
    trust: Option<&'m crate::trust::TrustIndex>,
    /// A PSRP pipeline's input, for a trusted Ansible bootstrap that runs it.
    pipeline_input: Option<String>,
}

// === impl Analysis ===

impl<'m> Analysis<'m> {
    /// What the last command use sends down the pipeline.
    fn output_of_last_use(&self) -> Upstream {
        let last = self.items.iter().rev().find_map(|i| match i {
            Item::Command(u) => Some(u),
            _ => None,
        });
        match last {
            Some(CommandUse {
                folded,
                bindings: Some(Ok(list)),
                ..
            }) => identified_output(folded, list)
                .or_else(|| written_output(folded, list))
                .unwrap_or(Upstream::Objects),
            _ => Upstream::Objects,
        }
    }

    pub(crate) fn new(meta: &'m MetadataSet) -> Self {
        Self {
            items: Vec::new(),
            decoded: Vec::new(),
            meta,
            trust: None,
            pipeline_input: None,
        }
    }

    /// A PSRP CREATE_PIPELINE with the input its Ansible bootstrap wrapper reads.
    pub(crate) fn pipeline_with_input(&mut self, inv: &Invocation, input: &str) {
        self.pipeline_input = Some(input.to_string());
        self.pipeline(inv);
    }

    /// Scripts whose hash is in `trust` are not parsed but recorded as trusted.
    pub(crate) fn with_trust(mut self, trust: &'m crate::trust::TrustIndex) -> Self {
        self.trust = Some(trust);
        self
    }

    /// The trusted file `text` is (directory and path joined), if any.
    pub(crate) fn trusted_path(&self, text: &str) -> Option<String> {
        let (_, known) = self.trust?.lookup(text)?;
        Some(if known.dir.is_empty() {
            known.path.clone()
        } else {
            format!("{}/{}", known.dir, known.path)
        })
    }

    pub(crate) fn opaque_item(&mut self, what: impl Into<String>) {
        self.opaque(what);
    }

    pub(crate) fn decoded_text(&mut self, via: &str, text: &str) {
        self.decoded(via, text);
    }

    pub(crate) fn push_item(&mut self, item: Item) {
        self.items.push(item);
    }

    /// Records `text` as a trusted script when some role trusts it by content.
    fn trusted(&mut self, text: &str) -> bool {
        let Some((sha256, known)) = self.trust.and_then(|t| t.lookup(text)) else {
            return false;
        };
        self.items.push(Item::Trusted {
            sha256,
            path: known.path.clone(),
        });
        true
    }

    /// Records code unwrapped from another form (`via` names the form): capped in
    /// length and number, without duplicates (PSRP may repeat a statement).
    fn decoded(&mut self, via: &str, text: &str) {
        if self.decoded.len() >= DECODED_MAX {
            return;
        }
        let mut end = text.len().min(DECODED_TEXT_CAP);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let code = DecodedCode {
            via: via.to_string(),
            text: text.get(..end).unwrap_or_default().to_string(),
            truncated: end < text.len(),
        };
        if !self.decoded.contains(&code) {
            self.decoded.push(code);
        }
    }

    fn opaque(&mut self, what: impl Into<String>) {
        self.items.push(Item::Opaque { what: what.into() });
    }

    /// Opaque to allow rules, or only to deny rules when allow rules judged it already.
    fn unanalysable(&mut self, what: impl Into<String>, implicit: bool) {
        let what = what.into();
        self.items.push(if implicit {
            Item::Unverifiable { what }
        } else {
            Item::Opaque { what }
        });
    }

    /// A PSRP CREATE_PIPELINE.
    pub(crate) fn pipeline(&mut self, inv: &Invocation) {
        if inv.statements.iter().all(|s| s.is_empty()) {
            self.opaque("empty pipeline");
        }
        for (i, statement) in inv.statements.iter().enumerate() {
            // Client input (PIPELINE_INPUT) feeds the first statement's first command.
            self.psrp_statement(statement, i == 0 && inv.client_input);
        }
    }

    fn psrp_statement(&mut self, statement: &[InvokedCommand], client_input: bool) {
        let wrapper = is_iex_wrapper(statement.iter().map(|c| {
            (
                c.name.as_str(),
                c.is_script,
                c.args.iter().map(|a| a.name.as_deref()).collect(),
            )
        }));
        let mut upstream = if client_input {
            Upstream::Objects
        } else {
            Upstream::None
        };
        for (i, c) in statement.iter().enumerate() {
            if c.is_script {
                if self.trusted(&c.name) {
                    if client_input && i == 0 {
                        let bootstrap = self
                            .trust
                            .is_some_and(|t| crate::ansible::is_bootstrap_text(t, &c.name));
                        match self.pipeline_input.take() {
                            Some(input) if bootstrap => crate::ansible::payload(self, &input),
                            // What it reads may be code that nobody judged: fail closed.
                            _ => self.opaque("pipeline input to a trusted script"),
                        }
                    }
                    // Its parameters are still judged: literal values are data to it,
                    // code passed in (a script block) is analysed as code.
                    for a in &c.args {
                        if let ArgValue::ScriptBlock(text) = &a.value {
                            self.script(text, "script block argument", 1);
                        }
                    }
                    upstream = Upstream::Objects;
                    continue;
                }
                if !c.args.is_empty() {
                    self.opaque("arguments passed to a script");
                }
                self.script(&c.name, "script", 0);
                upstream = Upstream::Objects;
                continue;
            }
            let args = c.args.iter().map(psrp_arg).collect();
            let implicit = wrapper && i + 1 == statement.len() && i > 0;
            self.command(&c.name, args, upstream, implicit, 0);
            upstream = self.output_of_last_use();
        }
    }

    /// Script text from any source.
    pub(crate) fn script(&mut self, text: &str, label: &str, depth: usize) {
        if self.trusted(text) {
            return;
        }
        if let Some(body) = text.trim_end().strip_suffix(ANSIBLE_EXIT_EPILOGUE) {
            // Ansible appends this fixed text to the scripts it encodes (ansible-core
            // `_encode_script`, preserve_rc): it reads $? and $LASTEXITCODE and exits.
            // What runs before it is analysed as usual.
            return self.script(body, label, depth);
        }
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
            let mut upstream = Upstream::None;
            for (i, element) in elements.into_iter().enumerate() {
                match element {
                    Element::Command(c) => {
                        let implicit = wrapper && i + 1 == count && i > 0;
                        self.command(&c.name, script_args(c.args), upstream, implicit, depth);
                        upstream = self.output_of_last_use();
                    }
                    // `'a', 'b' | Cmd`: the values are what the next command receives; a
                    // value that starts a pipeline may run Get-Date.
                    Element::Value(l) => {
                        let v = literal(l);
                        self.script_blocks(&v, "a pipeline", depth);
                        upstream = Upstream::Values(match v {
                            Val::List(items) => items,
                            v => vec![v],
                        })
                    }
                }
            }
        }
    }

    /// One command, with code-carrying parameters unwrapped.
    fn command(
        &mut self,
        written: &str,
        args: Vec<UseArg>,
        upstream: Upstream,
        implicit: bool,
        depth: usize,
    ) {
        let first = upstream == Upstream::None;
        let (folded, via_alias) = resolve_name(written, self.meta);
        let path_like = is_path(written) && !via_alias && folded == fold(written);
        if !via_alias && !path_like && folded.contains(['*', '?', '[']) {
            // PowerShell runs the command the wildcard resolves to on the host.
            self.opaque(format!(
                "the wildcard command name '{written}' runs whatever command matches it"
            ));
        }
        if !via_alias && !path_like && !folded.contains(['-', '.']) {
            // A name PowerShell cannot find is retried with `Get-` (`content` runs
            // Get-Content): deny rules must see that command too.
            let implied = format!("get-{folded}");
            if self.meta.get(&implied).is_some() {
                let bindings = self
                    .meta
                    .get(&implied)
                    .map(|meta| bind(meta, written, &args, &upstream));
                self.push_use(
                    written,
                    implied,
                    false,
                    false,
                    args.clone(),
                    true,
                    upstream.clone(),
                    bindings,
                );
            }
        }
        let bindings = if path_like {
            None
        } else {
            self.meta
                .get(&folded)
                .map(|meta| bind(meta, written, &args, &upstream))
        };
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
                match &bindings {
                    Some(Ok(list)) => {
                        let codes = bound_values(list, "command");
                        if codes.is_empty() {
                            self.opaque("Invoke-Expression without a command");
                        }
                        for code in codes {
                            match code {
                                Some(Val::Str(code)) => {
                                    self.decoded("Invoke-Expression", code);
                                    self.script(code, "Invoke-Expression", depth + 1)
                                }
                                None => self.opaque("Invoke-Expression reading pipeline input"),
                                Some(_) => self
                                    .opaque("Invoke-Expression without a literal command string"),
                            }
                        }
                    }
                    Some(Err(e)) => self.opaque(format!("Invoke-Expression: {e}")),
                    None if !first => self.opaque("Invoke-Expression reading pipeline input"),
                    None => match code_argument(&args, &["command"], 0) {
                        Ok(Some(Val::Str(code))) => {
                            self.decoded("Invoke-Expression", &code);
                            self.script(&code, "Invoke-Expression", depth + 1)
                        }
                        Ok(_) => self.opaque("Invoke-Expression without a literal command string"),
                        Err(e) => self.opaque(format!("Invoke-Expression: {e}")),
                    },
                }
                // Transparent: the code it carries is what gets judged; the use itself is
                // recorded so that an explicit deny rule still matches it.
                self.push_use(
                    written, folded, via_alias, path_like, args, true, upstream, bindings,
                );
                return;
            }
            "invoke-command" => {
                if named(&args, "filepath").is_some() {
                    self.opaque(
                        "Invoke-Command -FilePath runs a script file the gateway cannot inspect",
                    );
                }
                match code_argument(&args, &["scriptblock", "command"], 0) {
                    Ok(Some(Val::Str(code))) => {
                        self.decoded("Invoke-Command", &code);
                        self.script(&code, "Invoke-Command", depth + 1)
                    }
                    Ok(Some(Val::ScriptBlock(_) | Val::Block(_))) => {}
                    Ok(_) => self.opaque("Invoke-Command without a literal script block"),
                    Err(e) => self.opaque(format!("Invoke-Command: {e}")),
                }
            }
            "start-process" => match start_process_line(&args) {
                Ok(line) => {
                    self.decoded("Start-Process", &line);
                    self.line(&line, true, depth + 1)
                }
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
            _ if !via_alias && is_interpreter(&program) => {
                if !first {
                    self.opaque(format!("{written} reading pipeline input"));
                    return;
                }
                match native_line(written, &args) {
                    Ok(line) => self.line(&line, true, depth + 1),
                    Err(e) => self.opaque(format!("{written}: {e}")),
                }
                self.push_use(
                    written, folded, via_alias, path_like, args, true, upstream, bindings,
                );
                return;
            }
            _ => {}
        }
        let external = looks_like_program(written, &folded, via_alias, &program);
        let native = external.then(|| native_line(written, &args));
        self.push_use(
            written, folded, via_alias, path_like, args, implicit, upstream, bindings,
        );
        match native {
            None => {}
            Some(Ok(line)) => self.external(&line, written),
            Some(Err(e)) => self.opaque(format!("program '{written}': {e}")),
        }
    }

    /// An external command typed in PowerShell, as the line PowerShell starts it with.
    fn external(&mut self, line: &str, written: &str) {
        let parsed = program::process_command(line);
        match program::identify(&parsed.text, written) {
            Ok(p) => self.items.push(Item::Line {
                line: ProgramLine::new(p, &parsed.rest, line),
                metachar: None,
                implicit: false,
                origin: Origin::PowerShell,
            }),
            Err(e) => self.opaque(e),
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one command use's facts, in one place"
    )]
    fn push_use(
        &mut self,
        written: &str,
        folded: String,
        via_alias: bool,
        path_like: bool,
        args: Vec<UseArg>,
        implicit: bool,
        upstream: Upstream,
        bindings: Option<Result<Vec<Binding>, BindError>>,
    ) {
        self.items.push(Item::Command(CommandUse {
            written: written.to_string(),
            deny_names: deny_names(written, &folded),
            folded,
            via_alias,
            path_like,
            args,
            implicit,
            upstream,
            bindings,
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
            self.command(
                &c.name,
                script_args(c.args.clone()),
                Upstream::None,
                false,
                depth + 1,
            );
        }
    }

    /// A command line. `skip_cmd_shell` means the line goes to CreateProcess rather than
    /// through `cmd /c`.
    pub(crate) fn line(&mut self, line: &str, skip_cmd_shell: bool, depth: usize) {
        if skip_cmd_shell {
            self.line_in(line, false, depth, false);
        } else {
            self.line_in(&cmd_c_quotes(line, false), true, depth, false);
        }
    }

    /// A command line; `via_cmd` when cmd.exe reads it, `implicit` when allow rules have
    /// judged it already.
    fn line_in(&mut self, line: &str, via_cmd: bool, depth: usize, implicit: bool) {
        if depth > MAX_DEPTH {
            self.opaque("command line nested too deeply");
            return;
        }
        if via_cmd {
            if let Some(c) = cmd_metachar(line) {
                // Allow rules judge the whole line (with metacharacters allowed) ...
                self.items.push(Item::Line {
                    line: whole_line(line),
                    metachar: Some(c),
                    implicit,
                    origin: Origin::Cmd,
                });
                // ... deny rules and nested code see each command cmd.exe would run.
                match program::cmd_commands(line) {
                    Ok(commands) => {
                        for command in commands {
                            let before = self.items.len();
                            self.command_line(&command, true, depth + 1, true);
                            // An interpreter in a line with operators reads its commands
                            // from a pipe or a redirection, not from the client's stdin.
                            let reads = self.items.get(before..).is_some_and(|new| {
                                new.iter()
                                    .any(|i| matches!(i, Item::InterpreterStart { .. }))
                            });
                            if reads {
                                self.items.push(Item::Unverifiable {
                                    what: format!(
                                        "'{}' reads commands from a pipe or a redirection",
                                        normalize_line(&command)
                                    ),
                                });
                            }
                        }
                    }
                    Err(e) => self.items.push(Item::Unverifiable {
                        what: format!("'{}': {e}", normalize_line(line)),
                    }),
                }
                return;
            }
        }
        self.command_line(line, via_cmd, depth, implicit);
    }

    /// One command (no operator left to split at): the program it starts, and what it
    /// runs when it is an interpreter or a cmd.exe launcher (`call`, `start`).
    fn command_line(&mut self, line: &str, via_cmd: bool, depth: usize, implicit: bool) {
        let parsed = if via_cmd {
            match program::cmd_command(line) {
                Ok(p) => p,
                Err(e) => {
                    self.unanalysable(format!("'{}': {e}", normalize_line(line)), implicit);
                    return;
                }
            }
        } else {
            program::process_command(line)
        };
        if parsed.text.trim().is_empty() {
            self.opaque("empty command line");
            return;
        }
        let program = match program::identify(&parsed.text, &parsed.written) {
            Ok(p) => p,
            Err(e) => {
                self.unanalysable(e, implicit);
                return;
            }
        };
        if via_cmd && program::has_expansion(&parsed.rest) {
            self.items.push(Item::Unverifiable {
                what: format!(
                    "cmd variable expansion in the arguments of program '{}'",
                    program.id
                ),
            });
        }
        if let Some(how) = program::launches_from_arguments(&program.id, &parsed.rest) {
            // What such a program starts is in its arguments, in a syntax of its own: deny
            // rules cannot see it.
            self.items.push(Item::Unverifiable {
                what: format!("program '{}' starts other programs ({how})", program.id),
            });
        }
        // cmd.exe's own commands, written bare.
        if via_cmd && fold(parsed.text.trim()) == program.id {
            match program.id.as_str() {
                "call" | "start" => {
                    let payload = if program.id == "call" {
                        Ok(parsed.rest.trim().to_string())
                    } else {
                        program::start_payload(&parsed.rest)
                    };
                    let reparsed = program.id == "call";
                    self.push_line(program, &parsed, line, true);
                    match payload {
                        Ok(p) if !p.trim().is_empty() => {
                            self.line_in(&p, reparsed, depth + 1, false)
                        }
                        Ok(_) => self.opaque("call without a command"),
                        Err(e) => self.opaque(e),
                    }
                    return;
                }
                "for" | "if" => {
                    self.unanalysable(
                        format!(
                            "cmd '{}' runs commands the gateway cannot follow",
                            program.id
                        ),
                        implicit,
                    );
                    return;
                }
                _ => {}
            }
        }
        match interpreter_launch(&program, &parsed.rest) {
            Some(Ok((powershell, launch))) => {
                // An interpreter's own line needs no allow rule (its payload is judged),
                // unless it is a copy outside the system directories.
                let own = program.word == program.id;
                self.push_line(program, &parsed, line, implicit || own);
                if let Some(code) = &launch.code {
                    let via = match (powershell, launch.encoded) {
                        (true, true) => "EncodedCommand",
                        (true, false) => "powershell -Command",
                        (false, _) => "cmd /c",
                    };
                    self.decoded(via, code);
                    if powershell {
                        self.script(code, "PowerShell command line", depth + 1);
                    } else {
                        self.line_in(code, true, depth + 1, false);
                    }
                }
                if launch.reads_stdin {
                    self.items.push(Item::InterpreterStart { powershell });
                }
            }
            Some(Err(e)) => self.opaque(e),
            None => self.push_line(program, &parsed, line, implicit),
        }
    }

    fn push_line(&mut self, program: Program, parsed: &Parsed, written: &str, implicit: bool) {
        self.items.push(Item::Line {
            line: ProgramLine::new(program, &parsed.rest, written),
            metachar: None,
            implicit,
            origin: Origin::Cmd,
        });
    }

    /// Stdin sent to the program started by `program`.
    pub(crate) fn stdin(&mut self, program: &str, data: &str) {
        if self
            .trust
            .is_some_and(|t| crate::ansible::is_bootstrap(t, program))
        {
            self.decoded("Ansible payload", data);
            crate::ansible::payload(self, data);
            return;
        }
        match launch(&cmd_c_quotes(program, false)) {
            Some(Ok((true, launch))) if launch.reads_stdin => {
                self.decoded("PowerShell stdin", data.trim_end());
                self.script(data, "PowerShell stdin", 0)
            }
            Some(Ok((false, launch))) if launch.reads_stdin => {
                self.decoded("cmd stdin", data.trim_end());
                for raw in data.split('\n') {
                    let line = raw.trim_end_matches('\r').trim();
                    if line.is_empty() || is_cmd_exit(line) {
                        continue;
                    }
                    // Interactive cmd.exe reads each line as typed (no /c quote rule).
                    self.line_in(line, true, 0, false);
                }
            }
            _ => self.opaque(format!(
                "stdin to '{}', which is not an interactive interpreter",
                normalize_line(program)
            )),
        }
    }
}

/// The exit-code epilogue ansible-core's PowerShell shell plugin appends to scripts.
const ANSIBLE_EXIT_EPILOGUE: &str = "If (-not $?) { If (Get-Variable LASTEXITCODE -ErrorAction \
                                     SilentlyContinue) { exit $LASTEXITCODE } Else { exit 1 } }";

/// True when the program started by `program` runs what it reads on stdin (`cmd`,
/// `powershell -`): its input is code, judged line by line; anything else reads data.
pub(crate) fn stdin_is_code(program: &str) -> bool {
    matches!(launch(&cmd_c_quotes(program, false)), Some(Ok((_, l))) if l.reads_stdin)
}

/// A PowerShell command name that may start a program: not an alias, not
/// module-qualified (`Module\Verb-Noun`), not an interpreter (judged by its payload),
/// and either a path, a name with an extension, or a name that is not Verb-Noun
/// (cmdlets and functions are; the few programs with a dash in their name run without
/// program rules, as before).
fn looks_like_program(written: &str, folded: &str, via_alias: bool, program: &str) -> bool {
    if via_alias || folded != fold(written.trim()) || is_interpreter(program) {
        return false;
    }
    is_path(written) || folded.contains('.') || !folded.contains('-')
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
        && resolve_name(first_name, MetadataSet::builtin()).0 == "invoke-expression"
        && resolve_name(last_name, MetadataSet::builtin()).0 == "out-string"
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
pub(crate) fn resolve_name(written: &str, meta: &MetadataSet) -> (String, bool) {
    let trimmed = written.trim();
    // Folded first, so that case variants PowerShell equates (`ſal`) resolve too.
    let folded = fold(trimmed);
    if let Some(target) = pwsh::resolve_alias(&folded) {
        return (fold(target), true);
    }
    if let Some(target) = meta.resolve_alias(&folded) {
        return (target.to_string(), true);
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

/// The values bound to `param` in any of the bindings (`None`: pipeline objects of
/// unknown value).
fn bound_values<'a>(bindings: &'a [Binding], param: &str) -> Vec<Option<&'a Val>> {
    bindings
        .iter()
        .flat_map(|b| b.bound.iter())
        .filter(|b| b.param() == param)
        .map(|b| b.value.as_ref())
        .collect()
}
