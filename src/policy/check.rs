//! Judging an analysis against one role: visibility, parameter binding (PowerShell's
//! case-insensitive, unambiguous-prefix rules), value constraints, cmd lines, language
//! mode; and finding deny-rule hits. Pure functions over compiled roles.

use super::analyse::{kind, Analysis, CommandUse, Item, UseArg, Val};
use super::builtin::{
    default_positional, parameter_alias, positional_at, SAFE_COMMON, SESSION_COMMANDS, SWITCHES,
    UNSAFE_COMMON,
};
use super::file::Language;
use super::pattern::fold;
use super::role::{program_leaf, CommandRule, ParamRule, PsrpRules, Role};

/// Why a role does not allow something.
pub(crate) type Refusal = String;

/// Checks every item against `role`.
pub(crate) fn allows(role: &Role, analysis: &Analysis) -> Result<(), Refusal> {
    for item in &analysis.items {
        allows_item(role, item)?;
    }
    Ok(())
}

fn psrp<'a>(role: &'a Role, what: &str) -> Result<&'a PsrpRules, Refusal> {
    role.psrp
        .as_ref()
        .ok_or_else(|| format!("role '{}' grants no PowerShell ({what})", role.name))
}

fn allows_item(role: &Role, item: &Item) -> Result<(), Refusal> {
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
        Item::Opaque { what } => {
            let full = role
                .psrp
                .as_ref()
                .is_some_and(|p| p.language == Language::Full);
            if full {
                Ok(())
            } else {
                Err(format!("cannot analyse: {what}"))
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
        Item::Line {
            normalized,
            folded,
            metachar,
        } => {
            let Some(cmd) = &role.cmd else {
                return Err(format!(
                    "role '{}' grants no cmd commands ('{normalized}')",
                    role.name
                ));
            };
            if let Some(c) = metachar {
                if !cmd.allow_metacharacters {
                    return Err(format!(
                        "cmd metacharacter '{}' in '{normalized}'",
                        c.escape_default()
                    ));
                }
            }
            if cmd.lines.iter().any(|l| l.matches(normalized, folded)) {
                Ok(())
            } else {
                Err(format!(
                    "command line '{normalized}' is not allowed by role '{}'",
                    role.name
                ))
            }
        }
        Item::Command(u) => {
            let p = psrp(role, &u.written)?;
            command_allowed(role, p, u)
        }
    }
}

/// Visibility and parameters of one command use.
fn command_allowed(role: &Role, p: &PsrpRules, u: &CommandUse) -> Result<(), Refusal> {
    if u.implicit {
        return Ok(());
    }
    let not_visible = || {
        format!(
            "command '{}' is not visible to role '{}'",
            u.written, role.name
        )
    };
    if u.path_like {
        return if p.external(&u.written) {
            Ok(())
        } else {
            Err(not_visible())
        };
    }
    if let Some(rule) = p.command(&u.folded) {
        return params_allowed(rule, u);
    }
    if SESSION_COMMANDS.contains(&u.folded.as_str()) {
        return Ok(());
    }
    if !u.via_alias && p.external(&u.written) {
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
) -> Result<Resolved<'a>, Refusal> {
    let token = parameter_alias(token).unwrap_or(token);
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

/// Parameter binding for a restricted rule.
fn params_allowed(rule: &CommandRule, u: &CommandUse) -> Result<(), Refusal> {
    let Some(params) = &rule.params else {
        return Ok(());
    };
    let mut position = 0usize;
    let positional_param = |index: usize| -> Option<String> {
        match &rule.positional {
            Some(list) => positional_at(list.iter().map(String::as_str), index).map(str::to_string),
            None => default_positional(&u.folded, index).map(str::to_string),
        }
    };
    let mut bind_positional = |v: &Val| -> Result<(), Refusal> {
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
fn value_allowed(p: &ParamRule, v: &Val) -> Result<(), Refusal> {
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

/// The first deny rule of `role` that an item hits: (reason, rule).
pub(crate) fn deny_hit(role: &Role, analysis: &Analysis) -> Option<(String, String)> {
    for item in &analysis.items {
        match item {
            Item::Command(u) => {
                let names = [
                    u.folded.clone(),
                    fold(u.written.trim()),
                    program_leaf(&u.written),
                ];
                if let Some(w) = role
                    .deny
                    .commands
                    .iter()
                    .find(|w| names.iter().any(|n| w.matches(n)))
                {
                    return Some((
                        format!("command '{}' is denied by role '{}'", u.written, role.name),
                        format!("{}: deny.cmdlets '{}'", role.name, w.source),
                    ));
                }
                for (w, denied) in &role.deny.parameters {
                    if !w.matches(&u.folded) {
                        continue;
                    }
                    for a in &u.args {
                        let UseArg::Named { name, written, .. } = a else {
                            continue;
                        };
                        let token = parameter_alias(name).unwrap_or(name);
                        if let Some(d) = denied
                            .iter()
                            .find(|d| !token.is_empty() && d.starts_with(token))
                        {
                            return Some((
                                format!("parameter '{written}' of '{}' could be '{d}', which role '{}' denies", u.written, role.name),
                                format!("{}: deny.parameters '{}' {d}", role.name, w.source),
                            ));
                        }
                    }
                }
            }
            Item::Line {
                normalized, folded, ..
            } => {
                if let Some(r) = role.deny.cmd.iter().find(|r| r.matches(normalized, folded)) {
                    return Some((
                        format!(
                            "command line '{normalized}' is denied by role '{}'",
                            role.name
                        ),
                        format!("{}: deny.cmd {}", role.name, r.describe()),
                    ));
                }
            }
            Item::Opaque { what } if !role.deny.is_empty() => {
                return Some((
                    format!(
                        "cannot verify the deny rules of role '{}': {what}",
                        role.name
                    ),
                    format!("{}: deny", role.name),
                ));
            }
            _ => {}
        }
    }
    None
}

/// GET_COMMAND_METADATA names: a wildcard or a visible command.
pub(crate) fn metadata_allowed(role: &Role, folded: &str, written: &str) -> Result<(), Refusal> {
    let p = psrp(role, "command metadata")?;
    if super::pattern::has_wildcard(written) {
        return Ok(());
    }
    let use_ = CommandUse {
        written: written.to_string(),
        folded: folded.to_string(),
        via_alias: false,
        path_like: false,
        args: Vec::new(),
        implicit: false,
    };
    command_allowed(role, p, &use_)
}
