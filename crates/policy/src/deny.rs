//! An engine-wide index of every role's deny rules. Deny rules of all applicable roles
//! are checked for every request, so identical rules repeated across roles are stored
//! once with the list of roles that hold them, and exact names are looked up by hash.
//! Built once per policy load; pure.

use crate::prelude::*;

use alloc::collections::BTreeMap;

use super::analyse::{Analysis, CommandUse, Item, UseArg};
use super::bind::Upstream;
use super::check::outside_analysis;
use super::file::Language;
use regex::RegexSet;

use super::pattern::Wildcard;
use super::remote::via_text;
use super::role::{LineRule, Role};

/// Role indices holding one rule.
type Holders = Vec<usize>;

#[derive(Debug, Default)]
pub(crate) struct DenyIndex {
    /// Folded exact command names → (role, rule as written).
    exact: BTreeMap<String, Vec<(usize, String)>>,
    /// Wildcard command rules, deduplicated by their text.
    wild: Vec<(Wildcard, Holders)>,
    /// The same rules as one set, matched in one pass per name (every role's wildcard
    /// deny rules are checked against every command of every request); `None` when the
    /// set cannot be built, and the rules are then tried one by one.
    wild_set: Option<RegexSet>,
    /// (command wildcard, folded parameter) pairs.
    params: Vec<(Wildcard, String, Holders)>,
    /// cmd-line rules, deduplicated by their description.
    lines: Vec<(LineRule, String, Holders)>,
    /// Roles that have any deny rule.
    any: Vec<bool>,
}

fn first_applicable(holders: &[usize], applicable: &[bool]) -> Option<usize> {
    holders
        .iter()
        .copied()
        .find(|&i| applicable.get(i).copied().unwrap_or(false))
}

// === impl DenyIndex ===

impl DenyIndex {
    pub(crate) fn new(roles: &[Role]) -> Self {
        let mut index = DenyIndex {
            any: roles.iter().map(|r| !r.deny.is_empty()).collect(),
            ..Default::default()
        };
        for (i, role) in roles.iter().enumerate() {
            for w in &role.deny.commands {
                match w.exact() {
                    Some(name) => index
                        .exact
                        .entry(name.to_string())
                        .or_default()
                        .push((i, w.source.clone())),
                    None => match index.wild.iter_mut().find(|(x, _)| x.source == w.source) {
                        Some((_, holders)) => holders.push(i),
                        None => index.wild.push((w.clone(), vec![i])),
                    },
                }
            }
            for (w, names) in &role.deny.parameters {
                for name in names {
                    match index
                        .params
                        .iter_mut()
                        .find(|(x, n, _)| x.source == w.source && n == name)
                    {
                        Some((_, _, holders)) => holders.push(i),
                        None => index.params.push((w.clone(), name.clone(), vec![i])),
                    }
                }
            }
            for rule in &role.deny.cmd {
                let described = rule.describe();
                match index.lines.iter_mut().find(|(_, d, _)| *d == described) {
                    Some((_, _, holders)) => holders.push(i),
                    None => index.lines.push((rule.clone(), described, vec![i])),
                }
            }
        }
        index.wild_set = RegexSet::new(index.wild.iter().map(|(w, _)| w.regex_source())).ok();
        index
    }

