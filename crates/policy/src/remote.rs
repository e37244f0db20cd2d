//! Staying on the host (`local_only = true`): arguments that name another machine. UNC
//! paths in any spelling PowerShell or Windows accepts, and every parameter that targets
//! a computer, whichever alias or position reached it. Pure.

use crate::prelude::*;

use super::analyse::{CommandUse, Item, UseArg, Val};
use super::bind::{Bound, Upstream, Via};
use super::cmdline::split_args;
use super::pattern::fold;
use super::role::{program_leaf, Role};

/// Parameters (folded) whose value is another machine or a connection to one.
pub(crate) const REMOTE_PARAMS: &[&str] = &[
    "computername",
    "cimsession",
    "session",
    "tosession",
    "fromsession",
    "servername",
    "server",
    "connectionuri",
    "hostname",
    "vmname",
    "vmid",
    "containerid",
    "cluster",
];

/// Programs whose `/s <host>` switch runs them against another computer.
const SLASH_S_PROGRAMS: &[&str] = &[
    "schtasks",
    "tasklist",
    "taskkill",
    "systeminfo",
    "getmac",
    "eventcreate",
    "gpresult",
    "driverquery",
    "openfiles",
    "shutdown",
];

/// How a binding reached its parameter, for messages.
pub(crate) fn via_text(b: &Bound) -> String {
    match &b.via {
        Via::Named(w) => format!("parameter '{}'", w.trim_end_matches(':')),
        Via::Positional(i) => match &b.value {
            Some(Val::Str(v)) => format!("positional argument {} ('{v}')", i + 1),
            _ => format!("positional argument {}", i + 1),
        },
        Via::Pipeline => match &b.value {
            Some(Val::Str(v)) => format!("pipeline input '{v}'"),
            _ => "pipeline input".to_string(),
        },
    }
}

/// True when a path names another machine: `\\host\share`, `//host/share`,
/// `\\?\UNC\host\share`, `\\.\UNC\...`, and provider-qualified forms
/// (`Microsoft.PowerShell.Core\FileSystem::\\host\share`, `FileSystem::\\host`).
pub(crate) fn names_remote(text: &str) -> bool {
    let t = fold(text.trim().trim_matches(['"', '\'']));
    let t = t.replace('/', "\\");
    // A provider-qualified path: what follows the last `::` is the provider path.
    let path = t.rsplit_once("::").map_or(t.as_str(), |(_, p)| p).trim();
    let Some(rest) = path.strip_prefix("\\\\") else {
        return false;
    };
    // `\\?\` and `\\.\` are the local device namespaces, except their UNC forms.
    for device in ["?\\", ".\\"] {
        if let Some(inner) = rest.strip_prefix(device) {
            return inner.starts_with("unc\\") || inner.starts_with("globalroot\\");
        }
    }
    !rest.is_empty()
}

fn value_names_remote(v: &Val) -> Option<String> {
    match v {
        Val::Str(s) if names_remote(s) => Some(s.clone()),
        Val::List(items) => items.iter().find_map(value_names_remote),
        Val::Hashtable(entries) => entries.iter().find_map(|(_, v)| value_names_remote(v)),
        // A script block bound to a pipeline parameter is evaluated per object
        // (delay-bind): a UNC spelling anywhere in its text counts.
        Val::Block(b) if b.text.contains("\\\\") || b.text.contains("//") => Some(b.text.clone()),
        Val::ScriptBlock(t) if t.contains("\\\\") || t.contains("//") => Some(t.clone()),
        _ => None,
    }
}

fn refuse(role: &Role, what: String) -> Result<(), String> {
    Err(format!(
        "role '{}' acts on this host only (local_only): {what}",
        role.name
    ))
}

/// Checks one fact against a `local_only` role.
pub(crate) fn local_only_allows(role: &Role, item: &Item) -> Result<(), String> {
    match item {
        Item::Command(u) => command_local(role, u),
        Item::Line { line, .. } => core::iter::once(line.line.as_str())
            .chain(line.deny_forms.iter().map(|(l, _)| l.as_str()))
            .try_for_each(|l| line_local(role, l)),
        _ => Ok(()),
    }
}

fn command_local(role: &Role, u: &CommandUse) -> Result<(), String> {
    let remote_param = |p: &str| REMOTE_PARAMS.contains(&p);
    match &u.bindings {
        Some(Ok(list)) => {
            for b in list.iter().flat_map(|b| &b.bound) {
                let hit = remote_param(b.param()) || b.aliases().iter().any(|a| remote_param(a));
                if hit && b.resolved {
                    return refuse(
                        role,
                        format!(
                            "{} of '{}' binds to '{}', which targets another computer",
                            via_text(b),
                            u.written,
                            b.display()
                        ),
                    );
                }
            }
        }
        // Unknown metadata: a named token that could be a computer-targeting parameter.
        _ => {
            for a in &u.args {
                if let UseArg::Named { name, written, .. } = a {
                    if !name.is_empty()
                        && REMOTE_PARAMS.iter().any(|p| p.starts_with(name.as_str()))
                    {
                        return refuse(
                            role,
                            format!(
                                "parameter '{}' of '{}' could target another computer",
                                written.trim_end_matches(':'),
                                u.written
                            ),
                        );
                    }
                }
            }
            // A cmdlet or function whose arguments cannot be bound could take a computer
            // by position or from the pipeline.
            let cmdlet_like = !u.path_like && u.folded.contains('-') && !u.folded.contains('.');
            let positional = u.args.iter().any(|a| matches!(a, UseArg::Positional(_)));
            if cmdlet_like && (positional || u.upstream != Upstream::None) {
                return refuse(
                    role,
                    format!(
                        "the arguments of '{}' cannot be bound (no parameter metadata, or \
                         they fit no parameter set), so they could target another computer",
                        u.written
                    ),
                );
            }
        }
    }
    let values = u.args.iter().filter_map(|a| match a {
        UseArg::Named { value, .. } => value.as_ref(),
        UseArg::Positional(v) => Some(v),
    });
    let piped = match &u.upstream {
        Upstream::Values(v) | Upstream::Identified { values: v, .. } => v.as_slice(),
        _ => &[],
    };
    if let Some(path) = values.chain(piped).find_map(value_names_remote) {
        return refuse(
            role,
            format!("'{path}' given to '{}' names another machine", u.written),
        );
    }
    Ok(())
}

fn line_local(role: &Role, line: &str) -> Result<(), String> {
    let tokens = split_args(line);
    let program = tokens
        .first()
        .map(|t| program_leaf(&t.value))
        .unwrap_or_default();
    for (i, t) in tokens.iter().enumerate() {
        let f = fold(&t.value);
        let remote = names_remote(&t.value)
            || f.starts_with("/node:")
            || (matches!(program.as_str(), "winrs")
                && (f.starts_with("-r:") || f.starts_with("/r:")))
            || (SLASH_S_PROGRAMS.contains(&program.as_str())
                && (f == "/s" || f == "-s" || f == "/m")
                && i > 0);
        if remote {
            return refuse(
                role,
                format!("'{}' in '{line}' names another machine", t.value),
            );
        }
    }
    Ok(())
}
