//! Judging an analysis against one role: visibility, parameter binding (PowerShell's
//! case-insensitive, unambiguous-prefix rules), value constraints, cmd lines, language
//! mode; and finding deny-rule hits. Pure functions over compiled roles.

use crate::prelude::*;

use super::analyse::{kind, Analysis, CommandUse, Item, Origin, UseArg, Val};
use super::bind::{Binding, Bound, Upstream, Via};
use super::builtin::{
    default_positional, positional_at, SAFE_COMMON, SESSION_COMMANDS, SWITCHES, UNSAFE_COMMON,
};
use super::file::Language;
use super::pattern::fold;
use super::program::ProgramLine;
use super::remote::{local_only_allows, via_text};
use super::role::{CmdRules, CommandRule, ParamRule, PsrpRules, Role};
use hopgate_pwsh::PwshError;

/// Why a role does not allow something. The common case (a command the role does not
/// show) is built without allocating: every applicable role is tried per request, and
/// the text is only needed when all of them refuse.
#[derive(Debug)]
pub(crate) enum Refusal<'a> {
    NotVisible { command: &'a str, role: &'a str },
    Message(String),
}

// === impl Refusal ===

impl core::fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::NotVisible { command, role } => {
                write!(f, "command '{command}' is not visible to role '{role}'")
            }
            Refusal::Message(m) => f.write_str(m),
        }
    }
}

/// Checks every item against `role`.
pub(crate) fn allows<'a>(role: &'a Role, analysis: &'a Analysis<'_>) -> Result<(), Refusal<'a>> {
    for item in &analysis.items {
        allows_item(role, item)?;
        if role.local_only {
            local_only_allows(role, item).map_err(Refusal::Message)?;
        }
    }
    Ok(())
}

fn psrp<'a>(role: &'a Role, what: &str) -> Result<&'a PsrpRules, String> {
    role.psrp
        .as_ref()
        .ok_or_else(|| format!("role '{}' grants no PowerShell ({what})", role.name))
}

fn allows_item<'a>(role: &'a Role, item: &'a Item) -> Result<(), Refusal<'a>> {
    match item {
        Item::Command(u) => {
            let p = psrp(role, &u.written).map_err(Refusal::Message)?;
            command_allowed(role, p, u)
        }
        other => other_allowed(role, other).map_err(Refusal::Message),
    }
}

fn other_allowed(role: &Role, item: &Item) -> Result<(), String> {
    match item {
        Item::Script { label } => {
            let p = psrp(role, label)?;
            if p.language == Language::NoScripts {
                return Err(format!(
                    "{label} is script text and role '{}' allows no scripts",
                    role.name
                ));
            }
            Ok(())
        }
        Item::Opaque { what } => match &role.psrp {
            Some(p) if p.language == Language::Full => Ok(()),
            _ => Err(format!(
                "role '{}' accepts only code the gateway can analyse: {what}",
                role.name
            )),
        },
        Item::Unsupported { label, error } => {
            let p = psrp(role, label)?;
            match p.language {
                Language::Full => Ok(()),
                Language::NoScripts => Err(format!(
                    "{label} is script text and role '{}' allows no scripts",
                    role.name
                )),
                Language::Restricted => Err(language_refusal(&role.name, label, error)),
            }
        }
        Item::InterpreterStart { powershell: true } => {
            psrp(role, "interactive PowerShell").map(|_| ())
        }
        Item::InterpreterStart { powershell: false } => match &role.cmd {
            Some(_) => Ok(()),
            None => Err(format!(
                "role '{}' grants no cmd commands (interactive cmd)",
                role.name
            )),
        },
        Item::Unverifiable { .. } => Ok(()),
        Item::AnsibleModule(call) => crate::ansible::module_allowed(role, call),
        Item::AnsibleAction(script) => crate::ansible::action_allowed(role, script),
        Item::Trusted { sha256, path } => {
            if role.trust.hashes.contains(sha256) {
                Ok(())
            } else {
                Err(format!(
                    "script '{path}' is not trusted by role '{}' (its code is not analysed)",
                    role.name
                ))
            }
        }
        Item::Line {
            line,
            metachar,
            implicit,
            origin,
        } => line_allowed(role, line, *metachar, *implicit, *origin),
        Item::Command(_) => Ok(()),
    }
}