    /// The first deny rule of an applicable role that the analysis hits, as
    /// (reason, rule). `applicable` is indexed like `roles`.
    pub(crate) fn hit(
        &self,
        roles: &[Role],
        applicable: &[bool],
        analysis: &Analysis<'_>,
    ) -> Option<(String, String)> {
        let name = |i: usize| roles.get(i).map_or("?", |r| r.name.as_str());
        for item in &analysis.items {
            match item {
                Item::Command(u) => {
                    let [a, b, c] = &u.deny_names;
                    // The three names are usually equal; look at each distinct one once.
                    let distinct = [
                        Some(a),
                        (b != a).then_some(b),
                        (c != a && c != b).then_some(c),
                    ];
                    for n in distinct.into_iter().flatten() {
                        if let Some((i, source)) = self.exact.get(n).and_then(|list| {
                            list.iter()
                                .find(|(i, _)| applicable.get(*i).copied().unwrap_or(false))
                        }) {
                            return Some(command_hit(&u.written, name(*i), source));
                        }
                    }
                    let matched: Vec<usize> = match &self.wild_set {
                        Some(set) => {
                            let mut m: Vec<usize> = distinct
                                .iter()
                                .flatten()
                                .flat_map(|n| set.matches(n).into_iter())
                                .collect();
                            m.sort_unstable();
                            m.dedup();
                            m
                        }
                        None => self
                            .wild
                            .iter()
                            .enumerate()
                            .filter(|(_, (w, _))| distinct.iter().flatten().any(|n| w.matches(n)))
                            .map(|(i, _)| i)
                            .collect(),
                    };
                    for (w, holders) in matched.iter().filter_map(|&i| self.wild.get(i)) {
                        if let Some(i) = first_applicable(holders, applicable) {
                            return Some(command_hit(&u.written, name(i), &w.source));
                        }
                    }
                    for (w, denied, holders) in &self.params {
                        if !w.matches(&u.folded) {
                            continue;
                        }
                        if let Some(why) = parameter_hit(u, denied) {
                            if let Some(i) = first_applicable(holders, applicable) {
                                return Some((
                                    format!("{why}, which role '{}' denies", name(i)),
                                    format!("{}: deny.parameters '{}' {denied}", name(i), w.source),
                                ));
                            }
                        }
                    }
                }
                Item::Line { line, .. } => {
                    let forms = core::iter::once((&line.line, &line.folded))
                        .chain(line.deny_forms.iter().map(|(l, f)| (l, f)));
                    for (text, folded) in forms {
                        for (rule, described, holders) in &self.lines {
                            if !rule.matches(text, folded) {
                                continue;
                            }
                            if let Some(i) = first_applicable(holders, applicable) {
                                return Some((
                                    format!(
                                        "{} is denied by role '{}' (deny.cmd {described})",
                                        line.describe(),
                                        name(i)
                                    ),
                                    format!("{}: deny.cmd {described}", name(i)),
                                ));
                            }
                        }
                    }
                }
                Item::Unverifiable { what } => {
                    let holder = self
                        .any
                        .iter()
                        .enumerate()
                        .find(|(i, has)| **has && applicable.get(*i).copied().unwrap_or(false));
                    if let Some((i, _)) = holder {
                        return Some((
                            format!("cannot verify the deny rules of role '{}': {what}", name(i)),
                            format!("{}: deny", name(i)),
                        ));
                    }
                }
                Item::Opaque { .. } | Item::Unsupported { .. } => {
                    // Only a `full` role could accept unanalysable code; without one, the
                    // role check refuses it with the construct its language lacks.
                    let full = roles.iter().zip(applicable).any(|(r, a)| {
                        *a && r
                            .psrp
                            .as_ref()
                            .is_some_and(|p| p.language == Language::Full)
                    });
                    let holder = self
                        .any
                        .iter()
                        .enumerate()
                        .find(|(i, has)| **has && applicable.get(*i).copied().unwrap_or(false));
                    if let (true, Some((i, _)), Some(what)) = (full, holder, outside_analysis(item))
                    {
                        return Some((
                            format!(
                                "{what}; role '{}' has deny rules, which cannot be checked \
                                 against it, so no role can allow it (language = \"full\" \
                                 accepts such code only where no role that applies has deny rules)",
                                name(i)
                            ),
                            format!("{}: deny", name(i)),
                        ));
                    }
                }
                // A trusted script is not analysed: deny rules judge its arguments and
                // input (other items), and the roles that trust it accept its code.
                Item::Script { .. }
                | Item::InterpreterStart { .. }
                | Item::Trusted { .. }
                | Item::AnsibleModule(_)
                | Item::AnsibleAction(_) => {}
            }
        }
        None
    }
}

fn command_hit(written: &str, role: &str, source: &str) -> (String, String) {
    (
        format!("command '{written}' is denied by role '{role}'"),
        format!("{role}: deny.cmdlets '{source}'"),
    )
}

/// Where a use reaches the denied (folded) parameter: through a binding (any alias,
/// prefix or position of it), or, when the command's parameters are unknown, through a
/// name that could be it or an argument that could bind to it.
fn parameter_hit(u: &CommandUse, denied: &str) -> Option<String> {
    if let Some(Ok(list)) = &u.bindings {
        return list.iter().flat_map(|b| &b.bound).find_map(|b| {
            let hit = b.param() == denied
                || b.aliases().iter().any(|a| a == denied)
                || (!b.resolved && !b.param().is_empty() && denied.starts_with(b.param()));
            hit.then(|| {
                format!(
                    "{} of '{}' binds to '{}'",
                    via_text(b),
                    u.written,
                    if b.resolved { b.display() } else { denied }
                )
            })
        });
    }
    for arg in &u.args {
        if let UseArg::Named {
            name: token,
            written,
            ..
        } = arg
        {
            // A prefix of a denied parameter binds to it (or is ambiguous): either way it
            // counts as that parameter.
            if !token.is_empty() && denied.starts_with(token.as_str()) {
                return Some(format!(
                    "parameter '{}' of '{}' could be '{denied}'",
                    written.trim_end_matches(':'),
                    u.written
                ));
            }
        }
    }
    // Arguments whose parameter cannot be known (no metadata, or arguments that do not
    // bind): a cmdlet or function could bind them to the denied parameter. Programs take
    // no PowerShell parameters.
    let cmdlet_like = !u.path_like && u.folded.contains('-') && !u.folded.contains('.');
    if !cmdlet_like {
        return None;
    }
    let unknown = match &u.bindings {
        Some(Err(e)) => Some(format!("its arguments do not bind ({e})")),
        _ => None,
    };
    if u.args.iter().any(|a| matches!(a, UseArg::Positional(_))) {
        return Some(format!(
            "a positional argument of '{}' could bind to '{denied}': {}",
            u.written,
            unknown.unwrap_or_else(|| "hopgate has no parameter metadata for it".into())
        ));
    }
    if u.upstream != Upstream::None {
        return Some(format!(
            "pipeline input to '{}' could bind to '{denied}': {}",
            u.written,
            unknown.unwrap_or_else(|| "hopgate has no parameter metadata for it".into())
        ));
    }
    None
}