/// A program line against the role's cmd rules. A line cmd.exe or CreateProcess runs
/// needs a matching rule; an external command in PowerShell (visible by the PowerShell
/// rules) must match one when the cmd rules name its program, and is otherwise free.
fn line_allowed(
    role: &Role,
    line: &ProgramLine,
    metachar: Option<char>,
    implicit: bool,
    origin: Origin,
) -> Result<(), String> {
    if implicit {
        return Ok(());
    }
    let matches = |cmd: &CmdRules| {
        cmd.lines
            .iter()
            .any(|l| l.matches(&line.line, &line.folded))
    };
    match origin {
        Origin::PowerShell => {
            let (Some(cmd), Some(program)) = (&role.cmd, &line.program) else {
                return Ok(());
            };
            if !cmd.mentions(&program.id) || matches(cmd) {
                return Ok(());
            }
            Err(format!(
                "{} is not allowed by role '{}': its cmd rules for program '{}' do not match",
                line.describe(),
                role.name,
                program.id
            ))
        }
        Origin::Cmd => {
            let Some(cmd) = &role.cmd else {
                return Err(format!(
                    "role '{}' grants no cmd commands ('{}')",
                    role.name, line.line
                ));
            };
            if let Some(c) = metachar {
                if !cmd.allow_metacharacters {
                    return Err(format!(
                        "cmd metacharacter '{}' in '{}'",
                        c.escape_default(),
                        line.line
                    ));
                }
            }
            if matches(cmd) {
                Ok(())
            } else {
                Err(format!(
                    "{} is not allowed by role '{}'",
                    line.describe(),
                    role.name
                ))
            }
        }
    }
}

/// Where script text came from, for messages: nothing for the request's own script.
fn in_label(label: &str) -> String {
    if label == "script" {
        String::new()
    } else {
        format!(" (in {label})")
    }
}

/// Why a `restricted` role refuses a script: the construct its language does not
/// allow, its text and where it is ("role 'demo' allows no variables: `$x` at line 1,
/// column 1").
fn language_refusal(role: &str, label: &str, error: &PwshError) -> String {
    let place = in_label(label);
    match error {
        PwshError::Unsupported {
            construct,
            snippet,
            at,
            in_block: false,
        } => format!(
            "role '{role}' allows no {}: `{snippet}` at {at}{place}",
            construct.plural()
        ),
        PwshError::Unsupported {
            construct,
            snippet,
            at,
            in_block: true,
        } => format!(
            "role '{role}' allows no script blocks except the safe subset: {construct} \
             `{snippet}` at {at}{place}"
        ),
        PwshError::Unterminated { what, at } => format!(
            "role '{role}' cannot analyse an incomplete script: unterminated {what} starting \
             at {at}{place}"
        ),
    }
}

/// What an unanalysable item is, for the deny message: the construct and where it is,
/// or the description of the code.
pub(crate) fn outside_analysis(item: &Item) -> Option<String> {
    match item {
        Item::Opaque { what } => Some(format!(
            "code is outside what the gateway can analyse: {what}"
        )),
        Item::Unsupported { label, error } => {
            let place = in_label(label);
            Some(match error {
                PwshError::Unsupported {
                    construct,
                    snippet,
                    at,
                    in_block,
                } => format!(
                    "script is outside what the gateway can analyse: {construct} `{snippet}`{} at \
                     {at}{place}",
                    if *in_block { " in a script block" } else { "" }
                ),
                PwshError::Unterminated { what, at } => format!(
                    "script is outside what the gateway can analyse: unterminated {what} \
                     starting at {at}{place}"
                ),
            })
        }
        _ => None,
    }
}

/// Visibility and parameters of one command use.
fn command_allowed<'a>(
    role: &'a Role,
    p: &PsrpRules,
    u: &'a CommandUse,
) -> Result<(), Refusal<'a>> {
    if u.implicit {
        return Ok(());
    }
    let not_visible = || Refusal::NotVisible {
        command: &u.written,
        role: &role.name,
    };
    if u.path_like {
        return if p.external(u) {
            Ok(())
        } else {
            Err(not_visible())
        };
    }
    if let Some(rule) = p.command(&u.folded) {
        return params_allowed(&role.name, rule, u).map_err(Refusal::Message);
    }
    if SESSION_COMMANDS.contains(&u.folded.as_str()) {
        return Ok(());
    }
    if !u.via_alias && p.external(u) {
        return Ok(());
    }
    Err(not_visible())
}

/// How a parameter token resolved against a restricted rule.
enum Resolved<'a> {
    Rule(&'a ParamRule),
    /// A safe common parameter; true when it is a switch.
    Common(bool),
}

fn common(name: &str) -> Resolved<'static> {
    Resolved::Common(matches!(name, "verbose" | "debug" | "whatif" | "confirm"))
}

fn resolve_param<'a>(
    rule: &'a CommandRule,
    params: &'a [ParamRule],
    token: &str,
    written: &str,
) -> Result<Resolved<'a>, String> {
    if let Some(p) = params.iter().find(|p| p.name == token) {
        return Ok(Resolved::Rule(p));
    }
    if SAFE_COMMON.contains(&token) {
        return Ok(common(token));
    }
    if token.is_empty() {
        return Err(format!("empty parameter name on '{}'", rule.name.source));
    }
    if UNSAFE_COMMON.iter().any(|c| c.starts_with(token)) {
        return Err(format!(
            "parameter '{written}' of '{}' could be a variable-writing common parameter",
            rule.name.source
        ));
    }
    let mut candidates = params.iter().filter(|p| p.name.starts_with(token));
    let mut commons = SAFE_COMMON.iter().filter(|c| c.starts_with(token));
    match (
        candidates.next(),
        candidates.next(),
        commons.next(),
        commons.next(),
    ) {
        (Some(p), None, None, _) => Ok(Resolved::Rule(p)),
        (None, None, Some(c), None) => Ok(common(c)),
        (None, _, None, _) => Err(format!(
            "parameter '{written}' is not allowed on '{}'",
            rule.name.source
        )),
        _ => Err(format!(
            "parameter '{written}' of '{}' is ambiguous",
            rule.name.source
        )),
    }
}

/// The parameters of one command use against a visible-command rule: through its
/// bindings when the command's metadata is known, else by the names as written.
fn params_allowed(role: &str, rule: &CommandRule, u: &CommandUse) -> Result<(), String> {
    let Some(params) = &rule.params else {
        return Ok(());
    };
    match &u.bindings {
        Some(Ok(list)) => list
            .iter()
            .try_for_each(|b| binding_allowed(role, rule, params, u, b)),
        Some(Err(e)) => Err(e.to_string()),
        None => {
            if u.upstream != Upstream::None && !rule.pipeline_input {
                return Err(format!(
                    "pipeline input to '{}' cannot be judged: hopgate has no parameter \
                     metadata for it and role '{role}' restricts its parameters (set \
                     pipeline_input = true on the rule to accept it)",
                    u.written
                ));
            }
            params_allowed_by_name(rule, params, u)
        }
    }
}

/// True when a rule parameter constrains values.
fn constrained(p: &ParamRule) -> bool {
    p.set.is_some() || p.pattern.is_some()
}

/// One binding against a rule that lists the allowed parameters.
fn binding_allowed(
    role: &str,
    rule: &CommandRule,
    params: &[ParamRule],
    u: &CommandUse,
    binding: &Binding,
) -> Result<(), String> {
    for b in &binding.bound {
        let listed = params
            .iter()
            .find(|p| p.name == b.param() || b.aliases().contains(&p.name));
        // WhatIf and Confirm come from the command's own metadata where it supports
        // ShouldProcess: they stay as safe as the common parameters they are.
        if listed.is_none() && SAFE_COMMON.contains(&b.param()) {
            continue;
        }
        if b.common {
            return Err(format!(
                "{} of '{}' binds to '{}', which writes a variable; role '{role}' restricts \
                 the parameters of '{}'",
                via_text(b),
                u.written,
                b.display(),
                rule.name.source
            ));
        }
        let allowed = listed;
        let pipeline = b.via == Via::Pipeline;
        // `pipeline_input = true` trusts objects the gateway cannot see; values it can
        // see (literals, `Write-Output` of literals) are still judged.
        if pipeline && rule.pipeline_input && b.value.is_none() {
            continue;
        }
        let Some(p) = allowed else {
            let hint = if pipeline {
                format!(
                    " (allow the parameter, or set pipeline_input = true on '{}')",
                    rule.name.source
                )
            } else {
                String::new()
            };
            return Err(format!(
                "{} of '{}' binds to '{}', which role '{role}' does not allow{hint}",
                via_text(b),
                u.written,
                b.display()
            ));
        };
        bound_value_allowed(role, p, u, b)?;
    }
    Ok(())
}

fn bound_value_allowed(role: &str, p: &ParamRule, u: &CommandUse, b: &Bound) -> Result<(), String> {
    match &b.value {
        Some(v) => value_allowed(p, v).map_err(|e| {
            format!(
                "{} of '{}' binds to '{}': {e}",
                via_text(b),
                u.written,
                b.display()
            )
        }),
        None if !constrained(p) => Ok(()),
        None if b.via == Via::Pipeline => Err(format!(
            "pipeline input to '{}' binds to '{}', and objects from the previous command \
             cannot be shown to satisfy its rule in role '{role}' (set pipeline_input = \
             true on the rule to trust them)",
            u.written,
            b.display()
        )),
        None => Err(format!(
            "parameter '{}' of '{}' needs a value",
            b.display(),
            u.written
        )),
    }
}

/// Parameter binding by the names as written, for commands without metadata: positional
/// arguments bind through the rule's `positional` list (or the built-in table).
fn params_allowed_by_name(
    rule: &CommandRule,
    params: &[ParamRule],
    u: &CommandUse,
) -> Result<(), String> {
    let mut position = 0usize;
    let positional_param = |index: usize| -> Option<String> {
        match &rule.positional {
            Some(list) => positional_at(list.iter().map(String::as_str), index).map(str::to_string),
            None => default_positional(&u.folded, index).map(str::to_string),
        }
    };
    let mut bind_positional = |v: &Val| -> Result<(), String> {
        let index = position;
        position += 1;
        let Some(name) = positional_param(index) else {
            return Err(format!(
                "positional argument {} of '{}' binds to no allowed parameter",
                index + 1,
                u.written
            ));
        };
        let Some(p) = params.iter().find(|p| p.name == name) else {
            return Err(format!(
                "positional argument {} of '{}' binds to '{name}', which is not allowed",
                index + 1,
                u.written
            ));
        };
        value_allowed(p, v)
    };
    for a in &u.args {
        match a {
            UseArg::Positional(v) => bind_positional(v)?,
            UseArg::Named {
                name,
                written,
                value,
                maybe_positional,
            } => {
                let resolved = resolve_param(rule, params, name, written)?;
                let switch = SWITCHES.contains(&name.as_str());
                match (resolved, value) {
                    (Resolved::Common(true), Some(v)) if *maybe_positional => bind_positional(v)?,
                    (Resolved::Common(_), _) => {}
                    (Resolved::Rule(p), Some(v))
                        if *maybe_positional
                            && switch
                            && p.set.is_none()
                            && p.pattern.is_none() =>
                    {
                        bind_positional(v)?
                    }
                    (Resolved::Rule(p), Some(v)) => {
                        value_allowed(p, v)?;
                        if *maybe_positional && p.set.is_none() && p.pattern.is_none() {
                            // If the parameter turns out to be a switch, the value binds
                            // positionally; it must be acceptable there too.
                            bind_positional(v)?;
                        }
                    }
                    (Resolved::Rule(p), None) => {
                        if p.set.is_some() || p.pattern.is_some() {
                            return Err(format!(
                                "parameter '{written}' of '{}' needs a value",
                                u.written
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// ValidateSet / ValidatePattern for one value (each item of a list).
fn value_allowed(p: &ParamRule, v: &Val) -> Result<(), String> {
    if p.set.is_none() && p.pattern.is_none() {
        return Ok(());
    }
    let text = match v {
        Val::Str(s) => s.clone(),
        Val::Num(n) if n.chars().all(|c| c.is_ascii_digit()) => n.clone(),
        Val::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Val::List(items) => {
            for i in items {
                value_allowed(p, i)?;
            }
            return Ok(());
        }
        other => {
            return Err(format!(
                "{} value for constrained parameter '{}'",
                kind(other),
                p.display
            ))
        }
    };
    if let Some(set) = &p.set {
        if !set.contains(&fold(&text)) {
            return Err(format!(
                "value '{text}' is not in the allowed set of parameter '{}'",
                p.display
            ));
        }
    }
    if let Some(pattern) = &p.pattern {
        if !pattern.is_match(&text) {
            return Err(format!(
                "value '{text}' does not match the pattern of parameter '{}'",
                p.display
            ));
        }
    }
    Ok(())
}

/// GET_COMMAND_METADATA names: a wildcard or a visible command.
pub(crate) fn metadata_allowed(role: &Role, u: &CommandUse) -> Result<(), String> {
    let p = psrp(role, "command metadata")?;
    if super::pattern::has_wildcard(&u.written) {
        return Ok(());
    }
    command_allowed(role, p, u).map_err(|r| r.to_string())
}
